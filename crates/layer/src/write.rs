//! Writing a directory as a layer tar in Docker's format: a depth-first walk with each
//! directory's names in byte order (Go's `filepath.Walk`), no entry for the root, hardlinks
//! found by inode, and, for overlay upper directories, whiteout devices and opaque xattrs
//! translated into `.wh.` entries. The tar is hashed (diff_id) as it goes into the
//! compressor, and the compressor's output is hashed (blob digest) as it goes out.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{self, File, Metadata, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

use oci::{Digest, Hasher};
use rustix::io::Errno;

use crate::apply::{OVERLAY_OPAQUE_XATTR, WHITEOUT_OPAQUE, WHITEOUT_PREFIX};
use crate::direct;
use crate::error::{LayerError, Result};
use crate::split::SplitWriter;
use crate::stream::{Compression, Encoder, HashWrite};
use crate::tarfmt::{self, flag, Header};

/// The identities of a written layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LayerDigests {
    /// sha256 of the uncompressed tar.
    pub diff_id: Digest,
    /// sha256 of the blob as written (equal to `diff_id` when uncompressed).
    pub digest: Digest,
    /// Bytes of the blob as written.
    pub size: u64,
    /// Bytes of the uncompressed tar.
    pub uncompressed_size: u64,
}

/// Writes the overlay upper directory `upper` as a layer tar to `out`: whiteouts (0/0
/// character devices) become `.wh.NAME` entries and directories with
/// `trusted.overlay.opaque=y` are followed by a `DIR/.wh..wh..opq` entry. The same tree
/// always gives the same bytes.
///
/// The upper directory must not be in use by a mounted overlay while it is read, and must
/// come from a mount without `redirect_dir` or `metacopy` (refused when found).
pub fn write_layer<W: Write>(
    upper: &Path,
    out: W,
    compression: Compression,
) -> Result<LayerDigests> {
    write_dir(upper, out, compression, true)
}

/// Writes a plain directory (a root filesystem to import) as a layer tar, without whiteout
/// translation: character devices are devices.
pub fn write_tree<W: Write>(dir: &Path, out: W, compression: Compression) -> Result<LayerDigests> {
    write_dir(dir, out, compression, false)
}

/// A layer written by [`write_layer_split`].
#[derive(Debug)]
pub struct SplitLayer<W> {
    pub digests: LayerDigests,
    /// Docker's DiffSize (as [`crate::diff_size`] measures it), counted during the same walk.
    pub diff_size: u64,
    /// The tar-split file's writer, flushed.
    pub split: W,
}

/// Writes the overlay upper directory `upper` as a layer tar without writing the tar
/// anywhere: the tar is hashed (its diff_id) while its headers and padding go to the tar-split
/// file `split` and its file data is left where it is, in `upper` (see [`crate::split`]). The
/// returned digest and size are the tar's. Reading the directory back through
/// [`crate::TarReader`] gives the same bytes as long as it is unchanged.
pub fn write_layer_split<W: Write>(upper: &Path, split: W) -> Result<SplitLayer<W>> {
    check_root(upper)?;
    let mut sink = SplitSink {
        hasher: Hasher::new(),
        split: SplitWriter::new(split).map_err(write_err)?,
    };
    let mut walker = Walker::new(upper, true);
    walker.walk(&mut sink)?;
    tarfmt::write_end(&mut sink).map_err(write_err)?;
    let size = sink.hasher.len();
    let diff_id = sink.hasher.finish();
    let out = sink.split.finish().map_err(write_err)?;
    Ok(SplitLayer {
        digests: LayerDigests {
            diff_id,
            digest: diff_id,
            size,
            uncompressed_size: size,
        },
        diff_size: walker.diff_size,
        split: out,
    })
}

fn write_err(err: io::Error) -> LayerError {
    LayerError::Write { err }
}

fn check_root(root: &Path) -> Result<()> {
    let md = fs::metadata(root).map_err(|err| LayerError::Root {
        path: root.to_path_buf(),
        err,
    })?;
    if !md.is_dir() {
        return Err(LayerError::Root {
            path: root.to_path_buf(),
            err: io::Error::new(io::ErrorKind::NotADirectory, "not a directory"),
        });
    }
    Ok(())
}

fn write_dir<W: Write>(
    root: &Path,
    out: W,
    compression: Compression,
    overlay: bool,
) -> Result<LayerDigests> {
    check_root(root)?;
    // Uncompressed, the blob is the tar: hashed once, as the tar.
    let blob = match compression {
        Compression::None => HashWrite::counting(out),
        _ => HashWrite::new(out),
    };
    let encoder = Encoder::new(compression, blob).map_err(write_err)?;
    let mut tar = Plain(HashWrite::new(encoder));
    let mut walker = Walker::new(root, overlay);
    walker.walk(&mut tar)?;
    tarfmt::write_end(&mut tar).map_err(write_err)?;
    let (encoder, diff_id, uncompressed_size) = tar.0.finish();
    let diff_id = diff_id.expect("the tar is hashed");
    let (mut out, digest, size) = encoder.finish().map_err(write_err)?.finish();
    out.flush().map_err(write_err)?;
    Ok(LayerDigests {
        diff_id,
        digest: digest.unwrap_or(diff_id),
        size,
        uncompressed_size,
    })
}

/// Writes the plain directory `dir` as an uncompressed tar, as [`write_tree`] does, without
/// hashing it: for archives nobody names by digest (`export`, `build --output type=tar`, a
/// volume's copy of the image's files). Returns the tar's size.
pub fn archive_tree<W: Write>(dir: &Path, out: W) -> Result<u64> {
    check_root(dir)?;
    let mut tar = Plain(HashWrite::counting(out));
    let mut walker = Walker::new(dir, false);
    walker.walk(&mut tar)?;
    tarfmt::write_end(&mut tar).map_err(write_err)?;
    let (mut out, _, size) = tar.0.finish();
    out.flush().map_err(write_err)?;
    Ok(size)
}

/// Where a walked tar goes: its bytes through `Write`, and the data of regular files.
trait TarSink: Write {
    /// Passes on the `size` bytes of data of the regular file `rel`, opened as `file`.
    fn file_data(
        &mut self,
        rel: &[u8],
        path: &Path,
        file: &mut File,
        size: u64,
        buf: &mut [u8],
    ) -> Result<()>;
}

/// A sink that writes the whole tar.
struct Plain<W>(W);

impl<W: Write> Write for Plain<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl<W: Write> TarSink for Plain<W> {
    fn file_data(
        &mut self,
        _rel: &[u8],
        path: &Path,
        file: &mut File,
        size: u64,
        buf: &mut [u8],
    ) -> Result<()> {
        read_exactly(path, file, size, buf, |chunk| {
            self.0.write_all(chunk).map_err(write_err)
        })
    }
}

/// A sink that hashes the tar and keeps only what is not file data, in a tar-split file.
struct SplitSink<W: Write> {
    hasher: Hasher,
    split: SplitWriter<W>,
}

impl<W: Write> Write for SplitSink<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.hasher.update(buf);
        self.split.literal(buf)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<W: Write> TarSink for SplitSink<W> {
    fn file_data(
        &mut self,
        rel: &[u8],
        path: &Path,
        file: &mut File,
        size: u64,
        buf: &mut [u8],
    ) -> Result<()> {
        self.split.file(rel, size).map_err(write_err)?;
        let hasher = &mut self.hasher;
        read_exactly(path, file, size, buf, |chunk| {
            hasher.update(chunk);
            Ok(())
        })
    }
}

/// Reads exactly `size` bytes of `file` (the entry `rel`) and hands them to `each`.
///
/// A big file whose data is not in the page cache (a COPY writes big files past it, with
/// `O_DIRECT`) is read with `O_DIRECT` too, by a second thread while this one hashes: reading
/// it into the cache would allocate a page for every byte read once, the slowest part of a
/// cold build on this project's VM.
fn read_exactly(
    path: &Path,
    file: &mut File,
    size: u64,
    buf: &mut [u8],
    mut each: impl FnMut(&[u8]) -> Result<()>,
) -> Result<()> {
    let src = |op, err| LayerError::Source {
        path: path.to_path_buf(),
        op,
        err,
    };
    if size >= direct::READ_ABOVE && !direct::cached(file) {
        if let Some(done) = direct::read_all(file, size, &mut each) {
            return done.map_err(|e| match e {
                direct::Stop::Read(err) => src("read", err),
                direct::Stop::Sink(e) => e,
            });
        }
    }
    let mut left = size;
    while left > 0 {
        let want = left.min(buf.len() as u64) as usize;
        let n = match file.read(&mut buf[..want]) {
            Ok(0) => return Err(src("read", direct::shrank())),
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(src("read", err)),
        };
        each(&buf[..n])?;
        left -= n as u64;
    }
    Ok(())
}

struct Walker<'a> {
    root: &'a Path,
    overlay: bool,
    /// First archived name of each multiply-linked inode.
    links: HashMap<(u64, u64), Vec<u8>>,
    buf: Vec<u8>,
    /// Sizes of non-directories, each inode once (Docker's DiffSize).
    diff_size: u64,
}

impl<'a> Walker<'a> {
    fn new(root: &'a Path, overlay: bool) -> Walker<'a> {
        Walker {
            root,
            overlay,
            links: HashMap::new(),
            buf: vec![0; 256 * 1024],
            diff_size: 0,
        }
    }
}

/// Names in `dir`, sorted bytewise.
fn sorted_names(dir: &Path) -> Result<Vec<Vec<u8>>> {
    let src = |err| LayerError::Source {
        path: dir.to_path_buf(),
        op: "reading directory",
        err,
    };
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).map_err(src)? {
        names.push(entry.map_err(src)?.file_name().as_bytes().to_vec());
    }
    names.sort();
    Ok(names)
}

/// All extended attributes of `path` (not following a symlink), sorted by name.
fn read_xattrs(path: &Path) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let src = |err: Errno| LayerError::Source {
        path: path.to_path_buf(),
        op: "reading xattrs",
        err: err.into(),
    };
    let list = loop {
        let n = match rustix::fs::llistxattr_query(path) {
            Ok(n) => n,
            Err(Errno::NOTSUP) => return Ok(Vec::new()),
            Err(e) => return Err(src(e)),
        };
        let mut buf = vec![0u8; n];
        match rustix::fs::llistxattr(path, &mut buf[..]) {
            Ok(n) => {
                buf.truncate(n);
                break buf;
            }
            Err(Errno::RANGE) => continue,
            Err(e) => return Err(src(e)),
        }
    };
    let mut out = Vec::new();
    for name in list.split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let value = loop {
            let n = match rustix::fs::lgetxattr_query(path, name) {
                Ok(n) => n,
                Err(Errno::NODATA) => break None,
                Err(e) => return Err(src(e)),
            };
            let mut buf = vec![0u8; n];
            match rustix::fs::lgetxattr(path, name, &mut buf[..]) {
                Ok(n) => {
                    buf.truncate(n);
                    break Some(buf);
                }
                Err(Errno::RANGE) => continue,
                Err(Errno::NODATA) => break None,
                Err(e) => return Err(src(e)),
            }
        };
        if let Some(value) = value {
            out.push((name.to_vec(), value));
        }
    }
    out.sort();
    Ok(out)
}

/// Docker's overlay2 writes numeric owners; 20.10 looked names up on the host, which gave
/// `root` for 0. Other ids get no name, so output does not depend on the host.
fn owner_name(id: u32) -> Vec<u8> {
    if id == 0 {
        b"root".to_vec()
    } else {
        Vec::new()
    }
}

impl Walker<'_> {
    fn walk<W: TarSink>(&mut self, tar: &mut W) -> Result<()> {
        let mut stack: Vec<(Vec<u8>, std::vec::IntoIter<Vec<u8>>)> =
            vec![(Vec::new(), sorted_names(self.root)?.into_iter())];
        while let Some((prefix, names)) = stack.last_mut() {
            let Some(name) = names.next() else {
                stack.pop();
                continue;
            };
            let mut rel = prefix.clone();
            rel.extend_from_slice(&name);
            if let Some(dir) = self.entry(tar, rel, name.len())? {
                let names = sorted_names(&self.root.join(OsStr::from_bytes(&dir)))?;
                stack.push((dir, names.into_iter()));
            }
        }
        Ok(())
    }

    /// Writes one entry; returns the directory prefix (`a/b/`) to descend into, if any.
    fn entry<W: TarSink>(
        &mut self,
        tar: &mut W,
        rel: Vec<u8>,
        name_len: usize,
    ) -> Result<Option<Vec<u8>>> {
        let path = self.root.join(OsStr::from_bytes(&rel));
        let md = fs::symlink_metadata(&path).map_err(|err| LayerError::Source {
            path: path.clone(),
            op: "lstat",
            err,
        })?;
        let ft = md.file_type();
        let mut h = Header {
            name: rel.clone(),
            mode: md.mode(),
            uid: md.uid() as u64,
            gid: md.gid() as u64,
            mtime: md.mtime(),
            uname: owner_name(md.uid()),
            gname: owner_name(md.gid()),
            ..Header::default()
        };
        // Docker's hardlink detection covers every non-directory, devices and symlinks
        // included, keyed by inode; the first name seen is the one later names link to.
        let mut first_name = None;
        if !ft.is_dir() && md.nlink() > 1 {
            let key = (md.dev(), md.ino());
            match self.links.get(&key) {
                Some(first) => first_name = Some(first.clone()),
                None => {
                    self.links.insert(key, rel.clone());
                }
            }
        }
        if !ft.is_dir() && first_name.is_none() {
            self.diff_size += md.size();
        }
        if ft.is_char_device() && self.overlay && md.rdev() == 0 {
            // An overlay whiteout: `.wh.NAME`, mode 0600, as Docker's converter writes it.
            // The kernel shares one whiteout inode between many names; Docker then keeps the
            // link name it found on what became a regular entry, and so do we.
            let dir_len = rel.len() - name_len;
            h.name = rel[..dir_len].to_vec();
            h.name.extend_from_slice(WHITEOUT_PREFIX.as_bytes());
            h.name.extend_from_slice(&rel[dir_len..]);
            h.mode = 0o600;
            h.typeflag = flag::REG;
            h.linkname = first_name.unwrap_or_default();
            tarfmt::write_header(tar, &h).map_err(write_err)?;
            return Ok(None);
        }
        let xattrs = self.xattrs(&path)?;
        let opaque = self.overlay
            && ft.is_dir()
            && xattrs.iter().any(|(k, v)| is_opaque_xattr(k) && v == b"y");
        h.xattrs = xattrs
            .into_iter()
            .filter(|(k, _)| archived_xattr(k))
            .collect();
        if ft.is_dir() {
            h.typeflag = flag::DIR;
            h.name.push(b'/');
            tarfmt::write_header(tar, &h).map_err(write_err)?;
            if opaque {
                let mut name = h.name.clone();
                name.extend_from_slice(WHITEOUT_OPAQUE.as_bytes());
                let wo = Header {
                    name,
                    typeflag: flag::REG,
                    mode: h.mode & 0o777,
                    uid: h.uid,
                    gid: h.gid,
                    uname: h.uname.clone(),
                    gname: h.gname.clone(),
                    mtime: 0,
                    ..Header::default()
                };
                tarfmt::write_header(tar, &wo).map_err(write_err)?;
            }
            return Ok(Some(h.name));
        } else if let Some(first) = first_name {
            h.typeflag = flag::LINK;
            h.linkname = first;
            tarfmt::write_header(tar, &h).map_err(write_err)?;
        } else if ft.is_file() {
            h.typeflag = flag::REG;
            h.size = md.len();
            tarfmt::write_header(tar, &h).map_err(write_err)?;
            self.copy_data(tar, &rel, &path, &md)?;
        } else if ft.is_symlink() {
            h.typeflag = flag::SYMLINK;
            let target = fs::read_link(&path).map_err(|err| LayerError::Source {
                path: path.clone(),
                op: "readlink",
                err,
            })?;
            h.linkname = target.as_os_str().as_bytes().to_vec();
            tarfmt::write_header(tar, &h).map_err(write_err)?;
        } else if ft.is_char_device() || ft.is_block_device() {
            h.typeflag = if ft.is_char_device() {
                flag::CHAR
            } else {
                flag::BLOCK
            };
            h.devmajor = rustix::fs::major(md.rdev()) as u64;
            h.devminor = rustix::fs::minor(md.rdev()) as u64;
            tarfmt::write_header(tar, &h).map_err(write_err)?;
        } else if ft.is_fifo() {
            h.typeflag = flag::FIFO;
            tarfmt::write_header(tar, &h).map_err(write_err)?;
        }
        // Sockets cannot be archived; like GNU tar, leave them out.
        Ok(None)
    }

    fn xattrs(&self, path: &Path) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let xattrs = read_xattrs(path)?;
        if self.overlay {
            for (k, _) in &xattrs {
                let name = k
                    .strip_prefix(b"trusted.overlay.")
                    .or_else(|| k.strip_prefix(b"user.overlay."));
                if name == Some(b"redirect") || name == Some(b"metacopy") {
                    return Err(LayerError::Unsupported {
                        path: path.to_path_buf(),
                        reason: format!(
                            "carries {}: the overlay was mounted with redirect_dir or metacopy, whose upper dirs are not self-contained diffs",
                            String::from_utf8_lossy(k)
                        ),
                    });
                }
            }
        }
        Ok(xattrs)
    }

    fn copy_data<W: TarSink>(
        &mut self,
        tar: &mut W,
        rel: &[u8],
        path: &Path,
        md: &Metadata,
    ) -> Result<()> {
        let mut file: File = OpenOptions::new()
            .read(true)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(path)
            .map_err(|err| LayerError::Source {
                path: path.to_path_buf(),
                op: "open",
                err,
            })?;
        let size = md.len();
        tar.file_data(rel, path, &mut file, size, &mut self.buf)?;
        tarfmt::pad(tar, size).map_err(write_err)
    }
}

/// Which xattrs go into a layer: not overlayfs's own, and not the host's SELinux labels.
fn archived_xattr(name: &[u8]) -> bool {
    !(name.starts_with(b"trusted.overlay.")
        || name.starts_with(b"user.overlay.")
        || name == b"security.selinux")
}

/// The opaque marker, as overlayfs writes it (`trusted.`), or with `userxattr` (`user.`).
fn is_opaque_xattr(name: &[u8]) -> bool {
    name == OVERLAY_OPAQUE_XATTR.as_bytes() || name == b"user.overlay.opaque"
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A big file that is not in the page cache is read with `O_DIRECT`, by the reading thread,
    /// and hashes to the same diff_id as when it is read through the cache.
    #[test]
    fn a_big_file_out_of_the_page_cache_hashes_the_same() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("layer");
        fs::create_dir(&dir).unwrap();
        // Several reads of the reading thread, and a last one that is not aligned.
        let len = 2 * direct::CHUNK + 12345;
        let data: Vec<u8> = (0..len).map(|i| (i * 31 + i / 4099) as u8).collect();
        let big = dir.join("big");
        fs::write(&big, &data).unwrap();
        fs::write(dir.join("small"), b"after the big one").unwrap();
        let f = File::open(&big).unwrap();
        f.sync_all().unwrap();
        let through_cache = write_tree(&dir, io::sink(), Compression::None).unwrap();

        rustix::fs::fadvise(&f, 0, None, rustix::fs::Advice::DontNeed).unwrap();
        let fs_type = rustix::fs::fstatfs(&f).unwrap().f_type;
        // tmpfs keeps every page in memory: there, the direct path is not taken.
        if fs_type != 0x0102_1994 {
            assert!(!direct::cached(&f), "the file left the page cache");
        } else {
            eprintln!("NOTE: the temporary directory is on tmpfs; read through the cache");
        }
        let direct = write_tree(&dir, io::sink(), Compression::None).unwrap();
        assert_eq!(through_cache, direct);

        let mut tar = Vec::new();
        write_tree(&dir, &mut tar, Compression::None).unwrap();
        assert_eq!(Digest::of(&tar), direct.diff_id);
        let mut archive = tar::Archive::new(&tar[..]);
        let mut entry = archive.entries().unwrap().next().unwrap().unwrap();
        let mut read = Vec::new();
        entry.read_to_end(&mut read).unwrap();
        assert!(read == data, "the tar holds the file's bytes");
    }
}
