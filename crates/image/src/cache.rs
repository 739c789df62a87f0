//! Build cache as an OCI image layout directory: the chain of images a build made (final,
//! intermediate and base, each with its layers) plus each image's parent, so that another
//! store that imports it finds Docker's classic cache (children of the parent made by the
//! same step) and prints ` ---> Using cache`. Image IDs are kept (configs are copied byte for
//! byte) and everything read back is verified against its digest.
//!
//! ```text
//! DIR/oci-layout
//! DIR/index.json           one manifest per image, base first, annotated with its parent
//! DIR/blobs/sha256/…       configs, manifests and layer blobs as stored
//! ```

use std::collections::HashSet;
use std::fs;
use std::io::BufReader;
use std::path::Path;

use oci::Digest;
use serde::Deserialize;
use serde_json::json;
use store::{NewImage, Store};

use crate::error::{Error, Result};
use crate::ingest::{ingest_layer, StagedLayer};

/// Annotation naming an image's parent image ID.
pub const PARENT_ANNOTATION: &str = "dev.strata.cache.parent";
/// Annotation naming the image ID a manifest stands for.
pub const IMAGE_ANNOTATION: &str = "dev.strata.cache.image";

const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, data).map_err(|e| Error::io(&tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

/// Writes the parent chains of `tops` to `dir`; returns how many images it holds.
pub fn export_cache(store: &Store, tops: &[Digest], dir: &Path) -> Result<usize> {
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
    let blobs = dir.join("blobs/sha256");
    fs::create_dir_all(&blobs).map_err(|e| Error::io(&blobs, e))?;
    let put = |d: &Digest, data: Option<&[u8]>| -> Result<()> {
        let p = blobs.join(d.hex());
        if p.exists() {
            return Ok(());
        }
        let tmp = blobs.join(format!("{}.tmp", d.hex()));
        match data {
            Some(b) => fs::write(&tmp, b).map_err(|e| Error::io(&tmp, e))?,
            None => {
                fs::copy(store.blob_path(d), &tmp).map_err(|e| Error::io(&tmp, e))?;
            }
        }
        fs::rename(&tmp, &p).map_err(|e| Error::io(&p, e))
    };
    let mut manifests = Vec::new();
    for img in &chain {
        let config = store.read_blob(&img.id)?;
        put(&img.id, Some(&config))?;
        let mut layers = Vec::new();
        for l in &img.layers {
            let rec = store.layer(l)?.ok_or(store::Error::LayerNotFound(*l))?;
            let blob = rec.blob.ok_or(store::Error::LayerNotFound(*l))?;
            put(&blob.digest, None)?;
            layers.push(json!({"mediaType": blob.media_type, "digest": blob.digest.to_string(), "size": blob.size}));
        }
        let m = json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": img.id.to_string(), "size": config.len()},
            "layers": layers,
        });
        let bytes = serde_json::to_vec(&m).expect("json values serialise");
        let md = Digest::of(&bytes);
        put(&md, Some(&bytes))?;
        let mut annotations = serde_json::Map::new();
        annotations.insert(IMAGE_ANNOTATION.into(), json!(img.id.to_string()));
        if let Some(p) = img.parent {
            annotations.insert(PARENT_ANNOTATION.into(), json!(p.to_string()));
        }
        manifests.push(json!({"mediaType": MANIFEST, "digest": md.to_string(), "size": bytes.len(), "annotations": annotations}));
    }
    write_atomic(
        &dir.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )?;
    let index = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests});
    write_atomic(
        &dir.join("index.json"),
        &serde_json::to_vec(&index).expect("json"),
    )?;
    Ok(chain.len())
}

#[derive(Deserialize)]
struct Desc {
    digest: Digest,
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
    let index: Index = serde_json::from_slice(&fs::read(&ip).map_err(|e| Error::io(&ip, e))?)
        .map_err(|e| Error::Archive(format!("{}: {e}", ip.display())))?;
    let staging = store.stage()?;
    let mut staged: Vec<StagedLayer> = Vec::new();
    let mut images = Vec::new();
    for m in &index.manifests {
        let manifest: Manifest = serde_json::from_slice(&read_verified(dir, &m.digest)?)
            .map_err(|e| Error::Archive(format!("cache manifest {}: {e}", m.digest)))?;
        let config = read_verified(dir, &manifest.config.digest)?;
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
            if store.layer(diff_id)?.is_some()
                || staged.iter().any(|s| s.record.diff_id == *diff_id)
            {
                continue;
            }
            let p = dir.join("blobs/sha256").join(l.digest.hex());
            let f = fs::File::open(&p).map_err(|e| Error::io(&p, e))?;
            let what = format!("cache layer {}", l.digest);
            staged.push(ingest_layer(
                &staging,
                &what,
                BufReader::with_capacity(1 << 20, f),
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
