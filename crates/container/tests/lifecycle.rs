//! The container library on a real store, overlay and namespaces (as root): the state a
//! container goes through, its output, diff, commit, and that removal leaves nothing.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use container::{ChangeKind, CommitOptions, Containers, CreateOptions, StartIo};

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

/// A store with the busybox root filesystem imported as `busybox`.
fn setup() -> Option<(tempfile::TempDir, Containers)> {
    if !require_root() {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let tar = dir.path().join("rootfs.tar");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/busybox/make-rootfs");
    assert!(Command::new(script).arg(&tar).status().unwrap().success());
    let root = dir.path().join("root");
    let mut c = Containers::open(&root).unwrap();
    let r = image::parse_name("busybox").unwrap();
    image::import(
        c.store(),
        std::fs::File::open(&tar).unwrap(),
        &image::ImportOptions {
            changes: &[],
            message: None,
            source: "-",
            tag: Some(&r),
        },
    )
    .unwrap();
    Some((dir, c))
}

fn output_of(c: &mut Containers, id: &str) -> (i32, String) {
    let (mut rd, wr) = std::io::pipe().unwrap();
    let io = StartIo {
        stdin: runtime::Stdio::Null,
        stdout: runtime::Stdio::Fd(wr.into()),
        stderr: runtime::Stdio::Null,
        log: None,
    };
    let code = c.start(id, io).unwrap();
    let mut s = String::new();
    rd.read_to_string(&mut s).unwrap();
    (code, s)
}

fn mounted(root: &Path) -> Vec<PathBuf> {
    snapshot::mounts_under(root).unwrap()
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn create_start_diff_commit_remove() {
    let Some((dir, mut c)) = setup() else { return };
    let opts = CreateOptions {
        name: Some("first".into()),
        args: vec![
            "sh".into(),
            "-c".into(),
            "echo out; echo new > /added; rm /bin/vi; exit 4".into(),
        ],
        env: vec!["X=1".into()],
        ..Default::default()
    };
    let rec = c.create("busybox", &opts).unwrap();
    assert_eq!(rec.state.status, "created");
    assert_eq!(rec.name, "first");
    assert!(matches!(
        c.create("busybox", &opts),
        Err(container::Error::Store(store::Error::NameInUse { .. }))
    ));
    let (code, out) = output_of(&mut c, "first");
    assert_eq!((code, out.as_str()), (4, "out\n"));
    let after = c.find(&rec.id[..10]).unwrap();
    assert_eq!(after.state.status, "exited");
    assert_eq!(after.state.exit_code, 4);
    assert!(after.state.started_at.is_some() && after.state.finished_at.is_some());
    assert!(mounted(dir.path()).is_empty(), "unmounted after the run");

    let diff = c.diff("first").unwrap();
    let has = |k: ChangeKind, p: &str| diff.iter().any(|d| d.kind == k && d.path == p);
    assert!(has(ChangeKind::Added, "/added"), "{diff:?}");
    assert!(has(ChangeKind::Deleted, "/bin/vi"), "{diff:?}");
    assert!(has(ChangeKind::Changed, "/bin"), "{diff:?}");

    let id = c
        .commit(
            "first",
            &CommitOptions {
                reference: Some("committed:v1".into()),
                changes: vec!["CMD [\"cat\", \"/added\"]".into()],
                ..Default::default()
            },
        )
        .unwrap();
    let img = c.store().image(&id).unwrap().unwrap();
    assert_eq!(img.parent, Some(rec.image_id));
    assert_eq!(img.layers.len(), 2);
    let cfg = image::read_config(c.store(), &id).unwrap();
    let env = cfg.config.as_ref().unwrap().env.clone().unwrap();
    assert!(env.contains(&"X=1".to_string()), "{env:?}");

    // The committed image's default command sees the change; the whiteout hides vi.
    let second = c.create("committed:v1", &CreateOptions::default()).unwrap();
    assert_ne!(second.name, "first");
    assert_eq!(output_of(&mut c, &second.id), (0, "new\n".into()));
    assert!(c.diff(&second.id).unwrap().is_empty());

    for id in [rec.id.clone(), second.id.clone()] {
        c.remove(&id, false).unwrap();
        assert!(!dir.path().join("root/containers").join(&id).exists());
    }
    assert!(c.list().unwrap().is_empty());
    assert!(mounted(dir.path()).is_empty());
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn a_failed_start_is_recorded_and_auto_remove_cleans_up() {
    let Some((dir, mut c)) = setup() else { return };
    let rec = c
        .create(
            "busybox",
            &CreateOptions {
                args: vec!["nosuch".into()],
                ..Default::default()
            },
        )
        .unwrap();
    let err = c.start(&rec.id, StartIo::default()).unwrap_err();
    assert_eq!(err.exit_code(), 127);
    let after = c.find(&rec.id).unwrap();
    assert_eq!(after.state.status, "created");
    assert_eq!(after.state.exit_code, 127);
    assert!(after.state.error.contains("executable file not found"));
    assert!(mounted(dir.path()).is_empty());

    let rm = c
        .create(
            "busybox",
            &CreateOptions {
                args: vec!["true".into()],
                auto_remove: true,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(output_of(&mut c, &rm.id).0, 0);
    assert!(matches!(
        c.find(&rm.id),
        Err(container::Error::Store(store::Error::ContainerNotFound(_)))
    ));
    assert!(!dir.path().join("root/containers").join(&rm.id).exists());
}

/// Publishes `n` one-file layers on top of busybox and tags the result `tall`.
fn tall_image(c: &mut Containers, n: usize) -> oci::Digest {
    let store = c.store();
    let base = image::resolve(store, "busybox").unwrap();
    let mut cfg = image::read_config(store, &base).unwrap();
    let staging = store.stage().unwrap();
    let mut staged = Vec::new();
    for i in 0..n {
        let dir = staging.new_dir(&format!("l{i}")).unwrap();
        std::fs::write(dir.join(format!("f{i}")), format!("{i}\n")).unwrap();
        let mut w = staging.blob_writer().unwrap();
        let d = layer::write_layer(&dir, &mut w, layer::Compression::Gzip).unwrap();
        let blob = w.finish(Some(&d.digest)).unwrap();
        let rec = store::LayerRecord {
            diff_id: d.diff_id,
            size: layer::diff_size(&dir).unwrap(),
            tar_size: d.uncompressed_size,
            blob: Some(store::BlobRef {
                digest: d.digest,
                media_type: image::layer_media_type(layer::Compression::Gzip),
                size: d.size,
            }),
            tar_split: false,
        };
        cfg.rootfs.as_mut().unwrap().diff_ids.push(d.diff_id);
        cfg.history.push(oci::History {
            created_by: format!("layer {i}"),
            ..Default::default()
        });
        staged.push((blob, dir, rec));
    }
    let bytes = cfg.to_docker_json();
    let layers = cfg.diff_ids().to_vec();
    let mut p = store.publish().unwrap();
    for (blob, dir, rec) in staged {
        p.put_blob(blob).unwrap();
        p.put_layer(&dir, None, &rec).unwrap();
    }
    let id = p
        .add_image(&store::NewImage {
            config: &bytes,
            layers: &layers,
            parent: None,
            created: "2024-01-01T00:00:00Z",
        })
        .unwrap();
    p.tag("docker.io/library/tall:latest", &id).unwrap();
    p.commit().unwrap();
    id
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn an_image_of_two_hundred_layers_runs() {
    let Some((dir, mut c)) = setup() else { return };
    tall_image(&mut c, 210);
    let rec = c
        .create(
            "tall",
            &CreateOptions {
                args: vec![
                    "sh".into(),
                    "-c".into(),
                    "cat /f0 /f209; ls / | grep -c '^f'; echo w > /f5; cat /f5".into(),
                ],
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(output_of(&mut c, &rec.id), (0, "0\n209\n210\nw\n".into()));
    let diff = c.diff(&rec.id).unwrap();
    assert_eq!(diff.len(), 1, "{diff:?}");
    assert_eq!(diff[0].path, "/f5");
    assert_eq!(diff[0].kind, ChangeKind::Changed);
    c.remove(&rec.id, false).unwrap();
    assert!(mounted(dir.path()).is_empty());
}
