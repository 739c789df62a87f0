//! The crate must stay a pure library: no other workspace crate, no dependency that does I/O,
//! and no file, network or process access in its own source.

use std::path::Path;

/// Dependencies the crate may have: none of them touches files, sockets or processes.
const ALLOWED: &[&str] = &["thiserror"];

#[test]
fn dependencies_are_pure_and_outside_the_workspace() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    let mut section = String::new();
    let mut deps = Vec::new();
    for line in manifest.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            section = t.trim_matches(|c| c == '[' || c == ']').to_string();
            continue;
        }
        let is_dep_section = section == "dependencies"
            || section == "build-dependencies"
            || (section.starts_with("target.") && section.ends_with(".dependencies"));
        if is_dep_section && !t.is_empty() && !t.starts_with('#') {
            let name = t.split(['=', '.', ' ']).next().unwrap().trim().to_string();
            deps.push((name, t.to_string()));
        }
        if let Some(name) = section.strip_prefix("dependencies.") {
            deps.push((name.to_string(), t.to_string()));
        }
    }
    assert!(!deps.is_empty(), "no [dependencies] found in Cargo.toml");
    for (name, line) in &deps {
        assert!(
            !name.starts_with("strata") && !line.contains("strata-") && !line.contains("path"),
            "workspace dependency not allowed: {line}"
        );
        assert!(
            ALLOWED.contains(&name.as_str()),
            "dependency {name} is not on the pure list"
        );
    }
}

#[test]
fn source_does_no_io() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut checked = 0;
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        for banned in [
            "std::fs",
            "std::net",
            "std::process",
            "std::io",
            "std::env",
            "File::",
        ] {
            assert!(!text.contains(banned), "{} uses {banned}", path.display());
        }
        checked += 1;
    }
    assert!(
        checked >= 5,
        "expected the crate's source files under {}",
        src.display()
    );
}
