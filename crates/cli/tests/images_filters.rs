//! `images --filter` (`label`, `dangling`, `before`, `since`, `reference`, several at once,
//! with `-q` and `--format`) and its errors, side by side with Docker 20.10 on the same
//! images. Every image this test makes carries a label unique to the run, and every query
//! that could see other images filters on it, since the reference daemon is shared.

mod common;

use std::fs;
use std::process::{Command, Output};

use common::*;

const DOCKER: &str = "/usr/bin/docker";

fn docker_out(args: &[&str]) -> Output {
    Command::new(DOCKER)
        .env("DOCKER_BUILDKIT", "0")
        .args(args)
        .output()
        .unwrap()
}

/// Exit code, standard output and the last line of standard error (client prefixes cut).
fn outcome(o: &Output) -> (i32, String, String) {
    let err = String::from_utf8_lossy(&o.stderr);
    let last = err
        .lines()
        .rfind(|l| !l.trim().is_empty() && !l.starts_with("See '"))
        .unwrap_or("")
        .trim_start_matches("Error response from daemon: ")
        .trim_start_matches("Error: ")
        .to_string();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        last,
    )
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn images_filters_match_docker() {
    if !require_root() || !docker() {
        return;
    }
    let s = Strata::new();
    let run = unique("run");
    let base = unique("strata-filter-base:");
    let tar = busybox_tar();
    s.ok(&["import", tar.to_str().unwrap(), &base]);
    run_ok(DOCKER, &["import", tar.to_str().unwrap(), &base]);
    let repo = unique("strata-filter-x");
    let other = format!("{}/y", unique("strata-filter-o"));
    let ctx = tempfile::tempdir().unwrap();
    // Both builders make the same images in the same order: the first `v` is left dangling
    // by the second build under the same tag; `one` is also tagged `other:v2`.
    let builds: [(&str, String); 4] = [
        (
            "v",
            format!("FROM {base}\nLABEL run={run} a=1\nRUN echo 1 > /f\n"),
        ),
        (
            "v",
            format!("FROM {base}\nLABEL run={run} a=1 b=2\nRUN echo 2 > /f\n"),
        ),
        (
            "one",
            format!("FROM {base}\nLABEL run={run} a=3\nRUN echo 3 > /f\n"),
        ),
        (
            "two",
            format!("FROM {base}\nLABEL run={run} c=\nRUN echo 4 > /f\n"),
        ),
    ];
    for (tag, df) in &builds {
        fs::write(ctx.path().join("Dockerfile"), df).unwrap();
        let t = format!("{repo}:{tag}");
        s.ok(&[
            "build",
            "-q",
            "--network",
            "none",
            "-t",
            &t,
            ctx.path().to_str().unwrap(),
        ]);
        let o = docker_out(&[
            "build",
            "-q",
            "--network",
            "none",
            "-t",
            &t,
            ctx.path().to_str().unwrap(),
        ]);
        assert_success(&o);
        // `before`/`since` compare creation times, which need to differ.
        std::thread::sleep(std::time::Duration::from_millis(1100));
    }
    let one = format!("{repo}:one");
    let two = format!("{repo}:two");
    let v = format!("{repo}:v");
    s.ok(&["tag", &one, &format!("{other}:v2")]);
    run_ok(DOCKER, &["tag", &one, &format!("{other}:v2")]);

    let label = format!("label=run={run}");
    let names = "{{.Repository}}:{{.Tag}}";
    let queries: Vec<Vec<String>> = vec![
        vec!["--filter".into(), label.clone()],
        vec!["-a".into(), "--filter".into(), label.clone()],
        vec![
            "--filter".into(),
            label.clone(),
            "--filter".into(),
            "label=a".into(),
        ],
        vec![
            "--filter".into(),
            label.clone(),
            "--filter".into(),
            "label=a=1".into(),
        ],
        vec![
            "--filter".into(),
            label.clone(),
            "-f".into(),
            "label=a=1".into(),
            "-f".into(),
            "label=b".into(),
        ],
        vec![
            "--filter".into(),
            label.clone(),
            "--filter".into(),
            "label=c=".into(),
        ],
        vec![
            "--filter".into(),
            label.clone(),
            "--filter".into(),
            "label=nope".into(),
        ],
        vec![
            "--filter".into(),
            label.clone(),
            "--filter".into(),
            "dangling=true".into(),
        ],
        vec![
            "--filter".into(),
            label.clone(),
            "--filter".into(),
            " Dangling = false ".into(),
        ],
        vec![
            "-a".into(),
            "--filter".into(),
            label.clone(),
            "--filter".into(),
            "dangling=false".into(),
        ],
        vec![
            "--filter".into(),
            label.clone(),
            "--filter".into(),
            format!("before={two}"),
        ],
        vec![
            "--filter".into(),
            label.clone(),
            "--filter".into(),
            format!("since={v}"),
        ],
        vec![
            "--filter".into(),
            label.clone(),
            "--filter".into(),
            format!("since={v}"),
            "--filter".into(),
            format!("before={two}"),
        ],
        vec!["--filter".into(), format!("reference={repo}")],
        vec!["--filter".into(), format!("reference={repo}:o*")],
        vec!["--filter".into(), format!("reference=*:v2")],
        vec![
            "--filter".into(),
            format!("reference={}/*", other.split('/').next().unwrap()),
        ],
        vec![
            "--filter".into(),
            format!("reference=docker.io/library/{repo}"),
        ],
        vec![
            "--filter".into(),
            format!("reference={repo}"),
            "--filter".into(),
            format!("reference={other}"),
        ],
        vec![
            "--filter".into(),
            format!("reference={other}"),
            repo.clone(),
        ],
        vec![format!("{repo}:t*")],
        vec![
            "--filter".into(),
            format!("reference={repo}"),
            "--filter".into(),
            "label=a".into(),
        ],
        vec![
            "--filter".into(),
            format!("reference={repo}"),
            "--filter".into(),
            "dangling=true".into(),
        ],
    ];
    for q in &queries {
        for fmt in [
            vec!["--format".to_string(), names.to_string()],
            vec!["-q".to_string()],
        ] {
            let mut args: Vec<String> = vec!["images".into()];
            args.extend(q.iter().cloned());
            args.extend(fmt.iter().cloned());
            let a: Vec<&str> = args.iter().map(String::as_str).collect();
            let ours = outcome(&s.cmd().args(&a).output().unwrap());
            let theirs = outcome(&docker_out(&a));
            if q.len() == 2 && q[1] == label {
                // The run's own images: one, other/y:v2, two, v and the dangling first v.
                assert_eq!(theirs.1.lines().count(), 5, "{args:?}: {theirs:?}");
            }
            if fmt[0] == "-q" {
                // IDs differ between the two stores: compare how many, and the exit.
                assert_eq!(
                    (ours.0, ours.1.lines().count()),
                    (theirs.0, theirs.1.lines().count()),
                    "{args:?}: strata {ours:?}, docker {theirs:?}"
                );
            } else {
                // Docker's client lists the repositories of one image in no fixed order
                // (a Go map), so rows are compared as sets.
                let rows = |o: &(i32, String, String)| {
                    let mut v: Vec<String> = o.1.lines().map(str::to_string).collect();
                    v.sort();
                    (o.0, v, o.2.clone())
                };
                assert_eq!(rows(&ours), rows(&theirs), "{args:?}");
            }
        }
    }

    // Errors, word for word, with Docker's exit codes.
    for q in [
        vec!["--filter", "x=1"],
        vec!["--filter", "dangling=maybe"],
        vec!["--filter", "label"],
        vec!["--filter", "reference=["],
        vec!["--filter", "before=strata-filter-nosuch"],
        vec!["--filter", "since=strata-filter-nosuch:1"],
    ] {
        let mut a = vec!["images"];
        a.extend(q.iter());
        let ours = outcome(&s.cmd().args(&a).output().unwrap());
        let theirs = outcome(&docker_out(&a));
        assert_ne!(theirs.0, 0, "{a:?}");
        assert_eq!((ours.0, &ours.2), (theirs.0, &theirs.2), "{a:?}");
    }

    let _ = Command::new(DOCKER)
        .args(["rmi", "-f", &one, &two, &v, &format!("{other}:v2"), &base])
        .output();
    let _ = Command::new(DOCKER)
        .args(["image", "prune", "-f", "--filter", &label])
        .output();
}
