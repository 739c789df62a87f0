//! The container library on a real store, overlay and namespaces (as root): the state a
//! container goes through, its output, diff, commit, and that removal leaves nothing.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use container::{ChangeKind, CommitOptions, Containers, CreateOptions, StartIo};

fn is_root() -> bool {
    // SAFETY: no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// A store with the busybox root filesystem imported as `busybox`.
fn setup() -> Option<(tempfile::TempDir, Containers)> {
    if !is_root() {
        eprintln!("skipped: needs root");
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
