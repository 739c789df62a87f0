//! COPY of a big multi-file tree (thousands of files over nested directories, files big
//! enough to be copied on their own thread and in several chunks, symlinks, hard links,
//! set-ID and private modes, a `.dockerignore`): the layer and the source hash are exactly
//! the ones the single-threaded copier made before (pinned below), Docker 20.10's classic
//! builder makes the same layer and hash of the part it agrees on, and an unchanged rebuild
//! is a cache hit.

mod common;
#[path = "../../../support/rng.rs"]
mod rng;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use common::*;
use rng::Rng;

const DOCKER: &str = "/usr/bin/docker";

/// The diff_id and COPY history line of `COPY tree /` of [`make_tree`], as the copier before
/// the threaded one made them (strata at abf63aa).
const ALL: (&str, &str) = (
    "sha256:314df50b4d5aac6ebe0f764315ddba88825b4169f991ec72ae0d50c518090ad1",
    "/bin/sh -c #(nop) COPY dir:124b635990e56b3355f6de94078549933a45bc47272359fb8dd313f74ce88530 in /",
);

/// The same of `COPY tree/plain /`.
const PLAIN: (&str, &str) = (
    "sha256:4ddd02aaac25edc950c57f5957746eec873da7325bada9085435dac95ffe6986",
    "/bin/sh -c #(nop) COPY dir:afb78ca5575694cbd4637d3d4f701997d1916f60cf467d598c4fb00288c2453b in /",
);

fn set_mode(p: &Path, mode: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

/// Sets an entry's mtime (and atime) without following a symlink.
fn set_mtime(p: &Path, secs: i64) {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap();
    let t = libc::timespec {
        tv_sec: secs,
        tv_nsec: 123_456_789,
    };
    // SAFETY: a valid C string and two timespecs.
    let r = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            [t, t].as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    assert_eq!(r, 0, "utimensat {}", p.display());
}

/// The context: `tree/plain/` with 24 directories over three levels holding 3,000 files of
/// 0 to 6,000 bytes in private, group-readable and executable modes, two files of 3 MB and
/// 20 MB, and files that `.dockerignore` excludes; `tree/special/` with what strata and
/// Docker's classic builder do not agree on (see the test): symlinks (relative, absolute,
/// dangling), set-user-ID and set-group-ID files, two more links to a file of `plain/`.
/// Every time pinned.
fn make_tree(ctx: &Path) {
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let tree = ctx.join("tree");
    let plain = tree.join("plain");
    let special = tree.join("special");
    let mut plain_dirs = vec![plain.clone()];
    for a in 0..4 {
        let da = plain.join(format!("a{a}"));
        plain_dirs.push(da.clone());
        for b in 0..5 {
            plain_dirs.push(da.join(format!("b{b}")));
        }
    }
    for d in plain_dirs.iter().chain([&special]) {
        fs::create_dir_all(d).unwrap();
    }
    let mut files = Vec::new();
    for i in 0..3000 {
        let p = plain_dirs[i % plain_dirs.len()].join(format!("f{i:04}.dat"));
        let len = rng.below(6001) as usize;
        fs::write(&p, rng.bytes(len)).unwrap();
        let mode = match i % 6 {
            0 => 0o600,
            1 => 0o755,
            2 => 0o640,
            _ => 0o644,
        };
        set_mode(&p, mode);
        files.push(p);
    }
    for (name, len) in [("a1/big3m.bin", 3 << 20), ("a2/b3/big20m.bin", 20 << 20)] {
        fs::write(plain.join(name), rng.bytes(len)).unwrap();
        files.push(plain.join(name));
    }
    fs::write(plain.join("a0/linked"), b"one inode, three names\n").unwrap();
    fs::hard_link(plain.join("a0/linked"), special.join("linked2")).unwrap();
    fs::hard_link(plain.join("a0/linked"), special.join("linked3")).unwrap();
    files.push(plain.join("a0/linked"));
    for (name, mode) in [("suid", 0o4755), ("sgid", 0o2755)] {
        fs::write(special.join(name), format!("{name}\n")).unwrap();
        set_mode(&special.join(name), mode);
        files.push(special.join(name));
    }
    for (n, t) in [
        ("rel", "../plain/a0/linked"),
        ("abs", "/etc/passwd"),
        ("dangling", "nowhere"),
    ] {
        std::os::unix::fs::symlink(t, special.join(n)).unwrap();
        files.push(special.join(n));
    }
    fs::write(plain.join("a1/skip.log"), b"excluded\n").unwrap();
    fs::write(plain.join("a2/b2/skip.log"), b"excluded\n").unwrap();
    fs::write(ctx.join(".dockerignore"), "**/*.log\n").unwrap();
    set_mode(&plain.join("a3"), 0o750);
    set_mode(&plain.join("a1/b4"), 0o711);
    for (i, f) in files.iter().enumerate() {
        set_mtime(f, 1_500_000_000 + i as i64 * 61);
    }
    // Deepest first: an entry made in a directory moves its mtime.
    let dirs = [&tree, &special].into_iter().chain(&plain_dirs);
    for (i, d) in dirs.enumerate().collect::<Vec<_>>().into_iter().rev() {
        set_mtime(d, 1_400_000_000 + i as i64 * 3600);
    }
    fs::write(ctx.join("Dockerfile"), "FROM scratch\nCOPY tree /\n").unwrap();
    fs::write(
        ctx.join("plain.Dockerfile"),
        "FROM scratch\nCOPY tree/plain /\n",
    )
    .unwrap();
}

/// The one diff_id of `image` and the `CreatedBy` of its COPY.
fn layer_and_copy(out_ids: &str, out_history: &str) -> (String, String) {
    let ids: Vec<&str> = out_ids.split_whitespace().collect();
    assert_eq!(ids.len(), 1, "{out_ids}");
    let copy = out_history
        .lines()
        .next()
        .unwrap_or_default()
        .trim()
        .to_string();
    (ids[0].to_string(), copy)
}

const LAYERS: &str = "{{range .RootFS.Layers}}{{println .}}{{end}}";

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn copy_of_a_big_tree_makes_the_same_layer_as_before_and_as_docker() {
    if !require_root() {
        return;
    }
    let ctx = tempfile::tempdir().unwrap();
    make_tree(ctx.path());
    let dir = ctx.path().to_str().unwrap();
    let s = Strata::new();
    let strata = |tag: &str, file: &str| {
        let df = ctx.path().join(file);
        s.ok(&["build", "-q", "-f", df.to_str().unwrap(), "-t", tag, dir]);
        layer_and_copy(
            &s.ok(&["inspect", "-f", LAYERS, tag]),
            &s.ok(&["history", "--no-trunc", "--format", "{{.CreatedBy}}", tag]),
        )
    };
    let (all, all_copy) = strata("copy-tree:all", "Dockerfile");
    assert_eq!((all.as_str(), all_copy.as_str()), (ALL.0, ALL.1));
    let (plain, plain_copy) = strata("copy-tree:plain", "plain.Dockerfile");
    assert_eq!((plain.as_str(), plain_copy.as_str()), (PLAIN.0, PLAIN.1));

    // Unchanged: from the cache, the same image.
    let first = s.ok(&["inspect", "-f", "{{.Id}}", "copy-tree:all"]);
    let out = s.ok(&["build", "-t", "copy-tree:all", dir]);
    assert!(out.contains("Using cache"), "{out}");
    assert_eq!(s.ok(&["inspect", "-f", "{{.Id}}", "copy-tree:all"]), first);

    if !docker() {
        return;
    }
    // Docker's classic builder makes the same layer of the plain tree, with the same hash in
    // its history. Of tree/special it makes others: it hashes a hard link as the link entry
    // its CLI puts in the context tar, and its chown after the copy drops set-ID bits;
    // strata keeps its own there. (Symlinks in a directory source are hashed as Docker
    // hashes them, by their targets or, dangling, by their paths: build_compat.rs.)
    let dtag = unique("strata-copy-tree:");
    let df = ctx.path().join("plain.Dockerfile");
    let out = Command::new(DOCKER)
        .args(["build", "-q", "--no-cache", "--network", "none", "-f"])
        .arg(&df)
        .args(["-t", &dtag, dir])
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .unwrap();
    assert_success(&out);
    let docker = layer_and_copy(
        &run_ok(DOCKER, &["inspect", "-f", LAYERS, &dtag]),
        &run_ok(
            DOCKER,
            &["history", "--no-trunc", "--format", "{{.CreatedBy}}", &dtag],
        ),
    );
    let _ = Command::new(DOCKER).args(["rmi", "-f", &dtag]).output();
    assert_eq!((plain, plain_copy), docker);
}
