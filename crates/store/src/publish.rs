//! Publishing staged work into the store, and collecting what nothing references.
//!
//! Both run under the store lock (`ROOT/lock`), which is held only for renames and one
//! database transaction, never for hashing or unpacking. Files are renamed into place
//! before the transaction that names them commits; when a process dies in between, the
//! files are unreferenced and the next garbage collection removes them.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use oci::Digest;
use rusqlite::{params, OptionalExtension, Transaction, TransactionBehavior};

use crate::blobs::{sync_dir, StagedBlob};
use crate::db::{self, Cached, LayerRecord, NewImage};
use crate::error::{Error, Result};
use crate::staging::{random_u64, remove_if_stale, remove_tree};
use crate::{Collected, Store};

/// An open write transaction on the store, holding the store lock. Nothing it records is
/// visible to other processes until [`Publisher::commit`]; dropping it rolls back.
pub struct Publisher<'a> {
    root: &'a Path,
    tx: Transaction<'a>,
    lease: &'a mut Option<crate::leases::Lease>,
    _lock: File,
    blobs_renamed: bool,
    layers_renamed: bool,
}

fn lock_store(root: &Path) -> Result<File> {
    crate::Layout::new(root).lock()
}

impl<'a> Publisher<'a> {
    pub(crate) fn begin(store: &'a mut Store) -> Result<Publisher<'a>> {
        let lock = lock_store(&store.root)?;
        let tx = store
            .db
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        Ok(Publisher {
            root: &store.root,
            tx,
            lease: &mut store.lease,
            _lock: lock,
            blobs_renamed: false,
            layers_renamed: false,
        })
    }

    fn blob_path(&self, d: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(d.hex())
    }

    /// Moves a staged blob into place (a blob already there is kept).
    pub fn put_blob(&mut self, blob: StagedBlob) -> Result<Digest> {
        let dst = self.blob_path(&blob.digest);
        if dst.exists() {
            let _ = fs::remove_file(&blob.path);
        } else {
            fs::rename(&blob.path, &dst).map_err(|e| Error::io(&dst, e))?;
            self.blobs_renamed = true;
        }
        Ok(blob.digest)
    }

    /// Writes small bytes (a config, a manifest) as a blob.
    pub fn put_blob_bytes(&mut self, bytes: &[u8]) -> Result<Digest> {
        let digest = Digest::of(bytes);
        let dst = self.blob_path(&digest);
        if dst.exists() {
            return Ok(digest);
        }
        let tmp = self
            .root
            .join("tmp")
            .join(format!("blob-{:016x}", random_u64()));
        let write = || -> std::io::Result<()> {
            let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()
        };
        if let Err(e) = write() {
            let _ = fs::remove_file(&tmp);
            return Err(Error::io(&tmp, e));
        }
        fs::rename(&tmp, &dst).map_err(|e| Error::io(&dst, e))?;
        self.blobs_renamed = true;
        Ok(digest)
    }

    /// Records a layer unpacked in `dir` (inside a staging area) with its stored blob, if
    /// any, and its tar-split file `tar_split` (staged too), which `layer.tar_split` must
    /// announce. When the store already has the layer, the staged copy is left to be dropped.
    pub fn put_layer(
        &mut self,
        dir: &Path,
        tar_split: Option<&Path>,
        layer: &LayerRecord,
    ) -> Result<()> {
        let diff_id = &layer.diff_id;
        if db::layer_on(&self.tx, diff_id)?.is_some() {
            return Ok(());
        }
        if layer.tar_split != tar_split.is_some() {
            return Err(Error::Corrupt(format!(
                "layer {diff_id}: the record and the staged files disagree on its tar-split"
            )));
        }
        if layer.blob.is_none() && tar_split.is_none() {
            return Err(Error::Corrupt(format!(
                "layer {diff_id} has neither a blob nor a tar-split"
            )));
        }
        if let Some(b) = &layer.blob {
            if !self.blob_path(&b.digest).is_file() {
                return Err(Error::BlobNotFound(b.digest));
            }
        }
        let dst = self.root.join("layers").join(diff_id.hex());
        if !dst.exists() {
            // Make the unpacked files durable before they become visible under their name.
            sync_tree(dir)?;
            if let Some(split) = tar_split {
                // Without it, a crash could leave the record naming a tar-split file that
                // never reached the disk, and the layer's tar could not be put back together.
                File::open(split)
                    .and_then(|f| f.sync_all())
                    .map_err(|e| Error::io(split, e))?;
                let to = self.root.join("tarsplit").join(diff_id.hex());
                fs::rename(split, &to).map_err(|e| Error::io(&to, e))?;
            }
            fs::rename(dir, &dst).map_err(|e| Error::io(&dst, e))?;
            self.layers_renamed = true;
        }
        self.tx.exec(
            "INSERT INTO layers (diff_id, size, tar_size, blob, media_type, blob_size, tar_split)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                diff_id.to_string(),
                layer.size as i64,
                layer.tar_size as i64,
                layer.blob.as_ref().map(|b| b.digest.to_string()),
                layer.blob.as_ref().map(|b| b.media_type.clone()),
                layer.blob.as_ref().map(|b| b.size as i64),
                layer.tar_split
            ],
        )?;
        Ok(())
    }

    /// Remembers that a registry repository holds `blob` for its layer (after a pull).
    pub fn add_remote_blob(&mut self, blob: &db::RemoteBlob) -> Result<()> {
        db::add_remote_blob_on(&self.tx, blob)
    }

    /// Whether the layer is recorded (in the store or earlier in this transaction).
    pub fn has_layer(&self, diff_id: &Digest) -> Result<bool> {
        Ok(db::layer_on(&self.tx, diff_id)?.is_some())
    }

    /// Records an image (its config becomes a blob); every layer must already be recorded.
    /// Recording an image that exists is not an error and changes nothing.
    pub fn add_image(&mut self, img: &NewImage<'_>) -> Result<Digest> {
        for l in img.layers {
            if db::layer_on(&self.tx, l)?.is_none() {
                return Err(Error::LayerNotFound(*l));
            }
        }
        let id = self.put_blob_bytes(img.config)?;
        let exists: Option<i64> = self
            .tx
            .row(
                "SELECT 1 FROM images WHERE id = ?1",
                [id.to_string()],
                |r| r.get(0),
            )
            .optional()?;
        if exists.is_some() {
            if let Some(p) = img.parent {
                self.tx.exec(
                    "UPDATE images SET parent = ?2 WHERE id = ?1 AND parent IS NULL",
                    params![id.to_string(), p.to_string()],
                )?;
            }
            return Ok(id);
        }
        self.tx.exec(
            "INSERT INTO images (id, parent, created, added) VALUES (?1, ?2, ?3, ?4)",
            params![
                id.to_string(),
                img.parent.map(|p| p.to_string()),
                img.created,
                oci::now()
            ],
        )?;
        for (i, l) in img.layers.iter().enumerate() {
            self.tx.exec(
                "INSERT INTO image_layers (image_id, position, diff_id) VALUES (?1, ?2, ?3)",
                params![id.to_string(), i as i64, l.to_string()],
            )?;
        }
        Ok(id)
    }

    /// Records the builder's cache key of `image`: a digest of the parts of its
    /// `container_config` that the build cache compares, so that
    /// [`Store::cache_candidates`] need not offer every child of a parent.
    pub fn set_cache_key(&mut self, image: &Digest, key: &str) -> Result<()> {
        self.tx.exec(
            "UPDATE images SET cache_key = ?2 WHERE id = ?1",
            params![image.to_string(), key],
        )?;
        Ok(())
    }

    /// Records that the layer `diff_id` is what a `COPY --link` with this key makes, on any
    /// parent.
    pub fn set_linked_layer(&mut self, key: &str, diff_id: &Digest) -> Result<()> {
        self.tx.exec(
            "INSERT OR REPLACE INTO linked_layers (key, diff_id) VALUES (?1, ?2)",
            params![key, diff_id.to_string()],
        )?;
        Ok(())
    }

    /// Points `name` at `image`, returning the image it pointed to before (if different).
    pub fn tag(&mut self, name: &str, image: &Digest) -> Result<Option<Digest>> {
        let old: Option<String> = self
            .tx
            .row("SELECT image_id FROM tags WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()?;
        self.tx.exec(
            "INSERT INTO tags (name, image_id) VALUES (?1, ?2)
             ON CONFLICT(name) DO UPDATE SET image_id = excluded.image_id",
            params![name, image.to_string()],
        )?;
        self.tx.exec(
            "UPDATE images SET last_tag_time = ?2 WHERE id = ?1",
            params![image.to_string(), oci::now()],
        )?;
        let old = old
            .map(|s| Digest::from_str(&s).map_err(|e| Error::Corrupt(e.to_string())))
            .transpose()?;
        Ok(old.filter(|o| o != image))
    }

    /// Removes a tag; returns the image it pointed to.
    pub fn untag(&mut self, name: &str) -> Result<Option<Digest>> {
        let old: Option<String> = self
            .tx
            .row("SELECT image_id FROM tags WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()?;
        self.tx.exec("DELETE FROM tags WHERE name = ?1", [name])?;
        old.map(|s| Digest::from_str(&s).map_err(|e| Error::Corrupt(e.to_string())))
            .transpose()
    }

    /// Records that `image` is known as `name@sha256:…`.
    pub fn add_repo_digest(&mut self, name: &str, image: &Digest) -> Result<()> {
        self.tx.exec(
            "INSERT OR IGNORE INTO repo_digests (name, image_id) VALUES (?1, ?2)",
            params![name, image.to_string()],
        )?;
        Ok(())
    }

    /// Forgets that `image` is known as `name@sha256:…`.
    pub fn remove_repo_digest(&mut self, name: &str, image: &Digest) -> Result<()> {
        self.tx.exec(
            "DELETE FROM repo_digests WHERE name = ?1 AND image_id = ?2",
            params![name, image.to_string()],
        )?;
        Ok(())
    }

    /// Deletes an image record with its tags. Its children lose their parent link. Layers and
    /// blobs stay until [`Store::collect_garbage`].
    /// Refused while a container uses the image or another process's build holds it.
    pub fn delete_image(&mut self, id: &Digest) -> Result<()> {
        if let Some(c) = crate::containers::users_of_image(&self.tx, id)?.first() {
            return Err(Error::ImageInUse {
                image: *id,
                container: c.id.clone(),
            });
        }
        if self.held_elsewhere()?.contains(id) {
            return Err(Error::ImageHeld(*id));
        }
        let n = self
            .tx
            .exec("DELETE FROM images WHERE id = ?1", [id.to_string()])?;
        if n == 0 {
            return Err(Error::ImageNotFound(*id));
        }
        self.tx.exec(
            "UPDATE images SET parent = NULL WHERE parent = ?1",
            [id.to_string()],
        )?;
        Ok(())
    }

    /// Holds image `id` (recorded earlier in this transaction or before) for as long as the
    /// store handle lives: see [`Store::hold_image`].
    pub fn hold(&mut self, id: &Digest) -> Result<()> {
        crate::leases::hold(self.root, self.lease, id)
    }

    /// The images other processes' builds hold, which removals must leave.
    pub fn held_elsewhere(&self) -> Result<HashSet<Digest>> {
        crate::leases::held_images(self.root, self.lease.as_ref())
    }

    /// Reads an image as this transaction sees it.
    pub fn image(&self, id: &Digest) -> Result<Option<db::ImageRecord>> {
        db::image_on(&self.tx, id)
    }

    pub fn children(&self, id: &Digest) -> Result<Vec<Digest>> {
        db::children_on(&self.tx, id)
    }

    pub(crate) fn tx(&self) -> &Transaction<'a> {
        &self.tx
    }

    /// Makes everything recorded durable and visible.
    pub fn commit(self) -> Result<()> {
        if self.blobs_renamed {
            sync_dir(&self.root.join("blobs/sha256"))?;
        }
        if self.layers_renamed {
            sync_dir(&self.root.join("tarsplit"))?;
            sync_dir(&self.root.join("layers"))?;
        }
        self.tx.commit()?;
        Ok(())
    }
}

/// Most files and directories [`sync_tree`] fsyncs one by one.
const MAX_FSYNCS: usize = 128;

/// Makes the tree at `dir` durable: a small tree (a build step's layer) by an fsync of each
/// regular file, then of each directory, deepest first (the journal commit that makes the
/// last one durable carries the entries, symlinks, device nodes and attributes made before
/// it); a larger one, or one that cannot be opened file by file, by `syncfs`, which writes
/// back the whole filesystem at once, other programs' dirty files too.
fn sync_tree(dir: &Path) -> Result<()> {
    fn each(dir: &Path) -> std::io::Result<bool> {
        use std::os::unix::fs::OpenOptionsExt;
        let mut files = Vec::new();
        let mut dirs = vec![dir.to_path_buf()];
        let mut i = 0;
        while i < dirs.len() {
            for e in fs::read_dir(&dirs[i])? {
                let e = e?;
                let t = e.file_type()?;
                if t.is_dir() {
                    dirs.push(e.path());
                } else if t.is_file() {
                    files.push(e.path());
                }
                if files.len() + dirs.len() > MAX_FSYNCS {
                    return Ok(false);
                }
            }
            i += 1;
        }
        for p in files.iter().chain(dirs.iter().rev()) {
            OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW | libc::O_NOATIME)
                .open(p)?
                .sync_all()?;
        }
        Ok(true)
    }
    match each(dir) {
        Ok(true) => Ok(()),
        _ => sync_filesystem(dir),
    }
}

fn sync_filesystem(p: &Path) -> Result<()> {
    use std::os::fd::AsRawFd;
    let f = File::open(p).map_err(|e| Error::io(p, e))?;
    // SAFETY: syncfs takes any open descriptor of the filesystem and has no other effect.
    let rc = unsafe { libc::syncfs(f.as_raw_fd()) };
    if rc != 0 {
        return Err(Error::io(p, std::io::Error::last_os_error()));
    }
    Ok(())
}

pub(crate) fn collect_garbage(store: &mut Store) -> Result<Collected> {
    let root = store.root.clone();
    let _lock = lock_store(&root)?;
    let mut out = Collected::default();
    let tx = store
        .db
        .conn
        .transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.exec(
        "DELETE FROM layers WHERE diff_id NOT IN (SELECT diff_id FROM image_layers)
         AND diff_id NOT IN (SELECT il.diff_id FROM image_layers il
                             JOIN containers c ON c.image_id = il.image_id)",
        [],
    )?;
    tx.exec(
        "DELETE FROM layer_remotes WHERE diff_id NOT IN (SELECT diff_id FROM layers)",
        [],
    )?;
    tx.exec(
        "DELETE FROM linked_layers WHERE diff_id NOT IN (SELECT diff_id FROM layers)",
        [],
    )?;
    let live_layers: HashSet<String> = {
        let mut st = tx.prepare_cached("SELECT diff_id FROM layers")?;
        let rows = st.query_map([], |r| r.get::<_, String>(0))?;
        rows.collect::<std::result::Result<_, _>>()?
    };
    let live_blobs: HashSet<String> = {
        let mut st = tx.prepare_cached(
            "SELECT id FROM images UNION SELECT blob FROM layers WHERE blob IS NOT NULL",
        )?;
        let rows = st.query_map([], |r| r.get::<_, String>(0))?;
        rows.collect::<std::result::Result<_, _>>()?
    };
    tx.commit()?;

    let layers_dir = root.join("layers");
    for e in fs::read_dir(&layers_dir)
        .map_err(|e| Error::io(&layers_dir, e))?
        .flatten()
    {
        let name = e.file_name().to_string_lossy().into_owned();
        let key = format!("sha256:{name}");
        if live_layers.contains(&key) {
            continue;
        }
        // Rename first so a half-removed layer is never seen under its name.
        let trash = root
            .join("tmp")
            .join(format!("trash-{:016x}", random_u64()));
        if fs::rename(e.path(), &trash).is_ok() {
            remove_tree(&trash).map_err(|err| Error::io(&trash, err))?;
            if let Ok(d) = Digest::from_str(&key) {
                out.layers.push(d);
            }
        }
    }
    let splits_dir = root.join("tarsplit");
    for e in fs::read_dir(&splits_dir)
        .map_err(|e| Error::io(&splits_dir, e))?
        .flatten()
    {
        let name = e.file_name().to_string_lossy().into_owned();
        if !live_layers.contains(&format!("sha256:{name}")) {
            fs::remove_file(e.path()).map_err(|err| Error::io(&e.path(), err))?;
        }
    }
    let blobs_dir = root.join("blobs/sha256");
    for e in fs::read_dir(&blobs_dir)
        .map_err(|e| Error::io(&blobs_dir, e))?
        .flatten()
    {
        let name = e.file_name().to_string_lossy().into_owned();
        let key = format!("sha256:{name}");
        if live_blobs.contains(&key) {
            continue;
        }
        fs::remove_file(e.path()).map_err(|err| Error::io(&e.path(), err))?;
        if let Ok(d) = Digest::from_str(&key) {
            out.blobs.push(d);
        }
    }
    let tmp = root.join("tmp");
    for e in fs::read_dir(&tmp)
        .map_err(|e| Error::io(&tmp, e))?
        .flatten()
    {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.ends_with(".lock") {
            if remove_if_stale(&e.path()) {
                out.stale_staging += 1;
            }
        } else if name.starts_with("trash-") || name.starts_with("blob-") {
            // Leftovers of an interrupted removal or small-blob write: nobody owns them once
            // we hold the store lock.
            let _ = if e.path().is_dir() {
                remove_tree(&e.path())
            } else {
                fs::remove_file(e.path())
            };
        }
    }
    out.layers.sort();
    out.blobs.sort();
    Ok(out)
}
