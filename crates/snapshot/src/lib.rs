//! Snapshots in containerd's vocabulary: stacked directories and the mounts that stack them.
//!
//! A [`Snapshotter`] keeps *active* (writable) and *view* (read-only) snapshots under its own
//! root, each on an ordered list of committed lower directories (top first) that the caller
//! owns, such as the store's unpacked layers. It never mounts anything: it returns [`Mount`]
//! values, and [`mount_all`] / [`unmount_all`] are the only functions that make mount system
//! calls. A snapshot's changes are read from [`Snapshotter::upper_dir`], an overlay-style
//! directory (whiteouts are 0/0 character devices, opaque directories carry
//! `trusted.overlay.opaque=y`) from which the caller makes a layer.
//!
//! [`open`] picks the [`OverlaySnapshotter`] (prepare is O(1): an empty upper and work
//! directory) when overlayfs can be mounted, and otherwise the [`CopySnapshotter`], which says
//! so once on stderr. Overlays of hundreds of lower directories are mounted with `lowerdir+`
//! (Linux >= 6.8) or through short relative link names, never hitting mount(2)'s one-page limit.
//!
//! ```no_run
//! # fn main() -> Result<(), snapshot::Error> {
//! use std::path::{Path, PathBuf};
//! let snapshotter = snapshot::open(Path::new("/var/lib/strata/snapshots"), snapshot::Choice::Auto)?;
//! let layers = vec![PathBuf::from("/var/lib/strata/layers/top"), PathBuf::from("/var/lib/strata/layers/base")];
//! let mounts = snapshotter.prepare("container-1", &layers)?;
//! snapshot::mount_all(&mounts, Path::new("/run/strata/container-1/rootfs"))?;
//! // ... run something there ...
//! snapshot::unmount_all(Path::new("/run/strata/container-1/rootfs"))?;
//! let changes = snapshotter.upper_dir("container-1")?; // turn into a layer
//! # let _ = changes;
//! snapshotter.remove("container-1")?;
//! # Ok(()) }
//! ```

mod error;
mod fsutil;
mod mount;
mod snapshotter;

pub use error::{Error, Result};
pub use mount::{
    lowerdir_plus_supported, mount_all, mount_all_with, mounts_under, unmount, unmount_all,
    unmount_if_mounted, Mount, OverlayMethod,
};
pub use snapshotter::{
    effective_lowers, open, Choice, CopySnapshotter, Kind, OverlaySnapshotter, Snapshotter, Usage,
};

/// Whether this process runs in a user namespace other than the initial one (rootless
/// strata), where overlayfs is mounted with `userxattr` and its markers are `user.overlay.*`
/// xattrs, since `trusted.*` needs CAP_SYS_ADMIN in the initial namespace. Read once.
pub fn in_user_namespace() -> bool {
    static IN: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *IN.get_or_init(|| {
        std::fs::read_to_string("/proc/self/uid_map").is_ok_and(|m| {
            let w: Vec<&str> = m.split_whitespace().collect();
            w != ["0", "0", "4294967295"]
        })
    })
}
