//! Making and reading image configs.

use oci::{ContainerConfig, Digest, ImageConfig};
use store::Store;

use crate::error::{Error, Result};

/// The version strata writes as `docker_version` in the configs it makes.
pub const STRATA_VERSION: &str = concat!("strata-", env!("CARGO_PKG_VERSION"));

/// The config of a stored image.
pub fn read_config(store: &Store, id: &Digest) -> Result<ImageConfig> {
    let bytes = store.read_blob(id)?;
    ImageConfig::from_slice(&bytes).map_err(|e| Error::Archive(format!("config {id}: {e}")))
}

/// An empty `container.Config` as Docker writes it (every field present, `null` lists).
pub fn empty_container_config() -> ContainerConfig {
    ContainerConfig::default()
}
