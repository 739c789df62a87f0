//! Files a container sees but that never belong to its writable layer: `/etc/hosts`,
//! `/etc/hostname` and `/etc/resolv.conf` are written to a per-container state directory and
//! bind-mounted over the image's; and the *init layer*, Docker's `-init` stubs (`/proc`,
//! `/sys`, `/dev`, and empty `/etc/hosts`, `/etc/hostname`, `/etc/resolv.conf` to mount over),
//! which the caller stacks as the topmost lower directory so that mount points exist without
//! writing them into the container's upper directory.

use std::fs;
use std::path::Path;

use crate::error::{IoContext, Result};
use crate::spec::{Network, Spec};

/// The names of the files [`write_etc_files`] writes and the runtime bind-mounts over `/etc`.
pub const ETC_FILES: [&str; 3] = ["hosts", "hostname", "resolv.conf"];

/// Docker's `/etc/hosts` of a container with a network namespace of its own, before its
/// own address line.
pub const STANDARD_HOSTS: &str = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n";

/// Writes `hosts`, `hostname` and `resolv.conf` for `spec` into `state_dir`, as Docker does:
/// with the host network, the host's `/etc/hosts` and `/etc/resolv.conf`; otherwise the
/// standard loopback entries (plus `ADDRESS\tHOSTNAME` on the private network, as Docker's
/// bridge) and the host's `resolv.conf` without loopback name servers (which a container
/// cannot reach). On the private network the name server is pasta's DNS forwarding address
/// ([`crate::DNS_FORWARD_ADDRESS`]) instead of the host's: pasta sends the queries to the
/// host's resolver from the host, so DNS works even when that resolver is on the host's
/// loopback (where Docker would fall back to 8.8.8.8 and 8.8.4.4).
pub fn write_etc_files(state_dir: &Path, spec: &Spec) -> Result<()> {
    fs::create_dir_all(state_dir).ctx("create state directory", state_dir)?;
    // Docker's order: the standard entries (the host's file with its network), the
    // `--add-host` ones, then the container's own address.
    let mut hosts = match spec.network {
        Network::Host => {
            fs::read_to_string("/etc/hosts").unwrap_or_else(|_| STANDARD_HOSTS.to_string())
        }
        Network::None | Network::Private => STANDARD_HOSTS.to_string(),
    };
    hosts.push_str(&extra_hosts_lines(&spec.extra_hosts));
    if spec.network == Network::Private {
        if let Some(ip) = crate::Addresses::detect().ipv4 {
            hosts.push_str(&format!("{ip}\t{}\n", spec.hostname));
        }
    }
    let host_resolv = fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let default = match spec.network {
        Network::Host => host_resolv,
        Network::None => without_nameservers(&host_resolv, |a| a.starts_with("127.") || a == "::1"),
        Network::Private => {
            let mut r = without_nameservers(&host_resolv, |_| true);
            r.push_str(&format!("nameserver {}\n", crate::DNS_FORWARD_ADDRESS));
            r
        }
    };
    // `--dns*` replace their part of it (what is not given comes from it).
    let resolv = if spec.dns.is_empty() {
        default
    } else {
        spec.dns.resolv_conf(&default)
    };
    for (name, content) in [
        ("hosts", hosts),
        ("hostname", format!("{}\n", spec.hostname)),
        ("resolv.conf", resolv),
    ] {
        let p = state_dir.join(name);
        fs::write(&p, content).ctx("write", &p)?;
    }
    Ok(())
}

/// `--dns`, `--dns-search` and `--dns-option` (Docker's `DNS`, `DNSSearch`, `DNSOptions`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dns {
    pub servers: Vec<String>,
    pub search: Vec<String>,
    pub options: Vec<String>,
}

impl Dns {
    pub fn is_empty(&self) -> bool {
        self.servers.is_empty() && self.search.is_empty() && self.options.is_empty()
    }

    /// Docker's `resolv.conf` when any is given: `search`, `nameserver` and `options` lines
    /// only, each from the flags or else from the host's file (`--dns-search .`: none).
    pub fn resolv_conf(&self, host: &str) -> String {
        let host_values = |key: &str| -> Vec<String> {
            host.lines()
                .filter_map(|l| {
                    let mut w = l.split_whitespace();
                    (w.next() == Some(key)).then(|| w.map(str::to_string).collect::<Vec<_>>())
                })
                .flatten()
                .collect()
        };
        let search = if self.search.is_empty() {
            host_values("search")
        } else {
            self.search.iter().filter(|s| *s != ".").cloned().collect()
        };
        let servers = if self.servers.is_empty() {
            host_values("nameserver")
        } else {
            self.servers.clone()
        };
        let options = if self.options.is_empty() {
            host_values("options")
        } else {
            self.options.clone()
        };
        let mut out = String::new();
        if !search.is_empty() {
            out.push_str(&format!("search {}\n", search.join(" ")));
        }
        for s in &servers {
            out.push_str(&format!("nameserver {s}\n"));
        }
        if !options.is_empty() {
            out.push_str(&format!("options {}\n", options.join(" ")));
        }
        out
    }
}

/// `/etc/hosts` lines of `--add-host` entries (`ADDRESS<TAB>NAME`).
pub fn extra_hosts_lines(extra: &[(String, String)]) -> String {
    extra
        .iter()
        .map(|(name, ip)| format!("{ip}\t{name}\n"))
        .collect()
}

/// `resolv.conf` text without the `nameserver` lines whose address matches `drop`.
fn without_nameservers(text: &str, drop: impl Fn(&str) -> bool) -> String {
    text.lines()
        .filter(|l| {
            let mut w = l.split_whitespace();
            !(w.next() == Some("nameserver") && w.next().is_some_and(&drop))
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Fills `dir` with Docker's init-layer stubs (idempotent): directories `proc`, `sys`, `dev`,
/// `dev/pts`, `dev/shm`, `etc`; empty files `etc/hosts`, `etc/hostname`, `etc/resolv.conf`,
/// `.dockerenv`, `dev/console`; and `etc/mtab -> /proc/mounts`. Stack it on top of the image's
/// layers so the runtime's mount points exist without being created in the upper directory.
pub fn make_init_layer(dir: &Path) -> Result<()> {
    for d in ["proc", "sys", "dev/pts", "dev/shm", "etc"] {
        fs::create_dir_all(dir.join(d)).ctx("mkdir", dir.join(d))?;
    }
    for f in [
        "etc/hosts",
        "etc/hostname",
        "etc/resolv.conf",
        ".dockerenv",
        "dev/console",
    ] {
        let p = dir.join(f);
        if !p.exists() {
            fs::write(&p, "").ctx("write", &p)?;
            fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755))
                .ctx("chmod", &p)?;
        }
    }
    let mtab = dir.join("etc/mtab");
    if fs::symlink_metadata(&mtab).is_err() {
        std::os::unix::fs::symlink("/proc/mounts", &mtab).ctx("symlink", &mtab)?;
    }
    Ok(())
}
