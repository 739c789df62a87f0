//! Confinement: every path an entry names is resolved inside the layer root, never outside.
//!
//! Names are first cleaned lexically (leading `/` dropped, `.` removed, `..` folded; a name
//! that climbs above the root is refused). Parent directories are then resolved with
//! `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)` on the root's file descriptor, so a
//! symlink met on the way (even an absolute one, even one swapped in earlier in the same
//! archive) is interpreted as if the root were `/`. Where `openat2` is unavailable the same
//! semantics come from a component-by-component walk over `O_PATH` directory descriptors.
//! Final components are only ever touched with `*at` calls that do not follow symlinks.

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

/// How many symlinks the fallback walk follows before giving up (the kernel's limit).
const MAX_SYMLINKS: usize = 40;

/// Cleans an entry name into a relative path of plain components joined by `/`. Returns
/// `None` when `..` would climb above the root.
pub(crate) fn clean(raw: &[u8]) -> Option<Vec<u8>> {
    let mut parts: Vec<&[u8]> = Vec::new();
    for c in raw.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                parts.pop()?;
            }
            c => parts.push(c),
        }
    }
    Some(parts.join(&b'/'))
}

/// Splits a cleaned, non-empty path into its parent (possibly empty) and last component.
pub(crate) fn split_last(path: &[u8]) -> (&[u8], &[u8]) {
    match path.iter().rposition(|&b| b == b'/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (&b""[..], path),
    }
}

/// An open layer root directory.
pub(crate) struct Root {
    fd: OwnedFd,
    use_openat2: bool,
}

fn not_a_dir(name: &[u8]) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotADirectory,
        format!(
            "{:?} is not a directory inside the root (a file, or a symlink that does not resolve to one)",
            String::from_utf8_lossy(name)
        ),
    )
}

impl Root {
    /// Opens `path`, which must be an existing directory.
    pub(crate) fn open(path: &Path, use_openat2: bool) -> io::Result<Root> {
        let fd = rfs::open(
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Root { fd, use_openat2 })
    }

    /// The root directory itself (opened read-only).
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Whether resolution still uses `openat2` (false after falling back).
    #[cfg(test)]
    pub(crate) fn uses_openat2(&self) -> bool {
        self.use_openat2
    }

    fn root_path_fd(&self) -> io::Result<OwnedFd> {
        Ok(rfs::openat(
            &self.fd,
            c".",
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?)
    }

    /// Resolves the cleaned relative path `rel` to a directory inside the root and returns an
    /// `O_PATH` descriptor of it. With `create`, missing directories are made (mode 0755,
    /// owned by the caller), as Docker does for parents an archive does not list.
    pub(crate) fn dir(&mut self, rel: &[u8], create: bool) -> io::Result<OwnedFd> {
        if rel.is_empty() {
            return self.root_path_fd();
        }
        if self.use_openat2 {
            match self.openat2_dir(rel) {
                Ok(fd) => return Ok(fd),
                Err(Errno::NOSYS) | Err(Errno::PERM) => self.use_openat2 = false,
                Err(Errno::NOENT) if create => return self.create_with_openat2(rel),
                Err(Errno::NOTDIR) | Err(Errno::LOOP) => return Err(not_a_dir(rel)),
                Err(e) => return Err(e.into()),
            }
        }
        self.walk(rel, create)
    }

    fn openat2_dir(&self, rel: &[u8]) -> Result<OwnedFd, Errno> {
        let mut tries = 0;
        loop {
            let r = rfs::openat2(
                &self.fd,
                rel,
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
                ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
            );
            match r {
                // A concurrent rename or mount: the kernel asks us to retry.
                Err(Errno::AGAIN) if tries < 16 => tries += 1,
                r => return r,
            }
        }
    }

    /// Creates the missing directories of `rel` one component at a time, resolving each
    /// prefix inside the root.
    fn create_with_openat2(&self, rel: &[u8]) -> io::Result<OwnedFd> {
        let mut cur = self.root_path_fd()?;
        let mut end = 0;
        for comp in rel.split(|&b| b == b'/') {
            end += comp.len();
            let prefix = &rel[..end];
            end += 1;
            cur = match self.openat2_dir(prefix) {
                Ok(fd) => fd,
                Err(Errno::NOENT) => make_dir(&cur, comp)?,
                Err(Errno::NOTDIR) | Err(Errno::LOOP) => return Err(not_a_dir(prefix)),
                Err(e) => return Err(e.into()),
            };
        }
        Ok(cur)
    }

    /// The fallback: resolve like `RESOLVE_IN_ROOT` by hand. `..` at the root stays at the
    /// root, absolute symlink targets restart at the root, at most 40 symlinks.
    fn walk(&self, rel: &[u8], create: bool) -> io::Result<OwnedFd> {
        let mut stack = vec![self.root_path_fd()?];
        // Components with `true` came from a symlink target: like openat2 (and `mkdir -p`),
        // never create directories where a symlink points.
        let mut todo: VecDeque<(Vec<u8>, bool)> = rel
            .split(|&b| b == b'/')
            .map(|c| (c.to_vec(), false))
            .collect();
        let mut links = 0;
        while let Some((comp, from_link)) = todo.pop_front() {
            match comp.as_slice() {
                b"" | b"." => continue,
                b".." => {
                    if stack.len() > 1 {
                        stack.pop();
                    }
                    continue;
                }
                _ => {}
            }
            let top = stack.last().expect("stack holds the root");
            match rfs::statat(top, comp.as_slice(), AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) => match FileType::from_raw_mode(st.st_mode) {
                    FileType::Directory => {
                        let fd = rfs::openat(
                            top,
                            comp.as_slice(),
                            OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                            Mode::empty(),
                        )?;
                        stack.push(fd);
                    }
                    FileType::Symlink => {
                        links += 1;
                        if links > MAX_SYMLINKS {
                            return Err(not_a_dir(rel));
                        }
                        let target =
                            rfs::readlinkat(top, comp.as_slice(), Vec::new())?.into_bytes();
                        if target.first() == Some(&b'/') {
                            stack.truncate(1);
                        }
                        for c in target.split(|&b| b == b'/').rev() {
                            todo.push_front((c.to_vec(), true));
                        }
                    }
                    _ => return Err(not_a_dir(&comp)),
                },
                Err(Errno::NOENT) if create && from_link => return Err(not_a_dir(rel)),
                Err(Errno::NOENT) if create => {
                    let fd = make_dir(top, &comp)?;
                    stack.push(fd);
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(stack.pop().expect("stack holds the root"))
    }
}

/// `mkdir NAME` (0755 whatever the umask) in `dir` and returns an `O_PATH` descriptor of it.
fn make_dir(dir: impl AsFd, name: &[u8]) -> io::Result<OwnedFd> {
    let dir = dir.as_fd();
    match rfs::mkdirat(dir, name, Mode::from_raw_mode(0o755)) {
        Ok(()) => {}
        // Something is there yet resolution said it is missing: a dangling symlink.
        Err(Errno::EXIST) => return Err(not_a_dir(name)),
        Err(e) => return Err(e.into()),
    }
    let fd = rfs::openat(
        dir,
        name,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    rfs::chmodat(dir, name, Mode::from_raw_mode(0o755), AtFlags::empty())?;
    Ok(fd)
}

/// Opens the directory `dir` (any descriptor of it, `O_PATH` included) for reading.
pub(crate) fn reopen_dir(dir: impl AsFd) -> io::Result<OwnedFd> {
    Ok(rfs::openat(
        dir,
        c".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// The names in a directory (read-only descriptor), without `.` and `..`.
pub(crate) fn list_dir(dir: impl AsFd) -> io::Result<Vec<Vec<u8>>> {
    let mut names = Vec::new();
    for entry in rfs::Dir::new(reopen_dir(dir)?)? {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(name.to_vec());
        }
    }
    Ok(names)
}

/// Removes `name` in `dir` whatever it is, a directory with everything in it included,
/// never following a symlink. A missing `name` is not an error.
pub(crate) fn remove_all_at(dir: impl AsFd, name: &[u8]) -> io::Result<()> {
    let dir = dir.as_fd();
    match rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Err(Errno::NOENT) => Ok(()),
        Err(e) => Err(e.into()),
        Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => {
            let sub = rfs::openat(
                dir,
                name,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )?;
            for child in list_dir(&sub)? {
                remove_all_at(&sub, &child)?;
            }
            Ok(rfs::unlinkat(dir, name, AtFlags::REMOVEDIR)?)
        }
        Ok(_) => Ok(rfs::unlinkat(dir, name, AtFlags::empty())?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn clean_folds_and_refuses_escapes() {
        assert_eq!(clean(b"/etc//passwd").unwrap(), b"etc/passwd");
        assert_eq!(clean(b"./a/./b/../c/").unwrap(), b"a/c");
        assert_eq!(clean(b"./").unwrap(), b"");
        assert_eq!(clean(b"a/..").unwrap(), b"");
        assert!(clean(b"../x").is_none());
        assert!(clean(b"a/../../x").is_none());
        assert!(clean(b"/../x").is_none());
    }

    #[test]
    fn split_last_parts() {
        assert_eq!(split_last(b"a/b/c"), (&b"a/b"[..], &b"c"[..]));
        assert_eq!(split_last(b"c"), (&b""[..], &b"c"[..]));
    }

    /// Both resolvers treat symlinks as if the root were `/`.
    #[test]
    fn resolution_stays_inside_root() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        let outside = tmp.path().join("outside");
        std::fs::create_dir_all(root.join("real/sub")).unwrap();
        std::fs::create_dir_all(outside.join("sub")).unwrap();
        symlink("/real", root.join("abs")).unwrap();
        symlink("../../../../outside", root.join("climb")).unwrap();
        symlink("loop2", root.join("loop1")).unwrap();
        symlink("loop1", root.join("loop2")).unwrap();
        for use_openat2 in [true, false] {
            let mut r = Root::open(&root, use_openat2).unwrap();
            let fd = r.dir(b"abs/sub", false).unwrap();
            let st = rfs::fstat(&fd).unwrap();
            let real = std::fs::metadata(root.join("real/sub")).unwrap();
            assert_eq!(st.st_ino, std::os::unix::fs::MetadataExt::ino(&real));
            // `climb` lands on <root>/outside, which does not exist: refused, not escaped.
            assert!(r.dir(b"climb/sub", false).is_err());
            assert!(
                r.dir(b"climb/sub", true).is_err(),
                "dangling symlink is not a directory"
            );
            assert!(r.dir(b"loop1/x", true).is_err());
            // Creating through an absolute symlink creates inside the root.
            r.dir(b"abs/new/deeper", true).unwrap();
            assert!(root.join("real/new/deeper").is_dir());
            std::fs::remove_dir_all(root.join("real/new")).unwrap();
            assert_eq!(r.uses_openat2(), use_openat2);
        }
        assert!(!outside.join("new").exists());
    }

    #[test]
    fn remove_all_does_not_follow_symlinks() {
        let tmp = tempfile::tempdir().unwrap();
        let keep = tmp.path().join("keep");
        std::fs::create_dir(&keep).unwrap();
        std::fs::write(keep.join("f"), b"x").unwrap();
        let d = tmp.path().join("d");
        std::fs::create_dir_all(d.join("e")).unwrap();
        symlink(&keep, d.join("e/link")).unwrap();
        let dirfd = rfs::open(
            tmp.path(),
            OFlags::RDONLY | OFlags::DIRECTORY,
            Mode::empty(),
        )
        .unwrap();
        remove_all_at(&dirfd, b"d").unwrap();
        remove_all_at(&dirfd, b"missing").unwrap();
        assert!(!d.exists());
        assert!(keep.join("f").exists());
    }
}
