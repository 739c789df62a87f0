//! The store against real files and a real SQLite database: publishing, sharing layers,
//! freeing them, refusing bad digests, and surviving a writer killed at any instant.

use std::fs;
use std::io::Write;
use std::path::Path;

use oci::Digest;
use store::{BlobRef, LayerRecord, NewImage, Store};

/// Stages a "layer" directory with one file and a blob, and publishes it.
fn publish_layer(store: &mut Store, content: &str) -> Digest {
    let staging = store.stage().unwrap();
    let dir = staging.new_dir("layer").unwrap();
    fs::write(dir.join("file"), content).unwrap();
    let mut w = staging.blob_writer().unwrap();
    w.write_all(content.as_bytes()).unwrap();
    let blob = w.finish(None).unwrap();
    let diff_id = Digest::of(format!("diff:{content}").as_bytes());
    let mut p = store.publish().unwrap();
    let b = p.put_blob(blob).unwrap();
    let record = LayerRecord {
        diff_id,
        size: content.len() as u64,
        tar_size: 1024,
        blob: Some(BlobRef {
            digest: b,
            media_type: "application/vnd.oci.image.layer.v1.tar".into(),
            size: 4,
        }),
        tar_split: false,
    };
    p.put_layer(&dir, None, &record).unwrap();
    p.commit().unwrap();
    diff_id
}

fn add_image(store: &mut Store, config: &str, layers: &[Digest], tag: Option<&str>) -> Digest {
    let mut p = store.publish().unwrap();
    let id = p
        .add_image(&NewImage {
            config: config.as_bytes(),
            layers,
            parent: None,
            created: "2026-01-01T00:00:00Z",
        })
        .unwrap();
    if let Some(t) = tag {
        p.tag(t, &id).unwrap();
    }
    p.commit().unwrap();
    id
}

fn entries(p: &Path) -> usize {
    fs::read_dir(p).unwrap().count()
}

#[test]
fn shared_layer_is_stored_once_and_freed_with_the_last_image() {
    let tmp = tempfile::tempdir().unwrap();
    let mut store = Store::open(tmp.path()).unwrap();
    let l1 = publish_layer(&mut store, "base");
    let l2 = publish_layer(&mut store, "top");
    // Publishing the same layer again keeps one copy.
    assert_eq!(publish_layer(&mut store, "base"), l1);
    assert_eq!(entries(&tmp.path().join("layers")), 2);

    let a = add_image(
        &mut store,
        "{\"a\":1}",
        &[l1, l2],
        Some("docker.io/library/a:latest"),
    );
    // The same layer at another position of another image is still the same directory.
    let b = add_image(
        &mut store,
        "{\"b\":1}",
        &[l2, l1],
        Some("docker.io/library/b:latest"),
    );
    assert_eq!(
        store.lookup_tag("docker.io/library/a:latest").unwrap(),
        Some(a)
    );
    let rec = store.image(&b).unwrap().unwrap();
    assert_eq!(rec.layers, vec![l2, l1]);
    assert_eq!(rec.size, 7);
    assert_eq!(rec.tags, vec!["docker.io/library/b:latest".to_string()]);
    assert_eq!(store.images_with_prefix(&a.hex()[..12]).unwrap(), vec![a]);

    let mut p = store.publish().unwrap();
    p.delete_image(&a).unwrap();
    p.commit().unwrap();
    let c = store.collect_garbage().unwrap();
    assert!(
        c.layers.is_empty(),
        "layers still used by b must stay: {c:?}"
    );
    assert_eq!(c.blobs, vec![a]);
    assert!(store.layer_dir(&l1).join("file").is_file());

    let mut p = store.publish().unwrap();
    p.delete_image(&b).unwrap();
    p.commit().unwrap();
    let c = store.collect_garbage().unwrap();
    assert_eq!(c.layers.len(), 2);
    assert_eq!(entries(&tmp.path().join("layers")), 0);
    assert_eq!(entries(&tmp.path().join("blobs/sha256")), 0);
    assert_eq!(entries(&tmp.path().join("tmp")), 0);
    assert!(store.images().unwrap().is_empty());
    assert!(store.layers().unwrap().is_empty());
}

#[test]
fn a_blob_with_the_wrong_digest_never_becomes_visible() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let staging = store.stage().unwrap();
    let mut w = staging.blob_writer().unwrap();
    w.write_all(b"hello").unwrap();
    let wrong = Digest::of(b"other");
    let err = w.finish(Some(&wrong)).unwrap_err().to_string();
    assert!(err.contains("digest mismatch"), "{err}");
    assert!(err.contains(&wrong.to_string()), "{err}");
    assert_eq!(entries(&tmp.path().join("blobs/sha256")), 0);
    drop(staging);
    assert_eq!(entries(&tmp.path().join("tmp")), 0);
}

#[test]
fn an_image_with_an_unknown_layer_is_refused_and_nothing_is_recorded() {
    let tmp = tempfile::tempdir().unwrap();
    let mut store = Store::open(tmp.path()).unwrap();
    let missing = Digest::of(b"nope");
    {
        let mut p = store.publish().unwrap();
        let err = p
            .add_image(&NewImage {
                config: b"{}",
                layers: &[missing],
                parent: None,
                created: "",
            })
            .unwrap_err();
        assert!(err.to_string().contains(&missing.to_string()));
    }
    assert!(store.images().unwrap().is_empty());
}

#[test]
fn retagging_moves_the_name_and_reports_the_old_image() {
    let tmp = tempfile::tempdir().unwrap();
    let mut store = Store::open(tmp.path()).unwrap();
    let l = publish_layer(&mut store, "x");
    let a = add_image(&mut store, "{\"n\":1}", &[l], Some("r/x:1"));
    let b = add_image(&mut store, "{\"n\":2}", &[l], None);
    let mut p = store.publish().unwrap();
    assert_eq!(p.tag("r/x:1", &b).unwrap(), Some(a));
    assert_eq!(p.tag("r/x:1", &b).unwrap(), None);
    p.commit().unwrap();
    assert_eq!(store.lookup_tag("r/x:1").unwrap(), Some(b));
    assert!(store.image(&a).unwrap().unwrap().tags.is_empty());
}

#[test]
fn cache_candidates_are_the_children_with_the_key_or_without_any() {
    let tmp = tempfile::tempdir().unwrap();
    let mut store = Store::open(tmp.path()).unwrap();
    let parent = add_image(&mut store, "{\"n\":0}", &[], None);
    let child = |store: &mut Store, n: u32, parent: Option<Digest>, key: Option<&str>| {
        let mut p = store.publish().unwrap();
        let id = p
            .add_image(&NewImage {
                config: format!("{{\"n\":{n}}}").as_bytes(),
                layers: &[],
                parent,
                created: "2026-01-01T00:00:00Z",
            })
            .unwrap();
        if let Some(k) = key {
            p.set_cache_key(&id, k).unwrap();
        }
        p.commit().unwrap();
        id
    };
    let a = child(&mut store, 1, Some(parent), Some("ka"));
    let b = child(&mut store, 2, Some(parent), Some("kb"));
    let unkeyed = child(&mut store, 3, Some(parent), None);
    let root_a = child(&mut store, 4, None, Some("ka"));
    let sorted = |mut v: Vec<Digest>| {
        v.sort();
        v
    };
    assert_eq!(
        store.cache_candidates(Some(&parent), "ka").unwrap(),
        sorted(vec![a, unkeyed])
    );
    assert_eq!(
        store.cache_candidates(Some(&parent), "kb").unwrap(),
        sorted(vec![b, unkeyed])
    );
    assert_eq!(
        store.cache_candidates(Some(&parent), "kc").unwrap(),
        vec![unkeyed]
    );
    assert_eq!(
        store.cache_candidates(None, "ka").unwrap(),
        sorted(vec![parent, root_a])
    );
    assert!(store.cache_candidates(Some(&b), "kb").unwrap().is_empty());
}

#[test]
fn staging_left_by_a_dead_process_is_collected_but_a_live_one_is_not() {
    let tmp = tempfile::tempdir().unwrap();
    let mut store = Store::open(tmp.path()).unwrap();
    let live = store.stage().unwrap();
    let dead = tmp.path().join("tmp/stage-dead");
    fs::create_dir(&dead).unwrap();
    fs::write(dead.join("partial"), "half a layer").unwrap();
    fs::write(tmp.path().join("tmp/stage-dead.lock"), "").unwrap();
    let c = store.collect_garbage().unwrap();
    assert_eq!(c.stale_staging, 1);
    assert!(!dead.exists());
    assert!(live.path().is_dir());
}

#[test]
fn the_next_staging_area_collects_a_dead_processs_but_not_a_live_one() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let live = store.stage().unwrap();
    let dead = tmp.path().join("tmp/stage-dead");
    fs::create_dir(&dead).unwrap();
    fs::write(dead.join("partial"), "half a layer").unwrap();
    fs::write(tmp.path().join("tmp/stage-dead.lock"), "").unwrap();
    // A lock file whose directory is not made yet is left (its process may be making it).
    let making = tmp.path().join("tmp/stage-making.lock");
    fs::write(&making, "").unwrap();
    let next = store.stage().unwrap();
    assert!(!dead.exists() && !tmp.path().join("tmp/stage-dead.lock").exists());
    assert!(live.path().is_dir() && next.path().is_dir() && making.exists());
}

#[test]
fn concurrent_stores_publish_without_losing_anything() {
    let tmp = tempfile::tempdir().unwrap();
    Store::open(tmp.path()).unwrap();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let root = tmp.path().to_path_buf();
            std::thread::spawn(move || {
                let mut store = Store::open(&root).unwrap();
                for i in 0..10 {
                    let l = publish_layer(&mut store, &format!("shared-{}", i % 3));
                    let own = publish_layer(&mut store, &format!("own-{t}-{i}"));
                    add_image(
                        &mut store,
                        &format!("{{\"t\":{t},\"i\":{i}}}"),
                        &[l, own],
                        Some(&format!("t{t}:{i}")),
                    );
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let store = Store::open(tmp.path()).unwrap();
    assert_eq!(store.images().unwrap().len(), 40);
    assert_eq!(store.layers().unwrap().len(), 43);
    assert_eq!(entries(&tmp.path().join("layers")), 43);
}

/// Every row names files that exist, whatever instant a writer died at.
fn assert_consistent(root: &Path) {
    let store = Store::open(root).unwrap();
    for l in store.layers().unwrap() {
        assert!(
            store.layer_dir(&l.diff_id).join("file").is_file(),
            "layer {} lost its dir",
            l.diff_id
        );
        if let Some(b) = l.blob {
            assert!(
                store.has_blob(&b.digest),
                "layer {} lost its blob",
                l.diff_id
            );
        }
    }
    for img in store.images().unwrap() {
        let cfg = store.read_blob(&img.id).unwrap();
        assert_eq!(Digest::of(&cfg), img.id);
    }
}

#[test]
fn child_publisher_loop() {
    // Runs only as the child of `a_writer_killed_at_any_instant_leaves_a_consistent_store`.
    let Ok(root) = std::env::var("STRATA_STORE_TEST_CHILD") else {
        return;
    };
    let mut store = Store::open(&root).unwrap();
    for i in 0.. {
        let l = publish_layer(&mut store, &format!("layer-{i}"));
        add_image(
            &mut store,
            &format!("{{\"i\":{i}}}"),
            &[l],
            Some(&format!("kill:{}", i % 5)),
        );
        if i % 7 == 0 {
            let mut p = store.publish().unwrap();
            if let Some(id) = p.untag(&format!("kill:{}", (i + 1) % 5)).unwrap() {
                let _ = p.delete_image(&id);
            }
            p.commit().unwrap();
            store.collect_garbage().unwrap();
        }
    }
}

#[test]
fn a_writer_killed_at_any_instant_leaves_a_consistent_store() {
    let tmp = tempfile::tempdir().unwrap();
    Store::open(tmp.path()).unwrap();
    for round in 0..6u64 {
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "child_publisher_loop", "--nocapture"])
            .env("STRATA_STORE_TEST_CHILD", tmp.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(150 + 37 * round));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        assert_consistent(tmp.path());
    }
    let mut store = Store::open(tmp.path()).unwrap();
    assert!(
        !store.images().unwrap().is_empty(),
        "the child never published anything"
    );
    // Garbage left by the kills is collectable, after which everything on disk is referenced.
    store.collect_garbage().unwrap();
    assert_eq!(
        entries(&tmp.path().join("layers")),
        store.layers().unwrap().len()
    );
    assert_eq!(entries(&tmp.path().join("tmp")), 0);
    assert_consistent(tmp.path());
}

#[test]
fn the_wal_stays_bounded_across_processes() {
    // Each short-lived process opens the store, commits once and lets go. The WAL is left in
    // place between processes, but must be checkpointed and restarted once it is big: a
    // WAL that only grows makes every commit copy all of it into the database again.
    let dir = tempfile::tempdir().unwrap();
    let id = {
        let mut s = Store::open(dir.path()).unwrap();
        add_image(&mut s, r#"{"n":1}"#, &[], Some("wal:1"))
    };
    let wal = dir.path().join("metadata.db-wal");
    let mut biggest = 0;
    for _ in 0..200 {
        let mut s = Store::open(dir.path()).unwrap();
        let mut p = s.publish().unwrap();
        p.tag("wal:1", &id).unwrap();
        p.commit().unwrap();
        drop(s);
        biggest = biggest.max(fs::metadata(&wal).map(|m| m.len()).unwrap_or(0));
    }
    assert!(
        biggest <= 80 * 4096,
        "the WAL grew to {biggest} bytes over 200 commits of one page"
    );
}
