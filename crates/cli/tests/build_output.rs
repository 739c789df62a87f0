//! BuildKit's build features on the classic builder: `--output` (local, tar, oci, docker,
//! image), reproducible images with `SOURCE_DATE_EPOCH`, `--squash`/`--squash-all`, `RUN
//! --network`/`--security` and `--platform`.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use common::*;

/// A store with busybox imported as `bb:1`.
fn store_with_busybox() -> Strata {
    let s = Strata::new();
    s.ok(&["import", busybox_tar().to_str().unwrap(), "bb:1"]);
    s
}

/// A context directory holding `dockerfile` and the given files.
fn context(dockerfile: &str, files: &[(&str, &str)]) -> tempfile::TempDir {
    let ctx = tempfile::tempdir().unwrap();
    fs::write(ctx.path().join("Dockerfile"), dockerfile).unwrap();
    for (name, data) in files {
        fs::write(ctx.path().join(name), data).unwrap();
    }
    ctx
}

/// Every path under `dir` with its type, mode, owner, size and content digest (or link).
fn tree(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let md = fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(dir).unwrap().display().to_string();
            let what = if md.is_dir() {
                stack.push(p.clone());
                "dir".to_string()
            } else if md.file_type().is_symlink() {
                format!("link {}", fs::read_link(&p).unwrap().display())
            } else if md.is_file() {
                format!("file {:x}", md5ish(&fs::read(&p).unwrap()))
            } else {
                format!("special {:o}", md.mode())
            };
            out.insert(
                rel,
                format!("{what} {:o} {}:{}", md.mode() & 0o7777, md.uid(), md.gid()),
            );
        }
    }
    out
}

/// A cheap content fingerprint (FNV-1a), enough to tell files apart in a test.
fn md5ish(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ *b as u64).wrapping_mul(0x100000001b3)
    })
}

/// The entry names of a tar, `./` and trailing slashes dropped.
fn tar_names(data: &[u8]) -> Vec<String> {
    let mut names: Vec<String> = tar::Archive::new(data)
        .entries()
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path().unwrap().display().to_string();
            p.trim_start_matches("./").trim_end_matches('/').to_string()
        })
        .filter(|p| !p.is_empty())
        .collect();
    names.sort();
    names
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn output_local_and_tar_hold_exactly_the_final_stage() {
    if !require_root() {
        return;
    }
    let s = store_with_busybox();
    let ctx = context(
        "FROM bb:1 AS builder\n\
         RUN mkdir -p /out/sub && echo built > /out/artifact && echo deep > /out/sub/f && echo x > /junk\n\
         FROM scratch\n\
         COPY --from=builder /out/ /\n",
        &[],
    );
    let c = ctx.path().to_str().unwrap();
    let dest = tempfile::tempdir().unwrap();
    let d = dest.path().join("out");
    let out = s.ok(&[
        "build",
        "-o",
        &format!("type=local,dest={}", d.display()),
        c,
    ]);
    assert!(out.contains("Successfully built"), "{out}");
    assert!(!out.contains("Successfully tagged"), "{out}");
    let t = tree(&d);
    assert_eq!(
        t.keys().cloned().collect::<Vec<_>>(),
        ["artifact", "sub", "sub/f"],
        "{t:?}"
    );
    assert_eq!(fs::read_to_string(d.join("artifact")).unwrap(), "built\n");
    // Nothing tagged, the cache kept: the same build again uses it.
    let images = s.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    let tagged: Vec<&str> = images.lines().filter(|l| *l != "<none>:<none>").collect();
    assert_eq!(tagged, ["bb:1"], "{images}");
    let again = s.ok(&["build", "-o", d.to_str().unwrap(), c]);
    assert!(again.contains(" ---> Using cache"), "{again}");

    // With --target, the target stage's files: a later stage is not built, an earlier one
    // only as the target needs it. Files already in the directory stay (BuildKit's local
    // exporter adds to it).
    let ctx3 = context(
        "FROM bb:1 AS builder
\
         RUN mkdir /out && echo built > /out/artifact
\
         FROM scratch AS artifact
\
         COPY --from=builder /out/ /
\
         FROM bb:1
\
         RUN echo final > /final
",
        &[],
    );
    let d3 = dest.path().join("target");
    fs::create_dir(&d3).unwrap();
    fs::write(d3.join("kept"), "mine\n").unwrap();
    let out = s.ok(&[
        "build",
        "--network",
        "none",
        "--target",
        "artifact",
        "-o",
        d3.to_str().unwrap(),
        ctx3.path().to_str().unwrap(),
    ]);
    assert!(
        out.contains("Step 4/4 : COPY --from=builder") && !out.contains("final"),
        "{out}"
    );
    assert_eq!(
        tree(&d3).keys().cloned().collect::<Vec<_>>(),
        ["artifact", "kept"]
    );
    assert_eq!(fs::read_to_string(d3.join("artifact")).unwrap(), "built\n");

    // A final stage with no layer at all: an empty directory, an empty tar.
    let ctx4 = context("FROM scratch\nLABEL empty=yes\n", &[]);
    let c4 = ctx4.path().to_str().unwrap();
    let d4 = dest.path().join("empty");
    s.ok(&["build", "-o", d4.to_str().unwrap(), c4]);
    assert!(tree(&d4).is_empty() && d4.is_dir());
    let out = s.cmd().args(["build", "-o", "-", c4]).output().unwrap();
    assert_success(&out);
    assert!(tar_names(&out.stdout).is_empty());

    // A final stage on a base: its whole root filesystem, deletions carried out.
    let ctx2 = context(
        "FROM bb:1\nRUN rm /bin/ls && mkdir /app && echo hi > /app/hi\n",
        &[],
    );
    let c2 = ctx2.path().to_str().unwrap();
    let d2 = dest.path().join("rootfs");
    s.ok(&["build", "-t", "app:1", "-o", d2.to_str().unwrap(), c2]);
    assert!(s.ok(&["images"]).contains("app "), "-t still tags");
    assert!(d2.join("bin/sh").exists() && !d2.join("bin/ls").exists());
    assert_eq!(fs::read_to_string(d2.join("app/hi")).unwrap(), "hi\n");
    let local = tree(&d2);

    // type=tar to a file and, with `-o -`, to standard output: the same entries, and
    // nothing else on standard output.
    let f = dest.path().join("rootfs.tar");
    s.ok(&["build", "-o", &format!("type=tar,dest={}", f.display()), c2]);
    let from_file = tar_names(&fs::read(&f).unwrap());
    assert_eq!(from_file, local.keys().cloned().collect::<Vec<_>>());
    let out = s.cmd().args(["build", "-o", "-", c2]).output().unwrap();
    assert_success(&out);
    assert_eq!(tar_names(&out.stdout), from_file);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Successfully built"), "{err}");
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn output_archives_load_in_strata_and_docker() {
    if !require_root() {
        return;
    }
    let s = store_with_busybox();
    let ctx = context(
        "FROM bb:1\nCOPY f /f\nCMD [\"cat\", \"/f\"]\n",
        &[("f", "payload\n")],
    );
    let c = ctx.path().to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let docker_tar = dir.path().join("docker.tar");
    let oci_tar = dir.path().join("oci.tar");
    let name = unique("strata-output-test:");
    let out = s.ok(&[
        "build",
        "-q",
        "-o",
        &format!("type=docker,dest={},name={name}", docker_tar.display()),
        c,
    ]);
    let id = out.trim().to_string();
    s.ok(&[
        "build",
        "-o",
        &format!("type=oci,dest={}", oci_tar.display()),
        c,
    ]);
    // Not tagged in the store.
    assert!(!s.ok(&["images"]).contains("strata-output-test"));
    // The same as a directory (`tar=false`): the archive's files, unpacked.
    let layout = dir.path().join("layout");
    s.ok(&[
        "build",
        "-o",
        &format!("type=oci,tar=false,dest={}", layout.display()),
        c,
    ]);
    let unpacked = dir.path().join("unpacked");
    fs::create_dir(&unpacked).unwrap();
    run_ok(
        "tar",
        &[
            "-xf",
            oci_tar.to_str().unwrap(),
            "-C",
            unpacked.to_str().unwrap(),
        ],
    );
    let (want, got) = (tree(&unpacked), tree(&layout));
    assert!(want.contains_key("index.json"), "{want:?}");
    assert_eq!(got, want, "the layout differs from the archive's files");

    // Both archives load into a fresh store as the same image.
    for archive in [&docker_tar, &oci_tar] {
        let other = Strata::new();
        other.ok(&["load", "-i", archive.to_str().unwrap()]);
        let ids = other.ok(&["images", "-q", "--no-trunc"]);
        assert_eq!(ids.trim(), id, "{}", archive.display());
    }
    let other = Strata::new();
    let loaded = other.ok(&["load", "-i", docker_tar.to_str().unwrap()]);
    assert!(loaded.contains(&name), "{loaded}");

    if !docker() {
        return;
    }
    let out = run_ok(
        "/usr/bin/docker",
        &["load", "-i", docker_tar.to_str().unwrap()],
    );
    assert!(out.contains(&name), "{out}");
    let got = run_ok("/usr/bin/docker", &["inspect", "-f", "{{.Id}}", &name]);
    let ran = run_ok(
        "/usr/bin/docker",
        &["run", "--rm", "--network", "none", &name],
    );
    run_ok("/usr/bin/docker", &["rmi", &name]);
    assert_eq!(got.trim(), id);
    assert_eq!(ran, "payload\n");
    // The OCI archive too (no name given: loaded by its ID).
    let out = run_ok(
        "/usr/bin/docker",
        &["load", "-i", oci_tar.to_str().unwrap()],
    );
    let got = run_ok("/usr/bin/docker", &["inspect", "-f", "{{.Id}}", &id]);
    run_ok("/usr/bin/docker", &["rmi", &id]);
    assert!(out.contains(&format!("Loaded image ID: {id}")), "{out}");
    assert_eq!(got.trim(), id);
}

#[test]
fn output_specs_are_checked_before_building() {
    let s = Strata::new();
    let ctx = context("FROM scratch\n", &[]);
    let c = ctx.path().to_str().unwrap();
    for (spec, msg) in [
        ("type=local", "dest is required for local exporter"),
        ("dest=x,name=y", "type is required for output"),
        ("type=tar,bogus", "invalid value bogus"),
        ("type=nope,dest=x", "exporter \"nope\" could not be found"),
        (
            "type=local,dest=-",
            "dest cannot be stdout for local exporter",
        ),
    ] {
        let (code, err) = s.fails(&["build", "-o", spec, c]);
        assert_eq!(code, 1, "{spec}: {err}");
        assert!(err.contains(msg), "{spec}: {err}");
    }
    let (_, err) = s.fails(&["build", "-o", "-", "-o", "type=oci", c]);
    assert!(
        err.contains("multiple outputs configured to write to stdout"),
        "{err}"
    );
    assert!(
        s.stored_entries().is_empty(),
        "a refused build stores nothing"
    );
}

/// The files of `save NAME`'s archive, and its `manifest.json`.
fn saved(s: &Strata, name: &str) -> (BTreeMap<String, Vec<u8>>, serde_json::Value) {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("image.tar");
    s.ok(&["save", "-o", archive.to_str().unwrap(), name]);
    let mut files = BTreeMap::new();
    for e in tar::Archive::new(fs::File::open(&archive).unwrap())
        .entries()
        .unwrap()
    {
        let mut e = e.unwrap();
        let p = e.path().unwrap().display().to_string();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut data).unwrap();
        files.insert(p, data);
    }
    let manifest = serde_json::from_slice(&files["manifest.json"]).unwrap();
    (files, manifest)
}

/// The config of the image `name`.
fn config_of(s: &Strata, name: &str) -> serde_json::Value {
    let (files, manifest) = saved(s, name);
    serde_json::from_slice(&files[manifest[0]["Config"].as_str().unwrap()]).unwrap()
}

/// Every mtime in the layers of the image `name`, by layer.
fn layer_mtimes(s: &Strata, name: &str) -> Vec<Vec<(String, u64)>> {
    let (blobs, manifest) = saved(s, name);
    manifest[0]["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            tar::Archive::new(&blobs[l.as_str().unwrap()][..])
                .entries()
                .unwrap()
                .map(|e| {
                    let e = e.unwrap();
                    let p = e.path().unwrap().display().to_string();
                    (p, e.header().mtime().unwrap())
                })
                .collect()
        })
        .collect()
}

/// Sets the mtime of `path` (seconds since 1970).
fn touch(path: &Path, secs: i64) {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs as u64);
    fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(t)
        .unwrap();
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn source_date_epoch_makes_the_same_image_in_two_stores() {
    // The second build runs a minute later by its clock (libfaketime).
    if !require_root() || !require_tool("faketime") {
        return;
    }
    const EPOCH: i64 = 1_700_000_000;
    // The same base image in both stores (an import is stamped with the time it ran).
    let a = store_with_busybox();
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("bb.tar");
    a.ok(&["save", "-o", base.to_str().unwrap(), "bb:1"]);
    let b = Strata::new();
    b.ok(&["load", "-i", base.to_str().unwrap()]);
    let ctx = context(
        "FROM bb:1\n\
         ARG SOURCE_DATE_EPOCH\n\
         COPY f /app/f\n\
         RUN echo $SOURCE_DATE_EPOCH > /app/epoch && mkdir /app/d && echo x > /app/d/new\n\
         WORKDIR /work\n\
         ENV X=1\n",
        &[("f", "payload\n")],
    );
    let c = ctx.path().to_str().unwrap();
    let f = ctx.path().join("f");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    // Store A takes it from the environment, store B as a build arg, a minute later: the
    // context file's mtime a minute later too (both after the epoch), and every clock
    // reading of the build (image and history times, files made by RUN) a minute on.
    touch(&f, now - 60);
    let out = a
        .cmd()
        .env("SOURCE_DATE_EPOCH", EPOCH.to_string())
        .args(["build", "-q", "-t", "repro:1", c])
        .output()
        .unwrap();
    assert_success(&out);
    let id_a = String::from_utf8(out.stdout).unwrap().trim().to_string();
    touch(&f, now);
    let strata = b.cmd().get_program().to_owned();
    let out_b = std::process::Command::new("faketime")
        .args(["-f", "+1m"])
        .arg(strata)
        .env("STRATA_ROOT", b.root.path())
        .args(["build", "--build-arg"])
        .arg(format!("SOURCE_DATE_EPOCH={EPOCH}"))
        .args(["-t", "repro:1", c])
        .output()
        .unwrap();
    assert_success(&out_b);
    let out_b = String::from_utf8(out_b.stdout).unwrap();
    assert!(!out_b.contains("were not consumed"), "{out_b}");
    // The clock was a minute on: without the epoch, that build's image has that time.
    let out = std::process::Command::new("faketime")
        .args(["-f", "+1m"])
        .arg(b.cmd().get_program())
        .env("STRATA_ROOT", b.root.path())
        .args(["build", "-q", "--no-cache", c])
        .output()
        .unwrap();
    assert_success(&out);
    let later = String::from_utf8(out.stdout).unwrap();
    let created = b.ok(&["inspect", "-f", "{{.Created}}", later.trim()]);
    let created = chrono::DateTime::parse_from_rfc3339(created.trim())
        .unwrap()
        .timestamp();
    assert!(created >= now + 60, "created {created}, now {now}");
    let id_b = b.ok(&["images", "-q", "--no-trunc", "repro:1"]);
    assert_eq!(id_a, id_b.trim(), "same image ID in both stores");

    let cfg = config_of(&b, "repro:1");
    assert_eq!(cfg["created"], "2023-11-14T22:13:20Z", "{cfg}");
    let history = cfg["history"].as_array().unwrap();
    let last = &history[history.len() - 4..];
    assert!(
        last.iter().all(|h| h["created"] == "2023-11-14T22:13:20Z"),
        "{history:?}"
    );
    let layers = layer_mtimes(&b, "repro:1");
    let base_layers = layers.len() - 3;
    for (path, mtime) in layers[base_layers..].iter().flatten() {
        assert!(*mtime as i64 <= EPOCH, "{path} has mtime {mtime}");
    }
    // RUN saw the build arg it declared.
    let d = dir.path().join("out");
    b.ok(&[
        "build",
        "--build-arg",
        &format!("SOURCE_DATE_EPOCH={EPOCH}"),
        "-o",
        d.to_str().unwrap(),
        c,
    ]);
    assert_eq!(
        fs::read_to_string(d.join("app/epoch")).unwrap(),
        format!("{EPOCH}\n")
    );

    // Another epoch is another image: the cache only reuses images made with the same one.
    let out = b.ok(&[
        "build",
        "--build-arg",
        "SOURCE_DATE_EPOCH=1600000000",
        "-q",
        c,
    ]);
    assert_ne!(out.trim(), id_a);
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn squash_merges_the_new_layers_and_keeps_the_files() {
    if !require_root() {
        return;
    }
    let s = store_with_busybox();
    let ctx = context(
        "FROM bb:1\n\
         RUN mkdir /app && echo a > /app/a && echo b > /app/b && mkdir /app/gone && echo g > /app/gone/g\n\
         RUN rm /app/b /bin/ls && rm -r /app/gone && mkdir /app/gone && echo new > /app/gone/n\n\
         COPY f /app/f\n\
         ENV X=1\n",
        &[("f", "payload\n")],
    );
    let c = ctx.path().to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut trees = Vec::new();
    for (flag, name) in [
        (None, "plain:1"),
        (Some("--squash"), "sq:1"),
        (Some("--squash-all"), "sqall:1"),
    ] {
        let out_dir = dir.path().join(name);
        let mut args = vec!["build", "-t", name];
        args.extend(flag);
        args.push(c);
        s.ok(&args);
        // The tree of the image: the same build (all from the cache) with `-o`.
        let mut args = vec!["build"];
        args.extend(flag);
        args.extend(["-o", out_dir.to_str().unwrap(), c]);
        s.ok(&args);
        trees.push(tree(&out_dir));
    }
    assert!(!trees[0].contains_key("bin/ls") && trees[0].contains_key("app/gone/n"));
    assert!(!trees[0].contains_key("app/gone/g") && !trees[0].contains_key("app/b"));
    assert_eq!(trees[0], trees[1], "--squash changed the files");
    assert_eq!(trees[0], trees[2], "--squash-all changed the files");

    let base = config_of(&s, "bb:1");
    let plain = config_of(&s, "plain:1");
    let sq = config_of(&s, "sq:1");
    let sqall = config_of(&s, "sqall:1");
    let layers = |c: &serde_json::Value| c["rootfs"]["diff_ids"].as_array().unwrap().clone();
    let base_layers = layers(&base);
    assert_eq!(layers(&plain).len(), base_layers.len() + 3);
    let sq_layers = layers(&sq);
    assert_eq!(
        sq_layers.len(),
        base_layers.len() + 1,
        "one new layer on the base's"
    );
    assert_eq!(sq_layers[..base_layers.len()], base_layers[..]);
    assert_eq!(layers(&sqall).len(), 1);
    // History: the plain image's, the merged steps marked empty, and one entry for the layer.
    let hist = |c: &serde_json::Value| c["history"].as_array().unwrap().clone();
    let (ph, sh) = (hist(&plain), hist(&sq));
    assert_eq!(sh.len(), ph.len() + 1);
    let base_len = hist(&base).len();
    for (i, (p, q)) in ph.iter().zip(&sh).enumerate() {
        assert_eq!(p["created_by"], q["created_by"]);
        let empty = q["empty_layer"].as_bool().unwrap_or(false);
        assert_eq!(
            empty,
            i >= base_len || p["empty_layer"].as_bool().unwrap_or(false),
            "{q}"
        );
    }
    assert!(
        sh.last().unwrap()["comment"]
            .as_str()
            .unwrap()
            .starts_with("merge sha256:"),
        "{sh:?}"
    );
    let non_empty = |h: &[serde_json::Value]| {
        h.iter()
            .filter(|e| !e["empty_layer"].as_bool().unwrap_or(false))
            .count()
    };
    assert_eq!(non_empty(&sh), sq_layers.len());
    assert_eq!(non_empty(&hist(&sqall)), 1);
    assert_eq!(sq["config"]["Env"], plain["config"]["Env"]);
    // It runs.
    let out = s.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "sq:1",
        "cat",
        "/app/a",
        "/app/f",
    ]);
    assert_eq!(out, "a\npayload\n");
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn run_network_and_security_flags() {
    if !require_root() {
        return;
    }
    let s = store_with_busybox();
    let ctx = context(
        "FROM bb:1\n\
         RUN ls /sys/class/net > /build-net\n\
         RUN --network=none ls /sys/class/net > /none-net\n\
         RUN --network=host ls /sys/class/net > /host-net\n\
         RUN --network=default ls /sys/class/net > /default-net\n\
         RUN grep CapEff /proc/self/status > /caps\n",
        &[],
    );
    let c = ctx.path().to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("out");
    s.ok(&["build", "--network", "none", "-o", d.to_str().unwrap(), c]);
    let host_net: Vec<String> = {
        let mut v: Vec<String> = fs::read_dir("/sys/class/net")
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    let read = |f: &str| fs::read_to_string(d.join(f)).unwrap();
    assert_eq!(read("build-net"), "lo\n");
    assert_eq!(read("none-net"), "lo\n");
    assert_eq!(
        read("default-net"),
        "lo\n",
        "the build's network, none here"
    );
    let mut got: Vec<String> = read("host-net").lines().map(String::from).collect();
    got.sort();
    assert_eq!(
        got, host_net,
        "RUN --network=host sees the host's interfaces"
    );
    let default_caps = read("caps");

    // --security=insecure: refused without the entitlement, privileged with it.
    let ctx2 = context(
        "FROM bb:1\nRUN --security=insecure grep CapEff /proc/self/status > /caps\n",
        &[],
    );
    let c2 = ctx2.path().to_str().unwrap();
    let (code, err) = s.fails(&["build", "--network", "none", c2]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("security.insecure is not allowed"), "{err}");
    let (_, err) = s.fails(&["build", "--allow", "bogus", c2]);
    assert!(err.contains("invalid entitlement: bogus"), "{err}");
    let d2 = dir.path().join("insecure");
    s.ok(&[
        "build",
        "--network",
        "none",
        "--allow",
        "security.insecure",
        "-o",
        d2.to_str().unwrap(),
        c2,
    ]);
    let insecure_caps = fs::read_to_string(d2.join("caps")).unwrap();
    let mine = fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find(|l| l.starts_with("CapEff"))
        .unwrap()
        .to_string();
    assert_eq!(insecure_caps.trim(), mine.trim());
    assert_ne!(insecure_caps, default_caps);
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn platform_is_recorded_or_refused() {
    if !require_root() {
        return;
    }
    let s = store_with_busybox();
    let ctx = context("FROM bb:1\nENV A=1\n", &[]);
    let c = ctx.path().to_str().unwrap();
    let host = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    s.ok(&[
        "build",
        "--platform",
        &format!("linux/{host}"),
        "-t",
        "p:1",
        c,
    ]);
    let cfg = config_of(&s, "p:1");
    assert_eq!(
        (cfg["os"].as_str(), cfg["architecture"].as_str()),
        (Some("linux"), Some(host))
    );
    let other = if host == "arm64" {
        "linux/amd64"
    } else {
        "linux/arm64"
    };
    let (code, err) = s.fails(&["build", "--platform", other, c]);
    assert_eq!(code, 1);
    assert!(
        err.contains(&format!("platform {other} is not supported"))
            && err.contains("does not emulate"),
        "{err}"
    );
    let (_, err) = s.fails(&["build", "--platform", "windows/amd64", c]);
    assert!(err.contains("is not supported"), "{err}");
    if host == "amd64" {
        // A microarchitecture level is recorded as the variant, when this CPU has it.
        let has_v2 = fs::read_to_string("/proc/cpuinfo")
            .unwrap()
            .contains(" sse4_2");
        if has_v2 {
            s.ok(&["build", "--platform", "linux/amd64/v2", "-t", "p:2", c]);
            assert_eq!(config_of(&s, "p:2")["variant"], "v2");
        }
        // x86_64 and amd64/v1 are amd64.
        s.ok(&["build", "--platform", "linux/x86_64", "-t", "p:3", c]);
        assert!(config_of(&s, "p:3").get("variant").is_none());
    }
}
