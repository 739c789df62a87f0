//! The crash matrix (issue 17), CI-sized: strata is killed with SIGKILL at random instants of
//! `build` (a COPY of a large file and a RUN step), `pull` and `push` (a loopback
//! `docker-registry`), `load`, `import`, `commit`, `rm`, `rmi`, `image prune`, `builder prune`
//! and `save`. Each command's duration is measured once, then it is killed at uniform random
//! fractions of it. After each kill: `system check --deep` exits 0 (what the dead process left
//! is reported as a leftover, collected by the next command; anything else is damage), every
//! image complete before the kill is still listed and its layers hash to their diff_ids, and
//! the interrupted command run again succeeds.
//!
//! `STRATA_CRASH_KILLS` (default 15), `STRATA_CRASH_MB` (the size of the large file, default
//! 24) and `STRATA_CRASH_SEED` (default: the time; printed, to replay a failure) scale it;
//! `scripts/crash-matrix` runs the full matrix (100 kills).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;

const LIMIT: Duration = Duration::from_secs(300);

/// Runs `args` and kills it with SIGKILL after `delay`; whether it had ended by itself.
fn kill_after(root: &Path, args: &[&str], delay: Duration) -> bool {
    let (mut child, out, err) = spawn_draining(root, args);
    let start = Instant::now();
    let mut ended = false;
    while start.elapsed() < delay {
        if child.try_wait().unwrap().is_some() {
            ended = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(1).min(delay));
    }
    if !ended {
        // SIGKILL (Child::kill) of strata alone, as `kill -9` would.
        let _ = child.kill();
    }
    let _ = child.wait();
    let _ = (out.join(), err.join());
    ended
}

/// xorshift64*: seeded, printed, replayable.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

struct World {
    s: Strata,
    reg: Registry,
    /// A fresh registry for each push (one that has the blobs already makes a push quick).
    push_reg: std::cell::RefCell<Registry>,
    ctx: tempfile::TempDir,
    big_archive: PathBuf,
    big_tar: PathBuf,
}

impl World {
    fn root(&self) -> &Path {
        self.s.root.path()
    }
    fn run(&self, args: &[&str]) -> (bool, String) {
        run_within(self.root(), args, LIMIT)
    }
    fn ok(&self, args: &[&str]) -> String {
        let (ok, out) = self.run(args);
        assert!(ok, "strata {args:?}: {out}");
        out
    }
    fn remote(&self, name: &str) -> String {
        format!("{}/crash/{name}", self.reg.host())
    }
    fn ids(&self) -> BTreeSet<String> {
        self.ok(&["images", "-a", "-q", "--no-trunc"])
            .lines()
            .map(str::to_string)
            .collect()
    }
    fn id_of(&self, name: &str) -> Option<String> {
        let (ok, out) = self.run(&["inspect", "-f", "{{.Id}}", name]);
        ok.then(|| out.trim().to_string())
    }
}

/// A command of the matrix: how to make it ready to run (again), and its arguments.
struct Case {
    name: &'static str,
    /// Makes the command's precondition true (run before every attempt).
    prepare: fn(&World, u32) -> (),
    args: fn(&World, u32) -> Vec<String>,
    /// Images the command may legitimately remove.
    removes: fn(&World) -> BTreeSet<String>,
}

fn none(_: &World) -> BTreeSet<String> {
    BTreeSet::new()
}

/// `crash-c`: a stopped container whose writable layer holds a copy of the big file (what
/// `commit` and `rm` are killed in the middle of).
fn make_copying_container(w: &World) {
    w.ok(&[
        "run",
        "--name",
        "crash-c",
        "--network",
        "none",
        "-v",
        &format!("{}:/ctx:ro", w.ctx.path().display()),
        "busybox",
        "cp",
        "/ctx/big",
        "/copied",
    ]);
}

fn rmi_quiet(w: &World, name: &str) {
    let _ = w.run(&["rmi", "-f", name]);
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "build",
            prepare: |_, _| {},
            args: |w, _| {
                [
                    "build",
                    "-q",
                    "--no-cache",
                    "--network",
                    "none",
                    "-t",
                    "crash/built",
                    w.ctx.path().to_str().unwrap(),
                ]
                .map(String::from)
                .to_vec()
            },
            removes: none,
        },
        Case {
            name: "pull",
            prepare: |w, _| {
                rmi_quiet(w, &w.remote("big:1"));
                rmi_quiet(w, "crash/loaded");
            },
            args: |w, _| vec!["pull".into(), "-q".into(), w.remote("big:1")],
            removes: none,
        },
        Case {
            name: "push",
            prepare: |w, _| {
                let old = format!("{}/crash/pushed:1", w.push_reg.borrow().host());
                rmi_quiet(w, &old);
                *w.push_reg.borrow_mut() = Registry::start(None);
                let new = format!("{}/crash/pushed:1", w.push_reg.borrow().host());
                w.ok(&["tag", "crash/big", &new]);
            },
            args: |w, _| {
                let to = format!("{}/crash/pushed:1", w.push_reg.borrow().host());
                vec!["push".into(), "-q".into(), to]
            },
            removes: none,
        },
        Case {
            name: "load",
            prepare: |w, _| {
                rmi_quiet(w, "crash/loaded");
                rmi_quiet(w, &w.remote("big:1"));
            },
            args: |w, _| {
                vec![
                    "load".into(),
                    "-q".into(),
                    "-i".into(),
                    w.big_archive.display().to_string(),
                ]
            },
            removes: none,
        },
        Case {
            name: "import",
            prepare: |w, _| {
                rmi_quiet(w, "crash/imported");
                let _ = w.run(&["image", "prune", "-f"]);
            },
            args: |w, _| {
                vec![
                    "import".into(),
                    w.big_tar.display().to_string(),
                    "crash/imported".into(),
                ]
            },
            removes: none,
        },
        Case {
            name: "commit",
            prepare: |w, _| {
                rmi_quiet(w, "crash/committed");
                let _ = w.run(&["rm", "-f", "crash-c"]);
                make_copying_container(w);
            },
            args: |_, _| {
                ["commit", "crash-c", "crash/committed"]
                    .map(String::from)
                    .to_vec()
            },
            removes: none,
        },
        Case {
            name: "rm",
            prepare: |w, _| {
                let (ok, _) = w.run(&["inspect", "crash-c"]);
                if !ok {
                    make_copying_container(w);
                }
            },
            args: |_, _| ["rm", "crash-c"].map(String::from).to_vec(),
            removes: none,
        },
        Case {
            name: "rmi",
            prepare: |w, _| {
                if w.id_of("crash/loaded").is_none() {
                    w.ok(&["load", "-q", "-i", w.big_archive.to_str().unwrap()]);
                }
                rmi_quiet(w, &w.remote("big:1"));
            },
            args: |_, _| ["rmi", "crash/loaded"].map(String::from).to_vec(),
            removes: |w| w.id_of("crash/loaded").into_iter().collect(),
        },
        Case {
            name: "image prune",
            prepare: |w, _| {
                // A dangling image (an import without a name) whose layer nothing else has.
                rmi_quiet(w, "crash/imported");
                w.ok(&["import", w.big_tar.to_str().unwrap()]);
            },
            args: |_, _| ["image", "prune", "-f"].map(String::from).to_vec(),
            removes: |w| {
                w.ok(&["images", "-q", "--no-trunc", "--filter", "dangling=true"])
                    .lines()
                    .map(str::to_string)
                    .collect()
            },
        },
        Case {
            name: "builder prune",
            prepare: |w, _| {
                w.ok(&[
                    "build",
                    "-q",
                    "--network",
                    "none",
                    "-t",
                    "crash/built",
                    w.ctx.path().to_str().unwrap(),
                ]);
            },
            args: |_, _| ["builder", "prune", "-af"].map(String::from).to_vec(),
            removes: none,
        },
        Case {
            name: "save",
            prepare: |_, _| {},
            args: |w, _| {
                vec![
                    "save".into(),
                    "-o".into(),
                    w.ctx.path().join("saved.tar").display().to_string(),
                    "crash/big".into(),
                ]
            },
            removes: none,
        },
    ]
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn sigkill_at_random_instants_leaves_a_sound_store() {
    if !require_root() || !require_tool("/usr/bin/docker-registry") {
        return;
    }
    let env = |k: &str| std::env::var(k).ok().and_then(|s| s.parse::<u64>().ok());
    let kills = env("STRATA_CRASH_KILLS").unwrap_or(15) as usize;
    let mb = env("STRATA_CRASH_MB").unwrap_or(24);
    let seed = env("STRATA_CRASH_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
    }) | 1;
    eprintln!("crash matrix: {kills} kills, {mb} MB, STRATA_CRASH_SEED={seed}");
    let mut rng = Rng(seed);

    // The world: busybox, a large file (random, so nothing compresses it away), an image with
    // it, its archive and its copy in the registry.
    let ctx = tempfile::tempdir().unwrap();
    {
        let mut f = std::fs::File::create(ctx.path().join("big")).unwrap();
        let mut buf = vec![0u8; 1 << 20];
        for _ in 0..mb {
            for chunk in buf.chunks_mut(8) {
                chunk.copy_from_slice(&rng.next().to_le_bytes());
            }
            f.write_all(&buf).unwrap();
        }
    }
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM busybox\nCOPY big /big\nRUN md5sum /big > /sum && cp /big /big2\n",
    )
    .unwrap();
    let big_tar = ctx.path().join("rootfs.tar");
    {
        let mut b = tar::Builder::new(std::fs::File::create(&big_tar).unwrap());
        b.append_path_with_name(ctx.path().join("big"), "big")
            .unwrap();
        b.finish().unwrap();
    }
    let w = World {
        s: Strata::new(),
        reg: Registry::start(None),
        push_reg: std::cell::RefCell::new(Registry::start(None)),
        big_archive: ctx.path().join("big-archive.tar"),
        big_tar,
        ctx,
    };
    w.ok(&["import", busybox_tar().to_str().unwrap(), "busybox"]);
    w.ok(&[
        "build",
        "-q",
        "--network",
        "none",
        "-t",
        "crash/big",
        w.ctx.path().to_str().unwrap(),
    ]);
    // Another image with a large layer of its own, for load, pull and rmi: saved, pushed, then
    // removed.
    std::fs::write(
        w.ctx.path().join("Dockerfile.other"),
        "FROM busybox\nCOPY big /other\n",
    )
    .unwrap();
    w.ok(&[
        "build",
        "-q",
        "--network",
        "none",
        "-f",
        w.ctx.path().join("Dockerfile.other").to_str().unwrap(),
        "-t",
        "crash/loaded",
        w.ctx.path().to_str().unwrap(),
    ]);
    w.ok(&[
        "save",
        "-o",
        w.big_archive.to_str().unwrap(),
        "crash/loaded",
    ]);
    w.ok(&["tag", "crash/loaded", &w.remote("big:1")]);
    w.ok(&["push", "-q", &w.remote("big:1")]);
    rmi_quiet(&w, "crash/loaded");
    rmi_quiet(&w, &w.remote("big:1"));
    w.ok(&["builder", "prune", "-af"]);

    let cases = cases();
    let mut durations: BTreeMap<&str, Duration> = BTreeMap::new();
    // Per command: kills, kills that landed before the end, clean checks, failures.
    let mut table: BTreeMap<&str, [u32; 4]> = BTreeMap::new();
    let mut failures = Vec::new();
    for k in 0..kills {
        let case = &cases[k % cases.len()];
        let n = k as u32;
        (case.prepare)(&w, n);
        let args = (case.args)(&w, n);
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let d = match durations.get(case.name) {
            Some(d) => *d,
            None => {
                // Measured once (its run also proves the command works), then made ready again.
                let start = Instant::now();
                let (ok, out) = w.run(&argv);
                assert!(ok, "strata {argv:?} (measuring): {out}");
                let d = start.elapsed();
                eprintln!("{}: {d:?}", case.name);
                durations.insert(case.name, d);
                (case.prepare)(&w, n + 1000);
                d
            }
        };
        let args = (case.args)(&w, n + 1000 * u32::from(k < cases.len()));
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let before = w.ids();
        let removable = (case.removes)(&w);
        let fraction = rng.unit();
        let delay = d.mul_f64(fraction);
        let ended = kill_after(w.root(), &argv, delay);
        let row = table.entry(case.name).or_default();
        row[0] += 1;
        if !ended {
            row[1] += 1;
        }
        let what = format!(
            "kill {k} ({} at {:.3} of {d:?}, seed {seed}{})",
            case.name,
            fraction,
            if ended { ", it had ended" } else { "" }
        );
        let mut bad = Vec::new();
        let (ok, report) = w.run(&["system", "check", "--deep"]);
        if !ok {
            bad.push(format!("system check --deep after {what}:\n{report}"));
        }
        let after = w.ids();
        let lost: Vec<&String> = before
            .difference(&after)
            .filter(|id| !removable.contains(*id))
            .collect();
        if !lost.is_empty() {
            bad.push(format!("images lost after {what}: {lost:?}"));
        }
        let (ok, out) = w.run(&argv);
        let gone_already = matches!(case.name, "rm" | "rmi") && out.contains("No such");
        if !ok && !gone_already {
            bad.push(format!("strata {argv:?} again after {what}: {out}"));
        }
        if bad.is_empty() {
            row[2] += 1;
        } else {
            row[3] += 1;
            eprintln!("FAILED: {}", bad.join("\n"));
            failures.extend(bad);
            // Go on from a repaired store.
            let _ = w.run(&["system", "check", "--repair"]);
        }
    }
    // The registry's images pull back whole.
    let (ok, report) = w.run(&["system", "check", "--deep"]);
    assert!(ok, "{report}");
    eprintln!(
        "\n{:<14} {:>5} {:>9} {:>12} {:>8}",
        "command", "kills", "mid-run", "clean checks", "failures"
    );
    for (name, [k, mid, clean, failed]) in &table {
        eprintln!("{name:<14} {k:>5} {mid:>9} {clean:>12} {failed:>8}");
    }
    let total: [u32; 4] = table.values().fold([0; 4], |mut a, r| {
        for i in 0..4 {
            a[i] += r[i];
        }
        a
    });
    eprintln!(
        "{:<14} {:>5} {:>9} {:>12} {:>8}   (STRATA_CRASH_SEED={seed})",
        "all", total[0], total[1], total[2], total[3]
    );
    assert!(
        failures.is_empty(),
        "{} failures (replay with STRATA_CRASH_SEED={seed}):\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
