//! Pure data types shared by every strata crate: content digests, image references,
//! descriptors, manifests and Docker's image configuration, plus a JSON writer that matches
//! Go's byte for byte. No I/O happens here.
//!
//! - [`Digest`], [`Hasher`]: `sha256:<hex>` digests.
//! - [`Reference`]: image references normalised as Docker does (`busybox` →
//!   `docker.io/library/busybox:latest`), with Docker's error texts.
//! - [`ImageConfig`], [`ContainerConfig`], [`History`], [`ImageInspect`]: Docker's config JSON
//!   and `docker inspect` view.
//! - [`Manifest`], [`Index`], [`Descriptor`], [`media_type`]: OCI and Docker schema2
//!   manifests; [`SaveManifestEntry`]: `docker save`'s `manifest.json`; [`chain_id`].
//! - [`GoJson`]: serialise any of them as Go's `encoding/json` would.

mod config;
mod digest;
mod glob;
mod goerr;
mod gojson;
mod manifest;
mod reference;
mod time;

pub use config::{
    go_architecture, host_architecture, ConfigError, ContainerConfig, GraphDriver, HealthConfig,
    History, ImageConfig, ImageInspect, InspectMetadata, InspectRootFs, RootFs, DEFAULT_PATH,
    DEFAULT_PATH_ENV, ZERO_TIME,
};
pub use digest::{Digest, DigestError, Hasher};
pub use glob::{glob_match, has_glob, path_match, BadPattern};
pub use goerr::go_io_text;
pub use gojson::GoJson;
pub use manifest::{
    annotation, chain_id, chain_ids, empty_layer_diff_id, media_kind, media_type, sniff_kind,
    Compression, Descriptor, Index, Manifest, ManifestError, MediaKind, Platform,
    SaveManifestEntry, SaveRepositories, OCI_LAYOUT_FILE_CONTENT,
};
pub use reference::{
    valid_tag, Reference, ReferenceError, DEFAULT_REGISTRY, DEFAULT_TAG, DOCKER_HUB_API_HOST,
    NAME_TOTAL_LENGTH_MAX,
};
pub use time::{now, now_nanos, unix_time};
