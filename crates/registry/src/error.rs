//! The registry crate's error type: every message names the registry, repository, digest or
//! file it is about.

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] store::Error),
    #[error(transparent)]
    Image(#[from] image::Error),
    #[error("{url}: {message}")]
    Http { url: String, message: String },
    #[error("{url}: unauthorized: authentication required")]
    Unauthorized { url: String },
    #[error("{url}: denied: requested access to the resource is denied")]
    Denied { url: String },
    #[error("{0}")]
    NotFound(String),
    #[error("{what}: digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: oci::Digest,
        actual: oci::Digest,
    },
    #[error("invalid manifest {what}: {message}")]
    Manifest { what: String, message: String },
    #[error("no matching manifest for {0} in the manifest list entries")]
    NoPlatform(String),
    #[error("credentials: {0}")]
    Credentials(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn http(url: &str, message: impl std::fmt::Display) -> Error {
        Error::Http {
            url: url.to_string(),
            message: message.to_string(),
        }
    }

    pub(crate) fn io(path: impl std::fmt::Display, source: std::io::Error) -> Error {
        Error::Io {
            path: path.to_string(),
            source,
        }
    }
}
