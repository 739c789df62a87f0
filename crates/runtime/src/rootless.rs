//! Rootless mode: an ordinary user's strata runs in a user namespace of its own, as Podman's
//! and Buildah's do.
//!
//! [`enter`] is called first thing by the binary. As root it does nothing. As any other user
//! it joins the user and mount namespaces held by the user's *pause process* (Podman's name),
//! or, when there is none yet, makes them: `unshare(CLONE_NEWUSER | CLONE_NEWNS)`, the ID
//! maps written by `newuidmap`/`newgidmap` (Debian's `uidmap`; setuid helpers that check
//! `/etc/subuid` and `/etc/subgid`) from a helper forked before the unshare, then a pause
//! process forked off into the namespaces, its PID and start time in
//! `RUNTIME_DIR/pause.pid`. The user is root in there (its own UID maps to 0, its subordinate
//! ranges to 1, 2, …), so every later step of strata (overlay mounts, unpacking layers with
//! their owners, namespaces for containers) is the code that runs as root. All commands of
//! one user share one namespace, so `exec`, `stop` or `cp` reach a container another command
//! started. Without subordinate ranges the map is the user's one ID (written by strata
//! itself, `setgroups` denied): images whose files are all owned by root still work.
//!
//! The runtime directory is `$XDG_RUNTIME_DIR/strata`, or `/tmp/strata-UID` when that is not
//! set (Podman's fallback too); it is created with mode 0700 and must be owned by the user.

use std::ffi::CString;
use std::fs;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The name of the pause process's PID file in the runtime directory.
pub const PAUSE_PID_FILE: &str = "pause.pid";

/// The environment that, with `strata-pause` as its name, makes the binary the pause process.
const PAUSE_ENV: &std::ffi::CStr = c"STRATA_PAUSE_PROCESS=1";

/// Called first by the binary: when this process is the pause process (see the module), it
/// waits for signals forever; otherwise it returns at once.
pub fn pause_if_asked() {
    let is_pause = std::env::args_os()
        .next()
        .is_some_and(|a| a == "strata-pause")
        && std::env::var_os("STRATA_PAUSE_PROCESS").is_some_and(|v| v == "1");
    if !is_pause {
        return;
    }
    loop {
        // SAFETY: plain system call.
        unsafe { libc::pause() };
    }
}

/// One line of a user namespace's ID map: `inside outside count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdRange {
    pub inside: u32,
    pub outside: u32,
    pub count: u32,
}

/// This process's user namespace, as read from `/proc/self/uid_map` and `gid_map`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace {
    pub uid_map: Vec<IdRange>,
    pub gid_map: Vec<IdRange>,
}

impl Namespace {
    /// The host's user ID that is root in here.
    pub fn host_uid(&self) -> u32 {
        outside_of(&self.uid_map, 0).unwrap_or(0)
    }
}

fn outside_of(map: &[IdRange], inside: u32) -> Option<u32> {
    map.iter()
        .find(|r| inside >= r.inside && inside - r.inside < r.count)
        .map(|r| r.outside + (inside - r.inside))
}

/// Parses a `/proc/PID/uid_map` text.
pub fn parse_id_map(text: &str) -> Vec<IdRange> {
    text.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace().map(|v| v.parse::<u32>());
            Some(IdRange {
                inside: w.next()?.ok()?,
                outside: w.next()?.ok()?,
                count: w.next()?.ok()?,
            })
        })
        .collect()
}

/// The user namespace this process runs in when it is not the initial one (the identity
/// map of all 2³²-1 IDs), that is when strata runs rootless. Read once.
pub fn namespace() -> Option<&'static Namespace> {
    static NS: OnceLock<Option<Namespace>> = OnceLock::new();
    NS.get_or_init(|| {
        let uid_map = parse_id_map(&fs::read_to_string("/proc/self/uid_map").ok()?);
        let gid_map = parse_id_map(&fs::read_to_string("/proc/self/gid_map").ok()?);
        let initial = uid_map.len() == 1
            && uid_map[0]
                == IdRange {
                    inside: 0,
                    outside: 0,
                    count: u32::MAX,
                };
        (!initial).then_some(Namespace { uid_map, gid_map })
    })
    .as_ref()
}

/// Whether strata runs rootless (in a user namespace).
pub fn active() -> bool {
    namespace().is_some()
}

/// Whether group `gid` exists in this process's user namespace (always outside of one).
pub fn gid_mapped(gid: u32) -> bool {
    namespace().is_none_or(|ns| outside_of(&ns.gid_map, gid).is_some())
}

/// Whether `setgroups` may be called: not in a user namespace made with `setgroups` denied
/// (the single-ID map). Read once.
pub fn setgroups_allowed() -> bool {
    static ALLOWED: OnceLock<bool> = OnceLock::new();
    *ALLOWED.get_or_init(|| {
        !active() || fs::read_to_string("/proc/self/setgroups").map_or(true, |t| t.trim() != "deny")
    })
}

/// The runtime directory of a user (`uid` on the host): `/run/strata` for root,
/// `$XDG_RUNTIME_DIR/strata`, else `/tmp/strata-UID`.
pub fn runtime_dir_for(uid: u32) -> PathBuf {
    if uid == 0 {
        return PathBuf::from("/run/strata");
    }
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(d) => PathBuf::from(d).join("strata"),
        None => PathBuf::from(format!("/tmp/strata-{uid}")),
    }
}

/// This process's runtime directory: the host user's (see [`runtime_dir_for`]) also inside
/// the user namespace.
pub fn runtime_dir() -> PathBuf {
    match namespace() {
        Some(ns) => runtime_dir_for(ns.host_uid()),
        // SAFETY: geteuid has no preconditions.
        None => runtime_dir_for(unsafe { libc::geteuid() }),
    }
}

/// How [`enter`] found the namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entered {
    /// Running as root: nothing was done.
    Root,
    /// Already in a user namespace (a process strata started, or `unshare -r`).
    Inherited,
    /// Joined the pause process's namespaces.
    Joined,
    /// Made the namespaces and the pause process.
    Created,
}

/// Puts a non-root strata into the user's namespace (see the module). Must be called while
/// the process has one thread. Errors are messages for the user.
pub fn enter() -> Result<Entered, String> {
    // SAFETY: no preconditions.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    if uid == 0 {
        return Ok(if active() {
            Entered::Inherited
        } else {
            Entered::Root
        });
    }
    let dir = runtime_dir_for(uid);
    make_runtime_dir(&dir, uid)?;
    let cwd = std::env::current_dir().ok();
    let lock_path = dir.join("pause.lock");
    let lock = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC)
        .open(&lock_path)
        .map_err(|e| format!("open {}: {e}", lock_path.display()))?;
    lock.lock()
        .map_err(|e| format!("lock {}: {e}", lock_path.display()))?;
    let pid_file = dir.join(PAUSE_PID_FILE);
    let joined = match live_pause(&pid_file) {
        Some(pidfd) => {
            // SAFETY: plain system call on a descriptor we own.
            if unsafe { libc::setns(pidfd.as_raw_fd(), libc::CLONE_NEWUSER | libc::CLONE_NEWNS) }
                == 0
            {
                true
            } else {
                let e = std::io::Error::last_os_error();
                // ESRCH: it has exited (a zombie nobody reaped yet).
                if e.raw_os_error() != Some(libc::ESRCH) {
                    return Err(format!(
                        "join the user namespace of the rootless pause process ({}): {e}",
                        pid_file.display()
                    ));
                }
                false
            }
        }
        None => false,
    };
    let entered = if joined {
        Entered::Joined
    } else {
        create(uid, gid)?;
        spawn_pause(&pid_file)?;
        Entered::Created
    };
    drop(lock);
    // Joining a mount namespace moves the working directory to its root.
    if let Some(cwd) = cwd {
        let _ = std::env::set_current_dir(cwd);
    }
    Ok(entered)
}

fn make_runtime_dir(dir: &Path, uid: u32) -> Result<(), String> {
    match fs::create_dir_all(dir) {
        Ok(()) => {}
        Err(e) => {
            return Err(format!(
                "create the runtime directory {}: {e}",
                dir.display()
            ))
        }
    }
    let md = fs::symlink_metadata(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    if !md.is_dir() || md.uid() != uid {
        return Err(format!(
            "the runtime directory {} is not a directory owned by user {uid} (set XDG_RUNTIME_DIR to one)",
            dir.display()
        ));
    }
    if md.mode() & 0o077 != 0 {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .map_err(|e| format!("chmod {}: {e}", dir.display()))?;
    }
    Ok(())
}

/// A pidfd of the pause process named by `pid_file` when it still runs.
fn live_pause(pid_file: &Path) -> Option<OwnedFd> {
    let text = fs::read_to_string(pid_file).ok()?;
    let mut w = text.split_whitespace();
    let pid: i32 = w.next()?.parse().ok()?;
    let start: u64 = w.next()?.parse().ok()?;
    // SAFETY: pidfd_open takes a PID and flags.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: a new descriptor that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    // The descriptor names the process from now on; a matching start time means it is the one
    // the file names and not a reused PID.
    (crate::process_start_time(pid).ok()? == start).then_some(fd)
}

/// Ends the user's pause process (`system migrate`), so that the next command makes a new
/// user namespace, with the ID maps `/etc/subuid` and `/etc/subgid` give now. Returns its PID,
/// or None when there was none. Processes still in the old namespace keep it.
pub fn stop_pause() -> Result<Option<i32>, String> {
    let dir = runtime_dir();
    let pid_file = dir.join(PAUSE_PID_FILE);
    let Some(pidfd) = live_pause(&pid_file) else {
        let _ = fs::remove_file(&pid_file);
        return Ok(None);
    };
    let pid: i32 = fs::read_to_string(&pid_file)
        .ok()
        .and_then(|t| t.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    // SAFETY: pidfd_send_signal on a descriptor we own, without siginfo.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            libc::SIGKILL,
            std::ptr::null::<libc::siginfo_t>(),
            0u32,
        )
    };
    if r != 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::ESRCH) {
            return Err(format!("stop the rootless pause process {pid}: {e}"));
        }
    }
    // Gone before this returns (a pidfd reads as ready once its process has exited), so
    // that the next command finds no namespace to join; bounded, as a kill always ends it.
    let mut p = libc::pollfd {
        fd: pidfd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: poll on one descriptor we own.
    unsafe { libc::poll(&mut p, 1, 5000) };
    fs::remove_file(&pid_file).map_err(|e| format!("remove {}: {e}", pid_file.display()))?;
    Ok(Some(pid))
}

/// `/etc/subuid` or `/etc/subgid` ranges of the user (by name or number).
pub fn subordinate_ranges(file: &Path, name: Option<&str>, id: u32) -> Vec<(u32, u32)> {
    let Ok(text) = fs::read_to_string(file) else {
        return Vec::new();
    };
    parse_subordinate(&text, name, id)
}

fn parse_subordinate(text: &str, name: Option<&str>, id: u32) -> Vec<(u32, u32)> {
    let id_text = id.to_string();
    text.lines()
        .filter_map(|l| {
            let mut f = l.trim().splitn(3, ':');
            let who = f.next()?;
            if who != id_text && Some(who) != name {
                return None;
            }
            let start = f.next()?.trim().parse().ok()?;
            let count: u32 = f.next()?.trim().parse().ok()?;
            (count > 0).then_some((start, count))
        })
        .collect()
}

fn user_name(uid: u32) -> Option<String> {
    let mut buf = vec![0u8; 4096];
    // SAFETY: zeroed passwd is a valid out-parameter.
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut res = std::ptr::null_mut();
    // SAFETY: buffers are valid for the sizes passed.
    let r = unsafe { libc::getpwuid_r(uid, &mut pw, buf.as_mut_ptr().cast(), buf.len(), &mut res) };
    if r != 0 || res.is_null() {
        return None;
    }
    // SAFETY: pw_name points into buf, NUL-terminated.
    let name = unsafe { std::ffi::CStr::from_ptr(pw.pw_name) };
    Some(name.to_string_lossy().into_owned())
}

/// The map arguments of `newuidmap`/`newgidmap` after the PID: the user's ID to 0, then
/// the ranges one after the other from 1.
fn map_args(own: u32, ranges: &[(u32, u32)]) -> Vec<String> {
    let mut args = vec!["0".to_string(), own.to_string(), "1".to_string()];
    let mut next: u64 = 1;
    for &(start, count) in ranges {
        args.extend([next.to_string(), start.to_string(), count.to_string()]);
        next += count as u64;
    }
    args
}

fn find_helper(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Makes the user and mount namespaces and writes their ID maps.
fn create(uid: u32, gid: u32) -> Result<(), String> {
    let name = user_name(uid);
    let subuids = subordinate_ranges(Path::new("/etc/subuid"), name.as_deref(), uid);
    let subgids = subordinate_ranges(Path::new("/etc/subgid"), name.as_deref(), gid);
    let helpers = (find_helper("newuidmap"), find_helper("newgidmap"));
    let ranged = !subuids.is_empty() && !subgids.is_empty();
    if ranged && (helpers.0.is_none() || helpers.1.is_none()) {
        eprintln!(
            "strata: newuidmap/newgidmap not found (Debian package uidmap): only user {uid} is mapped in the user namespace"
        );
    }
    let (Some(newuidmap), Some(newgidmap), true) = (helpers.0, helpers.1, ranged) else {
        unshare()?;
        return write_single_maps(uid, gid);
    };
    // The helper is forked before the unshare: setuid programs started from inside the new
    // namespace would not get their privileges.
    let (go_r, go_w) = pipe()?;
    let (res_r, res_w) = pipe()?;
    // SAFETY: getpid has no preconditions.
    let me = unsafe { libc::getpid() };
    // SAFETY: the process has one thread (see `enter`), so the child may do anything.
    let child = unsafe { libc::fork() };
    if child < 0 {
        return Err(format!("fork: {}", std::io::Error::last_os_error()));
    }
    if child == 0 {
        drop(go_w);
        drop(res_r);
        let mut go = fs::File::from(go_r);
        let mut byte = [0u8];
        let mut out = fs::File::from(res_w);
        if go.read_exact(&mut byte).is_err() || byte[0] != 1 {
            // SAFETY: leaving the forked child.
            unsafe { libc::_exit(1) };
        }
        let runs = [
            (newuidmap, map_args(uid, &subuids)),
            (newgidmap, map_args(gid, &subgids)),
        ];
        for (prog, args) in runs {
            match Command::new(&prog).arg(me.to_string()).args(&args).output() {
                Ok(o) if o.status.success() => {}
                Ok(o) => {
                    let _ = write!(
                        out,
                        "{} {} {}: {}",
                        prog.display(),
                        me,
                        args.join(" "),
                        String::from_utf8_lossy(&o.stderr).trim()
                    );
                    // SAFETY: leaving the forked child.
                    unsafe { libc::_exit(1) };
                }
                Err(e) => {
                    let _ = write!(out, "{}: {e}", prog.display());
                    // SAFETY: leaving the forked child.
                    unsafe { libc::_exit(1) };
                }
            }
        }
        // SAFETY: leaving the forked child.
        unsafe { libc::_exit(0) };
    }
    drop(go_r);
    drop(res_w);
    let mut go = fs::File::from(go_w);
    let unshared = unshare();
    let _ = go.write_all(&[u8::from(unshared.is_ok())]);
    drop(go);
    let mut status = 0;
    // SAFETY: waiting for our own child.
    unsafe { libc::waitpid(child, &mut status, 0) };
    unshared?;
    let mut msg = String::new();
    let _ = fs::File::from(res_r).read_to_string(&mut msg);
    if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        return Err(format!("set up the user namespace's ID maps: {msg}"));
    }
    Ok(())
}

fn unshare() -> Result<(), String> {
    // SAFETY: plain system call.
    if unsafe { libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNS) } != 0 {
        let e = std::io::Error::last_os_error();
        return Err(format!(
            "create a user namespace: {e} (rootless strata needs unprivileged user namespaces: the sysctls user.max_user_namespaces and kernel.unprivileged_userns_clone, and inside a container a seccomp profile that allows them, e.g. --security-opt seccomp=unconfined)"
        ));
    }
    Ok(())
}

fn write_single_maps(uid: u32, gid: u32) -> Result<(), String> {
    for (file, text) in [
        ("/proc/self/setgroups", "deny".to_string()),
        ("/proc/self/uid_map", format!("0 {uid} 1")),
        ("/proc/self/gid_map", format!("0 {gid} 1")),
    ] {
        fs::write(file, text).map_err(|e| format!("write {file}: {e}"))?;
    }
    Ok(())
}

fn pipe() -> Result<(OwnedFd, OwnedFd), String> {
    let mut fds = [0; 2];
    // SAFETY: fds has room for two descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(format!("pipe: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: new descriptors we own.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Forks the pause process (twice, so that it is nobody's child here) and records it.
fn spawn_pause(pid_file: &Path) -> Result<(), String> {
    let (r, w) = pipe()?;
    let name = CString::new("strata-pause").unwrap();
    // SAFETY: one thread (see `enter`).
    let child = unsafe { libc::fork() };
    if child < 0 {
        return Err(format!("fork: {}", std::io::Error::last_os_error()));
    }
    if child == 0 {
        // SAFETY: only async-signal-safe calls until the loop.
        unsafe {
            libc::setsid();
            let pause = libc::fork();
            if pause != 0 {
                let pid = pause.to_ne_bytes();
                libc::write(w.as_raw_fd(), pid.as_ptr().cast(), pid.len());
                libc::_exit(0);
            }
            libc::prctl(libc::PR_SET_NAME, name.as_ptr());
            libc::chdir(c"/".as_ptr());
            libc::syscall(libc::SYS_close_range, 0u32, u32::MAX, 0u32);
            let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
            if null == 0 {
                libc::dup2(0, 1);
                libc::dup2(0, 2);
            }
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
            for sig in [libc::SIGINT, libc::SIGHUP, libc::SIGPIPE, libc::SIGQUIT] {
                libc::signal(sig, libc::SIG_IGN);
            }
            // The strata binary again, as `strata-pause` (see `pause_if_asked`): a small
            // process named for what it is rather than a copy of this command.
            let argv = [name.as_ptr(), std::ptr::null()];
            let envp = [PAUSE_ENV.as_ptr(), std::ptr::null()];
            libc::execve(c"/proc/self/exe".as_ptr(), argv.as_ptr(), envp.as_ptr());
            loop {
                libc::pause();
            }
        }
    }
    drop(w);
    let mut status = 0;
    // SAFETY: waiting for our own child.
    unsafe { libc::waitpid(child, &mut status, 0) };
    let mut buf = [0u8; 4];
    fs::File::from(r)
        .read_exact(&mut buf)
        .map_err(|e| format!("start the rootless pause process: {e}"))?;
    let pid = i32::from_ne_bytes(buf);
    let start = crate::process_start_time(pid)
        .map_err(|e| format!("start the rootless pause process: {e}"))?;
    let tmp = pid_file.with_extension("tmp");
    fs::write(&tmp, format!("{pid} {start}\n"))
        .and_then(|()| fs::rename(&tmp, pid_file))
        .map_err(|e| format!("write {}: {e}", pid_file.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subordinate_ranges_by_name_or_number() {
        let text = "alice:100000:65536\n1001:200000:10\nbob:300000:5\nalice:400000:0\n";
        assert_eq!(
            parse_subordinate(text, Some("alice"), 1000),
            vec![(100000, 65536)]
        );
        assert_eq!(
            parse_subordinate(text, Some("carol"), 1001),
            vec![(200000, 10)]
        );
        assert!(parse_subordinate(text, None, 42).is_empty());
    }

    #[test]
    fn map_arguments_put_the_ranges_after_the_user() {
        assert_eq!(
            map_args(1000, &[(100000, 65536), (300000, 5)]).join(" "),
            "0 1000 1 1 100000 65536 65537 300000 5"
        );
    }

    #[test]
    fn id_maps_parse_and_translate() {
        let m =
            parse_id_map("         0       1000          1\n         1     100000      65536\n");
        assert_eq!(outside_of(&m, 0), Some(1000));
        assert_eq!(outside_of(&m, 1000), Some(100999));
        assert_eq!(outside_of(&m, 65537), None);
    }
}
