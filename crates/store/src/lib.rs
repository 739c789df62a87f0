//! strata's store: every blob once by sha256 digest, every layer unpacked once in a directory
//! keyed by its diff_id, and the metadata (images, tags, layers) in an embedded SQLite
//! database. There is no daemon: every strata process opens the store itself.
//!
//! # Layout of a store root
//!
//! ```text
//! ROOT/metadata.db          SQLite (WAL): layers, images, image_layers, tags, repo_digests,
//!                           containers, volumes, container_volumes, build records
//!                           (step_inputs, input_files, builds: see `records`)
//! ROOT/volumes/NAME/_data   a volume's data (Docker's layout)
//! ROOT/lock                 exclusive while publishing or collecting garbage (short)
//! ROOT/blobs/sha256/HEX     content blobs: configs, manifests, compressed layers
//! ROOT/layers/HEX           one unpacked layer per diff_id, ready to be an overlay lowerdir
//! ROOT/tarsplit/HEX         the layer tar's headers and padding (its file data is in the
//!                           layer directory): the tar is put back together from both
//! ROOT/tmp/                 staging areas of running processes, each with a held lock file
//! ROOT/leases/N.lease        images a running build holds (locked while its process lives)
//! ```
//!
//! # How things enter the store
//!
//! Long work (hashing a blob, unpacking a layer) happens in a [`Staging`] area under `tmp/`,
//! without any store-wide lock, so readers and other writers never wait on it. A
//! [`Publisher`] then takes the store lock, renames the staged files into place and records
//! them in one database transaction. A crash at any instant leaves either the old state or
//! the new one, plus at worst unreferenced files that [`Store::collect_garbage`] removes.
//! Commits wait for the disk (the WAL is fsynced), except those made in [`Store::unsynced`],
//! which the same command makes durable before it returns; the WAL stays between processes
//! and is checkpointed by commits once it holds 64 pages.
//!
//! **Invariant:** a blob or layer directory at its final path is complete and its name is its
//! digest; a database row never names a file that was not already in place when it was
//! written.

mod blobs;
pub mod check;
mod containers;
mod db;
mod error;
pub mod events;
mod layout;
mod leases;
mod networks;
mod publish;
pub mod records;
mod staging;
mod volumes;

pub use blobs::{BlobWriter, StagedBlob};
pub use containers::{ContainerRecord, ContainerState, NewContainer};
pub use db::{BlobRef, ImageRecord, LayerRecord, NewImage, RemoteBlob};
pub use error::{Error, Result};
pub use layout::Layout;
pub use networks::{EndpointRecord, NetworkRecord};
pub use publish::Publisher;

/// The error `rm` records on a container it marks `dead` before removing its snapshot (as
/// Docker's daemon does), so one killed mid-way is recognised: `rm` again finishes it.
pub const REMOVAL_IN_PROGRESS: &str = "removal in progress";
pub use records::{source_key, BuildRecord, FileEntry, StepInputs, StepRecord, StepStat};
pub use staging::Staging;
pub use volumes::VolumeRecord;

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use oci::Digest;

/// An open store. Cheap to open; one per process is enough.
pub struct Store {
    root: PathBuf,
    db: db::Db,
    /// The images this handle holds (see [`Store::hold_image`]).
    lease: Option<leases::Lease>,
}

/// What [`Store::collect_garbage`] freed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Collected {
    pub layers: Vec<Digest>,
    pub blobs: Vec<Digest>,
    pub stale_staging: usize,
}

impl Store {
    /// Opens (creating when needed) the store at `root`.
    pub fn open(root: impl AsRef<Path>) -> Result<Store> {
        let root = root.as_ref().to_path_buf();
        for d in ["blobs/sha256", "layers", "tarsplit", "tmp"] {
            let p = root.join(d);
            fs::create_dir_all(&p).map_err(|e| Error::io(&p, e))?;
        }
        let db = db::Db::open(&root.join("metadata.db"))?;
        Ok(Store {
            root,
            db,
            lease: None,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the blob with this digest lives (it may not exist).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(digest.hex())
    }

    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// Opens a blob of this store for reading.
    pub fn open_blob(&self, digest: &Digest) -> Result<File> {
        let p = self.blob_path(digest);
        File::open(&p).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::BlobNotFound(*digest),
            _ => Error::io(&p, e),
        })
    }

    /// Reads a whole (small) blob such as a config or manifest.
    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>> {
        let p = self.blob_path(digest);
        fs::read(&p).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::BlobNotFound(*digest),
            _ => Error::io(&p, e),
        })
    }

    /// The directory holding the unpacked layer with this diff_id (it may not exist).
    pub fn layer_dir(&self, diff_id: &Digest) -> PathBuf {
        self.root.join("layers").join(diff_id.hex())
    }

    /// The tar-split file of the layer with this diff_id (it may not exist).
    pub fn tar_split_path(&self, diff_id: &Digest) -> PathBuf {
        self.root.join("tarsplit").join(diff_id.hex())
    }

    /// The compressed blobs registries are known to hold for this layer.
    pub fn remote_blobs(&self, diff_id: &Digest) -> Result<Vec<RemoteBlob>> {
        db::remote_blobs_on(&self.db.conn, diff_id)
    }

    /// Remembers that a registry repository holds `blob` for its layer (after a push). A
    /// short transaction of its own; no file changes, so no store lock.
    pub fn add_remote_blob(&self, blob: &RemoteBlob) -> Result<()> {
        db::add_remote_blob_on(&self.db.conn, blob)
    }

    /// A fresh staging area for long work; removed when dropped.
    pub fn stage(&self) -> Result<Staging> {
        Staging::new(&self.root.join("tmp"))
    }

    /// Starts publishing: takes the store lock and opens a write transaction.
    pub fn publish(&mut self) -> Result<Publisher<'_>> {
        Publisher::begin(self)
    }

    /// Makes every commit so far durable, those made [`Store::unsynced`] too: they are in the
    /// WAL, which this syncs (a checkpoint syncs what it moves out of it before resetting it).
    pub fn sync(&self) -> Result<()> {
        let wal = self.root.join("metadata.db-wal");
        match File::open(&wal) {
            Ok(f) => f.sync_all().map_err(|e| Error::io(&wal, e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(&wal, e)),
        }
    }

    /// Runs `f` with commits that do not wait for the disk: what they record is visible at
    /// once, consistent after a crash (whole transactions or nothing), and durable with the
    /// next commit of any process that does wait (every other commit: the WAL is synced as a
    /// whole), the next checkpoint or [`Store::sync`]. Files are still synced before the rows
    /// naming them. Only for records that the same command makes durable so before it returns
    /// (a container created by `run`, whose running state is recorded next; the steps of a
    /// build, tagged or synced at its end), or that an OS crash makes moot: every record of a
    /// `--rm` container, which is removed when it ends and whose record, if a crash leaves
    /// one, `cleanup` removes as it finds no monitor. A crash loses only records of work that
    /// was still going on.
    pub fn unsynced<T, E: From<Error>>(
        &mut self,
        f: impl FnOnce(&mut Store) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        let level = |s: &Store, l: &str| -> Result<()> {
            Ok(s.db.conn.pragma_update(None, "synchronous", l)?)
        };
        level(self, "NORMAL")?;
        let r = f(self);
        let restored = level(self, "FULL");
        let v = r?;
        restored?;
        Ok(v)
    }

    // ---- queries ----

    pub fn layer(&self, diff_id: &Digest) -> Result<Option<LayerRecord>> {
        self.db.layer(diff_id)
    }

    pub fn layers(&self) -> Result<Vec<LayerRecord>> {
        self.db.layers()
    }

    /// The sum of every layer's size (Docker's DiffSize), without reading the layers.
    pub fn layers_size(&self) -> Result<u64> {
        use db::Cached;
        let n: i64 = self
            .db
            .conn
            .row("SELECT COALESCE(SUM(size), 0) FROM layers", [], |r| {
                r.get(0)
            })?;
        Ok(n.max(0) as u64)
    }

    pub fn image(&self, id: &Digest) -> Result<Option<ImageRecord>> {
        self.db.image(id)
    }

    pub fn images(&self) -> Result<Vec<ImageRecord>> {
        self.db.images()
    }

    /// The image a full reference (`docker.io/library/busybox:latest`) points to.
    pub fn lookup_tag(&self, name: &str) -> Result<Option<Digest>> {
        self.db.lookup_tag(name)
    }

    /// Image IDs whose hex starts with `prefix` (for short IDs).
    pub fn images_with_prefix(&self, prefix: &str) -> Result<Vec<Digest>> {
        self.db.images_with_prefix(prefix)
    }

    /// The image the repo digest (`name@sha256:…`) was pulled or pushed as.
    pub fn lookup_repo_digest(&self, name: &str) -> Result<Option<Digest>> {
        self.db.lookup_repo_digest(name)
    }

    /// Images whose parent is `id`.
    pub fn children(&self, id: &Digest) -> Result<Vec<Digest>> {
        self.db.children(id)
    }

    /// The images whose parent is `parent` (None: images without one) that may hold the build
    /// step with cache key `key` (see [`Publisher::set_cache_key`]): those recorded with that
    /// key and those recorded without any (made elsewhere or by older versions), by ID.
    /// The layer a `COPY --link` recorded under `key` ([`Publisher::set_linked_layer`]),
    /// while the store holds it.
    pub fn linked_layer(&self, key: &str) -> Result<Option<Digest>> {
        self.db.linked_layer(key)
    }

    pub fn cache_candidates(&self, parent: Option<&Digest>, key: &str) -> Result<Vec<Digest>> {
        self.db.cache_candidates(parent, key)
    }

    /// Checks the store (`system check`): see [`check`].
    pub fn check(&self, deep: Option<check::DeepCheck<'_>>) -> Result<check::Report> {
        check::check(self, deep)
    }

    /// Checks the store and removes what nothing references (`system check --repair`).
    pub fn check_and_repair(&self, deep: Option<check::DeepCheck<'_>>) -> Result<check::Report> {
        check::repair(self, deep)
    }

    /// Removes unreferenced layers and blobs, and staging areas of processes that died.
    /// Holds image `id` for as long as this handle lives, so that `image prune` and `rmi`
    /// elsewhere leave it (a build holds what it builds on). `false` when the image is
    /// already gone.
    pub fn hold_image(&mut self, id: &Digest) -> Result<bool> {
        let _lock = Layout::new(&self.root).lock()?;
        if db::image_on(&self.db.conn, id)?.is_none() {
            return Ok(false);
        }
        leases::hold(&self.root, &mut self.lease, id)?;
        Ok(true)
    }

    pub fn collect_garbage(&mut self) -> Result<Collected> {
        publish::collect_garbage(self)
    }
}
