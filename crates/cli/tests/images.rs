//! End-to-end tests of the image commands against real files, a real store, and the real
//! peers Debian ships: Docker 20.10, skopeo and umoci.

mod common;

use common::*;

/// Debian's Docker 20.10 CLI (a newer CLI may be first on PATH and prints differently).
const DOCKER: &str = "/usr/bin/docker";

fn import(s: &Strata, name: &str) -> String {
    let tar = busybox_tar();
    s.ok(&[
        "import",
        "-c",
        "ENV A=b",
        "-c",
        "CMD [\"sh\"]",
        tar.to_str().unwrap(),
        name,
    ])
    .trim()
    .to_string()
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn import_save_load_into_an_empty_store_keeps_the_image_id() {
    if !require_root() {
        return;
    }
    let a = Strata::new();
    let id = import(&a, "bb:1");
    assert!(
        id.starts_with("sha256:") && id.len() == 71,
        "import prints the ID: {id}"
    );
    let out = a.root.path().join("bb.tar");
    a.ok(&["save", "-o", out.to_str().unwrap(), "bb:1"]);

    let b = Strata::new();
    let loaded = b.ok(&["load", "-i", out.to_str().unwrap()]);
    assert_eq!(loaded, "Loaded image: bb:1\n");
    assert_eq!(b.ok(&["inspect", "-f", "{{.Id}}", "bb:1"]).trim(), id);
    assert_eq!(
        b.ok(&["inspect", "-f", "{{json .Config.Env}}", "bb:1"])
            .trim(),
        r#"["A=b"]"#
    );
    // Saving again from the second store gives the same bytes.
    let again = b.root.path().join("again.tar");
    b.ok(&["save", "-o", again.to_str().unwrap(), "bb:1"]);
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&again).unwrap());
}

/// `save -o` a device (`/dev/null` as users write it; here a null device of the test's own)
/// is refused as Docker's CLI refuses it, and the device stays a device (it is not
/// replaced or removed); a build's `-o type=tar` writes to it, as buildx does.
#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn save_to_a_device_writes_to_it_and_leaves_it_in_place() {
    use std::os::unix::fs::FileTypeExt;
    if !require_root() {
        return;
    }
    let a = Strata::new();
    import(&a, "bb:1");
    let dir = tempfile::tempdir().unwrap();
    let node = dir.path().join("null");
    run_ok(
        "mknod",
        &["-m", "666", node.to_str().unwrap(), "c", "1", "3"],
    );
    let (code, err) = a.fails(&["save", "-o", node.to_str().unwrap(), "bb:1"]);
    assert_eq!(code, 1);
    assert_eq!(
        err.trim(),
        format!(
            "failed to save image: invalid output path: {:?} must be a directory or a regular file: got a device",
            node.display().to_string()
        )
    );
    let t = std::fs::symlink_metadata(&node).unwrap().file_type();
    assert!(t.is_char_device(), "{t:?}");
    // A build's `-o type=tar` to it too.
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(ctx.path().join("Dockerfile"), "FROM bb:1\n").unwrap();
    a.ok(&[
        "build",
        "-q",
        "-o",
        &format!("type=tar,dest={}", node.display()),
        ctx.path().to_str().unwrap(),
    ]);
    assert!(std::fs::symlink_metadata(&node)
        .unwrap()
        .file_type()
        .is_char_device());
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn two_images_sharing_a_layer_store_it_once_and_removing_both_empties_the_store() {
    if !require_root() {
        return;
    }
    let s = Strata::new();
    let tar = busybox_tar();
    let t = tar.to_str().unwrap();
    let id1 = s
        .ok(&["import", "-c", "ENV X=1", t, "one:1"])
        .trim()
        .to_string();
    let id2 = s
        .ok(&["import", "-c", "ENV X=2", t, "two:1"])
        .trim()
        .to_string();
    assert_ne!(id1, id2);
    let layers = std::fs::read_dir(s.root.path().join("layers"))
        .unwrap()
        .count();
    assert_eq!(layers, 1, "the shared layer is unpacked once");
    assert_eq!(
        s.ok(&["inspect", "-f", "{{index .RootFS.Layers 0}}", "one:1"]),
        s.ok(&["inspect", "-f", "{{index .RootFS.Layers 0}}", "two:1"])
    );
    let out = s.ok(&["rmi", "one:1"]);
    assert!(
        out.starts_with("Untagged: one:1\nDeleted: sha256:"),
        "{out}"
    );
    assert_eq!(
        std::fs::read_dir(s.root.path().join("layers"))
            .unwrap()
            .count(),
        1
    );
    s.ok(&["rmi", "two:1"]);
    assert_eq!(s.stored_entries(), Vec::<String>::new());
    assert_eq!(s.ok(&["images", "-q"]), "");
}

#[test]
fn missing_images_and_bad_names_fail_like_docker() {
    let s = Strata::new();
    let (code, err) = s.fails(&["inspect", "nosuch:1"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("No such image: nosuch:1") || err.contains("No such object: nosuch:1"),
        "{err}"
    );
    let (code, err) = s.fails(&["rmi", "nosuch:1"]);
    assert_eq!(code, 1);
    assert!(err.contains("No such image: nosuch:1"), "{err}");
    // Docker's client refuses a bad new name before it looks for the image.
    let (code, err) = s.fails(&["tag", "nosuch", "UPPER"]);
    assert_eq!(code, 1);
    assert_eq!(
        err.trim(),
        "Error parsing reference: \"UPPER\" is not a valid repository/tag: invalid reference format: repository name must be lowercase"
    );
    let (code, err) = s.fails(&["tag", "nosuch", "lower"]);
    assert_eq!(code, 1);
    assert!(err.contains("No such image"), "{err}");
    let (code, _) = s.fails(&["images", "--bogus-flag"]);
    assert_eq!(code, 125);
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn docker_loads_the_archive_strata_saves_and_runs_it() {
    if !require_root() {
        return;
    }
    if !docker() {
        return;
    }
    let s = Strata::new();
    let name = unique("strata-save-test:");
    let id = import(&s, &name);
    let out = s.root.path().join("img.tar");
    s.ok(&["save", "-o", out.to_str().unwrap(), &name]);
    let loaded = run_ok(DOCKER, &["load", "-i", out.to_str().unwrap()]);
    assert!(
        loaded.contains(&format!("Loaded image: {name}")),
        "{loaded}"
    );
    assert_eq!(
        run_ok(DOCKER, &["inspect", "-f", "{{.Id}}", &name]).trim(),
        id
    );
    let said = run_ok(
        DOCKER,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            &name,
            "sh",
            "-c",
            "echo hello $A",
        ],
    );
    assert_eq!(said, "hello b\n");
    run_ok(DOCKER, &["rmi", &name]);
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn strata_loads_what_docker_saved_with_the_same_id_history_and_inspect() {
    if !require_root() {
        return;
    }
    if !docker() {
        return;
    }
    let base = unique("strata-docker-base:");
    let built = unique("strata-docker-built:");
    let tar = busybox_tar();
    run_ok(DOCKER, &["import", tar.to_str().unwrap(), &base]);
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(ctx.path().join("hello.txt"), "hello\n").unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!(
            "FROM {base}\nENV FOO=bar BAZ=\"qux quux\"\nLABEL version=1.0\nCOPY hello.txt /hello.txt\n\
             RUN echo built > /built && rm /bin/vi\nEXPOSE 8080/tcp 53/udp\nCMD [\"sh\"]\n"
        ),
    )
    .unwrap();
    let b = std::process::Command::new(DOCKER)
        .env("DOCKER_BUILDKIT", "0")
        .args([
            "build",
            "--network",
            "none",
            "-q",
            "-t",
            &built,
            ctx.path().to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        b.status.success(),
        "docker build: {}",
        String::from_utf8_lossy(&b.stderr)
    );
    let saved = ctx.path().join("saved.tar");
    run_ok(DOCKER, &["save", "-o", saved.to_str().unwrap(), &built]);
    // Make Docker's view like strata's: a loaded image has no local parents.
    run_ok(DOCKER, &["rmi", &built, &base]);
    run_ok(DOCKER, &["load", "-i", saved.to_str().unwrap()]);

    let s = Strata::new();
    assert_eq!(
        s.ok(&["load", "-i", saved.to_str().unwrap()]),
        format!("Loaded image: {built}\n")
    );
    for tmpl in [
        "{{.Id}}",
        "{{json .Config.Env}}",
        "{{ json .ContainerConfig.Env }}",
        "{{.Config.Env}}",
        "{{join .Config.Env \",\"}}",
        "{{upper .Os}} {{title .Os}} {{lower \"ABC\"}}",
        "{{index (split .Id \":\") 1}}",
        "{{index .Config.Labels \"version\"}} {{.Config.Labels.version}}",
        "{{range .RootFS.Layers}}{{println .}}{{end}}",
        "{{len .RootFS.Layers}}",
        "{{if .Config.Healthcheck}}hc{{else}}nohc{{end}}",
        "{{range $k,$v := .Config.ExposedPorts}}{{$k}} {{end}}",
        "{{pad .Os 2 2}}|",
        "{{truncate .Id 12}}",
        "{{printf \"%.19s\" .Id}}",
        "{{.Created}} {{.Parent}} {{.Architecture}} {{.DockerVersion}} {{.Size}} {{.RepoTags}}",
        "{{eq .Os \"linux\"}}",
        "{{json .Config}}",
        "{{json .ContainerConfig}}",
        "{{json .RootFS}}",
    ] {
        let want = run_ok(DOCKER, &["inspect", "-f", tmpl, &built]);
        let got = s.ok(&["inspect", "-f", tmpl, &built]);
        assert_eq!(got, want, "inspect -f {tmpl}");
    }
    // History: the same rows but for the CREATED column, which counts from now.
    let strip_created = |t: &str| -> Vec<String> {
        t.lines()
            .map(|l| {
                if l.len() > 30 {
                    format!("{}{}", &l[..15], &l[32..])
                } else {
                    l.to_string()
                }
            })
            .collect()
    };
    for flags in [&[][..], &["--no-trunc"][..], &["-q"][..]] {
        let mut args = vec!["history"];
        args.extend_from_slice(flags);
        args.push(&built);
        let want = run_ok(DOCKER, &args);
        let got = s.ok(&args);
        if flags == ["-q"] {
            assert_eq!(got, want);
        } else if flags.is_empty() {
            assert_eq!(
                strip_created(&got),
                strip_created(&want),
                "history {flags:?}"
            );
        } else {
            assert_eq!(got.lines().count(), want.lines().count());
        }
    }
    let want = run_ok(
        DOCKER,
        &[
            "history",
            "--format",
            "{{.ID}}|{{.CreatedBy}}|{{.Size}}|{{.Comment}}",
            &built,
        ],
    );
    let got = s.ok(&[
        "history",
        "--format",
        "{{.ID}}|{{.CreatedBy}}|{{.Size}}|{{.Comment}}",
        &built,
    ]);
    assert_eq!(got, want);
    let want = run_ok(
        DOCKER,
        &[
            "history",
            "-H=false",
            "--format",
            "{{.ID}} {{.Size}} {{.CreatedAt}}",
            &built,
        ],
    );
    let got = s.ok(&[
        "history",
        "-H=false",
        "--format",
        "{{.ID}} {{.Size}} {{.CreatedAt}}",
        &built,
    ]);
    assert_eq!(got, want);
    let fmt = "{{.Repository}} {{.Tag}} {{.ID}} {{.Size}}";
    assert_eq!(
        s.ok(&["images", "--format", fmt, &built]),
        run_ok(DOCKER, &["images", "--format", fmt, &built])
    );
    run_ok(DOCKER, &["rmi", &built]);
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn skopeo_and_umoci_read_strata_archives_and_strata_loads_skopeo_layouts() {
    if !require_root() || !require_tool("skopeo") || !require_tool("umoci") {
        return;
    }
    let s = Strata::new();
    let id = import(&s, "peers:1");
    let work = tempfile::tempdir().unwrap();
    let archive = work.path().join("img.tar");
    s.ok(&["save", "-o", archive.to_str().unwrap(), "peers:1"]);

    // skopeo reads it as a Docker archive...
    let info = run_ok(
        "skopeo",
        &["inspect", &format!("docker-archive:{}", archive.display())],
    );
    let v: serde_json::Value = serde_json::from_str(&info).unwrap();
    assert_eq!(v["Env"], serde_json::json!(["A=b"]));
    // ...and, untarred, as an OCI layout; umoci unpacks it.
    let layout = work.path().join("layout");
    std::fs::create_dir(&layout).unwrap();
    run_ok(
        "tar",
        &[
            "-xf",
            archive.to_str().unwrap(),
            "-C",
            layout.to_str().unwrap(),
        ],
    );
    run_ok(
        "skopeo",
        &["inspect", &format!("oci:{}:1", layout.display())],
    );
    let bundle = work.path().join("bundle");
    run_ok(
        "umoci",
        &[
            "unpack",
            "--image",
            &format!("{}:1", layout.display()),
            bundle.to_str().unwrap(),
        ],
    );
    assert!(bundle.join("rootfs/bin/busybox").is_file());

    // strata loads what skopeo writes: an OCI archive and a Docker archive (same config
    // bytes, so the same image ID for the Docker one).
    let oci_tar = work.path().join("oci.tar");
    run_ok(
        "skopeo",
        &[
            "copy",
            &format!("docker-archive:{}", archive.display()),
            &format!("oci-archive:{}:peers:2", oci_tar.display()),
        ],
    );
    let docker_tar = work.path().join("docker.tar");
    run_ok(
        "skopeo",
        &[
            "copy",
            &format!("docker-archive:{}", archive.display()),
            &format!("docker-archive:{}:peers:3", docker_tar.display()),
        ],
    );
    let t = Strata::new();
    assert_eq!(
        t.ok(&["load", "-i", oci_tar.to_str().unwrap()]),
        "Loaded image: peers:2\n"
    );
    assert_eq!(
        t.ok(&["load", "-i", docker_tar.to_str().unwrap()]),
        "Loaded image: peers:3\n"
    );
    assert_eq!(t.ok(&["inspect", "-f", "{{.Id}}", "peers:3"]).trim(), id);
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn bad_templates_are_clear_errors_not_panics() {
    if !require_root() {
        return;
    }
    let s = Strata::new();
    import(&s, "tmpl:1");
    for (t, want) in [
        (
            "{{.Id",
            "template parsing error: template: :1: unclosed action",
        ),
        ("{{table .Id}}", "function \"table\" not defined"),
        (
            "{{.NoSuchField}}",
            "map has no entry for key \"NoSuchField\"",
        ),
        ("{{index .Config.Env 99}}", "error"),
    ] {
        let (code, err) = s.fails(&["inspect", "-f", t, "tmpl:1"]);
        assert_eq!(code, 1, "{t}");
        assert!(err.contains(want), "{t}: {err}");
        assert!(!err.contains("panicked"), "{t}: {err}");
    }
    let (code, err) = s.fails(&["images", "--format", "{{.Nope"]);
    assert_eq!(code, 1);
    assert!(err.contains("template parsing error"), "{err}");
}
