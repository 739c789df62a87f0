//! Rootless strata (issue 16): every step as a created ordinary user with `/etc/subuid` and
//! `/etc/subgid` ranges (switched to with `runuser`), its store at `$XDG_DATA_HOME/strata`
//! and its runtime directory at `$XDG_RUNTIME_DIR/strata`. Checked against a build of the same
//! Dockerfile as root (same diff_ids and image ID), with nothing left mounted after each
//! command and nothing written outside the user's directories.

mod common;

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{busybox_tar, cannot_run, require_root, require_tool, Registry, Strata};

/// The Dockerfile built both ways: files owned by another UID, an opaque directory (`rm -rf`
/// then `mkdir`), a whiteout and a COPY.
const DOCKERFILE: &str = "FROM base:1\n\
RUN touch /f && chown 1000:1000 /f && mkdir -p /home/app && chown -R 1000:1000 /home/app\n\
RUN rm -rf /tmp && mkdir -m 1777 /tmp && echo x > /tmp/y && chown 1000:1000 /tmp/y\n\
COPY hello.txt /home/app/\n\
RUN rm /bin/vi\n";

/// One lock for the tests that edit /etc/passwd, /etc/subuid and /etc/subgid.
fn users_lock() -> fs::File {
    let f = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(std::env::temp_dir().join("strata-tests-rootless-users.lock"))
        .unwrap();
    f.lock().unwrap();
    f
}

fn edit_subids(remove: &str, add: Option<&str>) {
    for file in ["/etc/subuid", "/etc/subgid"] {
        let text = fs::read_to_string(file).unwrap_or_default();
        let mut out: String = text
            .lines()
            .filter(|l| l.split(':').next() != Some(remove))
            .map(|l| format!("{l}\n"))
            .collect();
        if let Some(line) = add {
            out.push_str(line);
            out.push('\n');
        }
        fs::write(file, out).unwrap();
    }
}

/// A created user with its home, data and runtime directories; deleted (with its pause
/// process, ranges and home) when dropped.
struct User {
    name: String,
    uid: u32,
    home: PathBuf,
    /// The first subordinate ID and how many (none: single-ID mapping).
    range: Option<(u32, u32)>,
}

impl User {
    fn create(tag: &str, ranged: bool) -> User {
        let name = format!("strata-rl{tag}-{}", std::process::id());
        let _lock = users_lock();
        let st = Command::new("useradd")
            .args([
                "-m",
                "-K",
                "SUB_UID_COUNT=0",
                "-K",
                "SUB_GID_COUNT=0",
                &name,
            ])
            .status()
            .unwrap();
        assert!(st.success(), "useradd {name}");
        // A range of its own per test process (subordinate ranges may overlap other users',
        // but distinct ones make the check for stray files exact).
        let range = ranged.then(|| (1_000_000 + (std::process::id() % 20_000) * 65_536, 65_536));
        edit_subids(
            &name,
            range.map(|(s, n)| format!("{name}:{s}:{n}")).as_deref(),
        );
        let uid: u32 = common::run_ok("id", &["-u", &name]).trim().parse().unwrap();
        let home = PathBuf::from(format!("/home/{name}"));
        let u = User {
            name,
            uid,
            home,
            range,
        };
        for d in ["data", "run", "in"] {
            let p = u.home.join(d);
            fs::create_dir_all(&p).unwrap();
            std::os::unix::fs::chown(&p, Some(uid), Some(uid)).unwrap();
        }
        fs::set_permissions(u.home.join("run"), fs::Permissions::from_mode(0o700)).unwrap();
        // The binary where the user can run it whatever the checkout's directories allow.
        u.give("strata", Path::new(env!("CARGO_BIN_EXE_strata")));
        u
    }

    /// A file for the user to read, under its home.
    fn give(&self, name: &str, from: &Path) -> PathBuf {
        let to = self.home.join("in").join(name);
        fs::copy(from, &to).unwrap();
        std::os::unix::fs::chown(&to, Some(self.uid), Some(self.uid)).unwrap();
        to
    }

    fn cmd(&self, args: &[&str]) -> Command {
        self.cmd_env(&[], args)
    }

    /// `cmd` with more `NAME=VALUE` variables in the environment.
    fn cmd_env(&self, env: &[&str], args: &[&str]) -> Command {
        let mut c = Command::new("runuser");
        c.args(["-u", &self.name, "--", "env", "-i"])
            .args(env)
            .arg(format!("HOME={}", self.home.display()))
            .arg(format!(
                "XDG_DATA_HOME={}",
                self.home.join("data").display()
            ))
            .arg(format!(
                "XDG_RUNTIME_DIR={}",
                self.home.join("run").display()
            ))
            .arg("PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
            .arg(self.home.join("in/strata"))
            .args(args)
            .current_dir(&self.home);
        c
    }

    fn output(&self, args: &[&str]) -> Output {
        let out = self.cmd(args).output().unwrap();
        self.assert_nothing_mounted(args);
        out
    }

    /// `ok` for a command while a container runs (its root stays mounted until it is
    /// removed).
    fn ok_running(&self, args: &[&str]) -> String {
        let out = self.cmd(args).output().unwrap();
        assert!(
            out.status.success(),
            "strata {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        self.ok_env(&[], args)
    }

    fn ok_env(&self, env: &[&str], args: &[&str]) -> String {
        let out = self.cmd_env(env, args).output().unwrap();
        self.assert_nothing_mounted(args);
        assert!(
            out.status.success(),
            "strata {args:?} as {} failed ({}):\nstdout: {}\nstderr: {}",
            self.name,
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn fails(&self, args: &[&str]) -> String {
        let out = self.output(args);
        assert!(
            !out.status.success(),
            "strata {args:?} as {} should have failed: {}",
            self.name,
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    fn pause_pid(&self) -> Option<i32> {
        fs::read_to_string(self.home.join("run/strata/pause.pid"))
            .ok()?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    }

    /// No mount of the host nor of the user's namespace is under the user's directories
    /// (containers that still run are allowed theirs, `running` names them).
    fn assert_nothing_mounted(&self, args: &[&str]) {
        let home = format!(" {}/", self.home.display());
        let mut tables = vec![("host".to_string(), "/proc/self/mountinfo".to_string())];
        if let Some(pid) = self.pause_pid() {
            tables.push((
                format!("pause process {pid}"),
                format!("/proc/{pid}/mountinfo"),
            ));
        }
        for (who, table) in tables {
            let Ok(text) = fs::read_to_string(&table) else {
                continue;
            };
            let left: Vec<&str> = text.lines().filter(|l| l.contains(&home)).collect();
            assert!(
                left.is_empty(),
                "after strata {args:?}, mounted in the {who}'s namespace:\n{}",
                left.join("\n")
            );
        }
    }

    /// Files owned by the user or its subordinate IDs outside its home, in the places a
    /// process could write to without naming them.
    fn stray_files(&self) -> Vec<String> {
        let mut ids = format!("-uid {}", self.uid);
        if let Some((s, n)) = self.range {
            ids = format!("{ids} -o ( -uid +{} -uid -{} )", s - 1, s + n);
        }
        let script =
            format!("find /tmp /var/tmp /dev/shm /run -xdev ( {ids} ) -print 2>/dev/null || true");
        let out = Command::new("sh").arg("-c").arg(script).output().unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    }
}

impl User {
    /// The PIDs of processes running as the user or one of its subordinate IDs.
    fn processes(&self) -> Vec<i32> {
        let ours =
            |uid: u32| uid == self.uid || self.range.is_some_and(|(s, n)| uid >= s && uid - s < n);
        let mut pids = Vec::new();
        for e in fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let Ok(status) = fs::read_to_string(e.path().join("status")) else {
                continue;
            };
            let uid = status
                .lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok());
            if uid.is_some_and(ours) {
                pids.push(pid);
            }
        }
        pids
    }
}

impl Drop for User {
    fn drop(&mut self) {
        if let Some(pid) = self.pause_pid() {
            // SAFETY: kill takes a PID and a signal.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        // Containers a failed assertion left running: the processes of this test's user.
        for pid in self.processes() {
            // SAFETY: kill takes a PID and a signal.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        let _lock = users_lock();
        edit_subids(&self.name, None);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let st = Command::new("userdel")
                .args(["-r", &self.name])
                .output()
                .unwrap();
            if st.status.success() || Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = fs::remove_dir_all(&self.home);
    }
}

/// `/dev/net/tun` at `mode` until dropped. Debian's default 0666 is taken under a shared
/// lock and left as it is (tests of this file run at once, in processes of their own); any
/// other mode under the exclusive lock, and put back as it was when dropped.
struct TunMode {
    restore: Option<u32>,
    _lock: fs::File,
}

impl TunMode {
    fn set(mode: u32) -> TunMode {
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(std::env::temp_dir().join("strata-tests-rootless-tun.lock"))
            .unwrap();
        let restore = if mode == 0o666 {
            lock.lock_shared().unwrap();
            None
        } else {
            lock.lock().unwrap();
            Some(fs::metadata("/dev/net/tun").unwrap().mode() & 0o7777)
        };
        fs::set_permissions("/dev/net/tun", fs::Permissions::from_mode(mode)).unwrap();
        TunMode {
            restore,
            _lock: lock,
        }
    }
}

impl Drop for TunMode {
    fn drop(&mut self) {
        if let Some(old) = self.restore {
            let _ = fs::set_permissions("/dev/net/tun", fs::Permissions::from_mode(old));
        }
    }
}

/// `/dev/fuse` at Debian's default mode 0666 (0600 on this machine), for fuse-overlayfs.
fn fuse_device_usable() {
    fs::set_permissions("/dev/fuse", fs::Permissions::from_mode(0o666)).unwrap();
}

fn can_run() -> bool {
    if !require_root() || !require_tool("pasta") {
        return false;
    }
    for tool in ["/usr/bin/newuidmap", "/usr/bin/newgidmap"] {
        if !Path::new(tool).exists() {
            cannot_run(&format!(
                "needs {tool}: apt-get install uidmap (scripts/test installs it)"
            ));
            return false;
        }
    }
    for tool in ["useradd", "userdel", "runuser"] {
        if Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {tool}"))
            .output()
            .map_or(true, |o| !o.status.success())
        {
            cannot_run(&format!("needs {tool}"));
            return false;
        }
    }
    true
}

fn layers_and_id(out: &str) -> (String, String) {
    let (layers, id) = out.trim().rsplit_once(' ').unwrap();
    (layers.to_string(), id.to_string())
}

fn http_get(port: u16, path: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let attempt = (|| -> std::io::Result<String> {
            let mut s = TcpStream::connect(("127.0.0.1", port))?;
            s.set_read_timeout(Some(Duration::from_secs(5)))?;
            write!(s, "GET {path} HTTP/1.0\r\n\r\n")?;
            let mut body = String::new();
            s.read_to_string(&mut body)?;
            Ok(body)
        })();
        match attempt {
            Ok(b) if b.starts_with("HTTP/1.") => return b,
            _ if Instant::now() > deadline => panic!("no HTTP answer on 127.0.0.1:{port}"),
            _ => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn an_ordinary_user_builds_runs_publishes_pushes_and_pulls_as_root_would() {
    if !can_run() || !require_tool("/usr/bin/docker-registry") {
        return;
    }
    // The base image and the reference build, as root.
    let root = Strata::new();
    root.ok(&["import", busybox_tar().to_str().unwrap(), "base:1"]);
    let work = tempfile::tempdir().unwrap();
    let base_tar = work.path().join("base.tar");
    root.ok(&["save", "-o", base_tar.to_str().unwrap(), "base:1"]);
    let ctx = work.path().join("ctx");
    fs::create_dir(&ctx).unwrap();
    fs::write(ctx.join("Dockerfile"), DOCKERFILE).unwrap();
    fs::write(ctx.join("hello.txt"), "hello\n").unwrap();
    let epoch = "SOURCE_DATE_EPOCH=1700000000";
    let inspect = "{{json .RootFS.Layers}} {{.Id}}";
    root.ok(&[
        "build",
        "-q",
        "--build-arg",
        epoch,
        "-t",
        "built:1",
        ctx.to_str().unwrap(),
    ]);
    let as_root = layers_and_id(&root.ok(&["inspect", "-f", inspect, "built:1"]));

    let user = User::create("a", true);
    let stray_before = user.stray_files();
    let base = user.give("base.tar", &base_tar);
    let uctx = user.home.join("in/ctx");
    fs::create_dir(&uctx).unwrap();
    for f in ["Dockerfile", "hello.txt"] {
        fs::copy(ctx.join(f), uctx.join(f)).unwrap();
    }
    // The context's files as the user would have them (the same mode and mtime).
    let _ = Command::new("chown")
        .args(["-R", &format!("{0}:{0}", user.uid)])
        .arg(&uctx)
        .status();
    for f in ["Dockerfile", "hello.txt"] {
        let t = fs::metadata(ctx.join(f)).unwrap().modified().unwrap();
        fs::File::options()
            .write(true)
            .open(uctx.join(f))
            .unwrap()
            .set_modified(t)
            .unwrap();
    }

    // info says which mode and driver.
    let info = user.ok(&["info"]);
    let security = info
        .split(" Security Options:\n")
        .nth(1)
        .and_then(|s| s.split("\n Kernel").next())
        .unwrap_or_default();
    assert!(
        security.lines().any(|l| l == "  rootless"),
        "no rootless in Security Options:\n{info}"
    );
    assert!(info.contains(" Storage Driver: overlay2\n"), "{info}");
    assert!(info.contains("  userxattr: true\n"), "{info}");
    assert!(info.contains(" Cgroup Version: "), "{info}");
    assert!(
        info.contains(&format!(
            " Docker Root Dir: {}/data/strata\n",
            user.home.display()
        )),
        "{info}"
    );
    let pause = user
        .pause_pid()
        .expect("a pause process after the first command");
    let uid_map = fs::read_to_string(format!("/proc/{pause}/uid_map")).unwrap();
    let (start, count) = user.range.unwrap();
    assert_eq!(
        strata_maps(&uid_map),
        vec![(0, user.uid, 1), (1, start, count)],
        "{uid_map}"
    );

    user.ok(&["load", "-i", base.to_str().unwrap()]);
    let ours = user.ok(&["images", "-q", "base:1"]);
    assert_eq!(ours.trim(), root.ok(&["images", "-q", "base:1"]).trim());

    // The private network needs /dev/net/tun: said clearly when the user cannot open it.
    {
        let _tun = TunMode::set(0o600);
        let err = user.fails(&["run", "--rm", "base:1", "echo", "hi"]);
        assert!(
            err.contains("/dev/net/tun") && err.contains("--network none"),
            "{err}"
        );
    }
    let _tun = TunMode::set(0o666);

    assert_eq!(user.ok(&["run", "--rm", "base:1", "echo", "hi"]), "hi\n");
    assert_eq!(
        user.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "base:1",
            "cat",
            "/proc/net/dev"
        ])
        .lines()
        .filter(|l| l.contains(':'))
        .count(),
        1,
        "--network none: only lo"
    );
    assert_eq!(
        user.ok(&["run", "--rm", "--network", "host", "base:1", "echo", "host"]),
        "host\n"
    );
    // Inside, the user is root and its subordinate IDs are the rest.
    assert_eq!(
        user.ok(&["run", "--rm", "--network", "none", "base:1", "id", "-u"]),
        "0\n"
    );
    let err = user.fails(&["run", "--rm", "--memory", "64m", "base:1", "true"]);
    assert!(
        err.contains("rootless") && err.contains("--memory"),
        "{err}"
    );

    // The build: the same layers and image as root's.
    user.ok(&[
        "build",
        "-q",
        "--build-arg",
        epoch,
        "-t",
        "built:1",
        uctx.to_str().unwrap(),
    ]);
    let rootless = layers_and_id(&user.ok(&["inspect", "-f", inspect, "built:1"]));
    assert_eq!(rootless, as_root, "rootless build differs from root's");
    let ls = user.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "built:1",
        "stat",
        "-c",
        "%u:%g %n",
        "/f",
        "/tmp/y",
        "/home/app/hello.txt",
    ]);
    assert_eq!(
        ls,
        "1000:1000 /f\n1000:1000 /tmp/y\n0:0 /home/app/hello.txt\n"
    );
    // On the host, the file is owned by the user's subordinate ID for 1000.
    let layer = user.home.join("data/strata/layers").join(
        as_root
            .0
            .split('"')
            .nth(3)
            .unwrap()
            .trim_start_matches("sha256:"),
    );
    assert_eq!(fs::metadata(layer.join("f")).unwrap().uid(), start + 999);

    // -p on a host port above 1024.
    let port = common::registry::free_port();
    let publish = format!("127.0.0.1:{port}:80");
    let id = user.ok_running(&[
        "run",
        "-d",
        "-p",
        &publish,
        "built:1",
        "httpd",
        "-f",
        "-p",
        "80",
        "-h",
        "/home/app",
    ]);
    let id = id.trim();
    let reply = http_get(port, "/hello.txt");
    assert!(reply.ends_with("\r\n\r\nhello\n"), "{reply}");
    assert_eq!(user.ok_running(&["exec", id, "id", "-u"]), "0\n");
    assert!(user.ok_running(&["ps", "-q", "--no-trunc"]).contains(id));
    user.ok_running(&["stop", "-t", "1", id]);
    user.ok(&["rm", id]);

    // push and pull through the loopback registry, save and load.
    let reg = Registry::start(None);
    let name = format!("{}/rootless/built:1", reg.host());
    user.ok(&["tag", "built:1", &name]);
    user.ok(&["push", &name]);
    user.ok(&["rmi", &name, "built:1"]);
    user.ok(&["pull", &name]);
    let pulled = layers_and_id(&user.ok(&["inspect", "-f", inspect, &name]));
    assert_eq!(pulled, as_root);
    let saved = user.home.join("in/saved.tar");
    user.ok(&["save", "-o", saved.to_str().unwrap(), &name]);
    user.ok(&["rmi", &name]);
    user.ok(&["load", "-i", saved.to_str().unwrap()]);
    assert_eq!(
        layers_and_id(&user.ok(&["inspect", "-f", inspect, &name])),
        as_root
    );
    assert_eq!(
        user.ok(&["run", "--rm", &name, "cat", "/home/app/hello.txt"]),
        "hello\n"
    );

    let stray: Vec<String> = user
        .stray_files()
        .into_iter()
        .filter(|f| !stray_before.contains(f))
        .collect();
    assert!(
        stray.is_empty(),
        "written outside the user's directories: {stray:?}"
    );
}

/// `(inside, outside, count)` lines of a uid_map.
fn strata_maps(text: &str) -> Vec<(u32, u32, u32)> {
    text.lines()
        .map(|l| {
            let w: Vec<u32> = l.split_whitespace().map(|v| v.parse().unwrap()).collect();
            (w[0], w[1], w[2])
        })
        .collect()
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn without_subordinate_ids_root_owned_images_work_and_others_fail_naming_the_file() {
    if !can_run() {
        return;
    }
    let root = Strata::new();
    root.ok(&["import", busybox_tar().to_str().unwrap(), "base:1"]);
    let work = tempfile::tempdir().unwrap();
    let ctx = work.path().join("ctx");
    fs::create_dir(&ctx).unwrap();
    fs::write(
        ctx.join("Dockerfile"),
        "FROM base:1\nRUN --network=none touch /owned && chown 1000:1001 /owned\n",
    )
    .unwrap();
    root.ok(&["build", "-q", "-t", "owned:1", ctx.to_str().unwrap()]);
    let archive = work.path().join("both.tar");
    root.ok(&["save", "-o", archive.to_str().unwrap(), "base:1"]);
    let owned = work.path().join("owned.tar");
    root.ok(&["save", "-o", owned.to_str().unwrap(), "owned:1"]);

    let user = User::create("s", false);
    let base = user.give("base.tar", &archive);
    let owned = user.give("owned.tar", &owned);
    user.ok(&["load", "-i", base.to_str().unwrap()]);
    let pause = user.pause_pid().expect("a pause process");
    assert_eq!(
        strata_maps(&fs::read_to_string(format!("/proc/{pause}/uid_map")).unwrap()),
        vec![(0, user.uid, 1)]
    );
    assert_eq!(
        user.ok(&["run", "--rm", "--network", "none", "base:1", "echo", "hi"]),
        "hi\n"
    );
    let err = user.fails(&["load", "-i", owned.to_str().unwrap()]);
    assert!(
        err.contains("\"owned\" is owned by 1000:1001")
            && err.contains("/etc/subuid")
            && err.contains("rootless"),
        "{err}"
    );
    // The failed load left nothing behind: the base still runs, the image is not there.
    assert!(user.ok(&["images", "-q", "owned:1"]).is_empty());
}

/// The CI recipe (README, `deploy/`): strata building inside an unprivileged container, as a
/// non-root user of that container, with only `seccomp=unconfined` (user namespaces) and
/// `systempaths=unconfined` (a fresh `/proc`) added, and the store on a tmpfs (overlayfs
/// cannot take its upper directory from the container's own overlay).
#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn strata_builds_and_runs_inside_an_unprivileged_container() {
    if !can_run() {
        return;
    }
    let s = Strata::new();
    let bb = busybox_tar();
    s.ok(&["import", bb.to_str().unwrap(), "base:1"]);
    let work = tempfile::tempdir().unwrap();
    let ctx = work.path().join("ctx");
    fs::create_dir(&ctx).unwrap();
    fs::write(
        ctx.join("Dockerfile"),
        "FROM base:1\nRUN echo built inside > /inside && chmod 000 /inside && grep CapEff /proc/self/status > /caps\nCOPY hello.txt /\n",
    )
    .unwrap();
    fs::write(ctx.join("hello.txt"), "hello\n").unwrap();
    fs::set_permissions(work.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let strata = env!("CARGO_BIN_EXE_strata");
    let binds = [
        format!("{strata}:/usr/local/bin/strata:ro"),
        "/lib:/lib:ro".into(),
        "/lib64:/lib64:ro".into(),
        "/usr/lib:/usr/lib:ro".into(),
        format!("{}:/base.tar:ro", bb.display()),
        format!("{}:/ctx:ro", ctx.display()),
    ];
    let script = "mkdir -p /tmp/run && strata import /base.tar base:1 >/dev/null \
        && strata build -q --network none -t inside:1 /ctx >/dev/null \
        && strata run --rm --network none inside:1 cat /inside /hello.txt /caps \
        && strata info --format '{{json .SecurityOptions}} {{.Driver}}'";
    let run = |extra: &[&str]| {
        // No capability at all and no_new_privs: the user namespace strata makes has a
        // full bounding set of its own, so RUN steps still get Docker's defaults in there.
        let mut args: Vec<String> = [
            "run",
            "--rm",
            "--network",
            "none",
            "--user",
            "1000:1000",
            "--cap-drop",
            "ALL",
            "--security-opt",
            "no-new-privileges",
        ]
        .iter()
        .map(|a| a.to_string())
        .collect();
        for b in &binds {
            args.extend(["-v".into(), b.clone()]);
        }
        for e in [
            "HOME=/tmp",
            "XDG_DATA_HOME=/store",
            "XDG_RUNTIME_DIR=/tmp/run",
        ] {
            args.extend(["-e".into(), e.into()]);
        }
        args.extend(["--tmpfs".into(), "/store:mode=1777".into()]);
        args.extend(extra.iter().map(|a| a.to_string()));
        args.extend(["base:1".into(), "sh".into(), "-c".into(), script.into()]);
        s.cmd().args(&args).output().unwrap()
    };
    let out = run(&[
        "--security-opt",
        "seccomp=unconfined",
        "--security-opt",
        "systempaths=unconfined",
    ]);
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "built inside\nhello\nCapEff:\t00000000a80425fb\n[\"name=seccomp,profile=default\",\"name=rootless\"] overlay2\n"
    );
    // Docker's default seccomp profile refuses user namespaces: said, with the way out.
    let out = run(&["--security-opt", "systempaths=unconfined"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("create a user namespace") && err.contains("seccomp=unconfined"),
        "{err}"
    );
}

/// The base image as root saves it, and a created user (`tag`) that has loaded it.
fn user_with_base(tag: &str) -> (User, tempfile::TempDir) {
    let root = Strata::new();
    root.ok(&["import", busybox_tar().to_str().unwrap(), "base:1"]);
    let work = tempfile::tempdir().unwrap();
    let base_tar = work.path().join("base.tar");
    root.ok(&["save", "-o", base_tar.to_str().unwrap(), "base:1"]);
    let user = User::create(tag, true);
    let base = user.give("base.tar", &base_tar);
    user.ok(&["load", "-i", base.to_str().unwrap()]);
    (user, work)
}

/// A build context of the user's own (Dockerfile and hello.txt) under its home.
fn user_context(user: &User, dockerfile: &str) -> PathBuf {
    let ctx = user.home.join("in/ctx");
    fs::create_dir(&ctx).unwrap();
    fs::write(ctx.join("Dockerfile"), dockerfile).unwrap();
    fs::write(ctx.join("hello.txt"), "hello\n").unwrap();
    for p in [ctx.clone(), ctx.join("Dockerfile"), ctx.join("hello.txt")] {
        std::os::unix::fs::chown(&p, Some(user.uid), Some(user.uid)).unwrap();
    }
    ctx
}

impl User {
    /// The user's processes that are still alive (zombies that nobody reaped yet are not).
    fn live_processes(&self) -> Vec<(i32, String)> {
        self.processes()
            .into_iter()
            .filter_map(|pid| {
                let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
                let field = |k: &str| {
                    status
                        .lines()
                        .find_map(|l| l.strip_prefix(k))
                        .map(|v| v.trim().to_string())
                        .unwrap_or_default()
                };
                (!field("State:").starts_with('Z')).then(|| (pid, field("Name:")))
            })
            .collect()
    }

    /// Waits (10 s at most) until no process of the user but the pause process is alive.
    fn assert_only_pause_left(&self, after: &str) {
        let pause = self.pause_pid();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left: Vec<(i32, String)> = self
                .live_processes()
                .into_iter()
                .filter(|(pid, _)| Some(*pid) != pause)
                .collect();
            if left.is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "after {after}, processes of the user are left: {left:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// With `STRATA_SNAPSHOTTER=fuse-overlayfs` (what rootless strata falls back to when the
/// kernel refuses overlayfs in a user namespace) the build gives the same layers and image as
/// overlayfs, containers see the same tree, `info` names the driver, and every mount and
/// fuse-overlayfs daemon is gone after each command.
#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn fuse_overlayfs_builds_the_same_layers_as_overlayfs_and_leaves_nothing_mounted() {
    if !can_run() || !require_tool("fuse-overlayfs") {
        return;
    }
    fuse_device_usable();
    let (user, _work) = user_with_base("f");
    let ctx = user_context(&user, DOCKERFILE);
    let ctx = ctx.to_str().unwrap();
    let epoch = "SOURCE_DATE_EPOCH=1700000000";
    let inspect = "{{json .RootFS.Layers}} {{.Id}}";
    let build = |env: &[&str], tag: &str| {
        user.ok_env(
            env,
            &[
                "build",
                "-q",
                "--no-cache",
                "--network",
                "none",
                "--build-arg",
                epoch,
                "-t",
                tag,
                ctx,
            ],
        );
        user.assert_only_pause_left(&format!("the build of {tag}"));
        layers_and_id(&user.ok(&["inspect", "-f", inspect, tag]))
    };
    let kernel = build(&[], "kernel:1");
    let fuse = ["STRATA_SNAPSHOTTER=fuse-overlayfs"];
    let info = user.ok_env(&fuse, &["info"]);
    assert!(
        info.contains(" Storage Driver: fuse-overlayfs\n") && info.contains("  rootless\n"),
        "{info}"
    );
    let fused = build(&fuse, "fuse:1");
    assert_eq!(
        fused, kernel,
        "fuse-overlayfs build differs from overlayfs's"
    );

    // The opaque /tmp and the whiteout of /bin/vi as a container sees them.
    let seen = "ls -A /tmp; test -e /bin/vi || echo no vi; stat -c %u:%g /f";
    assert_eq!(
        user.ok_env(
            &fuse,
            &[
                "run",
                "--rm",
                "--network",
                "none",
                "fuse:1",
                "sh",
                "-c",
                seen
            ]
        ),
        "y\nno vi\n1000:1000\n"
    );
    user.assert_only_pause_left("run --rm");

    // A running container's root is a fuse-overlayfs mount; removed, nothing is left.
    let out = user
        .cmd_env(
            &fuse,
            &["run", "-d", "--network", "none", "fuse:1", "sleep", "1000"],
        )
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let pause = user.pause_pid().unwrap();
    let table = fs::read_to_string(format!("/proc/{pause}/mountinfo")).unwrap();
    assert!(
        table
            .lines()
            .any(|l| l.contains(" - fuse.fuse-overlayfs ") && l.contains(&id)),
        "no fuse-overlayfs mount for {id}:\n{table}"
    );
    assert!(user
        .live_processes()
        .iter()
        .any(|(_, name)| name == "fuse-overlayfs"));
    user.ok_env(&fuse, &["rm", "-f", &id]);
    user.assert_only_pause_left("rm -f");
}

/// Issue 16's workflow as the created user (a build whose RUN step chowns files to another
/// UID, `run --rm`, `-p`, save and load): no mount is left in the host's nor in the user's
/// namespace after each command, no process after the last, and nothing was written outside
/// the user's store, runtime directory and the paths it named: every file modified since the
/// start, in the places a user could write to, owned by the user or its subordinate IDs, is
/// under its home.
#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn the_issue_workflow_writes_nowhere_but_the_users_directories() {
    if !can_run() {
        return;
    }
    let _tun = TunMode::set(0o666);
    let (user, _work) = user_with_base("w");
    let ctx = user_context(&user, DOCKERFILE);
    // The marker is made after the setup (useradd, the load); its time is the start.
    let marker_dir = tempfile::tempdir().unwrap();
    let marker = marker_dir.path().join("marker");
    fs::write(&marker, "").unwrap();
    std::thread::sleep(Duration::from_millis(20));

    user.ok(&["build", "-q", "-t", "built:1", ctx.to_str().unwrap()]);
    assert_eq!(
        user.ok(&["run", "--rm", "built:1", "stat", "-c", "%u", "/f"]),
        "1000\n"
    );
    let port = common::registry::free_port();
    let publish = format!("127.0.0.1:{port}:80");
    let id = user.ok_running(&[
        "run",
        "-d",
        "-p",
        &publish,
        "built:1",
        "httpd",
        "-f",
        "-p",
        "80",
        "-h",
        "/home/app",
    ]);
    let reply = http_get(port, "/hello.txt");
    assert!(reply.ends_with("\r\n\r\nhello\n"), "{reply}");
    user.ok(&["rm", "-f", id.trim()]);
    let saved = user.home.join("in/saved.tar");
    user.ok(&["save", "-o", saved.to_str().unwrap(), "built:1"]);
    user.ok(&["rmi", "built:1"]);
    user.ok(&["load", "-i", saved.to_str().unwrap()]);
    assert_eq!(
        user.ok(&["run", "--rm", "built:1", "cat", "/home/app/hello.txt"]),
        "hello\n"
    );
    user.assert_only_pause_left("the workflow");

    let mut ids = format!("-uid {}", user.uid);
    if let Some((s, n)) = user.range {
        ids = format!("{ids} -o ( -uid +{} -uid -{} )", s - 1, s + n);
    }
    let places = "/tmp /var/tmp /dev/shm /run /home /root /etc /var /opt /srv /usr/local";
    let script = format!(
        "find {places} -xdev -newer {} ( {ids} ) -print 2>/dev/null || true",
        marker.display()
    );
    let out = Command::new("sh").arg("-c").arg(script).output().unwrap();
    let home = format!("{}/", user.home.display());
    let stray: Vec<&str> = std::str::from_utf8(&out.stdout)
        .unwrap()
        .lines()
        .filter(|f| !f.starts_with(&home) && *f != home.trim_end_matches('/'))
        .collect();
    assert!(
        stray.is_empty(),
        "written outside the user's directories: {stray:?}"
    );
}

/// A rootless container has no more than its user: a root-owned host file or directory
/// bind-mounted with `-v` cannot be written, `mount` and `unshare` are refused as in a root
/// container, and its root is the user on the host (its subordinate IDs for the others).
#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn a_rootless_container_gets_nothing_its_user_has_not() {
    if !can_run() {
        return;
    }
    let (user, _work) = user_with_base("e");
    let host = tempfile::tempdir().unwrap();
    fs::set_permissions(host.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let file = host.path().join("secret");
    fs::write(&file, "root's\n").unwrap();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
    let dir = host.path().join("dir");
    fs::create_dir(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    let vfile = format!("{}:/hostfile", file.display());
    let vdir = format!("{}:/hostdir", dir.display());
    let script = "cat /hostfile; echo pwned >> /hostfile; echo write=$?; \
        touch /hostdir/new; echo create=$?; chmod 666 /hostfile; echo chmod=$?; \
        mount -t tmpfs t /mnt; echo mount=$?; unshare -m true; echo unshare_m=$?; \
        unshare -U true; echo unshare_u=$?; grep ^Seccomp: /proc/self/status";
    let out = user
        .cmd(&[
            "run",
            "--rm",
            "--network",
            "none",
            "-v",
            &vfile,
            "-v",
            &vdir,
            "base:1",
            "sh",
            "-c",
            script,
        ])
        .output()
        .unwrap();
    user.assert_nothing_mounted(&["run"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.starts_with("root's\n"), "{stdout}");
    assert!(stdout.ends_with("Seccomp:\t2\n"), "{stdout}");
    let status: Vec<(&str, &str)> = stdout.lines().filter_map(|l| l.split_once('=')).collect();
    assert_eq!(
        status.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
        [
            "write",
            "create",
            "chmod",
            "mount",
            "unshare_m",
            "unshare_u"
        ],
        "{stdout}"
    );
    for (what, code) in status {
        assert_ne!(
            code, "0",
            "{what} succeeded in a rootless container: {stdout}{stderr}"
        );
    }
    assert!(
        stderr.contains("/hostfile: Permission denied")
            && stderr.contains("/hostdir/new")
            && stderr.contains("Operation not permitted"),
        "{stderr}"
    );
    assert_eq!(fs::read_to_string(&file).unwrap(), "root's\n");
    assert_eq!(fs::metadata(&file).unwrap().mode() & 0o777, 0o644);
    assert!(!dir.join("new").exists());

    // The container's processes, seen from the host: root inside is the user outside, and
    // UID 1000 inside is the user's subordinate ID for it.
    let (start, _) = user.range.unwrap();
    for (opts, uid) in [
        (&[][..], user.uid),
        (&["--user", "1000:1000"][..], start + 999),
    ] {
        let mut args = vec!["run", "-d", "--network", "none"];
        args.extend_from_slice(opts);
        args.extend_from_slice(&["base:1", "sleep", "1000"]);
        let id = user.ok_running(&args);
        let id = id.trim();
        let pid = user.ok_running(&["inspect", "-f", "{{.State.Pid}}", id]);
        let status = fs::read_to_string(format!("/proc/{}/status", pid.trim())).unwrap();
        let ids = |k: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(k))
                .unwrap()
                .split_whitespace()
                .map(|v| v.parse::<u32>().unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(ids("Uid:"), vec![uid; 4], "{opts:?}: {status}");
        assert_eq!(ids("Gid:"), vec![uid; 4], "{opts:?}: {status}");
        user.ok(&["rm", "-f", id]);
    }
}

/// `system migrate` stops running containers and ends the pause process: until then the
/// user namespace keeps the ID map it was made with, the next command after it makes a new
/// one from `/etc/subuid` as it is now.
#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn system_migrate_ends_the_pause_process_and_the_next_command_reads_the_new_ranges() {
    if !can_run() {
        return;
    }
    let user = User::create("m", false);
    user.ok(&["images", "-q"]);
    let first = user.pause_pid().expect("a pause process");
    let single = vec![(0, user.uid, 1)];
    assert_eq!(
        strata_maps(&fs::read_to_string(format!("/proc/{first}/uid_map")).unwrap()),
        single
    );
    let (start, count) = (1_000_000 + (std::process::id() % 20_000) * 65_536, 65_536);
    {
        let _lock = users_lock();
        edit_subids(&user.name, Some(&format!("{}:{start}:{count}", user.name)));
    }
    user.ok(&["images", "-q"]);
    assert_eq!(user.pause_pid(), Some(first), "the namespace is kept");

    let bb = user.give("base.tar", &busybox_tar());
    user.ok(&["import", bb.to_str().unwrap(), "base:1"]);
    // A container that ends on SIGTERM (sleep as PID 1 would wait for stop's timeout).
    let id = user.ok_running(&[
        "run",
        "-d",
        "--network",
        "none",
        "base:1",
        "sh",
        "-c",
        "trap 'exit 0' TERM; sleep 1000 & wait",
    ]);
    let out = user.output(&["system", "migrate"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!("pause process {first}")),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !Path::new(&format!("/proc/{first}")).exists() || {
            let s = fs::read_to_string(format!("/proc/{first}/status")).unwrap_or_default();
            s.contains("State:\tZ")
        }
    );
    user.assert_only_pause_left("system migrate");
    assert_eq!(user.pause_pid(), None);

    user.ok(&["images", "-q"]);
    let second = user.pause_pid().expect("a new pause process");
    assert_ne!(second, first);
    assert_eq!(
        strata_maps(&fs::read_to_string(format!("/proc/{second}/uid_map")).unwrap()),
        vec![(0, user.uid, 1), (1, start, count)]
    );
    // The container was stopped, not lost.
    let state = user.ok(&["inspect", "-f", "{{.State.Status}}", id.trim()]);
    assert_eq!(state.trim(), "exited");
    // Migrating again with nothing to stop is fine too.
    user.ok(&["system", "migrate"]);
}

/// The automatic fallback: inside an unprivileged container whose root filesystem is itself
/// an overlay, the kernel refuses an overlay with its upper directory there, so rootless
/// strata says so once (for the store) and mounts its snapshots with fuse-overlayfs (given `/dev/fuse` and the
/// program); the build and the run work, `info` names the driver, and nothing stays mounted.
#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn strata_falls_back_to_fuse_overlayfs_where_the_kernel_refuses_overlayfs() {
    if !can_run() || !require_tool("fuse-overlayfs") {
        return;
    }
    fuse_device_usable();
    let s = Strata::new();
    let bb = busybox_tar();
    s.ok(&["import", bb.to_str().unwrap(), "base:1"]);
    let work = tempfile::tempdir().unwrap();
    let ctx = work.path().join("ctx");
    fs::create_dir(&ctx).unwrap();
    fs::write(
        ctx.join("Dockerfile"),
        "FROM base:1\nRUN rm -rf /root && mkdir /root && echo fused > /root/x\n",
    )
    .unwrap();
    fs::set_permissions(work.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let strata = env!("CARGO_BIN_EXE_strata");
    let script = "mkdir -p /tmp/run /tmp/store && strata import /base.tar base:1 >/dev/null \
        && strata build -q --network none -t inside:1 /ctx >/dev/null \
        && strata run --rm --network none inside:1 sh -c 'ls /root; cat /root/x' \
        && strata info --format '{{.Driver}}' \
        && grep -c fuse.fuse-overlayfs /proc/$(cut -d' ' -f1 /tmp/run/strata/pause.pid)/mountinfo; \
        ps -o comm | grep -c fuse-overlayfs";
    let mut args: Vec<String> = [
        "run",
        "--rm",
        "--network",
        "none",
        "--user",
        "1000:1000",
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges",
        "--security-opt",
        "seccomp=unconfined",
        "--security-opt",
        "systempaths=unconfined",
        "--device",
        "/dev/fuse",
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    for b in [
        format!("{strata}:/usr/local/bin/strata:ro"),
        "/usr/bin/fuse-overlayfs:/usr/bin/fuse-overlayfs:ro".into(),
        "/lib:/lib:ro".into(),
        "/lib64:/lib64:ro".into(),
        "/usr/lib:/usr/lib:ro".into(),
        format!("{}:/base.tar:ro", bb.display()),
        format!("{}:/ctx:ro", ctx.display()),
    ] {
        args.extend(["-v".into(), b]);
    }
    for e in [
        "HOME=/tmp",
        "XDG_DATA_HOME=/tmp/store",
        "XDG_RUNTIME_DIR=/tmp/run",
        "PATH=/usr/local/bin:/usr/bin:/bin",
    ] {
        args.extend(["-e".into(), e.into()]);
    }
    args.extend(["base:1".into(), "sh".into(), "-c".into(), script.into()]);
    let out = s.cmd().args(&args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "x\nfused\nfuse-overlayfs\n0\n0\n",
        "stderr: {stderr}"
    );
    // Said by the first command, which chose it for the store; the others trust the choice.
    assert_eq!(
        stderr
            .matches("overlayfs cannot be mounted in this user namespace")
            .count(),
        1,
        "{stderr}"
    );
    assert!(stderr.contains("; using fuse-overlayfs\n"), "{stderr}");
}
