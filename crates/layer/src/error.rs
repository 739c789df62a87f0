//! The crate's one error type. Every variant names what it concerns: the tar entry being
//! applied, the file being archived, or the stream being read.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong reading, applying or writing a layer.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    /// The layer stream held no bytes at all.
    #[error("layer stream is empty")]
    Empty,
    /// The stream starts with the magic bytes of a compression this crate does not read.
    #[error("unsupported layer compression {0} (expected gzip, zstd or an uncompressed tar)")]
    UnsupportedCompression(&'static str),
    /// The compressed or tar stream could not be read (corrupt data, bad header, I/O).
    #[error("reading layer: {err}")]
    Read { err: io::Error },
    /// The archive ended before it was complete.
    #[error("layer archive is truncated: {0}")]
    Truncated(String),
    /// An entry is malformed or of a kind a layer may not hold.
    #[error("tar entry {entry:?}: {reason}")]
    BadEntry { entry: String, reason: String },
    /// An entry would create or change something outside the layer root.
    #[error("tar entry {entry:?} escapes the layer root: {reason}")]
    Escape { entry: String, reason: String },
    /// A filesystem operation for an entry failed.
    #[error("tar entry {entry:?}: {op}: {err}")]
    Apply {
        entry: String,
        op: &'static str,
        err: io::Error,
    },
    /// Rootless: an entry's owner has no ID in the user namespace.
    #[error("tar entry {entry:?} is owned by {uid}:{gid}, which the rootless user namespace does not map (only the user's own ID is mapped when /etc/subuid and /etc/subgid have no ranges for the user: add them, e.g. `usermod --add-subuids 100000-165535 --add-subgids 100000-165535 USER`, and install newuidmap/newgidmap, Debian's uidmap)")]
    Unmapped { entry: String, uid: u32, gid: u32 },
    /// The target or source directory itself is unusable.
    #[error("layer root {}: {err}", path.display())]
    Root { path: PathBuf, err: io::Error },
    /// Reading a file of the directory being archived failed.
    #[error("{}: {op}: {err}", path.display())]
    Source {
        path: PathBuf,
        op: &'static str,
        err: io::Error,
    },
    /// The directory being archived holds something a layer tar cannot express.
    #[error("{}: {reason}", path.display())]
    Unsupported { path: PathBuf, reason: String },
    /// A compression level the compression does not have.
    #[error("compression level {level} is not valid for {compression} ({range})")]
    InvalidLevel {
        compression: &'static str,
        level: i32,
        range: String,
    },
    /// The layer goes past a limit that guards against tar bombs (see [`crate::max_entries`]).
    #[error("layer refused: {0}")]
    Limit(String),
    /// The filesystem the layer is unpacked to is full (Go's words, as Docker says them).
    #[error("write {}: no space left on device", path.display())]
    NoSpace { path: PathBuf, err: io::Error },
    /// Writing the archive to its destination failed.
    #[error("writing layer: {err}")]
    Write { err: io::Error },
}

impl LayerError {
    /// This error as [`LayerError::NoSpace`] when its cause is a full disk (ENOSPC or
    /// EDQUOT) while writing under `root`, naming the entry's path there.
    pub(crate) fn or_no_space(self, root: &std::path::Path) -> LayerError {
        let full = |e: &io::Error| {
            e.raw_os_error().is_some_and(|n| {
                n == rustix::io::Errno::NOSPC.raw_os_error()
                    || n == rustix::io::Errno::DQUOT.raw_os_error()
            })
        };
        match self {
            LayerError::Apply { entry, err, .. } if full(&err) => LayerError::NoSpace {
                path: root.join(entry.trim_start_matches("./").trim_start_matches('/')),
                err,
            },
            LayerError::Read { err } | LayerError::Write { err } | LayerError::Root { err, .. }
                if full(&err) =>
            {
                LayerError::NoSpace {
                    path: root.to_path_buf(),
                    err,
                }
            }
            other => other,
        }
    }
}

/// `Result` with [`LayerError`].
pub type Result<T, E = LayerError> = std::result::Result<T, E>;
