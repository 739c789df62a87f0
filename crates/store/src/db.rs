//! The metadata database: SQLite in WAL mode, one connection per process, a busy timeout so
//! concurrent strata processes wait for each other's short write transactions instead of
//! failing. Schema changes are numbered migrations keyed by `PRAGMA user_version`.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use oci::Digest;
use rusqlite::{params, Connection, OptionalExtension};

use crate::error::{Error, Result};

const MIGRATIONS: &[&str] = &[
    // 1: layers, images and their names.
    r#"
    CREATE TABLE layers (
        diff_id    TEXT PRIMARY KEY,
        size       INTEGER NOT NULL,
        tar_size   INTEGER NOT NULL,
        blob       TEXT,
        media_type TEXT,
        blob_size  INTEGER
    );
    CREATE TABLE images (
        id            TEXT PRIMARY KEY,
        parent        TEXT,
        created       TEXT NOT NULL,
        added         TEXT NOT NULL,
        last_tag_time TEXT
    );
    CREATE INDEX images_parent ON images(parent);
    CREATE TABLE image_layers (
        image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        diff_id  TEXT NOT NULL REFERENCES layers(diff_id),
        PRIMARY KEY (image_id, position)
    );
    CREATE INDEX image_layers_diff ON image_layers(diff_id);
    CREATE TABLE tags (
        name     TEXT PRIMARY KEY,
        image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE
    );
    CREATE TABLE repo_digests (
        name     TEXT NOT NULL,
        image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
        PRIMARY KEY (name, image_id)
    );
    "#,
    // 2: containers (their image keeps its layers alive, see collect_garbage).
    r#"
    CREATE TABLE containers (
        id          TEXT PRIMARY KEY,
        name        TEXT NOT NULL UNIQUE,
        image_id    TEXT NOT NULL,
        image_name  TEXT NOT NULL,
        snapshot    TEXT NOT NULL,
        config      TEXT NOT NULL,
        created     TEXT NOT NULL,
        status      TEXT NOT NULL,
        pid         INTEGER NOT NULL DEFAULT 0,
        exit_code   INTEGER NOT NULL DEFAULT 0,
        started_at  TEXT,
        finished_at TEXT,
        error       TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX containers_image ON containers(image_id);
    "#,
    // 3: layers kept as a directory plus a tar-split file instead of a compressed blob, and
    // the compressed blobs each layer is known by in registries (Docker's distribution
    // metadata), so a push can skip, mount or reuse them.
    r#"
    ALTER TABLE layers ADD COLUMN tar_split INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE layer_remotes (
        diff_id    TEXT NOT NULL,
        registry   TEXT NOT NULL,
        repository TEXT NOT NULL,
        digest     TEXT NOT NULL,
        media_type TEXT NOT NULL,
        size       INTEGER NOT NULL,
        PRIMARY KEY (diff_id, registry, repository, digest)
    );
    CREATE INDEX layer_remotes_digest ON layer_remotes(digest);
    "#,
    // 4: the builder's cache key of an image (a digest of what its cache compares), so that
    // finding a cached step reads one config instead of every child's; the new index serves
    // lookups by parent too.
    r#"
    ALTER TABLE images ADD COLUMN cache_key TEXT;
    CREATE INDEX images_cache ON images(parent, cache_key);
    DROP INDEX images_parent;
    "#,
    // 5: volumes (driver, labels and options of each), and which containers mount them: a
    // volume is in use while a container row names it (removed with the container).
    r#"
    CREATE TABLE IF NOT EXISTS volumes (
        name    TEXT PRIMARY KEY,
        driver  TEXT NOT NULL,
        labels  TEXT NOT NULL,
        options TEXT NOT NULL,
        created TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS container_volumes (
        container_id TEXT NOT NULL REFERENCES containers(id) ON DELETE CASCADE,
        volume       TEXT NOT NULL REFERENCES volumes(name),
        PRIMARY KEY (container_id, volume)
    );
    CREATE INDEX IF NOT EXISTS container_volumes_volume ON container_volumes(volume);
    "#,
    // 6: user-defined networks (their configuration is JSON the container crate owns) and the
    // endpoints of running containers on them (the address each holds while it runs).
    r#"
    CREATE TABLE IF NOT EXISTS networks (
        id      TEXT PRIMARY KEY,
        name    TEXT NOT NULL UNIQUE,
        created TEXT NOT NULL,
        config  TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS endpoints (
        network_id   TEXT NOT NULL,
        container_id TEXT NOT NULL,
        endpoint_id  TEXT NOT NULL,
        ip           TEXT NOT NULL,
        mac          TEXT NOT NULL,
        ifname       TEXT NOT NULL,
        PRIMARY KEY (network_id, container_id),
        UNIQUE (network_id, ip)
    );
    CREATE INDEX IF NOT EXISTS endpoints_container ON endpoints(container_id);
    "#,
    // 7: the layers `COPY --link` made, by a key that ignores the layers under them, so a
    // changed base reuses them (rows whose layer is gone are ignored and collected).
    r#"
    CREATE TABLE IF NOT EXISTS linked_layers (
        key     TEXT PRIMARY KEY,
        diff_id TEXT NOT NULL
    );
    "#,
    // 8: build records (see `records`): the inputs of each built step's last build, by
    // context and Dockerfile, stage and position (a step's files as one listing shared by
    // every step with the same sources), and one row per build with its steps as JSON.
    r#"
    CREATE TABLE IF NOT EXISTS step_inputs (
        source      TEXT NOT NULL,
        stage       INTEGER NOT NULL,
        position    INTEGER NOT NULL,
        instruction TEXT NOT NULL,
        args        TEXT NOT NULL,
        parent      TEXT NOT NULL,
        base        TEXT NOT NULL,
        files       TEXT,
        built       INTEGER NOT NULL,
        PRIMARY KEY (source, stage, position)
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS input_files (
        id   TEXT PRIMARY KEY,
        data BLOB NOT NULL
    );
    CREATE TABLE IF NOT EXISTS builds (
        id          TEXT PRIMARY KEY,
        source      TEXT NOT NULL,
        context     TEXT NOT NULL,
        dockerfile  TEXT NOT NULL,
        name        TEXT NOT NULL,
        started     INTEGER NOT NULL,
        duration_ms INTEGER NOT NULL,
        target      TEXT NOT NULL,
        tags        TEXT NOT NULL,
        status      TEXT NOT NULL,
        error       TEXT NOT NULL,
        image       TEXT NOT NULL,
        steps       TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS builds_started ON builds(started);
    CREATE INDEX IF NOT EXISTS builds_source ON builds(source, started);
    "#,
];

/// WAL size (in 4 KiB pages) at which a commit checkpoints it into the database.
const WAL_PAGES: i64 = 64;

pub(crate) struct Db {
    pub(crate) conn: Connection,
    /// The WAL file (`metadata.db-wal`).
    wal: std::path::PathBuf,
}

impl Drop for Db {
    /// A WAL that has grown past [`WAL_PAGES`] is checkpointed and truncated as the process
    /// lets go of the database. Without this, a WAL left in place outlives the wal-index that
    /// knew it was checkpointed (the next process to open the database rebuilds the index
    /// from the WAL, counting every frame as not yet copied), so it is never restarted and
    /// every commit of every later process copies all its frames again, with three fsyncs.
    /// Best effort: another process reading or writing just now keeps it for later.
    fn drop(&mut self) {
        let big = std::fs::metadata(&self.wal).is_ok_and(|m| m.len() > (WAL_PAGES as u64) * 4096);
        if big {
            let _ = self.conn.busy_timeout(Duration::from_millis(0));
            let _ = self
                .conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        }
    }
}

/// A layer known to the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerRecord {
    pub diff_id: Digest,
    /// Docker's DiffSize: the sum of the sizes of every non-directory entry.
    pub size: u64,
    /// Length of the uncompressed layer tar (whose sha256 is the diff_id).
    pub tar_size: u64,
    /// A stored blob of this layer, exactly as it was received (compressed or not). Stores
    /// written before tar-split files kept one for every layer; now layers have none.
    pub blob: Option<BlobRef>,
    /// Whether `ROOT/tarsplit/HEX` holds the tar's headers and padding, from which and the
    /// layer directory the exact tar is put back together.
    pub tar_split: bool,
}

/// A compressed blob a registry repository holds for a layer (pulled from or pushed there).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteBlob {
    pub diff_id: Digest,
    /// The registry host as references name it (`docker.io`, `127.0.0.1:5000`).
    pub registry: String,
    /// The repository path in that registry (`library/busybox`).
    pub repository: String,
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
}

/// A stored blob with the media type it was received or made with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobRef {
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
}

/// An image known to the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRecord {
    /// sha256 of the config bytes, which are the blob of the same digest.
    pub id: Digest,
    /// The local parent image (classic builds); `None` for imported, loaded and pulled ones.
    pub parent: Option<Digest>,
    /// `created` from the config (RFC 3339).
    pub created: String,
    /// When this store first recorded the image (RFC 3339).
    pub added: String,
    pub last_tag_time: Option<String>,
    /// diff_ids, base first.
    pub layers: Vec<Digest>,
    /// Full references (`docker.io/library/busybox:latest`), sorted.
    pub tags: Vec<String>,
    /// `name@sha256:…` of manifests this image was pulled or pushed as, sorted.
    pub repo_digests: Vec<String>,
    /// Sum of the layers' sizes.
    pub size: u64,
}

/// An image to record: its config and the layers (already in the store) it stacks.
#[derive(Debug, Clone)]
pub struct NewImage<'a> {
    pub config: &'a [u8],
    pub layers: &'a [Digest],
    pub parent: Option<Digest>,
    pub created: &'a str,
}

/// Statements through the connection's cache of prepared statements: a strata process runs
/// the same few queries many times (one per layer, per step, per state change), and preparing
/// one costs more than running it.
pub(crate) trait Cached {
    fn exec<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize>;
    fn row<T, P, F>(&self, sql: &str, params: P, f: F) -> rusqlite::Result<T>
    where
        P: rusqlite::Params,
        F: FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>;
}

impl Cached for Connection {
    fn exec<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize> {
        self.prepare_cached(sql)?.execute(params)
    }
    fn row<T, P, F>(&self, sql: &str, params: P, f: F) -> rusqlite::Result<T>
    where
        P: rusqlite::Params,
        F: FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    {
        self.prepare_cached(sql)?.query_row(params, f)
    }
}

pub(crate) fn digest_col(s: String) -> Result<Digest> {
    Digest::from_str(&s).map_err(|e| Error::Corrupt(e.to_string()))
}

impl Db {
    pub(crate) fn open(path: &Path) -> Result<Db> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(60))?;
        conn.set_prepared_statement_cache_capacity(64);
        // WAL mode is recorded in the database file: set only once.
        let mode: String = conn.row("PRAGMA journal_mode", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            conn.pragma_update(None, "journal_mode", "WAL")?;
        }
        // Every commit is fsynced in the WAL before it returns.
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // Every strata process is short-lived: by default the last connection to close
        // checkpoints the WAL into the database and deletes it (two fsyncs and a file
        // deletion), and the next process's first commit makes the WAL again (two more
        // fsyncs, one of the directory). Leave the WAL in place instead; commits checkpoint
        // it once it holds WAL_PAGES pages, which also bounds what the first process to open
        // the database reads to rebuild the WAL index. Committed transactions are durable in
        // the WAL either way.
        conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
            true,
        )?;
        conn.pragma_update(None, "wal_autocheckpoint", WAL_PAGES)?;
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        let mut db = Db {
            conn,
            wal: wal.into(),
        };
        db.migrate()?;
        Ok(db)
    }

    fn migrate(&mut self) -> Result<()> {
        let version: usize = self.conn.row("PRAGMA user_version", [], |r| r.get(0))?;
        if version >= MIGRATIONS.len() {
            return Ok(());
        }
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        // Another process may have migrated while we waited for the write lock.
        let version: usize = tx.row("PRAGMA user_version", [], |r| r.get(0))?;
        for (i, m) in MIGRATIONS.iter().enumerate().skip(version) {
            tx.execute_batch(m)?;
            tx.pragma_update(None, "user_version", i + 1)?;
        }
        tx.commit()?;
        Ok(())
    }

    pub(crate) fn layer(&self, diff_id: &Digest) -> Result<Option<LayerRecord>> {
        layer_on(&self.conn, diff_id)
    }

    pub(crate) fn layers(&self) -> Result<Vec<LayerRecord>> {
        let mut st = self.conn.prepare_cached(
            "SELECT diff_id, size, tar_size, blob, media_type, blob_size, tar_split FROM layers ORDER BY diff_id",
        )?;
        let rows = st.query_map([], layer_row)?;
        rows.map(|r| r?).collect()
    }

    pub(crate) fn image(&self, id: &Digest) -> Result<Option<ImageRecord>> {
        image_on(&self.conn, id)
    }

    pub(crate) fn images(&self) -> Result<Vec<ImageRecord>> {
        let ids: Vec<String> = {
            let mut st = self
                .conn
                .prepare_cached("SELECT id FROM images ORDER BY added DESC, id")?;
            let rows = st.query_map([], |r| r.get(0))?;
            rows.collect::<std::result::Result<_, _>>()?
        };
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(img) = image_on(&self.conn, &digest_col(id)?)? {
                out.push(img);
            }
        }
        Ok(out)
    }

    pub(crate) fn lookup_tag(&self, name: &str) -> Result<Option<Digest>> {
        let id: Option<String> = self
            .conn
            .row("SELECT image_id FROM tags WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()?;
        id.map(digest_col).transpose()
    }

    pub(crate) fn lookup_repo_digest(&self, name: &str) -> Result<Option<Digest>> {
        let id: Option<String> = self
            .conn
            .row(
                "SELECT image_id FROM repo_digests WHERE name = ?1",
                [name],
                |r| r.get(0),
            )
            .optional()?;
        id.map(digest_col).transpose()
    }

    pub(crate) fn images_with_prefix(&self, prefix: &str) -> Result<Vec<Digest>> {
        if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(vec![]);
        }
        let mut st = self
            .conn
            .prepare_cached("SELECT id FROM images WHERE substr(id, 8, ?2) = ?1")?;
        let rows = st.query_map(params![prefix.to_ascii_lowercase(), prefix.len()], |r| {
            r.get::<_, String>(0)
        })?;
        rows.map(|r| digest_col(r?)).collect()
    }

    pub(crate) fn children(&self, id: &Digest) -> Result<Vec<Digest>> {
        children_on(&self.conn, id)
    }

    pub(crate) fn linked_layer(&self, key: &str) -> Result<Option<Digest>> {
        let d: Option<String> = self
            .conn
            .row(
                "SELECT l.diff_id FROM linked_layers l JOIN layers y ON y.diff_id = l.diff_id
                 WHERE l.key = ?1",
                [key],
                |r| r.get(0),
            )
            .optional()?;
        d.map(digest_col).transpose()
    }

    pub(crate) fn cache_candidates(
        &self,
        parent: Option<&Digest>,
        key: &str,
    ) -> Result<Vec<Digest>> {
        let mut st = self.conn.prepare_cached(
            "SELECT id FROM images WHERE parent IS ?1 AND cache_key = ?2
             UNION ALL SELECT id FROM images WHERE parent IS ?1 AND cache_key IS NULL
             ORDER BY id",
        )?;
        let rows = st.query_map(params![parent.map(|p| p.to_string()), key], |r| {
            r.get::<_, String>(0)
        })?;
        rows.map(|r| digest_col(r?)).collect()
    }
}

pub(crate) fn children_on(conn: &Connection, id: &Digest) -> Result<Vec<Digest>> {
    let mut st = conn.prepare_cached("SELECT id FROM images WHERE parent = ?1 ORDER BY id")?;
    let rows = st.query_map([id.to_string()], |r| r.get::<_, String>(0))?;
    rows.map(|r| digest_col(r?)).collect()
}

fn layer_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<LayerRecord>> {
    let diff_id: String = r.get(0)?;
    let size: i64 = r.get(1)?;
    let tar_size: i64 = r.get(2)?;
    let blob: Option<String> = r.get(3)?;
    let media_type: Option<String> = r.get(4)?;
    let blob_size: Option<i64> = r.get(5)?;
    let tar_split: bool = r.get(6)?;
    Ok((|| {
        let blob = match blob {
            Some(d) => Some(BlobRef {
                digest: digest_col(d)?,
                media_type: media_type.unwrap_or_default(),
                size: blob_size.unwrap_or(0) as u64,
            }),
            None => None,
        };
        Ok(LayerRecord {
            diff_id: digest_col(diff_id)?,
            size: size as u64,
            tar_size: tar_size as u64,
            blob,
            tar_split,
        })
    })())
}

pub(crate) fn layer_on(conn: &Connection, diff_id: &Digest) -> Result<Option<LayerRecord>> {
    let row = conn
        .row(
            "SELECT diff_id, size, tar_size, blob, media_type, blob_size, tar_split FROM layers WHERE diff_id = ?1",
            [diff_id.to_string()],
            layer_row,
        )
        .optional()?;
    row.transpose()
}

pub(crate) fn remote_blobs_on(conn: &Connection, diff_id: &Digest) -> Result<Vec<RemoteBlob>> {
    let mut st = conn.prepare_cached(
        "SELECT registry, repository, digest, media_type, size FROM layer_remotes
         WHERE diff_id = ?1 ORDER BY registry, repository, digest",
    )?;
    let rows = st.query_map([diff_id.to_string()], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, i64>(4)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (registry, repository, digest, media_type, size) = row?;
        out.push(RemoteBlob {
            diff_id: *diff_id,
            registry,
            repository,
            digest: digest_col(digest)?,
            media_type,
            size: size as u64,
        });
    }
    Ok(out)
}

pub(crate) fn add_remote_blob_on(conn: &Connection, b: &RemoteBlob) -> Result<()> {
    conn.exec(
        "INSERT OR REPLACE INTO layer_remotes (diff_id, registry, repository, digest, media_type, size)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            b.diff_id.to_string(),
            b.registry,
            b.repository,
            b.digest.to_string(),
            b.media_type,
            b.size as i64
        ],
    )?;
    Ok(())
}

pub(crate) fn image_on(conn: &Connection, id: &Digest) -> Result<Option<ImageRecord>> {
    let row: Option<(Option<String>, String, String, Option<String>)> = conn
        .row(
            "SELECT parent, created, added, last_tag_time FROM images WHERE id = ?1",
            [id.to_string()],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()?;
    let Some((parent, created, added, last_tag_time)) = row else {
        return Ok(None);
    };
    let mut layers = Vec::new();
    let mut size = 0u64;
    {
        let mut st = conn.prepare_cached(
            "SELECT l.diff_id, l.size FROM image_layers il JOIN layers l ON l.diff_id = il.diff_id
             WHERE il.image_id = ?1 ORDER BY il.position",
        )?;
        let mut rows = st.query([id.to_string()])?;
        while let Some(r) = rows.next()? {
            layers.push(digest_col(r.get(0)?)?);
            size += r.get::<_, i64>(1)? as u64;
        }
    }
    let strings = |sql: &str| -> Result<Vec<String>> {
        let mut st = conn.prepare_cached(sql)?;
        let rows = st.query_map([id.to_string()], |r| r.get::<_, String>(0))?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    };
    let tags = strings("SELECT name FROM tags WHERE image_id = ?1 ORDER BY name")?;
    let repo_digests = strings("SELECT name FROM repo_digests WHERE image_id = ?1 ORDER BY name")?;
    Ok(Some(ImageRecord {
        id: *id,
        parent: parent.map(digest_col).transpose()?,
        created,
        added,
        last_tag_time,
        layers,
        tags,
        repo_digests,
        size,
    }))
}
