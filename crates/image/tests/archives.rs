//! Loading untrusted archives: every way an archive can lie or attack is refused with an
//! error that names the culprit, and leaves the store exactly as it was.

use std::io::Cursor;
use std::path::Path;

use oci::Digest;
use store::Store;

#[path = "../../../support/test_guard.rs"]
mod test_guard;
#[allow(unused_imports)]
use test_guard::{cannot_run, ci};

/// Whether this process runs as root.
fn is_root() -> bool {
    // SAFETY: no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Whether the test runs as root; otherwise see [`cannot_run`].
fn require_root() -> bool {
    if is_root() {
        return true;
    }
    cannot_run("needs root");
    false
}

/// A small layer tar with one file.
fn layer_tar(name: &str, data: &[u8]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_path(name).unwrap();
    h.set_cksum();
    b.append(&h, data).unwrap();
    b.into_inner().unwrap()
}

fn config_for(diff_ids: &[Digest]) -> Vec<u8> {
    let ids: Vec<String> = diff_ids.iter().map(|d| format!("\"{d}\"")).collect();
    format!(
        r#"{{"architecture":"amd64","config":{{}},"created":"2026-01-01T00:00:00Z","history":[{{"created":"2026-01-01T00:00:00Z"}}],"os":"linux","rootfs":{{"type":"layers","diff_ids":[{}]}}}}"#,
        ids.join(",")
    )
    .into_bytes()
}

/// A Docker legacy archive: files given as (name, bytes), plus a manifest.json.
fn archive(files: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut h = tar::Header::new_gnu();
        {
            let old = h.as_old_mut();
            old.name = [0; 100];
            old.name[..name.len()].copy_from_slice(name.as_bytes());
        }
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        b.append(&h, &data[..]).unwrap();
    }
    b.into_inner().unwrap()
}

fn manifest(config: &str, layers: &[&str], tag: &str) -> Vec<u8> {
    let ls: Vec<String> = layers.iter().map(|l| format!("\"{l}\"")).collect();
    format!(
        r#"[{{"Config":"{config}","RepoTags":["{tag}"],"Layers":[{}]}}]"#,
        ls.join(",")
    )
    .into_bytes()
}

fn entries(root: &Path) -> Vec<String> {
    let mut v = Vec::new();
    for d in ["layers", "blobs/sha256", "tmp"] {
        for e in std::fs::read_dir(root.join(d)).unwrap().flatten() {
            v.push(format!("{d}/{}", e.file_name().to_string_lossy()));
        }
    }
    v.sort();
    v
}

fn load_err(ar: Vec<u8>) -> (String, tempfile::TempDir) {
    let t = tempfile::tempdir().unwrap();
    let mut s = Store::open(t.path()).unwrap();
    let before = entries(t.path());
    let err = image::load(&mut s, Cursor::new(ar))
        .unwrap_err()
        .to_string();
    assert_eq!(entries(t.path()), before, "a failed load changed the store");
    assert!(s.images().unwrap().is_empty());
    (err, t)
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn a_good_archive_loads() {
    if !require_root() {
        return;
    }
    let layer = layer_tar("hello.txt", b"hi");
    let cfg = config_for(&[Digest::of(&layer)]);
    let ar = archive(&[
        ("l/layer.tar", layer),
        ("c.json", cfg.clone()),
        (
            "manifest.json",
            manifest("c.json", &["l/layer.tar"], "good:1"),
        ),
    ]);
    let t = tempfile::tempdir().unwrap();
    let mut s = Store::open(t.path()).unwrap();
    let l = image::load(&mut s, Cursor::new(ar)).unwrap();
    assert_eq!(l.messages, vec!["Loaded image: good:1".to_string()]);
    assert_eq!(l.images, vec![Digest::of(&cfg)]);
}

#[test]
fn a_layer_that_does_not_match_its_diff_id_is_refused() {
    let layer = layer_tar("hello.txt", b"hi");
    let cfg = config_for(&[Digest::of(b"something else")]);
    let (err, _t) = load_err(archive(&[
        ("l/layer.tar", layer),
        ("c.json", cfg),
        (
            "manifest.json",
            manifest("c.json", &["l/layer.tar"], "bad:1"),
        ),
    ]));
    assert!(
        err.contains("diff_id mismatch") && err.contains("l/layer.tar"),
        "{err}"
    );
}

#[test]
fn a_config_named_by_the_wrong_digest_is_refused() {
    let layer = layer_tar("hello.txt", b"hi");
    let cfg = config_for(&[Digest::of(&layer)]);
    let wrong = format!("{}.json", Digest::of(b"x").hex());
    let (err, _t) = load_err(archive(&[
        ("l/layer.tar", layer),
        (&wrong, cfg),
        ("manifest.json", manifest(&wrong, &["l/layer.tar"], "bad:1")),
    ]));
    assert!(
        err.contains("digest mismatch") && err.contains(&wrong),
        "{err}"
    );
}

#[test]
fn archive_entries_that_climb_out_are_refused() {
    let (err, t) = load_err(archive(&[("../../escape.txt", b"x".to_vec())]));
    assert!(err.contains("../../escape.txt"), "{err}");
    assert!(!t.path().parent().unwrap().join("escape.txt").exists());
}

#[test]
fn a_malicious_layer_inside_an_archive_is_refused() {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    let name = b"../../../tmp/strata-evil-layer";
    h.as_old_mut().name[..name.len()].copy_from_slice(name);
    h.set_size(1);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    b.append(&h, &b"x"[..]).unwrap();
    let layer = b.into_inner().unwrap();
    let cfg = config_for(&[Digest::of(&layer)]);
    let (err, _t) = load_err(archive(&[
        ("l/layer.tar", layer),
        ("c.json", cfg),
        (
            "manifest.json",
            manifest("c.json", &["l/layer.tar"], "bad:1"),
        ),
    ]));
    assert!(err.contains("strata-evil-layer"), "{err}");
    assert!(!Path::new("/tmp/strata-evil-layer").exists());
}

#[test]
fn truncated_archives_and_garbage_are_refused() {
    let layer = layer_tar("hello.txt", &[1u8; 5000]);
    let cfg = config_for(&[Digest::of(&layer)]);
    let full = archive(&[
        ("l/layer.tar", layer),
        ("c.json", cfg),
        ("manifest.json", manifest("c.json", &["l/layer.tar"], "t:1")),
    ]);
    let (err, _t) = load_err(full[..3000].to_vec());
    assert!(
        err.contains("truncated") || err.contains("manifest.json"),
        "{err}"
    );
    let (err, _t) = load_err(b"this is not a tar archive at all, not even close.".repeat(20));
    assert!(err.contains("archive"), "{err}");
    let (err, _t) = load_err(archive(&[("manifest.json", b"{not json".to_vec())]));
    assert!(err.contains("manifest.json"), "{err}");
}

#[test]
fn an_unknown_manifest_media_type_is_refused() {
    let m = br#"{"schemaVersion":2,"mediaType":"application/x-weird","config":{"digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000"},"layers":[]}"#.to_vec();
    let md = Digest::of(&m);
    let index = format!(
        r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/x-weird","digest":"{md}","size":{}}}]}}"#,
        m.len()
    );
    let (err, _t) = load_err(archive(&[
        ("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec()),
        ("index.json", index.into_bytes()),
        (&format!("blobs/sha256/{}", md.hex()), m),
    ]));
    assert!(
        err.contains("unknown media type") && err.contains(&md.to_string()),
        "{err}"
    );
}

#[test]
fn a_tampered_oci_blob_is_refused() {
    let layer = layer_tar("hello.txt", b"hi");
    let ld = Digest::of(&layer);
    let cfg = config_for(&[ld]);
    let cd = Digest::of(&cfg);
    let m = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{cd}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{ld}","size":{}}}]}}"#,
        cfg.len(),
        layer.len()
    )
    .into_bytes();
    let md = Digest::of(&m);
    let index = format!(
        r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{md}","size":{}}}]}}"#,
        m.len()
    );
    let mut tampered = layer.clone();
    tampered[600] ^= 1;
    let (err, _t) = load_err(archive(&[
        ("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec()),
        ("index.json", index.into_bytes()),
        (&format!("blobs/sha256/{}", md.hex()), m),
        (&format!("blobs/sha256/{}", cd.hex()), cfg),
        (&format!("blobs/sha256/{}", ld.hex()), tampered),
    ]));
    assert!(
        err.contains("digest mismatch") || err.contains("diff_id mismatch"),
        "{err}"
    );
}
