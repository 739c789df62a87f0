//! RUN --mount (cache, tmpfs, secret, bind) and heredoc COPY: the mounts work, cache
//! directories persist between builds, and neither mount points nor secrets reach a layer
//! or the history.

mod common;

use std::fs;
use std::io::Read;

use common::*;

/// Every entry name in every layer of a saved image.
fn layer_entries(archive: &std::path::Path) -> Vec<String> {
    let mut names = Vec::new();
    let mut outer = tar::Archive::new(fs::File::open(archive).unwrap());
    for e in outer.entries().unwrap() {
        let mut e = e.unwrap();
        let p = e.path().unwrap().display().to_string();
        if !p.starts_with("blobs/sha256/") {
            continue;
        }
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        if data.len() < 512 || &data[257..262] != b"ustar" {
            continue;
        }
        let mut inner = tar::Archive::new(&data[..]);
        for x in inner.entries().unwrap() {
            let x = x.unwrap();
            names.push(x.path().unwrap().display().to_string());
            let mut content = String::new();
            let _ = { x }.read_to_string(&mut content);
            assert!(
                !content.contains("s3cr3t-value"),
                "a secret reached a layer"
            );
        }
    }
    names
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn run_mounts_and_heredoc_copy() {
    if !require_root() {
        return;
    }
    let s = Strata::new();
    s.ok(&["import", busybox_tar().to_str().unwrap(), "bb:1"]);
    let ctx = tempfile::tempdir().unwrap();
    fs::write(ctx.path().join("input.txt"), "data\n").unwrap();
    let secret = ctx.path().join("secret.txt");
    fs::write(&secret, "s3cr3t-value").unwrap();
    fs::write(
        ctx.path().join("Dockerfile"),
        "FROM bb:1\n\
         RUN --mount=type=cache,target=/var/cache/thing sh -c 'echo run >> /var/cache/thing/log; wc -l < /var/cache/thing/log > /count'\n\
         RUN --mount=type=tmpfs,target=/scratch sh -c 'echo x > /scratch/x && ls /scratch > /tmpfs-saw'\n\
         RUN --mount=type=secret,id=tok sh -c 'wc -c < /run/secrets/tok > /secret-len'\n\
         RUN --mount=type=bind,source=input.txt,target=/in.txt cp /in.txt /copied.txt\n\
         COPY <<EOF /greeting.txt\nhello from a heredoc\nEOF\n\
         RUN cat /greeting.txt /count /tmpfs-saw /secret-len /copied.txt\n",
    )
    .unwrap();
    let secret_flag = format!("id=tok,src={}", secret.display());
    let c = ctx.path().to_str().unwrap();
    let out = s.ok(&["build", "--secret", &secret_flag, "-t", "mounts:1", c]);
    assert!(
        out.contains("hello from a heredoc\n1\nx\n12\ndata\n"),
        "{out}"
    );
    // The cache directory outlives the build; a --no-cache rebuild sees the first run's line.
    let out = s.ok(&[
        "build",
        "--no-cache",
        "--secret",
        &secret_flag,
        "-t",
        "mounts:1",
        c,
    ]);
    assert!(
        out.contains("hello from a heredoc\n2\nx\n12\ndata\n"),
        "{out}"
    );

    let saved = ctx.path().join("img.tar");
    s.ok(&["save", "-o", saved.to_str().unwrap(), "mounts:1"]);
    let names = layer_entries(&saved);
    for absent in [
        "var/",
        "var/cache/",
        "scratch/",
        "run/",
        "run/secrets/",
        "in.txt",
    ] {
        assert!(
            !names.iter().any(|n| n == absent),
            "{absent} leaked into a layer: {names:?}"
        );
    }
    for present in [
        "count",
        "tmpfs-saw",
        "secret-len",
        "copied.txt",
        "greeting.txt",
    ] {
        assert!(
            names.iter().any(|n| n == present),
            "{present} missing: {names:?}"
        );
    }
    let history = s.ok(&["history", "--no-trunc", "mounts:1"]);
    assert!(!history.contains("s3cr3t-value"));
    assert!(
        history.contains("--mount=type=secret,id=tok /bin/sh -c"),
        "{history}"
    );

    // The cache directory is the build cache `system df` counts and `builder prune` removes.
    let df = s.ok(&["system", "df"]);
    assert!(
        df.lines()
            .any(|l| l.starts_with("Build Cache") && l.split_whitespace().nth(2) == Some("1")),
        "{df}"
    );
    // Docker's words: the records removed (the cache directory), then the total.
    let pruned = s.ok(&["builder", "prune", "-f"]);
    assert!(
        pruned.starts_with("Deleted build cache objects:\n")
            && pruned.contains("\n\nTotal reclaimed space: "),
        "{pruned}"
    );
    let df = s.ok(&["system", "df"]);
    assert!(
        df.lines()
            .any(|l| l.starts_with("Build Cache") && l.split_whitespace().nth(2) == Some("0")),
        "{df}"
    );

    // A secret that was not given is simply absent, as BuildKit does unless `required`.
    // (The step's standard error is part of the build output, as Docker prints it.)
    let o = s
        .cmd()
        .args(["build", "--no-cache", "-t", "mounts:2", c])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("/run/secrets/tok: no such file"), "{out}");
    let df = fs::read_to_string(ctx.path().join("Dockerfile"))
        .unwrap()
        .replace("id=tok", "id=tok,required");
    fs::write(ctx.path().join("Dockerfile"), df).unwrap();
    let (code, err) = s.fails(&["build", "-t", "mounts:2", c]);
    assert_eq!(code, 1);
    assert!(err.contains("secret tok not found"), "{err}");
}

/// `RUN --mount=type=ssh` binds the agent socket given with `--ssh` at BuildKit's path (or the
/// target), points `SSH_AUTH_SOCK` at it for that step only, and leaves no trace in the layer
/// or the config; a required one that was not given fails the build with its id.
#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn ssh_agent_sockets_reach_run_steps_only() {
    if !require_root() {
        return;
    }
    let s = Strata::new();
    s.ok(&["import", busybox_tar().to_str().unwrap(), "bb:1"]);
    let ctx = tempfile::tempdir().unwrap();
    let sock = ctx.path().join("agent.sock");
    let _agent = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    fs::write(
        ctx.path().join("Dockerfile"),
        "FROM bb:1\n\
         RUN --mount=type=ssh test -S \"$SSH_AUTH_SOCK\" && echo \"ssh:$SSH_AUTH_SOCK\"\n\
         RUN --mount=type=ssh,id=deploy,target=/keys/agent,required=true test -S /keys/agent && echo deploy-ok\n\
         RUN test ! -e /run/buildkit && test ! -e /keys && echo \"clean:${SSH_AUTH_SOCK:-unset}\"\n",
    )
    .unwrap();
    let c = ctx.path().to_str().unwrap();
    let default = format!("default={}", sock.display());
    let deploy = format!("deploy={}", sock.display());
    let out = s.ok(&[
        "build", "--ssh", &default, "--ssh", &deploy, "-t", "ssh:1", c,
    ]);
    assert!(out.contains("ssh:/run/buildkit/ssh_agent.0\n"), "{out}");
    assert!(out.contains("deploy-ok\n"), "{out}");
    assert!(out.contains("clean:unset\n"), "{out}");
    let env = s.ok(&["inspect", "-f", "{{json .Config.Env}}", "ssh:1"]);
    assert!(!env.contains("SSH_AUTH_SOCK"), "{env}");

    // A required socket that was not given: the step fails, naming it.
    let (code, err) = s.fails(&["build", "--no-cache", "--ssh", &default, c]);
    assert_eq!(code, 1);
    assert!(err.contains("no SSH key \"deploy\" forwarded"), "{err}");
    // A key file is not a socket.
    let key = ctx.path().join("id_ed25519");
    fs::write(&key, "not a socket").unwrap();
    let (_, err) = s.fails(&["build", "--ssh", &format!("default={}", key.display()), c]);
    assert!(err.contains("is not an agent socket"), "{err}");
}
