//! Writing blobs: bytes go to a temporary file in a staging area while being hashed; the
//! result is a [`StagedBlob`] that a publisher later fsyncs into place under its digest.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use oci::{Digest, Hasher};

use crate::error::{Error, Result};
use crate::staging::random_u64;

/// Hashes and writes a blob into a staging area.
pub struct BlobWriter {
    path: PathBuf,
    file: io::BufWriter<File>,
    hasher: Hasher,
}

/// A complete, fsynced blob in a staging area, not yet published.
#[derive(Debug)]
pub struct StagedBlob {
    pub(crate) path: PathBuf,
    pub digest: Digest,
    pub size: u64,
}

impl BlobWriter {
    pub(crate) fn create(dir: &Path) -> Result<BlobWriter> {
        let path = dir.join(format!("blob-{:016x}", random_u64()));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        Ok(BlobWriter {
            path,
            file: io::BufWriter::with_capacity(1 << 20, file),
            hasher: Hasher::new(),
        })
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.hasher.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hasher.is_empty()
    }

    /// Flushes and fsyncs the blob. When `expected` is given, a different digest is an error
    /// and the bytes are discarded.
    pub fn finish(self, expected: Option<&Digest>) -> Result<StagedBlob> {
        let BlobWriter { path, file, hasher } = self;
        let size = hasher.len();
        let digest = hasher.finish();
        let file = file
            .into_inner()
            .map_err(|e| Error::io(&path, e.into_error()))?;
        if let Some(exp) = expected {
            if *exp != digest {
                let _ = std::fs::remove_file(&path);
                return Err(Error::DigestMismatch {
                    expected: *exp,
                    actual: digest,
                });
            }
        }
        file.sync_all().map_err(|e| Error::io(&path, e))?;
        Ok(StagedBlob { path, digest, size })
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// fsyncs a directory so that renames into it are durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::io(dir, e))
}
