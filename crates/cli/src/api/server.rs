//! The listener: a Unix socket (mode 0660, group `docker` when that group exists, as
//! Docker's), a socket passed by systemd (`LISTEN_FDS`), or a loopback TCP port; hyper's
//! HTTP/1.1 on each connection; exit after `--time` seconds with no connection open.

use std::convert::Infallible;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full, Limited};
use hyper::body::{Frame, Incoming};
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::sync::mpsc;

use super::reply::{ApiError, Reply};
use crate::cli::ServiceArgs;
use crate::Failure;

pub type Body = BoxBody<Bytes, Infallible>;

/// Largest request body read into memory (JSON bodies; archives are streamed elsewhere).
const MAX_BODY: usize = 64 << 20;

/// A body fed by a channel: the handler's thread sends chunks as it makes them.
struct ChannelBody(mpsc::Receiver<Bytes>);

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|c| c.map(|b| Ok(Frame::data(b))))
    }
}

/// Where to listen.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Listen {
    Unix(PathBuf),
    Tcp(std::net::SocketAddr),
    /// A socket systemd opened and passed as fd 3.
    Activated,
}

/// The default socket: `/run/strata/strata.sock` as root, `$XDG_RUNTIME_DIR/strata/strata.sock`
/// otherwise (`/tmp/strata-UID/strata.sock` without a runtime directory).
fn default_socket() -> PathBuf {
    // The host user's, also inside rootless strata's user namespace (where the user is 0).
    runtime::rootless::runtime_dir().join("strata.sock")
}

/// Docker's warning for an API on a network address without TLS.
const REMOTE_WARNING: &str = "Binding to IP address without --tlsverify is insecure and gives root access on this machine to everyone who has access to your network.";

/// [`parse_listen`]; `remote_ok` (`--tls=false`) allows a TCP address that is not loopback,
/// with Docker's warning.
fn parse_listen_with(uri: Option<&str>, remote_ok: bool) -> anyhow::Result<Listen> {
    if uri.is_none() && systemd_socket() {
        return Ok(Listen::Activated);
    }
    let Some(uri) = uri else {
        return Ok(Listen::Unix(default_socket()));
    };
    if let Some(path) = uri.strip_prefix("unix://") {
        if path.is_empty() {
            bail!("invalid listen address {uri:?}: no socket path");
        }
        return Ok(Listen::Unix(PathBuf::from(path)));
    }
    if let Some(addr) = uri.strip_prefix("tcp://") {
        let addr: std::net::SocketAddr = addr
            .parse()
            .with_context(|| format!("invalid listen address {uri:?}"))?;
        // The API gives whoever reaches it root on this machine: loopback only.
        if !addr.ip().is_loopback() {
            if !remote_ok {
                bail!(
                    "refusing to listen on {addr}: the Engine API gives root to whoever reaches it; \
                     use a loopback address (127.0.0.1 or ::1) or a unix:// socket \
                     (--tls=false binds it anyway)"
                );
            }
            eprintln!("WARNING: {REMOTE_WARNING}");
        }
        return Ok(Listen::Tcp(addr));
    }
    bail!("invalid listen address {uri:?}: use unix:///PATH or tcp://127.0.0.1:PORT")
}

/// Whether systemd passed this process a listening socket (`LISTEN_PID`/`LISTEN_FDS`).
fn systemd_socket() -> bool {
    let pid = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok());
    let fds = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|p| p.parse::<u32>().ok());
    pid == Some(std::process::id()) && fds == Some(1)
}

enum Listener {
    Unix(tokio::net::UnixListener, Option<PathBuf>),
    Tcp(tokio::net::TcpListener),
}

/// Binds the Unix socket at `path`: a stale socket file (nothing answers it) is replaced,
/// a live one is an error; the socket is made 0660, group `docker` when it exists.
fn bind_unix(path: &Path) -> anyhow::Result<std::os::unix::net::UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            bail!(
                "{} is in use: another service listens on it",
                path.display()
            );
        }
        std::fs::remove_file(path)
            .with_context(|| format!("cannot remove the stale socket {}", path.display()))?;
    }
    let l = std::os::unix::net::UnixListener::bind(path)
        .with_context(|| format!("cannot listen on {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .with_context(|| format!("cannot set the mode of {}", path.display()))?;
    // Rootless, the host's docker group is not in the user namespace (its number there would
    // be one of the user's subordinate groups): the socket stays the user's.
    if let Some(gid) = docker_group().filter(|_| !runtime::rootless::active()) {
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())?;
        // SAFETY: a valid C string; -1 keeps the owner.
        if unsafe { libc::chown(c.as_ptr(), u32::MAX, gid) } != 0 {
            tracing::warn!(
                "cannot give {} to group docker: {}",
                path.display(),
                std::io::Error::last_os_error()
            );
        }
    }
    Ok(l)
}

/// The ID of the group `docker`, when this machine has one (Docker's convention for who may
/// use the socket).
fn docker_group() -> Option<u32> {
    let group = std::fs::read_to_string("/etc/group").ok()?;
    group.lines().find_map(|l| {
        let mut f = l.split(':');
        (f.next() == Some("docker"))
            .then(|| f.nth(1).and_then(|g| g.parse().ok()))
            .flatten()
    })
}

/// Open connections and the time the last one closed.
struct Activity {
    open: AtomicUsize,
    last: Mutex<Instant>,
}

struct ConnGuard(Arc<Activity>);

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::SeqCst);
        *self.0.last.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    }
}

pub fn serve(root: &Path, a: ServiceArgs) -> anyhow::Result<()> {
    let listen = parse_listen_with(a.uri.as_deref(), !a.tls)
        .map_err(|e| Failure::new(125, format!("{e:#}")))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(64)
        .enable_all()
        .build()
        .context("cannot start the service's runtime")?;
    let idle = (a.time > 0).then(|| Duration::from_secs(a.time));
    let root = root.to_path_buf();
    rt.block_on(async move {
        let listener = match &listen {
            Listen::Unix(path) => {
                let l = bind_unix(path)?;
                l.set_nonblocking(true)?;
                Listener::Unix(tokio::net::UnixListener::from_std(l)?, Some(path.clone()))
            }
            Listen::Activated => {
                use std::os::fd::FromRawFd;
                // SAFETY: systemd passes the listening socket as fd 3 (SD_LISTEN_FDS_START)
                // and it is used nowhere else.
                let l = unsafe { std::os::unix::net::UnixListener::from_raw_fd(3) };
                // Passed without close-on-exec: no container monitor may inherit it.
                // SAFETY: fcntl on a descriptor this process owns.
                unsafe { libc::fcntl(3, libc::F_SETFD, libc::FD_CLOEXEC) };
                l.set_nonblocking(true)?;
                Listener::Unix(tokio::net::UnixListener::from_std(l)?, None)
            }
            Listen::Tcp(addr) => Listener::Tcp(
                tokio::net::TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("cannot listen on {addr}"))?,
            ),
        };
        tracing::info!("API listening on {listen:?}");
        let result = accept_loop(&listener, root, idle).await;
        if let Listener::Unix(_, Some(path)) = &listener {
            let _ = std::fs::remove_file(path);
        }
        result
    })
}

async fn accept_loop(
    listener: &Listener,
    root: PathBuf,
    idle: Option<Duration>,
) -> anyhow::Result<()> {
    let activity = Arc::new(Activity {
        open: AtomicUsize::new(0),
        last: Mutex::new(Instant::now()),
    });
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let root = Arc::new(root);
    loop {
        let tick = tokio::time::sleep(Duration::from_millis(250));
        tokio::select! {
            conn = accept(listener) => {
                let io = match conn {
                    Ok(io) => io,
                    Err(e) => {
                        tracing::warn!("accept: {e}");
                        continue;
                    }
                };
                activity.open.fetch_add(1, Ordering::SeqCst);
                let guard = ConnGuard(activity.clone());
                let root = root.clone();
                tokio::spawn(async move {
                    let _guard = guard;
                    let svc = hyper::service::service_fn(move |req| handle(root.clone(), req));
                    if let Err(e) = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, svc)
                        .with_upgrades()
                        .await
                    {
                        tracing::debug!("connection: {e}");
                    }
                });
            }
            _ = tick => {
                if let Some(idle) = idle {
                    let last = *activity.last.lock().unwrap_or_else(|e| e.into_inner());
                    if activity.open.load(Ordering::SeqCst) == 0 && last.elapsed() >= idle {
                        return Ok(());
                    }
                }
            }
            _ = tokio::signal::ctrl_c() => return Ok(()),
            _ = term.recv() => return Ok(()),
        }
    }
}

/// A connection of either kind.
enum Io {
    Unix(TokioIo<tokio::net::UnixStream>),
    Tcp(TokioIo<tokio::net::TcpStream>),
}

async fn accept(l: &Listener) -> std::io::Result<Io> {
    Ok(match l {
        Listener::Unix(l, _) => Io::Unix(TokioIo::new(l.accept().await?.0)),
        Listener::Tcp(l) => Io::Tcp(TokioIo::new(l.accept().await?.0)),
    })
}

impl hyper::rt::Read for Io {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Io::Unix(s) => Pin::new(s).poll_read(cx, buf),
            Io::Tcp(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl hyper::rt::Write for Io {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Io::Unix(s) => Pin::new(s).poll_write(cx, buf),
            Io::Tcp(s) => Pin::new(s).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Io::Unix(s) => Pin::new(s).poll_flush(cx),
            Io::Tcp(s) => Pin::new(s).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Io::Unix(s) => Pin::new(s).poll_shutdown(cx),
            Io::Tcp(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// One request: its body read (bounded), the endpoint run on the blocking pool, the reply
/// made into a response with Docker's headers.
async fn handle(root: Arc<PathBuf>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    if let Some(id) = attach_target(req.method(), req.uri().path()) {
        return Ok(super::attach::attach(root, req, id).await);
    }
    if let Some(id) = super::exec::hijack_target(&req) {
        return Ok(super::exec::start_attached(root, req, id).await);
    }
    if req.method() == hyper::Method::POST {
        match super::route::strip_version(req.uri().path()) {
            Ok("/images/load") => return Ok(load(root, req).await),
            Ok("/build") => return Ok(super::build::build(root, req).await),
            _ => {}
        }
    }
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            let err = ApiError::bad_request(format!("cannot read the request body: {e}"));
            return Ok(respond(Err(err), parts.method == hyper::Method::HEAD));
        }
    };
    let head = parts.method == hyper::Method::HEAD;
    tracing::debug!("{} {}", parts.method, parts.uri);
    let reply = tokio::task::spawn_blocking(move || {
        super::route::route(&root, &parts.method, &parts.uri, &parts.headers, &body)
    })
    .await
    .unwrap_or_else(|e| {
        Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the request's handler failed: {e}"),
        ))
    });
    Ok(respond(reply, head))
}

/// `POST /images/load`: the body goes to the loader as it arrives (archives can be big).
async fn load(root: Arc<PathBuf>, req: Request<Incoming>) -> Response<Body> {
    let quiet = super::route::Query::parse(req.uri().query()).flag("quiet");
    let body = body_reader(req.into_body());
    let reply = tokio::task::spawn_blocking(move || super::images::load(&root, quiet, body))
        .await
        .unwrap_or_else(|e| {
            Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("the request's handler failed: {e}"),
            ))
        });
    respond(reply, false)
}

/// A request's body as a blocking reader, fed as the chunks arrive; a connection broken
/// before the body's end is a read error.
pub fn body_reader(mut body: Incoming) -> super::reply::BodyReader {
    let (tx, rx) = mpsc::channel::<std::io::Result<Bytes>>(16);
    tokio::spawn(async move {
        while let Some(frame) = body.frame().await {
            let data = match frame {
                Ok(f) => match f.into_data() {
                    Ok(d) => d,
                    Err(_) => continue,
                },
                Err(e) => {
                    let e = std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        format!("the request body ended early: {e}"),
                    );
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            };
            if tx.send(Ok(data)).await.is_err() {
                return;
            }
        }
    });
    super::reply::BodyReader::new(rx)
}

/// The container of `POST [/vX.Y]/containers/ID/attach`.
fn attach_target(method: &hyper::Method, path: &str) -> Option<String> {
    if method != hyper::Method::POST {
        return None;
    }
    let path = match path.strip_prefix("/v") {
        Some(rest) => &rest[rest.find('/')?..],
        None => path,
    };
    let id = path.strip_prefix("/containers/")?.strip_suffix("/attach")?;
    (!id.is_empty() && !id.contains('/')).then(|| id.to_string())
}

/// `101 Switching Protocols` to a hijacked stream (attach, exec start), with the content
/// type of what follows: raw for a terminal, else multiplexed.
pub fn upgraded(tty: bool) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::new()).boxed());
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert(
        hyper::header::CONNECTION,
        HeaderValue::from_static("Upgrade"),
    );
    h.insert(hyper::header::UPGRADE, HeaderValue::from_static("tcp"));
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static(if tty {
            "application/vnd.docker.raw-stream"
        } else {
            "application/vnd.docker.multiplexed-stream"
        }),
    );
    docker_headers(&mut r);
    r
}

/// The headers Docker's daemon puts on every answer.
pub fn docker_headers(r: &mut Response<Body>) {
    let h = r.headers_mut();
    h.insert("Api-Version", HeaderValue::from_static(super::API_VERSION));
    h.insert("Docker-Experimental", HeaderValue::from_static("false"));
    h.insert("Ostype", HeaderValue::from_static("linux"));
    h.insert(
        "Server",
        HeaderValue::from_static(concat!("strata/", env!("CARGO_PKG_VERSION"), " (linux)")),
    );
}

pub fn respond(reply: super::reply::Result<Reply>, head: bool) -> Response<Body> {
    let (reply, extra) = match reply {
        Ok(Reply::Headers(inner, extra)) => (Ok(*inner), extra),
        other => (other, Vec::new()),
    };
    let full = |b: Vec<u8>| Full::new(Bytes::from(b)).boxed();
    let (status, ctype, body) = match reply {
        Ok(Reply::Json(s, v)) => {
            let mut b = serde_json::to_vec(&v).unwrap_or_default();
            b.push(b'\n');
            (s, Some("application/json"), full(b))
        }
        Ok(Reply::Empty(s)) => (s, None, full(Vec::new())),
        Ok(Reply::Raw(s, t, b)) => (s, Some(t), full(b)),
        Ok(Reply::Stream(t, rx)) => (StatusCode::OK, Some(t), ChannelBody(rx).boxed()),
        Ok(Reply::Headers(inner, _)) => return respond(Ok(*inner), head),
        Err(e) => {
            let mut b = serde_json::to_vec(&e.body()).unwrap_or_default();
            b.push(b'\n');
            (e.status, Some("application/json"), full(b))
        }
    };
    let body = if head { full(Vec::new()) } else { body };
    let mut r = Response::new(body);
    *r.status_mut() = status;
    if let Some(t) = ctype {
        r.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(t));
    }
    docker_headers(&mut r);
    for (k, v) in extra {
        if let Ok(v) = HeaderValue::from_str(&v) {
            r.headers_mut().insert(k, v);
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses() {
        assert_eq!(
            parse_listen_with(Some("unix:///tmp/x.sock"), false).unwrap(),
            Listen::Unix("/tmp/x.sock".into())
        );
        assert_eq!(
            parse_listen_with(Some("tcp://127.0.0.1:2375"), false).unwrap(),
            Listen::Tcp("127.0.0.1:2375".parse().unwrap())
        );
        assert!(parse_listen_with(Some("tcp://[::1]:2375"), false).is_ok());
        assert!(parse_listen_with(Some("tcp://0.0.0.0:2375"), true).is_ok());
        let e = parse_listen_with(Some("tcp://0.0.0.0:2375"), false).unwrap_err();
        assert!(e.to_string().contains("loopback"), "{e}");
        assert!(parse_listen_with(Some("http://x"), false).is_err());
        assert!(parse_listen_with(Some("unix://"), false).is_err());
    }

    #[test]
    fn attach_paths() {
        let post = hyper::Method::POST;
        assert_eq!(
            attach_target(&post, "/v1.41/containers/abc/attach").as_deref(),
            Some("abc")
        );
        assert_eq!(
            attach_target(&post, "/containers/web/attach").as_deref(),
            Some("web")
        );
        assert_eq!(attach_target(&post, "/containers/web/wait"), None);
        assert_eq!(
            attach_target(&hyper::Method::GET, "/containers/web/attach"),
            None
        );
    }
}
