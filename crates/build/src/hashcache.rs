//! A cache of context file hashes, so that an unchanged rebuild reads no file it has already
//! hashed: each entry keeps the file's stat fields (device, inode, size, mode, owner, mtime and
//! ctime to the nanosecond) beside its hash, and is used only while all of them still match.
//! Any write to a file changes its ctime, so a stale entry is never used. A file changed
//! within the last two seconds is not cached at all (git's "racily clean" rule: a write in
//! the same clock tick as the hash would not move the times).
//!
//! One cache file per context directory, loaded whole at the start of a build and replaced
//! (temporary name, rename) at its end when it changed. Two builds of one context at once
//! may each replace it; both versions are correct, since every entry is checked on use.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// The stat fields that must all match for a cached hash to be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mode: u32,
    uid: u32,
    gid: u32,
    mtime_ns: i128,
    ctime_ns: i128,
}

impl Stamp {
    pub(crate) fn of(md: &fs::Metadata) -> Stamp {
        Stamp {
            dev: md.dev(),
            ino: md.ino(),
            size: md.size(),
            mode: md.mode(),
            uid: md.uid(),
            gid: md.gid(),
            mtime_ns: md.mtime() as i128 * 1_000_000_000 + md.mtime_nsec() as i128,
            ctime_ns: md.ctime() as i128 * 1_000_000_000 + md.ctime_nsec() as i128,
        }
    }

    /// Whether the file was changed too recently for its times to prove anything later.
    fn is_recent(&self) -> bool {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as i128)
            .unwrap_or(0);
        let window = 2_000_000_000;
        self.mtime_ns.max(self.ctime_ns) > now - window
    }
}

/// The hashes of one context directory's files, by context path.
pub struct HashCache {
    path: PathBuf,
    entries: Mutex<HashMap<String, (Stamp, String)>>,
    dirty: AtomicBool,
}

impl HashCache {
    /// Loads the cache kept at `path`; a missing or unreadable file is an empty cache.
    pub fn load(path: impl Into<PathBuf>) -> HashCache {
        let path = path.into();
        let mut entries = HashMap::new();
        if let Ok(text) = fs::read_to_string(&path) {
            for line in text.lines() {
                if let Some((rel, entry)) = parse_line(line) {
                    entries.insert(rel, entry);
                }
            }
        }
        HashCache {
            path,
            entries: Mutex::new(entries),
            dirty: AtomicBool::new(false),
        }
    }

    /// The cache file of the context directory `context` under `dir`.
    pub fn for_context(dir: &Path, context: &Path) -> HashCache {
        let abs = fs::canonicalize(context).unwrap_or_else(|_| context.to_path_buf());
        let key = {
            use sha2::{Digest as _, Sha256};
            hex::encode(Sha256::digest(abs.as_os_str().as_encoded_bytes()))
        };
        HashCache::load(dir.join(key))
    }

    pub(crate) fn get(&self, rel: &str, stamp: &Stamp) -> Option<String> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        match entries.get(rel) {
            Some((s, h)) if s == stamp => Some(h.clone()),
            _ => None,
        }
    }

    pub(crate) fn put(&self, rel: &str, stamp: Stamp, hash: &str) {
        if stamp.is_recent() || rel.contains(['\n', '\t']) {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.insert(rel.to_string(), (stamp, hash.to_string()));
        self.dirty.store(true, Ordering::Relaxed);
    }

    /// Writes the cache back when it changed: a temporary file, fsynced, renamed into place.
    pub fn save(&self) -> io::Result<()> {
        if !self.dirty.swap(false, Ordering::Relaxed) {
            return Ok(());
        }
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = Vec::with_capacity(entries.len() * 160);
        for (rel, (s, h)) in entries.iter() {
            writeln!(
                out,
                "{h}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{rel}",
                s.dev, s.ino, s.size, s.mode, s.uid, s.gid, s.mtime_ns, s.ctime_ns
            )?;
        }
        if let Some(parent) = self.path.parent() {
            fs::create_dir_all(parent)?;
        }
        let tmp = self
            .path
            .with_extension(format!("tmp{}", std::process::id()));
        let mut f = fs::File::create(&tmp)?;
        f.write_all(&out)?;
        f.sync_all()?;
        fs::rename(&tmp, &self.path)
    }
}

fn parse_line(line: &str) -> Option<(String, (Stamp, String))> {
    let mut it = line.splitn(10, '\t');
    let hash = it.next()?;
    if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let stamp = Stamp {
        dev: it.next()?.parse().ok()?,
        ino: it.next()?.parse().ok()?,
        size: it.next()?.parse().ok()?,
        mode: it.next()?.parse().ok()?,
        uid: it.next()?.parse().ok()?,
        gid: it.next()?.parse().ok()?,
        mtime_ns: it.next()?.parse().ok()?,
        ctime_ns: it.next()?.parse().ok()?,
    };
    let rel = it.next()?.to_string();
    Some((rel, (stamp, hash.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Context;
    use std::time::Duration;

    fn set_mtime(p: &Path, t: &fs::Metadata) {
        let f = fs::File::options().write(true).open(p).unwrap();
        f.set_modified(t.modified().unwrap()).unwrap();
    }

    /// A file hashed more than two seconds after its last change is served from the cache by
    /// the next build; an edit that keeps size and mtime still moves ctime, and is rehashed.
    #[test]
    fn cached_hashes_are_used_only_while_the_file_is_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let ctx_dir = dir.path().join("ctx");
        fs::create_dir(&ctx_dir).unwrap();
        let f = ctx_dir.join("a.txt");
        fs::write(&f, "one\n").unwrap();
        let fresh = ctx_dir.join("fresh.txt");
        let cache_dir = dir.path().join("hashes");
        let open = || {
            Context::new(&ctx_dir, Box::new(|_| false))
                .with_hash_cache(HashCache::for_context(&cache_dir, &ctx_dir))
        };
        std::thread::sleep(Duration::from_millis(2100));
        fs::write(&fresh, "new\n").unwrap();
        let c = open();
        let first = c.entry_hash("a.txt").unwrap();
        let fresh_hash = c.entry_hash("fresh.txt").unwrap();
        c.save_hash_cache().unwrap();

        // The cache file now holds a.txt (and not the file written a moment ago).
        let file = fs::read_dir(&cache_dir)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let text = fs::read_to_string(&file).unwrap();
        assert!(text.contains("\ta.txt\n"), "{text}");
        assert!(!text.contains("fresh.txt"), "{text}");
        // Prove that it is served: a forged hash with matching stat fields comes back.
        let forged = text.replace(&first, &"f".repeat(64));
        fs::write(&file, forged).unwrap();
        assert_eq!(open().entry_hash("a.txt").unwrap(), "f".repeat(64));
        assert_eq!(open().entry_hash("fresh.txt").unwrap(), fresh_hash);

        // Same size, same mtime, new contents: ctime moved, so the real hash is computed.
        let before = fs::metadata(&f).unwrap();
        fs::write(&f, "two\n").unwrap();
        set_mtime(&f, &before);
        assert_eq!(fs::metadata(&f).unwrap().mtime(), before.mtime());
        let after = open().entry_hash("a.txt").unwrap();
        assert_ne!(after, "f".repeat(64));
        assert_ne!(after, first);
        let plain = Context::new(&ctx_dir, Box::new(|_| false));
        assert_eq!(after, plain.entry_hash("a.txt").unwrap());
    }

    #[test]
    fn damaged_cache_lines_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c");
        fs::write(&p, "zz\t1\nnot a line\n").unwrap();
        let c = HashCache::load(&p);
        assert!(c.entries.lock().unwrap().is_empty());
    }
}
