//! `Mount` values (what a snapshotter returns) and the only code in this crate that performs
//! mount and unmount system calls.
//!
//! Overlay mounts with many lower directories do not fit in the single page of options that
//! mount(2) accepts (this is why Docker stops at 125 layers). On kernels that know overlayfs's
//! `lowerdir+` parameter (Linux 6.8 and later) each lower directory is passed by its own
//! `fsconfig` call, so there is no length limit at all. On older kernels, when the option
//! string is too long, a temporary directory of one-character symlinks to the lower
//! directories is made, and a forked child `chdir`s into it and calls mount(2) with the short
//! relative names; overlayfs resolves them at mount time, so the links are removed right after.

use std::ffi::{CString, OsStr};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use crate::error::{Error, IoContext, Result};

/// How to mount one filesystem: a plain value, as containerd's `mount.Mount`.
///
/// `kind` is `"overlay"` (options `lowerdir=`, `upperdir=`, `workdir=`, ...), `"bind"`
/// (options `rbind`, `ro`) or `"fuse-overlayfs"` (the program as `source`, overlay's
/// `lowerdir=`, `upperdir=`, `workdir=` options). `target` is relative to the directory given to [`mount_all`]
/// (empty for the root itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// Filesystem type: `overlay`, `bind` or `fuse-overlayfs`.
    pub kind: String,
    /// Source path (the bind source; `overlay` for overlay mounts; the program for
    /// `fuse-overlayfs`).
    pub source: PathBuf,
    /// Mount point relative to the root passed to [`mount_all`]; empty for the root.
    pub target: PathBuf,
    /// Mount options, as in `mount -o`.
    pub options: Vec<String>,
}

impl Mount {
    /// The lower directories of an overlay mount, top first (empty for other kinds).
    pub fn lowers(&self) -> Vec<PathBuf> {
        self.options
            .iter()
            .filter_map(|o| o.strip_prefix("lowerdir="))
            .flat_map(|l| l.split(':').map(PathBuf::from).collect::<Vec<_>>())
            .collect()
    }

    /// The value of a `key=value` option.
    pub fn option(&self, key: &str) -> Option<&str> {
        self.options
            .iter()
            .find_map(|o| o.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
    }

    /// Whether the mount is read-only.
    pub fn is_readonly(&self) -> bool {
        self.options.iter().any(|o| o == "ro")
    }

    /// This mount, as a `volatile` overlay when it is a writable overlay: overlayfs then
    /// never syncs the filesystem of its upper directory, neither for `fsync`/`syncfs` inside
    /// it nor when it is unmounted (which otherwise writes back every dirty file of that whole
    /// filesystem, other programs' too, and waits for it). Only for snapshots whose changes
    /// are thrown away (`run --rm`) or made durable by the caller before anything names them
    /// (a build step's layer). Kernels without the option (before 5.10) mount without it.
    pub fn volatile(mut self) -> Mount {
        if self.kind == "overlay"
            && self.option("upperdir").is_some()
            && !self.options.iter().any(|o| o == VOLATILE)
        {
            self.options.push(VOLATILE.into());
        }
        self
    }
}

/// overlayfs's option for an upper directory that is never synced.
const VOLATILE: &str = "volatile";

/// Which system call family mounts an overlay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverlayMethod {
    /// `lowerdir+` through the new mount API when the kernel supports it, else legacy.
    Auto,
    /// fsopen/fsconfig(`lowerdir+`)/fsmount/move_mount (Linux >= 6.8).
    LowerdirPlus,
    /// mount(2), through short relative link names when the options exceed one page.
    Legacy,
}

/// Mounts `mounts` in order under `root` (each at `root/target`).
///
/// On failure, the mounts made so far are unmounted again.
pub fn mount_all(mounts: &[Mount], root: &Path) -> Result<()> {
    mount_all_with(mounts, root, OverlayMethod::Auto)
}

/// As [`mount_all`], choosing how overlays are mounted (tests use this to cover both ways).
pub fn mount_all_with(mounts: &[Mount], root: &Path, method: OverlayMethod) -> Result<()> {
    let mut done: Vec<PathBuf> = Vec::new();
    for m in mounts {
        let target = if m.target.as_os_str().is_empty() {
            root.to_path_buf()
        } else {
            root.join(m.target.strip_prefix("/").unwrap_or(&m.target))
        };
        let r = match m.kind.as_str() {
            "overlay" => mount_overlay(m, &target, method),
            "bind" => mount_bind(m, &target),
            FUSE_OVERLAY => mount_fuse_overlay(m, &target),
            other => Err(Error::Mount {
                kind: other.to_string(),
                target: target.clone(),
                reason: "unknown mount type".into(),
            }),
        };
        if let Err(e) = r {
            for t in done.iter().rev() {
                let _ = unmount_all(t);
            }
            return Err(e);
        }
        done.push(target);
    }
    Ok(())
}

fn cstr(p: impl AsRef<OsStr>) -> Result<CString> {
    CString::new(p.as_ref().as_bytes()).map_err(|_| Error::Mount {
        kind: String::new(),
        target: PathBuf::from(p.as_ref()),
        reason: "path contains a NUL byte".into(),
    })
}

fn mount_err(kind: &str, target: &Path, e: io::Error) -> Error {
    Error::Mount {
        kind: kind.to_string(),
        target: target.to_path_buf(),
        reason: e.to_string(),
    }
}

fn sys_mount(
    src: &CString,
    target: &CString,
    fstype: Option<&CString>,
    flags: libc::c_ulong,
    data: Option<&CString>,
) -> io::Result<()> {
    // SAFETY: all pointers are valid NUL-terminated strings or null.
    let r = unsafe {
        libc::mount(
            src.as_ptr(),
            target.as_ptr(),
            fstype.map_or(std::ptr::null(), |f| f.as_ptr()),
            flags,
            data.map_or(std::ptr::null(), |d| d.as_ptr().cast()),
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn mount_bind(m: &Mount, target: &Path) -> Result<()> {
    let src = cstr(&m.source)?;
    let tgt = cstr(target)?;
    let mut flags = libc::MS_BIND;
    if m.options.iter().any(|o| o == "rbind") {
        flags |= libc::MS_REC;
    }
    sys_mount(&src, &tgt, None, flags, None).map_err(|e| mount_err("bind", target, e))?;
    if m.is_readonly() {
        let r = sys_mount(
            &src,
            &tgt,
            None,
            libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY,
            None,
        );
        if let Err(e) = r {
            let _ = unmount(target);
            return Err(mount_err("bind", target, e));
        }
    }
    Ok(())
}

/// The `kind` of an overlay mounted by the `fuse-overlayfs` program (its path is the source).
pub const FUSE_OVERLAY: &str = "fuse-overlayfs";

/// Runs `fuse-overlayfs -o lowerdir=...,upperdir=...,workdir=... TARGET`, which returns once
/// the filesystem is mounted and leaves its daemon (in a session of its own) serving it until
/// it is unmounted. Its chatter on success ("unknown argument ignored") is dropped; on failure
/// its stderr is the reason.
fn mount_fuse_overlay(m: &Mount, target: &Path) -> Result<()> {
    let opts: Vec<&str> = m
        .options
        .iter()
        .map(String::as_str)
        .filter(|o| !matches!(*o, "ro" | "rw"))
        .collect();
    let out = std::process::Command::new(&m.source)
        .arg("-o")
        .arg(opts.join(","))
        .arg(target)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .output()
        .map_err(|e| {
            mount_err(
                FUSE_OVERLAY,
                target,
                io::Error::new(e.kind(), format!("run {}: {e}", m.source.display())),
            )
        })?;
    if out.status.success() {
        return Ok(());
    }
    let err = String::from_utf8_lossy(&out.stderr);
    let err: Vec<&str> = err
        .lines()
        .filter(|l| !l.starts_with("unknown argument ignored"))
        .collect();
    Err(Error::Mount {
        kind: FUSE_OVERLAY.into(),
        target: target.to_path_buf(),
        reason: format!(
            "{} exited with {}: {}",
            m.source.display(),
            out.status,
            err.join("; ")
        ),
    })
}

/// Whether the running kernel's overlayfs accepts `lowerdir+` through fsconfig (detected once).
pub fn lowerdir_plus_supported() -> bool {
    static SUPPORTED: OnceLock<bool> = OnceLock::new();
    *SUPPORTED.get_or_init(|| {
        use rustix::mount::{fsconfig_set_string, fsopen, FsOpenFlags};
        match fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC) {
            Ok(fd) => fsconfig_set_string(&fd, "lowerdir+", "/").is_ok(),
            Err(_) => false,
        }
    })
}

fn mount_overlay(m: &Mount, target: &Path, method: OverlayMethod) -> Result<()> {
    if !m.options.iter().any(|o| o == VOLATILE) {
        return mount_overlay_as(m, target, method);
    }
    // overlayfs leaves `WORKDIR/work/incompat/volatile` behind and refuses that work
    // directory from then on (its upper may have lost writes); the caller does not need
    // them, so a leftover from an earlier mount is removed.
    if let Some(w) = m.option("workdir") {
        let _ = std::fs::remove_dir_all(Path::new(w).join("work/incompat/volatile"));
    }
    mount_overlay_as(m, target, method).or_else(|_| {
        let mut plain = m.clone();
        plain.options.retain(|o| o != VOLATILE);
        mount_overlay_as(&plain, target, method)
    })
}

fn mount_overlay_as(m: &Mount, target: &Path, method: OverlayMethod) -> Result<()> {
    let use_plus = match method {
        OverlayMethod::Auto => lowerdir_plus_supported(),
        OverlayMethod::LowerdirPlus => true,
        OverlayMethod::Legacy => false,
    };
    if use_plus {
        mount_overlay_plus(m, target)
    } else {
        mount_overlay_legacy(m, target)
    }
}

fn mount_overlay_plus(m: &Mount, target: &Path) -> Result<()> {
    use rustix::mount::{
        fsconfig_create, fsconfig_set_flag, fsconfig_set_string, fsmount, fsopen, move_mount,
        FsMountFlags, FsOpenFlags, MountAttrFlags, MoveMountFlags,
    };
    let err = |what: &str, e: rustix::io::Errno| Error::Mount {
        kind: "overlay".into(),
        target: target.to_path_buf(),
        reason: format!("{what}: {}", io::Error::from(e)),
    };
    let fs = fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC).map_err(|e| err("fsopen", e))?;
    let mut attrs = MountAttrFlags::empty();
    for opt in &m.options {
        match opt.split_once('=') {
            Some(("lowerdir", list)) => {
                for l in list.split(':') {
                    fsconfig_set_string(&fs, "lowerdir+", l)
                        .map_err(|e| err(&format!("lowerdir+={l}"), e))?;
                }
            }
            Some((k, v)) => {
                fsconfig_set_string(&fs, k, v).map_err(|e| err(&format!("{k}={v}"), e))?
            }
            None if opt == "ro" => attrs |= MountAttrFlags::MOUNT_ATTR_RDONLY,
            None if opt == "rw" => {}
            None => fsconfig_set_flag(&fs, opt.as_str()).map_err(|e| err(opt, e))?,
        }
    }
    fsconfig_create(&fs).map_err(|e| err("create", e))?;
    let mnt = fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, attrs).map_err(|e| err("fsmount", e))?;
    move_mount(
        &mnt,
        "",
        rustix::fs::CWD,
        target,
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )
    .map_err(|e| err("move_mount", e))?;
    Ok(())
}

/// Largest option string mount(2) accepts (one page, with its NUL).
const MAX_OPTIONS: usize = 4095;

fn mount_overlay_legacy(m: &Mount, target: &Path) -> Result<()> {
    let mut flags = 0;
    let mut opts: Vec<String> = Vec::new();
    for o in &m.options {
        match o.as_str() {
            "ro" => flags |= libc::MS_RDONLY,
            "rw" => {}
            _ => opts.push(o.clone()),
        }
    }
    let data = opts.join(",");
    let src = cstr("overlay")?;
    let fstype = cstr("overlay")?;
    let tgt = cstr(target)?;
    if data.len() <= MAX_OPTIONS {
        let d = cstr(&data)?;
        return sys_mount(&src, &tgt, Some(&fstype), flags, Some(&d))
            .map_err(|e| mount_err("overlay", target, e));
    }
    // Too long: short relative names in a temporary link directory.
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let linkdir = std::env::temp_dir().join(format!(
        "strata-lowers-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir(&linkdir).ctx("create link directory", &linkdir)?;
    let result = (|| {
        let mut short = Vec::new();
        for (i, lower) in m.lowers().iter().enumerate() {
            let name = format!("{i:x}");
            std::os::unix::fs::symlink(lower, linkdir.join(&name))
                .ctx("create link", linkdir.join(&name))?;
            short.push(name);
        }
        let mut opts2: Vec<String> = opts
            .iter()
            .filter(|o| !o.starts_with("lowerdir="))
            .cloned()
            .collect();
        opts2.insert(0, format!("lowerdir={}", short.join(":")));
        let data = opts2.join(",");
        if data.len() > MAX_OPTIONS {
            return Err(Error::Mount {
                kind: "overlay".into(),
                target: target.to_path_buf(),
                reason: format!(
                    "{} lower directories do not fit in one page of mount options on this kernel (Linux >= 6.8 has no such limit)",
                    short.len()
                ),
            });
        }
        let d = cstr(&data)?;
        let dir = cstr(&linkdir)?;
        mount_in_dir(&dir, &src, &tgt, &fstype, flags, &d)
            .map_err(|e| mount_err("overlay", target, e))
    })();
    let _ = std::fs::remove_dir_all(&linkdir);
    result
}

/// Forks a child that changes into `dir` and mounts there, so relative lower names resolve
/// inside `dir` without changing the working directory of this (multi-threaded) process.
/// The child only makes async-signal-safe system calls on memory prepared before the fork.
fn mount_in_dir(
    dir: &CString,
    src: &CString,
    tgt: &CString,
    fstype: &CString,
    flags: libc::c_ulong,
    data: &CString,
) -> io::Result<()> {
    // SAFETY: the child calls only chdir, mount and _exit (async-signal-safe) on prepared data.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid == 0 {
        unsafe {
            if libc::chdir(dir.as_ptr()) != 0 {
                libc::_exit(*libc::__errno_location() & 0xff);
            }
            let r = libc::mount(
                src.as_ptr(),
                tgt.as_ptr(),
                fstype.as_ptr(),
                flags,
                data.as_ptr().cast(),
            );
            libc::_exit(if r == 0 {
                0
            } else {
                *libc::__errno_location() & 0xff
            });
        }
    }
    let mut status = 0;
    loop {
        // SAFETY: waiting for our own child.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            break;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
        Ok(())
    } else if libc::WIFEXITED(status) {
        Err(io::Error::from_raw_os_error(libc::WEXITSTATUS(status)))
    } else {
        Err(io::Error::other("mount helper process was killed"))
    }
}

/// Unmounts the mount at `target` (lazily if it is busy).
pub fn unmount(target: &Path) -> Result<()> {
    let t = cstr(target)?;
    // SAFETY: valid C string.
    if unsafe { libc::umount2(t.as_ptr(), 0) } == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EBUSY) {
        // SAFETY: valid C string.
        if unsafe { libc::umount2(t.as_ptr(), libc::MNT_DETACH) } == 0 {
            return Ok(());
        }
    }
    let e = io::Error::last_os_error();
    // A FUSE filesystem (fuse-overlayfs) mounted by this user outside a namespace where it
    // may unmount: its setuid helper can.
    if e.raw_os_error() == Some(libc::EPERM) && fusermount_unmount(target) {
        return Ok(());
    }
    Err(Error::Unmount {
        path: target.to_path_buf(),
        source: e,
    })
}

fn fusermount_unmount(target: &Path) -> bool {
    ["fusermount3", "fusermount"].iter().any(|prog| {
        std::process::Command::new(prog)
            .args(["-u", "-z"])
            .arg(target)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// Unmounts every mount at or below `target`, deepest first. Not mounted is not an error.
pub fn unmount_all(target: &Path) -> Result<()> {
    for mp in mounts_under(target)?.iter().rev() {
        match unmount(mp) {
            Ok(()) => {}
            // Another process (a container's monitor cleaning up as it exits) unmounted it
            // between reading the mount table and now: gone is what was asked for.
            Err(Error::Unmount { source, .. })
                if source.raw_os_error() == Some(libc::EINVAL)
                    && !mounts_under(mp)?.iter().any(|m| m == mp) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// [`unmount_all`] for a target that nothing is mounted below unless something is mounted on
/// it (a container's root filesystem): when one `statx` says `target` is no mount point,
/// `/proc/self/mountinfo` is not read. Not mounted (or missing) is not an error.
pub fn unmount_if_mounted(target: &Path) -> Result<()> {
    let Ok(t) = cstr(target) else {
        return unmount_all(target);
    };
    // SAFETY: statx into a zeroed structure we own, on a valid C string.
    let mut st: libc::statx = unsafe { std::mem::zeroed() };
    let r = unsafe {
        libc::statx(
            libc::AT_FDCWD,
            t.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW | libc::AT_NO_AUTOMOUNT,
            0,
            &mut st,
        )
    };
    let known = r == 0 && st.stx_attributes_mask & libc::STATX_ATTR_MOUNT_ROOT as u64 != 0;
    if known && st.stx_attributes & libc::STATX_ATTR_MOUNT_ROOT as u64 == 0 {
        return Ok(());
    }
    if r != 0 && io::Error::last_os_error().kind() == io::ErrorKind::NotFound {
        return Ok(());
    }
    unmount_all(target)
}

/// Mount points at or below `dir` in this mount namespace, in mount order.
pub fn mounts_under(dir: &Path) -> Result<Vec<PathBuf>> {
    let info = std::fs::read("/proc/self/mountinfo").ctx("read", "/proc/self/mountinfo")?;
    let mut out = Vec::new();
    for line in info.split(|b| *b == b'\n') {
        let Some(mp) = line.split(|b| *b == b' ').nth(4) else {
            continue;
        };
        let mp = PathBuf::from(OsStr::from_bytes(&unescape_mountinfo(mp)));
        if mp.starts_with(dir) {
            out.push(mp);
        }
    }
    Ok(out)
}

/// Decodes mountinfo's octal escapes (`\040` for space and so on).
fn unescape_mountinfo(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'\\' && i + 3 < s.len() + 1 && s[i + 1..].len() >= 3 {
            let oct = &s[i + 1..i + 4];
            if oct.iter().all(|c| (b'0'..=b'7').contains(c)) {
                out.push((oct[0] - b'0') * 64 + (oct[1] - b'0') * 8 + (oct[2] - b'0'));
                i += 4;
                continue;
            }
        }
        out.push(s[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes_are_decoded() {
        assert_eq!(unescape_mountinfo(b"/a\\040b"), b"/a b");
        assert_eq!(unescape_mountinfo(b"/plain\\"), b"/plain\\");
    }

    #[test]
    fn overlay_lowers_are_listed_top_first() {
        let m = Mount {
            kind: "overlay".into(),
            source: "overlay".into(),
            target: PathBuf::new(),
            options: vec!["lowerdir=/a:/b".into(), "upperdir=/u".into()],
        };
        assert_eq!(m.lowers(), vec![PathBuf::from("/a"), PathBuf::from("/b")]);
        assert_eq!(m.option("upperdir"), Some("/u"));
        assert!(!m.is_readonly());
    }
}
