//! Carrying out COPY and ADD in a step's mounted root filesystem: Docker's rules for the
//! destination (a trailing `/`, several sources, an existing directory), owners from the
//! image's own `/etc/passwd` and `/etc/group`, modes and mtimes kept, symlinks copied as
//! symlinks, hardlinks kept, local archives unpacked by ADD. Every path in the image is
//! resolved inside its root, even through the image's own symlinks.

use std::collections::HashMap;
use std::ffi::{CStr, CString, OsStr};
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rustix::fs::{
    AtFlags, FileType, Gid, Mode, OFlags, StatxFlags, Timespec, Timestamps, Uid, CWD,
};
use rustix::io::Errno;

use crate::context::{Context, EntryReader, Source};
use crate::files::{open_dir, open_file_at, stat_at, stat_fd, DataCopier, Meta, BIG_FILE};
use crate::pool::lock;

pub struct CopyRequest<'a> {
    pub context: &'a Context,
    pub sources: &'a [Source],
    pub rootfs: &'a Path,
    /// Absolute destination inside the image.
    pub dest: &'a str,
    /// The destination names a directory (trailing `/`, or several sources).
    pub dest_is_dir_hint: bool,
    pub chown: Option<&'a str>,
    pub chmod: Option<&'a str>,
    pub extract_archives: bool,
    /// The snapshot's upper directory while it is mounted as an overlay: a directory this
    /// COPY makes holds nothing of the lower layers, so what goes under it is written straight
    /// into the upper directory, at the file system's own speed, instead of through overlayfs
    /// (nothing reads it through the mount before it is unmounted).
    pub upper: Option<&'a Path>,
}

type R<T> = std::result::Result<T, String>;

/// Resolves `path` (absolute, in the image) to a host path under `rootfs`, following the
/// image's symlinks inside the root; the last component is followed only when `follow_last`.
pub fn resolve_in_root(rootfs: &Path, path: &str, follow_last: bool) -> PathBuf {
    let mut done: Vec<String> = Vec::new();
    let mut todo: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .rev()
        .map(str::to_string)
        .collect();
    let mut hops = 0;
    while let Some(c) = todo.pop() {
        match c.as_str() {
            "." => continue,
            ".." => {
                done.pop();
                continue;
            }
            _ => {}
        }
        done.push(c);
        if todo.is_empty() && !follow_last {
            break;
        }
        let host = rootfs.join(done.join("/"));
        if let Ok(md) = fs::symlink_metadata(&host) {
            if md.file_type().is_symlink() && hops < 255 {
                hops += 1;
                if let Ok(t) = fs::read_link(&host) {
                    done.pop();
                    let t = t.to_string_lossy().into_owned();
                    if t.starts_with('/') {
                        done.clear();
                    }
                    for part in t.split('/').filter(|s| !s.is_empty()).rev() {
                        todo.push(part.to_string());
                    }
                }
            }
        }
    }
    rootfs.join(done.join("/"))
}

/// `mkdir -p` of an image path inside the root; returns whether anything was created.
pub fn mkdir_all_in_root(rootfs: &Path, path: &str, owner: Option<(u32, u32)>) -> R<bool> {
    let mut cur = String::new();
    let mut created = false;
    for c in path.split('/').filter(|s| !s.is_empty()) {
        cur.push('/');
        cur.push_str(c);
        let host = resolve_in_root(rootfs, &cur, true);
        match fs::symlink_metadata(&host) {
            Ok(md) if md.is_dir() => continue,
            Ok(_) => return Err(format!("mkdir {cur}: not a directory")),
            Err(_) => {
                fs::create_dir(&host).map_err(|e| format!("mkdir {cur}: {e}"))?;
                fs::set_permissions(&host, fs::Permissions::from_mode(0o755))
                    .map_err(|e| e.to_string())?;
                if let Some((u, g)) = owner {
                    std::os::unix::fs::lchown(&host, Some(u), Some(g))
                        .map_err(|e| e.to_string())?;
                }
                created = true;
            }
        }
    }
    Ok(created)
}

fn lookup(rootfs: &Path, file: &str, name: &str) -> Option<(u32, u32)> {
    let f = fs::File::open(resolve_in_root(rootfs, file, true)).ok()?;
    for line in BufReader::new(f).lines().map_while(Result::ok) {
        let fields: Vec<&str> = line.split(':').collect();
        if fields.len() >= 3 && fields[0] == name {
            let id = fields[2].parse().ok()?;
            let gid = fields.get(3).and_then(|g| g.parse().ok()).unwrap_or(id);
            return Some((id, gid));
        }
    }
    None
}

/// Why a `--chown` value cannot be used, in the words of Docker 20.10's classic builder.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChownError {
    #[error(
        "unable to convert uid/gid chown string to host mapping: invalid chown string format: {0}"
    )]
    Format(String),
    #[error("unable to convert uid/gid chown string to host mapping: can't find uid for user {0}: no such user: {0}")]
    NoSuchUser(String),
    #[error("unable to convert uid/gid chown string to host mapping: can't find gid for group {0}: no such group: {0}")]
    NoSuchGroup(String),
}

/// `--chown=user[:group]` through the image's passwd and group files, as Docker 20.10's
/// classic builder resolves it (`parseChownFlag`): a number is an ID, a name is looked up,
/// and without a group the user's word is the group's too (so `nobody` needs a group
/// `nobody`).
pub fn parse_chown(rootfs: &Path, spec: &str) -> Result<(u32, u32), ChownError> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (user, group) = match parts.as_slice() {
        [u] => (*u, *u),
        [u, g] => (*u, *g),
        _ => return Err(ChownError::Format(spec.to_string())),
    };
    // Go's strconv.Atoi: an optional sign, then digits.
    let number = |s: &str| s.parse::<i64>().ok().map(|n| n as u32);
    let uid = match number(user) {
        Some(u) => u,
        None => lookup(rootfs, "/etc/passwd", user)
            .map(|(id, _)| id)
            .ok_or_else(|| ChownError::NoSuchUser(user.to_string()))?,
    };
    let gid = match number(group) {
        Some(g) => g,
        None => lookup(rootfs, "/etc/group", group)
            .map(|(id, _)| id)
            .ok_or_else(|| ChownError::NoSuchGroup(group.to_string()))?,
    };
    Ok((uid, gid))
}

/// `--chmod`: an octal mode, or symbolic clauses as BuildKit accepts (`u+x,go-w`, `a=rX`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chmod {
    Octal(u32),
    Symbolic(Vec<(u32, char, u32, bool)>),
}

impl Chmod {
    /// The mode a file of mode `old` (permission bits) gets.
    pub fn apply(&self, old: u32, is_dir: bool) -> u32 {
        match self {
            Chmod::Octal(m) => *m,
            Chmod::Symbolic(clauses) => {
                let mut mode = old & 0o7777;
                for (who, op, perms, big_x) in clauses {
                    let mut bits = perms & who;
                    if *big_x && (is_dir || old & 0o111 != 0) {
                        bits |= 0o111 & who;
                    }
                    match op {
                        '+' => mode |= bits,
                        '-' => mode &= !bits,
                        _ => mode = (mode & !who) | bits,
                    }
                }
                mode
            }
        }
    }
}

pub fn parse_chmod(spec: &str) -> R<Chmod> {
    if spec.bytes().all(|b| b.is_ascii_digit()) {
        return u32::from_str_radix(spec, 8)
            .ok()
            .filter(|m| *m <= 0o7777)
            .map(Chmod::Octal)
            .ok_or_else(|| format!("invalid chmod parameter {spec:?}"));
    }
    let bad = || format!("invalid chmod parameter {spec:?}");
    let mut clauses = Vec::new();
    for clause in spec.split(',') {
        let op_at = clause.find(['+', '-', '=']).ok_or_else(bad)?;
        let (who_s, rest) = clause.split_at(op_at);
        let mut who = 0;
        for c in who_s.chars() {
            who |= match c {
                'u' => 0o4700,
                'g' => 0o2070,
                'o' => 0o1007,
                'a' => 0o7777,
                _ => return Err(bad()),
            };
        }
        if who == 0 {
            who = 0o7777;
        }
        let mut chars = rest.chars();
        let op = chars.next().ok_or_else(bad)?;
        let (mut perms, mut big_x) = (0, false);
        for c in chars {
            perms |= match c {
                'r' => 0o444,
                'w' => 0o222,
                'x' => 0o111,
                'X' => {
                    big_x = true;
                    0
                }
                's' => 0o6000,
                't' => 0o1000,
                _ => return Err(bad()),
            };
        }
        clauses.push((who, op, perms, big_x));
    }
    Ok(Chmod::Symbolic(clauses))
}

/// The uncompressed stream of a local archive ADD unpacks: plain, gzip, zstd (the layer
/// formats), bzip2 or xz.
fn archive_stream(path: &Path) -> std::io::Result<Box<dyn Read>> {
    let mut f = BufReader::new(fs::File::open(path)?);
    let magic = f.fill_buf()?.to_vec();
    if magic.starts_with(b"BZh") {
        return Ok(Box::new(bzip2::bufread::MultiBzDecoder::new(f)));
    }
    if magic.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
        return Ok(Box::new(xz2::bufread::XzDecoder::new_multi_decoder(f)));
    }
    layer::decompress(f)
        .map(|(_, r)| r)
        .map_err(std::io::Error::other)
}

/// Whether ADD should unpack the file: it is a tar, possibly compressed.
fn is_archive(path: &Path) -> bool {
    let Ok(mut plain) = archive_stream(path) else {
        return false;
    };
    let mut head = [0u8; 512];
    let mut got = 0;
    while got < 512 {
        match plain.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(_) => return false,
        }
    }
    got == 512 && (&head[257..262] == b"ustar")
}

/// Work for the threads of a tree copy.
enum CopyTask {
    /// A directory: its context path, its host path, and the (existing) directory its entries
    /// go into, with its depth below the copy's root.
    Dir {
        rel: String,
        src: PathBuf,
        dst: PathBuf,
        depth: usize,
    },
    /// A big file, copied on its own.
    File {
        src: PathBuf,
        dst: PathBuf,
        md: Meta,
    },
}

/// One copying thread's buffers.
struct CopyWorker {
    entries: EntryReader,
    /// For read/write copies.
    buf: Vec<u8>,
}

impl CopyWorker {
    fn new() -> CopyWorker {
        CopyWorker {
            entries: EntryReader::new(),
            buf: Vec::new(),
        }
    }
}

struct Copier<'a> {
    owner: (u32, u32),
    chmod: Option<Chmod>,
    rootfs: &'a Path,
    /// A directory this COPY made in the mounted root, and the same directory in the
    /// snapshot's upper directory: everything under it is written there directly (see
    /// [`CopyRequest::upper`]).
    direct: Option<(PathBuf, PathBuf)>,
    /// The first copy of each file with several links, by (device, inode).
    links: Mutex<HashMap<(u64, u64), PathBuf>>,
    /// Links to make once every file is copied: (first copy, link).
    later_links: Mutex<Vec<(PathBuf, PathBuf)>>,
    /// Directories copied, with their depth and source metadata: owner, mode and mtime are set
    /// last, deepest first (adding entries to a directory moves its mtime).
    dirs: Mutex<Vec<(usize, PathBuf, Meta)>>,
    data: DataCopier,
    /// The process's umask (when /proc tells) and effective user and group.
    umask: Option<u32>,
    ids: (u32, u32),
}

/// What a file made in one destination directory gets without being told: the group (the
/// directory's when it is set-group-ID), and whether a default ACL may change its mode.
#[derive(Clone, Copy)]
struct DirRules {
    gid: u32,
    default_acl: bool,
}

/// The umask, from /proc (reading it with umask(2) would change it for a moment).
fn current_umask() -> Option<u32> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("Umask:"))?;
    u32::from_str_radix(line.trim(), 8).ok()
}

/// Where an entry goes: the open directory, the name in it, and the whole path (for
/// messages and links).
type Target<'a> = (BorrowedFd<'a>, &'a CStr, &'a Path);

fn os(name: &CStr) -> &OsStr {
    OsStr::from_bytes(name.to_bytes())
}

fn cpath(p: &Path) -> R<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| format!("{}: NUL in path", p.display()))
}

/// Splits a path into its parent directory and last name.
fn split(p: &Path) -> R<(&Path, CString)> {
    match (p.parent(), p.file_name()) {
        (Some(dir), Some(name)) => Ok((
            dir,
            CString::new(name.as_bytes()).map_err(|_| format!("{}: NUL in path", p.display()))?,
        )),
        _ => Err(format!("{}: not a file name", p.display())),
    }
}

fn timestamps((s, ns): (i64, u32)) -> Timestamps {
    let t = Timespec {
        tv_sec: s,
        tv_nsec: ns as _,
    };
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}

fn at_path(p: &Path) -> impl Fn(std::io::Error) -> String + '_ {
    move |e| format!("{}: {e}", p.display())
}

impl Copier<'_> {
    /// Where a host path under the mounted root is written: in the upper directory when it
    /// lies under the directory this COPY made.
    fn place(&self, host: &Path) -> PathBuf {
        if let Some((made, upper)) = &self.direct {
            if let Ok(rest) = host.strip_prefix(made) {
                return upper.join(rest);
            }
        }
        host.to_path_buf()
    }

    /// The mode a copy of an entry with `md` gets.
    fn mode(&self, md: &Meta) -> Mode {
        let m = self
            .chmod
            .as_ref()
            .map(|c| c.apply(md.mode, md.is_dir()))
            .unwrap_or(md.perm());
        Mode::from_raw_mode(m)
    }

    /// The rules of the open destination directory `dir`.
    fn rules(&self, dir: BorrowedFd<'_>) -> R<DirRules> {
        let md = stat_fd(dir).map_err(|e| e.to_string())?;
        let default_acl = !matches!(
            rustix::fs::fgetxattr_query(dir, c"system.posix_acl_default"),
            Err(Errno::NODATA | Errno::OPNOTSUPP)
        );
        Ok(DirRules {
            gid: if md.mode & 0o2000 != 0 {
                md.gid
            } else {
                self.ids.1
            },
            default_acl,
        })
    }

    fn uid_gid(&self) -> (Option<Uid>, Option<Gid>) {
        (
            Some(Uid::from_raw(self.owner.0)),
            Some(Gid::from_raw(self.owner.1)),
        )
    }

    /// Copies the entries of the context directory `rel` into the existing directory `dst`,
    /// skipping what `.dockerignore` excludes, with several threads.
    fn copy_dir_contents(&self, ctx: &Context, rel: &str, dst: &Path) -> R<()> {
        let workers = crate::pool::workers();
        let first = CopyTask::Dir {
            rel: rel.to_string(),
            src: ctx.path_of(rel),
            dst: dst.to_path_buf(),
            depth: 0,
        };
        crate::pool::run(
            vec![first],
            workers,
            CopyWorker::new,
            |w, task, queue| match task {
                CopyTask::Dir {
                    rel,
                    src,
                    dst,
                    depth,
                } => self.copy_dir_entries(ctx, w, queue, &rel, &src, &dst, depth, workers > 1),
                CopyTask::File { src, dst, md } => {
                    let (sdir, sname) = split(&src)?;
                    let (ddir, dname) = split(&dst)?;
                    let sfd = open_dir(sdir).map_err(at_path(sdir))?;
                    let dfd = open_dir(ddir).map_err(at_path(ddir))?;
                    let rules = self.rules(dfd.as_fd())?;
                    let to = (dfd.as_fd(), dname.as_c_str(), dst.as_path());
                    self.copy_file(sfd.as_fd(), &sname, to, rules, &md, &mut w.buf)
                }
            },
        )?;
        self.finish()
    }

    /// Copies the entries of one directory: directories are made and queued, big files queued
    /// (when other threads can take them), the rest copied here.
    #[allow(clippy::too_many_arguments)]
    fn copy_dir_entries(
        &self,
        ctx: &Context,
        w: &mut CopyWorker,
        queue: &crate::pool::Queue<CopyTask>,
        rel: &str,
        src: &Path,
        dst: &Path,
        depth: usize,
        share_big: bool,
    ) -> R<()> {
        let sfd = open_dir(src).map_err(at_path(src))?;
        let dfd = open_dir(dst).map_err(at_path(dst))?;
        let rules = self.rules(dfd.as_fd())?;
        let CopyWorker { entries, buf } = w;
        let err = |p: &str, e| format!("{}: {e}", ctx.path_of(p).display());
        ctx.each_entry(entries, sfd.as_fd(), rel, err, |child, name, md| {
            let to = dst.join(os(name));
            match md.file_type() {
                FileType::Directory => {
                    self.make_dir_at(dfd.as_fd(), name, &to)?;
                    lock(&self.dirs).push((depth + 1, to.clone(), *md));
                    queue.push(CopyTask::Dir {
                        rel: child.to_string(),
                        src: src.join(os(name)),
                        dst: to,
                        depth: depth + 1,
                    });
                    Ok(())
                }
                FileType::RegularFile if share_big && md.size >= BIG_FILE => {
                    queue.push(CopyTask::File {
                        src: src.join(os(name)),
                        dst: to,
                        md: *md,
                    });
                    Ok(())
                }
                _ => {
                    let target = (dfd.as_fd(), name, to.as_path());
                    self.copy_entry_at(sfd.as_fd(), name, target, rules, md, buf)
                }
            }
        })
    }

    /// Copies one entry that is not a directory: a file, a symlink (as a symlink); other kinds
    /// only clear the destination, as before.
    fn copy_entry_at(
        &self,
        sdir: BorrowedFd<'_>,
        sname: &CStr,
        target: Target<'_>,
        rules: DirRules,
        md: &Meta,
        buf: &mut Vec<u8>,
    ) -> R<()> {
        let (ddir, dname, to) = target;
        match md.file_type() {
            FileType::RegularFile => self.copy_file(sdir, sname, target, rules, md, buf),
            FileType::Symlink => {
                let target = rustix::fs::readlinkat(sdir, sname, Vec::new())
                    .map_err(|e| format!("readlink {}: {e}", to.display()))?;
                loop {
                    match rustix::fs::symlinkat(target.as_c_str(), ddir, dname) {
                        Ok(()) => break,
                        Err(Errno::EXIST) => self.clear_at(ddir, dname, to)?,
                        Err(e) => return Err(format!("symlink {}: {e}", to.display())),
                    }
                }
                let (u, g) = self.uid_gid();
                rustix::fs::chownat(ddir, dname, u, g, AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(at_path(to).compose())?;
                rustix::fs::utimensat(
                    ddir,
                    dname,
                    &timestamps(md.mtime),
                    AtFlags::SYMLINK_NOFOLLOW,
                )
                .map_err(at_path(to).compose())
            }
            _ => {
                match rustix::fs::statx(ddir, dname, AtFlags::SYMLINK_NOFOLLOW, StatxFlags::TYPE) {
                    Ok(_) => self.clear_at(ddir, dname, to),
                    Err(_) => Ok(()),
                }
            }
        }
    }

    /// Copies a regular file's data, owner, mode and mtime; a file with several links
    /// becomes a link to its first copy. The file is made with its final mode and left with
    /// the owner it gets anyway when nothing (umask, default ACL, set-ID bits, another owner)
    /// stands in the way: two system calls less per file.
    fn copy_file(
        &self,
        sdir: BorrowedFd<'_>,
        sname: &CStr,
        (ddir, dname, to): Target<'_>,
        rules: DirRules,
        md: &Meta,
        buf: &mut Vec<u8>,
    ) -> R<()> {
        if md.nlink > 1 {
            let mut links = lock(&self.links);
            if let Some(first) = links.get(&(md.dev, md.ino)) {
                lock(&self.later_links).push((first.clone(), to.to_path_buf()));
                return Ok(());
            }
            links.insert((md.dev, md.ino), to.to_path_buf());
        }
        let copy_err = |e: std::io::Error| match e.raw_os_error() {
            // Go's words for a full disk, as Docker says them.
            Some(libc::ENOSPC | libc::EDQUOT) => {
                format!("write {}: no space left on device", to.display())
            }
            _ => format!("copy {}: {e}", to.display()),
        };
        let src = open_file_at(sdir, sname).map_err(copy_err)?;
        let mode = self.mode(md);
        let exact = !rules.default_acl
            && mode.as_raw_mode() & 0o7000 == 0
            && self.umask.is_some_and(|u| mode.as_raw_mode() & u == 0);
        let out = loop {
            match rustix::fs::openat(
                ddir,
                dname,
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                if exact {
                    mode
                } else {
                    Mode::from_raw_mode(0o600)
                },
            ) {
                Ok(fd) => break fd,
                Err(Errno::EXIST) => self.clear_at(ddir, dname, to)?,
                Err(e) => return Err(copy_err(e.into())),
            }
        };
        self.data
            .copy(src.as_fd(), out.as_fd(), md.size, buf)
            .map_err(copy_err)?;
        if self.owner != (self.ids.0, rules.gid) {
            let (u, g) = self.uid_gid();
            // Owner first: chown clears set-ID bits, which the mode then sets.
            rustix::fs::fchown(&out, u, g).map_err(at_path(to).compose())?;
        }
        if !exact {
            rustix::fs::fchmod(&out, mode).map_err(at_path(to).compose())?;
        }
        rustix::fs::futimens(&out, &timestamps(md.mtime)).map_err(at_path(to).compose())
    }

    /// Makes the directory `name` in `dir`, or keeps the directory that is there (what is
    /// there otherwise goes).
    fn make_dir_at(&self, dir: BorrowedFd<'_>, name: &CStr, to: &Path) -> R<()> {
        loop {
            match rustix::fs::mkdirat(dir, name, Mode::from_raw_mode(0o755)) {
                Ok(()) => return Ok(()),
                Err(Errno::EXIST) => {
                    let md = stat_at(dir, name).map_err(at_path(to))?;
                    if md.is_dir() {
                        return Ok(());
                    }
                    self.clear_at(dir, name, to)?;
                }
                Err(e) => return Err(format!("mkdir {}: {e}", to.display())),
            }
        }
    }

    /// Removes what is at `name` in `dir` (a directory with all it holds).
    fn clear_at(&self, dir: BorrowedFd<'_>, name: &CStr, to: &Path) -> R<()> {
        match stat_at(dir, name) {
            Ok(md) if md.is_dir() => fs::remove_dir_all(to).map_err(|e| e.to_string()),
            Ok(_) => rustix::fs::unlinkat(dir, name, AtFlags::empty()).map_err(|e| e.to_string()),
            Err(_) => Ok(()),
        }
    }

    /// Makes the hard links that waited for their first copy, then sets the copied
    /// directories' owner, mode and mtime, deepest first.
    fn finish(&self) -> R<()> {
        let links = std::mem::take(&mut *lock(&self.later_links));
        for (first, link) in links {
            let (dir, name) = split(&link)?;
            let dfd = open_dir(dir).map_err(at_path(dir))?;
            self.clear_at(dfd.as_fd(), &name, &link)?;
            fs::hard_link(&first, &link).map_err(|e| format!("link {}: {e}", link.display()))?;
        }
        let mut dirs = std::mem::take(&mut *lock(&self.dirs));
        dirs.sort_by_key(|d| std::cmp::Reverse(d.0));
        for (_, dir, md) in dirs {
            let (u, g) = self.uid_gid();
            let c = cpath(&dir)?;
            rustix::fs::chownat(CWD, &c, u, g, AtFlags::SYMLINK_NOFOLLOW)
                .map_err(at_path(&dir).compose())?;
            rustix::fs::chmodat(CWD, &c, self.mode(&md), AtFlags::empty())
                .map_err(at_path(&dir).compose())?;
            rustix::fs::utimensat(CWD, &c, &timestamps(md.mtime), AtFlags::SYMLINK_NOFOLLOW)
                .map_err(at_path(&dir).compose())?;
        }
        Ok(())
    }

    /// Copies one source that is not a directory (a directory found there after all is
    /// copied whole) to the host path `to`.
    fn copy_one(&self, ctx: &Context, rel: &str, from: &Path, to: &Path) -> R<()> {
        let (sdir, sname) = split(from)?;
        let (ddir, dname) = split(to)?;
        let sfd = open_dir(sdir).map_err(at_path(sdir))?;
        let dfd = open_dir(ddir).map_err(at_path(ddir))?;
        let md = stat_at(sfd.as_fd(), &sname).map_err(at_path(from))?;
        if md.is_dir() {
            self.make_dir_at(dfd.as_fd(), &dname, to)?;
            lock(&self.dirs).push((0, to.to_path_buf(), md));
            return self.copy_dir_contents(ctx, rel, to);
        }
        let rules = self.rules(dfd.as_fd())?;
        let target = (dfd.as_fd(), dname.as_c_str(), to);
        self.copy_entry_at(sfd.as_fd(), &sname, target, rules, &md, &mut Vec::new())?;
        self.finish()
    }
}

/// Error text from a rustix error, through a function made for std's.
trait Compose {
    fn compose(self) -> impl Fn(Errno) -> String;
}

impl<F: Fn(std::io::Error) -> String> Compose for F {
    fn compose(self) -> impl Fn(Errno) -> String {
        move |e| self(e.into())
    }
}

/// Copies the sources into the mounted root filesystem.
pub fn copy_into(req: &CopyRequest<'_>) -> R<()> {
    let owner = match req.chown {
        Some(c) => parse_chown(req.rootfs, c).map_err(|e| e.to_string())?,
        None => (0, 0),
    };
    let chmod = req.chmod.map(parse_chmod).transpose()?;
    let mut c = Copier {
        owner,
        chmod,
        rootfs: req.rootfs,
        direct: None,
        links: Mutex::new(HashMap::new()),
        later_links: Mutex::new(Vec::new()),
        dirs: Mutex::new(Vec::new()),
        data: DataCopier::new(),
        umask: current_umask(),
        // SAFETY: plain system calls without arguments.
        ids: unsafe { (libc::geteuid(), libc::getegid()) },
    };
    let dest_host = resolve_in_root(req.rootfs, req.dest, true);
    let dest_meta = fs::metadata(&dest_host);
    let dest_existed = fs::symlink_metadata(&dest_host).is_ok();
    let dest_is_dir = req.dest_is_dir_hint || dest_meta.map(|m| m.is_dir()).unwrap_or(false);
    let dir_owner = req.chown.map(|_| owner);
    for src in req.sources {
        let src_host = req.context.path_of(&src.rel);
        if src.is_dir || dest_is_dir {
            mkdir_all_in_root(c.rootfs, req.dest, dir_owner)?;
            if !dest_existed && c.direct.is_none() {
                c.direct = direct_root(req, c.rootfs);
            }
        }
        if src.is_dir {
            let target = c.place(&resolve_in_root(c.rootfs, req.dest, true));
            c.copy_dir_contents(req.context, &src.rel, &target)?;
            continue;
        }
        if req.extract_archives && is_archive(&src_host) {
            mkdir_all_in_root(c.rootfs, req.dest, dir_owner)?;
            let target = c.place(&resolve_in_root(c.rootfs, req.dest, true));
            let f = archive_stream(&src_host).map_err(|e| format!("{}: {e}", src.rel))?;
            layer::apply_layer_with(
                f,
                &target,
                &layer::ApplyOptions {
                    whiteouts: layer::WhiteoutMode::Delete,
                    ..Default::default()
                },
            )
            .map_err(|e| format!("{}: {e}", src.rel))?;
            continue;
        }
        let image_path = if dest_is_dir {
            format!("{}/{}", req.dest.trim_end_matches('/'), src.name)
        } else {
            if let Some((parent, _)) = req.dest.rsplit_once('/') {
                mkdir_all_in_root(
                    c.rootfs,
                    if parent.is_empty() { "/" } else { parent },
                    dir_owner,
                )?;
            }
            req.dest.to_string()
        };
        let target = c.place(&resolve_in_root(c.rootfs, &image_path, false));
        c.copy_one(req.context, &src.rel, &src_host, &target)?;
    }
    Ok(())
}

/// The destination directory that this COPY just made, and where it is in the snapshot's
/// upper directory, when it is there as a plain directory.
fn direct_root(req: &CopyRequest<'_>, rootfs: &Path) -> Option<(PathBuf, PathBuf)> {
    let upper = req.upper?;
    let made = resolve_in_root(rootfs, req.dest, true);
    let in_upper = upper.join(made.strip_prefix(rootfs).ok()?);
    let md = fs::symlink_metadata(&in_upper).ok()?;
    md.is_dir().then_some((made, in_upper))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chmod_octal_and_symbolic() {
        assert_eq!(parse_chmod("755").unwrap().apply(0o600, false), 0o755);
        assert_eq!(parse_chmod("u+x,go-w").unwrap().apply(0o666, false), 0o744);
        assert_eq!(parse_chmod("a=rX").unwrap().apply(0o640, false), 0o444);
        assert_eq!(parse_chmod("a=rX").unwrap().apply(0o750, false), 0o555);
        assert_eq!(parse_chmod("a=rX").unwrap().apply(0o700, true), 0o555);
        assert_eq!(parse_chmod("+x").unwrap().apply(0o644, false), 0o755);
        assert!(parse_chmod("q+x").is_err());
        assert!(parse_chmod("99999").is_err());
    }

    fn request<'a>(ctx: &'a Context, sources: &'a [Source], rootfs: &'a Path) -> CopyRequest<'a> {
        CopyRequest {
            context: ctx,
            sources,
            rootfs,
            dest: "/out",
            dest_is_dir_hint: true,
            chown: None,
            chmod: None,
            extract_archives: false,
            upper: None,
        }
    }

    fn kind(p: &Path) -> &'static str {
        match fs::symlink_metadata(p) {
            Ok(m) if m.is_dir() => "dir",
            Ok(m) if m.file_type().is_symlink() => "symlink",
            Ok(_) => "file",
            Err(_) => "none",
        }
    }

    /// What the destination already holds gives way as before: a directory where a file
    /// comes is removed whole, a file or symlink where a directory comes too, a directory
    /// where a directory comes is merged into (keeping what the copy does not bring) and
    /// takes the source's mode; files the tree holds many of are copied by both threads.
    #[test]
    fn a_tree_copied_over_existing_entries_replaces_and_merges_as_before() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("ctx");
        for d in ["tree/a", "tree/d", "tree/many"] {
            fs::create_dir_all(src.join(d)).unwrap();
        }
        fs::write(src.join("tree/b"), "b").unwrap();
        fs::write(src.join("tree/c"), "c").unwrap();
        fs::write(src.join("tree/d/new"), "new").unwrap();
        fs::set_permissions(src.join("tree/d"), fs::Permissions::from_mode(0o700)).unwrap();
        for i in 0..500 {
            fs::write(src.join(format!("tree/many/{i}")), i.to_string()).unwrap();
        }
        let root = t.path().join("root");
        fs::create_dir_all(root.join("out/b/deep")).unwrap();
        fs::write(root.join("out/a"), "old").unwrap();
        std::os::unix::fs::symlink("/nowhere", root.join("out/c")).unwrap();
        fs::create_dir_all(root.join("out/d")).unwrap();
        fs::write(root.join("out/d/kept"), "kept").unwrap();

        let ctx = Context::new(&src, Box::new(|_| false));
        let sources = ctx.sources(&["tree".into()]).unwrap().sources;
        copy_into(&request(&ctx, &sources, &root)).unwrap();
        let out = root.join("out");
        assert_eq!(kind(&out.join("a")), "dir");
        assert_eq!(kind(&out.join("b")), "file");
        assert_eq!(fs::read_to_string(out.join("c")).unwrap(), "c");
        assert_eq!(kind(&out.join("c")), "file");
        assert_eq!(fs::read_to_string(out.join("d/kept")).unwrap(), "kept");
        assert_eq!(fs::read_to_string(out.join("d/new")).unwrap(), "new");
        let mode = fs::metadata(out.join("d")).unwrap().permissions().mode();
        assert_eq!(mode & 0o7777, 0o700);
        assert_eq!(fs::read_dir(out.join("many")).unwrap().count(), 500);
        assert_eq!(fs::read_to_string(out.join("many/499")).unwrap(), "499");
    }

    /// With an upper directory, a destination the COPY makes is filled there (the mounted
    /// root only gets the directory itself); an existing destination is written through the
    /// mounted root.
    #[test]
    fn a_destination_the_copy_makes_is_written_into_the_upper_directory() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("ctx");
        fs::create_dir_all(src.join("tree/sub")).unwrap();
        fs::write(src.join("tree/sub/f"), "f").unwrap();
        fs::write(src.join("one"), "1").unwrap();
        let ctx = Context::new(&src, Box::new(|_| false));
        let sources = ctx.sources(&["tree".into(), "one".into()]).unwrap().sources;
        let root = t.path().join("root");
        let upper = t.path().join("upper");
        fs::create_dir_all(&root).unwrap();
        // The overlay would show the directory in both; here the test makes it in the upper
        // directory as overlayfs does when the copy makes it in the root.
        fs::create_dir_all(upper.join("out")).unwrap();
        let mut req = request(&ctx, &sources, &root);
        req.upper = Some(&upper);
        copy_into(&req).unwrap();
        assert_eq!(fs::read_to_string(upper.join("out/sub/f")).unwrap(), "f");
        assert_eq!(fs::read_to_string(upper.join("out/one")).unwrap(), "1");
        assert_eq!(kind(&root.join("out/sub")), "none");

        // Existing destination: no direct writes.
        let root2 = t.path().join("root2");
        fs::create_dir_all(root2.join("out")).unwrap();
        let upper2 = t.path().join("upper2");
        fs::create_dir_all(upper2.join("out")).unwrap();
        let mut req = request(&ctx, &sources, &root2);
        req.upper = Some(&upper2);
        copy_into(&req).unwrap();
        assert_eq!(fs::read_to_string(root2.join("out/sub/f")).unwrap(), "f");
        assert_eq!(kind(&upper2.join("out/sub")), "none");
    }
}
