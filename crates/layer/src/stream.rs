//! Compression detection by magic bytes, and the hashing reader/writer that let one pass over
//! a layer yield both its diff_id (sha256 of the tar) and its blob digest (sha256 of the
//! compressed bytes).

use std::io::{self, Cursor, Read, Write};

use oci::{Digest, Hasher};

use crate::error::{LayerError, Result};

/// How a layer blob is compressed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Compression {
    /// A plain tar.
    None,
    /// gzip (RFC 1952), as Docker pushes layers.
    #[default]
    Gzip,
    /// Zstandard.
    Zstd,
}

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];
const XZ_MAGIC: &[u8] = &[0xfd, b'7', b'z', b'X', b'Z', 0x00];
const BZIP2_MAGIC: &[u8] = b"BZh";
/// The longest magic we look at.
const SNIFF_LEN: usize = 6;

impl Compression {
    /// Decides the compression from the first bytes of a stream (at least 6 unless the stream
    /// is shorter). Anything that is neither gzip nor zstd nor a known unsupported format is
    /// taken for a plain tar; the tar reader then judges it.
    pub fn detect(prefix: &[u8]) -> Result<Compression> {
        if prefix.starts_with(GZIP_MAGIC) {
            Ok(Compression::Gzip)
        } else if prefix.starts_with(ZSTD_MAGIC) {
            Ok(Compression::Zstd)
        } else if prefix.starts_with(XZ_MAGIC) {
            Err(LayerError::UnsupportedCompression("xz"))
        } else if prefix.starts_with(BZIP2_MAGIC) {
            Err(LayerError::UnsupportedCompression("bzip2"))
        } else {
            Ok(Compression::None)
        }
    }

    /// The suffix OCI media types use for this compression (`""`, `"+gzip"`, `"+zstd"`).
    pub fn media_type_suffix(self) -> &'static str {
        match self {
            Compression::None => "",
            Compression::Gzip => "+gzip",
            Compression::Zstd => "+zstd",
        }
    }
}

/// Reads the first bytes of `reader` and returns the compression they announce together with
/// the bytes consumed. Fails with [`LayerError::Empty`] on an empty stream.
pub(crate) fn sniff<R: Read>(reader: &mut R) -> Result<(Compression, Vec<u8>)> {
    let mut prefix = vec![0u8; SNIFF_LEN];
    let mut got = 0;
    while got < SNIFF_LEN {
        match reader.read(&mut prefix[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(LayerError::Read { err }),
        }
    }
    prefix.truncate(got);
    if prefix.is_empty() {
        return Err(LayerError::Empty);
    }
    Ok((Compression::detect(&prefix)?, prefix))
}

/// Wraps a reader (already past the sniffed prefix) in the decoder for `compression`.
pub(crate) fn decoder<'a, R: Read + 'a>(
    compression: Compression,
    prefix: Vec<u8>,
    rest: R,
) -> Result<Box<dyn Read + 'a>> {
    let src = Cursor::new(prefix).chain(rest);
    Ok(match compression {
        Compression::None => Box::new(src),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(src)),
        Compression::Zstd => {
            Box::new(zstd::stream::read::Decoder::new(src).map_err(|err| LayerError::Read { err })?)
        }
    })
}

/// Detects the compression of `reader` by its magic bytes and returns a reader of the
/// decompressed bytes. Useful for archives other than layers (`docker save` tars, gzipped).
pub fn decompress<'a, R: Read + 'a>(mut reader: R) -> Result<(Compression, Box<dyn Read + 'a>)> {
    let (compression, prefix) = sniff(&mut reader)?;
    Ok((compression, decoder(compression, prefix, reader)?))
}

/// [`decompress`] for a reader that may move to another thread.
pub fn decompress_send<'a, R: Read + Send + 'a>(
    mut reader: R,
) -> Result<(Compression, Box<dyn Read + Send + 'a>)> {
    let (compression, prefix) = sniff(&mut reader)?;
    let src = Cursor::new(prefix).chain(reader);
    let out: Box<dyn Read + Send + 'a> = match compression {
        Compression::None => Box::new(src),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(src)),
        Compression::Zstd => {
            Box::new(zstd::stream::read::Decoder::new(src).map_err(|err| LayerError::Read { err })?)
        }
    };
    Ok((compression, out))
}

/// A reader that hashes and counts every byte read through it (or, after
/// [`HashRead::count_only`], only counts them).
pub(crate) struct HashRead<R> {
    inner: R,
    hasher: Option<Hasher>,
    len: u64,
}

impl<R: Read> HashRead<R> {
    pub(crate) fn new(inner: R) -> Self {
        HashRead {
            inner,
            hasher: Some(Hasher::new()),
            len: 0,
        }
    }
    pub(crate) fn len(&self) -> u64 {
        self.len
    }
    /// Stops hashing: the bytes are hashed elsewhere (an uncompressed layer's blob is its tar,
    /// whose digest the reader of the tar takes).
    pub(crate) fn count_only(&mut self) {
        self.hasher = None;
    }
    /// Reads the rest of the stream (so the digest covers all of it) and returns the digest
    /// (`None` after [`HashRead::count_only`]) and byte count.
    pub(crate) fn drain(mut self) -> io::Result<(Option<Digest>, u64)> {
        io::copy(&mut self, &mut io::sink())?;
        Ok((self.hasher.map(Hasher::finish), self.len))
    }
}

impl<R: Read> Read for HashRead<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(h) = &mut self.hasher {
            h.update(&buf[..n]);
        }
        self.len += n as u64;
        Ok(n)
    }
}

/// A writer that hashes and counts every byte written through it (or, made by
/// [`HashWrite::counting`], only counts them).
pub(crate) struct HashWrite<W> {
    inner: W,
    hasher: Option<Hasher>,
    len: u64,
}

impl<W: Write> HashWrite<W> {
    pub(crate) fn new(inner: W) -> Self {
        HashWrite {
            inner,
            hasher: Some(Hasher::new()),
            len: 0,
        }
    }
    /// Counts without hashing: the bytes are hashed elsewhere (an uncompressed blob is its
    /// tar, hashed as the tar is written).
    pub(crate) fn counting(inner: W) -> Self {
        HashWrite {
            inner,
            hasher: None,
            len: 0,
        }
    }
    /// The writer, the digest (`None` when [`HashWrite::counting`]) and the byte count.
    pub(crate) fn finish(self) -> (W, Option<Digest>, u64) {
        (self.inner, self.hasher.map(Hasher::finish), self.len)
    }
}

impl<W: Write> Write for HashWrite<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        if let Some(h) = &mut self.hasher {
            h.update(&buf[..n]);
        }
        self.len += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// gzip level 6 (Go's and zlib's default), zstd level 3 (zstd's default).
const GZIP_LEVEL: u32 = 6;
const ZSTD_LEVEL: i32 = 3;

/// A compressing writer for one of the [`Compression`]s.
pub(crate) enum Encoder<W: Write> {
    None(W),
    Gzip(flate2::write::GzEncoder<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
}

impl<W: Write> Encoder<W> {
    pub(crate) fn new(compression: Compression, out: W) -> io::Result<Self> {
        Ok(match compression {
            Compression::None => Encoder::None(out),
            // mtime 0 and OS "unknown" (255), as Go writes it: same bytes on every host.
            Compression::Gzip => Encoder::Gzip(
                flate2::GzBuilder::new()
                    .operating_system(255)
                    .write(out, flate2::Compression::new(GZIP_LEVEL)),
            ),
            Compression::Zstd => {
                let mut enc = zstd::stream::write::Encoder::new(out, ZSTD_LEVEL)?;
                // Always with workers: see `zstd_workers`.
                let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
                enc.multithread(crate::compress::zstd_workers(cores.min(4)))?;
                enc.include_checksum(true)?;
                Encoder::Zstd(enc)
            }
        })
    }
    pub(crate) fn finish(self) -> io::Result<W> {
        match self {
            Encoder::None(w) => Ok(w),
            Encoder::Gzip(e) => e.finish(),
            Encoder::Zstd(e) => e.finish(),
        }
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::None(w) => w.write(buf),
            Encoder::Gzip(e) => e.write(buf),
            Encoder::Zstd(e) => e.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::None(w) => w.flush(),
            Encoder::Gzip(e) => e.flush(),
            Encoder::Zstd(e) => e.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_by_magic() {
        assert_eq!(
            Compression::detect(&[0x1f, 0x8b, 8, 0]).unwrap(),
            Compression::Gzip
        );
        assert_eq!(
            Compression::detect(&[0x28, 0xb5, 0x2f, 0xfd, 0]).unwrap(),
            Compression::Zstd
        );
        assert_eq!(Compression::detect(b"etc/\0\0").unwrap(), Compression::None);
        assert!(matches!(
            Compression::detect(&[0xfd, b'7', b'z', b'X', b'Z', 0]),
            Err(LayerError::UnsupportedCompression("xz"))
        ));
        assert!(matches!(
            Compression::detect(b"BZh91AY"),
            Err(LayerError::UnsupportedCompression("bzip2"))
        ));
    }

    #[test]
    fn sniff_handles_short_and_empty_streams() {
        assert!(matches!(sniff(&mut &b""[..]), Err(LayerError::Empty)));
        let (c, p) = sniff(&mut &b"ab"[..]).unwrap();
        assert_eq!((c, p.as_slice()), (Compression::None, &b"ab"[..]));
    }

    #[test]
    fn encoders_round_trip_and_are_deterministic() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        for c in [Compression::None, Compression::Gzip, Compression::Zstd] {
            let mut outs = Vec::new();
            for _ in 0..2 {
                let mut e = Encoder::new(c, Vec::new()).unwrap();
                e.write_all(&data).unwrap();
                outs.push(e.finish().unwrap());
            }
            assert_eq!(outs[0], outs[1], "{c:?} output differs between runs");
            let (found, mut r) = decompress(&outs[0][..]).unwrap();
            assert_eq!(found, c);
            let mut back = Vec::new();
            r.read_to_end(&mut back).unwrap();
            assert_eq!(back, data);
        }
    }

    #[test]
    fn hash_reader_and_writer_count_and_hash() {
        let mut r = HashRead::new(&b"hello world"[..]);
        let mut first = [0u8; 5];
        r.read_exact(&mut first).unwrap();
        assert_eq!(r.len(), 5);
        let (d, n) = r.drain().unwrap();
        assert_eq!((d, n), (Some(Digest::of(b"hello world")), 11));
        // Counting only: the bytes still pass and are counted, with no digest.
        let mut r = HashRead::new(&b"hello world"[..]);
        r.read_exact(&mut first).unwrap();
        r.count_only();
        let mut rest = Vec::new();
        r.read_to_end(&mut rest).unwrap();
        assert_eq!(rest, b" world");
        assert_eq!(r.drain().unwrap(), (None, 11));
        let mut w = HashWrite::new(Vec::new());
        w.write_all(b"hello world").unwrap();
        let (v, d, n) = w.finish();
        assert_eq!(
            (v.as_slice(), d, n),
            (&b"hello world"[..], Some(Digest::of(b"hello world")), 11)
        );
        let mut w = HashWrite::counting(Vec::new());
        w.write_all(b"hello world").unwrap();
        let (v, d, n) = w.finish();
        assert_eq!((v.as_slice(), d, n), (&b"hello world"[..], None, 11));
    }
}
