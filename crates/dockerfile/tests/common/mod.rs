//! What the conformance tests share: finding the shared case data, and saying visibly that a
//! test cannot run when it is absent (a failure under `CI`).
#![allow(dead_code)]

use std::path::{Path, PathBuf};

#[path = "../../../../support/test_guard.rs"]
mod test_guard;
#[allow(unused_imports)]
pub use test_guard::{cannot_run, ci};

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
