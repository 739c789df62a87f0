//! The image crate's error type. Messages follow Docker's words where Docker has them.

use std::path::PathBuf;

use oci::Digest;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] store::Error),
    #[error(transparent)]
    Layer(#[from] layer::LayerError),
    #[error("No such image: {0}")]
    NoSuchImage(String),
    /// A tagged name no image has (`save`'s words for it in Docker's daemon).
    #[error("reference does not exist")]
    NoSuchReference(String),
    /// A name that is not a reference; the text is the parser's, which starts with
    /// `invalid reference format`.
    #[error("{0}")]
    InvalidReference(String),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("invalid archive: {0}")]
    Archive(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}: {1}")]
    Read(String, #[source] std::io::Error),
    #[error("invalid image config {digest}: {source}")]
    Config {
        digest: Digest,
        #[source]
        source: serde_json::Error,
    },
    #[error("layer {index} of {image}: diff_id mismatch: the config names {expected}, the layer is {actual}")]
    DiffIdMismatch {
        image: String,
        index: usize,
        expected: Digest,
        actual: Digest,
    },
    /// Docker's words for a filter name it does not know, or a value it refuses.
    #[error("Invalid filter '{0}'")]
    InvalidFilter(String),
    /// A filter whose value cannot be used (a malformed `reference` pattern).
    #[error("{0}")]
    Filter(String),
    /// A `--change` Docker refuses, in the daemon's words (`foo is not a valid change command`).
    #[error("{reason}")]
    Change { change: String, reason: String },
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
