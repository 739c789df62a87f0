//! `/volumes`: list, create, inspect, remove and prune the container crate's volumes (what
//! `strata volume` uses), with Docker 20.10's JSON, status codes and messages.

use std::collections::BTreeMap;

use hyper::StatusCode;
use serde_json::{json, Value};

use super::networks::{body, has_label, string_map};
use super::reply::{ApiError, Reply, Result};
use super::route::Req;
use crate::commands::{open_containers, volume};

/// Docker's status for a volume error: 404 missing, 409 in use, 400 invalid.
fn error(e: container::Error) -> ApiError {
    use container::Error as E;
    match &e {
        E::Store(store::Error::VolumeNotFound(_)) => ApiError::not_found(e.to_string()),
        E::Store(store::Error::VolumeInUse { .. }) => {
            ApiError::new(StatusCode::CONFLICT, e.to_string())
        }
        _ => e.into(),
    }
}

fn invalid_filter(f: &str) -> ApiError {
    ApiError::bad_request(format!("Invalid filter '{f}'"))
}

/// `GET /volumes?filters=` (`name`, `driver`, `label`, `dangling`): `{"Volumes",
/// "Warnings"}`.
pub fn list(req: &Req<'_>) -> Result<Reply> {
    let mut by_key: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in req.query.filters()? {
        by_key.entry(k).or_default().push(v);
    }
    let c = open_containers(req.root)?;
    let vols = c.volumes().map_err(error)?;
    let vols = volume::filter_volumes(&c, vols, &by_key).map_err(|e| match e {
        volume::FilterError::Invalid(f) => invalid_filter(&f),
        volume::FilterError::Volumes(e) => error(e),
    })?;
    let list: Vec<Value> = vols.iter().map(container::Volume::inspect).collect();
    Ok(Reply::ok(json!({"Volumes": list, "Warnings": null})))
}

/// `POST /volumes/create` with `{"Name", "Driver", "DriverOpts", "Labels"}` (201, the
/// volume; an existing volume of that name is answered as it is).
pub fn create(req: &Req<'_>) -> Result<Reply> {
    let b = body(req)?;
    let name = b
        .get("Name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .map(str::to_string);
    let driver = b
        .get("Driver")
        .and_then(Value::as_str)
        .filter(|d| !d.is_empty())
        .unwrap_or("local");
    if driver != "local" {
        return Err(ApiError::not_found(format!(
            "create {}: error looking up volume plugin {driver}: plugin \"{driver}\" not found",
            name.as_deref().unwrap_or_default()
        )));
    }
    let mut c = open_containers(req.root)?;
    let v = c
        .volume_create(&container::VolumeRequest {
            name,
            driver: Some(driver.to_string()),
            labels: string_map(b.get("Labels")),
            options: string_map(b.get("DriverOpts")),
        })
        .map_err(error)?;
    Ok(Reply::Json(StatusCode::CREATED, v.inspect()))
}

/// `GET /volumes/{name}`.
pub fn inspect(req: &Req<'_>, name: &str) -> Result<Reply> {
    let c = open_containers(req.root)?;
    Ok(Reply::ok(c.volume(name).map_err(error)?.inspect()))
}

/// `DELETE /volumes/{name}?force=` (204; a missing volume is no error with `force`).
pub fn remove(req: &Req<'_>, name: &str) -> Result<Reply> {
    let mut c = open_containers(req.root)?;
    c.volume_remove(name, req.query.flag("force"))
        .map_err(error)?;
    Ok(Reply::Empty(StatusCode::NO_CONTENT))
}

/// `POST /volumes/prune?filters=` (`label`, `label!` only, as Docker 20.10):
/// `{"VolumesDeleted", "SpaceReclaimed"}`.
pub fn prune(req: &Req<'_>) -> Result<Reply> {
    let mut with = Vec::new();
    let mut without = Vec::new();
    for (k, v) in req.query.filters()? {
        match k.as_str() {
            "label" => with.push(v),
            "label!" => without.push(v),
            other => return Err(invalid_filter(other)),
        }
    }
    let mut c = open_containers(req.root)?;
    let (removed, total) = c
        .volume_prune(|v| {
            !with.iter().all(|l| has_label(&v.labels, l))
                || without.iter().any(|l| has_label(&v.labels, l))
        })
        .map_err(error)?;
    Ok(Reply::ok(
        json!({"VolumesDeleted": removed, "SpaceReclaimed": total}),
    ))
}
