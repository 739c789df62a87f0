//! Build cache as an OCI image layout directory: the chain of images a build made (final,
//! intermediate and base, each with its layers) plus each image's parent, so that another
//! store that imports it finds Docker's classic cache (children of the parent made by the
//! same step) and prints ` ---> Using cache`. Image IDs are kept (configs are copied byte for
//! byte) and everything read back is verified against its digest.
//!
//! ```text
//! DIR/oci-layout
//! DIR/index.json           one manifest per image, base first, annotated with its parent
//! DIR/blobs/sha256/…       configs, manifests, and layer blobs (compressed from the layers' tars,
//!                          or as stored in old stores)
//! ```

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::{BufReader, Read, Write};
use std::path::Path;

use oci::{Digest, Hasher};
use serde::Deserialize;
use serde_json::json;
use store::{BlobRef, LayerRecord, NewImage, RemoteBlob, Store};

use crate::error::{Error, Result};
use crate::export::{compression_of, manifest_layer_type, ExportOptions};
use crate::ingest::{ingest_layer, StagedLayer};
use crate::layer_tar::LayerSource;

/// Annotation naming an image's parent image ID.
pub const PARENT_ANNOTATION: &str = "dev.strata.cache.parent";
/// Annotation naming the image ID a manifest stands for.
pub const IMAGE_ANNOTATION: &str = "dev.strata.cache.image";

const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const INDEX: &str = "application/vnd.oci.image.index.v1+json";

fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, data).map_err(|e| Error::io(&tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

/// Everything a cache holds, before its layers have blobs: a directory (`export_cache`) or
/// a registry (the registry crate) gives each layer a blob (one it has, or the layer's tar
/// compressed), then writes the manifests and the index [`CachePlan::manifests`] makes.
pub struct CachePlan {
    /// The configs, each once: digest and bytes.
    pub configs: Vec<(Digest, Vec<u8>)>,
    /// The layers, each once, base first.
    pub layers: Vec<LayerRecord>,
    images: Vec<PlannedImage>,
}

/// What [`CachePlan::manifests`] makes.
pub struct CacheManifests {
    /// One manifest per image, base first: digest and bytes.
    pub manifests: Vec<(Digest, Vec<u8>)>,
    /// The OCI index naming them, annotated with each image and its parent.
    pub index: Vec<u8>,
}

/// One image of a cache: its config, layers and parent.
struct PlannedImage {
    id: Digest,
    config_size: usize,
    layers: Vec<Digest>,
    parent: Option<Digest>,
}

/// Plans the cache of the parent chains of `tops`.
pub fn plan_cache(store: &Store, tops: &[Digest]) -> Result<CachePlan> {
    let mut chain: Vec<store::ImageRecord> = Vec::new();
    let mut seen = HashSet::new();
    for top in tops {
        let mut stack = Vec::new();
        let mut cur = Some(*top);
        while let Some(id) = cur {
            if !seen.insert(id) {
                break;
            }
            let rec = store
                .image(&id)?
                .ok_or_else(|| Error::NoSuchImage(id.to_string()))?;
            cur = rec.parent;
            stack.push(rec);
        }
        stack.reverse();
        chain.extend(stack);
    }
    let mut plan = CachePlan {
        configs: Vec::new(),
        layers: Vec::new(),
        images: Vec::new(),
    };
    let mut have = HashSet::new();
    for img in &chain {
        let config = store.read_blob(&img.id)?;
        plan.images.push(PlannedImage {
            id: img.id,
            config_size: config.len(),
            layers: img.layers.clone(),
            parent: img.parent,
        });
        if have.insert(img.id) {
            plan.configs.push((img.id, config));
        }
        for l in &img.layers {
            if have.insert(*l) {
                let rec = store.layer(l)?.ok_or(store::Error::LayerNotFound(*l))?;
                plan.layers.push(rec);
            }
        }
    }
    Ok(plan)
}

impl CachePlan {
    /// How many images the cache holds.
    pub fn images(&self) -> usize {
        self.images.len()
    }

    /// The manifests and the OCI index naming them, each layer named by its blob in
    /// `blobs` (keyed by diff_id).
    pub fn manifests(&self, blobs: &HashMap<Digest, BlobRef>) -> Result<CacheManifests> {
        let mut manifests = Vec::new();
        let mut entries = Vec::new();
        for img in &self.images {
            let mut layers = Vec::new();
            for l in &img.layers {
                let blob = blobs.get(l).ok_or(store::Error::LayerNotFound(*l))?;
                let c = compression_of(&blob.media_type).unwrap_or(layer::Compression::None);
                layers.push(json!({"mediaType": manifest_layer_type(c, true), "digest": blob.digest.to_string(), "size": blob.size}));
            }
            let m = json!({
                "schemaVersion": 2,
                "mediaType": MANIFEST,
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": img.id.to_string(), "size": img.config_size},
                "layers": layers,
            });
            let bytes = serde_json::to_vec(&m).expect("json values serialise");
            let md = Digest::of(&bytes);
            let mut annotations = serde_json::Map::new();
            annotations.insert(IMAGE_ANNOTATION.into(), json!(img.id.to_string()));
            if let Some(p) = img.parent {
                annotations.insert(PARENT_ANNOTATION.into(), json!(p.to_string()));
            }
            entries.push(json!({"mediaType": MANIFEST, "digest": md.to_string(), "size": bytes.len(), "annotations": annotations}));
            manifests.push((md, bytes));
        }
        let index = json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": entries});
        Ok(CacheManifests {
            manifests,
            index: serde_json::to_vec(&index).expect("json"),
        })
    }
}

/// Writes the parent chains of `tops` to `dir`; returns how many images it holds. Each layer
/// goes in as its stored blob when `opts` lets that go out as it is, else as its tar
/// compressed as `opts` says.
pub fn export_cache(
    store: &Store,
    tops: &[Digest],
    dir: &Path,
    opts: &ExportOptions,
) -> Result<usize> {
    let plan = plan_cache(store, tops)?;
    let blobs_dir = dir.join("blobs/sha256");
    fs::create_dir_all(&blobs_dir).map_err(|e| Error::io(&blobs_dir, e))?;
    let put = |d: &Digest, data: &[u8]| -> Result<()> {
        let p = blobs_dir.join(d.hex());
        if p.exists() {
            return Ok(());
        }
        write_atomic(&p, data)
    };
    for (d, bytes) in &plan.configs {
        put(d, bytes)?;
    }
    let earlier = earlier_blobs(dir, opts);
    let mut blobs = HashMap::new();
    for rec in &plan.layers {
        if let Some(b) = earlier.get(&rec.diff_id) {
            // An earlier export to this directory compressed the layer already.
            blobs.insert(rec.diff_id, b.clone());
            continue;
        }
        let src = LayerSource::new(store, rec);
        let blob = match (&rec.blob, src.blob_path()) {
            (Some(b), Some(path)) if opts.reuses(&b.media_type) => {
                let p = blobs_dir.join(b.digest.hex());
                if !p.exists() {
                    // A copy, not a hard link: the user owns this directory, and an edit
                    // there must never reach the store's blob.
                    let tmp = blobs_dir.join(format!("{}.tmp", b.digest.hex()));
                    fs::copy(path, &tmp).map_err(|e| Error::io(&tmp, e))?;
                    fs::rename(&tmp, &p).map_err(|e| Error::io(&p, e))?;
                }
                b.clone()
            }
            _ => write_compressed(&blobs_dir, &src, opts)?,
        };
        blobs.insert(rec.diff_id, blob);
    }
    let m = plan.manifests(&blobs)?;
    for (d, bytes) in &m.manifests {
        put(d, bytes)?;
    }
    write_atomic(
        &dir.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )?;
    write_atomic(&dir.join("index.json"), &m.index)?;
    Ok(plan.images())
}

/// The layer blobs an earlier export left in `dir` in the compression `opts` wants, by
/// diff_id (read from its index, manifests and configs; each blob still there with its
/// size). A cache exported again after a rebuild compresses only the new layers. What a
/// hand-edited directory claims is checked where it counts: an import verifies every blob
/// against its digest and every layer against its diff_id.
fn earlier_blobs(dir: &Path, opts: &ExportOptions) -> HashMap<Digest, BlobRef> {
    let mut out = HashMap::new();
    let Ok(index) = fs::read(dir.join("index.json")) else {
        return out;
    };
    let Ok(index) = serde_json::from_slice::<Index>(&index) else {
        return out;
    };
    for m in &index.manifests {
        let Some(manifest) = read_verified(dir, &m.digest)
            .ok()
            .and_then(|b| serde_json::from_slice::<Manifest>(&b).ok())
        else {
            continue;
        };
        let Some(cfg) = read_verified(dir, &manifest.config.digest)
            .ok()
            .and_then(|b| oci::ImageConfig::from_slice(&b).ok())
        else {
            continue;
        };
        for (l, diff_id) in manifest.layers.iter().zip(cfg.diff_ids()) {
            let on_disk = fs::metadata(dir.join("blobs/sha256").join(l.digest.hex()))
                .is_ok_and(|md| md.len() == l.size);
            if on_disk && opts.wants(&l.media_type) {
                out.insert(
                    *diff_id,
                    BlobRef {
                        digest: l.digest,
                        media_type: l.media_type.clone(),
                        size: l.size,
                    },
                );
            }
        }
    }
    out
}

/// Writes the layer's tar compressed as `opts` says into `blobs_dir`, named by its digest.
fn write_compressed(blobs_dir: &Path, src: &LayerSource, opts: &ExportOptions) -> Result<BlobRef> {
    let diff_id = src.record.diff_id;
    let tmp = blobs_dir.join(format!("{}.layer.tmp", diff_id.hex()));
    let mut out = fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
    let mut input = src.compressed(&opts.compress)?;
    let mut hasher = Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                return Err(Error::Read(format!("layer {diff_id}"), e));
            }
        };
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n]).map_err(|e| Error::io(&tmp, e))?;
    }
    let size = hasher.len();
    let digest = hasher.finish();
    let p = blobs_dir.join(digest.hex());
    fs::rename(&tmp, &p).map_err(|e| Error::io(&p, e))?;
    Ok(BlobRef {
        digest,
        media_type: crate::layer_media_type(opts.compress.compression),
        size,
    })
}

/// Where an import reads a cache from: a directory or a registry.
pub trait CacheSource {
    /// The bytes of a small blob (manifest or config), verified against `digest`.
    fn read(&self, digest: &Digest) -> Result<Vec<u8>>;
    /// A stream of a layer blob; the import verifies it while unpacking.
    fn open(&self, digest: &Digest) -> Result<Box<dyn Read + '_>>;
    /// Names the source in messages.
    fn describe(&self, digest: &Digest) -> String;
    /// What the store should remember of a layer blob the source holds, so that a later
    /// push to the same place uploads nothing (a registry repository's blobs).
    fn remote_blob(&self, _diff_id: &Digest, _blob: &BlobRef) -> Option<RemoteBlob> {
        None
    }
}

/// A cache written by [`export_cache`] (an OCI image layout).
struct DirSource<'a>(&'a Path);

impl CacheSource for DirSource<'_> {
    fn read(&self, d: &Digest) -> Result<Vec<u8>> {
        read_verified(self.0, d)
    }
    fn open(&self, d: &Digest) -> Result<Box<dyn Read + '_>> {
        let p = self.0.join("blobs/sha256").join(d.hex());
        let f = fs::File::open(&p).map_err(|e| Error::io(&p, e))?;
        Ok(Box::new(BufReader::with_capacity(1 << 20, f)))
    }
    fn describe(&self, d: &Digest) -> String {
        format!("cache layer {d}")
    }
}

#[derive(Deserialize)]
struct Desc {
    digest: Digest,
    #[serde(default, rename = "mediaType")]
    media_type: String,
    #[serde(default)]
    size: u64,
    #[serde(default)]
    annotations: std::collections::HashMap<String, String>,
}

#[derive(Deserialize)]
struct Index {
    manifests: Vec<Desc>,
}

#[derive(Deserialize)]
struct Manifest {
    config: Desc,
    layers: Vec<Desc>,
}

fn read_verified(dir: &Path, d: &Digest) -> Result<Vec<u8>> {
    let p = dir.join("blobs/sha256").join(d.hex());
    let bytes = fs::read(&p).map_err(|e| Error::io(&p, e))?;
    let actual = Digest::of(&bytes);
    if actual != *d {
        return Err(Error::Archive(format!(
            "cache blob {d}: digest mismatch: got {actual}"
        )));
    }
    Ok(bytes)
}

/// Brings the images of a cache directory into the store (with their parents), verifying
/// every blob; all or nothing. Returns how many images were new.
pub fn import_cache(store: &mut Store, dir: &Path) -> Result<usize> {
    let ip = dir.join("index.json");
    let index = fs::read(&ip).map_err(|e| Error::io(&ip, e))?;
    import_cache_from(store, &index, &DirSource(dir)).map_err(|e| match e {
        Error::Archive(m) if m.starts_with("index: ") => {
            Error::Archive(format!("{}: {}", ip.display(), &m[7..]))
        }
        e => e,
    })
}

/// Brings the images of a cache (its OCI index and a source of its blobs) into the store,
/// verifying every blob; layers the store has are not read. All or nothing.
pub fn import_cache_from(store: &mut Store, index: &[u8], src: &dyn CacheSource) -> Result<usize> {
    let index: Index =
        serde_json::from_slice(index).map_err(|e| Error::Archive(format!("index: {e}")))?;
    let staging = store.stage()?;
    let mut staged: Vec<StagedLayer> = Vec::new();
    let mut remote: Vec<RemoteBlob> = Vec::new();
    let mut images = Vec::new();
    for m in &index.manifests {
        let manifest: Manifest = serde_json::from_slice(&src.read(&m.digest)?)
            .map_err(|e| Error::Archive(format!("cache manifest {}: {e}", m.digest)))?;
        let config = src.read(&manifest.config.digest)?;
        let cfg = oci::ImageConfig::from_slice(&config)
            .map_err(|e| Error::Archive(format!("cache config {}: {e}", manifest.config.digest)))?;
        let diff_ids = cfg.diff_ids().to_vec();
        if diff_ids.len() != manifest.layers.len() {
            return Err(Error::Archive(format!(
                "cache manifest {}: layer count does not match its config",
                m.digest
            )));
        }
        for (l, diff_id) in manifest.layers.iter().zip(&diff_ids) {
            let blob = BlobRef {
                digest: l.digest,
                media_type: l.media_type.clone(),
                size: l.size,
            };
            remote.extend(src.remote_blob(diff_id, &blob));
            if store.layer(diff_id)?.is_some()
                || staged.iter().any(|s| s.record.diff_id == *diff_id)
            {
                continue;
            }
            let what = src.describe(&l.digest);
            staged.push(ingest_layer(
                &staging,
                &what,
                src.open(&l.digest)?,
                Some(&l.digest),
                Some(diff_id),
            )?);
        }
        let parent = match m.annotations.get(PARENT_ANNOTATION) {
            Some(p) => Some(
                p.parse::<Digest>()
                    .map_err(|e| Error::Archive(format!("cache parent {p}: {e}")))?,
            ),
            None => None,
        };
        images.push((
            config,
            diff_ids,
            parent,
            cfg.created.clone().unwrap_or_default(),
        ));
    }
    let mut p = store.publish()?;
    for l in staged {
        l.publish(&mut p)?;
    }
    for b in &remote {
        p.add_remote_blob(b)?;
    }
    let mut new = 0;
    for (config, layers, parent, created) in &images {
        let id = Digest::of(config);
        if p.image(&id)?.is_none() {
            new += 1;
        }
        // A parent that is neither in the store nor in the cache is left out.
        let parent = match parent {
            Some(pid) if p.image(pid)?.is_some() => Some(*pid),
            _ => None,
        };
        p.add_image(&NewImage {
            config,
            layers,
            parent,
            created,
        })?;
    }
    p.commit()?;
    Ok(new)
}
