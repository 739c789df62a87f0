//! Volumes, side by side with Docker 20.10: `volume create|inspect|ls|rm|prune`, named
//! volumes that outlive their containers and are shared by two running containers,
//! anonymous volumes from an image's `VOLUME` copied up from the image (owners and modes
//! kept) and removed by `rm -v`, `--volumes-from`, `inspect`'s `Mounts`, `system df`, and
//! the `-v`/`--mount` differences found by testing (Docker's errors, a missing `-v` host
//! directory made at start, `--tmpfs` kept out of `Mounts`).

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

use common::*;

const DOCKER: &str = "/usr/bin/docker";

/// Runs a command; returns (exit code, stdout, stderr).
fn out(mut c: Command) -> (i32, String, String) {
    let o = c.output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn docker_cmd(args: &[&str]) -> (i32, String, String) {
    let mut c = Command::new(DOCKER);
    c.args(args);
    out(c)
}

fn strata_cmd(s: &Strata, args: &[&str]) -> (i32, String, String) {
    let o = s.cmd().args(args).output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// The last line of an error, without Docker's `Error response from daemon: ` or
/// strata's `Error: ` (there is no daemon).
fn error_text(stderr: &str) -> String {
    let last = stderr
        .lines()
        .rfind(|l| l.starts_with("Error") || l.starts_with("invalid argument"))
        .unwrap_or("")
        .to_string();
    last.trim_start_matches("docker: ")
        .trim_start_matches("Error response from daemon: ")
        .trim_start_matches("Error: ")
        .trim_end_matches('.')
        .to_string()
}

/// Both fail with the same message (after the prefix).
fn same_error(s: &Strata, ours: &[&str], theirs: &[&str]) -> String {
    let (c1, _, e1) = strata_cmd(s, ours);
    let (c2, _, e2) = docker_cmd(theirs);
    assert_ne!(c1, 0, "strata {ours:?} should fail");
    assert_ne!(c2, 0, "docker {theirs:?} should fail");
    assert_eq!(
        error_text(&e1),
        error_text(&e2),
        "strata: {e1}\ndocker: {e2}"
    );
    error_text(&e1)
}

/// `inspect`'s `Mounts` with the roots and generated names made comparable.
fn mounts_json(text: &str, root: &str, names: &[(String, &str)]) -> serde_json::Value {
    let mut t = text.replace(root, "ROOT");
    for (n, alias) in names {
        t = t.replace(n.as_str(), alias);
    }
    let mut v: serde_json::Value = serde_json::from_str(&t).unwrap();
    if let Some(a) = v.as_array_mut() {
        a.sort_by_key(|m| m["Destination"].as_str().unwrap_or("").to_string());
    }
    v
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn volumes_match_docker() {
    if !require_root() || !docker() {
        return;
    }
    let s = Strata::new();
    let root = s.root.path().to_string_lossy().to_string();
    let docker_root = run_ok(DOCKER, &["info", "-f", "{{.DockerRootDir}}"])
        .trim()
        .to_string();
    let p = unique("strata-vt");
    let base = format!("{p}-base:1");
    let img = format!("{p}-img:1");
    let v = |n: &str| format!("{p}-{n}");
    let mut clean = DockerCleanup {
        containers: vec![],
        volumes: ["named", "lab", "shared", "keep", "mnt", "nc", "p1", "p2"]
            .iter()
            .map(|n| v(n))
            .collect(),
        images: vec![img.clone(), base.clone()],
    };
    let tar = busybox_tar();
    s.ok(&["import", tar.to_str().unwrap(), &base]);
    run_ok(DOCKER, &["import", tar.to_str().unwrap(), &base]);
    // A container keeps the image from other tests' prunes of the shared daemon.
    let hold = format!("{p}-hold");
    clean.containers.push(hold.clone());
    run_ok(
        DOCKER,
        &[
            "create",
            "--network",
            "none",
            "--name",
            &hold,
            &base,
            "true",
        ],
    );
    // An image whose VOLUME holds content owned by 1:2, mode 0750.
    let ctx = tempfile::tempdir().unwrap();
    fs::write(
        ctx.path().join("Dockerfile"),
        format!(
            "FROM {base}\nRUN mkdir -p /data/sub && echo hello > /data/f && ln -s f /data/l && chown -R 1:2 /data && chmod 0750 /data\nVOLUME /data\n"
        ),
    )
    .unwrap();
    s.ok(&[
        "build",
        "-q",
        "--network",
        "none",
        "-t",
        &img,
        ctx.path().to_str().unwrap(),
    ]);
    let mut b = Command::new(DOCKER);
    b.env("DOCKER_BUILDKIT", "0")
        .args(["build", "-q", "--network", "none", "-t", &img])
        .arg(ctx.path());
    assert_eq!(out(b).0, 0);
    let both = |args: &[&str]| -> (String, String) {
        let mut d = vec![args[0]];
        if args[0] == "run" || args[0] == "create" {
            d.extend(["--network", "none"]);
        }
        d.extend(&args[1..]);
        (s.ok(&d), run_ok(DOCKER, &d))
    };

    // volume create and inspect: the same JSON, roots aside.
    let named = v("named");
    let (a, b) = both(&["volume", "create", &named]);
    assert_eq!(a, b);
    let lab = v("lab");
    let bind_dir = tempfile::tempdir().unwrap();
    let device = format!("device={}", bind_dir.path().display());
    let (a, b) = both(&[
        "volume",
        "create",
        "--label",
        "a=b",
        "--label",
        "c",
        "--opt",
        "type=none",
        "--opt",
        "o=bind",
        "--opt",
        &device,
        &lab,
    ]);
    assert_eq!(a, b);
    let inspect = |text: &str, r: &str| -> serde_json::Value {
        let mut v: serde_json::Value = serde_json::from_str(&text.replace(r, "ROOT")).unwrap();
        for x in v.as_array_mut().unwrap() {
            x["CreatedAt"] = "T".into();
            // Docker 20.10 shows no labels or options as null, or (seen once under the
            // test, not reproduced by hand) as {}: both mean none.
            for k in ["Labels", "Options"] {
                if x[k].as_object().is_some_and(|o| o.is_empty()) {
                    x[k] = serde_json::Value::Null;
                }
            }
        }
        v
    };
    let (a, b) = both(&["volume", "inspect", &named, &lab]);
    assert_eq!(inspect(&a, &root), inspect(&b, &docker_root));
    let (a, b) = both(&[
        "volume",
        "inspect",
        "-f",
        "{{.Name}} {{.Labels}} {{.Options}}",
        &lab,
    ]);
    assert_eq!(a, b);
    // Creating an existing volume again gives its name back.
    let (a, b) = both(&["volume", "create", &named]);
    assert_eq!(a, b);
    // A volume without a name gets 64 random hex digits.
    let anon = s.ok(&["volume", "create"]);
    assert!(anon.trim().len() == 64 && anon.trim().bytes().all(|c| c.is_ascii_hexdigit()));
    s.ok(&["volume", "rm", anon.trim()]);
    // Docker's errors.
    same_error(&s, &["volume", "create", "x"], &["volume", "create", "x"]);
    same_error(
        &s,
        &["volume", "create", "a/b"],
        &["volume", "create", "a/b"],
    );
    same_error(
        &s,
        &["volume", "create", "--opt", "foo=bar", &v("bad")],
        &["volume", "create", "--opt", "foo=bar", &v("bad")],
    );
    same_error(
        &s,
        &["volume", "create", "-d", "nope", &v("bad")],
        &["volume", "create", "-d", "nope", &v("bad")],
    );
    same_error(
        &s,
        &["volume", "inspect", &v("none")],
        &["volume", "inspect", &v("none")],
    );
    same_error(
        &s,
        &["volume", "rm", &v("none")],
        &["volume", "rm", &v("none")],
    );
    let (c1, o1, _) = strata_cmd(&s, &["volume", "rm", "-f", &v("none")]);
    let (c2, o2, _) = docker_cmd(&["volume", "rm", "-f", &v("none")]);
    assert_eq!((c1, o1), (c2, o2));
    // Only the local driver's bind form is mounted here: other options are refused.
    let (c, _, e) = strata_cmd(
        &s,
        &[
            "volume",
            "create",
            "--opt",
            "type=tmpfs",
            "--opt",
            "device=tmpfs",
            &v("tmp"),
        ],
    );
    assert_eq!(c, 1);
    assert!(e.contains("supports only the bind form"), "{e}");

    // A named volume outlives its container and is shared: one writes, the next reads.
    let shared = v("shared");
    let vol = format!("{shared}:/s");
    let (a, b) = both(&[
        "run",
        "--rm",
        "-v",
        &vol,
        &base,
        "sh",
        "-c",
        "echo one > /s/f",
    ]);
    assert_eq!(a, b);
    let (a, b) = both(&["run", "--rm", "-v", &vol, &base, "cat", "/s/f"]);
    assert_eq!((a.as_str(), b.as_str()), ("one\n", "one\n"));
    // Two containers running at once: the reader waits for the writer's file, then answers
    // through the volume and the writer reads the answer.
    let w = format!("{p}-writer");
    clean.containers.push(w.clone());
    let writer_sh = "echo ping > /s/ping; while [ ! -f /s/pong ]; do sleep 0.05; done; cat /s/pong";
    s.ok(&[
        "run", "-d", "--name", &w, "-v", &vol, &base, "sh", "-c", writer_sh,
    ]);
    let reader = s.ok(&[
        "run",
        "--rm",
        "-v",
        &vol,
        &base,
        "sh",
        "-c",
        "while [ ! -f /s/ping ]; do sleep 0.05; done; cat /s/ping; echo pong > /s/pong",
    ]);
    assert_eq!(reader, "ping\n");
    assert_eq!(s.ok(&["wait", &w]).trim(), "0");
    assert_eq!(s.ok(&["logs", &w]), "pong\n");
    // In use: rm refuses with Docker's words and the container's ID.
    let id = s.ok(&["inspect", "-f", "{{.Id}}", &w]).trim().to_string();
    let (c, _, e) = strata_cmd(&s, &["volume", "rm", &shared]);
    assert_eq!(c, 1);
    assert_eq!(
        error_text(&e),
        format!("remove {shared}: volume is in use - [{id}]")
    );
    let dw = format!("{p}-dwriter");
    clean.containers.push(dw.clone());
    run_ok(
        DOCKER,
        &[
            "create",
            "--network",
            "none",
            "--name",
            &dw,
            "-v",
            &vol,
            &base,
            "true",
        ],
    );
    let did = run_ok(DOCKER, &["inspect", "-f", "{{.Id}}", &dw])
        .trim()
        .to_string();
    let (_, _, de) = docker_cmd(&["volume", "rm", &shared]);
    assert_eq!(
        error_text(&de),
        format!("remove {shared}: volume is in use - [{did}]")
    );
    s.ok(&["rm", "-v", &w]);
    run_ok(DOCKER, &["rm", "-v", &dw]);
    // `rm -v` never removes a named volume.
    let (a, b) = both(&["volume", "ls", "-q", "--filter", &format!("name={shared}")]);
    assert_eq!(
        (a.as_str(), b.as_str()),
        (
            format!("{shared}\n").as_str(),
            format!("{shared}\n").as_str()
        )
    );

    // An anonymous volume for the image's VOLUME, copied up from the image with its owner,
    // mode and symlink; `inspect` shows it as Docker does.
    let c1 = format!("{p}-c1");
    clean.containers.push(c1.clone());
    let keep = v("keep");
    let (ours, theirs) = both(&[
        "create",
        "--name",
        &c1,
        "-v",
        &format!("{keep}:/k:ro"),
        "-v",
        "/anon",
        "--mount",
        &format!("type=volume,src={},dst=/m,volume-nocopy", v("mnt")),
        "--tmpfs",
        "/t",
        "-v",
        &format!("{}:/b", bind_dir.path().display()),
        &img,
        "true",
    ]);
    let (ours, theirs) = (ours.trim().to_string(), theirs.trim().to_string());
    let anon_names = |inspect: String| -> Vec<(String, &'static str)> {
        let m: serde_json::Value = serde_json::from_str(&inspect).unwrap();
        let mut out = Vec::new();
        for x in m.as_array().unwrap() {
            let alias = match x["Destination"].as_str() {
                Some("/data") => "ANON-DATA",
                Some("/anon") => "ANON-FLAG",
                _ => continue,
            };
            out.push((x["Name"].as_str().unwrap().to_string(), alias));
        }
        out
    };
    let om = s.ok(&["inspect", "-f", "{{json .Mounts}}", &ours]);
    let tm = run_ok(DOCKER, &["inspect", "-f", "{{json .Mounts}}", &theirs]);
    let (on, tn) = (anon_names(om.clone()), anon_names(tm.clone()));
    assert_eq!(on.len(), 2);
    for (n, _) in &on {
        assert!(n.len() == 64 && n.bytes().all(|c| c.is_ascii_hexdigit()));
    }
    assert_eq!(
        mounts_json(&om, &root, &on),
        mounts_json(&tm, &docker_root, &tn)
    );
    for t in [
        "{{json .HostConfig.Mounts}} {{json .HostConfig.Tmpfs}}",
        "{{json .Config.Volumes}}",
    ] {
        assert_eq!(
            s.ok(&["inspect", "-f", t, &ours]),
            run_ok(DOCKER, &["inspect", "-f", t, &theirs])
        );
    }
    // Binds in any order (Docker's CLI takes them from a map).
    let binds = |t: String| {
        let mut v: Vec<String> = serde_json::from_str(&t).unwrap();
        v.sort();
        v
    };
    let bt = "{{json .HostConfig.Binds}}";
    assert_eq!(
        binds(s.ok(&["inspect", "-f", bt, &ours])),
        binds(run_ok(DOCKER, &["inspect", "-f", bt, &theirs]))
    );
    let (a, b) = both(&["start", "-a", &c1]);
    assert_eq!(a, b);
    let listing = "ls -ln /data | sed 's/  */ /g' | cut -d' ' -f1,3,4,5,9-; stat -c '%a %u %g' /data; ls /m | wc -l";
    let (a, b) = both(&[
        "run",
        "--rm",
        "--volumes-from",
        &c1,
        &base,
        "sh",
        "-c",
        listing,
    ]);
    assert_eq!(a, b);
    assert!(a.contains("-rw-r--r-- 1 2 6 f"), "{a}");
    assert!(a.contains("750 1 2"), "{a}");
    // --volumes-from :ro makes every mount read-only.
    let ro = format!("{c1}:ro");
    let (a, b) = both(&[
        "run",
        "--rm",
        "--volumes-from",
        &ro,
        &base,
        "sh",
        "-c",
        "touch /data/x 2>/dev/null || echo ro",
    ]);
    assert_eq!((a.as_str(), b.as_str()), ("ro\n", "ro\n"));
    // rm -v removes the anonymous volumes, not the named ones.
    let count = |s: &Strata| s.ok(&["volume", "ls", "-q"]).lines().count();
    let before = count(&s);
    s.ok(&["rm", "-v", &ours]);
    run_ok(DOCKER, &["rm", "-v", &theirs]);
    assert_eq!(count(&s), before - 2);
    for (n, _) in &on {
        assert!(!s.root.path().join("volumes").join(n).exists());
    }
    for (n, _) in &tn {
        assert_ne!(docker_cmd(&["volume", "inspect", n]).0, 0);
    }
    // run --rm removes its anonymous volumes too.
    let before = count(&s);
    s.ok(&["run", "--rm", &img, "true"]);
    assert_eq!(count(&s), before);

    // volume ls: table, quiet, filters, format.
    s.ok(&["volume", "rm", &keep, &v("mnt")]);
    run_ok(DOCKER, &["volume", "rm", &keep, &v("mnt")]);
    let name_filter = format!("name={p}");
    for args in [
        vec!["volume", "ls", "--filter", &name_filter],
        vec![
            "volume",
            "ls",
            "-q",
            "--filter",
            &name_filter,
            "--filter",
            "dangling=true",
        ],
        vec![
            "volume",
            "ls",
            "--filter",
            &name_filter,
            "--filter",
            "label=a=b",
            "--format",
            "{{.Name}} {{.Driver}} {{.Scope}} {{.Links}} {{.Size}} {{.Mountpoint}}",
        ],
        vec![
            "volume",
            "ls",
            "--filter",
            &name_filter,
            "--format",
            "table {{.Name}}\t{{.Driver}}",
        ],
    ] {
        let (a, b) = both(&args);
        assert_eq!(
            a.replace(&root, "ROOT"),
            b.replace(&docker_root, "ROOT"),
            "{args:?}"
        );
    }
    same_error(
        &s,
        &["volume", "ls", "--filter", "foo=bar"],
        &["volume", "ls", "--filter", "foo=bar"],
    );

    // volume prune (limited to this test's label on the shared daemon).
    let label = format!("label=strata-vt={p}");
    let lab_kv = format!("strata-vt={p}");
    for n in ["p1", "p2"] {
        both(&["volume", "create", "--label", &lab_kv, &v(n)]);
    }
    both(&[
        "run",
        "--rm",
        "-v",
        &format!("{}:/x", v("p1")),
        &base,
        "sh",
        "-c",
        "echo abc > /x/y",
    ]);
    let (a, b) = both(&["volume", "prune", "-f", "--filter", &label]);
    // Docker lists the deleted volumes in no particular order.
    let sorted = |t: &str| {
        let mut l: Vec<String> = t.lines().map(String::from).collect();
        l.sort();
        l
    };
    assert_eq!(sorted(&a), sorted(&b));
    assert!(a.starts_with("Deleted Volumes:\n"), "{a}");
    assert!(a.ends_with("\n\nTotal reclaimed space: 4B\n"), "{a}");
    let (a, b) = both(&["volume", "prune", "-f", "--filter", &label]);
    assert_eq!(
        (a.as_str(), b.as_str()),
        ("Total reclaimed space: 0B\n", "Total reclaimed space: 0B\n")
    );

    // system df counts the volumes (named, lab and shared, unused; shared holds "one",
    // "ping" and "pong": 14 bytes).
    let df = s.ok(&["system", "df"]);
    let line = df.lines().find(|l| l.starts_with("Local Volumes")).unwrap();
    let cols: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(cols[2..], ["3", "0", "14B", "14B", "(100%)"], "{df}");
    let dfv = s.ok(&["system", "df", "-v"]);
    assert!(dfv.contains("VOLUME NAME"), "{dfv}");
    assert!(
        dfv.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == [shared.as_str(), "0", "14B"]),
        "{dfv}"
    );

    // `volume` alone prints its usage.
    let (c1, o1, usage) = strata_cmd(&s, &["volume"]);
    let (c2, o2, dusage) = docker_cmd(&["volume"]);
    assert_eq!((c1, o1), (c2, o2));
    assert_eq!(usage.replace("strata", "docker"), dusage);
    drop(clean);
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn mount_flags_match_docker() {
    if !require_root() || !docker() {
        return;
    }
    let s = Strata::new();
    let p = unique("strata-vm");
    let base = format!("{p}-base:1");
    let mut clean = DockerCleanup {
        containers: vec![],
        volumes: vec![],
        images: vec![base.clone()],
    };
    let tar = busybox_tar();
    s.ok(&["import", tar.to_str().unwrap(), &base]);
    run_ok(DOCKER, &["import", tar.to_str().unwrap(), &base]);
    let hold = format!("{p}-hold");
    clean.containers.push(hold.clone());
    run_ok(
        DOCKER,
        &[
            "create",
            "--network",
            "none",
            "--name",
            &hold,
            &base,
            "true",
        ],
    );
    let cases: Vec<Vec<&str>> = vec![
        vec![
            "--mount",
            "type=volume,dst=/x",
            "--mount",
            "type=bind,src=/tmp,dst=/x",
        ],
        vec!["-v", "/tmp:/x", "--mount", "type=volume,dst=/x"],
        vec![
            "--mount",
            "type=volume,src=vv,dst=/x,bind-propagation=shared",
        ],
        vec!["--mount", "type=tmpfs,src=vv,dst=/x"],
        vec!["--mount", "type=bind,src=/tmp,dst=/x,volume-nocopy"],
        vec!["--mount", "type=volume,src=vv,dst=/x,tmpfs-size=1"],
        vec!["--mount", "type=tmpfs,dst=/x,volume-nocopy"],
        vec!["--mount", "type=volume,src=a/b,dst=/x"],
        vec!["--mount", "type=volume,src=v,dst=/x"],
        vec!["-v", "a/b:/x"],
        vec!["-v", "ab:/x:foo"],
        vec!["--volumes-from", "strata-no-such-container"],
    ];
    let volumes = || -> Vec<String> {
        run_ok(DOCKER, &["volume", "ls", "-q"])
            .lines()
            .map(str::to_string)
            .collect()
    };
    let before = volumes();
    for case in &cases {
        let mut ours = vec!["create"];
        ours.extend(case);
        ours.extend([base.as_str(), "true"]);
        let mut theirs = vec!["create", "--network", "none"];
        theirs.extend(case);
        theirs.extend([base.as_str(), "true"]);
        same_error(&s, &ours, &theirs);
    }
    // Docker 20.10 makes the anonymous volume of the first case before it refuses the
    // duplicate mount point, and keeps it. Such volumes (unnamed, in no container: `volume rm`
    // without -f leaves one that another test's container uses) go.
    for v in volumes() {
        if !before.contains(&v) && v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()) {
            let _ = run(DOCKER, &["volume", "rm", &v]);
        }
    }
    // A missing -v host directory is made at start, as Docker does (not at create).
    let dir = tempfile::tempdir().unwrap();
    for (who, sub) in [("strata", "a"), ("docker", "b")] {
        let missing = dir.path().join(sub).join("dir");
        let vol = format!("{}:/x", missing.display());
        let name = format!("{p}-{who}");
        clean.containers.push(name.clone());
        let args = ["create", "--name", &name, "-v", &vol, &base, "true"];
        if who == "strata" {
            s.ok(&args);
        } else {
            run_ok(
                DOCKER,
                &[
                    "create",
                    "--network",
                    "none",
                    "--name",
                    &name,
                    "-v",
                    &vol,
                    &base,
                    "true",
                ],
            );
        }
        assert!(!missing.exists(), "{who}: made at create");
        if who == "strata" {
            s.ok(&["start", "-a", &name]);
            s.ok(&["rm", &name]);
        } else {
            run_ok(DOCKER, &["start", "-a", &name]);
            run_ok(DOCKER, &["rm", &name]);
        }
        assert!(Path::new(&missing).is_dir(), "{who}: not made at start");
    }
    // --tmpfs is in HostConfig.Tmpfs, not in Mounts (a --mount of type tmpfs is). (Docker
    // cannot --volumes-from a container with a tmpfs --mount: its daemon looks the mount
    // up as a volume with no name, and the CLI then tries to pull the image.)
    let t = "{{json .Mounts}} {{json .HostConfig.Tmpfs}} {{json .HostConfig.Mounts}}";
    let tm = [
        "--tmpfs",
        "/t:size=1m",
        "--mount",
        "type=tmpfs,dst=/t2,tmpfs-size=1m,tmpfs-mode=700",
    ];
    let mut ours = vec!["create"];
    ours.extend(tm);
    ours.extend([base.as_str(), "true"]);
    let ours = s.ok(&ours);
    let mut theirs = vec!["create", "--network", "none"];
    theirs.extend(tm);
    theirs.extend([base.as_str(), "true"]);
    let theirs = run_ok(DOCKER, &theirs);
    clean.containers.push(theirs.trim().to_string());
    assert_eq!(
        s.ok(&["inspect", "-f", t, ours.trim()]),
        run_ok(DOCKER, &["inspect", "-f", t, theirs.trim()])
    );
    drop(clean);
}

/// A container cannot reach a volume's directory through a symlink it plants: the volume
/// is mounted from its own directory, and a link the container made inside it stays a link
/// inside the volume for every other container.
#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn symlinks_planted_in_a_volume_stay_inside_it() {
    if !require_root() {
        return;
    }
    let s = Strata::new();
    s.ok(&["import", busybox_tar().to_str().unwrap(), "busybox"]);
    // The first container replaces what it can with links to the host's /etc.
    s.ok(&[
        "run",
        "--rm",
        "-v",
        "evil:/v",
        "busybox",
        "sh",
        "-c",
        "ln -s /etc /v/etc; ln -s / /v/root",
    ]);
    // The next container sees the links as links resolved in its own root.
    let seen = s.ok(&[
        "run",
        "--rm",
        "-v",
        "evil:/v",
        "busybox",
        "sh",
        "-c",
        "readlink /v/etc; cat /v/etc/hostname >/dev/null && echo own",
    ]);
    assert_eq!(seen, "/etc\nown\n");
    // On the host, the volume's data holds links, and nothing outside it changed.
    let data = s.root.path().join("volumes/evil/_data");
    assert!(fs::symlink_metadata(data.join("etc"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(fs::symlink_metadata(&data).unwrap().is_dir());
    s.ok(&["volume", "rm", "evil"]);
    assert!(!s.root.path().join("volumes/evil").exists());
    assert!(Path::new("/etc/hostname").exists());
}

/// `cp` into and out of a container sees its volumes and binds, running or stopped, as
/// Docker's (which mounts them for the copy); `volume` and `network` events of its life (and
/// of each copy) are Docker's. A running container's `--tmpfs` is reached in its own mount namespace (Docker
/// 20.10 writes under the tmpfs, where the container cannot see the file: a difference kept
/// on purpose).
#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn cp_reaches_mounts_and_volume_events_match_docker() {
    if !require_root() || !docker() {
        return;
    }
    let s = Strata::new();
    let p = unique("strata-vcp");
    let base = format!("{p}-base:1");
    let vol = format!("{p}-vol");
    let mut clean = DockerCleanup {
        containers: vec![],
        volumes: vec![vol.clone()],
        images: vec![base.clone()],
    };
    let tar = busybox_tar();
    s.ok(&["import", tar.to_str().unwrap(), &base]);
    run_ok(DOCKER, &["import", tar.to_str().unwrap(), &base]);
    let host = tempfile::tempdir().unwrap();
    let file = host.path().join("f");
    fs::write(&file, "from the host\n").unwrap();
    let file = file.to_str().unwrap();
    let since = run_ok("date", &["+%s"]).trim().to_string();
    let mut ids = Vec::new();
    for who in ["strata", "docker"] {
        let bind = host.path().join(who);
        let name = format!("{p}-{who}");
        clean.containers.push(name.clone());
        let both = |args: &[&str]| -> (i32, String, String) {
            if who == "strata" {
                strata_cmd(&s, args)
            } else {
                docker_cmd(args)
            }
        };
        assert_eq!(both(&["volume", "create", &vol]).0, 0);
        let b = format!("{}:/bind", bind.display());
        let v = format!("{vol}:/vol");
        let (code, id, err) = both(&[
            "run",
            "-d",
            "--network",
            "none",
            "--name",
            &name,
            "-v",
            &v,
            "-v",
            &b,
            "-v",
            "/anon",
            "--tmpfs",
            "/tmpfs",
            &base,
            "sleep",
            "1000",
        ]);
        assert_eq!(code, 0, "{who}: {err}");
        ids.push(id.trim().to_string());
        for dst in ["/vol/f", "/bind/f"] {
            assert_eq!(
                both(&["cp", file, &format!("{name}:{dst}")]).0,
                0,
                "{who} {dst}"
            );
        }
        assert_eq!(
            both(&["exec", &name, "cat", "/vol/f", "/bind/f"]),
            (0, "from the host\nfrom the host\n".into(), String::new()),
            "{who}"
        );
        assert_eq!(
            fs::read_to_string(bind.join("f")).unwrap(),
            "from the host\n"
        );
        assert_eq!(
            both(&["exec", &name, "sh", "-c", "echo inside > /vol/g"]).0,
            0
        );
        let out = host.path().join(format!("{who}-g"));
        let out = out.to_str().unwrap();
        assert_eq!(both(&["cp", &format!("{name}:/vol/g"), out]).0, 0, "{who}");
        assert_eq!(fs::read_to_string(out).unwrap(), "inside\n");
        // Stopped: the volume is mounted for the copy.
        assert_eq!(both(&["stop", "-t", "0", &name]).0, 0);
        assert_eq!(both(&["cp", file, &format!("{name}:/vol/h")]).0, 0, "{who}");
        let out = host.path().join(format!("{who}-stopped"));
        let out = out.to_str().unwrap();
        assert_eq!(both(&["cp", &format!("{name}:/vol/g"), out]).0, 0, "{who}");
        assert_eq!(fs::read_to_string(out).unwrap(), "inside\n");
        let see = format!("{vol}:/v");
        assert_eq!(
            both(&[
                "run",
                "--rm",
                "--network",
                "none",
                "-v",
                &see,
                &base,
                "ls",
                "/v"
            ]),
            (0, "f\ng\nh\n".into(), String::new()),
            "{who}"
        );
        assert_eq!(both(&["rm", "-v", &name]).0, 0);
        assert_eq!(both(&["volume", "rm", &vol]).0, 0);
    }
    // The volume and network events of both, IDs and times aside (Docker's `none` network
    // and strata's have different IDs, as have the anonymous volumes).
    // Up to the next second: `--until` takes whole seconds.
    let until = run_ok("date", &["-d", "+1 sec", "+%s"]).trim().to_string();
    let events = |who: &str, kind: &str, id: &str| -> Vec<String> {
        let args = [
            "events",
            "--since",
            &since,
            "--until",
            &until,
            "--filter",
            &format!("type={kind}"),
            "--format",
            "{{.Type}} {{.Action}} {{.Actor.ID}} {{json .Actor.Attributes}}",
        ];
        let (_, text, _) = if who == "strata" {
            strata_cmd(&s, &args)
        } else {
            docker_cmd(&args)
        };
        let anon = regex_lite_64(&text);
        text.lines()
            .filter(|l| l.contains(id) || l.contains(&vol))
            .map(|l| {
                let mut l = l.replace(id, "CONTAINER");
                for a in &anon {
                    l = l.replace(a.as_str(), "ANON");
                }
                l
            })
            .collect()
    };
    // Docker mounts the volumes for every `cp` too; it unmounts them in no fixed order.
    for kind in ["volume", "network"] {
        let mut ours = events("strata", kind, &ids[0]);
        let mut theirs = events("docker", kind, &ids[1]);
        ours.sort();
        theirs.sort();
        assert_eq!(ours, theirs, "{kind}");
        assert!(!ours.is_empty(), "{kind}");
    }
    // The container's own tmpfs (see above).
    let t = format!("{p}-tmpfs");
    s.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        &t,
        "--tmpfs",
        "/tmpfs",
        &base,
        "sleep",
        "1000",
    ]);
    let copied = strata_cmd(&s, &["cp", file, &format!("{t}:/tmpfs/f")]);
    let seen = strata_cmd(&s, &["exec", &t, "cat", "/tmpfs/f"]);
    s.ok(&["rm", "-f", &t]);
    assert_eq!(copied.0, 0, "{copied:?}");
    assert_eq!(seen.1, "from the host\n");
    assert!(events("strata", "volume", &ids[0])
        .contains(&format!("volume mount {vol} {{\"container\":\"CONTAINER\",\"destination\":\"/vol\",\"driver\":\"local\",\"propagation\":\"\",\"read/write\":\"true\"}}")));
    drop(clean);
}

/// Every 64-hex-digit word of a text (IDs and anonymous volume names).
fn regex_lite_64(text: &str) -> Vec<String> {
    let mut out: Vec<String> = text
        .split(|c: char| !c.is_ascii_hexdigit())
        .filter(|w| w.len() == 64)
        .map(str::to_string)
        .collect();
    out.sort();
    out.dedup();
    out
}
