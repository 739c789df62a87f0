//! What `ps` and `inspect` show of containers.

use serde_json::{json, Value};

use store::ContainerRecord;

use crate::config::network_names;
use crate::error::Result;
use crate::lifecycle::{alive, Containers};
use crate::ports::{NetworkState, PublishedPort};

/// One row of `ps`.
#[derive(Debug, Clone)]
pub struct Summary {
    pub record: ContainerRecord,
    /// `Path` and `Args` joined with spaces, arguments holding a space in single quotes
    /// (Docker's COMMAND before the CLI quotes it).
    pub command: String,
    /// The image as `ps` shows it: the name it was created with while that name still means
    /// the same image, else the short image ID (as Docker).
    pub image: String,
    /// Whether its process is alive.
    pub running: bool,
    /// Whether it runs frozen (`docker pause`).
    pub paused: bool,
    /// Bytes of regular files in the writable layer (with `size`).
    pub size_rw: Option<u64>,
    /// The image's size plus `size_rw` (with `size`).
    pub size_root_fs: Option<u64>,
    /// Docker's PORTS column (published and exposed ports of a running container).
    pub ports: String,
    /// Docker's NETWORKS column: `bridge`, `host` or `none`.
    pub networks: String,
}

const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

impl Containers {
    fn sizes(&self, rec: &ContainerRecord) -> (u64, u64) {
        let rw = self
            .snapshots
            .upper_dir(&rec.snapshot)
            .ok()
            .and_then(|u| layer::diff_size(&u).ok())
            .unwrap_or(0);
        let image = self
            .store
            .image(&rec.image_id)
            .ok()
            .flatten()
            .map(|i| i.size)
            .unwrap_or(0);
        (rw, image + rw)
    }

    /// Rows for `ps` (newest first); sizes only when asked, as they walk the layer.
    pub fn summaries(&self, size: bool) -> Result<Vec<Summary>> {
        let mut out = Vec::new();
        for rec in self.store.containers()? {
            // Docker's daemon quotes the arguments that hold a space: `sh -c 'echo a b'`.
            let command = match Self::stored(&rec) {
                Ok(s) => std::iter::once(s.path)
                    .chain(s.args.into_iter().map(|a| {
                        if a.contains(' ') {
                            format!("'{a}'")
                        } else {
                            a
                        }
                    }))
                    .collect::<Vec<_>>()
                    .join(" "),
                Err(_) => String::new(),
            };
            let (size_rw, size_root_fs) = if size {
                let (a, b) = self.sizes(&rec);
                (Some(a), Some(b))
            } else {
                (None, None)
            };
            let running = rec.state.status == "running" && alive(rec.state.pid);
            let paused = running && self.is_paused(&rec);
            let (ports, networks) = match Self::stored(&rec) {
                Ok(s) => {
                    let ports = if running {
                        let exposed: Vec<String> =
                            s.config.exposed_ports.iter().flatten().cloned().collect();
                        let published = NetworkState::read(&self.state_dir(&rec.id))
                            .map(|n| n.ports)
                            .unwrap_or_default();
                        crate::ports::display(&published, &exposed)
                    } else {
                        String::new()
                    };
                    (ports, crate::networks::network_list(&s.options).join(","))
                }
                Err(_) => (String::new(), String::new()),
            };
            let image = match image::resolve(&self.store, &rec.image_name) {
                Ok(id) if id == rec.image_id => rec.image_name.clone(),
                _ => rec.image_id.short(),
            };
            out.push(Summary {
                record: rec,
                command,
                image,
                running,
                paused,
                size_rw,
                size_root_fs,
                ports,
                networks,
            });
        }
        Ok(out)
    }

    /// The ports a running container publishes (`docker port`), sorted; empty when it is
    /// not running or not on the private network.
    pub fn published_ports(&self, name: &str) -> Result<Vec<PublishedPort>> {
        let rec = self.find(name)?;
        if rec.state.status != "running" || !alive(rec.state.pid) {
            return Ok(Vec::new());
        }
        let mut p = NetworkState::read(&self.state_dir(&rec.id))
            .map(|n| n.ports)
            .unwrap_or_default();
        p.sort();
        Ok(p)
    }

    /// Docker's `NetworkSettings`: the addresses and published ports while it runs on the
    /// private network, empty values otherwise.
    fn network_settings(
        &self,
        rec: &ContainerRecord,
        stored: &crate::config::Stored,
        running: bool,
    ) -> Value {
        let (_, net_name) = network_names(&stored.options);
        let user = crate::networks::is_user_network(&stored.options.network);
        let state = if running && (net_name == "bridge" || user) {
            NetworkState::read(&self.state_dir(&rec.id))
        } else {
            None
        };
        let mut ports = serde_json::Map::new();
        if let Some(n) = &state {
            for e in stored.config.exposed_ports.iter().flatten() {
                ports.insert(e.clone(), Value::Null);
            }
            for p in &n.ports {
                let entry = ports.entry(p.key()).or_insert(Value::Null);
                if entry.is_null() {
                    *entry = json!([]);
                }
                if let Some(a) = entry.as_array_mut() {
                    a.push(json!({"HostIp": p.host_ip, "HostPort": p.host_port.to_string()}));
                }
            }
        }
        // On a user-defined network, the top-level addresses (the default bridge's) are
        // empty, as Docker shows them.
        let n = if user {
            NetworkState::default()
        } else {
            state.unwrap_or_default()
        };
        let mut networks = serde_json::Map::new();
        let (sandbox_id, sandbox_key) = if running && net_name != "host" {
            (rec.id.clone(), format!("/proc/{}/ns/net", rec.state.pid))
        } else {
            (String::new(), String::new())
        };
        let endpoint = json!({
            "IPAMConfig": null,
            "Links": null,
            "Aliases": null,
            "NetworkID": "",
            "EndpointID": "",
            "Gateway": n.gateway,
            "IPAddress": n.ip,
            "IPPrefixLen": n.prefix_len,
            "IPv6Gateway": "",
            "GlobalIPv6Address": "",
            "GlobalIPv6PrefixLen": 0,
            "MacAddress": n.mac,
            "DriverOpts": null,
        });
        if !user {
            networks.insert(net_name.to_string(), endpoint);
        }
        networks.extend(
            self.network_entries(rec, stored, running)
                .unwrap_or_default(),
        );
        json!({
            "Bridge": "",
            "SandboxID": sandbox_id,
            "HairpinMode": false,
            "LinkLocalIPv6Address": "",
            "LinkLocalIPv6PrefixLen": 0,
            "Ports": ports,
            "SandboxKey": sandbox_key,
            "SecondaryIPAddresses": null,
            "SecondaryIPv6Addresses": null,
            "EndpointID": "",
            "Gateway": n.gateway,
            "GlobalIPv6Address": "",
            "GlobalIPv6PrefixLen": 0,
            "IPAddress": n.ip,
            "IPPrefixLen": n.prefix_len,
            "IPv6Gateway": "",
            "MacAddress": n.mac,
            "Networks": networks,
        })
    }

    /// Docker's `inspect` JSON of a container (`SizeRw`/`SizeRootFs` with `size`).
    pub fn inspect(&self, name: &str, size: bool) -> Result<Value> {
        let rec = self.find(name)?;
        let stored = Self::stored(&rec)?;
        let o = &stored.options;
        let st = &rec.state;
        let running = st.status == "running" && alive(st.pid);
        let paused = running && self.is_paused(&rec);
        let dir = self.state_dir(&rec.id);
        let (restart_name, restart_count) =
            crate::config::restart_policy(o.restart.as_deref()).unwrap_or(("no".into(), 0));
        let upper = match self.snapshots.upper_dir(&rec.snapshot) {
            Ok(u) => Some(u),
            Err(snapshot::Error::NotFound(_)) => None,
            Err(e) => return Err(e.into()),
        };
        let lowers = self.lowers(&rec.image_id)?;
        let graph = match &upper {
            Some(u) => json!({
                "Data": {
                    "LowerDir": lowers.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(":"),
                    "MergedDir": dir.join("rootfs").display().to_string(),
                    "UpperDir": u.display().to_string(),
                    "WorkDir": u.parent().map(|p| p.join("work").display().to_string()).unwrap_or_default(),
                },
                "Name": self.snapshots.name(),
            }),
            None => json!({"Data": null, "Name": self.snapshots.name()}),
        };
        // Docker lists `Mounts` from a map (no order of its own): by destination here.
        let points = stored
            .mount_points
            .clone()
            .unwrap_or_else(|| crate::config::legacy_mount_points(o));
        let mut sorted = points.clone();
        sorted.sort_by(|a, b| a.destination.cmp(&b.destination));
        let mounts: Vec<Value> = sorted
            .iter()
            .map(crate::mounts::MountPoint::inspect)
            .collect();
        let tmpfs: serde_json::Map<String, Value> = o
            .tmpfs
            .iter()
            .map(|t| {
                let (d, opts) = t.split_once(':').unwrap_or((t, ""));
                (d.to_string(), Value::String(opts.to_string()))
            })
            .collect();
        // `--mount` flags, as Docker lists them under HostConfig.Mounts.
        let host_mounts: Vec<Value> = match &stored.mount_points {
            Some(p) => p.iter().filter_map(|m| m.spec.clone()).collect(),
            None => points.iter().filter_map(|m| m.spec.clone()).collect(),
        };
        let host_mounts = if host_mounts.is_empty() {
            Value::Null
        } else {
            Value::Array(host_mounts)
        };
        let strings = |v: &Vec<String>| {
            if v.is_empty() {
                Value::Null
            } else {
                json!(v)
            }
        };
        let mut v = json!({
            "Id": rec.id,
            "Created": rec.created,
            "Path": stored.path,
            "Args": stored.args,
            "State": {
                "Status": if paused { "paused" } else if running { "running" } else if st.status == "running" { "exited" } else { st.status.as_str() },
                "Running": running,
                "Paused": paused,
                "Restarting": false,
                "OOMKilled": false,
                "Dead": false,
                "Pid": if running { st.pid } else { 0 },
                "ExitCode": st.exit_code,
                "Error": st.error,
                "StartedAt": st.started_at.clone().unwrap_or_else(|| ZERO_TIME.into()),
                "FinishedAt": st.finished_at.clone().unwrap_or_else(|| ZERO_TIME.into()),
            },
            "Image": rec.image_id.to_string(),
            "ResolvConfPath": dir.join("resolv.conf").display().to_string(),
            "HostnamePath": dir.join("hostname").display().to_string(),
            "HostsPath": dir.join("hosts").display().to_string(),
            "LogPath": self.log_path(&rec.id).display().to_string(),
            "Name": format!("/{}", rec.name),
            "RestartCount": 0,
            "Driver": self.snapshots.name(),
            "Platform": "linux",
            "MountLabel": "",
            "ProcessLabel": "",
            "AppArmorProfile": "",
            "ExecIDs": null,
            // Every field of Docker 20.10's HostConfig, in its order, with its zero values
            // for what strata has no setting for (templates such as `{{.HostConfig.PidMode}}`
            // and clients reading `CpuQuota` find them, as on Docker).
            "HostConfig": {
                "Binds": strings(&o.volumes.iter().filter(|v| v.contains(':')).cloned().collect()),
                "ContainerIDFile": "",
                // Docker's default driver, whose logs strata keeps (Compose attaches only to
                // containers with a log driver).
                "LogConfig": {"Type": "json-file", "Config": {}},
                "NetworkMode": network_names(o).0,
                "PortBindings": crate::ports::parse_publish(&o.publish).unwrap_or_default(),
                "RestartPolicy": {"Name": restart_name, "MaximumRetryCount": restart_count},
                "AutoRemove": o.auto_remove,
                "VolumeDriver": "",
                "VolumesFrom": strings(&o.volumes_from),
                "CapAdd": strings(&o.cap_add),
                "CapDrop": strings(&o.cap_drop),
                "CgroupnsMode": if runtime::cgroup_v2() { "private" } else { "host" },
                "Dns": o.dns,
                "DnsOptions": o.dns_options,
                "DnsSearch": o.dns_search,
                "ExtraHosts": strings(&o.extra_hosts),
                "GroupAdd": null,
                "IpcMode": "private",
                "Cgroup": "",
                "Links": null,
                "OomScoreAdj": 0,
                "PidMode": "",
                "Privileged": o.privileged,
                "PublishAllPorts": o.publish_all,
                "ReadonlyRootfs": o.read_only,
                "SecurityOpt": strings(&o.security_opt),
                "Tmpfs": if tmpfs.is_empty() { Value::Null } else { Value::Object(tmpfs) },
                "UTSMode": "",
                "UsernsMode": "",
                "ShmSize": o.shm_size.unwrap_or(runtime::DEFAULT_SHM_SIZE),
                "Runtime": "runc",
                "ConsoleSize": [0, 0],
                "Isolation": "",
                "CpuShares": o.cpu_shares.unwrap_or(0),
                "Memory": o.memory.unwrap_or(0),
                "NanoCpus": o.nano_cpus.unwrap_or(0),
                "CgroupParent": "",
                "BlkioWeight": 0,
                "BlkioWeightDevice": [],
                "BlkioDeviceReadBps": null,
                "BlkioDeviceWriteBps": null,
                "BlkioDeviceReadIOps": null,
                "BlkioDeviceWriteIOps": null,
                "CpuPeriod": 0,
                "CpuQuota": 0,
                "CpuRealtimePeriod": 0,
                "CpuRealtimeRuntime": 0,
                "CpusetCpus": o.cpuset_cpus.clone().unwrap_or_default(),
                "CpusetMems": "",
                "Devices": o.devices,
                "DeviceCgroupRules": strings(&o.device_cgroup_rules),
                "DeviceRequests": null,
                "KernelMemory": 0,
                "KernelMemoryTCP": 0,
                "MemoryReservation": 0,
                "MemorySwap": o.memory_swap.unwrap_or(0),
                "MemorySwappiness": null,
                "OomKillDisable": false,
                "PidsLimit": o.pids_limit,
                "Ulimits": ulimits_json(&o.ulimits),
                "CpuCount": 0,
                "CpuPercent": 0,
                "IOMaximumIOps": 0,
                "IOMaximumBandwidth": 0,
                "Mounts": host_mounts,
                "MaskedPaths": if o.privileged { Value::Null } else { json!(runtime::MASKED_PATHS) },
                "ReadonlyPaths": if o.privileged { Value::Null } else { json!(runtime::READONLY_PATHS) },
                "Init": o.init,
            },
            "GraphDriver": graph,
            "Mounts": mounts,
            "Config": serde_json::to_value(&stored.config).unwrap_or(Value::Null),
            "NetworkSettings": self.network_settings(&rec, &stored, running),
        });
        // Docker leaves HostConfig's empty `omitempty` fields out.
        if let Some(hc) = v.get_mut("HostConfig").and_then(Value::as_object_mut) {
            for k in ["Tmpfs", "Mounts", "Init"] {
                if hc.get(k).is_some_and(Value::is_null) {
                    hc.shift_remove(k);
                }
            }
        }
        if size {
            let (rw, rootfs) = self.sizes(&rec);
            v["SizeRw"] = json!(rw);
            v["SizeRootFs"] = json!(rootfs);
        }
        Ok(v)
    }
}

/// `HostConfig.Ulimits` as Docker shows them: `[{"Name", "Hard", "Soft"}]` (`-1` for
/// unlimited), `null` without any.
fn ulimits_json(ulimits: &[String]) -> Value {
    if ulimits.is_empty() {
        return Value::Null;
    }
    let n = |v: u64| if v == u64::MAX { json!(-1) } else { json!(v) };
    Value::Array(
        ulimits
            .iter()
            .filter_map(|u| {
                let r = runtime::Rlimit::parse(u).ok()?;
                let name = u.split_once('=')?.0;
                // The order Docker's inspect prints them in.
                Some(json!({"Hard": n(r.hard), "Name": name, "Soft": n(r.soft)}))
            })
            .collect(),
    )
}
