//! Writing a directory as a layer tar in Docker's format: entries in sorted order, parents
//! before children, directory names with a trailing `/`, modes with their type bits, numeric
//! owners, mtimes kept, hardlinks within the layer as link entries, xattrs as PAX records.
//! An overlay upper directory's whiteouts (0/0 character devices) become `.wh.NAME` entries
//! and its opaque directories (`trusted.overlay.opaque=y`) get a `.wh..wh..opq` entry.
//! The uncompressed stream is hashed (the diff_id) on its way into the compressor and the
//! compressed stream on its way out (the blob digest): one pass, no temporary copy.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use oci::{Digest, Hasher};

use crate::compress::Compression;
use crate::error::{Error, Result};
use crate::{OPAQUE_MARKER, OVERLAY_OPAQUE_XATTR, WHITEOUT_PREFIX};

#[derive(Debug, Clone, Copy)]
pub struct WriteOptions {
    /// `None`, `Gzip` or `Zstd`.
    pub compression: Compression,
    /// The directory is an overlay upper dir: translate whiteouts and opaque directories.
    pub overlay: bool,
    /// Compression level (gzip 1–9, zstd 1–19).
    pub level: u32,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            compression: Compression::Gzip,
            overlay: true,
            level: 1,
        }
    }
}

/// The identities of a written layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerDigests {
    pub diff_id: Digest,
    pub tar_size: u64,
    /// Digest and length of the bytes written to the output (the blob).
    pub digest: Digest,
    pub size: u64,
}

struct HashWrite<W> {
    inner: W,
    hasher: Hasher,
}

impl<W: Write> Write for HashWrite<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

enum Encoder<W: Write> {
    Plain(HashWrite<W>),
    Gzip(flate2::write::GzEncoder<HashWrite<W>>),
    Zstd(zstd::stream::write::Encoder<'static, HashWrite<W>>),
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::Plain(w) => w.write(buf),
            Encoder::Gzip(w) => w.write(buf),
            Encoder::Zstd(w) => w.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::Plain(w) => w.flush(),
            Encoder::Gzip(w) => w.flush(),
            Encoder::Zstd(w) => w.flush(),
        }
    }
}

impl<W: Write> Encoder<W> {
    fn finish(self) -> io::Result<HashWrite<W>> {
        match self {
            Encoder::Plain(w) => Ok(w),
            Encoder::Gzip(w) => w.finish(),
            Encoder::Zstd(w) => w.finish(),
        }
    }
}

/// Writes `dir` as a layer tar to `out`.
pub fn write_layer(dir: &Path, out: impl Write, opts: &WriteOptions) -> Result<LayerDigests> {
    let sink = HashWrite {
        inner: out,
        hasher: Hasher::new(),
    };
    let encoder = match opts.compression {
        Compression::None => Encoder::Plain(sink),
        Compression::Gzip => Encoder::Gzip(flate2::write::GzEncoder::new(
            sink,
            flate2::Compression::new(opts.level),
        )),
        Compression::Zstd => {
            let mut e = zstd::stream::write::Encoder::new(sink, opts.level as i32)
                .map_err(|e| Error::io(dir, e))?;
            let _ = e.multithread(2);
            Encoder::Zstd(e)
        }
        other => {
            return Err(Error::io(
                dir,
                io::Error::new(
                    io::ErrorKind::Unsupported,
                    format!("cannot write {other:?} layers"),
                ),
            ))
        }
    };
    let tar_stream = HashWrite {
        inner: encoder,
        hasher: Hasher::new(),
    };
    let mut builder = tar::Builder::new(tar_stream);
    builder.mode(tar::HeaderMode::Complete);
    let mut w = Walker {
        builder: &mut builder,
        overlay: opts.overlay,
        links: HashMap::new(),
    };
    w.walk(dir, "")?;
    let tar_stream = builder.into_inner().map_err(|e| Error::io(dir, e))?;
    let HashWrite {
        inner: encoder,
        hasher: tar_hasher,
    } = tar_stream;
    let tar_size = tar_hasher.len();
    let diff_id = tar_hasher.finish();
    let mut sink = encoder.finish().map_err(|e| Error::io(dir, e))?;
    sink.flush().map_err(|e| Error::io(dir, e))?;
    let size = sink.hasher.len();
    Ok(LayerDigests {
        diff_id,
        tar_size,
        digest: sink.hasher.finish(),
        size,
    })
}

struct Walker<'a, W: Write> {
    builder: &'a mut tar::Builder<W>,
    overlay: bool,
    /// (dev, inode) of files with several links -> the first name written.
    links: HashMap<(u64, u64), String>,
}

fn header_for(md: &fs::Metadata, kind: tar::EntryType, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(md.uid() as u64);
    h.set_gid(md.gid() as u64);
    h.set_mtime(md.mtime().max(0) as u64);
    h.set_size(0);
    h
}

fn xattrs(path: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut names = vec![0u8; 4096];
    let Ok(n) = rustix::fs::llistxattr(path, &mut names) else {
        return out;
    };
    for name in names[..n].split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let Ok(name) = std::str::from_utf8(name) else {
            continue;
        };
        if name.starts_with("trusted.overlay.") {
            continue;
        }
        let mut value = vec![0u8; 65536];
        if let Ok(len) = rustix::fs::lgetxattr(path, name, &mut value) {
            value.truncate(len);
            out.push((format!("SCHILY.xattr.{name}"), value));
        }
    }
    out.sort();
    out
}

fn is_opaque(path: &Path) -> bool {
    let mut v = [0u8; 4];
    matches!(rustix::fs::lgetxattr(path, OVERLAY_OPAQUE_XATTR, &mut v), Ok(1) if v[0] == b'y')
}

impl<W: Write> Walker<'_, W> {
    fn append(
        &mut self,
        mut h: tar::Header,
        name: &str,
        data: impl io::Read,
        path: &Path,
        x: &[(String, Vec<u8>)],
    ) -> Result<()> {
        if !x.is_empty() {
            let records: Vec<(&str, &[u8])> =
                x.iter().map(|(k, v)| (k.as_str(), v.as_slice())).collect();
            self.builder
                .append_pax_extensions(records)
                .map_err(|e| Error::io(path, e))?;
        }
        self.builder
            .append_data(&mut h, name, data)
            .map_err(|e| Error::io(path, e))
    }

    fn walk(&mut self, dir: &Path, prefix: &str) -> Result<()> {
        let mut names: Vec<OsString> = fs::read_dir(dir)
            .map_err(|e| Error::io(dir, e))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<io::Result<_>>()
            .map_err(|e| Error::io(dir, e))?;
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        for n in names {
            let path = dir.join(&n);
            let Some(n) = n.to_str() else {
                return Err(Error::io(
                    &path,
                    io::Error::new(io::ErrorKind::InvalidData, "file name is not UTF-8"),
                ));
            };
            let name = format!("{prefix}{n}");
            let md = path.symlink_metadata().map_err(|e| Error::io(&path, e))?;
            let ft = md.file_type();
            let perm = md.mode() & 0o7777;
            if ft.is_dir() {
                let h = header_for(&md, tar::EntryType::Directory, perm | 0o040000);
                self.append(h, &format!("{name}/"), io::empty(), &path, &xattrs(&path))?;
                if self.overlay && is_opaque(&path) {
                    let mut h = header_for(&md, tar::EntryType::Regular, perm);
                    h.set_mtime(0);
                    self.append(
                        h,
                        &format!("{name}/{OPAQUE_MARKER}"),
                        io::empty(),
                        &path,
                        &[],
                    )?;
                }
                self.walk(&path, &format!("{name}/"))?;
            } else if ft.is_char_device() && self.overlay && md.rdev() == 0 {
                let mut h = header_for(&md, tar::EntryType::Regular, 0o600);
                h.set_uid(0);
                h.set_gid(0);
                let wh = match name.rsplit_once('/') {
                    Some((d, f)) => format!("{d}/{WHITEOUT_PREFIX}{f}"),
                    None => format!("{WHITEOUT_PREFIX}{name}"),
                };
                self.append(h, &wh, io::empty(), &path, &[])?;
            } else if ft.is_file() {
                if md.nlink() > 1 {
                    if let Some(first) = self.links.get(&(md.dev(), md.ino())) {
                        let mut h = header_for(&md, tar::EntryType::Link, perm | 0o100000);
                        h.set_link_name(first).map_err(|e| Error::io(&path, e))?;
                        self.append(h, &name, io::empty(), &path, &[])?;
                        continue;
                    }
                    self.links.insert((md.dev(), md.ino()), name.clone());
                }
                let mut h = header_for(&md, tar::EntryType::Regular, perm | 0o100000);
                h.set_size(md.len());
                let f = fs::File::open(&path).map_err(|e| Error::io(&path, e))?;
                let x = xattrs(&path);
                self.append(h, &name, f, &path, &x)?;
            } else if ft.is_symlink() {
                let target = fs::read_link(&path).map_err(|e| Error::io(&path, e))?;
                let mut h = header_for(&md, tar::EntryType::Symlink, perm | 0o120000);
                self.builder
                    .append_link(&mut h, &name, &target)
                    .map_err(|e| Error::io(&path, e))?;
            } else if ft.is_char_device() || ft.is_block_device() || ft.is_fifo() {
                let (kind, bits) = if ft.is_char_device() {
                    (tar::EntryType::Char, 0o020000)
                } else if ft.is_block_device() {
                    (tar::EntryType::Block, 0o060000)
                } else {
                    (tar::EntryType::Fifo, 0o010000)
                };
                let mut h = header_for(&md, kind, perm | bits);
                let rdev = md.rdev();
                h.set_device_major(rustix::fs::major(rdev))
                    .map_err(|e| Error::io(&path, e))?;
                h.set_device_minor(rustix::fs::minor(rdev))
                    .map_err(|e| Error::io(&path, e))?;
                self.append(h, &name, io::empty(), &path, &[])?;
            }
            // Sockets are not archived, as Docker does.
        }
        Ok(())
    }
}
