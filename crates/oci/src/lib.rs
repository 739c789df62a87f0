//! Pure data types shared by every strata crate: content digests, image references,
//! descriptors, manifests and Docker's image configuration, plus a JSON writer that matches
//! Go's byte for byte. No I/O happens here.
//!
//! - [`Digest`], [`Hasher`]: `sha256:<hex>` digests.
//! - [`Reference`]: image references normalised as Docker does (`busybox` →
//!   `docker.io/library/busybox:latest`), with Docker's error texts.
//! - [`ImageConfig`], [`ContainerConfig`], [`History`], [`ImageInspect`]: Docker's config JSON
//!   and `docker inspect` view.
//! - [`GoJson`]: serialise any of them as Go's `encoding/json` would.

mod config;
mod digest;
mod gojson;
mod reference;

pub use config::{
    ConfigError, ContainerConfig, GraphDriver, HealthConfig, History, ImageConfig, ImageInspect,
    InspectMetadata, InspectRootFs, RootFs, DEFAULT_PATH_ENV, ZERO_TIME,
};
pub use digest::{Digest, DigestError, Hasher};
pub use gojson::GoJson;
pub use reference::{
    valid_tag, Reference, ReferenceError, DEFAULT_REGISTRY, DEFAULT_TAG, DOCKER_HUB_API_HOST,
    NAME_TOTAL_LENGTH_MAX,
};
