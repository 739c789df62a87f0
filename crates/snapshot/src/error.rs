//! The snapshot crate's single error type: every variant names the path or key it is about.

use std::io;
use std::path::PathBuf;

/// Errors of snapshotters and of mounting.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A filesystem operation on `path` failed.
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A snapshot key is not a plain name.
    #[error("invalid snapshot key {0:?}: use letters, digits, '.', '_' and '-' only (at most 128 characters, not starting with '.')")]
    InvalidKey(String),
    /// A snapshotter name that is neither `overlayfs` nor `copy`.
    #[error("unknown snapshotter {0:?}: use overlayfs or copy")]
    UnknownSnapshotter(String),
    /// A snapshot with this key already exists.
    #[error("snapshot {0:?} already exists")]
    AlreadyExists(String),
    /// No snapshot with this key exists.
    #[error("snapshot {0:?} does not exist")]
    NotFound(String),
    /// The snapshot's metadata file is damaged.
    #[error("snapshot metadata {path} is corrupt: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    /// A lower directory cannot be used (missing, not a directory, or a path overlayfs cannot take).
    #[error("invalid lower directory {path}: {reason}")]
    InvalidLower { path: PathBuf, reason: String },
    /// A mount value cannot be mounted as asked.
    #[error("cannot mount {kind} at {target}: {reason}")]
    Mount {
        kind: String,
        target: PathBuf,
        reason: String,
    },
    /// Unmounting failed.
    #[error("cannot unmount {path}: {source}")]
    Unmount {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Adds a path and an operation name to an `io::Error`.
pub(crate) trait IoContext<T> {
    fn ctx(self, op: &'static str, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn ctx(self, op: &'static str, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|source| Error::Io {
            op,
            path: path.into(),
            source,
        })
    }
}
