//! `POST /containers/ID/attach`: the hijacked connection `docker run` and `docker start -a`
//! open before they start a container. The request is upgraded (`Upgrade: tcp`, answered
//! `101`); the container's output is read from its log as the monitor writes it (the file is
//! opened here first, so output of a container removed at its end is not lost) and sent
//! multiplexed, or raw for a container with a terminal; what the client sends goes to the
//! container's stdin through the monitor's attach socket (containers created with `-i`).

use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::UPGRADE;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use super::reply::{ApiError, Result};
use super::route::Query;
use super::server::Body;

/// What an attach follows.
struct Plan {
    root: PathBuf,
    id: String,
    tty: bool,
    stdin: bool,
    stdout: bool,
    stderr: bool,
    log: File,
    offset: u64,
    /// When the container last started, as the attach found it: a container that does not
    /// run yet is followed until it has started and stopped again.
    started_at: Option<String>,
}

fn prepare(root: PathBuf, id: &str, q: &Query) -> Result<Plan> {
    let c = crate::commands::open_containers(&root)?;
    let rec = c.find(id).map_err(|e| match e {
        container::Error::Store(store::Error::ContainerNotFound(_)) => {
            ApiError::not_found(format!("No such container: {id}"))
        }
        e => e.into(),
    })?;
    let path = c.log_path(&rec.id);
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).map_err(anyhow::Error::from)?;
    }
    let mut log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .read(true)
        .open(&path)
        .map_err(anyhow::Error::from)?;
    let offset = log.seek(SeekFrom::End(0)).map_err(anyhow::Error::from)?;
    Ok(Plan {
        tty: c.has_tty(&rec.id),
        stdin: q.flag("stdin") && c.open_stdin(&rec.id),
        stdout: q.flag("stdout"),
        stderr: q.flag("stderr"),
        root,
        started_at: rec.state.started_at.clone(),
        id: rec.id,
        log,
        offset,
    })
}

/// Sends the container's output from the log as it grows, until it has stopped (or is
/// gone) and everything written is sent, or the client left.
fn follow(plan: Plan, tx: mpsc::Sender<Bytes>) {
    let Ok(c) = crate::commands::open_containers(&plan.root) else {
        return;
    };
    let mut r = BufReader::new(plan.log);
    if r.seek(SeekFrom::Start(plan.offset)).is_err() {
        return;
    }
    let mut seen_start = false;
    let mut line = Vec::new();
    loop {
        // The state first: output written before a stop is in the file when it is read
        // below (the monitor drains the output before it records the exit).
        let state = c.find(&plan.id).ok().map(|r| r.state);
        let done = match state {
            None => true,
            Some(st) => match st.status.as_str() {
                "running" | "paused" | "restarting" => {
                    seen_start = true;
                    false
                }
                _ => seen_start || st.started_at != plan.started_at,
            },
        };
        loop {
            line.clear();
            match r.read_until(b'\n', &mut line) {
                Ok(0) => break,
                Ok(n) if line[n - 1] != b'\n' => {
                    // A line still being written: read it again whole.
                    let back = -(n as i64);
                    if r.seek_relative(back).is_err() {
                        return;
                    }
                    break;
                }
                Ok(n) => {
                    let e = container::parse_line(&String::from_utf8_lossy(&line[..n - 1]));
                    let (wanted, stream) = match e.stream {
                        container::Stream::Stdout => (plan.stdout, 1u8),
                        container::Stream::Stderr => (plan.stderr, 2u8),
                    };
                    if !wanted {
                        continue;
                    }
                    let chunk = super::reply::output_chunk(plan.tty, stream, e.log.as_bytes());
                    if tx.blocking_send(chunk).is_err() {
                        return;
                    }
                }
                Err(_) => return,
            }
        }
        if done || tx.is_closed() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Connects to the monitor's stdin socket, waiting for the container to start.
async fn stdin_socket(root: PathBuf, id: String) -> Option<tokio::net::UnixStream> {
    for _ in 0..600 {
        let (r, i) = (root.clone(), id.clone());
        let sock = tokio::task::spawn_blocking(move || {
            crate::commands::open_containers(&r)
                .ok()
                .and_then(|c| c.connect_stdin(&i))
        })
        .await
        .ok()
        .flatten();
        if let Some(s) = sock {
            s.set_nonblocking(true).ok()?;
            return tokio::net::UnixStream::from_std(s).ok();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

pub async fn attach(root: Arc<PathBuf>, mut req: Request<Incoming>, id: String) -> Response<Body> {
    let q = Query::parse(req.uri().query());
    let root = root.as_ref().clone();
    let plan = {
        let root = root.clone();
        let id = id.clone();
        tokio::task::spawn_blocking(move || prepare(root, &id, &q))
            .await
            .unwrap_or_else(|e| {
                Err(ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    e.to_string(),
                ))
            })
    };
    let plan = match plan {
        Ok(p) => p,
        Err(e) => return super::server::respond(Err(e), false),
    };
    if !req.headers().contains_key(UPGRADE) {
        return super::server::respond(
            Err(ApiError::bad_request(
                "attach needs a connection upgrade (Connection: Upgrade, Upgrade: tcp)",
            )),
            false,
        );
    }
    let tty = plan.tty;
    let wants_stdin = plan.stdin;
    let on_upgrade = hyper::upgrade::on(&mut req);
    let (cid, sroot) = (plan.id.clone(), root.clone());
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let (mut rd, mut wr) = tokio::io::split(TokioIo::new(upgraded));
        let (tx, mut rx) = mpsc::channel::<Bytes>(64);
        std::thread::spawn(move || follow(plan, tx));
        let stdin = tokio::spawn(async move {
            if !wants_stdin {
                // Keep reading so that a client's half-close is noticed, and drop the bytes.
                let mut buf = [0u8; 4096];
                while matches!(rd.read(&mut buf).await, Ok(n) if n > 0) {}
                return;
            }
            let mut buf = [0u8; 8192];
            let mut sock: Option<tokio::net::UnixStream> = None;
            loop {
                let n = match rd.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                if sock.is_none() {
                    sock = stdin_socket(sroot.clone(), cid.clone()).await;
                }
                let Some(s) = sock.as_mut() else { break };
                if s.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
            // The client closed its side: the container's stdin ends too.
            tracing::debug!("attach {cid}: the client's stdin ended");
            if let Some(mut s) = sock {
                let _ = s.shutdown().await;
            }
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
