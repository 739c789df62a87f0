//! `POST /build`: the classic builder's endpoint. The body is the context as a tar (plain or
//! compressed), the query holds the options; the answer is Docker's JSON stream (`stream`
//! messages of the build's output, `aux` with the image's ID, `error` with `errorDetail`).
//! The build is the CLI's (`commands::build::build`), reading the body as it arrives; an
//! error before any output is an HTTP error, as Docker's.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};

use super::reply::{ApiError, Reply, Result};
use super::route::Query;
use super::server::{body_reader, respond, Body};
use crate::cli::BuildArgs;
use crate::Failure;

/// Serves one `/build` request.
pub async fn build(root: Arc<PathBuf>, req: Request<Incoming>) -> Response<Body> {
    let args = match build_args(&Query::parse(req.uri().query())) {
        Ok(a) => a,
        Err(e) => return respond(Err(e), false),
    };
    let body = body_reader(req.into_body());
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    let (first_tx, first_rx) = oneshot::channel::<Option<ApiError>>();
    let first = Arc::new(Mutex::new(Some(first_tx)));
    tokio::task::spawn_blocking(move || {
        let cancel = Arc::new(AtomicBool::new(false));
        let cancel_watch = cancel.clone();
        let stream = JsonStream {
            tx: tx.clone(),
            pending: Vec::new(),
            first: first.clone(),
            cancel: cancel.clone(),
        };
        let aux_tx = tx.clone();
        let on_built = move |id: &oci::Digest| {
            let _ = aux_tx.blocking_send(message(&json!({"aux": {"ID": id.to_string()}})));
        };
        let session = crate::commands::build::Session {
            out: Box::new(stream.clone()),
            err: Box::new(stream),
            archive: Some(Box::new(body)),
            on_built: Some(&on_built),
            cancel: Some(cancel),
            confined: true,
        };
        // A client that goes away is noticed even while a step prints nothing: the
        // response's receiver is dropped with the connection.
        let done = Arc::new(AtomicBool::new(false));
        {
            let (tx, done, cancel) = (tx.clone(), done.clone(), cancel_watch);
            std::thread::spawn(move || {
                while !done.load(Ordering::SeqCst) {
                    if tx.is_closed() {
                        cancel.store(true, Ordering::SeqCst);
                        return;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
            });
        }
        let result = crate::commands::build::build(&root, args, session);
        done.store(true, Ordering::SeqCst);
        let Err(e) = result else {
            signal(&first, None);
            return;
        };
        // Before any output: an HTTP error; after: an error message in the stream.
        let (status, text, code) = failure(&e);
        let taken = first.lock().unwrap_or_else(|p| p.into_inner()).take();
        match taken {
            Some(f) => {
                let _ = f.send(Some(ApiError::new(status, text)));
            }
            None => {
                let detail = match code {
                    Some(c) => json!({"code": c, "message": text}),
                    None => json!({"message": text}),
                };
                let _ = tx.blocking_send(message(&json!({"errorDetail": detail, "error": text})));
            }
        }
    });
    match first_rx.await {
        Ok(Some(e)) => respond(Err(e), false),
        _ => respond(Ok(Reply::Stream("application/json", rx)), false),
    }
}

fn signal(first: &Mutex<Option<oneshot::Sender<Option<ApiError>>>>, v: Option<ApiError>) {
    if let Some(f) = first.lock().unwrap_or_else(|p| p.into_inner()).take() {
        let _ = f.send(v);
    }
}

/// One message of Docker's JSON stream.
fn message(v: &Value) -> Bytes {
    let mut b = serde_json::to_vec(v).unwrap_or_default();
    b.extend_from_slice(b"\r\n");
    Bytes::from(b)
}

/// A failed build's status (before any output), message and, for a failed RUN, the code.
fn failure(e: &anyhow::Error) -> (StatusCode, String, Option<u8>) {
    let text = match e.downcast_ref::<Failure>() {
        Some(f) => f.message.clone(),
        None => format!("{e:#}"),
    };
    let code = e
        .downcast_ref::<Failure>()
        .filter(|f| text.starts_with("The command '") && f.code > 1)
        .map(|f| f.code);
    let status = if text.contains("parse error") || text.contains("invalid reference format") {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    };
    (status, text, code)
}

/// The build's output as `{"stream": …}` messages, a line (or several) each; what follows
/// the last newline waits for the next write or a flush. The first message starts the
/// response; a message the client no longer reads stops the build at its next step.
#[derive(Clone)]
struct JsonStream {
    tx: mpsc::Sender<Bytes>,
    pending: Vec<u8>,
    first: Arc<Mutex<Option<oneshot::Sender<Option<ApiError>>>>>,
    cancel: Arc<AtomicBool>,
}

impl Write for JsonStream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.pending.extend_from_slice(buf);
        if let Some(end) = self.pending.iter().rposition(|&b| b == b'\n') {
            self.send(end + 1)?;
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.send(self.pending.len())
    }
}

impl Drop for JsonStream {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

impl JsonStream {
    /// Sends the first `n` pending bytes as one message.
    fn send(&mut self, n: usize) -> std::io::Result<()> {
        if n == 0 {
            return Ok(());
        }
        let rest = self.pending.split_off(n);
        let text = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending = rest;
        signal(&self.first, None);
        if self
            .tx
            .blocking_send(message(&json!({ "stream": text })))
            .is_err()
        {
            self.cancel.store(true, Ordering::SeqCst);
            return Err(std::io::ErrorKind::BrokenPipe.into());
        }
        Ok(())
    }
}

/// The query's options as the CLI's flags. What the classic builder honours and strata
/// has is taken; what strata does not have is refused by name rather than ignored.
fn build_args(q: &Query) -> Result<BuildArgs> {
    let json_map = |key: &str| -> Result<Vec<(String, Option<String>)>> {
        match q.get(key).filter(|v| !v.is_empty()) {
            None => Ok(Vec::new()),
            Some(v) => {
                let m: serde_json::Map<String, Value> = serde_json::from_str(v)
                    .map_err(|e| ApiError::bad_request(format!("invalid {key}: {e}")))?;
                Ok(m.into_iter()
                    .map(|(k, v)| {
                        let v = match v {
                            Value::Null => None,
                            Value::String(s) => Some(s),
                            other => Some(other.to_string()),
                        };
                        (k, v)
                    })
                    .collect())
            }
        }
    };
    if q.get("version") == Some("2") {
        return Err(ApiError::bad_request(
            "BuildKit builds through the API (version=2) are not supported: use the classic builder's (DOCKER_BUILDKIT=0)",
        ));
    }
    if let Some(r) = q.get("remote").filter(|r| !r.is_empty()) {
        return Err(ApiError::bad_request(format!(
            "remote build contexts are not supported ({r}): send the context in the body"
        )));
    }
    for key in ["outputs", "cpusetmems"] {
        if q.get(key).is_some_and(|v| !v.is_empty() && v != "[]") {
            return Err(ApiError::bad_request(format!(
                "the build option {key} is not supported"
            )));
        }
    }
    // The RUN steps' settings, as the CLI's flags (zero: not set, as Docker's client sends).
    let positive =
        |key: &str| -> Result<Option<u64>> { Ok(q.int(key)?.filter(|v| *v > 0).map(|v| v as u64)) };
    let add_host: Vec<String> = q
        .all("extrahosts")
        .iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(str::to_string)
        .collect();
    let memory_swap = match q.int("memswap")? {
        Some(v) if v != 0 => Some(v.to_string()),
        _ => None,
    };
    let network = match q.get("networkmode").filter(|n| !n.is_empty()) {
        None | Some("default" | "bridge") => "default",
        Some("host") => "host",
        Some("none") => "none",
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "network mode {other:?} is not supported for builds: use default, host or none"
            )))
        }
    };
    Ok(BuildArgs {
        tags: q.all("t").iter().map(|t| t.to_string()).collect(),
        file: q
            .get("dockerfile")
            .filter(|f| !f.is_empty())
            .map(str::to_string),
        // A value the client left out (`null`) is not taken from the service's environment.
        build_args: json_map("buildargs")?
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| format!("{k}={v}")))
            .collect(),
        target: q
            .get("target")
            .filter(|t| !t.is_empty())
            .map(str::to_string),
        no_cache: q.flag("nocache"),
        pull: q.flag("pull"),
        quiet: q.flag("q"),
        network: network.to_string(),
        add_host,
        shm_size: positive("shmsize")?.map(|v| v.to_string()),
        memory: positive("memory")?.map(|v| v.to_string()),
        memory_swap,
        cpu_shares: positive("cpushares")?,
        cpuset_cpus: q
            .get("cpusetcpus")
            .filter(|c| !c.is_empty())
            .map(str::to_string),
        cpu_period: positive("cpuperiod")?,
        cpu_quota: positive("cpuquota")?,
        labels: json_map("labels")?
            .into_iter()
            .map(|(k, v)| format!("{k}={}", v.unwrap_or_default()))
            .collect(),
        secrets: Vec::new(),
        ssh: Vec::new(),
        cache_from: Vec::new(),
        cache_to: None,
        iidfile: None,
        platform: q
            .get("platform")
            .filter(|p| !p.is_empty())
            .map(str::to_string),
        progress: None,
        rm: true,
        force_rm: q.flag("forcerm"),
        outputs: Vec::new(),
        squash: q.flag("squash"),
        squash_all: false,
        check: false,
        fix_order: false,
        allow: Vec::new(),
        explain: false,
        context: "-".to_string(),
    })
}

/// `POST /build/prune?all&keep-storage=&filters=` (`docker builder prune`, and `docker system
/// prune`): the CLI's `builder prune`, answered as Docker's `BuildCachePruneReport`.
pub fn prune(req: &super::route::Req<'_>) -> Result<Reply> {
    let keep = req
        .query
        .int("keep-storage")?
        .filter(|k| *k > 0)
        .map(|k| k as u64);
    let mut until = None;
    for (k, v) in req.query.filters()? {
        match k.as_str() {
            "until" => {
                let t = crate::commands::parse_time(&v).ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "invalid filter 'until={v}': not a duration or time"
                    ))
                })?;
                until = Some(t.timestamp_millis());
            }
            // Docker's own filters on cache records strata does not keep: nothing matches.
            "id" | "parent" | "type" | "description" | "inuse" | "shared" | "private" => {}
            _ => return Err(ApiError::bad_request(format!("invalid filter '{k}'"))),
        }
    }
    let (removed, freed) = crate::commands::builder_gc::prune_cache(req.root, keep, until)?;
    Ok(Reply::ok(json!({
        "CachesDeleted": if removed.is_empty() { Value::Null } else { json!(removed) },
        "SpaceReclaimed": freed,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_options_become_flags() {
        let q = Query::parse(Some(
            "t=a:1&t=b&dockerfile=sub%2FDf&buildargs=%7B%22A%22%3A%22x%22%2C%22B%22%3Anull%7D&labels=%7B%22l%22%3A%22v%22%7D&nocache=1&q=1&networkmode=none",
        ));
        let a = build_args(&q).unwrap();
        assert_eq!(a.tags, ["a:1", "b"]);
        assert_eq!(a.file.as_deref(), Some("sub/Df"));
        assert_eq!(a.build_args, ["A=x"]);
        assert_eq!(a.labels, ["l=v"]);
        assert!(a.no_cache && a.quiet);
        assert_eq!(a.network, "none");
        assert_eq!(a.context, "-");
        for bad in [
            "version=2",
            "remote=https://x/y.git",
            "cpusetmems=0",
            "networkmode=mynet",
        ] {
            let e = build_args(&Query::parse(Some(bad))).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST, "{bad}");
        }
        assert!(build_args(&Query::parse(Some("memory=0&extrahosts="))).is_ok());
        let a = build_args(&Query::parse(Some(
            "memory=33554432&memswap=-1&shmsize=1024&cpushares=2&cpuquota=50000&extrahosts=a:1.2.3.4,b:::1",
        )))
        .unwrap();
        assert_eq!(a.memory.as_deref(), Some("33554432"));
        assert_eq!(a.memory_swap.as_deref(), Some("-1"));
        assert_eq!(a.shm_size.as_deref(), Some("1024"));
        assert_eq!(
            (a.cpu_shares, a.cpu_quota, a.cpu_period),
            (Some(2), Some(50000), None)
        );
        assert_eq!(a.add_host, ["a:1.2.3.4", "b:::1"]);
    }

    #[test]
    fn output_becomes_one_message_per_line_without_cutting_characters() {
        let (tx, mut rx) = mpsc::channel(16);
        let mut s = JsonStream {
            tx,
            pending: Vec::new(),
            first: Arc::new(Mutex::new(None)),
            cancel: Arc::new(AtomicBool::new(false)),
        };
        let e = "é".as_bytes();
        s.write_all(b"Step 1/1 : FROM x").unwrap();
        s.write_all(b"\n").unwrap();
        s.write_all(&e[..1]).unwrap();
        s.write_all(&e[1..]).unwrap();
        drop(s);
        let mut got = Vec::new();
        while let Some(b) = rx.blocking_recv() {
            got.push(String::from_utf8(b.to_vec()).unwrap());
        }
        assert_eq!(
            got,
            [
                "{\"stream\":\"Step 1/1 : FROM x\\n\"}\r\n",
                "{\"stream\":\"é\"}\r\n"
            ]
        );
    }
}
