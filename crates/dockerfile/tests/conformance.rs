//! Conformance against the shared BuildKit case suites: the parser cases (AST dump must match,
//! negative cases must be rejected) and the shell-lexer cases (envVarTest, wordsTest).

mod common;

use std::path::{Path, PathBuf};

use common::conformance_data;
use dockerfile::{dump_ast, lower, parse, BuildOptions, EnvList, ShellLex};

fn read_lossy(p: &Path) -> String {
    String::from_utf8_lossy(&std::fs::read(p).unwrap()).into_owned()
}

fn sorted_dirs(p: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(p)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    v.sort();
    v
}

#[test]
fn parser_conformance() {
    let Some(root) = conformance_data("STRATA_PARSER_CASES", "dockerfile-parser") else {
        return;
    };
    let (mut passed, mut failed) = (0usize, 0usize);
    let mut ran_any = false;
    for sub in ["testfiles", "real-world", "testfiles-negative"] {
        let dir = root.join(sub);
        if !dir.is_dir() {
            continue;
        }
        ran_any = true;
        let negative = sub == "testfiles-negative";
        for case in sorted_dirs(&dir) {
            let text = read_lossy(&case.join("Dockerfile"));
            let ok = if negative {
                let r = parse(&text).and_then(|a| lower(&a, &BuildOptions::default()));
                match r {
                    Err(e) => {
                        eprintln!("ok (rejected) {}: {e}", case.display());
                        true
                    }
                    Ok(_) => {
                        eprintln!("FAIL {}: accepted", case.display());
                        false
                    }
                }
            } else {
                let expected = read_lossy(&case.join("result"));
                match parse(&text) {
                    Ok(ast) => {
                        let got = dump_ast(&ast);
                        if got.trim_end_matches('\n') == expected.trim_end_matches('\n') {
                            true
                        } else {
                            eprintln!(
                                "FAIL {}\n--- expected\n{}\n--- got\n{}",
                                case.display(),
                                expected,
                                got
                            );
                            false
                        }
                    }
                    Err(e) => {
                        eprintln!("FAIL {}: {e}", case.display());
                        false
                    }
                }
            };
            if ok {
                passed += 1;
            } else {
                failed += 1;
            }
        }
    }
    assert!(ran_any, "no case folders under {}", root.display());
    println!("{passed} passed, {failed} failed");
    assert_eq!(failed, 0, "{failed} parser conformance cases failed");
}

#[test]
fn shell_conformance() {
    let Some(root) = conformance_data("STRATA_SHELL_CASES", "dockerfile-shell") else {
        return;
    };
    let lex = ShellLex::new('\\');
    let (mut passed, mut failed) = (0usize, 0usize);

    let env = EnvList(vec![
        "PWD=/home".into(),
        "SHELL=bash".into(),
        "KOREAN=한국어".into(),
        "NULL=".into(),
    ]);
    let text = read_lossy(&root.join("envVarTest"));
    for line in text.lines() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let f: Vec<&str> = line.split('|').collect();
        assert_eq!(f.len(), 3, "bad envVarTest line {line:?}");
        let (plat, input, expected) = (f[0].trim(), f[1].trim(), f[2].trim());
        if plat != "A" && plat != "U" {
            continue;
        }
        let got = lex.process_word(input, &env);
        let ok = match (&got, expected) {
            (Err(_), "error") => true,
            (Ok(g), e) => g == e,
            _ => false,
        };
        if ok {
            passed += 1;
        } else {
            failed += 1;
            eprintln!("FAIL envVarTest {input:?}: expected {expected:?}, got {got:?}");
        }
    }

    let mut envs = EnvList(Vec::new());
    let text = read_lossy(&root.join("wordsTest"));
    for line in text.lines() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(e) = line.strip_prefix("ENV ") {
            envs.0.insert(0, e.to_string());
            continue;
        }
        let f: Vec<&str> = line.split('|').collect();
        assert_eq!(f.len(), 2, "bad wordsTest line {line:?}");
        let input = f[0].trim();
        let expected: Vec<&str> = f[1].trim_start_matches(' ').split(',').collect();
        let got = lex.process_words(input, &envs);
        let ok = match &got {
            Err(_) => expected == ["error"],
            Ok(g) => g == &expected,
        };
        if ok {
            passed += 1;
        } else {
            failed += 1;
            eprintln!("FAIL wordsTest {input:?}: expected {expected:?}, got {got:?}");
        }
    }
    println!("{passed} passed, {failed} failed");
    assert_eq!(failed, 0, "{failed} shell conformance cases failed");
}
