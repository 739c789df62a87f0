//! Version prefixes and dispatch. `/v1.41/containers/json` and `/containers/json` are the
//! same endpoint; a client asking for a newer version than 1.41 is refused as Docker 20.10
//! refuses it, so that it negotiates down (the docker CLI pings first and does).

use std::path::Path;

use hyper::{HeaderMap, Method, StatusCode, Uri};

use super::reply::{ApiError, Reply, Result};
use super::{containers, contents, exec, images, system};

/// The query string, decoded.
pub struct Query(Vec<(String, String)>);

impl Query {
    pub fn parse(q: Option<&str>) -> Query {
        Query(
            form_urlencoded::parse(q.unwrap_or("").as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
    /// Every value of a repeated parameter (`names=a&names=b`).
    pub fn all(&self, key: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }
    /// Docker's `httputils.BoolValue`: present and not one of `0`, `no`, `false`, `none`.
    pub fn flag(&self, key: &str) -> bool {
        self.get(key).is_some_and(|v| {
            !matches!(
                v.trim().to_ascii_lowercase().as_str(),
                "" | "0" | "no" | "false" | "none"
            )
        })
    }
    /// An integer parameter, with Docker's 400 when it is not one.
    pub fn int(&self, key: &str) -> Result<Option<i64>> {
        match self.get(key).map(str::trim).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| {
                ApiError::bad_request(format!("invalid value for {key}: {v:?} is not a number"))
            }),
        }
    }
    /// `filters`: Docker's JSON map of a key to its values (`{"label":{"a=b":true}}` or the
    /// older `{"label":["a=b"]}`), as `key=value` pairs.
    pub fn filters(&self) -> Result<Vec<(String, String)>> {
        let Some(raw) = self.get("filters").filter(|f| !f.trim().is_empty()) else {
            return Ok(Vec::new());
        };
        let v: serde_json::Value = serde_json::from_str(raw)
            .map_err(|e| ApiError::bad_request(format!("invalid filter: {e}")))?;
        let mut out = Vec::new();
        let Some(map) = v.as_object() else {
            return Err(ApiError::bad_request("invalid filter: not a JSON object"));
        };
        for (k, vals) in map {
            match vals {
                serde_json::Value::Object(m) => {
                    for (v, on) in m {
                        if on.as_bool() != Some(false) {
                            out.push((k.clone(), v.clone()));
                        }
                    }
                }
                serde_json::Value::Array(a) => {
                    for v in a {
                        if let Some(v) = v.as_str() {
                            out.push((k.clone(), v.to_string()));
                        }
                    }
                }
                _ => return Err(ApiError::bad_request(format!("invalid filter {k:?}"))),
            }
        }
        Ok(out)
    }
}

/// A request as the endpoints see it.
pub struct Req<'a> {
    pub root: &'a Path,
    /// A `HEAD` request (routed as `GET`).
    pub head: bool,
    pub query: Query,
    pub body: &'a [u8],
    pub headers: &'a HeaderMap,
}

/// Splits a `/vX.Y` prefix off `path`; refuses versions this service does not serve.
pub fn strip_version(path: &str) -> Result<&str> {
    let Some(rest) = path.strip_prefix("/v") else {
        return Ok(path);
    };
    let (v, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let parse = |v: &str| -> Option<(u32, u32)> {
        let (a, b) = v.split_once('.')?;
        Some((a.parse().ok()?, b.parse().ok()?))
    };
    let Some(asked) = parse(v) else {
        return Ok(path);
    };
    let max = parse(super::API_VERSION).expect("a version");
    let min = parse(super::MIN_API_VERSION).expect("a version");
    if asked > max {
        return Err(ApiError::bad_request(format!(
            "client version {v} is too new. Maximum supported API version is {}",
            super::API_VERSION
        )));
    }
    if asked < min {
        return Err(ApiError::bad_request(format!(
            "client version {v} is too old. Minimum supported API version is {}, please upgrade your client to a newer version",
            super::MIN_API_VERSION
        )));
    }
    Ok(tail)
}

fn not_found() -> ApiError {
    ApiError::not_found("page not found")
}

pub fn route(
    root: &Path,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Reply> {
    let path = strip_version(uri.path())?;
    let req = Req {
        root,
        head: method == Method::HEAD,
        query: Query::parse(uri.query()),
        body,
        headers,
    };
    let m = method.as_str();
    let m = if m == "HEAD" { "GET" } else { m };
    // Networks, volumes and /system/df: networks.rs, volumes.rs, df.rs.
    if let Some(r) = super::networks::route(&req, m, path) {
        return r;
    }
    if (m, path) == ("POST", "/images/create") {
        return images::create(&req);
    }
    if let Some(rest) = path.strip_prefix("/images/") {
        return images_route(&req, m, rest);
    }
    if let Some(rest) = path.strip_prefix("/containers/") {
        return containers_route(&req, m, rest);
    }
    if let Some(rest) = path.strip_prefix("/exec/") {
        let (id, action) = rest.split_once('/').unwrap_or((rest, ""));
        return match (m, action) {
            ("POST", "start") => exec::start_detached(&req, id),
            ("POST", "resize") => exec::resize(&req, id),
            ("GET", "json") => exec::inspect(&req, id),
            _ => Err(not_found()),
        };
    }
    match (m, path) {
        ("GET", "/_ping") => Ok(Reply::Raw(
            StatusCode::OK,
            "text/plain; charset=utf-8",
            b"OK".to_vec(),
        )),
        ("GET", "/version") => system::version(&req),
        ("GET", "/info") => system::info(&req),
        ("GET", "/events") => system::events(&req),
        ("POST", "/commit") => contents::commit(&req),
        ("POST", "/auth") => super::distribution::auth(&req),
        ("POST", "/build/prune") => super::build::prune(&req),
        _ => Err(not_found()),
    }
}

/// `/images/…`: names hold slashes (`localhost:5000/a/b:1`), so the action is the last
/// segment, and `DELETE /images/NAME` is the whole rest.
fn images_route(req: &Req<'_>, m: &str, rest: &str) -> Result<Reply> {
    match (m, rest) {
        ("GET", "json") => return images::list(req),
        ("POST", "prune") => return images::prune(req),
        ("GET", "get") => {
            let names: Vec<String> = req
                .query
                .all("names")
                .iter()
                .map(|n| n.to_string())
                .collect();
            return images::get(req, &names);
        }
        _ => {}
    }
    if m == "DELETE" {
        return images::remove(req, rest);
    }
    let Some((name, action)) = rest.rsplit_once('/') else {
        return Err(not_found());
    };
    match (m, action) {
        ("GET", "json") => images::inspect(req, name),
        ("GET", "history") => images::history(req, name),
        ("POST", "tag") => images::tag(req, name),
        ("POST", "push") => super::distribution::push(req, name),
        ("GET", "get") => images::get(req, &[name.to_string()]),
        _ => Err(not_found()),
    }
}

fn containers_route(req: &Req<'_>, m: &str, rest: &str) -> Result<Reply> {
    match (m, rest) {
        ("GET", "json") => return containers::list(req),
        ("POST", "create") => return containers::create(req),
        ("POST", "prune") => return containers::prune(req),
        _ => {}
    }
    let (id, action) = rest.split_once('/').unwrap_or((rest, ""));
    match (m, action) {
        ("DELETE", "") => containers::remove(req, id),
        ("GET", "json") => containers::inspect(req, id),
        ("GET", "logs") => containers::logs(req, id),
        ("GET", "archive") => containers::archive_get(req, id),
        ("PUT", "archive") => containers::archive_put(req, id),
        ("POST", "start") => containers::start(req, id),
        ("POST", "stop") => containers::stop(req, id),
        ("POST", "restart") => containers::restart(req, id),
        ("POST", "kill") => containers::kill(req, id),
        ("POST", "wait") => containers::wait(req, id),
        ("POST", "rename") => containers::rename(req, id),
        ("POST", "exec") => exec::create(req, id),
        ("GET", "top") => contents::top(req, id),
        ("GET", "changes") => contents::changes(req, id),
        ("GET", "export") => contents::export(req, id),
        ("GET", "stats") => contents::stats(req, id),
        ("POST", "pause") => containers::pause(req, id, true),
        ("POST", "resize") => containers::resize(req, id),
        ("POST", "update") => containers::update(req, id),
        ("POST", "unpause") => containers::pause(req, id, false),
        _ => Err(not_found()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_prefixes() {
        assert_eq!(
            strip_version("/v1.41/containers/json").unwrap(),
            "/containers/json"
        );
        assert_eq!(strip_version("/v1.24/_ping").unwrap(), "/_ping");
        assert_eq!(strip_version("/_ping").unwrap(), "/_ping");
        assert_eq!(strip_version("/volumes").unwrap(), "/volumes");
        let e = strip_version("/v1.47/version").unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert_eq!(
            e.message,
            "client version 1.47 is too new. Maximum supported API version is 1.41"
        );
        assert!(strip_version("/v1.5/info").is_err());
    }

    #[test]
    fn queries_and_filters() {
        let q = Query::parse(Some(
            "all=1&size=false&t=5&filters=%7B%22label%22%3A%7B%22a%3Db%22%3Atrue%7D%7D",
        ));
        assert!(q.flag("all"));
        assert!(!q.flag("size"));
        assert!(!q.flag("missing"));
        assert_eq!(q.int("t").unwrap(), Some(5));
        assert_eq!(
            q.filters().unwrap(),
            [("label".to_string(), "a=b".to_string())]
        );
        let q = Query::parse(Some("filters=%7B%22status%22%3A%5B%22exited%22%5D%7D&t=x"));
        assert_eq!(
            q.filters().unwrap(),
            [("status".to_string(), "exited".to_string())]
        );
        assert!(q.int("t").is_err());
    }
}
