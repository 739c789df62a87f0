//! `pull` from a hostile registry: a small HTTP server on 127.0.0.1 speaking just enough of the
//! registry API (`/v2/`, manifests, blobs) answers each pull with one kind of malice: a blob
//! that does not hash to its digest, a manifest of 100 MB, unknown manifest and layer media
//! types, a redirect loop, a body cut short of its Content-Length, a body that drips one byte
//! a second, and layers that are tar bombs (over a million entries, a 1 TB file, a 1 TB sparse
//! file). Each pull must fail with an error naming the URL, digest or entry, within a bounded
//! time (the process is killed past it, which fails the test) and memory (its max RSS, from
//! `wait4`), and leave the store as it was: the same images, no new blob or layer, and
//! `system check` clean.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use sha2::Digest as _;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";

/// A pull is killed, and the test fails, past this.
const DEADLINE: Duration = Duration::from_secs(180);
/// The entry limit the pulls run with: the bomb (a million entries, the default limit) is
/// refused once it passes it, without unpacking a million files first, which takes minutes
/// on a loaded machine.
const BOMB_LIMIT: u64 = 100_000;
/// The most a failed pull may hold in memory.
const MAX_RSS_KB: i64 = 200 * 1024;

fn sha256(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(b)))
}

/// What the server answers for one path.
type Handler = Arc<dyn Fn(&str, &mut TcpStream) + Send + Sync>;

fn respond(s: &mut TcpStream, status: &str, headers: &[(&str, String)], body: &[u8]) {
    let mut head = format!("HTTP/1.1 {status}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let _ = s.write_all(head.as_bytes());
    let _ = s.write_all(body);
}

fn ok(s: &mut TcpStream, content_type: &str, body: &[u8]) {
    respond(
        s,
        "200 OK",
        &[
            ("Content-Type", content_type.to_string()),
            ("Content-Length", body.len().to_string()),
            ("Docker-Distribution-Api-Version", "registry/2.0".into()),
        ],
        body,
    );
}

/// Serves `routes` (exact paths) on 127.0.0.1, one thread per connection; `/v2/` answers 200.
fn serve(routes: HashMap<String, Handler>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let routes = Arc::new(routes);
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let routes = routes.clone();
            std::thread::spawn(move || {
                let mut r = BufReader::new(conn.try_clone().unwrap());
                let mut line = String::new();
                if r.read_line(&mut line).is_err() {
                    return;
                }
                loop {
                    let mut h = String::new();
                    if r.read_line(&mut h).is_err() || h == "\r\n" || h.is_empty() {
                        break;
                    }
                }
                let path = line.split(' ').nth(1).unwrap_or("").to_string();
                if path == "/v2/" {
                    return ok(&mut conn, "application/json", b"{}");
                }
                match routes.get(&path) {
                    Some(h) => h(&path, &mut conn),
                    None => respond(
                        &mut conn,
                        "404 Not Found",
                        &[("Content-Length", "0".into())],
                        b"",
                    ),
                }
            });
        }
    });
    port
}

/// An image of one layer: (manifest, config) for a layer with this digest, diff_id and type.
fn image(
    layer_digest: &str,
    layer_size: u64,
    diff_id: &str,
    layer_type: &str,
) -> (Vec<u8>, Vec<u8>) {
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]}
    }))
    .unwrap();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": sha256(&config), "size": config.len()},
        "layers": [{"mediaType": layer_type, "digest": layer_digest, "size": layer_size}]
    }))
    .unwrap();
    (manifest, config)
}

/// A plain tar of one small file.
fn small_tar(content: &[u8]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(content.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, "f", content).unwrap();
    b.into_inner().unwrap()
}

/// The routes of a repository serving `manifest`, its config and `layer` (by digest).
fn repo(
    routes: &mut HashMap<String, Handler>,
    name: &str,
    manifest: Vec<u8>,
    config: Vec<u8>,
    layer_digest: &str,
    layer: Handler,
) {
    let m = manifest.clone();
    routes.insert(
        format!("/v2/hostile/{name}/manifests/latest"),
        Arc::new(move |_, s| ok(s, OCI_MANIFEST, &m)),
    );
    let c = config.clone();
    routes.insert(
        format!("/v2/hostile/{name}/blobs/{}", sha256(&config)),
        Arc::new(move |_, s| ok(s, "application/octet-stream", &c)),
    );
    routes.insert(format!("/v2/hostile/{name}/blobs/{layer_digest}"), layer);
}

/// A tar of `dirs` directories of `files` empty files each, written to `w` as it is made.
fn write_bomb(dirs: usize, files: usize, w: &mut dyn Write) -> std::io::Result<()> {
    let header = |name: &str, kind: tar::EntryType| {
        let mut h = tar::Header::new_ustar();
        h.set_path(name).unwrap();
        h.set_entry_type(kind);
        h.set_mode(if kind == tar::EntryType::Directory {
            0o755
        } else {
            0o644
        });
        h.set_size(0);
        h.set_mtime(0);
        h.set_cksum();
        *h.as_bytes()
    };
    let mut buf = Vec::with_capacity(1 << 20);
    for d in 0..dirs {
        buf.extend_from_slice(&header(&format!("d{d}/"), tar::EntryType::Directory));
        for f in 0..files {
            buf.extend_from_slice(&header(&format!("d{d}/f{f}"), tar::EntryType::Regular));
        }
        w.write_all(&buf)?;
        buf.clear();
    }
    w.write_all(&[0u8; 1024])
}

struct HashCount(sha2::Sha256, u64);

impl Write for HashCount {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.update(b);
        self.1 += b.len() as u64;
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A GNU sparse entry `name` of `real` bytes whose only data is 512 bytes at offset 0.
fn sparse_tar(name: &str, real: u64) -> Vec<u8> {
    let mut h = tar::Header::new_gnu();
    h.set_path(name).unwrap();
    h.set_entry_type(tar::EntryType::GNUSparse);
    h.set_mode(0o644);
    h.set_size(512);
    {
        let g = h.as_gnu_mut().unwrap();
        // Octal, or GNU's base-256 (a leading 0x80) for what octal cannot hold.
        let octal = |field: &mut [u8], v: u64| {
            let s = format!("{v:0w$o}", w = field.len() - 1);
            if s.len() < field.len() {
                field[..s.len()].copy_from_slice(s.as_bytes());
                field[s.len()] = 0;
            } else {
                field.fill(0);
                field[0] = 0x80;
                let n = field.len();
                field[n - 8..].copy_from_slice(&v.to_be_bytes());
            }
        };
        octal(&mut g.realsize, real);
        octal(&mut g.sparse[0].offset, 0);
        octal(&mut g.sparse[0].numbytes, 512);
        // The map ends with an empty chunk at the real size.
        octal(&mut g.sparse[1].offset, real);
        octal(&mut g.sparse[1].numbytes, 0);
    }
    h.set_cksum();
    let mut out = h.as_bytes().to_vec();
    out.extend_from_slice(&[b'x'; 512]);
    out.extend_from_slice(&[0u8; 1024]);
    out
}

/// A tar whose one entry declares `size` bytes and has none (the stream ends there).
fn huge_tar(name: &str, size: u64) -> Vec<u8> {
    let mut h = tar::Header::new_gnu();
    h.set_path(name).unwrap();
    h.set_mode(0o644);
    h.set_size(size);
    h.set_cksum();
    h.as_bytes().to_vec()
}

/// The outcome of one pull: exit code, stderr, max RSS (KiB), time taken.
struct Outcome {
    code: Option<i32>,
    stderr: String,
    max_rss_kb: i64,
    took: Duration,
}

/// Runs `strata pull REF` in the store, killing it past [`DEADLINE`].
// The child is reaped by `wait4`, which gives its rusage, not by `Child::wait`.
#[allow(clippy::zombie_processes)]
fn pull(s: &Strata, reference: &str) -> Outcome {
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("strata"))
        .args(["pull", reference])
        .env("STRATA_ROOT", s.root.path())
        .env("STRATA_REGISTRY_TIMEOUT", "2")
        .env("STRATA_LAYER_MAX_ENTRIES", BOMB_LIMIT.to_string())
        .env_remove("DOCKER_CONFIG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    let mut err = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let done = Arc::new(AtomicBool::new(false));
    let killed = Arc::new(AtomicBool::new(false));
    let (d, k) = (done.clone(), killed.clone());
    let start = Instant::now();
    std::thread::spawn(move || {
        while !d.load(Ordering::SeqCst) {
            if start.elapsed() > DEADLINE {
                k.store(true, Ordering::SeqCst);
                // SAFETY: signals the child we started, not yet reaped (`done` is unset).
                unsafe { libc::kill(pid, libc::SIGKILL) };
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    let mut status = 0;
    // SAFETY: zeroed rusage is a valid out-parameter; `pid` is our child.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
    done.store(true, Ordering::SeqCst);
    assert_eq!(rc, pid, "wait4: {}", std::io::Error::last_os_error());
    let took = start.elapsed();
    let stderr = reader.join().unwrap();
    assert!(
        !killed.load(Ordering::SeqCst),
        "pull {reference} still ran after {DEADLINE:?}: {stderr}"
    );
    Outcome {
        code: libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)),
        stderr,
        max_rss_kb: ru.ru_maxrss,
        took,
    }
}

/// Everything under the store that a pull could leave behind.
fn store_state(s: &Strata) -> (String, Vec<String>) {
    let images = s.ok(&[
        "images",
        "-a",
        "--no-trunc",
        "--format",
        "{{.ID}} {{.Repository}}:{{.Tag}}",
    ]);
    let mut entries = s.stored_entries();
    if let Ok(rd) = std::fs::read_dir(s.root.path().join("tarsplit")) {
        entries.extend(
            rd.flatten()
                .map(|e| format!("tarsplit/{}", e.file_name().to_string_lossy())),
        );
    }
    (images, entries)
}

#[test]
fn hostile_registries_fail_pulls_cleanly() {
    if !require_root() {
        return;
    }
    let mut routes: HashMap<String, Handler> = HashMap::new();
    // name -> what the error must name
    let mut cases: Vec<(&str, Vec<String>)> = Vec::new();

    // A blob that does not hash to its digest.
    let good = small_tar(b"the layer the manifest names\n");
    let evil = small_tar(b"another layer entirely!!!!!!!\n");
    let (m, c) = image(&sha256(&good), good.len() as u64, &sha256(&good), OCI_LAYER);
    repo(
        &mut routes,
        "wrong-digest",
        m,
        c,
        &sha256(&good),
        Arc::new(move |_, s| ok(s, "application/octet-stream", &evil)),
    );
    cases.push(("wrong-digest", vec![sha256(&good)]));

    // A manifest of 100 MB, without a Content-Length (the body ends when the connection
    // closes), so only reading it can tell its size.
    routes.insert(
        "/v2/hostile/huge-manifest/manifests/latest".into(),
        Arc::new(|_, s| {
            respond(s, "200 OK", &[("Content-Type", OCI_MANIFEST.into())], b"");
            let chunk = vec![b' '; 1 << 16];
            for _ in 0..(100 << 20) / chunk.len() {
                if s.write_all(&chunk).is_err() {
                    return;
                }
            }
        }),
    );
    cases.push((
        "huge-manifest",
        vec![
            "/v2/hostile/huge-manifest/manifests/latest".into(),
            "4 MiB".into(),
        ],
    ));

    // The same, announced by its Content-Length: refused before a byte of it is read.
    routes.insert(
        "/v2/hostile/declared-manifest/manifests/latest".into(),
        Arc::new(|_, s| {
            respond(
                s,
                "200 OK",
                &[
                    ("Content-Type", OCI_MANIFEST.into()),
                    ("Content-Length", (100u64 << 20).to_string()),
                ],
                b"",
            );
            let chunk = vec![b' '; 1 << 16];
            for _ in 0..(100 << 20) / chunk.len() {
                if s.write_all(&chunk).is_err() {
                    return;
                }
            }
        }),
    );
    cases.push((
        "declared-manifest",
        vec![
            "/v2/hostile/declared-manifest/manifests/latest".into(),
            "4 MiB".into(),
        ],
    ));

    // An unknown manifest media type, and an unknown layer media type.
    let (m, _) = image(&sha256(&good), good.len() as u64, &sha256(&good), OCI_LAYER);
    routes.insert(
        "/v2/hostile/manifest-type/manifests/latest".into(),
        Arc::new(move |_, s| ok(s, "application/vnd.example.evil.manifest+json", &m)),
    );
    cases.push((
        "manifest-type",
        vec!["application/vnd.example.evil.manifest+json".into()],
    ));
    let (m, c) = image(
        &sha256(&good),
        good.len() as u64,
        &sha256(&good),
        "application/vnd.example.evil.layer",
    );
    let g = good.clone();
    repo(
        &mut routes,
        "layer-type",
        m,
        c,
        &sha256(&good),
        Arc::new(move |_, s| ok(s, "application/octet-stream", &g)),
    );
    cases.push((
        "layer-type",
        vec![sha256(&good), "application/vnd.example.evil.layer".into()],
    ));

    // A redirect loop.
    routes.insert(
        "/v2/hostile/redirect/manifests/latest".into(),
        Arc::new(|path, s| {
            respond(
                s,
                "307 Temporary Redirect",
                &[
                    ("Location", path.to_string()),
                    ("Content-Length", "0".into()),
                ],
                b"",
            )
        }),
    );
    // A redirect loop on a layer blob.
    let (m, c) = image(&sha256(&good), good.len() as u64, &sha256(&good), OCI_LAYER);
    repo(
        &mut routes,
        "blob-redirect",
        m,
        c,
        &sha256(&good),
        Arc::new(|path, s| {
            respond(
                s,
                "302 Found",
                &[
                    ("Location", path.to_string()),
                    ("Content-Length", "0".into()),
                ],
                b"",
            )
        }),
    );
    cases.push((
        "blob-redirect",
        vec![format!("/v2/hostile/blob-redirect/blobs/{}", sha256(&good))],
    ));
    cases.push((
        "redirect",
        vec!["/v2/hostile/redirect/manifests/latest".into()],
    ));

    // A layer body cut short of its Content-Length.
    let big = small_tar(&vec![b'z'; 1 << 20]);
    let (m, c) = image(&sha256(&big), big.len() as u64, &sha256(&big), OCI_LAYER);
    let b = big.clone();
    repo(
        &mut routes,
        "truncated",
        m,
        c,
        &sha256(&big),
        Arc::new(move |_, s| {
            respond(
                s,
                "200 OK",
                &[("Content-Length", b.len().to_string())],
                &b[..b.len() / 2],
            )
        }),
    );
    cases.push((
        "truncated",
        vec![format!("/v2/hostile/truncated/blobs/{}", sha256(&big))],
    ));

    // A layer body that drips one byte a second.
    let (m, c) = image(&sha256(&big), big.len() as u64, &sha256(&big), OCI_LAYER);
    let b = big.clone();
    repo(
        &mut routes,
        "drip",
        m,
        c,
        &sha256(&big),
        Arc::new(move |_, s| {
            respond(s, "200 OK", &[("Content-Length", b.len().to_string())], b"");
            for byte in b.iter() {
                if s.write_all(&[*byte]).is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_secs(1));
            }
        }),
    );
    cases.push((
        "drip",
        vec![
            format!("/v2/hostile/drip/blobs/{}", sha256(&big)),
            "STRATA_REGISTRY_TIMEOUT".into(),
        ],
    ));

    // Tar bombs: 1000 directories of 1000 empty files (made as it is sent: half a GB of tar),
    // a 1 TB file, a 1 TB sparse file.
    let mut hc = HashCount(sha2::Sha256::new(), 0);
    write_bomb(1000, 1000, &mut hc).unwrap();
    let (bomb_digest, bomb_len) = (format!("sha256:{}", hex::encode(hc.0.finalize())), hc.1);
    let (m, c) = image(&bomb_digest, bomb_len, &bomb_digest, OCI_LAYER);
    repo(
        &mut routes,
        "bomb",
        m,
        c,
        &bomb_digest,
        Arc::new(move |_, s| {
            respond(
                s,
                "200 OK",
                &[("Content-Length", bomb_len.to_string())],
                b"",
            );
            let mut w = std::io::BufWriter::with_capacity(1 << 20, s);
            let _ = write_bomb(1000, 1000, &mut w).and_then(|_| w.flush());
        }),
    );
    cases.push((
        "bomb",
        vec![
            bomb_digest.clone(),
            format!("more than {BOMB_LIMIT} entries"),
        ],
    ));
    for (name, tar) in [
        ("huge-file", huge_tar("huge", 1 << 40)),
        ("sparse-file", sparse_tar("sparse", 1 << 40)),
    ] {
        let d = sha256(&tar);
        let (m, c) = image(&d, tar.len() as u64, &d, OCI_LAYER);
        repo(
            &mut routes,
            name,
            m,
            c,
            &d,
            Arc::new(move |_, s| ok(s, "application/octet-stream", &tar)),
        );
        let entry = if name == "huge-file" {
            "\"huge\""
        } else {
            "\"sparse\""
        };
        cases.push((name, vec![d, entry.into()]));
    }

    let port = serve(routes);
    let s = Strata::new();
    s.ok(&["import", busybox_tar().to_str().unwrap(), "bb:1"]);
    let before = store_state(&s);
    let mut failures = Vec::new();
    for (name, needles) in &cases {
        let reference = format!("127.0.0.1:{port}/hostile/{name}:latest");
        let out = pull(&s, &reference);
        let mut problems = Vec::new();
        if out.code == Some(0) {
            problems.push("the pull succeeded".to_string());
        }
        for n in needles {
            if !out.stderr.contains(n.as_str()) {
                problems.push(format!("the error does not name {n}"));
            }
        }
        if out.max_rss_kb > MAX_RSS_KB {
            problems.push(format!("max RSS {} KiB", out.max_rss_kb));
        }
        if store_state(&s) != before {
            problems.push(format!(
                "the store changed: {:?} -> {:?}",
                before,
                store_state(&s)
            ));
        }
        let check = s.cmd().args(["system", "check"]).output().unwrap();
        if !check.status.success() {
            problems.push(format!(
                "system check: {}",
                String::from_utf8_lossy(&check.stdout)
            ));
        }
        eprintln!(
            "{name}: exit {:?} in {:.1?}, max RSS {} KiB: {}",
            out.code,
            out.took,
            out.max_rss_kb,
            out.stderr.trim()
        );
        if !problems.is_empty() {
            failures.push(format!(
                "{name}: {} (stderr: {})",
                problems.join("; "),
                out.stderr.trim()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
