//! `docker cp` without a daemon. Both directions go through a tar stream, as Docker's do:
//! the source is walked through directory descriptors (never a path string of the host for
//! anything inside a container), its entries named as Docker's `TarResourceRebase` names
//! them and renamed by the rules of Docker's `PrepareArchiveCopy` (destination a directory,
//! a file, or missing; `/.` copying a directory's contents), and the stream is unpacked by
//! the layer crate's confined extraction, rooted at a descriptor of the destination
//! directory. A running container's files are reached through its mounted root; a stopped
//! one's snapshot is mounted for the copy and unmounted after.

use std::ffi::{CString, OsStr};
use std::fs;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{self as rfs, Mode, OFlags};

use crate::error::Error;
use crate::lifecycle::Containers;

/// Why a copy failed, in Docker's words (the CLI prints the daemon's with its prefix).
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// A missing container or path, as Docker 20.10's client reports the daemon's 404
    /// (`No such container:path: NAME:PATH`).
    #[error("No such container:path: {container}:{path}")]
    NotFound { path: String, container: String },
    /// The client's `cannot copy directory`.
    #[error("cannot copy directory")]
    CannotCopyDir,
    /// The client's `no such directory`.
    #[error("no such directory")]
    NoSuchDirectory,
    /// Any other daemon-side failure.
    #[error("{0}")]
    Daemon(String),
    /// A failure of the client side (the host's files).
    #[error("{0}")]
    Client(String),
    #[error(transparent)]
    Container(#[from] Error),
}

/// One side of a copy, as the CLI parsed it.
#[derive(Debug, Clone)]
pub struct CopyOptions {
    /// `-a`: keep the UIDs and GIDs of the source (into a container). Docker 20.10 keeps
    /// them without it too when the daemon runs without user namespaces, as strata does.
    pub archive: bool,
    /// `-L`: follow a symbolic link named as the source.
    pub follow_link: bool,
}

/// A path in a container as the Engine API describes it (`X-Docker-Container-Path-Stat`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathStat {
    pub name: String,
    pub size: i64,
    /// Go's `os.FileMode` bits (type in the high bits, then the permissions).
    pub mode: u32,
    /// Seconds since the epoch.
    pub mtime: i64,
    pub link_target: String,
}

/// A Unix mode as Go's `os.FileMode`.
fn go_file_mode(m: u32) -> u32 {
    let mut out = m & 0o777;
    out |= match m & libc::S_IFMT {
        libc::S_IFDIR => 1 << 31,
        libc::S_IFLNK => 1 << 27,
        libc::S_IFIFO => 1 << 25,
        libc::S_IFSOCK => 1 << 24,
        libc::S_IFBLK => 1 << 26,
        libc::S_IFCHR => (1 << 26) | (1 << 21),
        _ => 0,
    };
    if m & libc::S_ISUID != 0 {
        out |= 1 << 23;
    }
    if m & libc::S_ISGID != 0 {
        out |= 1 << 22;
    }
    if m & libc::S_ISVTX != 0 {
        out |= 1 << 20;
    }
    out
}

fn c(p: &[u8]) -> CString {
    CString::new(p).unwrap_or_else(|_| CString::new("?").unwrap_or_default())
}

/// `openat2(RESOLVE_IN_ROOT)` of `path` (absolute, as seen in the container) in `root`:
/// symlinks are followed as if `root` were `/`, `..` never leaves it. `nofollow` leaves a
/// last component that is a symlink unfollowed (its parent is still resolved in the root).
fn open_in_root(root: &OwnedFd, path: &str, nofollow: bool) -> io::Result<OwnedFd> {
    #[repr(C)]
    struct OpenHow {
        flags: u64,
        mode: u64,
        resolve: u64,
    }
    const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
    const RESOLVE_IN_ROOT: u64 = 0x10;
    let (dir, last) = if nofollow {
        let t = path.trim_end_matches('/');
        match t.rsplit_once('/') {
            Some((d, l)) if !l.is_empty() && l != "." && l != ".." => {
                (if d.is_empty() { "/" } else { d }, Some(l))
            }
            _ => (path, None),
        }
    } else {
        (path, None)
    };
    let rel = dir.trim_start_matches('/');
    let rel = if rel.is_empty() { "." } else { rel };
    let how = OpenHow {
        flags: (libc::O_PATH | libc::O_CLOEXEC) as u64,
        mode: 0,
        resolve: RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
    };
    let cpath = c(rel.as_bytes());
    // SAFETY: valid pointers for the call's duration.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            root.as_raw_fd(),
            cpath.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a descriptor the kernel just gave us.
    let dirfd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    match last {
        None => Ok(dirfd),
        Some(l) => Ok(rfs::openat(
            &dirfd,
            c(l.as_bytes()).as_c_str(),
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )?),
    }
}

fn stat_fd(fd: &OwnedFd) -> io::Result<rfs::Stat> {
    Ok(rfs::fstat(fd)?)
}

fn is_dir(st: &rfs::Stat) -> bool {
    st.st_mode & libc::S_IFMT == libc::S_IFDIR
}

fn is_link(st: &rfs::Stat) -> bool {
    st.st_mode & libc::S_IFMT == libc::S_IFLNK
}

/// Docker's `SplitPathDirEntry`: the directory and the last entry of a path (`/a/b/.` →
/// (`/a/b`, `.`)).
fn split_dir_entry(path: &str) -> (String, String) {
    let cleaned = clean(path);
    let (d, b) = match cleaned.rsplit_once('/') {
        Some(("", b)) => ("/".to_string(), b.to_string()),
        Some((d, b)) => (d.to_string(), b.to_string()),
        None => (".".to_string(), cleaned.clone()),
    };
    if path.ends_with("/.") || path == "." {
        return (cleaned, ".".into());
    }
    (d, if b.is_empty() { "/".into() } else { b })
}

/// Go's `filepath.Clean` for absolute and relative paths.
fn clean(path: &str) -> String {
    let abs = path.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for p in path.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                if out.last().is_some_and(|l| *l != "..") {
                    out.pop();
                } else if !abs {
                    out.push("..");
                }
            }
            p => out.push(p),
        }
    }
    let j = out.join("/");
    match (abs, j.is_empty()) {
        (true, _) => format!("/{j}"),
        (false, true) => ".".into(),
        (false, false) => j,
    }
}

/// Whether a path asserts a directory (ends with `/` or `/.`), as Docker's
/// `assertsDirectory`.
fn asserts_directory(path: &str) -> bool {
    path.ends_with('/') || path.ends_with("/.") || path == "."
}

/// The owner the tar entries get: the source's (`None`) or this one.
type Owner = Option<(u64, u64)>;

/// Writes the tree at `fd` (a file, directory, symlink or node, opened `O_PATH`, named
/// `name` in the archive) to `tar`, walking directories through descriptors only.
fn append_tree<W: Write>(
    tar: &mut tar::Builder<W>,
    fd: &OwnedFd,
    name: &str,
    readlink: Option<(&OwnedFd, &str)>,
    owner: Owner,
    check: Option<&str>,
) -> io::Result<()> {
    let st = stat_fd(fd)?;
    let mut h = tar::Header::new_gnu();
    h.set_mode(st.st_mode & 0o7777);
    let (uid, gid) = owner.unwrap_or((st.st_uid as u64, st.st_gid as u64));
    h.set_uid(uid);
    h.set_gid(gid);
    h.set_mtime(st.st_mtime.max(0) as u64);
    match st.st_mode & libc::S_IFMT {
        libc::S_IFDIR => {
            h.set_entry_type(tar::EntryType::Directory);
            h.set_size(0);
            let dname = if name.ends_with('/') || name == "." {
                name.to_string()
            } else {
                format!("{name}/")
            };
            if name != "." {
                tar.append_data(&mut h, &dname, io::empty())?;
            }
            let dir = rfs::openat(
                fd,
                c".",
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )?;
            let mut names: Vec<Vec<u8>> = Vec::new();
            let rd = rfs::Dir::read_from(&dir)?;
            for e in rd {
                let e = e?;
                let n = e.file_name().to_bytes();
                if n != b"." && n != b".." {
                    names.push(n.to_vec());
                }
            }
            names.sort();
            for n in names {
                let child = rfs::openat(
                    &dir,
                    c(&n).as_c_str(),
                    OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )?;
                let cname = String::from_utf8_lossy(&n).into_owned();
                let full = if name == "." {
                    cname.clone()
                } else {
                    format!("{}/{cname}", name.trim_end_matches('/'))
                };
                append_tree(tar, &child, &full, Some((&dir, &cname)), owner, check)?;
            }
        }
        libc::S_IFREG => {
            h.set_entry_type(tar::EntryType::Regular);
            h.set_size(st.st_size as u64);
            // Reopened for reading through its own descriptor: no path is followed.
            let f = fs::File::open(format!("/proc/self/fd/{}", fd.as_raw_fd()))?;
            tar.append_data(&mut h, name, f.take(st.st_size as u64))?;
        }
        libc::S_IFLNK => {
            let target = match readlink {
                Some((dir, n)) => rfs::readlinkat(dir, c(n.as_bytes()).as_c_str(), Vec::new())?,
                None => rfs::readlinkat(fd, c"", Vec::new())?,
            };
            if let Some(dir) = check {
                // Docker's untar refuses a link that would point out of the extraction
                // directory (`..` climbing above it), and stops there.
                if escapes(name, target.as_bytes()) {
                    return Err(io::Error::other(format!(
                        "invalid symlink {:?} -> {:?}",
                        format!("{}/{name}", dir.trim_end_matches('/')),
                        String::from_utf8_lossy(target.as_bytes())
                    )));
                }
            }
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_size(0);
            tar.append_link(&mut h, name, OsStr::from_bytes(target.as_bytes()))?;
        }
        t => {
            let kind = match t {
                libc::S_IFCHR => tar::EntryType::Char,
                libc::S_IFBLK => tar::EntryType::Block,
                libc::S_IFIFO => tar::EntryType::Fifo,
                _ => return Ok(()), // sockets are left out, as Docker's archive does
            };
            h.set_entry_type(kind);
            h.set_size(0);
            let rdev = st.st_rdev;
            h.set_device_major(libc::major(rdev))?;
            h.set_device_minor(libc::minor(rdev))?;
            tar.append_data(&mut h, name, io::empty())?;
        }
    }
    Ok(())
}

/// What a copy source is: where, what, and the name its entries start with.
struct Source {
    fd: OwnedFd,
    /// The directory holding it and its name there (for reading a symlink).
    parent: Option<OwnedFd>,
    base: String,
    is_dir: bool,
}

/// Whether a relative symlink target, resolved lexically from the entry `name`'s
/// directory, climbs above the extraction directory.
fn escapes(name: &str, target: &[u8]) -> bool {
    if target.starts_with(b"/") {
        return false;
    }
    let mut depth: i64 = name
        .trim_end_matches('/')
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .count() as i64
        - 1;
    for c in target.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                depth -= 1;
                if depth < 0 {
                    return true;
                }
            }
            _ => depth += 1,
        }
    }
    false
}

/// Writes `src` as a tar whose top entry is named `top`; `check`: the extraction
/// directory, for Docker's check of symlinks.
fn write_source<W: Write>(
    out: W,
    src: &Source,
    top: &str,
    owner: Owner,
    check: Option<&str>,
) -> io::Result<W> {
    let mut tar = tar::Builder::new(out);
    tar.mode(tar::HeaderMode::Complete);
    let link = src.parent.as_ref().map(|p| (p, src.base.as_str()));
    append_tree(&mut tar, &src.fd, top, link, owner, check)?;
    tar.into_inner()
}

/// The directory a destination path names and the entry name the copy takes there,
/// after Docker's `PrepareArchiveCopy`.
fn prepare(
    src_base: &str,
    src_is_dir: bool,
    dst: &str,
    dst_exists: bool,
    dst_is_dir: bool,
) -> std::result::Result<(String, String), CopyError> {
    let (dst_dir, dst_base) = split_dir_entry(dst);
    if dst_exists && dst_is_dir {
        // Into the directory under the source's own name ("." copies the contents).
        return Ok((dst.to_string(), src_base.to_string()));
    }
    if dst_exists && src_is_dir {
        return Err(CopyError::CannotCopyDir);
    }
    if !dst_exists && !src_is_dir && asserts_directory(dst) {
        return Err(CopyError::NoSuchDirectory);
    }
    Ok((dst_dir, dst_base))
}

/// The root directory of a container's process, as it sees it (`/proc/PID/root`, in its
/// mount namespace), when `init` is still that process (its start time checked after the
/// process directory is open, so a reused PID is never taken).
fn process_root(init: &runtime::InitProcess) -> Option<OwnedFd> {
    let dir = rfs::open(
        format!("/proc/{}", init.pid),
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    if runtime::process_start_time(init.pid).ok()? != init.start_time {
        return None;
    }
    rfs::openat(
        &dir,
        c"root",
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()
}

/// Unpacks `tar` into the directory `dir` (a descriptor), confined to it.
fn unpack_into(dir: &OwnedFd, tar: impl Read) -> layer::Result<()> {
    let path = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
    // Reopened as a real directory: the extraction root is that very directory.
    layer::apply_layer(tar, &path).map(|_| ())
}

impl Containers {
    /// Runs `f` on a descriptor of the container's root as its processes see it: while it
    /// runs, its first process's root (so paths cross the container's own mounts: volumes,
    /// binds and tmpfs); otherwise its snapshot mounted for the call with its volumes and
    /// binds on it (as Docker mounts them for a stopped container; a tmpfs has no content
    /// then). `calls`: the daemon calls Docker's client makes before the copy itself.
    fn with_root<T>(
        &mut self,
        name: &str,
        calls: usize,
        f: impl FnOnce(&OwnedFd, &str) -> std::result::Result<T, CopyError>,
    ) -> std::result::Result<T, CopyError> {
        let rec = self.find(name)?;
        // Docker's daemon mounts the container's volumes for every call of a copy (two for
        // a copy into it: its client stats the destination first), and says so.
        let points = Self::stored(&rec)?.points();
        for _ in 0..calls {
            self.record_volume_events("mount", &rec.id, &points);
            self.record_volume_events("unmount", &rec.id, &points);
        }
        self.record_volume_events("mount", &rec.id, &points);
        let r = self.copy_root(&rec, name, f);
        self.record_volume_events("unmount", &rec.id, &points);
        r
    }

    /// [`Containers::with_root`] once the container is found.
    fn copy_root<T>(
        &mut self,
        rec: &store::ContainerRecord,
        name: &str,
        f: impl FnOnce(&OwnedFd, &str) -> std::result::Result<T, CopyError>,
    ) -> std::result::Result<T, CopyError> {
        if let Some(root) = self.init_process(rec).and_then(|i| process_root(&i)) {
            return f(&root, name);
        }
        let t = self
            .state_dir(&rec.id)
            .join(format!("cp-{}", std::process::id()));
        fs::create_dir_all(&t).map_err(|e| Error::io(&t, e))?;
        let mounts = self.snapshots.mounts(&rec.snapshot).map_err(Error::from)?;
        snapshot::mount_all(&mounts, &t).map_err(Error::from)?;
        let r = self
            .bind_mount_points(rec, &t)
            .and_then(|()| {
                rfs::open(
                    &t,
                    OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| CopyError::Daemon(format!("{}: {e}", t.display())))
            })
            .and_then(|root| f(&root, name));
        let _ = snapshot::unmount_all(&t);
        let _ = fs::remove_dir(&t);
        r
    }

    /// Mounts a stopped container's volumes and binds on its root filesystem at `root`,
    /// parents first.
    fn bind_mount_points(
        &self,
        rec: &store::ContainerRecord,
        root: &Path,
    ) -> std::result::Result<(), CopyError> {
        let stored = Self::stored(rec)?;
        let mounts = self.runtime_mounts(&stored.points(), &stored.options)?;
        // The `/etc` files its start wrote come first (Docker's network mounts), so a
        // volume or bind of the user's at the same path covers them, as it does at start.
        let state = self.state_dir(&rec.id);
        for name in runtime::ETC_FILES {
            let source = state.join(name);
            if source.is_file() {
                let destination = format!("/etc/{name}");
                runtime::bind_in_root(root, &source, &destination).map_err(|e| {
                    CopyError::Daemon(format!("mount {destination}: {}", runtime::io_text(&e)))
                })?;
            }
        }
        for m in mounts {
            if let runtime::MountKind::Bind { source } = &m.kind {
                runtime::bind_in_root(root, source, &m.destination).map_err(|e| {
                    CopyError::Daemon(format!("mount {}: {}", m.destination, runtime::io_text(&e)))
                })?;
            }
        }
        Ok(())
    }

    /// What the Engine API's `HEAD /containers/ID/archive?path=` reports of `path` in the
    /// container (its last component not followed), as Docker's `ContainerPathStat`.
    pub fn stat_path(
        &mut self,
        name: &str,
        path: &str,
    ) -> std::result::Result<PathStat, CopyError> {
        self.with_root(name, 0, |root, cname| {
            let abs = if path.starts_with('/') {
                path.to_string()
            } else {
                format!("/{path}")
            };
            let not_found = || CopyError::NotFound {
                path: path.to_string(),
                container: cname.to_string(),
            };
            let fd = open_in_root(root, &abs, true).map_err(|_| not_found())?;
            let st = stat_fd(&fd).map_err(|e| CopyError::Daemon(runtime::io_text(&e)))?;
            let link_target = if is_link(&st) {
                rfs::readlinkat(&fd, c"", Vec::new())
                    .map(|t| t.to_string_lossy().into_owned())
                    .unwrap_or_default()
            } else {
                String::new()
            };
            let (_, entry) = split_dir_entry(&clean(&abs));
            Ok(PathStat {
                name: if entry.is_empty() || entry == "." {
                    "/".into()
                } else {
                    entry
                },
                size: st.st_size as i64,
                mode: go_file_mode(st.st_mode),
                mtime: st.st_mtime,
                link_target,
            })
        })
    }

    /// `docker cp CONTAINER:SRC DEST|-`: the source's tar to `out` when `dest` is None
    /// (`-`), else unpacked at the host path `dest` owned by this process's user.
    pub fn copy_from(
        &mut self,
        name: &str,
        src: &str,
        dest: Option<&Path>,
        out: &mut dyn Write,
        opts: &CopyOptions,
    ) -> std::result::Result<(), CopyError> {
        let dest = dest.map(Path::to_path_buf);
        self.with_root(name, 0, |root, cname| {
            let not_found = || CopyError::NotFound {
                path: src.to_string(),
                container: cname.to_string(),
            };
            let abs = if src.starts_with('/') {
                src.to_string()
            } else {
                format!("/{src}")
            };
            let fd = open_in_root(root, &abs, !opts.follow_link).map_err(|e| {
                if e.raw_os_error() == Some(libc::ENOENT) {
                    not_found()
                } else {
                    CopyError::Daemon(format!("lstat {abs}: {}", runtime::io_text(&e)))
                }
            })?;
            let st = stat_fd(&fd).map_err(|e| CopyError::Daemon(e.to_string()))?;
            if asserts_directory(src) && !is_dir(&st) {
                return Err(CopyError::Daemon(format!("lstat {abs}: not a directory")));
            }
            let (_, base) = split_dir_entry(&abs);
            // The archive names entries after the source (the link's own name with -L).
            let base = if base == "/" { ".".to_string() } else { base };
            let parent = if is_link(&st) {
                let (d, _) = split_dir_entry(&abs);
                open_in_root(root, &d, false).ok()
            } else {
                None
            };
            let source = Source {
                fd,
                parent,
                base: base.clone(),
                is_dir: is_dir(&st),
            };
            let Some(dest) = &dest else {
                write_source(&mut *out, &source, &base, None, None)
                    .map_err(|e| CopyError::Client(e.to_string()))?;
                return Ok(());
            };
            // The host side: Docker's CopyInfoDestinationPath.
            let dstr = dest.to_string_lossy().into_owned();
            let (exists, dst_is_dir) = match fs::metadata(dest) {
                Ok(m) => (true, m.is_dir()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    let (parent, _) = split_dir_entry(&dstr);
                    match fs::metadata(&parent) {
                        Ok(m) if m.is_dir() => (false, false),
                        Ok(_) => return Err(CopyError::Client("not a directory".into())),
                        Err(e) => {
                            return Err(CopyError::Client(format!(
                                "stat {parent}: {}",
                                runtime::io_text(&e)
                            )))
                        }
                    }
                }
                Err(e) => {
                    return Err(CopyError::Client(format!(
                        "stat {dstr}: {}",
                        runtime::io_text(&e)
                    )))
                }
            };
            let (dir, entry) = prepare(&base, source.is_dir, &dstr, exists, dst_is_dir)?;
            let dirfd = rfs::open(
                Path::new(&dir),
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| CopyError::Client(format!("{dir}: {e}")))?;
            // SAFETY: geteuid/getegid have no preconditions.
            let me = unsafe { (libc::geteuid() as u64, libc::getegid() as u64) };
            let shown = std::path::absolute(&dir)
                .map(|p| clean(&p.to_string_lossy()))
                .unwrap_or_else(|_| dir.clone());
            stream_copy(&source, &entry, Some(me), &dirfd, &shown).map_err(CopyError::Client)
        })
    }

    /// `docker cp SRC|- CONTAINER:DEST`: the host path `src` (None: a tar archive read from
    /// `input`) copied into the container with the source's owners (as Docker 20.10).
    pub fn copy_to(
        &mut self,
        name: &str,
        src: Option<&Path>,
        input: &mut dyn Read,
        dest: &str,
        opts: &CopyOptions,
    ) -> std::result::Result<(), CopyError> {
        let src = src.map(Path::to_path_buf);
        self.with_root(name, 1, |root, cname| {
            let abs = if dest.starts_with('/') {
                dest.to_string()
            } else {
                format!("/{dest}")
            };
            // The destination as the client stats it: symlinks followed, in the root.
            let (exists, dst_is_dir) = match open_in_root(root, &abs, false) {
                Ok(fd) => (
                    true,
                    is_dir(&stat_fd(&fd).map_err(|e| CopyError::Daemon(e.to_string()))?),
                ),
                Err(_) => (false, false),
            };
            let dir_fd = |dir: &str| {
                open_in_root(root, dir, false)
                    .ok()
                    .filter(|fd| stat_fd(fd).map(|s| is_dir(&s)).unwrap_or(false))
                    .ok_or_else(|| CopyError::NotFound {
                        path: clean(dir),
                        container: cname.to_string(),
                    })
            };
            // Docker 20.10 keeps the archive's owners either way (`-a` only matters with
            // user namespaces, which strata does not use).
            let owner: Owner = None;
            let Some(src) = &src else {
                if !dst_is_dir {
                    return Err(CopyError::Client(format!(
                        "destination \"{cname}:{dest}\" must be a directory"
                    )));
                }
                let target = dir_fd(&abs)?;
                return unpack_into(&target, input).map_err(|e| {
                    CopyError::Daemon(format!("Error processing tar file(exit status 1): {e}"))
                });
            };
            // The host source: Docker's CopyInfoSourcePath.
            let sstr = src.to_string_lossy().into_owned();
            let meta = if opts.follow_link {
                fs::metadata(src)
            } else {
                fs::symlink_metadata(src)
            }
            .map_err(|e| CopyError::Client(format!("lstat {sstr}: {}", runtime::io_text(&e))))?;
            if asserts_directory(&sstr) && !meta.is_dir() {
                return Err(CopyError::Client(format!("lstat {sstr}: not a directory")));
            }
            let (sdir, sbase) = split_dir_entry(&sstr);
            let parent = rfs::open(
                Path::new(&sdir),
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| CopyError::Client(format!("{sdir}: {e}")))?;
            let flags = if opts.follow_link {
                OFlags::PATH | OFlags::CLOEXEC
            } else {
                OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC
            };
            let fd = if sbase == "." {
                rfs::openat(&parent, c".", flags, Mode::empty())
            } else {
                rfs::openat(
                    &parent,
                    c(sbase.as_bytes()).as_c_str(),
                    flags,
                    Mode::empty(),
                )
            }
            .map_err(|e| CopyError::Client(format!("{sstr}: {e}")))?;
            let source = Source {
                fd,
                parent: Some(parent),
                base: sbase.clone(),
                is_dir: meta.is_dir(),
            };
            let (dir, entry) = prepare(&sbase, source.is_dir, &abs, exists, dst_is_dir)?;
            let target = dir_fd(&dir)?;
            stream_copy(&source, &entry, owner, &target, &clean(&dir)).map_err(|e| {
                CopyError::Daemon(format!("Error processing tar file(exit status 1): {e}"))
            })
        })
    }
}

/// Streams `source` as a tar (top entry `entry`) into the directory `target`.
fn stream_copy(
    source: &Source,
    entry: &str,
    owner: Owner,
    target: &OwnedFd,
    dir: &str,
) -> std::result::Result<(), String> {
    let (r, w) = io::pipe().map_err(|e| e.to_string())?;
    std::thread::scope(|s| {
        let h = s.spawn(move || unpack_into(target, r));
        let written = write_source(w, source, entry, owner, Some(dir)).map(drop);
        let unpacked = h
            .join()
            .unwrap_or_else(|_| Err(layer::LayerError::Truncated("extraction failed".into())));
        written.map_err(|e| e.to_string())?;
        unpacked.map_err(|e| e.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_and_rebase_as_dockers() {
        assert_eq!(split_dir_entry("/d/f"), ("/d".into(), "f".into()));
        assert_eq!(split_dir_entry("/d/."), ("/d".into(), ".".into()));
        assert_eq!(split_dir_entry("/d/"), ("/".into(), "d".into()));
        assert_eq!(split_dir_entry("x"), (".".into(), "x".into()));
        assert!(matches!(
            prepare("d", true, "/f", true, false),
            Err(CopyError::CannotCopyDir)
        ));
        assert!(matches!(
            prepare("f", false, "/nodir/", false, false),
            Err(CopyError::NoSuchDirectory)
        ));
        assert_eq!(
            prepare("f", false, "/x/new", false, false).unwrap(),
            ("/x".into(), "new".into())
        );
        assert_eq!(
            prepare("d", true, "/x", true, true).unwrap(),
            ("/x".into(), "d".into())
        );
    }
}
