//! Leases (containerd's word): the images a running process builds on, which `image prune`
//! and `rmi` in other processes must leave alone until it is done, as Docker's daemon keeps
//! what a running build references.
//!
//! A store handle that holds anything owns one file `ROOT/leases/NAME.lease`, exclusively
//! locked for as long as the handle lives, one image ID per line, appended under the store
//! lock after checking the image is there. A reader (under the store lock too) takes the IDs
//! of the files it cannot lock; a file it can lock belongs to a process that died and is
//! removed. So a lease is never lost to a race: an image is either gone before it is held,
//! and holding it fails, or held before any remover looks.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use oci::Digest;

use crate::error::{Error, Result};
use crate::staging::random_u64;

/// The lease file of one store handle, removed when it drops.
pub(crate) struct Lease {
    path: PathBuf,
    file: File,
    held: HashSet<Digest>,
}

impl Lease {
    fn create(root: &Path) -> Result<Lease> {
        let dir = root.join("leases");
        fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let path = dir.join(format!("{:016x}.lease", random_u64()));
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        file.lock().map_err(|e| Error::io(&path, e))?;
        Ok(Lease {
            path,
            file,
            held: HashSet::new(),
        })
    }

    fn add(&mut self, id: &Digest) -> Result<()> {
        if self.held.insert(*id) {
            self.file
                .write_all(format!("{id}\n").as_bytes())
                .map_err(|e| Error::io(&self.path, e))?;
        }
        Ok(())
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// Adds `id` to `lease` (made on first use). The caller holds the store lock and has checked
/// that the image exists.
pub(crate) fn hold(root: &Path, lease: &mut Option<Lease>, id: &Digest) -> Result<()> {
    if lease.is_none() {
        *lease = Some(Lease::create(root)?);
    }
    lease.as_mut().map_or(Ok(()), |l| l.add(id))
}

/// The images held by live processes other than `own` (the caller's own lease, which its
/// own removals may ignore); files of dead processes are removed. Call under the store lock.
pub(crate) fn held_images(root: &Path, own: Option<&Lease>) -> Result<HashSet<Digest>> {
    let dir = root.join("leases");
    let mut out = HashSet::new();
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(Error::io(&dir, e)),
    };
    for e in entries.flatten() {
        let path = e.path();
        if path.extension().is_none_or(|x| x != "lease") || own.is_some_and(|l| l.path == path) {
            continue;
        }
        let Ok(f) = OpenOptions::new().read(true).open(&path) else {
            continue;
        };
        if f.try_lock_shared().is_ok() {
            // Its holder is gone.
            let _ = fs::remove_file(&path);
            continue;
        }
        let text = fs::read_to_string(&path).unwrap_or_default();
        out.extend(text.lines().filter_map(|l| Digest::from_str(l.trim()).ok()));
    }
    Ok(out)
}
