//! The build context, read in place (never copied whole), and the source hashes that COPY and
//! ADD cache keys rest on, computed exactly as Docker's classic builder computes them from the
//! context tar the CLI sends:
//!
//! * one file: `file:` + sha256 of its tar header fields (name, mode with type bits (without
//!   for a context tar whose headers have none: newer docker CLIs), uid 0,
//!   gid 0, size, type flag, link name, blank uname and gname, device numbers), then its
//!   contents; mtimes are not part of it;
//! * a directory: `dir:` + sha256 of the sorted hashes of every entry under it, itself
//!   included, joined with `,`;
//! * several sources: `multi:` + sha256 of their hashes joined with `,`.

use std::ffi::{CStr, CString};
use std::fmt::Write as _;
use std::fs;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Component, Path, PathBuf};

use rustix::fs::{FileType, CWD};
use sha2::{Digest as _, Sha256};

use crate::files::{open_dir, open_file_at, stat_at, DirBuf, Meta, BIG_FILE};
use oci::{glob_match, has_glob};

#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error("forbidden path outside the build context: {0} ()")]
    Outside(String),
    #[error("COPY failed: file not found in build context or excluded by .dockerignore: stat {0}: file does not exist")]
    NotFound(String),
    /// The caller names the instruction: `COPY failed: …` / `ADD failed: …`.
    #[error("no source files were specified")]
    NoSources,
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

type Result<T> = std::result::Result<T, ContextError>;

fn io_err(path: &Path) -> impl Fn(io::Error) -> ContextError + '_ {
    move |source| ContextError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Decides whether a context path (relative, `/`-separated) is excluded by `.dockerignore`.
pub type Excluder = Box<dyn Fn(&str) -> bool + Send + Sync>;

/// A build context directory with its exclusions.
pub struct Context {
    root: PathBuf,
    excluded: Excluder,
    /// Hash with `uname root`/`gname root`, as Docker does for `COPY --from` sources.
    owner_names: bool,
    /// Hashes of unchanged files from earlier builds of this context.
    cache: Option<crate::hashcache::HashCache>,
    /// File hashes without the `file:` prefix, as Docker hashes `ADD URL` downloads.
    bare_file_hashes: bool,
    /// Modes hashed without their file type bits: a context tar whose headers carry none
    /// (the docker CLI since Go's `archive/tar` stopped writing them), which Docker's
    /// daemon hashes as sent.
    plain_modes: bool,
    /// Whether an excluded directory may still hold kept entries (a `.dockerignore`
    /// exception under it, see [`Context::with_exceptions`]).
    kept_under: Option<Excluder>,
}

/// One source of a COPY or ADD, resolved inside the context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// Relative path in the context (`/`-separated, no leading `./`) with symlinks resolved
    /// inside the context; empty for the root.
    pub rel: String,
    pub is_dir: bool,
    /// The name the source has where it is copied into a directory: the last component of
    /// the path as written (or matched), a symlink's own name rather than its target's.
    pub name: String,
}

/// The last component of a context path.
fn base_name(rel: &str) -> String {
    rel.rsplit('/').next().unwrap_or_default().to_string()
}

/// The sources of one COPY or ADD with their combined hash.
#[derive(Debug, Clone)]
pub struct SourceSet {
    pub sources: Vec<Source>,
    /// `file:…`, `dir:…` or `multi:…`, as history shows it.
    pub hash: String,
    /// Every entry whose hash went into `hash`, as the hashing found them (for build records).
    pub files: Listing,
}

/// The entries a sources hash was computed from: context path, the entry's hash and mode
/// (type bits included), in the order hashing met them. Collected as the hash is computed
/// (each hashing thread's paths in one buffer, the threads' parts kept apart rather than
/// copied together), so keeping it costs no extra reading or hashing.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    parts: Vec<ListingPart>,
}

#[derive(Debug, Clone, Default)]
struct ListingPart {
    paths: String,
    entries: Vec<(u32, u32, [u8; 16], u32)>,
}

impl Listing {
    fn push(&mut self, path: &str, digest: &[u8; 32], mode: u32) {
        if self.parts.is_empty() {
            self.parts.push(ListingPart::default());
        }
        let Some(p) = self.parts.last_mut() else {
            return;
        };
        let start = p.paths.len() as u32;
        p.paths.push_str(path);
        let mut h = [0u8; 16];
        h.copy_from_slice(&digest[..16]);
        p.entries.push((start, p.paths.len() as u32, h, mode));
    }

    fn append(&mut self, other: Listing) {
        self.parts.extend(other.parts);
    }

    pub fn len(&self) -> usize {
        self.parts.iter().map(|p| p.entries.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The entries sorted by path (each path once), as build records keep them.
    pub fn sorted(&self) -> Vec<store::FileEntry> {
        let mut v: Vec<store::FileEntry> = self
            .parts
            .iter()
            .flat_map(|p| {
                p.entries.iter().map(|(a, b, h, m)| store::FileEntry {
                    path: p.paths[*a as usize..*b as usize].to_string(),
                    hash: *h,
                    mode: *m,
                })
            })
            .collect();
        v.sort_by(|a, b| a.path.cmp(&b.path));
        v.dedup_by(|a, b| a.path == b.path);
        v
    }
}

fn clean(p: &str) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    for c in Path::new(p).components() {
        match c {
            Component::Normal(s) => parts.push(s.to_string_lossy().into_owned()),
            Component::ParentDir => {
                parts.pop()?;
            }
            _ => {}
        }
    }
    Some(parts.join("/"))
}

/// The hash of a COPY/ADD's sources: the one source's own, or `multi:` + sha256 of all of
/// them joined with `,` (Docker's `getSourceHashFromInfos`).
pub(crate) fn combine_hashes(mut hashes: Vec<String>) -> String {
    if hashes.len() == 1 {
        hashes.pop().unwrap_or_default()
    } else {
        format!("multi:{}", sha_hex(hashes.join(",").as_bytes()))
    }
}

fn sha_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

impl Context {
    pub fn new(root: impl Into<PathBuf>, excluded: Excluder) -> Context {
        Context {
            root: root.into(),
            excluded,
            owner_names: false,
            cache: None,
            bare_file_hashes: false,
            plain_modes: false,
            kept_under: None,
        }
    }

    /// `kept_under(dir)` says whether `.dockerignore` has an exception under the excluded
    /// directory `dir` (`docs` then `!docs/keep.txt`). Docker's client then leaves the
    /// directory out of the context it sends but walks it for the exceptions, and the
    /// daemon makes it again as the parent of what is kept: a plain directory (mode 0755,
    /// owned by root, made at build time) when copied, and its path in place of its hash in
    /// a directory's hash (see [`Context::link_digest`]).
    pub fn with_exceptions(mut self, kept_under: Excluder) -> Context {
        self.kept_under = Some(kept_under);
        self
    }

    /// Whether the excluded directory `rel` is walked for exceptions.
    fn walked_excluded(&self, rel: &str) -> bool {
        self.kept_under.as_ref().is_some_and(|k| k(rel))
    }

    /// The metadata a copy gives `rel`: what the file system says, or for an excluded
    /// directory walked for its exceptions, the directory Docker's daemon makes.
    fn as_sent(&self, rel: &str, md: Meta) -> Meta {
        if !md.is_dir() || !self.is_excluded(rel) {
            return md;
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Meta {
            mode: 0o040755,
            uid: 0,
            gid: 0,
            mtime: (now.as_secs() as i64, now.subsec_nanos()),
            ..md
        }
    }

    /// Whether `.dockerignore` leaves `rel` (a directory when `is_dir`) out of the context.
    fn left_out(&self, rel: &str, is_dir: bool) -> bool {
        self.is_excluded(rel) && !(is_dir && self.walked_excluded(rel))
    }

    /// A directory of `ADD URL` downloads, hashed as Docker hashes them: owner names
    /// included and no `file:` prefix.
    pub fn for_downloads(mut self) -> Context {
        self.owner_names = true;
        self.bare_file_hashes = true;
        self
    }

    /// Hashes modes without their file type bits (see [`Context`]'s `plain_modes`).
    pub fn with_plain_modes(mut self) -> Context {
        self.plain_modes = true;
        self
    }

    /// Keeps file hashes in `cache` across builds (see [`crate::HashCache`]).
    pub fn with_hash_cache(mut self, cache: crate::hashcache::HashCache) -> Context {
        self.cache = Some(cache);
        self
    }

    /// Writes the hash cache back, when there is one and it changed.
    pub fn save_hash_cache(&self) -> io::Result<()> {
        match &self.cache {
            Some(c) => c.save(),
            None => Ok(()),
        }
    }

    /// The same context hashed as Docker hashes image root filesystems (`COPY --from`).
    pub fn with_owner_names(mut self) -> Context {
        self.owner_names = true;
        self
    }

    /// Whether `.dockerignore` excludes a context path.
    pub fn excluded(&self, rel: &str) -> bool {
        self.is_excluded(rel)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The host path of a context path.
    pub fn path_of(&self, rel: &str) -> PathBuf {
        if rel.is_empty() {
            self.root.clone()
        } else {
            self.root.join(rel)
        }
    }

    fn is_excluded(&self, rel: &str) -> bool {
        !rel.is_empty() && (self.excluded)(rel)
    }

    /// Follows symlinks of a context path the way Docker's FollowSymlinkInScope does:
    /// every link resolves inside the context, absolute targets from its root.
    fn resolve_in_scope(&self, rel: &str) -> Result<String> {
        let host = crate::copy::resolve_in_root(&self.root, rel, true);
        let inside = host.strip_prefix(&self.root).unwrap_or(Path::new(""));
        Ok(inside.to_string_lossy().into_owned())
    }

    /// Resolves the sources of a COPY/ADD (`src` as written, wildcards allowed) and hashes
    /// them.
    pub fn sources(&self, srcs: &[String]) -> Result<SourceSet> {
        if srcs.is_empty() {
            return Err(ContextError::NoSources);
        }
        let mut sources = Vec::new();
        for s in srcs {
            let cleaned =
                clean(s.trim_start_matches('/')).ok_or_else(|| ContextError::Outside(s.clone()))?;
            if has_glob(&cleaned) {
                // A wildcard may match nothing; only a COPY left with no source fails.
                sources.extend(self.expand_glob(&cleaned)?);
                continue;
            }
            let rel = self.resolve_in_scope(&cleaned)?;
            let p = self.path_of(&rel);
            let md = fs::metadata(&p).map_err(|_| ContextError::NotFound(s.clone()))?;
            if self.left_out(&rel, md.is_dir()) {
                return Err(ContextError::NotFound(s.clone()));
            }
            sources.push(Source {
                rel,
                is_dir: md.is_dir(),
                name: base_name(&cleaned),
            });
        }
        if sources.is_empty() {
            return Err(ContextError::NoSources);
        }
        let mut hashes = Vec::new();
        let mut files = Listing::default();
        for src in &sources {
            hashes.push(self.source_hash_listed(src, &mut files)?);
        }
        Ok(SourceSet {
            sources,
            hash: combine_hashes(hashes),
            files,
        })
    }

    fn expand_glob(&self, pattern: &str) -> Result<Vec<Source>> {
        // Walk only as deep as the pattern has components.
        let parts: Vec<&str> = pattern.split('/').collect();
        let mut current = vec![String::new()];
        for (i, part) in parts.iter().enumerate() {
            let mut next = Vec::new();
            for base in &current {
                let dir = self.path_of(base);
                if !has_glob(part) {
                    let rel = if base.is_empty() {
                        part.to_string()
                    } else {
                        format!("{base}/{part}")
                    };
                    if self.path_of(&rel).symlink_metadata().is_ok() {
                        next.push(rel);
                    }
                    continue;
                }
                let Ok(rd) = fs::read_dir(&dir) else { continue };
                let mut names: Vec<String> = rd
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect();
                names.sort();
                for n in names {
                    if glob_match(part, &n) {
                        next.push(if base.is_empty() {
                            n
                        } else {
                            format!("{base}/{n}")
                        });
                    }
                }
            }
            current = next;
            let _ = i;
        }
        let mut out = Vec::new();
        for matched in current {
            let is_dir = self.path_of(&matched).is_dir();
            if self.left_out(&matched, is_dir) {
                continue;
            }
            // A match that is a symlink is followed, as a source named without wildcards.
            let rel = self.resolve_in_scope(&matched)?;
            let md = fs::metadata(self.path_of(&rel)).map_err(io_err(&self.path_of(&rel)))?;
            out.push(Source {
                rel,
                is_dir: md.is_dir(),
                name: base_name(&matched),
            });
        }
        Ok(out)
    }

    /// `file:<hash>` for a file, `dir:<hash>` for a directory.
    pub fn source_hash(&self, src: &Source) -> Result<String> {
        self.source_hash_listed(src, &mut Listing::default())
    }

    /// [`Context::source_hash`], adding every entry hashed to `files`.
    fn source_hash_listed(&self, src: &Source, files: &mut Listing) -> Result<String> {
        if !src.is_dir {
            let (d, md) = self.entry_digest_meta(&src.rel)?;
            files.push(&src.rel, &d, md.mode);
            let h = hex::encode(d);
            return Ok(if self.bare_file_hashes {
                h
            } else {
                format!("file:{h}")
            });
        }
        let (mut digests, mut names) = self.tree_digests(&src.rel, files)?;
        if !src.rel.is_empty() {
            if self.is_excluded(&src.rel) {
                names.push(src.rel.clone());
            } else {
                let (d, md) = self.entry_digest_meta(&src.rel)?;
                files.push(&src.rel, &d, md.mode);
                digests.push(d);
            }
        }
        // Sorting the digests sorts their hex forms: hex keeps the byte order. (Comparing
        // the first eight bytes as a number first is several times quicker than memcmp.)
        digests.sort_unstable_by(|a, b| prefix(a).cmp(&prefix(b)).then_with(|| a.cmp(b)));
        let mut h = Sha256::new();
        let mut hex_buf = [0u8; 64];
        if names.is_empty() {
            for (i, d) in digests.iter().enumerate() {
                if i > 0 {
                    h.update(b",");
                }
                // 64 bytes always hold the hex of 32.
                let _ = hex::encode_to_slice(d, &mut hex_buf);
                h.update(hex_buf);
            }
        } else {
            // Paths stand for entries the context lacks: sorted with the hashes as strings.
            let mut all: Vec<String> = digests.iter().map(hex::encode).collect();
            all.append(&mut names);
            all.sort_unstable();
            h.update(all.join(",").as_bytes());
        }
        Ok(format!("dir:{}", hex::encode(h.finalize())))
    }

    /// The digests of every entry under `rel` that the context holds (not excluded), not of
    /// `rel` itself, in no particular order. Directories are read, and big files hashed, by
    /// several threads.
    fn tree_digests(&self, rel: &str, files: &mut Listing) -> Result<(Vec<[u8; 32]>, Vec<String>)> {
        let workers = crate::pool::workers();
        let states = crate::pool::run(
            vec![HashTask::Dir(rel.to_string())],
            workers,
            || HashWorker {
                digests: Vec::new(),
                listing: Listing::default(),
                names: Vec::new(),
                scratch: Scratch::default(),
                entries: EntryReader::new(),
            },
            |w: &mut HashWorker, task, queue| match task {
                HashTask::Dir(d) => self.hash_dir(w, &d, queue, workers > 1),
                HashTask::File(f, md) => {
                    let p = self.path_of(&f);
                    let c = cpath(&p)?;
                    let d = self.entry_digest(&f, &md, CWD, &c, &mut w.scratch)?;
                    w.listing.push(&f, &d, md.mode);
                    w.digests.push(d);
                    Ok(())
                }
            },
        )?;
        let (mut all, mut names) = (Vec::new(), Vec::new());
        for mut s in states {
            all.append(&mut s.digests);
            names.append(&mut s.names);
            files.append(std::mem::take(&mut s.listing));
        }
        Ok((all, names))
    }

    /// Hashes the entries of the directory `rel`, queueing its subdirectories (and, when other
    /// threads can take them, its big files that the cache does not know).
    fn hash_dir(
        &self,
        w: &mut HashWorker,
        rel: &str,
        queue: &crate::pool::Queue<HashTask>,
        share_big: bool,
    ) -> Result<()> {
        let dir = self.path_of(rel);
        let fd = open_dir(&dir).map_err(io_err(&dir))?;
        let HashWorker {
            digests,
            listing,
            names,
            scratch,
            entries,
        } = w;
        let err = |p: &str, e| io_err(&self.path_of(p))(e);
        self.each_entry(entries, fd.as_fd(), rel, err, |child, name, md| {
            if md.is_dir() {
                queue.push(HashTask::Dir(child.to_string()));
                if self.is_excluded(child) {
                    // Walked for its exceptions, not in the context itself.
                    names.push(child.to_string());
                    return Ok(());
                }
            } else if md.file_type() == FileType::Symlink {
                match self.link_digest(child, scratch)? {
                    Some(d) => {
                        listing.push(child, &d, md.mode);
                        digests.push(d)
                    }
                    None => names.push(child.to_string()),
                }
                return Ok(());
            } else if share_big
                && md.is_file()
                && md.size >= BIG_FILE
                && self.cached(child, md).is_none()
            {
                queue.push(HashTask::File(child.to_string(), *md));
                return Ok(());
            }
            let d = self.entry_digest(child, md, fd.as_fd(), name, scratch)?;
            listing.push(child, &d, md.mode);
            digests.push(d);
            Ok(())
        })
    }

    /// Calls `each` with the context path, name and (not followed) metadata of every entry of
    /// the context directory `rel`, open as `dir`, that `.dockerignore` keeps; `err` makes an
    /// error of a failed read (of `rel`) or stat (of the entry), given its context path.
    pub(crate) fn each_entry<E>(
        &self,
        reader: &mut EntryReader,
        dir: BorrowedFd<'_>,
        rel: &str,
        err: impl Fn(&str, io::Error) -> E,
        mut each: impl FnMut(&str, &CStr, &Meta) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        let EntryReader { buf, child } = reader;
        buf.for_each(
            dir,
            |e| err(rel, e),
            |name| {
                child.clear();
                if !rel.is_empty() {
                    child.push_str(rel);
                    child.push('/');
                }
                child.push_str(&String::from_utf8_lossy(name.to_bytes()));
                if self.is_excluded(child) {
                    if !self.walked_excluded(child) {
                        return Ok(());
                    }
                    let md = stat_at(dir, name).map_err(|e| err(child, e))?;
                    if !md.is_dir() {
                        return Ok(());
                    }
                    return each(child, name, &self.as_sent(child, md));
                }
                let md = stat_at(dir, name).map_err(|e| err(child, e))?;
                each(child, name, &md)
            },
        )
    }

    /// What a symlink under a directory source adds to the directory's hash. Docker's
    /// classic builder takes the hashes of a directory's entries from the context tar's
    /// tarsum, each by a path it first resolves inside the context (`archiveContext.Hash`):
    /// a link counts as its target (hashed under the target's own path), and an entry the
    /// tar lacks (a link whose target is missing or left out, a directory only walked for
    /// `.dockerignore` exceptions) counts as its own path, the string (`None` here).
    fn link_digest(&self, rel: &str, scratch: &mut Scratch) -> Result<Option<[u8; 32]>> {
        let target = self.resolve_in_scope(rel)?;
        if target.is_empty() {
            return Ok(None);
        }
        let p = self.path_of(&target);
        let c = cpath(&p)?;
        let Ok(md) = stat_at(CWD, &c) else {
            return Ok(None);
        };
        if self.is_excluded(&target) {
            return Ok(None);
        }
        self.entry_digest(&target, &md, CWD, &c, scratch).map(Some)
    }

    /// The tarsum (version 1) of one context entry, as the classic builder computes it.
    pub fn entry_hash(&self, rel: &str) -> Result<String> {
        Ok(hex::encode(self.entry_digest_of(rel)?))
    }

    fn entry_digest_of(&self, rel: &str) -> Result<[u8; 32]> {
        Ok(self.entry_digest_meta(rel)?.0)
    }

    fn entry_digest_meta(&self, rel: &str) -> Result<([u8; 32], Meta)> {
        let p = self.path_of(rel);
        let c = cpath(&p)?;
        let md = stat_at(CWD, &c).map_err(io_err(&p))?;
        let d = self.entry_digest(rel, &md, CWD, &c, &mut Scratch::default())?;
        Ok((d, md))
    }

    /// The cached digest of a regular file, when the cache is used and knows it.
    fn cached(&self, rel: &str, md: &Meta) -> Option<[u8; 32]> {
        self.cache
            .as_ref()
            .filter(|_| md.is_file() && !self.owner_names)
            .and_then(|c| c.get(rel, md))
    }

    /// [`Context::entry_hash`] of the entry `name` in the open directory `dir` (or of a path,
    /// with `CWD`), its metadata already taken.
    fn entry_digest(
        &self,
        rel: &str,
        md: &Meta,
        dir: BorrowedFd<'_>,
        name: &CStr,
        scratch: &mut Scratch,
    ) -> Result<[u8; 32]> {
        if let Some(d) = self.cached(rel, md) {
            return Ok(d);
        }
        let err = |e: io::Error| ContextError::Io {
            path: self.path_of(rel),
            source: e,
        };
        let ft = md.file_type();
        let mut link = std::borrow::Cow::Borrowed("");
        let (type_bits, flag, size) = match ft {
            FileType::Directory => (0o040000, '5', 0),
            FileType::Symlink => {
                let t = rustix::fs::readlinkat(dir, name, Vec::new()).map_err(|e| err(e.into()))?;
                link = std::borrow::Cow::Owned(t.to_string_lossy().into_owned());
                (0o120000, '2', 0)
            }
            FileType::RegularFile => (0o100000, '0', md.size),
            FileType::CharacterDevice => (0o020000, '3', 0),
            FileType::BlockDevice => (0o060000, '4', 0),
            _ => (0o010000, '6', 0),
        };
        let (major, minor) = match ft {
            FileType::CharacterDevice | FileType::BlockDevice => (md.rdev_major, md.rdev_minor),
            _ => (0, 0),
        };
        let slash = if ft == FileType::Directory { "/" } else { "" };
        let (uid, gid, owner) = if self.owner_names {
            (md.uid, md.gid, "root")
        } else {
            (0, 0, "")
        };
        let header = &mut scratch.header;
        header.clear();
        let _ = write!(
            header,
            "name{rel}{slash}mode{}uid{uid}gid{gid}size{size}typeflag{flag}linkname{link}uname{owner}gname{owner}devmajor{major}devminor{minor}",
            if self.plain_modes {
                md.perm()
            } else {
                md.perm() | type_bits
            },
        );
        let mut h = Sha256::new();
        h.update(header.as_bytes());
        if ft == FileType::RegularFile {
            let f = open_file_at(dir, name).map_err(err)?;
            let buf = &mut scratch.buf;
            if buf.len() < READ_BUF {
                buf.resize(READ_BUF, 0);
            }
            loop {
                match rustix::io::read(&f, &mut buf[..]) {
                    Ok(0) => break,
                    Ok(n) => h.update(&buf[..n]),
                    Err(rustix::io::Errno::INTR) => {}
                    Err(e) => return Err(err(e.into())),
                }
            }
        }
        let digest: [u8; 32] = h.finalize().into();
        if let Some(c) = self.cache.as_ref().filter(|_| ft == FileType::RegularFile) {
            if !self.owner_names {
                // The hash is only as good as the stat taken before the read: a file that
                // changed meanwhile carries a new ctime, so it is simply rehashed next time.
                c.put(rel, md, digest);
            }
        }
        Ok(digest)
    }
}

fn prefix(d: &[u8; 32]) -> u64 {
    u64::from_be_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
}

/// Read size for hashing file contents.
const READ_BUF: usize = 256 * 1024;

/// Work for the threads of a tree hash.
enum HashTask {
    /// A directory to read (context path).
    Dir(String),
    /// A big file to hash on its own (context path, metadata).
    File(String, Meta),
}

/// One hashing thread's results and buffers.
struct HashWorker {
    digests: Vec<[u8; 32]>,
    /// The entries `digests` came from.
    listing: Listing,
    /// Context paths that stand for themselves in a directory's hash (see
    /// [`Context::link_digest`]).
    names: Vec<String>,
    scratch: Scratch,
    entries: EntryReader,
}

/// What [`Context::each_entry`] reads directories with, reused from one to the next: the
/// buffer for their entries and the one the context paths are built in.
pub(crate) struct EntryReader {
    buf: DirBuf,
    child: String,
}

impl EntryReader {
    pub(crate) fn new() -> EntryReader {
        EntryReader {
            buf: DirBuf::new(),
            child: String::new(),
        }
    }
}

/// Buffers reused from one entry's hash to the next.
#[derive(Default)]
struct Scratch {
    header: String,
    buf: Vec<u8>,
}

fn cpath(p: &Path) -> Result<CString> {
    CString::new(p.as_os_str().as_encoded_bytes()).map_err(|e| ContextError::Io {
        path: p.to_path_buf(),
        source: io::Error::new(io::ErrorKind::InvalidInput, e),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn ctx(dir: &Path) -> Context {
        Context::new(dir, Box::new(|p: &str| p.ends_with(".log")))
    }

    fn write(dir: &Path, rel: &str, data: &str, mode: u32) {
        let p = dir.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, data).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn sources_list_every_entry_hashed_with_its_hash_and_mode() {
        let t = tempfile::tempdir().unwrap();
        write(t.path(), "d/a.txt", "hello\n", 0o644);
        write(t.path(), "d/sub/b.sh", "echo\n", 0o755);
        write(t.path(), "d/skip.log", "x", 0o644);
        write(t.path(), "one.txt", "1", 0o600);
        let c = ctx(t.path());
        let s = c.sources(&["d".into(), "one.txt".into()]).unwrap();
        let files = s.files.sorted();
        let names: Vec<(&str, u32)> = files.iter().map(|f| (f.path.as_str(), f.mode)).collect();
        assert_eq!(
            names,
            [
                (
                    "d",
                    0o040000
                        | (fs::metadata(t.path().join("d"))
                            .unwrap()
                            .permissions()
                            .mode()
                            & 0o7777)
                ),
                ("d/a.txt", 0o100644),
                (
                    "d/sub",
                    0o040000
                        | (fs::metadata(t.path().join("d/sub"))
                            .unwrap()
                            .permissions()
                            .mode()
                            & 0o7777)
                ),
                ("d/sub/b.sh", 0o100755),
                ("one.txt", 0o100600),
            ]
        );
        let one = files.iter().find(|f| f.path == "one.txt").unwrap();
        assert_eq!(
            hex::encode(one.hash),
            c.entry_hash("one.txt").unwrap()[..32]
        );
    }

    #[test]
    fn hashes_match_dockers_classic_builder() {
        // Values recorded from Docker 20.10 (DOCKER-BEHAVIOUR.md §1.2).
        let t = tempfile::tempdir().unwrap();
        write(t.path(), "a.txt", "hello\n", 0o644);
        let c = ctx(t.path());
        let s = c.sources(&["a.txt".into()]).unwrap();
        assert_eq!(
            s.hash,
            "file:679c43c79a56cffbb3b002bda3050542c152a2f09757a0f1a9578871f7cda00d"
        );
    }

    #[test]
    fn a_context_tar_without_type_bits_hashes_as_docker_hashes_it() {
        // Recorded from Docker 20.10 building examples/simple-api sent by the docker CLI 28,
        // whose context tar has modes without file type bits.
        let t = tempfile::tempdir().unwrap();
        write(
            t.path(),
            "requirements.txt",
            "flask==2.2.2\nrequests==2.28.1\n",
            0o644,
        );
        let c = ctx(t.path()).with_plain_modes();
        let s = c.sources(&["requirements.txt".into()]).unwrap();
        assert_eq!(
            s.hash,
            "file:a86b162ed7965179ba55fa1606569051de1461f32620a1ac97a32d2c847edaf8"
        );
    }

    #[test]
    fn mtime_does_not_change_the_hash_but_mode_and_content_do() {
        let t = tempfile::tempdir().unwrap();
        write(t.path(), "d/one", "1", 0o644);
        write(t.path(), "d/sub/two", "2", 0o644);
        let c = ctx(t.path());
        let h0 = c.sources(&["d".into()]).unwrap().hash;
        assert!(h0.starts_with("dir:"));
        let f = fs::File::options()
            .write(true)
            .open(t.path().join("d/one"))
            .unwrap();
        f.set_modified(std::time::SystemTime::UNIX_EPOCH).unwrap();
        assert_eq!(
            c.sources(&["d".into()]).unwrap().hash,
            h0,
            "mtime is not hashed"
        );
        fs::set_permissions(t.path().join("d/one"), fs::Permissions::from_mode(0o600)).unwrap();
        let h1 = c.sources(&["d".into()]).unwrap().hash;
        assert_ne!(h1, h0, "mode is hashed");
        write(t.path(), "d/one", "x", 0o600);
        assert_ne!(
            c.sources(&["d".into()]).unwrap().hash,
            h1,
            "content is hashed"
        );
        // An excluded file does not count.
        let h2 = c.sources(&["d".into()]).unwrap().hash;
        write(t.path(), "d/noise.log", "x", 0o644);
        assert_eq!(c.sources(&["d".into()]).unwrap().hash, h2);
    }

    #[test]
    fn several_sources_and_wildcards_make_a_multi_hash() {
        let t = tempfile::tempdir().unwrap();
        write(t.path(), "a.txt", "a", 0o644);
        write(t.path(), "b.txt", "b", 0o644);
        write(t.path(), "c.log", "c", 0o644);
        let c = ctx(t.path());
        let s = c.sources(&["*.txt".into()]).unwrap();
        assert_eq!(
            s.sources.iter().map(|s| s.rel.as_str()).collect::<Vec<_>>(),
            vec!["a.txt", "b.txt"]
        );
        assert!(s.hash.starts_with("multi:"));
        assert_eq!(
            c.sources(&["a.txt".into(), "b.txt".into()]).unwrap().hash,
            s.hash
        );
    }

    #[test]
    fn paths_outside_the_context_and_missing_files_are_refused() {
        let t = tempfile::tempdir().unwrap();
        write(t.path(), "a.txt", "a", 0o644);
        write(t.path(), "x.log", "a", 0o644);
        let c = ctx(t.path());
        assert!(matches!(
            c.sources(&["../etc/passwd".into()]),
            Err(ContextError::Outside(_))
        ));
        assert!(matches!(
            c.sources(&["nope".into()]),
            Err(ContextError::NotFound(_))
        ));
        assert!(matches!(
            c.sources(&["x.log".into()]),
            Err(ContextError::NotFound(_))
        ));
        // A symlink that points outside resolves inside the context.
        std::os::unix::fs::symlink("/etc", t.path().join("escape")).unwrap();
        assert!(matches!(
            c.sources(&["escape/passwd".into()]),
            Err(ContextError::NotFound(_))
        ));
    }
}
