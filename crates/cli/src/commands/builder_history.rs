//! `strata builder history ls|inspect|rm`: the records every build leaves (BuildKit's
//! `buildx history` is the model): when, from which context and Dockerfile, how it ended,
//! and each step with its duration, cached or why it missed, and the bytes it added.

use anyhow::Result;
use serde_json::{json, Value};

use crate::cli::{
    BuildHistoryCommand, BuildHistoryInspectArgs, BuildHistoryLsArgs, BuildHistoryRmArgs,
};
use crate::Failure;

pub fn run(root: &std::path::Path, c: BuildHistoryCommand) -> Result<()> {
    match c {
        BuildHistoryCommand::Ls(a) => ls(root, a),
        BuildHistoryCommand::Inspect(a) => inspect(root, a),
        BuildHistoryCommand::Rm(a) => rm(root, a),
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// buildx's durations: `1.2s`, `1m 3s`.
fn duration(ms: u64) -> String {
    let secs = ms as f64 / 1000.0;
    if secs < 60.0 {
        return format!("{secs:.1}s");
    }
    let m = (secs / 60.0).floor();
    format!("{}m {:.0}s", m as u64, secs - m * 60.0)
}

fn rfc3339(ms: i64) -> String {
    oci::unix_time(ms.div_euclid(1000))
}

fn record_json(b: &store::BuildRecord) -> Value {
    let cached = b.steps.iter().filter(|s| s.cached).count();
    json!({
        "ID": b.id,
        "Name": b.name,
        "Context": b.context,
        "Dockerfile": b.dockerfile,
        "Target": b.target,
        "Tags": b.tags,
        "Status": b.status,
        "Error": if b.error.is_empty() { Value::Null } else { b.error.clone().into() },
        "Image": if b.image.is_empty() { Value::Null } else { b.image.clone().into() },
        "CreatedAt": rfc3339(b.started_ms),
        "DurationMs": b.duration_ms,
        "NumTotalSteps": b.steps.len(),
        "NumCachedSteps": cached,
        "Steps": b.steps.iter().map(|s| json!({
            "Number": s.number,
            "Stage": s.stage,
            "Line": s.line,
            "Instruction": s.instruction,
            "DurationMs": s.duration_us as f64 / 1000.0,
            "Cached": s.cached,
            "MissReason": s.reason,
            "Bytes": s.bytes,
            "Error": s.error,
        })).collect::<Vec<_>>(),
    })
}

fn ls(root: &std::path::Path, a: BuildHistoryLsArgs) -> Result<()> {
    let store = super::open_store(root)?;
    let records = store.build_records()?;
    match a.format.as_deref().map(str::trim) {
        Some("json") => {
            for b in &records {
                println!("{}", record_json(b));
            }
        }
        None | Some("") | Some("table") => {
            let now = now_ms();
            let mut t =
                format::Table::new(&["BUILD ID", "NAME", "STATUS", "CREATED AT", "DURATION"]);
            for b in &records {
                let name = if a.no_trunc {
                    b.name.clone()
                } else {
                    format::ellipsis(&b.name, 40)
                };
                t.push([
                    b.id.clone(),
                    name,
                    b.status.clone(),
                    format::human_ago(b.started_ms as f64 / 1000.0, now as f64 / 1000.0),
                    duration(b.duration_ms),
                ]);
            }
            print!("{}", t.render());
        }
        Some(tpl) => {
            for b in &records {
                let out = format::render(tpl, &record_json(b))
                    .map_err(|e| Failure::bare(1, e.to_string()))?;
                println!("{out}");
            }
        }
    }
    Ok(())
}

fn find(store: &store::Store, id: Option<&str>) -> Result<store::BuildRecord> {
    let found = match id {
        Some(id) => store.build_record(id)?,
        None => store.build_records()?.into_iter().next(),
    };
    found.ok_or_else(|| {
        let msg = match id {
            Some(id) => format!("no build record found for {id:?}"),
            None => "no build records".into(),
        };
        Failure::new(1, msg).into()
    })
}

fn inspect(root: &std::path::Path, a: BuildHistoryInspectArgs) -> Result<()> {
    let store = super::open_store(root)?;
    let b = find(&store, a.id.as_deref())?;
    match a.format.as_deref().map(str::trim) {
        Some("json") => {
            println!("{}", serde_json::to_string_pretty(&record_json(&b))?);
            return Ok(());
        }
        Some(tpl) if !tpl.is_empty() => {
            let out = format::render(tpl, &record_json(&b))
                .map_err(|e| Failure::bare(1, e.to_string()))?;
            println!("{out}");
            return Ok(());
        }
        _ => {}
    }
    let cached = b.steps.iter().filter(|s| s.cached).count();
    let runnable = b.steps.iter().filter(|s| s.position != 0).count();
    let mut out = String::new();
    let mut field = |k: &str, v: &str| {
        if !v.is_empty() {
            out.push_str(&format!("{:<16}{v}\n", format!("{k}:")));
        }
    };
    field("ID", &b.id);
    field("Name", &b.name);
    field("Context", &b.context);
    field("Dockerfile", &b.dockerfile);
    field("Target", &b.target);
    field("Tags", &b.tags.join(", "));
    field("Started", &rfc3339(b.started_ms));
    field("Duration", &duration(b.duration_ms));
    field("Status", &b.status);
    field("Error", &b.error);
    field("Image", &b.image);
    let pct = (cached * 100).checked_div(runnable).unwrap_or(0);
    field(
        "Build Steps",
        &format!("{} ({cached} cached: {pct}%)", b.steps.len()),
    );
    print!("{out}");
    println!();
    let mut t = format::Table::new(&["STEP", "DURATION", "SIZE", "INSTRUCTION", "CACHE"]);
    for s in &b.steps {
        let cache = if s.cached {
            "CACHED".to_string()
        } else if let Some(e) = &s.error {
            format!("ERROR: {e}")
        } else if let Some(r) = &s.reason {
            format!("miss: {r}")
        } else {
            "-".to_string()
        };
        let instruction: String = s.instruction.replace(['\t', '\n'], " ");
        t.push([
            s.number.to_string(),
            format!("{:.3}s", s.duration_us as f64 / 1e6),
            if s.bytes == 0 {
                "0B".to_string()
            } else {
                format::human_size(s.bytes)
            },
            format::ellipsis(&instruction, 40),
            cache.replace(['\t', '\n'], " "),
        ]);
    }
    print!("{}", t.render());
    Ok(())
}

fn rm(root: &std::path::Path, a: BuildHistoryRmArgs) -> Result<()> {
    let mut store = super::open_store(root)?;
    if a.all {
        for b in store.build_records()? {
            store.remove_build_record(&b.id)?;
        }
        return Ok(());
    }
    if a.ids.is_empty() {
        return Err(Failure::new(1, "requires at least 1 argument, or --all").into());
    }
    for id in &a.ids {
        let b = find(&store, Some(id))?;
        store.remove_build_record(&b.id)?;
        println!("{}", b.id);
    }
    Ok(())
}
