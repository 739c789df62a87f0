//! What a container holds and uses: `GET /containers/{id}/top`, `/changes`, `/export` and
//! `/stats`, and `POST /commit`, through the same `container::Containers` calls as `top`,
//! `diff`, `export`, `stats` and `commit`.

use bytes::Bytes;
use hyper::StatusCode;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::reply::{ApiError, Reply, Result};
use super::route::Req;
use crate::commands::open_containers;

fn not_found_as_docker(e: container::Error, id: &str) -> ApiError {
    match e {
        container::Error::Store(store::Error::ContainerNotFound(_)) => {
            ApiError::not_found(format!("No such container: {id}"))
        }
        e => e.into(),
    }
}

/// `GET /containers/{id}/top?ps_args=`: Docker's `{"Titles": […], "Processes": [[…]]}`.
pub fn top(req: &Req<'_>, id: &str) -> Result<Reply> {
    let c = open_containers(req.root)?;
    // Docker splits the options on spaces.
    let args: Vec<String> = req
        .query
        .get("ps_args")
        .unwrap_or("")
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    let t = c.top(id, &args).map_err(|e| not_found_as_docker(e, id))?;
    c.record_event_for("top", id, &[]);
    Ok(Reply::ok(
        json!({"Titles": t.titles, "Processes": t.processes}),
    ))
}

/// `GET /containers/{id}/changes`: `[{"Path": …, "Kind": 0 changed | 1 added | 2 deleted}]`.
pub fn changes(req: &Req<'_>, id: &str) -> Result<Reply> {
    let mut c = open_containers(req.root)?;
    let changes = c.diff(id).map_err(|e| not_found_as_docker(e, id))?;
    let list: Vec<Value> = changes
        .iter()
        .map(|ch| {
            let kind = match ch.kind {
                container::ChangeKind::Changed => 0,
                container::ChangeKind::Added => 1,
                container::ChangeKind::Deleted => 2,
            };
            json!({"Path": ch.path, "Kind": kind})
        })
        .collect();
    Ok(Reply::ok(Value::Array(list)))
}

/// `GET /containers/{id}/export`: the container's files as a tar, streamed.
pub fn export(req: &Req<'_>, id: &str) -> Result<Reply> {
    let mut c = open_containers(req.root)?;
    c.find(id).map_err(|e| not_found_as_docker(e, id))?;
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    let id = id.to_string();
    std::thread::spawn(move || {
        let mut w = std::io::BufWriter::with_capacity(256 << 10, super::reply::ChannelWriter(tx));
        // A failure midway ends the body early: the client sees a truncated tar.
        if c.export(&id, &mut w).is_ok() {
            let _ = std::io::Write::flush(&mut w);
        }
    });
    Ok(Reply::Stream("application/x-tar", rx))
}

/// `GET /containers/{id}/stats?stream=&one-shot=`: Docker's stats JSON, one reading a
/// second while streaming; without `stream`, one reading with the one a second before it
/// as `precpu_stats` (none with `one-shot`), as Docker's daemon answers.
pub fn stats(req: &Req<'_>, id: &str) -> Result<Reply> {
    let c = open_containers(req.root)?;
    let rec = c.find(id).map_err(|e| not_found_as_docker(e, id))?;
    let stream = req
        .query
        .get("stream")
        .is_none_or(|v| v == "1" || v == "true");
    let one_shot = req.query.flag("one-shot");
    let (tx, rx) = mpsc::channel::<Bytes>(4);
    std::thread::spawn(move || {
        let sample = |c: &container::Containers| {
            let rec = c.find(&rec.id).unwrap_or_else(|_| rec.clone());
            (c.stats_sample(&rec).ok(), chrono::Utc::now())
        };
        let mut prev = if stream || !one_shot {
            let p = sample(&c);
            if !stream {
                std::thread::sleep(std::time::Duration::from_secs(1));
            }
            Some(p)
        } else {
            None
        };
        loop {
            let now = sample(&c);
            let (Some(s), read) = &now else { return };
            let pre = prev.as_ref().and_then(|(p, t)| p.as_ref().map(|p| (p, *t)));
            let mut b = serde_json::to_vec(&stats_json(&rec, s, *read, pre)).unwrap_or_default();
            b.push(b'\n');
            if tx.blocking_send(Bytes::from(b)).is_err() || !stream || !s.running {
                return;
            }
            prev = Some(now);
            std::thread::sleep(std::time::Duration::from_secs(1));
        }
    });
    Ok(Reply::Stream("application/json", rx))
}

type Time = chrono::DateTime<chrono::Utc>;

fn cpu_json(s: &container::StatsSample) -> Value {
    json!({
        "cpu_usage": {
            "total_usage": s.cgroup.cpu_total_ns,
            "usage_in_kernelmode": 0,
            "usage_in_usermode": 0,
        },
        "system_cpu_usage": s.system_cpu_ns,
        "online_cpus": s.online_cpus,
        "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
    })
}

/// One reading as Docker's `types.StatsJSON` (cgroup v1's field names for memory, which
/// is what this machine's hierarchy gives).
fn stats_json(
    rec: &store::ContainerRecord,
    s: &container::StatsSample,
    read: Time,
    pre: Option<(&container::StatsSample, Time)>,
) -> Value {
    let zero_time = "0001-01-01T00:00:00Z".to_string();
    let time = |t: Time| t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    let c = &s.cgroup;
    let mut mem_stats = serde_json::Map::new();
    if let Some(v) = c.memory_inactive_file {
        mem_stats.insert("total_inactive_file".into(), v.into());
        mem_stats.insert("inactive_file".into(), v.into());
    }
    let memory = if s.running {
        json!({"usage": c.memory_usage, "limit": c.memory_limit, "stats": mem_stats})
    } else {
        json!({})
    };
    let blkio = |op: &str, v: u64| json!({"major": 0, "minor": 0, "op": op, "value": v});
    json!({
        "read": if s.running { time(read) } else { zero_time.clone() },
        "preread": pre.map_or(zero_time, |(_, t)| time(t)),
        "pids_stats": if s.running { json!({"current": c.pids}) } else { json!({}) },
        "blkio_stats": {
            "io_service_bytes_recursive": if s.running {
                json!([blkio("read", c.block_read), blkio("write", c.block_write)])
            } else {
                Value::Null
            },
        },
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": if s.running { cpu_json(s) } else { json!({"cpu_usage": {"total_usage": 0}, "throttling_data": {}}) },
        "precpu_stats": match pre {
            Some((p, _)) if p.running => cpu_json(p),
            _ => json!({"cpu_usage": {"total_usage": 0}, "throttling_data": {}}),
        },
        "memory_stats": memory,
        "name": format!("/{}", rec.name),
        "id": rec.id,
        "networks": if s.running {
            json!({"eth0": {
                "rx_bytes": s.net_rx, "rx_packets": 0, "rx_errors": 0, "rx_dropped": 0,
                "tx_bytes": s.net_tx, "tx_packets": 0, "tx_errors": 0, "tx_dropped": 0,
            }})
        } else {
            Value::Null
        },
    })
}

/// `POST /commit?container=&repo=&tag=&comment=&author=&changes=…`, with an optional config
/// in the body whose fields override the container's (as `-c` instructions would): 201 and
/// `{"Id": …}`.
pub fn commit(req: &Req<'_>) -> Result<Reply> {
    let q = &req.query;
    let id = q
        .get("container")
        .filter(|c| !c.is_empty())
        .ok_or_else(|| ApiError::bad_request("No container name or ID supplied"))?;
    let reference = match (q.get("repo").filter(|r| !r.is_empty()), q.get("tag")) {
        (Some(r), Some(t)) if !t.is_empty() => Some(format!("{r}:{t}")),
        (Some(r), _) => Some(r.to_string()),
        (None, Some(t)) if !t.is_empty() => {
            return Err(ApiError::bad_request("tag without a repository"))
        }
        (None, _) => None,
    };
    let mut changes: Vec<String> = q.all("changes").iter().map(|c| c.to_string()).collect();
    changes.extend(config_changes(req.body)?);
    let mut c = open_containers(req.root)?;
    let image = c
        .commit(
            id,
            &container::CommitOptions {
                reference,
                author: q.get("author").unwrap_or("").to_string(),
                message: q.get("comment").unwrap_or("").to_string(),
                changes,
            },
        )
        .map_err(|e| match e {
            container::Error::Image(image::Error::InvalidReference(r)) => ApiError::bad_request(r),
            e => not_found_as_docker(e, id),
        })?;
    Ok(Reply::Json(
        StatusCode::CREATED,
        json!({"Id": image.to_string()}),
    ))
}

/// The fields of a config body as the Dockerfile instructions that set them.
fn config_changes(body: &[u8]) -> Result<Vec<String>> {
    let text = std::str::from_utf8(body).unwrap_or("").trim();
    if text.is_empty() || text == "null" {
        return Ok(Vec::new());
    }
    let v: Value = serde_json::from_str(text)
        .map_err(|e| ApiError::bad_request(format!("invalid config: {e}")))?;
    let Value::Object(m) = v else {
        return Err(ApiError::bad_request("invalid config: not an object"));
    };
    let mut out = Vec::new();
    let json_list = |v: &Value| -> Option<String> {
        v.as_array()
            .filter(|a| !a.is_empty())
            .map(|_| format!("{v}"))
    };
    for (k, v) in &m {
        match k.as_str() {
            "Cmd" => out.extend(json_list(v).map(|l| format!("CMD {l}"))),
            "Entrypoint" => out.extend(json_list(v).map(|l| format!("ENTRYPOINT {l}"))),
            "Env" => {
                for e in v.as_array().into_iter().flatten().filter_map(Value::as_str) {
                    if let Some((k, val)) = e.split_once('=') {
                        out.push(format!("ENV {k}={}", Value::String(val.into())));
                    }
                }
            }
            "Labels" => {
                for (lk, lv) in v.as_object().into_iter().flatten() {
                    let lv = lv.as_str().unwrap_or("");
                    out.push(format!(
                        "LABEL {}={}",
                        Value::String(lk.clone()),
                        Value::String(lv.into())
                    ));
                }
            }
            "ExposedPorts" => {
                for port in v.as_object().into_iter().flatten().map(|(p, _)| p) {
                    out.push(format!("EXPOSE {port}"));
                }
            }
            "WorkingDir" => {
                if let Some(w) = v.as_str().filter(|w| !w.is_empty()) {
                    out.push(format!("WORKDIR {w}"));
                }
            }
            "User" => {
                if let Some(u) = v.as_str().filter(|u| !u.is_empty()) {
                    out.push(format!("USER {u}"));
                }
            }
            "StopSignal" => {
                if let Some(s) = v.as_str().filter(|s| !s.is_empty()) {
                    out.push(format!("STOPSIGNAL {s}"));
                }
            }
            "Volumes" => {
                for path in v.as_object().into_iter().flatten().map(|(p, _)| p) {
                    out.push(format!(
                        "VOLUME {}",
                        Value::Array(vec![path.clone().into()])
                    ));
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_body_becomes_instructions() {
        let body = br#"{"Cmd":["sh","-c","echo hi"],"Env":["A=b c"],"Labels":{"k":"v"},"WorkingDir":"/w","ExposedPorts":{"80/tcp":{}},"Hostname":"x"}"#;
        let c = config_changes(body).unwrap();
        assert_eq!(
            c,
            [
                r#"CMD ["sh","-c","echo hi"]"#,
                r#"ENV A="b c""#,
                r#"LABEL "k"="v""#,
                "WORKDIR /w",
                "EXPOSE 80/tcp",
            ]
        );
        assert!(config_changes(b"null").unwrap().is_empty());
        assert!(config_changes(b"").unwrap().is_empty());
        assert!(config_changes(b"[1]").is_err());
    }
}
