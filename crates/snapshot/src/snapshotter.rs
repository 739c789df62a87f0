//! The `Snapshotter` trait and its implementations: overlayfs (O(1) prepare: a fresh upper
//! and work directory over the caller's lower directories), the same layout mounted by the
//! `fuse-overlayfs` program (rootless, where the kernel refuses overlayfs in a user
//! namespace), and a copy-based fallback for machines where neither can be mounted.
//!
//! On-disk layout under the snapshotter's root, one directory per key:
//! `snapshots/<key>/meta` (`active` or `view`, then one lower directory per line, top first),
//! `snapshots/<key>/fs` (overlay: the upper directory; copy: the whole root filesystem),
//! `snapshots/<key>/work` (overlay work directory) and, for the copy snapshotter,
//! `snapshots/<key>/upper` (the computed overlay-style diff, rewritten by `upper_dir`).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use crate::error::{Error, IoContext, Result};
use crate::fsutil;
use crate::mount::{self, Mount};

/// Disk usage of a snapshot's own changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    /// Bytes allocated on disk (each inode counted once).
    pub size: u64,
    /// Number of inodes, the upper directory itself included.
    pub inodes: u64,
}

/// Whether a snapshot is writable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Writable, made by `prepare`.
    Active,
    /// Read-only, made by `view`.
    View,
}

/// containerd's snapshotter vocabulary over caller-owned committed layer directories.
///
/// A *key* names an active (writable) or view (read-only) snapshot owned by the snapshotter.
/// Its parents are committed layer directories owned by the caller (the store), given top
/// first and never written to. A snapshotter never mounts: it returns [`Mount`] values for
/// [`mount::mount_all`]. Committing is the caller's job: it reads [`Snapshotter::upper_dir`]
/// (an overlay-style directory: whiteouts are 0/0 character devices, opaque directories carry
/// `trusted.overlay.opaque=y`) and turns it into a layer.
pub trait Snapshotter: Send + Sync {
    /// `"overlayfs"`, `"fuse-overlayfs"` or `"copy"`.
    fn name(&self) -> &'static str;
    /// Creates an active snapshot `key` on `lowers` (top first) and returns its mounts.
    fn prepare(&self, key: &str, lowers: &[PathBuf]) -> Result<Vec<Mount>>;
    /// Creates a read-only snapshot `key` on `lowers` and returns its mounts.
    fn view(&self, key: &str, lowers: &[PathBuf]) -> Result<Vec<Mount>>;
    /// The mounts of an existing snapshot.
    fn mounts(&self, key: &str) -> Result<Vec<Mount>>;
    /// The overlay-style directory of `key`'s changes (for `diff` and `commit`). Must be
    /// called with the snapshot unmounted or quiescent for the copy snapshotter.
    fn upper_dir(&self, key: &str) -> Result<PathBuf>;
    /// Bytes and inodes of `key`'s changes.
    fn usage(&self, key: &str) -> Result<Usage>;
    /// Deletes `key` and everything it owns. The caller unmounts it first.
    fn remove(&self, key: &str) -> Result<()>;
    /// Keys of all snapshots, sorted.
    fn list(&self) -> Result<Vec<String>>;
    /// The snapshot's kind and lower directories.
    fn info(&self, key: &str) -> Result<(Kind, Vec<PathBuf>)>;
}

/// Which snapshotter [`open`] gives.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Choice {
    /// overlayfs where it can be mounted, else (in a user namespace) `fuse-overlayfs` when
    /// it is installed and `/dev/fuse` can be opened, else the copy snapshotter.
    #[default]
    Auto,
    /// Always the overlayfs snapshotter.
    Overlay,
    /// Always the overlay layout mounted by the `fuse-overlayfs` program.
    FuseOverlay,
    /// Always the copy snapshotter.
    Copy,
}

impl std::str::FromStr for Choice {
    type Err = Error;

    /// `overlayfs` (or `overlay`), `fuse-overlayfs`, `copy`, or `auto` / the empty string.
    fn from_str(s: &str) -> Result<Choice> {
        match s {
            "" | "auto" => Ok(Choice::Auto),
            "overlay" | "overlayfs" => Ok(Choice::Overlay),
            "fuse-overlayfs" => Ok(Choice::FuseOverlay),
            "copy" => Ok(Choice::Copy),
            other => Err(Error::UnknownSnapshotter(other.to_string())),
        }
    }
}

/// Opens the snapshotter rooted at `root`: with [`Choice::Auto`], overlayfs when it can be
/// mounted here; otherwise, in a user namespace (rootless), `fuse-overlayfs` when it is
/// installed and `/dev/fuse` can be opened; otherwise the copy snapshotter. A fallback is said
/// once on stderr, with the reason.
///
/// Probing costs an overlay mount and unmount (a large part of a container start or an
/// unchanged rebuild), so once overlayfs has worked under `root`, or fuse-overlayfs was
/// chosen, the answer is kept in `root/driver` and later opens trust it (fuse-overlayfs while
/// it is still usable) without saying it again; the copy fallback is probed (and said) every
/// time.
pub fn open(root: &Path, choice: Choice) -> Result<Box<dyn Snapshotter>> {
    match choice {
        Choice::Copy => return Ok(Box::new(CopySnapshotter::new(root)?)),
        Choice::Overlay => return Ok(Box::new(OverlaySnapshotter::new(root)?)),
        Choice::FuseOverlay => {
            let program = fuse_overlayfs_program().ok_or_else(|| Error::Mount {
                kind: crate::mount::FUSE_OVERLAY.into(),
                target: root.to_path_buf(),
                reason: "fuse-overlayfs is not installed (Debian package fuse-overlayfs)".into(),
            })?;
            return Ok(Box::new(OverlaySnapshotter::fuse(root, program)?));
        }
        Choice::Auto => {}
    }
    let over = OverlaySnapshotter::new(root)?;
    let marker = root.join("driver");
    let remember = |driver: &str| {
        let tmp = root.join(format!("driver.{}", std::process::id()));
        if fs::write(&tmp, driver).is_ok() {
            let _ = fs::rename(&tmp, &marker);
        }
    };
    match fs::read_to_string(&marker).as_deref().map(str::trim) {
        Ok("overlayfs") => return Ok(Box::new(over)),
        // Chosen (and said) before, in this user namespace: kept while it can still be used.
        Ok(crate::mount::FUSE_OVERLAY) if crate::in_user_namespace() => {
            if let Ok(program) = fuse_usable() {
                return Ok(Box::new(OverlaySnapshotter::fuse(root, program)?));
            }
        }
        _ => {}
    }
    match overlay_usable(root) {
        Ok(()) => {
            remember("overlayfs");
            Ok(Box::new(over))
        }
        Err(reason) => {
            static SAID: AtomicBool = AtomicBool::new(false);
            let say = !SAID.swap(true, Ordering::Relaxed);
            let fuse = if crate::in_user_namespace() {
                fuse_usable()
            } else {
                Err("not rootless".to_string())
            };
            match fuse {
                Ok(program) => {
                    if say {
                        eprintln!(
                            "strata: overlayfs cannot be mounted in this user namespace ({reason}); using fuse-overlayfs"
                        );
                    }
                    remember(crate::mount::FUSE_OVERLAY);
                    Ok(Box::new(OverlaySnapshotter::fuse(root, program)?))
                }
                Err(why) => {
                    if say {
                        let fuse_note = if crate::in_user_namespace() {
                            format!(", nor fuse-overlayfs ({why})")
                        } else {
                            String::new()
                        };
                        eprintln!(
                            "strata: overlayfs cannot be used here ({reason}){fuse_note}; using the copy snapshotter, which copies image layers for every container"
                        );
                    }
                    Ok(Box::new(CopySnapshotter::new(root)?))
                }
            }
        }
    }
}

/// The `fuse-overlayfs` program in `$PATH` (or `/usr/bin`).
fn fuse_overlayfs_program() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin")])
        .map(|d| d.join(crate::mount::FUSE_OVERLAY))
        .find(|p| p.is_file())
}

/// The `fuse-overlayfs` program when it is installed and `/dev/fuse` opens, else why not.
fn fuse_usable() -> std::result::Result<PathBuf, String> {
    let program = fuse_overlayfs_program()
        .ok_or("not installed: Debian package fuse-overlayfs".to_string())?;
    fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/fuse")
        .map_err(|e| format!("/dev/fuse: {e}"))?;
    Ok(program)
}

/// Mounts a tiny overlay under `root` once per process to see whether overlayfs works here.
fn overlay_usable(root: &Path) -> std::result::Result<(), String> {
    static RESULT: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    RESULT
        .get_or_init(|| {
            let probe = root.join(format!("probe-{}", std::process::id()));
            let r = (|| -> Result<()> {
                for d in ["l1", "l2", "u", "w", "m"] {
                    fs::create_dir_all(probe.join(d)).ctx("mkdir", probe.join(d))?;
                }
                let m = overlay_mount(
                    &[probe.join("l1"), probe.join("l2")],
                    Some((&probe.join("u"), &probe.join("w"))),
                );
                mount::mount_all(&[m], &probe.join("m"))?;
                mount::unmount(&probe.join("m"))
            })();
            let _ = fs::remove_dir_all(&probe);
            r.map_err(|e| e.to_string())
        })
        .clone()
}

fn overlay_mount(lowers: &[PathBuf], upper_work: Option<(&Path, &Path)>) -> Mount {
    let mut options = vec!["index=off".to_string()];
    // In a user namespace (rootless) overlayfs keeps its markers in `user.overlay.*` xattrs
    // (`trusted.*` needs the initial namespace's CAP_SYS_ADMIN) and refuses `redirect_dir=off`,
    // which would follow redirects; `nofollow` neither makes nor follows them.
    let userns = crate::in_user_namespace();
    if userns {
        options.push("userxattr".into());
    }
    // Layers are read from upper directories as plain trees: renamed directories must be
    // copied up whole and files fully, never recorded as overlay redirects or metacopies.
    for feature in ["redirect_dir", "metacopy"] {
        if Path::new("/sys/module/overlay/parameters")
            .join(feature)
            .exists()
        {
            let off = if userns && feature == "redirect_dir" {
                "nofollow"
            } else {
                "off"
            };
            options.push(format!("{feature}={off}"));
        }
    }
    let list: Vec<String> = lowers.iter().map(|l| l.display().to_string()).collect();
    options.push(format!("lowerdir={}", list.join(":")));
    match upper_work {
        Some((u, w)) => {
            options.push(format!("upperdir={}", u.display()));
            options.push(format!("workdir={}", w.display()));
        }
        None => options.push("ro".into()),
    }
    Mount {
        kind: "overlay".into(),
        source: "overlay".into(),
        target: PathBuf::new(),
        options,
    }
}

fn bind_mount(source: &Path, readonly: bool) -> Mount {
    let mut options = vec!["rbind".to_string()];
    options.push(if readonly { "ro" } else { "rw" }.to_string());
    Mount {
        kind: "bind".into(),
        source: source.to_path_buf(),
        target: PathBuf::new(),
        options,
    }
}

/// The lower directories a mount needs for `lowers` (top first): each directory at its top
/// occurrence only.
///
/// One image can hold the same layer at two positions (`COPY f /` then `RUN chmod +x /f`, or
/// `touch`/`rm` repeated within one second), and overlayfs refuses a directory twice in one
/// stack (ELOOP). Leaving out the lower occurrences changes nothing: a lookup walks the stack
/// top down, and every name the layer holds (file, whiteout, opaque or merged directory) is
/// met at the top occurrence first, where it either ends the lookup or merges the very same
/// entries the lower occurrence would merge again. A name the layer does not hold is not
/// affected by it at any position.
pub fn effective_lowers(lowers: &[PathBuf]) -> Vec<PathBuf> {
    let mut seen = std::collections::HashSet::with_capacity(lowers.len());
    lowers
        .iter()
        .filter(|l| seen.insert(l.as_path()))
        .cloned()
        .collect()
}

fn check_key(key: &str) -> Result<()> {
    let ok = !key.is_empty()
        && key.len() <= 128
        && !key.starts_with('.')
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidKey(key.to_string()))
    }
}

fn check_lowers(lowers: &[PathBuf]) -> Result<()> {
    for l in lowers {
        let s = l.to_string_lossy();
        let reason = if !l.is_absolute() {
            Some("not an absolute path")
        } else if s.contains([':', ',', '\n']) || l.to_str().is_none() {
            Some("paths with ':', ',', newlines or invalid UTF-8 cannot be overlay lower directories")
        } else if !l.is_dir() {
            Some("not a directory")
        } else {
            None
        };
        if let Some(reason) = reason {
            return Err(Error::InvalidLower {
                path: l.clone(),
                reason: reason.into(),
            });
        }
    }
    Ok(())
}

/// State shared by both snapshotters: the root and the per-key metadata.
#[derive(Debug, Clone)]
struct State {
    root: PathBuf,
}

impl State {
    fn new(root: &Path) -> Result<Self> {
        let dir = root.join("snapshots");
        fs::create_dir_all(&dir).ctx("create snapshot directory", &dir)?;
        Ok(State {
            root: root.to_path_buf(),
        })
    }

    fn dir(&self, key: &str) -> Result<PathBuf> {
        check_key(key)?;
        Ok(self.root.join("snapshots").join(key))
    }

    /// Creates `key`'s directory (failing when it exists) and writes its metadata.
    /// Creates `key`'s directory and fills it with `fill`; a failure removes it again.
    fn create_with<T>(
        &self,
        key: &str,
        kind: Kind,
        lowers: &[PathBuf],
        fill: impl FnOnce(&Path) -> Result<T>,
    ) -> Result<T> {
        let dir = self.create(key, kind, lowers)?;
        let r = fill(&dir);
        if r.is_err() {
            let _ = fs::remove_dir_all(&dir);
        }
        r
    }

    fn create(&self, key: &str, kind: Kind, lowers: &[PathBuf]) -> Result<PathBuf> {
        let dir = self.dir(key)?;
        check_lowers(lowers)?;
        match fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(Error::AlreadyExists(key.to_string()))
            }
            Err(e) => return Err(e).ctx("create snapshot", &dir),
        }
        let mut meta = String::from(match kind {
            Kind::Active => "active\n",
            Kind::View => "view\n",
        });
        for l in lowers {
            meta.push_str(&l.to_string_lossy());
            meta.push('\n');
        }
        let tmp = dir.join("meta.tmp");
        fs::write(&tmp, meta).ctx("write", &tmp)?;
        fs::rename(&tmp, dir.join("meta")).ctx("rename", &tmp)?;
        Ok(dir)
    }

    fn info(&self, key: &str) -> Result<(Kind, Vec<PathBuf>)> {
        let dir = self.dir(key)?;
        let path = dir.join("meta");
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Error::NotFound(key.to_string()))
            }
            Err(e) => return Err(e).ctx("read", &path),
        };
        let mut lines = text.lines();
        let kind = match lines.next() {
            Some("active") => Kind::Active,
            Some("view") => Kind::View,
            other => {
                return Err(Error::Corrupt {
                    path,
                    reason: format!("unknown kind {other:?}"),
                })
            }
        };
        Ok((kind, lines.map(PathBuf::from).collect()))
    }

    fn remove(&self, key: &str) -> Result<()> {
        let dir = self.dir(key)?;
        if !dir.exists() {
            return Err(Error::NotFound(key.to_string()));
        }
        fs::remove_dir_all(&dir).ctx("remove snapshot", &dir)
    }

    fn list(&self) -> Result<Vec<String>> {
        let dir = self.root.join("snapshots");
        let mut keys = Vec::new();
        for e in fs::read_dir(&dir).ctx("read directory", &dir)? {
            let e = e.ctx("read directory", &dir)?;
            if e.path().join("meta").exists() {
                keys.push(e.file_name().to_string_lossy().into_owned());
            }
        }
        keys.sort();
        Ok(keys)
    }
}

/// Overlayfs snapshotter: prepare makes an empty upper and work directory, nothing else.
///
/// Made with [`OverlaySnapshotter::fuse`], the same directories are mounted by the
/// `fuse-overlayfs` program instead of the kernel, and [`Snapshotter::upper_dir`] rewrites
/// fuse-overlayfs's own opaque markers (a `.wh..wh..opq` file, `user.fuseoverlayfs.opaque`)
/// into overlayfs's.
#[derive(Debug, Clone)]
pub struct OverlaySnapshotter {
    state: State,
    /// The `fuse-overlayfs` program, when it mounts.
    fuse: Option<PathBuf>,
}

impl OverlaySnapshotter {
    /// A snapshotter keeping its state under `root` (created when missing).
    pub fn new(root: &Path) -> Result<Self> {
        Ok(OverlaySnapshotter {
            state: State::new(root)?,
            fuse: None,
        })
    }

    /// The same, its overlays mounted by `program` (`fuse-overlayfs`).
    pub fn fuse(root: &Path, program: PathBuf) -> Result<Self> {
        Ok(OverlaySnapshotter {
            state: State::new(root)?,
            fuse: Some(program),
        })
    }

    fn overlay(&self, lowers: &[PathBuf], upper_work: Option<(&Path, &Path)>) -> Mount {
        let Some(program) = &self.fuse else {
            return overlay_mount(lowers, upper_work);
        };
        let list: Vec<String> = lowers.iter().map(|l| l.display().to_string()).collect();
        let mut options = vec![format!("lowerdir={}", list.join(":"))];
        match upper_work {
            Some((u, w)) => {
                options.push(format!("upperdir={}", u.display()));
                options.push(format!("workdir={}", w.display()));
            }
            None => options.push("ro".into()),
        }
        Mount {
            kind: crate::mount::FUSE_OVERLAY.into(),
            source: program.clone(),
            target: PathBuf::new(),
            options,
        }
    }

    fn make(&self, key: &str, lowers: &[PathBuf], kind: Kind) -> Result<Vec<Mount>> {
        self.state.create_with(key, kind, lowers, |dir| {
            fs::create_dir(dir.join("fs")).ctx("mkdir", dir.join("fs"))?;
            if kind == Kind::Active && !lowers.is_empty() {
                fs::create_dir(dir.join("work")).ctx("mkdir", dir.join("work"))?;
            }
            self.mounts(key)
        })
    }
}

impl Snapshotter for OverlaySnapshotter {
    fn name(&self) -> &'static str {
        if self.fuse.is_some() {
            crate::mount::FUSE_OVERLAY
        } else {
            "overlayfs"
        }
    }

    fn prepare(&self, key: &str, lowers: &[PathBuf]) -> Result<Vec<Mount>> {
        self.make(key, lowers, Kind::Active)
    }

    fn view(&self, key: &str, lowers: &[PathBuf]) -> Result<Vec<Mount>> {
        self.make(key, lowers, Kind::View)
    }

    fn mounts(&self, key: &str) -> Result<Vec<Mount>> {
        let (kind, lowers) = self.state.info(key)?;
        let lowers = effective_lowers(&lowers);
        let dir = self.state.dir(key)?;
        let m = match (kind, lowers.len()) {
            (Kind::Active, 0) => bind_mount(&dir.join("fs"), false),
            (Kind::Active, _) => self.overlay(&lowers, Some((&dir.join("fs"), &dir.join("work")))),
            (Kind::View, 0) => bind_mount(&dir.join("fs"), true),
            (Kind::View, 1) => bind_mount(&lowers[0], true),
            (Kind::View, _) => self.overlay(&lowers, None),
        };
        Ok(vec![m])
    }

    fn upper_dir(&self, key: &str) -> Result<PathBuf> {
        let (_, lowers) = self.state.info(key)?;
        let upper = self.state.dir(key)?.join("fs");
        if self.fuse.is_some() {
            fsutil::normalize_fuse_upper(&upper, &effective_lowers(&lowers))?;
        }
        Ok(upper)
    }

    fn usage(&self, key: &str) -> Result<Usage> {
        let (size, inodes) = fsutil::usage(&self.upper_dir(key)?)?;
        Ok(Usage { size, inodes })
    }

    fn remove(&self, key: &str) -> Result<()> {
        self.state.remove(key)
    }

    fn list(&self) -> Result<Vec<String>> {
        self.state.list()
    }

    fn info(&self, key: &str) -> Result<(Kind, Vec<PathBuf>)> {
        self.state.info(key)
    }
}

/// Copy-based snapshotter: prepare copies the lowers (bottom first, applying whiteouts and
/// opaque directories) into a plain directory that is bind-mounted; `upper_dir` computes an
/// overlay-style diff against the lowers so the rest of the system sees the same shape.
///
/// One difference from overlayfs: a directory that lost every lower entry is reported opaque
/// even when it was emptied file by file rather than removed and made again (same contents
/// either way).
#[derive(Debug, Clone)]
pub struct CopySnapshotter {
    state: State,
}

impl CopySnapshotter {
    /// A snapshotter keeping its state under `root` (created when missing).
    pub fn new(root: &Path) -> Result<Self> {
        Ok(CopySnapshotter {
            state: State::new(root)?,
        })
    }

    fn make(&self, key: &str, lowers: &[PathBuf], kind: Kind) -> Result<Vec<Mount>> {
        self.state.create_with(key, kind, lowers, |dir| {
            let fsdir = dir.join("fs");
            fs::create_dir(&fsdir).ctx("mkdir", &fsdir)?;
            for l in effective_lowers(lowers).iter().rev() {
                fsutil::apply_layer(l, &fsdir)?;
            }
            self.mounts(key)
        })
    }
}

impl Snapshotter for CopySnapshotter {
    fn name(&self) -> &'static str {
        "copy"
    }

    fn prepare(&self, key: &str, lowers: &[PathBuf]) -> Result<Vec<Mount>> {
        self.make(key, lowers, Kind::Active)
    }

    fn view(&self, key: &str, lowers: &[PathBuf]) -> Result<Vec<Mount>> {
        self.make(key, lowers, Kind::View)
    }

    fn mounts(&self, key: &str) -> Result<Vec<Mount>> {
        let (kind, _) = self.state.info(key)?;
        let dir = self.state.dir(key)?;
        Ok(vec![bind_mount(&dir.join("fs"), kind == Kind::View)])
    }

    fn upper_dir(&self, key: &str) -> Result<PathBuf> {
        let (_, lowers) = self.state.info(key)?;
        let dir = self.state.dir(key)?;
        let out = dir.join("upper");
        fsutil::compute_upper(&dir.join("fs"), &effective_lowers(&lowers), &out)?;
        Ok(out)
    }

    fn usage(&self, key: &str) -> Result<Usage> {
        let (size, inodes) = fsutil::usage(&self.upper_dir(key)?)?;
        Ok(Usage { size, inodes })
    }

    fn remove(&self, key: &str) -> Result<()> {
        self.state.remove(key)
    }

    fn list(&self) -> Result<Vec<String>> {
        self.state.list()
    }

    fn info(&self, key: &str) -> Result<(Kind, Vec<PathBuf>)> {
        self.state.info(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_must_be_plain_names() {
        for bad in ["", "a/b", "..", ".hidden", "a b", &"x".repeat(129)] {
            assert!(
                matches!(check_key(bad), Err(Error::InvalidKey(_))),
                "{bad:?}"
            );
        }
        check_key("c0ffee-1.build_2").unwrap();
    }

    #[test]
    fn lowers_with_separators_are_rejected() {
        let t = tempfile::tempdir().unwrap();
        let bad = t.path().join("a:b");
        fs::create_dir(&bad).unwrap();
        assert!(matches!(
            check_lowers(&[bad]),
            Err(Error::InvalidLower { .. })
        ));
        assert!(matches!(
            check_lowers(&[PathBuf::from("relative")]),
            Err(Error::InvalidLower { .. })
        ));
        check_lowers(&[t.path().to_path_buf()]).unwrap();
    }

    #[test]
    fn metadata_round_trips_and_duplicates_fail() {
        let t = tempfile::tempdir().unwrap();
        let s = OverlaySnapshotter::new(t.path()).unwrap();
        let lower = t.path().join("l");
        fs::create_dir(&lower).unwrap();
        s.prepare("k", std::slice::from_ref(&lower)).unwrap();
        assert_eq!(s.info("k").unwrap(), (Kind::Active, vec![lower.clone()]));
        assert!(matches!(
            s.prepare("k", &[lower]),
            Err(Error::AlreadyExists(_))
        ));
        assert_eq!(s.list().unwrap(), vec!["k".to_string()]);
        s.remove("k").unwrap();
        assert!(matches!(s.mounts("k"), Err(Error::NotFound(_))));
    }
}
