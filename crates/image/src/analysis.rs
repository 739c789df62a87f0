//! `image layers`: where an image's bytes go, computed as dive computes it.
//!
//! Every layer's tar is read from the store (its entries only; the bytes are still hashed
//! against the diff_id) into a tree of paths, built as dive's `FileTree.AddPath` builds it:
//! missing parent directories are added without a header, and a path under an opaque
//! whiteout (`.wh..wh..opq`) is left out. Then dive's `filetree.Efficiency`:
//!
//! * every leaf of every layer's tree is one occurrence of its path (a whiteout `.wh.NAME`
//!   one of `NAME`); a file counts its tar size, a whiteout the sizes of everything the
//!   layers below held at and under that path when it was a directory (0 for a file);
//! * a path seen more than once is an inefficiency worth the sum of all its occurrences;
//!   the wasted bytes are the sum over the inefficiencies;
//! * the efficiency score is the sum of each path's smallest occurrence over the sum of all
//!   occurrences (1 when there is nothing);
//! * a layer's size is the sum of its entries' sizes; the user size leaves out layer 0, and
//!   the wasted user share is wasted bytes over it (as a float: infinite with no user bytes).
//!
//! The counts per layer are strata's own: a non-directory entry is added, or changed when
//! the layers below left something at its path; each whiteout (opaque ones aside) is one
//! removal.
//!
//! Also strata's own, apart from dive's figures (which count paths, not contents): the same
//! content stored twice. Every regular file's bytes are hashed as the tar is read; a file
//! whose content an earlier file of the image (lower layer, or earlier in the same tar) holds
//! under another path is a duplicate, its size counted for its layer. The same path stored
//! again is dive's waste already and is not counted twice.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, BufReader};

use oci::{Digest, History};
use sha2::{Digest as _, Sha256};
use store::Store;

use crate::error::{Error, Result};

/// One entry of a layer tar, as the analysis needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TarEntry {
    /// The entry's name as it is in the tar.
    pub name: String,
    pub size: u64,
    pub is_dir: bool,
    /// SHA-256 of a regular file's bytes (`None` for other entries and empty files).
    pub content: Option<[u8; 32]>,
}

/// One layer of an analysed image, base first.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerAnalysis {
    pub index: usize,
    pub diff_id: Option<Digest>,
    /// `created_by` of the history entry dive pairs with the layer (`(missing)` when none).
    pub created_by: String,
    /// Sum of the sizes of the layer's tar entries.
    pub size: u64,
    pub added: usize,
    pub changed: usize,
    pub removed: usize,
    /// This layer's share of the wasted bytes: the sizes of its occurrences of the paths
    /// met more than once (the layers' shares add up to the image's wasted bytes).
    pub wasted: u64,
    /// Bytes of this layer's files whose content an earlier file holds under another path.
    pub duplicated: u64,
}

/// A file whose content an earlier file of the image holds under another path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Duplicate {
    /// The file, absolute.
    pub path: String,
    /// The first file of the image with that content.
    pub same_as: String,
    /// The layer holding `path`.
    pub layer: usize,
    pub size: u64,
}

/// A path met more than once across the layers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inefficiency {
    pub path: String,
    /// How many times it was met.
    pub count: usize,
    /// Sum of the sizes of all its occurrences.
    pub wasted: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Analysis {
    pub layers: Vec<LayerAnalysis>,
    pub size_bytes: u64,
    pub user_size_bytes: u64,
    pub wasted_bytes: u64,
    /// wasted_bytes / user_size_bytes (not finite when there are no user bytes, as in dive).
    pub wasted_user_percent: f64,
    pub efficiency: f64,
    /// Biggest first (ties by path).
    pub inefficiencies: Vec<Inefficiency>,
    /// Sum of the duplicates' sizes (not part of dive's figures).
    pub duplicated_bytes: u64,
    /// Biggest first (ties by layer, then path).
    pub duplicates: Vec<Duplicate>,
}

/// Analyses the image `id` of `store`.
pub fn analyze(store: &Store, id: &Digest) -> Result<Analysis> {
    let cfg = crate::read_config(store, id)?;
    let mut layers = Vec::new();
    for diff_id in cfg.diff_ids() {
        let rec = store
            .layer(diff_id)?
            .ok_or(store::Error::LayerNotFound(*diff_id))?;
        layers.push((Some(*diff_id), read_entries(store, &rec)?));
    }
    Ok(analyze_entries(layers, &cfg.history))
}

/// The entries of the layer `rec`, its tar read to the end so that it is checked.
fn read_entries(store: &Store, rec: &store::LayerRecord) -> Result<Vec<TarEntry>> {
    let diff_id = rec.diff_id;
    let bad = |e: io::Error| Error::Read(format!("layer {diff_id}"), e);
    let tar = crate::open_layer_tar(store, rec)?;
    let mut archive = tar::Archive::new(BufReader::with_capacity(1 << 20, tar));
    let mut out = Vec::new();
    for entry in archive.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let kind = entry.header().entry_type();
        let content = if kind.is_file() && entry.size() > 0 {
            let mut h = Sha256::new();
            io::copy(&mut entry, &mut h).map_err(bad)?;
            Some(h.finalize().into())
        } else {
            None
        };
        out.push(TarEntry {
            name,
            size: entry.size(),
            is_dir: kind.is_dir(),
            content,
        });
    }
    // What follows the end-of-archive blocks is read too: the diff_id check is at the end.
    io::copy(&mut archive.into_inner(), &mut io::sink()).map_err(bad)?;
    Ok(out)
}

const WHITEOUT: &str = ".wh.";
const OPAQUE: &str = ".wh..wh..";

/// What dive keeps of a tar header (a parent added without one has the default).
#[derive(Debug, Clone, Copy, Default)]
struct Info {
    size: u64,
    is_dir: bool,
}

/// `path.Clean` of a tar name, as the names of its components (empty for the root).
fn components(name: &str) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for c in name.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out
}

/// A layer's tree: node names joined by `/` (whiteouts keep their `.wh.` names).
type Tree = BTreeMap<String, Info>;

/// dive's `FileTree.AddPath` for every entry of a layer.
fn layer_tree(entries: &[TarEntry]) -> Tree {
    let mut tree = Tree::new();
    'entries: for e in entries {
        let names = components(&e.name);
        let mut path = String::new();
        for (i, name) in names.iter().enumerate() {
            path.push('/');
            path.push_str(name);
            if !tree.contains_key(&path) {
                if name.starts_with(OPAQUE) {
                    continue 'entries;
                }
                tree.insert(path.clone(), Info::default());
            }
            if i == names.len() - 1 {
                tree.insert(
                    path.clone(),
                    Info {
                        size: e.size,
                        is_dir: e.is_dir,
                    },
                );
            }
        }
    }
    tree
}

/// dive's `FileNode.Path`: the node's path with the whiteout prefix taken off every name.
fn logical_path(node: &str) -> String {
    node.split('/').skip(1).fold(String::new(), |mut p, name| {
        p.push('/');
        p.push_str(name.strip_prefix(WHITEOUT).unwrap_or(name));
        p
    })
}

fn is_whiteout(node: &str) -> bool {
    node.rsplit('/')
        .next()
        .is_some_and(|n| n.starts_with(WHITEOUT))
}

/// The keys of `map` strictly under `path`.
fn under<'a, V>(
    map: &'a BTreeMap<String, V>,
    path: &str,
) -> impl Iterator<Item = (&'a String, &'a V)> {
    let prefix = format!("{path}/");
    map.range(prefix.clone()..)
        .take_while(move |(k, _)| k.starts_with(&prefix))
}

fn is_leaf(tree: &Tree, node: &str) -> bool {
    under(tree, node).next().is_none()
}

/// dive's `FileTree.Stack`: `upper` laid over `lower`, children before their parents.
fn stack(lower: &mut Tree, upper: &Tree) {
    for (node, info) in upper.iter().rev() {
        let path = logical_path(node);
        if is_whiteout(node) {
            let doomed: Vec<String> = under(lower, &path).map(|(k, _)| k.clone()).collect();
            for k in doomed {
                lower.remove(&k);
            }
            lower.remove(&path);
        } else {
            let mut parent = String::new();
            let names: Vec<&str> = path.split('/').skip(1).collect();
            for name in &names[..names.len().saturating_sub(1)] {
                parent.push('/');
                parent.push_str(name);
                lower.entry(parent.clone()).or_default();
            }
            lower.insert(path, *info);
        }
    }
}

#[derive(Default)]
struct PathData {
    count: usize,
    cumulative: u64,
    min: u64,
}

/// The analysis of layers given by their entries, base first, with the image's history.
pub fn analyze_entries(
    layers: Vec<(Option<Digest>, Vec<TarEntry>)>,
    history: &[History],
) -> Analysis {
    let trees: Vec<Tree> = layers.iter().map(|(_, e)| layer_tree(e)).collect();
    let mut paths: HashMap<String, PathData> = HashMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut stacked = Tree::new();
    let mut out = Vec::new();
    let mut hist = history.iter().filter(|h| !h.empty_layer);
    // Each layer's occurrences, to share the wasted bytes out once every path is counted.
    let mut occurrences: Vec<Vec<(String, u64)>> = Vec::new();
    // Content -> the first path holding it.
    let mut contents: HashMap<[u8; 32], String> = HashMap::new();
    let mut duplicates = Vec::new();
    for (i, ((diff_id, entries), tree)) in layers.iter().zip(&trees).enumerate() {
        // dive stacks layers 0..i-1 for a whiteout of layer i; for layer 0, layer 0 itself.
        let first;
        let lower = if i == 0 {
            let mut t = Tree::new();
            stack(&mut t, tree);
            first = t;
            &first
        } else {
            &stacked
        };
        let mut mine = Vec::new();
        for (node, info) in tree {
            if !is_leaf(tree, node) {
                continue;
            }
            let path = logical_path(node);
            let size = if is_whiteout(node) {
                match lower.get(&path) {
                    Some(prev) if prev.is_dir => {
                        prev.size + under(lower, &path).map(|(_, i)| i.size).sum::<u64>()
                    }
                    _ => 0,
                }
            } else {
                info.size
            };
            mine.push((path.clone(), size));
            let data = paths.entry(path.clone()).or_insert_with(|| {
                order.push(path);
                PathData::default()
            });
            data.min = if data.count == 0 {
                size
            } else {
                data.min.min(size)
            };
            data.cumulative += size;
            data.count += 1;
        }
        let (mut added, mut changed, mut removed, mut duplicated) = (0, 0, 0, 0);
        for e in entries {
            let names = components(&e.name);
            let Some(last) = names.last() else { continue };
            if let Some(content) = e.content {
                let path = format!("/{}", names.join("/"));
                match contents.get(&content) {
                    Some(first) if *first != path => {
                        duplicated += e.size;
                        duplicates.push(Duplicate {
                            path,
                            same_as: first.clone(),
                            layer: i,
                            size: e.size,
                        });
                    }
                    Some(_) => {}
                    None => {
                        contents.insert(content, path);
                    }
                }
            }
            if last.starts_with(OPAQUE) {
                continue;
            }
            if last.starts_with(WHITEOUT) {
                removed += 1;
            } else if !e.is_dir {
                let path = format!("/{}", names.join("/"));
                if i > 0 && stacked.contains_key(&path) {
                    changed += 1;
                } else {
                    added += 1;
                }
            }
        }
        out.push(LayerAnalysis {
            index: i,
            diff_id: *diff_id,
            created_by: hist
                .next()
                .map(|h| h.created_by.clone())
                .unwrap_or_else(|| "(missing)".into()),
            size: entries.iter().map(|e| e.size).sum(),
            added,
            changed,
            removed,
            wasted: 0,
            duplicated,
        });
        occurrences.push(mine);
        stack(&mut stacked, tree);
    }
    for (layer, mine) in out.iter_mut().zip(&occurrences) {
        layer.wasted = mine
            .iter()
            .filter(|(path, _)| paths[path].count > 1)
            .map(|(_, size)| size)
            .sum();
    }
    let (minimum, discovered) = paths
        .values()
        .fold((0u64, 0u64), |(m, d), p| (m + p.min, d + p.cumulative));
    let efficiency = if discovered == 0 {
        1.0
    } else {
        minimum as f64 / discovered as f64
    };
    let mut inefficiencies: Vec<Inefficiency> = order
        .into_iter()
        .filter_map(|path| {
            let p = &paths[&path];
            (p.count > 1).then_some(Inefficiency {
                count: p.count,
                wasted: p.cumulative,
                path,
            })
        })
        .collect();
    inefficiencies.sort_by(|a, b| b.wasted.cmp(&a.wasted).then_with(|| a.path.cmp(&b.path)));
    let size_bytes: u64 = out.iter().map(|l| l.size).sum();
    let user_size_bytes: u64 = out.iter().skip(1).map(|l| l.size).sum();
    let wasted_bytes: u64 = inefficiencies.iter().map(|i| i.wasted).sum();
    duplicates.sort_by(|a: &Duplicate, b| {
        b.size
            .cmp(&a.size)
            .then(a.layer.cmp(&b.layer))
            .then_with(|| a.path.cmp(&b.path))
    });
    Analysis {
        layers: out,
        size_bytes,
        user_size_bytes,
        wasted_bytes,
        wasted_user_percent: wasted_bytes as f64 / user_size_bytes as f64,
        efficiency,
        inefficiencies,
        duplicated_bytes: duplicates.iter().map(|d| d.size).sum(),
        duplicates,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, size: u64) -> TarEntry {
        TarEntry {
            name: name.into(),
            size,
            is_dir: false,
            content: None,
        }
    }

    /// A regular file whose bytes hash to `[tag; 32]`.
    fn content(name: &str, size: u64, tag: u8) -> TarEntry {
        TarEntry {
            content: Some([tag; 32]),
            ..file(name, size)
        }
    }

    fn dir(name: &str) -> TarEntry {
        TarEntry {
            name: name.into(),
            size: 0,
            is_dir: true,
            content: None,
        }
    }

    fn hist(by: &str, empty: bool) -> History {
        History {
            created_by: by.into(),
            empty_layer: empty,
            ..Default::default()
        }
    }

    #[test]
    fn overwrite_and_delete_as_dive_counts_them() {
        let layers = vec![
            (
                None,
                vec![dir("bin/"), file("bin/sh", 100), file("etc/passwd", 10)],
            ),
            (None, vec![file("big", 1000)]),
            (None, vec![file("big", 400)]),
            (None, vec![file("etc/.wh.passwd", 0)]),
            (
                None,
                vec![dir("bin/"), file("bin/.wh..wh..opq", 0), file("bin/ls", 5)],
            ),
        ];
        let history = [
            hist("ADD base", false),
            hist("ENV x", true),
            hist("RUN big", false),
            hist("RUN big again", false),
            hist("RUN rm", false),
            hist("RUN ls", false),
        ];
        let a = analyze_entries(layers, &history);
        let by: Vec<&str> = a.layers.iter().map(|l| l.created_by.as_str()).collect();
        assert_eq!(
            by,
            ["ADD base", "RUN big", "RUN big again", "RUN rm", "RUN ls"]
        );
        let counts: Vec<(usize, usize, usize)> = a
            .layers
            .iter()
            .map(|l| (l.added, l.changed, l.removed))
            .collect();
        assert_eq!(
            counts,
            [(2, 0, 0), (1, 0, 0), (0, 1, 0), (0, 0, 1), (1, 0, 0)]
        );
        assert_eq!(a.size_bytes, 1515);
        assert_eq!(a.user_size_bytes, 1405);
        // /big: 1000 + 400 (min 400); /etc/passwd: 10 + 0 for the whiteout of a file (min 0).
        assert_eq!(
            a.inefficiencies,
            [
                Inefficiency {
                    path: "/big".into(),
                    count: 2,
                    wasted: 1400
                },
                Inefficiency {
                    path: "/etc/passwd".into(),
                    count: 2,
                    wasted: 10
                },
            ]
        );
        assert_eq!(a.wasted_bytes, 1410);
        // Each layer's share: /etc/passwd in the base, /big twice, the whiteout of a file 0.
        let shares: Vec<u64> = a.layers.iter().map(|l| l.wasted).collect();
        assert_eq!(shares, [10, 1000, 400, 0, 0]);
        // Leaves: /bin/sh 100, /etc/passwd 10+0, /big 1000+400, /bin/ls 5.
        let expected = (100 + 400 + 5) as f64 / (100 + 10 + 1400 + 5) as f64;
        assert_eq!(a.efficiency, expected);
        assert_eq!(a.wasted_user_percent, 1410.0 / 1405.0);
    }

    #[test]
    fn a_deleted_directory_counts_what_it_held() {
        let layers = vec![
            (None, vec![dir("d/"), file("d/a", 7), file("d/b", 3)]),
            (None, vec![file(".wh.d", 0)]),
        ];
        let a = analyze_entries(layers, &[]);
        assert_eq!(a.layers[1].created_by, "(missing)");
        // The whiteout is worth 10 bytes, but /d was no leaf in layer 0: dive meets /d once
        // (and /d/a, /d/b once each), so nothing is counted as wasted.
        assert!(a.inefficiencies.is_empty());
        assert_eq!(a.wasted_bytes, 0);
        assert_eq!(a.efficiency, 1.0);
        // An empty directory (a leaf), filled, then deleted: the whiteout's occurrence of /d
        // carries what the directory held.
        let layers = vec![
            (None, vec![dir("d/")]),
            (None, vec![dir("d/"), file("d/a", 7)]),
            (None, vec![file(".wh.d", 0)]),
        ];
        let a = analyze_entries(layers, &[]);
        assert_eq!(
            a.inefficiencies,
            [Inefficiency {
                path: "/d".into(),
                count: 2,
                wasted: 7
            }]
        );
        // /d: 0 then 7 (min 0); /d/a: 7.
        assert_eq!(a.efficiency, 7.0 / 14.0);
        // Layers 1 and 2 hold 7 bytes, all wasted.
        assert_eq!(a.wasted_user_percent, 1.0);
    }

    #[test]
    fn the_same_content_under_another_path_is_a_duplicate() {
        let layers = vec![
            (None, vec![content("a", 100, 1), content("b", 50, 2)]),
            // /a stored again with the same bytes: dive's waste, no duplicate.
            (None, vec![content("a", 100, 1)]),
            // /c and /d hold /a's bytes, /e /b's (in the same layer as /d).
            (None, vec![content("c", 100, 1)]),
            (None, vec![content("d", 100, 1), content("e", 50, 2)]),
        ];
        let a = analyze_entries(layers, &[]);
        let dup: Vec<u64> = a.layers.iter().map(|l| l.duplicated).collect();
        assert_eq!(dup, [0, 0, 100, 150]);
        assert_eq!(a.duplicated_bytes, 250);
        let d = |path: &str, same_as: &str, layer, size| Duplicate {
            path: path.into(),
            same_as: same_as.into(),
            layer,
            size,
        };
        assert_eq!(
            a.duplicates,
            [
                d("/c", "/a", 2, 100),
                d("/d", "/a", 3, 100),
                d("/e", "/b", 3, 50)
            ]
        );
        // dive's figures do not change: only /a counts as wasted.
        assert_eq!(a.wasted_bytes, 200);
    }

    #[test]
    fn nothing_is_fully_efficient() {
        let a = analyze_entries(vec![], &[]);
        assert_eq!(a.efficiency, 1.0);
        assert!(a.inefficiencies.is_empty());
    }
}
