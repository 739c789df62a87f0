//! Malicious and broken archives. Each hostile case is applied with both path resolvers
//! (openat2 and the fallback walk) and both whiteout modes; afterwards a sentinel directory
//! beside the root and the directory holding both must be exactly as before. Broken
//! archives must fail with an error that says what is wrong.
//!
//! Every hostile entry aims at the sentinel (by relative or absolute path), never at host
//! paths such as /etc: a regression in confinement must not damage the machine running the
//! tests.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;

use common::{require_root, snapshot, RawTar};
use layer::{apply_layer, apply_layer_with, ApplyOptions, LayerError, WhiteoutMode};

struct Setup {
    _tmp: tempfile::TempDir,
    base: PathBuf,
    root: PathBuf,
    sentinel: PathBuf,
}

fn setup() -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().to_path_buf();
    let root = base.join("root");
    let sentinel = base.join("sentinel");
    fs::create_dir(&root).unwrap();
    fs::create_dir(&sentinel).unwrap();
    fs::write(sentinel.join("secret"), b"keep me").unwrap();
    fs::create_dir(sentinel.join("sub")).unwrap();
    fs::create_dir(sentinel.join("etc")).unwrap();
    fs::write(sentinel.join("etc/passwd"), b"root:x:0:0::/root:/bin/sh\n").unwrap();
    Setup {
        _tmp: tmp,
        base,
        root,
        sentinel,
    }
}

/// Everything outside the root that an escape could touch.
fn outside_state(s: &Setup) -> (BTreeMap<String, common::Node>, Vec<String>) {
    let mut beside: Vec<String> = fs::read_dir(&s.base)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    beside.sort();
    (snapshot(&s.sentinel), beside)
}

fn all_options() -> Vec<ApplyOptions> {
    let mut v = Vec::new();
    for whiteouts in [WhiteoutMode::OverlayDevices, WhiteoutMode::Delete] {
        for without_openat2 in [false, true] {
            v.push(ApplyOptions {
                whiteouts,
                without_openat2,
            });
        }
    }
    v
}

/// Applies `tar` under every option set; checks nothing outside changed; returns the
/// results (one per option set) for case-specific checks.
fn run_case(
    name: &str,
    build: impl Fn(&Setup) -> Vec<u8>,
    check: impl Fn(&Setup, &layer::Result<layer::ApplyReport>),
) {
    for opts in all_options() {
        let s = setup();
        let before = outside_state(&s);
        let tar = build(&s);
        let result = apply_layer_with(&tar[..], &s.root, &opts);
        let after = outside_state(&s);
        assert_eq!(
            before, after,
            "case {name} with {opts:?} changed something outside the root: {result:?}"
        );
        check(&s, &result);
    }
}

fn expect_escape(entry: &str) -> impl Fn(&Setup, &layer::Result<layer::ApplyReport>) + '_ {
    move |_, r| match r {
        Err(LayerError::Escape { entry: e, .. }) => assert_eq!(e, entry),
        other => panic!("expected an escape error naming {entry:?}, got {other:?}"),
    }
}

fn sentinel_abs(s: &Setup) -> String {
    s.sentinel.to_str().unwrap().to_string()
}

/// Where the sentinel's absolute path lands when resolved inside the root.
fn inside(s: &Setup, name: &str) -> PathBuf {
    s.root
        .join(s.sentinel.strip_prefix("/").unwrap())
        .join(name)
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn path_traversal_is_refused() {
    if !require_root() {
        return;
    }
    run_case(
        "dotdot",
        |_| RawTar::new().file("../sentinel/pwned", b"x").finish(),
        expect_escape("../sentinel/pwned"),
    );
    run_case(
        "inner dotdot",
        |_| {
            RawTar::new()
                .dir("a/")
                .file("a/../../sentinel/pwned", b"x")
                .finish()
        },
        expect_escape("a/../../sentinel/pwned"),
    );
    run_case(
        "dotdot dir",
        |_| RawTar::new().dir("../x/").finish(),
        expect_escape("../x/"),
    );
    // `..` that stays inside is folded, as Docker does.
    run_case(
        "harmless dotdot",
        |_| RawTar::new().dir("a/").file("a/../b", b"x").finish(),
        |s, r| {
            r.as_ref().unwrap();
            assert_eq!(fs::read(s.root.join("b")).unwrap(), b"x");
        },
    );
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn absolute_names_stay_inside() {
    if !require_root() {
        return;
    }
    run_case(
        "absolute name",
        |s| {
            RawTar::new()
                .file(&format!("{}/pwned", sentinel_abs(s)), b"x")
                .finish()
        },
        |s, r| {
            r.as_ref().unwrap();
            let inside = s
                .root
                .join(s.sentinel.strip_prefix("/").unwrap())
                .join("pwned");
            assert_eq!(fs::read(inside).unwrap(), b"x");
        },
    );
    run_case(
        "absolute hardlink target",
        |s| {
            RawTar::new()
                .hardlink("h", &format!("{}/secret", sentinel_abs(s)))
                .finish()
        },
        |_, r| {
            assert!(
                matches!(r, Err(LayerError::Apply { entry, .. }) if entry == "h"),
                "{r:?}"
            )
        },
    );
    run_case(
        "hardlink to an absolute file outside",
        |s| {
            RawTar::new()
                .hardlink("h", &format!("{}/etc/passwd", sentinel_abs(s)))
                .finish()
        },
        |s, r| {
            assert!(r.is_err(), "{r:?}");
            assert!(!s.root.join("h").exists());
        },
    );
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn symlink_escapes_are_refused_or_contained() {
    if !require_root() {
        return;
    }
    run_case(
        "relative symlink out",
        |_| {
            RawTar::new()
                .symlink("evil", "../sentinel")
                .file("evil/pwned", b"x")
                .finish()
        },
        expect_escape("evil/pwned"),
    );
    run_case(
        "absolute symlink out",
        |s| {
            RawTar::new()
                .symlink("evil", &sentinel_abs(s))
                .file("evil/pwned", b"x")
                .finish()
        },
        expect_escape("evil/pwned"),
    );
    run_case(
        "deep relative symlink",
        |s| {
            let through = format!("a/b/up{}/pwned", sentinel_abs(s));
            RawTar::new()
                .dir("a/")
                .dir("a/b/")
                .symlink("a/b/up", "../../../../../../../../../..")
                .file(&through, b"x")
                .finish()
        },
        |s, r| {
            // `..` above the root stays at the root: the file lands under the root itself.
            r.as_ref().unwrap();
            assert_eq!(fs::read(inside(s, "pwned")).unwrap(), b"x");
        },
    );
    run_case(
        "symlink to /",
        |s| {
            RawTar::new()
                .symlink("slash", "/")
                .file(&format!("slash{}/pwned", sentinel_abs(s)), b"x")
                .finish()
        },
        |s, r| {
            r.as_ref().unwrap();
            assert_eq!(fs::read(inside(s, "pwned")).unwrap(), b"x");
        },
    );
    run_case(
        "symlink loop",
        |_| {
            RawTar::new()
                .symlink("l1", "l2")
                .symlink("l2", "l1")
                .file("l1/x", b"x")
                .finish()
        },
        expect_escape("l1/x"),
    );
    run_case(
        "symlink then hardlink through it",
        |s| {
            RawTar::new()
                .symlink("l", &sentinel_abs(s))
                .hardlink("h", "l/secret")
                .finish()
        },
        |_, r| {
            assert!(
                matches!(r, Err(LayerError::Apply { entry, .. }) if entry == "h"),
                "{r:?}"
            )
        },
    );
    run_case(
        "hardlink climbing out",
        |_| RawTar::new().hardlink("h", "../sentinel/secret").finish(),
        expect_escape("h"),
    );
    run_case(
        "hardlink to a symlink pointing out links the symlink",
        |s| {
            RawTar::new()
                .symlink("s", &format!("{}/secret", sentinel_abs(s)))
                .hardlink("h", "s")
                .finish()
        },
        |s, r| {
            r.as_ref().unwrap();
            assert!(fs::symlink_metadata(s.root.join("h"))
                .unwrap()
                .file_type()
                .is_symlink());
        },
    );
    run_case(
        "file entry replaces a symlink instead of writing through it",
        |s| {
            RawTar::new()
                .symlink("s", &format!("{}/secret", sentinel_abs(s)))
                .file("s", b"overwrite")
                .finish()
        },
        |s, r| {
            r.as_ref().unwrap();
            assert_eq!(fs::read(s.root.join("s")).unwrap(), b"overwrite");
            assert!(fs::symlink_metadata(s.root.join("s")).unwrap().is_file());
        },
    );
    run_case(
        "dir entry replaces a symlink",
        |s| {
            RawTar::new()
                .symlink("s", &sentinel_abs(s))
                .dir("s/")
                .file("s/x", b"x")
                .finish()
        },
        |s, r| {
            r.as_ref().unwrap();
            assert!(fs::symlink_metadata(s.root.join("s")).unwrap().is_dir());
            assert!(s.root.join("s/x").is_file());
        },
    );
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn symlink_swapped_in_mid_archive() {
    if !require_root() {
        return;
    }
    run_case(
        "swap to an etc outside",
        |s| {
            let etc = format!("{}/etc", sentinel_abs(s));
            RawTar::new()
                .dir("a/")
                .file("a/ok", b"1")
                .symlink("a", &etc)
                .file("a/passwd", b"root::0:0::/:/bin/sh\n")
                .finish()
        },
        expect_escape("a/passwd"),
    );
    run_case(
        "swap to sentinel",
        |s| {
            RawTar::new()
                .dir("a/")
                .symlink("a", &sentinel_abs(s))
                .file("a/secret", b"pwned")
                .finish()
        },
        expect_escape("a/secret"),
    );
    run_case(
        "swap to relative outside",
        |_| {
            RawTar::new()
                .dir("a/")
                .dir("a/b/")
                .symlink("a", "../sentinel")
                .dir("a/sub/")
                .file("a/sub/x", b"x")
                .finish()
        },
        expect_escape("a/sub/"),
    );
    // Where the target exists inside the root, the write goes there: still confined.
    run_case(
        "swap to a directory that exists inside",
        |s| {
            let abs = sentinel_abs(s);
            RawTar::new()
                .file(&format!("{abs}/placeholder"), b"")
                .dir("a/")
                .symlink("a", &abs)
                .file("a/passwd", b"inside")
                .finish()
        },
        |s, r| {
            r.as_ref().unwrap();
            assert_eq!(fs::read(inside(s, "passwd")).unwrap(), b"inside");
        },
    );
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn hostile_whiteouts_are_refused_or_contained() {
    if !require_root() {
        return;
    }
    run_case(
        "whiteout ../x",
        |_| RawTar::new().file("../sentinel/.wh.secret", b"").finish(),
        expect_escape("../sentinel/.wh.secret"),
    );
    run_case(
        "whiteout named ..",
        |_| RawTar::new().file(".wh..", b"").finish(),
        expect_escape(".wh.."),
    );
    run_case(
        "whiteout named .",
        |_| RawTar::new().dir("d/").file("d/.wh..", b"").finish(),
        expect_escape("d/.wh.."),
    );
    run_case(
        "whiteout through a symlink out",
        |s| {
            RawTar::new()
                .symlink("l", &sentinel_abs(s))
                .file("l/.wh.secret", b"")
                .finish()
        },
        |_, r| {
            // Overlay mode must create the parent and refuses; delete mode finds nothing.
            if let Err(e) = r {
                assert!(
                    matches!(e, LayerError::Escape { entry, .. } if entry == "l/.wh.secret"),
                    "{e:?}"
                );
            }
        },
    );
    run_case(
        "opaque through a symlink out",
        |s| {
            RawTar::new()
                .symlink("l", &sentinel_abs(s))
                .file("l/.wh..wh..opq", b"")
                .finish()
        },
        |_, r| {
            if let Err(e) = r {
                assert!(
                    matches!(e, LayerError::Escape { entry, .. } if entry == "l/.wh..wh..opq"),
                    "{e:?}"
                );
            }
        },
    );
    run_case(
        "opaque of a relative symlink out",
        |_| {
            RawTar::new()
                .symlink("l", "../sentinel")
                .file("l/.wh..wh..opq", b"")
                .finish()
        },
        |_, _| {},
    );
}

fn expect_truncated(r: layer::Result<layer::ApplyReport>, what: &str) {
    match r {
        Err(LayerError::Truncated(msg)) => eprintln!("{what}: {msg}"),
        other => panic!("{what}: expected a truncation error, got {other:?}"),
    }
}

fn sample_tar() -> Vec<u8> {
    RawTar::new()
        .dir("d/")
        .file("d/a", &vec![b'a'; 3000])
        .file("d/b", b"bbb")
        .finish()
}

fn compress(data: &[u8], c: layer::Compression) -> Vec<u8> {
    use std::io::Write;
    match c {
        layer::Compression::None => data.to_vec(),
        layer::Compression::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        layer::Compression::Zstd => zstd::encode_all(data, 3).unwrap(),
    }
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn truncated_archives_are_reported() {
    if !require_root() {
        return;
    }
    let tar = sample_tar();
    let tmp = tempfile::tempdir().unwrap();
    let fresh = |i: usize| {
        let d = tmp.path().join(format!("t{i}"));
        fs::create_dir(&d).unwrap();
        d
    };
    // Cut in the middle of file data, in the middle of a header, at a block boundary
    // (the tar reader sees a clean EOF there), and with no end marker at all.
    let cases: [(&str, usize); 4] = [
        ("mid-data", 512 * 3 + 100),
        ("mid-header", 512 + 200),
        ("block boundary", 512 * 8),
        ("no end marker", tar.len() - 1024),
    ];
    for (i, (what, cut)) in cases.iter().enumerate() {
        expect_truncated(apply_layer(&tar[..*cut], &fresh(i)), what);
    }
    for (i, c) in [layer::Compression::Gzip, layer::Compression::Zstd]
        .into_iter()
        .enumerate()
    {
        let blob = compress(&tar, c);
        let r = apply_layer(&blob[..blob.len() / 2], &fresh(10 + i));
        match r {
            Err(LayerError::Truncated(_)) | Err(LayerError::Read { .. }) => {}
            other => panic!("{c:?} cut in half: {other:?}"),
        }
        // Whole archive cut before its end marker, then compressed correctly.
        let blob = compress(&tar[..tar.len() - 1024], c);
        expect_truncated(
            apply_layer(&blob[..], &fresh(20 + i)),
            "compressed without end marker",
        );
    }
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn corrupt_archives_are_reported() {
    if !require_root() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut n = 0;
    let mut fresh = || {
        n += 1;
        let d = tmp.path().join(format!("c{n}"));
        fs::create_dir(&d).unwrap();
        d
    };
    assert!(matches!(
        apply_layer(&b""[..], &fresh()),
        Err(LayerError::Empty)
    ));
    let mut xz = vec![0xfd, b'7', b'z', b'X', b'Z', 0];
    xz.extend_from_slice(&[0; 100]);
    assert!(matches!(
        apply_layer(&xz[..], &fresh()),
        Err(LayerError::UnsupportedCompression("xz"))
    ));
    // A header whose checksum does not match.
    let mut tar = sample_tar();
    tar[10] ^= 0x55;
    let e = apply_layer(&tar[..], &fresh()).unwrap_err();
    assert!(e.to_string().contains("checksum"), "{e}");
    // Garbage that is not a tar.
    let garbage: Vec<u8> = (0..4096u32).map(|i| (i * 31 % 251) as u8 | 1).collect();
    assert!(apply_layer(&garbage[..], &fresh()).is_err());
    // gzip with a flipped byte in the deflate stream, and zstd likewise.
    for c in [layer::Compression::Gzip, layer::Compression::Zstd] {
        let mut blob = compress(&sample_tar(), c);
        let mid = blob.len() / 2;
        blob[mid] ^= 0xff;
        let e = apply_layer(&blob[..], &fresh()).unwrap_err();
        eprintln!("{c:?} corrupt: {e}");
    }
    // An unsupported entry type names the entry.
    let t = RawTar::new()
        .raw(b"vol", tar::EntryType::new(b'V'), 0o644, b"", b"")
        .finish();
    match apply_layer(&t[..], &fresh()) {
        Err(LayerError::BadEntry { entry, .. }) => assert_eq!(entry, "vol"),
        other => panic!("{other:?}"),
    }
    // A PAX header with nothing after it.
    let mut t = RawTar::new();
    t.pax(&[("path", b"x")]);
    assert!(apply_layer(&t.finish()[..], &fresh()).is_err());
    // The root entry must be a directory.
    let t = RawTar::new().file("./", b"").finish();
    assert!(matches!(
        apply_layer(&t[..], &fresh()),
        Err(LayerError::BadEntry { .. })
    ));
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn digests_cover_the_whole_stream() {
    if !require_root() {
        return;
    }
    // Bytes after the end marker (tar padding to a record) count in the diff_id, and the
    // blob digest covers exactly what was read.
    let mut tar = sample_tar();
    tar.extend_from_slice(&[0u8; 8192]);
    let tmp = tempfile::tempdir().unwrap();
    let r = apply_layer(&tar[..], tmp.path()).unwrap();
    assert_eq!(r.diff_id, oci::Digest::of(&tar));
    assert_eq!(
        (r.digest, r.size, r.uncompressed_size),
        (oci::Digest::of(&tar), tar.len() as u64, tar.len() as u64)
    );
    assert_eq!(r.entries, 3);
    assert_eq!(r.unpacked_size, 3003);
    let gz = compress(&tar, layer::Compression::Gzip);
    let tmp = tempfile::tempdir().unwrap();
    let r = apply_layer(&gz[..], tmp.path()).unwrap();
    assert_eq!(
        (r.diff_id, r.digest, r.size),
        (oci::Digest::of(&tar), oci::Digest::of(&gz), gz.len() as u64)
    );
}

/// A GNU sparse entry `name` of `real` bytes whose only data is 512 `x` at offset 0.
fn sparse_tar(name: &str, real: u64) -> Vec<u8> {
    let mut h = tar::Header::new_gnu();
    h.set_path(name).unwrap();
    h.set_entry_type(tar::EntryType::GNUSparse);
    h.set_mode(0o644);
    h.set_size(512);
    {
        let g = h.as_gnu_mut().unwrap();
        let num = |field: &mut [u8], v: u64| {
            let s = format!("{v:0w$o}", w = field.len() - 1);
            if s.len() < field.len() {
                field[..s.len()].copy_from_slice(s.as_bytes());
                field[s.len()] = 0;
            } else {
                field.fill(0);
                field[0] = 0x80;
                let n = field.len();
                field[n - 8..].copy_from_slice(&v.to_be_bytes());
            }
        };
        num(&mut g.realsize, real);
        num(&mut g.sparse[0].offset, 0);
        num(&mut g.sparse[0].numbytes, 512);
        num(&mut g.sparse[1].offset, real);
        num(&mut g.sparse[1].numbytes, 0);
    }
    h.set_cksum();
    let mut out = h.as_bytes().to_vec();
    out.extend_from_slice(&[b'x'; 512]);
    out.extend_from_slice(&[0u8; 1024]);
    out
}

#[test]
fn a_sparse_entry_larger_than_the_free_space_is_refused_before_writing() {
    let s = setup();
    let err = apply_layer(&sparse_tar("bomb", 1 << 50)[..], &s.root).unwrap_err();
    assert!(matches!(err, LayerError::Limit(_)), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("\"bomb\"") && msg.contains("bytes free"),
        "{msg}"
    );
    assert_eq!(
        fs::metadata(s.root.join("bomb"))
            .map(|m| m.len())
            .unwrap_or(0),
        0
    );
}

#[test]
fn a_sparse_entry_keeps_its_holes() {
    use std::os::unix::fs::MetadataExt;
    if !require_root() {
        return;
    }
    let s = setup();
    let real = 256 << 20;
    apply_layer(&sparse_tar("sparse", real)[..], &s.root).unwrap();
    let m = fs::metadata(s.root.join("sparse")).unwrap();
    assert_eq!(m.len(), real);
    assert!(
        m.blocks() * 512 < 8 << 20,
        "{} bytes allocated",
        m.blocks() * 512
    );
    let mut head = [0u8; 513];
    use std::io::Read;
    fs::File::open(s.root.join("sparse"))
        .unwrap()
        .read_exact(&mut head)
        .unwrap();
    assert!(head[..512].iter().all(|b| *b == b'x') && head[512] == 0);
}
