//! The crate's single error type: every failure names the Dockerfile line (where there is one)
//! and uses Docker's own wording.

/// Everything that can go wrong while parsing, lowering or expanding a Dockerfile, or while
/// parsing a `.dockerignore` file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A syntax or argument error on a Dockerfile line (1-based), worded as Docker words it.
    #[error("dockerfile parse error line {line}: {message}")]
    Parse {
        /// 1-based line where the instruction starts.
        line: usize,
        /// Docker's message, e.g. `unknown instruction: FROOM`.
        message: String,
    },
    /// Word expansion failed (bad substitution, `${VAR:?}` on an unset variable, ...).
    #[error("failed to process {quoted}: {message}", quoted = crate::util::go_quote(word))]
    Expand {
        /// The word being expanded.
        word: String,
        /// What went wrong.
        message: String,
    },
    /// A problem with the stages as a whole (unknown target, circular dependency, ...).
    #[error("{0}")]
    Stage(String),
    /// A value Docker rejects when it writes it into the image configuration (`Invalid
    /// proto: xyz`, `Invalid signal: FOO`), a malformed heredoc word, or a duration Go's
    /// `time.ParseDuration` refuses.
    #[error("{0}")]
    Value(String),
    /// A bad pattern in a `.dockerignore` file (1-based line).
    #[error("dockerignore line {line}: {message}")]
    Ignore {
        /// 1-based line of the pattern.
        line: usize,
        /// What is wrong with it.
        message: String,
    },
}

impl Error {
    /// The 1-based Dockerfile line the error points at, if it has one.
    pub fn line(&self) -> Option<usize> {
        match self {
            Error::Parse { line, .. } | Error::Ignore { line, .. } => Some(*line),
            _ => None,
        }
    }

    pub(crate) fn parse(line: usize, message: impl Into<String>) -> Self {
        Error::Parse {
            line,
            message: message.into(),
        }
    }

    /// Attach a Dockerfile line to an error raised without one, giving
    /// `dockerfile parse error line N: ...` (errors that have a line keep it).
    pub fn at_line(self, line: usize) -> Self {
        match self {
            Error::Parse { .. } | Error::Ignore { .. } => self,
            other => Error::Parse {
                line,
                message: other.to_string(),
            },
        }
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
