//! Round trips: a tree holding every kind of file and metadata a layer carries is written
//! as a layer (plain, gzip, zstd), applied to a fresh directory, and compared; the output
//! is deterministic, in Docker's order and readable by GNU tar.

mod common;

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;
use std::process::Command;

use common::{require_root, snapshot, tar_names};
use layer::{apply_layer, write_tree, Compression};
use rustix::fs::{self as rfs, AtFlags, FileType, Mode, Timespec, Timestamps, XattrFlags};

fn set_mtime(path: &Path, secs: i64, nanos: i64) {
    let t = Timespec {
        tv_sec: secs,
        tv_nsec: nanos as _,
    };
    rfs::utimensat(
        rfs::CWD,
        path,
        &Timestamps {
            last_access: t,
            last_modification: t,
        },
        AtFlags::SYMLINK_NOFOLLOW,
    )
    .unwrap();
}

fn chown(path: &Path, uid: u32, gid: u32) {
    rfs::chownat(
        rfs::CWD,
        path,
        Some(rfs::Uid::from_raw(uid)),
        Some(rfs::Gid::from_raw(gid)),
        AtFlags::SYMLINK_NOFOLLOW,
    )
    .unwrap();
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// A tree with every entry type, special mode bits, owners, xattrs, long and non-ASCII
/// names, hardlinks, and set mtimes (directories last so their times stick).
fn build_tree(root: &Path) {
    let p = |rel: &str| root.join(rel);
    fs::create_dir_all(p("etc")).unwrap();
    fs::write(p("etc/hosts"), b"127.0.0.1 localhost\n").unwrap();
    fs::write(p("empty"), b"").unwrap();
    let big: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 256) as u8).collect();
    fs::write(p("big.bin"), &big).unwrap();
    // Big enough to be unpacked with O_DIRECT: a full buffer, then a tail that is not aligned.
    let huge: Vec<u8> = (0..(5 << 20) + 4097u32).map(|i| (i % 251) as u8).collect();
    fs::write(p("huge.bin"), &huge).unwrap();
    fs::create_dir_all(p("usr/bin")).unwrap();
    fs::write(p("usr/bin/su"), b"#!/bin/sh\n").unwrap();
    chmod(&p("usr/bin/su"), 0o4755);
    fs::write(p("usr/bin/wall"), b"#!/bin/sh\n").unwrap();
    chmod(&p("usr/bin/wall"), 0o2755);
    chown(&p("usr/bin/wall"), 0, 5);
    fs::create_dir(p("tmp")).unwrap();
    chmod(&p("tmp"), 0o1777);
    fs::create_dir(p("shared")).unwrap();
    chmod(&p("shared"), 0o2775);
    chown(&p("shared"), 1000, 1000);
    fs::write(p("shared/nobody"), b"n").unwrap();
    chown(&p("shared/nobody"), 65534, 65534);
    symlink("hosts", p("etc/rel-link")).unwrap();
    symlink("/etc/hosts", p("abs-link")).unwrap();
    symlink("does/not/exist", p("dangling")).unwrap();
    chown(&p("dangling"), 7, 8);
    fs::write(p("usr/bin/busybox"), b"BB").unwrap();
    fs::hard_link(p("usr/bin/busybox"), p("usr/bin/sh")).unwrap();
    fs::hard_link(p("usr/bin/busybox"), p("usr/bin/ls")).unwrap();
    rfs::mknodat(
        rfs::CWD,
        p("fifo"),
        FileType::Fifo,
        Mode::from_raw_mode(0o640),
        0,
    )
    .unwrap();
    chmod(&p("fifo"), 0o640);
    fs::create_dir(p("dev")).unwrap();
    rfs::mknodat(
        rfs::CWD,
        p("dev/null"),
        FileType::CharacterDevice,
        Mode::from_raw_mode(0o666),
        rfs::makedev(1, 3),
    )
    .unwrap();
    chmod(&p("dev/null"), 0o666);
    rfs::mknodat(
        rfs::CWD,
        p("dev/loop9"),
        FileType::BlockDevice,
        Mode::from_raw_mode(0o660),
        rfs::makedev(7, 9),
    )
    .unwrap();
    chmod(&p("dev/loop9"), 0o660);
    // xattrs: a file capability (cap_net_raw, effective), a user and a trusted one.
    fs::write(p("usr/bin/ping"), b"ping").unwrap();
    let mut cap = vec![0u8; 20];
    cap[..4].copy_from_slice(&0x0200_0001u32.to_le_bytes());
    cap[4..8].copy_from_slice(&(1u32 << 13).to_le_bytes());
    rfs::setxattr(
        p("usr/bin/ping"),
        "security.capability",
        &cap,
        XattrFlags::empty(),
    )
    .unwrap();
    rfs::setxattr(p("etc/hosts"), "user.note", b"hello", XattrFlags::empty()).unwrap();
    rfs::setxattr(
        p("etc"),
        "trusted.mark",
        b"\x00\x01binary",
        XattrFlags::empty(),
    )
    .unwrap();
    // Names: long (needs PAX or the USTAR prefix) and non-ASCII.
    let deep = format!("{}/{}", "d".repeat(120), "e".repeat(90));
    fs::create_dir_all(p(&deep)).unwrap();
    fs::write(p(&format!("{deep}/{}", "f".repeat(150))), b"long").unwrap();
    fs::write(
        root.join(OsStr::from_bytes("caf\u{e9}-\u{1F600}".as_bytes())),
        b"utf8",
    )
    .unwrap();
    fs::write(root.join(OsStr::from_bytes(b"latin1-\xe9")), b"bytes").unwrap();
    symlink("x".repeat(200), p("long-target")).unwrap();
    // Order checks: "a" then "a/..." then "a-b" (walk order, not full-path order).
    fs::create_dir(p("a")).unwrap();
    fs::write(p("a/z"), b"").unwrap();
    fs::write(p("a-b"), b"").unwrap();
    // mtimes, deepest first so setting them does not disturb each other.
    let mut paths = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let path = e.unwrap().path();
            if fs::symlink_metadata(&path).unwrap().is_dir() {
                dirs.push(path.clone());
            }
            paths.push(path);
        }
    }
    paths.sort();
    paths.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for (i, path) in paths.iter().enumerate() {
        set_mtime(path, 1_500_000_000 + i as i64 * 1000, 0);
    }
    set_mtime(&p("big.bin"), 1_234_567_890, 999_999_999);
}

/// Writing drops sub-second mtimes (as Docker); everything else must survive.
fn expected(
    mut snap: std::collections::BTreeMap<String, common::Node>,
) -> std::collections::BTreeMap<String, common::Node> {
    for node in snap.values_mut() {
        node.xattrs.remove(&b"security.selinux"[..]);
    }
    snap
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn every_file_type_round_trips_in_every_compression() {
    if !require_root() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir(&src).unwrap();
    build_tree(&src);
    let want = expected(snapshot(&src));

    for compression in [Compression::None, Compression::Gzip, Compression::Zstd] {
        let mut blob = Vec::new();
        let digests = write_tree(&src, &mut blob, compression).unwrap();
        assert_eq!(digests.size, blob.len() as u64);
        assert_eq!(digests.digest, oci::Digest::of(&blob));

        let dst = tmp.path().join(format!("dst-{compression:?}"));
        fs::create_dir(&dst).unwrap();
        let report = apply_layer(&blob[..], &dst).unwrap();
        assert_eq!(report.compression, compression);
        assert_eq!(report.digests(), digests);
        assert_eq!(report.size, blob.len() as u64);
        assert_eq!(report.xattrs_skipped, 0);
        assert_eq!(report.unpacked_size, snapshot_file_bytes(&want));

        let got = snapshot(&dst);
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            want.keys().collect::<Vec<_>>()
        );
        for (path, w) in &want {
            assert_eq!(
                &got[path], w,
                "{path} differs after {compression:?} round trip"
            );
        }
        // Writing the applied tree again gives the very same bytes.
        let mut again = Vec::new();
        let digests2 = write_tree(&dst, &mut again, compression).unwrap();
        assert_eq!(
            digests2, digests,
            "{compression:?} layer not reproducible from its own unpack"
        );
        assert_eq!(again, blob);
    }
}

fn snapshot_file_bytes(snap: &std::collections::BTreeMap<String, common::Node>) -> u64 {
    snap.values()
        .filter(|n| n.kind == "file" && n.same_inode_as.is_none())
        .map(|n| n.content.len() as u64)
        .sum()
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn output_is_docker_shaped_and_deterministic() {
    if !require_root() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir(&src).unwrap();
    build_tree(&src);
    let mut one = Vec::new();
    let mut two = Vec::new();
    let d1 = write_tree(&src, &mut one, Compression::None).unwrap();
    let d2 = write_tree(&src, &mut two, Compression::None).unwrap();
    assert_eq!(one, two);
    assert_eq!(d1, d2);
    assert_eq!(
        d1.diff_id, d1.digest,
        "uncompressed: blob digest is the diff_id"
    );
    assert_eq!(d1.diff_id, oci::Digest::of(&one));
    assert_eq!(d1.uncompressed_size, one.len() as u64);
    // Unhashed, the same bytes.
    let mut three = Vec::new();
    let size = layer::archive_tree(&src, &mut three).unwrap();
    assert!(three == one, "archive_tree writes write_tree's bytes");
    assert_eq!(size, one.len() as u64);
    // Two zero blocks at the end, nothing after them.
    assert!(one.len() % 512 == 0 && one[one.len() - 1024..].iter().all(|&b| b == 0));

    let names = tar_names(&one);
    assert!(
        !names.iter().any(|n| n == "." || n == "./" || n.is_empty()),
        "no root entry"
    );
    let pos = |n: &str| {
        names
            .iter()
            .position(|x| x == n)
            .unwrap_or_else(|| panic!("{n} missing from {names:?}"))
    };
    assert!(
        pos("a/") < pos("a/z") && pos("a/z") < pos("a-b"),
        "walk order: {names:?}"
    );
    assert!(pos("etc/") < pos("etc/hosts"));
    assert!(names
        .iter()
        .filter(|n| n.ends_with('/'))
        .all(|n| n.len() > 1));
    // Hardlinks: the first name in walk order holds the data, the others link to it.
    let mut ar = tar::Archive::new(&one[..]);
    for e in ar.entries().unwrap() {
        let e = e.unwrap();
        let path = String::from_utf8_lossy(&e.path_bytes()).into_owned();
        let h = e.header();
        match path.as_str() {
            "usr/bin/ls" | "usr/bin/sh" => {
                assert_eq!(h.entry_type(), tar::EntryType::Link);
                assert_eq!(e.link_name_bytes().unwrap().as_ref(), b"usr/bin/busybox");
                assert_eq!(h.mode().unwrap(), 0o100644);
            }
            "usr/bin/busybox" => assert_eq!(h.entry_type(), tar::EntryType::Regular),
            "usr/bin/su" => assert_eq!(h.mode().unwrap(), 0o104755, "mode carries type bits"),
            "tmp/" => assert_eq!(h.mode().unwrap(), 0o041777),
            "abs-link" => assert_eq!(h.mode().unwrap(), 0o120777),
            "dev/null" => {
                assert_eq!(h.entry_type(), tar::EntryType::Char);
                assert_eq!(
                    (h.device_major().unwrap(), h.device_minor().unwrap()),
                    (Some(1), Some(3))
                );
            }
            "big.bin" => assert_eq!(h.mtime().unwrap(), 1_234_567_890),
            "etc/hosts" => {
                assert_eq!(h.username().unwrap(), Some("root"));
                assert_eq!(&h.as_bytes()[257..265], b"ustar\x0000");
            }
            _ => {}
        }
    }
    // GNU tar reads it.
    let tarfile = tmp.path().join("layer.tar");
    fs::write(&tarfile, &one).unwrap();
    let out = Command::new("tar")
        .arg("-tvf")
        .arg(&tarfile)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "GNU tar: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(listing.contains(&"f".repeat(150)), "long name listed");
    assert!(
        listing.contains("usr/bin/sh link to usr/bin/busybox"),
        "{listing}"
    );
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn gnu_tar_archives_apply() {
    if !require_root() {
        return;
    }
    // An archive made by GNU tar (GNU long names, `./` prefixes, a root entry) applies and
    // matches the source.
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir(&src).unwrap();
    build_tree(&src);
    let tarfile = tmp.path().join("gnu.tar");
    let st = Command::new("tar")
        .args(["--format=gnu", "-cpf"])
        .arg(&tarfile)
        .arg("-C")
        .arg(&src)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
    let dst = tmp.path().join("dst");
    fs::create_dir(&dst).unwrap();
    let report = apply_layer(fs::File::open(&tarfile).unwrap(), &dst).unwrap();
    assert_eq!(report.compression, Compression::None);
    assert_eq!(
        report.diff_id,
        oci::Digest::of(&fs::read(&tarfile).unwrap())
    );
    let (want, got) = (snapshot(&src), snapshot(&dst));
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>()
    );
    for (path, w) in &want {
        let g = &got[path];
        // GNU format has no xattrs; compare the rest.
        assert_eq!(
            (g.kind, g.mode, g.uid, g.gid, g.mtime, g.rdev),
            (w.kind, w.mode, w.uid, w.gid, w.mtime, w.rdev),
            "{path}"
        );
        assert_eq!(
            (&g.content, &g.link, &g.same_inode_as),
            (&w.content, &w.link, &w.same_inode_as),
            "{path}"
        );
    }
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn pax_records_set_mtime_owner_and_xattrs() {
    if !require_root() {
        return;
    }
    let mut t = common::RawTar::new();
    t.pax(&[
        ("mtime", b"1700000000.5"),
        ("uid", b"3000000"),
        ("SCHILY.xattr.user.k", b"v"),
    ]);
    t.file("f", b"data");
    let tmp = tempfile::tempdir().unwrap();
    apply_layer(&t.finish()[..], tmp.path()).unwrap();
    let md = fs::symlink_metadata(tmp.path().join("f")).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        (md.mtime(), md.mtime_nsec(), md.uid()),
        (1_700_000_000, 500_000_000, 3_000_000)
    );
    assert_eq!(
        common::xattrs(&tmp.path().join("f"))
            .get(&b"user.k"[..])
            .map(Vec::as_slice),
        Some(&b"v"[..])
    );
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn overlay_xattrs_in_a_tar_are_not_applied() {
    if !require_root() {
        return;
    }
    let mut t = common::RawTar::new();
    t.pax(&[
        ("SCHILY.xattr.trusted.overlay.opaque", b"y"),
        ("SCHILY.xattr.trusted.overlay.redirect", b"/x"),
    ]);
    t.dir("d/");
    let tmp = tempfile::tempdir().unwrap();
    apply_layer(&t.finish()[..], tmp.path()).unwrap();
    assert!(common::xattrs(&tmp.path().join("d")).is_empty());
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn gnu_sparse_files_apply_with_their_holes_filled() {
    if !require_root() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir(&src).unwrap();
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = fs::File::create(src.join("sparse")).unwrap();
        f.write_all(b"head").unwrap();
        f.seek(SeekFrom::Start(5 << 20)).unwrap();
        f.write_all(b"middle").unwrap();
        f.set_len(9 << 20).unwrap();
    }
    let tarfile = tmp.path().join("sparse.tar");
    let st = Command::new("tar")
        .args(["--format=gnu", "--sparse", "-cf"])
        .arg(&tarfile)
        .arg("-C")
        .arg(&src)
        .arg("sparse")
        .status()
        .unwrap();
    assert!(st.success());
    let bytes = fs::read(&tarfile).unwrap();
    assert!(bytes.len() < 1 << 20, "GNU tar stored it sparse");
    assert_eq!(bytes[156], b'S');
    let dst = tmp.path().join("dst");
    fs::create_dir(&dst).unwrap();
    let report = apply_layer(&bytes[..], &dst).unwrap();
    assert_eq!(
        fs::read(dst.join("sparse")).unwrap(),
        fs::read(src.join("sparse")).unwrap()
    );
    assert_eq!(report.unpacked_size, 9 << 20);
}
