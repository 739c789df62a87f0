//! The file system calls that the context hash and COPY share: one `statx` per entry, relative
//! to an open directory; directories read with one reusable buffer; file data copied by
//! cloning (`FICLONE`), by `copy_file_range`, or by `read`/`write`, whichever the two file
//! systems allow (learnt once per copy, not per file).

use std::ffi::CStr;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, RawDir, Statx, StatxFlags, CWD};
use rustix::io::Errno;

/// The stat fields of one entry, from one `statx`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Meta {
    /// Type and permission bits (`st_mode`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub nlink: u32,
    pub size: u64,
    pub dev: u64,
    pub ino: u64,
    pub rdev_major: u32,
    pub rdev_minor: u32,
    pub mtime: (i64, u32),
    pub ctime: (i64, u32),
}

impl Meta {
    fn from_statx(s: &Statx) -> Meta {
        Meta {
            mode: u32::from(s.stx_mode),
            uid: s.stx_uid,
            gid: s.stx_gid,
            nlink: s.stx_nlink,
            size: s.stx_size,
            dev: rustix::fs::makedev(s.stx_dev_major, s.stx_dev_minor),
            ino: s.stx_ino,
            rdev_major: s.stx_rdev_major,
            rdev_minor: s.stx_rdev_minor,
            mtime: (s.stx_mtime.tv_sec, s.stx_mtime.tv_nsec),
            ctime: (s.stx_ctime.tv_sec, s.stx_ctime.tv_nsec),
        }
    }

    pub fn file_type(&self) -> FileType {
        FileType::from_raw_mode(self.mode)
    }

    pub fn is_dir(&self) -> bool {
        self.file_type() == FileType::Directory
    }

    pub fn is_file(&self) -> bool {
        self.file_type() == FileType::RegularFile
    }

    /// Permission bits (with set-id and sticky bits).
    pub fn perm(&self) -> u32 {
        self.mode & 0o7777
    }
}

const STAT_MASK: StatxFlags = StatxFlags::BASIC_STATS;

/// `lstat` of `name` in the open directory `dir` (or of a path, with `CWD`).
pub(crate) fn stat_at(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<Meta> {
    let s = rustix::fs::statx(dir, name, AtFlags::SYMLINK_NOFOLLOW, STAT_MASK)?;
    Ok(Meta::from_statx(&s))
}

/// `stat` of an open file.
pub(crate) fn stat_fd(fd: BorrowedFd<'_>) -> io::Result<Meta> {
    let s = rustix::fs::statx(fd, c"", AtFlags::EMPTY_PATH, STAT_MASK)?;
    Ok(Meta::from_statx(&s))
}

/// Opens a directory (following symlinks: a walk's root may be reached through one).
pub(crate) fn open_dir(path: &Path) -> io::Result<OwnedFd> {
    Ok(rustix::fs::openat(
        CWD,
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// Whether `O_NOATIME` is still tried (it needs the file's owner or CAP_FOWNER).
static NOATIME: AtomicBool = AtomicBool::new(true);

/// Opens `name` in `dir` for reading, never through a symlink, and without moving its atime
/// (which would cost a journalled inode update per context file on its first read).
pub(crate) fn open_file_at(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<OwnedFd> {
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    if NOATIME.load(Ordering::Relaxed) {
        match rustix::fs::openat(dir, name, flags | OFlags::NOATIME, Mode::empty()) {
            Err(Errno::PERM) => NOATIME.store(false, Ordering::Relaxed),
            r => return Ok(r?),
        }
    }
    Ok(rustix::fs::openat(dir, name, flags, Mode::empty())?)
}

/// A buffer for reading directories, reused across them.
pub(crate) struct DirBuf(Vec<MaybeUninit<u8>>);

impl DirBuf {
    pub fn new() -> DirBuf {
        DirBuf(vec![MaybeUninit::uninit(); 32 * 1024])
    }

    /// Calls `each` with every name in the open directory `dir` but `.` and `..`, in the
    /// order the file system gives them; `read_err` makes an error of a failed read.
    pub fn for_each<E>(
        &mut self,
        dir: BorrowedFd<'_>,
        read_err: impl Fn(io::Error) -> E,
        mut each: impl FnMut(&CStr) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut rd = RawDir::new(dir, &mut self.0);
        while let Some(entry) = rd.next() {
            let entry = entry.map_err(|e| read_err(e.into()))?;
            let name = entry.file_name();
            if name == c"." || name == c".." {
                continue;
            }
            each(name)?;
        }
        Ok(())
    }
}

/// Files at least this big are copied (and hashed) on their own, by whichever thread is free,
/// and have their write-back started while they are copied.
pub(crate) const BIG_FILE: u64 = 1 << 20;

/// Bytes per `copy_file_range` call, and between write-back starts.
const CHUNK: usize = 8 << 20;

/// Copies file data by the cheapest means the two file systems share, learning which once:
/// a clone (`FICLONE`: btrfs, XFS), then `copy_file_range` (in the kernel; a clone too where
/// the file system can), then `read`/`write`.
pub(crate) struct DataCopier {
    clone: AtomicBool,
    direct: AtomicBool,
    copy_range: AtomicBool,
}

/// The errors that mean "this pair of file systems cannot do that": try the next way.
fn unsupported(e: Errno) -> bool {
    matches!(
        e,
        Errno::XDEV | Errno::OPNOTSUPP | Errno::NOSYS | Errno::INVAL | Errno::NOTTY | Errno::PERM
    )
}

impl DataCopier {
    pub fn new() -> DataCopier {
        DataCopier {
            clone: AtomicBool::new(true),
            direct: AtomicBool::new(true),
            copy_range: AtomicBool::new(true),
        }
    }

    /// A copier that only reads and writes (tests of the last fallback).
    #[cfg(test)]
    pub fn read_write_only() -> DataCopier {
        DataCopier {
            clone: AtomicBool::new(false),
            direct: AtomicBool::new(false),
            copy_range: AtomicBool::new(false),
        }
    }

    /// A copier that never writes with `O_DIRECT` (tests of `copy_file_range`).
    #[cfg(test)]
    pub fn without_direct() -> DataCopier {
        DataCopier {
            clone: AtomicBool::new(true),
            direct: AtomicBool::new(false),
            copy_range: AtomicBool::new(true),
        }
    }

    /// Whether cloning, `O_DIRECT` writes and `copy_file_range` are still tried.
    #[cfg(test)]
    pub fn methods(&self) -> (bool, bool, bool) {
        (
            self.clone.load(Ordering::Relaxed),
            self.direct.load(Ordering::Relaxed),
            self.copy_range.load(Ordering::Relaxed),
        )
    }

    /// Copies `src` (open for reading, at offset 0) into the new, empty file `dst`: the `size`
    /// bytes it had when it was hashed (less if it shrank since). `buf` is scratch space for
    /// `read`/`write`.
    pub fn copy(
        &self,
        src: BorrowedFd<'_>,
        dst: BorrowedFd<'_>,
        size: u64,
        buf: &mut Vec<u8>,
    ) -> io::Result<()> {
        if size == 0 {
            // Files that report no size (procfs and the like) may still have data.
            return read_write(src, dst, buf, false);
        }
        if self.clone.load(Ordering::Relaxed) {
            match rustix::fs::ioctl_ficlone(dst, src) {
                Ok(()) => return Ok(()),
                Err(e) if unsupported(e) || e == Errno::BADF => {
                    self.clone.store(false, Ordering::Relaxed)
                }
                Err(_) => {}
            }
        }
        let big = size >= BIG_FILE;
        if big && self.direct.load(Ordering::Relaxed) {
            match direct_copy(src, dst, size, buf)? {
                Direct::Copied => return Ok(()),
                Direct::Unsupported => self.direct.store(false, Ordering::Relaxed),
            }
        }
        if self.copy_range.load(Ordering::Relaxed) {
            let mut done: u64 = 0;
            while done < size {
                let want = (size - done).min(CHUNK as u64) as usize;
                match rustix::fs::copy_file_range(src, None, dst, None, want) {
                    // Nothing at all from a file said to have data: some file systems
                    // answer so instead of failing; read/write tells for sure.
                    Ok(0) if done == 0 => break,
                    Ok(0) => return Ok(()),
                    Ok(n) => {
                        if big {
                            layer::start_writeback(dst, done, n as u64);
                        }
                        done += n as u64;
                    }
                    Err(Errno::INTR) => {}
                    Err(e) if done == 0 && unsupported(e) => {
                        self.copy_range.store(false, Ordering::Relaxed);
                        break;
                    }
                    // Part copied: both file offsets moved on, so read/write goes on from
                    // there.
                    Err(_) => break,
                }
            }
            if done >= size {
                return Ok(());
            }
        }
        read_write(src, dst, buf, big)
    }
}

/// Alignment of the buffer, offsets and lengths of `O_DIRECT` writes: the page size, a multiple
/// of every logical block size the kernel's file systems use.
const DIRECT_ALIGN: usize = 4096;

/// What [`direct_copy`] did.
enum Direct {
    Copied,
    /// The destination takes no `O_DIRECT` writes; nothing was read or written.
    Unsupported,
}

/// Copies `size` bytes of `src` into the new, empty file `dst` by reading them and writing them
/// with `O_DIRECT`: straight from the buffer to the disk, no page cache.
///
/// A layer is fsynced when it is published, so a big file's data must reach the disk before
/// the build ends anyway; a copy through the page cache only adds a copy of every byte into
/// newly allocated cache pages. On this project's VM that was most of a cold COPY of 1 GiB:
/// page-cache copies ran at 0.3-0.6 GB/s (the host backs each newly used guest page on first
/// touch), against 0.8 GB/s per thread written directly. The last bytes that do not fill an
/// aligned block are written through the page cache.
fn direct_copy(
    src: BorrowedFd<'_>,
    dst: BorrowedFd<'_>,
    size: u64,
    buf: &mut Vec<u8>,
) -> io::Result<Direct> {
    let flags = rustix::fs::fcntl_getfl(dst)?;
    if rustix::fs::fcntl_setfl(dst, flags | OFlags::DIRECT).is_err() {
        return Ok(Direct::Unsupported);
    }
    if buf.len() < CHUNK + DIRECT_ALIGN {
        buf.resize(CHUNK + DIRECT_ALIGN, 0);
    }
    let start = buf.as_ptr().align_offset(DIRECT_ALIGN);
    let chunk = &mut buf[start..start + CHUNK];
    let mut done: u64 = 0;
    let mut direct = true;
    while done < size {
        let want = (size - done).min(CHUNK as u64) as usize;
        let mut n = 0;
        while n < want {
            match rustix::io::read(src, &mut chunk[n..want]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(Errno::INTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let aligned = if direct { n - n % DIRECT_ALIGN } else { 0 };
        if aligned > 0 {
            match write_all(dst, &chunk[..aligned]) {
                Ok(()) => {}
                // The file system refused direct writes after all: through the page cache
                // from here on.
                Err(Errno::INVAL) if done == 0 => {
                    rustix::fs::fcntl_setfl(dst, flags)?;
                    direct = false;
                    write_all(dst, &chunk[..aligned])?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        if aligned < n {
            if direct {
                rustix::fs::fcntl_setfl(dst, flags)?;
                direct = false;
            }
            write_all(dst, &chunk[aligned..n])?;
        }
        done += n as u64;
        if n < want {
            // The file shrank since it was hashed.
            break;
        }
    }
    if direct {
        rustix::fs::fcntl_setfl(dst, flags)?;
    }
    Ok(Direct::Copied)
}

/// Writes all of `data` to `fd`.
fn write_all(fd: BorrowedFd<'_>, mut data: &[u8]) -> Result<(), Errno> {
    while !data.is_empty() {
        match rustix::io::write(fd, data) {
            Ok(0) => return Err(Errno::IO),
            Ok(w) => data = &data[w..],
            Err(Errno::INTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Copies the rest of `src` into `dst` through `buf`.
fn read_write(
    src: BorrowedFd<'_>,
    dst: BorrowedFd<'_>,
    buf: &mut Vec<u8>,
    writeback: bool,
) -> io::Result<()> {
    if buf.len() < 256 * 1024 {
        buf.resize(256 * 1024, 0);
    }
    let mut since_kick = 0usize;
    let mut at: u64 = 0;
    loop {
        let n = match rustix::io::read(src, &mut buf[..]) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        };
        let mut rest = &buf[..n];
        while !rest.is_empty() {
            match rustix::io::write(dst, rest) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(w) => rest = &rest[w..],
                Err(Errno::INTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
        since_kick += n;
        if writeback && since_kick >= CHUNK {
            layer::start_writeback(dst, at, since_kick as u64);
            at += since_kick as u64;
            since_kick = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::fd::AsFd;

    fn copy_with(copier: &DataCopier, from: &Path, to: &Path) {
        let src = fs::File::open(from).unwrap();
        let dst = fs::File::create(to).unwrap();
        let size = src.metadata().unwrap().len();
        copier
            .copy(src.as_fd(), dst.as_fd(), size, &mut Vec::new())
            .unwrap();
    }

    fn data(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    /// Every way of copying gives the same bytes: the first choice (`O_DIRECT` writes for big
    /// files where the file system takes them), `copy_file_range`, read/write only, and a
    /// copy between two file systems (tmpfs to the disk), where `copy_file_range` fails with
    /// EXDEV and the copier falls back to read/write for the rest of the copy.
    #[test]
    fn every_copy_method_gives_the_same_bytes() {
        let t = tempfile::tempdir().unwrap();
        for len in [
            0,
            1,
            4095,
            BIG_FILE as usize + 12345,
            2 * CHUNK + 7,
            3 * CHUNK,
        ] {
            let want = data(len);
            let src = t.path().join("src");
            fs::write(&src, &want).unwrap();
            let first = DataCopier::new();
            copy_with(&first, &src, &t.path().join("a"));
            assert_eq!(fs::read(t.path().join("a")).unwrap(), want, "len {len}");
            let plain = DataCopier::read_write_only();
            copy_with(&plain, &src, &t.path().join("b"));
            assert_eq!(fs::read(t.path().join("b")).unwrap(), want, "len {len}");
            let ranges = DataCopier::without_direct();
            copy_with(&ranges, &src, &t.path().join("r"));
            assert_eq!(fs::read(t.path().join("r")).unwrap(), want, "len {len}");
            for f in ["a", "b", "r"] {
                fs::remove_file(t.path().join(f)).unwrap();
            }
        }
        let shm = Path::new("/dev/shm");
        if !shm.is_dir() {
            return;
        }
        let other = tempfile::tempdir_in(shm).unwrap();
        let src = other.path().join("src");
        let want = data(3 * CHUNK / 2);
        fs::write(&src, &want).unwrap();
        let across = DataCopier::new();
        copy_with(&across, &src, &t.path().join("c"));
        assert_eq!(fs::read(t.path().join("c")).unwrap(), want);
        let (clone, direct, copy_range) = across.methods();
        assert!(!clone, "tmpfs to another file system clones nothing");
        assert!(
            direct || !copy_range,
            "written directly, or copy_file_range refused"
        );
    }
}
