//! The build crate's error type.
//!
//! A `BuildError`'s `Display` is the whole message the user sees, in Docker's words (the
//! binary prints it as it is). Errors from the hooks the binary wires in ([`RunStep`],
//! [`Frontend`], [`Puller`], [`Fetcher`]) are kept as they came, in transparent variants:
//! their `Display` and `source()` are the hook error's own, so a reporter that prints the
//! chain does not print the hook's message twice.
//!
//! [`RunStep`]: crate::RunStep
//! [`Frontend`]: crate::Frontend
//! [`Puller`]: crate::Puller
//! [`Fetcher`]: crate::Fetcher

use std::path::PathBuf;

pub type Result<T, E = BuildError> = std::result::Result<T, E>;

/// What a hook the binary wires in returns when it fails; its `Display` is what the user
/// reads.
pub type HookError = Box<dyn std::error::Error + Send + Sync + 'static>;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A RUN step failed: Docker's words, and strata exits with the command's code.
    #[error("The command '{command}' returned a non-zero code: {code}")]
    RunFailed { command: String, code: i32 },
    #[error("{msg}")]
    Step { line: usize, msg: String },
    /// The stage stopped because another stage of the build failed.
    #[error("cancelled: another stage of the build failed")]
    Cancelled,
    /// A RUN step's process could not be started or waited for ([`crate::RunStep`]).
    #[error(transparent)]
    Run(HookError),
    /// `FROM` of an image the store lacks: the pull failed ([`crate::Puller`]).
    #[error(transparent)]
    Pull(HookError),
    /// `ADD URL`: the download failed ([`crate::Fetcher`]).
    #[error(transparent)]
    Fetch(HookError),
    /// Word expansion or an ONBUILD trigger failed ([`crate::Frontend`]).
    #[error(transparent)]
    Frontend(HookError),
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
