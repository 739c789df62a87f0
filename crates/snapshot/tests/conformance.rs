//! Conformance suite run against both snapshotters, as root with real mounts: the merged view
//! of lowers with whiteouts and opaque directories, the upper directory's shape after writes,
//! deletions, copy-ups and `rm -rf d && mkdir d`, isolation between snapshots, read-only
//! views, and that unmount plus remove leave nothing behind. Also 200+ lower directories.

mod common;

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use common::{cannot_run, is_root, require_root};
use snapshot::{CopySnapshotter, OverlayMethod, OverlaySnapshotter, Snapshotter};

fn whiteout(p: &Path) {
    let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: valid path.
    assert_eq!(unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR, 0) }, 0);
}

fn set_opaque(p: &Path) {
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
    assert_eq!(r, 0);
}

fn opaque(p: &Path) -> bool {
    let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
    let mut buf = [0u8; 8];
    // SAFETY: valid strings and buffer.
    let n = unsafe {
        libc::lgetxattr(
            c.as_ptr(),
            c"trusted.overlay.opaque".as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    n == 1 && buf[0] == b'y'
}

fn write(p: &Path, s: &str) {
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, s).unwrap();
}

/// Two lower layers, top first: base has a, d/{x,y}, keep/k, gone, op/old; top adds b, a
/// whiteout for gone and an opaque op/ holding only new.
fn make_lowers(root: &Path) -> Vec<PathBuf> {
    let base = root.join("layers/base");
    let top = root.join("layers/top");
    write(&base.join("a"), "a");
    write(&base.join("d/x"), "x");
    write(&base.join("d/y"), "y");
    write(&base.join("keep/k"), "k");
    write(&base.join("gone"), "gone");
    write(&base.join("op/old"), "old");
    write(&top.join("b"), "b");
    whiteout(&top.join("gone"));
    write(&top.join("op/new"), "new");
    set_opaque(&top.join("op"));
    vec![top, base]
}

/// Every path under `dir`, relative, sorted.
fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        let mut names: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        names.sort();
        for p in names {
            out.push(p.strip_prefix(base).unwrap().display().to_string());
            if fs::symlink_metadata(&p).unwrap().is_dir() {
                walk(base, &p, out);
            }
        }
    }
    walk(dir, dir, &mut out);
    out
}

fn assert_unmounted(dir: &Path) {
    assert!(
        snapshot::mounts_under(dir).unwrap().is_empty(),
        "mounts left under {}",
        dir.display()
    );
}

fn conformance(make: impl Fn(&Path) -> Box<dyn Snapshotter>) {
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    let lowers = make_lowers(root);
    let s = make(&root.join("state"));
    let merged = root.join("merged");
    fs::create_dir(&merged).unwrap();

    let mounts = s.prepare("c1", &lowers).unwrap();
    snapshot::mount_all(&mounts, &merged).unwrap();
    // The merged view applies the top layer's whiteout and opaque directory.
    assert_eq!(fs::read_to_string(merged.join("a")).unwrap(), "a");
    assert_eq!(fs::read_to_string(merged.join("b")).unwrap(), "b");
    assert!(!merged.join("gone").exists());
    assert!(!merged.join("op/old").exists());
    assert!(merged.join("op/new").exists());

    // Changes: add, delete, copy-up, replace a directory, make a new tree.
    write(&merged.join("newfile"), "n");
    fs::remove_file(merged.join("a")).unwrap();
    fs::OpenOptions::new()
        .append(true)
        .open(merged.join("keep/k"))
        .and_then(|mut f| std::io::Write::write_all(&mut f, b"+"))
        .unwrap();
    fs::remove_dir_all(merged.join("d")).unwrap();
    fs::create_dir(merged.join("d")).unwrap();
    write(&merged.join("d/z"), "z");
    write(&merged.join("newdir/sub/f"), "f");

    // A second snapshot of the same lowers sees none of it.
    let merged2 = root.join("merged2");
    fs::create_dir(&merged2).unwrap();
    snapshot::mount_all(&s.prepare("c2", &lowers).unwrap(), &merged2).unwrap();
    assert!(!merged2.join("newfile").exists());
    assert_eq!(fs::read_to_string(merged2.join("keep/k")).unwrap(), "k");
    assert!(merged2.join("a").exists());
    snapshot::unmount_all(&merged2).unwrap();

    snapshot::unmount_all(&merged).unwrap();
    assert_unmounted(root);

    let upper = s.upper_dir("c1").unwrap();
    assert_eq!(
        tree(&upper),
        [
            "a",
            "d",
            "d/z",
            "keep",
            "keep/k",
            "newdir",
            "newdir/sub",
            "newdir/sub/f",
            "newfile"
        ]
    );
    let wm = fs::symlink_metadata(upper.join("a")).unwrap();
    assert!(
        wm.file_type().is_char_device() && wm.rdev() == 0,
        "a is a 0/0 whiteout"
    );
    assert!(
        opaque(&upper.join("d")),
        "rm -rf d && mkdir d gives an opaque dir"
    );
    assert!(!opaque(&upper.join("keep")));
    assert_eq!(fs::read_to_string(upper.join("keep/k")).unwrap(), "k+");
    let u = s.usage("c1").unwrap();
    assert!(u.inodes >= 10 && u.size > 0, "{u:?}");

    // Read-only view.
    let view = root.join("view");
    fs::create_dir(&view).unwrap();
    snapshot::mount_all(&s.view("v", &lowers).unwrap(), &view).unwrap();
    assert!(view.join("b").exists());
    let err = fs::write(view.join("x"), "x").unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EROFS));
    snapshot::unmount_all(&view).unwrap();

    // No lowers: a plain writable directory.
    let empty = root.join("empty");
    fs::create_dir(&empty).unwrap();
    snapshot::mount_all(&s.prepare("e", &[]).unwrap(), &empty).unwrap();
    write(&empty.join("only"), "1");
    snapshot::unmount_all(&empty).unwrap();
    assert_eq!(tree(&s.upper_dir("e").unwrap()), ["only"]);

    assert_eq!(s.list().unwrap(), ["c1", "c2", "e", "v"]);
    for k in ["c1", "c2", "e", "v"] {
        s.remove(k).unwrap();
    }
    assert!(s.list().unwrap().is_empty());
    assert!(fs::read_dir(root.join("state/snapshots"))
        .unwrap()
        .next()
        .is_none());
    assert_unmounted(root);
    // The lowers were never written to.
    assert_eq!(
        tree(&lowers[1]),
        ["a", "d", "d/x", "d/y", "gone", "keep", "keep/k", "op", "op/old"]
    );
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn overlay_snapshotter_conforms() {
    if !require_root() {
        return;
    }
    conformance(|p| Box::new(OverlaySnapshotter::new(p).unwrap()));
}

/// The overlay layout mounted by the `fuse-overlayfs` program (the rootless fallback):
/// the same merged views and, once `upper_dir` has rewritten its markers, the same upper
/// directories as overlayfs; unmounting leaves no mount (and its daemon exits).
#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn fuse_overlay_snapshotter_conforms() {
    if !require_root() {
        return;
    }
    let program = PathBuf::from("/usr/bin/fuse-overlayfs");
    if !program.exists() {
        cannot_run(
            "needs fuse-overlayfs: apt-get install fuse-overlayfs (scripts/test installs it)",
        );
        return;
    }
    conformance(|p| Box::new(OverlaySnapshotter::fuse(p, program.clone()).unwrap()));
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn copy_snapshotter_conforms() {
    if !require_root() {
        return;
    }
    conformance(|p| Box::new(CopySnapshotter::new(p).unwrap()));
}

/// 240 lower directories with long paths: far past one page of mount(2) options.
fn many_layers(method: OverlayMethod) {
    let t = tempfile::tempdir().unwrap();
    let n = 240;
    let long = "a-rather-long-directory-name-like-a-sha256-digest-0123456789abcdef";
    let mut lowers = Vec::new();
    for i in 0..n {
        let d = t.path().join(format!("{long}-{i:04}"));
        write(&d.join(format!("f{i}")), &i.to_string());
        write(&d.join("common"), &i.to_string());
        lowers.push(d);
    }
    lowers.reverse(); // top first: the last made is on top
    let total: usize = lowers.iter().map(|l| l.as_os_str().len() + 1).sum();
    assert!(total > 4096 * 4);
    let s = OverlaySnapshotter::new(&t.path().join("state")).unwrap();
    let merged = t.path().join("merged");
    fs::create_dir(&merged).unwrap();
    let mounts = s.prepare("big", &lowers).unwrap();
    snapshot::mount_all_with(&mounts, &merged, method).unwrap();
    for i in 0..n {
        assert_eq!(
            fs::read_to_string(merged.join(format!("f{i}"))).unwrap(),
            i.to_string()
        );
    }
    assert_eq!(
        fs::read_to_string(merged.join("common")).unwrap(),
        (n - 1).to_string()
    );
    write(&merged.join("common"), "mine");
    snapshot::unmount_all(&merged).unwrap();
    assert_unmounted(t.path());
    assert_eq!(tree(&s.upper_dir("big").unwrap()), ["common"]);
    s.remove("big").unwrap();
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn two_hundred_forty_layers_with_lowerdir_plus() {
    if !require_root() {
        return;
    }
    if !snapshot::lowerdir_plus_supported() {
        cannot_run("this kernel has no overlayfs lowerdir+ (Linux < 6.8)");
        return;
    }
    many_layers(OverlayMethod::LowerdirPlus);
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn two_hundred_forty_layers_with_legacy_mount() {
    if !require_root() {
        return;
    }
    many_layers(OverlayMethod::Legacy);
}

/// A volatile overlay (changes thrown away or synced by the caller) works like any other,
/// also when its snapshot is mounted again (overlayfs marks a work directory it used as
/// volatile), with either mount method; only writable overlays become volatile.
#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn volatile_overlays_mount_again_and_keep_their_changes_until_removed() {
    if !require_root() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let lowers = make_lowers(t.path());
    let s = OverlaySnapshotter::new(&t.path().join("state")).unwrap();
    let merged = t.path().join("merged");
    fs::create_dir(&merged).unwrap();
    let mut methods = vec![OverlayMethod::Legacy];
    if snapshot::lowerdir_plus_supported() {
        methods.push(OverlayMethod::LowerdirPlus);
    }
    for (i, method) in methods.into_iter().enumerate() {
        let key = format!("v{i}");
        let volatile: Vec<_> = s
            .prepare(&key, &lowers)
            .unwrap()
            .into_iter()
            .map(snapshot::Mount::volatile)
            .collect();
        assert!(volatile[0].options.iter().any(|o| o == "volatile"));
        for round in ["one", "two"] {
            snapshot::mount_all_with(&volatile, &merged, method).unwrap();
            write(&merged.join(round), round);
            snapshot::unmount_all(&merged).unwrap();
        }
        assert_unmounted(t.path());
        assert_eq!(tree(&s.upper_dir(&key).unwrap()), ["one", "two"]);
        s.remove(&key).unwrap();
    }
    let view = s.view("ro", &lowers).unwrap();
    let same: Vec<_> = view
        .iter()
        .cloned()
        .map(snapshot::Mount::volatile)
        .collect();
    assert_eq!(same, view);
}

#[test]
fn open_honours_the_choice_and_reports_it() {
    use snapshot::Choice;
    let t = tempfile::tempdir().unwrap();
    let forced = |c: Choice| snapshot::open(t.path(), c).unwrap().name();
    assert_eq!(forced(Choice::Copy), "copy");
    assert_eq!(forced(Choice::Overlay), "overlayfs");
    if is_root() {
        assert_eq!(forced(Choice::Auto), "overlayfs");
    }
    assert_eq!("overlay".parse::<Choice>().unwrap(), Choice::Overlay);
    assert_eq!("".parse::<Choice>().unwrap(), Choice::Auto);
    assert!("zfs"
        .parse::<Choice>()
        .unwrap_err()
        .to_string()
        .contains("zfs"));
}
