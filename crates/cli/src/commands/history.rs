//! `strata history [-H] [--no-trunc] [-q] [--format] IMAGE`

use anyhow::Result;
use serde_json::{json, Value};

use crate::cli::HistoryArgs;

pub fn parse_time(t: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(t)
        .ok()
        .map(|d| d.with_timezone(&chrono::Utc))
}

fn now_secs() -> f64 {
    chrono::Utc::now().timestamp_micros() as f64 / 1e6
}

pub fn run(root: &std::path::Path, a: HistoryArgs) -> Result<()> {
    let store = super::open_store(root)?;
    // Docker's daemon names the image it could not find as a reference, with its tag.
    let id = image::resolve(&store, &a.image).map_err(|e| super::image_failure(&a.image, e))?;
    let rows = image::history(&store, &id)?;
    let now = now_secs();
    let values: Vec<Value> = rows
        .iter()
        .map(|r| {
            let id = match (&r.id, a.no_trunc) {
                (None, _) => "<missing>".to_string(),
                (Some(d), true) => d.to_string(),
                (Some(d), false) => d.short(),
            };
            let created = r.created.as_deref().and_then(parse_time);
            let created_at = created.map(|c| c.format("%Y-%m-%dT%H:%M:%SZ").to_string()).unwrap_or_default();
            let since = match (&created, a.human) {
                (Some(c), true) => format::human_ago(c.timestamp() as f64, now),
                (_, false) => created_at.clone(),
                (None, true) => "N/A".into(),
            };
            let by = r.created_by.replace('\t', " ");
            let by = if a.no_trunc { by } else { format::ellipsis(&by, 45) };
            let size = if a.human { format::human_size(r.size) } else { r.size.to_string() };
            json!({"ID": id, "CreatedSince": since, "CreatedAt": created_at, "CreatedBy": by, "Size": size, "Comment": r.comment})
        })
        .collect();
    let fmt = match (&a.format, a.quiet, a.human) {
        (_, true, _) => "{{.ID}}".to_string(),
        (Some(f), _, _) => f.clone(),
        (None, _, true) => {
            "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}".into()
        }
        (None, _, false) => {
            "table {{.ID}}\t{{.CreatedAt}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}".into()
        }
    };
    let header = json!({"ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "CreatedBy": "CREATED BY", "Size": "SIZE", "Comment": "COMMENT"});
    let lf = format::ListFormat::parse(&fmt).map_err(|e| crate::Failure::bare(1, e.to_string()))?;
    print!(
        "{}",
        lf.render(&header, &values)
            .map_err(|e| crate::Failure::bare(1, e.to_string()))?
    );
    Ok(())
}
