//! Why a step missed the cache, and the records builds leave: the tutorial's Python-style
//! example (examples/simple-api's layout on the busybox-based examples/base image, with a
//! build arg) built again and again, each kind of miss printing its reason under the step;
//! `--explain` listing old and new hashes and modes; `builder history ls|inspect` showing
//! the builds; `builder prune` clearing the records; removing images breaking nothing.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::*;
use sha2::{Digest, Sha256};

const DOCKERFILE: &str = "FROM strata-demo/base:1
ARG FLAVOR=plain
WORKDIR /app
COPY requirements.txt /requirements.txt
RUN mkdir -p /site-packages && echo $FLAVOR > /site-packages/flavor && cat /requirements.txt > /site-packages/installed.txt
COPY app /app
CMD [\"sh\", \"/app/api.sh\"]
";

/// A store with the base image, and the example's context.
fn setup() -> (Strata, tempfile::TempDir, PathBuf) {
    let s = Strata::new();
    let tar = busybox_tar();
    s.ok(&[
        "import",
        tar.to_str().unwrap(),
        "strata-demo/busybox:rootfs",
    ]);
    let base = workspace_root().join("examples/base");
    s.ok(&[
        "build",
        "-q",
        "-t",
        "strata-demo/base:1",
        base.to_str().unwrap(),
    ]);
    let work = tempfile::tempdir().unwrap();
    let ctx = work.path().join("api");
    fs::create_dir_all(ctx.join("app")).unwrap();
    write(&ctx, "Dockerfile", DOCKERFILE, 0o644);
    write(&ctx, "requirements.txt", "flask==3.0\n", 0o644);
    write(&ctx, "app/api.sh", "echo api\n", 0o644);
    (s, work, ctx)
}

fn write(dir: &Path, rel: &str, data: &str, mode: u32) {
    let p = dir.join(rel);
    fs::write(&p, data).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
}

fn build(s: &Strata, ctx: &Path, extra: &[&str]) -> String {
    let mut args = vec!["build", "-t", "api"];
    args.extend_from_slice(extra);
    args.push(ctx.to_str().unwrap());
    s.ok(&args)
}

/// The reason printed under step `n`, if it missed.
fn reason(out: &str, n: usize) -> Option<String> {
    let mut lines = out
        .lines()
        .skip_while(|l| !l.starts_with(&format!("Step {n}/")));
    lines.next()?;
    lines
        .next()?
        .strip_prefix(" ---> Cache miss: ")
        .map(str::to_string)
}

fn reasons(out: &str) -> Vec<(usize, String)> {
    (1..=7)
        .filter_map(|n| reason(out, n).map(|r| (n, r)))
        .collect()
}

fn earlier(from: usize, missed: usize) -> Vec<(usize, String)> {
    (from..=7)
        .map(|n| (n, format!("an earlier step missed (step {missed})")))
        .collect()
}

fn image_id(s: &Strata, name: &str) -> String {
    s.ok(&["inspect", "-f", "{{.Id}}", name]).trim().to_string()
}

/// The first 12 hex digits of the hash the cache key takes from a regular file in the
/// context (Docker's tarsum of its header and content).
fn file_hash(ctx: &Path, rel: &str) -> String {
    let p = ctx.join(rel);
    let data = fs::read(&p).unwrap();
    let mode = fs::metadata(&p).unwrap().permissions().mode() & 0o7777;
    let header = format!(
        "name{rel}mode{}uid0gid0size{}typeflag0linknameunamegnamedevmajor0devminor0",
        mode | 0o100000,
        data.len()
    );
    let mut h = Sha256::new();
    h.update(header.as_bytes());
    h.update(&data);
    hex::encode(h.finalize())[..12].to_string()
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn every_kind_of_miss_says_why() {
    if !require_root() {
        return;
    }
    let (s, _work, ctx) = setup();

    let first = build(&s, &ctx, &[]);
    let mut want = vec![(2, "first build of this step".to_string())];
    want.extend(earlier(3, 2));
    assert_eq!(reasons(&first), want, "{first}");

    // Unchanged: no miss, no reason.
    let again = build(&s, &ctx, &[]);
    assert!(!again.contains("Cache miss"), "{again}");

    // A file's content.
    write(&ctx, "app/api.sh", "echo changed\n", 0o644);
    let out = build(&s, &ctx, &[]);
    let mut want = vec![(6, "app/api.sh changed".to_string())];
    want.extend(earlier(7, 6));
    assert_eq!(reasons(&out), want, "{out}");

    // A file's mode.
    fs::set_permissions(ctx.join("app/api.sh"), fs::Permissions::from_mode(0o600)).unwrap();
    let out = build(&s, &ctx, &[]);
    assert_eq!(
        reason(&out, 6).as_deref(),
        Some("mode of app/api.sh changed (0644 -> 0600)"),
        "{out}"
    );

    // Files added.
    for f in ["a.py", "b.py", "c.py"] {
        write(&ctx, &format!("app/{f}"), "print(1)\n", 0o644);
    }
    let out = build(&s, &ctx, &[]);
    assert_eq!(
        reason(&out, 6).as_deref(),
        Some("3 files added under app/: a.py, b.py, c.py"),
        "{out}"
    );

    // A build arg: the RUN that reads it misses, the steps before it stay cached.
    let out = build(&s, &ctx, &["--build-arg", "FLAVOR=fancy"]);
    let mut want = vec![(5, "build arg FLAVOR changed (plain -> fancy)".to_string())];
    want.extend(earlier(6, 5));
    assert_eq!(reasons(&out), want, "{out}");

    // The instruction.
    let df = DOCKERFILE.replace("echo $FLAVOR >", "echo flavor=$FLAVOR >");
    write(&ctx, "Dockerfile", &df, 0o644);
    let out = build(&s, &ctx, &["--build-arg", "FLAVOR=fancy"]);
    let old_run = DOCKERFILE.lines().nth(4).unwrap();
    assert_eq!(
        reason(&out, 5),
        Some(format!("the instruction changed (was: {old_run})")),
        "{out}"
    );

    // The base image: built again with a change, under the same name.
    let was = image_id(&s, "strata-demo/base:1");
    let base2 = ctx.parent().unwrap().join("base2");
    fs::create_dir_all(&base2).unwrap();
    let base_df = fs::read_to_string(workspace_root().join("examples/base/Dockerfile")).unwrap();
    write(
        &base2,
        "Dockerfile",
        &format!("{base_df}\nENV BASE_REVISION=2\n"),
        0o644,
    );
    s.ok(&[
        "build",
        "-q",
        "-t",
        "strata-demo/base:1",
        base2.to_str().unwrap(),
    ]);
    let now = image_id(&s, "strata-demo/base:1");
    assert_ne!(was, now);
    let out = build(&s, &ctx, &["--build-arg", "FLAVOR=fancy"]);
    let short = |id: &str| id.trim_start_matches("sha256:")[..12].to_string();
    let mut want = vec![(
        2,
        format!(
            "the base image changed (strata-demo/base:1 now {}, was {})",
            short(&now),
            short(&was)
        ),
    )];
    want.extend(earlier(3, 2));
    assert_eq!(reasons(&out), want, "{out}");

    // --no-cache: every step says so.
    let out = build(&s, &ctx, &["--build-arg", "FLAVOR=fancy", "--no-cache"]);
    let want: Vec<(usize, String)> = (2..=7).map(|n| (n, "--no-cache".to_string())).collect();
    assert_eq!(reasons(&out), want, "{out}");

    // -q prints the image ID only; --progress=plain (BuildKit's display) says why on the
    // step's vertex when asked to explain.
    write(&ctx, "app/api.sh", "echo quiet\n", 0o600);
    let out = build(&s, &ctx, &["--build-arg", "FLAVOR=fancy", "-q"]);
    assert_eq!(out.lines().count(), 1, "{out}");
    write(&ctx, "app/api.sh", "echo plain\n", 0o600);
    let o = s
        .cmd()
        .args([
            "build",
            "--progress=plain",
            "--explain",
            "--build-arg",
            "FLAVOR=fancy",
        ])
        .arg(&ctx)
        .output()
        .unwrap();
    assert_success(&o);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("#6 cache miss: app/api.sh changed\n"), "{err}");

    // Removing images breaks nothing.
    s.ok(&["rmi", "api"]);
    let out = build(&s, &ctx, &["--build-arg", "FLAVOR=fancy"]);
    assert!(!out.contains("Cache miss"), "{out}");
    // Same inputs, but no image made with them (here: none with these clamped times).
    let out = build(
        &s,
        &ctx,
        &[
            "--build-arg",
            "FLAVOR=fancy",
            "--build-arg",
            "SOURCE_DATE_EPOCH=0",
        ],
    );
    assert_eq!(
        reason(&out, 2).as_deref(),
        Some("no cached image of it is left (removed, or built with other options)"),
        "{out}"
    );
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn explain_lists_old_and_new_hashes_and_modes() {
    if !require_root() {
        return;
    }
    let (s, _work, ctx) = setup();
    write(&ctx, "app/gone.py", "x = 1\n", 0o644);
    build(&s, &ctx, &[]);
    let old_api = file_hash(&ctx, "app/api.sh");
    let old_gone = file_hash(&ctx, "app/gone.py");
    write(&ctx, "app/api.sh", "echo new\n", 0o755);
    write(&ctx, "app/new.py", "y = 2\n", 0o644);
    fs::remove_file(ctx.join("app/gone.py")).unwrap();
    let new_api = file_hash(&ctx, "app/api.sh");
    let new_new = file_hash(&ctx, "app/new.py");
    let out = build(&s, &ctx, &["--explain"]);
    let lines: Vec<&str> = out
        .lines()
        .skip_while(|l| !l.starts_with("Step 6/"))
        .skip(2)
        .take_while(|l| l.starts_with("      "))
        .map(str::trim)
        .collect();
    // The files; the directory's own entry (only its name and mode) is left aside.
    let files: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| !l.starts_with("changed app:"))
        .collect();
    assert_eq!(
        files,
        vec![
            format!("changed app/api.sh: hash {old_api} -> {new_api}, mode 0644 -> 0755"),
            format!("removed app/gone.py: hash {old_gone} -> -, mode 0644 -> -"),
            format!("added app/new.py: hash - -> {new_new}, mode - -> 0644"),
        ],
        "{out}"
    );
    assert_eq!(
        reason(&out, 6).as_deref(),
        Some("mode of app/api.sh changed (0644 -> 0755); app/new.py added; app/gone.py removed"),
        "{out}"
    );
    // Only the first missed step is explained.
    let step7: Vec<&str> = out
        .lines()
        .skip_while(|l| !l.starts_with("Step 7/"))
        .take_while(|l| !l.starts_with(" ---> Running in"))
        .collect();
    assert!(!step7.iter().any(|l| l.starts_with("      ")), "{out}");

    // A build arg: its old and new value, and nothing else.
    let out = build(&s, &ctx, &["--explain", "--build-arg", "FLAVOR=fancy"]);
    assert_eq!(
        explained(&out, 5),
        ["build arg FLAVOR: plain -> fancy"],
        "{out}"
    );
    // The instruction: the old and the new text.
    let old_run = DOCKERFILE.lines().nth(4).unwrap();
    let new_run = old_run.replace("echo $FLAVOR >", "echo flavor=$FLAVOR >");
    write(
        &ctx,
        "Dockerfile",
        &DOCKERFILE.replace(old_run, &new_run),
        0o644,
    );
    let out = build(&s, &ctx, &["--explain", "--build-arg", "FLAVOR=fancy"]);
    assert_eq!(
        explained(&out, 5),
        [format!("instruction: {old_run} -> {new_run}")],
        "{out}"
    );
}

/// The `--explain` lines under step `n` (after its miss reason), trimmed.
fn explained(out: &str, n: usize) -> Vec<String> {
    out.lines()
        .skip_while(|l| !l.starts_with(&format!("Step {n}/")))
        .skip(2)
        .take_while(|l| l.starts_with("      "))
        .map(|l| l.trim().to_string())
        .collect()
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn builds_leave_records_that_prune_clears() {
    if !require_root() {
        return;
    }
    let (s, _work, ctx) = setup();
    build(&s, &ctx, &[]);
    write(&ctx, "app/api.sh", "echo two\n", 0o644);
    build(&s, &ctx, &[]);
    // A failing build is recorded too.
    write(
        &ctx,
        "Dockerfile",
        "FROM strata-demo/base:1\nRUN exit 3\n",
        0o644,
    );
    let (code, _) = s.fails(&["build", ctx.to_str().unwrap()]);
    assert_ne!(code, 0);

    let ls = s.ok(&["builder", "history", "ls"]);
    let rows: Vec<&str> = ls.lines().collect();
    assert!(rows[0].starts_with("BUILD ID"), "{ls}");
    for col in ["NAME", "STATUS", "CREATED AT", "DURATION"] {
        assert!(rows[0].contains(col), "{ls}");
    }
    // The base's build, then the three of `api`, newest first.
    assert_eq!(rows.len(), 5, "{ls}");
    assert!(
        rows[1].contains(" api ") && rows[1].contains("Error"),
        "{ls}"
    );
    assert!(
        rows[2].contains(" api ") && rows[2].contains("Completed"),
        "{ls}"
    );
    assert!(
        rows[4].contains(" base ") && rows[4].contains("Completed"),
        "{ls}"
    );

    let json: Vec<serde_json::Value> = s
        .ok(&["builder", "history", "ls", "--format", "json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(json.len(), 4);
    let second = &json[1];
    assert_eq!(second["Status"], "Completed");
    let canonical = ctx.canonicalize().unwrap();
    assert_eq!(second["Context"], canonical.to_str().unwrap());
    assert_eq!(
        second["Dockerfile"],
        canonical.join("Dockerfile").to_str().unwrap()
    );
    let steps = second["Steps"].as_array().unwrap();
    assert_eq!(steps.len(), 7);
    let cached: Vec<bool> = steps.iter().map(|s| s["Cached"] == true).collect();
    assert_eq!(cached, [false, true, true, true, true, false, false]);
    assert_eq!(steps[5]["MissReason"], "app/api.sh changed");
    assert!(steps[5]["Bytes"].as_u64().unwrap() > 0, "{second}");
    // Each step's duration; the build's start.
    assert!(steps[5]["DurationMs"].as_f64().unwrap() > 0.0, "{second}");
    assert!(
        second["CreatedAt"].as_str().unwrap().ends_with('Z'),
        "{second}"
    );
    assert_eq!(steps[4]["Line"], 5);

    // inspect: the latest by default, any by ID; JSON with --format json.
    let latest = s.ok(&["builder", "history", "inspect"]);
    assert!(
        latest.contains(&format!(
            "ID:             {}",
            json[0]["ID"].as_str().unwrap()
        )),
        "{latest}"
    );
    assert!(latest.contains("Status:         Error"), "{latest}");
    assert!(latest.contains("RUN exit 3"), "{latest}");
    let id = second["ID"].as_str().unwrap();
    let text = s.ok(&["builder", "history", "inspect", &id[..8]]);
    assert!(text.contains("miss: app/api.sh changed"), "{text}");
    assert!(text.contains("CACHED"), "{text}");
    let one: serde_json::Value =
        serde_json::from_str(&s.ok(&["builder", "history", "inspect", "--format", "json", id]))
            .unwrap();
    assert_eq!(one["ID"], id);
    assert_eq!(one["NumCachedSteps"], 4);

    // What other checks read (`build --check`): the latest build's steps of this context and
    // Dockerfile, with how often each ran and how often its own inputs changed.
    {
        let store = store::Store::open(s.root.path()).unwrap();
        let df = ctx.join("Dockerfile");
        let stats = store.step_stats(&ctx, &df).unwrap();
        let lines: Vec<(usize, &str, u32, u32, u32)> = stats
            .iter()
            .map(|s| {
                (
                    s.line,
                    s.instruction.as_str(),
                    s.builds,
                    s.misses,
                    s.changed,
                )
            })
            .collect();
        // The latest build is the failing one: its steps, counted over the three builds.
        assert_eq!(
            lines,
            [
                (1, "FROM strata-demo/base:1", 3, 0, 0),
                (2, "RUN exit 3", 1, 0, 0),
            ],
            "{stats:?}"
        );
        let durations = store.step_durations(&ctx, &df).unwrap();
        assert_eq!(durations.len(), 2);
    }
    write(&ctx, "Dockerfile", DOCKERFILE, 0o644);
    s.ok(&["build", ctx.to_str().unwrap()]);
    {
        let store = store::Store::open(s.root.path()).unwrap();
        let stats = store.step_stats(&ctx, &ctx.join("Dockerfile")).unwrap();
        let copy_app = stats.iter().find(|s| s.line == 6).unwrap();
        assert_eq!(copy_app.instruction, "COPY app /app");
        // First build (a miss of no change of its own), the edit (one), and now cached.
        assert_eq!(
            (copy_app.builds, copy_app.misses, copy_app.changed),
            (3, 2, 1)
        );
        let run = stats.iter().find(|s| s.line == 5).unwrap();
        assert_eq!((run.builds, run.misses, run.changed), (3, 1, 0));
        assert!(run.duration > std::time::Duration::ZERO);
    }

    // history rm forgets one record.
    let gone = json[2]["ID"].as_str().unwrap();
    assert_eq!(s.ok(&["builder", "history", "rm", gone]).trim(), gone);
    let ls = s.ok(&["builder", "history", "ls"]);
    assert!(!ls.contains(gone), "{ls}");
    assert_eq!(ls.lines().count(), 5, "{ls}");

    // builder prune clears the records: no history, and the next build is a first again.
    s.ok(&["builder", "prune", "-f"]);
    let ls = s.ok(&["builder", "history", "ls"]);
    assert_eq!(ls.lines().count(), 1, "{ls}");
    write(&ctx, "Dockerfile", DOCKERFILE, 0o644);
    let out = build(&s, &ctx, &["--no-cache"]);
    assert_eq!(reason(&out, 2).as_deref(), Some("--no-cache"), "{out}");
    write(&ctx, "app/api.sh", "echo three\n", 0o644);
    let out = build(&s, &ctx, &[]);
    assert_eq!(
        reason(&out, 6).as_deref(),
        Some("app/api.sh changed"),
        "{out}"
    );
    s.ok(&["builder", "prune", "-f"]);
    write(&ctx, "app/api.sh", "echo four\n", 0o644);
    let out = build(&s, &ctx, &[]);
    assert_eq!(
        reason(&out, 6).as_deref(),
        Some("first build of this step"),
        "{out}"
    );
}
