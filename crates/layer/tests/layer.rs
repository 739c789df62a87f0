//! The differ against real files: round trips of every file type, overlay upper dirs made by
//! a real overlay mount, and a suite of malicious archives that must write nothing outside
//! the target directory.

use std::fs;
use std::io::{Cursor, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use layer::{apply_layer, write_layer, ApplyOptions, Compression, WhiteoutMode, WriteOptions};

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// A tar entry with a raw name (the tar crate refuses `..` through its safe setters).
fn raw(
    b: &mut tar::Builder<Vec<u8>>,
    name: &str,
    kind: tar::EntryType,
    link: Option<&str>,
    data: &[u8],
) {
    let mut h = tar::Header::new_gnu();
    {
        let old = h.as_old_mut();
        old.name = [0; 100];
        old.name[..name.len()].copy_from_slice(name.as_bytes());
        if let Some(l) = link {
            old.linkname = [0; 100];
            old.linkname[..l.len()].copy_from_slice(l.as_bytes());
        }
    }
    h.set_entry_type(kind);
    h.set_mode(if kind == tar::EntryType::Directory {
        0o755
    } else {
        0o644
    });
    h.set_size(data.len() as u64);
    h.set_mtime(1_000_000);
    h.set_cksum();
    b.append(&h, data).unwrap();
}

fn tar_of(entries: &[(&str, tar::EntryType, Option<&str>, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (n, k, l, d) in entries {
        raw(&mut b, n, *k, *l, d);
    }
    b.into_inner().unwrap()
}

/// Applies `tar` in `base/root` and returns the error text; checks nothing appeared in
/// `base` beside `root` and the sentinel is untouched.
fn apply_malicious(tar: &[u8]) -> String {
    let base = tempfile::tempdir().unwrap();
    let root = base.path().join("root");
    fs::create_dir(&root).unwrap();
    let outside = base.path().join("outside");
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("sentinel"), "untouched").unwrap();
    let res = apply_layer(Cursor::new(tar), &root, &ApplyOptions::default());
    let mut names: Vec<_> = fs::read_dir(base.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert_eq!(
        names,
        vec!["outside", "root"],
        "something was created beside the root"
    );
    let inside: Vec<_> = fs::read_dir(&outside)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        inside,
        vec!["sentinel"],
        "something was created outside the root"
    );
    assert_eq!(
        fs::read_to_string(outside.join("sentinel")).unwrap(),
        "untouched"
    );
    match res {
        Err(e) => e.to_string(),
        Ok(_) => {
            // Accepted archives must have stayed inside: nothing above can have changed.
            String::new()
        }
    }
}

use tar::EntryType::{Directory as D, Link as H, Regular as F, Symlink as S};

#[test]
fn path_traversal_is_refused_with_the_entry_named() {
    let err = apply_malicious(&tar_of(&[("../outside/evil", F, None, b"x")]));
    assert!(
        err.contains("../outside/evil") && err.contains(".."),
        "{err}"
    );
    let err = apply_malicious(&tar_of(&[("a/../../outside/evil", F, None, b"x")]));
    assert!(err.contains("a/../../outside/evil"), "{err}");
}

#[test]
fn absolute_names_are_refused() {
    let err = apply_malicious(&tar_of(&[("/tmp/evil-absolute", F, None, b"x")]));
    assert!(
        err.contains("/tmp/evil-absolute") && err.contains("absolute"),
        "{err}"
    );
    assert!(!Path::new("/tmp/evil-absolute").exists());
}

#[test]
fn a_symlink_escape_is_confined_to_the_root() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    // A symlink pointing outside (relative and absolute), then a file written through it.
    for target in ["../outside", "../../../../../../outside", "/outside"] {
        let tar = tar_of(&[("link", S, Some(target), b""), ("link/evil", F, None, b"x")]);
        let err = apply_malicious(&tar);
        let _ = err; // either refused or confined; apply_malicious checked nothing escaped
    }
}

#[test]
fn a_hardlink_to_outside_is_refused() {
    let err = apply_malicious(&tar_of(&[("h", H, Some("../outside/sentinel"), b"")]));
    assert!(err.contains("\"h\""), "{err}");
    if is_root() {
        // Through a symlink: the link target resolves inside the root, where nothing is.
        let err = apply_malicious(&tar_of(&[
            ("l", S, Some("/"), b""),
            ("h", H, Some("l/outside/sentinel"), b""),
        ]));
        assert!(err.contains("\"h\""), "{err}");
    }
}

#[test]
fn a_symlink_swapped_in_mid_archive_is_confined() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let tar = tar_of(&[
        ("a/", D, None, b""),
        ("a/ok", F, None, b"fine"),
        ("a", S, Some("../outside"), b""),
        ("a/sentinel", F, None, b"overwritten"),
    ]);
    apply_malicious(&tar);
}

#[test]
fn a_whiteout_cannot_name_something_outside() {
    let err = apply_malicious(&tar_of(&[("../outside/.wh.sentinel", F, None, b"")]));
    assert!(err.contains(".."), "{err}");
    let err = apply_malicious(&tar_of(&[("d/.wh...", F, None, b"")]));
    assert!(err.contains("whiteout"), "{err}");
}

#[test]
fn truncated_and_corrupt_archives_fail_clearly() {
    let good = tar_of(&[("f", F, None, &[7u8; 4000])]);
    let root = tempfile::tempdir().unwrap();
    let err = apply_layer(
        Cursor::new(&good[..1200]),
        root.path(),
        &ApplyOptions::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("truncated or corrupt"), "{err}");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&good).unwrap();
    let mut gz = gz.finish().unwrap();
    let n = gz.len();
    gz[n / 2] ^= 0xff;
    let root = tempfile::tempdir().unwrap();
    assert!(apply_layer(Cursor::new(gz), root.path(), &ApplyOptions::default()).is_err());
}

fn make_tree(root: &Path) {
    fs::create_dir_all(root.join("d/sub")).unwrap();
    fs::write(root.join("d/file"), "content").unwrap();
    fs::set_permissions(root.join("d/file"), fs::Permissions::from_mode(0o4755)).unwrap();
    fs::write(root.join("d/sub/x"), "x").unwrap();
    fs::hard_link(root.join("d/file"), root.join("hard")).unwrap();
    std::os::unix::fs::symlink("d/file", root.join("sym")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", root.join("abs")).unwrap();
    fs::set_permissions(root.join("d/sub"), fs::Permissions::from_mode(0o1777)).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        root.join("fifo"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o640),
        0,
    )
    .unwrap();
    if is_root() {
        rustix::fs::mknodat(
            rustix::fs::CWD,
            root.join("null"),
            rustix::fs::FileType::CharacterDevice,
            rustix::fs::Mode::from_raw_mode(0o666),
            rustix::fs::makedev(1, 3),
        )
        .unwrap();
        std::os::unix::fs::lchown(root.join("d/sub/x"), Some(1234), Some(5678)).unwrap();
        rustix::fs::setxattr(
            root.join("d/file"),
            "user.note",
            b"hi",
            rustix::fs::XattrFlags::empty(),
        )
        .unwrap();
    }
}

fn describe(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let md = p.symlink_metadata().unwrap();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            let extra = if md.file_type().is_symlink() {
                fs::read_link(&p).unwrap().display().to_string()
            } else if md.is_file() {
                fs::read_to_string(&p).unwrap()
            } else {
                String::new()
            };
            let mtime = if md.is_dir() { 0 } else { md.mtime() };
            out.push(format!(
                "{rel} {:o} {}:{} {} {} {mtime} {extra}",
                md.mode(),
                md.uid(),
                md.gid(),
                md.rdev(),
                md.nlink()
            ));
            if md.is_dir() {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn every_file_type_round_trips_through_a_layer() {
    for compression in [Compression::None, Compression::Gzip, Compression::Zstd] {
        let src = tempfile::tempdir().unwrap();
        make_tree(src.path());
        let mut blob = Vec::new();
        let opts = WriteOptions {
            compression,
            overlay: true,
            level: 3,
        };
        let d = write_layer(src.path(), &mut blob, &opts).unwrap();
        assert_eq!(d.size, blob.len() as u64);
        assert_eq!(d.digest, oci::Digest::of(&blob));
        // Same tree, same bytes.
        let mut again = Vec::new();
        assert_eq!(write_layer(src.path(), &mut again, &opts).unwrap(), d);
        assert_eq!(again, blob);

        let dst = tempfile::tempdir().unwrap();
        let rep = apply_layer(Cursor::new(&blob), dst.path(), &ApplyOptions::default()).unwrap();
        assert_eq!(rep.diff_id, d.diff_id);
        assert_eq!(rep.tar_size, d.tar_size);
        assert_eq!(rep.compression, compression);
        assert_eq!(describe(dst.path()), describe(src.path()));
        assert_eq!(rep.diff_size, layer::diff_size(src.path()).unwrap());
        if is_root() {
            let mut v = [0u8; 8];
            let n = rustix::fs::getxattr(dst.path().join("d/file"), "user.note", &mut v).unwrap();
            assert_eq!(&v[..n], b"hi");
        }
    }
}

#[test]
fn whiteouts_and_opaque_dirs_from_a_real_overlay_round_trip() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let (lower, upper, work, merged) = (
        t.path().join("l"),
        t.path().join("u"),
        t.path().join("w"),
        t.path().join("m"),
    );
    for d in [&lower, &upper, &work, &merged] {
        fs::create_dir(d).unwrap();
    }
    fs::create_dir_all(lower.join("d1")).unwrap();
    fs::write(lower.join("d1/a"), "a").unwrap();
    fs::write(lower.join("d1/keep"), "k").unwrap();
    fs::create_dir_all(lower.join("d2")).unwrap();
    fs::write(lower.join("d2/old"), "old").unwrap();
    fs::write(lower.join("file1"), "1").unwrap();
    let opts = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.display(),
        upper.display(),
        work.display()
    );
    rustix::mount::mount(
        "overlay",
        &merged,
        "overlay",
        rustix::mount::MountFlags::empty(),
        Some(std::ffi::CString::new(opts).unwrap().as_c_str()),
    )
    .unwrap();
    let st = std::process::Command::new("sh")
        .arg("-c")
        .arg("rm d1/a file1 && rm -rf d2 && mkdir d2 && echo new > d2/new")
        .current_dir(&merged)
        .status()
        .unwrap();
    rustix::mount::unmount(&merged, rustix::mount::UnmountFlags::empty()).unwrap();
    assert!(st.success());

    let mut blob = Vec::new();
    let d = write_layer(
        &upper,
        &mut blob,
        &WriteOptions {
            compression: Compression::None,
            ..Default::default()
        },
    )
    .unwrap();
    let mut names = Vec::new();
    let mut ar = tar::Archive::new(Cursor::new(&blob));
    for e in ar.entries().unwrap() {
        let e = e.unwrap();
        names.push(format!(
            "{} {:o}",
            e.path().unwrap().display(),
            e.header().mode().unwrap()
        ));
    }
    assert_eq!(
        names,
        vec![
            "d1/ 40755",
            "d1/.wh.a 600",
            "d2/ 40755",
            "d2/.wh..wh..opq 755",
            "d2/new 100644",
            ".wh.file1 600"
        ],
        "Docker's whiteout format, in the order of the upper dir's names"
    );

    // Applied as a lower layer: the same overlay shape comes back.
    let layer_dir = t.path().join("layer");
    fs::create_dir(&layer_dir).unwrap();
    let rep = apply_layer(Cursor::new(&blob), &layer_dir, &ApplyOptions::default()).unwrap();
    assert_eq!(rep.diff_id, d.diff_id);
    let md = layer_dir.join("file1").symlink_metadata().unwrap();
    assert!(std::os::unix::fs::FileTypeExt::is_char_device(&md.file_type()) && md.rdev() == 0);
    let mut v = [0u8; 2];
    assert_eq!(
        rustix::fs::getxattr(layer_dir.join("d2"), "trusted.overlay.opaque", &mut v).unwrap(),
        1
    );

    // Applied onto a merged tree: whiteouts delete, the opaque dir loses its old content.
    let tree = t.path().join("tree");
    fs::create_dir(&tree).unwrap();
    let mut base = Vec::new();
    write_layer(
        &lower,
        &mut base,
        &WriteOptions {
            compression: Compression::Gzip,
            overlay: false,
            level: 1,
        },
    )
    .unwrap();
    let delete = ApplyOptions {
        whiteouts: WhiteoutMode::Delete,
    };
    apply_layer(Cursor::new(&base), &tree, &delete).unwrap();
    apply_layer(Cursor::new(&blob), &tree, &delete).unwrap();
    assert!(!tree.join("file1").exists() && !tree.join("d1/a").exists());
    assert!(tree.join("d1/keep").exists());
    assert!(!tree.join("d2/old").exists());
    assert_eq!(fs::read_to_string(tree.join("d2/new")).unwrap(), "new\n");
}
