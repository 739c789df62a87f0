//! Stages as a graph: independent stages of a multi-stage build run at the same time, the
//! output stays the sequential build's, in stage order, and the image is the same.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::time::Duration;

use common::*;

/// Two stages that each sleep 2 s and a third that copies from both; the files keep a
/// fixed mtime so that the final layers are the same in every build.
const TWO_SLEEPS: &str = "FROM bb:1 AS a\n\
    RUN sleep 2 && echo a > /a && touch -t 200001010000 /a\n\
    FROM bb:1 AS b\n\
    RUN sleep 2 && echo b > /b && touch -t 200001010000 /b\n\
    FROM bb:1\n\
    COPY --from=a /a /a\n\
    COPY --from=b /b /b\n\
    CMD [\"cat\", \"/a\", \"/b\"]\n";

/// A store with busybox as `bb:1` and a context holding `dockerfile`.
fn setup(dockerfile: &str) -> (Strata, tempfile::TempDir) {
    let s = Strata::new();
    s.ok(&["import", busybox_tar().to_str().unwrap(), "bb:1"]);
    let ctx = tempfile::tempdir().unwrap();
    fs::write(ctx.path().join("Dockerfile"), dockerfile).unwrap();
    (s, ctx)
}

/// Builds with `STRATA_BUILD_JOBS=jobs` (0: unset, the default) and `args`; returns the
/// output (standard output, or with a BuildKit display standard error, where it goes).
fn build(s: &Strata, ctx: &tempfile::TempDir, jobs: usize, args: &[&str]) -> String {
    let mut cmd = s.cmd();
    if jobs > 0 {
        cmd.env("STRATA_BUILD_JOBS", jobs.to_string());
    }
    let out = cmd
        .args(["build", "--network", "none", "-t", "st:1"])
        .args(args)
        .arg(ctx.path())
        .output()
        .unwrap();
    assert_success(&out);
    let display = args.iter().any(|a| a.starts_with("--progress"));
    String::from_utf8(if display { out.stderr } else { out.stdout }).unwrap()
}

/// The output with IDs (container and image) replaced, which differ from build to build.
fn without_ids(out: &str) -> String {
    out.split_inclusive(|c: char| !c.is_ascii_hexdigit())
        .map(|w| {
            let hex = w.trim_end_matches(|c: char| !c.is_ascii_hexdigit());
            if hex.len() == 12 {
                w.replacen(hex, "ID", 1)
            } else {
                w.to_string()
            }
        })
        .collect()
}

/// The run of each RUN step of a `--progress=rawjson` build, by vertex name: when it
/// started and when it completed (RFC 3339 with nanoseconds, UTC: they sort as times).
fn run_intervals(raw: &str) -> BTreeMap<String, (String, String)> {
    let mut out = BTreeMap::new();
    for line in raw.lines() {
        let status: serde_json::Value = serde_json::from_str(line).unwrap();
        let Some(v) = status["vertexes"].get(0) else {
            continue;
        };
        let (Some(name), Some(done)) = (v["name"].as_str(), v["completed"].as_str()) else {
            continue;
        };
        if name.contains("] RUN ") {
            let started = v["started"].as_str().unwrap().to_string();
            assert_eq!(started.len(), done.len(), "{line}");
            out.insert(name.to_string(), (started, done.to_string()));
        }
    }
    out
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn independent_stages_run_in_parallel_with_sequential_output_and_image() {
    if !require_root() {
        return;
    }
    let (s, ctx) = setup(TWO_SLEEPS);
    let parallel = build(&s, &ctx, 0, &[]);
    let (seq_store, _) = setup("");
    let sequential = build(&seq_store, &ctx, 1, &[]);
    // The same lines in the same order, stage after stage.
    assert_eq!(without_ids(&parallel), without_ids(&sequential));
    assert!(
        parallel.starts_with("Step 1/8 : FROM bb:1 AS a\n"),
        "{parallel}"
    );

    // When each sleep ran, from BuildKit's display: as a graph, the two sleeps overlap (the
    // build takes one sleep, not two); one stage at a time, one ends before the other starts
    // (whichever took the slot first).
    let runs = |s: &Strata, jobs: usize| {
        let raw = build(s, &ctx, jobs, &["--no-cache", "--progress=rawjson"]);
        let runs = run_intervals(&raw);
        let a = runs["[a 2/2] RUN sleep 2 && echo a > /a && touch -t 200001010000 /a"].clone();
        let b = runs["[b 2/2] RUN sleep 2 && echo b > /b && touch -t 200001010000 /b"].clone();
        (a, b, raw)
    };
    let ((a_start, a_end), (b_start, b_end), raw) = runs(&s, 0);
    assert!(
        a_start < b_end && b_start < a_end,
        "not overlapping:\n{raw}"
    );
    // The events come as they happen (what --progress=tty draws from): each sleep's start
    // is printed before the other one's end.
    let line = |name: &str, done: bool| {
        raw.lines()
            .position(|l| l.contains(name) && l.contains("\"completed\"") == done)
            .unwrap_or_else(|| panic!("{name}:\n{raw}"))
    };
    let (a, b) = ("[a 2/2] RUN sleep 2", "[b 2/2] RUN sleep 2");
    assert!(
        line(a, false) < line(b, true) && line(b, false) < line(a, true),
        "{raw}"
    );
    let ((a_start, a_end), (b_start, b_end), raw) = runs(&seq_store, 1);
    assert!(
        a_end <= b_start || b_end <= a_start,
        "overlapping with one job:\n{raw}"
    );

    // The same image: layers, history and files.
    let image = |s: &Strata| {
        let f = "{{json .RootFS.Layers}} {{json .Config.Cmd}}";
        let mut v = s.ok(&["inspect", "-f", f, "st:1"]);
        v.push_str(&s.ok(&[
            "history",
            "--no-trunc",
            "--format",
            "{{.CreatedBy}}",
            "st:1",
        ]));
        v.push_str(&s.ok(&["run", "--rm", "--network", "none", "st:1"]));
        v
    };
    let a = image(&s);
    assert!(a.ends_with("a\nb\n"), "{a}");
    assert_eq!(a, image(&seq_store));
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn a_failing_stage_fails_the_build_with_its_own_error() {
    if !require_root() {
        return;
    }
    let (s, ctx) = setup(
        "FROM bb:1 AS a\n\
         RUN sleep 1\n\
         RUN echo after the sleep\n\
         FROM bb:1 AS b\n\
         RUN echo failing; exit 3\n\
         FROM bb:1\n\
         COPY --from=a /bin/sh /sh\n",
    );
    let out = s
        .cmd()
        .args(["build", "--network", "none"])
        .arg(ctx.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr
            .contains("The command '/bin/sh -c echo failing; exit 3' returned a non-zero code: 3"),
        "{stderr}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    // The failing stage's output is printed after the stage before it.
    let failing = stdout.find("failing\n").expect("the failing step's output");
    assert!(
        stdout[..failing].contains("Step 4/7 : FROM bb:1 AS b"),
        "{stdout}"
    );
    // The last stage never started.
    assert!(!stdout.contains("Step 7/7"), "{stdout}");
    // Nothing is left mounted.
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(s.root.path().to_str().unwrap()),
        "{mounts}"
    );
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn progress_plain_rawjson_and_quiet() {
    if !require_root() {
        return;
    }
    let (s, ctx) = setup(
        "FROM bb:1 AS builder\n\
         ENV X=1\n\
         RUN echo out; echo err >&2; printf partial\n\
         WORKDIR /app\n\
         FROM bb:1\n\
         COPY --from=builder /app /app\n",
    );
    let build = |args: &[&str]| {
        let out = s
            .cmd()
            .args(["build", "--network", "none", "-t", "pp:1"])
            .args(args)
            .arg(ctx.path())
            .output()
            .unwrap();
        assert_success(&out);
        (
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    };
    let (stdout, plain) = build(&["--progress=plain"]);
    // BuildKit's display, on standard error; the vertices are numbered as the classic steps.
    assert_eq!(stdout, "");
    let lines: Vec<&str> = plain.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(lines[0], "#1 [builder 1/3] FROM bb:1 AS builder", "{plain}");
    assert_eq!(
        lines[2],
        "#3 [builder 2/3] RUN echo out; echo err >&2; printf partial"
    );
    let logs: Vec<&str> = lines
        .iter()
        .filter(|l| l.starts_with("#3 0."))
        .map(|l| l.split_once(' ').unwrap().1.split_once(' ').unwrap().1)
        .collect();
    assert_eq!(logs, ["out", "err", "partial"], "{plain}");
    assert!(
        plain.contains("\n#4 [builder 3/3] WORKDIR /app\n#4 DONE "),
        "{plain}"
    );
    assert!(
        plain.contains("\n#6 [stage-1 2/2] COPY --from=builder /app /app\n"),
        "{plain}"
    );
    assert!(
        plain.contains("\n#7 naming to docker.io/library/pp:1 done\n"),
        "{plain}"
    );
    assert!(!plain.contains("Step "), "{plain}");

    // A rebuild: every step from the cache.
    let (_, plain) = build(&["--progress=plain"]);
    assert!(plain.contains("\n#3 CACHED\n"), "{plain}");
    assert!(plain.contains("\n#6 CACHED\n"), "{plain}");

    // rawjson: BuildKit's SolveStatus objects, one a line; logs base64-encoded.
    let (_, raw) = build(&["--progress=rawjson", "--no-cache"]);
    let statuses: Vec<serde_json::Value> = raw
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let names: Vec<&str> = statuses
        .iter()
        .filter_map(|s| s["vertexes"][0]["name"].as_str())
        .collect();
    assert!(names.contains(&"[builder 2/3] RUN echo out; echo err >&2; printf partial"));
    let logged: Vec<&str> = statuses
        .iter()
        .filter_map(|s| s["logs"][0]["data"].as_str())
        .collect();
    assert!(logged.contains(&"b3V0Cg=="), "{raw}"); // "out\n"

    // quiet is -q: only the image ID.
    let (stdout, stderr) = build(&["--progress=quiet"]);
    assert!(
        stdout.starts_with("sha256:") && stdout.lines().count() == 1,
        "{stdout}"
    );
    assert_eq!(stderr, "");

    let (code, err) = s.fails(&["build", "--progress=fancy", ctx.path().to_str().unwrap()]);
    assert_eq!(code, 125);
    assert!(err.contains("invalid progress mode \"fancy\""), "{err}");
    // -q with another display is refused, as buildx does; with auto it is quiet.
    let c = ctx.path().to_str().unwrap();
    let (code, err) = s.fails(&["build", "-q", "--progress=plain", c]);
    assert_eq!(code, 1);
    assert!(
        err.contains("progress=plain and quiet cannot be used together"),
        "{err}"
    );
    let (stdout, _) = build(&["-q", "--progress=auto"]);
    assert!(stdout.starts_with("sha256:"), "{stdout}");
    // tty and auto without a terminal: the plain display (as Docker's).
    let (_, tty) = build(&["--progress=tty"]);
    assert!(tty.contains("\n#3 CACHED\n"), "{tty}");
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn buildkit_display_builds_only_the_stages_the_target_needs() {
    if !require_root() {
        return;
    }
    let (s, ctx) = setup(
        "FROM bb:1 AS a\n\
         RUN echo built-a > /a\n\
         FROM bb:1 AS unused\n\
         RUN echo unused stage ran\n\
         FROM a AS mid\n\
         RUN echo mid > /mid\n\
         FROM bb:1\n\
         COPY --from=mid /a /mid /\n",
    );
    let build = |args: &[&str]| {
        let out = s
            .cmd()
            .args(["build", "--no-cache", "--network", "none"])
            .args(args)
            .arg(ctx.path())
            .output()
            .unwrap();
        assert_success(&out);
        String::from_utf8(out.stdout).unwrap() + &String::from_utf8(out.stderr).unwrap()
    };
    // The classic builder builds every stage up to the target.
    let classic = build(&[]);
    assert!(classic.contains("\nunused stage ran\n"), "{classic}");
    // BuildKit builds the target and what it needs, through the base of a stage it copies
    // from.
    let plain = build(&["--progress=plain"]);
    assert!(!plain.contains("unused"), "{plain}");
    assert!(plain.contains("] RUN echo built-a > /a\n"), "{plain}");
    assert!(plain.contains("] COPY --from=mid /a /mid /\n"), "{plain}");
    let raw = build(&["--progress=rawjson", "--target", "mid"]);
    assert!(!raw.contains("unused"), "{raw}");
    assert!(raw.contains("[mid 2/2] RUN echo mid > /mid"), "{raw}");
    let plain = build(&["--progress=plain", "--target", "unused"]);
    assert!(
        plain.contains("\n#4 [unused 2/2] RUN echo unused stage ran\n"),
        "{plain}"
    );
    assert!(!plain.contains("built-a"), "{plain}");

    // A stage named only when a step runs (an ONBUILD trigger of the base) is built then.
    let base = tempfile::tempdir().unwrap();
    fs::write(
        base.path().join("Dockerfile"),
        "FROM bb:1\nONBUILD COPY --from=helper /h /h\n",
    )
    .unwrap();
    s.ok(&["build", "-q", "-t", "onb:1", base.path().to_str().unwrap()]);
    fs::write(
        ctx.path().join("Dockerfile"),
        "FROM bb:1 AS helper\nRUN echo from-helper > /h\nFROM onb:1\nRUN cat /h\n",
    )
    .unwrap();
    let plain = build(&["--progress=plain"]);
    assert!(plain.contains(" from-helper\n"), "{plain}");
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn progress_tty_draws_buildkits_terminal_display() {
    // A terminal for the build: util-linux's `script` runs it on a pseudo-terminal.
    if !require_root() || !require_tool("script") {
        return;
    }
    let (s, ctx) = setup(
        "FROM bb:1 AS builder\n\
         RUN echo out\n\
         FROM bb:1\n\
         COPY --from=builder /bin/sh /sh\n",
    );
    let strata = s.cmd().get_program().to_str().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let typescript = dir.path().join("typescript");
    let build = |args: &str| {
        let cmd = format!(
            "stty cols 100 rows 30; {strata} build --network none {args} -t tty:1 {}",
            ctx.path().display()
        );
        let out = std::process::Command::new("script")
            .args(["-qfec", &cmd])
            .arg(&typescript)
            .env("STRATA_ROOT", s.root.path())
            .output()
            .unwrap();
        assert_success(&out);
        String::from_utf8(fs::read(&typescript).unwrap())
            .unwrap()
            .replace("\r\n", "\n")
    };
    let out = build("--progress=tty");
    // The last frame: every step, padded to the terminal's width, the time on the right.
    let last = out.rsplit("\x1b[J").next().unwrap();
    let lines: Vec<&str> = last.lines().collect();
    assert!(
        lines[0].starts_with("[+] Building ") && lines[0].ends_with(" (5/5) FINISHED"),
        "{out}"
    );
    let step = lines
        .iter()
        .find(|l| l.starts_with(" => [builder 2/2] RUN echo out "))
        .unwrap_or_else(|| panic!("{out}"));
    assert_eq!(step.chars().count(), 100, "{step:?}");
    assert!(step.ends_with('s'), "{step:?}");
    assert!(last.contains("\n => exporting to image "), "{out}");
    assert!(!out.contains("#1 "), "not the plain display: {out}");
    // A rebuild: from the cache. auto is the same display on a terminal.
    let out = build("--progress=auto");
    assert!(
        out.contains(" => CACHED [builder 2/2] RUN echo out "),
        "{out}"
    );
    // Without --progress, the classic output, terminal or not.
    let out = build("");
    assert!(
        out.contains("Step 2/4 : RUN echo out\n ---> Using cache\n"),
        "{out}"
    );
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn copy_link_reuses_its_layer_on_a_changed_base() {
    if !require_root() {
        return;
    }
    let (s, ctx) = setup(
        "FROM base:1\n\
         COPY --link app.txt /app/app.txt\n\
         COPY app.txt /plain.txt\n",
    );
    fs::write(ctx.path().join("app.txt"), "hello\n").unwrap();
    let c = ctx.path().to_str().unwrap();
    s.ok(&["tag", "bb:1", "base:1"]);
    s.ok(&["build", "-t", "l:1", c]);
    let layers = |s: &Strata| -> Vec<String> {
        let v = s.ok(&["inspect", "-f", "{{json .RootFS.Layers}}", "l:1"]);
        serde_json::from_str(&v).unwrap()
    };
    let before = layers(&s);
    assert_eq!(before.len(), 3, "{before:?}");

    // The base changes, and the source's mtime too: a copy made again would be a layer with
    // another diff_id (the tar holds the mtime), but the key of a COPY ignores mtimes.
    let base = tempfile::tempdir().unwrap();
    fs::write(
        base.path().join("Dockerfile"),
        "FROM bb:1\nRUN echo v2 > /v2\n",
    )
    .unwrap();
    s.ok(&[
        "build",
        "-q",
        "--network",
        "none",
        "-t",
        "base:1",
        base.path().to_str().unwrap(),
    ]);
    let later = std::time::SystemTime::now() + Duration::from_secs(3600);
    fs::File::options()
        .write(true)
        .open(ctx.path().join("app.txt"))
        .unwrap()
        .set_modified(later)
        .unwrap();
    let out = s.ok(&["build", "-t", "l:1", c]);
    // The linked step reuses its layer on the new base; the plain COPY is copied again.
    assert!(
        out.contains("Step 2/3 : COPY --link app.txt /app/app.txt\n ---> Using cache\n"),
        "{out}"
    );
    assert!(
        !out.contains("Step 3/3 : COPY app.txt /plain.txt\n ---> Using cache"),
        "{out}"
    );
    let after = layers(&s);
    assert_eq!(after.len(), 4, "{after:?}");
    assert_eq!(after[2], before[1], "the linked layer is the same layer");
    assert_ne!(after[3], before[2], "the plain COPY made a new layer");
    let files = s.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "l:1",
        "cat",
        "/v2",
        "/app/app.txt",
    ]);
    assert_eq!(files, "v2\nhello\n");

    // --no-cache copies again.
    let out = s.ok(&["build", "--no-cache", "-t", "l:1", c]);
    assert!(!out.contains("Using cache"), "{out}");
    assert_ne!(layers(&s)[2], before[1]);
}
