//! `/images/…`: list, inspect, history, tag, remove, prune, through the same functions as
//! `images`, `inspect`, `history`, `tag`, `rmi` and `image prune`.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use hyper::StatusCode;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::reply::{ApiError, Reply, Result};
use super::route::Req;
use crate::commands::open_store;

fn unix_secs(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| t.timestamp())
        .unwrap_or(0)
}

fn familiar(name: &str) -> String {
    oci::Reference::parse(name)
        .map(|r| r.familiar())
        .unwrap_or_else(|_| name.to_string())
}

/// `GET /images/json?all&filters`: one `ImageSummary` per image, newest first; the
/// images and filters of `images` (intermediate images only with `all`).
pub fn list(req: &Req<'_>) -> Result<Reply> {
    let store = open_store(req.root)?;
    let filters = image::ImageFilters::new(&req.query.filters()?)?;
    let rows = image::list_images(&store, req.query.flag("all"), &filters)?;
    let mut seen = HashSet::new();
    let ids: Vec<oci::Digest> = rows
        .iter()
        .filter(|r| seen.insert(r.id))
        .map(|r| r.id)
        .collect();
    let records = store.images()?;
    let shared = image::shared_sizes(&store, &records)?;
    let mut out = Vec::new();
    for id in ids {
        let Some(img) = records.iter().find(|i| i.id == id) else {
            continue;
        };
        let labels = image::read_config(&store, &img.id)
            .ok()
            .and_then(|c| c.config.and_then(|c| c.labels))
            .map(|l| json!(l))
            .unwrap_or(Value::Null);
        out.push(json!({
            "Containers": -1,
            "Created": unix_secs(&img.created),
            "Id": img.id.to_string(),
            "Labels": labels,
            "ParentId": img.parent.map(|p| p.to_string()).unwrap_or_default(),
            "RepoDigests": img.repo_digests.iter().map(|d| familiar(d)).collect::<Vec<_>>(),
            "RepoTags": img.tags.iter().map(|t| familiar(t)).collect::<Vec<_>>(),
            "SharedSize": shared.get(&img.id).map(|s| *s as i64).unwrap_or(-1),
            "Size": img.size,
            "VirtualSize": img.size,
        }));
    }
    Ok(Reply::ok(Value::Array(out)))
}

fn resolve(store: &store::Store, name: &str) -> Result<oci::Digest> {
    image::resolve(store, name).map_err(|e| match e {
        image::Error::NoSuchImage(_) => ApiError::not_found(format!("No such image: {name}")),
        e => e.into(),
    })
}

/// `GET /images/NAME/json`: `inspect`'s document.
pub fn inspect(req: &Req<'_>, name: &str) -> Result<Reply> {
    let store = open_store(req.root)?;
    let id = resolve(&store, name)?;
    let doc = image::inspect(&store, &id)?;
    Ok(Reply::ok(
        serde_json::to_value(doc).map_err(anyhow::Error::from)?,
    ))
}

/// `GET /images/NAME/history`: `history`'s rows as Docker's `HistoryResponseItem`.
pub fn history(req: &Req<'_>, name: &str) -> Result<Reply> {
    let store = open_store(req.root)?;
    let id = resolve(&store, name)?;
    let rows = image::history(&store, &id)?;
    let records = store.images()?;
    let out: Vec<Value> = rows
        .iter()
        .map(|r| {
            let tags: Vec<String> =
                r.id.and_then(|id| records.iter().find(|i| i.id == id))
                    .map(|i| i.tags.iter().map(|t| familiar(t)).collect())
                    .unwrap_or_default();
            json!({
                "Comment": r.comment,
                "Created": r.created.as_deref().map(unix_secs).unwrap_or(0),
                "CreatedBy": r.created_by,
                "Id": r.id.map(|d| d.to_string()).unwrap_or_else(|| "<missing>".into()),
                "Size": r.size,
                "Tags": if tags.is_empty() { Value::Null } else { json!(tags) },
            })
        })
        .collect();
    Ok(Reply::ok(Value::Array(out)))
}

/// `POST /images/NAME/tag?repo=R&tag=T` (201).
pub fn tag(req: &Req<'_>, name: &str) -> Result<Reply> {
    let repo = req
        .query
        .get("repo")
        .filter(|r| !r.is_empty())
        .ok_or_else(|| ApiError::bad_request("repository name must have at least one component"))?;
    let target = match req.query.get("tag").filter(|t| !t.is_empty()) {
        Some(t) => format!("{repo}:{t}"),
        None => repo.to_string(),
    };
    let mut store = open_store(req.root)?;
    resolve(&store, name)?;
    image::tag(&mut store, name, &target)?;
    Ok(Reply::Empty(StatusCode::CREATED))
}

/// `rmi`'s report lines as Docker's `DeleteResponse` items.
fn report_items(lines: &[String]) -> Vec<Value> {
    lines
        .iter()
        .filter_map(|l| {
            if let Some(n) = l.strip_prefix("Untagged: ") {
                Some(json!({"Untagged": n}))
            } else {
                l.strip_prefix("Deleted: ").map(|d| json!({"Deleted": d}))
            }
        })
        .collect()
}

/// `DELETE /images/NAME?force&noprune`.
pub fn remove(req: &Req<'_>, name: &str) -> Result<Reply> {
    let mut store = open_store(req.root)?;
    resolve(&store, name)?;
    let opts = image::RemoveOptions {
        force: req.query.flag("force"),
        no_prune: req.query.flag("noprune"),
    };
    let lines = image::remove(&mut store, name, opts)?;
    Ok(Reply::ok(Value::Array(report_items(&lines))))
}

/// `POST /images/prune?filters`: `image prune` (`dangling=false` is `-a`).
pub fn prune(req: &Req<'_>) -> Result<Reply> {
    let all = req
        .query
        .filters()?
        .iter()
        .any(|(k, v)| k == "dangling" && matches!(v.as_str(), "false" | "0"));
    let mut store = open_store(req.root)?;
    let (lines, reclaimed) = image::prune(&mut store, all)?;
    store::events::record(
        &store,
        store::events::Event::image("prune", "").attr("reclaimed", reclaimed.to_string()),
    );
    let items = report_items(&lines);
    Ok(Reply::ok(json!({
        "ImagesDeleted": if items.is_empty() { Value::Null } else { Value::Array(items) },
        "SpaceReclaimed": reclaimed,
    })))
}

/// One `registry::Progress` report as Docker's JSON message (`jsonmessage.JSONMessage`).
pub(super) fn progress_message(p: &registry::Progress<'_>) -> Value {
    match p {
        registry::Progress::Line(l) => json!({"status": l}),
        registry::Progress::Layer { id, status } => {
            json!({"status": status, "progressDetail": {}, "id": id})
        }
        registry::Progress::Bytes {
            id,
            status,
            current,
            total,
        } => json!({
            "status": status,
            "progressDetail": {"current": current, "total": total},
            "id": id,
        }),
    }
}

/// `POST /images/create?fromImage=NAME&tag=TAG[&platform=]`: `pull` with the request's
/// `X-Registry-Auth` credentials (the store's without), its progress streamed as Docker's JSON messages. A pull that fails before
/// any progress is an error status (404 when the registry does not know the image); later
/// failures end the stream with an `error` message, as Docker's.
pub fn create(req: &Req<'_>) -> Result<Reply> {
    if req.query.get("fromSrc").is_some() {
        return Err(ApiError::bad_request(
            "importing through the API (fromSrc) is not supported: use `strata import`",
        ));
    }
    let from = req
        .query
        .get("fromImage")
        .filter(|f| !f.is_empty())
        .ok_or_else(|| ApiError::bad_request("fromImage is required"))?;
    let name = match req.query.get("tag").filter(|t| !t.is_empty()) {
        Some(t) if t.starts_with("sha256:") => format!("{from}@{t}"),
        Some(t) => format!("{from}:{t}"),
        None => from.to_string(),
    };
    let r = image::parse_name(&name).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let platform = req
        .query
        .get("platform")
        .filter(|p| !p.is_empty())
        .map(str::to_string);
    let root = req.root.to_path_buf();
    let creds = super::distribution::credentials(req, &r.registry)?;
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    let (first_tx, first_rx) = std::sync::mpsc::channel::<Option<ApiError>>();
    std::thread::spawn(move || {
        let started = AtomicBool::new(false);
        let send = |v: Value| {
            let mut b = serde_json::to_vec(&v).unwrap_or_default();
            b.extend_from_slice(b"\r\n");
            let _ = tx.blocking_send(Bytes::from(b));
        };
        let result = (|| -> anyhow::Result<()> {
            let mut store = open_store(&root)?;
            let hosts = &crate::settings::get().hosts;
            let opts = registry::PullOptions {
                platform,
                concurrency: None,
            };
            // The first report (`TAG: Pulling from REPO`) is held back until the manifest
            // is found: a pull that fails before that is an error status, as Docker's.
            let held: std::sync::Mutex<Option<Value>> = std::sync::Mutex::new(None);
            let progress = |p: registry::Progress<'_>| {
                let msg = progress_message(&p);
                let mut h = held.lock().unwrap_or_else(|e| e.into_inner());
                if !started.load(Ordering::SeqCst) && h.is_none() {
                    *h = Some(msg);
                    return;
                }
                if !started.swap(true, Ordering::SeqCst) {
                    let _ = first_tx.send(None);
                }
                if let Some(first) = h.take() {
                    send(first);
                }
                send(msg);
            };
            registry::pull(&mut store, &r, creds, hosts, &opts, &progress)?;
            if let Some(first) = held.lock().unwrap_or_else(|e| e.into_inner()).take() {
                let _ = first_tx.send(None);
                send(first);
            }
            Ok(())
        })();
        if let Err(e) = result {
            let msg = format!("{e:#}");
            if started.load(Ordering::SeqCst) {
                send(json!({"errorDetail": {"message": msg}, "error": msg}));
            } else {
                let status = if msg.contains("not found")
                    || msg.contains("unknown")
                    || msg.contains("does not exist")
                {
                    StatusCode::NOT_FOUND
                } else {
                    StatusCode::INTERNAL_SERVER_ERROR
                };
                let _ = first_tx.send(Some(ApiError::new(status, msg)));
            }
        }
    });
    match first_rx.recv() {
        Ok(Some(e)) => Err(e),
        _ => Ok(Reply::Stream("application/json", rx)),
    }
}

/// `GET /images/NAME/get` and `GET /images/get?names=…`: `save`'s archive, streamed.
pub fn get(req: &Req<'_>, names: &[String]) -> Result<Reply> {
    if names.is_empty() {
        return Err(ApiError::bad_request("no image names given"));
    }
    let store = open_store(req.root)?;
    for n in names {
        resolve(&store, n)?;
    }
    let items = image::plan_save(&store, names)?;
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    std::thread::spawn(move || {
        let mut w = std::io::BufWriter::with_capacity(256 << 10, super::reply::ChannelWriter(tx));
        if image::save(&store, &items, &mut w).is_ok() {
            let _ = std::io::Write::flush(&mut w);
        }
    });
    Ok(Reply::Stream("application/x-tar", rx))
}

/// `POST /images/load?quiet=`: `load` of the archive in the body, read as it arrives;
/// Docker's JSON messages (`{"stream": "Loaded image: …\n"}`), which `quiet` keeps (it
/// only drops progress, and there is none here).
pub fn load(root: &std::path::Path, _quiet: bool, body: super::reply::BodyReader) -> Result<Reply> {
    let mut store = open_store(root)?;
    let loaded = image::load(&mut store, body).map_err(|e| match e {
        e @ (image::Error::Archive(_) | image::Error::Read(..)) => {
            ApiError::bad_request(e.to_string())
        }
        e => e.into(),
    })?;
    let mut out = Vec::new();
    for m in &loaded.messages {
        let mut line = serde_json::to_vec(&json!({"stream": format!("{m}\n")})).unwrap_or_default();
        line.extend_from_slice(b"\r\n");
        out.extend_from_slice(&line);
    }
    Ok(Reply::Raw(StatusCode::OK, "application/json", out))
}
