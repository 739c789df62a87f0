//! The container's side of `clone`: raw, async-signal-safe system calls only.
//!
//! The caller may be multi-threaded (a test harness, a build with worker threads), so after
//! `fork`/`clone` only async-signal-safe work is allowed. The parent therefore prepares
//! *everything* first (`plan.rs`), then calls the raw `clone` system call (fork semantics, no
//! new stack) with `CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC` (plus
//! `CLONE_NEWNET` for `--network none`). The child is PID 1 of the new PID namespace; it runs
//! [`child`], which performs only raw system calls on the prepared data (no allocation, no
//! locks, no glibc `setuid` wrappers, which would try to synchronise threads that do not exist
//! in the child), and finally `execve`s the command, which stays PID 1 as in Docker (or runs
//! under a minimal init with `--init`). Failures are reported through a close-on-exec pipe as
//! `(kind, step, errno)`; end of file on the pipe means the exec succeeded. No helper binary
//! and no re-exec of `/proc/self/exe` are needed, so this works the same from tests and from
//! the `strata` binary.

use std::ffi::CString;
use std::os::fd::RawFd;

use crate::plan::{
    Op, Plan, Tail, K_CWD, K_EXEC, K_NOT_IN_PATH, K_SETUP, K_STAT, S_CAPS, S_CGROUP, S_CWD,
    S_HOSTNAME, S_LO, S_NNP, S_PIVOT, S_RO_ROOT, S_SECCOMP, S_STDIO, S_TTY, S_USER,
};

const NOSUID: libc::c_ulong = libc::MS_NOSUID;
const NODEV: libc::c_ulong = libc::MS_NODEV;
const NOEXEC: libc::c_ulong = libc::MS_NOEXEC;

pub(crate) fn errno() -> i32 {
    // SAFETY: reading the thread's errno.
    unsafe { *libc::__errno_location() }
}

/// Reports a failure to the parent and exits.
pub(crate) fn fail(fd: RawFd, kind: u32, step: usize, err: i32) -> ! {
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
            Op::Device {
                path,
                host,
                mode,
                dev,
                uid,
                gid,
            } => {
                if libc::mknod(path.as_ptr(), *mode, *dev) != 0 {
                    let fd = libc::open(
                        path.as_ptr(),
                        libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC,
                        0o666,
                    );
                    if fd < 0 {
                        return Err(errno());
                    }
                    libc::close(fd);
                    return ok(libc::mount(
                        host.as_ptr(),
                        path.as_ptr(),
                        std::ptr::null(),
                        libc::MS_BIND,
                        std::ptr::null(),
                    ));
                }
                if (*uid, *gid) != (0, 0) {
                    return ok(libc::chown(path.as_ptr(), *uid, *gid));
                }
                Ok(())
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
pub(crate) fn make_terminal(sock: RawFd, bind_console: bool) -> std::result::Result<(), i32> {
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

/// Default signal dispositions and an empty mask, whatever the parent had (Rust ignores
/// SIGPIPE, a test harness may block signals). Async-signal-safe.
pub(crate) fn reset_signals() {
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

pub(crate) fn child(p: &Plan, errfd: RawFd) -> ! {
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
pub(crate) fn exec_tail(p: &Tail, errfd: RawFd) -> ! {
    credentials(p, errfd);
    exec_cmd(p, errfd)
}

/// Hands the prepared BPF program to the kernel. Raw system call only.
fn load_seccomp(prog: &[libc::sock_filter]) -> std::result::Result<(), i32> {
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: `fprog` points at a program that lives as long as the plan.
    let r = unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER as libc::c_ulong,
            &fprog as *const libc::sock_fprog as libc::c_ulong,
            0,
            0,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(errno())
    }
}

/// Working directory, capabilities, user and groups, no_new_privs, seccomp, umask.
///
/// The seccomp filter goes in as runc puts it: with no_new_privs, last (loading a filter then
/// needs no privilege, and the fewest system calls run under it); without, before the
/// capabilities are dropped, since loading a filter then needs CAP_SYS_ADMIN. Everything
/// done after it (capset, setresuid, prctl, close_range, stat, execve, and `--init`'s clone
/// and waits) is allowed by Docker's default profile.
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
        if let Some(prog) = p.seccomp.as_deref().filter(|_| !p.nnp) {
            if let Err(e) = load_seccomp(prog) {
                setup(S_SECCOMP, e);
            }
        }
        // Capabilities: bounding set first, then credentials keeping the permitted set,
        // then the effective/permitted sets; inheritable and ambient stay empty (Docker).
        // Only capabilities this process holds can be kept (a machine may withhold some,
        // even from root): intersect with the current permitted set.
        let hdr = CapHeader {
            version: 0x2008_0522,
            pid: 0,
        };
        let mut cur = [CapData {
            effective: 0,
            permitted: 0,
            inheritable: 0,
        }; 2];
        let held =
            if libc::syscall(libc::SYS_capget, &hdr as *const CapHeader, cur.as_mut_ptr()) == 0 {
                (cur[0].permitted as u64) | ((cur[1].permitted as u64) << 32)
            } else {
                u64::MAX
            };
        let caps = p.caps & held;
        for c in 0..=p.last_cap {
            if caps & (1u64 << c) == 0 {
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
        let lo = caps as u32;
        let hi = (caps >> 32) as u32;
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
        if let Some(prog) = p.seccomp.as_deref().filter(|_| p.nnp) {
            if let Err(e) = load_seccomp(prog) {
                setup(S_SECCOMP, e);
            }
        }
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
