//! `/networks`: list, inspect, create, remove, connect, disconnect and prune strata's
//! user-defined networks (the container crate's, as `strata network` uses them), with
//! Docker 20.10's JSON, status codes and messages.

use std::collections::BTreeMap;

use hyper::StatusCode;
use serde_json::{json, Value};

use super::reply::{ApiError, Reply, Result};
use super::route::Req;
use crate::commands::open_containers;

/// Docker's status for a network error: 404 for a missing network or container, 409 for a
/// name in use, 403 for what may not be done to a network (active endpoints, predefined
/// networks), 400 for a bad request.
fn error(e: container::Error) -> ApiError {
    use container::Error as E;
    match &e {
        E::Store(store::Error::NetworkNotFound(_) | store::Error::ContainerNotFound(_)) => {
            ApiError::not_found(e.to_string())
        }
        E::Store(store::Error::NetworkNameInUse(_)) => {
            ApiError::new(StatusCode::CONFLICT, e.to_string())
        }
        E::Invalid(m) if m.contains("has active endpoints") || m.contains("pre-defined") => {
            ApiError::new(StatusCode::FORBIDDEN, m.clone())
        }
        E::Invalid(m) if m.starts_with("plugin \"") => ApiError::not_found(m.clone()),
        _ => e.into(),
    }
}

/// The body of a POST as JSON (`{}` when empty).
pub(super) fn body(req: &Req<'_>) -> Result<Value> {
    if req.body.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    serde_json::from_slice(req.body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON in the request body: {e}")))
}

/// A JSON object of strings as a map (other values are skipped).
pub(super) fn string_map(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether `labels` match `label=KEY` or `label=KEY=VALUE`.
pub(super) fn has_label(labels: &BTreeMap<String, String>, want: &str) -> bool {
    match want.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
        None => labels.contains_key(want),
    }
}

/// Docker's `dangling` filter value.
fn dangling_value(v: &str) -> Result<bool> {
    match v {
        "1" | "true" => Ok(true),
        "0" | "false" => Ok(false),
        _ => Err(ApiError::bad_request(
            "invalid value for filter 'dangling', must be \"true\" (or \"1\"), or \"false\" (or \"0\")",
        )),
    }
}

/// The networks `filters` keeps: values of one key are alternatives, keys all apply.
fn filtered(
    c: &mut container::Containers,
    filters: &[(String, String)],
) -> Result<Vec<container::Network>> {
    let mut by_key: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (k, v) in filters {
        by_key.entry(k.as_str()).or_default().push(v.as_str());
    }
    let mut nets = c.networks().map_err(error)?;
    for (k, vals) in &by_key {
        if *k == "dangling" && vals.len() > 1 {
            return Err(ApiError::bad_request(
                "got more than one value for filter key \"dangling\"",
            ));
        }
        let mut keep = Vec::new();
        for n in nets {
            let mut any = false;
            for v in vals {
                any |= match *k {
                    "dangling" => c.network_in_use(&n).map_err(error)? != dangling_value(v)?,
                    "name" => n.name().contains(v),
                    "id" => n.id().starts_with(v),
                    "driver" => n.config.driver == *v,
                    "scope" => *v == "local",
                    "label" => has_label(&n.config.labels, v),
                    "type" => match *v {
                        "custom" => !n.config.builtin,
                        "builtin" => n.config.builtin,
                        other => {
                            return Err(ApiError::new(
                                StatusCode::INTERNAL_SERVER_ERROR,
                                format!("invalid filter: 'type'='{other}'"),
                            ))
                        }
                    },
                    other => {
                        return Err(ApiError::bad_request(format!("Invalid filter '{other}'")))
                    }
                };
            }
            if any {
                keep.push(n);
            }
        }
        nets = keep;
    }
    Ok(nets)
}

/// `GET /networks?filters=`: Docker's `NetworkResource` of each (without its containers, as
/// Docker's list).
pub fn list(req: &Req<'_>) -> Result<Reply> {
    let filters = req.query.filters()?;
    let mut c = open_containers(req.root)?;
    let nets = filtered(&mut c, &filters)?;
    let mut out = Vec::new();
    for n in &nets {
        let mut v = c.inspect_network(n).map_err(error)?;
        v["Containers"] = json!({});
        out.push(v);
    }
    Ok(Reply::ok(Value::Array(out)))
}

/// `GET /networks/{id}`: exact ID, exact name, then a unique ID prefix.
pub fn inspect(req: &Req<'_>, id: &str) -> Result<Reply> {
    let mut c = open_containers(req.root)?;
    let n = c.find_network(id).map_err(error)?;
    Ok(Reply::ok(c.inspect_network(&n).map_err(error)?))
}

/// `POST /networks/create` (201 `{"Id", "Warning"}`).
pub fn create(req: &Req<'_>) -> Result<Reply> {
    let b = body(req)?;
    let name = b.get("Name").and_then(Value::as_str).unwrap_or_default();
    if matches!(name, "bridge" | "host" | "none") {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!("operation is not permitted on predefined {name} network "),
        ));
    }
    if name.is_empty() {
        return Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "invalid name: ",
        ));
    }
    if b.get("EnableIPv6").and_then(Value::as_bool) == Some(true) {
        return Err(ApiError::bad_request("strata networks are IPv4 only"));
    }
    let ipam = b
        .get("IPAM")
        .and_then(|i| i.get("Config"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if ipam.len() > 1 {
        return Err(ApiError::bad_request(
            "strata networks have one IPv4 subnet",
        ));
    }
    let field = |k: &str| {
        ipam.first()
            .and_then(|c| c.get(k))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let flag = |k: &str| b.get(k).and_then(Value::as_bool).unwrap_or(false);
    let mut c = open_containers(req.root)?;
    let id = c
        .create_network(&container::CreateNetwork {
            name: name.to_string(),
            driver: b
                .get("Driver")
                .and_then(Value::as_str)
                .filter(|d| !d.is_empty())
                .map(str::to_string),
            subnet: field("Subnet"),
            gateway: field("Gateway"),
            labels: string_map(b.get("Labels")),
            options: string_map(b.get("Options")),
            internal: flag("Internal"),
            attachable: flag("Attachable"),
        })
        .map_err(error)?;
    Ok(Reply::Json(
        StatusCode::CREATED,
        json!({"Id": id, "Warning": ""}),
    ))
}

/// `DELETE /networks/{id}` (204).
pub fn remove(req: &Req<'_>, id: &str) -> Result<Reply> {
    let mut c = open_containers(req.root)?;
    c.remove_network(id).map_err(error)?;
    Ok(Reply::Empty(StatusCode::NO_CONTENT))
}

/// The `Container` a connect/disconnect body names, found first (Docker's 404).
fn container_of(c: &container::Containers, b: &Value) -> Result<String> {
    let name = b
        .get("Container")
        .and_then(Value::as_str)
        .unwrap_or_default();
    c.find(name)
        .map_err(|_| ApiError::not_found(format!("No such container: {name}")))?;
    Ok(name.to_string())
}

/// `POST /networks/{id}/connect` with `{"Container", "EndpointConfig": {"Aliases",
/// "IPAMConfig": {"IPv4Address"}}}` (200).
pub fn connect(req: &Req<'_>, id: &str) -> Result<Reply> {
    let b = body(req)?;
    let mut c = open_containers(req.root)?;
    let container = container_of(&c, &b)?;
    let ep = b.get("EndpointConfig");
    let aliases: Vec<String> = ep
        .and_then(|e| e.get("Aliases"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let ip = ep
        .and_then(|e| e.get("IPAMConfig"))
        .and_then(|i| i.get("IPv4Address"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty());
    c.connect_network(id, &container, &aliases, ip)
        .map_err(error)?;
    Ok(Reply::Empty(StatusCode::OK))
}

/// `POST /networks/{id}/disconnect` with `{"Container", "Force"}` (200).
pub fn disconnect(req: &Req<'_>, id: &str) -> Result<Reply> {
    let b = body(req)?;
    let mut c = open_containers(req.root)?;
    let container = container_of(&c, &b)?;
    let force = b.get("Force").and_then(Value::as_bool).unwrap_or(false);
    c.disconnect_network(id, &container, force).map_err(error)?;
    Ok(Reply::Empty(StatusCode::OK))
}

/// `POST /networks/prune?filters=` (`until`, `label`, `label!`): `{"NetworksDeleted"}`,
/// `null` when none was.
pub fn prune(req: &Req<'_>) -> Result<Reply> {
    let pairs: Vec<String> = req
        .query
        .filters()?
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let filters = crate::commands::PruneFilters::parse(&pairs, "network prune")
        .map_err(|e| ApiError::bad_request(format!("{e:#}")))?;
    let mut c = open_containers(req.root)?;
    let removed = c
        .prune_networks(|n| !filters.matches(&n.record.created, &n.config.labels))
        .map_err(error)?;
    Ok(Reply::ok(json!({
        "NetworksDeleted": if removed.is_empty() { Value::Null } else { json!(removed) }
    })))
}

/// Dispatch of `/networks…`, `/volumes…` and `/system/df` (None: another endpoint).
pub fn route(req: &Req<'_>, m: &str, path: &str) -> Option<Result<Reply>> {
    use super::{df, volumes};
    if let Some(rest) = path.strip_prefix("/networks") {
        let rest = rest.strip_prefix('/').unwrap_or(rest);
        let (id, action) = rest.split_once('/').unwrap_or((rest, ""));
        return Some(match (m, id, action) {
            ("GET", "", "") => list(req),
            ("POST", "create", "") => create(req),
            ("POST", "prune", "") => prune(req),
            ("GET", id, "") if !id.is_empty() => inspect(req, id),
            ("DELETE", id, "") if !id.is_empty() => remove(req, id),
            ("POST", id, "connect") => connect(req, id),
            ("POST", id, "disconnect") => disconnect(req, id),
            _ => Err(ApiError::not_found("page not found")),
        });
    }
    if let Some(rest) = path.strip_prefix("/volumes") {
        let rest = rest.strip_prefix('/').unwrap_or(rest);
        return Some(match (m, rest) {
            ("GET", "") => volumes::list(req),
            ("POST", "create") => volumes::create(req),
            ("POST", "prune") => volumes::prune(req),
            ("GET", name) if !name.contains('/') => volumes::inspect(req, name),
            ("DELETE", name) if !name.contains('/') => volumes::remove(req, name),
            _ => Err(ApiError::not_found("page not found")),
        });
    }
    match (m, path) {
        ("GET", "/system/df") => Some(df::df(req)),
        _ => None,
    }
}
