//! Staging areas: private scratch directories under `ROOT/tmp` where a process writes blobs
//! and unpacks layers before publishing them. Each area holds an exclusive lock on a sibling
//! `NAME.lock` file for as long as it lives, so garbage collection can tell an area whose
//! process died (the lock can be taken) from one still in use.

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};

use crate::blobs::BlobWriter;
use crate::error::{Error, Result};

pub struct Staging {
    dir: PathBuf,
    lock_path: PathBuf,
    _lock: File,
}

impl Staging {
    pub(crate) fn new(tmp: &Path) -> Result<Staging> {
        // The areas of processes killed earlier go now, so a killed pull or build does not
        // hold its space until the next garbage collection.
        sweep_dead(tmp);
        // Create the lock file first and hold it before the directory exists, so the area is
        // never visible unlocked.
        loop {
            let name = format!("stage-{:016x}", random_u64());
            let lock_path = tmp.join(format!("{name}.lock"));
            let lock = match OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&lock_path)
            {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(Error::io(&lock_path, e)),
            };
            lock.lock().map_err(|e| Error::io(&lock_path, e))?;
            let dir = tmp.join(&name);
            fs::create_dir(&dir).map_err(|e| Error::io(&dir, e))?;
            return Ok(Staging {
                dir,
                lock_path,
                _lock: lock,
            });
        }
    }

    /// The staging directory; everything in it is removed when the area is dropped.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// A new empty directory inside the area (for unpacking one layer).
    pub fn new_dir(&self, name: &str) -> Result<PathBuf> {
        let p = self.dir.join(name);
        fs::create_dir(&p).map_err(|e| Error::io(&p, e))?;
        Ok(p)
    }

    /// A writer that hashes what it is given into a staged blob.
    pub fn blob_writer(&self) -> Result<BlobWriter> {
        BlobWriter::create(&self.dir)
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = remove_tree(&self.dir);
        let _ = fs::remove_file(&self.lock_path);
    }
}

/// Removes the staging areas under `tmp` whose process is gone: those whose directory exists
/// (so their process had locked the lock file before making it) and whose lock can be taken.
/// A lock file without its directory may be another process's area being made: left.
fn sweep_dead(tmp: &Path) {
    let Ok(rd) = fs::read_dir(tmp) else {
        return;
    };
    for e in rd.flatten() {
        let path = e.path();
        let is_lock = e
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with("stage-") && n.ends_with(".lock"));
        if is_lock && path.with_extension("").is_dir() {
            remove_if_stale(&path);
        }
    }
}

/// Removes a staging area left by a process that is gone. Returns whether it was stale.
pub(crate) fn remove_if_stale(lock_path: &Path) -> bool {
    let Ok(f) = OpenOptions::new().write(true).open(lock_path) else {
        return false;
    };
    if f.try_lock().is_err() {
        return false;
    }
    let dir = lock_path.with_extension("");
    let _ = remove_tree(&dir);
    let _ = fs::remove_file(lock_path);
    true
}

/// Removes a directory tree, making read-only directories writable first (layers may hold
/// directories without write permission).
pub(crate) fn remove_tree(p: &Path) -> std::io::Result<()> {
    match fs::remove_dir_all(p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(_) => {
            use std::os::unix::fs::PermissionsExt;
            for entry in walk_dirs(p) {
                let _ = fs::set_permissions(&entry, fs::Permissions::from_mode(0o700));
            }
            fs::remove_dir_all(p)
        }
    }
}

fn walk_dirs(p: &Path) -> Vec<PathBuf> {
    let mut out = vec![p.to_path_buf()];
    let mut i = 0;
    while i < out.len() {
        if let Ok(rd) = fs::read_dir(&out[i]) {
            for e in rd.flatten() {
                if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    out.push(e.path());
                }
            }
        }
        i += 1;
    }
    out
}

pub(crate) fn random_u64() -> u64 {
    let mut buf = [0u8; 8];
    if let Ok(mut f) = File::open("/dev/urandom") {
        use std::io::Read;
        if f.read_exact(&mut buf).is_ok() {
            return u64::from_le_bytes(buf);
        }
    }
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    t ^ ((std::process::id() as u64) << 32)
}
