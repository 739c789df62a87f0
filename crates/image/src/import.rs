//! `import`: a root filesystem tarball becomes a one-layer image, as `docker import` makes it
//! (no parent, one history entry with the comment `Imported from -` or the message, config
//! holding only what `--change` set).

use std::io::Read;

use oci::{Digest, History, ImageConfig, Reference, RootFs};
use store::{NewImage, Store};

use crate::changes::apply_change;
use crate::config::{empty_container_config, STRATA_VERSION};
use crate::error::Result;
use crate::ingest::ingest_layer;

#[derive(Debug, Default)]
pub struct ImportOptions<'a> {
    /// Dockerfile instructions applied to the config (`-c`).
    pub changes: &'a [String],
    /// The history comment (`-m`); `Imported from -` otherwise.
    pub message: Option<&'a str>,
    /// Where the tarball came from, for the default comment (`-` for a file or stdin).
    pub source: &'a str,
    pub tag: Option<&'a Reference>,
}

/// Imports the tarball read from `input`; returns the new image's ID.
pub fn import(store: &mut Store, input: impl Read, opts: &ImportOptions<'_>) -> Result<Digest> {
    let mut cfg = empty_container_config();
    for c in opts.changes {
        apply_change(&mut cfg, c)?;
    }
    let staging = store.stage()?;
    let layer = ingest_layer(&staging, "the imported tarball", input, None, None)?;
    let created = oci::now();
    let comment = opts
        .message
        .map(str::to_string)
        .unwrap_or_else(|| format!("Imported from {}", opts.source));
    let config = ImageConfig {
        architecture: oci::host_architecture().to_string(),
        comment: comment.clone(),
        config: Some(cfg),
        container_config: Some(empty_container_config()),
        created: Some(created.clone()),
        docker_version: STRATA_VERSION.to_string(),
        history: vec![History {
            created: Some(created.clone()),
            comment,
            ..Default::default()
        }],
        os: "linux".into(),
        rootfs: Some(RootFs {
            kind: "layers".into(),
            diff_ids: vec![layer.record.diff_id],
            ..Default::default()
        }),
        ..Default::default()
    };
    let bytes = config.to_docker_json();
    let mut p = store.publish()?;
    let diff_id = layer.publish(&mut p)?;
    let id = p.add_image(&NewImage {
        config: &bytes,
        layers: &[diff_id],
        parent: None,
        created: &created,
    })?;
    if let Some(t) = opts.tag {
        p.tag(&t.to_string(), &id)?;
    }
    p.commit()?;
    if let Some(t) = opts.tag {
        crate::record_event(store, "tag", &id, Some(&t.familiar()));
    }
    crate::record_event(store, "import", &id, None);
    Ok(id)
}
