//! The shared end-to-end build cases (recorded from Docker 20.10's classic builder): each
//! case's context is laid out by the suite's own `make_context.sh`, built with strata, saved,
//! described with `imgdesc.py` and compared with `compare.py` against `expected.json`.
//! Cases come from `$STRATA_BUILD_CASES` or `../shared/conformance/build/cases`.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::*;

fn suite_dir() -> PathBuf {
    workspace_root().join("../shared/conformance/build")
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn build_conformance_cases_match_docker() {
    if !require_root() {
        return;
    }
    let suite = suite_dir();
    if !suite.join("make_context.sh").is_file() {
        cannot_run(&format!(
            "the shared conformance suite {} is not there (its scripts make_context.sh, \
             imgdesc.py and compare.py)",
            suite.display()
        ));
        return;
    }
    let cases = std::env::var_os("STRATA_BUILD_CASES")
        .map(PathBuf::from)
        .unwrap_or_else(|| suite.join("cases"));
    if !cases.is_dir() {
        cannot_run(&format!(
            "the shared conformance cases {} are not there (set STRATA_BUILD_CASES to their folder)",
            cases.display()
        ));
        return;
    }
    let s = Strata::new();
    let work = tempfile::tempdir().unwrap();
    let mut names: Vec<_> = std::fs::read_dir(&cases)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    names.sort();
    let (mut passed, mut failed) = (0, Vec::new());
    for case in names {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let ctx = work.path().join("ctx").join(&name);
        let st = Command::new("sh")
            .arg(suite.join("make_context.sh"))
            .arg(&case)
            .arg(&ctx)
            .output()
            .unwrap();
        assert!(
            st.status.success(),
            "make_context.sh {name}: {}",
            String::from_utf8_lossy(&st.stderr)
        );
        // The suite's files are read-only here; Docker's recording saw a 0644 Dockerfile.
        let df = ctx.join("Dockerfile");
        std::fs::set_permissions(&df, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
        let tag = format!("conformance-{name}");
        let out = s
            .cmd()
            .args(["build", "-q", "-t", &tag, ctx.to_str().unwrap()])
            .output()
            .unwrap();
        if !out.status.success() {
            failed.push(format!(
                "{name}: build failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
            continue;
        }
        let tar = work.path().join(format!("{name}.tar"));
        s.ok(&["save", "-o", tar.to_str().unwrap(), &tag]);
        let desc = Command::new("python3")
            .arg(suite.join("imgdesc.py"))
            .arg(&tar)
            .output()
            .unwrap();
        if !desc.status.success() {
            failed.push(format!(
                "{name}: imgdesc: {}",
                String::from_utf8_lossy(&desc.stderr)
            ));
            continue;
        }
        let actual = work.path().join(format!("{name}.json"));
        std::fs::write(&actual, &desc.stdout).unwrap();
        let cmp = Command::new("python3")
            .arg(suite.join("compare.py"))
            .arg(case.join("expected.json"))
            .arg(&actual)
            .output()
            .unwrap();
        if cmp.status.success() {
            passed += 1;
        } else {
            failed.push(format!(
                "{name}: {}",
                String::from_utf8_lossy(&cmp.stdout)
                    .lines()
                    .take(5)
                    .collect::<Vec<_>>()
                    .join("; ")
            ));
        }
    }
    for f in &failed {
        println!("FAIL {f}");
    }
    println!("{passed} passed, {} failed", failed.len());
    assert!(
        failed.is_empty(),
        "{} build conformance cases failed",
        failed.len()
    );
}
