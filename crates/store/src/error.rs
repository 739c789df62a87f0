//! The store's error type.

use std::path::{Path, PathBuf};

use oci::Digest;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("metadata database: {0}")]
    Db(#[from] rusqlite::Error),
    #[error("digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch { expected: Digest, actual: Digest },
    #[error("blob {0} not found in the store")]
    BlobNotFound(Digest),
    #[error("layer {0} is not in the store")]
    LayerNotFound(Digest),
    #[error("image {0} is not in the store")]
    ImageNotFound(Digest),
    #[error("Conflict. The container name \"/{name}\" is already in use by container \"{id}\". You have to remove (or rename) that container to be able to reuse that name.")]
    NameInUse { name: String, id: String },
    #[error("No such container: {0}")]
    ContainerNotFound(String),
    #[error("multiple containers found with provided prefix: {0}")]
    AmbiguousContainer(String),
    #[error("image {image} is in use by container {container}")]
    ImageInUse { image: Digest, container: String },
    #[error("image {0} is being used by a running build")]
    ImageHeld(Digest),
    #[error("get {0}: no such volume")]
    VolumeNotFound(String),
    #[error("remove {name}: volume is in use - [{}]", containers.join(", "))]
    VolumeInUse {
        name: String,
        containers: Vec<String>,
    },
    #[error("network with name {0} already exists")]
    NetworkNameInUse(String),
    #[error("network {0} not found")]
    NetworkNotFound(String),
    #[error("repairing {subject}: {source}")]
    Repair {
        subject: String,
        #[source]
        source: Box<Error>,
    },
    #[error("corrupt metadata: {0}")]
    Corrupt(String),
}

impl Error {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
