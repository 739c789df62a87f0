//! Images on top of the store: finding them by name or ID, bringing them in (`import`,
//! `load`), writing them out (`save`), removing them (`rmi`, `image prune`), and the views
//! that `images`, `history`, `inspect` and `system df` print.
//!
//! Images are never edited in place: a new config is a new image (its ID is the sha256 of
//! the config bytes), and layers are shared by diff_id.
//!
//! **Architecture invariant:** this crate never parses Dockerfiles beyond the single
//! instructions of `import --change`, and never runs anything.

mod analysis;
mod cache;
mod changes;
mod config;
mod error;
mod export;
mod filter;
mod flatten;
mod import;
mod ingest;
mod layer_tar;
mod load;
mod remove;
mod resolve;
mod save;
mod tree;
mod views;

pub use analysis::{
    analyze, analyze_entries, Analysis, Duplicate, Inefficiency, LayerAnalysis, TarEntry,
};
pub use cache::{
    export_cache, import_cache, import_cache_from, plan_cache, CacheManifests, CachePlan,
    CacheSource, IMAGE_ANNOTATION, PARENT_ANNOTATION,
};
pub use changes::apply_change;
pub use config::{read_config, STRATA_VERSION};
pub use error::{Error, Result};
pub use export::{compression_of, manifest_layer_type, ExportOptions};
pub use filter::{list_images, ImageFilters};
pub use flatten::{squash, unpack_rootfs};
pub use import::{import, ImportOptions};
pub use ingest::{ingest_layer, stage_layer_dir, StagedLayer};
pub use layer_tar::{open_layer_tar, LayerSource, LayerTar};
pub use load::{load, Loaded};
pub use remove::{prune, remove, RemoveOptions, Report};
pub use resolve::{local_tags, parse_name, resolve};
pub use save::{plan as plan_save, save, write_archive, SaveItem};
pub use tree::{layer_sharing, layer_tree, TreeImage, TreeLayer};
pub use views::{
    disk_usage, history, image_rows, inspect, shared_sizes, DiskUsage, HistoryRow, ImageRow,
};

use oci::Digest;
use store::Store;

/// The OCI media type of a layer blob compressed with `c`.
pub fn layer_media_type(c: layer::Compression) -> String {
    format!(
        "application/vnd.oci.image.layer.v1.tar{}",
        c.media_type_suffix()
    )
}

/// Records an image event as Docker's daemon sends it: the image's labels, and `name` (the
/// image ID when no name is given, as Docker's `untag`, `delete`, `load`, `save`…).
pub fn record_event(store: &Store, action: &str, id: &Digest, name: Option<&str>) {
    let labels = if action == "delete" {
        Default::default()
    } else {
        read_config(store, id)
            .ok()
            .and_then(|c| c.config.and_then(|c| c.labels))
            .unwrap_or_default()
    };
    let id = id.to_string();
    store::events::record(
        store,
        store::events::Event::image(action, &id)
            .attrs(labels)
            .attr("name", name.unwrap_or(&id)),
    );
}

/// Records a `pull` or `push` event: Docker names the actor by the reference
/// (`busybox:latest`) and the `name` attribute by its repository (`busybox`).
pub fn record_reference_event(store: &Store, action: &str, r: &oci::Reference, id: &Digest) {
    let labels = read_config(store, id)
        .ok()
        .and_then(|c| c.config.and_then(|c| c.labels))
        .unwrap_or_default();
    store::events::record(
        store,
        store::events::Event::image(action, &r.familiar())
            .attrs(labels)
            .attr("name", r.repository_familiar()),
    );
}

/// Points `target` at the image `source` names, as `tag` does.
pub fn tag(store: &mut Store, source: &str, target: &str) -> Result<Digest> {
    let id = resolve(store, source)?;
    let r = parse_name(target)?;
    if r.digest.as_ref().is_some() {
        return Err(Error::InvalidReference(
            "refusing to create a tag with a digest reference".into(),
        ));
    }
    let mut p = store.publish()?;
    p.tag(&r.to_string(), &id)?;
    p.commit()?;
    record_event(store, "tag", &id, Some(&r.familiar()));
    Ok(id)
}
