//! Tar-split files: a layer kept as its unpacked directory plus the bytes of its tar that
//! are not file data (headers, PAX records, padding, the end-of-archive blocks, anything after
//! them), so the exact tar, and so its diff_id, can be put back together without keeping the
//! tar or a compressed blob (Docker keeps the same with its `tar-split` metadata).
//!
//! The file is a zstd stream: a magic line, then records until an end record:
//!
//! ```text
//! 0x01 LEN BYTES          literal tar bytes
//! 0x02 SIZE LEN PATH      SIZE bytes of data from the regular file PATH of the layer directory
//! 0x00                    end
//! ```
//!
//! Numbers are LEB128. `PATH` is relative to the layer directory and free of symlinks (file
//! data is only referenced when the file was written at that very path); it is opened with
//! `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS)`.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::Path;

use crate::direct::MaybeDirect;
use rustix::fs::{self as rfs, Mode, OFlags, ResolveFlags};

const MAGIC: &[u8] = b"strata tar-split 1\n";
const END: u8 = 0;
const LITERAL: u8 = 1;
const FILE: u8 = 2;
/// Literal bytes are gathered up to this many before a record is written.
const LITERAL_CHUNK: usize = 64 * 1024;
const ZSTD_LEVEL: i32 = 1;

fn write_uvarint(out: &mut impl Write, mut v: u64) -> io::Result<()> {
    let mut buf = [0u8; 10];
    let mut n = 0;
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            buf[n] = byte;
            n += 1;
            break;
        }
        buf[n] = byte | 0x80;
        n += 1;
    }
    out.write_all(&buf[..n])
}

fn read_uvarint(input: &mut impl Read) -> io::Result<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let mut b = [0u8];
        input.read_exact(&mut b)?;
        v |= u64::from(b[0] & 0x7f) << shift;
        if b[0] & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(corrupt("a number is too long"))
}

fn corrupt(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("corrupt tar-split file: {what}"),
    )
}

/// Writes a tar-split file as the tar goes by: [`SplitWriter::literal`] for bytes kept as
/// they are, [`SplitWriter::file`] where file data follows that the layer directory holds.
pub struct SplitWriter<W: Write> {
    out: zstd::stream::write::Encoder<'static, BufWriter<W>>,
    pending: Vec<u8>,
}

impl<W: Write> SplitWriter<W> {
    pub fn new(out: W) -> io::Result<SplitWriter<W>> {
        let mut out = zstd::stream::write::Encoder::new(BufWriter::new(out), ZSTD_LEVEL)?;
        out.write_all(MAGIC)?;
        Ok(SplitWriter {
            out,
            pending: Vec::with_capacity(LITERAL_CHUNK),
        })
    }

    /// Tar bytes to keep as they are.
    pub fn literal(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            let n = (LITERAL_CHUNK - self.pending.len()).min(bytes.len());
            self.pending.extend_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
            if self.pending.len() >= LITERAL_CHUNK {
                self.flush_literal()?;
            }
        }
        Ok(())
    }

    fn flush_literal(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.out.write_all(&[LITERAL])?;
        write_uvarint(&mut self.out, self.pending.len() as u64)?;
        self.out.write_all(&self.pending)?;
        self.pending.clear();
        Ok(())
    }

    /// `size` bytes of tar data that are the contents of the regular file `path` (relative to
    /// the layer directory, no symlinks on the way).
    pub fn file(&mut self, path: &[u8], size: u64) -> io::Result<()> {
        self.flush_literal()?;
        self.out.write_all(&[FILE])?;
        write_uvarint(&mut self.out, size)?;
        write_uvarint(&mut self.out, path.len() as u64)?;
        self.out.write_all(path)
    }

    /// Writes the end record and returns the underlying writer, flushed.
    pub fn finish(mut self) -> io::Result<W> {
        self.flush_literal()?;
        self.out.write_all(&[END])?;
        let buffered = self.out.finish()?;
        buffered.into_inner().map_err(|e| e.into_error())
    }
}

/// One record of a tar-split file.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Record {
    Literal(Vec<u8>),
    File { path: Vec<u8>, size: u64 },
    End,
}

/// Reads the records of a tar-split file.
pub(crate) struct SplitReader<R: Read> {
    input: zstd::stream::read::Decoder<'static, BufReader<R>>,
}

impl<R: Read> SplitReader<R> {
    pub(crate) fn new(input: R) -> io::Result<SplitReader<R>> {
        let mut input = zstd::stream::read::Decoder::new(input)?;
        let mut magic = [0u8; MAGIC.len()];
        input
            .read_exact(&mut magic)
            .map_err(|_| corrupt("no header"))?;
        if magic != MAGIC {
            return Err(corrupt("unknown header"));
        }
        Ok(SplitReader { input })
    }

    pub(crate) fn next(&mut self) -> io::Result<Record> {
        let mut tag = [0u8];
        self.input
            .read_exact(&mut tag)
            .map_err(|_| corrupt("it ends without an end record"))?;
        match tag[0] {
            END => Ok(Record::End),
            LITERAL => {
                let len = read_uvarint(&mut self.input)?;
                if len > LITERAL_CHUNK as u64 {
                    return Err(corrupt("a literal record is too long"));
                }
                let mut bytes = vec![0u8; len as usize];
                self.input.read_exact(&mut bytes)?;
                Ok(Record::Literal(bytes))
            }
            FILE => {
                let size = read_uvarint(&mut self.input)?;
                let len = read_uvarint(&mut self.input)?;
                if len > 64 * 1024 {
                    return Err(corrupt("a path is too long"));
                }
                let mut path = vec![0u8; len as usize];
                self.input.read_exact(&mut path)?;
                Ok(Record::File { path, size })
            }
            other => Err(corrupt(&format!("unknown record type {other}"))),
        }
    }
}

/// Opens the regular file `rel` of the directory `root` without following any symlink.
pub(crate) fn open_in(root: &File, rel: &[u8]) -> io::Result<File> {
    let fd = rfs::openat2(
        root,
        rel,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
    )?;
    Ok(File::from(fd))
}

/// The tar of a layer directory and its tar-split file, read back byte for byte.
///
/// The bytes are only as right as the directory is unchanged: callers check the sha256 of
/// what they read against the diff_id.
pub struct TarReader<R: Read> {
    root: File,
    split: SplitReader<R>,
    /// The literal record being read and how far.
    literal: Vec<u8>,
    literal_at: usize,
    /// The file being read, its path and the bytes still due.
    file: Option<(MaybeDirect, Vec<u8>, u64)>,
    done: bool,
}

impl TarReader<File> {
    /// The tar of the layer directory `dir` with the tar-split file `split`.
    pub fn open(dir: &Path, split: &Path) -> io::Result<TarReader<File>> {
        let split = File::open(split)
            .map_err(|e| io::Error::new(e.kind(), format!("opening {}: {e}", split.display())))?;
        TarReader::new(dir, split)
    }
}

impl<R: Read> TarReader<R> {
    pub fn new(dir: &Path, split: R) -> io::Result<TarReader<R>> {
        let root = File::open(dir)
            .map_err(|e| io::Error::new(e.kind(), format!("opening {}: {e}", dir.display())))?;
        Ok(TarReader {
            root,
            split: SplitReader::new(split)?,
            literal: Vec::new(),
            literal_at: 0,
            file: None,
            done: false,
        })
    }

    fn shown(path: &[u8]) -> String {
        String::from_utf8_lossy(path).into_owned()
    }
}

impl<R: Read> Read for TarReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if self.literal_at < self.literal.len() {
                let n = (self.literal.len() - self.literal_at).min(buf.len());
                buf[..n].copy_from_slice(&self.literal[self.literal_at..self.literal_at + n]);
                self.literal_at += n;
                return Ok(n);
            }
            if let Some((file, path, left)) = &mut self.file {
                if *left == 0 {
                    self.file = None;
                    continue;
                }
                let want = (*left).min(buf.len() as u64) as usize;
                let n = match file.read(&mut buf[..want]) {
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        return Err(io::Error::new(
                            e.kind(),
                            format!("reading {} of the layer: {e}", Self::shown(path)),
                        ))
                    }
                };
                if n == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!(
                            "file {} of the layer is shorter than its tar entry: the layer directory changed",
                            Self::shown(path)
                        ),
                    ));
                }
                *left -= n as u64;
                return Ok(n);
            }
            if self.done {
                return Ok(0);
            }
            match self.split.next()? {
                Record::End => self.done = true,
                Record::Literal(bytes) => {
                    self.literal = bytes;
                    self.literal_at = 0;
                }
                Record::File { path, size } => {
                    let file = open_in(&self.root, &path).map_err(|e| {
                        io::Error::new(
                            e.kind(),
                            format!("opening {} of the layer: {e}", Self::shown(&path)),
                        )
                    })?;
                    self.file = Some((MaybeDirect::new(file, size), path, size));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip() {
        for v in [0u64, 1, 127, 128, 300, 1 << 40, u64::MAX] {
            let mut buf = Vec::new();
            write_uvarint(&mut buf, v).unwrap();
            assert_eq!(read_uvarint(&mut buf.as_slice()).unwrap(), v);
        }
    }

    #[test]
    fn reassembles_literals_and_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("d")).unwrap();
        std::fs::write(dir.path().join("d/f"), b"hello").unwrap();
        let mut w = SplitWriter::new(Vec::new()).unwrap();
        w.literal(b"head").unwrap();
        w.file(b"d/f", 5).unwrap();
        w.literal(b"pad").unwrap();
        w.literal(b"end").unwrap();
        let split = w.finish().unwrap();
        let mut out = Vec::new();
        TarReader::new(dir.path(), split.as_slice())
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, b"headhellopadend");
    }

    #[test]
    fn a_shrunk_file_or_a_symlink_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), b"hi").unwrap();
        std::os::unix::fs::symlink("f", dir.path().join("l")).unwrap();
        for (path, size) in [(&b"f"[..], 5u64), (b"l", 2)] {
            let mut w = SplitWriter::new(Vec::new()).unwrap();
            w.file(path, size).unwrap();
            let split = w.finish().unwrap();
            let mut out = Vec::new();
            let r = TarReader::new(dir.path(), split.as_slice())
                .unwrap()
                .read_to_end(&mut out);
            assert!(r.is_err(), "{path:?}");
        }
    }

    #[test]
    fn garbage_is_refused() {
        assert!(SplitReader::new(&b"not zstd"[..]).is_err());
        let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 1).unwrap();
        enc.write_all(MAGIC).unwrap();
        enc.write_all(&[9]).unwrap();
        let bytes = enc.finish().unwrap();
        let mut r = SplitReader::new(bytes.as_slice()).unwrap();
        assert!(r.next().is_err());
    }
}
