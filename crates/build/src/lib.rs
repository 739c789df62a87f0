//! `strata build`: Docker's classic builder on strata's store, snapshots and runtime.
//!
//! Each instruction is a step; every step's result is an image whose parent is the previous
//! step's, and a step is a cache hit when a child of its parent was made by the same
//! instruction with the same inputs (for COPY and ADD: the same file contents and modes,
//! never mtimes). The context is read in place ([`Context`]), its file hashes kept across
//! builds ([`HashCache`]), the Dockerfile comes in through the [`Frontend`] trait and RUN
//! steps go out through [`RunStep`].

mod context;
mod copy;
mod engine;
mod epoch;
mod error;
mod files;
mod frontend;
mod gofmt;
mod hashcache;
mod pool;
mod steps;

pub use context::{Context, ContextError, Excluder, Listing, Source, SourceSet};
pub use copy::{parse_chown, resolve_in_root, ChownError};
pub use engine::{
    cleanup_stale, BuildOptions, Builder, Downloaded, Fetcher, Frontend, HostMount, Progress,
    RunRequest, RunStep, Squash, StepOutput, CLASSIC_PROXY_ARGS, MISS_PREFIX,
};
pub use error::{BuildError, HookError, Result};
pub use frontend::{plan, DockerfileFrontend, FrontendError};
pub use hashcache::HashCache;
pub use oci::{glob_match, has_glob};
pub use steps::{
    CommandForm, Healthcheck, Op, Plan, RunFlags, RunMount, RunMountKind, RunNetwork, Stage, Step,
};
