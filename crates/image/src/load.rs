//! `load`: images from a Docker archive (legacy `manifest.json` + `<id>/layer.tar`, or
//! Docker 25+'s combined layout) or a plain OCI image layout (as skopeo writes it), as a tar
//! or a compressed tar.
//!
//! The archive is untrusted. Its entries are unpacked into a staging area with names checked
//! to stay inside it (symlinks are remembered, never created, and resolved inside the
//! archive); every config and blob is checked against the digest that names it and every
//! layer against the diff_id its config declares. All images are published in one
//! transaction at the end, so a bad archive leaves the store exactly as it was.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};

use oci::{Digest, Reference};
use serde::Deserialize;
use store::{NewImage, Staging, Store};

use crate::error::{Error, Result};
use crate::ingest::{ingest_layer, StagedLayer};

/// What a load did, for Docker's messages.
#[derive(Debug, Default)]
pub struct Loaded {
    /// One line per image, in Docker's words (`Loaded image: busybox:latest`, `Loaded image
    /// ID: sha256:…`), preceded by a line for every tag that moved away from another image.
    pub messages: Vec<String>,
    pub images: Vec<Digest>,
}

/// The files of an unpacked archive, with its symlinks resolved inside it.
struct ArchiveDir {
    root: PathBuf,
    links: HashMap<String, String>,
    /// Entries that look like layers (a tar, gzip or zstd stream) are unpacked as layers while
    /// the archive is read, so their bytes are written once; the names they had.
    layers: RefCell<HashMap<String, Unpacked>>,
}

/// A layer unpacked while reading the archive.
enum Unpacked {
    Staged(StagedLayer),
    /// Taken by an earlier image of the archive (published in the same transaction).
    Taken(Digest),
}

/// Whether the first bytes of an entry start a layer: gzip or zstd magic, or a tar header
/// whose checksum is right.
fn looks_like_layer(prefix: &[u8]) -> bool {
    if prefix.starts_with(&[0x1f, 0x8b]) || prefix.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        return true;
    }
    if prefix.len() < 512 {
        return false;
    }
    let stored = std::str::from_utf8(&prefix[148..156])
        .ok()
        .map(|s| s.trim_matches(|c: char| c == '\0' || c == ' '))
        .and_then(|s| u32::from_str_radix(s, 8).ok());
    let sum: u32 = prefix[..512]
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u32::from(b)
            }
        })
        .sum();
    stored == Some(sum)
}

fn clean(name: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for c in Path::new(name).components() {
        match c {
            Component::Normal(p) => parts.push(p.to_str()?),
            Component::CurDir => {}
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(parts.join("/"))
}

impl ArchiveDir {
    fn unpack(staging: &Staging, input: impl Read) -> Result<ArchiveDir> {
        let root = staging.new_dir("archive")?;
        let mut links = HashMap::new();
        let mut layers = HashMap::new();
        let (_, stream) = layer::decompress(io::BufReader::with_capacity(1 << 20, input))
            .map_err(|e| Error::Archive(format!("cannot read the archive: {e}")))?;
        let mut ar = tar::Archive::new(stream);
        let entries = ar.entries().map_err(|e| Error::Archive(e.to_string()))?;
        for entry in entries {
            let mut entry =
                entry.map_err(|e| Error::Archive(format!("truncated or corrupt archive: {e}")))?;
            let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let name = match Path::new(&raw)
                .components()
                .any(|c| matches!(c, Component::ParentDir | Component::RootDir))
            {
                true => None,
                false => clean(&raw),
            }
            .ok_or_else(|| Error::Archive(format!("entry {raw:?} points outside the archive")))?;
            if name.is_empty() {
                continue;
            }
            let dest = root.join(&name);
            match entry.header().entry_type() {
                tar::EntryType::Directory => {
                    fs::create_dir_all(&dest).map_err(|e| Error::io(&dest, e))?;
                }
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    let corrupt = |e: io::Error| {
                        Error::Archive(format!("entry {raw:?}: truncated or corrupt archive: {e}"))
                    };
                    let mut prefix = Vec::with_capacity(512);
                    (&mut entry)
                        .take(512)
                        .read_to_end(&mut prefix)
                        .map_err(corrupt)?;
                    if looks_like_layer(&prefix) {
                        let what = format!("layer {name}");
                        let input = io::Cursor::new(prefix).chain(&mut entry);
                        let staged = ingest_layer(staging, &what, input, None, None)?;
                        layers.insert(name, Unpacked::Staged(staged));
                        continue;
                    }
                    if let Some(parent) = dest.parent() {
                        fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
                    }
                    let mut f = File::create(&dest).map_err(|e| Error::io(&dest, e))?;
                    f.write_all(&prefix).map_err(|e| Error::io(&dest, e))?;
                    io::copy(&mut entry, &mut f).map_err(corrupt)?;
                }
                tar::EntryType::Symlink | tar::EntryType::Link => {
                    let target = entry
                        .link_name_bytes()
                        .map(|b| String::from_utf8_lossy(&b).into_owned())
                        .ok_or_else(|| {
                            Error::Archive(format!("entry {raw:?}: link without a target"))
                        })?;
                    let base = if entry.header().entry_type() == tar::EntryType::Link {
                        String::new()
                    } else {
                        name.rsplit_once('/')
                            .map(|(d, _)| d.to_string())
                            .unwrap_or_default()
                    };
                    let joined = if base.is_empty() {
                        target.clone()
                    } else {
                        format!("{base}/{target}")
                    };
                    let resolved = clean(&joined)
                        .filter(|_| !target.starts_with('/'))
                        .ok_or_else(|| {
                            Error::Archive(format!(
                                "entry {raw:?} links outside the archive ({target})"
                            ))
                        })?;
                    links.insert(name, resolved);
                }
                other => {
                    return Err(Error::Archive(format!(
                        "entry {raw:?}: unexpected entry type {other:?} in an image archive"
                    )))
                }
            }
        }
        Ok(ArchiveDir {
            root,
            links,
            layers: RefCell::new(layers),
        })
    }

    /// The layer unpacked from entry `name` while reading, if it was one.
    fn take_layer(&self, name: &str) -> Option<Unpacked> {
        let name = self.resolve(name)?;
        let mut layers = self.layers.borrow_mut();
        let taken = match layers.get(&name)? {
            Unpacked::Staged(l) => Unpacked::Taken(l.record.diff_id),
            Unpacked::Taken(d) => Unpacked::Taken(*d),
        };
        layers.insert(name, taken)
    }

    fn resolve(&self, name: &str) -> Option<String> {
        let mut name = clean(name)?;
        for _ in 0..16 {
            match self.links.get(&name) {
                Some(t) => name = t.clone(),
                None => return Some(name),
            }
        }
        None
    }

    fn exists(&self, name: &str) -> bool {
        self.resolve(name)
            .map(|n| self.root.join(&n).is_file() || self.layers.borrow().contains_key(&n))
            .unwrap_or(false)
    }

    fn open(&self, name: &str) -> Result<File> {
        let n = self
            .resolve(name)
            .ok_or_else(|| Error::Archive(format!("{name}: not in the archive")))?;
        let p = self.root.join(&n);
        File::open(&p).map_err(|_| Error::Archive(format!("{name}: not in the archive")))
    }

    fn read(&self, name: &str) -> Result<Vec<u8>> {
        let mut buf = Vec::new();
        self.open(name)?
            .read_to_end(&mut buf)
            .map_err(|e| Error::Read(name.to_string(), e))?;
        Ok(buf)
    }

    /// Reads `blobs/sha256/<hex>` and checks that its bytes have that digest.
    fn read_blob(&self, d: &Digest) -> Result<Vec<u8>> {
        let bytes = self.read(&format!("blobs/sha256/{}", d.hex()))?;
        let actual = Digest::of(&bytes);
        if actual != *d {
            return Err(Error::Archive(format!(
                "blob {d}: digest mismatch: got {actual}"
            )));
        }
        Ok(bytes)
    }
}

#[derive(Deserialize)]
struct ConfigHead {
    #[serde(default)]
    created: Option<String>,
    rootfs: RootFs,
}

#[derive(Deserialize)]
struct RootFs {
    #[serde(default)]
    diff_ids: Vec<Digest>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerManifestEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    #[serde(default)]
    media_type: Option<String>,
    digest: Digest,
    #[serde(default)]
    annotations: HashMap<String, String>,
    #[serde(default)]
    platform: Option<Platform>,
}

#[derive(Deserialize)]
struct Platform {
    architecture: String,
    os: String,
}

#[derive(Deserialize)]
struct Index {
    manifests: Vec<Descriptor>,
}

#[derive(Deserialize)]
struct Manifest {
    config: Descriptor,
    layers: Vec<Descriptor>,
}

/// One image found in the archive, with its layers staged.
struct Found {
    config: Vec<u8>,
    created: String,
    diff_ids: Vec<Digest>,
    staged: Vec<StagedLayer>,
    names: Vec<Reference>,
}

/// Loads every image of the archive read from `input`.
pub fn load(store: &mut Store, input: impl Read) -> Result<Loaded> {
    let staging = store.stage()?;
    let dir = ArchiveDir::unpack(&staging, input)?;
    let found = if dir.exists("manifest.json") {
        docker_images(store, &staging, &dir)?
    } else if dir.exists("index.json") {
        oci_images(store, &staging, &dir)?
    } else {
        return Err(Error::Archive(
            "no manifest.json or index.json: not a Docker archive or OCI image layout".into(),
        ));
    };
    if found.is_empty() {
        return Err(Error::Archive("the archive holds no image".into()));
    }
    let mut out = Loaded::default();
    let mut p = store.publish()?;
    for f in found {
        for l in f.staged {
            l.publish(&mut p)?;
        }
        let id = p.add_image(&NewImage {
            config: &f.config,
            layers: &f.diff_ids,
            parent: None,
            created: &f.created,
        })?;
        if f.names.is_empty() {
            out.messages.push(format!("Loaded image ID: {id}"));
        }
        for r in &f.names {
            if let Some(old) = p.tag(&r.to_string(), &id)? {
                out.messages.insert(
                    out.messages.len(),
                    format!("The image {} already exists, renaming the old one with ID {old} to empty string", r.familiar()),
                );
            }
            out.messages.push(format!("Loaded image: {}", r.familiar()));
        }
        out.images.push(id);
    }
    p.commit()?;
    for id in &out.images {
        crate::record_event(store, "load", id, None);
    }
    Ok(out)
}

fn parse_config(what: &str, bytes: &[u8]) -> Result<ConfigHead> {
    serde_json::from_slice(bytes)
        .map_err(|e| Error::Archive(format!("{what}: invalid image config: {e}")))
}

fn stage_layers(
    store: &Store,
    staging: &Staging,
    dir: &ArchiveDir,
    image: &str,
    diff_ids: &[Digest],
    layers: &[(String, Option<Digest>)],
) -> Result<Vec<StagedLayer>> {
    if diff_ids.len() != layers.len() {
        return Err(Error::Archive(format!(
            "{image}: the config names {} layers, the manifest {}",
            diff_ids.len(),
            layers.len()
        )));
    }
    let mut staged = Vec::new();
    for (i, ((path, blob_digest), diff_id)) in layers.iter().zip(diff_ids).enumerate() {
        if store.layer(diff_id)?.is_some()
            || staged
                .iter()
                .any(|s: &StagedLayer| s.record.diff_id == *diff_id)
        {
            continue;
        }
        let what = format!("{image}: layer {i} ({path})");
        match dir.take_layer(path) {
            Some(Unpacked::Staged(layer)) => {
                layer.check(&what, blob_digest.as_ref(), Some(diff_id))?;
                staged.push(layer);
            }
            Some(Unpacked::Taken(d)) if d == *diff_id => {}
            Some(Unpacked::Taken(d)) => {
                return Err(Error::Archive(format!(
                    "{what}: diff_id mismatch: expected {diff_id}, got {d}"
                )))
            }
            None => {
                let f = dir.open(path)?;
                staged.push(ingest_layer(
                    staging,
                    &what,
                    io::BufReader::with_capacity(1 << 20, f),
                    blob_digest.as_ref(),
                    Some(diff_id),
                )?);
            }
        }
    }
    Ok(staged)
}

fn docker_images(store: &Store, staging: &Staging, dir: &ArchiveDir) -> Result<Vec<Found>> {
    let entries: Vec<DockerManifestEntry> = serde_json::from_slice(&dir.read("manifest.json")?)
        .map_err(|e| Error::Archive(format!("manifest.json: {e}")))?;
    let mut found = Vec::new();
    for e in entries {
        let config = dir.read(&e.config)?;
        let id = Digest::of(&config);
        // A config named after a digest must have it.
        let stem = e
            .config
            .rsplit('/')
            .next()
            .unwrap_or("")
            .trim_end_matches(".json");
        if let Ok(named) = Digest::parse_lenient(stem) {
            if named != id {
                return Err(Error::Archive(format!(
                    "{}: digest mismatch: got {id}",
                    e.config
                )));
            }
        }
        let head = parse_config(&e.config, &config)?;
        let layers: Vec<(String, Option<Digest>)> =
            e.layers.iter().map(|l| (l.clone(), None)).collect();
        let staged = stage_layers(
            store,
            staging,
            dir,
            &e.config,
            &head.rootfs.diff_ids,
            &layers,
        )?;
        let mut names = Vec::new();
        for t in e.repo_tags.unwrap_or_default() {
            names.push(crate::resolve::parse_name(&t)?);
        }
        found.push(Found {
            created: head.created.unwrap_or_default(),
            diff_ids: head.rootfs.diff_ids,
            config,
            staged,
            names,
        });
    }
    Ok(found)
}

const MANIFEST_TYPES: &[&str] = &[
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

fn oci_images(store: &Store, staging: &Staging, dir: &ArchiveDir) -> Result<Vec<Found>> {
    let index: Index = serde_json::from_slice(&dir.read("index.json")?)
        .map_err(|e| Error::Archive(format!("index.json: {e}")))?;
    let mut found: Vec<Found> = Vec::new();
    let mut todo: Vec<(Descriptor, Option<Reference>)> =
        index.manifests.into_iter().map(|d| (d, None)).collect();
    let mut seen_indexes = 0;
    while let Some((desc, inherited)) = todo.pop() {
        let name = name_of(&desc).or(inherited);
        let bytes = dir.read_blob(&desc.digest)?;
        let media = desc.media_type.clone().unwrap_or_default();
        if media.contains("index") || media.contains("manifest.list") {
            seen_indexes += 1;
            if seen_indexes > 64 {
                return Err(Error::Archive("too many nested indexes".into()));
            }
            let inner: Index = serde_json::from_slice(&bytes)
                .map_err(|e| Error::Archive(format!("index {}: {e}", desc.digest)))?;
            // Take the manifest for this machine's platform, as a pull would.
            let arch = oci::host_architecture();
            let pick = inner.manifests.into_iter().find(|m| {
                m.platform
                    .as_ref()
                    .map(|p| p.os == "linux" && p.architecture == arch)
                    .unwrap_or(true)
            });
            if let Some(m) = pick {
                todo.push((m, name));
            }
            continue;
        }
        if !media.is_empty() && !MANIFEST_TYPES.contains(&media.as_str()) {
            return Err(Error::Archive(format!(
                "manifest {}: unknown media type {media}",
                desc.digest
            )));
        }
        let manifest: Manifest = serde_json::from_slice(&bytes)
            .map_err(|e| Error::Archive(format!("manifest {}: {e}", desc.digest)))?;
        if let Some(existing) = found
            .iter_mut()
            .find(|f| Digest::of(&f.config) == manifest.config.digest)
        {
            existing.names.extend(name);
            continue;
        }
        let config = dir.read_blob(&manifest.config.digest)?;
        let what = format!("config {}", manifest.config.digest);
        let head = parse_config(&what, &config)?;
        let layers: Vec<(String, Option<Digest>)> = manifest
            .layers
            .iter()
            .map(|l| (format!("blobs/sha256/{}", l.digest.hex()), Some(l.digest)))
            .collect();
        let staged = stage_layers(store, staging, dir, &what, &head.rootfs.diff_ids, &layers)?;
        found.push(Found {
            created: head.created.unwrap_or_default(),
            diff_ids: head.rootfs.diff_ids,
            config,
            staged,
            names: name.into_iter().collect(),
        });
    }
    found.reverse();
    Ok(found)
}

/// The name a descriptor carries: containerd's full name, or an OCI ref name that is a
/// whole reference (a bare tag such as `latest` names no repository).
fn name_of(d: &Descriptor) -> Option<Reference> {
    if let Some(n) = d.annotations.get("io.containerd.image.name") {
        return Reference::parse(n).ok();
    }
    let r = d.annotations.get("org.opencontainers.image.ref.name")?;
    if r.contains('/') || r.contains(':') {
        Reference::parse(r)
            .ok()
            .filter(|r| r.digest.as_ref().is_none())
    } else {
        None
    }
}
