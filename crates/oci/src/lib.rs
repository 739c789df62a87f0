//! Pure data types shared by every strata crate: content digests, image references,
//! descriptors, manifests and Docker's image configuration. No I/O happens here.

mod digest;
mod reference;

pub use digest::{Digest, DigestError, Hasher};
pub use reference::{Reference, ReferenceError, DEFAULT_REGISTRY};
