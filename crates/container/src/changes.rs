//! A container's changes: `diff` (A/C/D lines read from the writable layer), `commit` (the
//! writable layer as a new image layer on the container's image) and `export` (a flat tar of
//! the merged root filesystem).

use std::ffi::CString;
use std::fmt;
use std::fs;
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use oci::{Digest, History};
use store::NewImage;

use crate::error::{Error, Result};
use crate::lifecycle::Containers;

/// What happened to a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Added,
    Changed,
    Deleted,
}

/// One line of `docker diff`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub kind: ChangeKind,
    /// Absolute path inside the container.
    pub path: String,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let k = match self.kind {
            ChangeKind::Added => 'A',
            ChangeKind::Changed => 'C',
            ChangeKind::Deleted => 'D',
        };
        write!(f, "{k} {}", self.path)
    }
}

/// `docker commit` options.
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    /// `REPOSITORY[:TAG]` to tag the new image with.
    pub reference: Option<String>,
    /// `-a`.
    pub author: String,
    /// `-m`.
    pub message: String,
    /// `-c` Dockerfile instructions applied to the config.
    pub changes: Vec<String>,
}

fn is_whiteout(m: &fs::Metadata) -> bool {
    m.file_type().is_char_device() && m.rdev() == 0
}

fn is_opaque(p: &Path) -> bool {
    let Ok(c) = CString::new(p.as_os_str().as_bytes()) else {
        return false;
    };
    // `user.` when overlayfs was mounted with `userxattr` (rootless).
    [c"trusted.overlay.opaque", c"user.overlay.opaque"]
        .iter()
        .any(|name| {
            let mut v = [0u8; 4];
            // SAFETY: valid C strings and a buffer of the given length.
            let n = unsafe {
                libc::lgetxattr(c.as_ptr(), name.as_ptr(), v.as_mut_ptr().cast(), v.len())
            };
            n == 1 && v[0] == b'y'
        })
}

/// Whether `rel` exists in the stacked lower directories (top first).
fn in_lowers(lowers: &[PathBuf], rel: &Path) -> bool {
    for l in lowers {
        if let Ok(m) = fs::symlink_metadata(l.join(rel)) {
            return !is_whiteout(&m);
        }
    }
    false
}

/// Names in the lowers' merged view of directory `rel` (top first, stopping at opaque ones).
fn lower_children(lowers: &[PathBuf], rel: &Path) -> Vec<String> {
    let mut names = std::collections::BTreeSet::new();
    let mut gone = std::collections::BTreeSet::new();
    for l in lowers {
        let d = l.join(rel);
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            match e.metadata() {
                Ok(m) if is_whiteout(&m) => {
                    gone.insert(n);
                }
                _ => {
                    if !gone.contains(&n) {
                        names.insert(n);
                    }
                }
            }
        }
        if is_opaque(&d) {
            break;
        }
    }
    names.into_iter().collect()
}

fn walk(
    upper: &Path,
    rel: &Path,
    lowers: &[PathBuf],
    all_added: bool,
    out: &mut Vec<Change>,
) -> Result<()> {
    let dir = upper.join(rel);
    let mut entries: Vec<(String, fs::Metadata)> = Vec::new();
    for e in fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))? {
        let e = e.map_err(|e| Error::io(&dir, e))?;
        let m = e.metadata().map_err(|err| Error::io(e.path(), err))?;
        entries.push((e.file_name().to_string_lossy().into_owned(), m));
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let mut deleted = Vec::new();
    for (name, m) in &entries {
        let r = rel.join(name);
        let path = format!("/{}", r.display());
        if is_whiteout(m) {
            deleted.push(path);
            continue;
        }
        let existed = !all_added && in_lowers(lowers, &r);
        let kind = if existed {
            ChangeKind::Changed
        } else {
            ChangeKind::Added
        };
        out.push(Change { kind, path });
        if m.is_dir() {
            let opaque = existed && is_opaque(&upper.join(&r));
            walk(upper, &r, lowers, !existed || opaque, out)?;
            if opaque {
                for n in lower_children(lowers, &r) {
                    if !entries_has(&upper.join(&r), &n) {
                        deleted.push(format!("/{}", r.join(&n).display()));
                    }
                }
            }
        }
    }
    for path in deleted {
        out.push(Change {
            kind: ChangeKind::Deleted,
            path,
        });
    }
    Ok(())
}

fn entries_has(dir: &Path, name: &str) -> bool {
    fs::symlink_metadata(dir.join(name)).is_ok()
}

impl Containers {
    /// `docker diff`: the changes in the container's writable layer against its image (the
    /// init layer's stubs never show).
    pub fn diff(&mut self, name: &str) -> Result<Vec<Change>> {
        let rec = self.find(name)?;
        let upper = self.snapshots.upper_dir(&rec.snapshot)?;
        let lowers = self.lowers(&rec.image_id)?;
        let mut out = Vec::new();
        walk(&upper, Path::new(""), &lowers, false, &mut out)?;
        Ok(out)
    }

    /// `docker commit`: a new image whose parent is the container's image, whose top layer
    /// is exactly the writable layer (whiteouts included) and whose config is the
    /// container's, changed by `-c`. Returns the new image ID.
    pub fn commit(&mut self, name: &str, o: &CommitOptions) -> Result<Digest> {
        let rec = self.find(name)?;
        let stored = Self::stored(&rec)?;
        let tag = match &o.reference {
            Some(r) => Some(image::parse_name(r)?),
            None => None,
        };
        let mut cfg = image::read_config(&self.store, &rec.image_id)?;
        let upper = self.snapshots.upper_dir(&rec.snapshot)?;
        let empty = fs::read_dir(&upper)
            .map_err(|e| Error::io(&upper, e))?
            .next()
            .is_none();
        let staging = self.store.stage()?;
        let mut layer = None;
        if !empty {
            // The upper dir stays the container's: the layer is its tar, unpacked again.
            let tar_path = staging.path().join("layer.tar");
            let mut tar = fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&tar_path)
                .map_err(|e| Error::io(&tar_path, e))?;
            let d = layer::write_layer(&upper, &mut tar, layer::Compression::None)?;
            tar.seek(SeekFrom::Start(0))
                .map_err(|e| Error::io(&tar_path, e))?;
            let staged = image::ingest_layer(
                &staging,
                &format!("the writable layer of {}", rec.id),
                std::io::BufReader::new(tar),
                None,
                Some(&d.diff_id),
            )?;
            let _ = fs::remove_file(&tar_path);
            layer = Some(staged);
        }
        let mut cc = stored.config.clone();
        for c in &o.changes {
            image::apply_change(&mut cc, c)?;
        }
        let created = oci::now();
        cfg.config = Some(cc);
        cfg.container = rec.id.clone();
        cfg.container_config = Some(stored.config.clone());
        cfg.created = Some(created.clone());
        cfg.author = o.author.clone();
        cfg.comment = o.message.clone();
        cfg.docker_version = image::STRATA_VERSION.to_string();
        cfg.history.push(History {
            created: Some(created.clone()),
            author: o.author.clone(),
            created_by: stored.config.cmd.clone().unwrap_or_default().join(" "),
            comment: o.message.clone(),
            empty_layer: layer.is_none(),
            ..Default::default()
        });
        if let Some(l) = &layer {
            let rootfs = cfg.rootfs.get_or_insert_with(Default::default);
            rootfs.diff_ids.push(l.record.diff_id);
        }
        let bytes = cfg.to_docker_json();
        let layers = cfg.diff_ids().to_vec();
        let mut p = self.store.publish()?;
        if let Some(l) = layer {
            l.publish(&mut p)?;
        }
        let id = p.add_image(&NewImage {
            config: &bytes,
            layers: &layers,
            parent: Some(rec.image_id),
            created: &created,
        })?;
        if let Some(t) = &tag {
            p.tag(&t.to_string(), &id)?;
        }
        p.commit()?;
        drop(staging);
        if let Some(t) = &tag {
            image::record_event(&self.store, "tag", &id, Some(&t.familiar()));
        }
        self.record_event(
            "commit",
            &rec,
            &[
                ("comment", o.message.clone()),
                ("imageID", id.to_string()),
                (
                    "imageRef",
                    tag.as_ref().map(|t| t.familiar()).unwrap_or_default(),
                ),
            ],
        );
        Ok(id)
    }

    /// `docker export`: one flat tar of the container's merged root filesystem (the init
    /// layer's stubs included, no whiteouts).
    pub fn export(&mut self, name: &str, out: impl Write) -> Result<()> {
        let rec = self.find(name)?;
        let rootfs = self.rootfs(&rec.id);
        let mounted = !snapshot::mounts_under(&rootfs)?.is_empty();
        let target = if mounted {
            rootfs
        } else {
            let t = self
                .state_dir(&rec.id)
                .join(format!("export-{}", std::process::id()));
            fs::create_dir_all(&t).map_err(|e| Error::io(&t, e))?;
            let mounts = self.snapshots.mounts(&rec.snapshot)?;
            snapshot::mount_all(&mounts, &t)?;
            t
        };
        let r = layer::archive_tree(&target, out);
        if !mounted {
            snapshot::unmount_all(&target)?;
            let _ = fs::remove_dir(&target);
        }
        r?;
        self.record_event("export", &rec, &[]);
        Ok(())
    }
}
