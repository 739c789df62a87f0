//! Layer tars: applying them to directories and writing directories as them.
//!
//! * [`apply_layer`] / [`apply_layer_with`] read a gzip, zstd or plain layer tar (detected by
//!   its magic bytes), unpack it confined to a root directory (no entry can touch anything
//!   outside: names are cleaned, parents are resolved with `openat2(RESOLVE_IN_ROOT)` or an
//!   equivalent walk), translate whiteouts for overlayfs or delete what they name, and return
//!   the layer's diff_id, blob digest and sizes computed while streaming.
//! * [`write_layer`] turns an overlay upper directory into a layer tar in Docker's format
//!   (whiteout devices and opaque dirs become `.wh.` entries); [`write_tree`] does the same
//!   for a plain directory. Both hash the tar and the compressed blob in one pass and are
//!   deterministic.
//! * [`decompress`] opens any gzip/zstd/plain stream by magic bytes; [`compress_reader`]
//!   compresses a stream where it leaves the machine (parallel gzip, multi-threaded zstd),
//!   always to the same bytes.

mod apply;
mod compress;
mod direct;
mod error;
mod resolve;
mod size;
pub mod split;
mod stream;
mod tarfmt;
mod write;

pub use apply::{
    apply_layer, apply_layer_recording, apply_layer_with, in_user_namespace, max_entries,
    opaque_xattr, start_writeback, ApplyOptions, ApplyReport, WhiteoutMode, DEFAULT_MAX_ENTRIES,
    MAX_ENTRIES_ENV, OVERLAY_OPAQUE_XATTR, USER_OVERLAY_OPAQUE_XATTR, WHITEOUT_OPAQUE,
    WHITEOUT_PREFIX,
};
pub use compress::{
    compress_reader, CompressOptions, DEFAULT_GZIP_LEVEL, DEFAULT_ZSTD_LEVEL, GZIP_BLOCK,
};
pub use direct::DirectFile;
pub use error::{LayerError, Result};
pub use size::diff_size;
pub use split::TarReader;
pub use stream::{decompress, decompress_send, Compression};
pub use write::{
    archive_tree, write_layer, write_layer_split, write_tree, LayerDigests, SplitLayer,
};
