//! The runtime crate's single error type. Messages follow Docker's wording where Docker has
//! one (exec failures, unknown users), and [`Error::exit_code`] gives Docker's exit code.

use std::io;
use std::path::PathBuf;

/// Errors of spec composition, user resolution and running containers.
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
    /// Neither the image nor the options give a command.
    #[error("No command specified")]
    NoCommand,
    /// `--cap-add`/`--cap-drop` named no capability (`field` is `CapAdd` or `CapDrop`,
    /// `name` is `CAP_`-prefixed and upper case, as Docker prints it).
    #[error("invalid {field}: unknown capability: {name:?}")]
    UnknownCapability { field: &'static str, name: String },
    /// An option Docker rejects, in Docker's words.
    #[error("{0}")]
    Invalid(String),
    /// An option has a value that cannot be used.
    #[error("invalid {what} {value:?}: {reason}")]
    InvalidOption {
        what: &'static str,
        value: String,
        reason: String,
    },
    /// The user is not in the image's /etc/passwd and is not numeric.
    #[error("unable to find user {0}: no matching entries in passwd file")]
    UnknownUser(String),
    /// The group is not in the image's /etc/group and is not numeric.
    #[error("unable to find group {0}: no matching entries in group file")]
    UnknownGroup(String),
    /// The command cannot be started: Docker's `OCI runtime create failed` message for
    /// containers, `OCI runtime exec failed` for `exec`; `detail` is runc's part, such as
    /// `exec: "foo": executable file not found in $PATH`.
    #[error("{}{detail}: unknown", phase.prefix())]
    Exec {
        phase: Phase,
        detail: String,
        code: i32,
    },
    /// Setting up the container (namespaces, mounts, credentials) failed.
    #[error("failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: error during container init: {step}: {source}: unknown")]
    Setup {
        step: String,
        #[source]
        source: io::Error,
    },
    /// A bind mount's source does not exist.
    #[error("invalid mount config for type \"bind\": bind source path does not exist: {0}")]
    BindSource(PathBuf),
    /// A mount target could not be resolved inside the root filesystem (too many symlinks, a
    /// file where a directory is needed, ...): runc's wording, with what went wrong.
    #[error("failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: error during container init: error mounting {source_path:?} to rootfs at {target:?}: {reason}: unknown")]
    MountTarget {
        source_path: String,
        target: String,
        reason: String,
    },
    /// `--init` was asked for but no init binary was given ([`crate::SpawnOptions::init_path`]).
    #[error("--init needs an init binary (Docker's docker-init) and none was found: \"init-path\" in the configuration file names no file, or it is unset and there is none of /usr/bin/tini-static, /usr/bin/docker-init, /usr/libexec/docker/docker-init (install Debian's tini package)")]
    NoInit,
    /// The container's first process is gone (or its PID now names another process).
    #[error("container process {pid} is gone")]
    ProcessGone { pid: i32 },
    /// The private network could not be set up (pasta failed, or is missing).
    #[error("network: {0}")]
    Network(String),
    /// The default network needs pasta and none was given.
    #[error("the default network needs pasta (Debian package passt), which was not found: install it, or use --network host or --network none")]
    PastaMissing,
    /// A seccomp profile cannot be used (Docker's words where it has them).
    #[error("{0}")]
    Seccomp(String),
    /// A `--device` or `--device-cgroup-rule` cannot be used (Docker's words).
    #[error("{0}")]
    Device(String),
    /// A cgroup could not be made or configured.
    #[error("cgroup {path}: {reason}")]
    Cgroup { path: PathBuf, reason: String },
}

/// Whether a start failure happened creating a container or running `exec` in one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// `run`/`start`.
    Create,
    /// `exec`.
    Exec,
}

impl Phase {
    fn prefix(self) -> &'static str {
        match self {
            Phase::Create => "failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: ",
            Phase::Exec => "OCI runtime exec failed: exec failed: unable to start container process: ",
        }
    }
}

impl Error {
    /// Docker's exit code for this failure: 127 when the command is not found, 126 when it
    /// cannot be invoked, 125 for everything else (strata itself failed).
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Exec { code, .. } => *code,
            // Docker's CLI exits with 127 when the daemon's error mentions a missing file.
            Error::Device(m) if m.ends_with("no such file or directory") => 127,
            _ => 125,
        }
    }
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

/// Go's wording of an errno, as runc prints it: "no such file or directory".
pub(crate) fn errno_text(errno: i32) -> String {
    io_text(&io::Error::from_raw_os_error(errno))
}

pub use oci::go_io_text as io_text;
