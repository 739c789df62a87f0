//! The uncompressed tar of a stored layer, for `save`, `push` and cache exports: put back
//! together from the layer directory and its tar-split file, or, for layers stored before
//! tar-split files (and layers kept with a blob), decompressed from the stored blob. Either
//! way the bytes are hashed as they are read and the last read fails unless they hash to the
//! layer's diff_id, so nothing built on a changed or damaged layer goes out unnoticed.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use oci::{Digest, Hasher};
use store::{LayerRecord, Store};

use crate::error::{Error, Result};

/// A stored layer's tar, checked against its diff_id while read.
pub struct LayerTar {
    inner: Box<dyn Read + Send>,
    hasher: Hasher,
    diff_id: Digest,
    size: u64,
    checked: bool,
    /// What the tar is made from, for the error when it does not match.
    source: &'static str,
}

impl LayerTar {
    /// Bytes of the tar.
    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn diff_id(&self) -> &Digest {
        &self.diff_id
    }
}

/// Opens the tar of the layer `rec` of `store`.
pub fn open_layer_tar(store: &Store, rec: &LayerRecord) -> Result<LayerTar> {
    LayerSource::new(store, rec).open()
}

/// Where a stored layer's tar comes from, as paths only: it goes to other threads (the
/// store does not) and opens the tar as often as needed (an upload that is retried reads it
/// again).
#[derive(Debug, Clone)]
pub struct LayerSource {
    pub record: LayerRecord,
    dir: PathBuf,
    split: PathBuf,
    blob: Option<PathBuf>,
}

impl LayerSource {
    pub fn new(store: &Store, rec: &LayerRecord) -> LayerSource {
        LayerSource {
            record: rec.clone(),
            dir: store.layer_dir(&rec.diff_id),
            split: store.tar_split_path(&rec.diff_id),
            blob: rec.blob.as_ref().map(|b| store.blob_path(&b.digest)),
        }
    }

    /// The stored blob of the layer (legacy stores), if any.
    pub fn blob_path(&self) -> Option<&Path> {
        self.blob.as_deref()
    }

    /// Opens the tar, checked against the layer's diff_id while read.
    pub fn open(&self) -> Result<LayerTar> {
        let diff_id = self.record.diff_id;
        let what = |e: io::Error| Error::Read(format!("layer {diff_id}"), e);
        let inner: Box<dyn Read + Send> = if self.record.tar_split {
            Box::new(layer::TarReader::open(&self.dir, &self.split).map_err(what)?)
        } else if let Some(path) = &self.blob {
            let file = File::open(path).map_err(|e| Error::io(path, e))?;
            let (_, tar) = layer::decompress_send(BufReader::with_capacity(1 << 20, file))
                .map_err(|e| Error::Archive(format!("layer {diff_id}: {e}")))?;
            tar
        } else {
            return Err(Error::Archive(format!(
                "layer {diff_id} has neither a tar-split file nor a blob in the store"
            )));
        };
        let source = if self.record.tar_split {
            "its files in the store and its tar-split file no longer give"
        } else {
            "its stored blob no longer gives"
        };
        Ok(LayerTar {
            inner,
            hasher: Hasher::new(),
            diff_id,
            size: self.record.tar_size,
            checked: false,
            source,
        })
    }

    /// The tar compressed as `opts` says, on threads of its own; the last read fails unless
    /// the tar matched the diff_id.
    pub fn compressed(&self, opts: &layer::CompressOptions) -> Result<Box<dyn Read + Send>> {
        Ok(layer::compress_reader(self.open()?, opts)?)
    }
}

impl Read for LayerTar {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n > 0 {
            self.hasher.update(&buf[..n]);
            return Ok(n);
        }
        if !self.checked && !buf.is_empty() {
            self.checked = true;
            let len = self.hasher.len();
            let got = std::mem::replace(&mut self.hasher, Hasher::new()).finish();
            if got != self.diff_id || len != self.size {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "layer {}: {} its tar ({len} bytes hashing to {got}, expected {} bytes): the store was changed or damaged",
                        self.diff_id, self.source, self.size
                    ),
                ));
            }
        }
        Ok(0)
    }
}
