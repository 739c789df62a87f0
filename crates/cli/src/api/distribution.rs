//! Registry access as Docker's daemon does it: `POST /auth` (`docker login` checks the
//! credentials through the daemon; the client keeps them), `POST /images/NAME/push?tag=`
//! (`push`, its progress streamed as Docker's JSON messages), and the credentials of a
//! request's `X-Registry-Auth` header (the store's when the client sends none), which pull
//! (`images.rs`) takes too.

use base64::Engine as _;
use bytes::Bytes;
use hyper::HeaderMap;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::reply::{ApiError, Reply, Result};
use super::route::Req;
use crate::commands::open_store;

/// The credentials of an `X-Registry-Auth` header: base64url (padded or not; standard
/// base64 is taken too) of Docker's `AuthConfig` JSON, with `username`/`password` or
/// `auth` (base64 of `user:pass`). `None` for no header, `{}` or an identity token only.
/// A header that is not base64 JSON is a 400, as Docker's.
pub fn registry_auth(headers: &HeaderMap) -> Result<Option<registry::Credentials>> {
    let Some(raw) = headers.get("x-registry-auth") else {
        return Ok(None);
    };
    let raw = raw.to_str().unwrap_or("").trim();
    if raw.is_empty() {
        return Ok(None);
    }
    let bad = || ApiError::bad_request("invalid X-Registry-Auth header: not base64-encoded JSON");
    let engines = [
        base64::engine::general_purpose::URL_SAFE,
        base64::engine::general_purpose::URL_SAFE_NO_PAD,
        base64::engine::general_purpose::STANDARD,
        base64::engine::general_purpose::STANDARD_NO_PAD,
    ];
    let bytes = engines
        .iter()
        .find_map(|e| e.decode(raw).ok())
        .ok_or_else(bad)?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    let field = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let (mut username, mut password) = (field("username"), field("password"));
    if username.is_empty() {
        let auth = field("auth");
        if let Some((u, p)) = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| {
                s.split_once(':')
                    .map(|(u, p)| (u.to_string(), p.to_string()))
            })
        {
            (username, password) = (u, p);
        }
    }
    if username.is_empty() {
        return Ok(None);
    }
    Ok(Some(registry::Credentials { username, password }))
}

/// The request's credentials, or the store's for `registry_host`.
pub fn credentials(req: &Req<'_>, registry_host: &str) -> Result<Option<registry::Credentials>> {
    if let Some(c) = registry_auth(req.headers)? {
        return Ok(Some(c));
    }
    let hosts = &crate::settings::get().hosts;
    registry::load_credentials(&hosts.config_file, registry_host)
        .map_err(|e| anyhow::Error::from(e).into())
}

/// `POST /auth`: Docker's `AuthConfig` in the body, checked against its registry (the
/// `serveraddress`, Docker Hub without one); nothing is saved (the docker CLI keeps the
/// credentials itself). 401 with the registry's answer when it refuses them.
pub fn auth(req: &Req<'_>) -> Result<Reply> {
    let v: Value = serde_json::from_slice(req.body)
        .map_err(|e| ApiError::bad_request(format!("invalid auth configuration: {e}")))?;
    let field = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let server = field("serveraddress");
    let server = server
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let host = match server.split('/').next().unwrap_or("") {
        "" | "index.docker.io" | "registry-1.docker.io" => "docker.io",
        h => h,
    };
    let creds = registry::Credentials {
        username: field("username"),
        password: field("password"),
    };
    let hosts = &crate::settings::get().hosts;
    let client = registry::Client::new(host, Some(creds), hosts);
    if let Err(e) = client.login() {
        return Err(ApiError::new(hyper::StatusCode::UNAUTHORIZED, e));
    }
    Ok(Reply::ok(
        json!({"Status": "Login Succeeded", "IdentityToken": ""}),
    ))
}

/// One JSON message of the stream, with Docker's `\r\n`.
fn line(v: &Value) -> Bytes {
    let mut b = serde_json::to_vec(v).unwrap_or_default();
    b.extend_from_slice(b"\r\n");
    Bytes::from(b)
}

/// `POST /images/NAME/push?tag=TAG`: the tag given, or every local tag of the repository
/// without one (Docker 20.10's API; the docker CLI sends `latest` unless told `-a`). The
/// stream starts at once, so every failure after a valid name (no such image, the
/// registry's refusals) is an `error` message, as Docker's daemon sends it; each pushed
/// tag ends with Docker's `aux` {Tag, Digest, Size}.
pub fn push(req: &Req<'_>, name: &str) -> Result<Reply> {
    let tag = req.query.get("tag").filter(|t| !t.is_empty());
    let full = match tag {
        Some(t) => format!("{name}:{t}"),
        None => name.to_string(),
    };
    let r = image::parse_name(&full).map_err(|e| ApiError::bad_request(e.to_string()))?;
    if r.digest.is_some() {
        return Err(ApiError::bad_request("cannot push a digest reference"));
    }
    let creds = credentials(req, &r.registry)?;
    let root = req.root.to_path_buf();
    let all_tags = tag.is_none() && !name.rsplit('/').next().is_some_and(|l| l.contains(':'));
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    std::thread::spawn(move || {
        let send = |v: Value| {
            let _ = tx.blocking_send(line(&v));
        };
        let started = std::sync::atomic::AtomicBool::new(false);
        let refers = format!("The push refers to repository [{}]", r.name());
        let progress = |p: registry::Progress<'_>| {
            started.store(true, std::sync::atomic::Ordering::SeqCst);
            send(super::images::progress_message(&p));
        };
        let result = (|| -> anyhow::Result<()> {
            let mut store = open_store(&root)?;
            let hosts = &crate::settings::get().hosts;
            let refs = if all_tags {
                registry::local_tags(&store, &r)?
            } else {
                vec![r.clone()]
            };
            if refs.is_empty() {
                anyhow::bail!(
                    "An image does not exist locally with the tag: {}",
                    r.repository_familiar()
                );
            }
            let opts = image::ExportOptions::default();
            for one in &refs {
                let pushed =
                    registry::push(&mut store, one, creds.clone(), hosts, &opts, &progress)?;
                send(json!({
                    "progressDetail": {},
                    "aux": {
                        "Tag": one.tag.clone().unwrap_or_else(|| "latest".into()),
                        "Digest": pushed.digest.to_string(),
                        "Size": pushed.size,
                    }
                }));
            }
            Ok(())
        })();
        if let Err(e) = result {
            if !started.load(std::sync::atomic::Ordering::SeqCst) {
                send(json!({"status": refers}));
            }
            let msg = format!("{e:#}");
            send(json!({"errorDetail": {"message": msg}, "error": msg}));
        }
    });
    Ok(Reply::Stream("application/json", rx))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-registry-auth", v.parse().unwrap());
        h
    }

    #[test]
    fn registry_auth_headers_as_docker_clients_send_them() {
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE.encode(s);
        let c = registry_auth(&headers(&b64(
            r#"{"username":"u","password":"p?>","serveraddress":"h"}"#,
        )))
        .unwrap()
        .unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("u", "p?>"));
        let auth = base64::engine::general_purpose::STANDARD.encode("a:b:c");
        let c = registry_auth(&headers(&b64(&format!(r#"{{"auth":"{auth}"}}"#))))
            .unwrap()
            .unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("a", "b:c"));
        assert!(registry_auth(&headers(&b64("{}"))).unwrap().is_none());
        assert!(registry_auth(&HeaderMap::new()).unwrap().is_none());
        assert!(registry_auth(&headers("not base64!")).is_err());
    }
}
