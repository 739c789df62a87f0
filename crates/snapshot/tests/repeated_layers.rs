//! Stacks that hold the same layer directory more than once (an image whose `RUN chmod` layer
//! equals its `COPY` layer, or `touch`/`rm` repeated within one second). overlayfs refuses a
//! directory twice in one stack, so the snapshotters mount each layer at its top occurrence
//! only ([`snapshot::effective_lowers`]). These tests check that this gives exactly what
//! applying every layer in order gives (Docker's semantics), against a model of layer
//! application, for hundreds of generated stacks with files, whiteouts, opaque and merged
//! directories, repeated adjacently and apart, on both snapshotters; and against the kernel's
//! own overlay of the full stack, with each repeated occurrence replaced by a copy of the
//! layer (a copy is another directory, which the kernel accepts).

mod common;
#[path = "../../../support/rng.rs"]
mod rng;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use common::require_root;
use rng::Rng;
use snapshot::{CopySnapshotter, OverlaySnapshotter, Snapshotter};

/// One entry of a layer, as a layer directory holds it.
#[derive(Debug, Clone)]
enum Entry {
    File(String),
    Whiteout,
    Dir {
        opaque: bool,
        children: BTreeMap<String, Entry>,
    },
}

/// One entry of a merged tree.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Merged {
    File(String),
    Dir(BTreeMap<String, Merged>),
    /// A whiteout in a directory overlayfs does not merge (one that only one layer holds, or
    /// an opaque one): `readdir` lists it, `stat` says ENOENT. Docker's overlay2 shows the
    /// same for such layers; a layer tar applied in order has nothing there.
    Ghost,
}

/// `tree` without ghosts: what applying the layers in order gives.
fn without_ghosts(tree: &BTreeMap<String, Merged>) -> BTreeMap<String, Merged> {
    tree.iter()
        .filter_map(|(k, v)| match v {
            Merged::Ghost => None,
            Merged::Dir(sub) => Some((k.clone(), Merged::Dir(without_ghosts(sub)))),
            f => Some((k.clone(), f.clone())),
        })
        .collect()
}

/// Applies `layer` onto `tree` as a layer tar is applied: a file replaces whatever was there,
/// a whiteout removes it, an opaque directory (or a directory over a non-directory) starts
/// empty, a plain directory merges.
fn apply(tree: &mut BTreeMap<String, Merged>, layer: &BTreeMap<String, Entry>) {
    for (name, e) in layer {
        match e {
            Entry::File(c) => {
                tree.insert(name.clone(), Merged::File(c.clone()));
            }
            Entry::Whiteout => {
                tree.remove(name);
            }
            Entry::Dir { opaque, children } => {
                let keep = !opaque && matches!(tree.get(name), Some(Merged::Dir(_)));
                if !keep {
                    tree.insert(name.clone(), Merged::Dir(BTreeMap::new()));
                }
                let Some(Merged::Dir(sub)) = tree.get_mut(name) else {
                    unreachable!()
                };
                apply(sub, children);
            }
        }
    }
}

fn write_layer(dir: &Path, layer: &BTreeMap<String, Entry>) {
    fs::create_dir_all(dir).unwrap();
    for (name, e) in layer {
        let p = dir.join(name);
        match e {
            Entry::File(c) => fs::write(&p, c).unwrap(),
            Entry::Whiteout => {
                let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
                // SAFETY: valid path.
                assert_eq!(unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR, 0) }, 0);
            }
            Entry::Dir { opaque, children } => {
                write_layer(&p, children);
                if *opaque {
                    let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
                    // SAFETY: valid strings.
                    let r = unsafe {
                        libc::setxattr(
                            c.as_ptr(),
                            c"trusted.overlay.opaque".as_ptr(),
                            b"y".as_ptr().cast(),
                            1,
                            0,
                        )
                    };
                    assert_eq!(r, 0, "set opaque on {}", p.display());
                }
            }
        }
    }
}

fn read_tree(dir: &Path) -> BTreeMap<String, Merged> {
    let mut out = BTreeMap::new();
    for e in fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        let ft = e.file_type().unwrap();
        let m = if ft.is_dir() {
            Merged::Dir(read_tree(&e.path()))
        } else if ft.is_file() {
            Merged::File(fs::read_to_string(e.path()).unwrap())
        } else if ft.is_char_device()
            && fs::symlink_metadata(e.path()).unwrap_err().kind() == std::io::ErrorKind::NotFound
        {
            Merged::Ghost
        } else {
            panic!("unexpected entry {}", e.path().display())
        };
        out.insert(name, m);
    }
    out
}

/// A random layer over a small set of names so layers collide: files, whiteouts, plain and
/// opaque directories, two levels deep. File contents name the layer and path.
fn gen_layer(rng: &mut Rng, id: usize, prefix: &str, depth: usize) -> BTreeMap<String, Entry> {
    let names: &[&str] = match depth {
        0 => &["a", "b", "d"],
        1 => &["a", "d"],
        _ => &["a", "b"],
    };
    let mut out = BTreeMap::new();
    for n in names {
        let path = format!("{prefix}/{n}");
        let roll = rng.below(100);
        let e = if roll < 35 {
            continue;
        } else if roll < 55 {
            Entry::File(format!("layer {id} {path}"))
        } else if roll < 70 {
            Entry::Whiteout
        } else if depth < 2 {
            Entry::Dir {
                opaque: rng.below(3) == 0,
                children: gen_layer(rng, id, &path, depth + 1),
            }
        } else {
            Entry::File(format!("layer {id} {path}"))
        };
        out.insert(n.to_string(), e);
    }
    out
}

/// Mounts `stack` (top first) through `s` and returns the merged tree.
fn mounted_tree(
    s: &dyn Snapshotter,
    key: &str,
    stack: &[PathBuf],
    at: &Path,
) -> BTreeMap<String, Merged> {
    fs::create_dir_all(at).unwrap();
    snapshot::mount_all(&s.prepare(key, stack).unwrap(), at).unwrap();
    let tree = read_tree(at);
    snapshot::unmount_all(at).unwrap();
    s.remove(key).unwrap();
    tree
}

/// The kernel's overlay of `stack` (top first) with every repeated directory replaced by a
/// copy of it.
fn kernel_tree_with_copies(stack: &[PathBuf], scratch: &Path) -> BTreeMap<String, Merged> {
    let mut dirs = Vec::new();
    for (i, l) in stack.iter().enumerate() {
        if stack[..i].contains(l) {
            let copy = scratch.join(format!("copy{i}"));
            let st = std::process::Command::new("cp")
                .arg("-a")
                .arg(l)
                .arg(&copy)
                .status()
                .unwrap();
            assert!(st.success(), "cp -a {}", l.display());
            dirs.push(copy);
        } else {
            dirs.push(l.clone());
        }
    }
    let at = scratch.join("kernel");
    fs::create_dir_all(&at).unwrap();
    let list: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    let m = snapshot::Mount {
        kind: "overlay".into(),
        source: "overlay".into(),
        target: PathBuf::new(),
        options: vec![format!("lowerdir={}", list.join(":"))],
    };
    snapshot::mount_all(&[m], &at).unwrap();
    let tree = read_tree(&at);
    snapshot::unmount_all(&at).unwrap();
    tree
}

fn generated_stacks(s: &dyn Snapshotter, root: &Path, cases: u64) {
    for seed in 1..=cases {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let case = root.join(format!("case{seed}"));
        let distinct = 2 + rng.below(3) as usize;
        let layers: Vec<(PathBuf, BTreeMap<String, Entry>)> = (0..distinct)
            .map(|i| {
                let l = gen_layer(&mut rng, i, "", 0);
                let dir = case.join(format!("layer{i}"));
                write_layer(&dir, &l);
                (dir, l)
            })
            .collect();
        // Bottom first, at least one layer twice (adjacent or apart).
        let len = distinct + 1 + rng.below(3) as usize;
        let mut order: Vec<usize> = (0..len)
            .map(|_| rng.below(distinct as u64) as usize)
            .collect();
        if order
            .iter()
            .all(|&i| order.iter().filter(|&&j| j == i).count() == 1)
        {
            order[len - 1] = order[0];
        }
        let mut want = BTreeMap::new();
        for &i in &order {
            apply(&mut want, &layers[i].1);
        }
        let stack: Vec<PathBuf> = order.iter().rev().map(|&i| layers[i].0.clone()).collect();
        let got = mounted_tree(s, &format!("c{seed}"), &stack, &case.join("merged"));
        if s.name() == "overlayfs" {
            let kernel = kernel_tree_with_copies(&stack, &case);
            // Every path that can be looked up is the same. Listings can differ by a ghost:
            // a whiteout that hides nothing in a directory only the repeated layer holds is
            // hidden by the merge of its occurrences and listed when only the top one is
            // mounted. Builders never write such whiteouts (a diff has one only where the
            // layers below had the path); a crafted layer shows the same ghost under Docker's
            // overlay2 wherever it sits once.
            assert_eq!(
                without_ghosts(&got),
                without_ghosts(&kernel),
                "seed {seed}: stack (bottom first) {order:?} differs from the kernel's overlay of the full stack"
            );
        }
        assert_eq!(
            without_ghosts(&got),
            want,
            "seed {seed}: stack (bottom first) {order:?} of layers {:#?}",
            layers.iter().map(|l| &l.1).collect::<Vec<_>>()
        );
        fs::remove_dir_all(&case).unwrap();
    }
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn overlay_mounts_repeated_layers_as_applying_every_layer_in_order() {
    if !require_root() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let s = OverlaySnapshotter::new(&t.path().join("state")).unwrap();
    generated_stacks(&s, t.path(), 300);
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn copy_snapshotter_applies_repeated_layers_the_same_way() {
    if !require_root() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let s = CopySnapshotter::new(&t.path().join("state")).unwrap();
    generated_stacks(&s, t.path(), 150);
}

/// The kernel refuses a stack with a directory twice; the snapshotter's mounts of it work, the
/// snapshot keeps the full list, and a read-only view of `[x, x]` is `x` itself.
#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn a_stack_naming_one_directory_twice_mounts_and_keeps_its_list() {
    if !require_root() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let x = t.path().join("x");
    let base = t.path().join("base");
    write_layer(&x, &BTreeMap::from([("f".into(), Entry::File("x".into()))]));
    write_layer(
        &base,
        &BTreeMap::from([("g".into(), Entry::File("base".into()))]),
    );
    let stack = vec![x.clone(), base.clone(), x.clone()];

    let raw = t.path().join("raw");
    fs::create_dir(&raw).unwrap();
    let m = snapshot::Mount {
        kind: "overlay".into(),
        source: "overlay".into(),
        target: PathBuf::new(),
        options: vec![format!(
            "lowerdir={}:{}:{}",
            x.display(),
            base.display(),
            x.display()
        )],
    };
    assert!(
        snapshot::mount_all(&[m], &raw).is_err(),
        "the kernel took a directory twice in one overlay; this test no longer shows the problem"
    );

    let s = OverlaySnapshotter::new(&t.path().join("state")).unwrap();
    let at = t.path().join("m");
    fs::create_dir(&at).unwrap();
    snapshot::mount_all(&s.prepare("k", &stack).unwrap(), &at).unwrap();
    assert_eq!(fs::read_to_string(at.join("f")).unwrap(), "x");
    assert_eq!(fs::read_to_string(at.join("g")).unwrap(), "base");
    snapshot::unmount_all(&at).unwrap();
    assert_eq!(s.info("k").unwrap().1, stack);

    snapshot::mount_all(&s.view("v", &[x.clone(), x.clone()]).unwrap(), &at).unwrap();
    assert_eq!(fs::read_to_string(at.join("f")).unwrap(), "x");
    assert_eq!(
        fs::write(at.join("new"), "n").unwrap_err().raw_os_error(),
        Some(libc::EROFS)
    );
    snapshot::unmount_all(&at).unwrap();
    assert_eq!(snapshot::effective_lowers(&stack), vec![x, base]);
}
