//! `strata images [-a] [-q] [--digests] [--no-trunc] [--format] [--filter] [REPOSITORY[:TAG]]`
//! and `strata tag`.

use anyhow::Result;
use serde_json::{json, Value};

use crate::cli::{ImagesArgs, TagArgs};
use crate::Failure;

pub fn tag(root: &std::path::Path, a: TagArgs) -> Result<()> {
    let mut store = super::open_store(root)?;
    image::tag(&mut store, &a.source, &a.target)?;
    Ok(())
}

/// Whether a row matches `REPOSITORY[:TAG]` (Docker matches the familiar repository name).
fn matches_reference(row: &image::ImageRow, pattern: &str) -> bool {
    let (repo_pat, tag_pat) = match pattern.rsplit_once(':') {
        Some((r, t)) if !t.contains('/') => (r, Some(t)),
        _ => (pattern, None),
    };
    let Some(repo) = &row.repository else {
        return false;
    };
    let full = oci::Reference::parse(repo)
        .map(|r| r.name())
        .unwrap_or_default();
    let repo_ok = build::glob_match(repo_pat, repo) || full == repo_pat;
    let tag_ok = match tag_pat {
        None => true,
        Some(t) => row
            .tag
            .as_deref()
            .map(|tag| build::glob_match(t, tag))
            .unwrap_or(false),
    };
    repo_ok && tag_ok
}

pub fn list(root: &std::path::Path, a: ImagesArgs) -> Result<()> {
    let store = super::open_store(root)?;
    let mut rows = image::image_rows(&store, a.all)?;
    if let Some(r) = &a.reference {
        rows.retain(|row| matches_reference(row, r));
    }
    for f in &a.filters {
        match f.split_once('=') {
            Some(("dangling", v)) => {
                let want = v == "true" || v == "1";
                rows.retain(|r| (r.repository.is_none() && r.tag.is_none()) == want);
            }
            Some(("reference", pat)) => rows.retain(|row| matches_reference(row, pat)),
            _ => return Err(Failure::new(1, format!("invalid filter '{f}'")).into()),
        }
    }
    let now = chrono::Utc::now().timestamp_micros() as f64 / 1e6;
    let values: Vec<Value> = rows
        .iter()
        .map(|r| {
            let created = super::history::parse_time(&r.created);
            json!({
                "ID": if a.no_trunc { r.id.to_string() } else { r.id.short() },
                "Repository": r.repository.clone().unwrap_or_else(|| "<none>".into()),
                "Tag": r.tag.clone().unwrap_or_else(|| "<none>".into()),
                "Digest": r.digest.clone().unwrap_or_else(|| "<none>".into()),
                "CreatedSince": created.map(|c| format::human_ago(c.timestamp() as f64, now)).unwrap_or_else(|| "N/A".into()),
                "CreatedAt": created.map(|c| c.format("%Y-%m-%d %H:%M:%S +0000 UTC").to_string()).unwrap_or_default(),
                "Size": format::human_size(r.size),
                "VirtualSize": format::human_size(r.size),
                "SharedSize": format::human_size(r.shared_size),
                "UniqueSize": format::human_size(r.size - r.shared_size.min(r.size)),
                "Containers": "N/A",
            })
        })
        .collect();
    let fmt = if a.quiet {
        "{{.ID}}".to_string()
    } else if let Some(f) = &a.format {
        f.clone()
    } else if a.digests {
        "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}".into()
    } else {
        "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}".into()
    };
    let header = json!({
        "ID": "IMAGE ID", "Repository": "REPOSITORY", "Tag": "TAG", "Digest": "DIGEST",
        "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE", "VirtualSize": "VIRTUAL SIZE",
        "SharedSize": "SHARED SIZE", "UniqueSize": "UNIQUE SIZE", "Containers": "CONTAINERS",
    });
    let lf = format::ListFormat::parse(&fmt).map_err(|e| Failure::bare(1, e.to_string()))?;
    print!(
        "{}",
        lf.render(&header, &values)
            .map_err(|e| Failure::bare(1, e.to_string()))?
    );
    Ok(())
}
