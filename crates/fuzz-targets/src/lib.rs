//! The parsers strata runs on untrusted input, each as a function of arbitrary bytes that
//! must return (never panic, hang or write outside its scratch directory) whatever the
//! bytes are: the layer tar reader, the `load` archive reader, the Go template engine of
//! `--format`, the image reference parser and the Dockerfile frontend.
//!
//! `fuzz/` (cargo-fuzz, nightly) drives them coverage-guided; `tests/bounded.rs` drives them
//! on stable from the seeds under `corpus/` with random mutations for a bounded time, which
//! is what CI runs.

use std::io::Cursor;

/// The Dockerfile frontend: parse and lower (stages, ARG/ENV expansion, instructions).
pub fn dockerfile(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut opts = dockerfile::BuildOptions::default();
    opts.build_args.insert("A".into(), "a b".into());
    let _ = dockerfile::parse_and_lower(text, &opts);
}

/// Image references as `pull`, `tag` and the Engine API read them.
pub fn reference(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = oci::Reference::parse(text);
    let _ = oci::Reference::parse_bare(text);
    let _ = oci::Reference::parse_repository(text);
    if let Ok(r) = image::parse_name(text) {
        let _ = (r.familiar(), r.name(), r.to_string());
    }
}

/// A `--format` template: parsed, then run on a value shaped like `docker ps`'s rows.
pub fn template(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let value = serde_json::json!({
        "ID": "0123456789ab", "Names": "/web", "Image": "busybox", "Size": 123,
        "Labels": {"a": "b", "c": ""}, "Ports": [{"PrivatePort": 80, "Type": "tcp"}],
        "State": {"Running": true, "Pid": 42, "ExitCode": 0},
        "Config": {"Env": ["A=b", "C=d"], "Cmd": null}, "Created": 1700000000,
    });
    for t in [
        format::Template::parse(text),
        format::Template::parse_header(text),
    ]
    .into_iter()
    .flatten()
    {
        let _ = t.render(&value);
    }
}

/// A layer tar (gzip, zstd or plain) unpacked into a scratch directory, with a small
/// entry limit so that a bomb of many entries ends quickly.
pub fn layer_tar(data: &[u8]) {
    let Ok(dir) = tempfile::tempdir() else {
        return;
    };
    let root = dir.path().join("root");
    if std::fs::create_dir(&root).is_err() {
        return;
    }
    let opts = layer::ApplyOptions {
        whiteouts: layer::WhiteoutMode::Delete,
        ..Default::default()
    };
    let _ = layer::apply_layer_with(Cursor::new(data), &root, &opts);
}

/// A `docker save`/OCI archive loaded into an empty store of its own.
pub fn archive(data: &[u8]) {
    let Ok(dir) = tempfile::tempdir() else {
        return;
    };
    let Ok(mut store) = store::Store::open(dir.path()) else {
        return;
    };
    let _ = image::load(&mut store, Cursor::new(data));
}

/// A target: a function of the input bytes.
pub type Target = fn(&[u8]);

/// Every target by name (the names of `fuzz/fuzz_targets/*.rs` and of `corpus/*`).
pub const TARGETS: &[(&str, Target)] = &[
    ("dockerfile", dockerfile),
    ("reference", reference),
    ("template", template),
    ("layer_tar", layer_tar),
    ("archive", archive),
];
