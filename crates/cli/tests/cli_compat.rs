//! The same commands against strata and Docker (20.10's daemon, the installed CLI), side by
//! side: list and inspect formats, errors and exit codes for missing objects, usage errors,
//! `events`, `system prune`, `info`, the `ps` COMMAND column, `run -w FILE`, partial log
//! lines, `--format json`, aliases and completion scripts.

mod common;

use std::process::{Command, Output};

use common::*;

const DOCKER: &str = "/usr/bin/docker";

fn strata_out(s: &Strata, args: &[&str]) -> Output {
    s.cmd().args(args).output().unwrap()
}

fn docker_out(args: &[&str]) -> Output {
    Command::new(DOCKER).args(args).output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Exit code and the first stderr line without Docker's and strata's prefixes, with the
/// program's name made neutral.
fn outcome(o: &Output) -> (i32, String) {
    let err = text(&o.stderr);
    let first = err.lines().next().unwrap_or("").to_string();
    let first = first
        .trim_start_matches("Error response from daemon: ")
        .trim_start_matches("Error: ")
        .trim_start_matches("Error response from daemon: ")
        .replace("docker", "PROG")
        .replace("strata", "PROG");
    (o.status.code().unwrap_or(-1), first)
}

/// Imports the busybox root filesystem under `name` into strata and Docker.
fn import_both(s: &Strata, name: &str) {
    let tar = busybox_tar();
    s.ok(&["import", tar.to_str().unwrap(), name]);
    run_ok(DOCKER, &["import", tar.to_str().unwrap(), name]);
}

#[test]
fn usage_errors_match_docker() {
    if !docker() {
        return;
    }
    let s = Strata::new();
    for args in [
        &["run", "--nosuch", "x"][..],
        &["run", "-Z", "x"],
        &["ps", "--nosuch"],
        &["container", "ls", "--nosuch"],
        &["events", "--nosuch"],
        &["system", "df", "--nosuch"],
        &["run"],
        &["rm"],
        &["logs"],
        &["tag", "a"],
        &["nosuchcmd"],
        &["ps", "--filter", "foo"],
        &["network", "ls", "--filter", "foo"],
        &["volume", "ls", "--filter", "foo"],
    ] {
        let ours = strata_out(&s, args);
        let theirs = docker_out(args);
        // The message and where help is, with the exit code (then, for a wrong number of
        // arguments, the usage line and what the command does, in strata's words).
        let head = |o: &Output, prog: &str| {
            let e = text(&o.stderr).replace(prog, "PROG");
            (
                o.status.code(),
                e.lines().take(2).collect::<Vec<_>>().join("\n"),
            )
        };
        assert_eq!(head(&ours, "strata"), head(&theirs, "docker"), "{args:?}");
    }
    // A bad value: the flag as Docker names it, exit 125.
    let ours = strata_out(&s, &["ps", "-n", "x"]);
    let theirs = docker_out(&["ps", "-n", "x"]);
    let prefix = |o: &Output, prog: &str| {
        let e = text(&o.stderr).replace(prog, "PROG");
        let mut l = e.lines();
        let first = l
            .next()
            .unwrap_or("")
            .split(" flag:")
            .next()
            .unwrap_or("")
            .to_string();
        (o.status.code(), first, l.next().map(str::to_string))
    };
    assert_eq!(prefix(&ours, "strata"), prefix(&theirs, "docker"));
    // An unknown filter name is the daemon's error, exit 1.
    for args in [
        &["ps", "--filter", "foo=bar"][..],
        &["network", "ls", "--filter", "foo=bar"],
        &["volume", "ls", "--filter", "foo=bar"],
    ] {
        let (ours, theirs) = (outcome(&strata_out(&s, args)), outcome(&docker_out(args)));
        assert_eq!(ours, theirs, "{args:?}");
    }
}

/// Exit code, stdout and the whole of stderr, with the program's name made neutral.
fn whole(o: &Output) -> (i32, String, String) {
    let neutral = |b: &[u8]| text(b).replace("docker", "PROG").replace("strata", "PROG");
    (
        o.status.code().unwrap_or(-1),
        neutral(&o.stdout),
        neutral(&o.stderr),
    )
}

/// Missing containers, images, networks and volumes, and a missing registry: Docker's CLI
/// prints what its daemon answered as `Error response from daemon: …`, and its own lookups
/// (`rm`, `rmi`, `inspect`, `logs`, `exec`, `network rm`…) as `Error: No such …`; strata
/// prints the same, word for word, with the same exit codes.
#[test]
fn missing_objects_fail_as_in_docker() {
    if !docker() {
        return;
    }
    let s = Strata::new();
    let n = unique("strata-compat-nosuch");
    let m = unique("strata-compat-nosuch2");
    let (n, m) = (n.as_str(), m.as_str());
    let image = format!("{n}:1");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.tar").display().to_string();
    for args in [
        vec!["inspect", n],
        vec!["inspect", n, m],
        vec!["image", "inspect", n],
        vec!["container", "inspect", n],
        vec!["network", "inspect", n],
        vec!["volume", "inspect", n],
        vec!["rm", n],
        vec!["rm", n, m],
        vec!["rmi", n],
        vec!["rmi", &image, m],
        vec!["logs", n],
        vec!["exec", n, "true"],
        vec!["start", n],
        vec!["start", n, m],
        vec!["stop", n],
        vec!["restart", n],
        vec!["kill", n],
        vec!["wait", n],
        vec!["pause", n],
        vec!["unpause", n],
        vec!["port", n],
        vec!["top", n],
        vec!["diff", n],
        vec!["export", n],
        vec!["commit", n],
        vec!["rename", n, "x"],
        vec!["update", "--memory", "10m", n],
        vec!["stats", "--no-stream", n],
        vec!["attach", n],
        vec!["network", "rm", n],
        vec!["network", "rm", n, m],
        vec!["network", "connect", n, n],
        vec!["network", "disconnect", n, n],
        vec!["volume", "rm", n],
        vec!["volume", "rm", n, m],
        vec!["tag", n, "x:1"],
        vec!["history", n],
        vec!["save", n],
        vec!["save", "-o", &out, n],
        vec!["load", "-i", "/nonexistent"],
        vec!["import", "/nonexistent"],
        vec!["network", "create", "--driver", "foo", n],
        vec!["volume", "create", "bad/name"],
        vec!["events", "--since", "x"],
    ] {
        let ours = strata_out(&s, &args);
        let theirs = docker_out(&args);
        assert_eq!(whole(&ours), whole(&theirs), "{args:?}");
    }
    assert!(!dir.path().join("x.tar").exists());
    // A registry that is not there: the daemon's error (its words are Go's: `Get "…": dial
    // tcp …`), in `run`'s form for `run`.
    let missing = "127.0.0.1:9/missing:1";
    for args in [
        vec!["pull", missing],
        vec!["create", missing],
        vec!["run", missing],
    ] {
        let shape = |o: &Output| {
            let (code, _, err) = whole(o);
            let lines: Vec<String> = err
                .lines()
                .filter(|l| !l.contains("Pulling from"))
                .map(|l| match l.split_once("daemon: ") {
                    Some((head, _)) => format!("{head}daemon: …"),
                    None => l.to_string(),
                })
                .collect();
            (code, lines)
        };
        assert_eq!(
            shape(&strata_out(&s, &args)),
            shape(&docker_out(&args)),
            "{args:?}"
        );
    }
}

#[test]
fn list_and_inspect_formats_match_docker() {
    if !docker() {
        return;
    }
    let s = Strata::new();
    let img = format!("{}:1", unique("strata-compat-img"));
    import_both(&s, &img);
    let both = |args: &[&str]| (s.ok(args), run_ok(DOCKER, args));
    // A key missing from a map is `<no value>`; a missing struct field is an error.
    let (a, b) = both(&["inspect", "-f", "{{.Config.Labels.nosuch}}", &img]);
    assert_eq!((a.as_str(), b.as_str()), ("<no value>\n", "<no value>\n"));
    let ours = strata_out(&s, &["inspect", "-f", "{{.Config.Nosuch}}", &img]);
    let theirs = docker_out(&["inspect", "-f", "{{.Config.Nosuch}}", &img]);
    assert_eq!(ours.status.code(), theirs.status.code());
    for o in [&ours, &theirs] {
        let e = text(&o.stderr);
        assert!(
            e.starts_with("template parsing error: ")
                && e.trim_end()
                    .ends_with("map has no entry for key \"Nosuch\""),
            "{e}"
        );
    }
    let (a, b) = both(&["inspect", "-f", "{{.Os}} {{.Architecture}} {{.Size}}", &img]);
    assert_eq!(a, b);
    // `--format json` (Docker CLI 23+; 20.10 prints the word): one compact array for
    // inspect, one object per line for lists, as `{{json .}}` in 20.10.
    let a = s.ok(&["inspect", "--format", "json", &img]);
    let b = run_ok(DOCKER, &["inspect", "--format", "{{json .}}", &img]);
    let b = format!("[{}]", b.trim_end());
    let (ja, jb): (serde_json::Value, serde_json::Value) = (
        serde_json::from_str(&a).unwrap_or_else(|e| panic!("{e}: {a}")),
        serde_json::from_str(&b).unwrap_or_else(|e| panic!("{e}: {b}")),
    );
    // The image IDs differ (each import has its own time): compare what does not.
    assert_eq!(ja[0]["RepoTags"], jb[0]["RepoTags"]);
    assert_eq!(ja[0]["RootFS"], jb[0]["RootFS"]);
    assert_eq!(a.lines().count(), 1);
    let keys = |line: &str| -> Vec<String> {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        v.as_object().unwrap().keys().cloned().collect()
    };
    for args in [
        vec!["images", "--format", "json", img.as_str()],
        vec!["history", "--format", "json", img.as_str()],
    ] {
        let a = s.ok(&args);
        let b = run_ok(DOCKER, &[args[0], "--format", "{{json .}}", args[3]]);
        let same = s.ok(&[args[0], "--format", "{{json .}}", args[3]]);
        assert_eq!(
            keys(a.lines().next().unwrap()),
            keys(same.lines().next().unwrap())
        );
        assert_eq!(a.lines().count(), b.lines().count(), "{args:?}");
        assert_eq!(
            keys(a.lines().next().unwrap()),
            keys(b.lines().next().unwrap()),
            "{args:?}"
        );
    }
    let (a, b) = both(&[
        "images",
        "--format",
        "{{.Repository}}:{{.Tag}} {{.Size}} {{.Digest}}",
        &img,
    ]);
    assert_eq!(a, b);
    let (a, b) = both(&["history", "--format", "{{.CreatedBy}}|{{.Size}}", &img]);
    assert_eq!(a, b);
    let (a, b) = both(&[
        "image",
        "list",
        "--format",
        "{{.Repository}} {{.Size}}",
        &img,
    ]);
    assert_eq!(a, b);
    run_ok(DOCKER, &["rmi", &img]);
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn containers_match_docker_in_ps_logs_workdir_and_events() {
    if !require_root() || !docker() {
        return;
    }
    let s = Strata::new();
    let img = format!("{}:1", unique("strata-compat-run"));
    import_both(&s, &img);
    let name = unique("strata-compat-c");
    let start = chrono_now_secs();
    let script = "printf 'one\\ntwo'; printf '%20000s' x; echo; exit 3";
    let run = |prog: &dyn Fn(&[&str]) -> Output| {
        prog(&[
            "run",
            "--name",
            &name,
            "--network",
            "none",
            "--label",
            "l=v",
            &img,
            "sh",
            "-c",
            script,
        ])
    };
    let ours = run(&|a| strata_out(&s, a));
    let theirs = run(&|a| docker_out(a));
    assert_eq!(ours.status.code(), Some(3));
    assert_eq!(theirs.status.code(), Some(3));
    assert_eq!(ours.stdout, theirs.stdout);
    // `logs` joins a partial line and a line over 16 KiB as Docker does.
    let (lo, lt) = (s.ok(&["logs", &name]), run_ok(DOCKER, &["logs", &name]));
    assert_eq!(lo, lt);
    // The COMMAND column quotes arguments holding spaces, truncated or not.
    for extra in [&[][..], &["--no-trunc"]] {
        let mut args = vec!["ps", "-a", "--filter"];
        let filter = format!("name={name}");
        args.push(&filter);
        args.extend_from_slice(&["--format", "{{.Command}} {{.Labels}}"]);
        args.extend_from_slice(extra);
        assert_eq!(s.ok(&args), run_ok(DOCKER, &args), "{args:?}");
    }
    // A working directory that is a file: 125 and the daemon's message.
    let wd = |o: &Output| {
        (
            o.status.code(),
            text(&o.stderr).contains("Cannot mkdir: /etc/passwd is not a directory"),
        )
    };
    let args = [
        "run",
        "--rm",
        "--network",
        "none",
        "-w",
        "/etc/passwd",
        &img,
        "true",
    ];
    assert_eq!(wd(&strata_out(&s, &args)), (Some(125), true));
    assert_eq!(wd(&docker_out(&args)), (Some(125), true));
    // Docker's json-file name in the state directory; a log of an earlier strata
    // (`container.log`) still reads.
    let id = s
        .ok(&["inspect", "-f", "{{.Id}}", &name])
        .trim()
        .to_string();
    let log = s
        .ok(&["inspect", "-f", "{{.LogPath}}", &name])
        .trim()
        .to_string();
    assert!(log.ends_with(&format!("{id}/{id}-json.log")), "{log}");
    std::fs::rename(
        &log,
        std::path::Path::new(&log).with_file_name("container.log"),
    )
    .unwrap();
    assert_eq!(s.ok(&["logs", &name]), lt);
    s.ok(&["rm", &name]);
    run_ok(DOCKER, &["rm", &name]);
    // The container's events, in Docker's order and with its attributes.
    let until = (chrono_now_secs() + 1).to_string();
    let filter = format!("container={name}");
    let ev = |out: String| -> Vec<String> {
        out.lines()
            .map(|l| {
                // time type action ID (attrs): keep the action and the attributes' keys.
                let mut w = l.splitn(4, ' ');
                let _time = w.next();
                let kind = w.next().unwrap_or("");
                let action = w.next().unwrap_or("");
                let attrs = l.split_once(" (").map(|x| x.1).unwrap_or("");
                let keys: Vec<&str> = attrs
                    .trim_end_matches(')')
                    .split(", ")
                    .map(|kv| kv.split('=').next().unwrap_or(""))
                    .collect();
                format!("{kind} {action} {}", keys.join(","))
            })
            .collect()
    };
    let args = [
        "events",
        "--since",
        &start.to_string(),
        "--until",
        &until,
        "--filter",
        &filter,
        "--filter",
        "type=container",
    ];
    let (a, b) = (s.ok(&args), run_ok(DOCKER, &args));
    assert_eq!(ev(a.clone()), ev(b), "{a}");
    assert!(a.contains("exitCode=3"), "{a}");
    let line = a.lines().next().unwrap();
    assert_eq!(&line[10..11], "T");
    assert!(line[..30].ends_with('Z'), "{line}");
    // `{{json .}}` gives Docker's message.
    let json = s.ok(&[
        "events",
        "--since",
        &start.to_string(),
        "--until",
        &until,
        "--filter",
        &filter,
        "--format",
        "{{json .}}",
    ]);
    let v: serde_json::Value = serde_json::from_str(json.lines().next().unwrap()).unwrap();
    assert_eq!(v["Type"], "container");
    assert_eq!(v["status"], "create");
    assert_eq!(v["from"], img.as_str());
    assert_eq!(v["Actor"]["Attributes"]["l"], "v");
    run_ok(DOCKER, &["rmi", &img]);
}

fn chrono_now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Without `--until`, `events` follows the journal until it is stopped.
#[test]
fn events_follow_new_events() {
    let s = Strata::new();
    let tar = busybox_tar();
    s.ok(&["import", tar.to_str().unwrap(), "follow:1"]);
    let since = (chrono_now_secs() - 1).to_string();
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("strata"))
        .env("STRATA_ROOT", s.root.path())
        .args(["events", "--since", &since, "--filter", "event=tag"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::BufRead;
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    assert!(
        first.contains(" image tag sha256:") && first.ends_with("(name=follow:1)"),
        "{first}"
    );
    s.ok(&["tag", "follow:1", "follow:2"]);
    let second = lines.next().unwrap().unwrap();
    assert!(second.ends_with("(name=follow:2)"), "{second}");
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn system_prune_info_aliases_and_completion() {
    if !docker() {
        return;
    }
    let s = Strata::new();
    // The prompt, word for word, and nothing removed on "n".
    let label = format!("label={}", unique("strata-compat-none"));
    for args in [
        vec!["system", "prune"],
        vec![
            "system",
            "prune",
            "-a",
            "--volumes",
            "--filter",
            label.as_str(),
        ],
    ] {
        let ours = s.cmd().args(&args).write_stdin("n\n").output().unwrap();
        let theirs = Command::new(DOCKER)
            .args(&args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                use std::io::Write;
                c.stdin.take().unwrap().write_all(b"n\n")?;
                c.wait_with_output()
            })
            .unwrap();
        assert_eq!(text(&ours.stdout), text(&theirs.stdout), "{args:?}");
        assert_eq!(ours.status.code(), theirs.status.code());
    }
    // Nothing to prune (a label nothing has, for the shared daemon).
    let args = ["system", "prune", "-f", "--filter", label.as_str()];
    assert_eq!(s.ok(&args), run_ok(DOCKER, &args));
    assert_eq!(
        s.ok(&["system", "prune", "-f"]),
        "Total reclaimed space: 0B\n"
    );
    // `info`: Docker's layout, what is true here.
    let info = s.ok(&["info"]);
    for want in [
        "Client:\n",
        "\nServer:\n Containers: 0\n  Running: 0\n  Paused: 0\n  Stopped: 0\n Images: 0\n",
        " Logging Driver: json-file\n",
        " Security Options:\n  seccomp\n   Profile: default\n",
        &format!(" Docker Root Dir: {}\n", s.root.path().display()),
    ] {
        assert!(info.contains(want), "{want:?} in\n{info}");
    }
    for f in [
        "{{.OSType}} {{.Architecture}} {{.NCPU}} {{.KernelVersion}}",
        "{{.CgroupVersion}}",
    ] {
        assert_eq!(
            s.ok(&["system", "info", "--format", f]),
            run_ok(DOCKER, &["info", "--format", f])
        );
    }
    let v: serde_json::Value =
        serde_json::from_str(&s.ok(&["info", "--format", "{{json .}}"])).unwrap();
    assert_eq!(v["Images"], 0);
    // Aliases Docker has.
    for args in [
        &["container", "ls"][..],
        &["container", "list"],
        &["container", "ps"],
        &["image", "ls"],
        &["image", "list"],
        &["system", "df"],
        &["system", "events", "--until", "1"],
    ] {
        s.ok(args);
    }
    // Completion scripts for the shells clap_complete knows.
    assert!(s
        .ok(&["completion", "bash"])
        .contains("complete -F _strata"));
    assert!(s.ok(&["completion", "zsh"]).starts_with("#compdef strata"));
    assert!(s.ok(&["completion", "fish"]).contains("complete -c strata"));
}

/// IDs, times and the program's name made neutral; Docker's `\r\n` of exec errors too.
fn neutral(o: &Output) -> (i32, String, String) {
    let ids = regex::Regex::new(r"[0-9a-f]{12,64}").unwrap();
    let ago = regex::Regex::new(
        r"(\d+ (second|minute|hour)s?|About a minute|About an hour|Less than a second) ago",
    )
    .unwrap();
    let up = regex::Regex::new(r"Up (\d+ \w+|Less than a second|About a minute)").unwrap();
    let n = |b: &[u8]| {
        // Docker's CLI logs its own race at the end of a failed `run --rm`.
        let t: String = text(b)
            .replace("\r\n", "\n")
            .lines()
            .filter(|l| !l.starts_with("time=\""))
            .map(|l| format!("{l}\n"))
            .collect();
        let t = t.replace("docker", "PROG").replace("strata", "PROG");
        let t = ids.replace_all(&t, "<ID>");
        let t = ago.replace_all(&t, "<AGO>");
        up.replace_all(&t, "Up <T>").into_owned()
    };
    (o.status.code().unwrap_or(-1), n(&o.stdout), n(&o.stderr))
}

/// The commands of a working session with a few containers, compared word for word with
/// Docker 20.10 (output, errors, exit codes): `ps` with each of the daemon's filters and
/// their value errors, `run`/`create` flag and daemon errors (with and without the help
/// line), `exec` errors and `exec -d`, and the messages of `rename`, `kill`, `rmi`, `tag`,
/// `commit`, `import --change`, `logs`, `save`, `export`, `images` and `volume inspect`.
#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn a_working_session_matches_docker_word_for_word() {
    if !require_root() || !docker() {
        return;
    }
    let s = Strata::new();
    let p = unique("strata-session");
    let img = format!("{p}-img:1");
    let (t1, t2, t3) = (format!("{p}-t1"), format!("{p}-t2"), format!("{p}-t3"));
    let vol = format!("{p}-vol");
    let _cleanup = DockerCleanup {
        containers: vec![t1.clone(), t2.clone(), t3.clone()],
        volumes: vec![vol.clone()],
        images: vec![img.clone()],
    };
    import_both(&s, &img);
    let both = |args: &[&str]| {
        let o = strata_out(&s, args);
        let d = docker_out(args);
        (o, d)
    };
    let same = |args: &[&str]| {
        let (o, d) = both(args);
        assert_eq!(neutral(&o), neutral(&d), "{args:?}");
    };
    // t1 exited 2 with output, t2 running with a volume and an exposed port, t3 created.
    for args in [
        vec![
            "run",
            "--name",
            &t1,
            "--network",
            "none",
            "--label",
            "a=1",
            &img,
            "sh",
            "-c",
            "echo out; exit 2",
        ],
        vec![
            "run",
            "-d",
            "--name",
            &t2,
            "--network",
            "none",
            "--label",
            "a=2",
            "--expose",
            "90",
            "-v",
            "/data",
            &img,
            "sleep",
            "300",
        ],
        vec!["create", "--name", &t3, "--network", "none", &img, "true"],
        vec!["volume", "create", &vol],
    ] {
        let (o, d) = both(&args);
        assert_eq!(o.status.code(), d.status.code(), "{args:?}");
    }
    let only_ours = format!("name=^/?{p}-");
    for f in [
        "status=bogus",
        "exited=abc",
        "exited=2",
        "exited=0",
        "label=a",
        "label=a=1",
        "label=a=",
        "health=bad",
        "health=none",
        "is-task=maybe",
        "is-task=true",
        "before",
        "since",
        "since=nosuch",
        "ancestor",
        "ancestor=nosuch:1",
        "status=created",
        "status=running",
        "Status=exited",
        "foo=bar",
        "volume=/data",
        "expose=90",
        "expose=80-95",
        "publish=a",
        "expose=95-80",
        "publish=1:2",
        "id=^0000",
    ] {
        let f = match f {
            "before" => format!("before={t3}"),
            "since" => format!("since={t1}"),
            "ancestor" => format!("ancestor={img}"),
            f => f.to_string(),
        };
        for all in [true, false] {
            let mut args = vec!["ps", "--filter", &only_ours, "--filter", &f];
            if all {
                args.push("-a");
            }
            args.extend([
                "--format",
                "{{.Names}} {{.State}} {{.Mounts}} {{.LocalVolumes}}",
            ]);
            same(&args);
        }
    }
    same(&[
        "ps",
        "-a",
        "--filter",
        &only_ours,
        "--format",
        "{{.Names}} {{.Size}}",
    ]);
    // run and create: flag errors, checks after parsing, daemon errors at creation (with the
    // help line) and at the start (without).
    for flags in [
        vec!["--ulimit", "x"],
        vec!["-m", "x"],
        vec!["-p", "70000:80"],
        vec!["--expose", "abc"],
        vec!["-e", "=x"],
        vec!["--restart", "always"],
        vec!["--stop-signal", "FOO"],
        vec!["--network", "bogusnet"],
        vec!["--user", "nosuch"],
        vec!["--env-file", "/nonexistent"],
        vec!["--cpus", "x"],
    ] {
        let mut args = vec!["run", "--rm"];
        args.extend(flags.iter().copied());
        args.extend([img.as_str(), "true"]);
        same(&args);
    }
    same(&["create", "--name", &t1, &img, "true"]);
    same(&["create", "-p", "70000:80", &img, "true"]);
    // exec
    for args in [
        vec!["exec", "-u", "nosuch", &t2, "id"],
        vec!["exec", "-w", "relative", &t2, "pwd"],
        vec!["exec", "-e", "=x", &t2, "true"],
        vec!["exec", &t2, "/etc"],
        vec!["exec", &t2, "nosuch"],
        vec!["exec", "-d", &t2, "nosuch"],
        vec!["exec", "-d", &t1, "true"],
        vec!["exec", &t2],
    ] {
        same(&args);
    }
    // exec -d returns at once; the process runs on.
    let (o, d) = both(&[
        "exec",
        "-d",
        &t2,
        "sh",
        "-c",
        "sleep 0.3; echo done > /tmp/x",
    ]);
    assert_eq!(neutral(&o), neutral(&d));
    assert_eq!(neutral(&o), (0, String::new(), String::new()));
    let done = |prog: &dyn Fn() -> Output| {
        (0..50).any(|_| {
            std::thread::sleep(std::time::Duration::from_millis(100));
            text(&prog().stdout) == "done\n"
        })
    };
    assert!(done(&|| strata_out(&s, &["exec", &t2, "cat", "/tmp/x"])));
    assert!(done(&|| docker_out(&["exec", &t2, "cat", "/tmp/x"])));
    // Messages of other commands.
    let missing_dir = "/nonexistent-dir/x.tar";
    for args in [
        vec!["rename", &t2, &t2],
        vec!["kill", "-s", "FOO", &t2],
        vec!["rmi", &img],
        vec!["tag", &img, "BAD:x"],
        vec![
            "tag",
            &img,
            "a@sha256:0000000000000000000000000000000000000000000000000000000000000000",
        ],
        vec!["commit", &t1, "BAD"],
        vec!["commit", "-c", "FOO bar", &t1],
        vec!["commit", "-c", "RUN x", &t1],
        vec!["commit", "-c", "ENV", &t1],
        vec!["logs", "--details", &t1],
        vec!["logs", "-n", "x", &t1],
        vec!["logs", "-n", "-1", &t1],
        vec!["save", "-o", missing_dir, &img],
        vec!["save", "-o", "/dev/null", &img],
        vec!["save", &format!("{p}-nosuch:1")],
        vec!["save", &format!("{p}-nosuch")],
        vec!["export", "-o", missing_dir, &t1],
        vec![
            "images",
            "--format",
            "{{.SharedSize}} {{.UniqueSize}} {{.VirtualSize}} {{.Containers}}",
            &img,
        ],
        vec!["volume", "inspect", "-f", "{{.Options}} {{.Labels}}", &vol],
    ] {
        same(&args);
    }
    let tar = busybox_tar();
    same(&["import", "-c", "FOO x", tar.to_str().unwrap()]);
    // Container inspect has every field Docker's has (HostConfig's zero values too), in
    // Docker's order; image and volume inspect the same fields.
    let keys = |o: Output| -> Vec<String> {
        fn walk(v: &serde_json::Value, p: &str, out: &mut Vec<String>) {
            if let Some(m) = v.as_object() {
                for (k, x) in m {
                    let q = format!("{p}/{k}");
                    // An image's overlay directories are the driver's own.
                    if !q.starts_with("/GraphDriver/Data/") {
                        out.push(q.clone());
                    }
                    walk(x, &q, out);
                }
            }
        }
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let mut out = Vec::new();
        walk(&v[0], "", &mut out);
        out
    };
    for args in [
        vec!["container", "inspect", &t2],
        vec!["image", "inspect", &img],
        vec!["volume", "inspect", &vol],
    ] {
        let (o, d) = both(&args);
        assert_eq!(keys(o), keys(d), "{args:?}");
    }
    // cp from a stopped container sees the /etc files its start wrote (its hostname).
    for (name, out) in [
        (
            &t1,
            strata_out(&s, &["cp", &format!("{t1}:/etc/hostname"), "-"]),
        ),
        (
            &t1,
            docker_out(&["cp", &format!("{t1}:/etc/hostname"), "-"]),
        ),
    ] {
        assert!(out.status.success(), "{}", text(&out.stderr));
        let mut a = tar::Archive::new(&out.stdout[..]);
        let mut e = a.entries().unwrap().next().unwrap().unwrap();
        let mut body = String::new();
        std::io::Read::read_to_string(&mut e, &mut body).unwrap();
        assert_eq!(body.trim().len(), 12, "{name}: {body:?}");
    }
    for n in [&t1, &t2, &t3] {
        s.ok(&["rm", "-f", "-v", n]);
    }
}
