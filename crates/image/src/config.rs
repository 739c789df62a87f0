//! Making and reading image configs.

use oci::{ContainerConfig, Digest, ImageConfig};
use store::Store;

use crate::error::{Error, Result};

/// This machine's architecture in Go's words, as image configs and platforms name it.
pub fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        "arm" => "arm",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        other => other,
    }
}

/// The version strata writes as `docker_version` in the configs it makes.
pub const STRATA_VERSION: &str = concat!("strata-", env!("CARGO_PKG_VERSION"));

/// Now, as Docker writes times in configs (RFC 3339 with nanoseconds, UTC).
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// The config of a stored image.
pub fn read_config(store: &Store, id: &Digest) -> Result<ImageConfig> {
    let bytes = store.read_blob(id)?;
    ImageConfig::from_slice(&bytes).map_err(|e| Error::Archive(format!("config {id}: {e}")))
}

/// An empty `container.Config` as Docker writes it (every field present, `null` lists).
pub fn empty_container_config() -> ContainerConfig {
    ContainerConfig::default()
}
