//! Devices: `--device HOST[:CONTAINER][:PERMS]`, `--device-cgroup-rule`, Docker's and runc's
//! default device cgroup rules, and the host's devices a `--privileged` container sees.
//! [`DeviceRule`]s are written to the container's `devices` cgroup (v1) by `cgroup.rs`.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// A `--device` mapping, as Docker records it in `HostConfig.Devices`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceMapping {
    /// `PathOnHost`.
    pub path_on_host: String,
    /// `PathInContainer`.
    pub path_in_container: String,
    /// `CgroupPermissions` (`rwm` unless given).
    pub cgroup_permissions: String,
}

/// Whether `mode` is a valid device permission string: some of `r`, `w`, `m`, each once.
pub fn valid_device_mode(mode: &str) -> bool {
    !mode.is_empty()
        && mode.len() <= 3
        && mode.chars().all(|c| "rwm".contains(c))
        && mode
            .chars()
            .enumerate()
            .all(|(i, c)| !mode[i + 1..].contains(c))
}

impl DeviceMapping {
    /// Parses `--device HOST[:CONTAINER][:PERMS]` as Docker's CLI does (validation first:
    /// `bad format for path`, `bad mode specified`, `... is not an absolute path`).
    pub fn parse(spec: &str) -> Result<DeviceMapping> {
        let bad = Error::Device;
        let parts: Vec<&str> = spec.split(':').collect();
        if parts.len() > 3 || parts[0].is_empty() {
            return Err(bad(format!("bad format for path: {spec}")));
        }
        let (host, container, perms) = match parts.as_slice() {
            [h] => (*h, *h, "rwm"),
            [h, x] if valid_device_mode(x) => (*h, *h, *x),
            [h, c] => (*h, *c, "rwm"),
            [h, c, m] => {
                if !valid_device_mode(m) {
                    return Err(bad(format!("bad mode specified: {m}")));
                }
                (*h, *c, *m)
            }
            _ => unreachable!(),
        };
        if !container.starts_with('/') {
            return Err(bad(format!("{container} is not an absolute path")));
        }
        Ok(DeviceMapping {
            path_on_host: host.to_string(),
            path_in_container: clean(container),
            cgroup_permissions: perms.to_string(),
        })
    }
}

/// Go's `path.Clean` for an absolute path.
fn clean(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    format!("/{}", out.join("/"))
}

/// One device cgroup rule: allow or deny `access` (some of `rwm`) to devices of `kind`
/// (`a`ll, `c`har, `b`lock) with `major:minor` (None: any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRule {
    /// Allow (else deny).
    pub allow: bool,
    /// `a`, `c` or `b`.
    pub kind: char,
    /// Major number (None: `*`).
    pub major: Option<u32>,
    /// Minor number (None: `*`).
    pub minor: Option<u32>,
    /// Some of `rwm`.
    pub access: String,
}

impl DeviceRule {
    fn allow(kind: char, major: Option<u32>, minor: Option<u32>, access: &str) -> DeviceRule {
        DeviceRule {
            allow: true,
            kind,
            major,
            minor,
            access: access.to_string(),
        }
    }

    /// Parses `--device-cgroup-rule` (Docker: `^[acb] ([0-9]+|\*):([0-9]+|\*) [rwm]{1,3}$`).
    pub fn parse(rule: &str) -> Result<DeviceRule> {
        let bad = || {
            Error::Device(format!("invalid argument \"{rule}\" for \"--device-cgroup-rule\" flag: invalid device cgroup format '{rule}'"))
        };
        let f: Vec<&str> = rule.split(' ').collect();
        let [kind, nums, access] = f.as_slice() else {
            return Err(bad());
        };
        let kind = match *kind {
            "a" => 'a',
            "b" => 'b',
            "c" => 'c',
            _ => return Err(bad()),
        };
        let (ma, mi) = nums.split_once(':').ok_or_else(bad)?;
        let num = |s: &str| -> Result<Option<u32>> {
            if s == "*" {
                Ok(None)
            } else if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
                s.parse().map(Some).map_err(|_| bad())
            } else {
                Err(bad())
            }
        };
        let (major, minor) = (num(ma)?, num(mi)?);
        if access.is_empty() || access.len() > 3 || !access.chars().all(|c| "rwm".contains(c)) {
            return Err(bad());
        }
        Ok(DeviceRule::allow(kind, major, minor, access))
    }

    /// The cgroup v1 line: `c 1:3 rwm`.
    pub(crate) fn v1_line(&self) -> String {
        let n = |v: Option<u32>| v.map_or("*".to_string(), |v| v.to_string());
        format!(
            "{} {}:{} {}",
            self.kind,
            n(self.major),
            n(self.minor),
            self.access
        )
    }
}

/// A device node to create in the container's `/dev` (or elsewhere), from the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Node {
    /// Absolute path in the container.
    pub(crate) path: String,
    /// The host's node (bind-mounted when mknod is not allowed).
    pub(crate) host: PathBuf,
    /// `S_IFCHR` or `S_IFBLK` with the permission bits.
    pub(crate) mode: libc::mode_t,
    pub(crate) rdev: libc::dev_t,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
}

impl Node {
    fn kind(&self) -> char {
        if self.mode & libc::S_IFMT == libc::S_IFBLK {
            'b'
        } else {
            'c'
        }
    }
}

/// The device node at `host` (symlinks followed, as Docker does), or None when it is not a
/// character or block device.
fn node_at(host: &Path, in_container: &str) -> std::io::Result<Option<Node>> {
    let meta = fs::metadata(host)?;
    let ft = meta.file_type();
    if !ft.is_char_device() && !ft.is_block_device() {
        return Ok(None);
    }
    Ok(Some(Node {
        path: in_container.to_string(),
        host: host.to_path_buf(),
        mode: meta.mode() as libc::mode_t & (libc::S_IFMT | 0o7777),
        rdev: meta.rdev() as libc::dev_t,
        uid: meta.uid(),
        gid: meta.gid(),
    }))
}

/// Docker's default device rules (moby `oci.DefaultLinuxSpec`): deny everything, allow
/// null, zero, urandom, random, tty, console, deny fuse.
fn docker_defaults() -> Vec<DeviceRule> {
    let c = |ma, mi| DeviceRule::allow('c', Some(ma), Some(mi), "rwm");
    vec![
        DeviceRule {
            allow: false,
            kind: 'a',
            major: None,
            minor: None,
            access: "rwm".into(),
        },
        c(1, 5),
        c(1, 3),
        c(1, 9),
        c(1, 8),
        c(5, 0),
        c(5, 1),
        DeviceRule {
            allow: false,
            ..c(10, 229)
        },
    ]
}

/// runc's `AllowedDevices`, appended after the spec's rules: mknod of anything, the standard
/// nodes, `/dev/pts/*`, `/dev/ptmx`, `/dev/net/tun`.
fn runc_defaults() -> Vec<DeviceRule> {
    let c = |ma, mi| DeviceRule::allow('c', Some(ma), mi, "rwm");
    vec![
        DeviceRule::allow('c', None, None, "m"),
        DeviceRule::allow('b', None, None, "m"),
        c(1, Some(3)),
        c(1, Some(8)),
        c(1, Some(7)),
        c(5, Some(0)),
        c(1, Some(5)),
        c(1, Some(9)),
        c(136, None),
        c(5, Some(2)),
        c(10, Some(200)),
    ]
}

/// The host's devices a privileged container gets (runc's `HostDevices`): every character
/// and block device under `/dev`, except `/dev/console` and the pts, shm, fd and mqueue
/// directories.
fn host_devices(dir: &Path, out: &mut Vec<Node>) {
    let Ok(rd) = fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let Ok(ft) = e.file_type() else { continue };
        let name = e.file_name();
        let name = name.to_string_lossy();
        let path = e.path();
        if ft.is_dir() {
            if !["pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"].contains(&&*name) {
                host_devices(&path, out);
            }
            continue;
        }
        if name == "console" || !(ft.is_char_device() || ft.is_block_device()) {
            continue;
        }
        if let Ok(Some(n)) = node_at(&path, &path.to_string_lossy()) {
            out.push(n);
        }
    }
}

/// The nodes to create and the cgroup rules, in order, for a container (reads the host's
/// `/dev`): Docker's defaults, then each `--device` (a directory gives every device in it),
/// then `--device-cgroup-rule`s, then runc's defaults; `--privileged` allows everything and
/// gets the host's devices.
pub(crate) fn resolve(
    privileged: bool,
    devices: &[DeviceMapping],
    user_rules: &[DeviceRule],
) -> Result<(Vec<Node>, Vec<DeviceRule>)> {
    let mut nodes = Vec::new();
    let mut rules = Vec::new();
    if privileged {
        host_devices(Path::new("/dev"), &mut nodes);
    } else {
        rules = docker_defaults();
    }
    for d in devices {
        if privileged && d.path_on_host == d.path_in_container {
            continue;
        }
        let perms = if privileged {
            "rwm"
        } else {
            &d.cgroup_permissions
        };
        let host = Path::new(&d.path_on_host);
        let gather = |e: std::io::Error| {
            Error::Device(format!(
                "error gathering device information while adding custom device \"{}\": {}",
                d.path_on_host,
                crate::error::errno_text(e.raw_os_error().unwrap_or(libc::EINVAL))
            ))
        };
        let resolved = fs::canonicalize(host).unwrap_or_else(|_| host.to_path_buf());
        match node_at(&resolved, &d.path_in_container).map_err(gather)? {
            Some(n) => {
                rules.push(DeviceRule::allow(n.kind(), Some(major(n.rdev)), Some(minor(n.rdev)), perms));
                nodes.push(n);
            }
            None if resolved.is_dir() => {
                let mut found = Vec::new();
                host_devices(&resolved, &mut found);
                for mut n in found {
                    let rel = n.host.strip_prefix(&resolved).unwrap_or(&n.host).to_path_buf();
                    n.path = clean(&format!("{}/{}", d.path_in_container, rel.display()));
                    rules.push(DeviceRule::allow(n.kind(), Some(major(n.rdev)), Some(minor(n.rdev)), perms));
                    nodes.push(n);
                }
            }
            None => {
                return Err(Error::Device(format!(
                    "error gathering device information while adding custom device \"{}\": not a device node",
                    d.path_on_host
                )))
            }
        }
    }
    if privileged {
        rules = vec![DeviceRule::allow('a', None, None, "rwm")];
    } else {
        rules.extend(user_rules.iter().cloned());
    }
    rules.extend(runc_defaults());
    Ok((nodes, rules))
}

fn major(dev: libc::dev_t) -> u32 {
    libc::major(dev)
}

fn minor(dev: libc::dev_t) -> u32 {
    libc::minor(dev)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_flags_parse_like_docker() {
        let d = DeviceMapping::parse("/dev/loop3").unwrap();
        assert_eq!(
            (d.path_in_container.as_str(), d.cgroup_permissions.as_str()),
            ("/dev/loop3", "rwm")
        );
        let d = DeviceMapping::parse("/dev/loop3:r").unwrap();
        assert_eq!(
            (d.path_in_container.as_str(), d.cgroup_permissions.as_str()),
            ("/dev/loop3", "r")
        );
        let d = DeviceMapping::parse("/dev/loop3:/dev/xvda/").unwrap();
        assert_eq!(d.path_in_container, "/dev/xvda");
        let d = DeviceMapping::parse("/dev/loop3:/dev/xvda:rw").unwrap();
        assert_eq!(d.cgroup_permissions, "rw");
        assert!(DeviceMapping::parse("/dev/loop3:/dev/xvda:rx").is_err());
        assert!(DeviceMapping::parse("/dev/loop3:xvda").is_err());
        assert!(DeviceMapping::parse("a:b:c:d").is_err());
        assert!(!valid_device_mode("rr"));
    }

    #[test]
    fn cgroup_rules_parse_like_docker() {
        assert_eq!(DeviceRule::parse("c 1:3 mr").unwrap().v1_line(), "c 1:3 mr");
        assert_eq!(
            DeviceRule::parse("b *:* rwm").unwrap().v1_line(),
            "b *:* rwm"
        );
        for bad in [
            "c 1:3",
            "x 1:3 r",
            "c 1:3 rx",
            "c a:3 r",
            "c 1:3  r",
            "c 1:3 rwmr",
        ] {
            assert!(DeviceRule::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn default_rules_are_dockers_then_runcs() {
        let (nodes, rules) = resolve(false, &[], &[]).unwrap();
        assert!(nodes.is_empty());
        let lines: Vec<String> = rules
            .iter()
            .map(|r| format!("{} {}", r.allow, r.v1_line()))
            .collect();
        assert_eq!(lines[0], "false a *:* rwm");
        assert_eq!(lines[7], "false c 10:229 rwm");
        assert!(lines.contains(&"true c 136:* rwm".to_string()));
        let (nodes, rules) = resolve(true, &[], &[]).unwrap();
        assert!(nodes.iter().any(|n| n.path == "/dev/null"));
        assert_eq!(rules[0].v1_line(), "a *:* rwm");
    }
}
