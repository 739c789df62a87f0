//! `build --check`: BuildKit's build checks with their names, messages and output, and
//! strata's order advisor on the tutorial's Python example (`examples/simple-api`): the bad
//! order (the whole context copied before the package install) is flagged with both lines
//! and a cost computed from the context's git history; the good order is quiet;
//! `--fix-order` gives a Dockerfile that builds the same files.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use common::*;

/// The tutorial's bad order: every edit of the app re-runs the package install.
const BAD: &str = "FROM py:1\n\
    WORKDIR /app\n\
    COPY . /app\n\
    RUN pip install -r requirements.txt\n\
    CMD [\"sh\", \"/app/api.sh\"]\n";

/// The tutorial's good order.
const GOOD: &str = "FROM py:1\n\
    WORKDIR /app\n\
    COPY requirements.txt /app/\n\
    RUN pip install -r requirements.txt\n\
    COPY . /app\n\
    CMD [\"sh\", \"/app/api.sh\"]\n";

fn git(dir: &Path, args: &[&str]) {
    let mut all = vec![
        "-C",
        dir.to_str().unwrap(),
        "-c",
        "user.name=test",
        "-c",
        "user.email=test@example.com",
        "-c",
        "commit.gpgsign=false",
    ];
    all.extend_from_slice(args);
    run_ok("git", &all);
}

/// The tutorial's Python example as a git repository with `dockerfile`: a first commit with
/// everything, then three commits that edit only the app, so that the copied files changed
/// in 4 of 4 commits and requirements.txt in 1. `None` when git is missing (the test setup
/// uses it to write history; strata itself reads `.git` with gix).
fn repo(dockerfile: &str) -> Option<tempfile::TempDir> {
    if !require_tool("git") {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::create_dir(d.join("app")).unwrap();
    fs::write(d.join("requirements.txt"), "flask==3.0.0\n").unwrap();
    fs::write(d.join("app/api.sh"), "echo api v0\n").unwrap();
    fs::write(d.join("Dockerfile"), dockerfile).unwrap();
    git(d, &["init", "-q", "."]);
    git(d, &["add", "-A"]);
    git(d, &["commit", "-q", "-m", "first"]);
    for i in 1..=3 {
        fs::write(d.join("app/api.sh"), format!("echo api v{i}\n")).unwrap();
        git(d, &["commit", "-q", "-a", "-m", &format!("edit {i}")]);
    }
    Some(dir)
}

/// Runs `strata build --check ARGS…`: (exit code, stdout, stderr).
fn check(s: &Strata, args: &[&str]) -> (i32, String, String) {
    let out = s
        .cmd()
        .args(["build", "--check"])
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn bad_order_is_flagged_with_both_lines_and_its_cost() {
    let Some(ctx) = repo(BAD) else { return };
    let s = Strata::new();
    let c = ctx.path().to_str().unwrap();
    let (code, out, err) = check(&s, &[c]);
    // Docker's `--check` exits 1 when it found something.
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        out.starts_with(
            "Check complete, 1 warning has been found!\n\nWARNING: CacheBustingOrder\n"
        ),
        "{out}"
    );
    // Both lines, named in the message and marked in the excerpt.
    assert!(out.contains("Line 3 (COPY . /app)"), "{out}");
    assert!(
        out.contains(
            "line 4 (RUN pip install -r requirements.txt), which needs only requirements.txt"
        ),
        "{out}"
    );
    assert!(out.contains("   3 | >>> COPY . /app\n"), "{out}");
    assert!(
        out.contains("   4 | >>> RUN pip install -r requirements.txt\n"),
        "{out}"
    );
    // The cost: the copied files changed in 4 of the 4 commits, the install has no record
    // (assumed 30 s): 1.00 x 30 s; reordered, only requirements.txt (1 of 4) re-runs it.
    assert!(
        out.contains("Expected cost per edit: 30.0 s = 1.00 x 30.0 s (the copied files changed in 4 of the last 4 commits"),
        "{out}"
    );
    assert!(out.contains("changed in 4 of the last 4 commits"), "{out}");
    assert!(
        out.contains("7.5 s once reordered (requirements.txt changed in 1 of them)"),
        "{out}"
    );
    assert!(
        out.contains("(build --check --fix-order prints the reordered Dockerfile)"),
        "{out}"
    );
    assert!(
        out.contains("Fix: COPY requirements.txt /app/ first, then line 4"),
        "{out}"
    );
    let shown = format!("{}:3\n", Path::new(c).join("Dockerfile").display());
    assert!(out.contains(&shown), "{out}");
    // The history is read from `.git` itself: without any `git` on PATH, the same finding.
    let no_git = s
        .cmd()
        .env("PATH", ctx.path().join("no-such-dir"))
        .args(["build", "--check", c])
        .output()
        .unwrap();
    assert_eq!(no_git.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&no_git.stdout), out);
    // Nothing was built, nor recorded as a build.
    assert_eq!(s.ok(&["images", "-q"]), "");
    assert_eq!(s.ok(&["builder", "history", "ls"]).lines().count(), 1);

    // `# check=error=true`: the warning becomes BuildKit's build error.
    fs::write(
        ctx.path().join("Dockerfile"),
        format!("# check=error=true\n{BAD}"),
    )
    .unwrap();
    let (code, out, err) = check(&s, &[c]);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(out.contains("WARNING: CacheBustingOrder"), "{out}");
    assert!(
        err.contains("ERROR: lint violation found for rules: CacheBustingOrder"),
        "{err}"
    );
    // `# check=skip=CacheBustingOrder` turns it off.
    fs::write(
        ctx.path().join("Dockerfile"),
        format!("# check=skip=CacheBustingOrder\n{BAD}"),
    )
    .unwrap();
    let (code, out, _) = check(&s, &[c]);
    assert_eq!(
        (code, out.as_str()),
        (0, "Check complete, no warnings found.\n")
    );
}

#[test]
fn good_order_is_quiet() {
    let Some(ctx) = repo(GOOD) else { return };
    let s = Strata::new();
    let (code, out, err) = check(&s, &[ctx.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(out, "Check complete, no warnings found.\n");
}

/// The shipped example (`examples/simple-api`, the tutorial's good order) with the tutorial's
/// own install line (`RUN pip install -r /requirements.txt`; the example's busybox stand-in
/// takes milliseconds, and a step under a second is not worth reordering for) is quiet; the
/// tutorial's exercise (`COPY app /app` moved right after `COPY requirements.txt`) is
/// flagged on both lines, and `--fix-order` gives the good order back.
#[test]
fn the_shipped_example_and_the_tutorials_exercise() {
    if !require_tool("git") {
        return;
    }
    let example = workspace_root().join("examples/simple-api");
    let shipped = fs::read_to_string(example.join("Dockerfile")).unwrap();
    let good: String = shipped
        .lines()
        .map(|l| match l.starts_with("RUN ") {
            true => "RUN pip install -r /requirements.txt\n".to_string(),
            false => format!("{l}\n"),
        })
        .collect();
    assert_ne!(good, shipped);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::create_dir(d.join("app")).unwrap();
    for f in ["requirements.txt", "app/api.sh"] {
        fs::copy(example.join(f), d.join(f)).unwrap();
    }
    fs::write(d.join("Dockerfile"), &good).unwrap();
    git(d, &["init", "-q", "."]);
    git(d, &["add", "-A"]);
    git(d, &["commit", "-q", "-m", "first"]);
    for i in 1..=3 {
        fs::write(d.join("app/api.sh"), format!("echo edit {i}\n")).unwrap();
        git(d, &["commit", "-q", "-a", "-m", "edit"]);
    }
    let s = Strata::new();
    let c = d.to_str().unwrap();
    let (code, out, err) = check(&s, &[c]);
    assert_eq!(
        (code, out.as_str()),
        (0, "Check complete, no warnings found.\n"),
        "{err}"
    );

    let lines: Vec<&str> = good.lines().collect();
    let copy_app = lines
        .iter()
        .position(|l| l.starts_with("COPY app"))
        .unwrap();
    let copy_req = lines
        .iter()
        .position(|l| l.starts_with("COPY requirements.txt"))
        .unwrap();
    let mut exercise = lines.clone();
    let moved = exercise.remove(copy_app);
    exercise.insert(copy_req + 1, moved);
    fs::write(d.join("Dockerfile"), exercise.join("\n") + "\n").unwrap();
    let (code, out, _) = check(&s, &[c]);
    assert_eq!(code, 1, "{out}");
    let (app_line, run_line) = (copy_req + 2, copy_req + 3);
    let run = exercise[run_line - 1];
    assert!(
        out.contains(&format!(
            "Line {app_line} ({moved}) copies files that change often before line {run_line} ({run}), which needs none of them"
        )),
        "{out}"
    );
    assert!(out.contains("Expected cost per edit: 30.0 s"), "{out}");
    assert!(
        out.contains(&format!(
            "Fix: move line {app_line} ({moved}) after line {run_line}"
        )),
        "{out}"
    );
    let fixed = s.ok(&["build", "--check", "--fix-order", c]);
    assert_eq!(fixed, good);
}

#[test]
fn without_git_a_directory_copy_is_assumed_to_change_with_every_edit() {
    let ctx = tempfile::tempdir().unwrap();
    fs::write(ctx.path().join("requirements.txt"), "x\n").unwrap();
    fs::write(ctx.path().join("Dockerfile"), BAD).unwrap();
    let s = Strata::new();
    let (code, out, _) = check(
        &s,
        &[
            "-f",
            &ctx.path().join("Dockerfile").display().to_string(),
            ctx.path().to_str().unwrap(),
        ],
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("no git history or build record"), "{out}");
    assert!(out.contains("Expected cost per edit: 30.0 s"), "{out}");
}

#[test]
fn buildkit_rules_fire_with_their_names_and_check_skip_works() {
    let text = "FROM busybox as Builder\n\
        MAINTAINER me@example.com\n\
        ENV API_TOKEN abc\n\
        WORKDIR app\n\
        EXPOSE 80/TCP\n\
        CMD echo one\n\
        cmd echo two\n";
    let ctx = tempfile::tempdir().unwrap();
    fs::write(ctx.path().join("Dockerfile"), text).unwrap();
    let s = Strata::new();
    let c = ctx.path().to_str().unwrap();
    let (code, out, _) = check(&s, &[c]);
    assert_eq!(code, 1, "{out}");
    let rules: Vec<&str> = out
        .lines()
        .filter_map(|l| l.strip_prefix("WARNING: "))
        .map(|l| l.split(" - ").next().unwrap())
        .collect();
    for rule in [
        "FromAsCasing",
        "StageNameCasing",
        "MaintainerDeprecated",
        "LegacyKeyValueFormat",
        "SecretsUsedInArgOrEnv",
        "WorkdirRelativePath",
        "ExposeProtoCasing",
        "JSONArgsRecommended",
        "MultipleInstructionsDisallowed",
        "ConsistentInstructionCasing",
    ] {
        assert!(rules.contains(&rule), "{rule} missing: {out}");
    }
    assert!(
        out.contains("WARNING: FromAsCasing - https://docs.docker.com/go/dockerfile/rule/from-as-casing/\n'as' and 'FROM' keywords' casing do not match\n"),
        "{out}"
    );
    assert!(
        out.contains("Do not use ARG or ENV instructions for sensitive data (ENV \"API_TOKEN\")"),
        "{out}"
    );
    assert!(
        out.starts_with(&format!(
            "Check complete, {} warnings have been found!\n",
            rules.len()
        )),
        "{out}"
    );
    // Sorted by line, as BuildKit prints them.
    assert!(out.find("FromAsCasing").unwrap() < out.find("MaintainerDeprecated").unwrap());

    // `# check=skip=…` drops the named rules.
    fs::write(
        ctx.path().join("Dockerfile"),
        format!("# check=skip=FromAsCasing,JSONArgsRecommended\n{text}"),
    )
    .unwrap();
    let (_, out, _) = check(&s, &[c]);
    assert!(!out.contains("WARNING: FromAsCasing"), "{out}");
    assert!(!out.contains("WARNING: JSONArgsRecommended"), "{out}");
    assert!(out.contains("WARNING: MaintainerDeprecated"), "{out}");
    // `skip=all`: nothing.
    fs::write(
        ctx.path().join("Dockerfile"),
        format!("# check=skip=all\n{text}"),
    )
    .unwrap();
    let (code, out, _) = check(&s, &[c]);
    assert_eq!(
        (code, out.as_str()),
        (0, "Check complete, no warnings found.\n")
    );
}

/// Every file under `dir`: path -> content (or link target).
fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            let rel = p.strip_prefix(dir).unwrap().display().to_string();
            let t = e.file_type().unwrap();
            if t.is_symlink() {
                out.insert(
                    rel,
                    fs::read_link(&p)
                        .unwrap()
                        .display()
                        .to_string()
                        .into_bytes(),
                );
            } else if t.is_dir() {
                out.insert(rel, b"<dir>".to_vec());
                stack.push(p);
            } else {
                out.insert(rel, fs::read(&p).unwrap());
            }
        }
    }
    out
}

/// A store with busybox as `bb:1` and `py:1`: busybox with a `pip` that "installs" the
/// requirements by recording them.
fn store_with_pip() -> Strata {
    let s = Strata::new();
    s.ok(&["import", busybox_tar().to_str().unwrap(), "bb:1"]);
    let base = tempfile::tempdir().unwrap();
    fs::write(
        base.path().join("pip"),
        "#!/bin/sh\n# pip install -r FILE\nmkdir -p /site-packages && cat \"$3\" > /site-packages/installed.txt\n",
    )
    .unwrap();
    fs::write(
        base.path().join("Dockerfile"),
        "FROM bb:1\nCOPY pip /usr/bin/pip\nRUN chmod 755 /usr/bin/pip\n",
    )
    .unwrap();
    s.ok(&[
        "build",
        "--network",
        "none",
        "-t",
        "py:1",
        base.path().to_str().unwrap(),
    ]);
    s
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn fix_order_builds_the_same_files_and_records_replace_the_assumption() {
    if !require_root() {
        return;
    }
    let Some(ctx) = repo(BAD) else { return };
    let s = store_with_pip();
    let c = ctx.path().to_str().unwrap();
    let out = s
        .cmd()
        .args(["build", "--check", "--fix-order", c])
        .output()
        .unwrap();
    assert_success(&out);
    let fixed = String::from_utf8(out.stdout).unwrap();
    assert_eq!(fixed, GOOD);

    // Both orders build the same files.
    let dest = tempfile::tempdir().unwrap();
    let build = |dockerfile: &str, name: &str| {
        let f = dest.path().join(format!("{name}.Dockerfile"));
        fs::write(&f, dockerfile).unwrap();
        let d = dest.path().join(name);
        s.ok(&[
            "build",
            "--network",
            "none",
            "-f",
            f.to_str().unwrap(),
            "-o",
            &format!("type=local,dest={}", d.display()),
            c,
        ]);
        tree(&d)
    };
    let before = build(BAD, "bad");
    let after = build(&fixed, "fixed");
    assert_eq!(
        before.get("site-packages/installed.txt").map(Vec::as_slice),
        Some(&b"flask==3.0.0\n"[..])
    );
    assert!(before.contains_key("app/app/api.sh"), "{:?}", before.keys());
    assert_eq!(before, after);

    // Once the build has a record of a slow install, its duration replaces the assumption.
    let slow = BAD.replace(
        "RUN pip install -r requirements.txt",
        "RUN pip install -r requirements.txt && sleep 2",
    );
    fs::write(ctx.path().join("Dockerfile"), &slow).unwrap();
    s.ok(&["build", "--network", "none", "-t", "api:1", c]);
    let (code, out, _) = check(&s, &[c]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("in the last build"), "{out}");
    assert!(!out.contains("assumed 30 s"), "{out}");

    // UndefinedVar knows the base image's environment from the store: py:1 has PATH.
    fs::write(
        ctx.path().join("Dockerfile"),
        "FROM py:1\nENV P=$PATH\nCOPY $PTH /x\n",
    )
    .unwrap();
    let (code, out, _) = check(&s, &[c]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("WARNING: UndefinedVar - https://docs.docker.com/go/dockerfile/rule/undefined-var/\nUsage of undefined variable '$PTH' (did you mean $PATH?)\n"),
        "{out}"
    );
    assert_eq!(out.matches("WARNING: UndefinedVar").count(), 1, "{out}");
}

#[test]
fn context_in_a_subdirectory_of_the_repository() {
    if !require_tool("git") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let svc = d.join("svc");
    fs::create_dir_all(svc.join("app")).unwrap();
    fs::write(svc.join("requirements.txt"), "x\n").unwrap();
    fs::write(svc.join("app/a.py"), "0\n").unwrap();
    fs::write(d.join("other.txt"), "0\n").unwrap();
    let text = "FROM py:1\nWORKDIR /app\nCOPY app /app/app\nCOPY requirements.txt .\nRUN pip install -r requirements.txt\n";
    fs::write(svc.join("Dockerfile"), text).unwrap();
    git(d, &["init", "-q", "."]);
    git(d, &["add", "-A"]);
    git(d, &["commit", "-q", "-m", "first"]);
    for i in 1..=2 {
        fs::write(svc.join("app/a.py"), format!("{i}\n")).unwrap();
        git(d, &["commit", "-q", "-a", "-m", "app"]);
    }
    // A commit outside the context counts, touching none of its files.
    fs::write(d.join("other.txt"), "1\n").unwrap();
    git(d, &["commit", "-q", "-a", "-m", "other"]);
    let s = Strata::new();
    let c = svc.to_str().unwrap();
    let (code, out, _) = check(&s, &[c]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("which needs none of them"), "{out}");
    assert!(
        out.contains("Expected cost per edit: 22.5 s = 0.75 x 30.0 s (the copied files changed in 3 of the last 4 commits"),
        "{out}"
    );
    assert!(
        out.contains("Fix: move line 3 (COPY app /app/app) after line 5"),
        "{out}"
    );
    let fixed = s.ok(&["build", "--check", "--fix-order", c]);
    assert_eq!(
        fixed,
        "FROM py:1\nWORKDIR /app\nCOPY requirements.txt .\nRUN pip install -r requirements.txt\nCOPY app /app/app\n"
    );
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn without_git_the_build_records_say_how_often_the_copy_changed() {
    if !require_root() {
        return;
    }
    let s = store_with_pip();
    let ctx = tempfile::tempdir().unwrap();
    let d = ctx.path();
    fs::create_dir(d.join("app")).unwrap();
    fs::write(d.join("requirements.txt"), "flask==3.0.0\n").unwrap();
    fs::write(d.join("app/api.sh"), "echo v0\n").unwrap();
    let slow = BAD.replace(
        "RUN pip install -r requirements.txt",
        "RUN pip install -r requirements.txt && sleep 2",
    );
    fs::write(d.join("Dockerfile"), &slow).unwrap();
    let c = d.to_str().unwrap();
    // Two builds, the app edited in between: the COPY's own files changed once.
    s.ok(&["build", "--network", "none", "-t", "api:1", c]);
    fs::write(d.join("app/api.sh"), "echo v1\n").unwrap();
    s.ok(&["build", "--network", "none", "-t", "api:1", c]);
    let (code, out, _) = check(&s, &[c]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("WARNING: CacheBustingOrder"), "{out}");
    assert!(
        out.contains("no git history: the copied files changed in 1 of the last 2 builds"),
        "{out}"
    );
    assert!(out.contains("the step took "), "{out}");
    assert!(out.contains(" = 0.50 x "), "{out}");
}
