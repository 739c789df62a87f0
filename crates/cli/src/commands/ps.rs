//! `strata ps [-a] [-q] [-s] [-n N] [--latest] [--no-trunc] [--filter] [--format]` with Docker's columns.

use std::path::Path;

use anyhow::Result;
use serde_json::{json, Value};

use crate::cli::PsArgs;
use crate::Failure;

fn secs(t: &str) -> Option<f64> {
    super::history::parse_time(t).map(|d| d.timestamp_micros() as f64 / 1e6)
}

/// Docker's STATUS: `Created`, `Up 5 seconds`, `Exited (3) 2 minutes ago`.
pub(crate) fn status(s: &container::Summary, now: f64) -> String {
    let st = &s.record.state;
    if s.running {
        let since = st.started_at.as_deref().and_then(secs).unwrap_or(now);
        let d = std::time::Duration::from_secs_f64((now - since).max(0.0));
        let paused = if s.paused { " (Paused)" } else { "" };
        return format!("Up {}{paused}", format::human_duration(d));
    }
    match st.finished_at.as_deref().and_then(secs) {
        Some(f) if st.status != "created" => {
            format!("Exited ({}) {}", st.exit_code, format::human_ago(f, now))
        }
        _ => "Created".into(),
    }
}

/// Docker's `State` of a container: `paused`, `running`, `created` or `exited`.
pub(crate) fn state_of(s: &container::Summary) -> &'static str {
    if s.paused {
        "paused"
    } else if s.running {
        "running"
    } else if s.record.state.status == "created" {
        "created"
    } else {
        "exited"
    }
}

pub fn run(root: &Path, a: PsArgs) -> Result<()> {
    let mut c = super::open_containers(root)?;
    // Docker's CLI asks for sizes when its format uses them (`.Size`, or all of a row).
    let sized = a.size
        || a.format
            .as_deref()
            .is_some_and(|f| f.contains(".Size") || f.contains("json"));
    let rows = c.summaries(sized)?;
    let mut filters = Vec::new();
    for f in &a.filters {
        let (k, v) = super::split_filter(f, "ps")?;
        // Docker's CLI reads filter names in lower case.
        filters.push((k.trim().to_ascii_lowercase(), v.to_string()));
    }
    let (mut rows, stopped_too) =
        super::ps_filter::apply(&mut c, rows, &filters).map_err(|e| Failure::daemon(1, e))?;
    let last = if a.latest { 1 } else { a.last };
    if last >= 0 {
        rows.truncate(last as usize);
    } else if !a.all && !stopped_too {
        rows.retain(|r| r.running);
    }
    let now = chrono::Utc::now().timestamp_micros() as f64 / 1e6;
    let wants_mounts = a
        .format
        .as_deref()
        .is_some_and(|f| f.contains("Mounts") || f.contains("LocalVolumes") || f.contains("json"));
    let values: Vec<Value> = rows
        .iter()
        .map(|s| {
            let r = &s.record;
            let command = if a.no_trunc {
                s.command.clone()
            } else {
                format::ellipsis(&s.command, 20)
            };
            let created = secs(&r.created).unwrap_or(now);
            // Docker's MOUNTS (volume names, else sources, each cut to 15 characters unless
            // --no-trunc) and LocalVolumes, read from inspect only when the format asks.
            let mounts = wants_mounts.then(|| {
                let doc = c.inspect(&r.id, false).unwrap_or_default();
                let list = doc.get("Mounts").and_then(Value::as_array).cloned().unwrap_or_default();
                let field = |m: &Value, k: &str| m.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                let names: Vec<String> = list
                    .iter()
                    .map(|m| {
                        let n = field(m, "Name");
                        let n = if n.is_empty() { field(m, "Source") } else { n };
                        if a.no_trunc { n } else { format::ellipsis(&n, 15) }
                    })
                    .collect();
                let local = list.iter().filter(|m| field(m, "Driver") == "local").count();
                (names.join(","), local)
            });
            let size = match (s.size_rw, s.size_root_fs) {
                (Some(rw), Some(v)) => format!(
                    "{} (virtual {})",
                    format::human_size(rw),
                    format::human_size(v)
                ),
                _ => String::new(),
            };
            json!({
                "ID": if a.no_trunc { r.id.clone() } else { r.id[..12].to_string() },
                "Image": s.image,
                "Command": dockerfile::go_quote(&command),
                "CreatedAt": super::history::parse_time(&r.created)
                    .map(|d| d.format("%Y-%m-%d %H:%M:%S +0000 UTC").to_string())
                    .unwrap_or_default(),
                "RunningFor": format::human_ago(created, now),
                "Status": status(s, now),
                "State": state_of(s),
                "Ports": s.ports,
                "Names": r.name,
                "Size": size,
                "Labels": c
                    .labels(r)
                    .unwrap_or_default()
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(","),
                "Mounts": mounts.as_ref().map(|(names, _)| names.clone()).unwrap_or_default(),
                "LocalVolumes": mounts.as_ref().map(|(_, n)| n.to_string()).unwrap_or_else(|| "0".into()),
                "Networks": s.networks,
            })
        })
        .collect();
    let fmt = if a.quiet {
        "{{.ID}}".to_string()
    } else if let Some(f) = &a.format {
        f.clone()
    } else if a.size {
        "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}\t{{.Size}}".into()
    } else {
        "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}".into()
    };
    let header = json!({
        "ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "CreatedAt": "CREATED AT",
        "RunningFor": "CREATED", "Status": "STATUS", "State": "STATE", "Ports": "PORTS",
        "Names": "NAMES", "Size": "SIZE", "Labels": "LABELS", "Mounts": "MOUNTS",
        "Networks": "NETWORKS",
    });
    let lf = format::ListFormat::parse(&fmt).map_err(|e| Failure::new(1, e.to_string()))?;
    print!(
        "{}",
        lf.render(&header, &values)
            .map_err(|e| Failure::new(1, e.to_string()))?
    );
    Ok(())
}
