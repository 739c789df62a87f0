//! Published ports: `-p/--publish` specs parsed as Docker's `nat.ParsePortSpec` parses them
//! (with its error messages), `-P` over the image's exposed ports, and the host ports picked
//! at each start (random free ones where none was given, as Docker allocates them again on
//! every start), recorded in the state directory while the container runs.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, UdpSocket};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// One host side of a published port, as Docker's `HostConfig.PortBindings` holds it:
/// empty strings mean every address / a random port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortBinding {
    #[serde(rename = "HostIp")]
    pub host_ip: String,
    #[serde(rename = "HostPort")]
    pub host_port: String,
}

/// Container port keys (`8080/tcp`) to their bindings: Docker's `PortBindings`.
pub type PortBindings = BTreeMap<String, Vec<PortBinding>>;

fn parse_range(s: &str) -> Option<(u16, u16)> {
    if s.is_empty() {
        return None;
    }
    match s.split_once('-') {
        None => s.parse().ok().map(|p| (p, p)),
        Some((a, b)) => {
            let (a, b): (u16, u16) = (a.parse().ok()?, b.parse().ok()?);
            (b >= a).then_some((a, b))
        }
    }
}

/// Docker's `SplitProtoPort`: `8080/udp` → (`udp`, `8080`); no protocol means tcp.
fn split_proto(raw: &str) -> (String, String) {
    let parts: Vec<&str> = raw.split('/').collect();
    if raw.is_empty() || parts[0].is_empty() {
        return (String::new(), String::new());
    }
    if parts.len() == 1 || parts[1].is_empty() {
        return ("tcp".into(), parts[0].into());
    }
    (parts[1].into(), parts[0].into())
}

/// Parses `--expose` specs (`PORT[-PORT][/PROTO]`) into Docker's `ExposedPorts` keys, a
/// range giving each of its ports (`7000-7002` → `7000/tcp`, `7001/tcp`, `7002/tcp`).
pub fn parse_expose(specs: &[String]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for raw in specs {
        let (proto, ports) = split_proto(raw);
        let Some((start, end)) = parse_range(&ports).filter(|(s, e)| *s > 0 && s <= e) else {
            // Docker's message names the part Go's ParseUint refused.
            let bad = ports
                .split('-')
                .find(|p| p.parse::<u16>().is_err())
                .map(|p| format!(", error: strconv.ParseUint: parsing {p:?}: invalid syntax"))
                .unwrap_or_default();
            return Err(Error::Invalid(format!(
                "invalid range format for --expose: {raw}{bad}"
            )));
        };
        if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
            return Err(Error::Invalid(format!("invalid proto: {proto}")));
        }
        for p in start..=end {
            let key = format!("{p}/{proto}");
            if !out.contains(&key) {
                out.push(key);
            }
        }
    }
    Ok(out)
}

/// Parses the `-p` specs into Docker's `PortBindings` (and so its `ExposedPorts` keys):
/// `[IP:][HOST_PORT:]CONTAINER_PORT[/PROTO]`, ports and ranges, IPv6 addresses in brackets.
pub fn parse_publish(specs: &[String]) -> Result<PortBindings> {
    let mut out = PortBindings::new();
    for raw in specs {
        let parts: Vec<&str> = raw.split(':').collect();
        let n = parts.len();
        let container = parts[n - 1];
        let (raw_ip, host_port) = match n {
            1 => (String::new(), ""),
            2 => (String::new(), parts[0]),
            3 => (parts[0].to_string(), parts[1]),
            _ => (parts[..n - 2].join(":"), parts[n - 2]),
        };
        let (proto, container) = split_proto(container);
        let ip = raw_ip
            .strip_prefix('[')
            .and_then(|i| i.strip_suffix(']'))
            .unwrap_or(&raw_ip)
            .to_string();
        if !ip.is_empty() && ip.parse::<IpAddr>().is_err() {
            return Err(Error::Invalid(format!("Invalid ip address: {ip}")));
        }
        if container.is_empty() {
            return Err(Error::Invalid(format!("No port specified: {raw}<empty>")));
        }
        let (cs, ce) = parse_range(&container)
            .ok_or_else(|| Error::Invalid(format!("Invalid containerPort: {container}")))?;
        let host = if host_port.is_empty() {
            None
        } else {
            Some(
                parse_range(host_port)
                    .ok_or_else(|| Error::Invalid(format!("Invalid hostPort: {host_port}")))?,
            )
        };
        if let Some((hs, he)) = host {
            if he - hs != ce - cs && ce != cs {
                return Err(Error::Invalid(format!(
                    "Invalid ranges specified for container and host Ports: {container} and {host_port}"
                )));
            }
        }
        let proto = proto.to_ascii_lowercase();
        if proto == "sctp" {
            return Err(Error::Invalid(format!(
                "{raw}: publishing sctp ports is not supported by strata"
            )));
        }
        if !matches!(proto.as_str(), "tcp" | "udp") {
            return Err(Error::Invalid(format!("Invalid proto: {proto}")));
        }
        for (i, port) in (cs..=ce).enumerate() {
            let host_port = match host {
                None => String::new(),
                // One container port, a host range: any free port of the range.
                Some((hs, he)) if cs == ce && hs != he => format!("{hs}-{he}"),
                Some((hs, _)) => (hs + i as u16).to_string(),
            };
            out.entry(format!("{port}/{proto}"))
                .or_default()
                .push(PortBinding {
                    host_ip: ip.clone(),
                    host_port,
                });
        }
    }
    Ok(out)
}

/// A port published while the container runs, as `port`, `ps` and `inspect` show it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PublishedPort {
    /// The port in the container.
    pub container_port: u16,
    /// `tcp` or `udp`.
    pub protocol: String,
    /// `0.0.0.0` and `::` for every address, as Docker 20.10 lists them.
    pub host_ip: String,
    pub host_port: u16,
}

impl PublishedPort {
    /// The key Docker uses: `8080/tcp`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.container_port, self.protocol)
    }
}

/// What the state directory records while a container runs on the private network.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NetworkState {
    pub ip: String,
    pub prefix_len: u8,
    pub gateway: String,
    pub mac: String,
    pub ports: Vec<PublishedPort>,
}

pub(crate) const STATE_FILE: &str = "network.json";

impl NetworkState {
    pub(crate) fn read(state_dir: &Path) -> Option<NetworkState> {
        let bytes = std::fs::read(state_dir.join(STATE_FILE)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    pub(crate) fn write(&self, state_dir: &Path) -> Result<()> {
        let p = state_dir.join(STATE_FILE);
        let json = serde_json::to_vec(self).map_err(|e| Error::Invalid(e.to_string()))?;
        std::fs::write(&p, json).map_err(|e| Error::io(&p, e))
    }
}

/// Whether `port` of `proto` can be bound on `ip` (None: every address) right now.
fn free(ip: Option<IpAddr>, port: u16, proto: runtime::Protocol) -> std::io::Result<u16> {
    let addr = SocketAddr::new(ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)), port);
    match proto {
        runtime::Protocol::Tcp => TcpListener::bind(addr)?.local_addr().map(|a| a.port()),
        runtime::Protocol::Udp => UdpSocket::bind(addr)?.local_addr().map(|a| a.port()),
    }
}

/// The concrete mappings of a start: every binding of `bindings`, plus a random host port
/// for each exposed port without one when `publish_all` (`-P`). Checks that the host ports
/// are free, with Docker's error when one is not.
pub(crate) fn resolve(
    bindings: &PortBindings,
    exposed: &[String],
    publish_all: bool,
    endpoint: &str,
) -> Result<(Vec<runtime::PortMapping>, Vec<PublishedPort>)> {
    let mut all: Vec<(String, PortBinding)> = bindings
        .iter()
        .flat_map(|(k, v)| v.iter().map(move |b| (k.clone(), b.clone())))
        .collect();
    if publish_all {
        for e in exposed {
            let key = if e.contains('/') {
                e.clone()
            } else {
                format!("{e}/tcp")
            };
            if !bindings.contains_key(&key) {
                all.push((
                    key,
                    PortBinding {
                        host_ip: String::new(),
                        host_port: String::new(),
                    },
                ));
            }
        }
    }
    let mut maps = Vec::new();
    let mut shown = Vec::new();
    for (key, b) in all {
        let (port, proto) = key.split_once('/').unwrap_or((&key, "tcp"));
        let Ok(container_port) = port.parse::<u16>() else {
            continue;
        };
        let protocol = match proto {
            "udp" => runtime::Protocol::Udp,
            _ => runtime::Protocol::Tcp,
        };
        let ip: Option<IpAddr> = if b.host_ip.is_empty() {
            None
        } else {
            b.host_ip.parse().ok()
        };
        let bind_error = |p: &str, e: std::io::Error| {
            let family = match ip {
                Some(IpAddr::V6(_)) => "6",
                _ => "4",
            };
            let shown_ip = ip.map_or("0.0.0.0".to_string(), |i| i.to_string());
            Error::Invalid(format!(
                "driver failed programming external connectivity on endpoint {endpoint}: Error starting userland proxy: listen {proto}{family} {}: bind: {}",
                SocketAddr::new(shown_ip.parse().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)), p.parse().unwrap_or(0)),
                runtime::io_text(&e)
            ))
        };
        let host_port = match b.host_port.split_once('-') {
            _ if b.host_port.is_empty() => free(ip, 0, protocol).map_err(|e| bind_error("0", e))?,
            None => {
                let p: u16 = b.host_port.parse().unwrap_or(0);
                free(ip, p, protocol).map_err(|e| bind_error(&b.host_port, e))?
            }
            Some((a, z)) => {
                let (a, z): (u16, u16) = (a.parse().unwrap_or(0), z.parse().unwrap_or(0));
                (a..=z)
                    .find_map(|p| free(ip, p, protocol).ok())
                    .ok_or_else(|| {
                        Error::Invalid(format!(
                            "Bind for {}:{} failed: port is already allocated",
                            ip.map_or("0.0.0.0".to_string(), |i| i.to_string()),
                            b.host_port
                        ))
                    })?
            }
        };
        maps.push(runtime::PortMapping {
            host_ip: ip,
            host_port,
            container_port,
            protocol,
        });
        let ips: Vec<String> = match ip {
            Some(i) => vec![i.to_string()],
            None => vec![
                Ipv4Addr::UNSPECIFIED.to_string(),
                Ipv6Addr::UNSPECIFIED.to_string(),
            ],
        };
        for host_ip in ips {
            shown.push(PublishedPort {
                container_port,
                protocol: protocol.to_string(),
                host_ip,
                host_port,
            });
        }
    }
    Ok((maps, shown))
}

/// Docker's PORTS column: `127.0.0.1:18080->8080/tcp, 9000/tcp` (published ports first by
/// host address, then exposed ports without a binding).
pub fn display(published: &[PublishedPort], exposed: &[String]) -> String {
    let mut items: Vec<String> = Vec::new();
    let mut sorted = published.to_vec();
    sorted.sort_by(|a, b| {
        (
            a.host_ip.contains(':'),
            &a.protocol,
            a.container_port,
            &a.host_ip,
        )
            .cmp(&(
                b.host_ip.contains(':'),
                &b.protocol,
                b.container_port,
                &b.host_ip,
            ))
    });
    for p in &sorted {
        items.push(format!(
            "{}:{}->{}/{}",
            p.host_ip, p.host_port, p.container_port, p.protocol
        ));
    }
    let mut rest: Vec<&String> = exposed
        .iter()
        .filter(|e| !published.iter().any(|p| &p.key() == *e))
        .collect();
    rest.sort();
    rest.dedup();
    items.extend(rest.into_iter().cloned());
    items.join(", ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn expose_specs_as_docker_takes_them() {
        let e = |v: &[&str]| parse_expose(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(e(&["90"]).unwrap(), ["90/tcp"]);
        assert_eq!(
            e(&["7000-7002/udp", "90", "90/tcp"]).unwrap(),
            ["7000/udp", "7001/udp", "7002/udp", "90/tcp"]
        );
        for bad in ["abc", "", "9-8", "0", "90/xyz"] {
            assert!(e(&[bad]).is_err(), "{bad}");
        }
    }

    use super::*;

    fn p(v: &[&str]) -> Result<PortBindings> {
        parse_publish(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    fn err(v: &str) -> String {
        p(&[v]).unwrap_err().to_string()
    }

    #[test]
    fn specs_parse_as_docker() {
        let b = p(&["127.0.0.1:18080:8080", "9000", "5353:53/udp", "[::1]:80:80"]).unwrap();
        assert_eq!(
            b["8080/tcp"],
            vec![PortBinding {
                host_ip: "127.0.0.1".into(),
                host_port: "18080".into()
            }]
        );
        assert_eq!(b["9000/tcp"][0].host_port, "");
        assert_eq!(b["53/udp"][0].host_port, "5353");
        assert_eq!(b["80/tcp"][0].host_ip, "::1");
        let r = p(&["8000-8002:9000-9002"]).unwrap();
        assert_eq!(r["9001/tcp"][0].host_port, "8001");
        let r = p(&["8000-8009:80"]).unwrap();
        assert_eq!(r["80/tcp"][0].host_port, "8000-8009");
    }

    #[test]
    fn errors_are_dockers() {
        assert_eq!(err("abc"), "Invalid containerPort: abc");
        assert_eq!(err("x:80"), "Invalid hostPort: x");
        assert_eq!(err("80/sctpx"), "Invalid proto: sctpx");
        assert_eq!(err("1.2.3:80:80"), "Invalid ip address: 1.2.3");
        assert_eq!(err("80:"), "No port specified: 80:<empty>");
        assert_eq!(err("70000"), "Invalid containerPort: 70000");
        assert_eq!(
            err("1-3:4-5"),
            "Invalid ranges specified for container and host Ports: 4-5 and 1-3"
        );
    }

    #[test]
    fn ports_column() {
        let pp = |ip: &str, hp: u16, cp: u16| PublishedPort {
            container_port: cp,
            protocol: "tcp".into(),
            host_ip: ip.into(),
            host_port: hp,
        };
        assert_eq!(
            display(
                &[
                    pp("::", 18081, 81),
                    pp("127.0.0.1", 18080, 8080),
                    pp("0.0.0.0", 18081, 81)
                ],
                &["7000/tcp".into(), "8080/tcp".into()]
            ),
            "0.0.0.0:18081->81/tcp, 127.0.0.1:18080->8080/tcp, :::18081->81/tcp, 7000/tcp"
        );
    }
}
