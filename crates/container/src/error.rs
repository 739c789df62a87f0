//! The container crate's error type; messages are Docker's where Docker has one.

use std::path::PathBuf;

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Errors of container commands.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] store::Error),
    #[error(transparent)]
    Image(#[from] image::Error),
    #[error(transparent)]
    Snapshot(#[from] snapshot::Error),
    #[error(transparent)]
    Layer(#[from] layer::LayerError),
    /// Composing or running the process failed (carries Docker's 125/126/127).
    #[error(transparent)]
    Runtime(#[from] runtime::Error),
    #[error("Invalid container name ({0}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")]
    InvalidName(String),
    #[error("{0}")]
    Invalid(String),
    #[error("You cannot remove a running container {0}. Stop the container before attempting removal or force remove")]
    Running(String),
    #[error("Container {0} is not running")]
    NotRunning(String),
    #[error("Container {0} is already paused")]
    AlreadyPaused(String),
    #[error("Container {0} is not paused")]
    NotPaused(String),
    #[error("Container {0} is paused, unpause the container before exec")]
    PausedExec(String),
    /// `docker update` refused (Docker's `Cannot update container ID: …`).
    #[error("Cannot update container {id}: {reason}")]
    Update { id: String, reason: String },
    #[error("container {0} is already running")]
    AlreadyRunning(String),
    #[error("corrupt container record {id}: {reason}")]
    Corrupt { id: String, reason: String },
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// Whether Docker's daemon finds this only when it starts the container (an unknown
    /// user or group, a network that does not exist, the process itself), rather than when
    /// it creates it: `docker run` prints no help line for these.
    pub fn at_start(&self) -> bool {
        match self {
            Error::Runtime(e) => matches!(
                e,
                runtime::Error::UnknownUser(_)
                    | runtime::Error::UnknownGroup(_)
                    | runtime::Error::Exec { .. }
                    | runtime::Error::Setup { .. }
            ),
            Error::Store(store::Error::NetworkNotFound(_)) => true,
            _ => false,
        }
    }

    /// Docker's exit code for `run` failing this way: the runtime's 126/127, else 125.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Runtime(e) => e.exit_code(),
            _ => 125,
        }
    }
}
