//! Images that hold the same layer at two positions (`COPY f /` + `RUN chmod +x /f`, or one
//! RUN's changes undone and redone): they build, run, take further steps, `diff`, `commit` and
//! `export` as any image; their root filesystems match what Docker 20.10's classic builder
//! gives for the same Dockerfile; `save` keeps every diff_id at every position and Docker loads
//! and runs the archive with the same image ID.

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

use common::*;

const DOCKER: &str = "/usr/bin/docker";

/// Every path of the root filesystem (less the kernel's and the runtime's own) with its type,
/// mode, owner, and for regular files size and checksum. Times are left out: the two builds
/// ran at other instants.
const LISTING: &str = r#"find / -xdev \( -path /proc -o -path /sys -o -path /dev -o -path /etc/hosts -o -path /etc/hostname -o -path /etc/resolv.conf -o -path /.dockerenv \) -prune -o -print | sort | while read -r f; do if [ -f "$f" ] && [ ! -L "$f" ]; then echo "$f $(stat -c '%F %a %u:%g %s' "$f") $(md5sum < "$f")"; else echo "$f $(stat -c '%F %a %u:%g' "$f")"; fi; done"#;

/// The repeated layers of the issue: COPY then chmod of an executable file (adjacent), and
/// one RUN undone and redone (apart), whose layers hold whiteouts and an opaque directory.
/// File and directory times are pinned with `touch -d` so the layers that only write repeat
/// whatever the clock; a whiteout's time cannot be pinned from inside (see below).
const REPEATS: &str = "\
COPY entrypoint.sh /
RUN chmod +x /entrypoint.sh
RUN mkdir -p /d && echo a > /d/a && echo b > /d/b && echo e > /e && touch -d '2020-01-01 00:00:00' /d/a /d/b /e /d
RUN rm -rf /d /e && mkdir /d && echo n > /d/n && touch -d '2020-01-01 00:00:00' /d/n /d
RUN mkdir -p /d && echo a > /d/a && echo b > /d/b && echo e > /e && touch -d '2020-01-01 00:00:00' /d/a /d/b /e /d
RUN rm -rf /d /e && mkdir /d && echo n > /d/n && touch -d '2020-01-01 00:00:00' /d/n /d
RUN echo x > /x && touch -d '2020-01-01 00:00:00' /x
RUN rm /x
RUN echo x > /x && touch -d '2020-01-01 00:00:00' /x
RUN rm /x
RUN echo after > /after
ENTRYPOINT [\"/entrypoint.sh\"]
";

fn context(dir: &Path, base: &str) {
    fs::write(dir.join("entrypoint.sh"), "#!/bin/sh\necho entry \"$@\"\n").unwrap();
    let st = Command::new("chmod")
        .args(["0755", dir.join("entrypoint.sh").to_str().unwrap()])
        .status()
        .unwrap();
    assert!(st.success());
    fs::write(dir.join("Dockerfile"), format!("FROM {base}\n{REPEATS}")).unwrap();
}

/// `inspect` template listing an image's diff_ids, one a line.
const LAYERS: &str = "{{range .RootFS.Layers}}{{println .}}{{end}}";

/// The non-empty lines of `out`.
fn lines(out: &str) -> Vec<String> {
    out.lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// `run` arguments that print [`LISTING`] of `image` (strata's and Docker's alike).
fn listing(image: &str) -> [&str; 9] {
    [
        "run",
        "--rm",
        "--network",
        "none",
        "--entrypoint",
        "sh",
        image,
        "-c",
        LISTING,
    ]
}

fn layers(s: &Strata, image: &str) -> Vec<String> {
    lines(&s.ok(&["inspect", "-f", LAYERS, image]))
}

/// Positions (top of the base excluded) whose diff_id appeared lower in the stack.
fn repeats(ids: &[String]) -> Vec<usize> {
    (0..ids.len())
        .filter(|&i| ids[..i].contains(&ids[i]))
        .collect()
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn images_with_a_repeated_layer_run_and_match_docker() {
    if !require_root() {
        return;
    }
    if !docker() {
        return;
    }
    let base = unique("strata-repeat-base:");
    let tag = unique("strata-repeat:");
    let tar = busybox_tar();
    let s = Strata::new();
    s.ok(&["import", tar.to_str().unwrap(), &base]);
    let ctx = tempfile::tempdir().unwrap();
    context(ctx.path(), &base);
    s.ok(&["build", "-q", "-t", &tag, ctx.path().to_str().unwrap()]);

    // The image keeps every layer at every position: the chmod layer equals the COPY layer,
    // the redone RUNs that only write equal the first ones. (Layers holding a whiteout repeat
    // only within one second: a whiteout's time is when it was made, in Docker too. The
    // archive test below repeats such layers at will.)
    let ids = layers(&s, &tag);
    assert_eq!(ids.len(), 12, "{ids:?}");
    let rep = repeats(&ids);
    for p in [2, 5, 9] {
        assert!(rep.contains(&p), "layer {p} repeats: {ids:?}");
    }
    assert_eq!(
        s.ok(&["history", "-q", &tag]).lines().count(),
        13,
        "one history entry per step and the base"
    );

    // It runs, through the entrypoint the COPY and chmod layers both hold.
    assert_eq!(
        s.ok(&["run", "--rm", "--network", "none", &tag, "arg"]),
        "entry arg\n"
    );
    let ours = s.ok(&listing(&tag));
    assert!(ours.contains("/d/n regular file 644 0:0 2"), "{ours}");
    assert!(!ours.contains("/d/a") && !ours.contains("/e ") && !ours.contains("/x "));

    // Docker's classic builder, same Dockerfile, same root filesystem.
    run_ok(DOCKER, &["import", tar.to_str().unwrap(), &base]);
    let dtag = unique("strata-repeat-docker:");
    let b = Command::new(DOCKER)
        .env("DOCKER_BUILDKIT", "0")
        .args(["build", "--network", "none", "-q", "-t", &dtag])
        .arg(ctx.path())
        .output()
        .unwrap();
    assert_success(&b);
    let theirs = run_ok(DOCKER, &listing(&dtag));
    assert_eq!(ours, theirs, "root filesystems differ from Docker's");

    // Docker loads strata's archive as the same image, with the same layers, and runs it.
    let saved = ctx.path().join("saved.tar");
    s.ok(&["save", "-o", saved.to_str().unwrap(), &tag]);
    run_ok(DOCKER, &["load", "-i", saved.to_str().unwrap()]);
    assert_eq!(
        run_ok(DOCKER, &["inspect", "-f", "{{.Id}}", &tag]),
        s.ok(&["inspect", "-f", "{{.Id}}", &tag])
    );
    assert_eq!(
        lines(&run_ok(DOCKER, &["inspect", "-f", LAYERS, &tag])),
        ids
    );
    assert_eq!(
        run_ok(DOCKER, &["run", "--rm", "--network", "none", &tag, "arg"]),
        "entry arg\n"
    );
    let loaded = run_ok(DOCKER, &listing(&tag));
    assert_eq!(ours, loaded, "Docker's run of strata's archive differs");
    run_ok(DOCKER, &["rmi", &tag, &dtag, &base]);
}

/// A container of such an image: its changes, a commit of them (a new image on the repeated
/// stack), an export of the merged tree, and the copy snapshotter on the same stack.
#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn containers_of_a_repeated_stack_diff_commit_and_export() {
    if !require_root() {
        return;
    }
    let s = Strata::new();
    s.ok(&["import", busybox_tar().to_str().unwrap(), "busybox"]);
    let ctx = tempfile::tempdir().unwrap();
    context(ctx.path(), "busybox");
    s.ok(&["build", "-q", "-t", "rep", ctx.path().to_str().unwrap()]);

    s.ok(&[
        "run",
        "--name",
        "rc1",
        "--network",
        "none",
        "--entrypoint",
        "sh",
        "rep",
        "-c",
        "echo changed > /d/n && rm /after && echo new > /new",
    ]);
    assert_eq!(s.ok(&["diff", "rc1"]), "C /d\nC /d/n\nA /new\nD /after\n");
    s.ok(&["commit", "rc1", "rep:committed"]);
    assert_eq!(layers(&s, "rep:committed").len(), 13);
    assert_eq!(
        s.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "--entrypoint",
            "sh",
            "rep:committed",
            "-c",
            "cat /d/n /new; ls /after 2>&1; ls /entrypoint.sh",
        ]),
        "changed\nnew\nls: /after: No such file or directory\n/entrypoint.sh\n"
    );
    let export = ctx.path().join("export.tar");
    s.ok(&["export", "-o", export.to_str().unwrap(), "rc1"]);
    let names = run_ok("tar", &["-tf", export.to_str().unwrap()]);
    for want in ["entrypoint.sh", "d/n", "new"] {
        assert!(
            names.lines().any(|l| l.trim_start_matches("./") == want),
            "{want} in {names}"
        );
    }
    for gone in ["d/a", "e", "x", "after"] {
        assert!(
            !names.lines().any(|l| l.trim_start_matches("./") == gone),
            "{gone} in {names}"
        );
    }

    // The copy snapshotter, on a store of its own, gives the same tree.
    let tree = s.ok(&listing("rep"));
    let copy = Strata::new();
    copy.ok(&["import", busybox_tar().to_str().unwrap(), "busybox"]);
    let out = copy
        .cmd()
        .env("STRATA_SNAPSHOTTER", "copy")
        .args(["build", "-q", "-t", "rep", ctx.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert_success(&out);
    let out = copy
        .cmd()
        .env("STRATA_SNAPSHOTTER", "copy")
        .args(listing("rep"))
        .output()
        .unwrap();
    assert_success(&out);
    assert_eq!(String::from_utf8(out.stdout).unwrap(), tree);
    s.ok(&["rm", "rc1"]);
}

/// 200 layers above the base, of which only a few are distinct (a file written with one
/// content and the other again and again, and a new file every tenth step): it builds step
/// after step on the repeated stack and runs.
#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn two_hundred_layers_with_repeats_build_and_run() {
    if !require_root() {
        return;
    }
    let s = Strata::new();
    s.ok(&["import", busybox_tar().to_str().unwrap(), "busybox"]);
    let ctx = tempfile::tempdir().unwrap();
    let mut df = String::from("FROM busybox\n");
    for i in 0..200 {
        if i % 10 == 9 {
            df.push_str(&format!("RUN echo {i} > /f{i}\n"));
        } else if i % 2 == 0 {
            df.push_str("RUN echo x > /x && touch -d '2020-01-01 00:00:00' /x\n");
        } else {
            df.push_str("RUN echo y > /x && touch -d '2020-01-01 00:00:00' /x\n");
        }
    }
    fs::write(ctx.path().join("Dockerfile"), df).unwrap();
    s.ok(&["build", "-q", "-t", "tall", ctx.path().to_str().unwrap()]);
    let ids = layers(&s, "tall");
    assert_eq!(ids.len(), 201);
    assert_eq!(
        repeats(&ids).len(),
        178,
        "all but the base, the two contents and 20 files"
    );
    assert_eq!(
        s.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "tall",
            "sh",
            "-c",
            "ls / | grep -c '^f'; cat /f9 /f199 /x",
        ]),
        "20\n9\n199\nx\n"
    );
    // Each distinct layer is stored once and freed with the last image using it.
    let stored = |s: &Strata| {
        s.stored_entries()
            .iter()
            .filter(|e| e.starts_with("layers/"))
            .count()
    };
    let distinct: std::collections::BTreeSet<_> = ids.iter().collect();
    assert_eq!(stored(&s), distinct.len());
    s.ok(&["rmi", "tall"]);
    assert_eq!(stored(&s), 1, "{:?}", s.stored_entries());
}

/// One layer tar entry of a crafted layer: a directory, a file, or a whiteout / opaque marker
/// (empty files named as Docker names them). Every time is fixed, so equal layers are equal.
enum E<'a> {
    Dir(&'a str),
    File(&'a str, &'a str),
    Mark(&'a str),
}

fn layer_tar(entries: &[E]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let (path, mode, kind, data): (&str, u32, tar::EntryType, &[u8]) = match e {
            E::Dir(p) => (p, 0o755, tar::EntryType::Directory, b""),
            E::File(p, c) => (p, 0o644, tar::EntryType::Regular, c.as_bytes()),
            E::Mark(p) => (p, 0o644, tar::EntryType::Regular, b""),
        };
        let mut h = tar::Header::new_ustar();
        h.set_path(path).unwrap();
        h.set_mode(mode);
        h.set_entry_type(kind);
        h.set_size(data.len() as u64);
        h.set_mtime(1_577_836_800);
        h.set_uid(0);
        h.set_gid(0);
        h.set_cksum();
        b.append(&h, data).unwrap();
    }
    b.into_inner().unwrap()
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// A Docker archive (`docker save`'s format) of busybox plus `layers` (bottom first, repeats
/// allowed), tagged `tag`.
fn crafted_archive(dir: &Path, tag: &str, layers: &[&[u8]]) -> std::path::PathBuf {
    let out = dir.join("archive");
    fs::create_dir_all(&out).unwrap();
    let base = fs::read(busybox_tar()).unwrap();
    let mut all: Vec<&[u8]> = vec![&base];
    all.extend_from_slice(layers);
    let mut names = Vec::new();
    let mut diff_ids = Vec::new();
    let mut history = Vec::new();
    for (i, l) in all.iter().enumerate() {
        let name = format!("l{i}.tar");
        fs::write(out.join(&name), l).unwrap();
        names.push(serde_json::Value::String(name));
        diff_ids.push(serde_json::Value::String(format!(
            "sha256:{}",
            sha256_hex(l)
        )));
        history.push(serde_json::json!({"created": "2020-01-01T00:00:00Z", "created_by": format!("layer {i}")}));
    }
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "created": "2020-01-01T00:00:00Z",
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": history,
    });
    let config = serde_json::to_vec(&config).unwrap();
    let config_name = format!("{}.json", sha256_hex(&config));
    fs::write(out.join(&config_name), &config).unwrap();
    let manifest = serde_json::json!([{"Config": config_name, "RepoTags": [tag], "Layers": names}]);
    fs::write(
        out.join("manifest.json"),
        serde_json::to_vec(&manifest).unwrap(),
    )
    .unwrap();
    let tar_path = dir.join("crafted.tar");
    run_ok(
        "tar",
        &[
            "-C",
            out.to_str().unwrap(),
            "-cf",
            tar_path.to_str().unwrap(),
            ".",
        ],
    );
    tar_path
}

/// Layers holding whiteouts and opaque directories, each repeated adjacently and apart, with
/// every time fixed: strata loads and runs the image with the same root filesystem and image
/// ID as Docker 20.10 gives the same archive.
#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn repeated_layers_with_whiteouts_and_opaque_directories_match_docker() {
    if !require_root() {
        return;
    }
    if !docker() {
        return;
    }
    // a: d/{a,b} and e. o: d made opaque holding n, e whited out. x: a file; w: its whiteout.
    let a = layer_tar(&[
        E::Dir("d/"),
        E::File("d/a", "a\n"),
        E::File("d/b", "b\n"),
        E::File("e", "e\n"),
    ]);
    let o = layer_tar(&[
        E::Dir("d/"),
        E::Mark("d/.wh..wh..opq"),
        E::File("d/n", "n\n"),
        E::Mark(".wh.e"),
    ]);
    let x = layer_tar(&[E::File("x", "x\n")]);
    let w = layer_tar(&[E::Mark(".wh.x")]);
    let stack: [&[u8]; 10] = [&a, &o, &o, &a, &o, &x, &w, &x, &w, &a];
    let tag = unique("strata-crafted-repeat:");
    let t = tempfile::tempdir().unwrap();
    let archive = crafted_archive(t.path(), &tag, &stack);

    let s = Strata::new();
    s.ok(&["load", "-i", archive.to_str().unwrap()]);
    let ids = layers(&s, &tag);
    assert_eq!(ids.len(), 11);
    assert_eq!(repeats(&ids), vec![3, 4, 5, 8, 9, 10]);
    let ours = s.ok(&listing(&tag));
    // The top `a` restores d/a, d/b and e over the opaque d; x is whited out.
    for want in [
        "/d/a regular file",
        "/d/b regular file",
        "/d/n regular file",
        "/e regular file",
    ] {
        assert!(ours.contains(want), "{want} in {ours}");
    }
    assert!(!ours.contains("/x "), "{ours}");

    run_ok(DOCKER, &["load", "-i", archive.to_str().unwrap()]);
    assert_eq!(
        run_ok(DOCKER, &["inspect", "-f", "{{.Id}}", &tag]),
        s.ok(&["inspect", "-f", "{{.Id}}", &tag])
    );
    let theirs = run_ok(DOCKER, &listing(&tag));
    assert_eq!(ours, theirs, "root filesystems differ from Docker's");

    // Without the top `a`: d is the opaque one holding only n, e stays whited out.
    let tag2 = unique("strata-crafted-repeat2:");
    let archive2 = crafted_archive(&t.path().join("two"), &tag2, &stack[..9]);
    s.ok(&["load", "-i", archive2.to_str().unwrap()]);
    run_ok(DOCKER, &["load", "-i", archive2.to_str().unwrap()]);
    let ours = s.ok(&listing(&tag2));
    assert!(
        ours.contains("/d/n regular file") && !ours.contains("/d/a") && !ours.contains("/e "),
        "{ours}"
    );
    let theirs = run_ok(DOCKER, &listing(&tag2));
    assert_eq!(ours, theirs, "root filesystems differ from Docker's");
    run_ok(DOCKER, &["rmi", &tag, &tag2]);
}
