//! `/containers/…`: the lifecycle through `container::Containers`, as `create`, `start`,
//! `stop`, `kill`, `restart`, `wait`, `rm`, `rename`, `pause`, `ps`, `inspect` and `logs` use
//! it. A started container runs under its own monitor process (`container-monitor`, the one
//! `run -d` starts), so it outlives the request and the service.

use std::time::Duration;

use std::os::unix::fs::OpenOptionsExt;

use bytes::Bytes;
use hyper::StatusCode;
use serde_json::{json, Map, Value};
use tokio::sync::mpsc;

use super::reply::{ApiError, Reply, Result};
use super::route::Req;
use crate::commands::open_containers;

fn no_such_container(id: &str) -> ApiError {
    ApiError::not_found(format!("No such container: {id}"))
}

/// Finds a container by name or ID (Docker's 404 when there is none).
fn find(c: &container::Containers, id: &str) -> Result<store::ContainerRecord> {
    c.find(id).map_err(|e| match e {
        container::Error::Store(store::Error::ContainerNotFound(_)) => no_such_container(id),
        e => e.into(),
    })
}

fn unix_secs(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| t.timestamp())
        .unwrap_or(0)
}

/// `GET /containers/json?all&limit&size&filters`: `ps`'s rows as Docker's
/// `ContainerSummary`.
pub fn list(req: &Req<'_>) -> Result<Reply> {
    let mut c = open_containers(req.root)?;
    let q = &req.query;
    let rows = c.summaries(q.flag("size"))?;
    let state_of = crate::commands::ps::state_of;
    let filters = q.filters()?;
    use crate::commands::ps_filter::{apply, FilterError};
    let (mut rows, stopped_too) = apply(&mut c, rows, &filters).map_err(|e| match e {
        FilterError::Invalid(m) => ApiError::bad_request(m),
        FilterError::NotFound(m) => ApiError::not_found(m),
    })?;
    // Docker lists stopped containers with `all`, or when a `status` filter asks for them
    // (other filters, as Compose's `label`, apply to the running ones only).
    if !q.flag("all") && !stopped_too {
        rows.retain(|s| s.running);
    }
    if let Some(n) = q.int("limit")?.filter(|n| *n > 0) {
        rows.truncate(n as usize);
    }
    let now = chrono::Utc::now().timestamp_micros() as f64 / 1e6;
    let mut out = Vec::new();
    for s in &rows {
        let labels = c.labels(&s.record).unwrap_or_default();
        let network = s.networks.clone();
        let mut v = json!({
            "Id": s.record.id,
            "Names": [format!("/{}", s.record.name)],
            "Image": s.image,
            "ImageID": s.record.image_id.to_string(),
            "Command": s.command,
            "Created": unix_secs(&s.record.created),
            "Ports": [],
            "Labels": labels,
            "State": state_of(s),
            "Status": crate::commands::ps::status(s, now),
            "HostConfig": {"NetworkMode": if network.is_empty() { "default".to_string() } else { network.clone() }},
            "NetworkSettings": {"Networks": {}},
            "Mounts": [],
        });
        // Networks, ports and mounts as `inspect` has them.
        if let Ok(doc) = c.inspect(&s.record.id, false) {
            if let Some(n) = doc.pointer("/NetworkSettings/Networks") {
                v["NetworkSettings"]["Networks"] = n.clone();
            }
            if let Some(m) = doc.get("Mounts").filter(|m| m.is_array()) {
                v["Mounts"] = m.clone();
            }
            v["Ports"] = json!(summary_ports(doc.pointer("/NetworkSettings/Ports")));
        }
        if let (Some(rw), Some(rootfs)) = (s.size_rw, s.size_root_fs) {
            v["SizeRw"] = json!(rw);
            v["SizeRootFs"] = json!(rootfs);
        }
        out.push(v);
    }
    Ok(Reply::ok(Value::Array(out)))
}

/// Docker's `Port` list of a container summary from `inspect`'s `NetworkSettings.Ports`
/// map: one entry per binding (`IP`, `PrivatePort`, `PublicPort`, `Type`), and one without
/// the public side for an exposed port that is not published.
fn summary_ports(ports: Option<&Value>) -> Vec<Value> {
    let mut out = Vec::new();
    let Some(map) = ports.and_then(Value::as_object) else {
        return out;
    };
    for (key, bindings) in map {
        let (port, proto) = key.split_once('/').unwrap_or((key, "tcp"));
        let Ok(private) = port.parse::<u16>() else {
            continue;
        };
        match bindings.as_array().filter(|b| !b.is_empty()) {
            None => out.push(json!({"PrivatePort": private, "Type": proto})),
            Some(list) => {
                for b in list {
                    let public = b
                        .get("HostPort")
                        .and_then(Value::as_str)
                        .and_then(|p| p.parse::<u16>().ok());
                    let ip = b.get("HostIp").and_then(Value::as_str).unwrap_or("");
                    let mut p = json!({"PrivatePort": private, "Type": proto});
                    if let Some(public) = public {
                        p["PublicPort"] = json!(public);
                        p["IP"] = json!(if ip.is_empty() { "0.0.0.0" } else { ip });
                    }
                    out.push(p);
                }
            }
        }
    }
    out
}

/// `GET /containers/ID/json?size`: `inspect`'s document.
pub fn inspect(req: &Req<'_>, id: &str) -> Result<Reply> {
    let c = open_containers(req.root)?;
    find(&c, id)?;
    Ok(Reply::ok(c.inspect(id, req.query.flag("size"))?))
}

/// A JSON value that is a string or an array of strings, as a list (`null`: none).
fn strings(v: Option<&Value>) -> Result<Option<Vec<String>>> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(vec![s.clone()])),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| {
                x.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| ApiError::bad_request("expected a string"))
            })
            .collect::<Result<Vec<_>>>()
            .map(Some),
        Some(_) => Err(ApiError::bad_request(
            "expected a string or a list of strings",
        )),
    }
}

fn string(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn keys(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_object)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

/// Settings of a create request that strata does not have: refused by name (400) when set
/// to anything but their zero value, rather than silently dropped, so that nobody runs a
/// container believing it has a limit, a healthcheck or a DNS server it does not have.
/// (Clients send most fields with zero values; those pass.)
fn refuse_unsupported(body: &Value, hc: &Value) -> Result<()> {
    const CONFIG: &[&str] = &[
        "Healthcheck",
        "Shell",
        "OnBuild",
        "MacAddress",
        "Domainname",
    ];
    const HOST: &[&str] = &[
        "Sysctls",
        "Links",
        "PidMode",
        "IpcMode",
        "UTSMode",
        "UsernsMode",
        "CgroupParent",
        "BlkioWeight",
        "BlkioWeightDevice",
        "BlkioDeviceReadBps",
        "BlkioDeviceWriteBps",
        "BlkioDeviceReadIOps",
        "BlkioDeviceWriteIOps",
        "CpuPeriod",
        "CpuQuota",
        "CpuRealtimePeriod",
        "CpuRealtimeRuntime",
        "CpusetMems",
        "MemoryReservation",
        "KernelMemory",
        "OomKillDisable",
        "OomScoreAdj",
        "GroupAdd",
        "Runtime",
        "StorageOpt",
        "DeviceRequests",
    ];
    let set = |v: &Value| match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    };
    for k in CONFIG {
        if body.get(*k).is_some_and(set) {
            return Err(ApiError::bad_request(format!(
                "strata does not support the container setting {k} yet"
            )));
        }
    }
    for k in HOST {
        if hc.get(*k).is_some_and(set) {
            return Err(ApiError::bad_request(format!(
                "strata does not support the container setting HostConfig.{k} yet"
            )));
        }
    }
    // Docker's default log driver is the only one (`logs` reads its files).
    if let Some(t) = hc.pointer("/LogConfig/Type").and_then(Value::as_str) {
        if !t.is_empty() && t != "json-file" {
            return Err(ApiError::bad_request(format!(
                "strata does not support the log driver {t:?} yet (only json-file)"
            )));
        }
    }
    Ok(())
}

/// Docker's `ContainerCreateConfig` (the container's `Config` with `HostConfig` and
/// `NetworkingConfig` beside it) as the options of `create`: what the docker CLI sends for
/// `docker create`/`run` is what strata's own flags record.
pub fn create_options(
    name: Option<String>,
    body: &Value,
) -> Result<(String, container::CreateOptions)> {
    let image = string(body.get("Image")).ok_or_else(|| {
        ApiError::bad_request("Config cannot be empty in order to create a container")
    })?;
    let empty = Value::Object(Map::new());
    let hc = body.get("HostConfig").unwrap_or(&empty);
    refuse_unsupported(body, hc)?;
    let mut o = container::CreateOptions {
        name,
        ..Default::default()
    };
    let cmd = strings(body.get("Cmd"))?.unwrap_or_default();
    match strings(body.get("Entrypoint"))? {
        Some(ep) if !ep.is_empty() => {
            o.entrypoint = Some(ep[0].clone());
            o.args = ep[1..].iter().cloned().chain(cmd).collect();
        }
        // `"Entrypoint": [""]` / `[]`: reset the image's entrypoint.
        Some(_) => {
            o.entrypoint = Some(String::new());
            o.args = cmd;
        }
        None => o.args = cmd,
    }
    o.env = strings(body.get("Env"))?.unwrap_or_default();
    o.workdir = string(body.get("WorkingDir"));
    o.user = string(body.get("User"));
    o.hostname = string(body.get("Hostname"));
    o.tty = body.get("Tty").and_then(Value::as_bool).unwrap_or(false);
    o.interactive = body
        .get("OpenStdin")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    o.stdin_once = body
        .get("StdinOnce")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    o.stop_signal = string(body.get("StopSignal"));
    o.stop_timeout = body.get("StopTimeout").and_then(Value::as_u64);
    if let Some(labels) = body.get("Labels").and_then(Value::as_object) {
        for (k, v) in labels {
            o.labels
                .push(format!("{k}={}", v.as_str().unwrap_or_default()));
        }
    }
    // Anonymous volumes (`-v /data`), then the binds.
    o.volumes = keys(body.get("Volumes"));
    o.volumes
        .extend(strings(hc.get("Binds"))?.unwrap_or_default());
    o.volumes_from = strings(hc.get("VolumesFrom"))?.unwrap_or_default();
    o.extra_hosts = strings(hc.get("ExtraHosts"))?.unwrap_or_default();
    o.shm_size = hc.get("ShmSize").and_then(Value::as_u64).filter(|s| *s > 0);
    if let Some(list) = hc.get("Ulimits").and_then(Value::as_array) {
        for u in list {
            let name = u.get("Name").and_then(Value::as_str).unwrap_or("");
            let v = |k: &str| u.get(k).and_then(Value::as_i64).unwrap_or(-1).to_string();
            let spec = format!("{name}={}:{}", v("Soft"), v("Hard"));
            runtime::Rlimit::parse(&spec).map_err(ApiError::bad_request)?;
            o.ulimits.push(spec);
        }
    }
    o.dns = strings(hc.get("Dns"))?.unwrap_or_default();
    o.dns_search = strings(hc.get("DnsSearch"))?.unwrap_or_default();
    o.dns_options = strings(hc.get("DnsOptions"))?.unwrap_or_default();
    container::check_dns_servers(&o.dns).map_err(|e| ApiError::bad_request(e.to_string()))?;
    container::parse_extra_hosts(&o.extra_hosts)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    o.network = string(hc.get("NetworkMode")).unwrap_or_else(|| "default".into());
    if let Some(ports) = hc.get("PortBindings").and_then(Value::as_object) {
        for (port, bindings) in ports {
            let list = bindings.as_array().cloned().unwrap_or_default();
            if list.is_empty() {
                o.publish.push(port.clone());
            }
            for b in list {
                let ip = string(b.get("HostIp"));
                let host = string(b.get("HostPort")).unwrap_or_default();
                o.publish.push(match ip {
                    Some(ip) => format!("{ip}:{host}:{port}"),
                    None if host.is_empty() => port.clone(),
                    None => format!("{host}:{port}"),
                });
            }
        }
    }
    // `ExposedPorts` beyond the image's (`--expose`; published ones are there too).
    if let Some(ports) = body.get("ExposedPorts").and_then(Value::as_object) {
        o.expose = ports.keys().cloned().collect();
        container::parse_expose(&o.expose).map_err(|e| ApiError::bad_request(e.to_string()))?;
    }
    o.publish_all = hc
        .get("PublishAllPorts")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    o.privileged = hc
        .get("Privileged")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    o.read_only = hc
        .get("ReadonlyRootfs")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    o.cap_add = strings(hc.get("CapAdd"))?.unwrap_or_default();
    o.cap_drop = strings(hc.get("CapDrop"))?.unwrap_or_default();
    o.security_opt = strings(hc.get("SecurityOpt"))?.unwrap_or_default();
    o.auto_remove = hc
        .get("AutoRemove")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    o.init = hc.get("Init").and_then(Value::as_bool);
    o.memory = hc.get("Memory").and_then(Value::as_u64).filter(|m| *m > 0);
    o.memory_swap = hc
        .get("MemorySwap")
        .and_then(Value::as_i64)
        .filter(|m| *m != 0);
    o.nano_cpus = hc
        .get("NanoCpus")
        .and_then(Value::as_u64)
        .filter(|m| *m > 0);
    o.cpu_shares = hc
        .get("CpuShares")
        .and_then(Value::as_u64)
        .filter(|m| *m > 0);
    o.cpuset_cpus = string(hc.get("CpusetCpus"));
    o.pids_limit = hc
        .get("PidsLimit")
        .and_then(Value::as_i64)
        .filter(|m| *m != 0);
    if let Some(rp) = hc.get("RestartPolicy") {
        match string(rp.get("Name")).as_deref() {
            None | Some("no") => {}
            Some("on-failure") => {
                let n = rp
                    .get("MaximumRetryCount")
                    .and_then(Value::as_u64)
                    .unwrap_or(0);
                o.restart = Some(if n > 0 {
                    format!("on-failure:{n}")
                } else {
                    "on-failure".into()
                });
            }
            Some(other) => o.restart = Some(other.to_string()),
        }
    }
    if let Some(t) = hc.get("Tmpfs").and_then(Value::as_object) {
        for (path, opts) in t {
            let opts = opts.as_str().unwrap_or_default();
            o.tmpfs.push(if opts.is_empty() {
                path.clone()
            } else {
                format!("{path}:{opts}")
            });
        }
    }
    if let Some(mounts) = hc.get("Mounts").and_then(Value::as_array) {
        for m in mounts {
            let mut spec = vec![format!(
                "type={}",
                string(m.get("Type")).unwrap_or_else(|| "volume".into())
            )];
            if let Some(s) = string(m.get("Source")) {
                spec.push(format!("source={s}"));
            }
            if let Some(t) = string(m.get("Target")) {
                spec.push(format!("target={t}"));
            }
            if m.get("ReadOnly").and_then(Value::as_bool) == Some(true) {
                spec.push("readonly".into());
            }
            o.mounts.push(spec.join(","));
        }
    }
    // `--network NAME` and its aliases.
    if let Some(eps) = body
        .get("NetworkingConfig")
        .and_then(|n| n.get("EndpointsConfig"))
        .and_then(Value::as_object)
    {
        if let Some(ep) = eps.get(&o.network) {
            o.network_aliases = strings(ep.get("Aliases"))?.unwrap_or_default();
            o.ip = ep
                .get("IPAMConfig")
                .and_then(|i| string(i.get("IPv4Address")));
        }
    }
    Ok((image, o))
}

/// `POST /containers/create?name=` (201 `{"Id", "Warnings"}`); a missing image is Docker's
/// 404 `No such image`, on which the docker CLI pulls and asks again.
pub fn create(req: &Req<'_>) -> Result<Reply> {
    let body: Value = serde_json::from_slice(req.body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON in the request body: {e}")))?;
    let name = req
        .query
        .get("name")
        .filter(|n| !n.is_empty())
        .map(str::to_string);
    let (image_name, opts) = create_options(name, &body)?;
    let mut c = open_containers(req.root)?;
    if let Err(image::Error::NoSuchImage(_)) = image::resolve(c.store(), &image_name) {
        return Err(ApiError::not_found(format!("No such image: {image_name}")));
    }
    let rec = c.create(&image_name, &opts)?;
    Ok(Reply::Json(
        StatusCode::CREATED,
        json!({"Id": rec.id, "Warnings": []}),
    ))
}

fn monitor(req: &Req<'_>, id: &str) -> Result<std::process::Command> {
    Ok(crate::commands::run::monitor_command(req.root, id)?)
}

/// `POST /containers/ID/start` (204; 304 when it already runs).
pub fn start(req: &Req<'_>, id: &str) -> Result<Reply> {
    let mut c = open_containers(req.root)?;
    let rec = find(&c, id)?;
    match c.start_detached(&rec.id, monitor(req, &rec.id)?) {
        Ok(()) => Ok(Reply::Empty(StatusCode::NO_CONTENT)),
        Err(container::Error::AlreadyRunning(_)) => Ok(Reply::Empty(StatusCode::NOT_MODIFIED)),
        Err(e) => Err(e.into()),
    }
}

fn running(c: &container::Containers, id: &str) -> bool {
    c.summaries(false)
        .ok()
        .and_then(|rows| rows.into_iter().find(|s| s.record.id == id))
        .is_some_and(|s| s.running)
}

/// `POST /containers/ID/stop?t=` (204; 304 when it does not run).
pub fn stop(req: &Req<'_>, id: &str) -> Result<Reply> {
    let mut c = open_containers(req.root)?;
    let rec = find(&c, id)?;
    if !running(&c, &rec.id) {
        return Ok(Reply::Empty(StatusCode::NOT_MODIFIED));
    }
    let t = req.query.int("t")?.map(|t| t.max(0) as u64);
    c.stop(&rec.id, t)?;
    Ok(Reply::Empty(StatusCode::NO_CONTENT))
}

/// `POST /containers/ID/restart?t=` (204).
pub fn restart(req: &Req<'_>, id: &str) -> Result<Reply> {
    let mut c = open_containers(req.root)?;
    let rec = find(&c, id)?;
    let t = req.query.int("t")?.map(|t| t.max(0) as u64);
    c.stop(&rec.id, t)?;
    c.start_detached(&rec.id, monitor(req, &rec.id)?)?;
    c.record_event_for("restart", &rec.id, &[]);
    Ok(Reply::Empty(StatusCode::NO_CONTENT))
}

/// `POST /containers/ID/kill?signal=` (204; 409 when it does not run).
pub fn kill(req: &Req<'_>, id: &str) -> Result<Reply> {
    let mut c = open_containers(req.root)?;
    let rec = find(&c, id)?;
    let signal = req
        .query
        .get("signal")
        .filter(|s| !s.is_empty())
        .unwrap_or("KILL");
    c.kill(&rec.id, signal)?;
    Ok(Reply::Empty(StatusCode::NO_CONTENT))
}

/// `POST /containers/ID/wait?condition=`: the headers at once (as Docker, so that a client
/// can start the container after sending this), the exit code when it is not running
/// (`{"StatusCode": N, "Error": null}`). `next-exit` on a container not started yet waits
/// for its start first; `removed` until it is gone.
pub fn wait(req: &Req<'_>, id: &str) -> Result<Reply> {
    let c = open_containers(req.root)?;
    let rec = find(&c, id)?;
    let condition = req
        .query
        .get("condition")
        .unwrap_or("not-running")
        .to_string();
    let root = req.root.to_path_buf();
    let (tx, rx) = mpsc::channel::<Bytes>(1);
    std::thread::spawn(move || {
        let result = (|| -> anyhow::Result<i32> {
            let mut c = open_containers(&root)?;
            if (condition == "next-exit" || condition == "removed") && rec.state.status != "running"
            {
                loop {
                    match c.find(&rec.id) {
                        Ok(r) if r.state.status == "running" => break,
                        // Started and already ended between two looks.
                        Ok(r)
                            if r.state.status != "created"
                                && r.state.started_at != rec.state.started_at =>
                        {
                            break
                        }
                        Ok(_) => {}
                        // Gone already: its `die` event has the exit code (below).
                        Err(_) => break,
                    }
                    if tx.is_closed() {
                        return Ok(0);
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
            let code = match c.wait(&rec.id) {
                Ok(code) => code,
                Err(container::Error::Store(store::Error::ContainerNotFound(_))) => {
                    rec.state.exit_code
                }
                Err(e) => return Err(e.into()),
            };
            // A container removed at its end (`--rm`) took its state along: its `die` event
            // keeps the exit code.
            let code = if c.find(&rec.id).is_err() {
                died_with(&root, &rec.id).unwrap_or(code)
            } else {
                code
            };
            if condition == "removed" {
                while c.find(&rec.id).is_ok() && !tx.is_closed() {
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
            Ok(code)
        })();
        let body = match result {
            Ok(code) => json!({"StatusCode": code, "Error": null}),
            Err(e) => json!({"StatusCode": -1, "Error": {"Message": format!("{e:#}")}}),
        };
        let mut b = serde_json::to_vec(&body).unwrap_or_default();
        b.push(b'\n');
        let _ = tx.blocking_send(Bytes::from(b));
    });
    Ok(Reply::Stream("application/json", rx))
}

/// The exit code of the last `die` event of container `id` in the journal.
fn died_with(root: &std::path::Path, id: &str) -> Option<i32> {
    let events = store::events::read_all(root).ok()?;
    events
        .iter()
        .rev()
        .find(|e| e.kind == "container" && e.action == "die" && e.actor.id == id)
        .and_then(|e| e.actor.attributes.get("exitCode"))
        .and_then(|c| c.parse().ok())
}

/// `DELETE /containers/ID?force&v` (204).
pub fn remove(req: &Req<'_>, id: &str) -> Result<Reply> {
    let mut c = open_containers(req.root)?;
    let rec = find(&c, id)?;
    c.remove_with_volumes(&rec.id, req.query.flag("force"), req.query.flag("v"))
        .map_err(|e| match e {
            container::Error::Running(_) => ApiError::new(
                StatusCode::CONFLICT,
                format!(
                    "You cannot remove a running container {}. Stop the container before attempting removal or force remove",
                    rec.id
                ),
            ),
            e => e.into(),
        })?;
    Ok(Reply::Empty(StatusCode::NO_CONTENT))
}

/// `POST /containers/ID/rename?name=` (204).
pub fn rename(req: &Req<'_>, id: &str) -> Result<Reply> {
    let name = req
        .query
        .get("name")
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::bad_request("Neither old nor new names may be empty"))?;
    let mut c = open_containers(req.root)?;
    let rec = find(&c, id)?;
    c.rename(&rec.id, name)?;
    Ok(Reply::Empty(StatusCode::NO_CONTENT))
}

/// `POST /containers/ID/pause` and `/unpause` (204).
pub fn pause(req: &Req<'_>, id: &str, pause: bool) -> Result<Reply> {
    let c = open_containers(req.root)?;
    let rec = find(&c, id)?;
    if pause {
        c.pause(&rec.id)?;
    } else {
        c.unpause(&rec.id)?;
    }
    Ok(Reply::Empty(StatusCode::NO_CONTENT))
}

/// `POST /containers/ID/update`: Docker's `UpdateConfig` (the docker CLI sends every field,
/// zero meaning unchanged; `PidsLimit` null meaning unchanged) through the CLI's `update`:
/// new limits in the running container's cgroups and its record. `{"Warnings": []}`.
pub fn update(req: &Req<'_>, id: &str) -> Result<Reply> {
    let body: Value = serde_json::from_slice(req.body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON in the request body: {e}")))?;
    let num = |k: &str| body.get(k).and_then(Value::as_i64).filter(|v| *v != 0);
    let restart = body
        .pointer("/RestartPolicy/Name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .map(|n| {
            match body
                .pointer("/RestartPolicy/MaximumRetryCount")
                .and_then(Value::as_i64)
                .filter(|m| *m > 0)
            {
                Some(m) if n == "on-failure" => format!("{n}:{m}"),
                _ => n.to_string(),
            }
        });
    let u = container::UpdateOptions {
        memory: num("Memory").map(|m| m.max(0) as u64),
        memory_swap: num("MemorySwap"),
        nano_cpus: num("NanoCpus").map(|m| m.max(0) as u64),
        cpu_shares: num("CpuShares").map(|m| m.max(0) as u64),
        cpuset_cpus: body
            .get("CpusetCpus")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        pids_limit: body.get("PidsLimit").and_then(Value::as_i64),
        restart,
    };
    let mut c = open_containers(req.root)?;
    let rec = find(&c, id)?;
    c.update(&rec.id, &u)?;
    Ok(Reply::ok(json!({"Warnings": []})))
}

/// `POST /containers/ID/resize?h=&w=`: sizes the terminal of a container made with one
/// (`run -it`); 409 when it does not run, as Docker's. The terminal is reached through the
/// container's first process's standard input (its slave side), so the monitor that holds
/// the master need not be asked.
pub fn resize(req: &Req<'_>, id: &str) -> Result<Reply> {
    use std::os::fd::AsFd;
    let c = open_containers(req.root)?;
    let rec = find(&c, id)?;
    let (rows, cols) = super::exec::terminal_size_query(req)?;
    let not_running = || {
        ApiError::new(
            StatusCode::CONFLICT,
            format!("Container {} is not running", rec.id),
        )
    };
    if rec.state.status != "running" || rec.state.pid <= 0 {
        return Err(not_running());
    }
    let stdin = format!("/proc/{}/fd/0", rec.state.pid);
    let Ok(f) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY | libc::O_NONBLOCK)
        .open(&stdin)
    else {
        return Err(not_running());
    };
    if runtime::terminal_size(f.as_fd()).is_some() || rustix_isatty(&f) {
        runtime::resize_terminal(f.as_fd(), rows, cols)
            .map_err(|e| anyhow::anyhow!("resize {}: {e}", rec.id))?;
    }
    Ok(Reply::Empty(StatusCode::OK))
}

/// Whether `f` is a terminal.
fn rustix_isatty(f: &std::fs::File) -> bool {
    use std::os::fd::AsRawFd;
    // SAFETY: isatty on a descriptor we own.
    unsafe { libc::isatty(f.as_raw_fd()) == 1 }
}

/// `POST /containers/prune?filters`: removes the stopped containers (`until`, `label`,
/// `label!` as `container prune --filter`).
pub fn prune(req: &Req<'_>) -> Result<Reply> {
    let pairs: Vec<String> = req
        .query
        .filters()?
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let filters = crate::commands::PruneFilters::parse(&pairs, "container prune").map_err(|e| {
        ApiError::bad_request(e.to_string().replace("Error response from daemon: ", ""))
    })?;
    let mut c = open_containers(req.root)?;
    let (removed, reclaimed) = crate::commands::system::prune_containers(&mut c, &filters)?;
    Ok(Reply::ok(json!({
        "ContainersDeleted": if removed.is_empty() { Value::Null } else { json!(removed) },
        "SpaceReclaimed": reclaimed,
    })))
}

/// `GET /containers/ID/logs?stdout&stderr&follow&tail&timestamps&since&until`: the log
/// file's entries, multiplexed (raw for a container with a terminal), followed while the
/// container runs.
pub fn logs(req: &Req<'_>, id: &str) -> Result<Reply> {
    let c = open_containers(req.root)?;
    let rec = find(&c, id)?;
    let q = &req.query;
    let (want_out, want_err) = (q.flag("stdout"), q.flag("stderr"));
    if !want_out && !want_err {
        return Err(ApiError::bad_request(
            "Bad parameters: you must choose at least one stream",
        ));
    }
    let tail: Option<usize> = match q.get("tail").unwrap_or("all") {
        "all" | "" => None,
        t => Some(
            t.parse()
                .map_err(|_| ApiError::bad_request(format!("invalid value for tail: {t:?}")))?,
        ),
    };
    let since = q
        .get("since")
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| *s > 0.0);
    let until = q
        .get("until")
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| *s > 0.0);
    let follow = q.flag("follow");
    let timestamps = q.flag("timestamps");
    let tty = c.has_tty(&rec.id);
    let path = c.log_path(&rec.id);
    let root = req.root.to_path_buf();
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    std::thread::spawn(move || {
        let in_range = |e: &container::LogEntry| {
            if since.is_none() && until.is_none() {
                return true;
            }
            let Ok(t) = chrono::DateTime::parse_from_rfc3339(&e.time) else {
                return false;
            };
            let t = t.timestamp_micros() as f64 / 1e6;
            since.is_none_or(|s| t >= s) && until.is_none_or(|u| t <= u)
        };
        let send = |entries: &[container::LogEntry]| -> bool {
            for e in entries {
                let (wanted, stream) = match e.stream {
                    container::Stream::Stdout => (want_out, 1),
                    container::Stream::Stderr => (want_err, 2),
                };
                if !wanted || !in_range(e) {
                    continue;
                }
                let mut data = Vec::new();
                if timestamps {
                    data.extend_from_slice(e.time.as_bytes());
                    data.push(b' ');
                }
                data.extend_from_slice(e.log.as_bytes());
                let chunk = super::reply::output_chunk(tty, stream, &data);
                if tx.blocking_send(chunk).is_err() {
                    return false;
                }
            }
            true
        };
        let Ok((mut entries, mut offset)) = container::read_entries(&path, 0) else {
            return;
        };
        if let Some(n) = tail {
            let skip = entries.len().saturating_sub(n);
            entries.drain(..skip);
        }
        if !send(&entries) || !follow {
            return;
        }
        let Ok(c) = open_containers(&root) else {
            return;
        };
        loop {
            let running = c
                .find(&rec.id)
                .map(|r| r.state.status == "running")
                .unwrap_or(false);
            let Ok((more, next)) = container::read_entries(&path, offset) else {
                return;
            };
            offset = next;
            if !send(&more) || !running || tx.is_closed() {
                return;
            }
            if until.is_some_and(|u| chrono::Utc::now().timestamp() as f64 > u) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    let ctype = if tty {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    };
    Ok(Reply::Stream(ctype, rx))
}

/// The `path` parameter of the archive endpoints.
fn path_param(req: &Req<'_>) -> Result<String> {
    req.query
        .get("path")
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .ok_or_else(|| ApiError::bad_request("path is required"))
}

fn copy_error(e: container::CopyError, id: &str, path: &str) -> ApiError {
    match e {
        container::CopyError::NotFound { .. } => {
            ApiError::not_found(format!("Could not find the file {path} in container {id}"))
        }
        container::CopyError::Container(e) => e.into(),
        e => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// `X-Docker-Container-Path-Stat`: the path's stat as base64 of its JSON.
fn stat_header(st: &container::PathStat) -> String {
    use base64::Engine;
    let mtime = chrono::DateTime::from_timestamp(st.mtime, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default();
    let v = json!({
        "name": st.name, "size": st.size, "mode": st.mode, "mtime": mtime,
        "linkTarget": st.link_target,
    });
    base64::engine::general_purpose::STANDARD.encode(v.to_string())
}

/// `HEAD`/`GET /containers/ID/archive?path=`: the path's stat header (what `docker cp`
/// asks first), and for `GET` its tar, streamed (`cp`'s `copy_from`).
pub fn archive_get(req: &Req<'_>, id: &str) -> Result<Reply> {
    let path = path_param(req)?;
    let mut c = open_containers(req.root)?;
    let rec = find(&c, id)?;
    let st = c
        .stat_path(&rec.id, &path)
        .map_err(|e| copy_error(e, id, &path))?;
    let header = vec![("X-Docker-Container-Path-Stat", stat_header(&st))];
    if req.head {
        return Ok(Reply::Headers(
            Box::new(Reply::Empty(StatusCode::OK)),
            header,
        ));
    }
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    let root = req.root.to_path_buf();
    std::thread::spawn(move || {
        let Ok(mut c) = open_containers(&root) else {
            return;
        };
        let opts = container::CopyOptions {
            archive: false,
            follow_link: false,
        };
        let mut w = std::io::BufWriter::with_capacity(64 << 10, super::reply::ChannelWriter(tx));
        if c.copy_from(&rec.id, &path, None, &mut w, &opts).is_ok() {
            let _ = std::io::Write::flush(&mut w);
        }
    });
    Ok(Reply::Headers(
        Box::new(Reply::Stream("application/x-tar", rx)),
        header,
    ))
}

/// `PUT /containers/ID/archive?path=DIR`: the tar in the body unpacked into `DIR` (`cp`'s
/// `copy_to` of `-`), owners kept as Docker 20.10 keeps them.
pub fn archive_put(req: &Req<'_>, id: &str) -> Result<Reply> {
    let path = path_param(req)?;
    let mut c = open_containers(req.root)?;
    let rec = find(&c, id)?;
    let opts = container::CopyOptions {
        archive: req.query.flag("copyUIDGID"),
        follow_link: false,
    };
    let mut body = req.body;
    c.copy_to(&rec.id, None, &mut body, &path, &opts)
        .map_err(|e| copy_error(e, id, &path))?;
    Ok(Reply::Empty(StatusCode::OK))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_create_body_becomes_the_options_of_create() {
        let body = json!({
            "Image": "busybox", "Cmd": ["sh", "-c", "echo hi"], "Env": ["A=1"],
            "WorkingDir": "/tmp", "Tty": false, "OpenStdin": true,
            "Labels": {"k": "v"}, "Volumes": {"/data": {}},
            "HostConfig": {
                "Binds": ["/host:/in:ro"], "NetworkMode": "none",
                "PortBindings": {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}]},
                "Memory": 0, "PidsLimit": 64, "AutoRemove": true,
                "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 3},
                "Mounts": [{"Type": "tmpfs", "Target": "/run"}],
            },
        });
        let (image, o) = create_options(Some("web".into()), &body).unwrap();
        assert_eq!(image, "busybox");
        assert_eq!(o.name.as_deref(), Some("web"));
        assert_eq!(o.args, ["sh", "-c", "echo hi"]);
        assert_eq!(o.entrypoint, None);
        assert_eq!(o.env, ["A=1"]);
        assert_eq!(o.workdir.as_deref(), Some("/tmp"));
        assert!(o.interactive && !o.tty && !o.stdin_once);
        assert_eq!(o.labels, ["k=v"]);
        assert_eq!(o.volumes, ["/data", "/host:/in:ro"]);
        assert_eq!(o.network, "none");
        assert_eq!(o.publish, ["127.0.0.1:8080:80/tcp"]);
        assert_eq!(o.memory, None);
        assert_eq!(o.pids_limit, Some(64));
        assert!(o.auto_remove);
        assert_eq!(o.restart.as_deref(), Some("on-failure:3"));
        assert_eq!(o.mounts, ["type=tmpfs,target=/run"]);

        let (_, o) = create_options(
            None,
            &json!({"Image": "x", "Entrypoint": ["/bin/sh", "-c"], "Cmd": ["true"]}),
        )
        .unwrap();
        assert_eq!(o.entrypoint.as_deref(), Some("/bin/sh"));
        assert_eq!(o.args, ["-c", "true"]);
        assert!(create_options(None, &json!({})).is_err());
    }

    #[test]
    fn frames_are_docker_multiplexed() {
        assert_eq!(
            &super::super::reply::output_chunk(false, 2, b"hi")[..],
            &[2, 0, 0, 0, 0, 0, 0, 2, b'h', b'i']
        );
    }
}
