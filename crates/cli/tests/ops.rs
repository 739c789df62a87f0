//! Container operations side by side with Docker 20.10: `pause`/`unpause` (freezer cgroup,
//! `(Paused)` in `ps`, `State.Paused` in `inspect`, the daemon's errors, `stop` of a paused
//! container), `update` (limits written to the cgroups and shown in `HostConfig`, with the
//! daemon's checks), `stats` (Docker's columns from the container's cgroups), `cp`,
//! `port`, `top` and `attach`.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::*;

const DOCKER: &str = "/usr/bin/docker";

/// A store with busybox imported as `IMAGE`, and the same image in Docker (removed from
/// Docker again when the returned guard goes).
fn both_with_busybox(image: &str) -> Option<(Strata, DockerCleanup)> {
    if !require_root() || !docker() {
        return None;
    }
    let s = Strata::new();
    let tar = busybox_tar();
    s.ok(&["import", tar.to_str().unwrap(), image]);
    run_ok(DOCKER, &["import", tar.to_str().unwrap(), image]);
    let cleanup = DockerCleanup {
        containers: Vec::new(),
        volumes: Vec::new(),
        images: vec![image.to_string()],
    };
    Some((s, cleanup))
}

/// (exit code, stdout, stderr) with every 64- and 12-digit ID of `ids` replaced by `ID`.
fn outcome(o: Output, ids: &[&str]) -> (i32, String, String) {
    let clean = |b: &[u8]| {
        let mut t = String::from_utf8_lossy(b).into_owned();
        for id in ids {
            t = t.replace(id, "ID").replace(&id[..12], "ID");
        }
        t
    };
    (
        o.status.code().unwrap_or(-1),
        clean(&o.stdout),
        clean(&o.stderr),
    )
}

fn ours(s: &Strata, args: &[&str], ids: &[&str]) -> (i32, String, String) {
    outcome(s.cmd().args(args).output().unwrap(), ids)
}

fn theirs(args: &[&str], ids: &[&str]) -> (i32, String, String) {
    outcome(Command::new(DOCKER).args(args).output().unwrap(), ids)
}

/// Starts `sleep 1000` detached (no network) on both sides under `name`; returns the IDs.
fn start_both(s: &Strata, image: &str, name: &str, extra: &[&str]) -> (String, String) {
    let _ = Command::new(DOCKER).args(["rm", "-f", name]).output();
    let mut args = vec!["run", "-d", "--network", "none", "--name", name];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[image, "sleep", "1000"]);
    let a = s.ok(&args).trim().to_string();
    let b = run_ok(DOCKER, &args).trim().to_string();
    (a, b)
}

fn docker_rm(name: &str) {
    let _ = Command::new(DOCKER).args(["rm", "-f", name]).output();
}

/// Removes a container on both sides when dropped, so that a failing test leaves no
/// detached container (and its monitor) running.
struct Remove<'a>(&'a Strata, String);

impl Drop for Remove<'_> {
    fn drop(&mut self) {
        let _ = self.0.cmd().args(["rm", "-f", &self.1]).output();
        docker_rm(&self.1);
    }
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn pause_and_unpause_as_docker() {
    let image = unique("strata-ops-pause:");
    let Some((s, _docker_image)) = both_with_busybox(&image) else {
        return;
    };
    let name = unique("strata-ops-pause-");
    let (a, b) = start_both(&s, &image, &name, &[]);
    let _guard = Remove(&s, name.clone());
    let ids = [a.as_str(), b.as_str()];
    let both = |args: &[&str]| {
        let x = ours(&s, args, &ids);
        let y = theirs(args, &ids);
        assert_eq!(x, y, "{args:?}");
        x
    };
    assert_eq!(both(&["unpause", &name]).0, 1);
    assert_eq!(
        both(&["pause", &name]),
        (0, format!("{name}\n"), String::new())
    );
    // A frozen process: its state in /proc is D or the freezer's; ps shows (Paused).
    let (_, err) = (0, both(&["pause", &name]).2);
    assert_eq!(
        err,
        "Error response from daemon: Container ID is already paused\n"
    );
    both(&[
        "inspect",
        "-f",
        "{{.State.Status}} {{.State.Paused}} {{.State.Running}}",
        &name,
    ]);
    let status = s.ok(&[
        "ps",
        "--format",
        "{{.Status}}",
        "--filter",
        &format!("name={name}"),
    ]);
    assert!(status.trim().ends_with("(Paused)"), "{status}");
    let paused = s.ok(&["ps", "-q", "--filter", "status=paused"]);
    assert_eq!(paused.trim(), &a[..12]);
    assert_eq!(both(&["unpause", &name]).1, format!("{name}\n"));
    both(&[
        "inspect",
        "-f",
        "{{.State.Status}} {{.State.Paused}}",
        &name,
    ]);
    both(&["pause", "strata-ops-no-such-container"]);
    // A paused container stops as Docker's: the stop signal is delivered once it is thawed
    // (sleep as PID 1 ignores SIGTERM, so the kill after the timeout ends it: 137).
    both(&["pause", &name]);
    both(&["stop", "-t", "1", &name]);
    both(&[
        "inspect",
        "-f",
        "{{.State.Status}} {{.State.Paused}} {{.State.ExitCode}}",
        &name,
    ]);
    assert_eq!(
        both(&["pause", &name]).2,
        "Error response from daemon: Container ID is not running\n"
    );
    both(&["unpause", &name]);
    // kill of a paused container.
    s.ok(&["start", &name]);
    run_ok(DOCKER, &["start", &name]);
    both(&["pause", &name]);
    both(&["kill", &name]);
    s.ok(&["wait", &name]);
    run_ok(DOCKER, &["wait", &name]);
    both(&[
        "inspect",
        "-f",
        "{{.State.Status}} {{.State.ExitCode}}",
        &name,
    ]);
    // rm leaves no cgroup behind.
    s.ok(&["rm", &name]);
    docker_rm(&name);
    for ctl in [
        "memory", "cpu", "cpuacct", "cpuset", "pids", "blkio", "freezer", "devices", "",
    ] {
        let d = Path::new("/sys/fs/cgroup")
            .join(ctl)
            .join("strata")
            .join(&a);
        assert!(!d.exists(), "{} left behind", d.display());
    }
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn update_writes_cgroups_and_host_config_as_docker() {
    let image = unique("strata-ops-update:");
    let Some((s, _docker_image)) = both_with_busybox(&image) else {
        return;
    };
    let name = unique("strata-ops-update-");
    let (a, b) = start_both(&s, &image, &name, &["-m", "10m"]);
    let _guard = Remove(&s, name.clone());
    let ids = [a.as_str(), b.as_str()];
    let both = |args: &[&str]| {
        let x = ours(&s, args, &ids);
        let y = theirs(args, &ids);
        assert_eq!(x, y, "{args:?}");
        x
    };
    let fields = "{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}} {{.HostConfig.NanoCpus}} {{.HostConfig.CpuShares}} {{.HostConfig.CpusetCpus}} {{.HostConfig.PidsLimit}} {{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}";
    both(&["inspect", "-f", fields, &name]);
    // A memory limit above the swap limit needs a swap limit too.
    assert_eq!(both(&["update", "--memory", "30m", &name]).0, 1);
    both(&[
        "update",
        "--memory",
        "20m",
        "--memory-swap",
        "40m",
        "--cpus",
        "0.5",
        "--cpu-shares",
        "512",
        "--cpuset-cpus",
        "0",
        "--pids-limit",
        "50",
        "--restart",
        "on-failure:3",
        &name,
    ]);
    both(&["inspect", "-f", fields, &name]);
    let cg = |ctl: &str, file: &str| {
        std::fs::read_to_string(
            Path::new("/sys/fs/cgroup")
                .join(ctl)
                .join("strata")
                .join(&a)
                .join(file),
        )
        .unwrap()
        .trim()
        .to_string()
    };
    assert_eq!(cg("memory", "memory.limit_in_bytes"), "20971520");
    assert_eq!(cg("memory", "memory.memsw.limit_in_bytes"), "41943040");
    assert_eq!(cg("cpu", "cpu.cfs_quota_us"), "50000");
    assert_eq!(cg("cpu", "cpu.shares"), "512");
    assert_eq!(cg("cpuset", "cpuset.cpus"), "0");
    assert_eq!(cg("pids", "pids.max"), "50");
    // The container sees its new limit.
    assert_eq!(
        s.ok(&["exec", &name, "cat", "/sys/fs/cgroup/pids/pids.max"])
            .trim(),
        "50"
    );
    // The daemon's checks.
    for bad in [
        &["update", "--memory", "3m", &name][..],
        &["update", "--cpus", "64", &name],
        &["update", "--cpuset-cpus", "x", &name],
        &["update", "--restart", "bogus", &name],
        &["update", "--memory", "30m", "--memory-swap", "20m", &name],
        &["update", "--cpus", "1", "strata-ops-no-such-container"],
    ] {
        assert_eq!(both(bad).0, 1, "{bad:?}");
    }
    // A stopped container's record changes; its next start uses it.
    s.ok(&["stop", "-t", "0", &name]);
    run_ok(DOCKER, &["stop", "-t", "0", &name]);
    both(&["update", "--pids-limit", "70", "--cpu-shares", "256", &name]);
    both(&["inspect", "-f", fields, &name]);
    s.ok(&["start", &name]);
    assert_eq!(cg("pids", "pids.max"), "70");
    assert_eq!(cg("cpu", "cpu.shares"), "256");
    s.ok(&["rm", "-f", &name]);
    docker_rm(&name);
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn run_limit_flags_are_recorded_as_docker() {
    let image = unique("strata-ops-runlimits:");
    let Some((s, _docker_image)) = both_with_busybox(&image) else {
        return;
    };
    let name = unique("strata-ops-runlimits-");
    let (a, b) = start_both(
        &s,
        &image,
        &name,
        &[
            "-m",
            "32m",
            "--cpus",
            "1.5",
            "--cpu-shares",
            "300",
            "--cpuset-cpus",
            "1",
            "--pids-limit",
            "20",
            "--ulimit",
            "nofile=100:200",
            "--shm-size",
            "128m",
            "--add-host",
            "a:1.2.3.4",
            "--dns",
            "1.2.3.4",
            "--dns-search",
            "ex.com",
            "--dns-option",
            "ndots:2",
            "--expose",
            "7000-7001/udp",
        ],
    );
    let _guard = Remove(&s, name.clone());
    let ids = [a.as_str(), b.as_str()];
    // The other run options as Docker records them.
    let more = "{{json .HostConfig.Ulimits}} {{.HostConfig.ShmSize}} {{json .HostConfig.ExtraHosts}} {{json .HostConfig.Dns}} {{json .HostConfig.DnsSearch}} {{json .HostConfig.DnsOptions}} {{json .Config.ExposedPorts}}";
    let args = ["inspect", "-f", more, &name];
    assert_eq!(ours(&s, &args, &ids), theirs(&args, &ids));
    assert_eq!(
        s.ok(&["exec", &name, "sh", "-c", "ulimit -n; ulimit -Hn"]),
        "100\n200\n"
    );
    let fields = "{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}} {{.HostConfig.NanoCpus}} {{.HostConfig.CpuShares}} {{.HostConfig.CpusetCpus}} {{.HostConfig.PidsLimit}} {{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}";
    let args = ["inspect", "-f", fields, &name];
    assert_eq!(ours(&s, &args, &ids), theirs(&args, &ids));
    let inside = s.ok(&[
        "exec", &name, "sh", "-c",
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/cpu/cpu.shares /sys/fs/cgroup/cpuset/cpuset.cpus /sys/fs/cgroup/pids/pids.max",
    ]);
    assert_eq!(inside, "33554432\n300\n1\n20\n");
    s.ok(&["rm", "-f", &name]);
    docker_rm(&name);
}

/// The columns of a `stats --no-stream` table, split on runs of 3+ spaces.
fn columns(table: &str) -> Vec<Vec<String>> {
    table
        .lines()
        .map(|l| {
            l.split("   ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(String::from)
                .collect()
        })
        .collect()
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn stats_shows_dockers_columns_from_cgroups() {
    let image = unique("strata-ops-stats:");
    let Some((s, _docker_image)) = both_with_busybox(&image) else {
        return;
    };
    let name = unique("strata-ops-stats-");
    let (a, b) = start_both(&s, &image, &name, &["-m", "64m"]);
    let _guard = Remove(&s, name.clone());
    let ids = [a.as_str(), b.as_str()];
    let (c1, t1, e1) = ours(&s, &["stats", "--no-stream", &name], &ids);
    let (c2, t2, e2) = theirs(&["stats", "--no-stream", &name], &ids);
    assert_eq!((c1, &e1), (c2, &e2));
    let (x, y) = (columns(&t1), columns(&t2));
    assert_eq!(x[0], y[0], "headers");
    assert_eq!(x.len(), 2);
    let row = &x[1];
    assert_eq!(row[0], "ID");
    assert_eq!(row[1], name);
    assert!(row[2].ends_with('%'), "{row:?}");
    assert!(row[3].ends_with(" / 64MiB"), "{row:?}");
    assert_eq!(row[5], "0B / 0B", "no network");
    assert_eq!(row[7], "1", "one process");
    // The same row fields and names in a template, and json.
    let f = "{{.Container}}|{{.Name}}|{{.ID}}|{{.PIDs}}|{{.NetIO}}";
    let args = ["stats", "--no-stream", "--format", f, &name];
    assert_eq!(ours(&s, &args, &ids), theirs(&args, &ids));
    let args = [
        "stats",
        "--no-stream",
        "--no-trunc",
        "--format",
        "{{.ID}}",
        &name,
    ];
    assert_eq!(ours(&s, &args, &ids), theirs(&args, &ids));
    // Memory in use grows with what the container allocates (a 20 MB tmpfs file).
    s.ok(&["exec", &name, "sh", "-c", "mkdir -p /t && mount -t tmpfs t /t 2>/dev/null; dd if=/dev/zero of=/dev/shm/f bs=1M count=20 2>/dev/null"]);
    let used = s.ok(&["stats", "--no-stream", "--format", "{{.MemUsage}}", &name]);
    let mib: f64 = used.split("MiB").next().unwrap().parse().unwrap_or(0.0);
    assert!(mib >= 19.0, "{used}");
    // A stopped container with -a: zeros; an unknown one: the daemon's error.
    s.ok(&["stop", "-t", "0", &name]);
    run_ok(DOCKER, &["stop", "-t", "0", &name]);
    let args = ["stats", "--no-stream", &name];
    assert_eq!(ours(&s, &args, &ids), theirs(&args, &ids));
    let args = ["stats", "--no-stream", "strata-ops-no-such-container"];
    assert_eq!(ours(&s, &args, &ids), theirs(&args, &ids));
    s.ok(&["rm", &name]);
    docker_rm(&name);
}

/// Lists a host tree as `path mode uid:gid [-> target]` lines.
fn tree(dir: &Path) -> Vec<String> {
    use std::os::unix::fs::MetadataExt;
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(dir).unwrap().display().to_string();
            let link = std::fs::read_link(&p)
                .map(|t| format!(" -> {}", t.display()))
                .unwrap_or_default();
            out.push(format!(
                "{rel} {:o} {}:{}{link}",
                m.mode(),
                m.uid(),
                m.gid()
            ));
            if m.is_dir() {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn cp_follows_dockers_rules_both_ways() {
    let image = unique("strata-ops-cp:");
    let Some((s, _docker_image)) = both_with_busybox(&image) else {
        return;
    };
    let name = unique("strata-ops-cp-");
    docker_rm(&name);
    let setup = "mkdir -p /d/sub && echo hi > /d/f && echo s > /d/sub/g && ln -s /etc /d/link \
                 && ln -s f /d/flink && echo own > /d/owned && chown 1234:99 /d/owned \
                 && ln -s ../../../../../../d/sub/g /d/esc && touch /ready; sleep 1000";
    let args = [
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        &name,
        &image,
        "sh",
        "-c",
        setup,
    ];
    let a = s.ok(&args).trim().to_string();
    let b = run_ok(DOCKER, &args).trim().to_string();
    let _guard = Remove(&s, name.clone());
    for _ in 0..100 {
        let ready = |o: Output| o.status.success();
        if ready(
            s.cmd()
                .args(["exec", &name, "test", "-e", "/ready"])
                .output()
                .unwrap(),
        ) && ready(run(DOCKER, &["exec", &name, "test", "-e", "/ready"]))
        {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let ids = [a.as_str(), b.as_str()];
    let (ho, hd) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("a"), "a\n").unwrap();
    std::os::unix::fs::chown(host.path().join("a"), Some(1234), Some(99)).unwrap();
    std::fs::create_dir(host.path().join("hd")).unwrap();
    std::fs::write(host.path().join("hd/x"), "x\n").unwrap();
    // Each case runs in a directory of its own on each side; outputs and trees compared.
    let cases: Vec<Vec<String>> = [
        "C:/nosuch x",
        "nosuch-container-strata:/d x",
        "C:/d/f newf",
        "C:/d newd",
        "C:/d/. dot",
        "C:/d/f nodir/",
        "C:/d/f/ x",
        "C:/d/link lnk",
        "-L C:/d/flink fl",
        "-L C:/d/esc esc",
        "C:/d/owned o1",
        "-a C:/d/owned o2",
        "HOST/a C:/nodir/x",
        "HOST/a C:/nodir/",
        "HOST/hd C:/d/f",
        "HOST/a C:/d/sub",
        "-a HOST/a C:/d/sub/a2",
        "HOST/hd C:/new",
        "HOST/hd/. C:/d/sub",
        "HOST/a C:/d/link",
    ]
    .iter()
    .map(|c| c.split(' ').map(String::from).collect())
    .collect();
    for (i, case) in cases.iter().enumerate() {
        let mk = |base: &Path| {
            let d = base.join(i.to_string());
            std::fs::create_dir(&d).unwrap();
            d
        };
        let (od, dd) = (mk(ho.path()), mk(hd.path()));
        let args: Vec<String> = std::iter::once("cp".to_string())
            .chain(case.iter().map(|w| {
                w.replace("C:", &format!("{name}:"))
                    .replace("HOST", &host.path().display().to_string())
            }))
            .collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut x = outcome(s.cmd().args(&args).current_dir(&od).output().unwrap(), &ids);
        x.2 = x.2.replace(&ho.path().display().to_string(), "T");
        let y = outcome(
            Command::new(DOCKER)
                .args(&args)
                .current_dir(&dd)
                .output()
                .unwrap(),
            &ids,
        );
        // Docker's daemon names its own host path in an lstat error; strata the container's.
        let y2 = (
            y.0,
            y.1.clone(),
            y.2.replace(&hd.path().display().to_string(), "T"),
        );
        if case[0] == "C:/d/f/" {
            assert_eq!(
                (x.0, x.2.as_str()),
                (
                    1,
                    "Error response from daemon: lstat /d/f/: not a directory\n"
                )
            );
            assert_eq!(y.0, 1);
        } else {
            assert_eq!(x, y2, "cp {case:?}");
        }
        assert_eq!(tree(&od), tree(&dd), "cp {case:?}");
    }
    // What each container holds afterwards, owners included.
    let listing = [
        "exec",
        &name,
        "sh",
        "-c",
        "cd / && ls -lnR d new etc/a 2>&1 | sed 's/ [A-Z][a-z][a-z] .*:[0-9][0-9] / /'",
    ];
    assert_eq!(ours(&s, &listing, &ids), theirs(&listing, &ids));
    // The escaping link read with -L is the container's file, not the host's.
    let esc = std::fs::read_to_string(ho.path().join("9/esc")).unwrap();
    assert_eq!(esc, "s\n");
    // A tar on standard input: only into a directory, owners kept (as Docker 20.10 without
    // user namespaces, with or without -a), confined.
    let mut t = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(2);
    h.set_mode(0o644);
    h.set_uid(1234);
    h.set_gid(99);
    t.append_data(&mut h, "in/t", &b"t\n"[..]).unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_size(0);
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_mode(0o777);
    t.append_link(&mut h, "in/up", "../../../../../tmp")
        .unwrap();
    let bytes = t.into_inner().unwrap();
    for (flag, owner) in [("", "1234 99"), ("-a", "1234 99")] {
        let mut args = vec!["cp"];
        if !flag.is_empty() {
            args.push(flag);
        }
        let dst = format!("{name}:/d");
        args.extend(["-", dst.as_str()]);
        let st = s
            .cmd()
            .args(&args)
            .write_stdin(bytes.clone())
            .output()
            .unwrap();
        assert_success(&st);
        let out = s.ok(&["exec", &name, "stat", "-c", "%u %g", "/d/in/t"]);
        assert_eq!(out.trim(), owner);
    }
    // An archive entry climbing out through the link it made lands inside the container.
    let mut t = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(4);
    h.set_mode(0o644);
    t.append_data(&mut h, "in/up/strata-ops-escape", &b"bad\n"[..])
        .unwrap();
    let bytes = t.into_inner().unwrap();
    let _ = s
        .cmd()
        .args(["cp", "-", &format!("{name}:/d")])
        .write_stdin(bytes)
        .output()
        .unwrap();
    assert!(!Path::new("/tmp/strata-ops-escape").exists());
    // Into a file: Docker's client error.
    let (code, _, err) = ours(&s, &["cp", "-", &format!("{name}:/d/f")], &ids);
    assert_eq!(
        (code, err.trim()),
        (
            1,
            format!("destination \"{name}:/d/f\" must be a directory").as_str()
        )
    );
    // The tar on standard output names entries after the source.
    let out = s
        .cmd()
        .args(["cp", &format!("{name}:/d/sub"), "-"])
        .output()
        .unwrap();
    let mut names: Vec<String> = tar::Archive::new(&out.stdout[..])
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    names.sort();
    assert!(names.contains(&"sub/g".to_string()), "{names:?}");
    // A stopped container: its snapshot is mounted for the copy and unmounted after.
    s.ok(&["stop", "-t", "0", &name]);
    let d = tempfile::tempdir().unwrap();
    let dst = d.path().join("f");
    s.ok(&["cp", &format!("{name}:/d/f"), dst.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&dst).unwrap(), "hi\n");
    s.ok(&["cp", dst.to_str().unwrap(), &format!("{name}:/d/copied")]);
    let out = s
        .cmd()
        .args(["cp", &format!("{name}:/d/copied"), "-"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(&s.root.path().display().to_string()),
        "left mounted"
    );
    s.ok(&["rm", &name]);
    docker_rm(&name);
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn top_and_port_errors_as_docker() {
    let image = unique("strata-ops-top:");
    let Some((s, _docker_image)) = both_with_busybox(&image) else {
        return;
    };
    let name = unique("strata-ops-top-");
    let (a, b) = start_both(&s, &image, &name, &[]);
    let _guard = Remove(&s, name.clone());
    let ids = [a.as_str(), b.as_str()];
    let both = |args: &[&str]| {
        let x = ours(&s, args, &ids);
        let y = theirs(args, &ids);
        assert_eq!(x, y, "{args:?}");
        x
    };
    assert_eq!(both(&["top", &name, "-o", "bogus"]).0, 1);
    assert_eq!(both(&["top", "strata-ops-no-such-container"]).0, 1);
    assert_eq!(both(&["port", &name]).0, 0);
    assert_eq!(both(&["port", "strata-ops-no-such-container"]).0, 1);
    // Docker 20.10's client names the protocol in this message (newer clients do not).
    let (code, _, err) = ours(&s, &["port", &name, "80"], &ids);
    assert_eq!(
        (code, err),
        (
            1,
            format!("Error: No public port '80/tcp' published for {name}\n")
        )
    );
    s.ok(&["stop", "-t", "0", &name]);
    run_ok(DOCKER, &["stop", "-t", "0", &name]);
    assert_eq!(
        both(&["top", &name]).2,
        "Error response from daemon: Container ID is not running\n"
    );
    s.ok(&["rm", &name]);
    docker_rm(&name);
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn attach_streams_live_output_and_returns_the_exit_code() {
    let image = unique("strata-ops-attach:");
    let Some((s, _docker_image)) = both_with_busybox(&image) else {
        return;
    };
    let name = unique("strata-ops-attach-");
    docker_rm(&name);
    // A moment after `/go` appears, so that its end does not kill the `exec` that made it.
    let script = "echo before; while [ ! -e /go ]; do sleep 0.05; done; sleep 0.5; echo after; echo err >&2; exit 3";
    let args = [
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        &name,
        &image,
        "sh",
        "-c",
        script,
    ];
    let a = s.ok(&args).trim().to_string();
    let b = run_ok(DOCKER, &args).trim().to_string();
    let _guard = Remove(&s, name.clone());
    let ids = [a.as_str(), b.as_str()];
    wait_logs(&s, &name, "before\n");
    let since = now_secs();
    let mut mine = Command::new(assert_cmd::cargo::cargo_bin("strata"));
    mine.env("STRATA_ROOT", s.root.path())
        .args(["attach", "--no-stdin", &name]);
    let ours_attach = std::thread::spawn(move || mine.output().unwrap());
    let theirs_attach = std::thread::spawn({
        let name = name.clone();
        move || {
            Command::new(DOCKER)
                .args(["attach", "--no-stdin", &name])
                .output()
                .unwrap()
        }
    });
    // Both attached before the trigger (each logged its `attach` event once connected):
    // the output after it is streamed live.
    wait_attached(&s, &name, since);
    s.ok(&["exec", &name, "touch", "/go"]);
    run_ok(DOCKER, &["exec", &name, "touch", "/go"]);
    let x = outcome(ours_attach.join().unwrap(), &ids);
    let y = outcome(theirs_attach.join().unwrap(), &ids);
    assert_eq!(x, y);
    assert_eq!(x, (3, "after\n".into(), "err\n".into()));
    // A stopped container cannot be attached to.
    let args = ["attach", &name];
    assert_eq!(ours(&s, &args, &ids).0, theirs(&args, &ids).0);
    s.ok(&["rm", &name]);
    docker_rm(&name);
}

/// Seconds since the epoch (plus `ahead`), for `events --since` and `--until`.
fn secs(ahead: u64) -> String {
    (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + ahead)
        .to_string()
}

fn now_secs() -> String {
    secs(0)
}

/// Waits until `logs NAME` shows `want` on both sides.
fn wait_logs(s: &Strata, name: &str, want: &str) {
    for _ in 0..400 {
        if s.ok(&["logs", name]) == want && run_ok(DOCKER, &["logs", name]) == want {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    panic!("logs of {name} never became {want:?}");
}

/// Waits until both sides logged an `attach` event for `name` since `since`: attach
/// records it once it follows the output, so nothing written after it is missed.
fn wait_attached(s: &Strata, name: &str, since: String) {
    for _ in 0..400 {
        let until = secs(1);
        let args = [
            "events",
            "--since",
            since.as_str(),
            "--until",
            until.as_str(),
            "--filter",
            "event=attach",
            "--filter",
            &format!("container={name}"),
        ];
        if !s.ok(&args).is_empty() && !run_ok(DOCKER, &args).is_empty() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    panic!("no attach event for {name}");
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn attach_and_logs_of_a_container_with_a_terminal_as_docker() {
    let image = unique("strata-ops-attach-tty:");
    let Some((s, _docker_image)) = both_with_busybox(&image) else {
        return;
    };
    let name = unique("strata-ops-attach-tty-");
    docker_rm(&name);
    // It goes on a moment after `/go` appears: its end kills every process of its PID
    // namespace, the `exec` that made the file too if it has not exited yet (137).
    let script = "echo before; while [ ! -e /go ]; do sleep 0.05; done; sleep 0.5; echo after; echo err >&2; exit 3";
    let args = [
        "run",
        "-dt",
        "--network",
        "none",
        "--name",
        &name,
        &image,
        "sh",
        "-c",
        script,
    ];
    let a = s.ok(&args).trim().to_string();
    let b = run_ok(DOCKER, &args).trim().to_string();
    let _guard = Remove(&s, name.clone());
    let ids = [a.as_str(), b.as_str()];
    // The terminal's output is logged, as one stream with the terminal's line ends.
    wait_logs(&s, &name, "before\r\n");
    // Its input needs a terminal here (stdin is /dev/null).
    let args = ["attach", &name];
    assert_eq!(
        ours(&s, &args, &ids),
        (1, String::new(), "the input device is not a TTY\n".into())
    );
    assert_eq!(ours(&s, &args, &ids), theirs(&args, &ids));
    let since = now_secs();
    let attach = |cmd: Command| {
        let mut cmd = cmd;
        cmd.args(["attach", "--no-stdin", &name]);
        std::thread::spawn(move || cmd.output().unwrap())
    };
    let mut mine = Command::new(assert_cmd::cargo::cargo_bin("strata"));
    mine.env("STRATA_ROOT", s.root.path());
    let ours_attach = attach(mine);
    let theirs_attach = attach(Command::new(DOCKER));
    wait_attached(&s, &name, since);
    s.ok(&["exec", &name, "touch", "/go"]);
    run_ok(DOCKER, &["exec", &name, "touch", "/go"]);
    let x = outcome(ours_attach.join().unwrap(), &ids);
    let y = outcome(theirs_attach.join().unwrap(), &ids);
    assert_eq!(x, y);
    assert_eq!(x, (3, "after\r\nerr\r\n".into(), String::new()));
    let logs = ["logs", &name];
    assert_eq!(ours(&s, &logs, &ids), theirs(&logs, &ids));
    assert_eq!(ours(&s, &logs, &ids).1, "before\r\nafter\r\nerr\r\n");
    // A foreground `run -t` shows and logs the same.
    let fg = unique("strata-ops-run-tty-");
    let _fg_guard = Remove(&s, fg.clone());
    let run = [
        "run",
        "-t",
        "--network",
        "none",
        "--name",
        &fg,
        &image,
        "sh",
        "-c",
        "echo hi; exit 2",
    ];
    assert_eq!(ours(&s, &run, &ids), theirs(&run, &ids));
    assert_eq!(
        ours(&s, &["logs", &fg], &ids),
        (0, "hi\r\n".into(), String::new())
    );
    assert_eq!(ours(&s, &["logs", &fg], &ids), theirs(&["logs", &fg], &ids));
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn attach_forwards_stdin_to_an_interactive_container_until_detached() {
    if !require_root() {
        return;
    }
    let s = Strata::new();
    s.ok(&["import", busybox_tar().to_str().unwrap(), "busybox"]);
    let script = "read a; echo got $a; read b; echo got2 $b; exit 4";
    let id = s.ok(&[
        "run",
        "-d",
        "-i",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        script,
    ]);
    let id = id.trim();
    let _guard = Remove(&s, id.to_string());
    // ctrl-p ctrl-q detaches: attach ends with 0, the container keeps running.
    let out = s
        .cmd()
        .args(["attach", id])
        .write_stdin(b"hello\n\x10\x11".to_vec())
        .output()
        .unwrap();
    assert_success(&out);
    for _ in 0..200 {
        if s.ok(&["logs", id]).contains("got hello") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    assert_eq!(s.ok(&["logs", id]), "got hello\n");
    assert_eq!(
        s.ok(&["inspect", "-f", "{{.State.Running}}", id]).trim(),
        "true"
    );
    // A second attach: its input reaches the same process, its exit code is the container's.
    let out = s
        .cmd()
        .args(["attach", id])
        .write_stdin(b"again\n".to_vec())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "got2 again\n");
    // Custom keys are checked as Docker checks them.
    let (code, err) = s.fails(&["attach", "--detach-keys", "ctrl-", id]);
    assert_eq!(code, 1, "{err}");
    s.ok(&["rm", id]);
}
