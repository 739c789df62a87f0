//! Helpers shared by the end-to-end tests: a fresh store per test, the busybox root
//! filesystem from the shipped example, and Docker 20.10 / skopeo / umoci as real peers.

#![allow(dead_code)]

pub mod registry;
pub mod service;
#[allow(unused_imports)]
pub use registry::Registry;
#[allow(unused_imports)]
pub use service::Service;

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// A strata store of its own in a temporary directory.
pub struct Strata {
    pub root: tempfile::TempDir,
}

impl Drop for Strata {
    /// Removes the store's containers before its directory goes: the monitor of a detached
    /// container still running would otherwise go on writing into the removed directory
    /// (its events, the database's WAL), and leave that behind in the temporary directory.
    fn drop(&mut self) {
        let any = std::fs::read_dir(self.root.path().join("containers"))
            .is_ok_and(|mut d| d.next().is_some());
        if !any {
            return;
        }
        let Ok(out) = self.cmd().args(["ps", "-aq", "--no-trunc"]).output() else {
            return;
        };
        let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(str::to_string)
            .collect();
        if !ids.is_empty() {
            let _ = self.cmd().arg("rm").arg("-f").args(&ids).output();
        }
    }
}

impl Strata {
    pub fn new() -> Strata {
        Strata {
            root: tempfile::tempdir().unwrap(),
        }
    }

    pub fn cmd(&self) -> assert_cmd::Command {
        let mut c = assert_cmd::Command::cargo_bin("strata").unwrap();
        c.env("STRATA_ROOT", self.root.path())
            .env_remove("DOCKER_CONFIG");
        c
    }

    /// Runs strata, requires success, returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.cmd().args(args).output().unwrap();
        assert!(
            out.status.success(),
            "strata {args:?} failed ({}):\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs strata, requires failure, returns (exit code, stderr).
    pub fn fails(&self, args: &[&str]) -> (i32, String) {
        let out = self.cmd().args(args).output().unwrap();
        assert!(
            !out.status.success(),
            "strata {args:?} should have failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Like `fails`, with `input` on standard input.
    pub fn fails_with_stdin(&self, args: &[&str], input: &str) -> (i32, String) {
        let out = self
            .cmd()
            .args(args)
            .write_stdin(input.to_string())
            .output()
            .unwrap();
        assert!(
            !out.status.success(),
            "strata {args:?} should have failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Every file and directory under the store's layers/ and blobs/ (to check emptiness).
    pub fn stored_entries(&self) -> Vec<String> {
        let mut v = Vec::new();
        for d in ["layers", "blobs/sha256"] {
            if let Ok(rd) = std::fs::read_dir(self.root.path().join(d)) {
                for e in rd.flatten() {
                    v.push(format!("{d}/{}", e.file_name().to_string_lossy()));
                }
            }
        }
        v.sort();
        v
    }
}

/// Fails the test with the command's stderr unless it succeeded.
pub fn assert_success(out: &Output) {
    assert!(
        out.status.success(),
        "exit {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The busybox root filesystem tarball made by `examples/busybox/make-rootfs` (made once).
pub fn busybox_tar() -> PathBuf {
    static TAR: OnceLock<PathBuf> = OnceLock::new();
    // One file for every test process (each used to leave a copy of its own behind): each
    // process makes it afresh (the tar is the same every time: sorted, mtime 0) and renames
    // it into place, so that a reader gets a whole file, this process's or an equal one.
    TAR.get_or_init(|| {
        let script = workspace_root().join("examples/busybox/make-rootfs");
        let out = shared_temp("strata-tests-busybox-rootfs", &script, "tar");
        let made = out.with_extension(format!("{}.tmp", std::process::id()));
        let st = Command::new(&script).arg(&made).status().unwrap();
        assert!(st.success(), "make-rootfs failed");
        std::fs::rename(&made, &out).unwrap();
        out
    })
    .clone()
}

/// A path in the temporary directory for a file every test process makes from `source` the
/// same way: named by the source's contents, so that checkouts of other versions running
/// tests at the same time do not swap theirs in.
pub fn shared_temp(name: &str, source: &Path, ext: &str) -> PathBuf {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    std::fs::read(source).unwrap().hash(&mut h);
    std::env::temp_dir().join(format!("{name}-{:016x}.{ext}", h.finish()))
}

pub fn run(cmd: &str, args: &[&str]) -> Output {
    Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd}: {e}"))
}

pub fn run_ok(cmd: &str, args: &[&str]) -> String {
    let out = run(cmd, args);
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Starts Docker 20.10 (no network, its own data root) once for all tests, under a lock so
/// that concurrent test processes start one daemon. False when Docker is not installed (see
/// [`cannot_run`]).
#[must_use]
pub fn docker() -> bool {
    if !require_tool("/usr/bin/docker") || !require_tool("dockerd") {
        return false;
    }
    let lock_path = std::env::temp_dir().join("strata-tests-docker.lock");
    let lock: File = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .unwrap();
    lock.lock().unwrap();
    let script = workspace_root().join("../shared/tools/reference-docker");
    let st = if script.exists() {
        Command::new(&script).arg("start").status().unwrap()
    } else {
        Command::new("sh")
            .arg("-c")
            .arg(
                "docker info >/dev/null 2>&1 || { setsid dockerd --data-root /var/lib/docker-reference --bridge=none \
                 --iptables=false --ip-masq=false >/tmp/reference-dockerd.log 2>&1 </dev/null & \
                 i=0; while [ $i -lt 60 ]; do docker info >/dev/null 2>&1 && exit 0; sleep 0.5; i=$((i+1)); done; exit 1; }",
            )
            .status()
            .unwrap()
    };
    assert!(st.success(), "could not start the reference Docker daemon");
    true
}

/// Removes `image` from the reference Docker with everything the classic builder made on it:
/// the containers of failed steps (kept without `--force-rm`) and the intermediate images
/// that a failed build leaves untagged. Only what descends from `image`, so a test that owns
/// `image` (a [`unique`] name) touches nothing of another test's.
pub fn docker_remove_with_descendants(image: &str) {
    let id = |args: &[&str]| -> Vec<String> {
        let o = Command::new("/usr/bin/docker").args(args).output().unwrap();
        String::from_utf8_lossy(&o.stdout)
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    let Some(root) = id(&["image", "inspect", "-f", "{{.Id}}", image]).pop() else {
        return;
    };
    let filter = format!("ancestor={root}");
    let containers = id(&["ps", "-aq", "--no-trunc", "--filter", &filter]);
    if !containers.is_empty() {
        let mut rm = vec!["rm", "-f"];
        rm.extend(containers.iter().map(String::as_str));
        let _ = run("/usr/bin/docker", &rm);
    }
    // Every image with its parent, then the descendants of `root`, newest generation first.
    let all = id(&["images", "-aq", "--no-trunc"]);
    let mut parent_of = std::collections::HashMap::new();
    if !all.is_empty() {
        let mut inspect = vec!["image", "inspect", "-f", "{{.Id}}={{.Parent}}"];
        inspect.extend(all.iter().map(String::as_str));
        for pair in id(&inspect) {
            if let Some((child, parent)) = pair.split_once('=') {
                parent_of.insert(child.to_string(), parent.to_string());
            }
        }
    }
    let mut generations = vec![vec![root]];
    loop {
        let last = generations.last().unwrap();
        let next: Vec<String> = parent_of
            .iter()
            .filter(|(_, p)| last.contains(p))
            .map(|(c, _)| c.clone())
            .collect();
        if next.is_empty() {
            break;
        }
        generations.push(next);
    }
    for image in generations.iter().rev().flatten() {
        let _ = run("/usr/bin/docker", &["rmi", "-f", image]);
    }
}

/// A name unique to this test process, for images put into the shared Docker daemon.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}{}", std::process::id())
}

#[path = "../../../../support/test_guard.rs"]
mod test_guard;
#[allow(unused_imports)]
pub use test_guard::{cannot_run, ci};

/// Whether this process runs as root.
pub fn is_root() -> bool {
    // SAFETY: no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Whether the test runs as root; otherwise see [`cannot_run`].
pub fn require_root() -> bool {
    if is_root() {
        return true;
    }
    cannot_run("needs root");
    false
}

/// Whether `tool` (a name on `PATH` or a path) can be run, `tool --version` succeeding;
/// otherwise see [`cannot_run`], naming the Debian package that has it.
pub fn require_tool(tool: &str) -> bool {
    let ok = Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        cannot_run(&format!(
            "needs {tool}: apt-get install {} (scripts/test installs it)",
            package_of(tool)
        ));
    }
    ok
}

/// The Debian package that has `tool`.
pub fn package_of(tool: &str) -> &'static str {
    match Path::new(tool).file_name().and_then(|n| n.to_str()) {
        Some("docker" | "dockerd") => "docker.io",
        Some("skopeo") => "skopeo",
        Some("umoci") => "umoci",
        Some("docker-registry") => "docker-registry",
        Some("losetup") => "mount",
        Some("cc") => "gcc libc6-dev",
        Some("pasta") => "passt",
        Some("tini" | "tini-static") => "tini",
        Some("chromium") => "chromium",
        Some("git") => "git",
        Some("faketime") => "faketime",
        Some("script") => "bsdutils",
        _ => "(unknown package)",
    }
}

/// One strata command with a deadline (a command past it is a deadlock: the test fails,
/// printing its output): (success, stdout+stderr).
pub fn run_within(root: &Path, args: &[&str], limit: std::time::Duration) -> (bool, String) {
    let (child, out, err) = spawn_draining(root, args);
    let mut child = child;
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "strata {args:?} still ran after {limit:?}: {}{}",
                out.join().unwrap_or_default(),
                err.join().unwrap_or_default()
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    let text = format!(
        "{}{}",
        out.join().unwrap_or_default(),
        err.join().unwrap_or_default()
    );
    (status.success(), text)
}

/// A thread reading one of a child's output streams to its end.
pub type Drain = std::thread::JoinHandle<String>;

/// strata on store `root` with its standard output and error read as they come (a long
/// listing must not fill a pipe and stall it).
pub fn spawn_draining(root: &Path, args: &[&str]) -> (std::process::Child, Drain, Drain) {
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("strata"))
        .env("STRATA_ROOT", root)
        .env_remove("DOCKER_CONFIG")
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let drain = |mut r: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            String::from_utf8_lossy(&v).into_owned()
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    (child, out, err)
}

/// What a side-by-side test made in the reference Docker, removed however the test ends
/// (containers with their anonymous volumes first, then volumes, then images).
pub struct DockerCleanup {
    pub containers: Vec<String>,
    pub volumes: Vec<String>,
    pub images: Vec<String>,
}

impl Drop for DockerCleanup {
    fn drop(&mut self) {
        let run = |args: &[&str]| {
            let _ = Command::new("/usr/bin/docker").args(args).output();
        };
        for c in &self.containers {
            run(&["rm", "-f", "-v", c]);
        }
        for v in &self.volumes {
            run(&["volume", "rm", "-f", v]);
        }
        for i in &self.images {
            // With what failed classic builds left on it (untagged images, containers).
            docker_remove_with_descendants(i);
            run(&["rmi", "-f", i]);
        }
    }
}
