//! Unpacking a layer tar into a directory, confined to it.
//!
//! Every entry's parent directory is opened with `openat2(RESOLVE_IN_ROOT |
//! RESOLVE_NO_MAGICLINKS)` from a descriptor of the root, so symlinks met on the way (even
//! absolute ones, even ones the same archive planted or swapped in a moment ago) resolve
//! beneath the root; the entry itself is then made with the `*at` calls relative to that
//! descriptor and never follows a symlink. Names containing `..` or starting with `/` are
//! refused outright.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::io::{self, BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use oci::{Digest, Hasher};
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{
    self as rfs, AtFlags, FileType, Mode, OFlags, ResolveFlags, Timespec, Timestamps,
};
use rustix::io::Errno;

use crate::compress::{decompress, detect, Compression};
use crate::error::{Error, Result};
use crate::{OPAQUE_MARKER, OVERLAY_OPAQUE_XATTR, WHITEOUT_PREFIX};

/// What to do with whiteouts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum WhiteoutMode {
    /// Keep them as overlayfs does, for a layer directory that will be a lower dir: a
    /// whiteout becomes a 0/0 character device, an opaque marker the
    /// `trusted.overlay.opaque=y` xattr on its directory.
    #[default]
    OverlayDevices,
    /// Carry them out on a merged tree: delete the named file, empty the opaque directory
    /// of what earlier layers put there.
    Delete,
}

#[derive(Debug, Clone, Default)]
pub struct ApplyOptions {
    pub whiteouts: WhiteoutMode,
}

/// What an applied layer turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyReport {
    /// sha256 of the uncompressed tar, trailing padding included.
    pub diff_id: Digest,
    /// Length of the uncompressed tar.
    pub tar_size: u64,
    /// How the stream was compressed.
    pub compression: Compression,
    /// Docker's DiffSize of the resulting directory.
    pub diff_size: u64,
}

struct HashRead<'a, R> {
    inner: R,
    hasher: &'a mut Hasher,
}

impl<R: Read> Read for HashRead<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// Unpacks the layer read from `input` into `root` (which must exist).
pub fn apply_layer(input: impl Read, root: &Path, opts: &ApplyOptions) -> Result<ApplyReport> {
    let root_fd = rfs::open(
        root,
        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::io(root, e))?;
    let mut buf = BufReader::with_capacity(1 << 20, input);
    let compression = detect(&mut buf).map_err(Error::Corrupt)?;
    let stream = decompress(buf).map_err(Error::Corrupt)?;
    let mut tar_hasher = Hasher::new();
    {
        let mut ar = tar::Archive::new(HashRead {
            inner: stream,
            hasher: &mut tar_hasher,
        });
        let mut state = State {
            root: root_fd.as_fd(),
            opts,
            created: HashSet::new(),
            dir_times: Vec::new(),
        };
        for entry in ar.entries().map_err(Error::Corrupt)? {
            let mut entry = entry.map_err(Error::Corrupt)?;
            state.apply_entry(&mut entry)?;
        }
        state.finish()?;
        // The padding after the end-of-archive blocks is part of the diff_id.
        io::copy(&mut ar.into_inner(), &mut io::sink()).map_err(Error::Corrupt)?;
    }
    let tar_size = tar_hasher.len();
    if tar_size == 0 {
        return Err(Error::Corrupt(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "empty layer stream",
        )));
    }
    Ok(ApplyReport {
        diff_id: tar_hasher.finish(),
        tar_size,
        compression,
        diff_size: crate::diff_size(root)?,
    })
}

struct State<'a> {
    root: BorrowedFd<'a>,
    opts: &'a ApplyOptions,
    /// Paths this layer created, which an opaque marker in `Delete` mode must keep.
    created: HashSet<Vec<u8>>,
    dir_times: Vec<(Vec<u8>, Timestamps)>,
}

/// Splits an entry name into checked components: no `..`, not absolute, `.` dropped.
fn components(entry: &str, raw: &[u8]) -> Result<Vec<Vec<u8>>> {
    if raw.first() == Some(&b'/') {
        return Err(Error::entry(
            entry,
            "absolute path names are not allowed in a layer",
        ));
    }
    let mut out = Vec::new();
    for c in raw.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return Err(Error::entry(entry, "path escapes the layer root (\"..\")")),
            c => {
                if c.contains(&0) {
                    return Err(Error::entry(entry, "NUL byte in name"));
                }
                out.push(c.to_vec())
            }
        }
    }
    Ok(out)
}

fn join(comps: &[Vec<u8>]) -> Vec<u8> {
    comps.join(&b'/')
}

fn ts(secs: u64) -> Timestamps {
    let t = Timespec {
        tv_sec: secs.min(i64::MAX as u64) as i64,
        tv_nsec: 0,
    };
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}

const DIR_FLAGS: OFlags = OFlags::DIRECTORY
    .union(OFlags::RDONLY)
    .union(OFlags::CLOEXEC);
const RESOLVE: ResolveFlags = ResolveFlags::IN_ROOT.union(ResolveFlags::NO_MAGICLINKS);

impl State<'_> {
    /// Opens (creating as needed) the directory `comps` beneath the root.
    fn open_dir(&self, entry: &str, comps: &[Vec<u8>], create: bool) -> Result<OwnedFd> {
        if comps.is_empty() {
            return rfs::openat(self.root, ".", DIR_FLAGS, Mode::empty())
                .map_err(|e| Error::entry_io(entry, e));
        }
        let path = join(comps);
        match rfs::openat2(
            self.root,
            OsStr::from_bytes(&path),
            DIR_FLAGS,
            Mode::empty(),
            RESOLVE,
        ) {
            Ok(fd) => return Ok(fd),
            Err(Errno::NOENT) if create => {}
            Err(Errno::NOTDIR) => {
                return Err(Error::entry(
                    entry,
                    format!("{} is not a directory", String::from_utf8_lossy(&path)),
                ))
            }
            Err(Errno::XDEV) | Err(Errno::LOOP) => {
                return Err(Error::entry(
                    entry,
                    "cannot be resolved inside the layer root",
                ))
            }
            Err(e) => return Err(Error::entry_io(entry, e)),
        }
        // Create the missing directories one at a time, each resolved beneath the root.
        let mut fd = self.open_dir(entry, &comps[..comps.len() - 1], true)?;
        let last = OsStr::from_bytes(&comps[comps.len() - 1]);
        match rfs::mkdirat(&fd, last, Mode::from_raw_mode(0o755)) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) => return Err(Error::entry_io(entry, e)),
        }
        fd = rfs::openat2(
            &fd,
            last,
            DIR_FLAGS | OFlags::NOFOLLOW,
            Mode::empty(),
            RESOLVE,
        )
        .map_err(|e| match e {
            Errno::NOTDIR | Errno::LOOP => Error::entry(
                entry,
                format!("{} is not a directory", String::from_utf8_lossy(&path)),
            ),
            e => Error::entry_io(entry, e),
        })?;
        Ok(fd)
    }

    fn apply_entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<()> {
        let raw = entry.path_bytes().into_owned();
        let name_for_errors = String::from_utf8_lossy(&raw).into_owned();
        let en = name_for_errors.as_str();
        let comps = components(en, &raw)?;
        let Some((last, parents)) = comps.split_last() else {
            // The root itself ("./"): nothing to create.
            return Ok(());
        };
        let header = entry.header().clone();
        let kind = header.entry_type();
        let parent = self.open_dir(en, parents, true)?;
        let name = OsStr::from_bytes(last);

        if last.starts_with(WHITEOUT_PREFIX.as_bytes()) {
            return self.whiteout(en, parents, &parent, last);
        }
        let mode = Mode::from_raw_mode(header.mode().map_err(|e| Error::entry_io(en, e))? & 0o7777);
        let uid = numeric(en, &header.as_old().uid, header.uid())?;
        let gid = numeric(en, &header.as_old().gid, header.gid())?;
        let mtime = numeric(en, &header.as_old().mtime, header.mtime())?;
        let owner = (
            Some(rustix::fs::Uid::from_raw(uid as u32)),
            Some(rustix::fs::Gid::from_raw(gid as u32)),
        );
        let xattrs = collect_xattrs(en, entry)?;

        // Whatever is in the way goes, except a directory that stays a directory.
        let existing = rfs::statat(&parent, name, AtFlags::SYMLINK_NOFOLLOW).ok();
        if let Some(st) = &existing {
            let is_dir = FileType::from_raw_mode(st.st_mode) == FileType::Directory;
            if !(is_dir && kind == tar::EntryType::Directory) {
                remove_at(&parent, name).map_err(|e| Error::entry_io(en, e))?;
            }
        }
        match kind {
            tar::EntryType::Directory => {
                match rfs::mkdirat(&parent, name, Mode::from_raw_mode(0o700)) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => return Err(Error::entry_io(en, e)),
                }
                let fd = rfs::openat(&parent, name, DIR_FLAGS | OFlags::NOFOLLOW, Mode::empty())
                    .map_err(|e| Error::entry_io(en, e))?;
                rfs::fchown(&fd, owner.0, owner.1).map_err(|e| Error::entry_io(en, e))?;
                rfs::fchmod(&fd, mode).map_err(|e| Error::entry_io(en, e))?;
                set_xattrs(en, &fd, &xattrs)?;
                self.dir_times.push((join(&comps), ts(mtime)));
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let fd = rfs::openat(
                    &parent,
                    name,
                    OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::WRONLY
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o600),
                )
                .map_err(|e| Error::entry_io(en, e))?;
                let mut file = std::fs::File::from(fd);
                io::copy(entry, &mut file).map_err(Error::Corrupt)?;
                rfs::fchown(&file, owner.0, owner.1).map_err(|e| Error::entry_io(en, e))?;
                rfs::fchmod(&file, mode).map_err(|e| Error::entry_io(en, e))?;
                set_xattrs(en, &file, &xattrs)?;
                rfs::futimens(&file, &ts(mtime)).map_err(|e| Error::entry_io(en, e))?;
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| Error::entry(en, "symlink without a target"))?;
                rfs::symlinkat(OsStr::from_bytes(&target), &parent, name)
                    .map_err(|e| Error::entry_io(en, e))?;
                rfs::chownat(&parent, name, owner.0, owner.1, AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(|e| Error::entry_io(en, e))?;
                rfs::utimensat(&parent, name, &ts(mtime), AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(|e| Error::entry_io(en, e))?;
            }
            tar::EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| Error::entry(en, "hardlink without a target"))?;
                let tcomps = components(en, &target)?;
                let Some((tlast, tparents)) = tcomps.split_last() else {
                    return Err(Error::entry(en, "hardlink to the layer root"));
                };
                let tparent = self.open_dir(en, tparents, false)?;
                rfs::linkat(
                    &tparent,
                    OsStr::from_bytes(tlast),
                    &parent,
                    name,
                    AtFlags::empty(),
                )
                .map_err(|e| {
                    Error::entry(
                        en,
                        format!("hardlink to {}: {e}", String::from_utf8_lossy(&target)),
                    )
                })?;
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                let ft = match kind {
                    tar::EntryType::Char => FileType::CharacterDevice,
                    tar::EntryType::Block => FileType::BlockDevice,
                    _ => FileType::Fifo,
                };
                let major = header.device_major().ok().flatten().unwrap_or(0);
                let minor = header.device_minor().ok().flatten().unwrap_or(0);
                let dev = rustix::fs::makedev(major, minor);
                rfs::mknodat(&parent, name, ft, mode, dev).map_err(|e| Error::entry_io(en, e))?;
                rfs::chownat(&parent, name, owner.0, owner.1, AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(|e| Error::entry_io(en, e))?;
                rfs::chmodat(&parent, name, mode, AtFlags::empty())
                    .map_err(|e| Error::entry_io(en, e))?;
                rfs::utimensat(&parent, name, &ts(mtime), AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(|e| Error::entry_io(en, e))?;
            }
            tar::EntryType::XGlobalHeader => return Ok(()),
            other => {
                return Err(Error::entry(
                    en,
                    format!("unsupported entry type {other:?}"),
                ))
            }
        }
        if self.opts.whiteouts == WhiteoutMode::Delete {
            self.created.insert(join(&comps));
        }
        Ok(())
    }

    fn whiteout(
        &mut self,
        en: &str,
        parents: &[Vec<u8>],
        parent: &OwnedFd,
        last: &[u8],
    ) -> Result<()> {
        if last == OPAQUE_MARKER.as_bytes() {
            match self.opts.whiteouts {
                WhiteoutMode::OverlayDevices => {
                    rfs::fsetxattr(parent, OVERLAY_OPAQUE_XATTR, b"y", rfs::XattrFlags::empty())
                        .map_err(|e| Error::entry_io(en, e))?;
                }
                WhiteoutMode::Delete => {
                    let prefix = join(parents);
                    let dir = rfs::Dir::read_from(parent).map_err(|e| Error::entry_io(en, e))?;
                    let mut victims = Vec::new();
                    for d in dir {
                        let d = d.map_err(|e| Error::entry_io(en, e))?;
                        let n = d.file_name().to_bytes().to_vec();
                        if n == b"." || n == b".." {
                            continue;
                        }
                        let mut full = prefix.clone();
                        if !full.is_empty() {
                            full.push(b'/');
                        }
                        full.extend_from_slice(&n);
                        if !self.created.contains(&full) {
                            victims.push(n);
                        }
                    }
                    for v in victims {
                        remove_at(parent, OsStr::from_bytes(&v))
                            .map_err(|e| Error::entry_io(en, e))?;
                    }
                }
            }
            return Ok(());
        }
        if last.starts_with(b".wh..wh.") {
            // AUFS bookkeeping (.wh..wh.plnk and the like): nothing to apply.
            return Ok(());
        }
        let target = &last[WHITEOUT_PREFIX.len()..];
        if target.is_empty() || target == b"." || target == b".." {
            return Err(Error::entry(en, "invalid whiteout name"));
        }
        let name = OsStr::from_bytes(target);
        if rfs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW).is_ok() {
            remove_at(parent, name).map_err(|e| Error::entry_io(en, e))?;
        }
        if self.opts.whiteouts == WhiteoutMode::OverlayDevices {
            rfs::mknodat(
                parent,
                name,
                FileType::CharacterDevice,
                Mode::empty(),
                rustix::fs::makedev(0, 0),
            )
            .map_err(|e| Error::entry_io(en, e))?;
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        for (path, t) in std::mem::take(&mut self.dir_times) {
            let en = String::from_utf8_lossy(&path).into_owned();
            let comps = components(&en, &path)?;
            if let Ok(fd) = self.open_dir(&en, &comps, false) {
                rfs::futimens(&fd, &t).map_err(|e| Error::entry_io(&en, e))?;
            }
        }
        Ok(())
    }
}

/// A numeric header field; an empty one (all NULs or spaces) is 0, as Go's archive/tar reads
/// it, anything else that is not a number is an error.
fn numeric(en: &str, raw: &[u8], parsed: io::Result<u64>) -> Result<u64> {
    match parsed {
        Ok(v) => Ok(v),
        Err(_) if raw.iter().all(|b| *b == 0 || *b == b' ') => Ok(0),
        Err(e) => Err(Error::entry_io(en, e)),
    }
}

fn collect_xattrs<R: Read>(
    en: &str,
    entry: &mut tar::Entry<'_, R>,
) -> Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    if let Some(exts) = entry.pax_extensions().map_err(|e| Error::entry_io(en, e))? {
        for ext in exts {
            let ext = ext.map_err(|e| Error::entry_io(en, e))?;
            let Ok(key) = ext.key() else { continue };
            if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
                // overlayfs's own attributes would change how the stack is read: never
                // take them from an archive.
                if name.starts_with("trusted.overlay.") {
                    continue;
                }
                out.push((name.to_string(), ext.value_bytes().to_vec()));
            }
        }
    }
    Ok(out)
}

fn set_xattrs(en: &str, fd: impl AsFd, xattrs: &[(String, Vec<u8>)]) -> Result<()> {
    for (k, v) in xattrs {
        rfs::fsetxattr(&fd, k.as_str(), v, rfs::XattrFlags::empty())
            .map_err(|e| Error::entry(en, format!("xattr {k}: {e}")))?;
    }
    Ok(())
}

/// Removes `name` in `dir`, recursively when it is a directory, never following symlinks.
fn remove_at(dir: impl AsFd, name: &OsStr) -> rustix::io::Result<()> {
    let dir = dir.as_fd();
    match rfs::unlinkat(dir, name, AtFlags::empty()) {
        Ok(()) => return Ok(()),
        Err(Errno::ISDIR) | Err(Errno::PERM) => {}
        Err(e) => return Err(e),
    }
    let sub = rfs::openat(dir, name, DIR_FLAGS | OFlags::NOFOLLOW, Mode::empty())?;
    // A directory without write permission still has to go.
    let _ = rfs::fchmod(&sub, Mode::from_raw_mode(0o700));
    let mut names = Vec::new();
    for d in rfs::Dir::read_from(&sub)? {
        let d = d?;
        let n = d.file_name().to_bytes().to_vec();
        if n != b"." && n != b".." {
            names.push(n);
        }
    }
    for n in names {
        remove_at(&sub, OsStr::from_bytes(&n))?;
    }
    rfs::unlinkat(dir, name, AtFlags::REMOVEDIR)
}
