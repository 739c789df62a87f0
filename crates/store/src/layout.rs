//! The one description of a strata root's directories. Every crate that keeps files under the
//! root asks [`Layout`] where they go, so the layout cannot drift between commands.
//!
//! ```text
//! ROOT/metadata.db       SQLite metadata (WAL)        ROOT/lock          the store lock
//! ROOT/blobs/sha256/HEX  blobs                        ROOT/layers/HEX    unpacked layers by diff_id
//! ROOT/tmp/              staging areas                ROOT/snapshots/    the snapshotter's root
//! ROOT/containers/ID/    a container's state          ROOT/build/        the builder's files
//! ROOT/cache/seccomp/    compiled seccomp filters  ROOT/volumes/NAME/_data  a volume's data
//! ROOT/events.log        the event journal
//! ROOT/networks/ID/netns  a network's namespace
//! ```

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Where things live under a strata root.
#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    /// The layout of the root at `root` (nothing is created).
    pub fn new(root: impl Into<PathBuf>) -> Layout {
        Layout { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The snapshotter's own root.
    pub fn snapshots(&self) -> PathBuf {
        self.root.join("snapshots")
    }

    /// The parent of every container's state directory.
    pub fn containers(&self) -> PathBuf {
        self.root.join("containers")
    }

    /// The parent of every volume's directory (`volumes/NAME/_data`, Docker's layout).
    pub fn volumes(&self) -> PathBuf {
        self.root.join("volumes")
    }

    /// The parent of every user-defined network's directory (`ID/netns`, its namespace) and
    /// of the lock that orders network changes.
    pub fn networks(&self) -> PathBuf {
        self.root.join("networks")
    }

    /// The builder's directory: its `-init` layer, RUN mount points, RUN state, caches.
    pub fn build(&self) -> PathBuf {
        self.root.join("build")
    }

    /// The build context hash cache.
    pub fn build_hashes(&self) -> PathBuf {
        self.build().join("hashes")
    }

    /// `RUN --mount=type=cache` directories.
    pub fn build_cache(&self) -> PathBuf {
        self.build().join("cache")
    }

    /// Compiled seccomp filters of Docker's default profile, shared by containers and builds.
    pub fn seccomp_cache(&self) -> PathBuf {
        self.root.join("cache/seccomp")
    }

    /// The event journal (`events`): Docker's event messages, one JSON line each.
    pub fn events(&self) -> PathBuf {
        self.root.join("events.log")
    }

    /// The file whose lock is the store lock.
    pub fn lock_file(&self) -> PathBuf {
        self.root.join("lock")
    }

    /// Takes the store lock, waiting for it; released when the file is dropped. Publishing
    /// holds it, and so does anything that must see the store and the snapshots agree.
    pub fn lock(&self) -> Result<File> {
        let p = self.lock_file();
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&p)
            .map_err(|e| Error::io(&p, e))?;
        f.lock().map_err(|e| Error::io(&p, e))?;
        Ok(f)
    }
}
