//! The differ: the only place where layer tars and directories meet.
//!
//! * [`apply_layer`] unpacks a layer tar (gzip, zstd, bzip2, xz or plain, told apart by their
//!   magic bytes) into a directory, confined to it, and reports its digests and size.
//! * [`write_layer`] turns a directory diff (an overlay upper directory, whiteouts and opaque
//!   directories included) or a plain tree into a layer tar in Docker's format, producing the
//!   diff_id and the compressed blob's digest in one pass.
//!
//! **Architecture invariant:** no entry of an archive can create or change anything outside
//! the target directory. Every path is resolved beneath the root with `openat2(2)` and
//! `RESOLVE_IN_ROOT`, so `..`, absolute names and symlinks (planted earlier in the same
//! archive or already present) cannot lead out; names with `..` or a leading `/` are refused.

mod apply;
mod compress;
mod error;
mod size;
mod write;

pub use apply::{apply_layer, ApplyOptions, ApplyReport, WhiteoutMode};
pub use compress::{decompress, detect, Compression};
pub use error::{Error, Result};
pub use size::diff_size;
pub use write::{write_layer, LayerDigests, WriteOptions};

/// The name prefix of a whiteout entry in a layer tar.
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// The name of the entry that makes its directory opaque.
pub const OPAQUE_MARKER: &str = ".wh..wh..opq";
/// The xattr overlayfs uses to mark an opaque directory.
pub const OVERLAY_OPAQUE_XATTR: &str = "trusted.overlay.opaque";
