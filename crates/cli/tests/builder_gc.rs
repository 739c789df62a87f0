//! The build cache's garbage collection (issue 17): `builder prune --keep-storage SIZE` and
//! `--filter until=DURATION` remove the oldest-used records first (intermediate images no
//! tagged image stands on, `RUN --mount=type=cache` directories) and never the layers of an
//! image still named; the automatic policy of the configuration file (`builder.gc`) does the
//! same after a build once the cache holds more than it keeps.

mod common;

use std::fs;
use std::path::PathBuf;

use common::{busybox_tar, require_root, Strata};

/// A Dockerfile whose one RUN step adds `kib` KiB of random bytes at `/data` (a layer of its
/// own, not shared with any other build).
fn dockerfile(kib: usize) -> String {
    format!(
        "FROM base:1\nRUN head -c {} /dev/urandom > /data\n",
        kib * 1024
    )
}

struct Builds {
    s: Strata,
    ctx: tempfile::TempDir,
    config: Option<PathBuf>,
}

impl Builds {
    fn new(config: Option<&str>) -> Builds {
        let s = Strata::new();
        s.ok(&["import", busybox_tar().to_str().unwrap(), "base:1"]);
        let ctx = tempfile::tempdir().unwrap();
        let config = config.map(|c| {
            let p = ctx.path().join("daemon.json");
            fs::write(&p, c).unwrap();
            p
        });
        Builds { s, ctx, config }
    }

    fn cmd(&self) -> assert_cmd::Command {
        let mut c = self.s.cmd();
        if let Some(p) = &self.config {
            c.env("STRATA_CONFIG", p);
        }
        c
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.cmd().args(args).output().unwrap();
        assert!(
            out.status.success(),
            "strata {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Builds `dockerfile` as `tag` (moving the tag off the previous build, whose image
    /// becomes build cache); returns the image's ID and the build's stderr.
    fn build(&self, dockerfile: &str, tag: &str) -> (String, String) {
        self.build_with(&[], dockerfile, tag)
    }

    fn build_with(&self, extra: &[&str], dockerfile: &str, tag: &str) -> (String, String) {
        let dir = self.ctx.path().join("ctx");
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir(&dir).unwrap();
        fs::write(dir.join("Dockerfile"), dockerfile).unwrap();
        let out = self
            .cmd()
            .args(["build", "-q", "--network", "none"])
            .args(extra)
            .args(["-t", tag, dir.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "build: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        (
            String::from_utf8(out.stdout).unwrap().trim().to_string(),
            String::from_utf8(out.stderr).unwrap(),
        )
    }

    fn exists(&self, id: &str) -> bool {
        self.cmd()
            .args(["image", "inspect", "-f", "{{.Id}}", id])
            .output()
            .unwrap()
            .status
            .success()
    }
}

fn hex(id: &str) -> &str {
    id.trim_start_matches("sha256:")
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn keep_storage_and_until_remove_the_oldest_cache_first_and_never_a_named_images_layers() {
    if !require_root() {
        return;
    }
    let b = Builds::new(None);
    let (a, _) = b.build(&dockerfile(300), "app:1");
    let (bb, _) = b.build(&dockerfile(301), "app:1");
    let (c, _) = b.build(&dockerfile(302), "app:1");
    // The images of the first two builds are cache now (their tag moved); the third is named.
    assert!(b.exists(&a) && b.exists(&bb) && b.exists(&c));

    // Nothing was used before an hour ago.
    assert_eq!(
        b.ok(&["builder", "prune", "-f", "--filter", "until=1h"]),
        "Total reclaimed space: 0B\n"
    );
    // 600 KiB of cache, 400 KiB kept: the oldest record goes, the next is kept.
    let out = b.ok(&["builder", "prune", "-f", "--keep-storage", "400k"]);
    assert_eq!(
        out,
        format!(
            "Deleted build cache objects:\n{}\n\nTotal reclaimed space: 307.2kB\n",
            hex(&a)
        )
    );
    assert!(!b.exists(&a) && b.exists(&bb) && b.exists(&c));
    // Kept under the policy already: nothing more.
    assert_eq!(
        b.ok(&["builder", "prune", "-f", "--keep-storage", "400k"]),
        "Total reclaimed space: 0B\n"
    );
    // Everything that is cache; the named image and its base keep every layer.
    let out = b.ok(&["builder", "prune", "-f"]);
    assert_eq!(
        out,
        format!(
            "Deleted build cache objects:\n{}\n\nTotal reclaimed space: 308.2kB\n",
            hex(&bb)
        )
    );
    assert!(!b.exists(&bb) && b.exists(&c));
    assert_eq!(
        b.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "app:1",
            "wc",
            "-c",
            "/data"
        ]),
        format!("{} /data\n", 302 * 1024)
    );
    // The cache of an unchanged rebuild is still there.
    let (again, _) = b.build(&dockerfile(302), "app:1");
    assert_eq!(again, c);

    let (code, err) =
        b.s.fails(&["builder", "prune", "-f", "--filter", "label=x"]);
    assert_eq!(code, 1);
    assert!(err.contains("invalid filter 'label'"), "{err}");
    let (_, err) =
        b.s.fails(&["builder", "prune", "-f", "--keep-storage", "lots"]);
    assert!(err.contains("--keep-storage"), "{err}");
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn cache_mount_directories_are_records_by_their_last_use() {
    if !require_root() {
        return;
    }
    let b = Builds::new(None);
    let df = "FROM base:1\nRUN --mount=type=cache,target=/cache,id=big \
              head -c 204800 /dev/urandom > /cache/f && echo done > /done\n";
    let (first, _) = b.build(df, "mounted:1");
    let (old, _) = b.build(&dockerfile(100), "other:1");
    b.build(&dockerfile(101), "other:1");
    // The cache directory was used before the old image was made: it goes first.
    let out = b.ok(&["builder", "prune", "-f", "--keep-storage", "120k"]);
    assert!(
        out.starts_with("Deleted build cache objects:\nbig-"),
        "{out}"
    );
    assert!(b.exists(&old), "{out}");
    assert!(
        out.ends_with("\n\nTotal reclaimed space: 204.8kB\n"),
        "{out}"
    );
    // Used again (a rebuild with --no-cache mounts it), it is the newest record; the
    // first image of mounted:1 (its tag moved) the oldest.
    b.build_with(&["--no-cache"], df, "mounted:1");
    let out = b.ok(&["builder", "prune", "-f", "--keep-storage", "1k"]);
    let ids: Vec<&str> = out.lines().skip(1).take_while(|l| !l.is_empty()).collect();
    assert_eq!(ids.len(), 3, "{out}");
    assert_eq!(ids[0], hex(&first), "{out}");
    assert_eq!(ids[1], hex(&old), "{out}");
    assert!(ids[2].starts_with("big-"), "{out}");
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn the_configured_policy_runs_after_builds_once_the_cache_exceeds_it() {
    if !require_root() {
        return;
    }
    let b = Builds::new(Some(
        r#"{"builder": {"gc": {"enabled": true, "defaultKeepStorage": "400KB"}}}"#,
    ));
    let (a, err) = b.build(&dockerfile(300), "app:1");
    assert!(!err.contains("build cache"), "{err}");
    let (bb, err) = b.build(&dockerfile(301), "app:1");
    // 300 KiB of cache: under the policy.
    assert!(!err.contains("build cache"), "{err}");
    assert!(b.exists(&a));
    let (c, err) = b.build(&dockerfile(302), "app:1");
    assert!(
        err.contains("strata: build cache over 409.6kB: removed 1 unused records (307.2kB)"),
        "{err}"
    );
    assert!(!b.exists(&a) && b.exists(&bb) && b.exists(&c));
    // An unchanged rebuild changes nothing.
    let (again, err) = b.build(&dockerfile(302), "app:1");
    assert_eq!(again, c);
    assert!(!err.contains("build cache"), "{err}");
    assert!(b.exists(&bb));

    // Disabled: the cache grows.
    let off = Builds::new(Some(
        r#"{"builder": {"gc": {"enabled": false, "defaultKeepStorage": "1KB"}}}"#,
    ));
    let (a, _) = off.build(&dockerfile(10), "app:1");
    off.build(&dockerfile(11), "app:1");
    off.build(&dockerfile(12), "app:1");
    assert!(off.exists(&a));
    // A configuration that is not one is said.
    let bad = Builds::new(None);
    let cfg = bad.ctx.path().join("bad.json");
    fs::write(
        &cfg,
        r#"{"builder": {"gc": {"defaultKeepStorage": "much"}}}"#,
    )
    .unwrap();
    let out = bad
        .s
        .cmd()
        .env("STRATA_CONFIG", &cfg)
        .args(["images"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("builder.gc.defaultKeepStorage"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
