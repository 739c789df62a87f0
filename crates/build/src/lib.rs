//! `strata build`: Docker's classic builder on strata's store, snapshots and runtime.
//!
//! Each instruction is a step; every step's result is an image whose parent is the previous
//! step's, and a step is a cache hit when a child of its parent was made by the same
//! instruction with the same inputs (for COPY and ADD: the same file contents and modes,
//! never mtimes). This module is being built up; today it holds the build-context hashing
//! that cache keys of COPY and ADD rest on.

mod context;
mod copy;
mod engine;
mod error;
mod frontend;
mod glob;
mod gofmt;
mod steps;

pub use context::{Context, ContextError, Excluder, Source, SourceSet};
pub use copy::{parse_chown, resolve_in_root};
pub use engine::{
    cleanup_stale, BuildOptions, Builder, Frontend, HostMount, RunRequest, RunStep, DEFAULT_PATH,
};
pub use error::{BuildError, Result};
pub use frontend::{plan, DockerfileFrontend};
pub use glob::{glob_match, has_glob};
pub use steps::{CommandForm, Healthcheck, Op, Plan, RunMount, RunMountKind, Stage, Step};
