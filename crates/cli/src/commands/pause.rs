//! `strata pause` and `unpause`: the container's cgroup frozen and thawed, with Docker's
//! daemon errors (`Error response from daemon: Container X is not running`).

use std::path::Path;

use anyhow::Result;

use crate::cli::ContainersArgs;
use crate::Failure;

/// A daemon-side error as Docker's CLI prints it.
pub(crate) fn daemon_error(e: impl std::fmt::Display) -> String {
    format!("Error response from daemon: {e}")
}

/// Runs `f` on each name as Docker's CLI runs a daemon call per container: the name printed
/// on success, every error printed as the daemon's, exit 1 when any failed.
pub(crate) fn each_daemon(
    names: &[String],
    mut f: impl FnMut(&str) -> container::Result<()>,
) -> Result<()> {
    let mut errs = Vec::new();
    for n in names {
        match f(n) {
            Ok(()) => println!("{n}"),
            Err(e) => errs.push(daemon_error(e)),
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(Failure::bare(1, errs.join("\n")).into())
    }
}

pub fn pause(root: &Path, a: ContainersArgs) -> Result<()> {
    let c = super::open_containers(root)?;
    each_daemon(&a.containers, |n| c.pause(n).map(|_| ()))
}

pub fn unpause(root: &Path, a: ContainersArgs) -> Result<()> {
    let c = super::open_containers(root)?;
    each_daemon(&a.containers, |n| c.unpause(n).map(|_| ()))
}
