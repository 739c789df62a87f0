//! `/version`, `/info`, `/events`.

use std::time::Duration;

use bytes::Bytes;
use serde_json::json;
use tokio::sync::mpsc;

use super::reply::{ApiError, Reply, Result};
use super::route::Req;
use crate::commands::events::Filters;

/// `GET /version`: Docker's `types.Version` for this service.
pub fn version(_req: &Req<'_>) -> Result<Reply> {
    let v = env!("CARGO_PKG_VERSION");
    let (kernel, _, _) = crate::commands::system::uname();
    let arch = oci::host_architecture();
    let details = json!({
        "ApiVersion": super::API_VERSION, "Arch": arch, "BuildTime": "", "GitCommit": "",
        "Experimental": "false", "GoVersion": "", "KernelVersion": kernel,
        "MinAPIVersion": super::MIN_API_VERSION, "Os": "linux",
    });
    Ok(Reply::ok(json!({
        "Platform": {"Name": "strata"},
        "Components": [{"Name": "Engine", "Version": v, "Details": details}],
        "Version": v,
        "ApiVersion": super::API_VERSION,
        "MinAPIVersion": super::MIN_API_VERSION,
        "GitCommit": "",
        "GoVersion": "",
        "Os": "linux",
        "Arch": arch,
        "KernelVersion": kernel,
        "BuildTime": "",
    })))
}

/// `GET /info`: what `strata info` reports (the same function).
pub fn info(req: &Req<'_>) -> Result<Reply> {
    Ok(Reply::ok(crate::commands::system::info_value(req.root)?))
}

/// Seconds since the epoch as the API sends times (`1700000000` or `1700000000.5`), in
/// nanoseconds.
fn time_nanos(key: &str, v: &str) -> Result<i64> {
    let secs: f64 = v.trim().parse().map_err(|_| {
        ApiError::bad_request(format!("invalid value for {key}: {v:?} is not a Unix time"))
    })?;
    Ok((secs * 1e9) as i64)
}

/// `GET /events`: the journal's past events from `since`, then new ones as they are
/// written, until `until` or until the client goes away; Docker's filters.
pub fn events(req: &Req<'_>) -> Result<Reply> {
    let q = &req.query;
    let since = q.get("since").map(|v| time_nanos("since", v)).transpose()?;
    let until = q.get("until").map(|v| time_nanos("until", v)).transpose()?;
    let pairs: Vec<String> = q
        .filters()?
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let filters = Filters::parse(&pairs).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let mut follower = store::events::Follower::at_end(req.root);
    let past = if since.is_some() {
        follower.history().unwrap_or_default()
    } else {
        Vec::new()
    };
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    std::thread::spawn(move || {
        let now = || {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as i64)
                .unwrap_or(0)
        };
        let send = |e: &store::events::Event| -> bool {
            if since.is_some_and(|s| e.time_nano < s) || !filters.include(e) {
                return true;
            }
            let mut line = e.to_json();
            line.push('\n');
            tx.blocking_send(Bytes::from(line)).is_ok()
        };
        for e in &past {
            if until.is_some_and(|u| e.time_nano > u) {
                return;
            }
            if !send(e) {
                return;
            }
        }
        loop {
            if until.is_some_and(|u| now() > u) || tx.is_closed() {
                return;
            }
            for e in follower.poll().unwrap_or_default() {
                if until.is_some_and(|u| e.time_nano > u) {
                    return;
                }
                if !send(&e) {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    Ok(Reply::Stream("application/json", rx))
}
