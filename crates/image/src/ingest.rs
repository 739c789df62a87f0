//! Bringing one layer into a staging area: the bytes are hashed into a staged blob exactly as
//! they arrive (so the source's digest can be checked) while the same stream is unpacked,
//! confined, into a new directory. Nothing is visible in the store until it is published.

use std::io::{self, Read, Write};
use std::path::PathBuf;

use oci::Digest;
use store::{BlobRef, BlobWriter, LayerRecord, Publisher, StagedBlob, Staging};

use crate::error::{Error, Result};

/// A layer unpacked in a staging area, ready to publish.
pub struct StagedLayer {
    dir: PathBuf,
    blob: StagedBlob,
    pub record: LayerRecord,
}

/// Copies everything it reads into a blob writer.
struct Tee<'a, R> {
    inner: R,
    blob: &'a mut BlobWriter,
}

impl<R: Read> Read for Tee<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.blob.write_all(&buf[..n])?;
        Ok(n)
    }
}

/// Unpacks `input` (gzip, zstd or plain tar) into a new directory of `staging`.
/// `what` names the layer in errors. When `expected_blob` is given, the bytes must hash to it;
/// when `expected_diff_id` is given, the uncompressed tar must.
pub fn ingest_layer(
    staging: &Staging,
    what: &str,
    input: impl Read,
    expected_blob: Option<&Digest>,
    expected_diff_id: Option<&Digest>,
) -> Result<StagedLayer> {
    let dir = staging.new_dir(&format!("layer-{}", staging_counter()))?;
    let mut writer = staging.blob_writer()?;
    let report = {
        let mut tee = Tee {
            inner: input,
            blob: &mut writer,
        };
        let report = layer::apply_layer(&mut tee, &dir)
            .map_err(|e| Error::Archive(format!("{what}: {e}")))?;
        // Whatever follows the end of the archive still belongs to the blob.
        io::copy(&mut tee, &mut io::sink()).map_err(|e| Error::Read(what.to_string(), e))?;
        report
    };
    let blob = writer.finish(expected_blob).map_err(|e| match e {
        store::Error::DigestMismatch { expected, actual } => Error::Archive(format!(
            "{what}: digest mismatch: expected {expected}, got {actual}"
        )),
        e => e.into(),
    })?;
    if let Some(exp) = expected_diff_id {
        if *exp != report.diff_id {
            return Err(Error::Archive(format!(
                "{what}: diff_id mismatch: expected {exp}, got {}",
                report.diff_id
            )));
        }
    }
    let record = LayerRecord {
        diff_id: report.diff_id,
        size: layer::diff_size(&dir)?,
        tar_size: report.uncompressed_size,
        blob: Some(BlobRef {
            digest: blob.digest,
            media_type: crate::layer_media_type(report.compression),
            size: blob.size,
        }),
    };
    Ok(StagedLayer { dir, blob, record })
}

impl StagedLayer {
    /// Publishes the blob and layer directory (unless another process did meanwhile).
    pub fn publish(self, p: &mut Publisher<'_>) -> Result<Digest> {
        if p.has_layer(&self.record.diff_id)? {
            // Another process published the same layer meanwhile; ours is dropped with the
            // staging area.
            return Ok(self.record.diff_id);
        }
        p.put_blob(self.blob)?;
        p.put_layer(&self.dir, &self.record)?;
        Ok(self.record.diff_id)
    }
}

fn staging_counter() -> usize {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}
