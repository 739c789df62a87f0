//! What a container is made of: the `run`/`create` options as recorded, Docker's
//! `container.Config` derived from them and the image, IDs and generated names.

use std::io::Read;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// `docker create`/`run` options (what the CLI parsed), stored with the container.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CreateOptions {
    /// `--name` (generated when None).
    pub name: Option<String>,
    /// `COMMAND [ARG...]`.
    pub args: Vec<String>,
    /// `--entrypoint`.
    pub entrypoint: Option<String>,
    /// `-e`/`--env-file`, resolved to `KEY=value`.
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub hostname: Option<String>,
    /// `--network`: `default` (what `run` records without the flag, as Docker) or `bridge`
    /// (the private network), `host`, `none`; empty in records made before the private
    /// network existed, which meant the host's.
    pub network: String,
    /// `--network-alias` (for a user-defined `--network`).
    pub network_aliases: Vec<String>,
    /// `--ip` (for a user-defined `--network`).
    pub ip: Option<String>,
    /// The user-defined networks the container is on: `--network NAME` (resolved at create)
    /// and `network connect`, in the order they were attached.
    pub networks: Vec<crate::networks::Attachment>,
    /// `-p/--publish` specs, as given.
    pub publish: Vec<String>,
    /// `-P/--publish-all`.
    pub publish_all: bool,
    /// `--expose` specs, as given.
    pub expose: Vec<String>,
    /// `--add-host NAME:IP`, as given.
    pub extra_hosts: Vec<String>,
    /// `--shm-size` in bytes.
    pub shm_size: Option<u64>,
    /// `--ulimit NAME=SOFT[:HARD]`, as given.
    pub ulimits: Vec<String>,
    /// `--dns`, `--dns-search`, `--dns-option`.
    pub dns: Vec<String>,
    pub dns_search: Vec<String>,
    pub dns_options: Vec<String>,
    /// `-v SRC:DST[:ro]`.
    pub volumes: Vec<String>,
    /// `--tmpfs PATH[:OPTIONS]`.
    pub tmpfs: Vec<String>,
    /// `--mount type=bind|volume|tmpfs,…`, as given.
    pub mounts: Vec<String>,
    /// `--volumes-from CONTAINER[:ro|rw]`, as given.
    pub volumes_from: Vec<String>,
    pub read_only: bool,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub privileged: bool,
    pub memory: Option<u64>,
    /// `--memory-swap` (-1: unlimited); twice `memory` when only that is given, as Docker.
    #[serde(default)]
    pub memory_swap: Option<i64>,
    pub nano_cpus: Option<u64>,
    /// `--cpu-shares`.
    #[serde(default)]
    pub cpu_shares: Option<u64>,
    /// `--cpuset-cpus`.
    #[serde(default)]
    pub cpuset_cpus: Option<String>,
    pub pids_limit: Option<i64>,
    /// `--restart` (`no`, `always`, `unless-stopped`, `on-failure[:N]`), recorded for
    /// `inspect` and `update`.
    #[serde(default)]
    pub restart: Option<String>,
    /// `-i`.
    pub interactive: bool,
    /// The Engine API's `StdinOnce` (`docker run -i`): stdin closes when the first attached
    /// client closes its side, instead of staying open for the next `attach`.
    #[serde(default)]
    pub stdin_once: bool,
    /// `-t`.
    pub tty: bool,
    /// `--init` (None: not given, which `inspect` shows as null, as Docker).
    #[serde(default)]
    pub init: Option<bool>,
    pub stop_signal: Option<String>,
    /// Seconds `stop` waits before SIGKILL (default 10).
    pub stop_timeout: Option<u64>,
    /// `--rm`.
    pub auto_remove: bool,
    /// `--security-opt`, as Docker records them: a seccomp profile file is replaced by its
    /// compacted JSON (`seccomp={...}`, as Docker's CLI sends it), and a privileged container
    /// gets `label=disable`.
    pub security_opt: Vec<String>,
    /// `--device`.
    pub devices: Vec<DeviceMapping>,
    /// `--device-cgroup-rule`.
    pub device_cgroup_rules: Vec<String>,
    /// `--label K=V` (or `K`, an empty value), over the image's labels.
    pub labels: Vec<String>,
}

/// A `--device` as `HostConfig.Devices` shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeviceMapping {
    pub path_on_host: String,
    pub path_in_container: String,
    pub cgroup_permissions: String,
}

impl From<runtime::DeviceMapping> for DeviceMapping {
    fn from(d: runtime::DeviceMapping) -> Self {
        DeviceMapping {
            path_on_host: d.path_on_host,
            path_in_container: d.path_in_container,
            cgroup_permissions: d.cgroup_permissions,
        }
    }
}

/// Go's `strconv.ParseBool`.
fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// The daemon's reading of `--security-opt` (moby `parseSecurityOpt`): `no-new-privileges`
/// (optionally `=BOOL`), `seccomp=unconfined|PROFILE-JSON`, and `label`/`apparmor`, which
/// have no effect here. Returns no_new_privs when set, and the seccomp confinement.
pub(crate) fn security_options(opts: &[String]) -> Result<(Option<bool>, runtime::Seccomp)> {
    let mut nnp = None;
    let mut seccomp = runtime::Seccomp::Default;
    for opt in opts {
        if opt == "no-new-privileges" {
            nnp = Some(true);
            continue;
        }
        if opt == "disable" {
            continue;
        }
        let kv = opt.split_once('=').or_else(|| opt.split_once(':'));
        let Some((k, v)) = kv else {
            return Err(Error::Invalid(format!("invalid --security-opt 1: {opt:?}")));
        };
        match k {
            "label" | "apparmor" => {}
            // Read by `systempaths_unconfined`.
            "systempaths" if v == "unconfined" => {}
            "seccomp" if v == "unconfined" => seccomp = runtime::Seccomp::Unconfined,
            "seccomp" => seccomp = runtime::Seccomp::Profile(v.into()),
            "no-new-privileges" => {
                nnp =
                    Some(parse_bool(v).ok_or_else(|| {
                        Error::Invalid(format!("invalid --security-opt 2: {opt:?}"))
                    })?)
            }
            _ => return Err(Error::Invalid(format!("invalid --security-opt 2: {opt:?}"))),
        }
    }
    Ok((nnp, seccomp))
}

/// `--security-opt systempaths=unconfined` (Docker's): no masked or read-only paths.
pub(crate) fn systempaths_unconfined(opts: &[String]) -> bool {
    opts.iter()
        .any(|o| o == "systempaths=unconfined" || o == "systempaths:unconfined")
}

/// What is stored in the container record's config column.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Stored {
    pub options: CreateOptions,
    /// Docker's `Config` of the container.
    pub config: oci::ContainerConfig,
    /// `Path` and `Args` as Docker shows them.
    pub path: String,
    pub args: Vec<String>,
    /// The mount points worked out at create (volumes named, anonymous ones included);
    /// None in records made before volumes existed, whose mounts come from the options.
    #[serde(default)]
    pub mount_points: Option<Vec<crate::mounts::MountPoint>>,
}

/// A fresh container ID: 64 random hex digits (never all digits, as Docker).
pub fn new_id() -> String {
    loop {
        let mut b = [0u8; 32];
        let ok = std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut b))
            .is_ok();
        if !ok {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            let d = oci::Digest::of(format!("{t}-{}", std::process::id()).as_bytes());
            b = *d.as_bytes();
        }
        let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
        if !hex[..12].bytes().all(|c| c.is_ascii_digit()) {
            return hex;
        }
    }
}

const ADJECTIVES: &[&str] = &[
    "admiring",
    "agitated",
    "amazing",
    "bold",
    "brave",
    "busy",
    "clever",
    "cool",
    "dazzling",
    "eager",
    "ecstatic",
    "elegant",
    "epic",
    "focused",
    "friendly",
    "gallant",
    "happy",
    "jolly",
    "keen",
    "kind",
    "loving",
    "modest",
    "nice",
    "optimistic",
    "peaceful",
    "quirky",
    "relaxed",
    "serene",
    "sharp",
    "stoic",
    "tender",
    "vibrant",
    "wizardly",
    "youthful",
    "zealous",
];
const SURNAMES: &[&str] = &[
    "agnesi", "babbage", "bell", "curie", "darwin", "dijkstra", "einstein", "euler", "fermi",
    "feynman", "galileo", "gauss", "hopper", "hypatia", "kepler", "knuth", "lamarr", "lovelace",
    "maxwell", "meitner", "newton", "noether", "pascal", "ritchie", "shannon", "thompson",
    "turing", "wozniak", "yalow",
];

/// A Docker-style `adjective_surname` name, from the random ID's bytes; `n > 0` appends a
/// digit as Docker does on collisions.
pub fn generate_name(id: &str, n: usize) -> String {
    let v = u64::from_str_radix(&id[..12.min(id.len())], 16).unwrap_or(0);
    let a = ADJECTIVES[(v % ADJECTIVES.len() as u64) as usize];
    let s = SURNAMES[((v >> 20) % SURNAMES.len() as u64) as usize];
    if n == 0 {
        format!("{a}_{s}")
    } else {
        format!("{a}_{s}{n}")
    }
}

/// Checks a `--name` as Docker does: `[a-zA-Z0-9][a-zA-Z0-9_.-]+` (a leading `/` is dropped).
pub fn validate_name(name: &str) -> Result<String> {
    let n = name.strip_prefix('/').unwrap_or(name);
    let mut chars = n.chars();
    let ok = n.len() >= 2
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if ok {
        Ok(n.to_string())
    } else {
        Err(Error::InvalidName(name.to_string()))
    }
}

/// The runtime's view of an image config.
pub(crate) fn image_runtime_config(c: &oci::ImageConfig) -> runtime::ImageConfig {
    let cc = c.config.clone().unwrap_or_default();
    runtime::ImageConfig {
        env: cc.env.unwrap_or_default(),
        cmd: cc.cmd,
        entrypoint: cc.entrypoint,
        working_dir: cc.working_dir,
        user: cc.user,
        stop_signal: (!cc.stop_signal.is_empty()).then_some(cc.stop_signal),
        hostname: cc.hostname,
    }
}

/// The `--tmpfs PATH[:OPTS]` mounts.
pub(crate) fn tmpfs_mounts(o: &CreateOptions) -> Result<Vec<runtime::MountSpec>> {
    let mut out = Vec::new();
    for t in &o.tmpfs {
        let (dst, opts) = t.split_once(':').unwrap_or((t, ""));
        if !dst.starts_with('/') {
            return Err(Error::Invalid(format!(
                "invalid tmpfs destination {dst:?}: must be absolute"
            )));
        }
        out.push(runtime::MountSpec {
            kind: runtime::MountKind::Tmpfs {
                options: opts.to_string(),
            },
            destination: dst.to_string(),
            readonly: false,
        });
    }
    Ok(out)
}

/// The mount points of a record made before volumes existed: its `-v` binds and `--mount`s
/// as they were accepted then.
pub(crate) fn legacy_mount_points(o: &CreateOptions) -> Vec<crate::mounts::MountPoint> {
    crate::mounts::user_mounts(&o.volumes, &o.mounts).unwrap_or_default()
}

impl Stored {
    /// The container's mount points (those of an older record worked out from its flags).
    pub(crate) fn points(&self) -> Vec<crate::mounts::MountPoint> {
        self.mount_points
            .clone()
            .unwrap_or_else(|| legacy_mount_points(&self.options))
    }
}

/// The runtime options of a container; `mounts` are its mounts in order (see
/// `Containers::runtime_mounts`).
/// `--add-host NAME:IP` entries as (name, address), with Docker's errors; Docker's
/// `host-gateway` (the host's address on its bridge) has no meaning on strata's private
/// networks, which never reach the host, and is refused.
pub fn parse_extra_hosts(specs: &[String]) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for s in specs {
        let (name, ip) = s.split_once(':').unwrap_or((s.as_str(), ""));
        if name.is_empty() || ip.is_empty() {
            return Err(Error::Invalid(format!("bad format for add-host: {s:?}")));
        }
        if ip == "host-gateway" {
            return Err(Error::Invalid(format!(
                "{s}: host-gateway is not supported: strata's container networks do not reach the host"
            )));
        }
        let addr = ip.trim_start_matches('[').trim_end_matches(']');
        if addr.parse::<std::net::IpAddr>().is_err() {
            return Err(Error::Invalid(format!(
                "invalid IP address in add-host: {ip:?}"
            )));
        }
        out.push((name.to_string(), addr.to_string()));
    }
    Ok(out)
}

/// `--dns` values: IP addresses, with Docker's error otherwise.
pub fn check_dns_servers(servers: &[String]) -> Result<Vec<String>> {
    for s in servers {
        if s.parse::<std::net::IpAddr>().is_err() {
            return Err(Error::Invalid(format!("{s} is not an ip address")));
        }
    }
    Ok(servers.to_vec())
}

pub(crate) fn run_options(
    id: &str,
    o: &CreateOptions,
    mounts: Vec<runtime::MountSpec>,
) -> Result<runtime::RunOptions> {
    let network = network_mode(&o.network)?;
    let (nnp, seccomp) = security_options(&o.security_opt)?;
    Ok(runtime::RunOptions {
        id: id.to_string(),
        no_new_privileges: nnp.unwrap_or(runtime::RunOptions::default().no_new_privileges),
        unconfined_system_paths: systempaths_unconfined(&o.security_opt),
        seccomp,
        devices: o
            .devices
            .iter()
            .map(|d| runtime::DeviceMapping {
                path_on_host: d.path_on_host.clone(),
                path_in_container: d.path_in_container.clone(),
                cgroup_permissions: d.cgroup_permissions.clone(),
            })
            .collect(),
        device_cgroup_rules: o.device_cgroup_rules.clone(),
        args: o.args.clone(),
        entrypoint: o.entrypoint.clone(),
        env: o.env.clone(),
        workdir: o.workdir.clone(),
        user: o.user.clone(),
        hostname: o.hostname.clone(),
        host_hostname: host_hostname(),
        extra_hosts: parse_extra_hosts(&o.extra_hosts)?,
        shm_size: o.shm_size,
        ulimits: o
            .ulimits
            .iter()
            .map(|u| runtime::Rlimit::parse(u).map_err(Error::Invalid))
            .collect::<Result<_>>()?,
        dns: runtime::Dns {
            servers: check_dns_servers(&o.dns)?,
            search: o.dns_search.clone(),
            options: o.dns_options.clone(),
        },
        network,
        ports: Vec::new(),
        mounts,
        read_only: o.read_only,
        cap_add: o.cap_add.clone(),
        cap_drop: o.cap_drop.clone(),
        privileged: o.privileged,
        resources: resources(o),
        tty: o.tty,
        init: o.init.unwrap_or(false),
        stop_signal: o.stop_signal.clone(),
    })
}

/// The cgroup limits of a container's options; every container gets all controllers
/// (`stats`, `pause` and `update` need them).
pub(crate) fn resources(o: &CreateOptions) -> runtime::Resources {
    runtime::Resources {
        memory: o.memory,
        memory_swap: o.memory_swap,
        nano_cpus: o.nano_cpus,
        cpu_shares: o.cpu_shares,
        cpuset_cpus: o.cpuset_cpus.clone(),
        pids_limit: o.pids_limit,
        accounting: true,
    }
}

/// Docker's `RestartPolicy` of a `--restart` value: (name, maximum retry count), with the
/// CLI's and the daemon's errors.
pub fn restart_policy(v: Option<&str>) -> Result<(String, i64)> {
    let Some(v) = v.filter(|v| !v.is_empty()) else {
        return Ok(("no".into(), 0));
    };
    let parts: Vec<&str> = v.split(':').collect();
    if parts.len() > 2 {
        return Err(Error::Invalid("invalid restart policy format".into()));
    }
    let count: i64 = match parts.get(1) {
        Some(c) => c
            .parse()
            .map_err(|_| Error::Invalid("maximum retry count must be an integer".into()))?,
        None => 0,
    };
    let name = parts[0];
    match name {
        "no" | "always" | "unless-stopped" if count != 0 => Err(Error::Invalid(format!(
            "maximum retry count cannot be used with restart policy '{name}'"
        ))),
        "on-failure" if count < 0 => Err(Error::Invalid(
            "maximum retry count cannot be negative".into(),
        )),
        "no" | "always" | "unless-stopped" | "on-failure" => Ok((name.into(), count)),
        _ => Err(Error::Invalid(format!("invalid restart policy '{name}'"))),
    }
}

/// The daemon's checks of the memory and CPU flags (`run`, `create`, `update`): `memory`
/// at least 6 MB, `memory_swap` above it, `cpus` within the machine's, `cpuset_cpus` a
/// list of CPUs that exist.
pub fn check_resources(o: &CreateOptions) -> Result<()> {
    if o.memory.is_some_and(|m| m > 0 && m < 6 * 1024 * 1024) {
        return Err(Error::Invalid("Minimum memory limit allowed is 6MB".into()));
    }
    if let Some(s) = o.memory_swap.filter(|s| *s > 0) {
        match o.memory {
            Some(m) if m > 0 && (s as u64) < m => {
                return Err(Error::Invalid(
                    "Minimum memoryswap limit should be larger than memory limit, see usage".into(),
                ))
            }
            None | Some(0) => {
                return Err(Error::Invalid(
                    "You should always set the Memory limit when using Memoryswap limit, see usage"
                        .into(),
                ))
            }
            _ => {}
        }
    }
    let cpus = online_cpus();
    if let Some(n) = o.nano_cpus.filter(|n| *n > 0) {
        if n < 10_000_000 || n > cpus.len() as u64 * 1_000_000_000 {
            return Err(Error::Invalid(format!(
                "Range of CPUs is from 0.01 to {}.00, as there are only {} CPUs available",
                cpus.len(),
                cpus.len()
            )));
        }
    }
    if let Some(c) = &o.cpuset_cpus {
        let wanted = parse_cpu_list(c).ok_or_else(|| {
            Error::Invalid(format!(
                "Invalid value {c} for cpuset cpus: invalid format: {c}"
            ))
        })?;
        if let Some(bad) = wanted.iter().find(|w| !cpus.contains(w)) {
            let _ = bad;
            let available = std::fs::read_to_string("/sys/devices/system/cpu/online")
                .map(|s| s.trim().to_string())
                .unwrap_or_default();
            return Err(Error::Invalid(format!(
                "Requested CPUs are not available - requested {c}, available: {available}"
            )));
        }
    }
    Ok(())
}

/// A Linux CPU list (`0-2,4`), None when malformed.
fn parse_cpu_list(s: &str) -> Option<Vec<u32>> {
    let mut out = Vec::new();
    for part in s.trim().split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (u32, u32) = (a.parse().ok()?, b.parse().ok()?);
                if b < a {
                    return None;
                }
                out.extend(a..=b);
            }
            None => out.push(part.parse().ok()?),
        }
    }
    Some(out)
}

/// The CPUs online on this machine.
fn online_cpus() -> Vec<u32> {
    std::fs::read_to_string("/sys/devices/system/cpu/online")
        .ok()
        .and_then(|s| parse_cpu_list(&s))
        .unwrap_or_else(|| {
            (0..std::thread::available_parallelism().map_or(1, |n| n.get() as u32)).collect()
        })
}

/// The runtime's network for a `--network` value (Docker's names: `default`, `bridge`,
/// `host`, `none`, or a user-defined network, which is a private namespace too).
pub(crate) fn network_mode(name: &str) -> Result<runtime::Network> {
    Ok(match name {
        // Records made before the private network existed ran on the host's.
        "" | "host" => runtime::Network::Host,
        "none" => runtime::Network::None,
        _ => runtime::Network::Private,
    })
}

/// `HostConfig.NetworkMode` as Docker shows it, and the name of the network under
/// `NetworkSettings.Networks`.
pub(crate) fn network_names(o: &CreateOptions) -> (&str, &str) {
    match o.network.as_str() {
        "" | "host" => ("host", "host"),
        "none" => ("none", "none"),
        "bridge" => ("bridge", "bridge"),
        "default" => ("default", "bridge"),
        other => (other, other),
    }
}

fn host_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// Docker's `Config` of a new container: the image's, with the options applied.
pub(crate) fn container_config(
    id: &str,
    image_name: &str,
    img: &oci::ImageConfig,
    spec: &runtime::Spec,
    o: &CreateOptions,
) -> oci::ContainerConfig {
    let mut c = img.config.clone().unwrap_or_default();
    c.hostname = spec.hostname.clone();
    if c.hostname.is_empty() {
        c.hostname = id[..12].to_string();
    }
    if let Some(u) = &o.user {
        c.user = u.clone();
    }
    c.attach_stdin = o.interactive;
    c.attach_stdout = true;
    c.attach_stderr = true;
    c.tty = o.tty;
    c.open_stdin = o.interactive;
    c.stdin_once = o.interactive;
    let mut env = c.env.take().unwrap_or_default();
    for e in &o.env {
        let key = e.split_once('=').map_or(e.as_str(), |(k, _)| k);
        match env
            .iter_mut()
            .find(|x| x.split_once('=').map_or(x.as_str(), |(k, _)| k) == key)
        {
            Some(slot) => *slot = e.clone(),
            None => env.push(e.clone()),
        }
    }
    c.env = Some(env);
    if let Some(ep) = &o.entrypoint {
        c.entrypoint = if ep.is_empty() {
            None
        } else {
            Some(vec![ep.clone()])
        };
        c.cmd = None;
    }
    if !o.args.is_empty() {
        c.cmd = Some(o.args.clone());
    }
    c.image = image_name.to_string();
    if !o.labels.is_empty() {
        let labels = c.labels.get_or_insert_with(Default::default);
        for l in &o.labels {
            let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
            labels.insert(k.to_string(), v.to_string());
        }
    }
    if let Some(w) = &o.workdir {
        c.working_dir = w.clone();
    }
    if let Some(s) = &o.stop_signal {
        c.stop_signal = s.clone();
    }
    // `--expose` adds to the image's exposed ports.
    if let Ok(e) = crate::ports::parse_expose(&o.expose) {
        if !e.is_empty() {
            c.exposed_ports
                .get_or_insert_with(Default::default)
                .extend(e);
        }
    }
    // Published ports are exposed too (Docker's `ExposedPorts`).
    if let Ok(b) = crate::ports::parse_publish(&o.publish) {
        if !b.is_empty() {
            c.exposed_ports
                .get_or_insert_with(Default::default)
                .extend(b.into_keys());
        }
    }
    // `-v /path` makes an anonymous volume, listed with the image's.
    let anonymous = crate::mounts::anonymous_flags(&o.volumes);
    if !anonymous.is_empty() {
        c.volumes
            .get_or_insert_with(Default::default)
            .extend(anonymous);
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_docker_rules() {
        assert_eq!(validate_name("/web-1").unwrap(), "web-1");
        assert!(validate_name("-x").is_err());
        assert!(validate_name("a").is_err());
        assert!(validate_name("a b").is_err());
        let id = new_id();
        assert_eq!(id.len(), 64);
        let g = generate_name(&id, 0);
        assert!(validate_name(&g).is_ok());
        assert_eq!(generate_name(&id, 2), format!("{g}2"));
    }

    #[test]
    fn security_options_follow_the_daemon() {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let (nnp, sc) = security_options(&v(&["no-new-privileges", "seccomp=unconfined"])).unwrap();
        assert_eq!((nnp, sc), (Some(true), runtime::Seccomp::Unconfined));
        let (nnp, sc) =
            security_options(&v(&["no-new-privileges=false", "label=disable"])).unwrap();
        assert_eq!((nnp, sc), (Some(false), runtime::Seccomp::Default));
        let (_, sc) = security_options(&v(&["seccomp:{}"])).unwrap();
        assert_eq!(sc, runtime::Seccomp::Profile("{}".into()));
        assert_eq!(
            security_options(&v(&["foo=bar"])).unwrap_err().to_string(),
            "invalid --security-opt 2: \"foo=bar\""
        );
        assert_eq!(
            security_options(&v(&["no-new-privileges=maybe"]))
                .unwrap_err()
                .to_string(),
            "invalid --security-opt 2: \"no-new-privileges=maybe\""
        );
        assert!(security_options(&v(&["foo"])).is_err());
    }

    #[test]
    fn tmpfs_parse() {
        let o = CreateOptions {
            tmpfs: vec!["/t:size=1m".into()],
            ..Default::default()
        };
        let m = tmpfs_mounts(&o).unwrap();
        assert_eq!(m[0].destination, "/t");
        let bad = CreateOptions {
            tmpfs: vec!["t".into()],
            ..Default::default()
        };
        assert!(tmpfs_mounts(&bad).is_err());
    }
}
