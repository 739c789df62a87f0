//! The container's side of `clone`: raw, async-signal-safe system calls only.
//!
//! The caller may be multi-threaded (a test harness, a build with worker threads), so after
//! `fork`/`clone` only async-signal-safe work is allowed. The parent therefore prepares
//! *everything* first (`plan.rs`), then calls the raw `clone` system call (fork semantics, no
//! new stack) with `CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC` (plus
//! `CLONE_NEWNET` for `--network none` and the private network, which the parent
//! connects with pasta while the child waits on a pipe before exec). The child is PID 1 of the new PID namespace; it runs
//! [`child`], which performs only raw system calls on the prepared data (no allocation, no
//! locks, no glibc `setuid` wrappers, which would try to synchronise threads that do not exist
//! in the child), and finally `execve`s the command, which stays PID 1 as in Docker (with
//! `--init`, the command is Docker's `docker-init`, bind-mounted read-only from the host).
//! Failures are reported through a close-on-exec pipe as `(kind, step, errno)`; end of file on
//! the pipe means the exec succeeded. No helper binary and no re-exec of `/proc/self/exe` are
//! needed, so this works the same from tests and from the `strata` binary.
//!
//! Isolation rules while strata's code runs in the container's namespaces: the process is not
//! dumpable (`PR_SET_DUMPABLE` 0: nothing in the container can ptrace it or read its memory,
//! `/proc/PID/exe` or descriptors; execve makes the command dumpable again); it joins a fresh
//! session keyring; right after taking its standard streams it closes every descriptor but
//! the few the plan lists (status pipe, terminal socket, cgroup files), and those close on
//! exec; mount targets are opened with `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS)` from a
//! descriptor of the root and mounted through descriptors (`open_tree`/`fsmount` +
//! `move_mount`), then checked to be what is visible at that path.

use std::ffi::CString;
use std::os::fd::RawFd;

use crate::plan::{
    MountSrc, Op, Plan, Tail, K_CWD, K_EXEC, K_NOT_IN_PATH, K_SETUP, K_STAT, S_CAPS, S_CGROUP,
    S_CWD, S_HOSTNAME, S_ISOLATE, S_LO, S_NET, S_NNP, S_PIVOT, S_PRIVATE, S_RLIMIT, S_ROOT_BIND,
    S_RO_ROOT, S_SECCOMP, S_STDIO, S_TTY, S_USER,
};
use crate::scope::{openat2, RESOLVE_IN_ROOT, RESOLVE_NO_MAGICLINKS, RESOLVE_NO_SYMLINKS};

const OPEN_TREE_CLONE: libc::c_uint = 1;
const AT_RECURSIVE: libc::c_uint = 0x8000;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x04;
const MOVE_MOUNT_T_EMPTY_PATH: libc::c_uint = 0x40;
pub(crate) const MOUNT_ATTR_RDONLY: u64 = 0x01;
pub(crate) const MOUNT_ATTR_NOSUID: u64 = 0x02;
pub(crate) const MOUNT_ATTR_NODEV: u64 = 0x04;
pub(crate) const MOUNT_ATTR_NOEXEC: u64 = 0x08;
pub(crate) const MOUNT_ATTR_STRICTATIME: u64 = 0x20;
const FSOPEN_CLOEXEC: libc::c_uint = 1;
const FSMOUNT_CLOEXEC: libc::c_uint = 1;
const FSCONFIG_SET_FLAG: libc::c_uint = 0;
const FSCONFIG_SET_STRING: libc::c_uint = 1;
const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
const KEYCTL_JOIN_SESSION_KEYRING: libc::c_int = 1;
const CLOSE_RANGE_CLOEXEC: libc::c_uint = 4;

/// `struct mount_attr` of mount_setattr(2).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

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

/// Closes every descriptor from 3 up except those in `keep` (sorted ascending). Raw.
pub(crate) fn close_all_but(keep: &[RawFd]) {
    let mut next: u32 = 3;
    // SAFETY: close_range on descriptor numbers; no memory is touched.
    unsafe {
        for &k in keep {
            if k < 0 || (k as u32) < next {
                continue;
            }
            if k as u32 > next {
                libc::syscall(libc::SYS_close_range, next, k as u32 - 1, 0u32);
            }
            next = k as u32 + 1;
        }
        libc::syscall(libc::SYS_close_range, next, u32::MAX, 0u32);
    }
}

/// Not dumpable (no ptrace, no /proc/PID/mem or fd access from the container while strata's
/// code runs) and a fresh anonymous session keyring. Raw.
pub(crate) fn isolate() -> std::result::Result<(), i32> {
    // SAFETY: prctl and keyctl with integer and null arguments.
    unsafe {
        if libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) != 0 {
            return Err(errno());
        }
        if libc::syscall(
            libc::SYS_keyctl,
            KEYCTL_JOIN_SESSION_KEYRING,
            std::ptr::null::<libc::c_char>(),
        ) < 0
        {
            return Err(errno());
        }
    }
    Ok(())
}

/// Mounts `src` on `rel` (symlink-free, relative to the root open as `rootfd`) through
/// descriptors, then checks that the path now shows the new mount. Raw system calls only.
fn mount_at(rootfd: RawFd, rel: &CString, src: &MountSrc) -> std::result::Result<(), i32> {
    let resolve = RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    // SAFETY: raw system calls on C strings and structures owned by the plan or the stack.
    unsafe {
        let target = openat2(rootfd, rel, libc::O_PATH, resolve);
        if target < 0 {
            return Err(-target);
        }
        let fail = |e: i32, fds: &[RawFd]| {
            for fd in fds {
                libc::close(*fd);
            }
            Err(e)
        };
        let mnt = match src {
            MountSrc::Tree {
                path,
                recursive,
                readonly,
            } => {
                let rec = if *recursive { AT_RECURSIVE } else { 0 };
                let fd = libc::syscall(
                    libc::SYS_open_tree,
                    libc::AT_FDCWD,
                    path.as_ptr(),
                    OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint | rec,
                ) as RawFd;
                if fd < 0 {
                    return fail(errno(), &[target]);
                }
                if *readonly {
                    let attr = MountAttr {
                        attr_set: MOUNT_ATTR_RDONLY,
                        attr_clr: 0,
                        propagation: 0,
                        userns_fd: 0,
                    };
                    if libc::syscall(
                        libc::SYS_mount_setattr,
                        fd,
                        c"".as_ptr(),
                        libc::AT_EMPTY_PATH as libc::c_uint | rec,
                        &attr as *const MountAttr,
                        std::mem::size_of::<MountAttr>(),
                    ) != 0
                    {
                        return fail(errno(), &[target, fd]);
                    }
                }
                fd
            }
            MountSrc::Fs {
                fstype,
                params,
                attrs,
            } => {
                let fs = libc::syscall(libc::SYS_fsopen, fstype.as_ptr(), FSOPEN_CLOEXEC) as RawFd;
                if fs < 0 {
                    return fail(errno(), &[target]);
                }
                for (k, v) in params {
                    let (cmd, vp) = match v {
                        Some(v) => (FSCONFIG_SET_STRING, v.as_ptr()),
                        None => (FSCONFIG_SET_FLAG, std::ptr::null()),
                    };
                    if libc::syscall(libc::SYS_fsconfig, fs, cmd, k.as_ptr(), vp, 0) != 0 {
                        return fail(errno(), &[target, fs]);
                    }
                }
                if libc::syscall(
                    libc::SYS_fsconfig,
                    fs,
                    FSCONFIG_CMD_CREATE,
                    std::ptr::null::<libc::c_char>(),
                    std::ptr::null::<libc::c_char>(),
                    0,
                ) != 0
                {
                    return fail(errno(), &[target, fs]);
                }
                let m = libc::syscall(libc::SYS_fsmount, fs, FSMOUNT_CLOEXEC, *attrs) as RawFd;
                if m < 0 {
                    return fail(errno(), &[target, fs]);
                }
                libc::close(fs);
                m
            }
        };
        if libc::syscall(
            libc::SYS_move_mount,
            mnt,
            c"".as_ptr(),
            target,
            c"".as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        ) != 0
        {
            return fail(errno(), &[target, mnt]);
        }
        // The mount must be what the root shows at `rel` now.
        let check = openat2(rootfd, rel, libc::O_PATH, resolve);
        if check < 0 {
            return fail(-check, &[target, mnt]);
        }
        let mut a: libc::stat = std::mem::zeroed();
        let mut b: libc::stat = std::mem::zeroed();
        let same = libc::fstat(check, &mut a) == 0
            && libc::fstat(mnt, &mut b) == 0
            && a.st_dev == b.st_dev
            && a.st_ino == b.st_ino;
        libc::close(check);
        libc::close(mnt);
        libc::close(target);
        if !same {
            return Err(libc::EXDEV);
        }
    }
    Ok(())
}

/// Runs one setup op; returns the errno on failure.
fn run_op(op: &Op, rootfd: RawFd) -> std::result::Result<(), i32> {
    // SAFETY: all pointers come from CStrings owned by the plan.
    unsafe {
        let ok = |r: libc::c_int| if r == 0 { Ok(()) } else { Err(errno()) };
        match op {
            Op::MountAt { rel, src } => mount_at(rootfd, rel, src),
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
pub(crate) fn make_terminal(
    sock: RawFd,
    bind_console: bool,
    size: Option<(u16, u16)>,
) -> std::result::Result<(), i32> {
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
        if let Some((rows, cols)) = size {
            let ws = libc::winsize {
                ws_row: rows,
                ws_col: cols,
                ws_xpixel: 0,
                ws_ypixel: 0,
            };
            libc::ioctl(slave, libc::TIOCSWINSZ, &ws);
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
        if let Err(e) = isolate() {
            setup(S_ISOLATE, e);
        }
        reset_signals();
        if p.netns >= 0 && libc::setns(p.netns, libc::CLONE_NEWNET) != 0 {
            setup(S_NET, errno());
        }
        if p.kill_with_parent {
            libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            );
        }
        if p.net_release >= 0 {
            libc::close(p.net_release);
        }
        libc::setsid();
        for (i, fd) in p.stdio.iter().enumerate() {
            if *fd >= 0 && libc::dup2(*fd, i as i32) < 0 {
                setup(S_STDIO, errno());
            }
        }
        // Nothing of strata's (store, locks, logs of other containers) stays open.
        close_all_but(&p.keep_fds);
        // A container starts with the normal scheduling policy, as under Docker (whose
        // shim is not real-time), even when strata runs real-time (`chrt -f`): a real-time
        // task may not join a v1 `cpu` cgroup that has no real-time budget (EINVAL).
        let policy = libc::sched_getscheduler(0) & !libc::SCHED_RESET_ON_FORK;
        if policy == libc::SCHED_FIFO || policy == libc::SCHED_RR {
            let param = libc::sched_param { sched_priority: 0 };
            libc::sched_setscheduler(0, libc::SCHED_OTHER, &param);
        }
        for fd in &p.cgroup_fds {
            if libc::write(*fd, b"0".as_ptr().cast(), 1) != 1 {
                setup(S_CGROUP, errno());
            }
        }
        libc::umask(0);
        if libc::mount(
            std::ptr::null(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        ) != 0
        {
            setup(S_PRIVATE, errno());
        }
        if libc::mount(
            p.rootfs.as_ptr(),
            p.rootfs.as_ptr(),
            std::ptr::null(),
            libc::MS_BIND | libc::MS_REC,
            std::ptr::null(),
        ) != 0
        {
            setup(S_ROOT_BIND, errno());
        }
        let rootfd = libc::open(
            p.rootfs.as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        );
        if rootfd < 0 {
            setup(S_ROOT_BIND, errno());
        }
        for (op, step) in &p.pre {
            if let Err(e) = run_op(op, rootfd) {
                setup(*step, e);
            }
        }
        libc::close(rootfd);
        // pivot_root into the root filesystem and drop the old root.
        if libc::chdir(p.rootfs.as_ptr()) != 0
            || libc::syscall(libc::SYS_pivot_root, c".".as_ptr(), c".".as_ptr()) != 0
            || libc::umount2(c".".as_ptr(), libc::MNT_DETACH) != 0
            || libc::chdir(c"/".as_ptr()) != 0
        {
            setup(S_PIVOT, errno());
        }
        for (op, step) in &p.post {
            if let Err(e) = run_op(op, -1) {
                setup(*step, e);
            }
        }
        if p.tty_sock >= 0 {
            if let Err(e) = make_terminal(p.tty_sock, true, None) {
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
        if p.new_net {
            if let Err(e) = lo_up() {
                setup(S_LO, e);
            }
        }
        if p.net_wait >= 0 {
            // The parent connects the namespace meanwhile; nothing of the user's runs before.
            let mut go = [0u8; 1];
            loop {
                let r = libc::read(p.net_wait, go.as_mut_ptr().cast(), 1);
                if r == 1 {
                    break;
                }
                if r < 0 && errno() == libc::EINTR {
                    continue;
                }
                setup(S_NET, if r < 0 { errno() } else { libc::ENETDOWN });
            }
        }
        exec_tail(&p.tail, errfd);
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
        // `--ulimit`s, while CAP_SYS_RESOURCE may still raise a hard limit.
        for (resource, soft, hard) in &p.rlimits {
            let lim = libc::rlimit64 {
                rlim_cur: *soft,
                rlim_max: *hard,
            };
            if libc::prlimit64(0, *resource as _, &lim, std::ptr::null_mut()) != 0 {
                setup(S_RLIMIT, errno());
            }
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
        if (p.setgroups
            && libc::syscall(libc::SYS_setgroups, p.groups.len(), p.groups.as_ptr()) != 0)
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
        // Everything but the standard streams closes on exec, the status pipe included.
        libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, CLOSE_RANGE_CLOEXEC);

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
