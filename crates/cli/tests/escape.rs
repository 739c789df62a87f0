//! Nothing of strata is reachable from inside a container, and mount targets stay inside the
//! container's root: as root, on real containers. `/proc/1/fd` and `/proc/1/exe` (with and
//! without `--init`, for `exec` and for a build step), symlink chains beyond the kernel's limit
//! as mount targets, absolute symlinks as targets, a target swapped between a directory and a
//! symlink while containers start, and read-only binds that stay read-only on submounts.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;

/// A store with busybox imported as `busybox` (None, loudly, when not root).
fn with_busybox() -> Option<Strata> {
    if !require_root() {
        return None;
    }
    let s = Strata::new();
    s.ok(&["import", busybox_tar().to_str().unwrap(), "busybox"]);
    Some(s)
}

fn have_tini() -> bool {
    require_tool("/usr/bin/tini-static")
}

fn code(s: &Strata, args: &[&str]) -> (i32, String, String) {
    let out = s.cmd().args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Lists, from inside, the descriptors (names and link targets) a process started by the
/// command inherits (a `sleep` in the background: the listing shell's own glob and pipes are
/// not its), and `/proc/1/exe`. It waits for `sleep` to have been exec'd: until then the
/// forked shell may be between closing its standard input and reopening it on /dev/null.
const FD_PROBE: &str = "sleep 5 & p=$!; until [ \"$(cat /proc/$p/comm)\" = sleep ]; do :; done; cd /proc/$p/fd && for f in *; do echo \"fd $f $(readlink $f)\"; done; echo \"exe $(readlink /proc/1/exe)\"; kill $p";

/// Checks a probe's output: descriptors 0, 1, 2 only, none pointing into strata's store or at
/// a lock, and the executable one of the container's.
fn check_probe(out: &str, s: &Strata, exe: &str) {
    let fds: BTreeSet<&str> = out
        .lines()
        .filter_map(|l| l.strip_prefix("fd "))
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    assert_eq!(
        fds,
        ["0", "1", "2"].into_iter().collect(),
        "only the standard streams:\n{out}"
    );
    check_no_strata(out, s);
    assert!(
        out.lines().any(|l| l == format!("exe {exe}")),
        "/proc/1/exe is {exe}:\n{out}"
    );
}

fn check_no_strata(text: &str, s: &Strata) {
    let root = s.root.path().to_string_lossy().into_owned();
    let bin = env!("CARGO_BIN_EXE_strata");
    for bad in [
        "metadata.db",
        "-wal",
        ".lock",
        "monitor.lock",
        root.as_str(),
        bin,
    ] {
        assert!(!text.contains(bad), "{bad} is visible:\n{text}");
    }
}

/// `/proc/PID/fd` and `/proc/PID/exe` of a host PID, as the host sees them.
fn host_view(pid: i32) -> (Vec<(String, String)>, String) {
    let mut fds: Vec<(String, String)> = fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let target = fs::read_link(e.path())
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            (e.file_name().to_string_lossy().into_owned(), target)
        })
        .collect();
    fds.sort();
    let exe = fs::read_link(format!("/proc/{pid}/exe"))
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    (fds, exe)
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn nothing_of_strata_is_open_or_executing_in_a_container() {
    let Some(s) = with_busybox() else { return };
    if !have_tini() {
        return;
    }
    // Foreground, without and with --init.
    let out = s.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        FD_PROBE,
    ]);
    check_probe(&out, &s, "/bin/busybox");
    let out = s.ok(&[
        "run",
        "--rm",
        "--init",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        FD_PROBE,
    ]);
    check_probe(&out, &s, "/sbin/docker-init");
    let ps = s.ok(&[
        "run",
        "--rm",
        "--init",
        "--network",
        "none",
        "busybox",
        "ps",
        "-o",
        "pid,args",
    ]);
    assert!(
        ps.lines()
            .any(|l| l.trim() == "1 /sbin/docker-init -- ps -o pid,args"),
        "{ps}"
    );

    // Detached, without and with --init: what the host sees of PID 1.
    let plain = s
        .ok(&["run", "-d", "--network", "none", "busybox", "sleep", "60"])
        .trim()
        .to_string();
    let id = s
        .ok(&[
            "run",
            "-d",
            "--init",
            "--network",
            "none",
            "busybox",
            "sleep",
            "60",
        ])
        .trim()
        .to_string();
    for (c, want) in [(&plain, "/bin/busybox"), (&id, "/sbin/docker-init")] {
        let pid: i32 = s
            .ok(&["inspect", "-f", "{{.State.Pid}}", c])
            .trim()
            .parse()
            .unwrap();
        let (fds, exe) = host_view(pid);
        assert_eq!(
            fds.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
            ["0", "1", "2"],
            "{fds:?}"
        );
        check_no_strata(&format!("{fds:?}"), &s);
        // As the host sees it (a path in the container's mount namespace), never strata.
        assert!(exe.ends_with(want), "{exe}");
        assert_ne!(exe, env!("CARGO_BIN_EXE_strata"));
    }
    s.ok(&["rm", "-f", &plain]);
    assert_eq!(
        s.ok(&[
            "inspect",
            "-f",
            "{{json .HostConfig.Init}} {{.Path}} {{json .Args}}",
            &id
        ])
        .trim(),
        "true sleep [\"60\"]"
    );
    let out = s.ok(&["exec", &id, "sh", "-c", FD_PROBE]);
    check_probe(&out, &s, "/sbin/docker-init");
    let out = s.ok(&["exec", &id, "sh", "-c", "readlink /proc/$$/exe"]);
    assert_eq!(out, "/bin/busybox\n");
    s.ok(&["rm", "-f", &id]);

    // Without --init, inspect shows null, as Docker.
    let id = s.ok(&["create", "busybox", "true"]).trim().to_string();
    assert_eq!(
        s.ok(&["inspect", "-f", "{{json .HostConfig.Init}}", &id])
            .trim(),
        "null"
    );
    s.ok(&["rm", &id]);

    // A build step.
    let ctx = tempfile::tempdir().unwrap();
    fs::write(
        ctx.path().join("Dockerfile"),
        format!("FROM busybox\nRUN {FD_PROBE}\n"),
    )
    .unwrap();
    let out = s.ok(&[
        "build",
        "--network",
        "none",
        "-t",
        "probe:1",
        ctx.path().to_str().unwrap(),
    ]);
    check_probe(&out, &s, "/bin/busybox");
}

/// Host paths that a mount escaping the container would touch; none may appear.
fn mounts_outside(prefixes: &[&Path]) -> Vec<String> {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|mp| {
            prefixes
                .iter()
                .any(|p| mp.starts_with(&*p.to_string_lossy()))
        })
        .map(String::from)
        .collect()
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn symlink_chains_and_absolute_links_never_leave_the_root() {
    let Some(s) = with_busybox() else { return };
    let host = tempfile::tempdir().unwrap();
    let escape = host.path().join("escape");
    let host_dir = host.path().join("host-dir");
    fs::create_dir(&host_dir).unwrap();
    let src = host.path().join("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("marker"), "from-src").unwrap();
    let ctx = tempfile::tempdir().unwrap();
    // /chain0 -> /chain1 -> ... -> /chain300 -> /../../../../<escape> (a host path), so /chain0
    // is 301 links away from the end and /chain44 257; /abs -> <host-dir> (absolute).
    fs::write(
        ctx.path().join("Dockerfile"),
        format!(
            "FROM busybox\nRUN i=0; while [ $i -lt 300 ]; do ln -s /chain$((i+1)) /chain$i; i=$((i+1)); done; \
             ln -s /../../../..{esc} /chain300; ln -s {hd} /abs; ln -s /chain290 /short\n",
            esc = escape.display(),
            hd = host_dir.display()
        ),
    )
    .unwrap();
    s.ok(&[
        "build",
        "-q",
        "--network",
        "none",
        "-t",
        "chains:1",
        ctx.path().to_str().unwrap(),
    ]);
    let v = |target: &str| format!("{}:{target}", src.display());
    for target in ["/chain0", "/chain44", "/chain0/below"] {
        let (c, _, err) = code(
            &s,
            &[
                "run",
                "--rm",
                "--network",
                "none",
                "-v",
                &v(target),
                "chains:1",
                "true",
            ],
        );
        assert_eq!(c, 125, "{target}: {err}");
        assert!(
            err.contains(&format!("to rootfs at \"{target}\"")) && err.contains("symbolic links"),
            "a clear error naming {target}: {err}"
        );
        assert!(!escape.exists(), "{target} created {}", escape.display());
        assert!(mounts_outside(&[host.path()]).is_empty());
    }
    // Ten links: resolved inside the root, where the chain ends (the escape path, but under the
    // container's root).
    let out = s.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        &v("/short"),
        "chains:1",
        "cat",
        &format!("{}/marker", escape.display()),
    ]);
    assert_eq!(out, "from-src");
    assert!(!escape.exists(), "created {} on the host", escape.display());
    // An absolute link lands inside the root, not on the host directory it names.
    let out = s.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        &v("/abs"),
        "chains:1",
        "cat",
        &format!("{}/marker", host_dir.display()),
    ]);
    assert_eq!(out, "from-src");
    assert_eq!(
        fs::read_dir(&host_dir).unwrap().count(),
        0,
        "host dir untouched"
    );
    assert!(mounts_outside(&[host.path()]).is_empty());
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn a_target_swapped_for_a_symlink_during_setup_never_escapes() {
    let Some(s) = with_busybox() else { return };
    let host = tempfile::tempdir().unwrap();
    let shared = host.path().join("shared");
    let escape = host.path().join("escape");
    let src = host.path().join("src");
    for d in [&shared, &escape, &src] {
        fs::create_dir(d).unwrap();
    }
    fs::write(src.join("marker"), "x").unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Swaps shared/t between a directory (with the mount point below it) and a symlink to
    // the host's escape directory, as fast as it can.
    let racer = {
        let stop = stop.clone();
        let t = shared.join("t");
        let link = format!("/../../../../../..{}", escape.display());
        std::thread::spawn(move || {
            let tmp_dir = t.with_file_name("t.dir");
            let tmp_link = t.with_file_name("t.link");
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = fs::create_dir_all(tmp_dir.join("sub"));
                let _ = fs::rename(&tmp_dir, &t);
                let _ = std::os::unix::fs::symlink(&link, &tmp_link);
                let _ = fs::remove_dir(t.join("sub"));
                let _ = fs::remove_dir(&t);
                let _ = fs::rename(&tmp_link, &t);
                let _ = fs::remove_file(&t);
                n += 1;
            }
            n
        })
    };
    let vol = format!("{}:/vol", shared.display());
    let bind = format!("{}:/vol/t/sub", src.display());
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut attempts = 0;
    let mut mounted = 0;
    while attempts < 200 && Instant::now() < deadline {
        let (c, out, err) = code(
            &s,
            &[
                "run",
                "--rm",
                "--network",
                "none",
                "-v",
                &vol,
                "-v",
                &bind,
                "busybox",
                "cat",
                "/vol/t/sub/marker",
            ],
        );
        attempts += 1;
        if c == 0 {
            assert_eq!(out, "x");
            mounted += 1;
        } else {
            assert!(c == 125 || c == 1, "{c}: {err}");
        }
        assert_eq!(
            fs::read_dir(&escape).unwrap().count(),
            0,
            "something was created in the host's {}",
            escape.display()
        );
        assert!(
            mounts_outside(&[host.path()]).is_empty(),
            "a mount appeared on the host"
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let swaps = racer.join().unwrap();
    eprintln!("{attempts} runs ({mounted} mounted) against {swaps} swaps");
    assert!(attempts >= 20, "only {attempts} runs");
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn read_only_binds_are_read_only_on_submounts_too() {
    let Some(s) = with_busybox() else { return };
    let host = tempfile::tempdir().unwrap();
    let sub = host.path().join("sub");
    fs::create_dir(&sub).unwrap();
    run_ok(
        "mount",
        &[
            "-t",
            "tmpfs",
            "-o",
            "size=1m",
            "tmpfs",
            sub.to_str().unwrap(),
        ],
    );
    struct Umount(std::path::PathBuf);
    impl Drop for Umount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }
    let _u = Umount(sub.clone());
    let v = format!("{}:/d:ro", host.path().display());
    let (c, _, err) = code(
        &s,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "-v",
            &v,
            "busybox",
            "sh",
            "-c",
            "touch /d/sub/x",
        ],
    );
    assert_eq!(c, 1);
    assert!(err.contains("Read-only file system"), "{err}");
    let (c, _, err) = code(
        &s,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "-v",
            &v,
            "busybox",
            "touch",
            "/d/y",
        ],
    );
    assert_eq!(c, 1, "{err}");
    assert!(!sub.join("x").exists() && !host.path().join("y").exists());
    // Without :ro the submount is there (rbind) and writable.
    let v = format!("{}:/d", host.path().display());
    s.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        &v,
        "busybox",
        "touch",
        "/d/sub/x",
    ]);
    assert!(sub.join("x").exists());
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn init_without_an_init_binary_is_a_clear_error() {
    let Some(s) = with_busybox() else { return };
    let cfg = tempfile::tempdir().unwrap();
    let conf = cfg.path().join("daemon.json");
    // A configured init-path that exists wins over the fixed list.
    let fake = cfg.path().join("my-init");
    fs::copy("/bin/busybox", &fake).unwrap();
    fs::write(&conf, format!("{{\"init-path\": \"{}\"}}", fake.display())).unwrap();
    let out = s
        .cmd()
        .env("STRATA_CONFIG", &conf)
        .args([
            "run",
            "--rm",
            "--init",
            "--network",
            "none",
            "busybox",
            "true",
        ])
        .output()
        .unwrap();
    // busybox as docker-init: "docker-init: applet not found", exit 127: it ran our binary.
    assert_eq!(
        out.status.code(),
        Some(127),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A configured init-path naming no file: no fallback, a clear error, nothing started.
    fs::write(&conf, "{\"init-path\": \"/nonexistent/docker-init\"}").unwrap();
    let out = s
        .cmd()
        .env("STRATA_CONFIG", &conf)
        .args([
            "run",
            "--rm",
            "--init",
            "--network",
            "none",
            "busybox",
            "true",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{err}");
    assert!(err.contains("--init needs an init binary"), "{err}");
    assert!(s.ok(&["ps", "-aq"]).trim().is_empty(), "--rm removed it");
}
