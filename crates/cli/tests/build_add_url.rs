//! `ADD URL` as Docker 20.10's classic builder does it (checked against it here): the file is
//! downloaded on every build, kept with mode 0600 and the `Last-Modified` time, hashed as a
//! root-owned tar entry with no `file:` prefix in history, never extracted; a changed body is
//! a cache miss; a failed download is an error that names the URL.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use common::*;
use sha2::{Digest as _, Sha256};

/// Path, extra headers and body of each file served.
type Files = Arc<Mutex<Vec<(String, Vec<String>, Vec<u8>)>>>;

/// A one-thread HTTP/1.0 server on 127.0.0.1 serving the bodies it is given by path.
struct Server {
    port: u16,
    files: Files,
}

impl Server {
    fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let files: Files = Arc::default();
        let served = files.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut request = String::new();
                if reader.read_line(&mut request).is_err() {
                    continue;
                }
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                        break;
                    }
                }
                let path = request.split(' ').nth(1).unwrap_or("").to_string();
                let found = served
                    .lock()
                    .unwrap()
                    .iter()
                    .find(|(p, _, _)| *p == path)
                    .cloned();
                let reply = match found {
                    Some((_, headers, body)) => {
                        let mut r =
                            format!("HTTP/1.0 200 OK\r\nContent-Length: {}\r\n", body.len());
                        for h in headers {
                            r.push_str(&h);
                            r.push_str("\r\n");
                        }
                        r.push_str("\r\n");
                        let mut r = r.into_bytes();
                        r.extend_from_slice(&body);
                        r
                    }
                    None => b"HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec(),
                };
                let _ = conn.write_all(&reply);
            }
        });
        Server { port, files }
    }

    fn serve(&self, path: &str, headers: &[&str], body: &[u8]) {
        let mut f = self.files.lock().unwrap();
        f.retain(|(p, _, _)| p != path);
        f.push((
            path.to_string(),
            headers.iter().map(|h| h.to_string()).collect(),
            body.to_vec(),
        ));
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

/// Docker's hash of a download: the tar header fields with root names, then the bytes.
fn download_hash(name: &str, body: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(format!(
        "name{name}mode33152uid0gid0size{}typeflag0linknameunamerootgnamerootdevmajor0devminor0",
        body.len()
    ));
    h.update(body);
    hex::encode(h.finalize())
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn add_url_downloads_like_the_classic_builder() {
    if !require_root() {
        return;
    }
    let web = Server::start();
    web.serve(
        "/files/remote.txt",
        &["Last-Modified: Tue, 02 Jan 2024 03:04:05 GMT"],
        b"hello, remote!\n",
    );
    // A tarball stays a tarball; a path ending in / takes its name from Content-Disposition.
    web.serve(
        "/files/archive.tar",
        &[],
        &std::fs::read(busybox_tar()).unwrap(),
    );
    web.serve(
        "/dl/",
        &["Content-Disposition: attachment; filename=\"named.bin\""],
        b"by disposition\n",
    );

    let s = Strata::new();
    s.ok(&["import", busybox_tar().to_str().unwrap(), "bb:1"]);
    let ctx = tempfile::tempdir().unwrap();
    let c = ctx.path().to_str().unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!(
            "FROM bb:1\n\
             ADD {} /r/\n\
             ADD {} /r/\n\
             ADD {} /r/\n\
             ADD {} /r/renamed.txt\n\
             RUN stat -c '%a %Y %s %n' /r/remote.txt /r/archive.tar /r/named.bin /r/renamed.txt\n",
            web.url("/files/remote.txt"),
            web.url("/files/archive.tar"),
            web.url("/dl/"),
            web.url("/files/remote.txt"),
        ),
    )
    .unwrap();
    let out = s.ok(&["build", "-t", "url:1", c]);
    // Mode 0600, the Last-Modified time (1704164645), no extraction.
    assert!(out.contains("600 1704164645 15 /r/remote.txt\n"), "{out}");
    let tar_len = std::fs::metadata(busybox_tar()).unwrap().len();
    assert!(
        out.contains(&format!(" {tar_len} /r/archive.tar\n")),
        "{out}"
    );
    assert!(out.contains(" 15 /r/named.bin\n"), "{out}");
    assert!(out.contains("600 1704164645 15 /r/renamed.txt\n"), "{out}");
    // The blank line Docker prints after a download.
    assert!(
        out.contains(&format!(
            "Step 2/6 : ADD {} /r/\n\n ---> ",
            web.url("/files/remote.txt")
        )),
        "{out}"
    );
    let history = s.ok(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.CreatedBy}}",
        "url:1",
    ]);
    let want = format!(
        "/bin/sh -c #(nop) ADD {} in /r/ ",
        download_hash("remote.txt", b"hello, remote!\n")
    );
    assert!(
        history.lines().any(|l| l == want),
        "{history}\nwant: {want}"
    );

    // Unchanged: every step from cache (after downloading again). A new body: a miss there.
    let out = s.ok(&["build", "-t", "url:1", c]);
    assert_eq!(out.matches(" ---> Using cache").count(), 5, "{out}");
    web.serve("/files/remote.txt", &[], b"hello again!!!\n");
    let out = s.ok(&["build", "-t", "url:1", c]);
    assert_eq!(out.matches(" ---> Using cache").count(), 0, "{out}");

    // A URL that answers 404 fails the build and names it; COPY never takes a URL.
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!("FROM bb:1\nADD {} /x\n", web.url("/missing.txt")),
    )
    .unwrap();
    let (code, err) = s.fails(&["build", c]);
    assert_eq!(code, 1);
    assert!(err.contains("/missing.txt") && err.contains("404"), "{err}");
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!("FROM bb:1\nCOPY {} /x\n", web.url("/files/remote.txt")),
    )
    .unwrap();
    let (_, err) = s.fails(&["build", c]);
    assert!(err.contains("source can't be a URL for COPY"), "{err}");
}
