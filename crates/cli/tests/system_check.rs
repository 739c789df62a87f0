//! `system check [--repair] [--deep]` on a real store: clean after imports, a build and a
//! container; then damaged in each way a disk, a crash or a hand can damage it (a flipped byte
//! in a blob, a layer directory deleted, a file changed inside a layer, a row whose target was
//! deleted behind strata's back, a container whose snapshot is gone, a dead process's staging
//! area, an orphan blob, a stray mount): each is named on a line of its own and the check
//! exits 1; `--deep` alone sees the changed file; `--repair` removes the orphans and leftovers,
//! keeps and reports the damaged images, and undamaged images still run and build.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// A one-file root filesystem tar, `name` holding `content`.
fn one_file_tar(dir: &Path, name: &str, content: &[u8]) -> PathBuf {
    let path = dir.join(format!("{name}.tar"));
    let mut b = tar::Builder::new(fs::File::create(&path).unwrap());
    let mut h = tar::Header::new_gnu();
    h.set_size(content.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(1_600_000_000);
    h.set_cksum();
    b.append_data(&mut h, name, content).unwrap();
    b.finish().unwrap();
    path
}

fn image_id(s: &Strata, name: &str) -> String {
    s.ok(&["inspect", "-f", "{{.Id}}", name]).trim().to_string()
}

fn top_layer(s: &Strata, name: &str) -> String {
    let out = s.ok(&["inspect", "-f", "{{json .RootFS.Layers}}", name]);
    let v: Vec<String> = serde_json::from_str(out.trim()).unwrap();
    v.last().unwrap().clone()
}

fn hex(d: &str) -> &str {
    d.strip_prefix("sha256:").unwrap()
}

/// `system check` with `args`: (exit code, stdout).
fn check(s: &Strata, args: &[&str]) -> (i32, String) {
    let mut a = vec!["system", "check"];
    a.extend_from_slice(args);
    let out = s.cmd().args(&a).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

fn line_with<'a>(out: &'a str, needle: &str) -> &'a str {
    out.lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line names {needle}:\n{out}"))
}

#[test]
fn system_check_finds_each_damage_and_repair_keeps_damaged_images() {
    if !require_root() {
        return;
    }
    let s = Strata::new();
    let root = s.root.path().to_path_buf();
    let work = tempfile::tempdir().unwrap();
    s.ok(&["import", busybox_tar().to_str().unwrap(), "bb:1"]);
    for (name, file) in [
        ("dmg-blob:1", "a"),
        ("dmg-layer:1", "b"),
        ("dmg-deep:1", "c"),
        ("dmg-row:1", "d"),
    ] {
        let tar = one_file_tar(work.path(), file, format!("content of {file}\n").as_bytes());
        s.ok(&["import", tar.to_str().unwrap(), name]);
    }
    fs::write(
        work.path().join("Dockerfile"),
        "FROM bb:1\nRUN echo built > /x\n",
    )
    .unwrap();
    s.ok(&[
        "build",
        "-q",
        "-t",
        "built:1",
        work.path().to_str().unwrap(),
    ]);
    s.ok(&["create", "--name", "snapless", "bb:1", "true"]);

    let (code, out) = check(&s, &[]);
    assert_eq!(code, 0, "a fresh store is clean:\n{out}");
    assert!(out.contains("store is consistent: 6 images"), "{out}");
    let (code, out) = check(&s, &["--deep"]);
    assert_eq!(code, 0, "every layer hashes to its diff_id:\n{out}");

    // A flipped byte in a config blob.
    let blob_img = image_id(&s, "dmg-blob:1");
    let blob = root.join("blobs/sha256").join(hex(&blob_img));
    let mut b = fs::read(&blob).unwrap();
    b[10] ^= 0x20;
    fs::write(&blob, &b).unwrap();
    // A layer directory deleted.
    let gone_layer = top_layer(&s, "dmg-layer:1");
    fs::remove_dir_all(root.join("layers").join(hex(&gone_layer))).unwrap();
    // A file changed inside a layer directory, same size: only --deep sees it.
    let deep_layer = top_layer(&s, "dmg-deep:1");
    let deep_img = image_id(&s, "dmg-deep:1");
    fs::write(
        root.join("layers").join(hex(&deep_layer)).join("c"),
        b"content of C\n",
    )
    .unwrap();
    // An image row deleted behind strata's back: its tag names nothing.
    let row_img = image_id(&s, "dmg-row:1");
    {
        let db = rusqlite::Connection::open(root.join("metadata.db")).unwrap();
        db.pragma_update(None, "foreign_keys", "OFF").unwrap();
        db.execute("DELETE FROM images WHERE id = ?1", [&row_img])
            .unwrap();
    }
    // A container whose snapshot is gone.
    let cid = s
        .ok(&["inspect", "-f", "{{.Id}}", "snapless"])
        .trim()
        .to_string();
    let snaps = root.join("snapshots/snapshots");
    let snap = fs::read_dir(&snaps)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.file_name().unwrap().to_string_lossy() == cid)
        .unwrap_or_else(|| panic!("no snapshot {cid} in {}", snaps.display()));
    fs::remove_dir_all(&snap).unwrap();
    // A staging area of a process that died (its lock file is not held).
    let stage = root.join("tmp/stage-00000000dead0001");
    fs::create_dir(&stage).unwrap();
    fs::write(stage.join("half-a-layer"), b"x").unwrap();
    fs::write(root.join("tmp/stage-00000000dead0001.lock"), b"").unwrap();
    // An orphan blob.
    let orphan_bytes = b"an orphan blob\n";
    let orphan = hex_sha256(orphan_bytes);
    fs::write(root.join("blobs/sha256").join(&orphan), orphan_bytes).unwrap();
    // A mount left by a container that is not running.
    let mnt = root
        .join("containers/0000000000000000000000000000000000000000000000000000000000000bad/rootfs");
    fs::create_dir_all(&mnt).unwrap();
    let st = Command::new("mount")
        .args(["-t", "tmpfs", "strata-test", mnt.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(st.success());
    let _unmount = Unmount(mnt.clone());

    // What a build killed mid-step leaves: its step's snapshot and its mount point, mounted.
    let mut gone = Command::new("true").spawn().unwrap();
    let dead_pid = gone.id();
    gone.wait().unwrap();
    let build_snap = snaps.join(format!("build-{dead_pid}-0123456789ab"));
    fs::create_dir_all(build_snap.join("fs")).unwrap();
    fs::write(build_snap.join("fs/half-done"), b"x").unwrap();
    let build_mnt = root.join(format!("build/mounts/build-{dead_pid}-0123456789ab"));
    fs::create_dir_all(&build_mnt).unwrap();
    let st = Command::new("mount")
        .args(["-t", "tmpfs", "strata-test", build_mnt.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(st.success());
    let _unmount_build = Unmount(build_mnt.clone());

    let (code, out) = check(&s, &[]);
    assert_eq!(code, 1, "{out}");
    line_with(&out, &format!("snapshot {}", build_snap.display()));
    line_with(&out, &format!("build mount point {}", build_mnt.display()));
    line_with(&out, &format!("mount {}", build_mnt.display()));
    assert!(
        line_with(&out, &format!("blob {blob_img}")).contains("hashes to"),
        "{out}"
    );
    assert!(
        line_with(&out, &format!("layer {gone_layer}")).contains("is gone"),
        "{out}"
    );
    line_with(&out, "tag docker.io/library/dmg-row:1");
    line_with(&out, &format!("container {cid} (snapless)"));
    line_with(&out, &stage.display().to_string());
    line_with(&out, &format!("blob sha256:{orphan}"));
    line_with(&out, &format!("mount {}", mnt.display()));
    assert!(
        !out.contains(&deep_layer),
        "without --deep the changed file is not seen:\n{out}"
    );
    let summary = out.lines().last().unwrap();
    assert!(summary.contains("problems ("), "{summary}");

    let (code, out) = check(&s, &["--deep"]);
    assert_eq!(code, 1);
    assert!(
        line_with(&out, &format!("layer {deep_layer}")).contains("damaged"),
        "{out}"
    );
    line_with(
        &out,
        &format!("image {deep_img} (docker.io/library/dmg-deep:1)"),
    );

    let (code, out) = check(&s, &["--repair", "--deep"]);
    assert_eq!(code, 1, "damaged images remain:\n{out}");
    assert!(!root.join("blobs/sha256").join(&orphan).exists(), "{out}");
    assert!(
        !stage.exists() && !root.join("tmp/stage-00000000dead0001.lock").exists(),
        "{out}"
    );
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(mnt.to_str().unwrap()), "{out}");
    assert!(!mounts.contains(build_mnt.to_str().unwrap()), "{out}");
    assert!(!build_snap.exists() && !build_mnt.exists(), "{out}");
    assert!(
        !out.contains("(--repair "),
        "everything repairable was:\n{out}"
    );
    for img in [&blob_img, &deep_img] {
        line_with(&out, &format!("damaged: image {img}"));
    }
    line_with(&out, &format!("image {}", image_id(&s, "dmg-layer:1")));
    let images = s.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    for name in ["dmg-blob:1", "dmg-layer:1", "dmg-deep:1", "bb:1", "built:1"] {
        assert!(images.contains(name), "{name} is still listed:\n{images}");
    }
    assert!(!images.contains("dmg-row"), "{images}");
    let state = s.ok(&[
        "inspect",
        "-f",
        "{{.State.Status}}: {{.State.Error}}",
        "snapless",
    ]);
    assert!(
        state.starts_with("dead: ") && state.contains("snapshot"),
        "{state}"
    );

    // The same report again: repair changed nothing more.
    let (code, again) = check(&s, &["--deep"]);
    assert_eq!(code, 1);
    assert!(!again.contains("(--repair "), "{again}");

    // Undamaged images still run and build; the broken ones can be removed.
    assert_eq!(s.ok(&["run", "--rm", "built:1", "cat", "/x"]), "built\n");
    fs::write(
        work.path().join("Dockerfile"),
        "FROM built:1\nRUN echo again > /y\n",
    )
    .unwrap();
    s.ok(&[
        "build",
        "-q",
        "-t",
        "again:1",
        work.path().to_str().unwrap(),
    ]);
    s.ok(&["rm", "snapless"]);
    s.ok(&["rmi", "dmg-blob:1", "dmg-layer:1", "dmg-deep:1"]);
    let (code, out) = check(&s, &["--repair", "--deep"]);
    assert_eq!(code, 0, "{out}");
}

/// Unmounts the test's mount if the test fails before `--repair` does, so the store's
/// temporary directory can be removed.
struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).output();
    }
}

fn hex_sha256(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}

/// Checks made while builds and containers come and go on the same store all find it
/// consistent: the check holds the store lock, so it sees each publication whole, and live
/// staging areas, build mounts and containers are not leftovers. (Not `rmi` or `prune`:
/// they delete rows, then collect the garbage under a second hold of the lock, and a check in
/// between reports that garbage as unreferenced.)
#[test]
fn system_check_during_builds_and_runs_finds_nothing_wrong() {
    if !require_root() {
        return;
    }
    let s = std::sync::Arc::new(Strata::new());
    s.ok(&["import", busybox_tar().to_str().unwrap(), "bb:1"]);
    let work = tempfile::tempdir().unwrap();
    fs::write(work.path().join("f"), b"a file\n").unwrap();
    fs::write(
        work.path().join("Dockerfile"),
        "FROM bb:1\nCOPY f /f\nRUN sleep 0.2 && echo one > /one\nRUN echo two > /two\n",
    )
    .unwrap();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (s2, d2, ctx) = (s.clone(), done.clone(), work.path().to_path_buf());
    let busy = std::thread::spawn(move || {
        for i in 0..3 {
            let tag = format!("busy:{i}");
            s2.ok(&[
                "build",
                "-q",
                "--no-cache",
                "-t",
                &tag,
                ctx.to_str().unwrap(),
            ]);
            s2.ok(&["run", "--rm", &tag, "sh", "-c", "sleep 0.2; cat /one /two"]);
        }
        d2.store(true, std::sync::atomic::Ordering::SeqCst);
    });
    let mut checks = 0;
    while !done.load(std::sync::atomic::Ordering::SeqCst) {
        let (code, out) = check(&s, &[]);
        assert_eq!(code, 0, "check {checks} during builds:\n{out}");
        checks += 1;
    }
    busy.join().unwrap();
    assert!(checks > 0);
    let (code, out) = check(&s, &["--deep"]);
    assert_eq!(code, 0, "{out}");
}
