//! An image's layers applied one over the other: its root filesystem written to a directory
//! (`build --output type=local|tar`), and squashed images (`build --squash|--squash-all`).

use std::path::Path;

use layer::{ApplyOptions, WhiteoutMode};
use oci::{Digest, History, RootFs};
use store::{NewImage, Store};

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

/// Docker's `SquashImage`: the layers of `id` above those of `base` merged into one layer on
/// top of the base's (all of them into one when `base` is None: Podman's `--squash-all`).
/// The history is kept with the merged entries marked `empty_layer`, one entry is added for
/// the new layer, and the new image's parent is `id`. Returns the new image's ID.
pub fn squash(
    store: &mut Store,
    id: &Digest,
    base: Option<&Digest>,
    created: &str,
) -> Result<Digest> {
    let mut cfg = crate::read_config(store, id)?;
    let (base_layers, base_history) = match base {
        Some(b) => {
            let bc = crate::read_config(store, b)?;
            (bc.diff_ids().to_vec(), bc.history.len())
        }
        None => (Vec::new(), 0),
    };
    let layers = cfg.diff_ids().to_vec();
    if !layers.starts_with(&base_layers) || cfg.history.len() < base_history {
        return Err(Error::Conflict(format!(
            "cannot squash {id}: it is not built on {}",
            base.map(|b| b.to_string()).unwrap_or_default()
        )));
    }
    let staging = store.stage()?;
    let dir = staging.new_dir("squashed")?;
    // On a base, whiteouts must stay to hide the base's files; alone, the tree is complete.
    let mode = if base_layers.is_empty() {
        WhiteoutMode::Delete
    } else {
        WhiteoutMode::Merge
    };
    apply_layers(store, &layers[base_layers.len()..], &dir, mode)?;
    let staged = crate::stage_layer_dir(&staging, dir)?;
    let mut diff_ids = base_layers;
    diff_ids.push(staged.record.diff_id);
    let rootfs = cfg.rootfs.get_or_insert_with(RootFs::default);
    rootfs.kind = "layers".into();
    rootfs.diff_ids = diff_ids.clone();
    for h in cfg.history.iter_mut().skip(base_history) {
        h.empty_layer = true;
    }
    let comment = match base {
        Some(b) => format!("merge {b} to {id}"),
        None => format!("create new from {id}"),
    };
    cfg.history.push(History {
        created: Some(created.to_string()),
        comment,
        ..Default::default()
    });
    cfg.created = Some(created.to_string());
    let bytes = cfg.to_docker_json();
    let mut p = store.publish()?;
    staged.publish(&mut p)?;
    let new = p.add_image(&NewImage {
        config: &bytes,
        layers: &diff_ids,
        parent: Some(*id),
        created,
    })?;
    p.commit()?;
    Ok(new)
}
