//! The uncompressed tar of a stored layer, for `save`, `push` and cache exports: put back
//! together from the layer directory and its tar-split file, or, for layers stored before
//! tar-split files (and layers kept with a blob), decompressed from the stored blob. Either
//! way the bytes are hashed as they are read and the last read fails unless they hash to the
//! layer's diff_id, so nothing built on a changed or damaged layer goes out unnoticed.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread::JoinHandle;

use oci::{Digest, Hasher};
use store::{LayerRecord, Store};

use crate::error::{Error, Result};

/// A stored layer's tar, checked against its diff_id while read.
pub struct LayerTar {
    inner: Box<dyn Read + Send>,
    hasher: Hashing,
    diff_id: Digest,
    size: u64,
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

    /// Opens the tar, checked against the layer's diff_id while read (a big layer's on a
    /// second thread).
    pub fn open(&self) -> Result<LayerTar> {
        self.open_hashing(true)
    }

    /// [`LayerSource::open`], the check on a second thread for a big layer when `apart`.
    fn open_hashing(&self, apart: bool) -> Result<LayerTar> {
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
            hasher: Hashing::new(if apart { self.record.tar_size } else { 0 }),
            diff_id,
            size: self.record.tar_size,
            source,
        })
    }

    /// The tar compressed as `opts` says, on threads of its own; the last read fails unless
    /// the tar matched the diff_id.
    pub fn compressed(&self, opts: &layer::CompressOptions) -> Result<Box<dyn Read + Send>> {
        // Checked inline: the compressing threads keep every core busy already.
        Ok(layer::compress_reader(self.open_hashing(false)?, opts)?)
    }
}

impl Read for LayerTar {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n > 0 {
            self.hasher.update(&buf[..n]);
            return Ok(n);
        }
        if buf.is_empty() {
            return Ok(0);
        }
        if let Some((got, len)) = self.hasher.finish()? {
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

/// Layers at least this big are hashed on a thread of their own (not smaller: a thread costs
/// more than hashing a few megabytes).
const HASH_APART_ABOVE: u64 = 8 << 20;
/// Bytes per piece handed to the hashing thread, and pieces in flight at most.
const PIECE: usize = 1 << 20;
const IN_FLIGHT: usize = 4;

/// The diff_id check of a tar being read: inline for a small layer; for a big one on a second
/// thread, fed copies of the bytes, so that the reader (`save`: reading the layer's files and
/// writing the archive) does not wait for sha256 (~0.6 s of CPU for 1 GiB here).
enum Hashing {
    Inline(Hasher),
    Apart {
        /// The piece being filled, the pieces to the thread and back.
        piece: Vec<u8>,
        full: SyncSender<Vec<u8>>,
        empty: Receiver<Vec<u8>>,
        thread: JoinHandle<Hasher>,
    },
    /// Checked: the end was read.
    Done,
}

impl Hashing {
    fn new(size: u64) -> Hashing {
        if size < HASH_APART_ABOVE {
            return Hashing::Inline(Hasher::new());
        }
        let (full, full_rx) = sync_channel::<Vec<u8>>(IN_FLIGHT);
        let (empty_tx, empty) = sync_channel::<Vec<u8>>(IN_FLIGHT + 1);
        for _ in 0..IN_FLIGHT {
            let _ = empty_tx.send(Vec::with_capacity(PIECE));
        }
        let thread = std::thread::spawn(move || {
            let mut h = Hasher::new();
            for mut piece in full_rx.iter() {
                h.update(&piece);
                piece.clear();
                // The reader may be gone (dropped before its end): nothing to give back to.
                let _ = empty_tx.send(piece);
            }
            h
        });
        Hashing::Apart {
            piece: Vec::with_capacity(PIECE),
            full,
            empty,
            thread,
        }
    }

    fn update(&mut self, mut data: &[u8]) {
        match self {
            Hashing::Inline(h) => h.update(data),
            Hashing::Apart {
                piece, full, empty, ..
            } => {
                while !data.is_empty() {
                    let n = data.len().min(PIECE - piece.len());
                    piece.extend_from_slice(&data[..n]);
                    data = &data[n..];
                    if piece.len() == PIECE {
                        // The thread ends only when `full` is dropped (in `finish`), or when it
                        // panicked: then `finish` says so.
                        let next = empty.recv().unwrap_or_else(|_| Vec::with_capacity(PIECE));
                        let _ = full.send(std::mem::replace(piece, next));
                    }
                }
            }
            Hashing::Done => {}
        }
    }

    /// The digest and byte count of everything passed to [`Hashing::update`]; `None` once
    /// they were given.
    fn finish(&mut self) -> io::Result<Option<(Digest, u64)>> {
        let h = match std::mem::replace(self, Hashing::Done) {
            Hashing::Inline(h) => h,
            Hashing::Apart {
                piece,
                full,
                thread,
                ..
            } => {
                let _ = full.send(piece);
                drop(full);
                thread
                    .join()
                    .map_err(|_| io::Error::other("the hashing thread panicked"))?
            }
            Hashing::Done => return Ok(None),
        };
        let len = h.len();
        Ok(Some((h.finish(), len)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Inline or apart, in pieces of any size, the digest and count are the bytes'.
    #[test]
    fn hashing_apart_gives_the_digest_of_the_bytes() {
        for len in [0, 1, PIECE - 1, PIECE, PIECE * IN_FLIGHT * 3 + 5] {
            let data: Vec<u8> = (0..len).map(|i| (i * 31 + i / 999) as u8).collect();
            for size in [0, HASH_APART_ABOVE] {
                let mut h = Hashing::new(size);
                assert_eq!(matches!(h, Hashing::Apart { .. }), size > 0);
                for chunk in data.chunks(77_777) {
                    h.update(chunk);
                }
                let got = h.finish().unwrap();
                assert_eq!(got, Some((Digest::of(&data), len as u64)), "{len} bytes");
                assert_eq!(h.finish().unwrap(), None, "given once");
            }
        }
        // Dropped before its end: the thread ends (nothing hangs).
        let mut h = Hashing::new(HASH_APART_ABOVE);
        h.update(&vec![1u8; PIECE * 2]);
        drop(h);
    }
}
