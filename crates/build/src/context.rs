//! The build context, read in place (never copied whole), and the source hashes that COPY and
//! ADD cache keys rest on, computed exactly as Docker's classic builder computes them from the
//! context tar the CLI sends:
//!
//! * one file: `file:` + sha256 of its tar header fields (name, mode with type bits, uid 0,
//!   gid 0, size, type flag, link name, blank uname and gname, device numbers), then its
//!   contents; mtimes are not part of it;
//! * a directory: `dir:` + sha256 of the sorted hashes of every entry under it, itself
//!   included, joined with `,`;
//! * several sources: `multi:` + sha256 of their hashes joined with `,`.

use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Component, Path, PathBuf};

use sha2::{Digest as _, Sha256};

use crate::glob::{glob_match, has_glob};

#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error("forbidden path outside the build context: {0} ()")]
    Outside(String),
    #[error("COPY failed: file not found in build context or excluded by .dockerignore: stat {0}: file does not exist")]
    NotFound(String),
    #[error("COPY failed: no source files were specified")]
    NoSources,
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

type Result<T> = std::result::Result<T, ContextError>;

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> ContextError + '_ {
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
}

/// One source of a COPY or ADD, resolved inside the context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// Relative path in the context (`/`-separated, no leading `./`); empty for the root.
    pub rel: String,
    pub is_dir: bool,
}

/// The sources of one COPY or ADD with their combined hash.
#[derive(Debug, Clone)]
pub struct SourceSet {
    pub sources: Vec<Source>,
    /// `file:…`, `dir:…` or `multi:…`, as history shows it.
    pub hash: String,
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
        }
    }

    /// A directory of `ADD URL` downloads, hashed as Docker hashes them: owner names
    /// included and no `file:` prefix.
    pub fn for_downloads(mut self) -> Context {
        self.owner_names = true;
        self.bare_file_hashes = true;
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
                let found = self.expand_glob(&cleaned)?;
                if found.is_empty() {
                    return Err(ContextError::NotFound(s.clone()));
                }
                sources.extend(found);
                continue;
            }
            let rel = self.resolve_in_scope(&cleaned)?;
            let p = self.path_of(&rel);
            let md = fs::metadata(&p).map_err(|_| ContextError::NotFound(s.clone()))?;
            if self.is_excluded(&rel) {
                return Err(ContextError::NotFound(s.clone()));
            }
            sources.push(Source {
                rel,
                is_dir: md.is_dir(),
            });
        }
        let mut hashes = Vec::new();
        for src in &sources {
            hashes.push(self.source_hash(src)?);
        }
        Ok(SourceSet {
            sources,
            hash: combine_hashes(hashes),
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
        for rel in current {
            if self.is_excluded(&rel) {
                continue;
            }
            let md = fs::metadata(self.path_of(&rel)).map_err(io_err(&self.path_of(&rel)))?;
            out.push(Source {
                rel,
                is_dir: md.is_dir(),
            });
        }
        Ok(out)
    }

    /// `file:<hash>` for a file, `dir:<hash>` for a directory.
    pub fn source_hash(&self, src: &Source) -> Result<String> {
        if !src.is_dir {
            let h = self.entry_hash(&src.rel)?;
            return Ok(if self.bare_file_hashes {
                h
            } else {
                format!("file:{h}")
            });
        }
        let mut hashes = Vec::new();
        if !src.rel.is_empty() {
            hashes.push(self.entry_hash(&src.rel)?);
        }
        for (rel, md) in self.walk_with_metadata(&src.rel)? {
            hashes.push(self.entry_hash_with(&rel, &md)?);
        }
        hashes.sort();
        Ok(format!("dir:{}", sha_hex(hashes.join(",").as_bytes())))
    }

    /// Every entry under `rel` that the context holds (not excluded), sorted, not `rel`.
    pub fn walk(&self, rel: &str) -> Result<Vec<String>> {
        Ok(self
            .walk_with_metadata(rel)?
            .into_iter()
            .map(|(r, _)| r)
            .collect())
    }

    /// [`Context::walk`] with each entry's (not followed) metadata, taken once.
    fn walk_with_metadata(&self, rel: &str) -> Result<Vec<(String, fs::Metadata)>> {
        let mut out = Vec::new();
        let mut stack = vec![rel.to_string()];
        while let Some(d) = stack.pop() {
            let dir = self.path_of(&d);
            let mut entries: Vec<(String, fs::DirEntry)> = fs::read_dir(&dir)
                .map_err(io_err(&dir))?
                .flatten()
                .map(|e| (e.file_name().to_string_lossy().into_owned(), e))
                .collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            for (n, e) in entries.into_iter().rev() {
                let child = if d.is_empty() { n } else { format!("{d}/{n}") };
                if self.is_excluded(&child) {
                    continue;
                }
                // Relative to the open directory: no path walk per entry.
                let md = e.metadata().map_err(io_err(&self.path_of(&child)))?;
                if md.is_dir() {
                    stack.push(child.clone());
                }
                out.push((child, md));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// The tarsum (version 1) of one context entry, as the classic builder computes it.
    pub fn entry_hash(&self, rel: &str) -> Result<String> {
        let p = self.path_of(rel);
        let md = fs::symlink_metadata(&p).map_err(io_err(&p))?;
        self.entry_hash_with(rel, &md)
    }

    /// [`Context::entry_hash`] with the entry's metadata already taken.
    fn entry_hash_with(&self, rel: &str, md: &fs::Metadata) -> Result<String> {
        let p = self.path_of(rel);
        let ft = md.file_type();
        let perm = md.mode() & 0o7777;
        let (type_bits, flag, size, link) = if ft.is_dir() {
            (0o040000, '5', 0, String::new())
        } else if ft.is_symlink() {
            let t = fs::read_link(&p).map_err(io_err(&p))?;
            (0o120000, '2', 0, t.to_string_lossy().into_owned())
        } else if ft.is_file() {
            (0o100000, '0', md.len(), String::new())
        } else if ft.is_char_device() {
            (0o020000, '3', 0, String::new())
        } else if ft.is_block_device() {
            (0o060000, '4', 0, String::new())
        } else {
            (0o010000, '6', 0, String::new())
        };
        let name = if ft.is_dir() {
            format!("{rel}/")
        } else {
            rel.to_string()
        };
        let (major, minor) = if ft.is_char_device() || ft.is_block_device() {
            (libc_major(md.rdev()), libc_minor(md.rdev()))
        } else {
            (0, 0)
        };
        let mut h = Sha256::new();
        h.update(format!(
            "name{name}mode{}uid{}gid{}size{size}typeflag{flag}linkname{link}uname{}gname{}devmajor{major}devminor{minor}",
            perm | type_bits,
            if self.owner_names { md.uid() } else { 0 },
            if self.owner_names { md.gid() } else { 0 },
            if self.owner_names { "root" } else { "" },
            if self.owner_names { "root" } else { "" },
        ));
        let cache = self
            .cache
            .as_ref()
            .filter(|_| ft.is_file() && !self.owner_names);
        let stamp = crate::hashcache::Stamp::of(md);
        if let Some(hash) = cache.and_then(|c| c.get(rel, &stamp)) {
            return Ok(hash);
        }
        if ft.is_file() {
            let mut f = fs::File::open(&p).map_err(io_err(&p))?;
            let mut buf = vec![0u8; 1 << 16];
            loop {
                let n = f.read(&mut buf).map_err(io_err(&p))?;
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
            }
        }
        let hash = hex::encode(h.finalize());
        if let Some(c) = cache {
            // The hash is only as good as the stat taken before the read: a file that
            // changed meanwhile would carry a new ctime, so it is simply rehashed next time.
            c.put(rel, stamp, &hash);
        }
        Ok(hash)
    }
}

fn libc_major(dev: u64) -> u64 {
    ((dev >> 32) & 0xffff_f000) | ((dev >> 8) & 0xfff)
}

fn libc_minor(dev: u64) -> u64 {
    ((dev >> 12) & 0xffff_ff00) | (dev & 0xff)
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
