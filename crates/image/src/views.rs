//! The data behind `images`, `history`, `inspect` and `system df`, computed from the store.
//! Rendering (tables, templates, human sizes) is the binary's business.

use std::collections::HashMap;

use oci::{Digest, GraphDriver, ImageInspect, InspectMetadata, Reference};
use store::{ImageRecord, Store};

use crate::config::read_config;
use crate::error::Result;

/// One row of `history`, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRow {
    /// The image this entry belongs to, when it is in the store; `None` prints `<missing>`.
    pub id: Option<Digest>,
    pub created: Option<String>,
    pub created_by: String,
    /// Docker's DiffSize of the entry's layer; 0 for an empty layer.
    pub size: u64,
    pub comment: String,
}

/// The history of `id`, with IDs assigned by walking the parent chain, as Docker does.
pub fn history(store: &Store, id: &Digest) -> Result<Vec<HistoryRow>> {
    let img = store
        .image(id)?
        .ok_or_else(|| crate::Error::NoSuchImage(id.to_string()))?;
    let cfg = read_config(store, id)?;
    let mut sizes = Vec::new();
    for l in &img.layers {
        sizes.push(store.layer(l)?.map(|r| r.size).unwrap_or(0));
    }
    let mut layer_idx = 0;
    let mut rows: Vec<HistoryRow> = cfg
        .history
        .iter()
        .map(|h| {
            let size = if h.empty_layer {
                0
            } else {
                let s = sizes.get(layer_idx).copied().unwrap_or(0);
                layer_idx += 1;
                s
            };
            HistoryRow {
                id: None,
                created: h.created.clone(),
                created_by: h.created_by.clone(),
                size,
                comment: h.comment.clone(),
            }
        })
        .collect();
    rows.reverse();
    let mut cur = Some(img);
    for row in rows.iter_mut() {
        let Some(rec) = cur.take() else { break };
        row.id = Some(rec.id);
        cur = match rec.parent {
            Some(p) => store.image(&p)?,
            None => None,
        };
    }
    Ok(rows)
}

/// One row of `images`: an image under one of its names (or `<none>`).
#[derive(Debug, Clone)]
pub struct ImageRow {
    pub repository: Option<String>,
    pub tag: Option<String>,
    pub digest: Option<String>,
    pub id: Digest,
    pub created: String,
    pub size: u64,
    pub shared_size: u64,
}

/// The rows `images` lists: every name of every image; untagged images as `<none>` when
/// they are dangling (or, with `all`, intermediate images too). Newest first.
pub fn image_rows(store: &Store, all: bool) -> Result<Vec<ImageRow>> {
    crate::filter::list_images(store, all, &crate::filter::ImageFilters::default())
}

/// The rows of one image: one per tag, one per repository digest of a repository without a
/// tag, or a single `<none>` row when it has neither.
pub(crate) fn image_row(img: &ImageRecord, created: String, shared_size: u64) -> Vec<ImageRow> {
    let base = ImageRow {
        repository: None,
        tag: None,
        digest: None,
        id: img.id,
        created,
        size: img.size,
        shared_size,
    };
    let digest_for = |repo: &str| {
        img.repo_digests.iter().find_map(|d| {
            let r = Reference::parse(d).ok()?;
            (r.name() == repo)
                .then(|| r.digest.as_ref().map(|d| d.to_string()))
                .flatten()
        })
    };
    if img.tags.is_empty() && img.repo_digests.is_empty() {
        return vec![base];
    }
    let mut rows = Vec::new();
    let mut repos_with_tags = Vec::new();
    for t in &img.tags {
        let Ok(r) = Reference::parse(t) else { continue };
        repos_with_tags.push(r.name());
        rows.push(ImageRow {
            repository: Some(r.repository_familiar()),
            tag: r.tag.as_deref().map(str::to_string),
            digest: digest_for(&r.name()),
            ..base.clone()
        });
    }
    for d in &img.repo_digests {
        let Ok(r) = Reference::parse(d) else { continue };
        if repos_with_tags.contains(&r.name()) {
            continue;
        }
        rows.push(ImageRow {
            repository: Some(r.repository_familiar()),
            tag: None,
            digest: r.digest.as_ref().map(|d| d.to_string()),
            ..base.clone()
        });
    }
    rows
}

/// For each image, the sum of its layers that another image also uses (Docker's SHARED SIZE).
pub fn shared_sizes(store: &Store, images: &[ImageRecord]) -> Result<HashMap<Digest, u64>> {
    let mut users: HashMap<Digest, usize> = HashMap::new();
    for img in images {
        let mut seen = std::collections::HashSet::new();
        for l in &img.layers {
            if seen.insert(*l) {
                *users.entry(*l).or_default() += 1;
            }
        }
    }
    let mut out = HashMap::new();
    for img in images {
        let mut total = 0;
        let mut seen = std::collections::HashSet::new();
        for l in &img.layers {
            if seen.insert(*l) && users[l] > 1 {
                total += store.layer(l)?.map(|r| r.size).unwrap_or(0);
            }
        }
        out.insert(img.id, total);
    }
    Ok(out)
}

/// Docker's `inspect` object for an image.
pub fn inspect(store: &Store, id: &Digest) -> Result<ImageInspect> {
    let img = store
        .image(id)?
        .ok_or_else(|| crate::Error::NoSuchImage(id.to_string()))?;
    let cfg = read_config(store, id)?;
    let familiar = |n: &String| {
        Reference::parse(n)
            .map(|r| r.familiar())
            .unwrap_or_else(|_| n.clone())
    };
    let mut out = ImageInspect::from_config(id, &cfg);
    out.repo_tags = img.tags.iter().map(familiar).collect();
    out.repo_digests = img.repo_digests.iter().map(familiar).collect();
    out.parent = img.parent.map(|p| p.to_string()).unwrap_or_default();
    out.size = img.size as i64;
    out.virtual_size = img.size as i64;
    let dirs: Vec<String> = img
        .layers
        .iter()
        .rev()
        .map(|l| store.layer_dir(l).display().to_string())
        .collect();
    // As overlay2 reports an image: its top layer is the upper directory, the others
    // (top down) the lower ones. (strata keeps no merged or work directory for an image.)
    let mut data = std::collections::BTreeMap::new();
    if let Some((top, rest)) = dirs.split_first() {
        data.insert("UpperDir".to_string(), top.clone());
        if !rest.is_empty() {
            data.insert("LowerDir".to_string(), rest.join(":"));
        }
    }
    out.graph_driver = GraphDriver {
        data: Some(data),
        name: "overlay2".into(),
    };
    if let Some(t) = &img.last_tag_time {
        out.metadata = InspectMetadata {
            last_tag_time: t.clone(),
        };
    }
    Ok(out)
}

/// Totals for `system df`'s Images line (which images are in use is the containers' to say).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiskUsage {
    pub images: usize,
    /// Every stored layer counted once.
    pub images_size: u64,
}

pub fn disk_usage(store: &Store) -> Result<DiskUsage> {
    let images = store.images()?;
    let total: u64 = store.layers()?.iter().map(|l| l.size).sum();
    Ok(DiskUsage {
        images: images.len(),
        images_size: total,
    })
}
