//! The layers tutorial (../shared/seed/docker-layers-tutorial.md) with strata in place of
//! docker: a base built elsewhere shows `<missing>` rows, an unchanged rebuild is all cache,
//! a code change rebuilds only what follows it, the order of COPY and RUN decides what a
//! change costs, `inspect -f` shows the env, and `--no-cache` runs every step.

mod common;

use std::fs;
use std::path::Path;

use common::*;

fn examples() -> std::path::PathBuf {
    workspace_root().join("examples")
}

/// The base image, built in a store of its own and loaded into `s`, as if pulled.
fn load_base(s: &Strata) {
    let elsewhere = Strata::new();
    let tar = busybox_tar();
    elsewhere.ok(&[
        "import",
        tar.to_str().unwrap(),
        "strata-demo/busybox:rootfs",
    ]);
    elsewhere.ok(&[
        "build",
        "-q",
        "-t",
        "strata-demo/base:1",
        examples().join("base").to_str().unwrap(),
    ]);
    let saved = elsewhere.root.path().join("base.tar");
    elsewhere.ok(&["save", "-o", saved.to_str().unwrap(), "strata-demo/base:1"]);
    s.ok(&["load", "-i", saved.to_str().unwrap()]);
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

/// Which steps printed "Using cache", by step number.
fn cached_steps(out: &str) -> Vec<usize> {
    let mut step = 0;
    let mut cached = Vec::new();
    for line in out.lines() {
        if let Some(rest) = line.strip_prefix("Step ") {
            step = rest.split('/').next().unwrap().parse().unwrap();
        } else if line == " ---> Using cache" {
            cached.push(step);
        }
    }
    cached
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn the_layers_tutorial_works_with_strata() {
    if !require_root() {
        return;
    }
    let s = Strata::new();
    load_base(&s);
    let work = tempfile::tempdir().unwrap();
    let ctx = work.path().join("simple-api");
    copy_dir(&examples().join("simple-api"), &ctx);
    let c = ctx.to_str().unwrap();

    let first = s.ok(&["build", "-t", "simple_api_img", c]);
    assert!(
        first.contains("Step 6/6 : CMD [\"sh\", \"/app/api.sh\"]"),
        "{first}"
    );
    assert!(
        first.ends_with("Successfully tagged simple_api_img:latest\n"),
        "{first}"
    );
    assert_eq!(cached_steps(&first), Vec::<usize>::new());

    // history: our five steps with IDs, the base's top with its ID, the rest <missing>.
    let h = s.ok(&["history", "simple_api_img"]);
    let rows: Vec<&str> = h.lines().skip(1).collect();
    assert_eq!(rows.len(), 8, "{h}");
    assert!(rows[..6].iter().all(|r| !r.starts_with("<missing>")), "{h}");
    assert!(
        rows[6].starts_with("<missing>") && rows[7].starts_with("<missing>"),
        "{h}"
    );
    assert!(rows[5].contains("CMD [\"sh\"]"), "{h}");
    assert!(
        rows[2].contains("/bin/sh -c mkdir -p /site-packages && cat /r…"),
        "{h}"
    );

    assert_eq!(
        s.ok(&["inspect", "-f", "{{ json .ContainerConfig.Env }}", "simple_api_img"]),
        "[\"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\",\"LANG=C.UTF-8\",\"PYTHON_VERSION=3.11.2\"]\n"
    );

    // Unchanged: every step after FROM from cache, same image.
    let id1 = s.ok(&["inspect", "-f", "{{.Id}}", "simple_api_img"]);
    let again = s.ok(&["build", "-t", "simple_api_img", c]);
    assert_eq!(cached_steps(&again), vec![2, 3, 4, 5, 6]);
    assert_eq!(s.ok(&["inspect", "-f", "{{.Id}}", "simple_api_img"]), id1);

    // mtime only: still all cache.
    let f = fs::File::options()
        .write(true)
        .open(ctx.join("app/api.sh"))
        .unwrap();
    f.set_modified(std::time::SystemTime::UNIX_EPOCH).unwrap();
    assert_eq!(
        cached_steps(&s.ok(&["build", "-t", "simple_api_img", c])),
        vec![2, 3, 4, 5, 6]
    );

    // A code change: the requirements steps stay cached, COPY app and what follows rerun.
    fs::write(ctx.join("app/api.sh"), "echo changed\n").unwrap();
    let changed = s.ok(&["build", "-t", "simple_api_img", c]);
    assert_eq!(cached_steps(&changed), vec![2, 3, 4]);
    assert!(changed.contains(" ---> Running in"), "{changed}");

    // The exercise: COPY app before RUN makes the RUN rerun on every code change.
    let df = fs::read_to_string(ctx.join("Dockerfile")).unwrap();
    let reordered = df.replace("COPY app /app\n", "").replace(
        "COPY requirements.txt /requirements.txt\n",
        "COPY requirements.txt /requirements.txt\nCOPY app /app\n",
    );
    fs::write(ctx.join("Dockerfile"), reordered).unwrap();
    s.ok(&["build", "-t", "simple_api_img", c]);
    fs::write(ctx.join("app/api.sh"), "echo changed again\n").unwrap();
    let out = s.ok(&["build", "-t", "simple_api_img", c]);
    assert_eq!(cached_steps(&out), vec![2, 3], "{out}");
    assert!(
        out.contains("Step 5/6 : RUN mkdir -p /site-packages"),
        "{out}"
    );

    // --no-cache: nothing from cache.
    let nc = s.ok(&["build", "--no-cache", "-t", "simple_api_img", c]);
    assert_eq!(cached_steps(&nc), Vec::<usize>::new());

    // -q prints only the ID.
    let q = s.ok(&["build", "-q", "-t", "simple_api_img", c]);
    assert!(q.starts_with("sha256:") && q.trim().len() == 71, "{q}");
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn a_failing_run_exits_with_its_code_and_tags_nothing() {
    if !require_root() {
        return;
    }
    let s = Strata::new();
    let tar = busybox_tar();
    s.ok(&["import", tar.to_str().unwrap(), "bb:1"]);
    let ctx = tempfile::tempdir().unwrap();
    fs::write(
        ctx.path().join("Dockerfile"),
        "FROM bb:1\nRUN echo out; echo err >&2; exit 3\n",
    )
    .unwrap();
    let out = s
        .cmd()
        .args(["build", "-t", "fails:1", ctx.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "The command '/bin/sh -c echo out; echo err >&2; exit 3' returned a non-zero code: 3"
        ),
        "{err}"
    );
    s.fails(&["inspect", "fails:1"]);
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(s.root.path().to_str().unwrap()),
        "a mount was left behind"
    );
    let snaps = s.root.path().join("snapshots/snapshots");
    if snaps.exists() {
        assert_eq!(
            fs::read_dir(&snaps).unwrap().count(),
            0,
            "a snapshot was left behind"
        );
    }
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn a_build_killed_mid_run_is_cleaned_up_by_the_next_build() {
    if !require_root() {
        return;
    }
    let s = Strata::new();
    s.ok(&["import", busybox_tar().to_str().unwrap(), "bb:1"]);
    let ctx = tempfile::tempdir().unwrap();
    fs::write(ctx.path().join("Dockerfile"), "FROM bb:1\nRUN sleep 30\n").unwrap();
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("strata"))
        .env("STRATA_ROOT", s.root.path())
        .args(["build", "-q", ctx.path().to_str().unwrap()])
        .spawn()
        .unwrap();
    let root = s.root.path().to_str().unwrap().to_string();
    let mounted = || {
        fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .filter(|l| l.contains(&root))
            .count()
    };
    let mut waited = 0;
    while mounted() == 0 && waited < 100 {
        std::thread::sleep(std::time::Duration::from_millis(100));
        waited += 1;
    }
    assert!(mounted() > 0, "the RUN step never mounted its snapshot");
    child.kill().unwrap(); // SIGKILL: no chance to clean up
    child.wait().unwrap();
    assert!(mounted() > 0);
    fs::write(ctx.path().join("Dockerfile"), "FROM bb:1\nRUN true\n").unwrap();
    s.ok(&["build", "-q", ctx.path().to_str().unwrap()]);
    assert_eq!(mounted(), 0, "stale mounts were left");
    let snaps = s.root.path().join("snapshots/snapshots");
    assert_eq!(
        fs::read_dir(&snaps).map(|d| d.count()).unwrap_or(0),
        0,
        "stale snapshots were left"
    );
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn contexts_and_dockerfiles_from_standard_input() {
    if !require_root() {
        return;
    }
    let s = Strata::new();
    s.ok(&["import", busybox_tar().to_str().unwrap(), "bb:1"]);
    let ctx = tempfile::tempdir().unwrap();
    fs::write(ctx.path().join("f.txt"), "from a tar\n").unwrap();
    fs::write(
        ctx.path().join("Dockerfile"),
        "FROM bb:1\nCOPY f.txt /f.txt\nRUN cat /f.txt\n",
    )
    .unwrap();
    let tar = std::process::Command::new("tar")
        .args(["-C", ctx.path().to_str().unwrap(), "-cf", "-", "."])
        .output()
        .unwrap()
        .stdout;
    let out = s
        .cmd()
        .args(["build", "-t", "stdin:1", "-"])
        .write_stdin(tar)
        .output()
        .unwrap();
    assert_success(&out);
    assert!(String::from_utf8_lossy(&out.stdout).contains("from a tar\n"));

    let df = "FROM bb:1\nCOPY f.txt /g.txt\nRUN cat /g.txt\n";
    let out = s
        .cmd()
        .args([
            "build",
            "-f",
            "-",
            "-t",
            "stdin:2",
            ctx.path().to_str().unwrap(),
        ])
        .write_stdin(df)
        .output()
        .unwrap();
    assert_success(&out);
    assert!(String::from_utf8_lossy(&out.stdout).contains("Step 2/3 : COPY f.txt /g.txt"));

    // `build - < Dockerfile`: standard input that is no archive is the Dockerfile, with an
    // empty context.
    let out = s
        .cmd()
        .args(["build", "-t", "stdin:3", "-"])
        .write_stdin("FROM bb:1\nRUN echo no context here\n")
        .output()
        .unwrap();
    assert_success(&out);
    assert!(String::from_utf8_lossy(&out.stdout).contains("\nno context here\n"));
    let (code, err) = s.fails_with_stdin(&["build", "-"], "FROM bb:1\nCOPY f.txt /f\n");
    assert_eq!(code, 1);
    assert!(err.contains("f.txt"), "{err}");

    // A source outside the context is refused in Docker's words.
    fs::write(
        ctx.path().join("Dockerfile"),
        "FROM bb:1\nCOPY ../etc/passwd /x\n",
    )
    .unwrap();
    let (code, err) = s.fails(&["build", ctx.path().to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        err.contains("forbidden path outside the build context: ../etc/passwd"),
        "{err}"
    );
    // And an unknown instruction is a parse error with the line.
    fs::write(ctx.path().join("Dockerfile"), "FROM bb:1\nFROOM x\n").unwrap();
    let (code, err) = s.fails(&["build", ctx.path().to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        err.contains("dockerfile parse error line 2: unknown instruction: FROOM"),
        "{err}"
    );
}

/// The same Dockerfile built by Docker 20.10's classic builder and by strata gives the same
/// history (instruction strings, COPY source hashes, layer sizes) and the same config.
#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn history_and_config_match_dockers_classic_builder() {
    if !require_root() {
        return;
    }
    if !docker() {
        return;
    }
    const DOCKER: &str = "/usr/bin/docker";
    let base = unique("strata-hist-base:");
    let built = unique("strata-hist-docker:");
    let tar = busybox_tar();
    run_ok(DOCKER, &["import", tar.to_str().unwrap(), &base]);
    let s = Strata::new();
    s.ok(&["import", tar.to_str().unwrap(), &base]);
    let ctx = tempfile::tempdir().unwrap();
    let c = ctx.path();
    fs::create_dir_all(c.join("dir/sub")).unwrap();
    fs::write(c.join("a.txt"), "a\n").unwrap();
    fs::write(c.join("dir/one"), "b\n").unwrap();
    fs::write(c.join("dir/sub/two"), "c\n").unwrap();
    fs::write(
        c.join("Dockerfile"),
        format!(
            "FROM {base}\nARG MYARG=default\nLABEL maintainer=\"me\" version=\"1.0\"\nENV FOO=bar BAZ=\"qux quux\"\n\
             WORKDIR /app\nCOPY a.txt /app/\nCOPY dir /app/dir/\nCOPY a.txt dir /app/multi/\n\
             COPY --chown=55:66 a.txt /chowned.txt\n\
             RUN echo \"$FOO $MYARG\" > /app/run.txt &&     echo second line >> /app/run.txt\n\
             RUN [\"/bin/sh\",\"-c\",\"echo exec form > /app/exec.txt\"]\nEXPOSE 8080/tcp 53/udp\n\
             VOLUME [\"/data\"]\nUSER 1000:1000\nSTOPSIGNAL SIGTERM\n\
             HEALTHCHECK --interval=30s --timeout=3s CMD true\nENTRYPOINT [\"/bin/sh\", \"-c\"]\n\
             CMD [\"echo hi\"]\nONBUILD RUN echo onbuild\nSHELL [\"/bin/sh\", \"-xc\"]\nCMD echo shellform\n"
        ),
    )
    .unwrap();
    let out = std::process::Command::new(DOCKER)
        .env("DOCKER_BUILDKIT", "0")
        .args([
            "build",
            "--network",
            "none",
            "-q",
            "-t",
            &built,
            c.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "docker build: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    s.ok(&["build", "-q", "-t", &built, c.to_str().unwrap()]);
    let fmt = "{{.CreatedBy}}|{{.Size}}";
    assert_eq!(
        s.ok(&["history", "--no-trunc", "--format", fmt, &built]),
        run_ok(DOCKER, &["history", "--no-trunc", "--format", fmt, &built])
    );
    for t in [
        "{{json .Config.Env}} {{json .Config.Cmd}} {{json .Config.Entrypoint}} {{json .Config.Labels}}",
        "{{json .Config.ExposedPorts}} {{json .Config.Volumes}} {{.Config.User}} {{.Config.WorkingDir}}",
        "{{json .Config.Healthcheck}} {{json .Config.OnBuild}} {{json .Config.Shell}} {{.Config.StopSignal}}",
        "{{json .ContainerConfig.Cmd}} {{json .ContainerConfig.Env}} {{len .RootFS.Layers}}",
    ] {
        assert_eq!(s.ok(&["inspect", "-f", t, &built]), run_ok(DOCKER, &["inspect", "-f", t, &built]), "{t}");
    }
    run_ok(DOCKER, &["rmi", &built, &base]);
}

/// A second store reuses the first one's build cache through an exported cache directory:
/// every step is ` ---> Using cache` and the image ID is the same. A tampered cache blob is
/// refused and changes nothing.
#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn build_cache_travels_to_another_store() {
    if !require_root() {
        return;
    }
    let a = Strata::new();
    load_base(&a);
    let work = tempfile::tempdir().unwrap();
    let ctx = work.path().join("simple-api");
    copy_dir(&examples().join("simple-api"), &ctx);
    let c = ctx.to_str().unwrap();
    let cache = work.path().join("cache");
    let dest = format!("type=local,dest={}", cache.display());
    a.ok(&[
        "build",
        "-q",
        "--cache-to",
        &dest,
        "-t",
        "simple_api_img",
        c,
    ]);
    let id = a.ok(&["inspect", "-f", "{{.Id}}", "simple_api_img"]);

    let b = Strata::new();
    let base = work.path().join("base.tar");
    a.ok(&["save", "-o", base.to_str().unwrap(), "strata-demo/base:1"]);
    b.ok(&["load", "-i", base.to_str().unwrap()]);
    let src = format!("type=local,src={}", cache.display());
    let out = b.ok(&["build", "--cache-from", &src, "-t", "simple_api_img", c]);
    assert_eq!(cached_steps(&out), vec![2, 3, 4, 5, 6], "{out}");
    assert_eq!(b.ok(&["inspect", "-f", "{{.Id}}", "simple_api_img"]), id);

    // Exported again after an edit, the cache keeps the blobs it has (the layers compressed
    // the first time are not compressed and written again) and adds the new ones.
    let inodes = |dir: &Path| -> std::collections::HashMap<String, u64> {
        use std::os::unix::fs::MetadataExt;
        fs::read_dir(dir.join("blobs/sha256"))
            .unwrap()
            .flatten()
            .map(|e| {
                (
                    e.file_name().to_string_lossy().into_owned(),
                    e.metadata().unwrap().ino(),
                )
            })
            .collect()
    };
    let cache2 = work.path().join("cache2");
    let dest2 = format!("type=local,dest={}", cache2.display());
    a.ok(&[
        "build",
        "-q",
        "--cache-to",
        &dest2,
        "-t",
        "simple_api_img",
        c,
    ]);
    let before = inodes(&cache2);
    let edited = work.path().join("edited");
    copy_dir(&ctx, &edited);
    fs::write(edited.join("app/api.sh"), "echo edited\n").unwrap();
    a.ok(&[
        "build",
        "-q",
        "--cache-to",
        &dest2,
        "-t",
        "edited",
        edited.to_str().unwrap(),
    ]);
    let after = inodes(&cache2);
    for (name, ino) in &before {
        assert_eq!(after.get(name), Some(ino), "blob {name} was written again");
    }
    assert!(after.len() > before.len());
    let e = Strata::new();
    e.ok(&["load", "-i", base.to_str().unwrap()]);
    let src2 = format!("type=local,src={}", cache2.display());
    let out = e.ok(&[
        "build",
        "--cache-from",
        &src2,
        "-t",
        "edited",
        edited.to_str().unwrap(),
    ]);
    assert_eq!(cached_steps(&out), vec![2, 3, 4, 5, 6], "{out}");

    // Tamper with the final image's config in the cache: a third store refuses the cache and
    // stays as it was.
    let t = Strata::new();
    t.ok(&["load", "-i", base.to_str().unwrap()]);
    let before = t.stored_entries();
    let blobs = cache.join("blobs/sha256");
    let victim = fs::read_dir(&blobs)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            fs::read_to_string(p)
                .map(|t| t.starts_with("{\"architecture\"") && t.contains("api.sh"))
                .unwrap_or(false)
        })
        .expect("the final config is in the cache");
    let text = fs::read_to_string(&victim)
        .unwrap()
        .replace("api.sh", "evil.sh");
    fs::write(&victim, text).unwrap();
    let (code, err) = t.fails(&["build", "--cache-from", &src, "-t", "simple_api_img", c]);
    assert_eq!(code, 1);
    assert!(
        err.contains("digest mismatch") || err.contains("corrupt"),
        "{err}"
    );
    assert_eq!(t.stored_entries(), before);
}
