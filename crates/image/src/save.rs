//! `save`: one tar that is at once an OCI image layout and a Docker archive, as Docker 25+
//! writes it, so that Docker 20.10's `docker load`, skopeo (`docker-archive:`, and `oci:` once
//! untarred) and umoci all read it:
//!
//! ```text
//! oci-layout                      {"imageLayoutVersion":"1.0.0"}
//! index.json                      one OCI manifest descriptor per name (or per unnamed image)
//! blobs/sha256/<config>           the config, byte for byte as stored (its digest is the ID)
//! blobs/sha256/<manifest>         OCI manifest whose layers are the uncompressed tars
//! blobs/sha256/<diff_id>          each layer as an uncompressed tar
//! manifest.json                   Docker's list: Config, RepoTags, Layers (paths above)
//! repositories                    {"repo":{"tag":"<top layer id>"}}
//! ```
//!
//! Entries carry the epoch as mtime, so saving the same images twice gives the same bytes.

use std::collections::{BTreeMap, HashSet};
use std::io::{self, Read, Write};

use oci::{Digest, Reference};
use serde_json::json;
use store::{ImageRecord, Store};

use crate::error::{Error, Result};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";

/// What to save: an image and the names it is saved under (full references).
pub struct SaveItem {
    pub id: Digest,
    pub names: Vec<Reference>,
}

/// Works out what `save NAME…` writes, as Docker's daemon does: a name with a tag saves
/// that image under that name; a repository without a tag saves every local tag of it;
/// an ID saves the image under all its tags.
pub fn plan(store: &Store, names: &[String]) -> Result<Vec<SaveItem>> {
    let mut items: Vec<SaveItem> = Vec::new();
    let mut add = |id: Digest, names: Vec<Reference>| match items.iter_mut().find(|i| i.id == id) {
        Some(item) => {
            for r in names {
                if !item.names.iter().any(|x| x.to_string() == r.to_string()) {
                    item.names.push(r);
                }
            }
        }
        None => items.push(SaveItem { id, names }),
    };
    for n in names {
        // A repository alone (not an image ID): all its tags.
        let bare = Reference::parse_bare(n).ok();
        if let Some(r) = bare.filter(|r| r.tag.is_none() && r.digest.is_none()) {
            if crate::resolve::by_id(store, n)?.is_none() {
                let tags = crate::resolve::local_tags(store, &r)?;
                if tags.is_empty() {
                    return Err(Error::NoSuchImage(n.clone()));
                }
                for t in tags {
                    let id = crate::resolve(store, &t.to_string())?;
                    add(id, vec![t]);
                }
                continue;
            }
        }
        let id = crate::resolve(store, n).map_err(|e| match e {
            // A name with a tag that no image has.
            Error::NoSuchImage(_)
                if crate::resolve::parse_name(n).is_ok_and(|r| {
                    r.digest.is_none() && n.rsplit('/').next().is_some_and(|l| l.contains(':'))
                }) =>
            {
                Error::NoSuchReference(n.clone())
            }
            e => e,
        })?;
        let img = store
            .image(&id)?
            .ok_or_else(|| Error::NoSuchImage(n.clone()))?;
        let by_name = crate::resolve::parse_name(n)
            .ok()
            .filter(|r| r.digest.as_ref().is_none() && img.tags.contains(&r.to_string()));
        let names: Vec<Reference> = match by_name {
            Some(r) => vec![r],
            None => img
                .tags
                .iter()
                .filter_map(|t| Reference::parse(t).ok())
                .collect(),
        };
        add(id, names);
    }
    Ok(items)
}

fn header(path: &str, size: u64, mode: u32, kind: tar::EntryType) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_path(path)
        .expect("archive paths are short and relative");
    h.set_cksum();
    h
}

struct Archive<W: Write> {
    tar: tar::Builder<W>,
    written: HashSet<String>,
}

impl<W: Write> Archive<W> {
    fn dir(&mut self, path: &str) -> io::Result<()> {
        let h = header(path, 0, 0o755, tar::EntryType::Directory);
        self.tar.append(&h, io::empty())
    }
    fn file(&mut self, path: &str, data: &[u8]) -> io::Result<()> {
        if !self.written.insert(path.to_string()) {
            return Ok(());
        }
        let h = header(path, data.len() as u64, 0o644, tar::EntryType::Regular);
        self.tar.append(&h, data)
    }
    fn stream(&mut self, path: &str, size: u64, data: impl Read) -> io::Result<()> {
        if !self.written.insert(path.to_string()) {
            return Ok(());
        }
        let h = header(path, size, 0o644, tar::EntryType::Regular);
        // A stream shorter or longer than announced must fail, not write a broken archive.
        let mut counted = ExactReader {
            inner: data,
            left: size,
        };
        self.tar.append(&h, &mut counted)?;
        if counted.left != 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{path}: layer is shorter than recorded"),
            ));
        }
        // The last read is where a layer's tar is checked against its diff_id.
        if counted.inner.read(&mut [0u8; 1])? != 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{path}: layer is longer than recorded"),
            ));
        }
        Ok(())
    }
}

struct ExactReader<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for ExactReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let max = buf.len().min(self.left.min(usize::MAX as u64) as usize);
        let n = self.inner.read(&mut buf[..max])?;
        self.left -= n as u64;
        Ok(n)
    }
}

fn blob_path(d: &Digest) -> String {
    format!("blobs/sha256/{}", d.hex())
}

/// Writes the archive for `items` to `out` and records Docker's `save` events.
pub fn save(store: &Store, items: &[SaveItem], out: impl Write) -> Result<()> {
    write_archive(store, items, out)?;
    for item in items {
        crate::record_event(store, "save", &item.id, None);
    }
    Ok(())
}

/// Writes the archive for `items` to `out` (`save`, and `build --output type=oci|docker`).
pub fn write_archive(store: &Store, items: &[SaveItem], out: impl Write) -> Result<()> {
    let mut ar = Archive {
        tar: tar::Builder::new(out),
        written: HashSet::new(),
    };
    let io_err = |e: io::Error| Error::Read("writing the archive".into(), e);
    ar.dir("blobs/").map_err(io_err)?;
    ar.dir("blobs/sha256/").map_err(io_err)?;

    let mut index_manifests = Vec::new();
    let mut docker_manifest = Vec::new();
    let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for item in items {
        let img: ImageRecord = store
            .image(&item.id)?
            .ok_or_else(|| Error::NoSuchImage(item.id.to_string()))?;
        let config = store.read_blob(&img.id)?;
        ar.file(&blob_path(&img.id), &config).map_err(io_err)?;
        let mut layer_descs = Vec::new();
        let mut layer_paths = Vec::new();
        for diff_id in &img.layers {
            let rec = store
                .layer(diff_id)?
                .ok_or(store::Error::LayerNotFound(*diff_id))?;
            let path = blob_path(diff_id);
            if !ar.written.contains(&path) {
                let tar = crate::open_layer_tar(store, &rec)?;
                ar.stream(
                    &path,
                    rec.tar_size,
                    io::BufReader::with_capacity(1 << 20, tar),
                )
                .map_err(io_err)?;
            }
            layer_descs.push(json!({"mediaType": OCI_LAYER_TAR, "digest": diff_id.to_string(), "size": rec.tar_size}));
            layer_paths.push(path);
        }
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": img.id.to_string(), "size": config.len()},
            "layers": layer_descs,
        });
        let manifest_bytes = serde_json::to_vec(&manifest).expect("json values serialise");
        let manifest_digest = Digest::of(&manifest_bytes);
        ar.file(&blob_path(&manifest_digest), &manifest_bytes)
            .map_err(io_err)?;
        let desc = |annotations: Option<serde_json::Value>| {
            let mut d = json!({"mediaType": OCI_MANIFEST, "digest": manifest_digest.to_string(), "size": manifest_bytes.len()});
            if let Some(a) = annotations {
                d["annotations"] = a;
            }
            d
        };
        if item.names.is_empty() {
            index_manifests.push(desc(None));
        }
        let mut repo_tags = Vec::new();
        for r in &item.names {
            index_manifests.push(desc(Some(json!({
                "io.containerd.image.name": r.to_string(),
                "org.opencontainers.image.ref.name": r.tag.as_deref().unwrap_or("latest"),
            }))));
            repo_tags.push(r.familiar());
            if let (Some(top), Some(tag)) = (img.layers.last(), r.tag.as_deref()) {
                repositories
                    .entry(r.repository_familiar())
                    .or_default()
                    .insert(tag.to_string(), top.hex());
            }
        }
        docker_manifest.push(json!({
            "Config": blob_path(&img.id),
            "RepoTags": if repo_tags.is_empty() { serde_json::Value::Null } else { json!(repo_tags) },
            "Layers": layer_paths,
        }));
    }
    let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": index_manifests});
    ar.file("index.json", &serde_json::to_vec(&index).expect("json"))
        .map_err(io_err)?;
    ar.file(
        "manifest.json",
        &serde_json::to_vec(&docker_manifest).expect("json"),
    )
    .map_err(io_err)?;
    ar.file("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)
        .map_err(io_err)?;
    if !repositories.is_empty() {
        ar.file(
            "repositories",
            &serde_json::to_vec(&repositories).expect("json"),
        )
        .map_err(io_err)?;
    }
    ar.tar
        .into_inner()
        .map_err(io_err)?
        .flush()
        .map_err(io_err)?;
    Ok(())
}
