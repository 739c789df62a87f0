//! The fuzz targets on stable, for a bounded time: each runs its seeds (the files under
//! `corpus/TARGET/`, one input per line for the line-oriented ones, plus tars and archives
//! made here), then random mutations of them (bit flips, byte changes, insertions,
//! deletions, truncations, duplicated and spliced chunks) until `STRATA_FUZZ_SECS` (default
//! 4) seconds per target are spent. Not coverage-guided (that is `fuzz/`, with cargo-fuzz on
//! nightly), but any panic fails the test, printing the seed of the run and saving the input
//! under `target/fuzz-failures/` to replay.

use std::io::Write;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// xorshift64*: reproducible from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

fn mutate(rng: &mut Rng, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let len = v.len();
        match rng.below(8) {
            0 if len > 0 => {
                let i = rng.below(len);
                v[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                v[i] = [0, 0xff, b'\n', b'$', b'{', b'}', b'/', b'"', b'\\', b'\0'][rng.below(10)];
            }
            2 => {
                let i = rng.below(len + 1);
                let b = rng.next() as u8;
                v.insert(i, b);
            }
            3 if len > 0 => {
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(16));
                v.drain(i..i + n);
            }
            4 if len > 0 => v.truncate(rng.below(len)),
            5 if len > 0 => {
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(64));
                let chunk = v[i..i + n].to_vec();
                let at = rng.below(v.len() + 1);
                v.splice(at..at, chunk);
            }
            6 if !other.is_empty() => {
                let i = rng.below(other.len());
                let n = 1 + rng.below((other.len() - i).min(128));
                let at = rng.below(len + 1);
                v.splice(at..at, other[i..i + n].iter().copied());
            }
            _ if len >= 8 => {
                // A number somewhere: a size, a mode, a count.
                let i = rng.below(len - 7);
                let n = [0u64, 1, u64::MAX, 1 << 40, 0o7777_7777_7777][rng.below(5)];
                v[i..i + 8].copy_from_slice(&n.to_le_bytes());
            }
            _ => v.push(rng.next() as u8),
        }
    }
    v
}

fn corpus_dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target)
}

/// The seeds of a target: its corpus files (line-oriented targets: one per line) and, for
/// the tar readers, tars made here.
fn seeds(target: &str) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(corpus_dir(target)) {
        let mut files: Vec<_> = rd.flatten().map(|e| e.path()).collect();
        files.sort();
        for f in files {
            let data = std::fs::read(&f).unwrap();
            if matches!(target, "reference" | "template") {
                out.extend(data.split(|b| *b == b'\n').map(|l| l.to_vec()));
            } else {
                out.push(data);
            }
        }
    }
    match target {
        "layer_tar" => out.push(layer()),
        "archive" => out.push(archive()),
        _ => {}
    }
    out.retain(|s| !s.is_empty());
    out
}

/// A layer with a file, a directory, a symlink, a hard link and a whiteout.
fn layer() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_mode(0o755);
    h.set_size(0);
    b.append_data(&mut h, "etc/", &[][..]).unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o644);
    h.set_size(6);
    b.append_data(&mut h, "etc/hosts", &b"hello\n"[..]).unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    b.append_link(&mut h, "etc/link", "../../outside").unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Link);
    h.set_size(0);
    b.append_link(&mut h, "etc/hard", "etc/hosts").unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_size(0);
    b.append_data(&mut h, "etc/.wh.gone", &[][..]).unwrap();
    b.into_inner().unwrap()
}

/// A `docker save` archive of one image with the layer above.
fn archive() -> Vec<u8> {
    use sha2_free::hex_sha256;
    let layer = layer();
    let diff = hex_sha256(&layer);
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","config":{{"Env":["A=b"]}},"rootfs":{{"type":"layers","diff_ids":["sha256:{diff}"]}},"history":[{{"created_by":"x"}}]}}"#
    );
    let cid = hex_sha256(config.as_bytes());
    let manifest =
        format!(r#"[{{"Config":"{cid}.json","RepoTags":["fz:1"],"Layers":["{diff}/layer.tar"]}}]"#);
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in [
        (format!("{cid}.json"), config.into_bytes()),
        (format!("{diff}/layer.tar"), layer),
        ("manifest.json".to_string(), manifest.into_bytes()),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        b.append_data(&mut h, &name, &data[..]).unwrap();
    }
    b.into_inner().unwrap()
}

/// sha256 without another dependency: the `sha256sum` tool.
mod sha2_free {
    pub fn hex_sha256(data: &[u8]) -> String {
        use std::io::Write;
        use std::process::{Command, Stdio};
        let mut c = Command::new("sha256sum")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("sha256sum");
        c.stdin.take().unwrap().write_all(data).unwrap();
        let out = c.wait_with_output().unwrap();
        String::from_utf8_lossy(&out.stdout)[..64].to_string()
    }
}

#[test]
fn every_target_survives_its_seeds_and_their_mutations() {
    let secs: f64 = std::env::var("STRATA_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4.0);
    let seed: u64 = std::env::var("STRATA_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("fuzz: seed {seed} (STRATA_FUZZ_SEED={seed} replays), {secs} s per target");
    // A panic is reported by the test, not printed by the default hook for every input.
    std::panic::set_hook(Box::new(|_| {}));
    let mut failures = Vec::new();
    for (name, target) in fuzz_targets::TARGETS {
        let seeds = seeds(name);
        assert!(!seeds.is_empty(), "no seeds for {name}");
        let mut rng = Rng(seed ^ name.len() as u64 ^ 0x9e37_79b9_7f4a_7c15);
        let deadline = Instant::now() + Duration::from_secs_f64(secs);
        let mut runs = 0u64;
        let mut inputs: Vec<Vec<u8>> = seeds.clone();
        inputs.extend(seeds.iter().map(|s| mutate(&mut rng, s, &seeds[0])));
        let mut i = 0;
        loop {
            let input = if i < inputs.len() {
                inputs[i].clone()
            } else {
                let a = &seeds[rng.below(seeds.len())];
                let b = &seeds[rng.below(seeds.len())];
                mutate(&mut rng, a, b)
            };
            i += 1;
            runs += 1;
            if catch_unwind(AssertUnwindSafe(|| target(&input))).is_err() {
                let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                    .join("../../target/fuzz-failures")
                    .join(name);
                std::fs::create_dir_all(&dir).unwrap();
                let file = dir.join(format!("seed-{seed}-run-{runs}"));
                std::fs::File::create(&file)
                    .unwrap()
                    .write_all(&input)
                    .unwrap();
                failures.push(format!("{name}: panicked on {} (saved)", file.display()));
                break;
            }
            if i >= inputs.len() && Instant::now() >= deadline {
                break;
            }
        }
        eprintln!("fuzz: {name}: {runs} inputs");
    }
    let _ = std::panic::take_hook();
    assert!(failures.is_empty(), "seed {seed}:\n{}", failures.join("\n"));
}
