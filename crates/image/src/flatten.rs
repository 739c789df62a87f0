//! An image's layers applied one over the other: its root filesystem written to a directory
//! (`build --output type=local|tar`).

use std::path::Path;

use layer::{ApplyOptions, WhiteoutMode};
use oci::Digest;
use store::Store;

use crate::error::{Error, Result};

/// Applies `layers` of `store`, in order, to the directory `dir`.
fn apply_layers(
    store: &Store,
    layers: &[Digest],
    dir: &Path,
    whiteouts: WhiteoutMode,
) -> Result<()> {
    let opts = ApplyOptions {
        whiteouts,
        ..Default::default()
    };
    for diff_id in layers {
        let rec = store
            .layer(diff_id)?
            .ok_or(store::Error::LayerNotFound(*diff_id))?;
        let tar = crate::open_layer_tar(store, &rec)?;
        layer::apply_layer_with(std::io::BufReader::with_capacity(1 << 20, tar), dir, &opts)
            .map_err(|e| Error::Archive(format!("layer {diff_id}: {e}")))?;
    }
    Ok(())
}

/// Writes the root filesystem of the image `id` (every layer applied, whiteouts carried out)
/// into the directory `dest`, made if missing. Every entry is written confined to `dest`.
pub fn unpack_rootfs(store: &Store, id: &Digest, dest: &Path) -> Result<()> {
    let cfg = crate::read_config(store, id)?;
    std::fs::create_dir_all(dest).map_err(|e| Error::io(dest, e))?;
    apply_layers(store, cfg.diff_ids(), dest, WhiteoutMode::Delete)
}
