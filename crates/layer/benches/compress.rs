//! Throughput of [`layer::compress_reader`] (no harness): 500 MB of `/dev/urandom` and 500 MB
//! of compressible data (the first 500 MB of a tar of `/usr/share` and `/usr/lib`: text,
//! binaries, libraries, as layers hold), in gzip at several levels and zstd, on every core;
//! plus flate2's serial gzip at level 6 (what Docker's level is) for reference. Each figure is
//! the best of three runs; CPU seconds per GB are less disturbed by other work on the machine
//! than the wall-clock rate.
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

/// CPU seconds this process used so far (user and system, from /proc/self/stat).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}

/// The best of three runs (the machine is shared): wall MB/s, CPU seconds per GB, and the
/// output size.
fn measure(
    data: &[u8],
    mut make: impl FnMut(io::Cursor<Vec<u8>>) -> Box<dyn Read>,
) -> (f64, f64, u64) {
    let mut best = (0.0f64, f64::MAX, 0u64);
    for _ in 0..3 {
        let input = io::Cursor::new(data.to_vec());
        let (t, c) = (Instant::now(), cpu_seconds());
        let n = io::copy(&mut make(input), &mut io::sink()).unwrap();
        let (wall, cpu) = (t.elapsed().as_secs_f64(), cpu_seconds() - c);
        best = (
            best.0.max(data.len() as f64 / 1e6 / wall),
            best.1.min(cpu / (data.len() as f64 / 1e9)),
            n,
        );
    }
    best
}

fn report(name: &str, what: &str, data: &[u8], (mbs, cpu, n): (f64, f64, u64)) {
    println!(
        "{name:<13} {what:<22} {mbs:7.1} MB/s, {cpu:5.2} CPU s/GB, {:5.1}% of the input",
        n as f64 * 100.0 / data.len() as f64
    );
}

fn run(name: &str, data: &[u8], opts: &CompressOptions) {
    let what = format!(
        "{} level {}",
        opts.compression.name(),
        opts.level().unwrap()
    );
    let m = measure(data, |input| compress_reader(input, opts).unwrap());
    report(name, &what, data, m);
}

fn serial_gzip6(name: &str, data: &[u8]) {
    let m = measure(data, |input| {
        Box::new(flate2::read::GzEncoder::new(
            input,
            flate2::Compression::new(6),
        ))
    });
    report(name, "serial gzip level 6", data, m);
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
