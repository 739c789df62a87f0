//! Bringing one layer into a staging area: the stream is unpacked, confined, into a new
//! directory in one pass that also hashes it as received (so the source's digest can be
//! checked) and as a tar (its diff_id), and records its tar-split file. Neither the stream
//! nor the tar is written anywhere else: the directory and the tar-split file give the exact
//! tar back. Nothing is visible in the store until it is published.

use std::path::PathBuf;

use oci::Digest;
use store::{BlobRef, LayerRecord, Publisher, Staging};

use crate::error::{Error, Result};

/// A layer unpacked in a staging area, ready to publish.
pub struct StagedLayer {
    dir: PathBuf,
    split: PathBuf,
    pub record: LayerRecord,
    /// The stream as it was received: its digest, size and media type (compression).
    pub received: BlobRef,
}

/// Unpacks `input` (gzip, zstd or plain tar) into a new directory of `staging`.
/// `what` names the layer in errors. When `expected_blob` is given, the bytes must hash to it;
/// when `expected_diff_id` is given, the uncompressed tar must.
pub fn ingest_layer(
    staging: &Staging,
    what: &str,
    input: impl std::io::Read,
    expected_blob: Option<&Digest>,
    expected_diff_id: Option<&Digest>,
) -> Result<StagedLayer> {
    let n = staging_counter();
    let dir = staging.new_dir(&format!("layer-{n}"))?;
    let split = staging.path().join(format!("layer-{n}.split"));
    let report = layer::apply_layer_recording(input, &dir, &split).map_err(|e| match e {
        // Not the archive's fault: said as it is, with where.
        e @ layer::LayerError::NoSpace { .. } => Error::Layer(e),
        e => Error::Archive(format!("{what}: {e}")),
    })?;
    let record = LayerRecord {
        diff_id: report.diff_id,
        size: layer::diff_size(&dir)?,
        tar_size: report.uncompressed_size,
        blob: None,
        tar_split: true,
    };
    let received = BlobRef {
        digest: report.digest,
        media_type: crate::layer_media_type(report.compression),
        size: report.size,
    };
    let staged = StagedLayer {
        dir,
        split,
        record,
        received,
    };
    staged.check(what, expected_blob, expected_diff_id)?;
    Ok(staged)
}

/// Stages the directory `dir` (inside `staging`, in overlay form: whiteout devices, opaque
/// xattrs) as a layer: one walk hashes its tar (the diff_id) and writes its tar-split file; the
/// directory itself becomes the layer, nothing is copied or compressed.
pub fn stage_layer_dir(staging: &Staging, dir: PathBuf) -> Result<StagedLayer> {
    let split = staging
        .path()
        .join(format!("layer-{}.split", staging_counter()));
    let out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&split)
        .map_err(|e| Error::Read(split.display().to_string(), e))?;
    // Made durable with the layer directory when published (`Publisher::put_layer`).
    let written = layer::write_layer_split(&dir, out)?;
    let d = written.digests;
    let record = LayerRecord {
        diff_id: d.diff_id,
        size: written.diff_size,
        tar_size: d.uncompressed_size,
        blob: None,
        tar_split: true,
    };
    let received = BlobRef {
        digest: d.diff_id,
        media_type: crate::layer_media_type(layer::Compression::None),
        size: d.uncompressed_size,
    };
    Ok(StagedLayer {
        dir,
        split,
        record,
        received,
    })
}

impl StagedLayer {
    /// The layer's directory, to be staged again once changed (the tar-split file made for
    /// it is stale then, and removed).
    pub fn into_dir(self) -> PathBuf {
        let _ = std::fs::remove_file(&self.split);
        self.dir
    }

    /// Checks the stream's digest and the tar's diff_id against what names them.
    pub(crate) fn check(
        &self,
        what: &str,
        expected_blob: Option<&Digest>,
        expected_diff_id: Option<&Digest>,
    ) -> Result<()> {
        if let Some(exp) = expected_blob {
            if *exp != self.received.digest {
                return Err(Error::Archive(format!(
                    "{what}: digest mismatch: expected {exp}, got {}",
                    self.received.digest
                )));
            }
        }
        if let Some(exp) = expected_diff_id {
            if *exp != self.record.diff_id {
                return Err(Error::Archive(format!(
                    "{what}: diff_id mismatch: expected {exp}, got {}",
                    self.record.diff_id
                )));
            }
        }
        Ok(())
    }

    /// Publishes the layer directory and its tar-split file (unless another process did
    /// meanwhile).
    pub fn publish(self, p: &mut Publisher<'_>) -> Result<Digest> {
        if p.has_layer(&self.record.diff_id)? {
            // Another process published the same layer meanwhile; ours is dropped with the
            // staging area.
            return Ok(self.record.diff_id);
        }
        p.put_layer(&self.dir, Some(&self.split), &self.record)?;
        Ok(self.record.diff_id)
    }
}

fn staging_counter() -> usize {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}
