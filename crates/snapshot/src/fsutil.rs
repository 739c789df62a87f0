//! File tree helpers for the copy snapshotter: copying entries with their metadata, applying
//! overlay-style layer directories (whiteout devices, opaque directories) onto a plain
//! directory, computing an overlay-style upper directory by comparing a plain directory with
//! its lowers, and measuring disk usage.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::ffi::{CString, OsString};
use std::fs::{self, Metadata};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::error::{IoContext, Result};

/// The xattr overlayfs uses to mark a directory opaque.
pub(crate) const OPAQUE_XATTR: &str = "trusted.overlay.opaque";
/// The same with `userxattr` (overlayfs mounted in a user namespace).
pub(crate) const USER_OPAQUE_XATTR: &str = "user.overlay.opaque";

/// The opaque marker this process writes (see [`crate::in_user_namespace`]).
pub(crate) fn opaque_xattr() -> &'static str {
    if crate::in_user_namespace() {
        USER_OPAQUE_XATTR
    } else {
        OPAQUE_XATTR
    }
}

fn c(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| io::Error::other("path contains NUL"))
}

/// Whether `m` is an overlay whiteout (a character device 0/0).
pub(crate) fn is_whiteout(m: &Metadata) -> bool {
    m.file_type().is_char_device() && m.rdev() == 0
}

/// Whether the directory `p` carries `trusted.overlay.opaque=y`.
pub(crate) fn is_opaque(p: &Path) -> bool {
    [OPAQUE_XATTR, USER_OPAQUE_XATTR]
        .iter()
        .any(|x| matches!(get_xattr(p, x), Ok(Some(v)) if v == b"y"))
}

pub(crate) fn get_xattr(p: &Path, name: &str) -> io::Result<Option<Vec<u8>>> {
    let cp = c(p)?;
    let cn = CString::new(name).map_err(io::Error::other)?;
    let mut buf = vec![0u8; 256];
    loop {
        // SAFETY: valid strings and buffer.
        let n = unsafe {
            libc::lgetxattr(cp.as_ptr(), cn.as_ptr(), buf.as_mut_ptr().cast(), buf.len())
        };
        if n >= 0 {
            buf.truncate(n as usize);
            return Ok(Some(buf));
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::ENODATA) | Some(libc::ENOTSUP) => return Ok(None),
            Some(libc::ERANGE) => buf.resize(buf.len() * 4, 0),
            _ => return Err(e),
        }
    }
}

pub(crate) fn set_xattr(p: &Path, name: &str, value: &[u8]) -> io::Result<()> {
    let cp = c(p)?;
    let cn = CString::new(name).map_err(io::Error::other)?;
    // SAFETY: valid strings and buffer.
    let r = unsafe {
        libc::lsetxattr(
            cp.as_ptr(),
            cn.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn list_xattrs(p: &Path) -> io::Result<Vec<String>> {
    let cp = c(p)?;
    let mut buf = vec![0u8; 1024];
    loop {
        // SAFETY: valid string and buffer.
        let n = unsafe { libc::llistxattr(cp.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 {
            buf.truncate(n as usize);
            break;
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::ENOTSUP) => return Ok(Vec::new()),
            Some(libc::ERANGE) => buf.resize(buf.len() * 4, 0),
            _ => return Err(e),
        }
    }
    Ok(buf
        .split(|b| *b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect())
}

/// Copies xattrs except overlayfs's own (`trusted.overlay.*`), which describe the layer
/// rather than the file.
fn copy_xattrs(src: &Path, dst: &Path) -> io::Result<()> {
    for name in list_xattrs(src)? {
        if name.starts_with("trusted.overlay.") || name.starts_with("user.overlay.") {
            continue;
        }
        if let Some(v) = get_xattr(src, &name)? {
            set_xattr(dst, &name, &v)?;
        }
    }
    Ok(())
}

fn lchown(p: &Path, uid: u32, gid: u32) -> io::Result<()> {
    let cp = c(p)?;
    // SAFETY: valid string.
    if unsafe { libc::lchown(cp.as_ptr(), uid, gid) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn set_times(p: &Path, m: &Metadata) -> io::Result<()> {
    let cp = c(p)?;
    let ts = [
        libc::timespec {
            tv_sec: m.atime(),
            tv_nsec: m.atime_nsec(),
        },
        libc::timespec {
            tv_sec: m.mtime(),
            tv_nsec: m.mtime_nsec(),
        },
    ];
    // SAFETY: valid string and array of two timespecs.
    let r = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            cp.as_ptr(),
            ts.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn mknod(p: &Path, mode: u32, rdev: u64) -> io::Result<()> {
    let cp = c(p)?;
    // SAFETY: valid string.
    if unsafe { libc::mknod(cp.as_ptr(), mode, rdev) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Creates an overlay whiteout (character device 0/0, owned by root) at `p`.
pub(crate) fn make_whiteout(p: &Path) -> Result<()> {
    mknod(p, libc::S_IFCHR, 0).ctx("create whiteout", p)?;
    lchown(p, 0, 0).ctx("chown whiteout", p)
}

/// Removes whatever is at `p` (nothing there is fine).
pub(crate) fn remove_any(p: &Path) -> Result<()> {
    match fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(p).ctx("remove", p),
        Ok(_) => fs::remove_file(p).ctx("remove", p),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).ctx("stat", p),
    }
}

/// Hard links seen while copying one tree: (device, inode) of the source -> copied path.
type Links = HashMap<(u64, u64), PathBuf>;

/// Copies one non-directory entry `src` (metadata `m`) to `dst`, replacing what is there.
fn copy_leaf(src: &Path, dst: &Path, m: &Metadata, links: &mut Links) -> Result<()> {
    remove_any(dst)?;
    let ft = m.file_type();
    if ft.is_file() && m.nlink() > 1 {
        if let Some(first) = links.get(&(m.dev(), m.ino())) {
            return fs::hard_link(first, dst).ctx("link", dst);
        }
        links.insert((m.dev(), m.ino()), dst.to_path_buf());
    }
    if ft.is_file() {
        fs::copy(src, dst).ctx("copy", src)?;
    } else if ft.is_symlink() {
        let t = fs::read_link(src).ctx("readlink", src)?;
        std::os::unix::fs::symlink(&t, dst).ctx("symlink", dst)?;
    } else {
        mknod(dst, m.mode(), m.rdev()).ctx("mknod", dst)?;
    }
    lchown(dst, m.uid(), m.gid()).ctx("chown", dst)?;
    if !ft.is_symlink() {
        // chown clears set-id bits; restore the full mode.
        fs::set_permissions(dst, std::os::unix::fs::PermissionsExt::from_mode(m.mode()))
            .ctx("chmod", dst)?;
    }
    copy_xattrs(src, dst).ctx("copy xattrs", src)?;
    set_times(dst, m).ctx("set times", dst)
}

/// Makes `dst` a directory with `src`'s owner, mode and xattrs (keeping its contents if it
/// already is one).
fn copy_dir_meta(src: &Path, dst: &Path, m: &Metadata) -> Result<()> {
    match fs::symlink_metadata(dst) {
        Ok(d) if d.is_dir() => {}
        Ok(_) => {
            remove_any(dst)?;
            fs::create_dir(dst).ctx("mkdir", dst)?;
        }
        Err(_) => fs::create_dir(dst).ctx("mkdir", dst)?,
    }
    lchown(dst, m.uid(), m.gid()).ctx("chown", dst)?;
    fs::set_permissions(dst, std::os::unix::fs::PermissionsExt::from_mode(m.mode()))
        .ctx("chmod", dst)?;
    copy_xattrs(src, dst).ctx("copy xattrs", src)
}

fn sorted_entries(dir: &Path) -> Result<Vec<OsString>> {
    let mut names: Vec<OsString> = fs::read_dir(dir)
        .ctx("read directory", dir)?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<io::Result<_>>()
        .ctx("read directory", dir)?;
    names.sort();
    Ok(names)
}

fn copy_tree_inner(src: &Path, dst: &Path, links: &mut Links) -> Result<()> {
    let m = fs::symlink_metadata(src).ctx("stat", src)?;
    if !m.is_dir() {
        return copy_leaf(src, dst, &m, links);
    }
    copy_dir_meta(src, dst, &m)?;
    for name in sorted_entries(src)? {
        copy_tree_inner(&src.join(&name), &dst.join(&name), links)?;
    }
    set_times(dst, &m).ctx("set times", dst)
}

/// Applies an overlay-style layer directory onto the plain directory `dst`: whiteouts delete,
/// opaque directories first empty their counterpart, everything else is copied over.
pub(crate) fn apply_layer(layer: &Path, dst: &Path) -> Result<()> {
    let mut links = Links::new();
    apply_dir(layer, dst, &mut links)
}

fn apply_dir(src: &Path, dst: &Path, links: &mut Links) -> Result<()> {
    let m = fs::symlink_metadata(src).ctx("stat", src)?;
    copy_dir_meta(src, dst, &m)?;
    if is_opaque(src) {
        for name in sorted_entries(dst)? {
            remove_any(&dst.join(name))?;
        }
    }
    for name in sorted_entries(src)? {
        let s = src.join(&name);
        let d = dst.join(&name);
        let sm = fs::symlink_metadata(&s).ctx("stat", &s)?;
        if is_whiteout(&sm) {
            remove_any(&d)?;
        } else if sm.is_dir() {
            apply_dir(&s, &d, links)?;
        } else {
            copy_leaf(&s, &d, &sm, links)?;
        }
    }
    set_times(dst, &m).ctx("set times", dst)
}

/// What the stack of `lowers` (top first) shows at relative path `rel`: the real path and its
/// metadata, or `None` when nothing (or a whiteout) is there.
pub(crate) fn merged_lookup(lowers: &[PathBuf], rel: &Path) -> Option<(PathBuf, Metadata)> {
    for layer in lowers {
        let p = layer.join(rel);
        match fs::symlink_metadata(&p) {
            Ok(m) if is_whiteout(&m) => return None,
            Ok(m) => return Some((p, m)),
            Err(_) => {
                if hides_below(layer, rel) {
                    return None;
                }
            }
        }
    }
    None
}

/// Whether something in `layer` on the way to `rel` hides the layers below (an opaque
/// directory, a whiteout or a non-directory at an ancestor).
fn hides_below(layer: &Path, rel: &Path) -> bool {
    let mut cur = layer.to_path_buf();
    let comps: Vec<_> = rel.components().collect();
    for (i, comp) in comps.iter().enumerate() {
        cur.push(comp);
        let last = i + 1 == comps.len();
        match fs::symlink_metadata(&cur) {
            Ok(m) if !m.is_dir() => return !last,
            Ok(_) if !last && is_opaque(&cur) => return true,
            Ok(_) => {}
            Err(_) => return false,
        }
    }
    false
}

/// The names the stack of `lowers` shows in directory `rel` (assumed to be a directory there).
pub(crate) fn merged_list(lowers: &[PathBuf], rel: &Path) -> BTreeSet<OsString> {
    let mut seen = BTreeSet::new();
    let mut hidden: HashSet<OsString> = HashSet::new();
    for layer in lowers {
        let p = layer.join(rel);
        match fs::symlink_metadata(&p) {
            Ok(m) if m.is_dir() => {
                if let Ok(rd) = fs::read_dir(&p) {
                    for e in rd.flatten() {
                        let name = e.file_name();
                        if seen.contains(&name) || hidden.contains(&name) {
                            continue;
                        }
                        match e.metadata() {
                            Ok(em) if is_whiteout(&em) => {
                                hidden.insert(name);
                            }
                            _ => {
                                seen.insert(name);
                            }
                        }
                    }
                }
                if is_opaque(&p) {
                    break;
                }
            }
            Ok(_) => break,
            Err(_) => {
                if hides_below(layer, rel) {
                    break;
                }
            }
        }
    }
    seen
}

/// Whether two entries differ as Docker's change detection sees it: type, mode, owner and
/// device number always; size, modification time and link target for non-directories.
fn differs(old: &Metadata, old_path: &Path, new: &Metadata, new_path: &Path) -> bool {
    if old.mode() != new.mode()
        || old.uid() != new.uid()
        || old.gid() != new.gid()
        || old.rdev() != new.rdev()
    {
        return true;
    }
    if new.is_dir() {
        return false;
    }
    if old.size() != new.size()
        || old.mtime() != new.mtime()
        || old.mtime_nsec() != new.mtime_nsec()
    {
        return true;
    }
    if new.file_type().is_symlink() {
        return fs::read_link(old_path).ok() != fs::read_link(new_path).ok();
    }
    false
}

/// Writes into `out` an overlay-style upper directory holding what `merged` (a plain
/// directory) changes relative to the stack `lowers`: new and changed entries, whiteouts for
/// deletions, and opaque directories where a directory's lower contents are all gone.
pub(crate) fn compute_upper(merged: &Path, lowers: &[PathBuf], out: &Path) -> Result<()> {
    remove_any(out)?;
    let rm = fs::symlink_metadata(merged).ctx("stat", merged)?;
    copy_dir_meta(merged, out, &rm)?;
    let mut links = Links::new();
    let mut d = Differ {
        merged,
        lowers,
        out,
        links: &mut links,
    };
    d.dir(Path::new(""), !lowers.is_empty())?;
    fix_dir_times(merged, out)
}

struct Differ<'a> {
    merged: &'a Path,
    lowers: &'a [PathBuf],
    out: &'a Path,
    links: &'a mut Links,
}

impl Differ<'_> {
    /// Creates the parents of `rel` in the output with the merged tree's metadata.
    fn parents(&mut self, rel: &Path) -> Result<()> {
        let mut cur = PathBuf::new();
        if let Some(parent) = rel.parent() {
            for comp in parent.components() {
                cur.push(comp);
                let o = self.out.join(&cur);
                if fs::symlink_metadata(&o).is_err() {
                    let s = self.merged.join(&cur);
                    let m = fs::symlink_metadata(&s).ctx("stat", &s)?;
                    copy_dir_meta(&s, &o, &m)?;
                }
            }
        }
        Ok(())
    }

    fn dir(&mut self, rel: &Path, in_lowers: bool) -> Result<()> {
        let new_names = sorted_entries(&self.merged.join(rel))?;
        let old_names = if in_lowers {
            merged_list(self.lowers, rel)
        } else {
            BTreeSet::new()
        };
        for name in &new_names {
            let p = rel.join(name);
            let np = self.merged.join(&p);
            let nm = fs::symlink_metadata(&np).ctx("stat", &np)?;
            let old = if in_lowers {
                merged_lookup(self.lowers, &p)
            } else {
                None
            };
            match old {
                None => {
                    self.parents(&p)?;
                    copy_tree_inner(&np, &self.out.join(&p), self.links)?;
                }
                Some((op, om)) if nm.is_dir() && om.is_dir() => {
                    let old_children = merged_list(self.lowers, &p);
                    let new_children: BTreeSet<OsString> =
                        sorted_entries(&np)?.into_iter().collect();
                    if !old_children.is_empty() && old_children.is_disjoint(&new_children) {
                        // Every lower entry is gone: an opaque directory, as overlayfs makes
                        // for `rm -rf d && mkdir d`.
                        self.parents(&p)?;
                        let o = self.out.join(&p);
                        copy_tree_inner(&np, &o, self.links)?;
                        set_xattr(&o, opaque_xattr(), b"y").ctx("set opaque xattr", &o)?;
                    } else {
                        if differs(&om, &op, &nm, &np) {
                            self.parents(&p)?;
                            copy_dir_meta(&np, &self.out.join(&p), &nm)?;
                        }
                        self.dir(&p, true)?;
                    }
                }
                Some((_, om)) if nm.is_dir() => {
                    let _ = om;
                    self.parents(&p)?;
                    let o = self.out.join(&p);
                    copy_tree_inner(&np, &o, self.links)?;
                    set_xattr(&o, opaque_xattr(), b"y").ctx("set opaque xattr", &o)?;
                }
                Some((op, om)) => {
                    if om.is_dir() || differs(&om, &op, &nm, &np) {
                        self.parents(&p)?;
                        copy_leaf(&np, &self.out.join(&p), &nm, self.links)?;
                    }
                }
            }
        }
        let new_set: BTreeSet<&OsString> = new_names.iter().collect();
        for name in old_names.iter().filter(|n| !new_set.contains(n)) {
            let p = rel.join(name);
            self.parents(&p)?;
            make_whiteout(&self.out.join(&p))?;
        }
        Ok(())
    }
}

/// Gives every directory in `out` the times of its counterpart in `merged` (adding children
/// changed them).
fn fix_dir_times(merged: &Path, out: &Path) -> Result<()> {
    for name in sorted_entries(out)? {
        let o = out.join(&name);
        let om = fs::symlink_metadata(&o).ctx("stat", &o)?;
        if om.is_dir() {
            fix_dir_times(&merged.join(&name), &o)?;
        }
    }
    if let Ok(m) = fs::symlink_metadata(merged) {
        set_times(out, &m).ctx("set times", out)?;
    }
    Ok(())
}

/// Disk usage of a tree: bytes allocated (each inode once) and number of inodes.
pub(crate) fn usage(dir: &Path) -> Result<(u64, u64)> {
    let mut seen = HashSet::new();
    let mut bytes = 0u64;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(p) = stack.pop() {
        let m = fs::symlink_metadata(&p).ctx("stat", &p)?;
        if seen.insert((m.dev(), m.ino())) {
            bytes += m.blocks() * 512;
        }
        if m.is_dir() {
            for e in fs::read_dir(&p).ctx("read directory", &p)? {
                stack.push(e.ctx("read directory", &p)?.path());
            }
        }
    }
    Ok((bytes, seen.len() as u64))
}

/// fuse-overlayfs's opaque marker file in an upper directory.
const FUSE_OPAQUE_FILE: &str = ".wh..wh..opq";
/// fuse-overlayfs's opaque xattr when it may not write overlayfs's.
const FUSE_OPAQUE_XATTR: &str = "user.fuseoverlayfs.opaque";

/// Rewrites the upper directory `dir` that `fuse-overlayfs` wrote over `lowers` (top first)
/// into the shape overlayfs writes. fuse-overlayfs marks opaque every directory it makes (a
/// `.wh..wh..opq` file, usually with a whiteout named `.wh..opq` beside it, or
/// `user.fuseoverlayfs.opaque=y`); overlayfs marks opaque only a directory made where the
/// lowers showed something (made over a whiteout), with its own xattr. The markers are
/// removed, that xattr set where overlayfs would have set it, and directory times kept.
/// fuse-overlayfs reads overlayfs's xattr too, so this may run while the snapshot is mounted.
pub(crate) fn normalize_fuse_upper(dir: &Path, lowers: &[PathBuf]) -> Result<()> {
    // (directory, its path relative to the root, whether the lowers can show anything there)
    let mut stack = vec![(dir.to_path_buf(), PathBuf::new(), true)];
    while let Some((d, rel, below)) = stack.pop() {
        let dm = fs::symlink_metadata(&d).ctx("stat", &d)?;
        let mut children = Vec::new();
        let mut marker = false;
        for e in fs::read_dir(&d).ctx("read directory", &d)? {
            let e = e.ctx("read directory", &d)?;
            let name = e.file_name();
            if name == FUSE_OPAQUE_FILE {
                marker = true;
            } else if e.file_type().ctx("stat", e.path())?.is_dir() {
                children.push(name);
            }
        }
        let fuse_xattr = matches!(get_xattr(&d, FUSE_OPAQUE_XATTR), Ok(Some(v)) if v == b"y");
        let mut opaque = is_opaque(&d);
        if marker || fuse_xattr {
            // Over something the lowers show: opaque as overlayfs makes it; over nothing:
            // a plain new directory.
            let over =
                below && !rel.as_os_str().is_empty() && merged_lookup(lowers, &rel).is_some();
            if over && !opaque {
                set_xattr(&d, opaque_xattr(), b"y").ctx("mark opaque", &d)?;
                opaque = true;
            }
            remove_any(&d.join(FUSE_OPAQUE_FILE))?;
            let wh = d.join(".wh..opq");
            if fs::symlink_metadata(&wh).is_ok_and(|m| is_whiteout(&m)) {
                remove_any(&wh)?;
            }
            if fuse_xattr {
                let cp = c(&d).ctx("remove xattr", &d)?;
                let cn = CString::new(FUSE_OPAQUE_XATTR).unwrap();
                // SAFETY: valid strings.
                unsafe { libc::lremovexattr(cp.as_ptr(), cn.as_ptr()) };
            }
            set_times(&d, &dm).ctx("set times", &d)?;
        }
        let below = below
            && !opaque
            && (rel.as_os_str().is_empty()
                || merged_lookup(lowers, &rel).is_some_and(|(_, m)| m.is_dir()));
        for name in children {
            stack.push((d.join(&name), rel.join(&name), below));
        }
    }
    Ok(())
}
