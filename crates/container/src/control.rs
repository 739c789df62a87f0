//! Working on a running container's cgroups: `pause`/`unpause` (the v1 freezer or v2
//! `cgroup.freeze`), `update` (new limits written to the cgroups and the record) and the
//! counters behind `stats`.

use store::ContainerRecord;

use crate::config::{self, CreateOptions};
use crate::error::{Error, Result};
use crate::lifecycle::{alive, Containers};

/// What `docker update` changes; None leaves a setting as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UpdateOptions {
    pub memory: Option<u64>,
    pub memory_swap: Option<i64>,
    pub nano_cpus: Option<u64>,
    pub cpu_shares: Option<u64>,
    pub cpuset_cpus: Option<String>,
    pub pids_limit: Option<i64>,
    pub restart: Option<String>,
}

/// One reading of a container's counters for `docker stats`.
#[derive(Debug, Clone, Default)]
pub struct StatsSample {
    pub id: String,
    pub name: String,
    /// False for a container that is not running (Docker shows zeros).
    pub running: bool,
    pub cgroup: runtime::CgroupStats,
    /// The machine's CPU time (ns) and online CPUs when read.
    pub system_cpu_ns: u64,
    pub online_cpus: u32,
    /// Bytes received and sent on the container's own network interfaces (not `lo`).
    pub net_rx: u64,
    pub net_tx: u64,
}

/// Sums the received and sent bytes of every interface but `lo` in a `/proc/net/dev` text.
fn net_totals(text: &str) -> (u64, u64) {
    let mut rx = 0;
    let mut tx = 0;
    for line in text.lines().skip(2) {
        let Some((name, rest)) = line.split_once(':') else {
            continue;
        };
        if name.trim() == "lo" {
            continue;
        }
        let f: Vec<u64> = rest
            .split_whitespace()
            .map(|v| v.parse().unwrap_or(0))
            .collect();
        if f.len() >= 9 {
            rx += f[0];
            tx += f[8];
        }
    }
    (rx, tx)
}

impl Containers {
    /// The cgroups of a running container (a container whose monitor is gone has none).
    fn running_cgroup(&self, rec: &ContainerRecord) -> Result<runtime::ContainerCgroup> {
        if rec.state.status != "running" || !alive(rec.state.pid) {
            return Err(Error::NotRunning(rec.id.clone()));
        }
        runtime::ContainerCgroup::of(&rec.id).ok_or_else(|| {
            if runtime::rootless::active() {
                return Error::Invalid(format!(
                    "container {}: rootless strata runs containers without cgroups here (no cgroup v2 subtree delegated to the user), so pause, unpause, update and stats are not available",
                    rec.id
                ));
            }
            Error::Invalid(format!(
                "container {} has no cgroups of its own (started by an older strata): restart it",
                rec.id
            ))
        })
    }

    /// Whether a running container is paused (its cgroup frozen).
    pub fn is_paused(&self, rec: &ContainerRecord) -> bool {
        rec.state.status == "running"
            && alive(rec.state.pid)
            && runtime::ContainerCgroup::of(&rec.id)
                .and_then(|c| c.frozen().ok())
                .unwrap_or(false)
    }

    /// `docker pause`: freezes every process of the container.
    pub fn pause(&self, name: &str) -> Result<ContainerRecord> {
        let rec = self.find(name)?;
        let cg = self.running_cgroup(&rec)?;
        if cg.frozen()? {
            return Err(Error::AlreadyPaused(rec.id));
        }
        cg.freeze()?;
        Ok(rec)
    }

    /// `docker unpause`.
    pub fn unpause(&self, name: &str) -> Result<ContainerRecord> {
        let rec = self.find(name)?;
        let cg = match self.running_cgroup(&rec) {
            Ok(c) => c,
            Err(Error::NotRunning(id)) => return Err(Error::NotPaused(id)),
            Err(e) => return Err(e),
        };
        if !cg.frozen()? {
            return Err(Error::NotPaused(rec.id));
        }
        cg.thaw()?;
        Ok(rec)
    }

    /// Thaws a paused container after a signal was sent to it, so that the signal is
    /// delivered (Docker resumes a paused container it kills or stops).
    pub(crate) fn thaw_after_signal(&self, rec: &ContainerRecord) {
        if let Some(cg) = runtime::ContainerCgroup::of(&rec.id) {
            if cg.frozen().unwrap_or(false) {
                let _ = cg.thaw();
            }
        }
    }

    /// `docker update`: checks the new settings as Docker's daemon does, writes them to the
    /// cgroups of a running container and records them (a stopped container gets them at
    /// its next start).
    pub fn update(&mut self, name: &str, u: &UpdateOptions) -> Result<ContainerRecord> {
        let rec = self.find(name)?;
        let mut stored = Self::stored(&rec)?;
        let cannot = |reason: String| Error::Update {
            id: rec.id.clone(),
            reason,
        };
        let old: CreateOptions = stored.options.clone();
        let mut o = old.clone();
        if let Some(m) = u.memory.filter(|m| *m > 0) {
            // A memory limit above the swap limit already set needs a new swap limit too.
            let swap = old.memory_swap.unwrap_or(0);
            if u.memory_swap.is_none() && (swap >= 0 && m as i64 > swap) {
                return Err(cannot(
                    "Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time".into(),
                ));
            }
            o.memory = Some(m);
        }
        if let Some(s) = u.memory_swap.filter(|s| *s != 0) {
            o.memory_swap = Some(s);
        }
        if let Some(n) = u.nano_cpus.filter(|n| *n > 0) {
            o.nano_cpus = Some(n);
        }
        if let Some(s) = u.cpu_shares.filter(|s| *s > 0) {
            o.cpu_shares = Some(s);
        }
        if let Some(c) = u.cpuset_cpus.as_ref().filter(|c| !c.is_empty()) {
            o.cpuset_cpus = Some(c.clone());
        }
        if let Some(p) = u.pids_limit {
            o.pids_limit = Some(p.max(0));
        }
        if let Some(r) = &u.restart {
            config::restart_policy(Some(r))?;
            if o.auto_remove && r != "no" {
                return Err(Error::Invalid(
                    "Restart policy cannot be updated because AutoRemove is enabled for the container".into(),
                ));
            }
            o.restart = Some(r.clone());
        }
        config::check_resources(&o)?;
        if rec.state.status == "running" && alive(rec.state.pid) {
            let cg = self.running_cgroup(&rec)?;
            let res = runtime::Resources {
                memory: u.memory.filter(|m| *m > 0).and(o.memory),
                memory_swap: u.memory_swap.filter(|s| *s != 0).or_else(|| {
                    // A new memory limit keeps the swap limit recorded.
                    u.memory.filter(|m| *m > 0).and(o.memory_swap)
                }),
                nano_cpus: u.nano_cpus.filter(|n| *n > 0),
                cpu_shares: u.cpu_shares.filter(|s| *s > 0),
                cpuset_cpus: u.cpuset_cpus.clone().filter(|c| !c.is_empty()),
                pids_limit: u.pids_limit,
                accounting: true,
            };
            cg.update(&res).map_err(|e| cannot(e.to_string()))?;
        }
        stored.options = o;
        let json = serde_json::to_string(&stored).map_err(|e| Error::Invalid(e.to_string()))?;
        self.store.set_container_config(&rec.id, &json)?;
        Ok(rec)
    }

    /// One reading of a container's counters (zeros when it is not running).
    pub fn stats_sample(&self, rec: &ContainerRecord) -> Result<StatsSample> {
        let (system_cpu_ns, online_cpus) = runtime::system_cpu();
        let mut s = StatsSample {
            id: rec.id.clone(),
            name: rec.name.clone(),
            system_cpu_ns,
            online_cpus,
            ..Default::default()
        };
        if rec.state.status != "running" || !alive(rec.state.pid) {
            return Ok(s);
        }
        s.running = true;
        if let Some(cg) = runtime::ContainerCgroup::of(&rec.id) {
            s.cgroup = cg.stats()?;
        }
        let stored = Self::stored(rec)?;
        if config::network_names(&stored.options).1 == "bridge" {
            let text = std::fs::read_to_string(format!("/proc/{}/net/dev", rec.state.pid))
                .unwrap_or_default();
            (s.net_rx, s.net_tx) = net_totals(&text);
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::net_totals;

    #[test]
    fn network_totals_leave_out_loopback() {
        let text = "Inter-|   Receive                                                |  Transmit\n \
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    \
 lo:     100       1    0    0    0     0          0         0      100       1    0    0    0     0       0          0\n  \
 eth0:    1500      10    0    0    0     0          0         0      700       5    0    0    0     0       0          0\n";
        assert_eq!(net_totals(text), (1500, 700));
    }
}
