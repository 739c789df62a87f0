//! Tar-split files: a layer applied with `apply_layer_recording` (or a directory written with
//! `write_layer_split`) reads back through `TarReader` as exactly the tar it came from, for
//! tars of every shape a registry may hold: PAX and GNU long names, duplicate entries (a file
//! replaced by a later one, a directory replaced by a file, a file whited out by the same
//! layer), hard links, data under a symlinked parent, sparse files, trailing bytes after the
//! end marker, and tars from GNU tar and Docker.

mod common;

use std::fs;
use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;

use common::{require_root, RawTar};
use layer::{apply_layer_recording, write_layer, write_layer_split, Compression, TarReader};
use oci::Digest;

/// Applies `tar` with recording into a fresh directory and reads it back; returns the bytes
/// and the directory (kept alive by the tempdir).
fn round_trip(tar: &[u8]) -> (Vec<u8>, tempfile::TempDir) {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("layer");
    fs::create_dir(&root).unwrap();
    let split = t.path().join("layer.split");
    let report = apply_layer_recording(tar, &root, &split).unwrap();
    assert_eq!(report.diff_id, Digest::of(tar));
    assert!(
        !t.path().join("layer.aside").exists(),
        "the aside directory is removed"
    );
    let mut out = Vec::new();
    TarReader::open(&root, &split)
        .unwrap()
        .read_to_end(&mut out)
        .unwrap();
    (out, t)
}

fn assert_same(tar: &[u8]) -> tempfile::TempDir {
    let (out, t) = round_trip(tar);
    assert_eq!(out.len(), tar.len());
    assert!(out == tar, "reassembled tar differs");
    t
}

fn split_size(t: &tempfile::TempDir) -> u64 {
    fs::metadata(t.path().join("layer.split")).unwrap().len()
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn plain_entries_pax_and_long_names_come_back_byte_for_byte() {
    if !require_root() {
        return;
    }
    let long = format!("{}/file", "d".repeat(150));
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(3);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, &long, &b"abc"[..]).unwrap();
    let big: Vec<u8> = (0..1_000_000u32).map(|i| (i * 31 % 251) as u8).collect();
    let mut h = tar::Header::new_ustar();
    h.set_size(big.len() as u64);
    h.set_mode(0o600);
    b.append_data(&mut h, "big", big.as_slice()).unwrap();
    let mut raw = b.into_inner().unwrap();
    raw.extend_from_slice(&[0u8; 1024]);
    let t = assert_same(&raw);
    assert!(
        split_size(&t) < 64 * 1024,
        "file data stays out of the tar-split file ({} bytes)",
        split_size(&t)
    );

    let mut r = RawTar::new();
    r.pax(&[("path", "ünïcode name".as_bytes()), ("mtime", b"1.5")])
        .file("placeholder", b"pax data")
        .dir("x/")
        .file("x/y", b"y");
    assert_same(&r.finish());
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn duplicates_and_replacements_keep_every_version() {
    if !require_root() {
        return;
    }
    let mut r = RawTar::new();
    r.dir("d/")
        .file("d/f", b"first version")
        .file("d/f", b"second, longer version")
        .file("d/g", b"g in d")
        .file("d", b"d is now a file")
        .file("h", b"to be whited out")
        .file(".wh.h", b"")
        .file("k", b"k")
        .hardlink("k2", "k")
        .file("k", b"k replaced; k2 keeps the first");
    let tar = r.finish();
    let t = assert_same(&tar);
    let root = t.path().join("layer");
    assert_eq!(fs::read(root.join("d")).unwrap(), b"d is now a file");
    assert_eq!(fs::read(root.join("k2")).unwrap(), b"k");
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn data_under_a_symlinked_parent_and_trailing_bytes() {
    if !require_root() {
        return;
    }
    let mut r = RawTar::new();
    r.dir("real/")
        .symlink("link", "real")
        .file("link/through", b"written through a symlink")
        .symlink("link", "elsewhere");
    let mut tar = r.finish();
    // Writers pad to their record size; some append garbage.
    tar.extend_from_slice(&[0u8; 8192]);
    tar.extend_from_slice(b"trailing bytes");
    assert_same(&tar);
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn gnu_tar_sparse_and_hardlinked_files() {
    if !require_root() {
        return;
    }
    let src = tempfile::tempdir().unwrap();
    let p = src.path();
    let mut f = fs::File::create(p.join("sparse")).unwrap();
    f.write_all(b"start").unwrap();
    f.set_len(5 << 20).unwrap();
    use std::io::{Seek, SeekFrom};
    f.seek(SeekFrom::Start(3 << 20)).unwrap();
    f.write_all(b"middle").unwrap();
    drop(f);
    fs::write(p.join("a"), b"linked").unwrap();
    fs::hard_link(p.join("a"), p.join("b")).unwrap();
    for format in ["gnu", "posix"] {
        let out = Command::new("tar")
            .args(["--sparse", "-c", "-C"])
            .arg(p)
            .arg(format!("--format={format}"))
            .arg(".")
            .output()
            .unwrap();
        assert!(out.status.success(), "tar failed");
        let t = assert_same(&out.stdout);
        if format == "gnu" {
            let sparse = fs::read(t.path().join("layer/sparse")).unwrap();
            assert_eq!(sparse.len(), 5 << 20);
            assert_eq!(&sparse[3 << 20..(3 << 20) + 6], b"middle");
        }
    }
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn a_layer_docker_wrote_and_compressed_layers() {
    if !require_root() {
        return;
    }
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/docker-20.10-commit-layer.tar");
    let tar = fs::read(fixture).unwrap();
    assert_same(&tar);
    // Compressed streams record the tar inside them.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    let gz = gz.finish().unwrap();
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("layer");
    fs::create_dir(&root).unwrap();
    let split = t.path().join("layer.split");
    let report = apply_layer_recording(gz.as_slice(), &root, &split).unwrap();
    assert_eq!(report.digest, Digest::of(&gz));
    let mut out = Vec::new();
    TarReader::open(&root, &split)
        .unwrap()
        .read_to_end(&mut out)
        .unwrap();
    assert!(out == tar);
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn a_written_directory_reads_back_as_write_layer_writes_it() {
    if !require_root() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("upper");
    fs::create_dir_all(dir.join("a/b")).unwrap();
    fs::write(dir.join("a/b/c"), vec![7u8; 100_000]).unwrap();
    fs::write(dir.join("z"), b"z").unwrap();
    fs::hard_link(dir.join("z"), dir.join("a/z2")).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        dir.join("gone"),
        rustix::fs::FileType::CharacterDevice,
        rustix::fs::Mode::empty(),
        rustix::fs::makedev(0, 0),
    )
    .unwrap();
    let mut plain = Vec::new();
    let d = write_layer(&dir, &mut plain, Compression::None).unwrap();
    let written = write_layer_split(&dir, Vec::new()).unwrap();
    let (ds, split) = (written.digests, written.split);
    assert_eq!(ds.diff_id, d.diff_id);
    assert_eq!(written.diff_size, layer::diff_size(&dir).unwrap());
    assert_eq!(ds.uncompressed_size, plain.len() as u64);
    let mut out = Vec::new();
    TarReader::new(&dir, split.as_slice())
        .unwrap()
        .read_to_end(&mut out)
        .unwrap();
    assert!(out == plain);
    // A changed file no longer gives the tar back.
    fs::write(dir.join("a/b/c"), b"short").unwrap();
    let mut out = Vec::new();
    let r = TarReader::new(&dir, split.as_slice())
        .unwrap()
        .read_to_end(&mut out);
    let err = r.unwrap_err().to_string();
    assert!(err.contains("a/b/c") && err.contains("changed"), "{err}");
}
