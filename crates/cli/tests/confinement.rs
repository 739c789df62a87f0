//! Confinement of real containers, as root: Docker's default seccomp profile (escapes refused
//! with EPERM, clone3 with ENOSYS, the same answers as Docker 20.10), `--security-opt`,
//! `--privileged`, build steps; the devices cgroup (a mknod'ed host disk cannot be opened,
//! `--device`, `--device-cgroup-rule`); and what `inspect` shows of it all.
//!
//! The escape attempts are a small static C program (`confinement/escape.c`) built with `cc`
//! at test time and copied into a busybox image by `strata build`.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use common::*;

/// The escape helper, compiled once per test process (None when it cannot be built).
fn escape_binary() -> Option<PathBuf> {
    static BIN: OnceLock<Option<PathBuf>> = OnceLock::new();
    BIN.get_or_init(|| {
        if !require_tool("cc") {
            return None;
        }
        // One binary for every test process (each used to leave its own behind), made by
        // each and renamed into place: a reader runs a whole one.
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/confinement/escape.c");
        let out = common::shared_temp("strata-confinement-escape", &src, "bin");
        let made = out.with_extension(format!("{}.tmp", std::process::id()));
        let o = Command::new("cc")
            .args(["-static", "-O2", "-o"])
            .arg(&made)
            .arg(&src)
            .output()
            .unwrap();
        if !o.status.success() {
            let _ = std::fs::remove_file(&made);
            cannot_run(&format!(
                "cc -static failed (libc6-dev missing?): {}",
                String::from_utf8_lossy(&o.stderr)
            ));
            return None;
        }
        std::fs::rename(&made, &out).unwrap();
        Some(out)
    })
    .clone()
}

/// A store with busybox as `busybox` and, when `with_escape`, `escape` (busybox plus
/// `/escape`). None (said on stderr, a failure under CI) when not root or no compiler.
fn store(with_escape: bool) -> Option<Strata> {
    if !require_root() {
        return None;
    }
    let s = Strata::new();
    s.ok(&["import", busybox_tar().to_str().unwrap(), "busybox"]);
    if with_escape {
        let bin = escape_binary()?;
        let ctx = tempfile::tempdir().unwrap();
        std::fs::copy(&bin, ctx.path().join("escape")).unwrap();
        std::fs::write(
            ctx.path().join("Dockerfile"),
            "FROM busybox\nCOPY escape /escape\n",
        )
        .unwrap();
        s.ok(&["build", "-q", "-t", "escape", ctx.path().to_str().unwrap()]);
    }
    Some(s)
}

/// `name=RESULT` lines of the escape helper as a sorted map.
fn results(out: &str) -> std::collections::BTreeMap<String, String> {
    out.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn escape_in(s: &Strata, opts: &[&str]) -> std::collections::BTreeMap<String, String> {
    let mut args = vec!["run", "--rm", "--network", "none"];
    args.extend_from_slice(opts);
    args.extend_from_slice(&["escape", "/escape"]);
    results(&s.ok(&args))
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn default_profile_refuses_escapes() {
    let Some(s) = store(true) else { return };
    let r = escape_in(&s, &[]);
    for call in [
        "keyctl",
        "add_key",
        "unshare_user",
        "mount",
        "bpf",
        "kexec_load",
    ] {
        assert_eq!(r[call], "EPERM", "{call} in a default container: {r:?}");
    }
    assert_eq!(
        r["clone3"], "ENOSYS",
        "clone3 is ENOSYS so that libcs fall back to clone"
    );
    assert_eq!(
        r["personality_query"], "ok",
        "personality(0xffffffff) is allowed"
    );
    assert_eq!(
        r["personality_other"], "EPERM",
        "other personalities are not"
    );

    // no_new_privs or not, the same filter (loaded before or after dropping capabilities).
    for opt in ["no-new-privileges=false", "no-new-privileges"] {
        assert_eq!(escape_in(&s, &["--security-opt", opt]), r, "{opt}");
    }

    // CAP_SYS_ADMIN opens the namespace system calls, not the key ring.
    let admin = escape_in(&s, &["--cap-add", "SYS_ADMIN"]);
    assert_eq!(admin["unshare_user"], "ok", "{admin:?}");
    assert_eq!(admin["keyctl"], "EPERM");
    assert_ne!(admin["clone3"], "ENOSYS");

    // Unconfined and privileged containers get past seccomp.
    for opts in [
        &["--security-opt", "seccomp=unconfined"][..],
        &["--privileged"][..],
    ] {
        let u = escape_in(&s, opts);
        assert_eq!(u["keyctl"], "ok", "{opts:?}: {u:?}");
        assert_eq!(u["unshare_user"], "ok", "{opts:?}: {u:?}");
        assert_ne!(u["clone3"], "ENOSYS", "{opts:?}");
        assert_eq!(u["personality_other"], "ok", "{opts:?}");
    }

    // busybox's own applets see the same.
    let out = s
        .cmd()
        .args(["run", "--rm", "busybox", "unshare", "-U", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Operation not permitted"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    s.ok(&[
        "run",
        "--rm",
        "--security-opt",
        "seccomp=unconfined",
        "busybox",
        "unshare",
        "-U",
        "true",
    ]);
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn exec_and_create_start_are_confined_too() {
    let Some(s) = store(true) else { return };
    let id = s.ok(&["run", "-d", "--network", "none", "escape", "sleep", "60"]);
    let id = id.trim();
    let r = results(&s.ok(&["exec", id, "/escape"]));
    assert_eq!(r["keyctl"], "EPERM", "{r:?}");
    assert_eq!(r["unshare_user"], "EPERM");
    let status = s.ok(&["exec", id, "grep", "^Seccomp:", "/proc/self/status"]);
    assert_eq!(status.trim(), "Seccomp:\t2");
    s.ok(&["rm", "-f", id]);

    let id = s.ok(&[
        "create",
        "--security-opt",
        "seccomp=unconfined",
        "escape",
        "/escape",
    ]);
    let out = s.ok(&["start", "-a", id.trim()]);
    assert_eq!(results(&out)["keyctl"], "ok", "{out}");
    s.ok(&["rm", id.trim()]);
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn build_steps_run_under_the_default_profile() {
    let Some(s) = store(false) else { return };
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM busybox\nRUN grep '^Seccomp:' /proc/self/status > /seccomp; (unshare -U true 2>&1 || true) > /unshare\n",
    )
    .unwrap();
    s.ok(&["build", "-q", "-t", "stepped", ctx.path().to_str().unwrap()]);
    let out = s.ok(&["run", "--rm", "stepped", "cat", "/seccomp", "/unshare"]);
    assert!(out.starts_with("Seccomp:\t2\n"), "{out}");
    assert!(out.contains("Operation not permitted"), "{out}");
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn custom_profiles_and_bad_options() {
    let Some(s) = store(false) else { return };
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("no-mkdir.json");
    std::fs::write(
        &profile,
        r#"{
  "defaultAction": "SCMP_ACT_ALLOW",
  "syscalls": [ { "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO" } ]
}"#,
    )
    .unwrap();
    let opt = format!("seccomp={}", profile.display());
    let out = s
        .cmd()
        .args([
            "run",
            "--rm",
            "--security-opt",
            &opt,
            "busybox",
            "mkdir",
            "/tmp/x",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Operation not permitted"));
    s.ok(&[
        "run",
        "--rm",
        "--security-opt",
        &opt,
        "busybox",
        "touch",
        "/tmp/x",
    ]);

    // Docker's CLI sends the profile itself, compacted; inspect shows that.
    let id = s.ok(&["create", "--security-opt", &opt, "busybox", "true"]);
    let sec = s.ok(&[
        "inspect",
        "-f",
        "{{json .HostConfig.SecurityOpt}}",
        id.trim(),
    ]);
    assert_eq!(
        sec.trim(),
        r#"["seccomp={\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"names\":[\"mkdir\",\"mkdirat\"],\"action\":\"SCMP_ACT_ERRNO\"}]}"]"#
    );

    for (opt, msg) in [
        ("foo", "Invalid --security-opt: \"foo\""),
        ("foo=bar", "invalid --security-opt 2: \"foo=bar\""),
        (
            "no-new-privileges=maybe",
            "invalid --security-opt 2: \"no-new-privileges=maybe\"",
        ),
        (
            "seccomp=/nonexistent.json",
            "opening seccomp profile (/nonexistent.json) failed: open /nonexistent.json: no such file or directory",
        ),
    ] {
        let (code, err) = s.fails(&["run", "--rm", "--security-opt", opt, "busybox", "true"]);
        assert_eq!(code, 125, "{opt}: {err}");
        assert!(err.contains(msg), "{opt}: {err}");
    }
    let (code, err) = s.fails(&[
        "run",
        "--rm",
        "--device",
        "/dev/loop0:xvda",
        "busybox",
        "true",
    ]);
    // Docker's CLI refuses it while parsing: `docker: MSG.` and where help is.
    assert_eq!(
        (code, err.trim()),
        (
            125,
            "strata: xvda is not an absolute path.\nSee 'strata run --help'."
        )
    );
    let (code, err) = s.fails(&["run", "--rm", "--device", "/dev/nope", "busybox", "true"]);
    assert_eq!(code, 127, "{err}");
    assert!(err.contains("error gathering device information while adding custom device \"/dev/nope\": no such file or directory"), "{err}");
    let (code, err) = s.fails(&[
        "run",
        "--rm",
        "--device-cgroup-rule",
        "c 1:3",
        "busybox",
        "true",
    ]);
    assert_eq!(code, 125);
    assert!(
        err.contains("invalid device cgroup format 'c 1:3'"),
        "{err}"
    );
}

/// A loop device over a temporary file, detached when dropped.
struct Loop {
    dev: String,
    _file: tempfile::NamedTempFile,
}

impl Loop {
    fn new(content: &[u8]) -> Option<Loop> {
        if !require_tool("losetup") {
            return None;
        }
        let mut data = content.to_vec();
        data.resize(64 * 1024, 0);
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), &data).unwrap();
        let out = Command::new("losetup")
            .args(["-f", "--show"])
            .arg(file.path())
            .output()
            .unwrap();
        if !out.status.success() {
            cannot_run(&format!(
                "losetup failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
            return None;
        }
        Some(Loop {
            dev: String::from_utf8(out.stdout).unwrap().trim().to_string(),
            _file: file,
        })
    }

    fn major_minor(&self) -> (u32, u32) {
        let rdev = std::fs::metadata(&self.dev).unwrap().rdev();
        (libc::major(rdev), libc::minor(rdev))
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").args(["-d", &self.dev]).status();
    }
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn the_devices_cgroup_guards_host_disks() {
    let Some(s) = store(false) else { return };
    let (Some(disk), Some(other)) = (Loop::new(b"STRATA-DISK-ONE"), Loop::new(b"STRATA-DISK-TWO"))
    else {
        return;
    };
    let (ma, mi) = disk.major_minor();
    let (oma, omi) = other.major_minor();
    let read_node = |opts: &[&str], ma: u32, mi: u32| {
        let mut args = vec!["run", "--rm", "--network", "none"];
        args.extend_from_slice(opts);
        let script = format!("mknod /tmp/disk b {ma} {mi} && head -c 15 /tmp/disk");
        args.extend_from_slice(&["busybox", "sh", "-c", &script]);
        s.cmd().args(&args).output().unwrap()
    };

    // CAP_MKNOD is granted, as Docker does; the cgroup is what refuses the open.
    let out = read_node(&[], ma, mi);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("head: /tmp/disk: Operation not permitted"),
        "{err}"
    );

    // --device makes the node and allows it, and only it.
    let dev = format!("{}:/dev/xvda", disk.dev);
    let out = s.ok(&[
        "run",
        "--rm",
        "--device",
        &dev,
        "busybox",
        "head",
        "-c",
        "15",
        "/dev/xvda",
    ]);
    assert_eq!(out, "STRATA-DISK-ONE");
    let out = read_node(&["--device", &dev], oma, omi);
    assert_eq!(out.status.code(), Some(1), "another disk stays refused");
    let dev_ro = format!("{}:/dev/xvda:r", disk.dev);
    let out = s
        .cmd()
        .args([
            "run",
            "--rm",
            "--device",
            &dev_ro,
            "busybox",
            "sh",
            "-c",
            "echo x > /dev/xvda",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success(), "read-only device opened for writing");

    // --device-cgroup-rule allows a mknod'ed node.
    let rule = format!("b {ma}:{mi} r");
    let out = read_node(&["--device-cgroup-rule", &rule], ma, mi);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "STRATA-DISK-ONE");
    let out = read_node(&["--device-cgroup-rule", &rule], oma, omi);
    assert_eq!(out.status.code(), Some(1));

    // --privileged allows every device and shows the host's nodes.
    let out = read_node(&["--privileged"], ma, mi);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "STRATA-DISK-ONE");
    let out = s.ok(&[
        "run",
        "--rm",
        "--privileged",
        "busybox",
        "head",
        "-c",
        "15",
        &other.dev,
    ]);
    assert_eq!(out, "STRATA-DISK-TWO");

    // The cgroup goes away with the container.
    let id = s.ok(&["run", "-d", "busybox", "sleep", "60"]);
    let dir = Path::new("/sys/fs/cgroup/devices/strata").join(id.trim());
    if Path::new("/sys/fs/cgroup/devices").is_dir() {
        let list = std::fs::read_to_string(dir.join("devices.list")).unwrap();
        assert!(
            list.contains("c 1:3 rwm") && list.contains("c 136:* rwm"),
            "{list}"
        );
        assert!(!list.contains("a *:* rwm"), "{list}");
    }
    s.ok(&["rm", "-f", id.trim()]);
    assert!(!dir.exists(), "{} left behind", dir.display());
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn inspect_shows_security_options_and_devices_as_docker() {
    let Some(s) = store(false) else { return };
    let fields = "{{json .HostConfig.SecurityOpt}} {{json .HostConfig.Devices}} {{json .HostConfig.DeviceCgroupRules}} {{json .HostConfig.Privileged}}";
    let id = s.ok(&["create", "busybox", "true"]);
    assert_eq!(
        s.ok(&["inspect", "-f", fields, id.trim()]).trim(),
        "null [] null false"
    );
    let id = s.ok(&[
        "create",
        "--device",
        "/dev/null:/dev/xvda:r",
        "--device",
        "/dev/zero",
        "--device-cgroup-rule",
        "c 1:3 mr",
        "--security-opt",
        "no-new-privileges",
        "--security-opt",
        "seccomp=unconfined",
        "busybox",
        "true",
    ]);
    assert_eq!(
        s.ok(&["inspect", "-f", fields, id.trim()]).trim(),
        r#"["no-new-privileges","seccomp=unconfined"] [{"PathOnHost":"/dev/null","PathInContainer":"/dev/xvda","CgroupPermissions":"r"},{"PathOnHost":"/dev/zero","PathInContainer":"/dev/zero","CgroupPermissions":"rwm"}] ["c 1:3 mr"] false"#
    );
    let id = s.ok(&["create", "--privileged", "busybox", "true"]);
    assert_eq!(
        s.ok(&["inspect", "-f", fields, id.trim()]).trim(),
        r#"["label=disable"] [] null true"#
    );
}

/// The same escape attempts give the same answers in Docker 20.10's containers.
#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn escapes_match_docker() {
    let Some(s) = store(true) else { return };
    if !docker() {
        return;
    }
    let bin = escape_binary().unwrap();
    let name = unique("strata-escape");
    let ctx = tempfile::tempdir().unwrap();
    std::fs::copy(&bin, ctx.path().join("escape")).unwrap();
    run_ok(
        "docker",
        &[
            "import",
            busybox_tar().to_str().unwrap(),
            &format!("{name}-base"),
        ],
    );
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!("FROM {name}-base\nCOPY escape /escape\n"),
    )
    .unwrap();
    let out = Command::new("docker")
        .env("DOCKER_BUILDKIT", "0")
        .args(["build", "-q", "--network", "none", "-t", &name])
        .arg(ctx.path())
        .output()
        .unwrap();
    assert_success(&out);
    for opts in [
        &[][..],
        &["--security-opt", "seccomp=unconfined"][..],
        &["--cap-add", "SYS_ADMIN"][..],
        &["--security-opt", "no-new-privileges"][..],
    ] {
        let mut args = vec!["run", "--rm", "--network", "none"];
        args.extend_from_slice(opts);
        args.extend_from_slice(&[&name, "/escape"]);
        let theirs = results(&run_ok("docker", &args));
        assert_eq!(escape_in(&s, opts), theirs, "{opts:?}");
    }
    let _ = Command::new("docker")
        .args(["rmi", &name, &format!("{name}-base")])
        .output();
}

/// `HostConfig.Init` as Docker shows it: null without the flag, else what was given; no
/// no_new_privs unless asked (Docker's default, so setuid programs in images work).
#[test]
fn init_flag_and_no_new_privileges_default_as_docker() {
    let Some(s) = store(false) else { return };
    for (flag, want) in [("", "null"), ("--init", "true"), ("--init=false", "false")] {
        let mut args = vec!["create", "--network", "none"];
        if !flag.is_empty() {
            args.push(flag);
        }
        args.extend(["busybox", "true"]);
        let id = s.ok(&args);
        let id = id.trim();
        assert_eq!(
            s.ok(&["inspect", "-f", "{{json .HostConfig.Init}}", id])
                .trim(),
            want,
            "{flag}"
        );
        s.ok(&["rm", id]);
    }
    let status = |extra: &[&str]| {
        let mut args = vec!["run", "--rm", "--network", "none"];
        args.extend_from_slice(extra);
        args.extend(["busybox", "grep", "NoNewPrivs", "/proc/self/status"]);
        s.ok(&args)
    };
    assert_eq!(status(&[]), "NoNewPrivs:\t0\n");
    assert_eq!(
        status(&["--security-opt", "no-new-privileges"]),
        "NoNewPrivs:\t1\n"
    );
}
