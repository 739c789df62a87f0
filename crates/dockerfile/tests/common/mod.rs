//! What the conformance tests share: finding the shared case data, and saying visibly that a
//! test cannot run when it is absent (a failure under `CI`).
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// Whether `CI` is set (to anything but empty, `0` or `false`).
pub fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !matches!(v.as_str(), "" | "0" | "false"))
}

/// Says that the running test cannot run here, and why. Under `CI` that fails the test: CI
/// must never pass a test that did not run. Otherwise it prints `SKIPPED <test>: <why>` on
/// standard error past the test harness's capture, so that the run's output shows it even
/// though the test then passes.
pub fn cannot_run(why: &str) {
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("this test");
    assert!(!ci(), "{test} cannot run here, and CI must run it: {why}");
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "SKIPPED {test}: {why}");
}

/// The shared conformance data folder `leaf`: `$var` when set, else
/// `../shared/conformance/<leaf>` beside the workspace. None when it is not a directory, after
/// [`cannot_run`] has said which folder is missing and which variable points elsewhere.
pub fn conformance_data(var: &str, leaf: &str) -> Option<PathBuf> {
    let dir = match std::env::var_os(var) {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/conformance")
            .join(leaf),
    };
    if dir.is_dir() {
        return Some(dir);
    }
    cannot_run(&format!(
        "the shared conformance data {} is not there (set {var} to its folder)",
        dir.display()
    ));
    None
}
