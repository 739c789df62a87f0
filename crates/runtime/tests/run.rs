//! Real containers, as root: busybox on an overlay (init layer + busybox layer), checking
//! namespaces, hostname, PID 1, /proc/net/dev under `--network none`, Docker's exit codes and
//! messages, environment and user resolution, capabilities, masked paths, mounts, cgroup limits,
//! signals, 200+ layers, and that afterwards nothing is mounted and the upper directory holds
//! exactly what the command wrote.

use std::fs;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use runtime::{ImageConfig, MountKind, MountSpec, Network, RunOptions, SpawnOptions, Stdio};
use snapshot::{OverlaySnapshotter, Snapshotter};

/// Docker's `docker-init` (Debian's tini); its test checks first that it is installed.
fn tini() -> PathBuf {
    let p = PathBuf::from("/usr/bin/tini-static");
    assert!(
        p.is_file(),
        "--init tests need /usr/bin/tini-static: apt-get install tini (scripts/test does)"
    );
    p
}

#[path = "../../../support/test_guard.rs"]
mod test_guard;
#[allow(unused_imports)]
use test_guard::{cannot_run, ci};

/// Whether this process runs as root.
fn is_root() -> bool {
    // SAFETY: no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Whether the test runs as root; otherwise see [`cannot_run`].
fn require_root() -> bool {
    if is_root() {
        return true;
    }
    cannot_run("needs root (namespaces, mounts)");
    false
}

/// The busybox layer, unpacked once into cargo's test scratch directory and reused.
fn busybox_layer() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let layer = base.join("busybox-layer");
        if layer.join("bin/busybox").exists() {
            return layer;
        }
        let work = tempfile::Builder::new()
            .prefix("bb-")
            .tempdir_in(base)
            .unwrap();
        let tar = work.path().join("bb.tar");
        let tool = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/busybox/make-rootfs");
        let ok = std::process::Command::new("sh")
            .arg(&tool)
            .arg(&tar)
            .status()
            .unwrap();
        assert!(ok.success(), "{} failed", tool.display());
        let unpacked = work.path().join("layer");
        fs::create_dir(&unpacked).unwrap();
        let ok = std::process::Command::new("tar")
            .arg("-xf")
            .arg(&tar)
            .arg("-C")
            .arg(&unpacked)
            .status()
            .unwrap();
        assert!(ok.success());
        // Another test process may have won the race; either copy is fine.
        let _ = fs::rename(&unpacked, &layer);
        layer
    })
}

/// Unmounts everything under a directory when dropped, even when a test fails.
struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = snapshot::unmount_all(&self.0);
    }
}

/// Busybox under the init layer, mounted from an overlay snapshot; unmounted, then
/// deleted, when dropped (fields drop in order).
struct Mounted {
    rootfs: PathBuf,
    _guard: Unmount,
    _dir: tempfile::TempDir,
}

fn mounted_busybox() -> Mounted {
    let t = tempfile::tempdir().unwrap();
    let init = t.path().join("init");
    runtime::make_init_layer(&init).unwrap();
    let snaps = OverlaySnapshotter::new(&t.path().join("s")).unwrap();
    let rootfs = t.path().join("r");
    fs::create_dir(&rootfs).unwrap();
    snapshot::mount_all(
        &snaps
            .prepare("c", &[init, busybox_layer().to_path_buf()])
            .unwrap(),
        &rootfs,
    )
    .unwrap();
    Mounted {
        rootfs,
        _guard: Unmount(t.path().to_path_buf()),
        _dir: t,
    }
}

fn image() -> ImageConfig {
    ImageConfig {
        env: vec![
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
            "FOO=image".into(),
        ],
        cmd: Some(vec!["sh".into()]),
        ..Default::default()
    }
}

struct Outcome {
    result: runtime::Result<i32>,
    stdout: String,
    stderr: String,
    upper: Vec<String>,
    created: Vec<String>,
}

fn capture() -> (fs::File, OwnedFd) {
    let f = tempfile::tempfile().unwrap();
    let fd = OwnedFd::from(f.try_clone().unwrap());
    (f, fd)
}

fn read_all(mut f: fs::File) -> String {
    use std::io::Seek;
    f.rewind().unwrap();
    let mut s = String::new();
    f.read_to_string(&mut s).unwrap();
    s
}

/// Every path under `dir`, relative, sorted.
fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        let mut names: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        names.sort();
        for p in names {
            out.push(p.strip_prefix(base).unwrap().display().to_string());
            if fs::symlink_metadata(&p).unwrap().is_dir() {
                walk(base, &p, out);
            }
        }
    }
    walk(dir, dir, &mut out);
    out
}

/// Runs `args` in a fresh container of the busybox image (with extra lower layers on top),
/// then unmounts and checks that nothing is left mounted.
fn run_with(
    args: &[&str],
    extra_lowers: &[PathBuf],
    tweak: impl FnOnce(&mut RunOptions, &Path),
) -> Outcome {
    run_on(
        &|p| Box::new(OverlaySnapshotter::new(p).unwrap()),
        args,
        extra_lowers,
        tweak,
    )
}

/// As [`run_with`], on the snapshotter `make` returns.
fn run_on(
    make: &dyn Fn(&Path) -> Box<dyn Snapshotter>,
    args: &[&str],
    extra_lowers: &[PathBuf],
    tweak: impl FnOnce(&mut RunOptions, &Path),
) -> Outcome {
    let t = tempfile::tempdir().unwrap();
    let init = t.path().join("init");
    runtime::make_init_layer(&init).unwrap();
    let mut lowers = vec![init];
    lowers.extend(extra_lowers.iter().cloned());
    lowers.push(busybox_layer().to_path_buf());
    let snaps = make(&t.path().join("snaps"));
    let rootfs = t.path().join("rootfs");
    fs::create_dir(&rootfs).unwrap();
    snapshot::mount_all(&snaps.prepare("c", &lowers).unwrap(), &rootfs).unwrap();
    let _guard = Unmount(t.path().to_path_buf());

    let mut opts = RunOptions {
        id: "0123456789abcdef".into(),
        args: args.iter().map(|s| s.to_string()).collect(),
        network: Network::None,
        ..Default::default()
    };
    tweak(&mut opts, t.path());
    let (out_f, out_fd) = capture();
    let (err_f, err_fd) = capture();
    let mut created = Vec::new();
    let result = (|| {
        let mut spec = runtime::compose(&image(), &opts)?;
        spec.apply_user(&runtime::resolve_user(&rootfs, &spec.process.user)?);
        let state = t.path().join("state");
        runtime::write_etc_files(&state, &spec)?;
        let mut c = runtime::spawn(
            &rootfs,
            &spec,
            SpawnOptions {
                // Tests run at once in several processes: the default ID names cgroups, so it
                // gets this process's number.
                id: if opts.id == "0123456789abcdef" {
                    format!("{}-{}", opts.id, std::process::id())
                } else {
                    opts.id.clone()
                },
                state_dir: Some(state),
                stdin: Stdio::Null,
                stdout: Stdio::Fd(out_fd),
                stderr: Stdio::Fd(err_fd),
                kill_with_parent: true,
                tty: false,
                init_path: opts.init.then(tini),
                pasta: None,
                seccomp_cache: None,
                network: None,
            },
        )?;
        created = c
            .created_paths()
            .iter()
            .map(|p| p.strip_prefix(&rootfs).unwrap().display().to_string())
            .collect();
        c.wait()
    })();
    snapshot::unmount_all(&rootfs).unwrap();
    assert!(snapshot::mounts_under(t.path()).unwrap().is_empty());
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !info.contains(&*t.path().to_string_lossy()),
        "mount left behind:\n{info}"
    );
    let upper = tree(&snaps.upper_dir("c").unwrap());
    snaps.remove("c").unwrap();
    Outcome {
        result,
        stdout: read_all(out_f),
        stderr: read_all(err_f),
        upper,
        created,
    }
}

fn run(args: &[&str]) -> Outcome {
    run_with(args, &[], |_, _| {})
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn isolation_basics() {
    if !require_root() {
        return;
    }
    let o = run_with(
        &["sh", "-c", "hostname; echo pid=$$; id; cat /etc/hostname; cat /proc/net/dev; grep -E '^Cap(Bnd|Eff|Inh|Amb)|NoNewPrivs' /proc/self/status; ls /proc | grep -c '^[0-9]'; cat /proc/timer_list | wc -c"],
        &[],
        |o, _| o.hostname = Some("box".into()),
    );
    assert_eq!(o.result.unwrap(), 0, "{}", o.stderr);
    let lines: Vec<&str> = o.stdout.lines().collect();
    assert_eq!(lines[0], "box");
    assert_eq!(lines[1], "pid=1");
    assert_eq!(lines[2], "uid=0(root) gid=0(root) groups=0(root)");
    assert_eq!(lines[3], "box");
    let ifaces: Vec<&str> = lines
        .iter()
        .filter(|l| {
            l.contains(':') && !l.contains('|') && !l.starts_with("Cap") && !l.starts_with("NoNew")
        })
        .map(|l| l.split(':').next().unwrap().trim())
        .collect();
    assert_eq!(ifaces, ["lo"], "{}", o.stdout);
    assert!(
        o.stdout.contains("CapBnd:\t00000000a80425fb"),
        "{}",
        o.stdout
    );
    assert!(o.stdout.contains("CapEff:\t00000000a80425fb"));
    assert!(o.stdout.contains("CapInh:\t0000000000000000"));
    assert!(
        o.stdout.contains("NoNewPrivs:\t0"),
        "Docker sets no_new_privs only when asked"
    );
    // Only the shell and its children are in the PID namespace.
    let n: usize = lines[lines.len() - 2].trim().parse().unwrap();
    assert!(n <= 4, "{n} processes visible");
    assert_eq!(
        lines[lines.len() - 1].trim(),
        "0",
        "/proc/timer_list is masked"
    );
    assert!(
        o.upper.is_empty(),
        "nothing written, yet the upper dir holds {:?}",
        o.upper
    );
    assert!(
        o.created.is_empty(),
        "the init layer provides every mount point: {:?}",
        o.created
    );
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn mounts_inside_look_like_dockers() {
    if !require_root() {
        return;
    }
    let o = run(&["sh", "-c", "cat /proc/self/mountinfo; ls /dev; echo x > /proc/sys/kernel/hostname || echo ro-proc-sys; touch /sys/x || echo ro-sys"]);
    assert_eq!(o.result.unwrap(), 0, "{}", o.stderr);
    let mi = &o.stdout;
    for needle in [
        " /proc rw,nosuid,nodev,noexec",
        " /dev rw,nosuid",
        " /dev/pts ",
        " /dev/shm ",
        " /dev/mqueue ",
        " /sys ro,",
        " /etc/hosts ",
        " /etc/hostname ",
        " /etc/resolv.conf ",
        " /proc/sys ro,",
    ] {
        assert!(mi.contains(needle), "missing {needle:?} in\n{mi}");
    }
    for dev in [
        "null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "mqueue", "fd", "ptmx",
    ] {
        assert!(o.stdout.lines().any(|l| l == dev), "/dev/{dev} missing");
    }
    assert!(o.stdout.contains("ro-proc-sys") && o.stdout.contains("ro-sys"));
    assert!(o.upper.is_empty(), "{:?}", o.upper);
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn exit_codes_and_messages_match_docker() {
    if !require_root() {
        return;
    }
    assert_eq!(run(&["sh", "-c", "exit 3"]).result.unwrap(), 3);
    assert_eq!(run(&["true"]).result.unwrap(), 0);
    // PID 1 of a namespace ignores signals it has no handler for, even SIGKILL from inside.
    let o = run(&["sh", "-c", "kill -9 $$; echo survived"]);
    assert_eq!((o.result.unwrap(), o.stdout.as_str()), (0, "survived\n"));
    assert_eq!(
        run(&["sh", "-c", "sleep 5 & exec kill -9 $!"])
            .result
            .unwrap(),
        0
    );
    let e = run(&["nosuch"]).result.unwrap_err();
    assert_eq!(e.exit_code(), 127);
    assert_eq!(e.to_string(), "failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: exec: \"nosuch\": executable file not found in $PATH: unknown");
    let e = run(&["/nosuch"]).result.unwrap_err();
    assert_eq!(e.exit_code(), 127);
    assert!(
        e.to_string()
            .contains("exec: \"/nosuch\": stat /nosuch: no such file or directory: unknown"),
        "{e}"
    );
    let e = run(&["/etc/passwd"]).result.unwrap_err();
    assert_eq!(e.exit_code(), 126);
    assert!(
        e.to_string()
            .contains("exec: \"/etc/passwd\": permission denied: unknown"),
        "{e}"
    );
    let e = run(&["/tmp"]).result.unwrap_err();
    assert_eq!(e.exit_code(), 126);
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn environment_is_composed_as_docker_does() {
    if !require_root() {
        return;
    }
    let o = run_with(&["env"], &[], |o, _| {
        o.env = vec!["BAR=2".into(), "FOO=mine".into()]
    });
    assert_eq!(o.result.unwrap(), 0);
    assert_eq!(
        o.stdout,
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\nHOSTNAME=0123456789ab\nBAR=2\nFOO=mine\nHOME=/root\n"
    );
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn users_resolve_through_the_image() {
    if !require_root() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let layer = t.path().join("groups");
    fs::create_dir_all(layer.join("etc")).unwrap();
    fs::write(
        layer.join("etc/group"),
        "root:x:0:\nnogroup:x:65534:\nwheel:x:10:nobody\naudio:x:29:nobody,root\n",
    )
    .unwrap();
    let script = "id; echo HOME=$HOME; grep -E '^Cap(Eff|Prm|Bnd)' /proc/self/status; pwd";
    let o = run_with(
        &["sh", "-c", script],
        std::slice::from_ref(&layer),
        |o, _| {
            o.user = Some("nobody".into());
            o.workdir = Some("/made/for/you".into());
        },
    );
    assert_eq!(o.result.unwrap(), 0, "{}", o.stderr);
    let lines: Vec<&str> = o.stdout.lines().collect();
    assert_eq!(
        lines[0],
        "uid=65534(nobody) gid=65534(nogroup) groups=10(wheel),29(audio),65534(nogroup)"
    );
    assert_eq!(lines[1], "HOME=/nonexistent");
    assert!(o.stdout.contains("CapEff:\t0000000000000000"));
    assert!(o.stdout.contains("CapBnd:\t00000000a80425fb"));
    assert_eq!(lines.last().unwrap(), &"/made/for/you");
    assert_eq!(
        o.upper,
        ["made", "made/for", "made/for/you"],
        "the working directory is created"
    );

    let o = run_with(&["id"], std::slice::from_ref(&layer), |o, _| {
        o.user = Some("1234:audio".into())
    });
    assert_eq!(o.stdout.trim(), "uid=1234 gid=29(audio) groups=29(audio)");
    let o = run_with(&["id"], &[], |o, _| o.user = Some("ghost".into()));
    let e = o.result.unwrap_err();
    assert_eq!(
        e.to_string(),
        "unable to find user ghost: no matching entries in passwd file"
    );
    assert_eq!(e.exit_code(), 125);
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn upper_dir_holds_exactly_the_writes() {
    if !require_root() {
        return;
    }
    let o = run(&["sh", "-c", "echo hi > /tmp/x && rm /bin/vi && echo 1 >> /etc/passwd && mkdir /newdir && echo h > /etc/hosts"]);
    assert_eq!(o.result.unwrap(), 0, "{}", o.stderr);
    assert_eq!(
        o.upper,
        [
            "bin",
            "bin/vi",
            "etc",
            "etc/passwd",
            "newdir",
            "tmp",
            "tmp/x"
        ]
    );
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn copy_snapshotter_gives_the_same_upper_dir() {
    if !require_root() {
        return;
    }
    let script = "echo hi > /tmp/x && rm /bin/vi && echo 1 >> /etc/passwd && mkdir /newdir && echo h > /etc/hosts && hostname";
    let o = run_on(
        &|p| Box::new(snapshot::CopySnapshotter::new(p).unwrap()),
        &["sh", "-c", script],
        &[],
        |o, _| o.hostname = Some("copied".into()),
    );
    assert_eq!(o.result.unwrap(), 0, "{}", o.stderr);
    assert_eq!(o.stdout, "copied\n");
    assert_eq!(
        o.upper,
        [
            "bin",
            "bin/vi",
            "etc",
            "etc/passwd",
            "newdir",
            "tmp",
            "tmp/x"
        ]
    );
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn read_only_rootfs_binds_and_tmpfs() {
    if !require_root() {
        return;
    }
    let host = tempfile::tempdir().unwrap();
    fs::write(host.path().join("in"), "from host\n").unwrap();
    let hp = host.path().to_path_buf();
    let o = run_with(
        &["sh", "-c", "touch /x 2>/dev/null || echo ro-root; cat /data/in; touch /data/y 2>/dev/null || echo ro-bind; echo t > /scratch/t && cat /scratch/t; echo w > /rw/w"],
        &[],
        move |o, _| {
            o.read_only = true;
            o.mounts = vec![
                MountSpec { kind: MountKind::Bind { source: hp.clone() }, destination: "/data".into(), readonly: true },
                MountSpec { kind: MountKind::Tmpfs { options: String::new() }, destination: "/scratch".into(), readonly: false },
                MountSpec { kind: MountKind::Bind { source: hp.clone() }, destination: "/rw".into(), readonly: false },
            ];
        },
    );
    assert_eq!(o.result.unwrap(), 0, "{}", o.stderr);
    assert_eq!(o.stdout, "ro-root\nfrom host\nro-bind\nt\n");
    assert_eq!(fs::read_to_string(host.path().join("w")).unwrap(), "w\n");
    // Docker also creates missing mount points in the container layer.
    assert_eq!(o.upper, ["data", "rw", "scratch"]);
    assert_eq!(o.created, ["data", "scratch", "rw"]);
    let o = run_with(&["true"], &[], |o, _| {
        o.mounts = vec![MountSpec {
            kind: MountKind::Bind {
                source: "/does/not/exist".into(),
            },
            destination: "/d".into(),
            readonly: false,
        }];
    });
    assert!(matches!(o.result, Err(runtime::Error::BindSource(_))));
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn pids_limit_is_enforced_and_cgroup_removed() {
    if !require_root() {
        return;
    }
    let script = if runtime::cgroup_v2() {
        "cat /sys/fs/cgroup/pids.max /sys/fs/cgroup/memory.max; touch /sys/fs/cgroup/x || echo ro"
    } else {
        "cat /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/memory/memory.limit_in_bytes; touch /sys/fs/cgroup/x || echo ro"
    };
    let o = run_with(&["sh", "-c", script], &[], |o, _| {
        o.id = "cgview0123456789".into();
        o.resources.pids_limit = Some(5);
        o.resources.memory = Some(64 << 20);
    });
    assert_eq!(o.result.unwrap(), 0, "{}", o.stderr);
    assert_eq!(
        o.stdout,
        format!("5\n{}\nro\n", 64u64 << 20),
        "the container sees its limits"
    );

    let o = run_with(
        &[
            "sh",
            "-c",
            "i=0; while [ $i -lt 20 ]; do sleep 2 & i=$((i+1)); done; echo done",
        ],
        &[],
        |o, _| {
            o.id = "cgtest0123456789".into();
            o.resources.pids_limit = Some(5);
            o.resources.memory = Some(64 << 20);
            o.resources.nano_cpus = Some(500_000_000);
        },
    );
    o.result.unwrap();
    assert!(o.stderr.contains("can't fork"), "stderr: {}", o.stderr);
    for d in [
        "/sys/fs/cgroup/pids/strata/cgtest0123456789",
        "/sys/fs/cgroup/memory/strata/cgtest0123456789",
        "/sys/fs/cgroup/strata/cgtest0123456789",
    ] {
        assert!(!Path::new(d).exists(), "{d} left behind");
    }
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn cgroup_limits_are_written() {
    if !require_root() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let spec = {
        let mut o = RunOptions {
            id: "cglimits01".into(),
            args: vec!["true".into()],
            network: Network::None,
            ..Default::default()
        };
        o.resources.memory = Some(32 << 20);
        o.resources.pids_limit = Some(7);
        o.resources.nano_cpus = Some(1_500_000_000);
        runtime::compose(&image(), &o).unwrap()
    };
    let init = t.path().join("init");
    runtime::make_init_layer(&init).unwrap();
    let snaps = OverlaySnapshotter::new(&t.path().join("s")).unwrap();
    let rootfs = t.path().join("r");
    fs::create_dir(&rootfs).unwrap();
    snapshot::mount_all(
        &snaps
            .prepare("c", &[init, busybox_layer().to_path_buf()])
            .unwrap(),
        &rootfs,
    )
    .unwrap();
    let _guard = Unmount(t.path().to_path_buf());
    let mut spec = spec;
    spec.process.args = vec!["sleep".into(), "5".into()];
    let mut c = runtime::spawn(
        &rootfs,
        &spec,
        SpawnOptions {
            id: "cglimits01".into(),
            kill_with_parent: true,
            ..Default::default()
        },
    )
    .unwrap();
    let dirs = c.cgroup_dirs();
    assert!(!dirs.is_empty());
    let read = |name: &str| {
        dirs.iter()
            .find_map(|d| fs::read_to_string(d.join(name)).ok())
            .map(|s| s.trim().to_string())
    };
    if runtime::cgroup_v2() {
        assert_eq!(read("memory.max").unwrap(), (32u64 << 20).to_string());
        assert_eq!(read("cpu.max").unwrap(), "150000 100000");
    } else {
        assert_eq!(
            read("memory.limit_in_bytes").unwrap(),
            (32u64 << 20).to_string()
        );
        assert_eq!(read("cpu.cfs_quota_us").unwrap(), "150000");
    }
    assert_eq!(read("pids.max").unwrap(), "7");
    let procs = read("cgroup.procs").unwrap();
    assert_eq!(procs, c.pid().to_string());
    c.signal(libc::SIGKILL).unwrap();
    assert_eq!(c.wait().unwrap(), 137);
    for d in &dirs {
        assert!(!d.exists(), "{} left behind", d.display());
    }
    snapshot::unmount_all(&rootfs).unwrap();
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn signals_reach_the_process() {
    if !require_root() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let init = t.path().join("init");
    runtime::make_init_layer(&init).unwrap();
    let snaps = OverlaySnapshotter::new(&t.path().join("s")).unwrap();
    let rootfs = t.path().join("r");
    fs::create_dir(&rootfs).unwrap();
    snapshot::mount_all(
        &snaps
            .prepare("c", &[init, busybox_layer().to_path_buf()])
            .unwrap(),
        &rootfs,
    )
    .unwrap();
    let _guard = Unmount(t.path().to_path_buf());
    let o = RunOptions {
        id: "sig".into(),
        args: vec![
            "sh".into(),
            "-c".into(),
            "trap 'exit 7' TERM; touch /tmp/ready; while true; do sleep 0.05; done".into(),
        ],
        network: Network::None,
        ..Default::default()
    };
    let spec = runtime::compose(&image(), &o).unwrap();
    let mut c = runtime::spawn(
        &rootfs,
        &spec,
        SpawnOptions {
            kill_with_parent: true,
            ..Default::default()
        },
    )
    .unwrap();
    let ready = rootfs.join("tmp/ready");
    for _ in 0..500 {
        if ready.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(ready.exists());
    c.signal(libc::SIGTERM).unwrap();
    assert_eq!(c.wait().unwrap(), 7);
    snapshot::unmount_all(&rootfs).unwrap();
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn two_hundred_ten_layers_run() {
    if !require_root() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let mut layers = Vec::new();
    for i in (0..210).rev() {
        let d = t.path().join(format!("sha256-{i:060}"));
        fs::create_dir_all(d.join("layers")).unwrap();
        fs::write(d.join(format!("layers/{i}")), "").unwrap();
        fs::write(d.join("top"), i.to_string()).unwrap();
        layers.push(d);
    }
    let o = run_with(
        &["sh", "-c", "ls /layers | wc -l; cat /top"],
        &layers,
        |_, _| {},
    );
    assert_eq!(o.result.unwrap(), 0, "{}", o.stderr);
    assert_eq!(
        o.stdout.split_whitespace().collect::<Vec<_>>(),
        ["210", "209"]
    );
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn run_step_streams_output_and_returns_the_code() {
    if !require_root() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let init = t.path().join("init");
    runtime::make_init_layer(&init).unwrap();
    let snaps = OverlaySnapshotter::new(&t.path().join("s")).unwrap();
    let rootfs = t.path().join("r");
    fs::create_dir(&rootfs).unwrap();
    snapshot::mount_all(
        &snaps
            .prepare("c", &[init, busybox_layer().to_path_buf()])
            .unwrap(),
        &rootfs,
    )
    .unwrap();
    let _guard = Unmount(t.path().to_path_buf());
    let o = RunOptions {
        id: "step".into(),
        args: vec![
            "/bin/sh".into(),
            "-c".into(),
            "echo out; echo err >&2; echo made > /built; exit 4".into(),
        ],
        entrypoint: Some(String::new()),
        network: Network::None,
        ..Default::default()
    };
    let spec = runtime::compose(&image(), &o).unwrap();
    let (of, ofd) = capture();
    let (ef, efd) = capture();
    assert_eq!(
        runtime::run_step(&rootfs, &spec, Stdio::Fd(ofd), Stdio::Fd(efd)).unwrap(),
        4
    );
    assert_eq!(read_all(of), "out\n");
    assert_eq!(read_all(ef), "err\n");
    snapshot::unmount_all(&rootfs).unwrap();
    let upper = snaps.upper_dir("c").unwrap();
    assert_eq!(tree(&upper), ["built"]);
    let m = fs::symlink_metadata(upper.join("built")).unwrap();
    assert!(m.is_file() && !m.file_type().is_char_device() && m.uid() == 0);
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn exec_joins_a_running_container() {
    if !require_root() {
        return;
    }
    let mounted = mounted_busybox();
    let rootfs = mounted.rootfs.clone();
    let mut o = RunOptions {
        id: "exectest01".into(),
        args: vec!["sleep".into(), "30".into()],
        hostname: Some("host-x".into()),
        env: vec!["FROM_RUN=1".into()],
        network: Network::None,
        ..Default::default()
    };
    o.resources.pids_limit = Some(50);
    let mut spec = runtime::compose(&image(), &o).unwrap();
    spec.apply_user(&runtime::resolve_user(&rootfs, "").unwrap());
    let mut c = runtime::spawn(
        &rootfs,
        &spec,
        SpawnOptions {
            id: o.id.clone(),
            stdin: Stdio::Null,
            kill_with_parent: true,
            ..Default::default()
        },
    )
    .unwrap();

    let exec = |args: &[&str], env: &[&str], workdir: Option<&str>, user: Option<&str>| {
        let mut p = spec
            .exec_process(
                args.iter().map(|s| s.to_string()).collect(),
                &env.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                workdir.map(str::to_string),
                user.map(str::to_string),
            )
            .unwrap();
        p.apply_user(&runtime::resolve_user(&rootfs, &p.user).unwrap());
        let (f, fd) = capture();
        let r = runtime::exec(
            c.init_process(),
            &p,
            runtime::ExecOptions {
                stdin: Stdio::Null,
                stdout: Stdio::Fd(fd),
                stderr: Stdio::Inherit,
                tty: false,
                tty_size: None,
                seccomp_cache: None,
            },
        )
        .and_then(|mut x| x.wait());
        (r, read_all(f))
    };
    let (r, out) = exec(
        &[
            "sh",
            "-c",
            "echo pid=$$; hostname; id; pwd; echo $FROM_RUN $EXTRA $HOME; cat /proc/1/cmdline | tr '\\0' ' '; echo; grep -c /strata/exectest01 /proc/self/cgroup; exit 4",
        ],
        &["EXTRA=2"],
        Some("/tmp"),
        Some("nobody"),
    );
    assert_eq!(r.unwrap(), 4);
    let lines: Vec<&str> = out.lines().collect();
    assert_ne!(lines[0], "pid=1");
    assert_eq!(lines[1], "host-x");
    assert_eq!(
        lines[2],
        "uid=65534(nobody) gid=65534(nogroup) groups=65534(nogroup)"
    );
    assert_eq!(lines[3], "/tmp");
    assert_eq!(lines[4], "1 2 /nonexistent");
    assert_eq!(lines[5], "sleep 30 ");
    // pids (and, on v1, devices: every container has a devices cgroup there).
    assert_eq!(
        lines[6],
        if runtime::cgroup_v2() { "1" } else { "2" },
        "the exec'd process is in the container's cgroups"
    );

    let e = exec(&["nosuch"], &[], None, None).0.unwrap_err();
    assert_eq!(e.exit_code(), 126);
    assert_eq!(e.to_string(), "OCI runtime exec failed: exec failed: unable to start container process: exec: \"nosuch\": executable file not found in $PATH: unknown");
    let e = exec(&["pwd"], &[], Some("/nope"), None).0.unwrap_err();
    assert_eq!(e.exit_code(), 126);
    assert_eq!(e.to_string(), "OCI runtime exec failed: exec failed: unable to start container process: chdir to cwd (\"/nope\") set in config.json failed: no such file or directory: unknown");

    // exec -t: a terminal of its own in the container's devpts.
    let p = spec
        .exec_process(
            vec!["sh".into(), "-c".into(), "tty".into()],
            &[],
            None,
            None,
        )
        .unwrap();
    let mut x = runtime::exec(
        c.init_process(),
        &p,
        runtime::ExecOptions {
            tty: true,
            tty_size: None,
            ..Default::default()
        },
    )
    .unwrap();
    let mut f = fs::File::from(x.take_pty_master().unwrap());
    let mut out = Vec::new();
    let mut buf = [0u8; 256];
    while let Ok(n) = f.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    assert_eq!(x.wait().unwrap(), 0);
    assert!(
        String::from_utf8_lossy(&out).starts_with("/dev/pts/"),
        "{out:?}"
    );

    c.signal(libc::SIGKILL).unwrap();
    assert_eq!(c.wait().unwrap(), 137);
}

/// Helper for `foreground_run_forwards_sigterm`, run in its own process (it installs signal
/// handlers): a foreground run whose container exits 7 on SIGTERM; exits with its code.
#[test]
#[ignore = "helper process for foreground_run_forwards_sigterm"]
fn helper_foreground_run() {
    let Some(dir) = std::env::var_os("STRATA_TEST_FOREGROUND_DIR") else {
        return;
    };
    let t = PathBuf::from(dir);
    let init = t.join("init");
    runtime::make_init_layer(&init).unwrap();
    let snaps = OverlaySnapshotter::new(&t.join("s")).unwrap();
    let rootfs = t.join("r");
    fs::create_dir(&rootfs).unwrap();
    snapshot::mount_all(
        &snaps
            .prepare("c", &[init, busybox_layer().to_path_buf()])
            .unwrap(),
        &rootfs,
    )
    .unwrap();
    let o = RunOptions {
        id: "fg".into(),
        args: vec![
            "sh".into(),
            "-c".into(),
            "trap 'exit 7' TERM; touch /tmp/ready; while true; do sleep 0.05; done".into(),
        ],
        network: Network::None,
        ..Default::default()
    };
    let spec = runtime::compose(&image(), &o).unwrap();
    let code = runtime::run(
        &rootfs,
        &spec,
        SpawnOptions {
            stdin: Stdio::Null,
            kill_with_parent: true,
            ..Default::default()
        },
    )
    .unwrap();
    snapshot::unmount_all(&rootfs).unwrap();
    std::process::exit(code);
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn foreground_run_forwards_sigterm() {
    if !require_root() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let _guard = Unmount(t.path().to_path_buf());
    let mut helper = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "helper_foreground_run",
            "--ignored",
            "--nocapture",
        ])
        .env("STRATA_TEST_FOREGROUND_DIR", t.path())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let ready = t.path().join("r/tmp/ready");
    for _ in 0..1000 {
        if ready.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(ready.exists(), "the container never started");
    // SAFETY: signalling our own child process.
    unsafe { libc::kill(helper.id() as i32, libc::SIGTERM) };
    let status = helper.wait().unwrap();
    assert_eq!(status.code(), Some(7), "{status:?}");
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn init_runs_as_pid_one_and_passes_codes_and_signals() {
    if !require_root() || !require_tool("/usr/bin/tini-static", "tini") {
        return;
    }
    let o = run_with(
        &[
            "sh",
            "-c",
            "echo $$; cat /proc/1/status | grep -c '^Name'; exit 5",
        ],
        &[],
        |o, _| o.init = true,
    );
    assert_eq!(o.result.unwrap(), 5, "{}", o.stderr);
    let pid: u32 = o.stdout.lines().next().unwrap().trim().parse().unwrap();
    assert_ne!(pid, 1, "the command is not PID 1 under --init");
    // As Docker's: the init starts, fails to exec the command, says so and exits 127.
    let o = run_with(&["nosuch"], &[], |o, _| o.init = true);
    assert_eq!(o.result.unwrap(), 127);
    assert!(o.stderr.contains("exec nosuch failed"), "{}", o.stderr);
    let o = run_with(
        &[
            "sh",
            "-c",
            "readlink /proc/1/exe; tr '\\0' ' ' </proc/1/cmdline",
        ],
        &[],
        |o, _| o.init = true,
    );
    assert_eq!(o.result.unwrap(), 0, "{}", o.stderr);
    assert_eq!(
        o.stdout,
        "/sbin/docker-init\n/sbin/docker-init -- sh -c readlink /proc/1/exe; tr '\\0' ' ' </proc/1/cmdline "
    );

    let mounted = mounted_busybox();
    let rootfs = mounted.rootfs.clone();
    let o = RunOptions {
        id: "initsig".into(),
        args: vec![
            "sh".into(),
            "-c".into(),
            "trap 'exit 9' TERM; touch /tmp/ready; while true; do sleep 0.05; done".into(),
        ],
        init: true,
        network: Network::None,
        ..Default::default()
    };
    let spec = runtime::compose(&image(), &o).unwrap();
    let mut c = runtime::spawn(
        &rootfs,
        &spec,
        SpawnOptions {
            kill_with_parent: true,
            init_path: Some(tini()),
            ..Default::default()
        },
    )
    .unwrap();
    let ready = rootfs.join("tmp/ready");
    for _ in 0..500 {
        if ready.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(ready.exists());
    c.signal(libc::SIGTERM).unwrap();
    assert_eq!(c.wait().unwrap(), 9);
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn tty_gives_the_process_a_terminal_of_its_own() {
    if !require_root() {
        return;
    }
    let mounted = mounted_busybox();
    let rootfs = mounted.rootfs.clone();
    let o = RunOptions {
        id: "ttytest".into(),
        args: vec![
            "sh".into(),
            "-c".into(),
            "tty; [ -t 0 ] && [ -t 1 ] && echo T; echo $TERM; ls -l /dev/console | cut -c1".into(),
        ],
        tty: true,
        network: Network::None,
        ..Default::default()
    };
    let spec = runtime::compose(&image(), &o).unwrap();
    let mut c = runtime::spawn(
        &rootfs,
        &spec,
        SpawnOptions {
            tty: true,
            kill_with_parent: true,
            ..Default::default()
        },
    )
    .unwrap();
    let master = c.take_pty_master().expect("a terminal master");
    let mut out = Vec::new();
    let mut f = fs::File::from(master);
    let mut buf = [0u8; 4096];
    // Read until the slave side is closed (EIO) once the process is gone.
    loop {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(_) => break,
        }
    }
    assert_eq!(c.wait().unwrap(), 0);
    let text = String::from_utf8_lossy(&out).replace('\r', "");
    assert_eq!(text, "/dev/pts/0\nT\nxterm\nc\n");
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn privileged_and_host_network() {
    if !require_root() {
        return;
    }
    let host_ifaces = fs::read_to_string("/proc/net/dev")
        .unwrap()
        .lines()
        .skip(2)
        .count();
    let o = run_with(
        &[
            "sh",
            "-c",
            "hostname; grep -c : /proc/net/dev; grep '^CapBnd' /proc/self/status; grep ' /sys ' /proc/self/mountinfo | cut -d' ' -f6 | cut -d, -f1; cat /proc/timer_list | wc -c",
        ],
        &[],
        |o, _| {
            o.network = Network::Host;
            o.host_hostname = "the-host".into();
            o.privileged = true;
        },
    );
    assert_eq!(o.result.unwrap(), 0, "{}", o.stderr);
    let lines: Vec<&str> = o.stdout.lines().collect();
    assert_eq!(lines[0], "the-host");
    assert_eq!(
        lines[1].parse::<usize>().unwrap(),
        host_ifaces,
        "the host's interfaces"
    );
    // Every capability this machine grants root (some sandboxes withhold a few).
    let ours = fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find(|l| l.starts_with("CapBnd"))
        .unwrap()
        .to_string();
    assert_eq!(lines[2], ours);
    assert_eq!(lines[3], "rw", "/sys is writable when privileged");
    assert_ne!(lines[4].trim(), "0", "nothing is masked when privileged");
}

/// Whether `tool --version` succeeds; otherwise see [`cannot_run`], naming the Debian
/// package `package` that has it.
fn require_tool(tool: &str, package: &str) -> bool {
    let ok = std::process::Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        cannot_run(&format!(
            "needs {tool}: apt-get install {package} (scripts/test installs it)"
        ));
    }
    ok
}

/// A static program printing its session keyring's ID and whether a search of it finds the
/// key `strata-keyring-probe`: `session=ID search=SERIAL|-ERRNO`.
fn keyring_probe(dir: &Path) -> PathBuf {
    let src = dir.join("probe.c");
    fs::write(
        &src,
        r#"#include <stdio.h>
#include <unistd.h>
#include <errno.h>
#include <sys/syscall.h>
int main(void) {
    long ses = syscall(SYS_keyctl, 0 /* GET_KEYRING_ID */, -3 /* SESSION */, 0);
    long found = syscall(SYS_keyctl, 10 /* SEARCH */, -3, "user", "strata-keyring-probe", 0);
    printf("session=%ld search=%ld\n", ses, found < 0 ? -(long)errno : found);
    return 0;
}
"#,
    )
    .unwrap();
    let bin = dir.join("probe");
    let st = std::process::Command::new("cc")
        .args(["-static", "-O1", "-o"])
        .arg(&bin)
        .arg(&src)
        .status()
        .unwrap();
    assert!(st.success(), "cc -static failed");
    bin
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn containers_and_execs_get_a_session_keyring_of_their_own() {
    if !require_root() || !require_tool("cc", "gcc libc6-dev") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let probe = keyring_probe(t.path());
    // This test process: a named session keyring of its own holding the probe key.
    // SAFETY: keyctl/add_key with valid C strings.
    let (ours, key) = unsafe {
        let j = libc::syscall(libc::SYS_keyctl, 1, c"strata-test-session".as_ptr());
        assert!(j > 0, "join session keyring");
        let key = libc::syscall(
            libc::SYS_add_key,
            c"user".as_ptr(),
            c"strata-keyring-probe".as_ptr(),
            b"secret".as_ptr(),
            6usize,
            -3i32,
        );
        assert!(key > 0, "add_key: {}", std::io::Error::last_os_error());
        (libc::syscall(libc::SYS_keyctl, 0, -3i32, 0), key)
    };
    let parse = |out: &str| -> (i64, i64) {
        let mut it = out
            .split_whitespace()
            .map(|w| w.split_once('=').unwrap().1.parse::<i64>().unwrap());
        (it.next().unwrap(), it.next().unwrap())
    };
    // The probe in the host's session finds the key (the probe itself works).
    let host = std::process::Command::new(&probe).output().unwrap();
    assert_eq!(
        parse(&String::from_utf8_lossy(&host.stdout)),
        (ours, key),
        "the probe sees this session"
    );

    let mounted = mounted_busybox();
    let rootfs = mounted.rootfs.clone();
    let o = RunOptions {
        id: "keyring01".into(),
        args: vec!["sh".into(), "-c".into(), "/probe; sleep 30".into()],
        network: Network::None,
        // Docker's seccomp profile refuses keyctl; the probe asks the kernel directly.
        seccomp: runtime::Seccomp::Unconfined,
        mounts: vec![MountSpec {
            kind: MountKind::Bind {
                source: probe.clone(),
            },
            destination: "/probe".into(),
            readonly: true,
        }],
        ..Default::default()
    };
    let spec = runtime::compose(&image(), &o).unwrap();
    let (f, fd) = capture();
    let mut c = runtime::spawn(
        &rootfs,
        &spec,
        SpawnOptions {
            id: o.id.clone(),
            stdin: Stdio::Null,
            stdout: Stdio::Fd(fd),
            kill_with_parent: true,
            ..Default::default()
        },
    )
    .unwrap();
    let (xf, xfd) = capture();
    let p = spec
        .exec_process(vec!["/probe".into()], &[], None, None)
        .unwrap();
    let mut x = runtime::exec(
        c.init_process(),
        &p,
        runtime::ExecOptions {
            stdin: Stdio::Null,
            stdout: Stdio::Fd(xfd),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(x.wait().unwrap(), 0);
    let mut out = String::new();
    for _ in 0..300 {
        out = read_all(f.try_clone().unwrap());
        if out.contains('\n') {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    c.signal(libc::SIGKILL).unwrap();
    let _ = c.wait();
    let (ses, found) = parse(&out);
    assert!(
        ses > 0 && ses != ours,
        "container session keyring {ses}, ours {ours}"
    );
    assert_eq!(
        found,
        -(libc::ENOKEY as i64),
        "the container must not find our key"
    );
    let (xses, xfound) = parse(&read_all(xf));
    assert!(
        xses > 0 && xses != ours && xses != ses,
        "exec session keyring {xses}"
    );
    assert_eq!(xfound, -(libc::ENOKEY as i64), "exec must not find our key");
}
