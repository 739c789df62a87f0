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
        let mut c = Command::new("runuser");
        c.args(["-u", &self.name, "--", "env", "-i"])
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
        let out = self.output(args);
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

/// `/dev/net/tun` at `mode` until dropped, then back as it was.
struct TunMode(u32);

impl TunMode {
    fn set(mode: u32) -> TunMode {
        let old = fs::metadata("/dev/net/tun").unwrap().mode() & 0o7777;
        fs::set_permissions("/dev/net/tun", fs::Permissions::from_mode(mode)).unwrap();
        TunMode(old)
    }
}

impl Drop for TunMode {
    fn drop(&mut self) {
        let _ = fs::set_permissions("/dev/net/tun", fs::Permissions::from_mode(self.0));
    }
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
