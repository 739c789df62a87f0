//! The strata binary's build script: the test configuration every crate with root tests
//! shares (`support/no_root_build.rs`), and packed relative relocations.
//!
//! A position-independent executable is relocated by the dynamic loader at every start, and
//! strata starts once per command. Its ~35,000 relative relocations take 830 KB as RELA
//! entries, read at every start; packed (`DT_RELR`, glibc 2.36+) they take 10 KB. Measured on
//! the unchanged rebuild (`scripts/bench-small`): ~70 fewer page faults and 0.5–1 ms less.
//! The binary stays position-independent (ASLR).

#[path = "../../support/no_root_build.rs"]
mod no_root;

fn main() {
    no_root::main();
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os == "linux" && env == "gnu" {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}
