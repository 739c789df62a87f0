//! What the integration tests share: saying that a test cannot run here (see `build.rs`).
#![allow(dead_code)]

/// Whether `CI` is set (to anything but empty, `0` or `false`).
pub fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !matches!(v.as_str(), "" | "0" | "false"))
}

/// Says that the running test cannot run here, and why. Under `CI` that fails the test: CI
/// must never pass a test that did not run. Otherwise it prints `SKIPPED <test>: <why>` on
/// standard error past the test harness's capture, so that the run's output shows it even
/// though the test then passes. (The tests that need root are also marked ignored at build
/// time, see `build.rs`; this check covers a binary run by another user than built it.)
pub fn cannot_run(why: &str) {
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("this test");
    assert!(!ci(), "{test} cannot run here, and CI must run it: {why}");
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "SKIPPED {test}: {why}");
}

/// Whether this process runs as root.
pub fn is_root() -> bool {
    // SAFETY: no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Whether the test runs as root; otherwise see [`cannot_run`].
pub fn require_root() -> bool {
    if is_root() {
        return true;
    }
    cannot_run("needs root (real mounts)");
    false
}
