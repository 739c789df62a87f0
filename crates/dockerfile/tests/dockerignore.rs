//! `.dockerignore` semantics: Go filepath.Match patterns, `**`, exceptions where the last
//! match wins, parent directories, cleaning, and which ignore file takes precedence.

use dockerfile::{choose_ignore_file, ignore_file_candidates, DockerIgnore};

fn ig(text: &str) -> DockerIgnore {
    DockerIgnore::parse(text).unwrap()
}

#[test]
fn patterns_are_cleaned_and_comments_skipped() {
    let d = ig("# comment\n\n  ./a/b/  \n/c\n!./d\n*/../e\n");
    assert_eq!(d.patterns(), vec!["a/b", "c", "!d", "e"]);
}

#[test]
fn simple_and_parent_matching() {
    let d = ig("node_modules\n*.log\ndocs/*.md\n");
    assert!(d.matches("node_modules"));
    assert!(d.matches("node_modules/x/y.js"), "parent directory matches");
    assert!(
        !d.matches("src/node_modules"),
        "patterns are anchored at the root"
    );
    assert!(d.matches("a.log"));
    assert!(!d.matches("dir/a.log"), "* does not cross /");
    assert!(d.matches("docs/a.md"));
    assert!(!d.matches("docs/sub/a.md"));
    assert!(d.matches("./a.log") && d.matches("/a.log"));
}

#[test]
fn double_star() {
    let d = ig("**/*.go\n");
    assert!(d.matches("a.go") && d.matches("x/y/a.go"));
    assert!(!d.matches("a.rs"));
    let d = ig("**/vendor\n");
    assert!(d.matches("vendor") && d.matches("a/vendor") && d.matches("a/vendor/b"));
    let d = ig("a/**/b\n");
    assert!(d.matches("a/b") && d.matches("a/x/y/b"));
    assert!(!d.matches("a/xb"));
    let d = ig("dir/**\n");
    assert!(d.matches("dir/x") && d.matches("dir/x/y"));
    let d = ig("**\n");
    assert!(d.matches("anything/at/all"));
}

#[test]
fn exceptions_last_match_wins() {
    let d = ig("*.md\n!README.md\n");
    assert!(d.matches("a.md"));
    assert!(!d.matches("README.md"));
    let d = ig("*.md\n!README*.md\nREADME-secret.md\n");
    assert!(!d.matches("README-public.md"));
    assert!(d.matches("README-secret.md"));
    let d = ig("dir\n!dir/keep\n");
    assert!(d.matches("dir/other"));
    assert!(!d.matches("dir/keep"));
}

#[test]
fn match_syntax() {
    let d = ig("file?.txt\n[a-c].bin\n[^x]y\n\\*st?r\n");
    assert!(d.matches("file1.txt") && !d.matches("file12.txt"));
    assert!(d.matches("b.bin") && !d.matches("d.bin"));
    assert!(d.matches("ay") && !d.matches("xy"));
    assert!(d.matches("*star") && !d.matches("astar"));
    // Docker compares escape-only patterns literally, escapes included.
    let d = ig("\\*lit\n");
    assert!(d.matches("\\*lit") && !d.matches("*lit"));
    let d = ig("a.b\n");
    assert!(!d.matches("axb"), "regexp metacharacters are literal");
}

#[test]
fn ignore_file_precedence() {
    assert_eq!(
        ignore_file_candidates("build/Dockerfile.dev"),
        vec!["build/Dockerfile.dev.dockerignore", ".dockerignore"]
    );
    let only_root = |p: &str| p == ".dockerignore";
    assert_eq!(
        choose_ignore_file("Dockerfile", only_root).as_deref(),
        Some(".dockerignore")
    );
    let both = |p: &str| p == ".dockerignore" || p == "Dockerfile.dockerignore";
    assert_eq!(
        choose_ignore_file("Dockerfile", both).as_deref(),
        Some("Dockerfile.dockerignore")
    );
    assert_eq!(choose_ignore_file("Dockerfile", |_| false), None);
}
