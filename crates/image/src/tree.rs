//! `images --tree`: the store's images drawn as the tree of the layers they share. A layer
//! is a node under the layer below it (so the same diff_id on two different stacks is two
//! nodes, as two chains), and an image hangs on the node of its top layer.

use std::collections::BTreeMap;

use oci::{Digest, Reference};
use store::Store;

use crate::error::Result;

/// One layer in the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeLayer {
    pub diff_id: Digest,
    pub size: u64,
    /// The images whose top layer this is: their ID and familiar names (`busybox:latest`).
    pub images: Vec<(Digest, Vec<String>)>,
    /// The layers stacked on this one, by diff_id.
    pub children: Vec<TreeLayer>,
}

#[derive(Default)]
struct Node {
    size: u64,
    images: Vec<(Digest, Vec<String>)>,
    children: BTreeMap<Digest, Node>,
}

fn finish(nodes: BTreeMap<Digest, Node>) -> Vec<TreeLayer> {
    nodes
        .into_iter()
        .map(|(diff_id, n)| TreeLayer {
            diff_id,
            size: n.size,
            images: n.images,
            children: finish(n.children),
        })
        .collect()
}

/// An image: its ID and familiar names.
pub type TreeImage = (Digest, Vec<String>);

/// The layer trees of every image of `store` (roots by diff_id), and the images without a
/// layer.
pub fn layer_tree(store: &Store) -> Result<(Vec<TreeLayer>, Vec<TreeImage>)> {
    let mut roots: BTreeMap<Digest, Node> = BTreeMap::new();
    let mut empty = Vec::new();
    let mut images = store.images()?;
    images.sort_by_key(|i| i.id);
    for img in images {
        let names = familiar_names(&img.tags);
        let Some((top, below)) = img.layers.split_last() else {
            empty.push((img.id, names));
            continue;
        };
        let mut level = &mut roots;
        for diff_id in below {
            level = &mut level.entry(*diff_id).or_default().children;
        }
        level.entry(*top).or_default().images.push((img.id, names));
        // Sizes come from the store's records, once per node.
        let mut level = &mut roots;
        for diff_id in &img.layers {
            let node = level.get_mut(diff_id).expect("inserted above");
            if node.size == 0 {
                node.size = store.layer(diff_id)?.map(|r| r.size).unwrap_or(0);
            }
            level = &mut node.children;
        }
    }
    Ok((finish(roots), empty))
}

/// For each layer of the image `id` (base first), the other images of `store` built on the
/// same stack up to that layer (the same chain: their first layers are this image's), which
/// therefore share that layer's directory on disk. The classic builder's intermediate images
/// (untagged parents of other images, which `images` hides too) are left out.
pub fn layer_sharing(store: &Store, id: &Digest) -> Result<Vec<Vec<TreeImage>>> {
    let images = store.images()?;
    let Some(me) = images.iter().find(|i| i.id == *id) else {
        return Err(store::Error::ImageNotFound(*id).into());
    };
    let mut out = vec![Vec::new(); me.layers.len()];
    let parents: std::collections::HashSet<Digest> =
        images.iter().filter_map(|i| i.parent).collect();
    let mut others: Vec<_> = images
        .iter()
        .filter(|i| i.id != *id && !(i.tags.is_empty() && parents.contains(&i.id)))
        .collect();
    others.sort_by_key(|i| i.id);
    for other in others {
        let common = me
            .layers
            .iter()
            .zip(&other.layers)
            .take_while(|(a, b)| a == b)
            .count();
        let names = familiar_names(&other.tags);
        for shared in out.iter_mut().take(common) {
            shared.push((other.id, names.clone()));
        }
    }
    Ok(out)
}

fn familiar_names(tags: &[String]) -> Vec<String> {
    tags.iter()
        .map(|t| {
            Reference::parse(t)
                .map(|r| r.familiar())
                .unwrap_or_else(|_| t.clone())
        })
        .collect()
}
