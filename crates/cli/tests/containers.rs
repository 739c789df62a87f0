//! End-to-end container commands as root on real overlay mounts and namespaces: run with
//! Docker's exit codes, --rm leaving nothing behind, shared layers, commit, diff, rmi
//! refusing a used image, ps columns, detached runs, and cleanup after a killed strata.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;

/// A store with busybox imported as `busybox`.
fn with_busybox() -> Option<Strata> {
    if !require_root() {
        return None;
    }
    let s = Strata::new();
    s.ok(&["import", busybox_tar().to_str().unwrap(), "busybox"]);
    Some(s)
}

fn mounts_under(root: &Path) -> Vec<String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let r = root.to_string_lossy().to_string();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|mp| mp.starts_with(&r))
        .map(String::from)
        .collect()
}

fn snapshot_count(s: &Strata) -> usize {
    let d = s.root.path().join("snapshots/snapshots");
    std::fs::read_dir(d).map(|r| r.count()).unwrap_or(0)
}

fn code(s: &Strata, args: &[&str]) -> (i32, String, String) {
    let out = s.cmd().args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn run_prints_output_and_returns_docker_exit_codes() {
    let Some(s) = with_busybox() else { return };
    assert_eq!(
        s.ok(&["run", "--rm", "busybox", "echo", "hello"]),
        "hello\n"
    );
    let (c, _, _) = code(&s, &["run", "--rm", "busybox", "sh", "-c", "exit 3"]);
    assert_eq!(c, 3);
    let (c, _, err) = code(&s, &["run", "--rm", "busybox", "nosuchcommand"]);
    assert_eq!(c, 127);
    assert!(err.contains("executable file not found in $PATH"), "{err}");
    let (c, _, err) = code(&s, &["run", "--rm", "busybox", "/etc"]);
    assert_eq!(c, 126);
    assert!(err.contains("permission denied"), "{err}");
    let (c, _, err) = code(&s, &["run", "--rm", "--pull", "never", "nosuchimage"]);
    assert_eq!(c, 125);
    assert!(err.contains("No such image"), "{err}");
    // A missing image is pulled first; nothing listens on this port, so the pull fails.
    let (c, _, err) = code(&s, &["run", "--rm", "127.0.0.1:9/missing:1"]);
    assert_eq!(c, 125);
    assert!(
        err.contains("Unable to find image '127.0.0.1:9/missing:1' locally"),
        "{err}"
    );
    assert!(err.contains("127.0.0.1:9"), "{err}");
    // -e, -w, -u and -h reach the process.
    let out = s.ok(&[
        "run",
        "--rm",
        "-e",
        "A=1",
        "-w",
        "/made/here",
        "-u",
        "1:2",
        "-h",
        "box",
        "busybox",
        "sh",
        "-c",
        "echo $A $(pwd) $(id -u):$(id -g) $(hostname)",
    ]);
    assert_eq!(out, "1 /made/here 1:2 box\n");
    // Nothing is left of the --rm containers.
    assert!(s.ok(&["ps", "-a", "-q"]).is_empty());
    assert!(mounts_under(s.root.path()).is_empty());
    assert_eq!(snapshot_count(&s), 0);
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn rm_leaves_no_mount_snapshot_or_record() {
    let Some(s) = with_busybox() else { return };
    s.ok(&["run", "--name", "one", "busybox", "touch", "/x"]);
    assert_eq!(snapshot_count(&s), 1);
    let ps = s.ok(&["ps", "-a", "--format", "{{.Names}} {{.Status}}"]);
    assert!(ps.starts_with("one Exited (0)"), "{ps}");
    // A second container with the same name is refused (`create` exits 1, as Docker's).
    let (c, _, err) = code(&s, &["create", "--name", "one", "busybox", "true"]);
    assert_eq!(c, 1);
    assert!(err.contains("is already in use"), "{err}");
    let st = s.ok(&[
        "inspect", "-f",
        "{{.State.Status}} {{.State.ExitCode}} {{.State.Running}} {{.Name}} {{.Path}} {{json .Args}} {{.HostConfig.NetworkMode}}",
        "one",
    ]);
    assert_eq!(st, "exited 0 false /one touch [\"/x\"] default\n");
    let json = s.ok(&["container", "inspect", "-s", "one"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let keys: Vec<&str> = v[0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for k in [
        "Id",
        "Created",
        "Path",
        "Args",
        "State",
        "Image",
        "Name",
        "HostConfig",
        "GraphDriver",
        "Mounts",
        "Config",
        "SizeRw",
        "SizeRootFs",
    ] {
        assert!(keys.contains(&k), "{k} missing from {keys:?}");
    }
    assert_eq!(v[0]["Config"]["Cmd"], serde_json::json!(["touch", "/x"]));
    assert!(v[0]["SizeRootFs"].as_u64().unwrap() > 1_000_000);
    let (c, _, err) = code(&s, &["image", "inspect", "one"]);
    assert_eq!(c, 1);
    assert!(err.contains("No such image: one"), "{err}");
    assert_eq!(s.ok(&["rm", "one"]), "one\n");
    assert!(s.ok(&["ps", "-a", "-q"]).is_empty());
    assert_eq!(snapshot_count(&s), 0);
    assert!(mounts_under(s.root.path()).is_empty());
    assert!(!s
        .root
        .path()
        .join("containers")
        .read_dir()
        .unwrap()
        .any(|e| e.unwrap().file_name().to_string_lossy().len() == 64));
    let (c, _, err) = code(&s, &["rm", "one"]);
    assert_eq!(c, 1);
    assert!(err.contains("No such container: one"), "{err}");
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn containers_share_image_layers_and_never_see_each_others_writes() {
    let Some(s) = with_busybox() else { return };
    let layers_before = s.stored_entries();
    s.ok(&["run", "--name", "ca", "busybox", "sh", "-c", "echo a > /f"]);
    s.ok(&[
        "run",
        "--name",
        "cb",
        "busybox",
        "sh",
        "-c",
        "test ! -e /f && echo b > /g",
    ]);
    assert_eq!(s.ok(&["start", "-a", "cb"]), "");
    // No layer was copied: the store holds exactly what it held before.
    assert_eq!(s.stored_entries(), layers_before);
    let ia = s.ok(&["inspect", "-f", "{{.GraphDriver.Data.LowerDir}}", "ca"]);
    let ib = s.ok(&["inspect", "-f", "{{.GraphDriver.Data.LowerDir}}", "cb"]);
    assert_eq!(ia, ib);
    assert!(s.ok(&["diff", "ca"]).contains("A /f"));
    assert!(!s.ok(&["diff", "cb"]).contains("/f\n"));
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn diff_shows_added_changed_and_deleted_paths() {
    let Some(s) = with_busybox() else { return };
    s.ok(&[
        "run",
        "--name",
        "dd",
        "busybox",
        "sh",
        "-c",
        "echo hi > /newfile; rm /bin/vi; mkdir -p /d1/deeper; echo x >> /etc/passwd",
    ]);
    let out = s.ok(&["diff", "dd"]);
    let lines: Vec<&str> = out.lines().collect();
    for want in [
        "C /bin",
        "D /bin/vi",
        "C /etc",
        "C /etc/passwd",
        "A /newfile",
        "A /d1",
        "A /d1/deeper",
    ] {
        assert!(lines.contains(&want), "missing {want:?} in {out}");
    }
    // Parents come before their children; the init layer's stubs never show.
    let pos = |l: &str| lines.iter().position(|x| *x == l).unwrap();
    assert!(pos("C /bin") < pos("D /bin/vi"));
    assert!(
        !out.contains(".dockerenv") && !out.contains("/etc/hostname"),
        "{out}"
    );
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn commit_makes_an_image_with_the_change_and_rmi_is_refused_while_used() {
    let Some(s) = with_busybox() else { return };
    s.ok(&[
        "run",
        "--name",
        "c1",
        "busybox",
        "sh",
        "-c",
        "echo committed > /marker; rm /bin/vi",
    ]);
    let id = s.ok(&["commit", "-m", "my message", "-a", "me", "c1", "mine:1"]);
    assert!(id.trim().starts_with("sha256:"), "{id}");
    assert_eq!(
        s.ok(&["run", "--rm", "mine:1", "cat", "/marker"]),
        "committed\n"
    );
    let (c, _, _) = code(&s, &["run", "--rm", "mine:1", "test", "-e", "/bin/vi"]);
    assert_eq!(c, 1, "the whiteout must be in the committed layer");
    let hist = s.ok(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.CreatedBy}}|{{.Comment}}",
        "mine:1",
    ]);
    assert!(
        hist.starts_with("sh -c echo committed > /marker; rm /bin/vi|my message"),
        "{hist}"
    );
    let parent = s.ok(&["inspect", "-f", "{{.Parent}} {{.Author}}", "mine:1"]);
    let bb = s.ok(&["inspect", "-f", "{{.Id}}", "busybox"]);
    assert_eq!(parent.trim(), format!("{} me", bb.trim()));
    // busybox is used by c1: rmi refuses, the store keeps its layers.
    let (c, _, err) = code(&s, &["rmi", "busybox"]);
    assert_eq!(c, 1);
    assert!(
        err.contains("unable to remove repository reference \"busybox\" (must force) - container"),
        "{err}"
    );
    // Forced, the name goes and ps shows the image ID instead.
    s.ok(&["tag", "busybox", "keep:1"]);
    s.ok(&["rmi", "-f", "busybox"]);
    let short = &bb.trim()["sha256:".len()..][..12];
    assert_eq!(s.ok(&["ps", "-a", "--format", "{{.Image}}"]).trim(), short);
    s.ok(&["rm", "c1"]);
    s.ok(&["rmi", "mine:1"]);
    s.ok(&["tag", "keep:1", "busybox"]);
    s.ok(&["rmi", "keep:1"]);
    s.ok(&["rmi", "busybox"]);
    assert!(s.stored_entries().is_empty(), "{:?}", s.stored_entries());
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn ps_prints_docker_columns() {
    let Some(s) = with_busybox() else { return };
    s.ok(&[
        "create",
        "--name",
        "fresh",
        "busybox",
        "echo",
        "a long command line here",
    ]);
    let (c, _, _) = code(
        &s,
        &["run", "--name", "done", "busybox", "sh", "-c", "exit 2"],
    );
    assert_eq!(c, 2);
    assert!(
        s.ok(&["ps"]).lines().count() == 1,
        "only the header: nothing runs"
    );
    let out = s.ok(&["ps", "-a"]);
    let mut lines = out.lines();
    let header = lines.next().unwrap();
    let cols: Vec<&str> = header
        .split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(
        cols,
        [
            "CONTAINER ID",
            "IMAGE",
            "COMMAND",
            "CREATED",
            "STATUS",
            "PORTS",
            "NAMES"
        ]
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 2);
    assert!(
        rows[0].contains("\"sh -c 'exit 2'\"")
            && rows[0].contains("Exited (2)")
            && rows[0].ends_with("done"),
        "{out}"
    );
    assert!(
        rows[1].contains("\"echo 'a long comman…\"")
            && rows[1].contains("Created")
            && rows[1].ends_with("fresh"),
        "{out}"
    );
    let f = s.ok(&["ps", "--filter", "status=exited", "--format", "{{.Names}}"]);
    assert_eq!(f, "done\n");
    let f = s.ok(&[
        "ps",
        "-a",
        "--filter",
        "name=fre",
        "--filter",
        "status=created",
        "--format",
        "{{.Names}}",
    ]);
    assert_eq!(f, "fresh\n");
    assert_eq!(
        s.ok(&["ps", "-a", "-f", "exited=2", "--format", "{{.Names}}"]),
        "done\n"
    );
    assert!(s.ok(&["ps", "-a", "-f", "exited=0", "-q"]).is_empty());
    let id = s.ok(&["ps", "-a", "-q", "--no-trunc", "-n", "1"]);
    assert_eq!(id.trim().len(), 64);
    // `-l` after the command is ps's own --latest (the global -l goes before it).
    assert_eq!(s.ok(&["ps", "-l", "-q", "--no-trunc"]), id);
    assert_eq!(
        s.ok(&["-l", "error", "ps", "--latest", "-q", "--no-trunc"]),
        id
    );
    let sized = s.ok(&["ps", "-a", "-s", "--format", "{{.Size}}"]);
    assert!(
        sized.lines().all(|l| l.starts_with("0B (virtual ")),
        "{sized}"
    );
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn detached_containers_run_log_stop_and_wait() {
    let Some(s) = with_busybox() else { return };
    let id = s.ok(&[
        "run",
        "-d",
        "--name",
        "bg",
        "busybox",
        "sh",
        "-c",
        "echo started; sleep 30",
    ]);
    assert_eq!(id.trim().len(), 64);
    let ps = s.ok(&["ps", "--format", "{{.Names}} {{.Status}}"]);
    assert!(ps.starts_with("bg Up"), "{ps}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while s.ok(&["logs", "bg"]) != "started\n" {
        assert!(Instant::now() < deadline, "no log");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (c, _, err) = code(&s, &["rm", "bg"]);
    assert_eq!(c, 1);
    assert!(
        err.contains("You cannot remove a running container"),
        "{err}"
    );
    assert_eq!(s.ok(&["stop", "-t", "1", "bg"]), "bg\n");
    assert_eq!(s.ok(&["wait", "bg"]), "137\n");
    s.ok(&[
        "run", "-d", "--name", "quick", "busybox", "sh", "-c", "exit 5",
    ]);
    assert_eq!(s.ok(&["wait", "quick"]), "5\n");
    s.ok(&["container", "prune", "-f"]);
    assert!(s.ok(&["ps", "-a", "-q"]).is_empty());
    assert!(mounts_under(s.root.path()).is_empty());
    assert_eq!(snapshot_count(&s), 0);
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn a_killed_strata_run_is_cleaned_up_by_the_next_command() {
    let Some(s) = with_busybox() else { return };
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("strata"))
        .env("STRATA_ROOT", s.root.path())
        .args(["run", "--name", "victim", "busybox", "sleep", "60"])
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !s.ok(&["ps", "--format", "{{.Names}}"]).contains("victim")
        || mounts_under(s.root.path()).is_empty()
    {
        assert!(Instant::now() < deadline, "never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL: no chance to clean up
    child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let st = s.ok(&["ps", "-a", "--format", "{{.Names}} {{.Status}}"]);
        if st.starts_with("victim Exited (137)") {
            break;
        }
        assert!(Instant::now() < deadline, "{st}");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(mounts_under(s.root.path()).is_empty());
    s.ok(&["rm", "victim"]);
    assert_eq!(snapshot_count(&s), 0);

    // With --rm the killed container goes entirely.
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("strata"))
        .env("STRATA_ROOT", s.root.path())
        .args(["run", "--rm", "busybox", "sleep", "60"])
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while s.ok(&["ps", "-q"]).is_empty() {
        assert!(Instant::now() < deadline, "never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert!(s.ok(&["ps", "-a", "-q"]).is_empty());
    assert!(mounts_under(s.root.path()).is_empty());
    assert_eq!(snapshot_count(&s), 0);
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn export_writes_the_merged_filesystem() {
    let Some(s) = with_busybox() else { return };
    s.ok(&[
        "run",
        "--name",
        "ee",
        "busybox",
        "sh",
        "-c",
        "echo hi > /exported; rm /bin/vi",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let tar = dir.path().join("e.tar");
    s.ok(&["export", "-o", tar.to_str().unwrap(), "ee"]);
    let list = run_ok("tar", &["-tf", tar.to_str().unwrap()]);
    let names: Vec<&str> = list.lines().map(|l| l.trim_start_matches("./")).collect();
    assert!(names.contains(&"exported"), "{list}");
    assert!(names.contains(&".dockerenv"), "{list}");
    assert!(names.contains(&"bin/sh"), "{list}");
    assert!(!names.contains(&"bin/vi"), "{list}");
    assert!(!list.contains(".wh."), "{list}");
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn run_flags_reach_the_container_and_limits_leave_no_cgroup() {
    let Some(s) = with_busybox() else { return };
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("in"), "from host\n").unwrap();
    let vol = format!("{}:/mnt:ro", host.path().display());
    let out = s.ok(&[
        "run", "--rm", "-v", &vol, "--network", "none", "--tmpfs", "/scratch", "busybox", "sh",
        "-c", "cat /mnt/in; touch /mnt/x 2>/dev/null || echo ro; ls /sys/class/net; touch /scratch/ok && echo tmpfs",
    ]);
    assert_eq!(out, "from host\nro\nlo\ntmpfs\n");
    let (c, _, _) = code(
        &s,
        &["run", "--rm", "--read-only", "busybox", "touch", "/x"],
    );
    assert_eq!(c, 1);
    let env = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(env.path(), "# comment\nFROM_FILE=yes\n").unwrap();
    let out = s.ok(&[
        "run",
        "--rm",
        "--env-file",
        env.path().to_str().unwrap(),
        "--entrypoint",
        "/bin/sh",
        "busybox",
        "-c",
        "echo $FROM_FILE",
    ]);
    assert_eq!(out, "yes\n");
    // Limits make cgroups named by the container ID; rm leaves none.
    let id = s.ok(&[
        "create",
        "--memory",
        "64m",
        "--pids-limit",
        "50",
        "busybox",
        "sh",
        "-c",
        "cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max",
    ]);
    let id = id.trim();
    assert_eq!(s.ok(&["start", "-a", id]), "50\n");
    s.ok(&["rm", id]);
    for ctl in ["memory", "pids", "unified", ""] {
        let d = Path::new("/sys/fs/cgroup")
            .join(ctl)
            .join("strata")
            .join(id);
        assert!(!d.exists(), "{} left behind", d.display());
    }
    // A missing `-v` host directory is made, as Docker makes it, and nothing is left.
    let host = tempfile::tempdir().unwrap();
    let missing = host.path().join("no/such/dir");
    let vol = format!("{}:/m", missing.display());
    s.ok(&["run", "--rm", "-v", &vol, "busybox", "true"]);
    assert!(missing.is_dir());
    assert!(s.ok(&["ps", "-a", "-q"]).is_empty());
    assert!(mounts_under(s.root.path()).is_empty());
    assert_eq!(snapshot_count(&s), 0);
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn docker_loads_a_committed_image_and_sees_the_writable_layer() {
    let Some(s) = with_busybox() else { return };
    if !docker() {
        return;
    }
    let name = unique("strata-commit-test:");
    s.ok(&[
        "run",
        "--name",
        "tocommit",
        "busybox",
        "sh",
        "-c",
        "echo committed > /marker; rm /bin/vi; mkdir -p /etc/deep && echo z > /etc/deep/f",
    ]);
    s.ok(&["commit", "-m", "msg", "tocommit", &name]);
    let tar = s.root.path().join("commit.tar");
    s.ok(&["save", "-o", tar.to_str().unwrap(), &name]);
    let loaded = run_ok("docker", &["load", "-i", tar.to_str().unwrap()]);
    assert!(
        loaded.contains(&format!("Loaded image: {name}")),
        "{loaded}"
    );
    let said = run_ok(
        "docker",
        &[
            "run",
            "--rm",
            "--network",
            "none",
            &name,
            "sh",
            "-c",
            "cat /marker /etc/deep/f; test -e /bin/vi || echo gone",
        ],
    );
    assert_eq!(said, "committed\nz\ngone\n");
    let comment = run_ok("docker", &["inspect", "-f", "{{.Comment}}", &name]);
    assert_eq!(comment.trim(), "msg");
    run_ok("docker", &["rmi", &name]);
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn diff_matches_docker_for_the_same_changes() {
    let Some(s) = with_busybox() else { return };
    if !docker() {
        return;
    }
    let name = unique("strata-diff-base:");
    let tar = busybox_tar();
    run_ok("docker", &["import", tar.to_str().unwrap(), &name]);
    let script =
        "echo hi > /newfile; rm /bin/vi; mkdir -p /d1/keep/deeper; echo x >> /etc/passwd; \
                  rm -rf /root; mkdir /tmp/t; chmod 700 /tmp; ln -s /x /bin/newlink";
    let cname = unique("strata-diff-");
    run_ok(
        "docker",
        &[
            "run",
            "--network",
            "none",
            "--name",
            &cname,
            &name,
            "sh",
            "-c",
            script,
        ],
    );
    let theirs = run_ok("docker", &["diff", &cname]);
    run_ok("docker", &["rm", &cname]);
    run_ok("docker", &["rmi", &name]);
    s.ok(&["run", "--name", "samediff", "busybox", "sh", "-c", script]);
    let ours = s.ok(&["diff", "samediff"]);
    let sorted = |t: &str| {
        let mut v: Vec<String> = t.lines().map(String::from).collect();
        v.sort();
        v
    };
    assert_eq!(
        sorted(&ours),
        sorted(&theirs),
        "ours:\n{ours}\ntheirs:\n{theirs}"
    );
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn twenty_containers_of_one_image_cost_almost_nothing_on_disk() {
    let Some(s) = with_busybox() else { return };
    let du = |p: &Path| -> u64 {
        let out = run_ok("du", &["-s", "-B1", p.to_str().unwrap()]);
        out.split_whitespace().next().unwrap().parse().unwrap()
    };
    let layers = du(&s.root.path().join("layers"));
    for _ in 0..20 {
        s.ok(&["create", "busybox", "true"]);
    }
    let snaps = du(&s.root.path().join("snapshots"));
    let state = du(&s.root.path().join("containers"));
    assert!(layers > 1_000_000, "busybox is about 2 MB: {layers}");
    assert!(
        snaps + state < layers / 4,
        "20 containers take {snaps} + {state} bytes next to {layers} of layers"
    );
    assert_eq!(s.ok(&["ps", "-a", "-q"]).lines().count(), 20);
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn kill_sends_signals_and_foreground_runs_forward_sigterm() {
    let Some(s) = with_busybox() else { return };
    let trap = "trap 'echo got; exit 7' USR1 TERM; echo ready; while true; do sleep 0.05; done";
    s.ok(&[
        "run", "-d", "--name", "trapper", "busybox", "sh", "-c", trap,
    ]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while s.ok(&["logs", "trapper"]) != "ready\n" {
        assert!(Instant::now() < deadline, "never ready");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(s.ok(&["kill", "-s", "USR1", "trapper"]), "trapper\n");
    assert_eq!(s.ok(&["wait", "trapper"]), "7\n");
    assert_eq!(s.ok(&["logs", "trapper"]), "ready\ngot\n");
    assert_eq!(s.ok(&["logs", "--tail", "1", "trapper"]), "got\n");
    assert_eq!(s.ok(&["logs", "--tail", "0", "trapper"]), "");
    assert_eq!(s.ok(&["logs", "--tail", "5", "trapper"]), "ready\ngot\n");
    let (c, _, err) = code(&s, &["kill", "trapper"]);
    assert_eq!(c, 1);
    assert!(err.contains("is not running"), "{err}");

    // SIGTERM to a foreground `strata run` reaches the container.
    let child = std::process::Command::new(assert_cmd::cargo::cargo_bin("strata"))
        .env("STRATA_ROOT", s.root.path())
        .args(["run", "--rm", "--name", "fg", "busybox", "sh", "-c", trap])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !s.ok(&["ps", "--format", "{{.Names}}"]).contains("fg") {
        assert!(Instant::now() < deadline, "never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(7));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ready\ngot\n");
    assert!(
        s.ok(&["ps", "-a", "-q"]).lines().count() == 1,
        "only trapper is left"
    );
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn exec_rename_and_restart_a_detached_container() {
    let Some(s) = with_busybox() else { return };
    s.ok(&[
        "run", "-d", "--name", "svc", "-e", "A=1", "busybox", "sleep", "60",
    ]);
    assert_eq!(s.ok(&["exec", "svc", "sh", "-c", "echo $A $B"]), "1\n");
    assert_eq!(
        s.ok(&["exec", "-e", "B=2", "svc", "sh", "-c", "echo $A $B"]),
        "1 2\n"
    );
    assert_eq!(
        s.ok(&[
            "exec",
            "-u",
            "nobody",
            "-w",
            "/tmp",
            "svc",
            "sh",
            "-c",
            "id -u; pwd"
        ]),
        "65534\n/tmp\n"
    );
    let (c, _, _) = code(&s, &["exec", "svc", "sh", "-c", "exit 9"]);
    assert_eq!(c, 9);
    let (c, _, err) = code(&s, &["exec", "svc", "nosuch"]);
    assert_eq!(c, 126, "Docker exits 126 for any exec failure: {err}");
    // The exec'd process sees the container's PID namespace: sleep is PID 1.
    assert_eq!(s.ok(&["exec", "svc", "cat", "/proc/1/comm"]), "sleep\n");
    s.ok(&["rename", "svc", "renamed"]);
    assert_eq!(s.ok(&["ps", "--format", "{{.Names}}"]), "renamed\n");
    let first = s.ok(&["inspect", "-f", "{{.State.StartedAt}}", "renamed"]);
    assert_eq!(s.ok(&["restart", "-t", "0", "renamed"]), "renamed\n");
    let second = s.ok(&[
        "inspect",
        "-f",
        "{{.State.StartedAt}} {{.State.Running}}",
        "renamed",
    ]);
    assert!(
        second.ends_with(" true\n") && !second.starts_with(first.trim()),
        "{first} {second}"
    );
    s.ok(&["rm", "-f", "renamed"]);
    let (c, _, err) = code(&s, &["exec", "renamed", "true"]);
    assert_eq!(c, 1);
    assert!(err.contains("No such container: renamed"), "{err}");
    assert!(mounts_under(s.root.path()).is_empty());
    assert_eq!(snapshot_count(&s), 0);
}

/// Logs are Docker's json-file entries: `logs` gives stdout and stderr back on their own
/// streams, `-t` prefixes each line with its RFC 3339 nanosecond time, `--tail`, `--since`
/// and `--until` select; a foreground `run` is logged too, `-d` output is followed with `-f`.
#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn logs_keep_streams_and_times() {
    let Some(s) = with_busybox() else { return };
    let (c, out, err) = code(
        &s,
        &[
            "run",
            "--name",
            "talk",
            "busybox",
            "sh",
            "-c",
            "echo one; echo oops >&2; echo two; printf tail",
        ],
    );
    assert_eq!(c, 0);
    assert_eq!(out, "one\ntwo\ntail");
    assert_eq!(err, "oops\n");
    let (_, out, err) = code(&s, &["logs", "talk"]);
    assert_eq!((out.as_str(), err.as_str()), ("one\ntwo\ntail", "oops\n"));
    let (_, out, _) = code(&s, &["logs", "-t", "talk"]);
    let lines: Vec<&str> = out.split_inclusive('\n').collect();
    assert_eq!(lines.len(), 3, "{out}");
    for l in &lines {
        let (time, rest) = l.split_once(' ').unwrap();
        assert_eq!(time.len(), 30, "{l}");
        assert!(chrono::DateTime::parse_from_rfc3339(time).is_ok(), "{l}");
        assert!(["one\n", "two\n", "tail"].contains(&rest), "{l}");
    }
    let (_, out, err) = code(&s, &["logs", "--tail", "1", "talk"]);
    assert_eq!((out.as_str(), err.as_str()), ("tail", ""));
    let (_, out, err) = code(&s, &["logs", "--since", "2999-01-01T00:00:00Z", "talk"]);
    assert_eq!((out.as_str(), err.as_str()), ("", ""));
    let (_, out, _) = code(
        &s,
        &["logs", "--since", "10m", "--until", "2999-01-01", "talk"],
    );
    assert_eq!(out, "one\ntwo\ntail");
    let (c, _, err) = code(&s, &["logs", "--since", "yesterday", "talk"]);
    assert_eq!(c, 1);
    assert!(err.contains("invalid value for \"since\""), "{err}");

    // A detached container's output, followed to its end.
    s.ok(&[
        "run",
        "-d",
        "--name",
        "ticker",
        "busybox",
        "sh",
        "-c",
        "for i in 1 2 3; do echo tick $i; sleep 0.2; done",
    ]);
    assert_eq!(s.ok(&["logs", "-f", "ticker"]), "tick 1\ntick 2\ntick 3\n");
    // --rm removes the container, so nothing is logged, and output still flows.
    assert_eq!(s.ok(&["run", "--rm", "busybox", "echo", "gone"]), "gone\n");
}

/// `top` lists the container's processes (and no others) from the host's `ps`, with Docker's
/// columns and table, or the columns that ps options ask for; a stopped container is an error.
#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn top_shows_only_the_containers_processes() {
    let Some(s) = with_busybox() else { return };
    s.ok(&[
        "run",
        "-d",
        "--name",
        "busy",
        "busybox",
        "sh",
        "-c",
        "sleep 300 & sleep 301",
    ]);
    // `run -d` returns once the container runs; its shell may not have started both yet.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut out = s.ok(&["top", "busy"]);
    while out.matches("sleep 30").count() < 2 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
        out = s.ok(&["top", "busy"]);
    }
    let mut lines = out.lines();
    let titles: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        titles,
        ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    );
    let cmds: Vec<String> = lines
        .map(|l| l.split_whitespace().skip(7).collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(cmds.len(), 2, "{out}");
    assert!(cmds.contains(&"sleep 300".to_string()), "{out}");
    assert!(cmds.contains(&"sleep 301".to_string()), "{out}");
    // Docker's table: 20-character columns.
    assert!(
        out.starts_with(&format!("{:<20}{:<20}", "UID", "PID")),
        "{out}"
    );
    let out = s.ok(&["container", "top", "busy", "-o", "pid,comm"]);
    assert_eq!(
        out.lines()
            .next()
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["PID", "COMMAND"]
    );
    assert_eq!(
        out.lines().filter(|l| l.ends_with("sleep")).count(),
        2,
        "{out}"
    );
    s.ok(&["stop", "-t", "0", "busy"]);
    let (c, _, err) = code(&s, &["top", "busy"]);
    assert_eq!(c, 1);
    assert!(err.contains("is not running"), "{err}");
}

/// `--mount` with Docker's syntax: a read-only bind and a sized tmpfs with a mode reach the
/// process and `inspect`; a missing bind source, a bad volume name and a missing target are Docker's
/// errors with exit code 125, and leave no container behind.
#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn mount_flags_bind_and_tmpfs() {
    let Some(s) = with_busybox() else { return };
    let src = tempfile::tempdir().unwrap();
    std::fs::write(src.path().join("f"), "from the host\n").unwrap();
    let bind = format!(
        "type=bind,source={},target=/data,readonly",
        src.path().display()
    );
    let out = s.ok(&[
        "run",
        "--name",
        "mounted",
        "--mount",
        &bind,
        "--mount",
        "type=tmpfs,destination=/scratch,tmpfs-size=1048576,tmpfs-mode=1770",
        "busybox",
        "sh",
        "-c",
        "cat /data/f; touch /data/x 2>/dev/null || echo ro; stat -c %a /scratch; df -k /scratch | tail -1",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(&lines[..3], ["from the host", "ro", "1770"], "{out}");
    assert!(
        lines[3].starts_with("tmpfs") && lines[3].contains(" 1024 "),
        "{out}"
    );
    assert!(!src.path().join("x").exists());
    let hc = s.ok(&["inspect", "-f", "{{json .HostConfig.Mounts}}", "mounted"]);
    assert_eq!(
        hc.trim(),
        format!(
            "[{{\"Type\":\"bind\",\"Source\":\"{}\",\"Target\":\"/data\",\"ReadOnly\":true}},{{\"Type\":\"tmpfs\",\"Target\":\"/scratch\",\"TmpfsOptions\":{{\"SizeBytes\":1048576,\"Mode\":1016}}}}]",
            src.path().display()
        )
    );
    let before = s.ok(&["ps", "-a", "-q"]);
    for (spec, want) in [
        (
            "type=bind,src=/no/such/dir,dst=/x".to_string(),
            "invalid mount config for type \"bind\": bind source path does not exist: /no/such/dir",
        ),
        (
            "source=v,target=/x".to_string(),
            "create v: volume name is too short, names should be at least two alphanumeric characters",
        ),
        (
            format!("type=bind,source={}", src.path().display()),
            "for \"--mount\" flag: target is required",
        ),
    ] {
        let (c, _, err) = code(&s, &["run", "--rm", "--mount", &spec, "busybox", "true"]);
        assert_eq!(c, 125, "{spec}: {err}");
        assert!(err.contains(want), "{spec}: {err}");
    }
    assert_eq!(s.ok(&["ps", "-a", "-q"]), before);
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn a_real_time_caller_starts_containers_with_the_normal_policy() {
    // Under `chrt -f` the container's process used to stay SCHED_FIFO and could not join
    // its v1 `cpu` cgroup (no real-time budget): every run failed with EINVAL.
    let Some(s) = with_busybox() else { return };
    let strata = assert_cmd::cargo::cargo_bin("strata");
    let out = std::process::Command::new("chrt")
        .args(["-f", "1"])
        .arg(&strata)
        .args(["run", "--rm", "--network", "none", "busybox"])
        .args(["sh", "-c", "grep ^policy /proc/self/sched"])
        .env("STRATA_ROOT", s.root.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(line.split(':').nth(1).map(str::trim), Some("0"), "{line}");
}

/// A relative `STRATA_ROOT` is the store under the current directory: builds run their
/// `RUN` steps and containers start from it, as with an absolute one.
#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn a_relative_root_builds_and_runs() {
    if !require_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let strata = |args: &[&str]| {
        let out = assert_cmd::Command::cargo_bin("strata")
            .unwrap()
            .current_dir(dir.path())
            .env("STRATA_ROOT", "store")
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    strata(&["import", busybox_tar().to_str().unwrap(), "bb:1"]);
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM bb:1\nRUN echo hi > /x\n",
    )
    .unwrap();
    strata(&["build", "-q", "-t", "rel:1", "."]);
    let out = strata(&["run", "--rm", "--network", "none", "rel:1", "cat", "/x"]);
    assert_eq!(out, "hi\n");
    assert!(dir.path().join("store").is_dir());
}

/// `exec --privileged` gives that process every capability; the container's own process
/// and a plain exec keep Docker's default set.
#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn exec_privileged_has_every_capability() {
    let Some(s) = with_busybox() else { return };
    s.ok(&[
        "run",
        "-d",
        "--name",
        "priv",
        "--network",
        "none",
        "busybox",
        "sleep",
        "60",
    ]);
    let cap = |extra: &[&str]| {
        let mut args = vec!["exec"];
        args.extend_from_slice(extra);
        args.extend(["priv", "grep", "CapEff", "/proc/self/status"]);
        s.ok(&args).split_whitespace().nth(1).unwrap().to_string()
    };
    let plain = u64::from_str_radix(&cap(&[]), 16).unwrap();
    let privileged = u64::from_str_radix(&cap(&["--privileged"]), 16).unwrap();
    // Docker's default set: 14 capabilities.
    assert_eq!(plain.count_ones(), 14, "{plain:x}");
    assert!(privileged.count_ones() >= 38, "{privileged:x}");
    assert_eq!(privileged & plain, plain);
    let init = s.ok(&["exec", "priv", "grep", "CapEff", "/proc/1/status"]);
    assert!(init.contains(&format!("{plain:016x}")), "{init}");
    s.ok(&["rm", "-f", "priv"]);
}

/// `exec -d` returns once its process runs, and the process holds nothing of strata's:
/// only its three standard streams (the pipe its background half reports on stays out).
#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn exec_detached_runs_on_with_only_its_standard_streams() {
    let Some(s) = with_busybox() else { return };
    s.ok(&[
        "run",
        "-d",
        "--name",
        "bg",
        "--network",
        "none",
        "busybox",
        "sleep",
        "60",
    ]);
    let out = s.ok(&[
        "exec",
        "-d",
        "bg",
        "sh",
        "-c",
        "sleep 0.2; ls /proc/self/fd > /tmp/fds.tmp; readlink /proc/self/fd/* >> /tmp/fds.tmp; mv /tmp/fds.tmp /tmp/fds",
    ]);
    assert_eq!(out, "");
    let mut fds = String::new();
    for _ in 0..50 {
        std::thread::sleep(std::time::Duration::from_millis(100));
        let (code, o, _) = code(&s, &["exec", "bg", "cat", "/tmp/fds"]);
        if code == 0 {
            fds = o;
            break;
        }
    }
    // `ls` sees its own directory descriptor (3) besides 0-2; `readlink` none of strata's.
    let mut lines = fds.lines();
    let numbers: Vec<&str> = lines.by_ref().take_while(|l| !l.starts_with('/')).collect();
    assert_eq!(numbers, ["0", "1", "2", "3"], "{fds}");
    assert!(
        !fds.contains("pipe:") || fds.matches("pipe:").count() <= 3,
        "{fds}"
    );
    assert!(!fds.contains("strata"), "{fds}");
    s.ok(&["rm", "-f", "bg"]);
}
