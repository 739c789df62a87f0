//! Docker's user-defined networks (`network create/ls/inspect/rm/connect/disconnect/prune`,
//! `run --network NAME --network-alias A --ip IP`) on the runtime's network namespaces.
//!
//! A network is a store record (its configuration as [`NetworkConfig`] JSON) and a network
//! namespace kept at `ROOT/networks/ID/netns` holding a bridge with the gateway address
//! (`runtime::create_network_namespace`). A container on it gets, each time it starts, an
//! endpoint: the next free address, recorded in the store under the store lock, and a veth
//! pair from the bridge into its own namespace, where pasta still gives it outbound traffic
//! and published ports (none for a container only on `--internal` networks). Names resolve
//! through each member's `/etc/hosts` (bound from its state directory), rewritten in place
//! for every running member whenever one joins or leaves: other members by container name,
//! network aliases and short ID. An endpoint is released when its container stops (the
//! veth pair dies with the container's namespace); `cleanup` releases those of containers
//! whose monitor died and removes namespaces of networks that were never recorded.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use store::{ContainerRecord, EndpointRecord, NetworkRecord};

use crate::error::{Error, Result};
use crate::lifecycle::{alive, Containers};

/// pasta's interface in a container whose `--network` is user-defined (eth0 is the
/// network's, as in Docker).
pub const PASTA_INTERFACE: &str = "pasta0";

/// Docker's predefined networks, which every store lists and none can remove.
pub const BUILTIN: [(&str, &str); 3] = [("bridge", "bridge"), ("host", "host"), ("none", "null")];

/// What a network is, as recorded (the store keeps it as JSON).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NetworkConfig {
    /// `bridge` (user networks), or `host`/`null` for the predefined ones.
    pub driver: String,
    /// `172.18.0.0/16` (empty for `host` and `none`).
    pub subnet: String,
    pub gateway: String,
    /// `--subnet` was given (Docker allows `--ip` only then).
    pub user_subnet: bool,
    pub internal: bool,
    pub attachable: bool,
    pub labels: BTreeMap<String, String>,
    /// `-o`/`--opt`.
    pub options: BTreeMap<String, String>,
    /// One of Docker's predefined networks (`bridge`, `host`, `none`).
    pub builtin: bool,
}

/// `network create` options.
#[derive(Debug, Clone, Default)]
pub struct CreateNetwork {
    pub name: String,
    pub driver: Option<String>,
    pub subnet: Option<String>,
    pub gateway: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub options: BTreeMap<String, String>,
    pub internal: bool,
    pub attachable: bool,
}

/// A container's membership of a user-defined network, kept in its options.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Attachment {
    pub network_id: String,
    /// The network's name when it was attached.
    pub network: String,
    /// `--network-alias` / `network connect --alias`.
    pub aliases: Vec<String>,
    /// `--ip` / `network connect --ip`.
    pub ipv4: Option<String>,
}

/// A network as `network ls` and `network inspect` see it.
#[derive(Debug, Clone)]
pub struct Network {
    pub record: NetworkRecord,
    pub config: NetworkConfig,
}

impl Network {
    pub fn id(&self) -> &str {
        &self.record.id
    }
    pub fn name(&self) -> &str {
        &self.record.name
    }
    /// The netmask length of the subnet.
    fn prefix_len(&self) -> u8 {
        parse_cidr(&self.config.subnet).map_or(0, |(_, p)| p)
    }
}

/// `a.b.c.d/n` → (network address, n).
pub fn parse_cidr(s: &str) -> Option<(Ipv4Addr, u8)> {
    let (a, p) = s.split_once('/')?;
    let a: Ipv4Addr = a.parse().ok()?;
    let p: u8 = p.parse().ok()?;
    (p <= 32).then_some((a, p))
}

fn mask(p: u8) -> u32 {
    if p == 0 {
        0
    } else {
        u32::MAX << (32 - p)
    }
}

fn contains(net: (Ipv4Addr, u8), ip: Ipv4Addr) -> bool {
    u32::from(ip) & mask(net.1) == u32::from(net.0) & mask(net.1)
}

fn overlaps(a: (Ipv4Addr, u8), b: (Ipv4Addr, u8)) -> bool {
    let p = a.1.min(b.1);
    u32::from(a.0) & mask(p) == u32::from(b.0) & mask(p)
}

/// The IPv4 destinations the host routes, and its own subnets (a network there would hide
/// them from the containers' outbound traffic).
fn host_routes() -> Vec<(Ipv4Addr, u8)> {
    let text = fs::read_to_string("/proc/net/route").unwrap_or_default();
    let mut out = Vec::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 8 || f[1] == "00000000" {
            continue;
        }
        let (Ok(d), Ok(m)) = (u32::from_str_radix(f[1], 16), u32::from_str_radix(f[7], 16)) else {
            continue;
        };
        out.push((
            Ipv4Addr::from(d.to_le_bytes()),
            m.to_le_bytes().iter().map(|b| b.count_ones() as u8).sum(),
        ));
    }
    out
}

/// Docker's default address pools, in its order: 172.17-31.0.0/16 (172.17 is the default
/// bridge's), then 192.168.0.0/16 cut into /20s.
fn default_pools() -> impl Iterator<Item = (Ipv4Addr, u8)> {
    (18u8..=31)
        .map(|b| (Ipv4Addr::new(172, b, 0, 0), 16))
        .chain((0u8..16).map(|i| (Ipv4Addr::new(192, 168, i * 16, 0), 20)))
}

/// The first default pool that overlaps neither `taken` nor the host's routes.
pub fn allocate_subnet(taken: &[(Ipv4Addr, u8)]) -> Option<(Ipv4Addr, u8)> {
    let host = host_routes();
    default_pools()
        .find(|p| !taken.iter().any(|t| overlaps(*p, *t)) && !host.iter().any(|h| overlaps(*p, *h)))
}

/// The lowest host address of `net` other than the gateway and those `used`.
fn next_address(
    net: (Ipv4Addr, u8),
    gateway: Ipv4Addr,
    used: &BTreeSet<Ipv4Addr>,
) -> Option<Ipv4Addr> {
    let base = u32::from(net.0) & mask(net.1);
    let size = 1u64 << (32 - net.1 as u32);
    (1..size.saturating_sub(1))
        .map(|i| Ipv4Addr::from(base + i as u32))
        .find(|a| *a != gateway && !used.contains(a))
}

fn bad(msg: impl Into<String>) -> Error {
    Error::Invalid(msg.into())
}

fn not_found(name: &str) -> Error {
    Error::Store(store::Error::NetworkNotFound(name.to_string()))
}

/// Whether `--network NAME` names a user-defined network rather than a mode.
pub(crate) fn is_user_network(mode: &str) -> bool {
    !matches!(mode, "" | "default" | "bridge" | "host" | "none")
}

/// The names of a container's networks, sorted (`ps`'s NETWORKS column).
pub(crate) fn network_list(o: &crate::config::CreateOptions) -> Vec<String> {
    let mut v: Vec<String> = o.networks.iter().map(|a| a.network.clone()).collect();
    if !is_user_network(&o.network) {
        v.push(crate::config::network_names(o).1.to_string());
    }
    v.sort();
    v.dedup();
    v
}

/// Short container IDs, as Docker's aliases show them.
fn short(id: &str) -> &str {
    &id[..12.min(id.len())]
}

impl Containers {
    fn networks_dir(&self) -> PathBuf {
        store::Layout::new(&self.root).networks()
    }

    fn network_ns(&self, id: &str) -> PathBuf {
        self.networks_dir().join(id).join("netns")
    }

    /// The lock that orders changes of networks and endpoints with the `/etc/hosts` files
    /// they rewrite (held briefly; never while waiting for a container).
    fn networks_lock(&self) -> Result<fs::File> {
        let dir = self.networks_dir();
        fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let p = dir.join("lock");
        let f = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&p)
            .map_err(|e| Error::io(&p, e))?;
        f.lock().map_err(|e| Error::io(&p, e))?;
        Ok(f)
    }

    /// Records Docker's predefined networks the first time they are needed.
    fn ensure_builtin(&mut self) -> Result<()> {
        let have: BTreeSet<String> = self.store.networks()?.into_iter().map(|n| n.name).collect();
        if BUILTIN.iter().all(|(n, _)| have.contains(*n)) {
            return Ok(());
        }
        let a = runtime::Addresses::detect();
        let mut p = self.store.publish()?;
        let existing: BTreeSet<String> = p.networks()?.into_iter().map(|n| n.name).collect();
        for (name, driver) in BUILTIN {
            if existing.contains(name) {
                continue;
            }
            let (subnet, gateway) = match (name, a.ipv4, a.gateway) {
                ("bridge", Some(ip), Some(gw)) => {
                    let net = Ipv4Addr::from(u32::from(ip) & mask(a.prefix_len));
                    (format!("{net}/{}", a.prefix_len), gw.to_string())
                }
                _ => (String::new(), String::new()),
            };
            let cfg = NetworkConfig {
                driver: driver.into(),
                subnet,
                gateway,
                builtin: true,
                ..Default::default()
            };
            p.add_network(&NetworkRecord {
                id: crate::config::new_id(),
                name: name.into(),
                created: oci::now(),
                config: serde_json::to_string(&cfg).map_err(|e| bad(e.to_string()))?,
            })?;
        }
        p.commit()?;
        Ok(())
    }

    fn to_network(rec: NetworkRecord) -> Result<Network> {
        let config = serde_json::from_str(&rec.config).map_err(|e| Error::Corrupt {
            id: rec.id.clone(),
            reason: e.to_string(),
        })?;
        Ok(Network {
            record: rec,
            config,
        })
    }

    /// Every network (the predefined ones included), by name.
    pub fn networks(&mut self) -> Result<Vec<Network>> {
        self.ensure_builtin()?;
        self.store
            .networks()?
            .into_iter()
            .map(Self::to_network)
            .collect()
    }

    /// Finds a network as Docker does: exact name, full ID, then a unique ID prefix.
    pub fn find_network(&mut self, name_or_id: &str) -> Result<Network> {
        let all = self.networks()?;
        if let Some(n) = all.iter().find(|n| n.name() == name_or_id) {
            return Ok(n.clone());
        }
        if let Some(n) = all.iter().find(|n| n.id() == name_or_id) {
            return Ok(n.clone());
        }
        if !name_or_id.is_empty() {
            let found: Vec<&Network> = all
                .iter()
                .filter(|n| n.id().starts_with(name_or_id))
                .collect();
            if found.len() == 1 {
                return Ok(found[0].clone());
            }
            if found.len() > 1 {
                return Err(bad(format!(
                    "network {name_or_id} is ambiguous ({} matches found based on ID prefix)",
                    found.len()
                )));
            }
        }
        Err(not_found(name_or_id))
    }

    /// Records a network event with Docker's attributes (`name`, `type`, and the
    /// `container` connected or disconnected).
    pub(crate) fn record_network_event(&self, action: &str, n: &Network, container: Option<&str>) {
        let mut e = store::events::Event::network(action, n.id())
            .attr("name", n.name())
            .attr("type", n.config.driver.as_str());
        if let Some(c) = container {
            e = e.attr("container", c);
        }
        store::events::record(&self.store, e);
    }

    /// The networks a container is on (its primary one, predefined or not, and those it
    /// was connected to), for its `connect`/`disconnect` events at start and end.
    pub(crate) fn container_networks(&mut self, o: &crate::config::CreateOptions) -> Vec<Network> {
        network_list(o)
            .iter()
            .filter_map(|name| self.find_network(name).ok())
            .collect()
    }

    /// `network create`: records the network and makes its namespace; returns its ID.
    pub fn create_network(&mut self, o: &CreateNetwork) -> Result<String> {
        let driver = o.driver.clone().unwrap_or_else(|| "bridge".into());
        if driver != "bridge" {
            // Docker's words; strata has the bridge driver only.
            return Err(bad(format!("plugin \"{driver}\" not found")));
        }
        if o.gateway.is_some() && o.subnet.is_none() {
            return Err(bad(
                "every ip-range or gateway must have a corresponding subnet",
            ));
        }
        if !o.name.is_empty() {
            crate::config::validate_name(&o.name)
                .map_err(|_| bad(format!("invalid network name {:?}", o.name)))?;
        }
        self.ensure_builtin()?;
        let _lock = self.networks_lock()?;
        if self.store.networks()?.iter().any(|n| n.name == o.name) {
            return Err(store::Error::NetworkNameInUse(o.name.clone()).into());
        }
        let taken: Vec<(Ipv4Addr, u8)> = self
            .networks()?
            .iter()
            .filter(|n| !n.config.builtin)
            .filter_map(|n| parse_cidr(&n.config.subnet))
            .collect();
        let subnet = match &o.subnet {
            Some(s) => {
                let (a, p) =
                    parse_cidr(s).ok_or_else(|| bad(format!("invalid CIDR address: {s}")))?;
                if p > 30 {
                    return Err(bad(format!("invalid subnet {s}: too small for containers")));
                }
                let net = (Ipv4Addr::from(u32::from(a) & mask(p)), p);
                if taken.iter().any(|t| overlaps(net, *t)) {
                    return Err(bad("Pool overlaps with other one on this address space"));
                }
                net
            }
            None => allocate_subnet(&taken).ok_or_else(|| {
                bad("could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network")
            })?,
        };
        let gateway = match &o.gateway {
            Some(g) => {
                let g: Ipv4Addr = g
                    .parse()
                    .map_err(|_| bad(format!("invalid gateway address {g}")))?;
                if !contains(subnet, g) {
                    return Err(bad(format!("no matching subnet for gateway {g}")));
                }
                g
            }
            None => Ipv4Addr::from(u32::from(subnet.0) + 1),
        };
        let id = crate::config::new_id();
        let cfg = NetworkConfig {
            driver,
            subnet: format!("{}/{}", subnet.0, subnet.1),
            gateway: gateway.to_string(),
            user_subnet: o.subnet.is_some(),
            internal: o.internal,
            attachable: o.attachable,
            labels: o.labels.clone(),
            options: o.options.clone(),
            builtin: false,
        };
        let dir = self.networks_dir().join(&id);
        fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let ns = self.network_ns(&id);
        let made = runtime::create_network_namespace(&ns, gateway, subnet.1)
            .map_err(Error::from)
            .and_then(|()| {
                let mut p = self.store.publish()?;
                p.add_network(&NetworkRecord {
                    id: id.clone(),
                    name: o.name.clone(),
                    created: oci::now(),
                    config: serde_json::to_string(&cfg).map_err(|e| bad(e.to_string()))?,
                })?;
                p.commit()?;
                Ok(())
            });
        if let Err(e) = made {
            let _ = runtime::remove_network_namespace(&ns);
            let _ = fs::remove_dir_all(&dir);
            return Err(e);
        }
        if let Ok(n) = self.find_network(&id) {
            self.record_network_event("create", &n, None);
        }
        Ok(id)
    }

    /// `network rm`: refuses predefined networks and networks with running containers.
    pub fn remove_network(&mut self, name_or_id: &str) -> Result<Network> {
        let n = self.find_network(name_or_id)?;
        if n.config.builtin {
            return Err(bad(format!(
                "{} is a pre-defined network and cannot be removed",
                n.name()
            )));
        }
        let _lock = self.networks_lock()?;
        if !self.store.network_endpoints(n.id())?.is_empty() {
            return Err(bad(format!(
                "error while removing network: network {} id {} has active endpoints",
                n.name(),
                n.id()
            )));
        }
        let mut p = self.store.publish()?;
        p.delete_network(n.id())?;
        p.commit()?;
        self.record_network_event("destroy", &n, None);
        runtime::remove_network_namespace(&self.network_ns(n.id()))?;
        let dir = self.networks_dir().join(n.id());
        let _ = fs::remove_dir_all(&dir);
        Ok(n)
    }

    /// Whether a network is in use: predefined, or with running containers on it (what
    /// Docker's `dangling=false` keeps).
    pub fn network_in_use(&self, n: &Network) -> Result<bool> {
        Ok(n.config.builtin || !self.store.network_endpoints(n.id())?.is_empty())
    }

    /// `network prune`: removes every user-defined network without running containers that
    /// `keep` does not keep (`--filter`); returns their names.
    pub fn prune_networks(&mut self, keep: impl Fn(&Network) -> bool) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for n in self.networks()? {
            if self.network_in_use(&n)? || keep(&n) {
                continue;
            }
            if self.remove_network(n.id()).is_ok() {
                out.push(n.name().to_string());
            }
        }
        Ok(out)
    }

    /// The user-defined networks a container's options name, resolved (Docker's error for
    /// one that is gone).
    pub(crate) fn attached_networks(
        &mut self,
        attachments: &[Attachment],
    ) -> Result<Vec<(Attachment, Network)>> {
        let mut out = Vec::new();
        for a in attachments {
            if a.network_id.is_empty() {
                // Named at creation before it existed (see `primary_attachment`).
                let n = self.find_network(&a.network)?;
                let mut a = a.clone();
                a.network_id = n.id().to_string();
                out.push((a, n));
                continue;
            }
            let rec = self
                .store
                .network(&a.network_id)?
                .ok_or_else(|| not_found(&a.network))?;
            out.push((a.clone(), Self::to_network(rec)?));
        }
        Ok(out)
    }

    /// For `create`: the attachment of `--network NAME` with `--network-alias`/`--ip`, with
    /// Docker's checks.
    pub(crate) fn primary_attachment(
        &mut self,
        mode: &str,
        aliases: &[String],
        ip: Option<&str>,
    ) -> Result<Option<Attachment>> {
        if !is_user_network(mode) {
            if !aliases.is_empty() {
                return Err(bad(
                    "network-scoped alias is supported only for containers in user defined networks",
                ));
            }
            if ip.is_some() {
                return Err(bad(
                    "user specified IP address is supported on user defined networks only",
                ));
            }
            return Ok(None);
        }
        let n = match self.find_network(mode) {
            Ok(n) => n,
            // Docker looks the network up when the container starts, not when it is made:
            // the attachment names it, and the start finds it, or fails.
            Err(Error::Store(store::Error::NetworkNotFound(_))) if ip.is_none() => {
                return Ok(Some(Attachment {
                    network_id: String::new(),
                    network: mode.to_string(),
                    aliases: aliases.to_vec(),
                    ipv4: None,
                }));
            }
            Err(e) => return Err(e),
        };
        self.check_ip(&n, ip)?;
        Ok(Some(Attachment {
            network_id: n.id().to_string(),
            network: n.name().to_string(),
            aliases: aliases.to_vec(),
            ipv4: ip.map(str::to_string),
        }))
    }

    fn check_ip(&self, n: &Network, ip: Option<&str>) -> Result<()> {
        let Some(ip) = ip else { return Ok(()) };
        if !n.config.user_subnet {
            return Err(bad(
                "user specified IP address is supported only when connecting to networks with user configured subnets",
            ));
        }
        let a: Ipv4Addr = ip
            .parse()
            .map_err(|_| bad(format!("invalid IPv4 address: {ip}")))?;
        let net = parse_cidr(&n.config.subnet).ok_or_else(|| bad("network without subnet"))?;
        if !contains(net, a) {
            return Err(bad(format!(
                "Invalid address {ip}: It does not belong to any of this network's subnets"
            )));
        }
        Ok(())
    }

    /// Allocates an endpoint of container `c` on network `n` (the requested or the next
    /// free address, interface `ifname`) and records it.
    fn allocate(
        &mut self,
        c: &str,
        n: &Network,
        requested: Option<&str>,
        ifname: &str,
    ) -> Result<EndpointRecord> {
        let net = parse_cidr(&n.config.subnet).ok_or_else(|| bad("network without subnet"))?;
        let gw: Ipv4Addr = n
            .config
            .gateway
            .parse()
            .map_err(|_| bad("network without gateway"))?;
        let mut p = self.store.publish()?;
        let used: BTreeSet<Ipv4Addr> = p
            .network_endpoints(n.id())?
            .iter()
            .filter_map(|e| e.ip.parse().ok())
            .collect();
        let ip = match requested {
            Some(r) => {
                let a: Ipv4Addr = r
                    .parse()
                    .map_err(|_| bad(format!("invalid IPv4 address: {r}")))?;
                if used.contains(&a) || a == gw {
                    return Err(bad("Address already in use"));
                }
                a
            }
            None => next_address(net, gw, &used).ok_or_else(|| {
                bad(format!(
                    "no available IPv4 addresses on network {}",
                    n.name()
                ))
            })?,
        };
        let e = EndpointRecord {
            network_id: n.id().to_string(),
            container_id: c.to_string(),
            endpoint_id: crate::config::new_id(),
            ip: ip.to_string(),
            mac: runtime::format_mac(runtime::mac_for_ipv4(ip)),
            ifname: ifname.to_string(),
        };
        p.add_endpoint(&e)?;
        p.commit()?;
        Ok(e)
    }

    /// Makes sure a network's namespace exists (it does not survive a reboot).
    fn ensure_namespace(&self, n: &Network) -> Result<PathBuf> {
        let ns = self.network_ns(n.id());
        if !runtime::network_namespace_exists(&ns) {
            let (net, p) =
                parse_cidr(&n.config.subnet).ok_or_else(|| bad("network without subnet"))?;
            let _ = net;
            let gw: Ipv4Addr = n
                .config
                .gateway
                .parse()
                .map_err(|_| bad("network without gateway"))?;
            let dir = self.networks_dir().join(n.id());
            fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
            let _ = runtime::remove_network_namespace(&ns);
            runtime::create_network_namespace(&ns, gw, p)?;
        }
        Ok(ns)
    }

    /// Gives container `c` an endpoint on `n` and connects its namespace `ns` to it.
    fn join(
        &mut self,
        c: &str,
        n: &Network,
        att: &Attachment,
        ifname: &str,
        ns: std::os::fd::BorrowedFd<'_>,
    ) -> Result<EndpointRecord> {
        let path = self.ensure_namespace(n)?;
        let e = self.allocate(c, n, att.ipv4.as_deref(), ifname)?;
        let ip: Ipv4Addr = e.ip.parse().map_err(|_| bad("bad address"))?;
        let ep = runtime::Endpoint {
            ifname: ifname.to_string(),
            bridge_ifname: format!("veth{}", &e.endpoint_id[..7]),
            ip,
            prefix_len: n.prefix_len(),
            mac: runtime::mac_for_ipv4(ip),
            default_gateway: None,
        };
        if let Err(err) = runtime::attach_endpoint(&path, ns, &ep) {
            let _ = self.store.delete_endpoint(n.id(), c);
            return Err(err.into());
        }
        Ok(e)
    }

    /// At start: connects the new namespace of container `rec` to each of its networks
    /// (interfaces from `eth{first}` on) and rewrites the `/etc/hosts` files of everyone on
    /// them. Returns the endpoints.
    pub(crate) fn connect_at_start(
        &mut self,
        rec: &ContainerRecord,
        networks: &[(Attachment, Network)],
        first: usize,
        ns: std::os::fd::BorrowedFd<'_>,
    ) -> Result<Vec<EndpointRecord>> {
        let _lock = self.networks_lock()?;
        let _ = self.store.delete_container_endpoints(&rec.id);
        let mut out = Vec::new();
        for (i, (att, n)) in networks.iter().enumerate() {
            match self.join(&rec.id, n, att, &format!("eth{}", first + i), ns) {
                Ok(e) => out.push(e),
                Err(e) => {
                    let _ = self.store.delete_container_endpoints(&rec.id);
                    return Err(e);
                }
            }
        }
        self.refresh_hosts(std::slice::from_ref(&rec.id))?;
        Ok(out)
    }

    /// Rewrites a starting container's `/etc/hosts` (after the runtime wrote its own) with
    /// the members of its networks.
    pub(crate) fn write_network_hosts(&self, id: &str) -> Result<()> {
        let _lock = self.networks_lock()?;
        self.refresh_hosts(&[id.to_string()])
    }

    /// Releases a container's endpoints (at its end) and tells the others on its networks.
    pub(crate) fn release_endpoints(&mut self, id: &str) -> Result<()> {
        if self.store.container_endpoints(id)?.is_empty() {
            return Ok(());
        }
        let _lock = self.networks_lock()?;
        let gone = self.store.delete_container_endpoints(id)?;
        let nets: BTreeSet<String> = gone.into_iter().map(|e| e.network_id).collect();
        let mut members = Vec::new();
        for n in nets {
            members.extend(
                self.store
                    .network_endpoints(&n)?
                    .into_iter()
                    .map(|e| e.container_id),
            );
        }
        self.refresh_hosts(&members)
    }

    /// Rewrites, in place, the `/etc/hosts` of `ids` and of every running container that
    /// shares a network with one of them: the standard lines, its own address and
    /// hostname, then each other member by name, aliases and short ID.
    fn refresh_hosts(&self, ids: &[String]) -> Result<()> {
        let all = self.store.endpoints()?;
        let nets: BTreeSet<&str> = all
            .iter()
            .filter(|e| ids.contains(&e.container_id))
            .map(|e| e.network_id.as_str())
            .collect();
        let mut targets: BTreeSet<&str> = ids.iter().map(String::as_str).collect();
        targets.extend(
            all.iter()
                .filter(|e| nets.contains(e.network_id.as_str()))
                .map(|e| e.container_id.as_str()),
        );
        let mut recs: BTreeMap<&str, (ContainerRecord, crate::config::Stored)> = BTreeMap::new();
        for e in &all {
            if recs.contains_key(e.container_id.as_str()) {
                continue;
            }
            if let Some(r) = self.store.container(&e.container_id)? {
                if let Ok(s) = Self::stored(&r) {
                    recs.insert(e.container_id.as_str(), (r, s));
                }
            }
        }
        for t in targets {
            let Some((rec, stored)) = recs.get(t) else {
                continue;
            };
            let mine: Vec<&EndpointRecord> = all.iter().filter(|e| e.container_id == t).collect();
            let mut text = runtime::STANDARD_HOSTS.to_string();
            text.push_str(&runtime::extra_hosts_lines(
                &crate::config::parse_extra_hosts(&stored.options.extra_hosts).unwrap_or_default(),
            ));
            let own = if is_user_network(&stored.options.network) {
                mine.iter()
                    .min_by_key(|e| e.ifname.clone())
                    .map(|e| e.ip.clone())
            } else {
                runtime::Addresses::detect().ipv4.map(|i| i.to_string())
            };
            if let Some(ip) = own {
                text.push_str(&format!("{ip}\t{}\n", stored.config.hostname));
            }
            let mut seen = BTreeSet::new();
            for m in &mine {
                for o in all
                    .iter()
                    .filter(|o| o.network_id == m.network_id && o.container_id != t)
                {
                    if !seen.insert((o.ip.clone(), o.network_id.clone())) {
                        continue;
                    }
                    let Some((orec, ostored)) = recs.get(o.container_id.as_str()) else {
                        continue;
                    };
                    let mut names = vec![orec.name.clone()];
                    if let Some(a) = ostored
                        .options
                        .networks
                        .iter()
                        .find(|a| a.network_id == o.network_id)
                    {
                        names.extend(a.aliases.iter().cloned());
                    }
                    names.push(short(&orec.id).to_string());
                    text.push_str(&format!("{}\t{}\n", o.ip, names.join(" ")));
                }
            }
            let p = self.state_dir(&rec.id).join("hosts");
            if p.exists() {
                // In place: the container sees this very file through a bind mount.
                fs::write(&p, text).map_err(|e| Error::io(&p, e))?;
            }
        }
        Ok(())
    }

    /// `network connect`: adds the network to the container's options, and when it runs,
    /// gives it an endpoint there now.
    pub fn connect_network(
        &mut self,
        network: &str,
        container: &str,
        aliases: &[String],
        ip: Option<&str>,
    ) -> Result<()> {
        let rec = self.find(container)?;
        let n = self.find_network(network)?;
        let mut stored = Self::stored(&rec)?;
        if n.config.builtin {
            return Err(bad(format!(
                "strata connects containers to user-defined networks only, not to {}",
                n.name()
            )));
        }
        match stored.options.network.as_str() {
            "" | "host" => return Err(bad(
                "container cannot be disconnected from host network or connected to host network",
            )),
            "none" => {
                return Err(bad(format!(
                "container cannot be connected to network {}: it was started with --network none",
                n.name()
            )))
            }
            _ => {}
        }
        if stored
            .options
            .networks
            .iter()
            .any(|a| a.network_id == n.id())
        {
            return Err(bad(format!(
                "endpoint with name {} already exists in network {}",
                rec.name,
                n.name()
            )));
        }
        self.check_ip(&n, ip)?;
        let att = Attachment {
            network_id: n.id().to_string(),
            network: n.name().to_string(),
            aliases: aliases.to_vec(),
            ipv4: ip.map(str::to_string),
        };
        let running = rec.state.status == "running" && alive(rec.state.pid);
        if running {
            let ns_path = format!("/proc/{}/ns/net", rec.state.pid);
            let ns = fs::File::open(&ns_path).map_err(|e| Error::io(&ns_path, e))?;
            if !self.is_recorded_process(&rec) {
                return Err(Error::NotRunning(rec.id.clone()));
            }
            let used: BTreeSet<String> = self
                .store
                .container_endpoints(&rec.id)?
                .into_iter()
                .map(|e| e.ifname)
                .collect();
            let first = usize::from(!is_user_network(&stored.options.network));
            let ifname = (first..)
                .map(|i| format!("eth{i}"))
                .find(|i| !used.contains(i))
                .unwrap_or_default();
            // Recorded first, so the hosts files name it.
            stored.options.networks.push(att.clone());
            self.save_options(&rec.id, &stored)?;
            let _lock = self.networks_lock()?;
            use std::os::fd::AsFd;
            if let Err(e) = self.join(&rec.id, &n, &att, &ifname, ns.as_fd()) {
                stored.options.networks.pop();
                let _ = self.save_options(&rec.id, &stored);
                return Err(e);
            }
            self.refresh_hosts(std::slice::from_ref(&rec.id))?;
            self.record_network_event("connect", &n, Some(&rec.id));
        } else {
            stored.options.networks.push(att);
            self.save_options(&rec.id, &stored)?;
        }
        Ok(())
    }

    /// `network disconnect`: removes the network from the container's options, and when it
    /// runs, its endpoint there.
    pub fn disconnect_network(
        &mut self,
        network: &str,
        container: &str,
        force: bool,
    ) -> Result<()> {
        let rec = self.find(container)?;
        let n = self.find_network(network);
        let n = match n {
            Ok(n) => n,
            Err(e) if !force => return Err(e),
            Err(_) => return Ok(()),
        };
        let mut stored = Self::stored(&rec)?;
        let Some(pos) = stored
            .options
            .networks
            .iter()
            .position(|a| a.network_id == n.id())
        else {
            return Err(bad(format!(
                "container {} is not connected to network {}",
                rec.id,
                n.name()
            )));
        };
        stored.options.networks.remove(pos);
        self.save_options(&rec.id, &stored)?;
        let _lock = self.networks_lock()?;
        let eps = self.store.container_endpoints(&rec.id)?;
        if let Some(e) = eps.iter().find(|e| e.network_id == n.id()) {
            let members: Vec<String> = self
                .store
                .network_endpoints(n.id())?
                .into_iter()
                .map(|e| e.container_id)
                .collect();
            let _ = runtime::detach_endpoint(
                &self.network_ns(n.id()),
                &format!("veth{}", &e.endpoint_id[..7]),
            );
            self.store.delete_endpoint(n.id(), &rec.id)?;
            self.refresh_hosts(&members)?;
            self.record_network_event("disconnect", &n, Some(&rec.id));
        }
        Ok(())
    }

    fn save_options(&mut self, id: &str, stored: &crate::config::Stored) -> Result<()> {
        let json = serde_json::to_string(stored).map_err(|e| bad(e.to_string()))?;
        self.store.set_container_config(id, &json)?;
        Ok(())
    }

    /// Whether the record's PID is still the process that started (its start time).
    fn is_recorded_process(&self, rec: &ContainerRecord) -> bool {
        let p = self.state_dir(&rec.id).join("init.pid");
        let Ok(text) = fs::read_to_string(&p) else {
            return false;
        };
        let mut it = text.split_whitespace();
        let (Some(pid), Some(start)) = (it.next(), it.next()) else {
            return false;
        };
        pid.parse::<i32>().ok() == Some(rec.state.pid)
            && runtime::process_start_time(rec.state.pid)
                .ok()
                .map(|t| t.to_string())
                .as_deref()
                == Some(start)
    }

    /// Releases endpoints whose container is not running and has no monitor, and removes
    /// network namespaces no record names (a `network create` that died half-way).
    pub(crate) fn cleanup_networks(&mut self) -> Result<()> {
        let eps = self.store.endpoints()?;
        let mut stale = BTreeSet::new();
        for e in &eps {
            let running = match self.store.container(&e.container_id)? {
                Some(c) => c.state.status == "running" && alive(c.state.pid),
                None => false,
            };
            if running {
                continue;
            }
            // A container starting holds its monitor lock while it joins its networks.
            if self.store.container(&e.container_id)?.is_some()
                && matches!(
                    self.probe_monitor_lock(&e.container_id)?,
                    crate::lifecycle::MonitorLock::Held
                )
            {
                continue;
            }
            stale.insert(e.container_id.clone());
        }
        for id in stale {
            self.release_endpoints(&id)?;
        }
        let dir = self.networks_dir();
        let Ok(rd) = fs::read_dir(&dir) else {
            return Ok(());
        };
        let _lock = self.networks_lock()?;
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.len() != 64 || !e.path().is_dir() {
                continue;
            }
            if self.store.network(&name)?.is_none() {
                let _ = runtime::remove_network_namespace(&e.path().join("netns"));
                let _ = fs::remove_dir_all(e.path());
            }
        }
        Ok(())
    }

    /// Docker's `NetworkSettings.Networks` entries of a container's user-defined networks.
    pub(crate) fn network_entries(
        &self,
        rec: &ContainerRecord,
        stored: &crate::config::Stored,
        running: bool,
    ) -> Result<serde_json::Map<String, Value>> {
        let eps = if running {
            self.store.container_endpoints(&rec.id)?
        } else {
            Vec::new()
        };
        let mut out = serde_json::Map::new();
        for a in &stored.options.networks {
            let n = self
                .store
                .network(&a.network_id)?
                .map(Self::to_network)
                .transpose()?;
            let e = eps.iter().find(|e| e.network_id == a.network_id);
            // The short ID is added unless the client gave it (as Compose does), as Docker's
            // `updateNetworkConfig`; not for a network the container was made on before it
            // existed, which Docker has not connected yet.
            let mut aliases = a.aliases.clone();
            if !a.network_id.is_empty() && !aliases.iter().any(|x| x == short(&rec.id)) {
                aliases.push(short(&rec.id).to_string());
            }
            let aliases = (!aliases.is_empty()).then_some(aliases);
            let prefix = n.as_ref().map_or(0, |n| n.prefix_len());
            let name = n
                .as_ref()
                .map_or(a.network.clone(), |n| n.name().to_string());
            out.insert(
                name,
                json!({
                    "IPAMConfig": a.ipv4.as_ref().map(|ip| json!({"IPv4Address": ip})),
                    "Links": null,
                    "Aliases": aliases,
                    "NetworkID": a.network_id,
                    "EndpointID": e.map_or("", |e| e.endpoint_id.as_str()),
                    "Gateway": match (e, &n) { (Some(_), Some(n)) => n.config.gateway.clone(), _ => String::new() },
                    "IPAddress": e.map_or("", |e| e.ip.as_str()),
                    "IPPrefixLen": if e.is_some() { prefix } else { 0 },
                    "IPv6Gateway": "",
                    "GlobalIPv6Address": "",
                    "GlobalIPv6PrefixLen": 0,
                    "MacAddress": e.map_or("", |e| e.mac.as_str()),
                    "DriverOpts": null,
                }),
            );
        }
        Ok(out)
    }

    /// Docker's `network inspect` JSON of a network.
    pub fn inspect_network(&mut self, n: &Network) -> Result<Value> {
        let mut containers = serde_json::Map::new();
        for e in self.store.network_endpoints(n.id())? {
            let name = self
                .store
                .container(&e.container_id)?
                .map(|c| c.name)
                .unwrap_or_default();
            containers.insert(
                e.container_id.clone(),
                json!({
                    "Name": name,
                    "EndpointID": e.endpoint_id,
                    "MacAddress": e.mac,
                    "IPv4Address": format!("{}/{}", e.ip, n.prefix_len()),
                    "IPv6Address": "",
                }),
            );
        }
        let c = &n.config;
        let config = if c.subnet.is_empty() {
            json!([])
        } else {
            json!([{"Subnet": c.subnet, "Gateway": c.gateway}])
        };
        Ok(json!({
            "Name": n.name(),
            "Id": n.id(),
            "Created": n.record.created,
            "Scope": "local",
            "Driver": c.driver,
            "EnableIPv6": false,
            "IPAM": {
                "Driver": "default",
                "Options": if c.builtin { Value::Null } else { json!({}) },
                "Config": config,
            },
            "Internal": c.internal,
            "Attachable": c.attachable,
            "Ingress": false,
            "ConfigFrom": {"Network": ""},
            "ConfigOnly": false,
            "Containers": containers,
            "Options": c.options,
            "Labels": c.labels,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_follow_dockers_pools_and_skip_taken_ones() {
        let taken = [(Ipv4Addr::new(172, 18, 0, 0), 16)];
        let got = default_pools()
            .find(|p| !taken.iter().any(|t| overlaps(*p, *t)))
            .unwrap();
        assert_eq!(got, (Ipv4Addr::new(172, 19, 0, 0), 16));
        assert!(overlaps(
            (Ipv4Addr::new(172, 18, 0, 0), 16),
            (Ipv4Addr::new(172, 18, 5, 0), 24)
        ));
        assert!(!overlaps(
            (Ipv4Addr::new(172, 18, 0, 0), 16),
            (Ipv4Addr::new(172, 19, 0, 0), 16)
        ));
    }

    #[test]
    fn addresses_skip_the_gateway_and_used_ones() {
        let net = (Ipv4Addr::new(10, 0, 0, 0), 30);
        let gw = Ipv4Addr::new(10, 0, 0, 1);
        let mut used = BTreeSet::new();
        assert_eq!(
            next_address(net, gw, &used),
            Some(Ipv4Addr::new(10, 0, 0, 2))
        );
        used.insert(Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(next_address(net, gw, &used), None, "no broadcast address");
    }

    #[test]
    fn cidrs() {
        assert_eq!(
            parse_cidr("172.18.0.0/16"),
            Some((Ipv4Addr::new(172, 18, 0, 0), 16))
        );
        assert_eq!(parse_cidr("172.18.0.0"), None);
        assert_eq!(parse_cidr("172.18.0.0/33"), None);
        assert!(contains(
            (Ipv4Addr::new(172, 18, 0, 0), 16),
            Ipv4Addr::new(172, 18, 3, 4)
        ));
    }
}
