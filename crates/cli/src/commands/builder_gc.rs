//! The build cache and its garbage collection: `strata builder prune [-a] [-f]
//! [--filter until=DURATION] [--keep-storage SIZE]` and the automatic policy run after each
//! build (`builder.gc` in the configuration file, on by default: keep 10% of the store's
//! filesystem, at most 20 GB, as BuildKit's default).
//!
//! The cache's records are what only a later build can use:
//! - intermediate images of the classic builder that no tagged (or pulled, or a container's)
//!   image stands on: the step results of builds whose image was untagged or re-tagged since,
//!   and of untagged builds. Their size is that of the layers they added that no kept image
//!   holds; an image's layers still referenced are never counted nor removed.
//!   Last used: when the step made them (a chain a tagged image stands on is not cache).
//! - the directories of `RUN --mount=type=cache`; last used: their time, which each build that
//!   mounts one sets.
//!
//! Records are removed oldest-used first, an image only after the images made on it (a
//! parent counts as used when its latest descendant was).
//!
//! After a build, nothing is read when no layer was published or removed and no cache
//! directory used since the last check under the same policy (`ROOT/builder-gc`): an
//! unchanged rebuild costs a few `stat`s. Else the sizes of every layer (one query) and cache
//! directory bound the cache's; only over the policy are the records listed. (A tag moved to
//! an image with no layer of its own is seen at the next build that adds one.)

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Result;
use oci::Digest;
use store::Store;

use crate::cli::BuilderPruneArgs;
use crate::Failure;

/// 20 GB: the most the default policy keeps.
const DEFAULT_MAX: u64 = 20 << 30;

/// `--keep-storage` and `defaultKeepStorage` sizes: `512`, `64k`, `6mb`, `20GB` (binary
/// units, as Docker's `RAMInBytes`).
pub fn parse_keep_storage(s: &str) -> Option<u64> {
    super::run::parse_size("--keep-storage", s).ok()
}

/// What one record is.
#[derive(Debug, Clone)]
enum Kind {
    Image(Digest),
    Mount(PathBuf),
}

/// One record of the build cache.
#[derive(Debug, Clone)]
struct Record {
    kind: Kind,
    /// Bytes removing it frees.
    size: u64,
    /// Milliseconds since the epoch it was last used (for an image: the latest of its descendants).
    last_used: i64,
    /// Images below it in the cache (removed first).
    depth: usize,
}

impl Record {
    fn id(&self) -> String {
        match &self.kind {
            Kind::Image(d) => d.hex().to_string(),
            Kind::Mount(p) => p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        }
    }
}

fn millis(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The `RUN --mount=type=cache` directories: (path, time).
fn mount_dirs(root: &Path) -> Vec<(PathBuf, i64)> {
    let dir = store::Layout::new(root).build_cache();
    let Ok(rd) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| {
            let md = e.metadata().ok()?;
            md.is_dir()
                .then(|| (e.path(), md.modified().map(millis).unwrap_or(0)))
        })
        .collect()
}

/// Every record of the build cache, oldest used first, an image after those made on it.
fn records(root: &Path, store: &Store) -> Result<Vec<Record>> {
    let images = store.images()?;
    let by_id: HashMap<&Digest, &store::ImageRecord> = images.iter().map(|i| (&i.id, i)).collect();
    let mut children: HashMap<&Digest, Vec<&Digest>> = HashMap::new();
    for i in &images {
        if let Some(p) = i.parent.as_ref().filter(|p| by_id.contains_key(p)) {
            children.entry(p).or_default().push(&i.id);
        }
    }
    // Kept: named images, images of containers, and everything they stand on.
    let mut kept: HashSet<&Digest> = HashSet::new();
    for i in &images {
        let named = !i.tags.is_empty() || !i.repo_digests.is_empty();
        if !named && store.containers_using(&i.id)?.is_empty() {
            continue;
        }
        let mut cur = Some(i);
        while let Some(c) = cur {
            if !kept.insert(&c.id) {
                break;
            }
            cur = c.parent.as_ref().and_then(|p| by_id.get(p).copied());
        }
    }
    let kept_layers: HashSet<&Digest> = images
        .iter()
        .filter(|i| kept.contains(&i.id))
        .flat_map(|i| i.layers.iter())
        .collect();
    let sizes: HashMap<Digest, u64> = store
        .layers()?
        .into_iter()
        .map(|l| (l.diff_id, l.size))
        .collect();
    // Cache images: not kept, and made by a build (a parent) or the base of such images.
    let cache: Vec<&store::ImageRecord> = images
        .iter()
        .filter(|i| !kept.contains(&i.id) && (i.parent.is_some() || children.contains_key(&i.id)))
        .collect();
    let added = |i: &store::ImageRecord| {
        chrono::DateTime::parse_from_rfc3339(&i.added)
            .map(|t| t.timestamp_millis())
            .unwrap_or(0)
    };
    // Latest use and depth of each cache image's subtree.
    fn subtree(
        id: &Digest,
        by_id: &HashMap<&Digest, &store::ImageRecord>,
        children: &HashMap<&Digest, Vec<&Digest>>,
        added: &dyn Fn(&store::ImageRecord) -> i64,
        memo: &mut HashMap<Digest, (i64, usize)>,
    ) -> (i64, usize) {
        if let Some(v) = memo.get(id) {
            return *v;
        }
        let mut v = (by_id.get(id).map(|i| added(i)).unwrap_or(0), 0);
        for c in children.get(id).into_iter().flatten() {
            let (t, d) = subtree(c, by_id, children, added, memo);
            v = (v.0.max(t), v.1.max(d + 1));
        }
        memo.insert(*id, v);
        v
    }
    let mut memo = HashMap::new();
    let mut out = Vec::new();
    for i in cache {
        let (last_used, depth) = subtree(&i.id, &by_id, &children, &added, &mut memo);
        let from = i
            .parent
            .as_ref()
            .and_then(|p| by_id.get(p))
            .map(|p| p.layers.len())
            .unwrap_or(0);
        let size = i
            .layers
            .iter()
            .skip(from)
            .filter(|l| !kept_layers.contains(l))
            .map(|l| sizes.get(l).copied().unwrap_or(0))
            .sum();
        out.push(Record {
            kind: Kind::Image(i.id),
            size,
            last_used,
            depth,
        });
    }
    for (path, t) in mount_dirs(root) {
        out.push(Record {
            size: layer::diff_size(&path).unwrap_or(0),
            kind: Kind::Mount(path),
            last_used: t,
            depth: 0,
        });
    }
    out.sort_by(|a, b| {
        a.last_used
            .cmp(&b.last_used)
            .then(a.depth.cmp(&b.depth))
            .then_with(|| a.id().cmp(&b.id()))
    });
    Ok(out)
}

/// Removes records, oldest used first, while the cache holds more than `keep` bytes (all of
/// them without `keep`), only those last used before `until` when given. Returns the IDs
/// removed and the bytes freed.
fn collect(
    root: &Path,
    store: &mut Store,
    keep: Option<u64>,
    until: Option<i64>,
) -> Result<(Vec<String>, u64)> {
    let records = records(root, store)?;
    let mut total: u64 = records.iter().map(|r| r.size).sum();
    let layers_before: u64 = store.layers()?.iter().map(|l| l.size).sum();
    let mut removed = Vec::new();
    let mut mounts_freed = 0;
    for r in records {
        if keep.is_some_and(|k| total <= k) {
            break;
        }
        if until.is_some_and(|u| r.last_used >= u) {
            continue;
        }
        match &r.kind {
            Kind::Image(id) => {
                // Decided under the store lock: built on, used, held by a running build or
                // removed since the listing (concurrent processes): kept or skipped.
                let mut p = store.publish()?;
                if p.image(id)?.is_none()
                    || !p.children(id)?.is_empty()
                    || !p.containers_using(id)?.is_empty()
                    || p.held_elsewhere()?.contains(id)
                {
                    continue;
                }
                p.delete_image(id)?;
                p.commit()?;
                store::events::record(
                    store,
                    store::events::Event::image("delete", &id.to_string()),
                );
            }
            Kind::Mount(path) => {
                std::fs::remove_dir_all(path)
                    .map_err(|e| anyhow::anyhow!("remove {}: {e}", path.display()))?;
                mounts_freed += r.size;
            }
        }
        total = total.saturating_sub(r.size);
        removed.push(r.id());
    }
    store.collect_garbage()?;
    let layers_after: u64 = store.layers()?.iter().map(|l| l.size).sum();
    Ok((
        removed,
        layers_before.saturating_sub(layers_after) + mounts_freed,
    ))
}

/// What `builder prune` and the Engine API's `POST /build/prune` remove: cache records
/// (oldest used first) while the cache holds more than `keep` bytes, only those last used
/// before `until` (Unix milliseconds) when given; without either, the context hash cache and
/// the build records too. Returns the IDs removed and the bytes freed.
pub fn prune_cache(
    root: &Path,
    keep: Option<u64>,
    until: Option<i64>,
) -> Result<(Vec<String>, u64)> {
    let mut store = super::open_store(root)?;
    let (removed, freed) = collect(root, &mut store, keep, until)?;
    drop(store);
    if keep.is_none() && until.is_none() {
        // Everything: the context hash cache and the build records go too.
        super::df::clear_build_cache(root)?;
    }
    // The next build checks the policy again.
    let _ = std::fs::remove_file(state_file(root));
    Ok((removed, freed))
}

/// `strata builder prune`.
pub fn prune(root: &Path, a: BuilderPruneArgs) -> Result<()> {
    let _ = (a.all, a.force); // strata never prompts; -a: every record is unused already.
    let keep = a
        .keep_storage
        .as_deref()
        .map(|s| super::run::parse_size("--keep-storage", s))
        .transpose()?;
    let mut until = None;
    for f in &a.filters {
        let (k, v) = f.split_once('=').unwrap_or((f, ""));
        match k {
            "until" => {
                let t = super::parse_time(v).ok_or_else(|| {
                    Failure::new(
                        1,
                        format!("invalid filter 'until={v}': not a duration or time"),
                    )
                })?;
                until = Some(t.timestamp_millis());
            }
            _ => return Err(Failure::new(1, format!("invalid filter '{k}'")).into()),
        }
    }
    let (removed, freed) = prune_cache(root, keep, until)?;
    if !removed.is_empty() {
        println!("Deleted build cache objects:");
        for id in &removed {
            println!("{id}");
        }
        println!();
    }
    println!("Total reclaimed space: {}", format::human_size_4(freed));
    Ok(())
}

/// The default policy's size: 10% of the filesystem holding the store, at most 20 GB.
fn default_keep(root: &Path) -> u64 {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(root.as_os_str().as_bytes()) else {
        return DEFAULT_MAX;
    };
    // SAFETY: a zeroed statvfs is a valid out-parameter; `c` is NUL-terminated.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return DEFAULT_MAX;
    }
    let disk = st.f_blocks as u64 * st.f_frsize as u64;
    (disk / 10).min(DEFAULT_MAX)
}

fn state_file(root: &Path) -> PathBuf {
    root.join("builder-gc")
}

/// What the last check after a build found, in `ROOT/builder-gc`: the time of the store's
/// `layers` directory then (any layer published or removed since changes it), the policy, and
/// the cache directories' total size. The file's own time says when they were walked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Checked {
    layers_time: u128,
    keep: u64,
    mounts: u64,
}

fn layers_time(root: &Path) -> u128 {
    std::fs::metadata(root.join("layers"))
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// The last check, and whether no cache directory was used since.
fn last_check(root: &Path) -> Option<(Checked, bool)> {
    let f = state_file(root);
    let walked = std::fs::metadata(&f).ok()?.modified().ok().map(millis)?;
    let text = std::fs::read_to_string(&f).ok()?;
    let mut w = text.split_whitespace().map(|v| v.parse::<u128>().ok());
    let c = Checked {
        layers_time: w.next()??,
        keep: u64::try_from(w.next()??).ok()?,
        mounts: u64::try_from(w.next()??).ok()?,
    };
    let fresh = mount_dirs(root).iter().all(|(_, t)| *t < walked);
    Some((c, fresh))
}

fn mounts_size(root: &Path) -> u64 {
    mount_dirs(root)
        .iter()
        .map(|(p, _)| layer::diff_size(p).unwrap_or(0))
        .sum()
}

fn remember(root: &Path, c: Checked) {
    let f = state_file(root);
    let tmp = f.with_extension(format!("{}", std::process::id()));
    let text = format!("{} {} {}\n", c.layers_time, c.keep, c.mounts);
    if std::fs::write(&tmp, text).is_ok() {
        let _ = std::fs::rename(&tmp, &f);
    }
}

/// The automatic policy, after a build: when the cache may hold more than the policy keeps,
/// the oldest records go until it does not. Never fails the build (a problem is a warning).
pub fn after_build(root: &Path, store: Option<&mut Store>) {
    let Some(policy) = crate::settings::get().builder_gc else {
        return;
    };
    if let Err(e) = enforce(
        root,
        policy.keep_storage.unwrap_or_else(|| default_keep(root)),
        store,
    ) {
        eprintln!("WARNING: build cache garbage collection: {e:#}");
    }
}

/// Nothing is read when neither a layer nor a cache directory changed since a check under the
/// same policy (an unchanged rebuild: a few `stat`s). Else the sizes of every layer and cache
/// directory bound the cache's; only over the policy are the records listed.
fn enforce(root: &Path, keep: u64, store: Option<&mut Store>) -> Result<()> {
    let lt = layers_time(root);
    let last = last_check(root);
    if let Some((c, true)) = last {
        if c.layers_time == lt && c.keep == keep {
            return Ok(());
        }
    }
    let mounts = match last {
        Some((c, true)) => c.mounts,
        _ => mounts_size(root),
    };
    let mut opened = None;
    let store = match store {
        Some(s) => s,
        None => opened.insert(super::open_store(root)?),
    };
    let layers = store.layers_size()?;
    let mut checked = Checked {
        layers_time: lt,
        keep,
        mounts,
    };
    if layers + mounts > keep {
        let total: u64 = records(root, store)?.iter().map(|r| r.size).sum();
        if total > keep {
            let (removed, freed) = collect(root, store, Some(keep), None)?;
            if !removed.is_empty() {
                eprintln!(
                    "strata: build cache over {}: removed {} unused records ({})",
                    format::human_size_4(keep),
                    removed.len(),
                    format::human_size_4(freed)
                );
            }
            checked = Checked {
                layers_time: layers_time(root),
                keep,
                mounts: mounts_size(root),
            };
        }
    }
    remember(root, checked);
    Ok(())
}
