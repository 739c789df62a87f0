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

    /// A request that got no answer, in the words of Go's HTTP client as Docker prints
    /// them: `Get "http://127.0.0.1:9/v2/": dial tcp 127.0.0.1:9: connect: connection refused`.
    pub(crate) fn transport(method: &str, url: &str, e: &ureq::Error) -> Error {
        let mut m = method.chars();
        let go_method = m
            .next()
            .map(|c| c.to_string() + &m.as_str().to_ascii_lowercase())
            .unwrap_or_default();
        let (scheme, rest) = url.split_once("://").unwrap_or(("https", url));
        let authority = rest.split('/').next().unwrap_or(rest);
        let host = if authority
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        {
            authority.to_string()
        } else {
            format!("{authority}:{}", if scheme == "http" { 80 } else { 443 })
        };
        let message = match e {
            ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
                format!("dial tcp {host}: connect: connection refused")
            }
            ureq::Error::ConnectionFailed => {
                format!("dial tcp {host}: connect: connection refused")
            }
            ureq::Error::Io(io) => format!("dial tcp {host}: {}", oci::go_io_text(io)),
            other => other.to_string(),
        };
        Error::Http {
            url: format!("{go_method} \"{url}\""),
            message,
        }
    }

    pub(crate) fn io(path: impl std::fmt::Display, source: std::io::Error) -> Error {
        Error::Io {
            path: path.to_string(),
            source,
        }
    }
}
