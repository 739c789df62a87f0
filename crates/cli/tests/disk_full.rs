//! A full disk (issue 17): a store on a small loop-mounted ext4 filesystem, filled during
//! `build` (a COPY of more than fits), `pull` (a layer larger than what is free) and `load`.
//! Each must fail with an error that says the disk is full (`no space left on device`) and
//! where (a path on that filesystem), exit non-zero, publish nothing (`images` unchanged,
//! `system check` finds nothing, not even a leftover), and succeed once a filler file is
//! removed.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// A loop-mounted ext4 filesystem of `mb` MB, unmounted when dropped.
struct SmallFs {
    mnt: PathBuf,
    _dir: tempfile::TempDir,
}

impl SmallFs {
    fn new(mb: u64) -> SmallFs {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("fs.img");
        std::fs::File::create(&img)
            .unwrap()
            .set_len(mb << 20)
            .unwrap();
        run_ok(
            "/usr/sbin/mkfs.ext4",
            &["-q", "-F", "-m", "0", img.to_str().unwrap()],
        );
        let mnt = dir.path().join("mnt");
        std::fs::create_dir(&mnt).unwrap();
        run_ok(
            "mount",
            &["-o", "loop", img.to_str().unwrap(), mnt.to_str().unwrap()],
        );
        SmallFs { mnt, _dir: dir }
    }

    fn free(&self) -> u64 {
        let c = std::ffi::CString::new(self.mnt.to_str().unwrap()).unwrap();
        // SAFETY: a zeroed statvfs is valid; `c` is NUL-terminated.
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        assert_eq!(unsafe { libc::statvfs(c.as_ptr(), &mut st) }, 0);
        st.f_bavail * st.f_frsize
    }

    /// A filler file that leaves about `leave` bytes free.
    fn fill(&self, leave: u64) -> PathBuf {
        let p = self.mnt.join("filler");
        let _ = std::fs::remove_file(&p);
        let size = self.free().saturating_sub(leave);
        run_ok("fallocate", &["-l", &size.to_string(), p.to_str().unwrap()]);
        p
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let st = Command::new("umount").arg(&self.mnt).status();
        if !st.is_ok_and(|s| s.success()) {
            let _ = Command::new("umount").arg("-l").arg(&self.mnt).status();
        }
    }
}

fn random_file(path: &Path, mb: u64) {
    let mut f = std::fs::File::create(path).unwrap();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut buf = vec![0u8; 1 << 20];
    for _ in 0..mb {
        for c in buf.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            c.copy_from_slice(&x.to_le_bytes());
        }
        f.write_all(&buf).unwrap();
    }
}

/// strata on `root`: (exit code, stdout, stderr).
fn strata(root: &Path, args: &[&str]) -> (i32, String, String) {
    let out = assert_cmd::Command::cargo_bin("strata")
        .unwrap()
        .env("STRATA_ROOT", root)
        .env_remove("DOCKER_CONFIG")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ok(root: &Path, args: &[&str]) -> String {
    let (code, out, err) = strata(root, args);
    assert_eq!(code, 0, "strata {args:?}: {out}{err}");
    out
}

/// Runs `args` on a full disk: it must fail saying so and where, leave `images` as it was
/// and the store clean; then, the filler removed, succeed.
fn fails_then_succeeds(fs: &SmallFs, root: &Path, leave: u64, args: &[&str]) {
    // Full to the last MB, then with room for part of the work.
    fails_then_succeeds_with(fs, root, 1 << 20, args);
    fails_then_succeeds_with(fs, root, leave, args);
}

fn fails_then_succeeds_with(fs: &SmallFs, root: &Path, leave: u64, args: &[&str]) {
    let images = ok(
        root,
        &[
            "images",
            "-a",
            "--no-trunc",
            "--format",
            "{{.Repository}}:{{.Tag}} {{.ID}}",
        ],
    );
    let filler = fs.fill(leave);
    let (code, out, err) = strata(root, args);
    assert_ne!(
        code, 0,
        "strata {args:?} on a full disk succeeded: {out}{err}"
    );
    assert!(
        err.contains("no space left on device"),
        "strata {args:?}: the error does not say the disk is full: {err}"
    );
    assert!(
        err.contains(fs.mnt.to_str().unwrap()),
        "strata {args:?}: the error does not say where ({}): {err}",
        fs.mnt.display()
    );
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(
        ok(
            root,
            &[
                "images",
                "-a",
                "--no-trunc",
                "--format",
                "{{.Repository}}:{{.Tag}} {{.ID}}"
            ]
        ),
        images,
        "strata {args:?} published something"
    );
    let report = ok(root, &["system", "check"]);
    assert!(
        report.starts_with("store is consistent: "),
        "strata {args:?} left something: {report}"
    );
    std::fs::remove_file(&filler).unwrap();
    ok(root, args);
    // Made absent again for the next round.
    match args[0] {
        "build" => {
            ok(root, &["rmi", "full/built"]);
            ok(root, &["builder", "prune", "-af"]);
        }
        "pull" => {
            ok(root, &["rmi", args[2]]);
        }
        _ => {
            ok(root, &["rmi", "full/big"]);
        }
    }
    let report = ok(root, &["system", "check", "--deep"]);
    assert!(report.starts_with("store is consistent: "), "{report}");
    eprintln!("{args:?} on a full disk: {}", err.trim());
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn build_pull_and_load_on_a_full_disk_fail_cleanly_and_work_once_space_is_freed() {
    if !require_root() || !require_tool("/usr/bin/docker-registry") || !require_tool("losetup") {
        return;
    }
    const MB: u64 = 1 << 20;
    let fs = SmallFs::new(160);
    let root = fs.mnt.join("store");
    ok(
        &root,
        &["import", busybox_tar().to_str().unwrap(), "busybox"],
    );

    // A 40 MB layer of random bytes (nothing compresses it), made in a store elsewhere,
    // pushed to a registry and saved to an archive, both outside the small filesystem.
    let ctx = tempfile::tempdir().unwrap();
    random_file(&ctx.path().join("big"), 40);
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM busybox\nCOPY big /big\n",
    )
    .unwrap();
    let other = Strata::new();
    other.ok(&["import", busybox_tar().to_str().unwrap(), "busybox"]);
    other.ok(&[
        "build",
        "-q",
        "--network",
        "none",
        "-t",
        "full/big",
        ctx.path().to_str().unwrap(),
    ]);
    let reg = Registry::start(None);
    let remote = format!("{}/full/big:1", reg.host());
    other.ok(&["tag", "full/big", &remote]);
    other.ok(&["push", "-q", &remote]);
    let archive = ctx.path().join("big.tar");
    other.ok(&["save", "-o", archive.to_str().unwrap(), "full/big"]);

    // build: the COPY needs 40 MB, 20 are free.
    fails_then_succeeds(
        &fs,
        &root,
        20 * MB,
        &[
            "build",
            "-q",
            "--network",
            "none",
            "-t",
            "full/built",
            ctx.path().to_str().unwrap(),
        ],
    );

    // pull: its layer (40 MB compressed, 40 unpacked) in 30 MB.
    fails_then_succeeds(&fs, &root, 30 * MB, &["pull", "-q", &remote]);

    // load: the same from an archive.
    fails_then_succeeds(
        &fs,
        &root,
        30 * MB,
        &["load", "-q", "-i", archive.to_str().unwrap()],
    );
    drop(root);
}
