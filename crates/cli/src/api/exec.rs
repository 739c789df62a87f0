//! `docker exec` over the API: `POST /containers/ID/exec` makes an exec instance,
//! `POST /exec/ID/start` runs it through `Containers::exec` (the CLI's `exec`), hijacked
//! (`Upgrade: tcp`) or detached, and `GET /exec/ID/json` reports it. Exec instances live in
//! the service's memory, as Docker's daemon keeps them: they matter only between a create
//! and the inspect after the end.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::UPGRADE;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use super::reply::{ApiError, Reply, Result};
use super::route::Req;
use super::server::Body;

#[derive(Debug, Clone)]
struct Instance {
    container: String,
    args: Vec<String>,
    env: Vec<String>,
    workdir: Option<String>,
    user: Option<String>,
    privileged: bool,
    tty: bool,
    stdin: bool,
    stdout: bool,
    stderr: bool,
    running: bool,
    exit_code: Option<i32>,
    /// With `tty`: the size last asked for (rows, columns), and the terminal's master side
    /// once the process runs.
    size: Option<(u16, u16)>,
    master: Option<Arc<OwnedFd>>,
}

fn instances() -> &'static Mutex<HashMap<String, Instance>> {
    static I: OnceLock<Mutex<HashMap<String, Instance>>> = OnceLock::new();
    I.get_or_init(Default::default)
}

fn get(id: &str) -> Result<Instance> {
    instances()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(id)
        .cloned()
        .ok_or_else(|| ApiError::not_found(format!("No such exec instance: {id}")))
}

fn update(id: &str, f: impl FnOnce(&mut Instance)) {
    if let Some(i) = instances()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get_mut(id)
    {
        f(i);
    }
}

fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

/// `POST /containers/ID/exec` (201 `{"Id"}`; 409 when the container does not run).
pub fn create(req: &Req<'_>, id: &str) -> Result<Reply> {
    let body: Value = serde_json::from_slice(req.body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON in the request body: {e}")))?;
    let args = strings(body.get("Cmd"));
    if args.is_empty() {
        return Err(ApiError::bad_request("No exec command specified"));
    }
    let c = crate::commands::open_containers(req.root)?;
    let rec = c.find(id).map_err(|e| match e {
        container::Error::Store(store::Error::ContainerNotFound(_)) => {
            ApiError::not_found(format!("No such container: {id}"))
        }
        e => e.into(),
    })?;
    let running = c
        .summaries(false)?
        .into_iter()
        .any(|s| s.record.id == rec.id && s.running);
    if !running {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("Container {} is not running", rec.id),
        ));
    }
    let flag = |k: &str| body.get(k).and_then(Value::as_bool).unwrap_or(false);
    let text = |k: &str| {
        body.get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let exec_id = container::new_id();
    instances()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(
            exec_id.clone(),
            Instance {
                container: rec.id,
                args,
                env: strings(body.get("Env")),
                workdir: text("WorkingDir"),
                user: text("User"),
                privileged: flag("Privileged"),
                tty: flag("Tty"),
                stdin: flag("AttachStdin"),
                stdout: flag("AttachStdout"),
                stderr: flag("AttachStderr"),
                running: false,
                exit_code: None,
                // API 1.42's `ConsoleSize` [rows, columns], taken when a client sends it.
                size: body
                    .get("ConsoleSize")
                    .and_then(Value::as_array)
                    .and_then(|a| Some((a.first()?.as_u64()?, a.get(1)?.as_u64()?)))
                    .filter(|(h, w)| *h > 0 && *w > 0)
                    .map(|(h, w)| (h.min(u16::MAX as u64) as u16, w.min(u16::MAX as u64) as u16)),
                master: None,
            },
        );
    Ok(Reply::Json(StatusCode::CREATED, json!({"Id": exec_id})))
}

/// `GET /exec/ID/json`: Docker's `ExecInspect`.
pub fn inspect(_req: &Req<'_>, id: &str) -> Result<Reply> {
    let i = get(id)?;
    Ok(Reply::ok(json!({
        "ID": id, "Running": i.running, "ExitCode": i.exit_code, "CanRemove": false,
        "ContainerID": i.container, "DetachKeys": "", "OpenStdin": i.stdin,
        "OpenStdout": i.stdout, "OpenStderr": i.stderr, "Pid": 0,
        "ProcessConfig": {
            "tty": i.tty, "entrypoint": i.args[0], "arguments": &i.args[1..],
            "privileged": i.privileged, "user": i.user.clone().unwrap_or_default(),
        },
    })))
}

/// Runs the instance to its end on this thread: output chunks (multiplexed, or raw with a
/// terminal) to `out`, stdin from `input` when it is attached.
fn run(
    root: PathBuf,
    id: String,
    out: Option<mpsc::Sender<Bytes>>,
    input: Option<std::io::PipeReader>,
) {
    let Ok(i) = get(&id) else { return };
    update(&id, |i| i.running = true);
    let result = (|| -> anyhow::Result<i32> {
        let mut c = crate::commands::open_containers(&root)?;
        let mut readers = Vec::new();
        let mut stdio = |wanted: bool, stream: u8| -> anyhow::Result<runtime::Stdio> {
            if !wanted || out.is_none() {
                return Ok(runtime::Stdio::Null);
            }
            let (r, w) = std::io::pipe()?;
            readers.push((r, stream));
            Ok(runtime::Stdio::Fd(w.into()))
        };
        let stdout = stdio(i.stdout, 1)?;
        let stderr = stdio(i.stderr, 2)?;
        let tty = i.tty;
        let pumps: Vec<_> = readers
            .into_iter()
            .filter_map(|(mut r, stream)| {
                let tx = out.clone()?;
                Some(std::thread::spawn(move || {
                    let mut buf = [0u8; 32 * 1024];
                    loop {
                        let n = match r.read(&mut buf) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        let chunk = super::reply::output_chunk(tty, stream, &buf[..n]);
                        if tx.blocking_send(chunk).is_err() {
                            return;
                        }
                    }
                }))
            })
            .collect();
        let stdin = match input {
            Some(r) => runtime::Stdio::Fd(r.into()),
            None => runtime::Stdio::Null,
        };
        // With a terminal its output comes through the stdout pipe, and its master side to
        // the instance, where `resize` finds it.
        let terminal = tty.then(|| {
            let (tx, rx) = std::sync::mpsc::channel::<OwnedFd>();
            let id = id.clone();
            std::thread::spawn(move || {
                if let Ok(m) = rx.recv() {
                    update(&id, |i| {
                        if let Some((rows, cols)) = i.size {
                            let _ = runtime::resize_terminal(m.as_fd(), rows, cols);
                        }
                        i.master = Some(Arc::new(m));
                    });
                }
            });
            tx
        });
        let code = c.exec(
            &i.container,
            container::ExecRequest {
                args: i.args.clone(),
                env: i.env.clone(),
                workdir: i.workdir.clone(),
                user: i.user.clone(),
                privileged: i.privileged,
                tty,
                terminal,
                tty_size: i.size,
                io: container::StartIo {
                    stdin,
                    stdout,
                    stderr,
                    log: None,
                },
                started: None,
            },
        )?;
        for p in pumps {
            let _ = p.join();
        }
        Ok(code)
    })();
    let code = match result {
        Ok(code) => code,
        Err(e) => {
            if let Some(tx) = &out {
                let msg = format!("{e:#}\n");
                let _ = tx.blocking_send(Bytes::from(msg.into_bytes()));
            }
            126
        }
    };
    update(&id, |i| {
        i.running = false;
        i.exit_code = Some(code);
        i.master = None;
    });
}

/// `POST /exec/ID/start` without a connection upgrade: `{"Detach": true}` runs it in the
/// background (200).
pub fn start_detached(req: &Req<'_>, id: &str) -> Result<Reply> {
    get(id)?;
    let (root, id) = (req.root.to_path_buf(), id.to_string());
    std::thread::spawn(move || run(root, id, None, None));
    Ok(Reply::Empty(StatusCode::OK))
}

/// `POST /exec/ID/resize?h=&w=`: sizes the instance's terminal (or the one it will get at
/// its start); 400 for a bad size, as Docker's.
pub fn resize(req: &Req<'_>, id: &str) -> Result<Reply> {
    get(id)?;
    let size = terminal_size_query(req)?;
    let mut failed = None;
    update(id, |i| {
        i.size = Some(size);
        if let Some(m) = &i.master {
            failed = runtime::resize_terminal(m.as_fd(), size.0, size.1).err();
        }
    });
    match failed {
        Some(e) => Err(anyhow::anyhow!("resize exec {id}: {e}").into()),
        None => Ok(Reply::Empty(StatusCode::OK)),
    }
}

/// `h` and `w` of a resize request, Docker's 400 when they are not sizes.
pub(super) fn terminal_size_query(req: &Req<'_>) -> Result<(u16, u16)> {
    let dim = |k: &str| -> Result<u16> {
        req.query
            .get(k)
            .unwrap_or("0")
            .trim()
            .parse::<u16>()
            .map_err(|e| ApiError::bad_request(format!("strconv.Atoi: parsing {k:?}: {e}")))
    };
    Ok((dim("h")?, dim("w")?))
}

/// The exec of `POST [/vX.Y]/exec/ID/start` with an upgrade asked for.
pub fn hijack_target(req: &Request<Incoming>) -> Option<String> {
    if req.method() != hyper::Method::POST || !req.headers().contains_key(UPGRADE) {
        return None;
    }
    let path = req.uri().path();
    let path = match path.strip_prefix("/v") {
        Some(rest) => &rest[rest.find('/')?..],
        None => path,
    };
    let id = path.strip_prefix("/exec/")?.strip_suffix("/start")?;
    (!id.is_empty() && !id.contains('/')).then(|| id.to_string())
}

/// `POST /exec/ID/start`, hijacked: the process's output on the connection, what the client
/// sends on its stdin.
pub async fn start_attached(
    root: Arc<PathBuf>,
    mut req: Request<Incoming>,
    id: String,
) -> Response<Body> {
    let inst = match get(&id) {
        Ok(i) => i,
        Err(e) => return super::server::respond(Err(e), false),
    };
    let on_upgrade = hyper::upgrade::on(&mut req);
    let _ = Limited::new(req.into_body(), 1 << 20).collect().await;
    let root = root.as_ref().clone();
    let tty = inst.tty;
    let wants_stdin = inst.stdin;
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let (mut rd, mut wr) = tokio::io::split(TokioIo::new(upgraded));
        let (tx, mut rx) = mpsc::channel::<Bytes>(64);
        let (input, mut feed) = if wants_stdin {
            match std::io::pipe() {
                Ok((r, w)) => (Some(r), Some(w)),
                Err(_) => (None, None),
            }
        } else {
            (None, None)
        };
        std::thread::spawn(move || run(root, id, Some(tx), input));
        let stdin = tokio::spawn(async move {
            let mut buf = [0u8; 8192];
            loop {
                let n = match rd.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                if let Some(w) = feed.as_mut() {
                    if tokio::task::block_in_place(|| w.write_all(&buf[..n])).is_err() {
                        break;
                    }
                }
            }
            // The client's end of stdin is the process's.
            drop(feed);
        });
        while let Some(chunk) = rx.recv().await {
            if wr.write_all(&chunk).await.is_err() {
                break;
            }
            let _ = wr.flush().await;
        }
        let _ = wr.shutdown().await;
        stdin.abort();
    });
    super::server::upgraded(tty)
}
