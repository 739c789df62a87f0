//! An HTTP client for one registry: picks HTTPS or plain HTTP (loopback hosts and the
//! insecure registries of [`Hosts`]), answers `WWW-Authenticate` challenges with Basic
//! credentials or a Bearer token from the challenge's realm, and retries 5xx answers and
//! broken connections with exponential backoff.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine;
use ureq::http::Response;

use crate::auth::{parse_challenge, Challenge, Credentials};
use crate::error::{Error, Result};
use crate::hosts::Hosts;
use crate::progress::{Counting, Progress};

/// How many times a request is sent before a 5xx or a broken connection is an error.
pub(crate) const ATTEMPTS: u32 = 5;

/// The environment variable that sets, in seconds, how long a registry may keep a request
/// waiting: for the response's headers (default 5 minutes), for any one read of its body and
/// for each [`MIN_BYTES`] of it (default 2 minutes; a body that drips is given up on, as
/// curl's `--speed-time` does).
pub const TIMEOUT_ENV: &str = "STRATA_REGISTRY_TIMEOUT";

/// The default of [`TIMEOUT_ENV`].
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// A body must bring at least this many bytes in every [`timeout`] (curl's `--speed-limit`).
pub(crate) const MIN_BYTES: u64 = 1024;

/// The registry timeout: [`TIMEOUT_ENV`] when set to a number of seconds, else 2 minutes.
pub fn timeout() -> Duration {
    timeout_set().unwrap_or(DEFAULT_TIMEOUT)
}

fn timeout_set() -> Option<Duration> {
    std::env::var(TIMEOUT_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .map(Duration::from_secs_f64)
}

/// How long a response's headers may take: [`TIMEOUT_ENV`] when set, else 5 minutes (a
/// registry may verify a large upload before it answers).
pub(crate) fn response_timeout() -> Duration {
    timeout_set().unwrap_or(Duration::from_secs(300))
}

/// A body reader that fails when fewer than [`MIN_BYTES`] arrive in a [`timeout`]: a registry
/// that sends one byte a second never trips the per-read timeout, and would hold a pull
/// forever.
pub(crate) struct Watchdog<R> {
    inner: R,
    url: String,
    limit: Duration,
    since: std::time::Instant,
    bytes: u64,
}

/// The error a [`Watchdog`] gives (inside an `io::Error` of kind `TimedOut`): a body too slow
/// to wait for, which resuming would not help.
#[derive(Debug)]
pub(crate) struct TooSlow(pub String);

impl std::fmt::Display for TooSlow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TooSlow {}

impl<R> Watchdog<R> {
    pub(crate) fn new(inner: R, url: &str) -> Self {
        Watchdog {
            inner,
            url: url.to_string(),
            limit: timeout(),
            since: std::time::Instant::now(),
            bytes: 0,
        }
    }
}

impl<R: Read> Read for Watchdog<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes += n as u64;
        let waited = self.since.elapsed();
        if waited >= self.limit {
            if self.bytes < MIN_BYTES && n > 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    TooSlow(format!(
                        "{}: the registry sent {} bytes in {:.0?}, less than {MIN_BYTES} \
                         ({TIMEOUT_ENV} is {:?}): giving up",
                        self.url, self.bytes, waited, self.limit
                    )),
                ));
            }
            self.since = std::time::Instant::now();
            self.bytes = 0;
        }
        Ok(n)
    }
}

/// What a request sends: nothing, bytes, or a range of a file (re-read on every retry).
#[derive(Clone, Copy)]
pub(crate) enum Body<'a> {
    Empty,
    Bytes(&'a [u8]),
    File {
        path: &'a Path,
        offset: u64,
        len: u64,
        /// Reports `Pushing` bytes of a blob of this short id and total size.
        report: Option<Report<'a>>,
    },
}

/// Where an upload reports its bytes.
#[derive(Clone, Copy)]
pub(crate) struct Report<'a> {
    pub id: &'a str,
    pub total: u64,
    pub progress: &'a (dyn Fn(Progress<'_>) + Sync),
}

/// A connection to one registry, shared by the threads of a pull or push.
pub struct Client {
    agent: ureq::Agent,
    base: String,
    registry: String,
    creds: Option<Credentials>,
    scopes: Mutex<Vec<String>>,
    authorization: Mutex<Option<String>>,
    pub(crate) hosts: Hosts,
}

fn transient(e: &ureq::Error) -> bool {
    matches!(
        e,
        ureq::Error::Io(_)
            | ureq::Error::Timeout(_)
            | ureq::Error::ConnectionFailed
            | ureq::Error::Protocol(_)
            | ureq::Error::BodyStalled
    )
}

pub(crate) fn backoff(attempt: u32) {
    std::thread::sleep(Duration::from_millis(200u64 << attempt.min(5)));
}

impl Client {
    /// A client for `registry` (`host[:port]`, `docker.io` meaning Docker Hub's API host).
    pub fn new(registry: &str, creds: Option<Credentials>, hosts: &Hosts) -> Client {
        let api = match registry {
            "docker.io" | "index.docker.io" => oci::DOCKER_HUB_API_HOST,
            r => r,
        };
        let scheme = if hosts.is_insecure(registry) {
            "http"
        } else {
            "https"
        };
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .accept_encoding(ureq::config::AutoHeaderValue::None)
            .user_agent(format!("strata/{}", env!("CARGO_PKG_VERSION")))
            .timeout_connect(Some(Duration::from_secs(30).min(timeout())))
            .timeout_recv_response(Some(response_timeout()))
            .timeout_per_read(Some(timeout()))
            .max_idle_connections_per_host(16)
            .build()
            .into();
        Client {
            agent,
            base: format!("{scheme}://{api}"),
            registry: registry.to_string(),
            creds,
            scopes: Mutex::new(Vec::new()),
            authorization: Mutex::new(None),
            hosts: hosts.clone(),
        }
    }

    /// The registry this client talks to.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// Asks for `repository:NAME:ACTIONS` access in the next token.
    pub fn add_scope(&self, repository: &str, actions: &str) {
        let s = format!("repository:{repository}:{actions}");
        let mut scopes = self.scopes.lock().unwrap_or_else(|e| e.into_inner());
        if !scopes.contains(&s) {
            scopes.push(s);
        }
    }

    /// Checks that the registry answers `/v2/` and accepts our credentials: a registry that
    /// demands authentication gets it (Basic or a Bearer token) before this returns.
    pub fn ping(&self) -> Result<()> {
        let url = self.url("/v2/");
        let resp = self.request("GET", &url, &[], Body::Empty)?;
        match resp.status().as_u16() {
            200..=299 => Ok(()),
            401 => Err(Error::Unauthorized { url }),
            s => Err(Error::http(
                &url,
                format!("unexpected status {s} from /v2/"),
            )),
        }
    }

    /// `docker login`'s check of these credentials, with the daemon's words for a refusal
    /// (`login attempt to URL failed with status: 401 Unauthorized`) and its HTTP
    /// client's for a registry that does not answer.
    pub fn login(&self) -> std::result::Result<(), String> {
        match self.ping() {
            Ok(()) => Ok(()),
            Err(Error::Unauthorized { url }) => Err(format!(
                "login attempt to {url} failed with status: 401 Unauthorized"
            )),
            Err(e) => Err(e.to_string()),
        }
    }

    /// An absolute URL for an API path, or `location` itself when it already is one.
    pub(crate) fn url(&self, location: &str) -> String {
        if location.starts_with("http://") || location.starts_with("https://") {
            location.to_string()
        } else if location.starts_with('/') {
            format!("{}{location}", self.base)
        } else {
            format!("{}/{location}", self.base)
        }
    }

    /// Sends a request, authenticating on 401 and retrying 5xx and broken connections.
    /// Every other status is the caller's to judge.
    pub(crate) fn request(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Body<'_>,
    ) -> Result<Response<ureq::Body>> {
        let mut attempt = 0;
        let mut authenticated = false;
        loop {
            match self.send_once(method, url, headers, body) {
                Err(e) if transient(&e) && attempt + 1 < ATTEMPTS => {
                    backoff(attempt);
                    attempt += 1;
                }
                Err(e) => return Err(Error::transport(method, url, &e)),
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    if status == 401 && !authenticated {
                        let challenge = resp
                            .headers()
                            .get("www-authenticate")
                            .and_then(|v| v.to_str().ok())
                            .and_then(parse_challenge);
                        let Some(ch) = challenge else {
                            return Ok(resp);
                        };
                        self.authenticate(&ch, url)?;
                        authenticated = true;
                        continue;
                    }
                    if (status >= 500 || status == 429) && attempt + 1 < ATTEMPTS {
                        backoff(attempt);
                        attempt += 1;
                        continue;
                    }
                    return Ok(resp);
                }
            }
        }
    }

    fn send_once(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Body<'_>,
    ) -> Result<Response<ureq::Body>, ureq::Error> {
        let decorate = |rb| self.decorate(rb, headers);
        let rb = match method {
            "GET" => return decorate(self.agent.get(url)).call(),
            "HEAD" => return decorate(self.agent.head(url)).call(),
            "DELETE" => return decorate(self.agent.delete(url)).call(),
            _ => self.with_body(method, url, headers),
        };
        match body {
            Body::Empty => rb.header("Content-Length", "0").send_empty(),
            Body::Bytes(b) => rb.send(b),
            Body::File {
                path,
                offset,
                len,
                report,
            } => {
                let mut f = std::fs::File::open(path)?;
                f.seek(SeekFrom::Start(offset))?;
                let r = std::io::BufReader::with_capacity(1 << 20, f).take(len);
                let rb = rb.header("Content-Length", len.to_string());
                match report {
                    None => {
                        let mut r = r;
                        rb.send(ureq::SendBody::from_reader(&mut r))
                    }
                    Some(rep) => {
                        let mut r = Counting {
                            inner: r,
                            id: rep.id,
                            status: "Pushing",
                            total: rep.total,
                            current: offset,
                            last: offset,
                            progress: rep.progress,
                        };
                        rb.send(ureq::SendBody::from_reader(&mut r))
                    }
                }
            }
        }
    }

    /// Sends `body` once, chunked, as it is read (it cannot be read again, so nothing is
    /// retried here). A 401 with a challenge is answered for the next request and returned
    /// like any other status.
    pub(crate) fn send_stream(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: &mut dyn Read,
    ) -> Result<Response<ureq::Body>> {
        let resp = self
            .with_body(method, url, headers)
            .send(ureq::SendBody::from_reader(body))
            .map_err(|e| Error::transport(method, url, &e))?;
        if resp.status().as_u16() == 401 {
            let challenge = resp
                .headers()
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok())
                .and_then(parse_challenge);
            if let Some(ch) = challenge {
                self.authenticate(&ch, url)?;
            }
        }
        Ok(resp)
    }

    /// A request with a body, with our authorization and `headers`.
    fn with_body(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
    ) -> ureq::RequestBuilder<ureq::typestate::WithBody> {
        let rb = match method {
            "POST" => self.agent.post(url),
            "PUT" => self.agent.put(url),
            _ => self.agent.patch(url),
        };
        self.decorate(rb, headers)
    }

    fn decorate<B>(
        &self,
        mut rb: ureq::RequestBuilder<B>,
        headers: &[(&str, &str)],
    ) -> ureq::RequestBuilder<B> {
        let auth = self
            .authorization
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(a) = &auth {
            rb = rb.header("Authorization", a.as_str());
        }
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        rb
    }

    /// Answers a challenge: Basic with the stored credentials, or a Bearer token fetched
    /// from the challenge's realm for its scope and ours.
    fn authenticate(&self, ch: &Challenge, url: &str) -> Result<()> {
        let basic = self.creds.as_ref().map(|c| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD
                    .encode(format!("{}:{}", c.username, c.password))
            )
        });
        let value = match ch.scheme.as_str() {
            "basic" => basic.ok_or_else(|| Error::Unauthorized {
                url: url.to_string(),
            })?,
            "bearer" => {
                let realm = ch
                    .params
                    .get("realm")
                    .ok_or_else(|| Error::http(url, "bearer challenge without a realm"))?;
                let mut scopes = self
                    .scopes
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone();
                if let Some(s) = ch.params.get("scope") {
                    for s in s.split(' ') {
                        if !s.is_empty() && !scopes.iter().any(|x| x == s) {
                            scopes.push(s.to_string());
                        }
                    }
                }
                format!(
                    "Bearer {}",
                    self.fetch_token(realm, ch.params.get("service"), &scopes, basic.as_deref())?
                )
            }
            other => {
                return Err(Error::http(
                    url,
                    format!("unsupported authentication scheme {other:?}"),
                ))
            }
        };
        *self.authorization.lock().unwrap_or_else(|e| e.into_inner()) = Some(value);
        Ok(())
    }

    fn fetch_token(
        &self,
        realm: &str,
        service: Option<&String>,
        scopes: &[String],
        basic: Option<&str>,
    ) -> Result<String> {
        let mut attempt = 0;
        loop {
            let identity = self
                .creds
                .as_ref()
                .filter(|c| c.username == "<token>")
                .map(|c| c.password.as_str());
            let sent = if let Some(refresh) = identity {
                // An identity token from `login` is exchanged as an OAuth2 refresh token.
                let scope = scopes.join(" ");
                let mut form = vec![
                    ("grant_type", "refresh_token"),
                    ("refresh_token", refresh),
                    ("client_id", "strata"),
                    ("scope", scope.as_str()),
                ];
                if let Some(s) = service {
                    form.push(("service", s.as_str()));
                }
                self.agent.post(realm).send_form(form)
            } else {
                let mut rb = self.agent.get(realm);
                if let Some(s) = service {
                    rb = rb.query("service", s);
                }
                for s in scopes {
                    rb = rb.query("scope", s);
                }
                if let Some(b) = basic {
                    rb = rb.header("Authorization", b);
                }
                rb.call()
            };
            let mut resp = match sent {
                Err(e) if transient(&e) && attempt + 1 < ATTEMPTS => {
                    backoff(attempt);
                    attempt += 1;
                    continue;
                }
                Err(e) => return Err(Error::http(realm, e)),
                Ok(r) => r,
            };
            let status = resp.status().as_u16();
            if status >= 500 && attempt + 1 < ATTEMPTS {
                backoff(attempt);
                attempt += 1;
                continue;
            }
            if status == 401 || status == 403 {
                return Err(Error::Unauthorized {
                    url: realm.to_string(),
                });
            }
            if !(200..300).contains(&status) {
                return Err(Error::http(
                    realm,
                    format!("token server answered {status}"),
                ));
            }
            let body = resp
                .body_mut()
                .with_config()
                .limit(1 << 20)
                .read_to_vec()
                .map_err(|e| Error::http(realm, e))?;
            let v: serde_json::Value = serde_json::from_slice(&body)
                .map_err(|e| Error::http(realm, format!("invalid token response: {e}")))?;
            let tok = v["token"]
                .as_str()
                .or_else(|| v["access_token"].as_str())
                .filter(|t| !t.is_empty())
                .ok_or_else(|| Error::http(realm, "token response without a token"))?;
            return Ok(tok.to_string());
        }
    }
}

/// The status line and a short excerpt of an error body, for messages.
pub(crate) fn describe(resp: &mut Response<ureq::Body>) -> String {
    let status = resp.status();
    let body = resp
        .body_mut()
        .with_config()
        .limit(64 << 10)
        .lossy_utf8(true)
        .read_to_string()
        .unwrap_or_default();
    let detail = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| {
            let e = v["errors"].get(0)?;
            Some(format!(
                "{}: {}",
                e["code"].as_str().unwrap_or("error").to_ascii_lowercase(),
                e["message"].as_str().unwrap_or("")
            ))
        })
        .unwrap_or_else(|| body.trim().chars().take(200).collect());
    format!("{status}: {detail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out `step` bytes per read.
    struct Steps(Vec<u8>, usize);

    impl Read for Steps {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.1.min(self.0.len()).min(buf.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0.drain(..n);
            Ok(n)
        }
    }

    fn watchdog(step: usize, limit: Duration) -> Watchdog<Steps> {
        let mut w = Watchdog::new(Steps(vec![7; 4096], step), "http://r/v2/x/blobs/d");
        w.limit = limit;
        w
    }

    #[test]
    fn a_body_slower_than_the_floor_is_given_up_on_and_not_resumed() {
        let mut buf = [0u8; 64];
        let err = watchdog(1, Duration::ZERO).read(&mut buf).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
        assert!(err.get_ref().is_some_and(|e| e.is::<TooSlow>()));
        assert!(err.to_string().contains("http://r/v2/x/blobs/d"), "{err}");
        // Enough bytes in the window, or a window not over yet, pass.
        let mut w = watchdog(2048, Duration::ZERO);
        let mut big = [0u8; 4096];
        assert_eq!(w.read(&mut big).unwrap(), 2048);
        assert_eq!(w.read(&mut big).unwrap(), 2048);
        assert_eq!(w.read(&mut big).unwrap(), 0);
        let mut all = Vec::new();
        watchdog(1, Duration::from_secs(3600))
            .read_to_end(&mut all)
            .unwrap();
        assert_eq!(all.len(), 4096);
    }

    #[test]
    fn the_scheme_follows_the_hosts_settings() {
        let mut hosts = Hosts::new("/nonexistent/config.json".into());
        hosts.insecure = vec!["reg.example:5000".into()];
        for (registry, url) in [
            ("127.0.0.1:5000", "http://127.0.0.1:5000/v2/"),
            ("quay.io", "https://quay.io/v2/"),
            ("reg.example:5000", "http://reg.example:5000/v2/"),
            ("reg.example:5001", "https://reg.example:5001/v2/"),
        ] {
            assert_eq!(Client::new(registry, None, &hosts).url("/v2/"), url);
        }
    }
}
