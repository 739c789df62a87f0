//! A simple throughput bench (no harness): writes a directory as a layer in each
//! compression and applies it back, printing MB/s and entries/s. The directory is
//! `$LAYER_BENCH_DIR` when set (e.g. /usr/share), otherwise a generated tree of 20 000 small
//! files and a few large ones. Run with `cargo bench -p strata-layer`. Nothing is deleted
//! between runs: ext4 allocates inodes slowly right after mass deletion, which would skew
//! the later runs.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use layer::{apply_layer, write_tree, Compression};

fn generated(root: &Path) {
    for d in 0..200 {
        let dir = root.join(format!("dir{d:03}"));
        fs::create_dir_all(&dir).unwrap();
        for f in 0..100 {
            fs::write(
                dir.join(format!("file{f:03}")),
                format!("{d}-{f}-").repeat(50),
            )
            .unwrap();
        }
    }
    // Incompressible: xorshift64.
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let big: Vec<u8> = (0..64u32 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    fs::write(root.join("big.bin"), &big).unwrap();
    fs::write(root.join("zeros.bin"), vec![0u8; 64 << 20]).unwrap();
}

fn main() {
    let tmp = tempfile::tempdir().unwrap();
    let src: PathBuf = match std::env::var_os("LAYER_BENCH_DIR") {
        Some(d) => d.into(),
        None => {
            let s = tmp.path().join("src");
            generated(&s);
            s
        }
    };
    for c in [Compression::None, Compression::Gzip, Compression::Zstd] {
        let t = Instant::now();
        let mut blob = Vec::new();
        let d = write_tree(&src, &mut blob, c).unwrap();
        let w = t.elapsed().as_secs_f64();
        let dst = tmp.path().join(format!("dst-{c:?}"));
        fs::create_dir(&dst).unwrap();
        let t = Instant::now();
        let r = apply_layer(&blob[..], &dst).unwrap();
        let a = t.elapsed().as_secs_f64();
        let mb = d.uncompressed_size as f64 / 1e6;
        println!(
            "{c:?}: {mb:.0} MB tar -> {:.0} MB blob; write {w:.2}s ({:.0} MB/s), apply {a:.2}s ({:.0} MB/s, {:.0} entries/s)",
            d.size as f64 / 1e6,
            mb / w,
            mb / a,
            r.entries as f64 / a
        );
    }
}
