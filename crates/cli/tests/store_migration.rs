//! A store written by strata before layers were kept as tar-split files (schema version 2:
//! every layer with a gzip blob) opens with today's strata, is migrated, and everything
//! still works on it: listing, running, building on the old image, saving it (the tar comes
//! from the old blob and is checked against its diff_id), and removing it.

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

use common::{busybox_tar, require_root, Strata};
use sha2::{Digest as _, Sha256};

/// The schema of strata 0.1 stores before tar-split files (migrations 1 and 2, verbatim).
const OLD_SCHEMA: &str = r#"
    CREATE TABLE layers (
        diff_id    TEXT PRIMARY KEY,
        size       INTEGER NOT NULL,
        tar_size   INTEGER NOT NULL,
        blob       TEXT,
        media_type TEXT,
        blob_size  INTEGER
    );
    CREATE TABLE images (
        id            TEXT PRIMARY KEY,
        parent        TEXT,
        created       TEXT NOT NULL,
        added         TEXT NOT NULL,
        last_tag_time TEXT
    );
    CREATE INDEX images_parent ON images(parent);
    CREATE TABLE image_layers (
        image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        diff_id  TEXT NOT NULL REFERENCES layers(diff_id),
        PRIMARY KEY (image_id, position)
    );
    CREATE INDEX image_layers_diff ON image_layers(diff_id);
    CREATE TABLE tags (
        name     TEXT PRIMARY KEY,
        image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE
    );
    CREATE TABLE repo_digests (
        name     TEXT NOT NULL,
        image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
        PRIMARY KEY (name, image_id)
    );
    CREATE TABLE containers (
        id          TEXT PRIMARY KEY,
        name        TEXT NOT NULL UNIQUE,
        image_id    TEXT NOT NULL,
        image_name  TEXT NOT NULL,
        snapshot    TEXT NOT NULL,
        config      TEXT NOT NULL,
        created     TEXT NOT NULL,
        status      TEXT NOT NULL,
        pid         INTEGER NOT NULL DEFAULT 0,
        exit_code   INTEGER NOT NULL DEFAULT 0,
        started_at  TEXT,
        finished_at TEXT,
        error       TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX containers_image ON containers(image_id);
    PRAGMA user_version = 2;
"#;

fn sha256(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(b)))
}

/// Writes, the way the previous version did, a store holding `old:1`: one busybox layer kept
/// as a gzip blob plus its unpacked directory. Returns the image ID.
fn write_old_store(root: &Path) -> String {
    for d in ["blobs/sha256", "layers", "tmp"] {
        fs::create_dir_all(root.join(d)).unwrap();
    }
    let tar = fs::read(busybox_tar()).unwrap();
    let diff_id = sha256(&tar);
    let gz = Command::new("sh")
        .arg("-c")
        .arg(format!("gzip -n -c < {}", busybox_tar().display()))
        .output()
        .unwrap();
    assert!(gz.status.success());
    let blob = sha256(&gz.stdout);
    fs::write(root.join("blobs/sha256").join(&blob[7..]), &gz.stdout).unwrap();
    let dir = root.join("layers").join(&diff_id[7..]);
    fs::create_dir(&dir).unwrap();
    layer::apply_layer(tar.as_slice(), &dir).unwrap();
    let size = layer::diff_size(&dir).unwrap();
    let config = format!(
        r#"{{"architecture":"amd64","config":{{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["sh"]}},"created":"2026-01-02T03:04:05Z","history":[{{"created":"2026-01-02T03:04:05Z","created_by":"imported by the previous strata"}}],"os":"linux","rootfs":{{"type":"layers","diff_ids":["{diff_id}"]}}}}"#
    );
    let id = sha256(config.as_bytes());
    fs::write(root.join("blobs/sha256").join(&id[7..]), &config).unwrap();
    let db = rusqlite::Connection::open(root.join("metadata.db")).unwrap();
    db.execute_batch(OLD_SCHEMA).unwrap();
    db.execute(
        "INSERT INTO layers VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        rusqlite::params![
            diff_id,
            size as i64,
            tar.len() as i64,
            blob,
            "application/vnd.docker.image.rootfs.diff.tar.gzip",
            gz.stdout.len() as i64
        ],
    )
    .unwrap();
    db.execute(
        "INSERT INTO images (id, created, added) VALUES (?1, '2026-01-02T03:04:05Z', '2026-01-02T03:04:05Z')",
        [&id],
    )
    .unwrap();
    db.execute(
        "INSERT INTO image_layers VALUES (?1, 0, ?2)",
        [&id, &diff_id],
    )
    .unwrap();
    db.execute(
        "INSERT INTO tags VALUES ('docker.io/library/old:1', ?1)",
        [&id],
    )
    .unwrap();
    id
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn a_store_of_the_previous_version_is_migrated_and_keeps_working() {
    if !require_root() {
        return;
    }
    let s = Strata::new();
    let id = write_old_store(s.root.path());

    let images = s.ok(&["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"]);
    assert!(
        images.contains(&format!("old:1 {}", &id[7..19])),
        "{images}"
    );
    let out = s.ok(&["run", "--rm", "old:1", "cat", "/etc/passwd"]);
    assert!(out.contains("root:x:0:0"), "{out}");

    // A build on the old image makes a layer of the new kind on top of the old one.
    let ctx = tempfile::tempdir().unwrap();
    fs::write(
        ctx.path().join("Dockerfile"),
        "FROM old:1\nRUN echo new > /new\n",
    )
    .unwrap();
    s.ok(&["build", "-q", "-t", "new:1", ctx.path().to_str().unwrap()]);
    let out = s.ok(&["run", "--rm", "new:1", "cat", "/new", "/etc/group"]);
    assert!(
        out.starts_with("new\n") && out.contains("root:x:0:"),
        "{out}"
    );
    assert!(
        fs::read_dir(s.root.path().join("tarsplit"))
            .unwrap()
            .count()
            == 1,
        "only the new layer has a tar-split file"
    );

    // save reads the old layer from its blob, the new one from its tar-split file; a
    // second store loads both with the same IDs.
    let archive = s.root.path().join("both.tar");
    s.ok(&["save", "-o", archive.to_str().unwrap(), "old:1", "new:1"]);
    let other = Strata::new();
    other.ok(&["load", "-i", archive.to_str().unwrap()]);
    for name in ["old:1", "new:1"] {
        assert_eq!(
            s.ok(&["inspect", "-f", "{{.Id}}", name]),
            other.ok(&["inspect", "-f", "{{.Id}}", name])
        );
    }
    assert_eq!(other.ok(&["inspect", "-f", "{{.Id}}", "old:1"]).trim(), id);

    // Removing everything frees the old blob and layer.
    s.ok(&["rmi", "new:1", "old:1"]);
    assert_eq!(
        fs::read_dir(s.root.path().join("layers")).unwrap().count(),
        0
    );
    let blobs: Vec<_> = fs::read_dir(s.root.path().join("blobs/sha256"))
        .unwrap()
        .flatten()
        .collect();
    assert!(blobs.is_empty(), "{blobs:?}");
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn an_old_layer_whose_blob_was_damaged_is_not_saved() {
    if !require_root() {
        return;
    }
    let s = Strata::new();
    write_old_store(s.root.path());
    let blobs = s.root.path().join("blobs/sha256");
    // Replace the layer blob (the only gzip one) by a valid gzip of other bytes.
    for e in fs::read_dir(&blobs).unwrap().flatten() {
        let b = fs::read(e.path()).unwrap();
        if b.starts_with(&[0x1f, 0x8b]) {
            let out = Command::new("sh")
                .arg("-c")
                .arg("printf 'not the layer' | gzip -n -c")
                .output()
                .unwrap();
            fs::write(e.path(), out.stdout).unwrap();
        }
    }
    let archive = s.root.path().join("old.tar");
    let (code, err) = s.fails(&["save", "-o", archive.to_str().unwrap(), "old:1"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("layer sha256:") && err.contains("its stored blob"),
        "{err}"
    );
    assert!(!archive.exists(), "no half-written archive is left");
}
