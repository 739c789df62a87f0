//! What the integration tests share: saying that a test cannot run here (see `build.rs`).
#![allow(dead_code)]

#[path = "../../../../support/test_guard.rs"]
mod test_guard;
#[allow(unused_imports)]
pub use test_guard::{cannot_run, ci};

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
