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
        if let Some(m) = res.memory {
            let dir = Path::new(ROOT).join("memory/strata").join(id);
            self.make(dir.clone(), JOIN_V1)?;
            write(&dir.join("memory.limit_in_bytes"), &m.to_string())?;
        }
        if let Some(n) = res.nano_cpus {
            let dir = Path::new(ROOT).join("cpu/strata").join(id);
            self.make(dir.clone(), JOIN_V1)?;
            write(&dir.join("cpu.cfs_period_us"), &CPU_PERIOD.to_string())?;
            let quota = (n as u128 * CPU_PERIOD as u128 / 1_000_000_000) as u64;
            write(&dir.join("cpu.cfs_quota_us"), &quota.max(1000).to_string())?;
        }
        if let Some(p) = res.pids_limit.filter(|p| *p > 0) {
            let dir = Path::new(ROOT).join("pids/strata").join(id);
            self.make(dir.clone(), JOIN_V1)?;
            write(&dir.join("pids.max"), &p.to_string())?;
        }
        Ok(())
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
        if res.memory.is_some() {
            ctrls.push("+memory");
        }
        if res.nano_cpus.is_some() {
            ctrls.push("+cpu");
        }
        if res.pids_limit.is_some() {
            ctrls.push("+pids");
        }
        for c in &ctrls {
            write(&Path::new(ROOT).join("cgroup.subtree_control"), c)?;
            write(&parent.join("cgroup.subtree_control"), c)?;
        }
        let dir = parent.join(id);
        self.make(dir.clone(), JOIN_V2)?;
        if let Some(m) = res.memory {
            write(&dir.join("memory.max"), &m.to_string())?;
        }
        if let Some(n) = res.nano_cpus {
            let quota = (n as u128 * CPU_PERIOD as u128 / 1_000_000_000) as u64;
            write(
                &dir.join("cpu.max"),
                &format!("{} {CPU_PERIOD}", quota.max(1000)),
            )?;
        }
        if let Some(p) = res.pids_limit.filter(|p| *p > 0) {
            write(&dir.join("pids.max"), &p.to_string())?;
        }
        Ok(())
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
    for parent in [
        "memory/strata",
        "cpu/strata",
        "pids/strata",
        "devices/strata",
        "strata",
    ] {
        let Ok(rd) = fs::read_dir(Path::new(ROOT).join(parent)) else {
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
    for d in [
        Path::new(ROOT).join("memory/strata").join(id),
        Path::new(ROOT).join("cpu/strata").join(id),
        Path::new(ROOT).join("pids/strata").join(id),
        Path::new(ROOT).join("devices/strata").join(id),
        Path::new(ROOT).join("strata").join(id),
    ] {
        if d.exists() {
            remove_dir(&d);
        }
    }
}
