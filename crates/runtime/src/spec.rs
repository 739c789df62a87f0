//! Pure composition of a container's process and environment from an image's config and
//! `docker run` options, exactly as Docker composes them. No I/O here: user names are resolved
//! later by [`crate::resolve_user`], which reads the root filesystem.

use std::path::PathBuf;

use crate::caps;
use crate::devices::{DeviceMapping, DeviceRule};
use crate::error::{Error, Result};
use crate::seccomp::Seccomp;

/// Docker's default `PATH` for Linux containers.
pub use oci::DEFAULT_PATH;

/// Docker's smallest `--memory`.
pub const MIN_MEMORY: u64 = 6 * 1024 * 1024;

/// Paths Docker masks in every unprivileged container (bind of /dev/null on files, an empty
/// read-only tmpfs on directories); missing ones are skipped.
pub const MASKED_PATHS: [&str; 11] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Paths Docker makes read-only in every unprivileged container.
pub const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// The parts of an image's config that decide how its containers run (Docker's
/// `config` object: `Env`, `Cmd`, `Entrypoint`, `WorkingDir`, `User`, `StopSignal`, ...).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageConfig {
    /// `Env`: `KEY=value` entries.
    pub env: Vec<String>,
    /// `Cmd` (shell forms are already `["/bin/sh", "-c", "..."]`).
    pub cmd: Option<Vec<String>>,
    /// `Entrypoint`.
    pub entrypoint: Option<Vec<String>>,
    /// `WorkingDir` (empty: `/`).
    pub working_dir: String,
    /// `User` (empty: root).
    pub user: String,
    /// `StopSignal` (None: SIGTERM).
    pub stop_signal: Option<String>,
    /// `Hostname` (usually empty).
    pub hostname: String,
}

/// Network mode: the host's network, a new namespace with only `lo`, or a private
/// namespace connected through pasta (Docker's default "bridge" mode, see `net.rs`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Network {
    /// Share the host's network namespace (`--network host`; the library's default, as it
    /// needs nothing else; the `strata` binary defaults to [`Network::Private`]).
    #[default]
    Host,
    /// A new network namespace with only the loopback interface, up.
    None,
    /// A new network namespace with `lo` and `eth0`, connected to the host's network by
    /// pasta (needs [`crate::SpawnOptions::pasta`]); ports published with
    /// [`RunOptions::ports`]. The host's own interfaces and loopback are out of reach.
    Private,
}

/// An extra mount in the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountKind {
    /// Bind-mount a host path (`-v SRC:DST[:ro]`, `--mount type=bind`).
    Bind { source: PathBuf },
    /// A fresh tmpfs (`--tmpfs PATH[:opts]`, `--mount type=tmpfs`); `options` are tmpfs data
    /// options such as `size=64m,mode=1777`.
    Tmpfs { options: String },
}

/// An extra mount at `destination` (absolute, inside the container).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountSpec {
    /// What to mount.
    pub kind: MountKind,
    /// Where, inside the container.
    pub destination: String,
    /// Read-only.
    pub readonly: bool,
}

/// cgroup limits (`--memory`, `--memory-swap`, `--cpus`, `--cpu-shares`, `--cpuset-cpus`,
/// `--pids-limit`), and whether the container gets every controller Docker gives one
/// (`accounting`: memory, cpu, cpuacct, cpuset, pids, blkio and freezer on v1; the same
/// controllers on v2) so that `stats`, `pause` and `update` can work on it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    /// Memory limit in bytes.
    pub memory: Option<u64>,
    /// Memory plus swap limit in bytes (-1: unlimited swap).
    pub memory_swap: Option<i64>,
    /// CPU limit in billionths of a CPU (`--cpus 1.5` is 1_500_000_000).
    pub nano_cpus: Option<u64>,
    /// Relative CPU weight (`--cpu-shares`, v1 `cpu.shares`; 1024 is the default).
    pub cpu_shares: Option<u64>,
    /// CPUs the container may run on (`--cpuset-cpus 0-1,3`).
    pub cpuset_cpus: Option<String>,
    /// Maximum number of processes (a value <= 0 means unlimited, as Docker).
    pub pids_limit: Option<i64>,
    /// Give the container every controller (containers, not build steps).
    pub accounting: bool,
}

impl Resources {
    /// Whether no limit is set and no controller is wanted.
    pub fn is_empty(&self) -> bool {
        self.memory.is_none()
            && self.memory_swap.is_none()
            && self.nano_cpus.is_none()
            && self.cpu_shares.is_none()
            && self.cpuset_cpus.is_none()
            && !matches!(self.pids_limit, Some(n) if n > 0)
            && !self.accounting
    }
}

/// `docker run` options that shape the container (the CLI parses flags into this).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOptions {
    /// Container ID (64 hex digits); the default hostname is its first 12 characters.
    pub id: String,
    /// `COMMAND [ARG...]` after the image name.
    pub args: Vec<String>,
    /// `--entrypoint` (`Some("")` clears the image's entrypoint).
    pub entrypoint: Option<String>,
    /// `-e`/`--env-file` entries, `KEY=value` (the CLI resolves bare `KEY` from its own
    /// environment and drops it when unset, as Docker's CLI does).
    pub env: Vec<String>,
    /// `-w`.
    pub workdir: Option<String>,
    /// `-u`.
    pub user: Option<String>,
    /// `-h`.
    pub hostname: Option<String>,
    /// The host's hostname, used as the container's with `--network host` and no `-h`.
    pub host_hostname: String,
    /// `--add-host NAME:IP` entries, as (name, address), for `/etc/hosts`.
    pub extra_hosts: Vec<(String, String)>,
    /// `--dns`, `--dns-search`, `--dns-option`: `/etc/resolv.conf` made of them (and of the
    /// host's for those not given), as Docker builds it.
    pub dns: crate::Dns,
    /// `--shm-size` in bytes (Docker's 64 MiB when `None`).
    pub shm_size: Option<u64>,
    /// `--ulimit`s.
    pub ulimits: Vec<Rlimit>,
    /// `--network`.
    pub network: Network,
    /// `-p`: ports published on the host (with [`Network::Private`] only; ignored
    /// otherwise, as Docker discards them with the host network).
    pub ports: Vec<crate::PortMapping>,
    /// `-v`, `--mount`, `--tmpfs`, in order.
    pub mounts: Vec<MountSpec>,
    /// `--read-only`.
    pub read_only: bool,
    /// `--cap-add`.
    pub cap_add: Vec<String>,
    /// `--cap-drop`.
    pub cap_drop: Vec<String>,
    /// `--privileged`.
    pub privileged: bool,
    /// `--security-opt systempaths=unconfined`: no masked or read-only paths under `/proc`
    /// and `/sys` (what a rootless strata or another runtime inside the container needs to
    /// mount a fresh `/proc`).
    pub unconfined_system_paths: bool,
    /// `--memory`, `--cpus`, `--pids-limit`.
    pub resources: Resources,
    /// `-t` (adds `TERM=xterm`).
    pub tty: bool,
    /// `--init`: a minimal init as PID 1 that forwards signals and reaps zombies.
    pub init: bool,
    /// `--stop-signal`.
    pub stop_signal: Option<String>,
    /// Set no_new_privs before exec: only with `--security-opt no-new-privileges`, as Docker
    /// (setuid programs in images work; the seccomp filter confines either way).
    pub no_new_privileges: bool,
    /// seccomp confinement (`--security-opt seccomp=...`; `--privileged` makes it unconfined).
    pub seccomp: Seccomp,
    /// `--device`.
    pub devices: Vec<DeviceMapping>,
    /// `--device-cgroup-rule`, as given (`c 1:3 mr`).
    pub device_cgroup_rules: Vec<String>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            id: String::new(),
            args: Vec::new(),
            entrypoint: None,
            env: Vec::new(),
            workdir: None,
            user: None,
            hostname: None,
            host_hostname: String::new(),
            extra_hosts: Vec::new(),
            dns: crate::Dns::default(),
            shm_size: None,
            ulimits: Vec::new(),
            network: Network::Host,
            ports: Vec::new(),
            mounts: Vec::new(),
            read_only: false,
            cap_add: Vec::new(),
            cap_drop: Vec::new(),
            privileged: false,
            unconfined_system_paths: false,
            resources: Resources::default(),
            tty: false,
            init: false,
            stop_signal: None,
            no_new_privileges: false,
            seccomp: Seccomp::Default,
            devices: Vec::new(),
            device_cgroup_rules: Vec::new(),
        }
    }
}

/// The process to run: what an OCI runtime spec's `process` holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    /// argv; `args[0]` is looked up in the container's `PATH` when it has no `/`.
    pub args: Vec<String>,
    /// `KEY=value` entries.
    pub env: Vec<String>,
    /// Working directory (absolute; created when missing).
    pub cwd: String,
    /// The user as given (`name|uid[:group|gid]`), resolved by [`crate::resolve_user`].
    pub user: String,
    /// Resolved user ID.
    pub uid: u32,
    /// Resolved group ID.
    pub gid: u32,
    /// Resolved supplementary groups.
    pub additional_gids: Vec<u32>,
    /// The user's home directory: `HOME` when `env` has none (as runc sets it).
    pub home: String,
    /// Capability mask (bit N is capability N) for bounding, effective and permitted sets.
    pub capabilities: u64,
    /// Set no_new_privs.
    pub no_new_privileges: bool,
    /// The seccomp filter, installed last before exec (or before dropping capabilities
    /// without no_new_privs, as runc does).
    pub seccomp: Seccomp,
    /// `--ulimit`s: (resource, soft, hard), set before the capabilities are dropped.
    pub rlimits: Vec<Rlimit>,
}

/// One `--ulimit NAME=SOFT[:HARD]`: Linux's resource number and its two limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rlimit {
    pub resource: u32,
    pub soft: u64,
    pub hard: u64,
}

impl Rlimit {
    /// Docker's `--ulimit` syntax: `NAME=SOFT[:HARD]` (`-1`: unlimited; one value: both),
    /// with Docker's names (`nofile`, `nproc`, `core`, `stack`, …).
    pub fn parse(spec: &str) -> std::result::Result<Rlimit, String> {
        let (name, values) = spec
            .split_once('=')
            .ok_or_else(|| format!("invalid ulimit argument: {spec}"))?;
        let resource = match name {
            "core" => libc::RLIMIT_CORE,
            "cpu" => libc::RLIMIT_CPU,
            "data" => libc::RLIMIT_DATA,
            "fsize" => libc::RLIMIT_FSIZE,
            "locks" => libc::RLIMIT_LOCKS,
            "memlock" => libc::RLIMIT_MEMLOCK,
            "msgqueue" => libc::RLIMIT_MSGQUEUE,
            "nice" => libc::RLIMIT_NICE,
            "nofile" => libc::RLIMIT_NOFILE,
            "nproc" => libc::RLIMIT_NPROC,
            "rss" => libc::RLIMIT_RSS,
            "rtprio" => libc::RLIMIT_RTPRIO,
            "rttime" => libc::RLIMIT_RTTIME,
            "sigpending" => libc::RLIMIT_SIGPENDING,
            "stack" => libc::RLIMIT_STACK,
            _ => return Err(format!("invalid ulimit type: {name}")),
        } as u32;
        let value = |v: &str| -> std::result::Result<u64, String> {
            match v.trim() {
                "-1" => Ok(u64::MAX),
                v => v
                    .parse::<u64>()
                    .map_err(|_| format!("invalid ulimit value: {v} (must be a number or -1)")),
            }
        };
        let (soft, hard) = match values.split_once(':') {
            Some((s, h)) => (value(s)?, value(h)?),
            None => (value(values)?, value(values)?),
        };
        if soft > hard {
            return Err(format!(
                "ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"
            ));
        }
        Ok(Rlimit {
            resource,
            soft,
            hard,
        })
    }
}

impl Process {
    /// `env`, plus `HOME` from the user when `env` does not set it: what the process gets.
    pub fn full_env(&self) -> Vec<String> {
        let mut env = self.env.clone();
        if self.env_value("HOME").is_none() {
            env.push(format!("HOME={}", self.home));
        }
        env
    }

    /// Sets the resolved user's IDs, groups and home directory.
    pub fn apply_user(&mut self, user: &crate::User) {
        self.uid = user.uid;
        self.gid = user.gid;
        self.additional_gids = user.additional_gids.clone();
        self.home = user.home.clone();
    }

    /// The value of environment variable `key`.
    pub fn env_value(&self, key: &str) -> Option<&str> {
        self.env
            .iter()
            .find_map(|e| e.split_once('=').filter(|(k, _)| *k == key).map(|(_, v)| v))
    }
}

/// Everything the runtime needs to start a container on a prepared root filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    /// The process.
    pub process: Process,
    /// Hostname (UTS namespace).
    pub hostname: String,
    /// Network mode.
    pub network: Network,
    /// Published ports (empty unless the network is [`Network::Private`]).
    pub ports: Vec<crate::PortMapping>,
    /// Extra mounts, in order.
    pub mounts: Vec<MountSpec>,
    /// Mount the root filesystem read-only.
    pub readonly_rootfs: bool,
    /// Paths hidden from the container.
    pub masked_paths: Vec<String>,
    /// Paths made read-only.
    pub readonly_paths: Vec<String>,
    /// cgroup limits.
    pub resources: Resources,
    /// `--privileged`: all capabilities, no masked or read-only paths, /sys writable.
    pub privileged: bool,
    /// Signal `stop` sends first (`SIGTERM` unless the image or options say otherwise).
    pub stop_signal: String,
    /// Run a minimal init as PID 1 (`--init`).
    pub init: bool,
    /// `--device` mappings.
    pub devices: Vec<DeviceMapping>,
    /// `--device-cgroup-rule`s.
    pub device_rules: Vec<DeviceRule>,
    /// `--add-host` entries (name, address), written to `/etc/hosts` after the standard ones.
    pub extra_hosts: Vec<(String, String)>,
    /// `--dns*` (see [`RunOptions::dns`]).
    pub dns: crate::Dns,
    /// The size of `/dev/shm` in bytes.
    pub shm_size: u64,
}

/// Docker's default size of `/dev/shm`: 64 MiB.
pub const DEFAULT_SHM_SIZE: u64 = 64 << 20;

/// Replaces the entry with the same key in `env`, or appends (Docker's
/// `ReplaceOrAppendEnvValues`).
fn replace_or_append(env: &mut Vec<String>, entry: &str) {
    let key = entry.split_once('=').map_or(entry, |(k, _)| k);
    match env
        .iter_mut()
        .find(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) == key)
    {
        Some(slot) => *slot = entry.to_string(),
        None => env.push(entry.to_string()),
    }
}

/// Composes the container's spec from the image config and run options, as Docker does:
/// arguments replace `Cmd`; `--entrypoint` replaces `Entrypoint` and drops the image's `Cmd`;
/// the environment is `PATH` (the image's or the default), `HOSTNAME`, `TERM` with `-t`, then
/// `-e` values and the image's other variables (`HOME` comes from the user, see
/// [`Spec::apply_user`]).
pub fn compose(image: &ImageConfig, opts: &RunOptions) -> Result<Spec> {
    let entrypoint: Vec<String> = match &opts.entrypoint {
        Some(e) if e.is_empty() => Vec::new(),
        Some(e) => vec![e.clone()],
        None => image.entrypoint.clone().unwrap_or_default(),
    };
    let cmd: Vec<String> = if !opts.args.is_empty() {
        opts.args.clone()
    } else if opts.entrypoint.is_some() {
        Vec::new()
    } else {
        image.cmd.clone().unwrap_or_default()
    };
    let args: Vec<String> = entrypoint.into_iter().chain(cmd).collect();
    if args.is_empty() {
        return Err(Error::NoCommand);
    }

    for e in &opts.env {
        if e.is_empty() || e.starts_with('=') {
            return Err(Error::InvalidOption {
                what: "environment variable",
                value: e.clone(),
                reason: "expected KEY=value".into(),
            });
        }
    }
    // Config.Env: the user's entries, then the image's whose keys the user did not set.
    let key = |e: &str| {
        e.split_once('=')
            .map_or(e.to_string(), |(k, _)| k.to_string())
    };
    let mut config_env: Vec<String> = opts.env.clone();
    for ie in &image.env {
        if !opts.env.iter().any(|ue| key(ue) == key(ie)) {
            config_env.push(ie.clone());
        }
    }

    let hostname = match (&opts.hostname, opts.network) {
        (Some(h), _) => h.clone(),
        (None, Network::Host) if !opts.host_hostname.is_empty() => opts.host_hostname.clone(),
        _ if !image.hostname.is_empty() => image.hostname.clone(),
        _ => opts.id.chars().take(12).collect(),
    };
    if hostname.is_empty() || hostname.len() > 64 || hostname.contains(['/', '\0', ' ']) {
        return Err(Error::InvalidOption {
            what: "hostname",
            value: hostname,
            reason: "expected 1 to 64 characters without '/' or spaces".into(),
        });
    }

    let mut env = vec![
        format!("PATH={DEFAULT_PATH}"),
        format!("HOSTNAME={hostname}"),
    ];
    if opts.tty {
        env.push("TERM=xterm".into());
    }
    for e in &config_env {
        replace_or_append(&mut env, e);
    }

    let cwd = match opts.workdir.as_deref().filter(|w| !w.is_empty()) {
        Some(w) => w.to_string(),
        None if !image.working_dir.is_empty() => image.working_dir.clone(),
        None => "/".to_string(),
    };
    if !cwd.starts_with('/') {
        return Err(Error::Invalid(format!(
            "the working directory '{cwd}' is invalid, it needs to be an absolute path"
        )));
    }
    if opts.resources.memory.is_some_and(|m| m < MIN_MEMORY) {
        return Err(Error::Invalid("Minimum memory limit allowed is 6MB".into()));
    }

    for m in &opts.mounts {
        if !m.destination.starts_with('/') || m.destination.split('/').any(|c| c == "..") {
            return Err(Error::InvalidOption {
                what: "mount destination",
                value: m.destination.clone(),
                reason: "must be an absolute path without '..'".into(),
            });
        }
    }

    let device_rules = opts
        .device_cgroup_rules
        .iter()
        .map(|r| DeviceRule::parse(r))
        .collect::<Result<Vec<_>>>()?;
    let capabilities = caps::effective_mask(opts.privileged, &opts.cap_add, &opts.cap_drop)?;
    let user = opts.user.clone().unwrap_or_else(|| image.user.clone());
    let (masked_paths, readonly_paths) = if opts.privileged || opts.unconfined_system_paths {
        (Vec::new(), Vec::new())
    } else {
        (
            MASKED_PATHS.iter().map(|s| s.to_string()).collect(),
            READONLY_PATHS.iter().map(|s| s.to_string()).collect(),
        )
    };
    Ok(Spec {
        process: Process {
            args,
            env,
            cwd,
            user,
            uid: 0,
            gid: 0,
            additional_gids: Vec::new(),
            home: "/".into(),
            capabilities,
            no_new_privileges: opts.no_new_privileges && !opts.privileged,
            seccomp: if opts.privileged {
                Seccomp::Unconfined
            } else {
                opts.seccomp.clone()
            },
            rlimits: opts.ulimits.clone(),
        },
        hostname,
        network: opts.network,
        ports: if opts.network == Network::Private {
            opts.ports.clone()
        } else {
            Vec::new()
        },
        mounts: opts.mounts.clone(),
        readonly_rootfs: opts.read_only,
        masked_paths,
        readonly_paths,
        resources: opts.resources.clone(),
        privileged: opts.privileged,
        stop_signal: opts
            .stop_signal
            .clone()
            .or_else(|| image.stop_signal.clone())
            .unwrap_or_else(|| "SIGTERM".into()),
        init: opts.init,
        devices: opts.devices.clone(),
        device_rules,
        extra_hosts: opts.extra_hosts.clone(),
        dns: opts.dns.clone(),
        shm_size: opts.shm_size.unwrap_or(DEFAULT_SHM_SIZE),
    })
}

impl Spec {
    /// Sets the resolved user's IDs, groups and home directory (see [`Process::apply_user`]).
    pub fn apply_user(&mut self, user: &crate::User) {
        self.process.apply_user(user);
    }

    /// The process `docker exec` runs in this container: `args`, the container's environment
    /// with `env` (`KEY=value`) replacing or adding entries, `workdir` or the container's,
    /// `user` (unresolved: call [`crate::resolve_user`] and [`Process::apply_user`]) or the
    /// container's, and the container's capabilities.
    pub fn exec_process(
        &self,
        args: Vec<String>,
        env: &[String],
        workdir: Option<String>,
        user: Option<String>,
    ) -> Result<Process> {
        if args.is_empty() {
            return Err(Error::Invalid("No exec command specified".into()));
        }
        let mut p = self.process.clone();
        p.args = args;
        for e in env {
            replace_or_append(&mut p.env, e);
        }
        if let Some(w) = workdir.filter(|w| !w.is_empty()) {
            if !w.starts_with('/') {
                // runc's check, as Docker's exec reports it.
                return Err(Error::Invalid(
                    "OCI runtime exec failed: exec failed: Cwd must be an absolute path: unknown"
                        .into(),
                ));
            }
            p.cwd = w;
        }
        if let Some(u) = user {
            p.user = u;
        }
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    fn image() -> ImageConfig {
        ImageConfig {
            env: s(&["PATH=/img/bin:/bin", "FOO=image", "KEEP=1"]),
            cmd: Some(s(&["/bin/sh", "-c", "echo hi"])),
            entrypoint: None,
            ..Default::default()
        }
    }

    fn opts() -> RunOptions {
        RunOptions {
            id: "0123456789abcdef0123".into(),
            network: Network::None,
            ..Default::default()
        }
    }

    #[test]
    fn args_replace_cmd_and_keep_entrypoint() {
        let mut img = image();
        img.entrypoint = Some(s(&["/entry", "-x"]));
        let mut o = opts();
        assert_eq!(
            compose(&img, &o).unwrap().process.args,
            s(&["/entry", "-x", "/bin/sh", "-c", "echo hi"])
        );
        o.args = s(&["a", "b"]);
        assert_eq!(
            compose(&img, &o).unwrap().process.args,
            s(&["/entry", "-x", "a", "b"])
        );
    }

    #[test]
    fn entrypoint_option_resets_cmd() {
        let mut o = opts();
        o.entrypoint = Some("/bin/echo".into());
        assert_eq!(
            compose(&image(), &o).unwrap().process.args,
            s(&["/bin/echo"])
        );
        o.args = s(&["x"]);
        assert_eq!(
            compose(&image(), &o).unwrap().process.args,
            s(&["/bin/echo", "x"])
        );
        o.entrypoint = Some(String::new());
        assert_eq!(compose(&image(), &o).unwrap().process.args, s(&["x"]));
        o.args.clear();
        assert!(matches!(compose(&image(), &o), Err(Error::NoCommand)));
        assert!(matches!(
            compose(&ImageConfig::default(), &opts()),
            Err(Error::NoCommand)
        ));
    }

    #[test]
    fn env_is_composed_as_docker_does() {
        let mut o = opts();
        o.env = s(&["BAR=2", "FOO=user"]);
        let sp = compose(&image(), &o).unwrap();
        assert_eq!(
            sp.process.env,
            s(&[
                "PATH=/img/bin:/bin",
                "HOSTNAME=0123456789ab",
                "BAR=2",
                "FOO=user",
                "KEEP=1"
            ])
        );
        let sp = compose(
            &ImageConfig {
                cmd: Some(s(&["x"])),
                ..Default::default()
            },
            &opts(),
        )
        .unwrap();
        assert_eq!(
            sp.process.env,
            s(&[&format!("PATH={DEFAULT_PATH}"), "HOSTNAME=0123456789ab"])
        );
        o.tty = true;
        o.env = s(&["TERM=dumb"]);
        let sp = compose(&image(), &o).unwrap();
        assert_eq!(sp.process.env_value("TERM"), Some("dumb"));
        o.env = s(&["=x"]);
        assert!(compose(&image(), &o).is_err());
    }

    #[test]
    fn home_comes_from_the_user_unless_set() {
        let mut sp = compose(&image(), &opts()).unwrap();
        let u = crate::User {
            uid: 7,
            gid: 8,
            additional_gids: vec![9],
            home: "/home/u".into(),
        };
        sp.apply_user(&u);
        assert_eq!(sp.process.full_env().last().unwrap(), "HOME=/home/u");
        assert!(sp.process.env_value("HOME").is_none());
        assert_eq!(
            (
                sp.process.uid,
                sp.process.gid,
                sp.process.additional_gids.clone()
            ),
            (7, 8, vec![9])
        );
        let mut o = opts();
        o.env = s(&["HOME=/mine"]);
        let mut sp = compose(&image(), &o).unwrap();
        sp.apply_user(&u);
        assert_eq!(
            sp.process
                .full_env()
                .iter()
                .filter(|e| e.starts_with("HOME="))
                .count(),
            1
        );
        assert_eq!(sp.process.env_value("HOME"), Some("/mine"));
    }

    #[test]
    fn workdir_user_hostname_and_signal_precedence() {
        let mut img = image();
        img.working_dir = "/srv".into();
        img.user = "nobody".into();
        img.stop_signal = Some("SIGQUIT".into());
        let mut o = opts();
        let sp = compose(&img, &o).unwrap();
        assert_eq!(
            (sp.process.cwd.as_str(), sp.process.user.as_str()),
            ("/srv", "nobody")
        );
        assert_eq!(sp.stop_signal, "SIGQUIT");
        assert_eq!(sp.hostname, "0123456789ab");
        o.workdir = Some("/w".into());
        o.user = Some("1:2".into());
        o.hostname = Some("box".into());
        o.stop_signal = Some("SIGUSR1".into());
        let sp = compose(&img, &o).unwrap();
        assert_eq!(
            (
                sp.process.cwd.as_str(),
                sp.process.user.as_str(),
                sp.hostname.as_str()
            ),
            ("/w", "1:2", "box")
        );
        assert_eq!(sp.stop_signal, "SIGUSR1");
        o.workdir = Some("rel".into());
        assert_eq!(
            compose(&img, &o).unwrap_err().to_string(),
            "the working directory 'rel' is invalid, it needs to be an absolute path"
        );
        o.workdir = None;
        o.resources.memory = Some(1 << 20);
        assert_eq!(
            compose(&img, &o).unwrap_err().to_string(),
            "Minimum memory limit allowed is 6MB"
        );
        let mut o = opts();
        o.network = Network::Host;
        o.host_hostname = "vm".into();
        assert_eq!(compose(&img, &o).unwrap().hostname, "vm");
    }

    #[test]
    fn exec_process_extends_the_containers() {
        let mut o = opts();
        o.env = s(&["A=1"]);
        let sp = compose(&image(), &o).unwrap();
        let p = sp
            .exec_process(
                s(&["ls"]),
                &s(&["A=2", "B=3"]),
                Some("/x".into()),
                Some("nobody".into()),
            )
            .unwrap();
        assert_eq!(p.args, s(&["ls"]));
        assert_eq!(p.env_value("A"), Some("2"));
        assert_eq!(p.env_value("B"), Some("3"));
        assert_eq!((p.cwd.as_str(), p.user.as_str()), ("/x", "nobody"));
        assert_eq!(p.capabilities, sp.process.capabilities);
        assert!(sp.exec_process(Vec::new(), &[], None, None).is_err());
    }

    #[test]
    fn privileged_has_no_masks_and_all_caps() {
        let mut o = opts();
        let sp = compose(&image(), &o).unwrap();
        assert_eq!(sp.process.capabilities, 0xa80425fb);
        assert!(sp.masked_paths.contains(&"/proc/kcore".to_string()));
        assert!(!sp.process.no_new_privileges, "Docker's default");
        o.no_new_privileges = true;
        assert!(compose(&image(), &o).unwrap().process.no_new_privileges);
        o.privileged = true;
        let sp = compose(&image(), &o).unwrap();
        assert!(sp.masked_paths.is_empty() && sp.readonly_paths.is_empty());
        assert_eq!(sp.process.capabilities.count_ones(), 41);
    }
}
