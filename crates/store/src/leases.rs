//! Leases (containerd's word): the images a running process builds on, which `image prune`
//! and `rmi` in other processes must leave alone until it is done, as Docker's daemon keeps
//! what a running build references.
//!
//! A store handle that holds anything owns one file `ROOT/leases/N.lease`, exclusively
//! locked for as long as the handle lives, one image ID per line, appended under the store
//! lock after checking the image is there. A reader (under the store lock too) takes the IDs
//! of the files it cannot lock; a file it can lock belongs to no live handle and is skipped.
//! So a lease is never lost to a race: an image is either gone before it is held, and holding
//! it fails, or held before any remover looks.
//!
//! The files are slots, used again rather than made and removed for every command: a handle
//! takes the first one it can lock (made if missing) and empties it, and empties it again
//! when it drops. Every build holds its images, and a file made and removed per build is an
//! inode allocated and freed per build, which ext4 without a journal makes slower the more
//! inodes were freed in the last 30 seconds (it skips recently freed ones).

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use oci::Digest;

use crate::error::{Error, Result};

/// The lease slot of one store handle, emptied and unlocked when it drops.
pub(crate) struct Lease {
    path: PathBuf,
    file: File,
    held: HashSet<Digest>,
}

impl Lease {
    /// Takes the first free slot (one no live handle has locked), emptied. Called under the
    /// store lock, so no reader looks at a slot between its being taken and emptied.
    fn create(root: &Path) -> Result<Lease> {
        let dir = root.join("leases");
        fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        for n in 0u32.. {
            let path = dir.join(format!("{n}.lease"));
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|e| Error::io(&path, e))?;
            match file.try_lock() {
                Ok(()) => {}
                Err(std::fs::TryLockError::WouldBlock) => continue,
                Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(&path, e)),
            }
            // What a handle that died left in it.
            file.set_len(0).map_err(|e| Error::io(&path, e))?;
            return Ok(Lease {
                path,
                file,
                held: HashSet::new(),
            });
        }
        unreachable!("a free lease slot is always found")
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
    /// Empties the slot; closing the file then unlocks it.
    fn drop(&mut self) {
        let _ = self.file.set_len(0);
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
/// own removals may ignore). Call under the store lock.
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
            // A free slot (its holder dropped it, or died); a file named as earlier versions
            // named theirs (a random number in hex) is not used again, and goes.
            let slot = path
                .file_stem()
                .and_then(|s| s.to_str())
                .is_some_and(|s| s.parse::<u32>().is_ok());
            if !slot {
                let _ = fs::remove_file(&path);
            }
            continue;
        }
        let text = fs::read_to_string(&path).unwrap_or_default();
        out.extend(text.lines().filter_map(|l| Digest::from_str(l.trim()).ok()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> Digest {
        Digest::of(&[n])
    }

    #[test]
    fn slots_are_taken_once_emptied_and_used_again() {
        let root = tempfile::tempdir().unwrap();
        let (mut a, mut b) = (None, None);
        hold(root.path(), &mut a, &id(1)).unwrap();
        hold(root.path(), &mut b, &id(2)).unwrap();
        let (pa, pb) = (
            a.as_ref().unwrap().path.clone(),
            b.as_ref().unwrap().path.clone(),
        );
        assert_ne!(pa, pb, "two live handles share a slot");
        assert_eq!(
            held_images(root.path(), a.as_ref()).unwrap(),
            HashSet::from([id(2)])
        );
        assert_eq!(
            held_images(root.path(), None).unwrap(),
            HashSet::from([id(1), id(2)])
        );
        drop(a);
        assert_eq!(
            fs::read_to_string(&pa).unwrap(),
            "",
            "a dropped slot keeps its IDs"
        );
        assert_eq!(
            held_images(root.path(), None).unwrap(),
            HashSet::from([id(2)])
        );
        // A slot a dead holder left full is free, and emptied by the next one to take it.
        drop(b);
        fs::write(&pb, format!("{}\n", id(3))).unwrap();
        assert!(held_images(root.path(), None).unwrap().is_empty());
        let (mut c, mut d) = (None, None);
        hold(root.path(), &mut c, &id(4)).unwrap();
        hold(root.path(), &mut d, &id(5)).unwrap();
        let mut slots: Vec<PathBuf> = fs::read_dir(root.path().join("leases"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        slots.sort();
        assert_eq!(slots, vec![pa, pb], "slots were not used again");
        assert_eq!(
            held_images(root.path(), None).unwrap(),
            HashSet::from([id(4), id(5)])
        );
    }

    #[test]
    fn a_lease_file_of_an_earlier_version_left_by_a_dead_process_goes() {
        let root = tempfile::tempdir().unwrap();
        let old = root.path().join("leases/597068dd771fc602.lease");
        fs::create_dir_all(old.parent().unwrap()).unwrap();
        fs::write(&old, format!("{}\n", id(1))).unwrap();
        assert!(held_images(root.path(), None).unwrap().is_empty());
        assert!(!old.exists());
    }
}
