//! cgroups: limits for `--memory`, `--cpus` and `--pids-limit` on cgroup v1 (one hierarchy per
//! controller, as on hybrid machines) and v2 (the unified hierarchy at /sys/fs/cgroup), and
//! the device rules of every container (Docker's default allow list, `--device`,
//! `--device-cgroup-rule`): the v1 `devices` controller, or on v2 an eBPF device program
//! (`devices_bpf.rs`) attached to the container's cgroup. Each container gets `strata/<id>` in every
//! hierarchy it needs; the child joins by writing `0` to pre-opened files ([`JOIN_V1`] or
//! [`JOIN_V2`]), and [`Cgroup::remove`] deletes the directories.

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};

use crate::devices::DeviceRule;
use crate::error::{Error, Result};
use crate::spec::Resources;

const ROOT: &str = "/sys/fs/cgroup";
/// CFS period used for `--cpus`, as Docker.
const CPU_PERIOD: u64 = 100_000;

/// The file of a v1 cgroup that a single-threaded process (the container's child before
/// exec, the exec helper) writes `0` into to join: `tasks` moves only the writing thread,
/// which the kernel does without taking the global threadgroup lock, whose write side waits
/// for an RCU grace period (5 to 9 ms here, every time, for `cgroup.procs`).
pub(crate) const JOIN_V1: &str = "tasks";
/// The same on the unified (v2) hierarchy, which has no `tasks`.
pub(crate) const JOIN_V2: &str = "cgroup.procs";

/// The cgroup directories of one container.
#[derive(Debug)]
pub struct Cgroup {
    dirs: Vec<PathBuf>,
    procs: Vec<File>,
}

fn err(path: &Path, reason: impl std::fmt::Display) -> Error {
    Error::Cgroup {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

fn write(path: &Path, value: &str) -> Result<()> {
    fs::write(path, value).map_err(|e| err(path, format!("writing {value:?}: {e}")))
}

/// Whether this machine uses the unified (v2) hierarchy at /sys/fs/cgroup.
pub fn is_v2() -> bool {
    Path::new(ROOT).join("cgroup.controllers").exists()
}

impl Cgroup {
    /// Creates the cgroups for container `id` with `res`'s limits and its device rules in
    /// order: a `devices` cgroup on v1, an eBPF device program on v2 (None when there is
    /// nothing to set).
    pub fn create(id: &str, res: &Resources, devices: &[DeviceRule]) -> Result<Option<Cgroup>> {
        let v2 = is_v2();
        if crate::rootless::active() {
            return rootless(res);
        }
        let want_devices = !devices.is_empty() && (v2 || Path::new(ROOT).join("devices").is_dir());
        if res.is_empty() && !want_devices {
            return Ok(None);
        }
        if id.is_empty()
            || !id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(err(Path::new(ROOT), format!("invalid container id {id:?}")));
        }
        let mut cg = Cgroup {
            dirs: Vec::new(),
            procs: Vec::new(),
        };
        let r = if v2 {
            cg.setup_v2(id, res)
                .and_then(|()| match (&cg.dirs.last(), want_devices) {
                    (Some(dir), true) => {
                        crate::devices_bpf::attach(dir, devices).map_err(|e| err(dir, e))
                    }
                    _ => Ok(()),
                })
        } else {
            cg.setup_v1(id, res).and_then(|()| {
                if want_devices {
                    cg.setup_devices(id, devices)
                } else {
                    Ok(())
                }
            })
        };
        match r {
            Ok(()) => Ok(Some(cg)),
            Err(e) => {
                cg.remove();
                Err(e)
            }
        }
    }

    fn make(&mut self, dir: PathBuf, join: &str) -> Result<()> {
        fs::create_dir_all(&dir).map_err(|e| err(&dir, e))?;
        let procs = dir.join(join);
        let f = OpenOptions::new()
            .write(true)
            .open(&procs)
            .map_err(|e| err(&procs, e))?;
        self.procs.push(f);
        self.dirs.push(dir);
        Ok(())
    }

    fn setup_v1(&mut self, id: &str, res: &Resources) -> Result<()> {
        let mut wanted: Vec<&str> = Vec::new();
        if res.accounting {
            wanted.extend(
                V1_CONTROLLERS
                    .iter()
                    .filter(|c| Path::new(ROOT).join(c).is_dir()),
            );
        } else {
            if res.memory.is_some() || res.memory_swap.is_some() {
                wanted.push("memory");
            }
            if res.nano_cpus.is_some() || res.cpu_shares.is_some() {
                wanted.push("cpu");
            }
            if res.cpuset_cpus.is_some() {
                wanted.push("cpuset");
            }
            if res.pids_limit.is_some_and(|p| p > 0) {
                wanted.push("pids");
            }
        }
        for ctrl in wanted {
            let dir = v1_dir(ctrl, id);
            if ctrl == "cpuset" {
                // A new cpuset cgroup has no CPUs and no memory nodes: nothing could join it
                // until they are copied from its parent.
                let parent = Path::new(ROOT).join("cpuset/strata");
                fs::create_dir_all(&parent).map_err(|e| err(&parent, e))?;
                inherit_cpuset(&parent)?;
                fs::create_dir_all(&dir).map_err(|e| err(&dir, e))?;
                inherit_cpuset(&dir)?;
            }
            self.make(dir, JOIN_V1)?;
        }
        apply_v1(id, res)
    }

    /// The v1 `devices` cgroup: rules written one per write, in order (`a` to `devices.deny`
    /// first clears the inherited allow-all).
    fn setup_devices(&mut self, id: &str, rules: &[DeviceRule]) -> Result<()> {
        use std::io::Write;
        let dir = Path::new(ROOT).join("devices/strata").join(id);
        self.make(dir.clone(), JOIN_V1)?;
        let open = |name: &str| {
            let p = dir.join(name);
            OpenOptions::new()
                .write(true)
                .open(&p)
                .map_err(|e| err(&p, e))
        };
        let (mut allow, mut deny) = (open("devices.allow")?, open("devices.deny")?);
        for r in rules {
            let line = r.v1_line();
            let (f, name) = if r.allow {
                (&mut allow, "devices.allow")
            } else {
                (&mut deny, "devices.deny")
            };
            f.write_all(line.as_bytes())
                .map_err(|e| err(&dir.join(name), format!("writing {line:?}: {e}")))?;
        }
        Ok(())
    }

    fn setup_v2(&mut self, id: &str, res: &Resources) -> Result<()> {
        let parent = Path::new(ROOT).join("strata");
        fs::create_dir_all(&parent).map_err(|e| err(&parent, e))?;
        let mut ctrls = Vec::new();
        let available =
            fs::read_to_string(Path::new(ROOT).join("cgroup.controllers")).unwrap_or_default();
        let has = |c: &str| available.split_whitespace().any(|a| a == c);
        for (c, want) in [
            ("memory", res.memory.is_some() || res.memory_swap.is_some()),
            ("cpu", res.nano_cpus.is_some() || res.cpu_shares.is_some()),
            ("cpuset", res.cpuset_cpus.is_some()),
            ("pids", res.pids_limit.is_some()),
            ("io", false),
        ] {
            if want || (res.accounting && has(c)) {
                ctrls.push(format!("+{c}"));
            }
        }
        for c in &ctrls {
            write(&Path::new(ROOT).join("cgroup.subtree_control"), c)?;
            write(&parent.join("cgroup.subtree_control"), c)?;
        }
        let dir = parent.join(id);
        self.make(dir, JOIN_V2)?;
        apply_v2(id, res)
    }

    /// Raw descriptors of the files the child writes `0` into to join.
    pub(crate) fn procs_fds(&self) -> Vec<i32> {
        use std::os::fd::AsRawFd;
        self.procs.iter().map(|f| f.as_raw_fd()).collect()
    }

    /// The cgroup directories.
    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// Removes the directories (they must be empty of processes; retried briefly while the
    /// kernel finishes tearing down exited tasks).
    pub fn remove(&mut self) {
        self.procs.clear();
        for d in self.dirs.drain(..) {
            remove_dir(&d);
        }
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        self.remove();
    }
}

fn remove_dir(d: &Path) {
    for _ in 0..50 {
        match fs::remove_dir(d) {
            Ok(()) => return,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(10)),
        }
    }
}

/// Removes the cgroups of build steps and unnamed containers (`step-PID-N`, `build-PID-N`,
/// `anon-PID-N`) whose process PID is gone (killed before it could clean up). A cgroup that
/// still has processes cannot be removed, so a live one is never touched.
pub fn remove_orphans() {
    let parents = V1_CONTROLLERS
        .iter()
        .chain(["devices"].iter())
        .map(|c| Path::new(ROOT).join(c).join("strata"))
        .chain([Path::new(ROOT).join("strata")]);
    for parent in parents {
        let Ok(rd) = fs::read_dir(parent) else {
            continue;
        };
        for e in rd.flatten() {
            let name = e.file_name();
            let mut parts = name.to_str().unwrap_or("").split('-');
            let (Some(_), Some(pid), Some(_), None) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let Ok(pid) = pid.parse::<u32>() else {
                continue;
            };
            if e.path().is_dir() && !Path::new(&format!("/proc/{pid}")).exists() {
                let _ = fs::remove_dir(e.path());
            }
        }
    }
}

/// Removes container `id`'s cgroups if a crashed run left them behind.
pub fn remove_stale(id: &str) {
    if id.is_empty() || id.contains('/') || id.starts_with('.') {
        return;
    }
    for d in V1_CONTROLLERS
        .iter()
        .chain(["devices"].iter())
        .map(|c| v1_dir(c, id))
        .chain([v2_dir(id)])
    {
        if d.exists() {
            // A frozen cgroup keeps its dying processes: thaw it first.
            let _ = fs::write(d.join("freezer.state"), "THAWED");
            remove_dir(&d);
        }
    }
}

/// The v1 controllers a container gets besides `devices` (all of them with
/// [`Resources::accounting`], as Docker gives every container).
const V1_CONTROLLERS: [&str; 7] = [
    "memory", "cpu", "cpuacct", "cpuset", "pids", "blkio", "freezer",
];

/// Rootless: no devices cgroup (a user namespace cannot make device nodes, and the
/// container's `/dev` holds only nodes bound from the host, which the user may open anyway)
/// and no accounting cgroups (`stats` shows no figures); limits need cgroups the user may
/// write, which strata does not have here.
fn rootless(res: &Resources) -> Result<Option<Cgroup>> {
    let limits = Resources {
        accounting: false,
        ..res.clone()
    };
    if limits.is_empty() {
        return Ok(None);
    }
    let why = if is_v2() {
        "cgroup v2 has no subtree delegated to strata's user namespace"
    } else {
        "this machine uses cgroup v1, which cannot be delegated to an unprivileged user"
    };
    Err(err(
        Path::new(ROOT),
        format!(
            "rootless: resource limits (--memory, --cpus, --cpu-shares, --cpuset-cpus, --pids-limit) are not available: {why}; run without them, or as root"
        ),
    ))
}

fn v1_dir(ctrl: &str, id: &str) -> PathBuf {
    Path::new(ROOT).join(ctrl).join("strata").join(id)
}

fn v2_dir(id: &str) -> PathBuf {
    Path::new(ROOT).join("strata").join(id)
}

fn read_trim(path: &Path) -> Result<String> {
    fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .map_err(|e| err(path, e))
}

/// Copies `cpuset.cpus` and `cpuset.mems` from the parent where they are still empty.
fn inherit_cpuset(dir: &Path) -> Result<()> {
    let parent = dir.parent().unwrap_or(Path::new(ROOT));
    for f in ["cpuset.cpus", "cpuset.mems"] {
        if read_trim(&dir.join(f))?.is_empty() {
            write(&dir.join(f), &read_trim(&parent.join(f))?)?;
        }
    }
    Ok(())
}

/// `--cpus` as a CFS quota for [`CPU_PERIOD`].
fn quota(nano_cpus: u64) -> u64 {
    ((nano_cpus as u128 * CPU_PERIOD as u128 / 1_000_000_000) as u64).max(1000)
}

/// Writes the limits `res` sets into container `id`'s v1 cgroups (creation and `update`).
fn apply_v1(id: &str, res: &Resources) -> Result<()> {
    let mem = v1_dir("memory", id);
    let swap_file = mem.join("memory.memsw.limit_in_bytes");
    let swap = res.memory_swap.filter(|_| swap_file.exists()).map(|s| {
        if s < 0 {
            "-1".to_string()
        } else {
            s.to_string()
        }
    });
    match (res.memory, swap) {
        (Some(m), Some(s)) => {
            // memory.limit_in_bytes may never exceed memory.memsw.limit_in_bytes: raise the
            // latter first when the new memory limit is above it.
            let current: u64 = read_trim(&swap_file)?.parse().unwrap_or(u64::MAX);
            if m > current {
                write(&swap_file, &s)?;
                write(&mem.join("memory.limit_in_bytes"), &m.to_string())?;
            } else {
                write(&mem.join("memory.limit_in_bytes"), &m.to_string())?;
                write(&swap_file, &s)?;
            }
        }
        (Some(m), None) => write(&mem.join("memory.limit_in_bytes"), &m.to_string())?,
        (None, Some(s)) => write(&swap_file, &s)?,
        (None, None) => {}
    }
    let cpu = v1_dir("cpu", id);
    if let Some(n) = res.nano_cpus {
        write(&cpu.join("cpu.cfs_period_us"), &CPU_PERIOD.to_string())?;
        let q = if n == 0 {
            "-1".into()
        } else {
            quota(n).to_string()
        };
        write(&cpu.join("cpu.cfs_quota_us"), &q)?;
    }
    if let Some(s) = res.cpu_shares {
        // 0 means the default weight; the kernel raises values below 2 to 2.
        let s = if s == 0 { 1024 } else { s };
        write(&cpu.join("cpu.shares"), &s.to_string())?;
    }
    if let Some(c) = &res.cpuset_cpus {
        write(&v1_dir("cpuset", id).join("cpuset.cpus"), c)?;
    }
    if let Some(p) = res.pids_limit {
        let pids = v1_dir("pids", id);
        if p > 0 {
            write(&pids.join("pids.max"), &p.to_string())?;
        } else if pids.is_dir() {
            write(&pids.join("pids.max"), "max")?;
        }
    }
    Ok(())
}

/// Writes the limits `res` sets into container `id`'s v2 cgroup.
fn apply_v2(id: &str, res: &Resources) -> Result<()> {
    let dir = v2_dir(id);
    if let Some(m) = res.memory {
        write(&dir.join("memory.max"), &m.to_string())?;
    }
    if let Some(s) = res.memory_swap {
        let p = dir.join("memory.swap.max");
        if p.exists() {
            let v = match (s, res.memory) {
                (s, _) if s < 0 => "max".to_string(),
                (s, Some(m)) => (s as u64).saturating_sub(m).to_string(),
                (s, None) => s.to_string(),
            };
            write(&p, &v)?;
        }
    }
    if let Some(n) = res.nano_cpus {
        let q = if n == 0 {
            "max".into()
        } else {
            quota(n).to_string()
        };
        write(&dir.join("cpu.max"), &format!("{q} {CPU_PERIOD}"))?;
    }
    if let Some(s) = res.cpu_shares.filter(|s| *s > 0) {
        // runc's conversion of shares [2, 262144] to weights [1, 10000].
        let s = s.clamp(2, 262_144);
        let w = 1 + ((s - 2) * 9999) / 262_142;
        write(&dir.join("cpu.weight"), &w.to_string())?;
    }
    if let Some(c) = &res.cpuset_cpus {
        write(&dir.join("cpuset.cpus"), c)?;
    }
    if let Some(p) = res.pids_limit {
        let v = if p > 0 { p.to_string() } else { "max".into() };
        if p > 0 || dir.join("pids.max").exists() {
            write(&dir.join("pids.max"), &v)?;
        }
    }
    Ok(())
}

/// The cgroups of a running container, found by its ID: what `stats`, `pause`, `unpause`
/// and `update` work on.
#[derive(Debug, Clone)]
pub struct ContainerCgroup {
    id: String,
    v2: bool,
}

/// What `docker stats` shows of a container's cgroups at one instant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CgroupStats {
    /// CPU time used, nanoseconds.
    pub cpu_total_ns: u64,
    /// Bytes charged (v1 `memory.usage_in_bytes`, v2 `memory.current`).
    pub memory_usage: u64,
    /// The limit (a huge number when none is set).
    pub memory_limit: u64,
    /// `total_inactive_file` (v1) or `inactive_file` (v2), which Docker's CLI subtracts.
    pub memory_inactive_file: Option<u64>,
    /// Bytes read and written on block devices.
    pub block_read: u64,
    pub block_write: u64,
    /// Processes (and threads) in the cgroup.
    pub pids: u64,
}

impl ContainerCgroup {
    /// The cgroups of container `id` (None: it has none this process can use, e.g. a
    /// container started before containers got every controller).
    pub fn of(id: &str) -> Option<ContainerCgroup> {
        if id.is_empty() || id.contains('/') || id.starts_with('.') {
            return None;
        }
        let v2 = is_v2();
        let found = if v2 {
            v2_dir(id).is_dir()
        } else {
            v1_dir("memory", id).is_dir() || v1_dir("freezer", id).is_dir()
        };
        found.then(|| ContainerCgroup {
            id: id.to_string(),
            v2,
        })
    }

    /// Freezes every process (`docker pause`): v1 freezer, v2 `cgroup.freeze`. Returns once
    /// the kernel reports the cgroup frozen.
    pub fn freeze(&self) -> Result<()> {
        self.set_frozen(true)
    }

    /// Thaws the processes (`docker unpause`).
    pub fn thaw(&self) -> Result<()> {
        self.set_frozen(false)
    }

    fn set_frozen(&self, frozen: bool) -> Result<()> {
        let (file, value) = if self.v2 {
            (
                v2_dir(&self.id).join("cgroup.freeze"),
                if frozen { "1" } else { "0" },
            )
        } else {
            (
                v1_dir("freezer", &self.id).join("freezer.state"),
                if frozen { "FROZEN" } else { "THAWED" },
            )
        };
        for _ in 0..1000 {
            write(&file, value)?;
            if self.frozen()? == frozen {
                return Ok(());
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        Err(err(&file, format!("the kernel did not report {value}")))
    }

    /// Whether the cgroup is frozen (a freeze under way counts as frozen on v1).
    pub fn frozen(&self) -> Result<bool> {
        if self.v2 {
            let events = fs::read_to_string(v2_dir(&self.id).join("cgroup.events"))
                .map_err(|e| err(&v2_dir(&self.id), e))?;
            Ok(events.lines().any(|l| l.trim() == "frozen 1"))
        } else {
            let p = v1_dir("freezer", &self.id).join("freezer.state");
            if !p.exists() {
                return Ok(false);
            }
            Ok(read_trim(&p)? == "FROZEN")
        }
    }

    /// Writes new limits (`docker update`).
    pub fn update(&self, res: &Resources) -> Result<()> {
        if self.v2 {
            apply_v2(&self.id, res)
        } else {
            apply_v1(&self.id, res)
        }
    }

    /// Reads the counters `docker stats` shows.
    pub fn stats(&self) -> Result<CgroupStats> {
        let num = |p: PathBuf| -> u64 {
            fs::read_to_string(p)
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(0)
        };
        let keyed = |p: PathBuf| -> Vec<(String, u64)> {
            fs::read_to_string(p)
                .unwrap_or_default()
                .lines()
                .filter_map(|l| {
                    let (k, v) = l.split_once(' ')?;
                    Some((k.to_string(), v.trim().parse().ok()?))
                })
                .collect()
        };
        let mut s = CgroupStats::default();
        if self.v2 {
            let d = v2_dir(&self.id);
            let cpu = keyed(d.join("cpu.stat"));
            s.cpu_total_ns = cpu
                .iter()
                .find(|(k, _)| k == "usage_usec")
                .map_or(0, |(_, v)| v * 1000);
            s.memory_usage = num(d.join("memory.current"));
            s.memory_limit = num(d.join("memory.max"));
            if s.memory_limit == 0 {
                s.memory_limit = u64::MAX;
            }
            s.memory_inactive_file = keyed(d.join("memory.stat"))
                .into_iter()
                .find(|(k, _)| k == "inactive_file")
                .map(|(_, v)| v);
            for line in fs::read_to_string(d.join("io.stat"))
                .unwrap_or_default()
                .lines()
            {
                for f in line.split_whitespace().skip(1) {
                    match f.split_once('=') {
                        Some(("rbytes", v)) => s.block_read += v.parse::<u64>().unwrap_or(0),
                        Some(("wbytes", v)) => s.block_write += v.parse::<u64>().unwrap_or(0),
                        _ => {}
                    }
                }
            }
            s.pids = num(d.join("pids.current"));
        } else {
            s.cpu_total_ns = num(v1_dir("cpuacct", &self.id).join("cpuacct.usage"));
            let mem = v1_dir("memory", &self.id);
            s.memory_usage = num(mem.join("memory.usage_in_bytes"));
            s.memory_limit = num(mem.join("memory.limit_in_bytes"));
            s.memory_inactive_file = keyed(mem.join("memory.stat"))
                .into_iter()
                .find(|(k, _)| k == "total_inactive_file")
                .map(|(_, v)| v);
            let blkio = v1_dir("blkio", &self.id);
            let mut text = fs::read_to_string(blkio.join("blkio.io_service_bytes_recursive"))
                .unwrap_or_default();
            if text.lines().all(|l| l.starts_with("Total")) {
                text = fs::read_to_string(blkio.join("blkio.throttle.io_service_bytes_recursive"))
                    .unwrap_or_default();
            }
            for line in text.lines() {
                let f: Vec<&str> = line.split_whitespace().collect();
                if let [_, op, v] = f.as_slice() {
                    let v: u64 = v.parse().unwrap_or(0);
                    match op.to_ascii_lowercase().as_str() {
                        "read" => s.block_read += v,
                        "write" => s.block_write += v,
                        _ => {}
                    }
                }
            }
            s.pids = num(v1_dir("pids", &self.id).join("pids.current"));
        }
        Ok(s)
    }
}

/// The machine's CPU time since boot in nanoseconds (the `cpu` line of `/proc/stat`), and the
/// number of online CPUs: Docker's `system_cpu_usage` and `online_cpus`.
pub fn system_cpu() -> (u64, u32) {
    let text = fs::read_to_string("/proc/stat").unwrap_or_default();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    let mut total = 0;
    let mut cpus = 0;
    for line in text.lines() {
        let mut f = line.split_whitespace();
        match f.next() {
            Some("cpu") => {
                total = f.take(7).filter_map(|v| v.parse::<u64>().ok()).sum::<u64>() * 1_000_000_000
                    / hz
            }
            Some(c) if c.starts_with("cpu") => cpus += 1,
            _ => {}
        }
    }
    (total, cpus)
}
