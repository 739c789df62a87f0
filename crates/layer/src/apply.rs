//! Applying a layer tar to a directory: decompress (detected by magic bytes), hash, unpack
//! every entry confined to the root, translate whiteouts, and set directory times last.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::rc::Rc;

use oci::Digest;
use rustix::fs::{
    self as rfs, AtFlags, FileType, Mode, OFlags, ResolveFlags, Timespec, Timestamps, XattrFlags,
};
use rustix::io::Errno;

use crate::direct;
use crate::error::{LayerError, Result};
use crate::resolve::{self, clean, list_dir, remove_all_at, split_last, Root};
use crate::split::{Record, SplitReader, SplitWriter};
use crate::stream::{decoder, sniff, Compression, HashRead};
use crate::LayerDigests;

/// The AUFS whiteout prefix Docker layers use: `.wh.NAME` deletes `NAME`.
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// The entry that marks its directory opaque: lower content is hidden.
pub const WHITEOUT_OPAQUE: &str = ".wh..wh..opq";
/// AUFS metadata entries (`.wh..wh.plnk`, ...) start with this; they are skipped.
const WHITEOUT_META_PREFIX: &[u8] = b".wh..wh.";
/// The xattr overlayfs reads to treat a directory as opaque.
pub const OVERLAY_OPAQUE_XATTR: &str = "trusted.overlay.opaque";
/// The same marker as overlayfs reads it when mounted with `userxattr` (rootless).
pub const USER_OVERLAY_OPAQUE_XATTR: &str = "user.overlay.opaque";

/// The opaque marker this process writes: [`USER_OVERLAY_OPAQUE_XATTR`] in a user
/// namespace, else [`OVERLAY_OPAQUE_XATTR`].
pub fn opaque_xattr() -> &'static str {
    if in_user_namespace() {
        USER_OVERLAY_OPAQUE_XATTR
    } else {
        OVERLAY_OPAQUE_XATTR
    }
}

/// Whether this process runs in a user namespace other than the initial one (rootless
/// strata), where overlayfs is mounted with `userxattr` and its markers are `user.overlay.*`
/// xattrs, since `trusted.*` needs CAP_SYS_ADMIN in the initial namespace. Read once.
pub fn in_user_namespace() -> bool {
    static IN: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *IN.get_or_init(|| {
        std::fs::read_to_string("/proc/self/uid_map").is_ok_and(|m| {
            let w: Vec<&str> = m.split_whitespace().collect();
            w != ["0", "0", "4294967295"]
        })
    })
}

/// The environment variable that sets the most entries one layer may hold.
pub const MAX_ENTRIES_ENV: &str = "STRATA_LAYER_MAX_ENTRIES";

/// The default of [`MAX_ENTRIES_ENV`]: a million entries, several times what the largest
/// common layers hold (a whole TeX Live or a big `node_modules` is a few hundred thousand).
/// A layer past it is refused as a tar bomb before it fills the disk's inodes.
pub const DEFAULT_MAX_ENTRIES: u64 = 1_000_000;

/// Regular files above this size are checked against the free space where they are unpacked
/// before a byte is written.
const CHECK_SPACE_ABOVE: u64 = 64 << 20;

/// The most entries a layer may hold: [`MAX_ENTRIES_ENV`] when set, else
/// [`DEFAULT_MAX_ENTRIES`].
pub fn max_entries() -> u64 {
    std::env::var(MAX_ENTRIES_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(DEFAULT_MAX_ENTRIES)
}

/// What to do with whiteout entries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WhiteoutMode {
    /// The target is a standalone layer directory that overlayfs will stack as a lower dir:
    /// `.wh.NAME` becomes a 0/0 character device `NAME`, `.wh..wh..opq` becomes the xattr
    /// `trusted.overlay.opaque=y` on its directory.
    #[default]
    OverlayDevices,
    /// The target is a merged tree (copy-based snapshots): `.wh.NAME` deletes `NAME`, and
    /// `.wh..wh..opq` empties its directory of everything this layer did not itself add.
    Delete,
    /// The target is a layer directory made of several layers applied in order (a squash):
    /// whiteouts and opaque directories stay in overlay form for the layers below, and also
    /// do what they mean to what the earlier layers applied here wrote (a whiteout replaces
    /// it, an opaque directory is emptied of it). A directory made where an earlier layer
    /// left a whiteout becomes opaque, as overlayfs makes it.
    Merge,
}

/// Options for [`apply_layer_with`].
#[derive(Clone, Debug, Default)]
pub struct ApplyOptions {
    pub whiteouts: WhiteoutMode,
    /// Resolve paths with the portable walk instead of `openat2` (tests use it to exercise
    /// the fallback).
    #[doc(hidden)]
    pub without_openat2: bool,
}

/// What applying a layer found out about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApplyReport {
    /// The compression detected from the stream's magic bytes.
    pub compression: Compression,
    /// sha256 of the uncompressed tar.
    pub diff_id: Digest,
    /// sha256 of the stream as read (the blob digest), to check against the manifest.
    pub digest: Digest,
    /// Bytes of the stream as read.
    pub size: u64,
    /// Bytes of the uncompressed tar.
    pub uncompressed_size: u64,
    /// Bytes of regular file data written (hardlinks count once).
    pub unpacked_size: u64,
    /// Entries in the archive (PAX and GNU extension headers not counted).
    pub entries: u64,
    /// Extended attributes the target filesystem refused as unsupported.
    pub xattrs_skipped: u64,
}

impl ApplyReport {
    /// The digests in the shape [`crate::write_layer`] returns them.
    pub fn digests(&self) -> LayerDigests {
        LayerDigests {
            diff_id: self.diff_id,
            digest: self.digest,
            size: self.size,
            uncompressed_size: self.uncompressed_size,
        }
    }
}

/// Applies the layer read from `reader` (gzip, zstd or plain tar) to the existing directory
/// `root`, as a standalone overlay lower directory ([`WhiteoutMode::OverlayDevices`]).
///
/// On error the directory is left partly written; callers unpack into a fresh directory and
/// discard it on failure.
pub fn apply_layer<R: Read>(reader: R, root: &Path) -> Result<ApplyReport> {
    apply_layer_with(reader, root, &ApplyOptions::default())
}

/// [`apply_layer`] with options (whiteout handling).
pub fn apply_layer_with<R: Read>(
    reader: R,
    root: &Path,
    opts: &ApplyOptions,
) -> Result<ApplyReport> {
    apply_inner(reader, root, opts, None).map(|(report, _)| report)
}

type Recorders = (Rc<RefCell<Recording>>, Aside);

fn apply_inner<R: Read>(
    reader: R,
    root: &Path,
    opts: &ApplyOptions,
    recording: Option<Recorders>,
) -> Result<(ApplyReport, Option<Aside>)> {
    // A full disk is said as such, with where.
    apply_entries(reader, root, opts, recording).map_err(|e| e.or_no_space(root))
}

fn apply_entries<R: Read>(
    reader: R,
    root: &Path,
    opts: &ApplyOptions,
    recording: Option<Recorders>,
) -> Result<(ApplyReport, Option<Aside>)> {
    let root_handle = Root::open(root, !opts.without_openat2).map_err(|err| LayerError::Root {
        path: root.to_path_buf(),
        err,
    })?;
    // Buffered: the tar reader asks for 512-byte headers one at a time.
    let mut raw = HashRead::new(BufReader::with_capacity(256 * 1024, reader));
    let (compression, prefix) = sniff(&mut raw)?;
    if compression == Compression::None {
        // The blob is the tar: its digest is the diff_id, taken by `tar_in` below.
        raw.count_only();
    }
    let mut applier = Applier::new(root_handle, opts.whiteouts);
    let recorder = recording.map(|(rec, aside)| {
        applier.aside = Some(aside);
        rec
    });
    let (diff_id, uncompressed_size) = {
        let plain = decoder(compression, prefix, &mut raw)?;
        let plain: Box<dyn Read> = match &recorder {
            Some(rec) => {
                applier.recording = Some(rec.clone());
                Box::new(Recorder {
                    inner: plain,
                    recording: rec.clone(),
                })
            }
            None => plain,
        };
        let mut tar_in = HashRead::new(plain);
        let end_of_entries = applier.run(&mut tar_in)?;
        // The tar reader stops at the first zero block or at EOF; only a zero block means
        // the archive is complete.
        if tar_in.len() <= end_of_entries {
            return Err(LayerError::Truncated(if applier.entries == 0 {
                "no entries and no end-of-archive marker".into()
            } else {
                format!(
                    "archive ends after {} entries without an end-of-archive marker",
                    applier.entries
                )
            }));
        }
        let (diff_id, len) = tar_in.drain().map_err(read_error)?;
        (diff_id.expect("the tar is hashed"), len)
    };
    applier.finish()?;
    let (digest, size) = raw.drain().map_err(|err| LayerError::Read { err })?;
    let digest = digest.unwrap_or(diff_id);
    applier.recording = None;
    let aside = applier.aside.take();
    let report = ApplyReport {
        compression,
        diff_id,
        digest,
        size,
        uncompressed_size,
        unpacked_size: applier.unpacked_size,
        entries: applier.entries,
        xattrs_skipped: applier.xattrs_skipped,
    };
    Ok((report, aside))
}

/// [`apply_layer`] that also writes the layer's tar-split file at `split` (see
/// [`crate::split`]): with the directory it gives back the exact tar, so neither the tar nor
/// the blob needs keeping. `split` must not exist; a directory `SPLIT.aside` next to it holds,
/// while applying, files a later entry of the same layer replaced (their data goes into the
/// tar-split file at the end).
pub fn apply_layer_recording<R: Read>(reader: R, root: &Path, split: &Path) -> Result<ApplyReport> {
    let out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(split)
        .map_err(|err| fs_err(&split.display().to_string(), "creating tar-split file", err))?;
    let writer = SplitWriter::new(out).map_err(|err| LayerError::Write { err })?;
    let recording = Rc::new(RefCell::new(Recording {
        split: writer,
        offset: 0,
        data_until: 0,
        files: 0,
    }));
    let aside = Aside {
        dir: split.with_extension("aside"),
        fd: None,
        paths: BTreeMap::new(),
        moved: HashMap::new(),
        count: 0,
    };
    let report = apply_inner(
        reader,
        root,
        &ApplyOptions::default(),
        Some((recording.clone(), aside)),
    );
    let (report, aside) = report?;
    let recording = Rc::try_unwrap(recording)
        .map_err(|_| LayerError::Write {
            err: io::Error::other("tar-split recorder still shared"),
        })?
        .into_inner();
    // Made durable with the layer directory by whoever publishes them.
    recording
        .split
        .finish()
        .map_err(|err| LayerError::Write { err }.or_no_space(split))?;
    if let Some(aside) = aside {
        aside.inline_into(split).map_err(|e| e.or_no_space(split))?;
    }
    Ok(report)
}

/// The tar-split file being written while the tar reader pulls the stream through a
/// [`Recorder`].
struct Recording {
    split: SplitWriter<File>,
    /// Bytes of the tar seen so far.
    offset: u64,
    /// The stream is file data (left out of the tar-split file) up to this offset.
    data_until: u64,
    /// File records written.
    files: usize,
}

impl Recording {
    /// The data of the entry at `start` (`size` bytes) is the regular file `path`. Returns
    /// the record's number, or `None` when the stream is not exactly there (then the data is
    /// kept as literal bytes).
    fn file(&mut self, start: u64, size: u64, path: &[u8]) -> io::Result<Option<usize>> {
        if start != self.offset || self.data_until > self.offset {
            return Ok(None);
        }
        self.split.file(path, size)?;
        self.data_until = start + size;
        self.files += 1;
        Ok(Some(self.files - 1))
    }
}

/// Passes the tar stream on to the tar reader, keeping every byte that is not file data in
/// the tar-split file.
struct Recorder<R> {
    inner: R,
    recording: Rc<RefCell<Recording>>,
}

impl<R: Read> Read for Recorder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut rec = self.recording.borrow_mut();
        let data = rec.data_until.saturating_sub(rec.offset).min(n as u64) as usize;
        if data < n {
            rec.split.literal(&buf[data..n])?;
        }
        rec.offset += n as u64;
        Ok(n)
    }
}

/// Files of this layer that a later entry replaced: moved aside (not deleted) so their data
/// can still go into the tar-split file.
struct Aside {
    dir: std::path::PathBuf,
    fd: Option<OwnedFd>,
    /// Where each file record's data is: its path in the layer.
    paths: BTreeMap<Vec<u8>, usize>,
    /// Records whose file was moved aside, and where it is now (relative to `dir`).
    moved: HashMap<usize, Vec<u8>>,
    count: usize,
}

impl Aside {
    /// Moves `name` of `pfd` (the layer path `path`) aside when it is, or holds, a file
    /// whose data a record refers to. Returns whether it did.
    fn take(&mut self, pfd: &OwnedFd, path: &[u8], name: &[u8]) -> io::Result<bool> {
        let mut under = path.to_vec();
        under.push(b'/');
        let mut hit: Vec<(Vec<u8>, usize)> = Vec::new();
        if let Some(&i) = self.paths.get(path) {
            hit.push((path.to_vec(), i));
        }
        for (p, &i) in self.paths.range(under.clone()..) {
            if !p.starts_with(&under) {
                break;
            }
            hit.push((p.clone(), i));
        }
        if hit.is_empty() {
            return Ok(false);
        }
        if self.fd.is_none() {
            std::fs::create_dir(&self.dir)?;
            self.fd = Some(rfs::open(
                &self.dir,
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )?);
        }
        let slot = self.count.to_string().into_bytes();
        self.count += 1;
        let fd = self.fd.as_ref().expect("made above");
        rfs::renameat(pfd, name, fd, slot.as_slice())?;
        for (p, i) in hit {
            self.paths.remove(&p);
            let mut at = slot.clone();
            at.extend_from_slice(&p[path.len()..]);
            self.moved.insert(i, at);
        }
        Ok(true)
    }

    /// Rewrites the tar-split file with the data of moved files inlined, then removes them.
    fn inline_into(self, split: &Path) -> Result<()> {
        let w = |err| LayerError::Write { err };
        if self.moved.is_empty() {
            return Ok(());
        }
        let tmp = split.with_extension("rewrite");
        let out = File::create(&tmp).map_err(w)?;
        let mut writer = SplitWriter::new(out).map_err(w)?;
        let mut reader = SplitReader::new(File::open(split).map_err(w)?).map_err(w)?;
        let mut index = 0;
        loop {
            match reader.next().map_err(w)? {
                Record::End => break,
                Record::Literal(b) => writer.literal(&b).map_err(w)?,
                Record::File { path, size } => {
                    match self.moved.get(&index) {
                        Some(at) => {
                            let p = self.dir.join(std::ffi::OsStr::from_bytes(at));
                            let mut f = File::open(&p).map_err(w)?.take(size);
                            let mut buf = vec![0u8; 64 * 1024];
                            loop {
                                let n = f.read(&mut buf).map_err(w)?;
                                if n == 0 {
                                    break;
                                }
                                writer.literal(&buf[..n]).map_err(w)?;
                            }
                        }
                        None => writer.file(&path, size).map_err(w)?,
                    }
                    index += 1;
                }
            }
        }
        writer.finish().and_then(|f| f.sync_all()).map_err(w)?;
        std::fs::rename(&tmp, split).map_err(w)?;
        let _ = std::fs::remove_dir_all(&self.dir);
        Ok(())
    }
}

/// Maps a read error to `Truncated` when the stream simply ended.
fn read_error(err: io::Error) -> LayerError {
    let msg = err.to_string();
    if err.kind() == io::ErrorKind::UnexpectedEof
        || msg.contains("failed to read entire block")
        || msg.contains("unexpected EOF")
    {
        LayerError::Truncated(msg)
    } else {
        LayerError::Read { err }
    }
}

/// The metadata of one entry, from its header and PAX records.
struct Meta {
    mode: u32,
    uid: rfs::Uid,
    gid: rfs::Gid,
    mtime: Timespec,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

/// What an entry creates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    File,
    Dir,
    Symlink,
    Hardlink,
    Char,
    Block,
    Fifo,
}

/// Parses a PAX time (`123`, `123.456`, `-1.5`) into a timespec.
fn parse_pax_time(v: &[u8]) -> Option<Timespec> {
    let s = std::str::from_utf8(v).ok()?;
    let (neg, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty()
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let secs: i64 = int.parse().ok()?;
    let mut nanos: i64 = 0;
    for (i, d) in frac.bytes().take(9).enumerate() {
        nanos += (d - b'0') as i64 * 10i64.pow(8 - i as u32);
    }
    Some(if !neg {
        Timespec {
            tv_sec: secs,
            tv_nsec: nanos as _,
        }
    } else if nanos == 0 {
        Timespec {
            tv_sec: -secs,
            tv_nsec: 0,
        }
    } else {
        Timespec {
            tv_sec: -secs - 1,
            tv_nsec: (1_000_000_000 - nanos) as _,
        }
    })
}

struct Applier {
    root: Root,
    mode: WhiteoutMode,
    /// The last parent directory resolved, reused while entries stay in one directory.
    cached_parent: Option<(Vec<u8>, OwnedFd)>,
    /// Directories and their mtimes, applied after all content is written.
    dir_times: Vec<(Vec<u8>, Timespec)>,
    /// Paths this layer wrote (not kept in `OverlayDevices` mode; for opaque directories).
    unpacked: HashSet<Vec<u8>>,
    buf: Vec<u8>,
    /// The buffer of files written with `O_DIRECT`, kept for the next one.
    direct_buf: Option<direct::Aligned>,
    entries: u64,
    max_entries: u64,
    unpacked_size: u64,
    xattrs_skipped: u64,
    /// Set when writing a tar-split file: file data is recorded as references.
    recording: Option<Rc<RefCell<Recording>>>,
    aside: Option<Aside>,
    /// Whether the last parent checked resolves without symlinks (only when recording).
    plain_parent: Option<(Vec<u8>, bool)>,
}

impl Applier {
    fn new(root: Root, mode: WhiteoutMode) -> Self {
        Applier {
            root,
            mode,
            cached_parent: None,
            dir_times: Vec::new(),
            unpacked: HashSet::new(),
            buf: vec![0; 128 * 1024],
            direct_buf: None,
            entries: 0,
            max_entries: max_entries(),
            unpacked_size: 0,
            xattrs_skipped: 0,
            recording: None,
            aside: None,
            plain_parent: None,
        }
    }

    /// Removes `name` of `pfd` (the layer path `path`), or moves it aside when a tar-split
    /// record refers to its data.
    fn remove_existing(&mut self, pfd: &OwnedFd, path: &[u8], name: &[u8]) -> io::Result<()> {
        if let Some(aside) = &mut self.aside {
            if aside.take(pfd, path, name)? {
                return Ok(());
            }
        }
        remove_all_at(pfd, name)
    }

    /// Whether the directory `parent` is reached from the root without any symlink, so a
    /// tar-split record can name a file in it by path.
    fn parent_is_plain(&mut self, parent: &[u8]) -> bool {
        if let Some((p, plain)) = &self.plain_parent {
            if p == parent {
                return *plain;
            }
        }
        let plain = parent.is_empty()
            || rfs::openat2(
                self.root.fd(),
                parent,
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
                ResolveFlags::IN_ROOT | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
            )
            .is_ok();
        self.plain_parent = Some((parent.to_vec(), plain));
        plain
    }

    /// Applies every entry; returns the offset where the last entry's data ended.
    fn run<R: Read>(&mut self, input: R) -> Result<u64> {
        let mut archive = tar::Archive::new(input);
        let mut end = 0u64;
        for entry in archive.entries().map_err(read_error)? {
            let mut entry = entry.map_err(read_error)?;
            let header = entry.header();
            let data_len = if header.entry_type().is_gnu_sparse() {
                header.entry_size().unwrap_or(0)
            } else {
                entry.size()
            };
            end = entry.raw_file_position() + data_len.div_ceil(512) * 512;
            self.entries += 1;
            if self.entries > self.max_entries {
                return Err(LayerError::Limit(format!(
                    "it holds more than {} entries, a tar bomb ({MAX_ENTRIES_ENV} sets the limit)",
                    self.max_entries
                )));
            }
            self.entry(&mut entry)?;
        }
        Ok(end)
    }

    fn entry<R: Read>(&mut self, e: &mut tar::Entry<'_, R>) -> Result<()> {
        let raw = e.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw).into_owned();
        let header = e.header();
        let typeflag = header.as_bytes()[156];
        let kind = match header.entry_type() {
            tar::EntryType::XGlobalHeader => return Ok(()),
            // A V7 header with a trailing slash is a directory (as Go reads it).
            tar::EntryType::Regular if typeflag == 0 && raw.ends_with(b"/") => Kind::Dir,
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                Kind::File
            }
            tar::EntryType::Directory => Kind::Dir,
            tar::EntryType::Symlink => Kind::Symlink,
            tar::EntryType::Link => Kind::Hardlink,
            tar::EntryType::Char => Kind::Char,
            tar::EntryType::Block => Kind::Block,
            tar::EntryType::Fifo => Kind::Fifo,
            other => {
                return Err(bad(
                    &shown,
                    format!("unsupported entry type {:?}", other.as_byte() as char),
                ));
            }
        };
        let path = clean(&raw).ok_or_else(|| escape(&shown, "its name climbs out with `..`"))?;
        let meta = self.meta(e, &shown)?;

        if path.is_empty() {
            // The root itself (`./`): take its metadata, as Docker does.
            if kind != Kind::Dir {
                return Err(bad(&shown, "the root entry is not a directory".into()));
            }
            let fd = resolve::reopen_dir(self.root.fd())
                .map_err(|err| fs_err(&shown, "opening root", err))?;
            self.set_meta_fd(&fd, &meta, &shown)?;
            self.dir_times.push((Vec::new(), meta.mtime));
            return Ok(());
        }
        let (parent, name) = split_last(&path);
        if parent
            .split(|&b| b == b'/')
            .any(|c| c.starts_with(WHITEOUT_META_PREFIX))
        {
            return Ok(());
        }
        if let Some(target) = name.strip_prefix(WHITEOUT_PREFIX.as_bytes()) {
            let link = e.link_name_bytes().map(|l| l.into_owned());
            return self.whiteout(parent, name, target, link, &meta, &shown);
        }

        let pfd = self.parent(parent, true, &shown)?;
        let (existing, over_whiteout) = match rfs::statat(&pfd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => {
                let ft = FileType::from_raw_mode(st.st_mode);
                (Some(ft), ft == FileType::CharacterDevice && st.st_rdev == 0)
            }
            Err(Errno::NOENT) => (None, false),
            Err(e) => return Err(fs_err(&shown, "inspecting existing entry", e.into())),
        };
        let keep_dir = kind == Kind::Dir && existing == Some(FileType::Directory);
        if existing.is_some() && !keep_dir {
            // Removing a child of `parent` cannot change what `parent` resolves to.
            self.plain_parent = None;
            self.remove_existing(&pfd, &path, name)
                .map_err(|err| fs_err(&shown, "replacing existing entry", err))?;
        }

        match kind {
            Kind::File => {
                let sparse = e.header().entry_type().is_gnu_sparse();
                if !sparse
                    && e.size() > 0
                    && self.recording.is_some()
                    && self.parent_is_plain(parent)
                {
                    let start = e.raw_file_position();
                    let size = e.size();
                    let rec = self.recording.as_ref().expect("checked");
                    let record = rec
                        .borrow_mut()
                        .file(start, size, &path)
                        .map_err(|err| LayerError::Write { err })?;
                    if let (Some(i), Some(aside)) = (record, &mut self.aside) {
                        aside.paths.insert(path.clone(), i);
                    }
                }
                self.file(&pfd, name, e, &meta, &shown)?
            }
            Kind::Dir => {
                if !keep_dir {
                    rfs::mkdirat(&pfd, name, Mode::from_raw_mode(0o700))
                        .map_err(|err| fs_err(&shown, "creating directory", err.into()))?;
                }
                let fd = rfs::openat(
                    &pfd,
                    name,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|err| fs_err(&shown, "opening directory", err.into()))?;
                self.set_meta_fd(&fd, &meta, &shown)?;
                if over_whiteout && self.mode == WhiteoutMode::Merge {
                    rfs::fsetxattr(&fd, opaque_xattr(), b"y", XattrFlags::empty())
                        .map_err(|err| fs_err(&shown, "setting the opaque xattr", err.into()))?;
                }
                self.dir_times.push((path.clone(), meta.mtime));
            }
            Kind::Symlink => {
                let target = e
                    .link_name_bytes()
                    .ok_or_else(|| bad(&shown, "symlink without a target".into()))?;
                rfs::symlinkat(target.as_ref(), &pfd, name)
                    .map_err(|err| fs_err(&shown, "creating symlink", err.into()))?;
                self.set_meta_at(&pfd, name, &meta, true, &shown)?;
            }
            Kind::Hardlink => {
                let target = e
                    .link_name_bytes()
                    .ok_or_else(|| bad(&shown, "hardlink without a target".into()))?;
                let target = clean(&target)
                    .ok_or_else(|| escape(&shown, "its hardlink target climbs out with `..`"))?;
                if target.is_empty() {
                    return Err(bad(&shown, "hardlink to the root directory".into()));
                }
                let (tparent, tname) = split_last(&target);
                let tfd = self
                    .root
                    .dir(tparent, false)
                    .map_err(|err| fs_err(&shown, "resolving hardlink target", err))?;
                rfs::linkat(&tfd, tname, &pfd, name, AtFlags::empty())
                    .map_err(|err| fs_err(&shown, "creating hardlink", err.into()))?;
                let is_symlink = matches!(
                    rfs::statat(&pfd, name, AtFlags::SYMLINK_NOFOLLOW)
                        .map(|st| FileType::from_raw_mode(st.st_mode)),
                    Ok(FileType::Symlink)
                );
                self.set_meta_at(&pfd, name, &meta, is_symlink, &shown)?;
            }
            Kind::Char | Kind::Block | Kind::Fifo => {
                let (ft, dev) = match kind {
                    Kind::Fifo => (FileType::Fifo, 0),
                    _ => {
                        let major = e.header().device_major().ok().flatten().unwrap_or(0);
                        let minor = e.header().device_minor().ok().flatten().unwrap_or(0);
                        let ft = if kind == Kind::Char {
                            FileType::CharacterDevice
                        } else {
                            FileType::BlockDevice
                        };
                        (ft, rfs::makedev(major, minor))
                    }
                };
                rfs::mknodat(&pfd, name, ft, Mode::from_raw_mode(meta.mode & 0o777), dev)
                    .map_err(|err| fs_err(&shown, "creating device node", err.into()))?;
                self.set_meta_at(&pfd, name, &meta, false, &shown)?;
            }
        }
        if self.mode != WhiteoutMode::OverlayDevices {
            self.unpacked.insert(path.clone());
        }
        self.cached_parent = Some((parent.to_vec(), pfd));
        Ok(())
    }

    /// The directory `parent` inside the root, from the cache when possible.
    fn parent(&mut self, parent: &[u8], create: bool, shown: &str) -> Result<OwnedFd> {
        if let Some((p, fd)) = &self.cached_parent {
            if p == parent {
                return fd
                    .try_clone()
                    .map_err(|err| fs_err(shown, "duplicating descriptor", err));
            }
        }
        let fd = self.root.dir(parent, create).map_err(|err| {
            if err.kind() == io::ErrorKind::NotADirectory
                || err.raw_os_error() == Some(Errno::LOOP.raw_os_error())
            {
                escape(
                    shown,
                    &format!("its parent does not resolve to a directory inside the root: {err}"),
                )
            } else {
                fs_err(shown, "resolving parent directory", err)
            }
        })?;
        Ok(fd)
    }

    fn meta<R: Read>(&self, e: &mut tar::Entry<'_, R>, shown: &str) -> Result<Meta> {
        let h = e.header();
        let mode = h
            .mode()
            .map_err(|err| bad(shown, format!("bad mode: {err}")))?
            & 0o7777;
        // An empty numeric field (all NULs or spaces) reads as 0, as Go's archive/tar does.
        let numeric = |raw: &[u8], v: std::io::Result<u64>, what: &str| -> Result<u64> {
            match v {
                Ok(v) => Ok(v),
                Err(_) if raw.iter().all(|b| *b == 0 || *b == b' ') => Ok(0),
                Err(err) => Err(bad(shown, format!("bad {what}: {err}"))),
            }
        };
        let old = h.as_old();
        let uid = numeric(&old.uid, h.uid(), "uid")?;
        let gid = numeric(&old.gid, h.gid(), "gid")?;
        let mut mtime = Timespec {
            tv_sec: numeric(&old.mtime, h.mtime(), "mtime")? as i64,
            tv_nsec: 0,
        };
        let to_id = |v: u64, what: &str| -> Result<u32> {
            u32::try_from(v)
                .ok()
                .filter(|&v| v != u32::MAX)
                .ok_or_else(|| bad(shown, format!("{what} {v} out of range")))
        };
        let uid = rfs::Uid::from_raw(to_id(uid, "uid")?);
        let gid = rfs::Gid::from_raw(to_id(gid, "gid")?);
        let mut xattrs = Vec::new();
        if let Some(exts) = e.pax_extensions().map_err(read_error)? {
            for ext in exts {
                let ext = ext.map_err(|err| bad(shown, format!("malformed PAX record: {err}")))?;
                let key = ext.key_bytes();
                if key == b"mtime" {
                    mtime = parse_pax_time(ext.value_bytes())
                        .ok_or_else(|| bad(shown, "malformed PAX mtime".into()))?;
                } else if let Some(name) = key.strip_prefix(b"SCHILY.xattr.") {
                    xattrs.push((name.to_vec(), ext.value_bytes().to_vec()));
                }
            }
        }
        Ok(Meta {
            mode,
            uid,
            gid,
            mtime,
            xattrs,
        })
    }

    fn file<R: Read>(
        &mut self,
        pfd: &OwnedFd,
        name: &[u8],
        e: &mut tar::Entry<'_, R>,
        meta: &Meta,
        shown: &str,
    ) -> Result<()> {
        let fd = rfs::openat(
            pfd,
            name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .map_err(|err| fs_err(shown, "creating file", err.into()))?;
        let mut file = File::from(fd);
        let size = e.size();
        if size > CHECK_SPACE_ABOVE {
            // A header may declare any size (a sparse entry a terabyte of holes): refuse what
            // cannot fit rather than fill the disk with it.
            if let Ok(st) = rfs::fstatvfs(&file) {
                let free = st.f_bavail.saturating_mul(st.f_frsize);
                if size > free {
                    return Err(LayerError::Limit(format!(
                        "tar entry {shown:?} is {size} bytes, more than the {free} bytes free \
                         where the layer is unpacked"
                    )));
                }
            }
        }
        // The holes of a sparse entry stay holes.
        let sparse = e.header().entry_type().is_gnu_sparse();
        let mut written = 0u64;
        let mut direct = None;
        if !sparse && size >= direct::WRITE_ABOVE {
            let mut buf = self.direct_buf.take().unwrap_or_else(direct::Aligned::new);
            if let Some(w) = direct::DirectWrite::start(&file, &mut buf) {
                direct = Some(write_direct(w, e, shown));
            }
            self.direct_buf = Some(buf);
        }
        if let Some(done) = direct {
            written = done?;
        } else {
            let mut flushing = Writeback::default();
            loop {
                let n = match e.read(&mut self.buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                    Err(err) => return Err(data_err(err, shown)),
                };
                if sparse && self.buf[..n].iter().all(|b| *b == 0) {
                    use std::io::Seek;
                    file.seek(io::SeekFrom::Current(n as i64))
                        .map_err(|err| fs_err(shown, "writing file", err))?;
                } else {
                    file.write_all(&self.buf[..n])
                        .map_err(|err| fs_err(shown, "writing file", err))?;
                }
                written += n as u64;
                flushing.wrote(&file, written);
            }
            flushing.finish(&file, written);
        }
        if sparse {
            file.set_len(written)
                .map_err(|err| fs_err(shown, "writing file", err))?;
        }
        if written != size {
            return Err(LayerError::Truncated(format!(
                "entry {shown:?} has {written} of its {size} bytes"
            )));
        }
        self.unpacked_size += written;
        self.set_meta_fd(&file, meta, shown)
    }

    /// Owner, mode, xattrs and (for non-directories) times, through an open descriptor.
    fn set_meta_fd(&mut self, fd: impl AsFd, meta: &Meta, shown: &str) -> Result<()> {
        let fd = fd.as_fd();
        // chown first: it clears setuid/setgid bits and file capabilities.
        rfs::fchown(fd, Some(meta.uid), Some(meta.gid))
            .map_err(|err| chown_err(shown, meta, err.into()))?;
        rfs::fchmod(fd, Mode::from_raw_mode(meta.mode))
            .map_err(|err| fs_err(shown, "chmod", err.into()))?;
        for (k, v) in &meta.xattrs {
            if reserved_xattr(k) {
                continue;
            }
            match rfs::fsetxattr(fd, k.as_slice(), v, XattrFlags::empty()) {
                Ok(()) => {}
                Err(Errno::NOTSUP) => self.xattrs_skipped += 1,
                Err(err) => return Err(fs_err(shown, "setting xattr", err.into())),
            }
        }
        let is_dir = matches!(
            rfs::fstat(fd).map(|st| FileType::from_raw_mode(st.st_mode)),
            Ok(FileType::Directory)
        );
        if !is_dir {
            rfs::futimens(fd, &times(meta.mtime))
                .map_err(|err| fs_err(shown, "setting times", err.into()))?;
        }
        Ok(())
    }

    /// The same for a node without an open descriptor (symlinks, devices, hardlinks).
    fn set_meta_at(
        &mut self,
        dir: &OwnedFd,
        name: &[u8],
        meta: &Meta,
        is_symlink: bool,
        shown: &str,
    ) -> Result<()> {
        rfs::chownat(
            dir,
            name,
            Some(meta.uid),
            Some(meta.gid),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(|err| chown_err(shown, meta, err.into()))?;
        if !is_symlink {
            // The node was just created by us and is not a symlink, so following is safe.
            rfs::chmodat(dir, name, Mode::from_raw_mode(meta.mode), AtFlags::empty())
                .map_err(|err| fs_err(shown, "chmod", err.into()))?;
        }
        if meta.xattrs.iter().any(|(k, _)| !reserved_xattr(k)) {
            let mut path = format!("/proc/self/fd/{}/", dir.as_raw_fd()).into_bytes();
            path.extend_from_slice(name);
            for (k, v) in &meta.xattrs {
                if reserved_xattr(k) {
                    continue;
                }
                match rfs::lsetxattr(path.as_slice(), k.as_slice(), v, XattrFlags::empty()) {
                    Ok(()) => {}
                    // user.* xattrs are not allowed on symlinks and devices.
                    Err(Errno::NOTSUP) | Err(Errno::PERM)
                        if is_symlink || k.starts_with(b"user.") =>
                    {
                        self.xattrs_skipped += 1
                    }
                    Err(Errno::NOTSUP) => self.xattrs_skipped += 1,
                    Err(err) => return Err(fs_err(shown, "setting xattr", err.into())),
                }
            }
        }
        rfs::utimensat(dir, name, &times(meta.mtime), AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|err| fs_err(shown, "setting times", err.into()))
    }

    fn whiteout(
        &mut self,
        parent: &[u8],
        name: &[u8],
        target: &[u8],
        link: Option<Vec<u8>>,
        meta: &Meta,
        shown: &str,
    ) -> Result<()> {
        if name == WHITEOUT_OPAQUE.as_bytes() {
            return self.opaque(parent, shown);
        }
        if name.starts_with(WHITEOUT_META_PREFIX) {
            return Ok(());
        }
        if target.is_empty() || target == b"." || target == b".." {
            return Err(escape(
                shown,
                "it whites out something that is not a name in its directory",
            ));
        }
        self.cached_parent = None;
        match self.mode {
            WhiteoutMode::OverlayDevices | WhiteoutMode::Merge => {
                let pfd = self.parent(parent, true, shown)?;
                let mut path = parent.to_vec();
                if !path.is_empty() {
                    path.push(b'/');
                }
                path.extend_from_slice(target);
                self.plain_parent = None;
                self.remove_existing(&pfd, &path, target)
                    .map_err(|err| fs_err(shown, "replacing existing entry", err))?;
                // Docker's tars name an earlier whiteout as link target when the kernel
                // shared one inode between them; share it again (keeps rewrites identical).
                if !self.link_whiteout(link.as_deref(), &pfd, target) {
                    rfs::mknodat(
                        &pfd,
                        target,
                        FileType::CharacterDevice,
                        Mode::empty(),
                        rfs::makedev(0, 0),
                    )
                    .map_err(|err| fs_err(shown, "creating whiteout device", err.into()))?;
                }
                rfs::chownat(
                    &pfd,
                    target,
                    Some(meta.uid),
                    Some(meta.gid),
                    AtFlags::SYMLINK_NOFOLLOW,
                )
                .map_err(|err| chown_err(shown, meta, err.into()))?;
                // Keep the whiteout's time so writing this layer again gives the same tar.
                rfs::utimensat(&pfd, target, &times(meta.mtime), AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(|err| fs_err(shown, "setting times", err.into()))?;
            }
            WhiteoutMode::Delete => {
                let Some(pfd) = self.existing_dir(parent, shown)? else {
                    return Ok(());
                };
                remove_all_at(&pfd, target)
                    .map_err(|err| fs_err(shown, "deleting whited-out entry", err))?;
            }
        }
        Ok(())
    }

    /// Hardlinks `target` in `pfd` to the whiteout device `link` names, if it is one in
    /// this layer. Returns false when there is nothing suitable to link to.
    fn link_whiteout(&mut self, link: Option<&[u8]>, pfd: &OwnedFd, target: &[u8]) -> bool {
        let Some(link) = link.filter(|l| !l.is_empty()).and_then(clean) else {
            return false;
        };
        if link.is_empty() {
            return false;
        }
        let (lparent, lname) = split_last(&link);
        let Ok(lfd) = self.root.dir(lparent, false) else {
            return false;
        };
        match rfs::statat(&lfd, lname, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st)
                if FileType::from_raw_mode(st.st_mode) == FileType::CharacterDevice
                    && st.st_rdev == 0 =>
            {
                rfs::linkat(&lfd, lname, pfd, target, AtFlags::empty()).is_ok()
            }
            _ => false,
        }
    }

    /// The directory at `path` if it exists (resolved inside the root), `None` if not.
    fn existing_dir(&mut self, path: &[u8], shown: &str) -> Result<Option<OwnedFd>> {
        match self.root.dir(path, false) {
            Ok(fd) => Ok(Some(fd)),
            Err(err)
                if err.kind() == io::ErrorKind::NotFound
                    || err.kind() == io::ErrorKind::NotADirectory =>
            {
                Ok(None)
            }
            Err(err) => Err(fs_err(shown, "resolving directory", err)),
        }
    }

    fn opaque(&mut self, dir: &[u8], shown: &str) -> Result<()> {
        self.cached_parent = None;
        match self.mode {
            WhiteoutMode::OverlayDevices | WhiteoutMode::Merge => {
                let fd = self.parent(dir, true, shown)?;
                if self.mode == WhiteoutMode::Merge {
                    self.purge(&fd, dir.to_vec(), shown)?;
                }
                let fd = resolve::reopen_dir(&fd)
                    .map_err(|err| fs_err(shown, "opening opaque directory", err))?;
                rfs::fsetxattr(&fd, opaque_xattr(), b"y", XattrFlags::empty())
                    .map_err(|err| fs_err(shown, "setting the opaque xattr", err.into()))?;
            }
            WhiteoutMode::Delete => {
                let Some(fd) = self.existing_dir(dir, shown)? else {
                    return Ok(());
                };
                self.purge(&fd, dir.to_vec(), shown)?;
            }
        }
        Ok(())
    }

    /// Deletes everything under `dir` that this layer did not write.
    fn purge(&self, dir: &OwnedFd, key: Vec<u8>, shown: &str) -> Result<()> {
        let names = list_dir(dir).map_err(|err| fs_err(shown, "listing opaque directory", err))?;
        for name in names {
            let mut child = key.clone();
            if !child.is_empty() {
                child.push(b'/');
            }
            child.extend_from_slice(&name);
            if !self.unpacked.contains(&child) {
                remove_all_at(dir, &name)
                    .map_err(|err| fs_err(shown, "emptying opaque directory", err))?;
                continue;
            }
            if let Ok(sub) = rfs::openat(
                dir,
                name.as_slice(),
                OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            ) {
                self.purge(&sub, child, shown)?;
            }
        }
        Ok(())
    }

    /// Sets directory times now that nothing more is written into them.
    fn finish(&mut self) -> Result<()> {
        for (path, mtime) in std::mem::take(&mut self.dir_times) {
            let shown = String::from_utf8_lossy(&path).into_owned();
            if path.is_empty() {
                rfs::futimens(self.root.fd(), &times(mtime))
                    .map_err(|err| fs_err(&shown, "setting times", err.into()))?;
                continue;
            }
            let (parent, name) = split_last(&path);
            // A directory replaced later in the archive no longer needs its time.
            let Some(pfd) = self.existing_dir(parent, &shown)? else {
                continue;
            };
            if !matches!(
                rfs::statat(&pfd, name, AtFlags::SYMLINK_NOFOLLOW)
                    .map(|st| FileType::from_raw_mode(st.st_mode)),
                Ok(FileType::Directory)
            ) {
                continue;
            }
            rfs::utimensat(&pfd, name, &times(mtime), AtFlags::SYMLINK_NOFOLLOW)
                .map_err(|err| fs_err(&shown, "setting times", err.into()))?;
        }
        Ok(())
    }
}

/// Overlay's own xattrs never come from a layer tar: they would forge whiteouts, opaque
/// directories or redirects.
/// A tar entry's read error, said with the entry.
fn data_err(err: io::Error, shown: &str) -> LayerError {
    match read_error(err) {
        LayerError::Truncated(m) => LayerError::Truncated(format!("in entry {shown:?}: {m}")),
        LayerError::Read { err } => fs_err(shown, "reading data", err),
        other => other,
    }
}

/// Writes the data of the tar entry `e` through `w`; the bytes written.
fn write_direct<R: Read>(
    mut w: direct::DirectWrite<'_>,
    e: &mut tar::Entry<'_, R>,
    shown: &str,
) -> Result<u64> {
    let mut written = 0u64;
    loop {
        let n = match e.read(w.space()) {
            Ok(0) => break,
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(data_err(err, shown)),
        };
        w.filled(n)
            .map_err(|err| fs_err(shown, "writing file", err))?;
        written += n as u64;
    }
    w.finish()
        .map_err(|err| fs_err(shown, "writing file", err))?;
    Ok(written)
}

/// Starts the disk writes of a big file while it is still being written (where the file system
/// takes no `O_DIRECT`), so that the fsync that publishes the layer later finds most of it on
/// disk already: the writes overlap the download and unpacking of the rest instead of all
/// waiting at the end (a pull of five 100 MB layers spent 0.34 s in fsyncs after the last
/// byte arrived). Small files are left to that fsync (or `syncfs`), where starting each
/// one's writes would cost a call apiece.
#[derive(Default)]
struct Writeback {
    started: u64,
}

impl Writeback {
    /// Bytes written before their disk writes are started.
    const CHUNK: u64 = 8 << 20;

    /// `written` bytes of `file` are written.
    fn wrote(&mut self, file: &File, written: u64) {
        if written - self.started >= Self::CHUNK {
            self.start(file, written);
        }
    }

    /// `file` is complete at `written` bytes.
    fn finish(&mut self, file: &File, written: u64) {
        if written >= Self::CHUNK && written > self.started {
            self.start(file, written);
        }
    }

    fn start(&mut self, file: &File, to: u64) {
        start_writeback(file.as_fd(), self.started, to - self.started);
        self.started = to;
    }
}

/// Starts writing a range of a file out to disk without waiting for it, so that the fsync
/// that publishes it finds most of it written. A hint: nothing happens on file systems without
/// a page cache of their own (overlayfs), and a failure leaves the writes to that fsync.
pub fn start_writeback(fd: BorrowedFd<'_>, offset: u64, len: u64) {
    // SAFETY: a plain system call on an open descriptor; no memory is passed.
    unsafe {
        libc::sync_file_range(
            fd.as_raw_fd(),
            offset as libc::off64_t,
            len as libc::off64_t,
            libc::SYNC_FILE_RANGE_WRITE,
        );
    }
}

fn reserved_xattr(name: &[u8]) -> bool {
    name.starts_with(b"trusted.overlay.") || name.starts_with(b"user.overlay.")
}

fn times(mtime: Timespec) -> Timestamps {
    Timestamps {
        last_access: mtime,
        last_modification: mtime,
    }
}

fn bad(entry: &str, reason: String) -> LayerError {
    LayerError::BadEntry {
        entry: entry.to_string(),
        reason,
    }
}

fn escape(entry: &str, reason: &str) -> LayerError {
    LayerError::Escape {
        entry: entry.to_string(),
        reason: reason.to_string(),
    }
}

/// A chown failure; EINVAL in a user namespace means the owner is not mapped there
/// (rootless strata without subordinate IDs), said with the file and its owner.
fn chown_err(entry: &str, meta: &Meta, err: io::Error) -> LayerError {
    if err.raw_os_error() == Some(rustix::io::Errno::INVAL.raw_os_error()) && in_user_namespace() {
        return LayerError::Unmapped {
            entry: entry.to_string(),
            uid: meta.uid.as_raw(),
            gid: meta.gid.as_raw(),
        };
    }
    fs_err(entry, "chown", err)
}

fn fs_err(entry: &str, op: &'static str, err: io::Error) -> LayerError {
    LayerError::Apply {
        entry: entry.to_string(),
        op,
        err,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_times() {
        let t = parse_pax_time(b"1600000000.25").unwrap();
        assert_eq!((t.tv_sec, t.tv_nsec), (1_600_000_000, 250_000_000));
        let t = parse_pax_time(b"-1.5").unwrap();
        assert_eq!((t.tv_sec, t.tv_nsec), (-2, 500_000_000));
        let t = parse_pax_time(b"-7").unwrap();
        assert_eq!((t.tv_sec, t.tv_nsec), (-7, 0));
        assert!(parse_pax_time(b"1e9").is_none());
        assert!(parse_pax_time(b"").is_none());
    }
}
