//! Falling back to the copy snapshotter where overlayfs cannot be mounted: with the state
//! directory itself on an overlayfs mount (overlayfs cannot use overlayfs as its upper layer),
//! `open` must pick the copy snapshotter, which still works there. Its own test binary, since
//! the overlay probe runs once per process.

mod common;

use std::fs;

use common::{cannot_run, require_root};

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn copy_snapshotter_is_chosen_where_overlayfs_cannot_stack() {
    if !require_root() {
        return;
    }
    if std::env::var_os("STRATA_SNAPSHOTTER").is_some() {
        cannot_run("STRATA_SNAPSHOTTER is set, and it overrides the choice this test checks");
        return;
    }
    let t = tempfile::tempdir().unwrap();
    for d in ["l1", "l2", "u", "w", "m"] {
        fs::create_dir(t.path().join(d)).unwrap();
    }
    let m = snapshot::Mount {
        kind: "overlay".into(),
        source: "overlay".into(),
        target: Default::default(),
        options: vec![
            format!(
                "lowerdir={}:{}",
                t.path().join("l1").display(),
                t.path().join("l2").display()
            ),
            format!("upperdir={}", t.path().join("u").display()),
            format!("workdir={}", t.path().join("w").display()),
        ],
    };
    let merged = t.path().join("m");
    snapshot::mount_all(&[m], &merged).unwrap();
    let result = std::panic::catch_unwind(|| {
        let root = merged.join("state");
        let s = snapshot::open(&root, snapshot::Choice::Auto).unwrap();
        assert_eq!(s.name(), "copy");
        let lower = merged.join("layer");
        fs::create_dir_all(&lower).unwrap();
        fs::write(lower.join("f"), "x").unwrap();
        s.prepare("k", &[lower]).unwrap();
        s.remove("k").unwrap();
    });
    snapshot::unmount_all(&merged).unwrap();
    result.unwrap();
}
