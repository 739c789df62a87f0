//! Throughput of [`layer::compress_reader`] (no harness): 500 MB of `/dev/urandom` and 500 MB
//! of compressible data (the first 500 MB of a tar of `/usr/share` and `/usr/lib`: text,
//! binaries, libraries, as layers hold), in gzip at several levels and zstd, on every core;
//! plus flate2's serial gzip at level 6 (what Docker's level is) for reference.
//! `cargo bench -p strata-layer --bench compress [-- MB [LEVEL...]]`.

use std::io::{self, Read};
use std::time::Instant;

use layer::{compress_reader, CompressOptions, Compression};

fn random(len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut v)
        .unwrap();
    v
}

fn compressible(len: usize) -> Vec<u8> {
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "tar cf - --ignore-failed-read /usr/share /usr/lib 2>/dev/null | head -c {len}"
        ))
        .output()
        .unwrap();
    out.stdout
}

fn run(name: &str, data: &[u8], opts: &CompressOptions) {
    let t = Instant::now();
    let mut r = compress_reader(io::Cursor::new(data.to_vec()), opts).unwrap();
    let n = io::copy(&mut r, &mut io::sink()).unwrap();
    let s = t.elapsed().as_secs_f64();
    println!(
        "{name:<14} {:<5} level {:>2}: {:7.1} MB/s, {:5.1}% of the input",
        opts.compression.name(),
        opts.level().unwrap(),
        data.len() as f64 / 1e6 / s,
        n as f64 * 100.0 / data.len() as f64
    );
}

fn serial_gzip6(name: &str, data: &[u8]) {
    let t = Instant::now();
    let mut e = flate2::read::GzEncoder::new(data, flate2::Compression::new(6));
    let n = io::copy(&mut e, &mut io::sink()).unwrap();
    let s = t.elapsed().as_secs_f64();
    println!(
        "{name:<14} serial gzip level  6: {:7.1} MB/s, {:5.1}% of the input",
        data.len() as f64 / 1e6 / s,
        n as f64 * 100.0 / data.len() as f64
    );
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let mb: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(500);
    let levels: Vec<i32> = match args.get(1..) {
        Some(l) if !l.is_empty() => l.iter().map(|l| l.parse().unwrap()).collect(),
        _ => vec![0, 1, 2, 3, 4, 6],
    };
    for (name, data) in [
        ("random", random(mb * 1_000_000)),
        ("compressible", compressible(mb * 1_000_000)),
    ] {
        for &level in &levels {
            run(
                name,
                &data,
                &CompressOptions::new(Compression::Gzip, Some(level)).unwrap(),
            );
        }
        for level in [1, 3] {
            run(
                name,
                &data,
                &CompressOptions::new(Compression::Zstd, Some(level)).unwrap(),
            );
        }
        serial_gzip6(name, &data);
    }
}
