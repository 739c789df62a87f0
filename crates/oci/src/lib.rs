//! Pure data types shared by every strata crate: content digests, image references,
//! descriptors, manifests and Docker's image configuration. No I/O happens here.

mod config;
mod digest;
mod reference;

pub use config::{
    ContainerConfig, Empty, GraphDriver, HealthConfig, History, ImageConfig, ImageInspect,
    InspectMetadata, InspectRootFs, RootFs,
};
pub use digest::{Digest, DigestError, Hasher};
pub use reference::{Reference, ReferenceError, DEFAULT_REGISTRY};
