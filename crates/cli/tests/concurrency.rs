//! Eight processes at once on one store (issue 17's concurrency run, CI-sized): builds that
//! share a base, `run --rm`, detached runs removed with `rm -f`, `rmi` and `image prune` of
//! other images, `builder prune`, pushes and pulls through a loopback registry, and readers
//! (`images`, `ps`, `inspect`). Every command must end within a bound (no deadlock), fail only
//! with Docker's own conflicts, and leave a store whose every image saves (each layer's tar
//! reassembled and checked against its diff_id) and runs, and that `system check --deep`
//! finds clean.
//!
//! `STRATA_STRESS_SECS` sets the length (default 20 s; the run is 120).

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;

/// Errors Docker gives for the same races: an image another process is using, removed
/// meanwhile, or still a parent; a name another process took.
const DOCKERS_CONFLICTS: &[&str] = &[
    "image is being used by",
    "image has dependent child images",
    "No such image",
    "No such container",
    "unable to delete",
    "unable to remove repository reference",
    "is already in use by container",
];

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn eight_processes_share_one_store_without_errors_or_corruption() {
    if !require_root() || !require_tool("/usr/bin/docker-registry") {
        return;
    }
    let secs: u64 = std::env::var("STRATA_STRESS_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let s = Strata::new();
    s.ok(&["import", busybox_tar().to_str().unwrap(), "busybox"]);
    let reg = Registry::start(None);
    let remote = format!("{}/stress/base:1", reg.host());
    s.ok(&["tag", "busybox", &remote]);
    s.ok(&["push", "-q", &remote]);
    let root = s.root.path().to_path_buf();
    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let counts = Arc::new(Mutex::new(
        std::collections::BTreeMap::<&'static str, u32>::new(),
    ));
    let limit = Duration::from_secs(90);
    let workers: Vec<_> = (0..8)
        .map(|w| {
            let (root, stop, failures, counts) =
                (root.clone(), stop.clone(), failures.clone(), counts.clone());
            let remote = remote.clone();
            std::thread::spawn(move || {
                let ctx = tempfile::tempdir().unwrap();
                let mut n = 0u32;
                while !stop.load(Ordering::SeqCst) {
                    n += 1;
                    let tag = format!("w{w}:{n}");
                    let (what, args): (&'static str, Vec<String>) = match (w + n as usize) % 8 {
                        0 | 1 => {
                            // Builds that share the base's layer and, every other time, a
                            // cached first step.
                            std::fs::write(ctx.path().join("f"), format!("{w} {n}\n")).unwrap();
                            std::fs::write(
                                ctx.path().join("Dockerfile"),
                                format!(
                                    "FROM busybox\nRUN echo shared > /shared\nCOPY f /f\nRUN cat /f > /g{}\n",
                                    n % 2
                                ),
                            )
                            .unwrap();
                            (
                                "build",
                                vec![
                                    "build".into(),
                                    "-q".into(),
                                    "--network".into(),
                                    "none".into(),
                                    "-t".into(),
                                    tag.clone(),
                                    ctx.path().display().to_string(),
                                ],
                            )
                        }
                        2 => (
                            "run --rm",
                            ["run", "--rm", "--network", "none", "busybox", "true"]
                                .map(String::from)
                                .to_vec(),
                        ),
                        3 => {
                            let name = format!("c{w}-{n}");
                            let (ok, out) = run_within(
                                &root,
                                &["run", "-d", "--network", "none", "--name", &name, "busybox", "sleep", "5"],
                                limit,
                            );
                            if !ok {
                                failures.lock().unwrap().push(format!("run -d: {out}"));
                            }
                            ("rm -f", vec!["rm".into(), "-f".into(), name])
                        }
                        4 => {
                            // Another worker's image, maybe in use or gone.
                            let other = format!("w{}:{}", (w + 1) % 8, n.saturating_sub(2));
                            ("rmi", vec!["rmi".into(), other])
                        }
                        5 => (
                            "prune",
                            if n.is_multiple_of(2) {
                                ["image", "prune", "-f"].map(String::from).to_vec()
                            } else {
                                ["builder", "prune", "-f"].map(String::from).to_vec()
                            },
                        ),
                        6 => {
                            if n.is_multiple_of(2) {
                                ("pull", vec!["pull".into(), "-q".into(), remote.clone()])
                            } else {
                                ("push", vec!["push".into(), "-q".into(), remote.clone()])
                            }
                        }
                        _ => (
                            "read",
                            match n % 3 {
                                0 => ["images", "-a"].map(String::from).to_vec(),
                                1 => ["ps", "-a"].map(String::from).to_vec(),
                                _ => ["inspect", "busybox"].map(String::from).to_vec(),
                            },
                        ),
                    };
                    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
                    let (ok, out) = run_within(&root, &argv, limit);
                    *counts.lock().unwrap().entry(what).or_default() += 1;
                    if !ok && !DOCKERS_CONFLICTS.iter().any(|c| out.contains(c)) {
                        failures
                            .lock()
                            .unwrap()
                            .push(format!("worker {w}: strata {argv:?}: {out}"));
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(secs));
    stop.store(true, Ordering::SeqCst);
    for t in workers {
        t.join().unwrap();
    }
    let failures = failures.lock().unwrap();
    assert!(
        failures.is_empty(),
        "{} unexpected failures (of {:?}):\n{}",
        failures.len(),
        counts.lock().unwrap(),
        failures.join("\n")
    );
    // Nothing corrupt: every image saves (its layers reassembled and checked against their
    // diff_ids) and a built one runs; nothing is left mounted or running.
    let ids = s.ok(&["images", "-q", "--no-trunc"]);
    let ids: Vec<&str> = ids
        .lines()
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert!(!ids.is_empty());
    let out = tempfile::tempdir().unwrap();
    let archive = out.path().join("all.tar");
    let mut bad = Vec::new();
    for id in &ids {
        let (ok, text) = run_within(
            s.root.path(),
            &["save", "-o", archive.to_str().unwrap(), id],
            limit,
        );
        if !ok {
            bad.push(format!("save {id}: {text}"));
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
    // And the store's own check (every blob's digest, every layer's diff_id) finds nothing.
    let (ok, report) = run_within(s.root.path(), &["system", "check", "--deep"], limit);
    assert!(ok, "system check: {report}");
    let built = s.ok(&["images", "--filter", "reference=w*", "-q"]);
    if let Some(id) = built.lines().next() {
        assert_eq!(
            s.ok(&["run", "--rm", "--network", "none", id, "cat", "/shared"]),
            "shared\n"
        );
    }
    assert_eq!(s.ok(&["ps", "-aq"]), "");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let rootname = s.root.path().display().to_string();
    assert!(!mounts.lines().any(|l| l.contains(&rootname)), "{mounts}");
    eprintln!("concurrency: {:?} in {secs} s", counts.lock().unwrap());
}
