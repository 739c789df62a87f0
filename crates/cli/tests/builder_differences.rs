//! Builder behaviours found to differ from Docker 20.10's classic builder, each run against
//! strata and Docker side by side: EXPOSE ranges and their history, an `ARG` repeated in a
//! stage taking the global default, COPY of several sources to a destination without `/`,
//! a Dockerfile of only `FROM scratch`, an empty Dockerfile and one of only comments.

mod common;

use std::fs;
use std::process::Command;

use common::*;

const DOCKER: &str = "/usr/bin/docker";

/// Builds `dockerfile` (in a context holding files `a` and `b`) with strata and with
/// Docker's classic builder. Returns both outcomes: Ok(tag) or Err(last line of stderr,
/// without Docker's `Error response from daemon: ` / strata's `Error: `).
fn both(
    s: &Strata,
    base: &str,
    dockerfile: &str,
) -> (Result<String, String>, Result<String, String>) {
    let ctx = tempfile::tempdir().unwrap();
    fs::write(ctx.path().join("a"), "a\n").unwrap();
    fs::write(ctx.path().join("b"), "b\n").unwrap();
    fs::write(
        ctx.path().join("Dockerfile"),
        dockerfile.replace("BASE", base),
    )
    .unwrap();
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tag = format!("{}-{n}", unique("strata-diff:"));
    let ours = s
        .cmd()
        .args(["build", "-q", "-t", &tag])
        .arg(ctx.path())
        .output()
        .unwrap();
    let theirs = Command::new(DOCKER)
        .env("DOCKER_BUILDKIT", "0")
        // `--force-rm`: a failed step's container goes too (it is not compared).
        .args(["build", "--network", "none", "--force-rm", "-q", "-t", &tag])
        .arg(ctx.path())
        .output()
        .unwrap();
    let outcome = |o: &std::process::Output| {
        if o.status.success() {
            Ok(tag.clone())
        } else {
            let err = String::from_utf8_lossy(&o.stderr);
            let last = err.lines().last().unwrap_or("").to_string();
            Err(last
                .trim_start_matches("Error response from daemon: ")
                .trim_start_matches("Error: ")
                .to_string())
        }
    };
    (outcome(&ours), outcome(&theirs))
}

fn inspect_both(s: &Strata, tag: &str, template: &str) -> (String, String) {
    (
        s.ok(&["inspect", "-f", template, tag]),
        run_ok(DOCKER, &["inspect", "-f", template, tag]),
    )
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn builder_matches_docker_on_the_differences_found() {
    if !require_root() || !docker() {
        return;
    }
    let base = unique("strata-diff-base:");
    // Every tag `both` can make (`-0`, `-1`, …), whether or not the test gets to its end.
    let _cleanup = common::DockerCleanup {
        containers: Vec::new(),
        volumes: Vec::new(),
        images: std::iter::once(base.clone())
            .chain((0..12).map(|n| format!("{}-{n}", unique("strata-diff:"))))
            .collect(),
    };
    let tar = busybox_tar();
    let s = Strata::new();
    s.ok(&["import", tar.to_str().unwrap(), &base]);
    run_ok(DOCKER, &["import", tar.to_str().unwrap(), &base]);

    // EXPOSE: each port of a range; the history keeps the words, sorted, duplicates and all.
    let (ours, theirs) = both(
        &s,
        &base,
        "FROM BASE\nEXPOSE 8080/tcp 53/udp 80 7000-7002 80\n",
    );
    let tag = ours.unwrap();
    assert_eq!(theirs.as_deref(), Ok(tag.as_str()));
    let (a, b) = inspect_both(&s, &tag, "{{json .Config.ExposedPorts}}");
    assert_eq!(a, b);
    assert!(a.contains("\"7001/tcp\""), "{a}");
    let fmt = "{{.CreatedBy}}";
    let top = |h: String| h.lines().next().unwrap_or("").to_string();
    assert_eq!(
        top(s.ok(&["history", "--no-trunc", "--format", fmt, &tag])),
        top(run_ok(
            DOCKER,
            &["history", "--no-trunc", "--format", fmt, &tag]
        ))
    );

    // `ARG NAME` in a stage takes the default of the global `ARG NAME=...`, in RUN and LABEL.
    let (ours, theirs) = both(
        &s,
        &base,
        "ARG NAME=global\nFROM BASE\nARG NAME\nLABEL n=$NAME\nRUN echo \"run:$NAME\" > /n\n",
    );
    let tag2 = ours.unwrap();
    assert_eq!(theirs.as_deref(), Ok(tag2.as_str()));
    let (a, b) = inspect_both(&s, &tag2, "{{json .Config.Labels}}");
    assert_eq!(
        (a.trim(), b.trim()),
        ("{\"n\":\"global\"}", "{\"n\":\"global\"}")
    );
    assert_eq!(
        s.ok(&["history", "--no-trunc", "--format", fmt, &tag2]),
        run_ok(DOCKER, &["history", "--no-trunc", "--format", fmt, &tag2])
    );
    assert_eq!(
        s.ok(&["run", "--rm", "--network", "none", &tag2, "cat", "/n"]),
        "run:global\n"
    );

    // Errors, word for word.
    for df in [
        "FROM BASE\nCOPY a b /notdir\n",
        "FROM BASE\nWORKDIR /app\nCOPY a b .\n",
        "FROM BASE\nCOPY [ab] /x\n",
        "FROM BASE\nADD a b /notdir\n",
        "FROM scratch\n",
        "# only a comment\n\n",
        "",
    ] {
        let (ours, theirs) = both(&s, &base, df);
        assert!(theirs.is_err(), "Docker built {df:?}");
        assert_eq!(ours, theirs, "{df:?}");
    }
    // One source matched by a wildcard may go to a destination without `/`.
    let (ours, theirs) = both(&s, &base, "FROM BASE\nCOPY a* /x\n");
    assert!(ours.is_ok() && theirs.is_ok(), "{ours:?} {theirs:?}");
}
