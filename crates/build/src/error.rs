//! The build crate's error type.

use std::path::PathBuf;

pub type Result<T, E = BuildError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A RUN step failed: Docker's words, and strata exits with the command's code.
    #[error("The command '{command}' returned a non-zero code: {code}")]
    RunFailed { command: String, code: i32 },
    #[error("{msg}")]
    Step { line: usize, msg: String },
    #[error(transparent)]
    Context(#[from] crate::context::ContextError),
    #[error(transparent)]
    Store(#[from] store::Error),
    #[error(transparent)]
    Image(#[from] image::Error),
    #[error(transparent)]
    Layer(#[from] layer::LayerError),
    #[error(transparent)]
    Snapshot(#[from] snapshot::Error),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl BuildError {
    /// Adds the Dockerfile line to an error that lacks one.
    pub(crate) fn with_line(self, line: usize) -> Self {
        match self {
            BuildError::Step { line: 0, msg } => BuildError::Step { line, msg },
            e => e,
        }
    }

    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        BuildError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
