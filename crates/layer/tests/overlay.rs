//! Whiteouts and opaque directories through real overlayfs mounts: an upper directory made
//! by the kernel is written as a layer in Docker's shape, applied back as an overlay lower
//! directory (checked by mounting it over the original lower), and applied onto a merged
//! copy in delete mode (checked against the overlay's own merged view).

mod common;

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{require_root, snapshot, tar_names, xattrs, RawTar};
use layer::{apply_layer, apply_layer_with, write_layer, ApplyOptions, Compression, WhiteoutMode};

/// An overlay mount, unmounted on drop.
struct Mount(PathBuf);

impl Mount {
    fn overlay(options: &str, target: &Path) -> Mount {
        let out = Command::new("mount")
            .args(["-t", "overlay", "overlay", "-o", options])
            .arg(target)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "mount -o {options}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Mount(target.to_path_buf())
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn mkdirs(base: &Path, names: &[&str]) -> Vec<PathBuf> {
    names
        .iter()
        .map(|n| {
            let p = base.join(n);
            fs::create_dir_all(&p).unwrap();
            p
        })
        .collect()
}

/// Names and contents of a tree, with file types: what a container would see.
fn view(root: &Path) -> Vec<(String, &'static str, Vec<u8>, u32)> {
    snapshot(root)
        .into_iter()
        .map(|(k, n)| (k, n.kind, n.content, n.mode))
        .collect()
}

fn build_lower(lower: &Path) {
    fs::write(lower.join("file1"), b"1").unwrap();
    fs::write(lower.join("file2"), b"2").unwrap();
    fs::create_dir_all(lower.join("d1")).unwrap();
    fs::write(lower.join("d1/a"), b"a").unwrap();
    fs::write(lower.join("d1/keep"), b"keep").unwrap();
    fs::create_dir_all(lower.join("d2/sub")).unwrap();
    fs::write(lower.join("d2/x"), b"x").unwrap();
    fs::write(lower.join("d2/sub/y"), b"y").unwrap();
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn overlay_upper_round_trips_through_docker_whiteouts() {
    if !require_root() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let d = mkdirs(
        tmp.path(),
        &[
            "lower", "upper", "work", "merged", "applied", "work2", "merged2", "copy",
        ],
    );
    let (lower, upper, work, merged, applied, merged2, copy) =
        (&d[0], &d[1], &d[2], &d[3], &d[4], &d[6], &d[7]);
    build_lower(lower);

    // The change Docker's documentation shows: RUN rm /file1 /d1/a && rm -rf /d2 &&
    // mkdir /d2 && echo new > /d2/new && echo changed > /file2
    {
        let opts = format!(
            "lowerdir={},upperdir={},workdir={},redirect_dir=off,metacopy=off,index=off",
            lower.display(),
            upper.display(),
            work.display()
        );
        let _m = Mount::overlay(&opts, merged);
        fs::remove_file(merged.join("file1")).unwrap();
        fs::remove_file(merged.join("d1/a")).unwrap();
        fs::remove_dir_all(merged.join("d2")).unwrap();
        fs::create_dir(merged.join("d2")).unwrap();
        fs::write(merged.join("d2/new"), b"new\n").unwrap();
        fs::write(merged.join("file2"), b"changed\n").unwrap();
    }
    // The kernel's upper dir: whiteouts are 0/0 char devices, d2 is opaque.
    let wo = fs::symlink_metadata(upper.join("file1")).unwrap();
    assert!(wo.file_type().is_char_device() && wo.rdev() == 0);
    assert_eq!(
        xattrs(&upper.join("d2"))
            .get(&b"trusted.overlay.opaque"[..])
            .map(Vec::as_slice),
        Some(&b"y"[..])
    );

    let mut tar = Vec::new();
    let digests = write_layer(upper, &mut tar, Compression::None).unwrap();
    assert_eq!(
        tar_names(&tar),
        [
            "d1/",
            "d1/.wh.a",
            "d2/",
            "d2/.wh..wh..opq",
            "d2/new",
            ".wh.file1",
            "file2"
        ],
        "Docker's order and names"
    );
    let mut ar = tar::Archive::new(&tar[..]);
    for e in ar.entries().unwrap() {
        let e = e.unwrap();
        let h = e.header();
        let name = String::from_utf8_lossy(&e.path_bytes()).into_owned();
        if name.contains(".wh.") {
            assert_eq!(h.entry_type(), tar::EntryType::Regular, "{name}");
            assert_eq!(h.size().unwrap(), 0, "{name}");
        }
        match name.as_str() {
            ".wh.file1" | "d1/.wh.a" => {
                assert_eq!(h.mode().unwrap(), 0o600);
                assert_eq!(
                    h.mtime().unwrap() as i64,
                    fs::symlink_metadata(upper.join(name.replace(".wh.", "")))
                        .unwrap()
                        .mtime()
                );
            }
            "d2/.wh..wh..opq" => {
                assert_eq!(
                    h.mode().unwrap(),
                    0o755,
                    "perms of the directory, no type bits"
                );
                assert_eq!(h.mtime().unwrap(), 0);
            }
            "d2/" => assert!(
                e.header().entry_type().is_dir()
                    && !String::from_utf8_lossy(&tar).contains("trusted.overlay"),
                "opaque xattr not archived"
            ),
            _ => {}
        }
    }

    // Applied as a standalone lower dir: overlay's own representation comes back.
    let report = apply_layer(&tar[..], applied).unwrap();
    assert_eq!(report.digests(), digests);
    for name in ["file1", "d1/a"] {
        let md = fs::symlink_metadata(applied.join(name)).unwrap();
        assert!(
            md.file_type().is_char_device() && md.rdev() == 0,
            "{name} is a whiteout device"
        );
    }
    assert_eq!(
        xattrs(&applied.join("d2"))
            .get(&b"trusted.overlay.opaque"[..])
            .map(Vec::as_slice),
        Some(&b"y"[..])
    );
    // ... so writing it again is byte-identical, in any compression.
    let mut again = Vec::new();
    assert_eq!(
        write_layer(applied, &mut again, Compression::None).unwrap(),
        digests
    );
    assert_eq!(again, tar);
    for c in [Compression::Gzip, Compression::Zstd] {
        let mut blob = Vec::new();
        let dg = write_layer(upper, &mut blob, c).unwrap();
        assert_eq!(dg.diff_id, digests.diff_id, "{c:?}: same tar inside");
        let fresh = tmp.path().join(format!("applied-{c:?}"));
        fs::create_dir(&fresh).unwrap();
        let r = apply_layer(&blob[..], &fresh).unwrap();
        assert_eq!((r.compression, r.digests()), (c, dg));
    }

    // Stacked over the original lower, the applied layer shows what the container saw.
    let expected = view(merged_of(lower, upper, tmp.path(), "expect").as_path());
    {
        let opts = format!("lowerdir={}:{}", applied.display(), lower.display());
        let _m = Mount::overlay(&opts, merged2);
        assert_eq!(view(merged2), expected);
        let names: Vec<String> = view(merged2).into_iter().map(|v| v.0).collect();
        assert_eq!(names, ["d1", "d1/keep", "d2", "d2/new", "file2"]);
    }

    // Delete mode on a copy of the lower gives the same tree without overlayfs.
    let st = Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", lower.display()))
        .arg(copy)
        .status()
        .unwrap();
    assert!(st.success());
    let opts = ApplyOptions {
        whiteouts: WhiteoutMode::Delete,
        ..ApplyOptions::default()
    };
    apply_layer_with(&tar[..], copy, &opts).unwrap();
    assert_eq!(view(copy), expected);
}

/// The merged view of `upper` over `lower`, read through a fresh read-only overlay mount and
/// copied out, so it can be compared after unmounting.
fn merged_of(lower: &Path, upper: &Path, tmp: &Path, name: &str) -> PathBuf {
    let mnt = tmp.join(format!("{name}-mnt"));
    let out = tmp.join(name);
    fs::create_dir(&mnt).unwrap();
    let opts = format!("lowerdir={}:{}", upper.display(), lower.display());
    let _m = Mount::overlay(&opts, &mnt);
    let st = Command::new("cp")
        .arg("-a")
        .arg(&mnt)
        .arg(&out)
        .status()
        .unwrap();
    assert!(st.success());
    out
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn opaque_directories_keep_what_the_layer_itself_adds() {
    if !require_root() {
        return;
    }
    // `-early` sorts before the opaque marker; it belongs to this layer and must survive.
    let tar = RawTar::new()
        .dir("d/")
        .file("d/-early", b"e")
        .dir("d/-dir/")
        .file("d/-dir/inner", b"i")
        .file("d/.wh..wh..opq", b"")
        .file("d/late", b"l")
        .file(".wh.gone", b"")
        .file(".wh.never-existed", b"")
        .finish();
    let tmp = tempfile::tempdir().unwrap();

    let merged = tmp.path().join("merged");
    fs::create_dir_all(merged.join("d/sub")).unwrap();
    fs::create_dir_all(merged.join("d/-dir")).unwrap();
    fs::write(merged.join("d/-dir/lower-file"), b"old").unwrap();
    fs::write(merged.join("d/old"), b"old").unwrap();
    fs::write(merged.join("d/sub/x"), b"old").unwrap();
    fs::create_dir_all(merged.join("gone/deep")).unwrap();
    fs::write(merged.join("kept"), b"k").unwrap();
    let opts = ApplyOptions {
        whiteouts: WhiteoutMode::Delete,
        ..ApplyOptions::default()
    };
    apply_layer_with(&tar[..], &merged, &opts).unwrap();
    let names: Vec<String> = snapshot(&merged).into_keys().collect();
    assert_eq!(
        names,
        ["d", "d/-dir", "d/-dir/inner", "d/-early", "d/late", "kept"]
    );

    let layer_dir = tmp.path().join("layer");
    fs::create_dir(&layer_dir).unwrap();
    apply_layer(&tar[..], &layer_dir).unwrap();
    let snap = snapshot(&layer_dir);
    let names: Vec<&str> = snap.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "d",
            "d/-dir",
            "d/-dir/inner",
            "d/-early",
            "d/late",
            "gone",
            "never-existed"
        ]
    );
    assert_eq!(snap["gone"].kind, "char");
    assert_eq!(
        snap["d"]
            .xattrs
            .get(&b"trusted.overlay.opaque"[..])
            .map(Vec::as_slice),
        Some(&b"y"[..])
    );
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn redirect_dir_uppers_are_refused() {
    if !require_root() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let upper = tmp.path().join("upper");
    fs::create_dir_all(upper.join("moved")).unwrap();
    rustix::fs::setxattr(
        upper.join("moved"),
        "trusted.overlay.redirect",
        b"/orig",
        rustix::fs::XattrFlags::empty(),
    )
    .unwrap();
    let err = write_layer(&upper, Vec::new(), Compression::None).unwrap_err();
    assert!(err.to_string().contains("redirect"), "{err}");
    assert!(err.to_string().contains("moved"), "{err}");
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn userxattr_overlay_markers_are_understood() {
    if !require_root() {
        return;
    }
    // Overlays mounted with `userxattr` (rootless) mark opaque dirs with user.overlay.*.
    let tmp = tempfile::tempdir().unwrap();
    let upper = tmp.path().join("upper");
    fs::create_dir_all(upper.join("o")).unwrap();
    fs::write(upper.join("o/f"), b"f").unwrap();
    rustix::fs::setxattr(
        upper.join("o"),
        "user.overlay.opaque",
        b"y",
        rustix::fs::XattrFlags::empty(),
    )
    .unwrap();
    let mut tar = Vec::new();
    write_layer(&upper, &mut tar, Compression::None).unwrap();
    assert_eq!(tar_names(&tar), ["o/", "o/.wh..wh..opq", "o/f"]);
    assert!(
        !String::from_utf8_lossy(&tar).contains("user.overlay"),
        "marker not archived as an xattr"
    );

    rustix::fs::setxattr(
        upper.join("o"),
        "user.overlay.redirect",
        b"/x",
        rustix::fs::XattrFlags::empty(),
    )
    .unwrap();
    let err = write_layer(&upper, Vec::new(), Compression::None).unwrap_err();
    assert!(err.to_string().contains("user.overlay.redirect"), "{err}");
}

/// Merge mode (a squash): two layers applied into one directory give, over the base through
/// overlayfs, the tree both layers give applied one after the other onto a copy of the base.
#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn merged_layers_stack_like_the_layers_they_merge() {
    if !require_root() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("base");
    fs::create_dir_all(base.join("d")).unwrap();
    fs::create_dir_all(base.join("e")).unwrap();
    fs::write(base.join("a"), b"a").unwrap();
    fs::write(base.join("d/x"), b"x").unwrap();
    fs::write(base.join("e/y"), b"y").unwrap();
    let first = RawTar::new()
        .file("n1", b"1")
        .dir("d/")
        .file("d/new", b"n")
        .file(".wh.a", b"")
        .dir("g/")
        .file("g/1", b"g")
        .finish();
    // A file of the first layer whited out, an opaque directory over both, a directory
    // where the first layer left a whiteout, and a directory only the first layer made
    // removed again.
    let second = RawTar::new()
        .file(".wh.n1", b"")
        .dir("d/")
        .file("d/.wh..wh..opq", b"")
        .file("d/z", b"z")
        .dir("a/")
        .file("a/in", b"i")
        .file(".wh.g", b"")
        .finish();
    let squashed = tmp.path().join("squashed");
    fs::create_dir(&squashed).unwrap();
    let merge = ApplyOptions {
        whiteouts: WhiteoutMode::Merge,
        ..ApplyOptions::default()
    };
    for l in [&first, &second] {
        apply_layer_with(&l[..], &squashed, &merge).unwrap();
    }
    let expected = tmp.path().join("expected");
    assert!(Command::new("cp")
        .arg("-a")
        .arg(&base)
        .arg(&expected)
        .status()
        .unwrap()
        .success());
    let delete = ApplyOptions {
        whiteouts: WhiteoutMode::Delete,
        ..ApplyOptions::default()
    };
    for l in [&first, &second] {
        apply_layer_with(&l[..], &expected, &delete).unwrap();
    }
    let merged = merged_of(&base, &squashed, tmp.path(), "merged");
    assert_eq!(view(&merged), view(&expected));
    let names: Vec<String> = snapshot(&expected).into_keys().collect();
    assert_eq!(names, ["a", "a/in", "d", "d/z", "e", "e/y"]);
}
