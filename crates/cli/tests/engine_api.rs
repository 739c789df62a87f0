//! `strata system service`: the real docker CLI (the first `docker` on PATH: CLI 28 on this
//! machine, or Debian's 20.10 client) drives strata through the Engine API socket: version
//! negotiation, images, the container lifecycle with logs, attach and exit codes, errors.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn the_docker_cli_drives_strata_through_the_engine_api() {
    if !require_root() || !require_tool("docker") {
        return;
    }
    let s = Strata::new();
    s.ok(&["import", busybox_tar().to_str().unwrap(), "busybox"]);
    let api = Service::start(s.root.path());

    // The client negotiates down to 1.41.
    let v = api.ok(&[
        "version",
        "--format",
        "{{.Server.APIVersion}} {{.Client.APIVersion}}",
    ]);
    assert_eq!(v.trim(), "1.41 1.41", "{v}");
    let info = api.ok(&["info", "--format", "{{.Driver}} {{.Images}}"]);
    assert!(info.trim().ends_with(" 1"), "{info}");

    // Images: the list, inspect, history, tag and rmi are the store's.
    let images = api.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert_eq!(images.trim(), "busybox:latest");
    let id = s.ok(&["images", "-q", "--no-trunc", "busybox"]);
    let inspected = api.ok(&["image", "inspect", "-f", "{{.Id}}", "busybox"]);
    assert_eq!(inspected.trim(), id.trim());
    api.ok(&["tag", "busybox", "example/box:1"]);
    assert!(s.ok(&["images"]).contains("example/box"));
    let rmi = api.ok(&["rmi", "example/box:1"]);
    assert!(rmi.contains("Untagged: example/box:1"), "{rmi}");
    assert!(!api.ok(&["history", "busybox"]).is_empty());

    // save and load through the API: the archive round-trips into another store.
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("busybox.tar");
    api.ok(&["save", "-o", archive.to_str().unwrap(), "busybox"]);
    let other = Strata::new();
    let other_api = Service::start(other.root.path());
    let out = other_api.ok(&["load", "-i", archive.to_str().unwrap()]);
    assert!(out.contains("Loaded image: busybox:latest"), "{out}");
    assert_eq!(other.ok(&["images", "-q", "--no-trunc", "busybox"]), id);
    let out = other_api.docker(&["load", "-i", "/dev/null"], None);
    assert!(!out.status.success());

    // A foreground run: output through attach, the exit code through wait, removed.
    let out = api.docker(
        &[
            "run",
            "--rm",
            "busybox",
            "sh",
            "-c",
            "echo out; echo err >&2; exit 3",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "out\n");
    assert_eq!(text(&out.stderr), "err\n");
    assert_eq!(s.ok(&["ps", "-aq"]).trim(), "", "--rm removed it");

    // `-i`: stdin goes in through the attach, and its end ends the container's (StdinOnce).
    let out = api.docker(&["run", "-i", "--rm", "busybox", "cat"], Some("piped\n"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "piped\n");

    // Detached: ps, logs (both streams), wait, stop, rm, as the CLI sees them too.
    let cid = api.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--expose",
        "90",
        "busybox",
        "sh",
        "-c",
        "echo hello; echo oops >&2; sleep 30",
    ]);
    let cid = cid.trim();
    assert_eq!(cid.len(), 64, "{cid}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let logs = api.docker(&["logs", "web"], None);
        if text(&logs.stdout) == "hello\n" && text(&logs.stderr) == "oops\n" {
            break;
        }
        assert!(Instant::now() < deadline, "logs: {logs:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(api.ok(&["ps"]).contains("web"));
    // The list's ports and networks, as `docker ps` shows them.
    assert_eq!(
        api.ok(&["ps", "--format", "{{.Names}}|{{.Ports}}|{{.Networks}}"]),
        "web|90/tcp|bridge\n"
    );
    assert!(
        s.ok(&["ps"]).contains("web"),
        "the CLI sees the same container"
    );
    let state = api.ok(&["inspect", "-f", "{{.State.Status}} {{.Name}}", "web"]);
    assert_eq!(state.trim(), "running /web");
    // exec: both streams, the exit code, stdin with -i.
    let out = api.docker(
        &["exec", "web", "sh", "-c", "echo in; echo e >&2; exit 4"],
        None,
    );
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "in\n");
    assert_eq!(text(&out.stderr), "e\n");
    let out = api.docker(&["exec", "-i", "web", "cat"], Some("through exec\n"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "through exec\n");
    // docker cp both ways through the archive endpoints.
    let dir = tempfile::tempdir().unwrap();
    let host_file = dir.path().join("note.txt");
    std::fs::write(&host_file, "copied in\n").unwrap();
    api.ok(&["cp", host_file.to_str().unwrap(), "web:/tmp/"]);
    let out = api.docker(&["exec", "web", "cat", "/tmp/note.txt"], None);
    assert_eq!(text(&out.stdout), "copied in\n");
    let back = dir.path().join("back");
    api.ok(&["cp", "web:/etc/passwd", back.to_str().unwrap()]);
    assert!(std::fs::read_to_string(&back).unwrap().starts_with("root:"));
    let out = api.docker(&["cp", "web:/nosuch", dir.path().to_str().unwrap()], None);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("Could not find the file /nosuch"),
        "{}",
        text(&out.stderr)
    );
    let out = api.docker(&["exec", "nosuch", "true"], None);
    assert!(
        text(&out.stderr).contains("No such container: nosuch"),
        "{}",
        text(&out.stderr)
    );
    api.ok(&["stop", "-t", "1", "web"]);
    let code = api.ok(&["wait", "web"]);
    assert_eq!(code.trim(), "137");
    api.ok(&["rm", "web"]);
    assert!(!s.ok(&["ps", "-a"]).contains("web"));

    // build through /build (the classic builder's JSON stream), then commit, diff and top.
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM busybox\nRUN echo built > /b\nCOPY a /a\n",
    )
    .unwrap();
    std::fs::write(ctx.path().join("a"), "a\n").unwrap();
    let mut c = Command::new("docker");
    c.env("DOCKER_HOST", format!("unix://{}", api.socket.display()))
        .env("DOCKER_CONFIG", api.config.path())
        .env("DOCKER_BUILDKIT", "0")
        .args(["build", "--network", "none", "-t", "built:1"])
        .arg(ctx.path());
    let out = c.output().unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("Step 2/3 : RUN echo built > /b\n"),
        "{stdout}"
    );
    assert!(stdout.contains("Successfully tagged built:1\n"), "{stdout}");
    let built = api.ok(&["images", "-q", "built:1"]);
    assert!(
        stdout.contains(&format!("Successfully built {}\n", built.trim())),
        "{built}: {stdout}"
    );
    // The RUN steps' settings (`--add-host`, `--shm-size`, `-m`), as the classic builder
    // gives its RUN containers.
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM busybox\nRUN tail -1 /etc/hosts && df -k /dev/shm | tail -1 && cat /sys/fs/cgroup/memory/memory.limit_in_bytes\n",
    )
    .unwrap();
    let out = api
        .docker_command()
        .args([
            "build",
            "--no-cache",
            "--network",
            "none",
            "--add-host",
            "a:1.2.3.4",
            "--shm-size",
            "128m",
            "-m",
            "64m",
        ])
        .arg(ctx.path())
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("1.2.3.4\ta\n"), "{stdout}");
    assert!(stdout.contains(" 131072 "), "{stdout}");
    assert!(stdout.contains("67108864\n"), "{stdout}");
    std::fs::write(ctx.path().join("Dockerfile"), "FROM busybox\nRUN exit 3\n").unwrap();
    c = Command::new("docker");
    c.env("DOCKER_HOST", format!("unix://{}", api.socket.display()))
        .env("DOCKER_CONFIG", api.config.path())
        .env("DOCKER_BUILDKIT", "0")
        .args(["build", "--network", "none"])
        .arg(ctx.path());
    let out = c.output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("The command '/bin/sh -c exit 3' returned a non-zero code: 3")
    );
    api.ok(&[
        "run",
        "-d",
        "--name",
        "t1",
        "built:1",
        "sh",
        "-c",
        "echo x > /tmp/n; sleep 30",
    ]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !api.ok(&["diff", "t1"]).contains("A /tmp/n") {
        assert!(Instant::now() < deadline, "diff never showed /tmp/n");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(api.ok(&["top", "t1"]).contains("sleep 30"));
    // `update` (`/containers/ID/update`): the limits reach its record.
    api.ok(&["update", "--memory", "64m", "--memory-swap", "128m", "t1"]);
    assert_eq!(
        api.ok(&[
            "inspect",
            "-f",
            "{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}}",
            "t1"
        ])
        .trim(),
        "67108864 134217728"
    );
    api.ok(&[
        "commit",
        "-c",
        "CMD [\"cat\", \"/tmp/n\"]",
        "t1",
        "committed:1",
    ]);
    assert_eq!(api.ok(&["run", "--rm", "committed:1"]), "x\n");
    api.ok(&["rm", "-f", "t1"]);

    // create + start + wait + logs of a container made by the CLI's peer.
    api.ok(&["create", "--name", "c1", "busybox", "echo", "hi"]);
    api.ok(&["start", "c1"]);
    assert_eq!(api.ok(&["wait", "c1"]).trim(), "0");
    assert_eq!(api.ok(&["logs", "c1"]), "hi\n");
    api.ok(&["rm", "c1"]);

    // Docker's errors.
    let out = api.docker(&["inspect", "nosuch"], None);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("No such object: nosuch"),
        "{}",
        text(&out.stderr)
    );
    let out = api.docker(&["rm", "nosuch"], None);
    assert!(
        text(&out.stderr).contains("No such container: nosuch"),
        "{}",
        text(&out.stderr)
    );
    let out = api.docker(&["run", "--rm", "127.0.0.1:9/missing:1"], None);
    assert!(!out.status.success());

    // `--add-host` reaches the container's /etc/hosts.
    let out = api.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--add-host",
        "a:1.2.3.4",
        "busybox",
        "tail",
        "-1",
        "/etc/hosts",
    ]);
    assert_eq!(out, "1.2.3.4\ta\n");
    // A setting strata does not have is refused by name, never dropped.
    let out = api.docker(
        &[
            "run",
            "--rm",
            "--sysctl",
            "net.ipv4.ip_forward=1",
            "busybox",
            "true",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(125));
    assert!(
        text(&out.stderr).contains("does not support the container setting HostConfig.Sysctls"),
        "{}",
        text(&out.stderr)
    );

    // `builder prune` (`/build/prune`) and `system prune`, which calls it after the others.
    let out = api.ok(&["builder", "prune", "-f"]);
    assert!(out.contains("Total reclaimed space:"), "{out}");
    let out = api.ok(&["system", "prune", "-f"]);
    assert!(out.contains("Total reclaimed space:"), "{out}");
    assert!(s.ok(&["images"]).contains("built"), "tagged images stay");
}

/// `--time`: the service exits once idle; a second service on a live socket is refused.
#[test]
fn the_service_exits_when_idle_and_keeps_its_socket() {
    if !require_root() {
        return;
    }
    let s = Strata::new();
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("api.sock");
    let uri = format!("unix://{}", socket.display());
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("strata"))
        .env("STRATA_ROOT", s.root.path())
        .args(["system", "service", "--time", "1", &uri])
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !socket.exists() {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(20));
    }
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o660);
    let (code, err) = s.fails(&["system", "service", "--time", "1", &uri]);
    assert_ne!(code, 0);
    assert!(err.contains("in use"), "{err}");
    let (code, err) = s.fails(&["system", "service", "tcp://0.0.0.0:2375"]);
    assert_eq!(code, 125);
    assert!(err.contains("loopback"), "{err}");
    // Idle for a second: it exits and removes its socket.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            assert!(st.success());
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the service did not exit when idle"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!socket.exists());
}

/// `docker pull` and `docker run` of an image the store lacks pull through the API from a
/// loopback registry; an unknown image is Docker's error.
#[test]
fn the_docker_cli_pulls_through_the_engine_api() {
    if !require_root() || !require_tool("docker") || !require_tool("/usr/bin/docker-registry") {
        return;
    }
    let reg = Registry::start(None);
    let s = Strata::new();
    s.ok(&["import", busybox_tar().to_str().unwrap(), "busybox"]);
    let reference = format!("{}/box:1", reg.host());
    s.ok(&["tag", "busybox", &reference]);
    s.ok(&["push", &reference]);
    s.ok(&["rmi", &reference]);
    let api = Service::start(s.root.path());

    let out = api.ok(&["pull", &reference]);
    assert!(out.contains("1: Pulling from box\n"), "{out}");
    assert!(out.contains("Digest: sha256:"), "{out}");
    assert!(
        out.contains("Status: ") && out.ends_with(&format!("{reference}\n")),
        "{out}"
    );
    assert!(s.ok(&["images"]).contains(&format!("{}/box", reg.host())));

    // `run` of a missing image: the CLI sees 404, pulls, and creates again.
    s.ok(&["rmi", &reference]);
    let out = api.docker(&["run", "--rm", &reference, "echo", "pulled"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).lines().last(), Some("pulled"));
    assert!(
        text(&out.stderr).contains("Unable to find image"),
        "{}",
        text(&out.stderr)
    );

    let out = api.docker(&["pull", &format!("{}/nosuch:1", reg.host())], None);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("Error response from daemon"),
        "{}",
        text(&out.stderr)
    );
}

/// `docker login` checks the credentials through `/auth`; `docker push` sends them in
/// `X-Registry-Auth` (the store has none of its own), with Docker's progress and errors.
#[test]
fn the_docker_cli_logs_in_and_pushes_through_the_engine_api() {
    if !require_root() || !require_tool("docker") || !require_tool("/usr/bin/docker-registry") {
        return;
    }
    let reg = Registry::start(Some(("pusher", "s3cret")));
    let s = Strata::new();
    s.ok(&["import", busybox_tar().to_str().unwrap(), "busybox"]);
    let reference = format!("{}/team/box:1", reg.host());
    s.ok(&["tag", "busybox", &reference]);
    let api = Service::start(s.root.path());

    // Without credentials the registry refuses the push, in the stream.
    let out = api.docker(&["push", &reference], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).starts_with(&format!(
            "The push refers to repository [{}/team/box]\n",
            reg.host()
        )),
        "{}",
        text(&out.stdout)
    );
    assert!(
        text(&out.stderr).contains("unauthorized"),
        "{}",
        text(&out.stderr)
    );

    let bad = api.docker(
        &["login", "-u", "pusher", "--password-stdin", &reg.host()],
        Some("wrong\n"),
    );
    assert!(!bad.status.success());
    assert!(
        text(&bad.stderr).contains("Error response from daemon: login attempt to"),
        "{}",
        text(&bad.stderr)
    );
    let good = api.docker(
        &["login", "-u", "pusher", "--password-stdin", &reg.host()],
        Some("s3cret\n"),
    );
    assert!(good.status.success(), "{}", text(&good.stderr));
    assert!(text(&good.stdout).contains("Login Succeeded"));

    let out = api.ok(&["push", &reference]);
    let digest = s.ok(&["inspect", "-f", "{{index .RepoDigests 0}}", &reference]);
    let digest = digest.trim().rsplit('@').next().unwrap().to_string();
    let layer = out
        .lines()
        .find_map(|l| l.strip_suffix(": Preparing"))
        .unwrap_or_else(|| panic!("{out}"))
        .to_string();
    let size = out
        .lines()
        .last()
        .unwrap()
        .rsplit(' ')
        .next()
        .unwrap()
        .to_string();
    assert_eq!(
        out,
        format!(
            "The push refers to repository [{h}/team/box]\n{layer}: Preparing\n{layer}: Pushed\n1: digest: {digest} size: {size}\n",
            h = reg.host()
        )
    );
    // Again: nothing goes up; `-a` pushes every tag of the repository.
    s.ok(&["tag", "busybox", &format!("{}/team/box:2", reg.host())]);
    let out = api.ok(&["push", "-a", &format!("{}/team/box", reg.host())]);
    assert!(
        out.contains(&format!(
            "{layer}: Layer already exists\n1: digest: {digest}"
        )),
        "{out}"
    );
    assert!(out.contains(&format!("2: digest: {digest}")), "{out}");
    // Another store pulls it with the same credentials through its own service.
    let other = Strata::new();
    let other_api = Service::start(other.root.path());
    let out = other_api.docker(
        &["login", "-u", "pusher", "--password-stdin", &reg.host()],
        Some("s3cret\n"),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    other_api.ok(&["pull", &reference]);
    assert_eq!(
        other.ok(&["images", "-q", "--no-trunc", &reference]),
        s.ok(&["images", "-q", "--no-trunc", &reference])
    );

    // Docker's errors for what is not there locally.
    let out = api.docker(&["push", &format!("{}/team/box:9", reg.host())], None);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr).trim(),
        format!("tag does not exist: {}/team/box:9", reg.host())
    );
    let out = api.docker(&["push", &format!("{}/team/none", reg.host())], None);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr).trim(),
        format!(
            "An image does not exist locally with the tag: {}/team/none",
            reg.host()
        )
    );
}

/// Runs `command` under `script`, which gives it a terminal of `rows` x `cols`; returns
/// what the terminal showed and the exit code.
fn on_a_terminal(rows: u16, cols: u16, command: &str, env: &[(&str, &str)]) -> (String, i32) {
    let mut c = Command::new("timeout");
    c.args(["30", "script", "-qec"])
        .arg(format!("stty rows {rows} cols {cols}; {command}"))
        .arg("/dev/null")
        .stdin(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    // `script` sends a NUL into the terminal when its own input ends, which a terminal in
    // raw mode echoes as `^@` (so it does with Docker's daemon): not the container's output.
    (
        text(&out.stdout).replace("^@", ""),
        out.status.code().unwrap_or(-1),
    )
}

/// `docker exec -it` and `docker run -it` through the API: the process gets a terminal,
/// sized as the client's by `/exec/ID/resize` and `/containers/ID/resize`, its output raw
/// and its exit code the client's; `strata exec -it` sizes it as its own terminal too and
/// puts that in raw mode while it runs.
#[test]
fn exec_and_run_with_a_terminal_take_the_clients_size() {
    if !require_root() || !require_tool("docker") || !require_tool("script") {
        return;
    }
    let s = Strata::new();
    s.ok(&["import", busybox_tar().to_str().unwrap(), "busybox"]);
    let api = Service::start(s.root.path());
    api.ok(&["run", "-d", "--name", "term", "busybox", "sleep", "60"]);
    let host = format!("unix://{}", api.socket.display());
    let config = api.config.path().display().to_string();
    let env = [
        ("DOCKER_HOST", host.as_str()),
        ("DOCKER_CONFIG", config.as_str()),
    ];
    // The client sizes the terminal just after the start (API 1.41 has no size at create),
    // so the process waits a little before it looks.
    let (out, code) = on_a_terminal(
        33,
        97,
        "docker exec -it term sh -c 'tty; sleep 1; stty size; exit 5'",
        &env,
    );
    assert_eq!(code, 5, "{out}");
    assert!(out.contains("/dev/pts/"), "{out}");
    assert!(out.contains("33 97\r\n"), "{out}");
    let (out, code) = on_a_terminal(
        21,
        61,
        "docker run --rm -it busybox sh -c 'sleep 1; stty size'",
        &env,
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("21 61\r\n"), "{out}");
    // Without a terminal the exec's output stays multiplexed plain output.
    assert_eq!(
        api.ok(&["exec", "term", "sh", "-c", "[ -t 1 ] || echo plain"]),
        "plain\n"
    );

    let strata = assert_cmd::cargo::cargo_bin("strata");
    let root = s.root.path().display().to_string();
    let (out, code) = on_a_terminal(
        44,
        55,
        &format!("{} exec -it term stty size", strata.display()),
        &[("STRATA_ROOT", root.as_str())],
    );
    assert_eq!(code, 0, "{out}");
    // Raw while it runs (one \r\n: the container's terminal's), as Docker's client.
    assert_eq!(out, "44 55\r\n");
    // Without -i the client's terminal stays as it is and adds its own \r (Docker's too).
    let (out, _) = on_a_terminal(
        44,
        55,
        &format!("{} exec -t term echo x", strata.display()),
        &[("STRATA_ROOT", root.as_str())],
    );
    assert_eq!(out, "x\r\r\n");
    api.ok(&["rm", "-f", "term"]);
}

/// 100 requests at once from one client, `/containers/json` and `/images/json` alternately,
/// while the CLI works on the same store: every answer is a 200 with the full list.
#[test]
fn the_service_answers_a_hundred_requests_at_once() {
    if !require_root() {
        return;
    }
    let s = Strata::new();
    s.ok(&["import", busybox_tar().to_str().unwrap(), "busybox"]);
    for i in 0..3 {
        s.ok(&["create", "--name", &format!("c{i}"), "busybox", "true"]);
    }
    let api = Service::start(s.root.path());
    let socket = api.socket.clone();
    let threads: Vec<_> = (0..100)
        .map(|i| {
            let socket = socket.clone();
            std::thread::spawn(move || {
                let path = if i % 2 == 0 {
                    "/v1.41/containers/json?all=1"
                } else {
                    "/v1.41/images/json"
                };
                let (status, body) = common::service::http(&socket, "GET", path, None);
                (i, status, body)
            })
        })
        .collect();
    // The CLI on the same store meanwhile.
    s.ok(&["tag", "busybox", "other:1"]);
    for t in threads {
        let (i, status, body) = t.join().unwrap();
        assert_eq!(status, 200, "request {i}: {body}");
        let v: serde_json::Value =
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("request {i}: {e}: {body}"));
        let n = v.as_array().map(|a| a.len()).unwrap_or(0);
        if i % 2 == 0 {
            assert_eq!(n, 3, "request {i}: {body}");
        } else {
            assert_eq!(n, 1, "request {i}: {body}");
        }
    }
}

/// A docker client killed in the middle of a RUN step: the step's processes are killed,
/// nothing of the build is kept (no image, no cache entry, no container, nothing mounted),
/// and the same build then runs to its end.
#[test]
fn a_client_killed_mid_build_leaves_the_store_as_it_was() {
    if !require_root() || !require_tool("docker") {
        return;
    }
    use std::io::BufRead;
    let s = Strata::new();
    s.ok(&["import", busybox_tar().to_str().unwrap(), "busybox"]);
    let api = Service::start(s.root.path());
    let before = s.ok(&["images", "-a", "-q", "--no-trunc"]);
    let entries_before = s.stored_entries();
    let ctx = tempfile::tempdir().unwrap();
    let marker = format!("strata-kill-{}", std::process::id());
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!("FROM busybox\nRUN echo started > /f && echo started && exec sleep 300 {marker}\nRUN true\n"),
    )
    .unwrap();
    let mut client = Command::new("docker")
        .env("DOCKER_HOST", format!("unix://{}", api.socket.display()))
        .env("DOCKER_CONFIG", api.config.path())
        .env("DOCKER_BUILDKIT", "0")
        .args(["build", "--network", "none", "-t", "killed:1"])
        .arg(ctx.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(client.stdout.take().unwrap()).lines();
    let mut seen = String::new();
    loop {
        let line = lines
            .next()
            .expect("the build ended before its RUN step")
            .unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if line == "started" {
            break;
        }
    }
    client.kill().unwrap();
    client.wait().unwrap();
    // The step's process goes (it would sleep 300 s otherwise).
    let deadline = Instant::now() + Duration::from_secs(20);
    while run("pgrep", &["-f", &marker]).status.success() {
        assert!(
            Instant::now() < deadline,
            "the RUN step outlived its client: {seen}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The build ends soon after its step: the store is as before, nothing stays mounted.
    let root = s.root.path().display().to_string();
    let mounted = || {
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .filter(|l| l.contains(&root))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while s.stored_entries() != entries_before || !mounted().is_empty() {
        assert!(
            Instant::now() < deadline,
            "store changed: {:?} -> {:?}, mounted: {:?}",
            entries_before,
            s.stored_entries(),
            mounted()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(s.ok(&["images", "-a", "-q", "--no-trunc"]), before);
    assert_eq!(s.ok(&["ps", "-aq"]), "");
    // The same build, not interrupted, completes (nothing half-done in its way).
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM busybox\nRUN echo started > /f\nRUN true\n",
    )
    .unwrap();
    let out = Command::new("docker")
        .env("DOCKER_HOST", format!("unix://{}", api.socket.display()))
        .env("DOCKER_CONFIG", api.config.path())
        .env("DOCKER_BUILDKIT", "0")
        .args(["build", "--network", "none", "-t", "killed:1"])
        .arg(ctx.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(s.ok(&["run", "--rm", "killed:1", "cat", "/f"]), "started\n");
}
