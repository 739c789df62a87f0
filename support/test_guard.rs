//! Saying that a test cannot run here: the one copy every test crate includes with
//! `#[path = ".../support/test_guard.rs"] mod test_guard;`.

/// Whether `CI` is set (to anything but empty, `0` or `false`).
pub fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !matches!(v.as_str(), "" | "0" | "false"))
}

/// Says that the running test cannot run here, and why. Under `CI` that fails the test: CI
/// must never pass a test that did not run. Otherwise it prints `SKIPPED <test>: <why>` on
/// standard error past the test harness's capture, so that the run's output shows it even
/// though the test then passes. (The tests that need root are also marked ignored at build
/// time, see `support/no_root_build.rs`; this check covers a binary run by another user
/// than built it.)
pub fn cannot_run(why: &str) {
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("this test");
    assert!(!ci(), "{test} cannot run here, and CI must run it: {why}");
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "SKIPPED {test}: {why}");
}
