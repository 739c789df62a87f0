//! `strata system service` on a socket of its own for the Engine API tests, with the
//! docker CLI and raw HTTP requests pointed at it.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A running service on store `root`; killed when dropped.
pub struct Service {
    child: Child,
    pub socket: PathBuf,
    /// The docker CLI's configuration directory (`DOCKER_CONFIG`) for this service.
    pub config: tempfile::TempDir,
    _dir: tempfile::TempDir,
}

impl Service {
    pub fn start(root: &Path) -> Service {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("api.sock");
        let child = Command::new(assert_cmd::cargo::cargo_bin("strata"))
            .env("STRATA_ROOT", root)
            .args(["system", "service", "--time", "0"])
            .arg(format!("unix://{}", socket.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while !socket.exists() {
            assert!(Instant::now() < deadline, "the service did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        Service {
            child,
            socket,
            config: tempfile::tempdir().unwrap(),
            _dir: dir,
        }
    }

    /// `unix://SOCKET`, for `DOCKER_HOST`.
    pub fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// The docker CLI pointed at the service (classic builder, its own config).
    pub fn docker_command(&self) -> Command {
        let mut c = Command::new("docker");
        c.env("DOCKER_HOST", self.host())
            .env("DOCKER_CONFIG", self.config.path())
            .env("DOCKER_BUILDKIT", "0")
            .env_remove("DOCKER_API_VERSION");
        c
    }

    /// `docker ARGS` with `stdin` as its input: the whole output.
    pub fn docker(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut c = self.docker_command();
        c.args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        if let Some(input) = stdin {
            let mut w = child.stdin.take().unwrap();
            w.write_all(input.as_bytes()).unwrap();
        }
        child.wait_with_output().unwrap()
    }

    /// `docker ARGS`, which must succeed: its standard output.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.docker(args, None);
        assert!(
            out.status.success(),
            "docker {args:?}: {}\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// One HTTP/1.1 request on the socket (`Connection: close`, a JSON body when given):
    /// the status and the body (de-chunked, trailing whitespace trimmed).
    pub fn http(&self, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
        http(&self.socket, method, path, body)
    }

    /// A request that must answer `status`; its body as JSON (Null when empty).
    pub fn expect(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
        status: u16,
    ) -> serde_json::Value {
        let (got, text) = self.http(method, path, body);
        assert_eq!(got, status, "{method} {path}: {text}");
        if text.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{method} {path}: {e}: {text}"))
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// [`Service::http`] on any socket (usable from threads without the service).
pub fn http(socket: &Path, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
    let mut s = UnixStream::connect(socket).unwrap();
    let body = body.unwrap_or("");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: docker\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    (status, body.trim_end().to_string())
}

/// A chunked HTTP body, joined.
fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((len, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(len.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}
