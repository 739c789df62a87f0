//! The uncompressed tar of a stored layer, for `save`, `push` and cache exports: put back
//! together from the layer directory and its tar-split file, or, for layers stored before
//! tar-split files (and layers kept with a blob), decompressed from the stored blob. Either
//! way the bytes are hashed as they are read and the last read fails unless they hash to the
//! layer's diff_id, so nothing built on a changed or damaged layer goes out unnoticed.

use std::io::{self, BufReader, Read};

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
    let diff_id = rec.diff_id;
    let what = |e: io::Error| Error::Read(format!("layer {diff_id}"), e);
    let source = if rec.tar_split {
        "its files in the store and its tar-split file no longer give"
    } else {
        "its stored blob no longer gives"
    };
    let inner: Box<dyn Read + Send> = if rec.tar_split {
        Box::new(
            layer::TarReader::open(&store.layer_dir(&diff_id), &store.tar_split_path(&diff_id))
                .map_err(what)?,
        )
    } else if let Some(blob) = &rec.blob {
        let file = store.open_blob(&blob.digest)?;
        let (_, tar) = layer::decompress_send(BufReader::with_capacity(1 << 20, file))
            .map_err(|e| Error::Archive(format!("layer {diff_id}: {e}")))?;
        tar
    } else {
        return Err(Error::Archive(format!(
            "layer {diff_id} has neither a tar-split file nor a blob in the store"
        )));
    };
    Ok(LayerTar {
        inner,
        hasher: Hasher::new(),
        diff_id,
        size: rec.tar_size,
        checked: false,
        source,
    })
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
