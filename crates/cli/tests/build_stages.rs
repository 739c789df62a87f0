//! Stages as a graph: independent stages of a multi-stage build run at the same time, the
//! output stays the sequential build's, in stage order, and the image is the same.

mod common;

use std::fs;
use std::time::{Duration, Instant};

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

/// Builds with `STRATA_BUILD_JOBS=jobs` (0: unset, the default); returns the output and
/// the time it took.
fn build(s: &Strata, ctx: &tempfile::TempDir, jobs: usize) -> (String, Duration) {
    let mut cmd = s.cmd();
    if jobs > 0 {
        cmd.env("STRATA_BUILD_JOBS", jobs.to_string());
    }
    let start = Instant::now();
    let out = cmd
        .args(["build", "--network", "none", "-t", "st:1"])
        .arg(ctx.path())
        .output()
        .unwrap();
    let took = start.elapsed();
    assert_success(&out);
    (String::from_utf8(out.stdout).unwrap(), took)
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

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn independent_stages_run_in_parallel_with_sequential_output_and_image() {
    if !require_root() {
        return;
    }
    let (s, ctx) = setup(TWO_SLEEPS);
    let (parallel, took) = build(&s, &ctx, 0);
    // The two sleeps overlap: 4 s one after the other.
    assert!(took < Duration::from_secs(3), "took {took:?}:\n{parallel}");

    let (seq_store, _) = setup("");
    let (sequential, took_seq) = build(&seq_store, &ctx, 1);
    assert!(took_seq >= Duration::from_secs(4), "took {took_seq:?}");
    // The same lines in the same order, stage after stage.
    assert_eq!(without_ids(&parallel), without_ids(&sequential));
    assert!(
        parallel.starts_with("Step 1/8 : FROM bb:1 AS a\n"),
        "{parallel}"
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
