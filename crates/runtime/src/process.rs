//! Starting a container: namespaces, mounts, pivot_root, credentials and exec.
//!
//! **How the child is made.** The caller may be multi-threaded (a test harness, a build with
//! worker threads), so after `fork` only async-signal-safe work is allowed. The parent
//! therefore prepares *everything* first: every path as a `CString`, every mount as an
//! [`Op`], argv/envp pointer arrays, the `PATH` directories. It then calls the raw `clone`
//! system call (fork semantics, no new stack) with `CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS |
//! CLONE_NEWIPC` (plus `CLONE_NEWNET` for `--network none`). The child is PID 1 of the new PID
//! namespace; it performs only raw system calls on that prepared data (no allocation, no locks,
//! no glibc `setuid` wrappers, which would try to synchronise threads that do not exist in the
//! child), and finally `execve`s the command, which stays PID 1 as in Docker.
//! Failures are reported through a close-on-exec pipe as `(kind, step, errno)`; end of file on
//! the pipe means the exec succeeded. No helper binary and no re-exec of `/proc/self/exe` are
//! needed, so this works the same from tests and from the `strata` binary.

use std::ffi::{CString, OsStr};
use std::fs;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, Ordering};

use crate::cgroup::Cgroup;
use crate::error::Phase;
use crate::error::{errno_text, Error, IoContext, Result};
use crate::etc::ETC_FILES;
use crate::scope::secure_join;
use crate::spec::{MountKind, Network, Process, Spec};

/// Where one of the container's standard streams goes.
#[derive(Debug, Default)]
pub enum Stdio {
    /// The caller's own stream.
    #[default]
    Inherit,
    /// `/dev/null`.
    Null,
    /// A file, pipe or socket (for `-d` logs, or a build step's output pipe).
    Fd(OwnedFd),
}

/// How to start a container, besides its [`Spec`].
#[derive(Debug, Default)]
pub struct SpawnOptions {
    /// Container ID: names its cgroups (required when the spec has resource limits).
    pub id: String,
    /// Directory holding `hosts`, `hostname` and `resolv.conf` (see
    /// [`crate::write_etc_files`]) to bind over the image's; None leaves the image's files.
    pub state_dir: Option<PathBuf>,
    /// Standard input (Docker without `-i`: [`Stdio::Null`]).
    pub stdin: Stdio,
    /// Standard output.
    pub stdout: Stdio,
    /// Standard error.
    pub stderr: Stdio,
    /// Kill the container with SIGKILL when the thread that started it exits (foreground runs
    /// and build steps; not for `-d`).
    pub kill_with_parent: bool,
    /// `-t`: give the process a terminal made in the container's own `/dev/pts` (also bound
    /// to `/dev/console`) as its controlling terminal and standard streams, ignoring the
    /// `Stdio` fields; [`Container::take_pty_master`] returns the master side.
    pub tty: bool,
}

/// A started container process.
#[derive(Debug)]
pub struct Container {
    pid: i32,
    cgroup: Option<Cgroup>,
    created: Vec<PathBuf>,
    exit: Option<i32>,
    pty_master: Option<OwnedFd>,
}

impl Container {
    /// The master side of the container's terminal (with [`SpawnOptions::tty`]), once.
    pub fn take_pty_master(&mut self) -> Option<OwnedFd> {
        self.pty_master.take()
    }

    /// The process ID (in the caller's PID namespace).
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Mount points that were missing from the root filesystem and had to be created in it
    /// (so in the upper directory unless the caller stacked the init layer, see
    /// [`crate::make_init_layer`]); a builder must leave these out of the layer it commits.
    pub fn created_paths(&self) -> &[PathBuf] {
        &self.created
    }

    /// The container's cgroup directories (empty without resource limits).
    pub fn cgroup_dirs(&self) -> Vec<PathBuf> {
        self.cgroup
            .as_ref()
            .map(|c| c.dirs().to_vec())
            .unwrap_or_default()
    }

    /// Sends signal `sig` to the container's process.
    pub fn signal(&self, sig: i32) -> Result<()> {
        if self.exit.is_some() {
            return Ok(());
        }
        // SAFETY: plain syscall on our child's pid.
        if unsafe { libc::kill(self.pid, sig) } == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error()).ctx("signal", format!("pid {}", self.pid))
        }
    }

    /// Waits for the process to end and returns Docker's exit code: its own code, or 128+N
    /// when killed by signal N. Removes its cgroups.
    pub fn wait(&mut self) -> Result<i32> {
        if let Some(c) = self.exit {
            return Ok(c);
        }
        let code = wait_pid(self.pid)?;
        self.exit = Some(code);
        if let Some(mut cg) = self.cgroup.take() {
            cg.remove();
        }
        Ok(code)
    }

    /// Leaves the process running on its own (`-d`): returns its PID and keeps its cgroups,
    /// which [`crate::remove_stale_cgroups`] deletes once it is gone.
    pub fn detach(mut self) -> i32 {
        if let Some(cg) = self.cgroup.take() {
            std::mem::forget(cg);
        }
        self.exit = Some(0);
        self.pid
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        if self.exit.is_none() {
            let _ = self.signal(libc::SIGKILL);
            let _ = self.wait();
        }
    }
}

fn wait_pid(pid: i32) -> Result<i32> {
    let mut status = 0;
    loop {
        // SAFETY: waiting for our own child.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::__WALL) };
        if r == pid {
            break;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e).ctx("wait for", format!("pid {pid}"));
        }
    }
    if libc::WIFEXITED(status) {
        Ok(libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        Ok(128 + libc::WTERMSIG(status))
    } else {
        Ok(128)
    }
}

/// One prepared step of the child's setup.
enum Op {
    /// mount(2); `optional` failures with ENOENT are ignored.
    Mount {
        src: Option<CString>,
        target: CString,
        fstype: Option<CString>,
        flags: libc::c_ulong,
        data: Option<CString>,
    },
    /// A device node, bind-mounted from the host when mknod is not allowed.
    Device {
        path: CString,
        host: CString,
        dev: libc::dev_t,
    },
    Mkdir {
        path: CString,
        mode: libc::mode_t,
    },
    Symlink {
        target: CString,
        link: CString,
    },
    /// Docker's masked path: /dev/null over a file, an empty read-only tmpfs over a directory.
    Mask {
        path: CString,
    },
    /// Docker's read-only path: bind over itself, then remount read-only.
    Readonly {
        path: CString,
    },
}

/// Everything the child needs, prepared before clone.
struct Plan {
    rootfs: CString,
    pre: Vec<(Op, usize)>,
    post: Vec<(Op, usize)>,
    descs: Vec<String>,
    readonly_root: bool,
    hostname: CString,
    net_none: bool,
    tail: Tail,
    init: bool,
    /// The child's end of the socket the terminal master is sent over (-1: no terminal).
    tty_sock: RawFd,
    stdio: [RawFd; 3],
    cgroup_fds: Vec<RawFd>,
    kill_with_parent: bool,
}

/// The part of the setup shared by new containers and `exec`: working directory,
/// credentials, capabilities and the exec itself.
struct Tail {
    /// Directories to create on the way to the working directory (empty for `exec`).
    cwd_prefixes: Vec<CString>,
    cwd: CString,
    caps: u64,
    last_cap: u32,
    nnp: bool,
    uid: u32,
    gid: u32,
    groups: Vec<libc::gid_t>,
    argv0: CString,
    argv0_has_slash: bool,
    /// Owns the strings `argv_ptrs` points to.
    _argv: Vec<CString>,
    argv_ptrs: Vec<*const libc::c_char>,
    /// Owns the strings `envp_ptrs` points to.
    _envp: Vec<CString>,
    envp_ptrs: Vec<*const libc::c_char>,
    path_dirs: Vec<CString>,
}

fn tail_plan(p: &Process, create_cwd: bool) -> Result<Tail> {
    if p.args.is_empty() {
        return Err(Error::NoCommand);
    }
    let env = p.full_env();
    let argv: Vec<CString> = p.args.iter().map(cs).collect::<Result<_>>()?;
    let envp: Vec<CString> = env.iter().map(cs).collect::<Result<_>>()?;
    let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_ptrs.push(std::ptr::null());
    let mut envp_ptrs: Vec<*const libc::c_char> = envp.iter().map(|a| a.as_ptr()).collect();
    envp_ptrs.push(std::ptr::null());
    let path_dirs = p
        .env_value("PATH")
        .unwrap_or("")
        .split(':')
        .map(|d| if d.is_empty() { "." } else { d })
        .map(cs)
        .collect::<Result<_>>()?;
    let mut cwd_prefixes = Vec::new();
    if create_cwd {
        let mut acc = String::new();
        for comp in p.cwd.split('/').filter(|c| !c.is_empty()) {
            acc.push('/');
            acc.push_str(comp);
            cwd_prefixes.push(cs(&acc)?);
        }
    }
    let last_cap = fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40);
    Ok(Tail {
        cwd_prefixes,
        cwd: cs(&p.cwd)?,
        caps: p.capabilities,
        last_cap,
        nnp: p.no_new_privileges,
        uid: p.uid,
        gid: p.gid,
        groups: p.additional_gids.clone(),
        argv0: argv[0].clone(),
        argv0_has_slash: p.args[0].contains('/'),
        _argv: argv,
        argv_ptrs,
        _envp: envp,
        envp_ptrs,
        path_dirs,
    })
}

fn cs(s: impl AsRef<OsStr>) -> Result<CString> {
    CString::new(s.as_ref().as_bytes()).map_err(|_| Error::InvalidOption {
        what: "string",
        value: s.as_ref().to_string_lossy().into_owned(),
        reason: "contains a NUL byte".into(),
    })
}

/// Makes sure mount point `p` (already resolved inside the root) exists, creating a directory
/// or an empty file, and records what it created.
fn ensure_mountpoint(p: &Path, dir: bool, created: &mut Vec<PathBuf>) -> Result<()> {
    if fs::symlink_metadata(p).is_ok() {
        return Ok(());
    }
    if let Some(parent) = p.parent() {
        if !parent.exists() {
            fs::create_dir_all(parent).ctx("create mount point", parent)?;
            created.push(parent.to_path_buf());
        }
    }
    if dir {
        fs::create_dir(p).ctx("create mount point", p)?;
    } else {
        fs::write(p, "").ctx("create mount point", p)?;
    }
    created.push(p.to_path_buf());
    Ok(())
}

const NOSUID: libc::c_ulong = libc::MS_NOSUID;
const NODEV: libc::c_ulong = libc::MS_NODEV;
const NOEXEC: libc::c_ulong = libc::MS_NOEXEC;

struct Builder {
    ops: Vec<(Op, usize)>,
    descs: Vec<String>,
}

impl Builder {
    fn push(&mut self, desc: String, op: Op) {
        self.descs.push(desc);
        self.ops.push((op, self.descs.len() - 1));
    }

    fn mount(
        &mut self,
        desc: String,
        src: Option<&str>,
        target: &Path,
        fstype: Option<&str>,
        flags: libc::c_ulong,
        data: Option<&str>,
    ) -> Result<()> {
        let op = Op::Mount {
            src: src.map(cs).transpose()?,
            target: cs(target)?,
            fstype: fstype.map(cs).transpose()?,
            flags,
            data: data.map(cs).transpose()?,
        };
        self.push(desc, op);
        Ok(())
    }
}

fn plan(
    rootfs: &Path,
    spec: &Spec,
    opts: &SpawnOptions,
    stdio: [RawFd; 3],
) -> Result<(Plan, Vec<PathBuf>)> {
    let root = fs::canonicalize(rootfs).ctx("resolve root filesystem", rootfs)?;
    if !root.is_dir() {
        return Err(Error::Io {
            op: "use root filesystem",
            path: root,
            source: io::Error::from_raw_os_error(libc::ENOTDIR),
        });
    }
    let mut created = Vec::new();
    let mut b = Builder {
        ops: Vec::new(),
        descs: FIXED_STEPS.iter().map(|s| s.to_string()).collect(),
    };
    let rd = root.display();
    b.mount(
        "make mounts private".into(),
        None,
        Path::new("/"),
        None,
        libc::MS_REC | libc::MS_PRIVATE,
        None,
    )?;
    b.push(
        format!("bind root filesystem {rd}"),
        Op::Mount {
            src: Some(cs(&root)?),
            target: cs(&root)?,
            fstype: None,
            flags: libc::MS_BIND | libc::MS_REC,
            data: None,
        },
    );

    let proc_ = secure_join(&root, "/proc");
    ensure_mountpoint(&proc_, true, &mut created)?;
    b.mount(
        format!("mount proc to {}", proc_.display()),
        Some("proc"),
        &proc_,
        Some("proc"),
        NOSUID | NODEV | NOEXEC,
        None,
    )?;

    let dev = secure_join(&root, "/dev");
    ensure_mountpoint(&dev, true, &mut created)?;
    b.mount(
        format!("mount tmpfs to {}", dev.display()),
        Some("tmpfs"),
        &dev,
        Some("tmpfs"),
        NOSUID | libc::MS_STRICTATIME,
        Some("mode=755,size=65536k"),
    )?;
    for (name, major, minor) in [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ] {
        b.push(
            format!("create device /dev/{name}"),
            Op::Device {
                path: cs(dev.join(name))?,
                host: cs(format!("/dev/{name}"))?,
                dev: libc::makedev(major, minor),
            },
        );
    }
    for (name, mode) in [("pts", 0o755), ("shm", 0o1777), ("mqueue", 0o1777)] {
        b.push(
            format!("create /dev/{name}"),
            Op::Mkdir {
                path: cs(dev.join(name))?,
                mode,
            },
        );
    }
    for (link, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("ptmx", "pts/ptmx"),
    ] {
        b.push(
            format!("create /dev/{link}"),
            Op::Symlink {
                target: cs(target)?,
                link: cs(dev.join(link))?,
            },
        );
    }
    b.mount(
        "mount devpts to /dev/pts".into(),
        Some("devpts"),
        &dev.join("pts"),
        Some("devpts"),
        NOSUID | NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620,gid=5"),
    )?;
    b.mount(
        "mount shm to /dev/shm".into(),
        Some("shm"),
        &dev.join("shm"),
        Some("tmpfs"),
        NOSUID | NODEV | NOEXEC,
        Some("mode=1777,size=65536k"),
    )?;
    b.mount(
        "mount mqueue to /dev/mqueue".into(),
        Some("mqueue"),
        &dev.join("mqueue"),
        Some("mqueue"),
        NOSUID | NODEV | NOEXEC,
        None,
    )?;

    let sys = secure_join(&root, "/sys");
    ensure_mountpoint(&sys, true, &mut created)?;
    let ro = if spec.privileged { 0 } else { libc::MS_RDONLY };
    b.mount(
        format!("mount sysfs to {}", sys.display()),
        Some("sysfs"),
        &sys,
        Some("sysfs"),
        NOSUID | NODEV | NOEXEC | ro,
        None,
    )?;

    if let Some(state) = &opts.state_dir {
        for name in ETC_FILES {
            let src = state.join(name);
            if !src.exists() {
                continue;
            }
            let target = secure_join(&root, &format!("/etc/{name}"));
            ensure_mountpoint(&target, false, &mut created)?;
            b.push(
                format!("bind {} to /etc/{name}", src.display()),
                Op::Mount {
                    src: Some(cs(&src)?),
                    target: cs(&target)?,
                    fstype: None,
                    flags: libc::MS_BIND,
                    data: None,
                },
            );
        }
    }

    for m in &spec.mounts {
        let target = secure_join(&root, &m.destination);
        let ro = if m.readonly { libc::MS_RDONLY } else { 0 };
        match &m.kind {
            MountKind::Bind { source } => {
                let meta = fs::metadata(source).map_err(|_| Error::BindSource(source.clone()))?;
                ensure_mountpoint(&target, meta.is_dir(), &mut created)?;
                let desc = format!("bind {} to {}", source.display(), m.destination);
                b.push(
                    desc.clone(),
                    Op::Mount {
                        src: Some(cs(source)?),
                        target: cs(&target)?,
                        fstype: None,
                        flags: libc::MS_BIND | libc::MS_REC,
                        data: None,
                    },
                );
                if m.readonly {
                    b.push(
                        desc,
                        Op::Mount {
                            src: None,
                            target: cs(&target)?,
                            fstype: None,
                            flags: libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY,
                            data: None,
                        },
                    );
                }
            }
            MountKind::Tmpfs { options } => {
                ensure_mountpoint(&target, true, &mut created)?;
                let data = if options.split(',').any(|o| o.starts_with("mode=")) {
                    options.clone()
                } else if options.is_empty() {
                    "mode=1777".to_string()
                } else {
                    format!("{options},mode=1777")
                };
                b.mount(
                    format!("mount tmpfs to {}", m.destination),
                    Some("tmpfs"),
                    &target,
                    Some("tmpfs"),
                    NOSUID | NODEV | NOEXEC | ro,
                    Some(&data),
                )?;
            }
        }
    }
    let pre = std::mem::take(&mut b.ops);
    for p in &spec.masked_paths {
        b.push(format!("mask {p}"), Op::Mask { path: cs(p)? });
    }
    for p in &spec.readonly_paths {
        b.push(format!("make {p} read-only"), Op::Readonly { path: cs(p)? });
    }
    let post = std::mem::take(&mut b.ops);

    let tail = tail_plan(&spec.process, true)?;
    Ok((
        Plan {
            rootfs: cs(&root)?,
            pre,
            post,
            descs: b.descs,
            readonly_root: spec.readonly_rootfs,
            hostname: cs(&spec.hostname)?,
            net_none: spec.network == Network::None,
            tail,
            init: spec.init,
            tty_sock: -1,
            stdio,
            cgroup_fds: Vec::new(),
            kill_with_parent: opts.kill_with_parent,
        },
        created,
    ))
}

/// Descriptions of the child's fixed steps; their indices are the `S_*` constants.
const FIXED_STEPS: [&str; 11] = [
    "set up standard streams",
    "join cgroup",
    "pivot_root into the root filesystem",
    "remount the root filesystem read-only",
    "set hostname",
    "bring up the loopback interface",
    "change to the working directory",
    "set user and groups",
    "set capabilities",
    "set no_new_privs",
    "set up the terminal",
];
const S_STDIO: usize = 0;
const S_CGROUP: usize = 1;
const S_PIVOT: usize = 2;
const S_RO_ROOT: usize = 3;
const S_HOSTNAME: usize = 4;
const S_LO: usize = 5;
const S_CWD: usize = 6;
const S_USER: usize = 7;
const S_CAPS: usize = 8;
const S_NNP: usize = 9;
const S_TTY: usize = 10;

/// Failure kinds the child reports.
const K_SETUP: u32 = 0;
const K_NOT_IN_PATH: u32 = 1;
const K_STAT: u32 = 2;
const K_EXEC: u32 = 3;
const K_CWD: u32 = 4;

/// Starts `spec`'s process in new namespaces on the root filesystem mounted at `rootfs`
/// (typically an overlay from the snapshotter, with the init layer on top). Returns when the
/// command has been exec'd; an error when it could not be (with Docker's message and exit code).
pub fn spawn(rootfs: &Path, spec: &Spec, opts: SpawnOptions) -> Result<Container> {
    // Standard streams: keep owned descriptors alive until after clone.
    let null = if [&opts.stdin, &opts.stdout, &opts.stderr]
        .iter()
        .any(|s| matches!(s, Stdio::Null))
    {
        Some(
            fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/null")
                .ctx("open", "/dev/null")?,
        )
    } else {
        None
    };
    let fd_of = |s: &Stdio| match s {
        Stdio::Inherit => -1,
        Stdio::Null => null.as_ref().map_or(-1, |f| f.as_raw_fd()),
        Stdio::Fd(fd) => fd.as_raw_fd(),
    };
    let stdio = [fd_of(&opts.stdin), fd_of(&opts.stdout), fd_of(&opts.stderr)];
    let (mut plan, created) = plan(rootfs, spec, &opts, stdio)?;
    let cgroup = Cgroup::create(&opts.id, &spec.resources)?;
    if let Some(cg) = &cgroup {
        plan.cgroup_fds = cg.procs_fds();
    }

    let mut fds = [0; 2];
    // SAFETY: valid array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error()).ctx("create", "status pipe");
    }
    // SAFETY: freshly created descriptors we own.
    let (rd, wr) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };

    let socks = if opts.tty {
        let mut sv = [0; 2];
        // SAFETY: valid array.
        if unsafe {
            libc::socketpair(
                libc::AF_UNIX,
                libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
                0,
                sv.as_mut_ptr(),
            )
        } != 0
        {
            return Err(io::Error::last_os_error()).ctx("create", "terminal socket");
        }
        // SAFETY: freshly created descriptors we own.
        Some(unsafe { (OwnedFd::from_raw_fd(sv[0]), OwnedFd::from_raw_fd(sv[1])) })
    } else {
        None
    };
    plan.tty_sock = socks.as_ref().map_or(-1, |(_, c)| c.as_raw_fd());
    let mut flags =
        libc::CLONE_NEWNS | libc::CLONE_NEWPID | libc::CLONE_NEWUTS | libc::CLONE_NEWIPC;
    if spec.network == Network::None {
        flags |= libc::CLONE_NEWNET;
    }
    // SAFETY: fork-like clone (no new stack); the child only runs `child`, which makes raw
    // system calls on data prepared above and never returns.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (flags | libc::SIGCHLD) as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    if pid < 0 {
        return Err(Error::Setup {
            step: "clone into new namespaces".into(),
            source: io::Error::last_os_error(),
        });
    }
    if pid == 0 {
        child(&plan, wr.as_raw_fd());
    }
    let pid = pid as i32;
    drop(wr);
    let mut container = Container {
        pid,
        cgroup,
        created,
        exit: None,
        pty_master: None,
    };
    let mut buf = [0u8; 12];
    let mut got = 0;
    let mut file = fs::File::from(rd);
    while got < buf.len() {
        match io::Read::read(&mut file, &mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e).ctx("read", "status pipe"),
        }
    }
    if got == 0 {
        if let Some((parent_sock, _)) = &socks {
            container.pty_master = Some(recv_fd(parent_sock.as_raw_fd())?);
        }
        return Ok(container);
    }
    let _ = container.wait();
    Err(start_error(Phase::Create, &spec.process, &plan.descs, buf))
}

/// Turns the child's `(kind, step, errno)` report into Docker's error and exit code.
fn start_error(phase: Phase, p: &Process, descs: &[String], buf: [u8; 12]) -> Error {
    let kind = u32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]);
    let step = u32::from_ne_bytes([buf[4], buf[5], buf[6], buf[7]]) as usize;
    let errno = i32::from_ne_bytes([buf[8], buf[9], buf[10], buf[11]]);
    let argv0 = &p.args[0];
    // `exec` failures are all 126 in Docker; for containers, "not found" is 127.
    let code = |e: i32| match phase {
        Phase::Create if e == libc::ENOENT => 127,
        _ => 126,
    };
    let exec = |detail: String, code: i32| Error::Exec {
        phase,
        detail,
        code,
    };
    match kind {
        K_NOT_IN_PATH => exec(
            format!("exec: {argv0:?}: executable file not found in $PATH"),
            code(libc::ENOENT),
        ),
        K_STAT => exec(
            format!("exec: {argv0:?}: stat {argv0}: {}", errno_text(errno)),
            code(errno),
        ),
        K_EXEC => exec(
            format!("exec: {argv0:?}: {}", errno_text(errno)),
            code(errno),
        ),
        K_CWD => exec(
            format!(
                "chdir to cwd ({:?}) set in config.json failed: {}",
                p.cwd,
                errno_text(errno)
            ),
            126,
        ),
        _ => Error::Setup {
            step: descs
                .get(step)
                .cloned()
                .unwrap_or_else(|| "set up the container".into()),
            source: io::Error::from_raw_os_error(errno),
        },
    }
}

// ---- the child: raw system calls only -------------------------------------------------------

fn errno() -> i32 {
    // SAFETY: reading the thread's errno.
    unsafe { *libc::__errno_location() }
}

/// Reports a failure to the parent and exits.
fn fail(fd: RawFd, kind: u32, step: usize, err: i32) -> ! {
    let mut buf = [0u8; 12];
    buf[0..4].copy_from_slice(&kind.to_ne_bytes());
    buf[4..8].copy_from_slice(&(step as u32).to_ne_bytes());
    buf[8..12].copy_from_slice(&err.to_ne_bytes());
    // SAFETY: write and _exit are async-signal-safe.
    unsafe {
        libc::write(fd, buf.as_ptr().cast(), buf.len());
        libc::_exit(1);
    }
}

fn ptr(c: &Option<CString>) -> *const libc::c_char {
    c.as_ref().map_or(std::ptr::null(), |c| c.as_ptr())
}

/// Runs one setup op; returns the errno on failure.
fn run_op(op: &Op) -> std::result::Result<(), i32> {
    // SAFETY: all pointers come from CStrings owned by the plan.
    unsafe {
        let ok = |r: libc::c_int| if r == 0 { Ok(()) } else { Err(errno()) };
        match op {
            Op::Mount {
                src,
                target,
                fstype,
                flags,
                data,
            } => ok(libc::mount(
                ptr(src),
                target.as_ptr(),
                ptr(fstype),
                *flags,
                ptr(data).cast(),
            )),
            Op::Device { path, host, dev } => {
                if libc::mknod(path.as_ptr(), libc::S_IFCHR | 0o666, *dev) == 0 {
                    return Ok(());
                }
                let fd = libc::open(
                    path.as_ptr(),
                    libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC,
                    0o666,
                );
                if fd < 0 {
                    return Err(errno());
                }
                libc::close(fd);
                ok(libc::mount(
                    host.as_ptr(),
                    path.as_ptr(),
                    std::ptr::null(),
                    libc::MS_BIND,
                    std::ptr::null(),
                ))
            }
            Op::Mkdir { path, mode } => {
                let r = libc::mkdir(path.as_ptr(), *mode);
                if r != 0 && errno() != libc::EEXIST {
                    return Err(errno());
                }
                ok(libc::chmod(path.as_ptr(), *mode))
            }
            Op::Symlink { target, link } => ok(libc::symlink(target.as_ptr(), link.as_ptr())),
            Op::Mask { path } => {
                let mut st: libc::stat = std::mem::zeroed();
                if libc::stat(path.as_ptr(), &mut st) != 0 {
                    return if errno() == libc::ENOENT {
                        Ok(())
                    } else {
                        Err(errno())
                    };
                }
                if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
                    ok(libc::mount(
                        c"tmpfs".as_ptr(),
                        path.as_ptr(),
                        c"tmpfs".as_ptr(),
                        libc::MS_RDONLY,
                        std::ptr::null(),
                    ))
                } else {
                    ok(libc::mount(
                        c"/dev/null".as_ptr(),
                        path.as_ptr(),
                        std::ptr::null(),
                        libc::MS_BIND,
                        std::ptr::null(),
                    ))
                }
            }
            Op::Readonly { path } => {
                if libc::mount(
                    path.as_ptr(),
                    path.as_ptr(),
                    std::ptr::null(),
                    libc::MS_BIND | libc::MS_REC,
                    std::ptr::null(),
                ) != 0
                {
                    return if errno() == libc::ENOENT {
                        Ok(())
                    } else {
                        Err(errno())
                    };
                }
                ok(libc::mount(
                    path.as_ptr(),
                    path.as_ptr(),
                    std::ptr::null(),
                    libc::MS_BIND
                        | libc::MS_REMOUNT
                        | libc::MS_RDONLY
                        | libc::MS_REC
                        | NOSUID
                        | NODEV
                        | NOEXEC,
                    std::ptr::null(),
                ))
            }
        }
    }
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

fn lo_up() -> std::result::Result<(), i32> {
    // SAFETY: plain socket/ioctl calls on a zeroed ifreq.
    unsafe {
        let s = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if s < 0 {
            return Err(errno());
        }
        let mut ifr: libc::ifreq = std::mem::zeroed();
        ifr.ifr_name[0] = b'l' as libc::c_char;
        ifr.ifr_name[1] = b'o' as libc::c_char;
        if libc::ioctl(s, libc::SIOCGIFFLAGS, &mut ifr) != 0 {
            let e = errno();
            libc::close(s);
            return Err(e);
        }
        ifr.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
        let r = libc::ioctl(s, libc::SIOCSIFFLAGS, &ifr);
        let e = errno();
        libc::close(s);
        if r != 0 {
            return Err(e);
        }
    }
    Ok(())
}

/// Opens a terminal in the container's devpts (after pivot_root), sends the master to the
/// parent over `sock`, binds the slave to /dev/console and makes it the controlling terminal
/// and standard streams. Raw system calls only.
fn make_terminal(sock: RawFd, bind_console: bool) -> std::result::Result<(), i32> {
    // SAFETY: raw system calls on stack buffers.
    unsafe {
        let m = libc::open(
            c"/dev/ptmx".as_ptr(),
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        );
        if m < 0 {
            return Err(errno());
        }
        let unlock: libc::c_int = 0;
        let mut n: libc::c_uint = 0;
        if libc::ioctl(m, libc::TIOCSPTLCK, &unlock) != 0
            || libc::ioctl(m, libc::TIOCGPTN, &mut n) != 0
        {
            return Err(errno());
        }
        let slave = libc::ioctl(m, libc::TIOCGPTPEER, libc::O_RDWR | libc::O_NOCTTY);
        if slave < 0 {
            return Err(errno());
        }
        // Send the master: one byte of data with the descriptor attached.
        let mut byte = [0u8; 1];
        let mut iov = libc::iovec {
            iov_base: byte.as_mut_ptr().cast(),
            iov_len: 1,
        };
        let mut cbuf = [0u64; 8];
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) as usize;
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as usize;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>(), m);
        if libc::sendmsg(sock, &msg, 0) < 0 {
            return Err(errno());
        }
        libc::close(m);
        // "/dev/pts/N", written by hand (no allocation).
        let mut path = [0u8; 32];
        let prefix = b"/dev/pts/";
        path[..prefix.len()].copy_from_slice(prefix);
        let mut digits = [0u8; 10];
        let mut k = 0;
        let mut v = n;
        loop {
            digits[k] = b'0' + (v % 10) as u8;
            k += 1;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        for i in 0..k {
            path[prefix.len() + i] = digits[k - 1 - i];
        }
        let console = c"/dev/console";
        let fd = libc::open(
            console.as_ptr(),
            libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC,
            0o600,
        );
        if bind_console && fd >= 0 {
            libc::close(fd);
            libc::mount(
                path.as_ptr().cast(),
                console.as_ptr(),
                std::ptr::null(),
                libc::MS_BIND,
                std::ptr::null(),
            );
        }
        if libc::ioctl(slave, libc::TIOCSCTTY, 0) != 0 {
            return Err(errno());
        }
        for i in 0..3 {
            if libc::dup2(slave, i) < 0 {
                return Err(errno());
            }
        }
        if slave > 2 {
            libc::close(slave);
        }
    }
    Ok(())
}

/// Receives one descriptor sent by [`make_terminal`].
fn recv_fd(sock: RawFd) -> Result<OwnedFd> {
    // SAFETY: recvmsg into stack buffers; the received descriptor is new and ours.
    unsafe {
        let mut byte = [0u8; 1];
        let mut iov = libc::iovec {
            iov_base: byte.as_mut_ptr().cast(),
            iov_len: 1,
        };
        let mut cbuf = [0u64; 8];
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&cbuf);
        if libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC | libc::MSG_DONTWAIT) < 0 {
            return Err(io::Error::last_os_error()).ctx("receive", "terminal");
        }
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        if cmsg.is_null() || (*cmsg).cmsg_type != libc::SCM_RIGHTS {
            return Err(io::Error::other("no descriptor received")).ctx("receive", "terminal");
        }
        let fd = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>());
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

/// Default signal dispositions and an empty mask, whatever the parent had (Rust ignores
/// SIGPIPE, a test harness may block signals). Async-signal-safe.
fn reset_signals() {
    // SAFETY: sigaction/sigprocmask on zeroed, valid structures.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = libc::SIG_DFL;
        for sig in 1..libc::SIGRTMAX() {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                libc::sigaction(sig, &sa, std::ptr::null_mut());
            }
        }
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
}

fn child(p: &Plan, errfd: RawFd) -> ! {
    let setup = |step: usize, e: i32| -> ! { fail(errfd, K_SETUP, step, e) };
    // SAFETY: raw, async-signal-safe system calls on data prepared before clone.
    unsafe {
        reset_signals();
        if p.kill_with_parent {
            libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            );
        }
        libc::setsid();
        for (i, fd) in p.stdio.iter().enumerate() {
            if *fd >= 0 && libc::dup2(*fd, i as i32) < 0 {
                setup(S_STDIO, errno());
            }
        }
        for fd in &p.cgroup_fds {
            if libc::write(*fd, b"0".as_ptr().cast(), 1) != 1 {
                setup(S_CGROUP, errno());
            }
        }
        libc::umask(0);
        for (op, step) in &p.pre {
            if let Err(e) = run_op(op) {
                setup(*step, e);
            }
        }
        // pivot_root into the root filesystem and drop the old root.
        if libc::chdir(p.rootfs.as_ptr()) != 0
            || libc::syscall(libc::SYS_pivot_root, c".".as_ptr(), c".".as_ptr()) != 0
            || libc::umount2(c".".as_ptr(), libc::MNT_DETACH) != 0
            || libc::chdir(c"/".as_ptr()) != 0
        {
            setup(S_PIVOT, errno());
        }
        for (op, step) in &p.post {
            if let Err(e) = run_op(op) {
                setup(*step, e);
            }
        }
        if p.tty_sock >= 0 {
            if let Err(e) = make_terminal(p.tty_sock, true) {
                setup(S_TTY, e);
            }
        }
        if p.readonly_root
            && libc::mount(
                std::ptr::null(),
                c"/".as_ptr(),
                std::ptr::null(),
                libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY,
                std::ptr::null(),
            ) != 0
        {
            setup(S_RO_ROOT, errno());
        }
        if libc::sethostname(p.hostname.as_ptr(), p.hostname.as_bytes().len()) != 0 {
            setup(S_HOSTNAME, errno());
        }
        if p.net_none {
            if let Err(e) = lo_up() {
                setup(S_LO, e);
            }
        }
        if p.init {
            run_init(&p.tail, errfd);
        }
        exec_tail(&p.tail, errfd);
    }
}

/// `--init`: stay as PID 1 (with the container's user and capabilities, like Docker's
/// tini), run the command as a child, forward signals to it, reap every zombie, and exit
/// with the command's status (128+N when it was killed by signal N). Raw system calls only.
fn run_init(p: &Tail, errfd: RawFd) -> ! {
    credentials(p, errfd);
    // SAFETY: raw, async-signal-safe system calls; the clone runs `exec_cmd` only.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::sigprocmask(libc::SIG_BLOCK, &all, std::ptr::null_mut());
        let pid = libc::syscall(
            libc::SYS_clone,
            libc::SIGCHLD as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        );
        if pid < 0 {
            fail(errfd, K_SETUP, S_USER, errno());
        }
        if pid == 0 {
            let mut none: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut none);
            libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
            exec_cmd(p, errfd);
        }
        let pid = pid as libc::pid_t;
        // The command reports exec failures itself; the parent must see end of file when it
        // has exec'd, so the init keeps no copy of the status pipe.
        libc::close(errfd);
        loop {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            let sig = libc::sigwaitinfo(&all, &mut info);
            if sig < 0 {
                continue;
            }
            if sig != libc::SIGCHLD {
                libc::kill(pid, sig);
                continue;
            }
            loop {
                let mut status = 0;
                let r = libc::waitpid(-1, &mut status, libc::WNOHANG);
                if r <= 0 {
                    break;
                }
                if r == pid {
                    if libc::WIFEXITED(status) {
                        libc::_exit(libc::WEXITSTATUS(status));
                    }
                    libc::_exit(128 + libc::WTERMSIG(status));
                }
            }
        }
    }
}

/// Working directory, credentials, capabilities, exec: the end of both container start and
/// `exec`. Raw system calls only.
fn exec_tail(p: &Tail, errfd: RawFd) -> ! {
    credentials(p, errfd);
    exec_cmd(p, errfd)
}

/// Working directory, capabilities, user and groups, no_new_privs, umask.
fn credentials(p: &Tail, errfd: RawFd) {
    let setup = |step: usize, e: i32| -> ! { fail(errfd, K_SETUP, step, e) };
    // SAFETY: raw, async-signal-safe system calls on data prepared before fork/clone.
    unsafe {
        for d in &p.cwd_prefixes {
            libc::mkdir(d.as_ptr(), 0o755);
        }
        if libc::chdir(p.cwd.as_ptr()) != 0 {
            fail(errfd, K_CWD, S_CWD, errno());
        }
        // Capabilities: bounding set first, then credentials keeping the permitted set,
        // then the effective/permitted sets; inheritable and ambient stay empty (Docker).
        for c in 0..=p.last_cap {
            if p.caps & (1u64 << c) == 0 {
                libc::prctl(libc::PR_CAPBSET_DROP, c as libc::c_ulong, 0, 0, 0);
            }
        }
        libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0);
        if libc::syscall(libc::SYS_setgroups, p.groups.len(), p.groups.as_ptr()) != 0
            || libc::syscall(libc::SYS_setresgid, p.gid, p.gid, p.gid) != 0
            || libc::syscall(libc::SYS_setresuid, p.uid, p.uid, p.uid) != 0
        {
            setup(S_USER, errno());
        }
        let hdr = CapHeader {
            version: 0x2008_0522,
            pid: 0,
        };
        let lo = p.caps as u32;
        let hi = (p.caps >> 32) as u32;
        let data = [
            CapData {
                effective: lo,
                permitted: lo,
                inheritable: 0,
            },
            CapData {
                effective: hi,
                permitted: hi,
                inheritable: 0,
            },
        ];
        if libc::syscall(libc::SYS_capset, &hdr as *const CapHeader, data.as_ptr()) != 0 {
            setup(S_CAPS, errno());
        }
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        );
        if p.nnp && libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            setup(S_NNP, errno());
        }
        libc::umask(0o022);
    }
}

/// The exec itself, after [`credentials`]. Raw system calls only.
fn exec_cmd(p: &Tail, errfd: RawFd) -> ! {
    // SAFETY: raw, async-signal-safe system calls on data prepared before fork/clone.
    unsafe {
        // Everything but the standard streams and the status pipe closes on exec.
        libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            4u32, /* CLOSE_RANGE_CLOEXEC */
        );
        libc::fcntl(errfd, libc::F_SETFD, libc::FD_CLOEXEC);

        if p.argv0_has_slash {
            let mut st: libc::stat = std::mem::zeroed();
            if libc::stat(p.argv0.as_ptr(), &mut st) != 0 {
                fail(errfd, K_STAT, 0, errno());
            }
            libc::execve(p.argv0.as_ptr(), p.argv_ptrs.as_ptr(), p.envp_ptrs.as_ptr());
            fail(errfd, K_EXEC, 0, errno());
        }
        // Look argv[0] up in PATH as Go's exec.LookPath does: the first regular file with an
        // execute bit.
        let name = p.argv0.as_bytes();
        let mut buf = [0u8; 4096];
        for dir in &p.path_dirs {
            let d = dir.as_bytes();
            if d.len() + 1 + name.len() + 1 > buf.len() {
                continue;
            }
            buf[..d.len()].copy_from_slice(d);
            buf[d.len()] = b'/';
            buf[d.len() + 1..d.len() + 1 + name.len()].copy_from_slice(name);
            buf[d.len() + 1 + name.len()] = 0;
            let path = buf.as_ptr().cast::<libc::c_char>();
            let mut st: libc::stat = std::mem::zeroed();
            if libc::stat(path, &mut st) == 0
                && st.st_mode & libc::S_IFMT == libc::S_IFREG
                && st.st_mode & 0o111 != 0
            {
                libc::execve(path, p.argv_ptrs.as_ptr(), p.envp_ptrs.as_ptr());
                fail(errfd, K_EXEC, 0, errno());
            }
        }
        fail(errfd, K_NOT_IN_PATH, 0, 0);
    }
}

// ---- exec in a running container -------------------------------------------------------------

/// Standard streams of a process started by [`exec`].
#[derive(Debug, Default)]
pub struct ExecOptions {
    /// Standard input (`docker exec` without `-i`: [`Stdio::Null`]).
    pub stdin: Stdio,
    /// Standard output.
    pub stdout: Stdio,
    /// Standard error.
    pub stderr: Stdio,
    /// `-t`: a new terminal in the container's `/dev/pts`, as for [`SpawnOptions::tty`].
    pub tty: bool,
}

/// The `cgroup.procs` files of the strata cgroups process `pid` is in.
fn cgroup_procs_of(pid: i32) -> Vec<PathBuf> {
    let Ok(text) = fs::read_to_string(format!("/proc/{pid}/cgroup")) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for line in text.lines() {
        let mut f = line.splitn(3, ':');
        let (Some(_), Some(ctrl), Some(path)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        if !path.starts_with("/strata/") {
            continue;
        }
        let rel = path.trim_start_matches('/');
        let dir = if ctrl.is_empty() {
            if crate::cgroup::is_v2() {
                Path::new("/sys/fs/cgroup").join(rel)
            } else {
                Path::new("/sys/fs/cgroup/unified").join(rel)
            }
        } else {
            Path::new("/sys/fs/cgroup")
                .join(ctrl.trim_start_matches("name="))
                .join(rel)
        };
        out.push(dir.join("cgroup.procs"));
    }
    out
}

/// Runs `process` inside the running container whose first process is `pid` (`docker
/// exec`): joins its IPC, UTS, network, PID and mount namespaces and its cgroups, then does
/// what a container start does from the working directory on (which must exist). Failures carry
/// Docker's `OCI runtime exec failed` message and exit code 126.
///
/// A forked helper joins the namespaces and clones the process with `CLONE_PARENT`, so the
/// returned [`Container`] is a direct child of the caller and can be waited for.
pub fn exec(pid: i32, process: &Process, opts: ExecOptions) -> Result<Container> {
    let mut ns = Vec::new();
    for name in ["ipc", "uts", "net", "pid", "mnt"] {
        let path = format!("/proc/{pid}/ns/{name}");
        ns.push(fs::File::open(&path).ctx("open namespace", &path)?);
    }
    let mut cgroups = Vec::new();
    for procs in cgroup_procs_of(pid) {
        cgroups.push(
            fs::OpenOptions::new()
                .write(true)
                .open(&procs)
                .ctx("open", &procs)?,
        );
    }
    let null = if [&opts.stdin, &opts.stdout, &opts.stderr]
        .iter()
        .any(|s| matches!(s, Stdio::Null))
    {
        Some(
            fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/null")
                .ctx("open", "/dev/null")?,
        )
    } else {
        None
    };
    let fd_of = |s: &Stdio| match s {
        Stdio::Inherit => -1,
        Stdio::Null => null.as_ref().map_or(-1, |f| f.as_raw_fd()),
        Stdio::Fd(fd) => fd.as_raw_fd(),
    };
    let stdio = [fd_of(&opts.stdin), fd_of(&opts.stdout), fd_of(&opts.stderr)];
    let tail = tail_plan(process, false)?;
    let ns_fds: Vec<RawFd> = ns.iter().map(|f| f.as_raw_fd()).collect();
    let cg_fds: Vec<RawFd> = cgroups.iter().map(|f| f.as_raw_fd()).collect();
    let descs: Vec<String> = vec![
        "join the container's namespaces".into(),
        "join the container's cgroups".into(),
        "set up standard streams".into(),
        "start the process".into(),
        "set up the terminal".into(),
    ];

    let (err_rd, err_wr) = pipe()?;
    let (pid_rd, pid_wr) = pipe()?;
    let socks = if opts.tty {
        let mut sv = [0; 2];
        // SAFETY: valid array.
        if unsafe {
            libc::socketpair(
                libc::AF_UNIX,
                libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
                0,
                sv.as_mut_ptr(),
            )
        } != 0
        {
            return Err(io::Error::last_os_error()).ctx("create", "terminal socket");
        }
        // SAFETY: freshly created descriptors we own.
        Some(unsafe { (OwnedFd::from_raw_fd(sv[0]), OwnedFd::from_raw_fd(sv[1])) })
    } else {
        None
    };
    let tty_sock = socks.as_ref().map_or(-1, |(_, c)| c.as_raw_fd());
    let (errfd, pidfd) = (err_wr.as_raw_fd(), pid_wr.as_raw_fd());
    // SAFETY: the helper and its clone only make raw system calls on data prepared above.
    let helper = unsafe { libc::fork() };
    if helper < 0 {
        return Err(io::Error::last_os_error()).ctx("fork", "exec helper");
    }
    if helper == 0 {
        // SAFETY: async-signal-safe calls only.
        unsafe {
            for fd in &ns_fds {
                if libc::setns(*fd, 0) != 0 {
                    fail(errfd, K_SETUP, 0, errno());
                }
            }
            for fd in &cg_fds {
                if libc::write(*fd, b"0".as_ptr().cast(), 1) != 1 {
                    fail(errfd, K_SETUP, 1, errno());
                }
            }
            let child = libc::syscall(
                libc::SYS_clone,
                (libc::CLONE_PARENT | libc::SIGCHLD) as libc::c_ulong,
                0usize,
                0usize,
                0usize,
                0usize,
            );
            if child < 0 {
                fail(errfd, K_SETUP, 3, errno());
            }
            if child > 0 {
                let pid = child as i32;
                libc::write(pidfd, pid.to_ne_bytes().as_ptr().cast(), 4);
                libc::_exit(0);
            }
            reset_signals();
            libc::setsid();
            for (i, fd) in stdio.iter().enumerate() {
                if *fd >= 0 && libc::dup2(*fd, i as i32) < 0 {
                    fail(errfd, K_SETUP, 2, errno());
                }
            }
            if tty_sock >= 0 {
                if let Err(e) = make_terminal(tty_sock, false) {
                    fail(errfd, K_SETUP, 4, e);
                }
            }
            exec_tail(&tail, errfd);
        }
    }
    drop(err_wr);
    drop(pid_wr);
    wait_pid(helper)?;
    let mut pid_buf = [0u8; 4];
    let got_pid = read_full(pid_rd, &mut pid_buf)?;
    let mut buf = [0u8; 12];
    let got = read_full(err_rd, &mut buf)?;
    if got_pid < 4 {
        // The helper failed before cloning.
        return Err(if got == 12 {
            start_error(Phase::Exec, process, &descs, buf)
        } else {
            Error::Setup {
                step: descs[0].clone(),
                source: io::Error::other("exec helper died"),
            }
        });
    }
    let mut c = Container {
        pty_master: None,
        pid: i32::from_ne_bytes(pid_buf),
        cgroup: None,
        created: Vec::new(),
        exit: None,
    };
    if got == 0 {
        if let Some((parent_sock, _)) = &socks {
            c.pty_master = Some(recv_fd(parent_sock.as_raw_fd())?);
        }
        return Ok(c);
    }
    let _ = c.wait();
    Err(start_error(Phase::Exec, process, &descs, buf))
}

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: valid array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error()).ctx("create", "pipe");
    }
    // SAFETY: freshly created descriptors we own.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Reads until `buf` is full or end of file; returns how much was read.
fn read_full(fd: OwnedFd, buf: &mut [u8]) -> Result<usize> {
    let mut file = fs::File::from(fd);
    let mut got = 0;
    while got < buf.len() {
        match io::Read::read(&mut file, &mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e).ctx("read", "status pipe"),
        }
    }
    Ok(got)
}

// ---- foreground runs -----------------------------------------------------------------------

static FORWARD_TO: AtomicI32 = AtomicI32::new(0);
/// A signal that arrived before the container existed, delivered once it does.
static PENDING: AtomicI32 = AtomicI32::new(0);

/// Signals a foreground run forwards, as Docker's CLI proxies them.
const FORWARDED: [libc::c_int; 6] = [
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
];

extern "C" fn forward(sig: libc::c_int) {
    let pid = FORWARD_TO.load(Ordering::SeqCst);
    if pid > 0 {
        // SAFETY: kill is async-signal-safe.
        unsafe {
            libc::kill(pid, sig);
        }
    } else {
        PENDING.store(sig, Ordering::SeqCst);
    }
}

/// Runs a container in the foreground: starts it, forwards SIGINT, SIGTERM, SIGHUP, SIGQUIT,
/// SIGUSR1 and SIGUSR2 received by this process to it until it ends (a signal that arrives
/// while it starts is delivered once it runs), and returns Docker's exit code. One foreground
/// run per process at a time: the forwarding target is process-wide.
pub fn run(rootfs: &Path, spec: &Spec, opts: SpawnOptions) -> Result<i32> {
    FORWARD_TO.store(0, Ordering::SeqCst);
    PENDING.store(0, Ordering::SeqCst);
    // SAFETY: zeroed sigaction structures are valid.
    let mut old: [libc::sigaction; FORWARDED.len()] = unsafe { std::mem::zeroed() };
    // SAFETY: installing a handler that only calls kill or stores an atomic.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = forward as *const () as usize;
        sa.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut sa.sa_mask);
        for (i, s) in FORWARDED.iter().enumerate() {
            libc::sigaction(*s, &sa, &mut old[i]);
        }
    }
    let r = spawn(rootfs, spec, opts).and_then(|mut c| {
        FORWARD_TO.store(c.pid(), Ordering::SeqCst);
        let pending = PENDING.swap(0, Ordering::SeqCst);
        if pending != 0 {
            let _ = c.signal(pending);
        }
        c.wait()
    });
    FORWARD_TO.store(0, Ordering::SeqCst);
    // SAFETY: restoring the previous handlers.
    unsafe {
        for (i, s) in FORWARDED.iter().enumerate() {
            libc::sigaction(*s, &old[i], std::ptr::null_mut());
        }
    }
    r
}

/// Runs one build step (a Dockerfile `RUN`): the process of `spec` on `rootfs`, stdin from
/// /dev/null, output to the given sinks, killed if the calling thread dies; returns the exit
/// code. Does not forward signals and may be called from several threads at once.
pub fn run_step(rootfs: &Path, spec: &Spec, stdout: Stdio, stderr: Stdio) -> Result<i32> {
    static STEP: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut c = spawn(
        rootfs,
        spec,
        SpawnOptions {
            id: format!(
                "step-{}-{}",
                std::process::id(),
                STEP.fetch_add(1, Ordering::Relaxed)
            ),
            state_dir: None,
            stdin: Stdio::Null,
            stdout,
            stderr,
            kill_with_parent: true,
            tty: false,
        },
    )?;
    c.wait()
}
