//! The layer crate's error type: every error names the entry or path it is about.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("tar entry {entry:?}: {reason}")]
    Entry { entry: String, reason: String },
    #[error("tar entry {entry:?}: {source}")]
    EntryIo {
        entry: String,
        #[source]
        source: std::io::Error,
    },
    #[error("truncated or corrupt layer: {0}")]
    Corrupt(#[source] std::io::Error),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn entry(entry: &str, reason: impl Into<String>) -> Self {
        Error::Entry {
            entry: entry.to_string(),
            reason: reason.into(),
        }
    }
    pub(crate) fn entry_io(entry: &str, source: impl Into<std::io::Error>) -> Self {
        Error::EntryIo {
            entry: entry.to_string(),
            source: source.into(),
        }
    }
    pub(crate) fn io(path: impl Into<PathBuf>, source: impl Into<std::io::Error>) -> Self {
        Error::Io {
            path: path.into(),
            source: source.into(),
        }
    }
}
