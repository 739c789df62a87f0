//! End-to-end tests of `pull`, `push`, `login` and `logout` against Debian's
//! `docker-registry` started on 127.0.0.1 (with and without htpasswd basic auth, and behind a
//! small Bearer-token front written here), with skopeo as the independent peer.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;

/// Whether these tests can run here: root, Debian's docker-registry and skopeo; otherwise see
/// [`cannot_run`].
fn require_peers() -> bool {
    require_root() && require_tool("/usr/bin/docker-registry") && require_tool("skopeo")
}

fn id_of(s: &Strata, name: &str) -> String {
    s.ok(&["inspect", "--format", "{{.Id}}", name])
        .trim()
        .to_string()
}

/// A store holding busybox imported as `REGISTRY/repo_tag`, pushed there; and its image ID.
fn pushed_busybox(reg: &Registry, repo_tag: &str) -> (Strata, String, String) {
    let a = Strata::new();
    let name = format!("{}/{repo_tag}", reg.host());
    a.ok(&["import", busybox_tar().to_str().unwrap(), &name]);
    a.ok(&["push", &name]);
    let id = id_of(&a, &name);
    (a, name, id)
}

/// A store holding a three-layer image `name` (busybox plus two COPY layers).
fn multi_layer_image(s: &Strata, name: &str) {
    s.ok(&[
        "import",
        busybox_tar().to_str().unwrap(),
        "strata-test-base:1",
    ]);
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(ctx.path().join("a.txt"), "first layer\n").unwrap();
    std::fs::write(ctx.path().join("b.bin"), vec![7u8; 300_000]).unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM strata-test-base:1\nCOPY a.txt /a.txt\nCOPY b.bin /b.bin\n",
    )
    .unwrap();
    s.ok(&["build", "-q", "-t", name, ctx.path().to_str().unwrap()]);
}

fn skopeo_digest(reference: &str) -> String {
    let out = run_ok(
        "skopeo",
        &[
            "inspect",
            "--tls-verify=false",
            &format!("docker://{reference}"),
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v["Digest"].as_str().unwrap().to_string()
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn push_then_pull_into_an_empty_store_keeps_the_image_id() {
    if !require_peers() {
        return;
    }
    let reg = Registry::start(None);
    let a = Strata::new();
    let name = format!("{}/multi/img:1", reg.host());
    multi_layer_image(&a, &name);
    let id = id_of(&a, &name);
    // Small chunks: every layer larger than 64 KiB goes up in several PATCHes.
    let out = a
        .cmd()
        .env("STRATA_PUSH_CHUNK_SIZE", "65536")
        .args(["push", &name])
        .output()
        .unwrap();
    assert_success(&out);
    let out = String::from_utf8(out.stdout).unwrap();
    assert!(out.contains("Pushed"), "{out}");
    let digest_line = out
        .lines()
        .find(|l| l.starts_with("1: digest: sha256:"))
        .unwrap_or_else(|| panic!("no digest line in {out}"));
    let digest = digest_line.split_whitespace().nth(2).unwrap().to_string();
    // skopeo reads what strata pushed, and sees the same manifest digest.
    assert_eq!(skopeo_digest(&name), digest);
    let oci = tempfile::tempdir().unwrap();
    run_ok(
        "skopeo",
        &[
            "copy",
            "--src-tls-verify=false",
            &format!("docker://{name}"),
            &format!("oci:{}:x", oci.path().display()),
        ],
    );
    // The pushing store records the repo digest.
    let digests = a.ok(&["images", "--digests", "--no-trunc"]);
    assert!(digests.contains(&digest), "{digests}");
    // A second push finds every layer there.
    let again = a.ok(&["push", &name]);
    assert!(again.contains("Layer already exists"), "{again}");
    assert!(!again.contains(": Pushed"), "{again}");

    let b = Strata::new();
    let out = b.ok(&["pull", &name]);
    assert!(out.contains("Pulling fs layer"), "{out}");
    assert!(out.contains("Pull complete"), "{out}");
    assert!(out.contains(&format!("Digest: {digest}")), "{out}");
    assert!(out.contains("Status: Downloaded newer image for"), "{out}");
    assert_eq!(id_of(&b, &name), id);
    let repo_digest = format!("{}/multi/img@{digest}", reg.host());
    assert_eq!(id_of(&b, &repo_digest), id);
    // The pulled layers are usable: the files are there.
    let out = b.ok(&["pull", &name]);
    assert!(out.contains("Image is up to date"), "{out}");
    // By digest into a third store, quietly.
    let c = Strata::new();
    let out = c.ok(&["pull", "-q", &repo_digest]);
    assert_eq!(out.trim(), repo_digest);
    assert_eq!(id_of(&c, &repo_digest), id);

    // Pushed to another repository of the same registry, the layers are mounted from the
    // repository the image was pulled from.
    let other = format!("{}/other/img:1", reg.host());
    b.ok(&["tag", &name, &other]);
    let out = b.ok(&["push", &other]);
    assert!(out.contains("Mounted from multi/img"), "{out}");
    assert_eq!(skopeo_digest(&other), digest);

    // A second tag, then `pull -a` brings both.
    let second = format!("{}/multi/img:2", reg.host());
    a.ok(&["tag", &name, &second]);
    // `push -a` pushes every local tag of the repository.
    let out = a.ok(&["push", "-a", &format!("{}/multi/img", reg.host())]);
    assert!(
        out.contains("1: digest: sha256:") && out.contains("2: digest: sha256:"),
        "{out}"
    );
    let d = Strata::new();
    // One tag per page: the registry's Link header leads to the second.
    let out = d
        .cmd()
        .env("STRATA_TAGS_PAGE_SIZE", "1")
        .args(["pull", "-a", &format!("{}/multi/img", reg.host())])
        .output()
        .unwrap();
    assert_success(&out);
    assert_eq!(id_of(&d, &name), id);
    assert_eq!(id_of(&d, &second), id);

    // A tag the registry does not have.
    let (_, err) = d.fails(&["pull", &format!("{}/multi/img:nope", reg.host())]);
    assert!(
        err.contains("manifest for") && err.contains("not found: manifest unknown"),
        "{err}"
    );
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn strata_pulls_what_skopeo_pushed() {
    if !require_peers() {
        return;
    }
    let reg = Registry::start(None);
    let a = Strata::new();
    a.ok(&["import", busybox_tar().to_str().unwrap(), "bb:src"]);
    let id = id_of(&a, "bb:src");
    let archive = a.root.path().join("bb.tar");
    a.ok(&["save", "-o", archive.to_str().unwrap(), "bb:src"]);
    let name = format!("{}/from/skopeo:2", reg.host());
    run_ok(
        "skopeo",
        &[
            "copy",
            "--dest-tls-verify=false",
            &format!("docker-archive:{}", archive.display()),
            &format!("docker://{name}"),
        ],
    );
    let b = Strata::new();
    let out = b.ok(&["pull", &name]);
    assert!(out.contains("Status: Downloaded newer image for"), "{out}");
    assert_eq!(id_of(&b, &name), id);
    let d = skopeo_digest(&name);
    let digests = b.ok(&["images", "--digests", "--no-trunc"]);
    assert!(digests.contains(&d), "{digests}");
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn a_tampered_blob_fails_the_pull_and_leaves_nothing() {
    if !require_peers() {
        return;
    }
    let reg = Registry::start(None);
    let a = Strata::new();
    let name = format!("{}/tamper/img:1", reg.host());
    a.ok(&["import", busybox_tar().to_str().unwrap(), &name]);
    a.ok(&["push", &name]);
    let manifest = run_ok(
        "skopeo",
        &[
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{name}"),
        ],
    );
    let m: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    let layer = m["layers"][0]["digest"].as_str().unwrap();
    // Replace the layer with another valid gzip tar: only its digest tells them apart.
    let other = tempfile::tempdir().unwrap();
    std::fs::write(other.path().join("evil"), "not busybox\n").unwrap();
    let st = Command::new("tar")
        .arg("czf")
        .arg(reg.blob_file(layer))
        .arg("-C")
        .arg(other.path())
        .arg("evil")
        .status()
        .unwrap();
    assert!(st.success());
    let b = Strata::new();
    let (_, err) = b.fails(&["pull", &name]);
    assert!(err.contains("digest mismatch"), "{err}");
    assert_eq!(b.ok(&["images", "-q"]).trim(), "");
    assert_eq!(b.stored_entries(), Vec::<String>::new());
}

/// Runs strata with its own Docker config directory.
fn with_config(s: &Strata, config: &Path, args: &[&str]) -> std::process::Output {
    s.cmd()
        .env("DOCKER_CONFIG", config)
        .args(args)
        .output()
        .unwrap()
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn basic_auth_login_push_pull_logout() {
    if !require_peers() {
        return;
    }
    let reg = Registry::start(Some(("alice", "s3cret")));
    let cfg = tempfile::tempdir().unwrap();
    let a = Strata::new();
    let name = format!("{}/auth/img:1", reg.host());
    a.ok(&["import", busybox_tar().to_str().unwrap(), &name]);
    let id = id_of(&a, &name);

    let out = with_config(&a, cfg.path(), &["push", &name]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unauthorized"), "{err}");

    let out = with_config(
        &a,
        cfg.path(),
        &["login", "-u", "alice", "-p", "wrong", &reg.host()],
    );
    assert!(!out.status.success());
    assert!(!cfg.path().join("config.json").exists());

    let mut c = a.cmd();
    c.env("DOCKER_CONFIG", cfg.path())
        .args(["login", "-u", "alice", "--password-stdin", &reg.host()])
        .write_stdin("s3cret\n");
    let out = c.output().unwrap();
    assert_success(&out);
    assert!(String::from_utf8_lossy(&out.stdout).contains("Login Succeeded"));
    let conf: serde_json::Value =
        serde_json::from_slice(&std::fs::read(cfg.path().join("config.json")).unwrap()).unwrap();
    assert_eq!(
        conf["auths"][reg.host()]["auth"].as_str().unwrap(),
        "YWxpY2U6czNjcmV0" // base64("alice:s3cret")
    );

    let out = with_config(&a, cfg.path(), &["push", &name]);
    assert_success(&out);
    let b = Strata::new();
    let out = with_config(&b, cfg.path(), &["pull", &name]);
    assert_success(&out);
    assert_eq!(id_of(&b, &name), id);

    let out = with_config(&a, cfg.path(), &["logout", &reg.host()]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("Removing login credentials"));
    let c = Strata::new();
    let out = with_config(&c, cfg.path(), &["pull", &name]);
    assert!(!out.status.success());
}

/// A Bearer-token front for a registry, written for the tests: `/token` hands out a token to
/// `alice:s3cret` (Basic), every other request needs `Authorization: Bearer <token>` and is
/// relayed to the registry behind. The token requests it saw are kept for assertions.
/// (Requests that follow on an authorized keep-alive connection are relayed unchecked.)
struct TokenFront {
    port: u16,
    token_requests: Arc<Mutex<Vec<String>>>,
}

const TOKEN: &str = "tok-b6a1f0";

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn respond(c: &mut TcpStream, status: &str, extra: &str, body: &str) {
    let _ = write!(
        c,
        "HTTP/1.1 {status}\r\n{extra}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = c.flush();
    let _ = c.shutdown(Shutdown::Both);
}

impl TokenFront {
    fn start(upstream: u16) -> TokenFront {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let token_requests = Arc::new(Mutex::new(Vec::new()));
        let seen = token_requests.clone();
        std::thread::spawn(move || {
            for c in l.incoming().flatten() {
                let seen = seen.clone();
                std::thread::spawn(move || Self::serve(c, upstream, port, &seen));
            }
        });
        TokenFront {
            port,
            token_requests,
        }
    }

    fn serve(mut c: TcpStream, upstream: u16, port: u16, seen: &Mutex<Vec<String>>) {
        let mut buf = Vec::new();
        let mut tmp = [0u8; 8192];
        let end = loop {
            match c.read(&mut tmp) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&tmp[..n]),
            }
            if let Some(p) = find(&buf, b"\r\n\r\n") {
                break p;
            }
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        let target = head
            .lines()
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .unwrap_or("")
            .to_string();
        let auth = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("authorization")
                    .then(|| v.trim().to_string())
            })
            .unwrap_or_default();
        if target.starts_with("/token") {
            seen.lock().unwrap().push(target.clone());
            // An OAuth2 form POST with an identity (refresh) token.
            let length: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0);
            let mut body = buf[end + 4..].to_vec();
            while body.len() < length {
                match c.read(&mut tmp) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => body.extend_from_slice(&tmp[..n]),
                }
            }
            let form = String::from_utf8_lossy(&body).into_owned();
            let refresh_ok = head.starts_with("POST ")
                && form.contains("grant_type=refresh_token")
                && form.contains("refresh_token=idtok-77");
            if auth == "Basic YWxpY2U6czNjcmV0" || refresh_ok {
                respond(
                    &mut c,
                    "200 OK",
                    "",
                    &format!("{{\"token\":\"{TOKEN}\",\"expires_in\":300}}"),
                );
            } else {
                respond(&mut c, "401 Unauthorized", "", "{}");
            }
            return;
        }
        if auth != format!("Bearer {TOKEN}") {
            let challenge = format!(
                "WWW-Authenticate: Bearer realm=\"http://127.0.0.1:{port}/token\",service=\"test-registry\"\r\n"
            );
            respond(
                &mut c,
                "401 Unauthorized",
                &challenge,
                r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#,
            );
            return;
        }
        let Ok(mut up) = TcpStream::connect(("127.0.0.1", upstream)) else {
            return;
        };
        if up.write_all(&buf).is_err() {
            return;
        }
        let (mut c2, mut up2) = (c.try_clone().unwrap(), up.try_clone().unwrap());
        let t = std::thread::spawn(move || {
            let _ = std::io::copy(&mut c2, &mut up2);
            let _ = up2.shutdown(Shutdown::Write);
        });
        let _ = std::io::copy(&mut up, &mut c);
        let _ = c.shutdown(Shutdown::Both);
        let _ = t.join();
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn bearer_token_auth_through_a_token_server() {
    if !require_peers() {
        return;
    }
    let reg = Registry::start(None);
    let front = TokenFront::start(reg.port);
    let cfg = tempfile::tempdir().unwrap();
    let a = Strata::new();
    let name = format!("{}/bearer/img:1", front.host());
    a.ok(&["import", busybox_tar().to_str().unwrap(), &name]);
    let id = id_of(&a, &name);

    // Anonymous: the token server refuses, so does the push.
    let out = with_config(&a, cfg.path(), &["push", &name]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unauthorized"));

    let out = with_config(
        &a,
        cfg.path(),
        &["login", "-u", "alice", "-p", "nope", &front.host()],
    );
    assert!(!out.status.success());
    let out = with_config(
        &a,
        cfg.path(),
        &["login", "-u", "alice", "-p", "s3cret", &front.host()],
    );
    assert_success(&out);

    let out = with_config(&a, cfg.path(), &["push", &name]);
    assert_success(&out);
    let b = Strata::new();
    let out = with_config(&b, cfg.path(), &["pull", &name]);
    assert_success(&out);
    assert_eq!(id_of(&b, &name), id);

    // An identity token in config.json is exchanged with an OAuth2 refresh-token POST.
    let idcfg = tempfile::tempdir().unwrap();
    std::fs::write(
        idcfg.path().join("config.json"),
        format!(
            r#"{{"auths":{{"{}":{{"identitytoken":"idtok-77"}}}}}}"#,
            front.host()
        ),
    )
    .unwrap();
    let c = Strata::new();
    let out = with_config(&c, idcfg.path(), &["pull", &name]);
    assert_success(&out);
    assert_eq!(id_of(&c, &name), id);

    let seen = front.token_requests.lock().unwrap().clone();
    assert!(
        seen.iter().any(|t| t.contains("service=test-registry")
            && t.contains("scope=repository%3Abearer%2Fimg%3Apull%2Cpush")),
        "{seen:?}"
    );
    assert!(
        seen.iter()
            .any(|t| t.contains("scope=repository%3Abearer%2Fimg%3Apull")),
        "{seen:?}"
    );
}

/// A TCP relay to `upstream` on a port of its own. Before it passes on a chunk (at most
/// 64 KiB), `shape(to_upstream, bytes so far that way on this connection)` may wait, or
/// say to break the connection (false).
fn relay(upstream: u16, shape: impl Fn(bool, usize) -> bool + Send + Sync + 'static) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let shape = Arc::new(shape);
    std::thread::spawn(move || {
        for c in l.incoming().flatten() {
            let Ok(up) = TcpStream::connect(("127.0.0.1", upstream)) else {
                continue;
            };
            for (from, to, to_upstream) in [
                (c.try_clone().unwrap(), up.try_clone().unwrap(), true),
                (up, c, false),
            ] {
                let shape = shape.clone();
                std::thread::spawn(move || pump(from, to, to_upstream, &*shape));
            }
        }
    });
    port
}

/// One direction of a [`relay`].
fn pump(
    mut from: TcpStream,
    mut to: TcpStream,
    to_upstream: bool,
    shape: &(dyn Fn(bool, usize) -> bool + Send + Sync),
) {
    let mut buf = vec![0u8; 64 << 10];
    let mut total = 0;
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                total += n;
                if !shape(to_upstream, total) {
                    let _ = from.shutdown(Shutdown::Both);
                    let _ = to.shutdown(Shutdown::Both);
                    return;
                }
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// A relay to a registry that sends answers slowly (64 KiB every 20 ms), so a pull can be
/// killed halfway through a layer.
fn slow_front(upstream: u16) -> u16 {
    relay(upstream, |to_upstream, _| {
        if !to_upstream {
            std::thread::sleep(Duration::from_millis(20));
        }
        true
    })
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn a_pull_killed_halfway_leaves_a_working_store() {
    if !require_peers() {
        return;
    }
    let reg = Registry::start(None);
    let front = slow_front(reg.port);
    let a = Strata::new();
    let name = format!("127.0.0.1:{front}/slow/img:1");
    // One layer of 8 MB of random bytes: about four seconds through the slow relay.
    let direct = format!("{}/slow/img:1", reg.host());
    import_one_file(&a, "noise", &urandom(8 << 20), &direct);
    let id = id_of(&a, &direct);
    a.ok(&["push", &direct]);

    let b = Strata::new();
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("strata"))
        .env("STRATA_ROOT", b.root.path())
        .args(["pull", &name])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut seen = Vec::new();
    let mut byte = [0u8; 1];
    while !String::from_utf8_lossy(&seen).contains("Downloading\n") {
        assert_eq!(out.read(&mut byte).unwrap(), 1, "pull ended early");
        seen.push(byte[0]);
    }
    std::thread::sleep(Duration::from_millis(800));
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "the pull finished before it was killed");
    assert_eq!(b.ok(&["images", "-q"]).trim(), "");
    let out = b.ok(&["pull", &name]);
    assert!(out.contains("Pull complete"), "{out}");
    assert_eq!(id_of(&b, &name), id);
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn an_index_resolves_to_this_machines_platform() {
    if !require_peers() {
        return;
    }
    let reg = Registry::start(None);
    let a = Strata::new();
    let single = format!("{}/multi/arch:single", reg.host());
    a.ok(&["import", busybox_tar().to_str().unwrap(), &single]);
    let id = id_of(&a, &single);
    a.ok(&["push", &single]);
    let raw = run_ok(
        "skopeo",
        &[
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{single}"),
        ],
    );
    let digest = format!("sha256:{}", {
        use std::process::Command;
        let mut c = Command::new("sha256sum")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        c.stdin.take().unwrap().write_all(raw.as_bytes()).unwrap();
        let out = c.wait_with_output().unwrap();
        String::from_utf8(out.stdout).unwrap()[..64].to_string()
    });
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    // A list with this machine's platform and another one (both entries name the same
    // manifest, since the registry checks that the entries exist).
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[{{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","digest":"{digest}","size":{},"platform":{{"architecture":"{arch}","os":"linux"}}}},{{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","digest":"{digest}","size":{},"platform":{{"architecture":"mips64le","os":"linux"}}}}]}}"#,
        raw.len(),
        raw.len()
    );
    let url = format!("http://{}/v2/multi/arch/manifests/list", reg.host());
    run_ok(
        "curl",
        &[
            "-fsS",
            "-X",
            "PUT",
            "-H",
            "Content-Type: application/vnd.docker.distribution.manifest.list.v2+json",
            "--data-binary",
            &index,
            &url,
        ],
    );
    let list = format!("{}/multi/arch:list", reg.host());
    let b = Strata::new();
    let out = b.ok(&["pull", &list]);
    assert_eq!(id_of(&b, &list), id);
    // The repo digest is the list's, as Docker records it.
    let list_digest = skopeo_digest(&list);
    assert!(out.contains(&format!("Digest: {list_digest}")), "{out}");
    let (_, err) = b.fails(&["pull", "--platform", "linux/s390x", &list]);
    assert!(
        err.contains("no matching manifest for linux/s390x"),
        "{err}"
    );
}

/// `FROM` of an image the store lacks pulls it, as Docker does; `--pull` pulls every base.
#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn build_pulls_a_missing_base_image() {
    if !require_peers() {
        return;
    }
    let reg = Registry::start(None);
    let (_a, base, id) = pushed_busybox(&reg, "base/bb:1");

    let b = Strata::new();
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!("FROM {base}\nRUN echo pulled > /p\n"),
    )
    .unwrap();
    let out = b.ok(&["build", "-t", "pulled:1", ctx.path().to_str().unwrap()]);
    assert!(
        out.contains("Pull complete") || out.contains("Downloaded newer image"),
        "{out}"
    );
    assert_eq!(id_of(&b, &base), id);
    let out = b.ok(&[
        "build",
        "--pull",
        "-t",
        "pulled:1",
        ctx.path().to_str().unwrap(),
    ]);
    assert!(
        out.contains("up to date") || out.contains("Status:"),
        "{out}"
    );
    // A base that is nowhere is a clear error.
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!("FROM {}/nope/missing:1\n", reg.host()),
    )
    .unwrap();
    let (code, err) = b.fails(&["build", ctx.path().to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("nope/missing"), "{err}");
}

/// `--cache-to type=registry` pushes the build's images as an OCI index; a second store that
/// has only the base builds the same image from it with every step `Using cache`.
#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn a_second_store_builds_from_a_cache_the_first_pushed() {
    if !require_peers() {
        return;
    }
    let reg = Registry::start(None);
    let cache = format!("{}/cache/app:buildcache", reg.host());
    let a = Strata::new();
    a.ok(&["import", busybox_tar().to_str().unwrap(), "base:1"]);
    let work = tempfile::tempdir().unwrap();
    let ctx = work.path().join("ctx");
    std::fs::create_dir(&ctx).unwrap();
    std::fs::write(ctx.join("app.sh"), "echo app\n").unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM base:1\nRUN echo deps > /deps\nCOPY app.sh /app.sh\nRUN sh /app.sh > /out\nCMD [\"sh\", \"/app.sh\"]\n",
    )
    .unwrap();
    let c = ctx.to_str().unwrap();
    let to = format!("type=registry,ref={cache},mode=max");
    let out = a.ok(&["build", "--cache-to", &to, "-t", "app:1", c]);
    assert!(out.contains("exported build cache"), "{out}");
    let id = id_of(&a, "app:1");
    // skopeo sees an OCI index there.
    let raw = std::process::Command::new("skopeo")
        .args([
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{cache}"),
        ])
        .output()
        .unwrap();
    assert_success(&raw);
    assert!(
        String::from_utf8_lossy(&raw.stdout).contains("application/vnd.oci.image.index.v1+json")
    );

    let b = Strata::new();
    let base = work.path().join("base.tar");
    a.ok(&["save", "-o", base.to_str().unwrap(), "base:1"]);
    b.ok(&["load", "-i", base.to_str().unwrap()]);
    let from = format!("type=registry,ref={cache}");
    let out = b.ok(&["build", "--cache-from", &from, "-t", "app:1", c]);
    assert_eq!(out.matches(" ---> Using cache").count(), 4, "{out}");
    assert!(!out.contains("Running in"), "{out}");
    assert_eq!(id_of(&b, "app:1"), id);
    // The import remembered where the cache's layers are: a push of the image to another
    // repository of that registry mounts every layer from the cache's, uploading none.
    let again = format!("{}/other/app:1", reg.host());
    b.ok(&["tag", "app:1", &again]);
    let out = b.ok(&["push", &again]);
    assert_eq!(out.matches("Mounted from cache/app").count(), 4, "{out}");
    assert!(!out.contains("Pushed"), "{out}");

    // BuildKit's compression options: the same cache with zstd layers, from which a third
    // store builds the same image.
    let zstd = format!("{}/cache/app:zstd", reg.host());
    let to = format!("type=registry,ref={zstd},mode=max,compression=zstd,compression-level=3,force-compression=true,oci-mediatypes=true");
    a.ok(&["build", "-q", "--cache-to", &to, "-t", "app:1", c]);
    let index: serde_json::Value = serde_json::from_str(&run_ok(
        "skopeo",
        &[
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{zstd}"),
        ],
    ))
    .unwrap();
    let top = index["manifests"].as_array().unwrap().last().unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, m) = skopeo_config_digest(&format!("{}/cache/app@{top}", reg.host()));
    for l in m["layers"].as_array().unwrap() {
        assert_eq!(
            l["mediaType"], "application/vnd.oci.image.layer.v1.tar+zstd",
            "{m}"
        );
    }
    let z = Strata::new();
    z.ok(&["load", "-i", base.to_str().unwrap()]);
    let from_zstd = format!("type=registry,ref={zstd}");
    let out = z.ok(&["build", "--cache-from", &from_zstd, "-t", "app:1", c]);
    assert_eq!(out.matches(" ---> Using cache").count(), 4, "{out}");
    assert_eq!(id_of(&z, "app:1"), id);
    let bad = format!("type=registry,ref={zstd},compression=lz4");
    let (code, err) = a.fails(&["build", "--cache-to", &bad, c]);
    assert_eq!(code, 125, "{err}");
    b.ok(&["run", "--rm", "app:1"]);

    // A changed file misses from its step on, as locally.
    std::fs::write(ctx.join("app.sh"), "echo changed\n").unwrap();
    let c2 = Strata::new();
    c2.ok(&["load", "-i", base.to_str().unwrap()]);
    let out = c2.ok(&["build", "--cache-from", &from, "-t", "app:2", c]);
    assert_eq!(out.matches(" ---> Using cache").count(), 1, "{out}");

    // A cache that is not there is a warning; the build goes on.
    let d = Strata::new();
    d.ok(&["load", "-i", base.to_str().unwrap()]);
    let missing = format!("type=registry,ref={}/cache/none:1", reg.host());
    let out = d
        .cmd()
        .args(["build", "--cache-from", &missing, "-t", "app:3", c])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("WARNING: importing cache"));
}

/// `run` and `create` of an image the store lacks pull it first, reporting on standard
/// error (standard output keeps the container's output); `--pull always` pulls anyway.
#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn run_and_create_pull_a_missing_image() {
    if !require_peers() {
        return;
    }
    let reg = Registry::start(None);
    let (_a, name, id) = pushed_busybox(&reg, "tools/bb:2");

    let b = Strata::new();
    let out = b
        .cmd()
        .args(["run", "--rm", &name, "echo", "hello"])
        .output()
        .unwrap();
    assert_success(&out);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello\n");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("Unable to find image '{name}' locally")),
        "{err}"
    );
    assert!(err.contains("Pull complete"), "{err}");
    assert_eq!(id_of(&b, &name), id);

    // Present now: no pull.
    let out = b.cmd().args(["create", &name, "true"]).output().unwrap();
    assert!(out.status.success());
    assert!(!String::from_utf8_lossy(&out.stderr).contains("Unable to find"));
    // --pull always asks the registry again; -q keeps it silent.
    let out = b
        .cmd()
        .args(["create", "--pull", "always", &name, "true"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Image is up to date"));
    let c = Strata::new();
    let out = c
        .cmd()
        .args(["create", "-q", &name, "true"])
        .output()
        .unwrap();
    assert!(out.status.success());
    // Docker still says the image was missing; the pull itself is silent.
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err, format!("Unable to find image '{name}' locally\n"));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim().len(), 64);
}

/// The config digest a manifest in the registry names (the image ID it pulls as).
fn skopeo_config_digest(reference: &str) -> (String, serde_json::Value) {
    let out = run_ok(
        "skopeo",
        &[
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{reference}"),
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    (v["config"]["digest"].as_str().unwrap().to_string(), v)
}

/// zstd and uncompressed layers (pushed by skopeo) pull and run; a zstd image pushes back
/// with its zstd blobs and an OCI manifest.
#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn zstd_and_uncompressed_layers_pull_run_and_push_back() {
    if !require_peers() {
        return;
    }
    let reg = Registry::start(None);
    let a = Strata::new();
    a.ok(&["import", busybox_tar().to_str().unwrap(), "bb:src"]);
    let archive = a.root.path().join("bb.tar");
    a.ok(&["save", "-o", archive.to_str().unwrap(), "bb:src"]);
    let zstd = format!("{}/comp/zstd:1", reg.host());
    let plain = format!("{}/comp/plain:1", reg.host());
    let src = format!("docker-archive:{}", archive.display());
    run_ok(
        "skopeo",
        &[
            "copy",
            "--dest-tls-verify=false",
            "--format",
            "oci",
            "--dest-compress-format",
            "zstd",
            &src,
            &format!("docker://{zstd}"),
        ],
    );
    // skopeo compresses whatever it sends to a registry, so the uncompressed image is pushed
    // by strata, asked not to compress.
    let l = Strata::new();
    l.ok(&["load", "-i", archive.to_str().unwrap()]);
    l.ok(&["tag", "bb:src", &plain]);
    l.ok(&["push", "--compression", "uncompressed", &plain]);
    let (zid, zmanifest) = skopeo_config_digest(&zstd);
    assert!(zmanifest["layers"][0]["mediaType"]
        .as_str()
        .unwrap()
        .ends_with("+zstd"));
    let (pid, pmanifest) = skopeo_config_digest(&plain);
    assert!(pmanifest["layers"][0]["mediaType"]
        .as_str()
        .unwrap()
        .ends_with(".tar"));

    for (name, id) in [(&zstd, &zid), (&plain, &pid)] {
        let s = Strata::new();
        s.ok(&["pull", name]);
        assert_eq!(&id_of(&s, name), id);
        assert_eq!(
            s.ok(&["run", "--rm", name, "sh", "-c", "echo ran"]),
            "ran\n"
        );
        if name == &zstd {
            let again = format!("{}/comp/zstd-again:1", reg.host());
            s.ok(&["tag", name, &again]);
            s.ok(&["push", &again]);
            let (id2, m2) = skopeo_config_digest(&again);
            assert_eq!(&id2, id);
            assert_eq!(
                m2["mediaType"].as_str().unwrap(),
                "application/vnd.oci.image.manifest.v1+json"
            );
            assert_eq!(m2["layers"], zmanifest["layers"]);
        }
    }
}

/// A context of `files` (name, bytes) with a Dockerfile `FROM scratch` and one COPY each.
fn scratch_context(files: &[(&str, Vec<u8>)]) -> tempfile::TempDir {
    let ctx = tempfile::tempdir().unwrap();
    let mut df = String::from("FROM scratch\n");
    for (name, bytes) in files {
        std::fs::write(ctx.path().join(name), bytes).unwrap();
        df.push_str(&format!("COPY {name} /{name}\n"));
    }
    std::fs::write(ctx.path().join("Dockerfile"), df).unwrap();
    ctx
}

/// A store holding `REGISTRY/repo_tag` built `FROM scratch` with a COPY of each file; the
/// store, the name and the image ID.
fn built_image(
    reg: &Registry,
    repo_tag: &str,
    files: &[(&str, Vec<u8>)],
) -> (Strata, String, String) {
    let a = Strata::new();
    let ctx = scratch_context(files);
    let name = format!("{}/{repo_tag}", reg.host());
    a.ok(&["build", "-q", "-t", &name, ctx.path().to_str().unwrap()]);
    let id = id_of(&a, &name);
    (a, name, id)
}

/// Imports a plain tar holding the file `file` as the image `name`.
fn import_one_file(s: &Strata, file: &str, bytes: &[u8], name: &str) {
    let src = tempfile::tempdir().unwrap();
    std::fs::write(src.path().join(file), bytes).unwrap();
    let tar = src.path().join("layer.tar");
    let dir = src.path().to_str().unwrap();
    run_ok("tar", &["cf", tar.to_str().unwrap(), "-C", dir, file]);
    s.ok(&["import", tar.to_str().unwrap(), name]);
}

fn urandom(len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut v)
        .unwrap();
    v
}

/// Text that compresses well.
fn text(len: usize) -> Vec<u8> {
    (0..)
        .map(|i| format!("line {i}: the quick brown fox jumps over the lazy dog\n"))
        .flat_map(String::into_bytes)
        .take(len)
        .collect()
}

/// Copies `reference` with skopeo into an OCI layout (skopeo checks every blob's digest on
/// the way) and checks the layout's blobs against their names once more; the manifest.
fn skopeo_copy_verified(reference: &str) -> serde_json::Value {
    let oci = tempfile::tempdir().unwrap();
    run_ok(
        "skopeo",
        &[
            "copy",
            "--src-tls-verify=false",
            &format!("docker://{reference}"),
            &format!("oci:{}:x", oci.path().display()),
        ],
    );
    let blobs = oci.path().join("blobs/sha256");
    for e in std::fs::read_dir(&blobs).unwrap().flatten() {
        let sum = run_ok("sha256sum", &[e.path().to_str().unwrap()]);
        assert_eq!(&sum[..64], e.file_name().to_str().unwrap());
    }
    skopeo_config_digest(reference).1
}

/// A freshly built image (layers with no blob) goes out gzip-compressed as Docker pushes
/// it; skopeo reads it, a pull gives the same image, a second push sends nothing, and the
/// pulled image pushed to another repository of the registry is mounted.
#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn a_built_image_pushes_compressed_and_again_sends_nothing() {
    if !require_peers() {
        return;
    }
    let reg = Registry::start(None);
    let files = [("noise", urandom(3 << 20)), ("words", text(4 << 20))];
    let (a, name, id) = built_image(&reg, "built/img:1", &files);
    let out = a.ok(&["push", &name]);
    assert_eq!(out.matches(": Pushed").count(), 2, "{out}");
    let m = skopeo_copy_verified(&name);
    assert_eq!(
        m["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    let layers = m["layers"].as_array().unwrap();
    for l in layers {
        assert_eq!(
            l["mediaType"],
            "application/vnd.docker.image.rootfs.diff.tar.gzip"
        );
    }
    // Random bytes stay their size; text shrinks.
    let size = |i: usize| layers[i]["size"].as_u64().unwrap();
    assert!(
        size(0) > 3 << 20 && size(0) < (3 << 20) + (64 << 10),
        "{}",
        size(0)
    );
    assert!(size(1) < (4 << 20) / 10, "{}", size(1));

    // Nothing is compressed or sent again: Docker's words for a blob that is there.
    let again = a.ok(&["push", &name]);
    assert_eq!(again.matches("Layer already exists").count(), 2, "{again}");
    assert!(!again.contains("Pushed"), "{again}");

    let b = Strata::new();
    b.ok(&["pull", &name]);
    assert_eq!(id_of(&b, &name), id);
    let other = format!("{}/elsewhere/img:1", reg.host());
    b.ok(&["tag", &name, &other]);
    let out = b.ok(&["push", &other]);
    assert_eq!(out.matches("Mounted from built/img").count(), 2, "{out}");
    assert_eq!(skopeo_config_digest(&other).1["layers"], m["layers"]);
}

/// An imported plain tar of 50 MB of text goes out gzip: the media type says so and the
/// blob is a small fraction of the tar.
#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn an_imported_uncompressed_layer_goes_out_gzip() {
    if !require_peers() {
        return;
    }
    let reg = Registry::start(None);
    let a = Strata::new();
    let name = format!("{}/imported/words:1", reg.host());
    import_one_file(&a, "words", &text(50_000_000), &name);
    a.ok(&["push", &name]);
    let m = skopeo_copy_verified(&name);
    let l = &m["layers"][0];
    assert_eq!(
        l["mediaType"],
        "application/vnd.docker.image.rootfs.diff.tar.gzip"
    );
    assert!(l["size"].as_u64().unwrap() < 5_000_000, "{l}");
}

/// `--compression zstd` sends zstd blobs under an OCI manifest that skopeo reads and a pull
/// brings back as the same image; `--oci-mediatypes` gives an OCI manifest with gzip; a
/// level outside gzip's range is a usage error.
#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn zstd_and_oci_media_types_on_request() {
    if !require_peers() {
        return;
    }
    let reg = Registry::start(None);
    let files = [("words", text(2 << 20)), ("noise", urandom(1 << 20))];
    let (a, name, id) = built_image(&reg, "zstd/img:1", &files);
    a.ok(&[
        "push",
        "--compression",
        "zstd",
        "--compression-level",
        "5",
        &name,
    ]);
    let m = skopeo_copy_verified(&name);
    assert_eq!(m["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    for l in m["layers"].as_array().unwrap() {
        assert_eq!(
            l["mediaType"],
            "application/vnd.oci.image.layer.v1.tar+zstd"
        );
    }
    let b = Strata::new();
    b.ok(&["pull", &name]);
    assert_eq!(id_of(&b, &name), id);

    // The zstd blobs are what the layers are known by here: a gzip push without
    // --force-compression keeps them, with it compresses anew.
    let again = a.ok(&["push", &name]);
    assert_eq!(again.matches("Layer already exists").count(), 2, "{again}");
    let forced = a.ok(&["push", "--force-compression", &name]);
    assert_eq!(forced.matches(": Pushed").count(), 2, "{forced}");
    let m = skopeo_config_digest(&name).1;
    assert_eq!(
        m["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );

    let oci = format!("{}/zstd/oci:1", reg.host());
    a.ok(&["tag", &name, &oci]);
    a.ok(&["push", "--oci-mediatypes", &oci]);
    let m = skopeo_config_digest(&oci).1;
    assert_eq!(m["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    assert_eq!(
        m["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );

    let (code, err) = a.fails(&["push", "--compression-level", "12", &name]);
    assert_eq!(code, 125, "{err}");
    assert!(err.contains("not valid for gzip"), "{err}");
    let (code, err) = a.fails(&["push", "--compression", "xz", &name]);
    assert_eq!(code, 125, "{err}");
}

/// A layer whose files changed in the store no longer gives its tar: the push fails with
/// that cause (no retry can help) and the registry gets no manifest; `save` fails too (the
/// layer is big enough to be checked on a second thread) and leaves no archive.
#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn a_changed_layer_fails_the_push() {
    if !require_peers() {
        return;
    }
    let reg = Registry::start(None);
    let (a, name, _) = built_image(&reg, "changed/img:1", &[("words", text(9 << 20))]);
    let layers = a.root.path().join("layers");
    let dir = std::fs::read_dir(&layers)
        .unwrap()
        .flatten()
        .next()
        .unwrap()
        .path();
    let file = dir.join("words");
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[1 << 20] ^= 1;
    std::fs::write(&file, bytes).unwrap();
    let (code, err) = a.fails(&["push", &name]);
    assert_eq!(code, 1);
    assert!(err.contains("no longer give its tar"), "{err}");
    let out = std::process::Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", &format!("docker://{name}")])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let saved = a.root.path().join("saved.tar");
    let (code, err) = a.fails(&["save", "-o", saved.to_str().unwrap(), &name]);
    assert_eq!(code, 1);
    assert!(err.contains("no longer give its tar"), "{err}");
    assert!(!saved.exists(), "a half-written archive was left");
}

/// A relay to a registry that breaks the first connection on which the client sends more
/// than 2 MiB (an upload), once; its port, and whether it did.
fn breaking_front(upstream: u16) -> (u16, Arc<std::sync::atomic::AtomicBool>) {
    let broken = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let did = broken.clone();
    let port = relay(upstream, move |to_upstream, sent| {
        !(to_upstream && sent > 2 << 20 && !broken.swap(true, std::sync::atomic::Ordering::SeqCst))
    });
    (port, did)
}

/// An upload broken halfway is tried again with the layer compressed anew (nothing was kept
/// of the first stream): the push succeeds and the blob checks out.
#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn a_broken_upload_is_compressed_and_sent_again() {
    if !require_peers() {
        return;
    }
    let reg = Registry::start(None);
    let (front, broken) = breaking_front(reg.port);
    let files = [("noise", urandom(6 << 20))];
    let (a, direct, id) = built_image(&reg, "broken/img:1", &files);
    let name = format!("127.0.0.1:{front}/broken/img:1");
    a.ok(&["tag", &direct, &name]);
    let out = a.ok(&["push", &name]);
    assert!(out.contains(": Pushed"), "{out}");
    assert!(broken.load(std::sync::atomic::Ordering::SeqCst));
    skopeo_copy_verified(&direct);
    let b = Strata::new();
    b.ok(&["pull", &direct]);
    assert_eq!(id_of(&b, &direct), id);
}

/// Writes into `s`'s store a layer as stores kept them before tar-split files: the busybox
/// tar unpacked, and its gzip blob made by `gzip -n` (bytes strata's own compressor would
/// not give). Tags an image of that layer `name`; returns the blob's digest.
fn legacy_gzip_image(s: &Strata, name: &str) -> String {
    use std::io::Write as _;
    let tar = std::fs::read(busybox_tar()).unwrap();
    let gz = Command::new("gzip")
        .args(["-n", "-c"])
        .arg(busybox_tar())
        .output()
        .unwrap()
        .stdout;
    let diff_id = oci::Digest::of(&tar);
    let mut store = store::Store::open(s.root.path()).unwrap();
    let staging = store.stage().unwrap();
    let dir = staging.new_dir("legacy").unwrap();
    layer::apply_layer(&tar[..], &dir).unwrap();
    let mut w = staging.blob_writer().unwrap();
    w.write_all(&gz).unwrap();
    let blob = w.finish(None).unwrap();
    let record = store::LayerRecord {
        diff_id,
        size: layer::diff_size(&dir).unwrap(),
        tar_size: tar.len() as u64,
        blob: Some(store::BlobRef {
            digest: blob.digest,
            media_type: "application/vnd.docker.image.rootfs.diff.tar.gzip".into(),
            size: gz.len() as u64,
        }),
        tar_split: false,
    };
    let config = format!(
        r#"{{"architecture":"amd64","config":{{"Cmd":["sh"]}},"created":"2026-01-01T00:00:00Z","os":"linux","rootfs":{{"type":"layers","diff_ids":["{diff_id}"]}}}}"#
    );
    let mut p = store.publish().unwrap();
    let digest = p.put_blob(blob).unwrap();
    p.put_layer(&dir, None, &record).unwrap();
    let id = p
        .add_image(&store::NewImage {
            config: config.as_bytes(),
            layers: &[diff_id],
            parent: None,
            created: "2026-01-01T00:00:00Z",
        })
        .unwrap();
    p.tag(&image::parse_name(name).unwrap().to_string(), &id)
        .unwrap();
    p.commit().unwrap();
    digest.to_string()
}

/// A layer an old store keeps as a gzip blob goes out as that blob, even when zstd is asked
/// for; `--force-compression` makes zstd of it.
#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn a_stored_gzip_blob_goes_out_as_it_is() {
    if !require_peers() {
        return;
    }
    let reg = Registry::start(None);
    let a = Strata::new();
    let name = format!("{}/legacy/img:1", reg.host());
    let blob = legacy_gzip_image(&a, &name);
    a.ok(&["push", "--compression", "zstd", &name]);
    let m = skopeo_copy_verified(&name);
    assert_eq!(m["layers"][0]["digest"], blob.as_str());
    assert_eq!(
        m["layers"][0]["mediaType"],
        "application/vnd.docker.image.rootfs.diff.tar.gzip"
    );
    a.ok(&[
        "push",
        "--compression",
        "zstd",
        "--force-compression",
        &name,
    ]);
    let m = skopeo_copy_verified(&name);
    assert_eq!(
        m["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+zstd"
    );
    let b = Strata::new();
    b.ok(&["pull", &name]);
    assert_eq!(id_of(&b, &name), id_of(&a, &name));
}
