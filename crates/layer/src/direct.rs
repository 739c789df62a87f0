//! Writing big layer files, and reading them when they are not in the page cache, with
//! `O_DIRECT`.
//!
//! A layer is fsynced when it is published, so the data of a COPY or of an unpacked layer must
//! reach the disk before the command ends anyway; written through the page cache, every byte
//! is also copied into a newly allocated cache page. On this project's VM that allocation (the
//! host backs each newly used guest page on its first touch) ran at 0.3-0.6 GB/s, against
//! 0.8 GB/s per thread written directly. The walk that hashes a new layer, and a later `save`
//! or `push`, then find those files only on disk, and read them directly too (1.6 GB/s, where
//! reading them into the cache would allocate pages again). Files whose data is in the cache
//! are read through it as before: a direct read would go to the disk.

use std::fs::File;
use std::io::{self, IoSliceMut, Read, Write};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread::JoinHandle;

use rustix::fs::{fcntl_getfl, fcntl_setfl, OFlags};
use rustix::io::{Errno, ReadWriteFlags};

/// Files at least this big are read with `O_DIRECT` when their data is not in the page cache.
pub(crate) const READ_ABOVE: u64 = 1 << 20;

/// Files at least this big are written with `O_DIRECT` where the file system takes it.
pub(crate) const WRITE_ABOVE: u64 = 1 << 20;

/// Bytes per direct read.
pub(crate) const CHUNK: usize = 4 << 20;

/// Alignment of direct reads' buffers, offsets and lengths: the page size, a multiple of every
/// logical block size the kernel's file systems use.
const ALIGN: usize = 4096;

pub(crate) fn shrank() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "file shrank while being archived",
    )
}

/// Whether the start of `file` is in the page cache: a read that must not wait for the disk
/// (`RWF_NOWAIT`) says. When it cannot tell, the answer is yes (read through the cache).
pub(crate) fn cached(file: &File) -> bool {
    let mut one = [0u8; 1];
    !matches!(
        rustix::io::preadv2(
            file,
            &mut [IoSliceMut::new(&mut one)],
            0,
            ReadWriteFlags::NOWAIT,
        ),
        Err(Errno::AGAIN)
    )
}

/// A buffer of [`CHUNK`] bytes starting at an [`ALIGN`]ed address.
pub(crate) struct Aligned {
    bytes: Vec<u8>,
    at: usize,
}

impl Aligned {
    pub(crate) fn new() -> Aligned {
        let bytes = vec![0u8; CHUNK + ALIGN];
        let at = bytes.as_ptr().align_offset(ALIGN);
        Aligned { bytes, at }
    }

    fn get(&self) -> &[u8] {
        &self.bytes[self.at..self.at + CHUNK]
    }

    fn get_mut(&mut self) -> &mut [u8] {
        &mut self.bytes[self.at..self.at + CHUNK]
    }
}

/// Reads up to `want` (at most [`CHUNK`]) bytes of `file` at `offset` into `buf`: all of them,
/// or an error that the file is shorter. The lengths asked stay aligned; the kernel stops at
/// the end of the file.
fn read_chunk(file: &File, buf: &mut Aligned, offset: u64, want: usize) -> io::Result<usize> {
    let asked = want.next_multiple_of(ALIGN);
    let b = buf.get_mut();
    let mut n = 0;
    while n < want {
        match rustix::io::pread(file, &mut b[n..asked], offset + n as u64) {
            Ok(0) => return Err(shrank()),
            Ok(k) => n += k,
            Err(Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(want)
}

/// Switches `file` to `O_DIRECT`; its flags before, or `None` when its file system does not
/// take direct reads.
fn go_direct(file: &File) -> Option<OFlags> {
    let flags = fcntl_getfl(file).ok()?;
    fcntl_setfl(file, flags | OFlags::DIRECT).ok()?;
    Some(flags)
}

/// Writes all of `data` to `fd`.
fn write_all(file: &File, mut data: &[u8]) -> Result<(), Errno> {
    while !data.is_empty() {
        match rustix::io::write(file, data) {
            Ok(0) => return Err(Errno::IO),
            Ok(w) => data = &data[w..],
            Err(Errno::INTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Writes `data` to `file`, open with `O_DIRECT`. `first` holds the file's flags without it
/// until a write has gone through: a file system that took the flag and refuses that first
/// write (`EINVAL`) gets its flags back and the data through the page cache. `None` after.
fn write_direct(file: &File, data: &[u8], first: &mut Option<OFlags>) -> io::Result<()> {
    match (write_all(file, data), first.take()) {
        (Ok(()), _) => Ok(()),
        (Err(Errno::INVAL), Some(flags)) => {
            fcntl_setfl(file, flags)?;
            Ok(write_all(file, data)?)
        }
        (Err(e), _) => Err(e.into()),
    }
}

/// Gives `file` its `flags` back and writes `tail` through the page cache.
fn finish_buffered(file: &File, flags: OFlags, tail: &[u8]) -> io::Result<()> {
    fcntl_setfl(file, flags)?;
    Ok(write_all(file, tail)?)
}

/// Writes a new file's data from the start with `O_DIRECT`, through a buffer its caller fills
/// ([`DirectWrite::space`], then [`DirectWrite::filled`]). The last bytes that do not fill an
/// aligned block are written through the page cache, and so is everything when the file
/// system turns out to refuse direct writes.
pub(crate) struct DirectWrite<'a> {
    file: &'a File,
    buf: &'a mut Aligned,
    len: usize,
    /// The file's flags without `O_DIRECT`.
    flags: OFlags,
    /// The same until the first write went through (see [`write_direct`]).
    first: Option<OFlags>,
}

impl<'a> DirectWrite<'a> {
    /// Switches `file` (new and empty) to `O_DIRECT`; `None` when its file system does not
    /// take it.
    pub(crate) fn start(file: &'a File, buf: &'a mut Aligned) -> Option<DirectWrite<'a>> {
        let flags = go_direct(file)?;
        Some(DirectWrite {
            file,
            buf,
            len: 0,
            flags,
            first: Some(flags),
        })
    }

    /// The free part of the buffer.
    pub(crate) fn space(&mut self) -> &mut [u8] {
        let len = self.len;
        &mut self.buf.get_mut()[len..]
    }

    /// `n` more bytes of [`DirectWrite::space`] are data; a full buffer is written.
    pub(crate) fn filled(&mut self, n: usize) -> io::Result<()> {
        self.len += n;
        if self.len == CHUNK {
            self.write(CHUNK)?;
        }
        Ok(())
    }

    /// Writes the first `n` (aligned) bytes of the buffer, and moves the rest to its start.
    fn write(&mut self, n: usize) -> io::Result<()> {
        write_direct(self.file, &self.buf.get()[..n], &mut self.first)?;
        self.buf.get_mut().copy_within(n..self.len, 0);
        self.len -= n;
        Ok(())
    }

    /// Writes what is left in the buffer; the file is back to its flags.
    pub(crate) fn finish(mut self) -> io::Result<()> {
        let aligned = self.len - self.len % ALIGN;
        if aligned > 0 {
            self.write(aligned)?;
        }
        finish_buffered(self.file, self.flags, &self.buf.get()[..self.len])
    }
}

/// A new file written from its start (`save -o`): whole aligned chunks with `O_DIRECT` by a
/// second thread while the caller fills the next one, the unaligned end through the page
/// cache by [`DirectFile::finish`]. Where the file system refuses direct writes, everything
/// goes through the cache. [`Write::flush`] does nothing: only `finish` writes the end.
pub struct DirectFile {
    file: File,
    buf: Option<Aligned>,
    len: usize,
    /// Full buffers to the writing thread, and empty ones back; `None` when buffered.
    full: Option<SyncSender<Aligned>>,
    empty: Option<Receiver<Aligned>>,
    writer: Option<JoinHandle<io::Result<()>>>,
    /// The file's flags without `O_DIRECT`.
    flags: OFlags,
}

impl DirectFile {
    /// Writes `file`, new and empty, directly where it can.
    pub fn new(file: File) -> io::Result<DirectFile> {
        let flags = fcntl_getfl(&file)?;
        let mut out = DirectFile {
            file,
            buf: Some(Aligned::new()),
            len: 0,
            full: None,
            empty: None,
            writer: None,
            flags,
        };
        let Some(_) = go_direct(&out.file) else {
            return Ok(out);
        };
        let theirs = out.file.try_clone()?;
        let (full_tx, full_rx) = sync_channel::<Aligned>(1);
        let (empty_tx, empty_rx) = sync_channel::<Aligned>(2);
        let _ = empty_tx.send(Aligned::new());
        out.writer = Some(std::thread::spawn(move || -> io::Result<()> {
            let mut first = Some(flags);
            for b in full_rx.iter() {
                write_direct(&theirs, b.get(), &mut first)?;
                if empty_tx.send(b).is_err() {
                    break;
                }
            }
            Ok(())
        }));
        out.full = Some(full_tx);
        out.empty = Some(empty_rx);
        Ok(out)
    }

    /// The writing thread's error, once it has stopped.
    fn writer_error(&mut self) -> io::Error {
        self.full = None;
        match self.writer.take().map(|w| w.join()) {
            Some(Ok(Err(e))) => e,
            _ => io::Error::other("the writing thread stopped"),
        }
    }

    /// Hands the full buffer to the writing thread, or writes it when there is none.
    fn spill(&mut self) -> io::Result<()> {
        let b = self.buf.take().expect("a buffer in hand");
        self.len = 0;
        let (Some(full), Some(empty)) = (&self.full, &self.empty) else {
            let r = write_all(&self.file, b.get());
            self.buf = Some(b);
            return r.map_err(io::Error::from);
        };
        if full.send(b).is_err() {
            return Err(self.writer_error());
        }
        match empty.recv() {
            Ok(b) => self.buf = Some(b),
            Err(_) => return Err(self.writer_error()),
        }
        Ok(())
    }

    /// Writes what is left, and gives the file back with its flags as they were.
    pub fn finish(mut self) -> io::Result<File> {
        self.full = None;
        if let Some(w) = self.writer.take() {
            w.join()
                .map_err(|_| io::Error::other("the writing thread panicked"))??;
        }
        let tail = self.buf.as_ref().map_or(&[][..], |b| &b.get()[..self.len]);
        finish_buffered(&self.file, self.flags, tail)?;
        Ok(self.file)
    }
}

impl Write for DirectFile {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let b = self.buf.as_mut().expect("a buffer in hand");
        let n = data.len().min(CHUNK - self.len);
        b.get_mut()[self.len..self.len + n].copy_from_slice(&data[..n]);
        self.len += n;
        if self.len == CHUNK {
            self.spill()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Why [`read_all`] stopped.
pub(crate) enum Stop<E> {
    Read(io::Error),
    Sink(E),
}

/// Reads `size` bytes of `file` from its start with `O_DIRECT` into two buffers in turn, one
/// filled by a reading thread while `each` takes the other. `None` when the file takes no
/// direct reads (nothing was read).
pub(crate) fn read_all<E>(
    file: &File,
    size: u64,
    each: &mut impl FnMut(&[u8]) -> Result<(), E>,
) -> Option<Result<(), Stop<E>>> {
    let flags = go_direct(file)?;
    let (full_tx, full_rx) = sync_channel::<(Aligned, usize)>(1);
    let (empty_tx, empty_rx) = sync_channel::<Aligned>(2);
    for _ in 0..2 {
        let _ = empty_tx.send(Aligned::new());
    }
    let done = std::thread::scope(|s| {
        let reader = s.spawn(move || -> io::Result<()> {
            let mut offset = 0u64;
            while offset < size {
                let Ok(mut b) = empty_rx.recv() else {
                    return Ok(());
                };
                let want = (size - offset).min(CHUNK as u64) as usize;
                let n = read_chunk(file, &mut b, offset, want)?;
                offset += n as u64;
                if full_tx.send((b, n)).is_err() {
                    return Ok(());
                }
            }
            Ok(())
        });
        let mut sunk = Ok(());
        for (b, n) in full_rx.iter() {
            if let Err(e) = each(&b.get()[..n]) {
                sunk = Err(Stop::Sink(e));
                break;
            }
            // The reader may be done already (its last chunk waits in the channel).
            let _ = empty_tx.send(b);
        }
        drop(full_rx);
        drop(empty_tx);
        let read = reader.join().expect("the reading thread does not panic");
        sunk.and(read.map_err(Stop::Read))
    });
    let _ = fcntl_setfl(file, flags);
    Some(done)
}

/// The first `size` bytes of a file, read with `O_DIRECT` a chunk at a time.
pub(crate) struct DirectRead {
    buf: Aligned,
    /// The unread part of the buffer.
    start: usize,
    end: usize,
    /// Where the next chunk starts, and the bytes still to read after it.
    offset: u64,
    left: u64,
}

impl DirectRead {
    /// A direct reader of `file` (which it switches to `O_DIRECT`) when it is worth one: big,
    /// not in the page cache, on a file system that takes direct reads.
    pub(crate) fn of(file: &File, size: u64) -> Option<DirectRead> {
        if size < READ_ABOVE || cached(file) {
            return None;
        }
        go_direct(file)?;
        Some(DirectRead {
            buf: Aligned::new(),
            start: 0,
            end: 0,
            offset: 0,
            left: size,
        })
    }

    /// Reads into `out` from `file`, which must be the file this reader was made for.
    pub(crate) fn read(&mut self, file: &File, out: &mut [u8]) -> io::Result<usize> {
        if self.start == self.end {
            if self.left == 0 {
                return Ok(0);
            }
            let want = self.left.min(CHUNK as u64) as usize;
            let n = match read_chunk(file, &mut self.buf, self.offset, want) {
                Ok(n) => n,
                // Shorter than it should be: the end, as a plain read says it.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(e),
            };
            self.offset += n as u64;
            self.left -= n as u64;
            self.start = 0;
            self.end = n;
        }
        let n = (self.end - self.start).min(out.len());
        out[..n].copy_from_slice(&self.buf.get()[self.start..self.start + n]);
        self.start += n;
        Ok(n)
    }
}

/// A file read through [`DirectRead`] when that is worth it, through the page cache otherwise.
pub(crate) struct MaybeDirect {
    file: File,
    direct: Option<DirectRead>,
}

impl MaybeDirect {
    /// Reads the first `size` bytes of `file`.
    pub(crate) fn new(file: File, size: u64) -> MaybeDirect {
        let direct = DirectRead::of(&file, size);
        MaybeDirect { file, direct }
    }
}

impl Read for MaybeDirect {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        match &mut self.direct {
            Some(d) => d.read(&self.file, out),
            None => self.file.read(out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    /// A file written, made durable and dropped from the page cache.
    fn uncached(dir: &std::path::Path, len: usize) -> (std::path::PathBuf, Vec<u8>) {
        let data: Vec<u8> = (0..len).map(|i| (i * 13 + i / 4093) as u8).collect();
        let p = dir.join(format!("f{len}"));
        fs::write(&p, &data).unwrap();
        let f = File::open(&p).unwrap();
        // The kernel skips pages it is busy with (under write-back, locked by a reader):
        // asked again until the start of the file is out of the cache (tmpfs has only cache).
        for _ in 0..200 {
            f.sync_all().unwrap();
            rustix::fs::fadvise(&f, 0, None, rustix::fs::Advice::DontNeed).unwrap();
            if on_tmpfs(dir) || !cached(&f) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        (p, data)
    }

    fn on_tmpfs(p: &std::path::Path) -> bool {
        rustix::fs::statfs(p).unwrap().f_type == 0x0102_1994
    }

    /// Read directly, in pieces of any size, a file gives its bytes; a file shorter than said
    /// ends early, as a plain read would.
    #[test]
    fn direct_reads_give_the_files_bytes() {
        let t = tempfile::tempdir().unwrap();
        let tmpfs = on_tmpfs(t.path());
        if tmpfs {
            eprintln!("NOTE: the temporary directory is on tmpfs; read through the cache");
        }
        for (len, piece) in [(READ_ABOVE as usize, 4096), (CHUNK * 2 + 777, 100_000)] {
            let (p, data) = uncached(t.path(), len);
            let file = File::open(&p).unwrap();
            let mut r = MaybeDirect::new(file, len as u64);
            assert_eq!(r.direct.is_some(), !tmpfs, "{len} bytes, not cached");
            let mut got = Vec::new();
            let mut buf = vec![0u8; piece];
            loop {
                let n = r.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
            assert!(got == data, "{len} bytes read in pieces of {piece}");

            // Said to be longer than it is.
            let (p, data) = uncached(t.path(), len);
            let mut r = MaybeDirect::new(File::open(&p).unwrap(), len as u64 + 5000);
            let mut got = Vec::new();
            r.read_to_end(&mut got).unwrap();
            assert!(got.len() <= data.len() && data.starts_with(&got));
        }
    }

    /// A [`DirectFile`] written in pieces of any size holds the bytes, and its flags are back
    /// to what they were.
    #[test]
    fn direct_files_hold_their_bytes() {
        let t = tempfile::tempdir().unwrap();
        if on_tmpfs(t.path()) {
            eprintln!("NOTE: the temporary directory is on tmpfs; written through the cache");
        }
        for (len, piece) in [
            (0, 10),
            (4097, 1000),
            (CHUNK * 3, 65536),
            (CHUNK * 5 + 1, 999_999),
        ] {
            let data: Vec<u8> = (0..len).map(|i| (i * 7 + i / 4099) as u8).collect();
            let p = t.path().join(format!("d{len}"));
            let file = File::create(&p).unwrap();
            let before = fcntl_getfl(&file).unwrap();
            let mut w = DirectFile::new(file).unwrap();
            if !on_tmpfs(t.path()) {
                assert!(w.writer.is_some(), "a disk file system takes direct writes");
            }
            for part in data.chunks(piece) {
                w.write_all(part).unwrap();
            }
            let file = w.finish().unwrap();
            assert_eq!(fcntl_getfl(&file).unwrap(), before, "{len}: flags back");
            drop(file);
            assert!(
                fs::read(&p).unwrap() == data,
                "{len} bytes in pieces of {piece}"
            );
        }
    }

    /// Written directly in pieces of any size, a file holds its bytes, and its flags are back
    /// to what they were.
    #[test]
    fn direct_writes_give_the_files_bytes() {
        let t = tempfile::tempdir().unwrap();
        let mut buf = Aligned::new();
        for (len, piece) in [
            (0, 10),
            (4095, 1000),
            (CHUNK, 65536),
            (2 * CHUNK + 777, 300_001),
        ] {
            let data: Vec<u8> = (0..len).map(|i| (i * 17 + i / 4091) as u8).collect();
            let p = t.path().join(format!("w{len}"));
            let file = File::create(&p).unwrap();
            let before = fcntl_getfl(&file).unwrap();
            let Some(mut w) = DirectWrite::start(&file, &mut buf) else {
                eprintln!("NOTE: no O_DIRECT on this file system; skipped");
                assert!(std::env::var_os("CI").is_none(), "needs a disk file system");
                return;
            };
            for part in data.chunks(piece) {
                let mut part = part;
                while !part.is_empty() {
                    let space = w.space();
                    let n = space.len().min(part.len());
                    space[..n].copy_from_slice(&part[..n]);
                    w.filled(n).unwrap();
                    part = &part[n..];
                }
            }
            w.finish().unwrap();
            assert_eq!(fcntl_getfl(&file).unwrap(), before, "{len}: flags back");
            drop(file);
            assert!(
                fs::read(&p).unwrap() == data,
                "{len} bytes in pieces of {piece}"
            );
        }
    }

    /// The threaded reader hands every chunk to the sink in order, and stops at the sink's
    /// error.
    #[test]
    fn read_all_hands_over_every_chunk_in_order() {
        let t = tempfile::tempdir().unwrap();
        if on_tmpfs(t.path()) {
            eprintln!("NOTE: the temporary directory is on tmpfs; skipped");
            assert!(std::env::var_os("CI").is_none(), "needs a disk file system");
            return;
        }
        let len = 3 * CHUNK + 5;
        let (p, data) = uncached(t.path(), len);
        let file = File::open(&p).unwrap();
        let mut got = Vec::new();
        read_all::<()>(&file, len as u64, &mut |b| {
            got.extend_from_slice(b);
            Ok(())
        })
        .expect("direct reads")
        .unwrap_or_else(|_| panic!("read"));
        assert!(got == data);

        let mut calls = 0;
        let stop = read_all(&file, len as u64, &mut |_| {
            calls += 1;
            Err("full")
        })
        .expect("direct reads");
        assert!(matches!(stop, Err(Stop::Sink("full"))));
        assert_eq!(calls, 1);
    }
}
