//! Starting and controlling container processes: [`spawn`] (new namespaces on a mounted root
//! filesystem), [`exec`] (another process in a running container), [`run`] (foreground, with
//! signal forwarding) and [`run_step`] (a build step). The preparation lives in `plan.rs`, the
//! child's raw system calls in `child.rs`.

use std::fs;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, Ordering};

use crate::cgroup::Cgroup;
use crate::child::{
    child, close_all_but, errno, exec_tail, fail, isolate, make_terminal, reset_signals,
};
use crate::error::Phase;
use crate::error::{errno_text, Error, IoContext, Result};
use crate::plan::{plan, tail_plan, K_CWD, K_EXEC, K_NOT_IN_PATH, K_SETUP, K_STAT};
use crate::spec::{Network, Process, Spec};

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
    /// The init binary `--init` ([`crate::Spec::init`]) bind-mounts read-only at
    /// `/sbin/docker-init` and runs as `docker-init -- COMMAND...` (Docker's `docker-init`:
    /// tini, e.g. `/usr/bin/tini-static`). Required when the spec asks for an init.
    pub init_path: Option<PathBuf>,
    /// The pasta binary, for [`Network::Private`] (found by the caller; the library reads
    /// no environment). Without it, a private network is [`Error::PastaMissing`].
    pub pasta: Option<PathBuf>,
    /// Where compiled seccomp filters of Docker's default profile are kept between runs
    /// (compiling it takes ~10 ms); None compiles once per process.
    pub seccomp_cache: Option<PathBuf>,
    /// For [`Network::Private`]: the network started ahead of the container
    /// ([`crate::PrivateNetwork::start`]); None starts one with `pasta` before the clone.
    pub network: Option<crate::net::PrivateNetwork>,
}

/// A container's first process as recorded when it started: its PID and its start time
/// (clock ticks after boot, field 22 of `/proc/PID/stat`), which together name it even after
/// the PID is reused. [`exec`] checks both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InitProcess {
    /// The PID in the caller's PID namespace.
    pub pid: i32,
    /// Its start time in clock ticks after boot.
    pub start_time: u64,
}

/// The start time of process `pid` (clock ticks after boot), from `/proc/PID/stat`.
pub fn process_start_time(pid: i32) -> Result<u64> {
    let path = format!("/proc/{pid}/stat");
    let text = fs::read_to_string(&path).ctx("read", &path)?;
    // Fields after the command name (which may hold spaces and parentheses): state is field 3,
    // starttime field 22.
    text.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(19))
        .and_then(|v| v.parse().ok())
        .ok_or(Error::ProcessGone { pid })
}

/// A started container process.
#[derive(Debug)]
pub struct Container {
    pid: i32,
    start_time: u64,
    cgroup: Option<Cgroup>,
    created: Vec<PathBuf>,
    exit: Option<i32>,
    pty_master: Option<OwnedFd>,
    /// The pasta connecting a private network, ended with the container.
    net: Option<crate::net::Pasta>,
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

    /// The PID with its start time, for [`exec`] (which must not trust a bare PID).
    pub fn init_process(&self) -> InitProcess {
        InitProcess {
            pid: self.pid,
            start_time: self.start_time,
        }
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
        let code = wait_pid(self.pid);
        if let Some(mut net) = self.net.take() {
            net.stop();
        }
        let code = code?;
        self.exit = Some(code);
        if let Some(mut cg) = self.cgroup.take() {
            cg.remove();
        }
        Ok(code)
    }

    /// Leaves the process running on its own (`-d`): returns its PID and keeps its cgroups,
    /// which [`crate::remove_stale_cgroups`] deletes once it is gone. A private network
    /// stays up only while this process lives.
    pub fn detach(mut self) -> i32 {
        if let Some(cg) = self.cgroup.take() {
            std::mem::forget(cg);
        }
        if let Some(net) = self.net.take() {
            std::mem::forget(net);
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

/// The descriptors a child gets for stdin, stdout and stderr (-1: inherit), and the
/// `/dev/null` they may point at, which the caller keeps open until the child has them.
fn stdio_fds(streams: [&Stdio; 3]) -> Result<([RawFd; 3], Option<fs::File>)> {
    let null = if streams.iter().any(|s| matches!(s, Stdio::Null)) {
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
    Ok((streams.map(fd_of), null))
}

/// Starts `spec`'s process in new namespaces on the root filesystem mounted at `rootfs`
/// (typically an overlay from the snapshotter, with the init layer on top). Returns when the
/// command has been exec'd; an error when it could not be (with Docker's message and exit code).
pub fn spawn(rootfs: &Path, spec: &Spec, mut opts: SpawnOptions) -> Result<Container> {
    let private = spec.network == Network::Private;
    let net = match (opts.network.take(), &opts.pasta, private) {
        (Some(n), _, true) => Some(n),
        (None, Some(p), true) => Some(crate::net::PrivateNetwork::start(p, &spec.ports)?),
        (None, None, true) => return Err(Error::PastaMissing),
        _ => None,
    };
    // Standard streams: keep owned descriptors alive until after clone.
    let (stdio, _null) = stdio_fds([&opts.stdin, &opts.stdout, &opts.stderr])?;
    let (nodes, rules) =
        crate::devices::resolve(spec.privileged, &spec.devices, &spec.device_rules)?;
    // Every container gets a devices cgroup, so one without an ID gets a name of its own.
    static ANON: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let cg_id = if opts.id.is_empty() {
        format!(
            "anon-{}-{}",
            std::process::id(),
            ANON.fetch_add(1, Ordering::Relaxed)
        )
    } else {
        opts.id.clone()
    };
    let cgroup = Cgroup::create(&cg_id, &spec.resources, &rules)?;
    let cgroup_dirs = cgroup
        .as_ref()
        .map(|c| c.dirs().to_vec())
        .unwrap_or_default();
    let (mut plan, created) = plan(rootfs, spec, &opts, stdio, &cgroup_dirs, &nodes)?;
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
    // Private network: the child waits on this pipe before exec until pasta is up.
    let net_pipe = if private {
        let mut p = [0; 2];
        // SAFETY: valid array.
        if unsafe { libc::pipe2(p.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error()).ctx("create", "network pipe");
        }
        // SAFETY: freshly created descriptors we own.
        Some(unsafe { (OwnedFd::from_raw_fd(p[0]), OwnedFd::from_raw_fd(p[1])) })
    } else {
        None
    };
    if let Some((r, w)) = &net_pipe {
        plan.net_wait = r.as_raw_fd();
        plan.net_release = w.as_raw_fd();
    }
    plan.netns = net.as_ref().map_or(-1, |n| n.namespace());
    plan.keep_fds = [wr.as_raw_fd(), plan.tty_sock, plan.net_wait]
        .into_iter()
        .chain(plan.cgroup_fds.iter().copied())
        .filter(|fd| *fd > 2)
        .collect();
    plan.keep_fds.sort_unstable();
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
        start_time: 0,
        cgroup,
        created,
        exit: None,
        pty_master: None,
        net: None,
    };
    if let (Some((net_rd, net_wr)), Some(net)) = (net_pipe, net) {
        drop(net_rd);
        // SAFETY: one byte to a pipe we own: the child may exec now.
        let release = || unsafe { libc::write(net_wr.as_raw_fd(), [1u8].as_ptr().cast(), 1) };
        match net.ready() {
            Ok(net) => {
                container.net = net;
                release();
            }
            Err(e) => {
                drop(net_wr);
                let _ = container.signal(libc::SIGKILL);
                let _ = container.wait();
                return Err(e);
            }
        }
    }
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
        // Our own unreaped child: the PID cannot name another process yet.
        container.start_time = process_start_time(pid)?;
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

/// The size (rows, columns) of the terminal `fd` refers to; `None` when it is no terminal.
pub fn terminal_size(fd: BorrowedFd<'_>) -> Option<(u16, u16)> {
    // SAFETY: TIOCGWINSZ into a zeroed structure we own.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
    (r == 0 && ws.ws_row > 0 && ws.ws_col > 0).then_some((ws.ws_row, ws.ws_col))
}

/// Sets the size of the terminal whose master (or slave) side is `fd`; the processes on it
/// get SIGWINCH.
pub fn resize_terminal(fd: BorrowedFd<'_>, rows: u16, cols: u16) -> io::Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ from a structure we own.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) } != 0 {
        return Err(io::Error::last_os_error());
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
    /// Its size (rows, columns) from the start, when known.
    pub tty_size: Option<(u16, u16)>,
    /// As [`SpawnOptions::seccomp_cache`].
    pub seccomp_cache: Option<PathBuf>,
}

/// The files (see [`crate::cgroup::JOIN_V1`]) through which a single-threaded process joins
/// the strata cgroups process `pid` is in.
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
        let (dir, join) = if ctrl.is_empty() {
            let unified = if crate::cgroup::is_v2() {
                Path::new("/sys/fs/cgroup").join(rel)
            } else {
                Path::new("/sys/fs/cgroup/unified").join(rel)
            };
            (unified, crate::cgroup::JOIN_V2)
        } else {
            let v1 = Path::new("/sys/fs/cgroup")
                .join(ctrl.trim_start_matches("name="))
                .join(rel);
            (v1, crate::cgroup::JOIN_V1)
        };
        out.push(dir.join(join));
    }
    out
}

/// Runs `process` inside the running container whose first process is `init` (`docker
/// exec`): joins its IPC, UTS, network, PID and mount namespaces through a pidfd (opened, then
/// checked against the recorded start time, so a reused PID cannot redirect it) and its
/// cgroups, then does what a container start does from the working directory on (which must
/// exist). Failures carry Docker's `OCI runtime exec failed` message and exit code 126.
///
/// A forked helper becomes non-dumpable, joins a fresh session keyring, keeps only the
/// descriptors it needs, joins the namespaces and clones the process with `CLONE_PARENT`, so
/// the returned [`Container`] is a direct child of the caller and can be waited for.
pub fn exec(init: InitProcess, process: &Process, opts: ExecOptions) -> Result<Container> {
    let pid = init.pid;
    // SAFETY: plain syscall.
    let raw = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0u32) };
    if raw < 0 {
        return Err(Error::ProcessGone { pid });
    }
    // SAFETY: a fresh descriptor we own (pidfds are close-on-exec).
    let pidfd = unsafe { OwnedFd::from_raw_fd(raw as RawFd) };
    // Checked after opening: if the PID was reused before the open, the start time differs.
    if process_start_time(pid).ok() != Some(init.start_time) {
        return Err(Error::ProcessGone { pid });
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
    let (stdio, _null) = stdio_fds([&opts.stdin, &opts.stdout, &opts.stderr])?;
    let tail = tail_plan(process, false, false, opts.seccomp_cache.as_deref())?;
    let cg_fds: Vec<RawFd> = cgroups.iter().map(|f| f.as_raw_fd()).collect();
    let descs: Vec<String> = vec![
        "join the container's namespaces".into(),
        "join the container's cgroups".into(),
        "set up standard streams".into(),
        "start the process".into(),
        "set up the terminal".into(),
        "leave the caller's session keyring and become non-dumpable".into(),
    ];
    let ns_flags = libc::CLONE_NEWIPC
        | libc::CLONE_NEWUTS
        | libc::CLONE_NEWNET
        | libc::CLONE_NEWPID
        | libc::CLONE_NEWNS;
    let pid_fd = pidfd.as_raw_fd();

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
    let tty_size = opts.tty_size;
    let (errfd, pidfd) = (err_wr.as_raw_fd(), pid_wr.as_raw_fd());
    let mut keep: Vec<RawFd> = [errfd, pidfd, tty_sock, pid_fd]
        .into_iter()
        .chain(cg_fds.iter().copied())
        .filter(|fd| *fd > 2)
        .collect();
    keep.sort_unstable();
    // SAFETY: the helper and its clone only make raw system calls on data prepared above.
    let helper = unsafe { libc::fork() };
    if helper < 0 {
        return Err(io::Error::last_os_error()).ctx("fork", "exec helper");
    }
    if helper == 0 {
        // SAFETY: async-signal-safe calls only.
        unsafe {
            if let Err(e) = isolate() {
                fail(errfd, K_SETUP, 5, e);
            }
            for (i, fd) in stdio.iter().enumerate() {
                if *fd >= 0 && libc::dup2(*fd, i as i32) < 0 {
                    fail(errfd, K_SETUP, 2, errno());
                }
            }
            // Nothing of strata's is carried into the container.
            close_all_but(&keep);
            if libc::setns(pid_fd, ns_flags) != 0 {
                fail(errfd, K_SETUP, 0, errno());
            }
            libc::close(pid_fd);
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
            if tty_sock >= 0 {
                if let Err(e) = make_terminal(tty_sock, false, tty_size) {
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
        start_time: 0,
        pid: i32::from_ne_bytes(pid_buf),
        cgroup: None,
        created: Vec::new(),
        exit: None,
        net: None,
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
/// code. Does not forward signals and may be called from several threads at once. For
/// [`Network::Private`], call [`spawn`] with [`SpawnOptions::pasta`].
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
            init_path: None,
            pasta: None,
            seccomp_cache: None,
            network: None,
        },
    )?;
    c.wait()
}
