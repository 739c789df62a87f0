//! Container start latency: strata's runtime against `runc run` on the same busybox root
//! filesystem, running `true`; prints the median of each from one run. Needs root and runc.
//! `cargo bench -p strata-runtime --bench start [-- N]`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use runtime::{ImageConfig, Network, RunOptions, SpawnOptions, Stdio};
use snapshot::{OverlaySnapshotter, Snapshotter};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn busybox_layer(dir: &Path) -> PathBuf {
    let tar = dir.join("bb.tar");
    let tool = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/busybox/make-rootfs");
    assert!(Command::new("sh")
        .arg(&tool)
        .arg(&tar)
        .status()
        .unwrap()
        .success());
    let layer = dir.join("layer");
    fs::create_dir(&layer).unwrap();
    assert!(Command::new("tar")
        .arg("-xf")
        .arg(&tar)
        .arg("-C")
        .arg(&layer)
        .status()
        .unwrap()
        .success());
    layer
}

fn main() {
    // SAFETY: trivial syscall.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipping: the start bench needs root");
        return;
    }
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(30);
    let t = tempfile::tempdir().unwrap();
    let base = busybox_layer(t.path());
    let init = t.path().join("init");
    runtime::make_init_layer(&init).unwrap();
    let lowers = vec![init, base];
    let snaps = OverlaySnapshotter::new(&t.path().join("snaps")).unwrap();
    let image = ImageConfig {
        cmd: Some(vec!["true".into()]),
        ..Default::default()
    };
    let opts = RunOptions {
        id: "bench0123456789".into(),
        network: Network::None,
        ..Default::default()
    };
    let spec = runtime::compose(&image, &opts).unwrap();
    let state = t.path().join("state");
    runtime::write_etc_files(&state, &spec).unwrap();

    // Full strata path: prepare, mount, run, unmount, remove.
    let mut full = Vec::new();
    let mut spawn_only = Vec::new();
    for i in 0..n {
        let start = Instant::now();
        let key = format!("c{i}");
        let rootfs = t.path().join(format!("rootfs{i}"));
        fs::create_dir(&rootfs).unwrap();
        snapshot::mount_all(&snaps.prepare(&key, &lowers).unwrap(), &rootfs).unwrap();
        let s = Instant::now();
        let code = runtime::spawn(
            &rootfs,
            &spec,
            SpawnOptions {
                state_dir: Some(state.clone()),
                stdin: Stdio::Null,
                ..Default::default()
            },
        )
        .unwrap()
        .wait()
        .unwrap();
        spawn_only.push(s.elapsed());
        assert_eq!(code, 0);
        snapshot::unmount_all(&rootfs).unwrap();
        snaps.remove(&key).unwrap();
        fs::remove_dir(&rootfs).unwrap();
        full.push(start.elapsed());
    }

    // runc on one prepared overlay of the same layers.
    let rootfs = t.path().join("runc-rootfs");
    fs::create_dir(&rootfs).unwrap();
    snapshot::mount_all(&snaps.prepare("runc", &lowers).unwrap(), &rootfs).unwrap();
    let bundle = t.path().join("bundle");
    fs::create_dir(&bundle).unwrap();
    let runc_ok = Command::new("runc")
        .arg("spec")
        .current_dir(&bundle)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    let mut runc = Vec::new();
    if runc_ok {
        let cfg_path = bundle.join("config.json");
        let mut cfg: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(&cfg_path).unwrap()).unwrap();
        cfg["root"]["path"] = rootfs.display().to_string().into();
        cfg["root"]["readonly"] = false.into();
        cfg["process"]["terminal"] = false.into();
        cfg["process"]["args"] = serde_json::json!(["true"]);
        fs::write(&cfg_path, serde_json::to_string(&cfg).unwrap()).unwrap();
        for i in 0..n {
            let s = Instant::now();
            let st = Command::new("runc")
                .args(["run", "--bundle"])
                .arg(&bundle)
                .arg(format!("strata-bench-{}-{i}", std::process::id()))
                .stdin(std::process::Stdio::null())
                .status()
                .unwrap();
            runc.push(s.elapsed());
            assert!(st.success());
        }
    }
    snapshot::unmount_all(&rootfs).unwrap();

    println!("container start, running `true`, median of {n}:");
    println!(
        "  strata spawn+wait:                     {:>8.2?}",
        median(spawn_only)
    );
    println!(
        "  strata prepare+mount+run+unmount+rm:   {:>8.2?}",
        median(full)
    );
    if runc.is_empty() {
        println!("  runc run:                              (runc not available)");
    } else {
        println!(
            "  runc run (rootfs already mounted):     {:>8.2?}",
            median(runc)
        );
    }
}
