//! `strata update [--memory] [--memory-swap] [--cpus] [--cpu-shares] [--cpuset-cpus]
//! [--pids-limit] [--restart] CONTAINER...`: new limits written to a running container's
//! cgroups and to its record (`inspect` shows them in `HostConfig`).

use std::path::Path;

use anyhow::Result;

use crate::cli::UpdateArgs;
use crate::Failure;

/// `--cpus` as Docker's `NanoCPUs` flag parses it: a decimal number of CPUs.
/// `--cpus` as Docker's `NanoCPUs` flag reads it (run, create and update).
pub(crate) fn parse_cpus(s: &str) -> Result<u64> {
    let bad = || {
        Failure::new(
            125,
            format!("invalid argument \"{s}\" for \"--cpus\" flag: failed to parse {s} as a rational number"),
        )
    };
    let v: f64 = s.trim().parse().map_err(|_| bad())?;
    if !v.is_finite() || v < 0.0 {
        return Err(bad().into());
    }
    Ok((v * 1e9).round() as u64)
}

pub fn run(root: &Path, a: UpdateArgs) -> Result<()> {
    let u = container::UpdateOptions {
        memory: a
            .memory
            .as_deref()
            .map(|m| super::run::parse_size("-m, --memory", m))
            .transpose()?,
        memory_swap: a
            .memory_swap
            .as_deref()
            .map(super::run::parse_swap)
            .transpose()?,
        nano_cpus: a.cpus.as_deref().map(parse_cpus).transpose()?,
        cpu_shares: a.cpu_shares.map(|c| c.max(0) as u64),
        cpuset_cpus: a.cpuset_cpus.clone(),
        pids_limit: a.pids_limit,
        restart: a.restart.clone(),
    };
    if u == container::UpdateOptions::default() {
        return Err(Failure::bare(
            1,
            "you must provide one or more flags when using this command",
        )
        .into());
    }
    let mut c = super::open_containers(root)?;
    super::pause::each_daemon(&a.containers, |n| c.update(n, &u).map(|_| ()))
}
