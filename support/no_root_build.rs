//! The build script of every crate with tests that need root (`build = ` in their
//! Cargo.toml). Test configuration only. When this build does not run as root and `CI` is not set, sets
//! `cfg(strata_no_root)`, under which the tests that need root carry
//! `#[cfg_attr(strata_no_root, ignore = "needs root")]`: `cargo test` and nextest then list
//! them as ignored/skipped, with the reason, instead of passing tests that did not run. Under
//! `CI` nothing is ignored, so a test that cannot run there fails (see `require_root` in the
//! tests, which also covers a binary built as root and run as another user).

pub fn main() {
    println!("cargo:rustc-check-cfg=cfg(strata_no_root)");
    // Who builds: a change of user (sudo, runuser) or of CI reruns this script.
    for var in ["CI", "USER", "SUDO_UID"] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    if !ci() && !root() {
        println!("cargo:rustc-cfg=strata_no_root");
    }
}

/// `CI` set to anything but empty, `0` or `false`.
fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !matches!(v.as_str(), "" | "0" | "false"))
}

/// The effective user ID is 0 (`/proc/self/status`; when unreadable, assumed root, and the
/// tests' own check decides).
fn root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().nth(1).map(|euid| euid == "0"))
        })
        .unwrap_or(true)
}
