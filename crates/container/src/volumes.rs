//! Docker's volumes with the `local` driver: a directory `ROOT/volumes/NAME/_data` and a
//! record in the store (driver, labels, options). Whether a volume is in use comes from the
//! containers that mount it ([`store::Store::volume_users`]).
//!
//! The local driver's bind form (`--opt type=none --opt o=bind --opt device=PATH`) mounts
//! `PATH` wherever the volume is mounted; other driver options are refused.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use store::VolumeRecord;

use crate::error::{Error, Result};
use crate::lifecycle::Containers;
use crate::mounts::{self, validate_volume_name, MountPoint, MountType};

/// What `volume create` asks for.
#[derive(Debug, Clone, Default)]
pub struct VolumeRequest {
    /// None: a random 64-hex name, as Docker's.
    pub name: Option<String>,
    /// `local` when None.
    pub driver: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub options: BTreeMap<String, String>,
}

/// A volume as `volume ls`/`inspect` show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    pub name: String,
    pub driver: String,
    pub labels: BTreeMap<String, String>,
    pub options: BTreeMap<String, String>,
    /// RFC 3339, seconds (Docker's `CreatedAt`).
    pub created: String,
    /// `ROOT/volumes/NAME/_data`.
    pub mountpoint: PathBuf,
}

impl Volume {
    /// Docker's `volume inspect` object.
    pub fn inspect(&self) -> Value {
        let map = |m: &BTreeMap<String, String>| {
            if m.is_empty() {
                Value::Null
            } else {
                json!(m)
            }
        };
        json!({
            "CreatedAt": self.created,
            "Driver": self.driver,
            "Labels": map(&self.labels),
            "Mountpoint": self.mountpoint.display().to_string(),
            "Name": self.name,
            "Options": map(&self.options),
            "Scope": "local",
        })
    }

    /// The directory mounted into containers: the bind form's device, else `_data`.
    pub fn host_source(&self) -> PathBuf {
        match self.options.get("device") {
            Some(d) => PathBuf::from(d),
            None => self.mountpoint.clone(),
        }
    }
}

/// Docker's local driver options: `type`, `o`, `device` (and `size` with some filesystems).
/// strata mounts only the bind form.
fn check_options(name: &str, o: &BTreeMap<String, String>) -> Result<()> {
    for k in o.keys() {
        if !["type", "o", "device", "size"].contains(&k.as_str()) {
            return Err(Error::Invalid(format!(
                "create {name}: invalid option: {k:?}"
            )));
        }
    }
    if o.is_empty() {
        return Ok(());
    }
    let bind = o.get("type").map(String::as_str) == Some("none")
        && o.get("o")
            .is_some_and(|v| v.split(',').any(|x| x == "bind" || x == "rbind"))
        && o.get("device").is_some_and(|d| d.starts_with('/'))
        && !o.contains_key("size");
    if !bind {
        return Err(Error::Invalid(format!(
            "create {name}: strata's local volume driver supports only the bind form: --opt type=none --opt o=bind --opt device=/ABSOLUTE/PATH"
        )));
    }
    Ok(())
}

fn to_json(m: &BTreeMap<String, String>) -> String {
    serde_json::to_string(m).unwrap_or_else(|_| "{}".into())
}

fn from_json(s: &str) -> BTreeMap<String, String> {
    serde_json::from_str(s).unwrap_or_default()
}

/// Sum of the sizes of the regular files under `dir` (Docker's `directory.Size`), each inode
/// once; symlinks are not followed.
pub(crate) fn dir_size(dir: &Path) -> u64 {
    fn walk(p: &Path, seen: &mut std::collections::HashSet<(u64, u64)>) -> u64 {
        let Ok(rd) = fs::read_dir(p) else { return 0 };
        let mut n = 0;
        for e in rd.flatten() {
            let Ok(m) = e.metadata() else { continue };
            if m.is_dir() {
                n += walk(&e.path(), seen);
            } else if m.is_file() && seen.insert((m.dev(), m.ino())) {
                n += m.len();
            }
        }
        n
    }
    walk(dir, &mut Default::default())
}

impl Containers {
    /// `ROOT/volumes`.
    pub fn volumes_dir(&self) -> PathBuf {
        store::Layout::new(&self.root).volumes()
    }

    fn volume_of(&self, r: VolumeRecord) -> Volume {
        Volume {
            mountpoint: self.volumes_dir().join(&r.name).join("_data"),
            labels: from_json(&r.labels),
            options: from_json(&r.options),
            name: r.name,
            driver: r.driver,
            created: r.created,
        }
    }

    /// Makes `ROOT/volumes/NAME/_data` (Docker's modes: 0701 above `_data`, 0755 for it).
    fn volume_dirs(&self, name: &str) -> Result<()> {
        let top = self.volumes_dir();
        for (dir, mode) in [
            (top.clone(), 0o701),
            (top.join(name), 0o701),
            (top.join(name).join("_data"), 0o755),
        ] {
            match fs::DirBuilder::new().mode(mode).create(&dir) {
                Ok(()) => {
                    fs::set_permissions(&dir, fs::Permissions::from_mode(mode))
                        .map_err(|e| Error::io(&dir, e))?;
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let m = fs::symlink_metadata(&dir).map_err(|e| Error::io(&dir, e))?;
                    if !m.is_dir() {
                        return Err(Error::Invalid(format!(
                            "{}: not a directory",
                            dir.display()
                        )));
                    }
                }
                Err(e) => return Err(Error::io(&dir, e)),
            }
        }
        Ok(())
    }

    /// The record of a new volume, its directory made (the caller records it).
    pub(crate) fn prepare_volume(&self, req: &VolumeRequest) -> Result<VolumeRecord> {
        let rec = Self::volume_record(req)?;
        self.volume_dirs(&rec.name)?;
        Ok(rec)
    }

    /// Makes the directories of volumes about to be recorded.
    pub(crate) fn make_volume_dirs(&self, recs: &[VolumeRecord]) -> Result<()> {
        for r in recs {
            self.volume_dirs(&r.name)?;
        }
        Ok(())
    }

    /// The record of a new volume, checked as Docker's local driver checks it.
    fn volume_record(req: &VolumeRequest) -> Result<VolumeRecord> {
        let name = match &req.name {
            Some(n) => n.clone(),
            None => crate::config::new_id(),
        };
        validate_volume_name(&name)?;
        let driver = req.driver.clone().unwrap_or_else(|| "local".into());
        if driver != "local" {
            return Err(Error::Invalid(format!(
                "create {name}: error looking up volume plugin {driver}: plugin \"{driver}\" not found"
            )));
        }
        check_options(&name, &req.options)?;
        Ok(VolumeRecord {
            name,
            driver,
            labels: to_json(&req.labels),
            options: to_json(&req.options),
            created: chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        })
    }

    /// `volume create`: a new volume, or the existing one of that name (as Docker).
    pub fn volume_create(&mut self, req: &VolumeRequest) -> Result<Volume> {
        let v = match req
            .name
            .as_deref()
            .map(|n| self.store.volume(n))
            .transpose()?
        {
            Some(Some(v)) => self.volume_of(v),
            _ => {
                let rec = self.prepare_volume(req)?;
                let mut p = self.store.publish()?;
                let rec = p.add_volume(&rec)?;
                p.commit()?;
                self.volume_of(rec)
            }
        };
        // Docker's volume service logs `create` for an existing volume too.
        self.record_volume_event("create", &v.name, &[]);
        Ok(v)
    }

    /// Records a volume event with Docker's attributes (`driver`, and `extra`).
    pub(crate) fn record_volume_event(&self, action: &str, name: &str, extra: &[(&str, String)]) {
        let e = store::events::Event::volume(action, name)
            .attr("driver", "local")
            .attrs(extra.iter().map(|(k, v)| (*k, v.as_str())));
        store::events::record(&self.store, e);
    }

    /// The `create`, `mount` or `unmount` events of a container's volumes, as Docker's
    /// daemon logs them when it makes the container, starts it and sees it end.
    pub(crate) fn record_volume_events(&self, action: &str, id: &str, points: &[MountPoint]) {
        for m in points.iter().filter(|m| m.kind == MountType::Volume) {
            let extra = match action {
                "mount" => vec![
                    ("container", id.to_string()),
                    ("destination", m.destination.clone()),
                    ("propagation", String::new()),
                    ("read/write", m.rw.to_string()),
                ],
                "unmount" => vec![("container", id.to_string())],
                _ => Vec::new(),
            };
            self.record_volume_event(action, &m.name, &extra);
        }
    }

    /// A volume by name (Docker's `get NAME: no such volume`).
    pub fn volume(&self, name: &str) -> Result<Volume> {
        match self.store.volume(name)? {
            Some(v) => Ok(self.volume_of(v)),
            None => Err(store::Error::VolumeNotFound(name.to_string()).into()),
        }
    }

    /// Every volume, by name.
    pub fn volumes(&self) -> Result<Vec<Volume>> {
        Ok(self
            .store
            .volumes()?
            .into_iter()
            .map(|v| self.volume_of(v))
            .collect())
    }

    /// The containers (IDs) that mount a volume.
    pub fn volume_users(&self, name: &str) -> Result<Vec<String>> {
        Ok(self.store.volume_users(name)?)
    }

    /// Bytes of the files in a volume's `_data`.
    pub fn volume_size(&self, v: &Volume) -> u64 {
        dir_size(&v.mountpoint)
    }

    /// `volume rm`: refused while a container uses it (`force` does not change that, as
    /// Docker); a missing volume is an error unless `force`.
    pub fn volume_remove(&mut self, name: &str, force: bool) -> Result<()> {
        let mut p = self.store.publish()?;
        match p.delete_volume(name) {
            Ok(()) => {}
            Err(store::Error::VolumeNotFound(_)) if force => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        p.commit()?;
        self.record_volume_event("destroy", name, &[]);
        let dir = self.volumes_dir().join(name);
        match fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(&dir, e)),
        }
    }

    /// `volume prune`: removes every volume no container uses that `keep` does not keep;
    /// returns the names removed and the bytes reclaimed.
    pub fn volume_prune(&mut self, keep: impl Fn(&Volume) -> bool) -> Result<(Vec<String>, u64)> {
        let mut removed = Vec::new();
        let mut total = 0;
        for v in self.volumes()? {
            if keep(&v) || !self.store.volume_users(&v.name)?.is_empty() {
                continue;
            }
            let size = self.volume_size(&v);
            match self.volume_remove(&v.name, false) {
                Ok(()) => {
                    removed.push(v.name);
                    total += size;
                }
                // Taken by a container created meanwhile.
                Err(Error::Store(store::Error::VolumeInUse { .. })) => {}
                Err(e) => return Err(e),
            }
        }
        Ok((removed, total))
    }

    /// Copies what the container's root filesystem (mounted at `rootfs`) holds at
    /// `destination` into an empty volume directory `data`, with owners, modes and times,
    /// as Docker's copy-up (`copyExistingContents`, then the directory's owner and mode).
    /// The source is resolved inside the root; a volume that is not empty is left alone.
    pub(crate) fn copy_up(rootfs: &Path, destination: &str, data: &Path) -> Result<()> {
        let empty = fs::read_dir(data)
            .map_err(|e| Error::io(data, e))?
            .next()
            .is_none();
        if !empty {
            return Ok(());
        }
        let src = runtime::secure_join(rootfs, destination);
        let Ok(meta) = fs::symlink_metadata(&src) else {
            return Ok(());
        };
        if !meta.is_dir() || !src.starts_with(rootfs) {
            return Ok(());
        }
        let (r, w) = std::io::pipe().map_err(|e| Error::io(data, e))?;
        let src2 = src.clone();
        let writer = std::thread::spawn(move || layer::archive_tree(&src2, w).map(|_| ()));
        let applied = layer::apply_layer_with(
            r,
            data,
            &layer::ApplyOptions {
                whiteouts: layer::WhiteoutMode::Delete,
                ..Default::default()
            },
        );
        let written = writer
            .join()
            .map_err(|_| Error::Invalid("copying into the volume failed".into()))?;
        written?;
        applied?;
        std::os::unix::fs::lchown(data, Some(meta.uid()), Some(meta.gid()))
            .map_err(|e| Error::io(data, e))?;
        fs::set_permissions(data, fs::Permissions::from_mode(meta.mode() & 0o7777))
            .map_err(|e| Error::io(data, e))?;
        Ok(())
    }
}

impl Containers {
    /// A new container's mount points, in Docker's order of precedence: `--volumes-from`,
    /// then `-v` and `--mount` (which replace what they share a destination with), then an
    /// anonymous volume for each `VOLUME` of the image and `-v /path` that nothing mounts.
    /// Anonymous volumes are named now; returns the records of the volumes to create
    /// (their directories are made by [`Containers::make_volume_dirs`]).
    pub(crate) fn plan_mounts(
        &self,
        o: &crate::CreateOptions,
        img: &oci::ImageConfig,
    ) -> Result<(Vec<MountPoint>, Vec<VolumeRecord>)> {
        let user = mounts::user_mounts(&o.volumes, &o.mounts)?;
        let mut points: Vec<MountPoint> = Vec::new();
        let put = |points: &mut Vec<MountPoint>, m: MountPoint| match points
            .iter_mut()
            .find(|p| p.destination == m.destination)
        {
            Some(slot) => *slot = m,
            None => points.push(m),
        };
        for spec in &o.volumes_from {
            let (name, rw) = mounts::parse_volumes_from(spec)?;
            let rec = self.find(name)?;
            let stored = Self::stored(&rec)?;
            for mut m in stored.points() {
                m.rw = m.rw && rw.unwrap_or(true);
                m.mode = String::new();
                m.copy_data = false;
                m.create_source = false;
                m.spec = None;
                put(&mut points, m);
            }
        }
        for m in user {
            put(&mut points, m);
        }
        let mut anonymous: std::collections::BTreeSet<String> = img
            .config
            .as_ref()
            .and_then(|c| c.volumes.clone())
            .unwrap_or_default()
            .iter()
            .map(|v| mounts::clean(v))
            .collect();
        anonymous.extend(mounts::anonymous_flags(&o.volumes));
        for d in anonymous {
            if !points.iter().any(|p| p.destination == d) {
                points.push(mounts::anonymous(&d));
            }
        }
        let mut new: Vec<VolumeRecord> = Vec::new();
        for m in points.iter_mut().filter(|m| m.kind == MountType::Volume) {
            if m.name.is_empty() {
                m.name = crate::config::new_id();
            }
            m.source = self
                .volumes_dir()
                .join(&m.name)
                .join("_data")
                .display()
                .to_string();
            if self.store.volume(&m.name)?.is_none() && !new.iter().any(|v| v.name == m.name) {
                // `--mount`'s volume-label and volume-opt apply to a volume it creates.
                let vo = m.spec.as_ref().and_then(|s| s.get("VolumeOptions"));
                let map = |v: Option<&serde_json::Value>| -> BTreeMap<String, String> {
                    v.and_then(|v| v.as_object())
                        .map(|o| {
                            o.iter()
                                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                                .collect()
                        })
                        .unwrap_or_default()
                };
                new.push(Self::volume_record(&VolumeRequest {
                    name: Some(m.name.clone()),
                    driver: None,
                    labels: map(vo.and_then(|v| v.get("Labels"))),
                    options: map(vo.and_then(|v| v.pointer("/DriverConfig/Options"))),
                })?);
            }
        }
        Ok((points, new))
    }

    /// The runtime mounts of a container about to start, parents first: its binds (a
    /// missing `-v` host directory is made, as Docker's), volumes, tmpfs mounts and
    /// `--tmpfs`.
    pub(crate) fn runtime_mounts(
        &self,
        points: &[MountPoint],
        o: &crate::CreateOptions,
    ) -> Result<Vec<runtime::MountSpec>> {
        let mut out = Vec::new();
        for m in points {
            let kind = match m.kind {
                MountType::Bind => {
                    let src = PathBuf::from(&m.source);
                    if m.create_source && fs::symlink_metadata(&src).is_err() {
                        fs::DirBuilder::new()
                            .recursive(true)
                            .mode(0o755)
                            .create(&src)
                            .map_err(|e| Error::io(&src, e))?;
                    }
                    runtime::MountKind::Bind { source: src }
                }
                MountType::Volume => {
                    let v = self.volume(&m.name)?;
                    let source = v.host_source();
                    if !source.is_dir() {
                        return Err(Error::Invalid(format!(
                            "error while mounting volume '{}': failed to mount local volume: mount {}:{}, flags: 0x1000: no such file or directory",
                            v.mountpoint.display(),
                            source.display(),
                            v.mountpoint.display()
                        )));
                    }
                    runtime::MountKind::Bind { source }
                }
                MountType::Tmpfs => runtime::MountKind::Tmpfs {
                    options: m.tmpfs_options.clone(),
                },
            };
            out.push(runtime::MountSpec {
                kind,
                destination: m.destination.clone(),
                readonly: !m.rw,
            });
        }
        out.extend(crate::config::tmpfs_mounts(o)?);
        out.sort_by_key(|m| m.destination.split('/').filter(|c| !c.is_empty()).count());
        Ok(out)
    }

    /// Fills the empty volumes of a container that wants the image's content copied up
    /// (its root filesystem mounted at `rootfs`).
    pub(crate) fn populate_volumes(&self, points: &[MountPoint], rootfs: &Path) -> Result<()> {
        for m in points {
            if m.kind != MountType::Volume || !m.copy_data {
                continue;
            }
            let v = self.volume(&m.name)?;
            Self::copy_up(rootfs, &m.destination, &v.host_source())?;
        }
        Ok(())
    }

    /// Removes the anonymous volumes of a removed container (`rm -v`, `--rm`); volumes still
    /// used by another container stay, as Docker's.
    pub(crate) fn remove_anonymous_volumes(&mut self, points: &[MountPoint]) -> Result<()> {
        for m in points {
            if m.kind != MountType::Volume || m.named {
                continue;
            }
            match self.volume_remove(&m.name, true) {
                Ok(()) | Err(Error::Store(store::Error::VolumeInUse { .. })) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

impl Containers {
    /// The runtime mounts of a container being created, for checking its options: nothing
    /// is made on the host yet and volumes point at their directories.
    pub(crate) fn runtime_mounts_unchecked(
        &self,
        points: &[MountPoint],
        o: &crate::CreateOptions,
    ) -> Result<Vec<runtime::MountSpec>> {
        let mut out: Vec<runtime::MountSpec> = points
            .iter()
            .map(|m| runtime::MountSpec {
                kind: match m.kind {
                    MountType::Tmpfs => runtime::MountKind::Tmpfs {
                        options: m.tmpfs_options.clone(),
                    },
                    _ => runtime::MountKind::Bind {
                        source: PathBuf::from(&m.source),
                    },
                },
                destination: m.destination.clone(),
                readonly: !m.rw,
            })
            .collect();
        out.extend(crate::config::tmpfs_mounts(o)?);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_bind_form_is_accepted() {
        let o = |kv: &[(&str, &str)]| {
            kv.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>()
        };
        assert!(check_options("v", &o(&[])).is_ok());
        assert!(check_options(
            "v",
            &o(&[("type", "none"), ("o", "bind"), ("device", "/tmp")])
        )
        .is_ok());
        assert_eq!(
            check_options("v", &o(&[("foo", "bar")]))
                .unwrap_err()
                .to_string(),
            "create v: invalid option: \"foo\""
        );
        assert!(
            check_options("v", &o(&[("type", "tmpfs"), ("device", "tmpfs")]))
                .unwrap_err()
                .to_string()
                .contains("supports only the bind form")
        );
    }
}
