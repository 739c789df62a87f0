//! `system check`: an fsck of the store. It reads every blob and hashes it, looks for every
//! layer directory and tar-split file a layer row announces (and, when asked, has the caller
//! put each layer's tar back together and hash it against its diff_id), follows every
//! reference of the metadata (images to config blobs and layers, tags and repo digests to
//! images, containers to their image and snapshot, build cache records and registry blobs to
//! layers), and looks for leftovers: files no row names, staging areas of processes that are
//! gone, and mounts under the root that nothing running owns.
//!
//! The check holds the store lock (the one publishing and garbage collection take) for its
//! whole run and reads the database in one transaction, so a concurrent build or pull is seen
//! either before or after each of its publications, never half-way.
//!
//! [`repair`] removes what nothing references and marks containers whose snapshot is gone as
//! `dead`; what is referenced but damaged (a blob that no longer hashes to its name, a missing
//! or changed layer) is only reported, with the images it breaks, which stay listed until the
//! user pulls them again or removes them.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use oci::{Digest, Hasher};
use rusqlite::{params, Connection};

use crate::db::LayerRecord;
use crate::error::{Error, Result};
use crate::staging::{random_u64, remove_if_stale, remove_tree};
use crate::{BlobRef, Layout, Store};

/// Verifies one layer's tar against its diff_id (`--deep`); the error says what differs.
pub type DeepCheck<'a> = &'a dyn Fn(&LayerRecord) -> std::result::Result<(), String>;

/// What kind of problem a [`Problem`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ProblemKind {
    /// Content that no longer matches its digest.
    Damaged,
    /// A file or directory a row announces is gone.
    Missing,
    /// A row names something that does not exist.
    Dangling,
    /// Something nothing references (removed by `--repair`).
    Unreferenced,
    /// A staging area, temporary file or mount left by a process that is gone.
    Leftover,
}

/// How `--repair` fixes a problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fix {
    RemoveFile(PathBuf),
    /// Renamed aside first, so a half-removed tree is never seen under its name.
    RemoveTree(PathBuf),
    /// A staging area whose lock file is this path.
    RemoveStaging(PathBuf),
    Unmount(PathBuf),
    /// One SQL statement with one text parameter.
    Sql(&'static str, String),
    /// Forgets an unreferenced layer: its row, registry blobs and cache records; its
    /// directory, tar-split and blob are left for the next pass.
    DropLayer(Digest),
    /// Marks the container `dead`, with the reason as its error.
    MarkDead(String, String),
}

/// One problem found, with the object it is about and, when `--repair` can fix it, how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub kind: ProblemKind,
    /// The digest, path or ID it is about (`blob sha256:…`, `container 0123…`).
    pub subject: String,
    pub detail: String,
    pub fix: Option<Fix>,
}

impl Problem {
    /// What a killed process leaves (see [`Report::is_sound`]), as opposed to damage.
    pub fn is_leftover(&self) -> bool {
        matches!(self.kind, ProblemKind::Leftover | ProblemKind::Unreferenced)
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            ProblemKind::Damaged => "damaged",
            ProblemKind::Missing => "missing",
            ProblemKind::Dangling => "dangling",
            ProblemKind::Unreferenced => "unreferenced",
            ProblemKind::Leftover => "leftover",
        };
        write!(f, "{kind}: {}: {}", self.subject, self.detail)?;
        match &self.fix {
            None => {}
            Some(Fix::MarkDead(..)) => write!(f, " (--repair marks it dead)")?,
            Some(Fix::Sql(sql, _)) if sql.starts_with("UPDATE") => {
                write!(f, " (--repair forgets the link)")?
            }
            Some(_) => write!(f, " (--repair removes it)")?,
        }
        Ok(())
    }
}

/// What [`check`] found.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub problems: Vec<Problem>,
    pub images: usize,
    pub layers: usize,
    pub blobs: usize,
    pub containers: usize,
    /// What [`repair`] did, one line each.
    pub repaired: Vec<String>,
}

impl Report {
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }

    /// Whether nothing is damaged: every problem found is what a killed or interrupted
    /// command leaves behind (a dead process's staging area, snapshot or mount, garbage an
    /// interrupted removal had not collected yet, a container whose `rm` was cut short),
    /// which the next command of its kind or `--repair` collects, and which breaks nothing.
    pub fn is_sound(&self) -> bool {
        self.problems.iter().all(Problem::is_leftover)
    }

    /// The one-line summary.
    pub fn summary(&self) -> String {
        let checked = format!(
            "{} images, {} layers, {} blobs, {} containers checked",
            self.images, self.layers, self.blobs, self.containers
        );
        let repaired = if self.repaired.is_empty() {
            String::new()
        } else {
            format!(", {} repaired", self.repaired.len())
        };
        if self.problems.is_empty() {
            return format!("store is consistent: {checked}{repaired}");
        }
        if self.is_sound() {
            return format!(
                "store is consistent, with {} leftovers of interrupted commands (collected by the next command that collects garbage, or now by --repair): {checked}{repaired}",
                self.problems.len()
            );
        }
        let fixable = self.problems.iter().filter(|p| p.fix.is_some()).count();
        let broken: BTreeSet<&str> = self
            .problems
            .iter()
            .filter(|p| p.subject.starts_with("image "))
            .map(|p| p.subject.as_str())
            .collect();
        format!(
            "{} problems ({fixable} repairable with --repair, {} damaged images): {checked}{repaired}",
            self.problems.len(),
            broken.len()
        )
    }
}

/// Checks the store (see the module's documentation), with `deep` verifying each layer's tar.
pub fn check(store: &Store, deep: Option<DeepCheck<'_>>) -> Result<Report> {
    let _lock = Layout::new(&store.root).lock()?;
    check_locked(store, deep)
}

/// Checks, then fixes what [`Fix`]es can fix, until nothing more can be (removing an
/// unreferenced layer row can leave its directory unreferenced); returns the last check with
/// the repairs made.
pub fn repair(store: &Store, deep: Option<DeepCheck<'_>>) -> Result<Report> {
    let _lock = Layout::new(&store.root).lock()?;
    let mut done = Vec::new();
    for _ in 0..4 {
        let report = check_locked(store, deep)?;
        let mut fixes: Vec<&Problem> = report.problems.iter().filter(|p| p.fix.is_some()).collect();
        // Unmount first: a mount point cannot be renamed away while mounted.
        fixes.sort_by_key(|p| !matches!(p.fix, Some(Fix::Unmount(_))));
        if fixes.is_empty() {
            return Ok(Report {
                repaired: done,
                ..report
            });
        }
        for p in fixes {
            apply(store, p.fix.as_ref().unwrap()).map_err(|e| Error::Repair {
                subject: p.subject.clone(),
                source: Box::new(e),
            })?;
            let verb = match p.fix.as_ref().unwrap() {
                Fix::Unmount(_) => "unmounted",
                Fix::MarkDead(..) => "marked dead",
                Fix::Sql(sql, _) if sql.starts_with("UPDATE") => "unlinked",
                _ => "removed",
            };
            done.push(format!("{verb}: {}: {}", p.subject, p.detail));
        }
    }
    let report = check_locked(store, deep)?;
    Ok(Report {
        repaired: done,
        ..report
    })
}

fn apply(store: &Store, fix: &Fix) -> Result<()> {
    let root = &store.root;
    match fix {
        Fix::RemoveFile(p) => match fs::remove_file(p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(p, e)),
        },
        Fix::RemoveTree(p) => {
            let trash = root
                .join("tmp")
                .join(format!("trash-{:016x}", random_u64()));
            fs::rename(p, &trash).map_err(|e| Error::io(p, e))?;
            remove_tree(&trash).map_err(|e| Error::io(&trash, e))
        }
        Fix::RemoveStaging(lock) => {
            remove_if_stale(lock);
            Ok(())
        }
        Fix::Unmount(p) => unmount(p),
        Fix::Sql(sql, arg) => {
            store.db.conn.execute(sql, [arg])?;
            Ok(())
        }
        Fix::DropLayer(d) => {
            let tx = store.db.conn.unchecked_transaction()?;
            let d = d.to_string();
            tx.execute(
                "DELETE FROM image_layers WHERE diff_id = ?1
                 AND image_id NOT IN (SELECT id FROM images)",
                [&d],
            )?;
            tx.execute("DELETE FROM layers WHERE diff_id = ?1", [&d])?;
            tx.execute("DELETE FROM layer_remotes WHERE diff_id = ?1", [&d])?;
            tx.execute("DELETE FROM linked_layers WHERE diff_id = ?1", [&d])?;
            tx.commit()?;
            Ok(())
        }
        Fix::MarkDead(id, why) => {
            store.db.conn.execute(
                "UPDATE containers SET status = 'dead', pid = 0, error = ?2 WHERE id = ?1",
                params![id, why],
            )?;
            Ok(())
        }
    }
}

fn unmount(p: &Path) -> Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(p.as_os_str().as_bytes())
        .map_err(|e| Error::io(p, std::io::Error::other(e)))?;
    // SAFETY: `c` is NUL-terminated; a lazy unmount has no other effect on this process.
    if unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) } != 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINVAL) && e.raw_os_error() != Some(libc::ENOENT) {
            return Err(Error::io(p, e));
        }
    }
    Ok(())
}

/// The rows the check reads, all from one read transaction.
struct Rows {
    layers: BTreeMap<Digest, LayerRecord>,
    /// image ID -> its diff_ids (base first), as `image_layers` lists them.
    images: BTreeMap<String, Vec<String>>,
    parents: Vec<(String, String)>,
    tags: Vec<(String, String)>,
    repo_digests: Vec<(String, String)>,
    /// id, name, image, snapshot, status, pid
    containers: Vec<(String, String, String, String, String, i64)>,
    linked: Vec<(String, String)>,
    remotes: Vec<String>,
    /// Image IDs `image_layers` names that `images` does not hold.
    dangling_image_layers: BTreeSet<String>,
}

fn strings2(conn: &Connection, sql: &str) -> Result<Vec<(String, String)>> {
    let mut st = conn.prepare(sql)?;
    let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<std::result::Result<_, _>>()?)
}

fn read_rows(conn: &Connection) -> Result<Rows> {
    let tx = conn.unchecked_transaction()?;
    let mut layers = BTreeMap::new();
    {
        let mut st = tx.prepare(
            "SELECT diff_id, size, tar_size, blob, media_type, blob_size, tar_split FROM layers",
        )?;
        let rows = st.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, Option<i64>>(5)?,
                r.get::<_, bool>(6)?,
            ))
        })?;
        for row in rows {
            let (d, size, tar_size, blob, mt, bsize, split) = row?;
            let diff_id = Digest::from_str(&d).map_err(|e| Error::Corrupt(e.to_string()))?;
            let blob = match blob {
                Some(b) => Some(BlobRef {
                    digest: Digest::from_str(&b).map_err(|e| Error::Corrupt(e.to_string()))?,
                    media_type: mt.unwrap_or_default(),
                    size: bsize.unwrap_or(0) as u64,
                }),
                None => None,
            };
            layers.insert(
                diff_id,
                LayerRecord {
                    diff_id,
                    size: size as u64,
                    tar_size: tar_size as u64,
                    blob,
                    tar_split: split,
                },
            );
        }
    }
    let mut images: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (id, _) in strings2(&tx, "SELECT id, id FROM images")? {
        images.insert(id, Vec::new());
    }
    let mut dangling_image_layers = BTreeSet::new();
    for (id, d) in strings2(
        &tx,
        "SELECT image_id, diff_id FROM image_layers ORDER BY image_id, position",
    )? {
        match images.get_mut(&id) {
            Some(v) => v.push(d),
            None => {
                dangling_image_layers.insert(id);
            }
        }
    }
    let parents = strings2(
        &tx,
        "SELECT id, parent FROM images WHERE parent IS NOT NULL",
    )?;
    let tags = strings2(&tx, "SELECT name, image_id FROM tags")?;
    let repo_digests = strings2(&tx, "SELECT name, image_id FROM repo_digests")?;
    let containers = {
        let mut st =
            // A container whose `rm` was cut short reads as `removing`.
            tx.prepare(
                "SELECT id, name, image_id, snapshot,
                 CASE WHEN status = 'dead' AND error = ?1 THEN 'removing' ELSE status END,
                 pid FROM containers",
            )?;
        let rows = st.query_map([crate::REMOVAL_IN_PROGRESS], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })?;
        rows.collect::<std::result::Result<_, _>>()?
    };
    let linked = strings2(&tx, "SELECT key, diff_id FROM linked_layers")?;
    let remotes = strings2(&tx, "SELECT DISTINCT diff_id, diff_id FROM layer_remotes")?
        .into_iter()
        .map(|(d, _)| d)
        .collect();
    tx.commit()?;
    Ok(Rows {
        layers,
        images,
        parents,
        tags,
        repo_digests,
        containers,
        linked,
        remotes,
        dangling_image_layers,
    })
}

fn hash_file(p: &Path) -> std::io::Result<Digest> {
    let mut f = File::open(p)?;
    let mut h = Hasher::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(h.finish());
        }
        h.update(&buf[..n]);
    }
}

fn list(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut out: Vec<(String, PathBuf)> = fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .flatten()
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
        .collect();
    out.sort();
    Ok(out)
}

fn hex_name(name: &str) -> Option<Digest> {
    if name.len() != 64 || !name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    Digest::from_str(&format!("sha256:{name}")).ok()
}

fn pid_alive(pid: i64) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    pid > 0 && (unsafe { libc::kill(pid as libc::pid_t, 0) } == 0 || last_errno() == libc::EPERM)
}

fn last_errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn lock_is_free(lock: &Path) -> bool {
    let Ok(f) = OpenOptions::new().write(true).open(lock) else {
        return false;
    };
    f.try_lock().is_ok()
}

/// Whether a process holds the lock of the file `lock` (which exists).
fn lock_is_held(lock: &Path) -> bool {
    lock.exists() && !lock_is_free(lock)
}

/// Mount points at or under `dir` in this process's mount namespace.
fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    let Ok(info) = fs::read("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for line in info.split(|b| *b == b'\n') {
        let Some(mp) = line.split(|b| *b == b' ').nth(4) else {
            continue;
        };
        let mut raw = Vec::with_capacity(mp.len());
        let mut i = 0;
        while i < mp.len() {
            if mp[i] == b'\\' && i + 3 < mp.len() + 1 && mp.len() - i > 3 {
                let o = &mp[i + 1..i + 4];
                if o.iter().all(|c| (b'0'..=b'7').contains(c)) {
                    raw.push((o[0] - b'0') * 64 + (o[1] - b'0') * 8 + (o[2] - b'0'));
                    i += 4;
                    continue;
                }
            }
            raw.push(mp[i]);
            i += 1;
        }
        let p = PathBuf::from(std::ffi::OsStr::from_bytes(&raw));
        if p.starts_with(dir) && p != dir {
            out.push(p);
        }
    }
    out
}

fn check_locked(store: &Store, deep: Option<DeepCheck<'_>>) -> Result<Report> {
    let root = &store.root;
    let rows = read_rows(&store.db.conn)?;
    let mut out = Report {
        images: rows.images.len(),
        layers: rows.layers.len(),
        containers: rows.containers.len(),
        ..Report::default()
    };
    let mut problems = Vec::new();
    let mut push = |kind, subject: String, detail: String, fix| {
        problems.push(Problem {
            kind,
            subject,
            detail,
            fix,
        })
    };

    // Names of each image, for the lines that say which images a problem breaks.
    let mut names: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (name, id) in &rows.tags {
        names.entry(id.as_str()).or_default().push(name.as_str());
    }
    let image_label = |id: &str| match names.get(id) {
        Some(n) => format!("{id} ({})", n.join(", ")),
        None => id.to_string(),
    };
    // Who references each layer and blob.
    let mut layer_users: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (id, layers) in &rows.images {
        for d in layers {
            layer_users.entry(d.as_str()).or_default().push(id.as_str());
        }
    }
    let mut blob_users: BTreeMap<String, String> = BTreeMap::new();
    for id in rows.images.keys() {
        blob_users.insert(
            id.clone(),
            format!("the config of image {}", image_label(id)),
        );
    }
    for l in rows.layers.values() {
        if let Some(b) = &l.blob {
            blob_users.insert(b.digest.to_string(), format!("layer {}", l.diff_id));
        }
    }
    // Images broken by what is found, with the reason.
    let mut broken: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let breaks_layer = |broken: &mut BTreeMap<String, BTreeSet<String>>, d: &str, why: &str| {
        for id in layer_users.get(d).into_iter().flatten() {
            broken
                .entry(id.to_string())
                .or_default()
                .insert(format!("layer {d} {why}"));
        }
    };

    // Blobs.
    let blobs_dir = root.join("blobs/sha256");
    let mut blobs_present = HashSet::new();
    for (name, path) in list(&blobs_dir)? {
        out.blobs += 1;
        let Some(d) = hex_name(&name) else {
            push(
                ProblemKind::Unreferenced,
                format!("file {}", path.display()),
                "is not named by a sha256 digest".into(),
                Some(if path.is_dir() {
                    Fix::RemoveTree(path)
                } else {
                    Fix::RemoveFile(path)
                }),
            );
            continue;
        };
        let key = d.to_string();
        let user = blob_users.get(&key);
        match hash_file(&path) {
            Ok(got) if got == d => {
                blobs_present.insert(key.clone());
                if user.is_none() {
                    push(
                        ProblemKind::Unreferenced,
                        format!("blob {key}"),
                        "nothing references it".into(),
                        Some(Fix::RemoveFile(path)),
                    );
                }
            }
            Ok(got) => match user {
                None => push(
                    ProblemKind::Unreferenced,
                    format!("blob {key}"),
                    format!("nothing references it, and its content hashes to {got}"),
                    Some(Fix::RemoveFile(path)),
                ),
                Some(u) => {
                    blobs_present.insert(key.clone());
                    push(
                        ProblemKind::Damaged,
                        format!("blob {key}"),
                        format!("its content hashes to {got}; it is {u}"),
                        None,
                    );
                    if rows.images.contains_key(&key) {
                        broken
                            .entry(key.clone())
                            .or_default()
                            .insert(format!("its config blob {key} is damaged"));
                    }
                    for l in rows.layers.values() {
                        if l.blob.as_ref().is_some_and(|b| b.digest == d) {
                            breaks_layer(
                                &mut broken,
                                &l.diff_id.to_string(),
                                &format!("(its blob {key} is damaged)"),
                            );
                        }
                    }
                }
            },
            Err(e) => push(
                ProblemKind::Damaged,
                format!("blob {key}"),
                format!("cannot be read: {e}"),
                None,
            ),
        }
    }
    for (key, user) in &blob_users {
        let present = blobs_dir.join(key.trim_start_matches("sha256:")).is_file();
        if !present {
            push(
                ProblemKind::Missing,
                format!("blob {key}"),
                format!("is not in {}; it is {user}", blobs_dir.display()),
                None,
            );
            if rows.images.contains_key(key) {
                broken
                    .entry(key.clone())
                    .or_default()
                    .insert(format!("its config blob {key} is missing"));
            }
        }
    }

    // Layers.
    let referenced: HashSet<&str> = rows.images.values().flatten().map(|s| s.as_str()).collect();
    for (d, l) in &rows.layers {
        let key = d.to_string();
        let dir = store.layer_dir(d);
        if !referenced.contains(key.as_str()) {
            push(
                ProblemKind::Unreferenced,
                format!("layer {key}"),
                "no image uses it".into(),
                Some(Fix::DropLayer(*d)),
            );
            continue;
        }
        if !dir.is_dir() {
            push(
                ProblemKind::Missing,
                format!("layer {key}"),
                format!("its directory {} is gone", dir.display()),
                None,
            );
            breaks_layer(&mut broken, &key, "is missing");
            continue;
        }
        let split = store.tar_split_path(d);
        if l.tar_split && !split.is_file() {
            push(
                ProblemKind::Missing,
                format!("layer {key}"),
                format!("its tar-split file {} is gone", split.display()),
                None,
            );
            breaks_layer(&mut broken, &key, "has lost its tar-split file");
            continue;
        }
        if let Some(b) = &l.blob {
            if !blobs_present.contains(&b.digest.to_string()) {
                continue; // reported with the blob
            }
        }
        if let Some(deep) = deep {
            if let Err(e) = deep(l) {
                push(
                    ProblemKind::Damaged,
                    format!("layer {key}"),
                    format!("its files no longer make its tar: {e}"),
                    None,
                );
                breaks_layer(&mut broken, &key, "is damaged");
            }
        }
    }
    for (name, path) in list(&root.join("layers"))? {
        let known = hex_name(&name).is_some_and(|d| rows.layers.contains_key(&d));
        if !known {
            push(
                ProblemKind::Unreferenced,
                format!("layer directory {}", path.display()),
                "no layer row names it".into(),
                Some(Fix::RemoveTree(path)),
            );
        }
    }
    for (name, path) in list(&root.join("tarsplit"))? {
        let known = hex_name(&name).is_some_and(|d| rows.layers.contains_key(&d));
        if !known {
            push(
                ProblemKind::Unreferenced,
                format!("tar-split file {}", path.display()),
                "no layer row names it".into(),
                Some(Fix::RemoveFile(path)),
            );
        }
    }

    // Images.
    let layer_keys: HashSet<String> = rows.layers.keys().map(|d| d.to_string()).collect();
    for (id, layers) in &rows.images {
        for d in layers {
            if !layer_keys.contains(d) {
                push(
                    ProblemKind::Dangling,
                    format!("layer {d}"),
                    format!(
                        "image {} uses it but the store has no row for it",
                        image_label(id)
                    ),
                    None,
                );
                broken
                    .entry(id.clone())
                    .or_default()
                    .insert(format!("layer {d} is not recorded"));
            }
        }
        let Ok(digest) = Digest::from_str(id) else {
            continue;
        };
        if blobs_present.contains(id) {
            if let Ok(bytes) = fs::read(store.blob_path(&digest)) {
                let diff_ids = serde_json::from_slice::<serde_json::Value>(&bytes)
                    .ok()
                    .and_then(|v| {
                        v.pointer("/rootfs/diff_ids")?
                            .as_array()?
                            .iter()
                            .map(|d| d.as_str().map(str::to_string))
                            .collect::<Option<Vec<String>>>()
                    });
                if diff_ids.as_ref() != Some(layers) {
                    broken.entry(id.clone()).or_default().insert(
                        "its config's rootfs.diff_ids differ from its recorded layers".into(),
                    );
                }
            }
        }
    }
    for (id, parent) in &rows.parents {
        if !rows.images.contains_key(parent) {
            push(
                ProblemKind::Dangling,
                format!("image {}", image_label(id)),
                format!("its parent {parent} is not in the store"),
                Some(Fix::Sql(
                    "UPDATE images SET parent = NULL WHERE id = ?1",
                    id.clone(),
                )),
            );
        }
    }
    for (name, id) in &rows.tags {
        if !rows.images.contains_key(id) {
            push(
                ProblemKind::Dangling,
                format!("tag {name}"),
                format!("names image {id}, which is not in the store"),
                Some(Fix::Sql("DELETE FROM tags WHERE name = ?1", name.clone())),
            );
        }
    }
    for (name, id) in &rows.repo_digests {
        if !rows.images.contains_key(id) {
            push(
                ProblemKind::Dangling,
                format!("repo digest {name}"),
                format!("names image {id}, which is not in the store"),
                Some(Fix::Sql(
                    "DELETE FROM repo_digests WHERE name = ?1 AND image_id NOT IN (SELECT id FROM images)",
                    name.clone(),
                )),
            );
        }
    }
    for id in &rows.dangling_image_layers {
        push(
            ProblemKind::Dangling,
            format!("layer list of image {id}"),
            "the image is not in the store".into(),
            Some(Fix::Sql(
                "DELETE FROM image_layers WHERE image_id = ?1",
                id.clone(),
            )),
        );
    }
    for (key, d) in &rows.linked {
        if !layer_keys.contains(d) {
            push(
                ProblemKind::Unreferenced,
                format!("build cache record {key}"),
                format!("names layer {d}, which is not in the store"),
                Some(Fix::Sql(
                    "DELETE FROM linked_layers WHERE key = ?1",
                    key.clone(),
                )),
            );
        }
    }
    for d in &rows.remotes {
        if !layer_keys.contains(d) {
            push(
                ProblemKind::Unreferenced,
                format!("registry blob record of layer {d}"),
                "the layer is not in the store".into(),
                Some(Fix::Sql(
                    "DELETE FROM layer_remotes WHERE diff_id = ?1",
                    d.clone(),
                )),
            );
        }
    }

    // Containers.
    let snapshots = Layout::new(root).snapshots().join("snapshots");
    let mut running = HashSet::new();
    for (id, name, image, snapshot, status, pid) in &rows.containers {
        // A container's monitor holds `containers/ID/monitor.lock` from before it mounts the
        // root filesystem until after it unmounts it.
        let monitor = Layout::new(root).containers().join(id).join("monitor.lock");
        if (status == "running" && pid_alive(*pid)) || lock_is_held(&monitor) {
            running.insert(id.clone());
        }
        let subject = format!("container {id} ({name})");
        if !rows.images.contains_key(image) {
            push(
                ProblemKind::Dangling,
                subject.clone(),
                format!("its image {image} is not in the store"),
                None,
            );
        } else if let Some(why) = broken.get(image) {
            push(
                ProblemKind::Damaged,
                subject.clone(),
                format!(
                    "its image {image} is damaged ({})",
                    why.iter().cloned().collect::<Vec<_>>().join("; ")
                ),
                None,
            );
        }
        let snap = snapshots.join(snapshot);
        if !snap.is_dir() && status == "removing" {
            // `rm` marks a container dead before it removes the snapshot: one killed
            // mid-way leaves it dead, as Docker does, and `rm` finishes the removal.
            push(
                ProblemKind::Leftover,
                subject,
                format!(
                    "its removal was interrupted (its snapshot {} is gone); rm removes it",
                    snap.display()
                ),
                None,
            );
        } else if !snap.is_dir() {
            let why = format!("its snapshot {} is gone", snap.display());
            let fix = (status != "dead" && status != "removing" && !running.contains(id))
                .then(|| Fix::MarkDead(id.clone(), why.clone()));
            push(
                ProblemKind::Missing,
                subject,
                format!("{why}; remove it (rm)"),
                fix,
            );
        }
    }
    for (id, why) in &broken {
        push(
            ProblemKind::Damaged,
            format!("image {}", image_label(id)),
            format!(
                "{}: pull it again or remove it (rmi)",
                why.iter().cloned().collect::<Vec<_>>().join("; ")
            ),
            None,
        );
    }

    // Staging areas and temporary files.
    let tmp = root.join("tmp");
    let entries = list(&tmp)?;
    let names: HashSet<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
    for (name, path) in &entries {
        if let Some(stage) = name.strip_suffix(".lock") {
            if lock_is_free(path) {
                push(
                    ProblemKind::Leftover,
                    format!("staging area {}", tmp.join(stage).display()),
                    "the process that made it is gone".into(),
                    Some(Fix::RemoveStaging(path.clone())),
                );
            }
        } else if name.starts_with("stage-") {
            if !names.contains(format!("{name}.lock").as_str()) {
                push(
                    ProblemKind::Leftover,
                    format!("staging area {}", path.display()),
                    "it has no lock file: the process that made it is gone".into(),
                    Some(Fix::RemoveTree(path.clone())),
                );
            }
        } else if name.starts_with("trash-") || name.starts_with("blob-") {
            push(
                ProblemKind::Leftover,
                format!("temporary {}", path.display()),
                "left by an interrupted write or removal".into(),
                Some(if path.is_dir() {
                    Fix::RemoveTree(path.clone())
                } else {
                    Fix::RemoveFile(path.clone())
                }),
            );
        }
    }

    // Mounts nothing running owns: a container's that is not running, a build step's whose
    // process is gone, any in a dead staging area.
    let containers_dir = Layout::new(root).containers();
    let mut mounts = mounts_under(root);
    mounts.sort();
    mounts.dedup();
    // Deepest first, so a repair unmounts nested mounts before their parents.
    mounts.reverse();
    for m in mounts {
        let rel = m.strip_prefix(root).unwrap_or(&m);
        let parts: Vec<String> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        let owner_gone = if let Ok(rest) = m.strip_prefix(&containers_dir) {
            let id = rest
                .components()
                .next()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .unwrap_or_default();
            let monitor = containers_dir.join(&id).join("monitor.lock");
            (!running.contains(&id) && !lock_is_held(&monitor))
                .then(|| format!("no monitor of container {id} holds it"))
        } else if let Some(p) = parts.iter().find_map(|p| {
            p.strip_prefix("build-")
                .and_then(|r| r.split('-').next())
                .and_then(|pid| pid.parse::<i64>().ok())
        }) {
            (!pid_alive(p)).then(|| format!("the build (process {p}) that made it is gone"))
        } else if parts.first().map(String::as_str) == Some("tmp") && parts.len() > 1 {
            let lock = tmp.join(format!("{}.lock", parts[1]));
            (!lock.exists() || lock_is_free(&lock))
                .then(|| "its staging area's process is gone".to_string())
        } else {
            None
        };
        if let Some(why) = owner_gone {
            push(
                ProblemKind::Leftover,
                format!("mount {}", m.display()),
                why,
                Some(Fix::Unmount(m)),
            );
        }
    }

    // Snapshots and mount points of builds whose process is gone (a build killed mid-step),
    // and container snapshots no container has.
    let build_pid = |name: &str| {
        name.strip_prefix("build-")
            .and_then(|r| r.split('-').next())
            .and_then(|pid| pid.parse::<i64>().ok())
    };
    let known: HashSet<&str> = rows.containers.iter().map(|c| c.3.as_str()).collect();
    if snapshots.is_dir() {
        for (name, path) in list(&snapshots)? {
            let why = if let Some(pid) = build_pid(&name) {
                (!pid_alive(pid)).then(|| format!("the build (process {pid}) that made it is gone"))
            } else if hex_name(&name).is_some() && !known.contains(name.as_str()) {
                Some("no container has it".to_string())
            } else {
                None
            };
            if let Some(why) = why {
                push(
                    ProblemKind::Leftover,
                    format!("snapshot {}", path.display()),
                    why,
                    Some(Fix::RemoveTree(path)),
                );
            }
        }
    }
    let build_mounts = Layout::new(root).build().join("mounts");
    if build_mounts.is_dir() {
        for (name, path) in list(&build_mounts)? {
            if let Some(pid) = build_pid(&name).filter(|p| !pid_alive(*p)) {
                push(
                    ProblemKind::Leftover,
                    format!("build mount point {}", path.display()),
                    format!("the build (process {pid}) that made it is gone"),
                    Some(Fix::RemoveTree(path)),
                );
            }
        }
    }

    // `rm` removes a container's snapshot and state directory before its row, outside the
    // store lock: a container found without its snapshot is looked for again for a second,
    // and forgotten if its row goes meanwhile.
    let vanishing: Vec<String> = problems
        .iter()
        .filter(|p| p.kind == ProblemKind::Missing && p.subject.starts_with("container "))
        .filter_map(|p| p.subject.split(' ').nth(1).map(str::to_string))
        .collect();
    if !vanishing.is_empty() {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
        let mut gone: HashSet<String> = HashSet::new();
        loop {
            for id in &vanishing {
                let n: i64 = store.db.conn.query_row(
                    "SELECT COUNT(*) FROM containers WHERE id = ?1",
                    [id],
                    |r| r.get(0),
                )?;
                if n == 0 {
                    gone.insert(id.clone());
                }
            }
            if gone.len() == vanishing.len() || std::time::Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        problems.retain(|p| {
            !p.subject.starts_with("container ")
                || p.subject
                    .split(' ')
                    .nth(1)
                    .is_none_or(|id| !gone.contains(id))
        });
        out.containers -= gone.len();
    }
    out.problems = problems;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NewImage;

    fn config(diff_ids: &[Digest]) -> Vec<u8> {
        let ids: Vec<String> = diff_ids.iter().map(|d| d.to_string()).collect();
        serde_json::to_vec(&serde_json::json!({
            "architecture": "amd64", "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": ids}
        }))
        .unwrap()
    }

    /// A store with one image of one layer (a directory with one file and a tar-split file
    /// whose content is arbitrary: the deep check is the caller's).
    fn store_with_image() -> (tempfile::TempDir, Store, Digest, Digest) {
        let t = tempfile::tempdir().unwrap();
        let mut s = Store::open(t.path()).unwrap();
        let diff_id = Digest::of(b"layer tar");
        let stage = s.stage().unwrap();
        let dir = stage.new_dir("l").unwrap();
        fs::write(dir.join("file"), b"hello").unwrap();
        let split = stage.path().join("split");
        fs::write(&split, b"split").unwrap();
        let cfg = config(&[diff_id]);
        let mut p = s.publish().unwrap();
        p.put_layer(
            &dir,
            Some(&split),
            &LayerRecord {
                diff_id,
                size: 5,
                tar_size: 9,
                blob: None,
                tar_split: true,
            },
        )
        .unwrap();
        let id = p
            .add_image(&NewImage {
                config: &cfg,
                layers: &[diff_id],
                parent: None,
                created: "2024-01-01T00:00:00Z",
            })
            .unwrap();
        p.tag("docker.io/library/t:latest", &id).unwrap();
        p.commit().unwrap();
        drop(stage);
        (t, s, id, diff_id)
    }

    fn lines(r: &Report) -> String {
        r.problems
            .iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn a_fresh_store_is_clean() {
        let (_t, s, _, _) = store_with_image();
        let r = check(&s, None).unwrap();
        assert!(r.is_clean(), "{}", lines(&r));
        assert_eq!((r.images, r.layers, r.blobs), (1, 1, 1));
        assert!(r.summary().starts_with("store is consistent"));
    }

    #[test]
    fn a_damaged_config_blob_is_reported_and_kept() {
        let (_t, s, id, _) = store_with_image();
        let p = s.blob_path(&id);
        let mut b = fs::read(&p).unwrap();
        b[0] ^= 1;
        fs::write(&p, &b).unwrap();
        let r = repair(&s, None).unwrap();
        let text = lines(&r);
        assert!(
            text.contains(&format!("damaged: blob {id}: its content hashes to")),
            "{text}"
        );
        assert!(
            text.contains(&format!("damaged: image {id} (docker.io/library/t:latest)")),
            "{text}"
        );
        assert!(p.is_file());
        assert_eq!(s.images().unwrap().len(), 1);
    }

    #[test]
    fn orphans_and_dead_staging_are_removed_by_repair() {
        let (t, s, _, _) = store_with_image();
        let orphan = Digest::of(b"orphan");
        fs::write(s.blob_path(&orphan), b"orphan").unwrap();
        let stray = t.path().join("layers").join(Digest::of(b"x").hex());
        fs::create_dir(&stray).unwrap();
        let live = s.stage().unwrap();
        fs::write(t.path().join("tmp/stage-00000000deadbeef.lock"), b"").unwrap();
        fs::create_dir(t.path().join("tmp/stage-00000000deadbeef")).unwrap();
        let r = check(&s, None).unwrap();
        let text = lines(&r);
        assert!(
            text.contains(&format!("unreferenced: blob {orphan}")),
            "{text}"
        );
        assert!(
            text.contains(&format!("layer directory {}", stray.display())),
            "{text}"
        );
        assert!(
            text.contains("stage-00000000deadbeef: the process"),
            "{text}"
        );
        assert_eq!(r.problems.len(), 3, "{text}");
        let r = repair(&s, None).unwrap();
        assert!(r.is_clean(), "{}", lines(&r));
        assert_eq!(r.repaired.len(), 3);
        assert!(!s.has_blob(&orphan) && !stray.exists());
        assert!(!t.path().join("tmp/stage-00000000deadbeef").exists());
        assert!(live.path().is_dir(), "a live staging area is kept");
    }

    #[test]
    fn a_missing_layer_breaks_its_image_which_stays() {
        let (_t, s, id, diff_id) = store_with_image();
        remove_tree(&s.layer_dir(&diff_id)).unwrap();
        let r = repair(&s, None).unwrap();
        let text = lines(&r);
        assert!(
            text.contains(&format!("missing: layer {diff_id}: its directory")),
            "{text}"
        );
        assert!(text.contains(&format!("damaged: image {id}")), "{text}");
        assert!(s.image(&id).unwrap().is_some());
    }

    #[test]
    fn deep_reports_what_the_caller_finds() {
        let (_t, s, _, diff_id) = store_with_image();
        let deep = |l: &LayerRecord| -> std::result::Result<(), String> {
            Err(format!("{} does not hash", l.diff_id))
        };
        let r = check(&s, Some(&deep)).unwrap();
        assert!(lines(&r).contains(&format!(
            "damaged: layer {diff_id}: its files no longer make its tar"
        )));
        assert!(check(&s, None).unwrap().is_clean());
    }

    #[test]
    fn dangling_rows_are_reported_and_unreferenced_ones_removed() {
        let (_t, s, id, _) = store_with_image();
        s.db.conn
            .pragma_update(None, "foreign_keys", "OFF")
            .unwrap();
        s.db.conn
            .execute(
                "INSERT INTO tags (name, image_id) VALUES ('docker.io/library/gone:1', ?1)",
                [Digest::of(b"gone").to_string()],
            )
            .unwrap();
        s.db.conn
            .execute(
                "INSERT INTO linked_layers (key, diff_id) VALUES ('k', ?1)",
                [Digest::of(b"nolayer").to_string()],
            )
            .unwrap();
        let text = lines(&check(&s, None).unwrap());
        assert!(
            text.contains("dangling: tag docker.io/library/gone:1"),
            "{text}"
        );
        assert!(text.contains("build cache record k"), "{text}");
        let r = repair(&s, None).unwrap();
        assert!(r.is_clean(), "{}", lines(&r));
        assert!(s.image(&id).unwrap().is_some());
    }
}
