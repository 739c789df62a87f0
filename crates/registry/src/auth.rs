//! Credentials as Docker keeps them: `config.json` in `$DOCKER_CONFIG` (default
//! `~/.docker`), with base64 `auths` entries and `credsStore` / `credHelpers` helper programs
//! (`docker-credential-NAME get|store|erase`), and the `WWW-Authenticate` challenges that tell
//! a client how to use them.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine;
use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// A user name and password (or an identity token, with user name `<token>`).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({:?}, ****)", self.username)
    }
}

/// The key Docker files credentials of a registry under (`https://index.docker.io/v1/` for
/// Docker Hub, the host otherwise).
pub fn server_key(registry: &str) -> String {
    match registry {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => {
            "https://index.docker.io/v1/".to_string()
        }
        other => other.to_string(),
    }
}

fn read_config(p: &Path) -> Result<Map<String, Value>> {
    match std::fs::read(p) {
        Ok(b) if b.iter().all(u8::is_ascii_whitespace) => Ok(Map::new()),
        Ok(b) => match serde_json::from_slice::<Value>(&b) {
            Ok(Value::Object(m)) => Ok(m),
            Ok(_) => Err(Error::Credentials(format!(
                "{}: not a JSON object",
                p.display()
            ))),
            Err(e) => Err(Error::Credentials(format!("{}: {e}", p.display()))),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Map::new()),
        Err(e) => Err(Error::io(p.display(), e)),
    }
}

fn write_config(p: &Path, m: &Map<String, Value>) -> Result<()> {
    if let Some(dir) = p.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir.display(), e))?;
    }
    let tmp = p.with_extension("json.tmp");
    let mut bytes = serde_json::to_vec_pretty(m).unwrap_or_default();
    bytes.push(b'\n');
    {
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| Error::io(tmp.display(), e))?;
        f.write_all(&bytes)
            .map_err(|e| Error::io(tmp.display(), e))?;
    }
    std::fs::rename(&tmp, p).map_err(|e| Error::io(p.display(), e))
}

/// The helper program that holds credentials for `key`, if any.
fn helper_for(cfg: &Map<String, Value>, registry: &str) -> Option<String> {
    if let Some(Value::Object(h)) = cfg.get("credHelpers") {
        if let Some(Value::String(s)) = h.get(registry) {
            return Some(s.clone());
        }
    }
    match cfg.get("credsStore") {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

fn run_helper(helper: &str, action: &str, input: &str) -> Result<String> {
    let prog = format!("docker-credential-{helper}");
    let mut child = Command::new(&prog)
        .arg(action)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::Credentials(format!("{prog}: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|e| Error::Credentials(format!("{prog}: {e}")))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        let msg = if stdout.trim().is_empty() {
            String::from_utf8_lossy(&out.stderr).trim().to_string()
        } else {
            stdout.trim().to_string()
        };
        return Err(Error::Credentials(format!("{prog} {action}: {msg}")));
    }
    Ok(stdout)
}

/// The credentials Docker would use for `registry` (a host such as `docker.io` or
/// `127.0.0.1:5000`), from a helper or from `auths` in Docker's `config` file.
pub fn load_credentials(config: &Path, registry: &str) -> Result<Option<Credentials>> {
    let cfg = read_config(config)?;
    let key = server_key(registry);
    if let Some(helper) = helper_for(&cfg, registry) {
        return match run_helper(&helper, "get", &key) {
            Ok(out) => {
                let v: Value = serde_json::from_str(&out)
                    .map_err(|e| Error::Credentials(format!("docker-credential-{helper}: {e}")))?;
                let user = v["Username"].as_str().unwrap_or_default().to_string();
                let secret = v["Secret"].as_str().unwrap_or_default().to_string();
                Ok((!secret.is_empty()).then_some(Credentials {
                    username: user,
                    password: secret,
                }))
            }
            // Helpers report a missing entry as an error ("credentials not found").
            Err(Error::Credentials(m)) if m.contains("not found") => Ok(None),
            Err(e) => Err(e),
        };
    }
    let Some(Value::Object(auths)) = cfg.get("auths") else {
        return Ok(None);
    };
    let candidates = [
        key.clone(),
        format!("https://{registry}"),
        format!("http://{registry}"),
        format!("https://{registry}/v1/"),
        format!("https://{registry}/v2/"),
    ];
    for c in candidates {
        let Some(Value::Object(entry)) = auths.get(&c) else {
            continue;
        };
        if let Some(Value::String(tok)) = entry.get("identitytoken") {
            if !tok.is_empty() {
                return Ok(Some(Credentials {
                    username: "<token>".into(),
                    password: tok.clone(),
                }));
            }
        }
        if let Some(Value::String(auth)) = entry.get("auth") {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .map_err(|e| Error::Credentials(format!("auths[{c:?}]: invalid base64: {e}")))?;
            let s = String::from_utf8_lossy(&raw);
            let (u, p) = s.split_once(':').ok_or_else(|| {
                Error::Credentials(format!("auths[{c:?}]: invalid auth entry (no ':')"))
            })?;
            return Ok(Some(Credentials {
                username: u.to_string(),
                password: p.to_string(),
            }));
        }
    }
    Ok(None)
}

/// Saves credentials for `registry` as `docker login` does (a helper when one is configured,
/// else a base64 `auths` entry). Returns where they went, for the warning Docker prints.
pub fn store_credentials(config: &Path, registry: &str, creds: &Credentials) -> Result<PathBuf> {
    let mut cfg = read_config(config)?;
    let key = server_key(registry);
    if let Some(helper) = helper_for(&cfg, registry) {
        let input = serde_json::json!({
            "ServerURL": key, "Username": creds.username, "Secret": creds.password,
        });
        run_helper(&helper, "store", &input.to_string())?;
        // Docker leaves an empty entry in auths so the registry is listed.
        let auths = cfg
            .entry("auths")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(a) = auths {
            a.insert(key, Value::Object(Map::new()));
        }
    } else {
        let auth = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", creds.username, creds.password));
        let auths = cfg
            .entry("auths")
            .or_insert_with(|| Value::Object(Map::new()));
        if !auths.is_object() {
            *auths = Value::Object(Map::new());
        }
        if let Value::Object(a) = auths {
            let mut e = Map::new();
            e.insert("auth".into(), Value::String(auth));
            a.insert(key, Value::Object(e));
        }
    }
    write_config(config, &cfg)?;
    Ok(config.to_path_buf())
}

/// Removes the credentials of `registry`. Returns false when there were none.
pub fn erase_credentials(config: &Path, registry: &str) -> Result<bool> {
    let mut cfg = read_config(config)?;
    let key = server_key(registry);
    let mut found = false;
    if let Some(helper) = helper_for(&cfg, registry) {
        found = run_helper(&helper, "erase", &key).is_ok();
    }
    if let Some(Value::Object(a)) = cfg.get_mut("auths") {
        let before = a.len();
        a.retain(|k, _| {
            k != &key && k != &format!("https://{registry}") && k != &format!("http://{registry}")
        });
        found |= a.len() != before;
    }
    if found {
        write_config(config, &cfg)?;
    }
    Ok(found)
}

/// One `WWW-Authenticate` challenge: its scheme (`basic`, `bearer`) and parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub scheme: String,
    pub params: BTreeMap<String, String>,
}

/// Parses a `WWW-Authenticate` header (`Bearer realm="…",service="…",scope="…"`).
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = match header.split_once(char::is_whitespace) {
        Some((s, r)) => (s, r),
        None => (header, ""),
    };
    if scheme.is_empty() {
        return None;
    }
    let mut params = BTreeMap::new();
    let mut s = rest.trim_start();
    while !s.is_empty() {
        let eq = s.find('=')?;
        let key = s[..eq]
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        s = &s[eq + 1..];
        let value;
        if let Some(r) = s.strip_prefix('"') {
            let mut v = String::new();
            let mut chars = r.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            v.push(n);
                        }
                    }
                    '"' => {
                        end = Some(i);
                        break;
                    }
                    c => v.push(c),
                }
            }
            let end = end?;
            value = v;
            s = &r[end + 1..];
        } else {
            let end = s.find(',').unwrap_or(s.len());
            value = s[..end].trim().to_string();
            s = &s[end..];
        }
        params.insert(key, value);
        s = s.trim_start().trim_start_matches(',').trim_start();
    }
    Some(Challenge {
        scheme: scheme.to_ascii_lowercase(),
        params,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_challenge() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull,push""#,
        )
        .unwrap();
        assert_eq!(c.scheme, "bearer");
        assert_eq!(c.params["realm"], "https://auth.docker.io/token");
        assert_eq!(c.params["service"], "registry.docker.io");
        assert_eq!(c.params["scope"], "repository:library/busybox:pull,push");
    }

    #[test]
    fn parses_basic_challenge_and_rejects_garbage() {
        let c = parse_challenge(r#"Basic realm="Registry Realm""#).unwrap();
        assert_eq!(c.scheme, "basic");
        assert_eq!(c.params["realm"], "Registry Realm");
        assert!(parse_challenge(r#"Bearer realm="unterminated"#).is_none());
        assert!(parse_challenge("").is_none());
    }

    #[test]
    fn hub_key() {
        assert_eq!(server_key("docker.io"), "https://index.docker.io/v1/");
        assert_eq!(server_key("127.0.0.1:5000"), "127.0.0.1:5000");
    }
}
