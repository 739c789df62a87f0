//! `GET /system/df`: Docker 20.10's `DiskUsage` (what `docker system df` and docker-py's
//! `client.df()` read): the images as `/images/json` lists them with their containers counted
//! and shared sizes, every container with its sizes as `/containers/json?all&size` lists
//! them, the volumes with their `UsageData`, and the build cache (`RUN --mount=type=cache`
//! directories, as `strata system df` counts them).

use serde_json::{json, Value};

use super::reply::{ApiError, Reply, Result};
use super::route::{Query, Req};

/// The JSON array a list endpoint answers for `query`.
fn listed(req: &Req<'_>, query: &str, list: fn(&Req<'_>) -> Result<Reply>) -> Result<Vec<Value>> {
    let sub = Req {
        root: req.root,
        head: false,
        query: Query::parse(Some(query)),
        body: &[],
        headers: req.headers,
    };
    match list(&sub)? {
        Reply::Json(_, Value::Array(a)) => Ok(a),
        _ => Err(ApiError::new(
            hyper::StatusCode::INTERNAL_SERVER_ERROR,
            "a list endpoint answered something else than a list",
        )),
    }
}

/// Seconds of an RFC 3339 time as Docker's `time.Time` JSON (RFC 3339 with nanoseconds).
fn rfc3339(t: std::time::SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

pub fn df(req: &Req<'_>) -> Result<Reply> {
    let containers = listed(req, "all=1&size=1", super::containers::list)?;
    let mut images = listed(req, "", super::images::list)?;
    for img in &mut images {
        let id = img["Id"].clone();
        let n = containers.iter().filter(|c| c["ImageID"] == id).count();
        img["Containers"] = json!(n);
    }
    let store = crate::commands::open_store(req.root)?;
    let layers_size: u64 = store
        .layers()
        .map_err(ApiError::from)?
        .iter()
        .map(|l| l.size)
        .sum();
    let c = crate::commands::open_containers(req.root)?;
    let mut volumes = Vec::new();
    for v in c.volumes()? {
        let refs = c.volume_users(&v.name)?.len();
        let mut doc = v.inspect();
        doc["UsageData"] = json!({"Size": c.volume_size(&v), "RefCount": refs});
        volumes.push(doc);
    }
    // The build cache: one `exec.cachemount` record per cache directory.
    let dir = store::Layout::new(req.root).build_cache();
    let mut cache = Vec::new();
    let mut builder_size = 0;
    if let Ok(rd) = std::fs::read_dir(&dir) {
        for e in rd.flatten() {
            let size = layer::diff_size(&e.path()).unwrap_or(0);
            builder_size += size;
            let m = e.metadata().ok();
            let created = m
                .as_ref()
                .and_then(|m| m.created().or_else(|_| m.modified()).ok())
                .map(rfc3339);
            let used = m.as_ref().and_then(|m| m.modified().ok()).map(rfc3339);
            cache.push(json!({
                "ID": e.file_name().to_string_lossy(),
                "Parent": "",
                "Type": "exec.cachemount",
                "Description": "cached mount (RUN --mount=type=cache)",
                "InUse": false,
                "Shared": false,
                "Size": size,
                "CreatedAt": created,
                "LastUsedAt": used,
                "UsageCount": 0,
            }));
        }
    }
    Ok(Reply::ok(json!({
        "LayersSize": layers_size,
        "Images": images,
        "Containers": containers,
        "Volumes": volumes,
        "BuildCache": if cache.is_empty() { Value::Null } else { Value::Array(cache) },
        "BuilderSize": builder_size,
    })))
}
