//! A cache of context file hashes, so that an unchanged rebuild reads no file it has already
//! hashed: each entry keeps the file's stat fields (device, inode, size, mode, owner, mtime and
//! ctime to the nanosecond) beside its hash, and is used only while all of them still match.
//! Any write to a file changes its ctime, so a stale entry is never used. A file changed
//! within two seconds of the build's start is not cached at all (git's "racily clean" rule: a
//! write in the same clock tick as the hash would not move the times).
//!
//! One cache file per context directory, read whole at the start of a build and replaced
//! (temporary name, fsync, rename) at its end when it changed. Two builds of one context at
//! once may each replace it; both versions are correct, since every entry is checked on use.
//!
//! The file is binary, so that loading it is one read and an index of path hashes, with no
//! allocation per entry: a header (magic, checksum of the rest), then records of the stat
//! fields ([`STAMP_LEN`] bytes), the 32-byte hash, the path's length and the path. A file
//! that does not check out is an empty cache.

use std::collections::HashMap;
use std::fs;
use std::hash::{BuildHasherDefault, Hasher};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::files::Meta;
use crate::pool::lock;

const MAGIC: &[u8; 16] = b"strata-hashes-2\n";
const HEADER_LEN: usize = MAGIC.len() + 8;
/// dev, ino, size, mtime s, ctime s (8 bytes each); mode, uid, gid, mtime ns, ctime ns (4).
const STAMP_LEN: usize = 5 * 8 + 5 * 4;
const RECORD_FIXED: usize = STAMP_LEN + 32 + 4;

type Stamp = [u8; STAMP_LEN];

/// The stat fields that must all match for a cached hash to be used, as stored.
fn stamp(md: &Meta) -> Stamp {
    let mut s = [0u8; STAMP_LEN];
    let fields8 = [
        md.dev,
        md.ino,
        md.size,
        md.mtime.0 as u64,
        md.ctime.0 as u64,
    ];
    let fields4 = [md.mode, md.uid, md.gid, md.mtime.1, md.ctime.1];
    let mut at = 0;
    for f in fields8 {
        s[at..at + 8].copy_from_slice(&f.to_le_bytes());
        at += 8;
    }
    for f in fields4 {
        s[at..at + 4].copy_from_slice(&f.to_le_bytes());
        at += 4;
    }
    s
}

/// A 64-bit hash of bytes, eight at a time through a folded 128-bit multiply (foldhash's
/// step): the index key of a path and the checksum of the file. Not cryptographic: a path is
/// always compared whole before its entry is used (a collision only costs a rehash).
fn fold(data: &[u8]) -> u64 {
    const K0: u64 = 0x243f_6a88_85a3_08d3;
    const K1: u64 = 0x1319_8a2e_0370_7345;
    const K2: u64 = 0xa409_3822_299f_31d1;
    fn mix(a: u64, b: u64) -> u64 {
        let p = u128::from(a) * u128::from(b);
        (p as u64) ^ ((p >> 64) as u64)
    }
    let mut h = (data.len() as u64).wrapping_mul(K0);
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        h = mix(h ^ u64::from_le_bytes(w), K1);
    }
    let mut tail = [0u8; 8];
    tail[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    h = mix(h ^ u64::from_le_bytes(tail), K1);
    mix(h, K2)
}

/// Keys that are hashes already.
#[derive(Default)]
struct KeyIsHash(u64);

impl Hasher for KeyIsHash {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, _: &[u8]) {
        unreachable!("only u64 keys")
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// One record of the loaded file.
struct Record<'a> {
    stamp: &'a [u8],
    digest: [u8; 32],
    path: &'a [u8],
}

/// The record at `at` in `data`, and where the next begins.
fn record_at(data: &[u8], at: usize) -> Option<(Record<'_>, usize)> {
    let fixed = data.get(at..at + RECORD_FIXED)?;
    let len = u32::from_le_bytes(fixed[STAMP_LEN + 32..].try_into().ok()?) as usize;
    let path = data.get(at + RECORD_FIXED..at + RECORD_FIXED + len)?;
    let record = Record {
        stamp: &fixed[..STAMP_LEN],
        digest: fixed[STAMP_LEN..STAMP_LEN + 32].try_into().ok()?,
        path,
    };
    Some((record, at + RECORD_FIXED + len))
}

fn put_record(out: &mut Vec<u8>, stamp: &[u8], digest: &[u8; 32], path: &[u8]) {
    out.extend_from_slice(stamp);
    out.extend_from_slice(digest);
    out.extend_from_slice(&(path.len() as u32).to_le_bytes());
    out.extend_from_slice(path);
}

/// The hashes of one context directory's files, by context path.
pub struct HashCache {
    path: PathBuf,
    /// The file as loaded, when it checked out (its records are [`HashCache::data`]).
    file: Vec<u8>,
    /// Path hash → offset of its record in `data`.
    index: HashMap<u64, u32, BuildHasherDefault<KeyIsHash>>,
    /// Entries hashed by this build.
    fresh: Mutex<HashMap<String, (Stamp, [u8; 32])>>,
    has_fresh: AtomicBool,
    /// Files changed after this (the build's start less two seconds) are not cached.
    recent_after: (i64, u32),
}

impl HashCache {
    /// Loads the cache kept at `path`; a missing, damaged or older-format file is an empty
    /// cache.
    pub fn load(path: impl Into<PathBuf>) -> HashCache {
        let path = path.into();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let mut cache = HashCache {
            path,
            file: Vec::new(),
            index: HashMap::default(),
            fresh: Mutex::new(HashMap::new()),
            has_fresh: AtomicBool::new(false),
            recent_after: (now.as_secs() as i64 - 2, now.subsec_nanos()),
        };
        if let Ok(file) = fs::read(&cache.path) {
            if checked_body(&file).is_some() {
                cache.file = file;
                cache.index_records();
            }
        }
        cache
    }

    /// The records of the loaded file.
    fn data(&self) -> &[u8] {
        self.file.get(HEADER_LEN..).unwrap_or_default()
    }

    fn index_records(&mut self) {
        let mut at = 0;
        let mut index = HashMap::default();
        let data = self.data();
        while let Some((r, next)) = record_at(data, at) {
            // Two paths with one hash: the first keeps the slot, the other is never served.
            index.entry(fold(r.path)).or_insert(at as u32);
            at = next;
        }
        if at != data.len() || at > u32::MAX as usize {
            self.file.clear();
        } else {
            self.index = index;
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

    /// The hash of `rel` when its stat fields `md` are the ones it was hashed with.
    pub(crate) fn get(&self, rel: &str, md: &Meta) -> Option<[u8; 32]> {
        let st = stamp(md);
        if let Some(&at) = self.index.get(&fold(rel.as_bytes())) {
            if let Some((r, _)) = record_at(self.data(), at as usize) {
                if r.path == rel.as_bytes() && r.stamp == st {
                    return Some(r.digest);
                }
            }
        }
        if !self.has_fresh.load(Ordering::Relaxed) {
            return None;
        }
        match lock(&self.fresh).get(rel) {
            Some((s, d)) if *s == st => Some(*d),
            _ => None,
        }
    }

    /// Records the hash of `rel`, taken with the stat fields `md` read before its contents.
    pub(crate) fn put(&self, rel: &str, md: &Meta, digest: [u8; 32]) {
        if md.mtime.max(md.ctime) > self.recent_after {
            return;
        }
        lock(&self.fresh).insert(rel.to_string(), (stamp(md), digest));
        self.has_fresh.store(true, Ordering::Relaxed);
    }

    /// Writes the cache back when it changed: a temporary file, fsynced, renamed into place.
    pub fn save(&self) -> io::Result<()> {
        let fresh = lock(&self.fresh);
        if fresh.is_empty() {
            return Ok(());
        }
        // Old records that this build did not replace, then the new ones, sorted by path: the
        // entries of one directory end up side by side, which is where the walk looks for
        // them one after the other.
        enum Saved<'a> {
            Old(&'a [u8]),
            New(&'a Stamp, &'a [u8; 32]),
        }
        let mut records: Vec<(&[u8], Saved<'_>)> =
            Vec::with_capacity(self.index.len() + fresh.len());
        let mut at = 0;
        let data = self.data();
        while let Some((r, next)) = record_at(data, at) {
            let replaced = std::str::from_utf8(r.path)
                .map(|p| fresh.contains_key(p))
                .unwrap_or(false);
            if !replaced {
                records.push((r.path, Saved::Old(&data[at..next])));
            }
            at = next;
        }
        for (rel, (st, digest)) in fresh.iter() {
            records.push((rel.as_bytes(), Saved::New(st, digest)));
        }
        records.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let mut body = Vec::with_capacity(data.len() + fresh.len() * (RECORD_FIXED + 40));
        for (path, r) in records {
            match r {
                Saved::Old(bytes) => body.extend_from_slice(bytes),
                Saved::New(st, digest) => put_record(&mut body, st, digest, path),
            }
        }
        if let Some(parent) = self.path.parent() {
            fs::create_dir_all(parent)?;
        }
        let tmp = self
            .path
            .with_extension(format!("tmp{}", std::process::id()));
        let mut f = fs::File::create(&tmp)?;
        f.write_all(MAGIC)?;
        f.write_all(&fold(&body).to_le_bytes())?;
        f.write_all(&body)?;
        f.sync_all()?;
        drop(fresh);
        fs::rename(&tmp, &self.path)
    }
}

/// The records of a cache file whose header and checksum check out.
fn checked_body(file: &[u8]) -> Option<&[u8]> {
    if file.len() < HEADER_LEN || &file[..MAGIC.len()] != MAGIC {
        return None;
    }
    let sum = u64::from_le_bytes(file[MAGIC.len()..HEADER_LEN].try_into().ok()?);
    let body = &file[HEADER_LEN..];
    (fold(body) == sum).then_some(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Context;
    use std::os::unix::fs::MetadataExt;
    use std::time::Duration;

    fn set_mtime(p: &Path, t: &fs::Metadata) {
        let f = fs::File::options().write(true).open(p).unwrap();
        f.set_modified(t.modified().unwrap()).unwrap();
    }

    fn meta(p: &Path) -> Meta {
        crate::files::stat_at(
            rustix::fs::CWD,
            &std::ffi::CString::new(p.to_str().unwrap()).unwrap(),
        )
        .unwrap()
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
        let cache = HashCache::for_context(&cache_dir, &ctx_dir);
        assert_eq!(cache.index.len(), 1);
        assert_eq!(
            cache.get("a.txt", &meta(&f)).map(hex::encode),
            Some(first.clone())
        );
        assert_eq!(cache.get("fresh.txt", &meta(&fresh)), None);
        // Prove that it is served: a forged hash with matching stat fields comes back.
        let forged = HashCache::for_context(&cache_dir, &ctx_dir);
        forged.put("a.txt", &meta(&f), [0xff; 32]);
        forged.save().unwrap();
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

    /// A tree hashed once (files in many directories, one big enough to be hashed on a thread
    /// of its own) is served whole from the cache by the next build: nothing new to save, and
    /// the same `dir:` hash as without a cache.
    #[test]
    fn a_tree_hashed_once_is_served_whole_from_the_cache() {
        let dir = tempfile::tempdir().unwrap();
        let ctx_dir = dir.path().join("ctx");
        for d in 0..30 {
            let sub = ctx_dir.join(format!("t/d{d}"));
            fs::create_dir_all(&sub).unwrap();
            for f in 0..100 {
                fs::write(sub.join(format!("f{f}.txt")), format!("{d} {f}\n")).unwrap();
            }
        }
        fs::write(ctx_dir.join("t/big"), vec![7u8; 3 << 20]).unwrap();
        let cache_dir = dir.path().join("hashes");
        let open = || {
            Context::new(&ctx_dir, Box::new(|_| false))
                .with_hash_cache(HashCache::for_context(&cache_dir, &ctx_dir))
        };
        std::thread::sleep(Duration::from_millis(2100));
        let c = open();
        let first = c.sources(&["t".into()]).unwrap().hash;
        c.save_hash_cache().unwrap();
        let file = fs::read_dir(&cache_dir)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let saved = fs::metadata(&file).unwrap().ino();
        assert_eq!(HashCache::load(&file).index.len(), 3001);

        let c = open();
        assert_eq!(c.sources(&["t".into()]).unwrap().hash, first);
        c.save_hash_cache().unwrap();
        assert_eq!(
            fs::metadata(&file).unwrap().ino(),
            saved,
            "nothing was rehashed"
        );
        let plain = Context::new(&ctx_dir, Box::new(|_| false));
        assert_eq!(plain.sources(&["t".into()]).unwrap().hash, first);
    }

    /// Paths that differ in a few characters here and there (the shape of real trees) get
    /// index keys of their own: an earlier, weaker mix collided on 2% of such paths, which
    /// were then rehashed by every build.
    #[test]
    fn index_keys_of_similar_paths_differ() {
        let mut keys = std::collections::HashSet::new();
        for i in 0..300 {
            for j in 0..300 {
                assert!(keys.insert(fold(format!("small/d{i}/f{j}.txt").as_bytes())));
            }
        }
        for n in 0..20_000 {
            assert!(keys.insert(fold(format!("{n}").as_bytes())));
        }
        assert_ne!(fold(b"x"), fold(b"x\0"));
    }

    /// Damaged files (wrong magic, a flipped byte, a cut-off record) and the old text format
    /// are empty caches; entries round-trip through save and load, new ones replacing old.
    #[test]
    fn damaged_files_are_empty_caches_and_entries_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c");
        let md = Meta {
            mode: 0o100644,
            uid: 1,
            gid: 2,
            nlink: 1,
            size: 3,
            dev: 4,
            ino: 5,
            rdev_major: 0,
            rdev_minor: 0,
            mtime: (1_000_000, 7),
            ctime: (1_000_001, 8),
        };
        let c = HashCache::load(&p);
        for i in 0..1000u32 {
            c.put(&format!("dir/file{i}"), &md, [i as u8; 32]);
        }
        c.save().unwrap();
        let c = HashCache::load(&p);
        assert_eq!(c.index.len(), 1000);
        assert_eq!(c.get("dir/file7", &md), Some([7; 32]));
        let moved = Meta { ino: 6, ..md };
        assert_eq!(c.get("dir/file7", &moved), None, "every stat field counts");
        c.put("dir/file7", &moved, [0xaa; 32]);
        c.save().unwrap();
        let c = HashCache::load(&p);
        assert_eq!(c.index.len(), 1000);
        assert_eq!(c.get("dir/file7", &moved), Some([0xaa; 32]));
        assert_eq!(c.get("dir/file8", &md), Some([8; 32]));

        let good = fs::read(&p).unwrap();
        let mut flipped = good.clone();
        flipped[HEADER_LEN + 100] ^= 1;
        let cut = good[..good.len() - 3].to_vec();
        let mut magic = good.clone();
        magic[0] = b'x';
        for (what, bytes) in [
            ("flipped", flipped),
            ("cut", cut),
            ("magic", magic),
            ("text", b"zz\t1\nnot a line\n".to_vec()),
        ] {
            fs::write(&p, bytes).unwrap();
            let c = HashCache::load(&p);
            assert!(c.index.is_empty() && c.data().is_empty(), "{what}");
        }
    }
}
