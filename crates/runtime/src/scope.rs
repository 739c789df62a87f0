//! Resolving paths inside a root filesystem without escaping it.
//!
//! [`secure_join`] follows symlinks (absolute or with `..`) as if the root were `/`, like
//! Docker's `FollowSymlinkInScope`, by path strings: only for reading the image's own files.
//!
//! [`resolve_in_root`] is what mount targets use: a walk through directory descriptors, each
//! opened with `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)` on the
//! part already resolved, reading every symlink itself (at most 40, as the kernel), creating
//! missing components with `mkdirat`/`openat` on the parent's descriptor (never through a path
//! string), and returning the symlink-free path relative to the root. The child re-opens that
//! path with `RESOLVE_NO_SYMLINKS`, so a component swapped for a symlink in between makes the
//! mount fail instead of landing outside.

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// The kernel's limit of symlinks followed in one lookup (`MAXSYMLINKS`).
pub(crate) const MAX_SYMLINKS: usize = 40;

pub(crate) const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
pub(crate) const RESOLVE_NO_SYMLINKS: u64 = 0x04;
pub(crate) const RESOLVE_IN_ROOT: u64 = 0x10;

/// `struct open_how` of openat2(2).
#[repr(C)]
pub(crate) struct OpenHow {
    pub(crate) flags: u64,
    pub(crate) mode: u64,
    pub(crate) resolve: u64,
}

/// openat2(2); raw, async-signal-safe (the child uses it too). Returns the fd or -errno.
pub(crate) fn openat2(dirfd: RawFd, path: &std::ffi::CStr, flags: i32, resolve: u64) -> RawFd {
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC) as u64,
        mode: 0,
        resolve,
    };
    // SAFETY: valid C string and open_how structure.
    let r = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dirfd,
            path.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    };
    if r < 0 {
        // SAFETY: reading errno.
        -unsafe { *libc::__errno_location() }
    } else {
        r as RawFd
    }
}

/// `path` (absolute, inside the container) resolved under `root`, following symlinks within
/// `root`. Missing components are kept as they are (for paths about to be created).
pub fn secure_join(root: &Path, path: &str) -> PathBuf {
    let mut pending: Vec<OsString> = components(Path::new(path));
    pending.reverse();
    let mut resolved: Vec<OsString> = Vec::new();
    let mut links = 0;
    while let Some(c) = pending.pop() {
        if c == ".." {
            resolved.pop();
            continue;
        }
        let candidate = resolved
            .iter()
            .fold(root.to_path_buf(), |p, c| p.join(c))
            .join(&c);
        match std::fs::read_link(&candidate) {
            Ok(target) if links < 255 => {
                links += 1;
                if target.is_absolute() {
                    resolved.clear();
                }
                let mut t = components(&target);
                t.reverse();
                pending.extend(t);
            }
            _ => resolved.push(c),
        }
    }
    resolved.iter().fold(root.to_path_buf(), |p, c| p.join(c))
}

fn components(p: &Path) -> Vec<OsString> {
    p.components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect()
}

/// Why a path could not be resolved inside a root.
#[derive(Debug)]
pub(crate) struct ResolveError {
    /// What went wrong, naming the path.
    pub(crate) reason: String,
    pub(crate) source: io::Error,
}

/// What to create when the last component is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Leaf {
    Dir,
    File,
}

fn c(s: &OsStr) -> CString {
    // Components come from a Rust path and never hold NUL (checked by the caller's `cs`).
    CString::new(s.as_bytes()).unwrap_or_default()
}

/// Opens the already resolved, symlink-free directory `rel` under `rootfd`.
fn open_dir(rootfd: RawFd, rel: &[OsString]) -> io::Result<OwnedFd> {
    let joined: PathBuf = rel.iter().collect();
    let p = if rel.is_empty() {
        c(OsStr::new("."))
    } else {
        c(joined.as_os_str())
    };
    let fd = openat2(
        rootfd,
        &p,
        libc::O_PATH | libc::O_DIRECTORY,
        RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
    );
    if fd < 0 {
        return Err(io::Error::from_raw_os_error(-fd));
    }
    // SAFETY: a fresh descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Resolves `path` (absolute, inside the container) in the root filesystem open as `rootfd`
/// (at `root` on the host), creating what is missing (directories, and the last component as
/// `leaf`), and returns it relative to the root without any symlink. Everything created is
/// pushed to `created` (host paths). More than [`MAX_SYMLINKS`] symlinks is an error.
pub(crate) fn resolve_in_root(
    root: &Path,
    rootfd: &OwnedFd,
    path: &str,
    leaf: Leaf,
    created: &mut Vec<PathBuf>,
) -> Result<PathBuf, ResolveError> {
    let err = |what: &str, source: io::Error| ResolveError {
        reason: format!("resolve {path} in the root filesystem: {what}"),
        source,
    };
    let mut pending: std::collections::VecDeque<OsString> =
        components(Path::new(path)).into_iter().collect();
    let mut resolved: Vec<OsString> = Vec::new();
    let mut links = 0;
    let mut attempts = 0;
    while let Some(comp) = pending.pop_front() {
        if comp == ".." {
            resolved.pop();
            continue;
        }
        let dir = open_dir(rootfd.as_raw_fd(), &resolved).map_err(|e| {
            let shown: PathBuf = resolved.iter().collect();
            err(&format!("open /{}", shown.display()), e)
        })?;
        let name = c(&comp);
        // SAFETY: fstatat on a valid descriptor and C string into a zeroed stat.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        let r = unsafe {
            libc::fstatat(
                dir.as_raw_fd(),
                name.as_ptr(),
                &mut st,
                libc::AT_SYMLINK_NOFOLLOW,
            )
        };
        if r == 0 {
            match st.st_mode & libc::S_IFMT {
                libc::S_IFLNK => {
                    links += 1;
                    if links > MAX_SYMLINKS {
                        return Err(err(
                            &format!("more than {MAX_SYMLINKS} symbolic links"),
                            io::Error::from_raw_os_error(libc::ELOOP),
                        ));
                    }
                    let mut buf = vec![0u8; libc::PATH_MAX as usize];
                    // SAFETY: readlinkat into a buffer of the given size.
                    let n = unsafe {
                        libc::readlinkat(
                            dir.as_raw_fd(),
                            name.as_ptr(),
                            buf.as_mut_ptr().cast(),
                            buf.len(),
                        )
                    };
                    if n < 0 {
                        return Err(err("read symbolic link", io::Error::last_os_error()));
                    }
                    buf.truncate(n as usize);
                    let target = PathBuf::from(OsStr::from_bytes(&buf));
                    if target.is_absolute() {
                        resolved.clear();
                    }
                    for t in components(&target).into_iter().rev() {
                        pending.push_front(t);
                    }
                }
                libc::S_IFDIR => resolved.push(comp),
                _ if pending.is_empty() => resolved.push(comp),
                _ => {
                    return Err(err(
                        "not a directory",
                        io::Error::from_raw_os_error(libc::ENOTDIR),
                    ))
                }
            }
            continue;
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::ENOENT) {
            return Err(err("stat", e));
        }
        // Missing: create it through the parent's descriptor.
        // SAFETY: *at calls on a valid descriptor and C string.
        let r = unsafe {
            if pending.is_empty() && leaf == Leaf::File {
                let fd = libc::openat(
                    dir.as_raw_fd(),
                    name.as_ptr(),
                    libc::O_CREAT
                        | libc::O_EXCL
                        | libc::O_WRONLY
                        | libc::O_NOFOLLOW
                        | libc::O_CLOEXEC,
                    0o755,
                );
                if fd >= 0 {
                    libc::close(fd);
                    0
                } else {
                    -1
                }
            } else {
                libc::mkdirat(dir.as_raw_fd(), name.as_ptr(), 0o755)
            }
        };
        if r != 0 {
            let e = io::Error::last_os_error();
            attempts += 1;
            if e.raw_os_error() == Some(libc::EEXIST) && attempts < 100 {
                // Appeared meanwhile: look again.
                pending.push_front(comp);
                continue;
            }
            return Err(err("create mount point", e));
        }
        resolved.push(comp);
        created.push(resolved.iter().fold(root.to_path_buf(), |p, c| p.join(c)));
    }
    Ok(resolved.iter().collect())
}

/// Bind-mounts `source` (a host directory or file) at `destination` (absolute, inside the
/// root filesystem mounted at `root`), the target resolved and, where missing, created inside
/// the root as a container's mount targets are (never outside it), and mounted through its
/// descriptor. For work on a stopped container's files with its volumes (`cp`); the caller
/// unmounts it with the root.
pub fn bind_in_root(root: &Path, source: &Path, destination: &str) -> io::Result<()> {
    let rootfd = open_root(root)?;
    let dir = source.is_dir();
    let leaf = if dir { Leaf::Dir } else { Leaf::File };
    let rel = resolve_in_root(root, &rootfd, destination, leaf, &mut Vec::new())
        .map_err(|e| io::Error::new(e.source.kind(), e.reason))?;
    let rel = if rel.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        rel
    };
    let cpath = CString::new(rel.as_os_str().as_bytes())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let flags = libc::O_PATH | if dir { libc::O_DIRECTORY } else { 0 };
    let fd = openat2(
        rootfd.as_raw_fd(),
        &cpath,
        flags,
        RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
    );
    if fd < 0 {
        return Err(io::Error::from_raw_os_error(-fd));
    }
    // SAFETY: a fresh descriptor we own.
    let target = unsafe { OwnedFd::from_raw_fd(fd) };
    let src = CString::new(source.as_os_str().as_bytes())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let at = CString::new(format!("/proc/self/fd/{}", target.as_raw_fd()))
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: valid C strings; a bind mount onto the descriptor's own inode.
    if unsafe {
        libc::mount(
            src.as_ptr(),
            at.as_ptr(),
            std::ptr::null(),
            libc::MS_BIND | libc::MS_REC,
            std::ptr::null(),
        )
    } != 0
    {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Opens a root filesystem directory as an `O_PATH` descriptor.
pub(crate) fn open_root(root: &Path) -> io::Result<OwnedFd> {
    let p = CString::new(root.as_os_str().as_bytes())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: valid C string.
    let fd = unsafe {
        libc::open(
            p.as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinks_stay_inside_the_root() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        std::fs::create_dir_all(r.join("real/etc")).unwrap();
        std::os::unix::fs::symlink("/real/etc", r.join("etc")).unwrap();
        std::os::unix::fs::symlink("../../../../outside", r.join("real/esc")).unwrap();
        assert_eq!(secure_join(r, "/etc/passwd"), r.join("real/etc/passwd"));
        assert_eq!(secure_join(r, "/real/esc/x"), r.join("outside/x"));
        assert_eq!(secure_join(r, "/../../x"), r.join("x"));
        assert_eq!(secure_join(r, "/new/dir"), r.join("new/dir"));
    }

    #[test]
    fn mount_targets_are_resolved_and_created_inside_the_root() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path().join("root");
        std::fs::create_dir_all(r.join("real/etc")).unwrap();
        std::os::unix::fs::symlink("/real/etc", r.join("etc")).unwrap();
        std::os::unix::fs::symlink("../../../../outside", r.join("real/esc")).unwrap();
        std::os::unix::fs::symlink(t.path().join("host"), r.join("abs")).unwrap();
        let fd = open_root(&r).unwrap();
        let mut created = Vec::new();
        let mut res = |p: &str, leaf| resolve_in_root(&r, &fd, p, leaf, &mut created);
        assert_eq!(
            res("/etc/hosts", Leaf::File).unwrap(),
            Path::new("real/etc/hosts")
        );
        assert!(r.join("real/etc/hosts").is_file());
        assert_eq!(
            res("/real/esc/x", Leaf::Dir).unwrap(),
            Path::new("outside/x")
        );
        assert!(r.join("outside/x").is_dir());
        let abs = res("/abs/y", Leaf::Dir).unwrap();
        assert_eq!(abs, t.path().join("host/y").strip_prefix("/").unwrap());
        assert!(
            !t.path().join("host").exists(),
            "nothing created on the host"
        );
        assert!(r.join(&abs).is_dir());
        for i in 0..50 {
            std::os::unix::fs::symlink(format!("/l{}", i + 1), r.join(format!("l{i}"))).unwrap();
        }
        let e = res("/l0", Leaf::Dir).unwrap_err();
        assert_eq!(e.source.raw_os_error(), Some(libc::ELOOP));
        assert!(e.reason.contains("/l0"), "{}", e.reason);
        assert_eq!(res("/l10", Leaf::Dir).unwrap(), Path::new("l50"));
        assert!(created.contains(&r.join("outside")));
    }
}
