//! Word expansion details beyond the shared cases: pattern trimming and substitution with
//! wildcards and escapes, the `?` forms, reported variable matches, and lexer options.

use std::collections::BTreeSet;

use dockerfile::{Env, ShellLex};

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// (input, environment, expected result or None for an error)
type Case = (
    &'static str,
    &'static [(&'static str, &'static str)],
    Option<&'static str>,
);

const CASES: &[Case] = &[
    (
        "${FOO-aaa} ${BAR-bbb} ${BAZ-ccc}",
        &[("FOO", "xxx"), ("BAR", "")],
        Some("xxx  ccc"),
    ),
    (
        "${FOO:-aaa} ${BAR:-bbb} ${BAZ:-ccc}",
        &[("FOO", "xxx"), ("BAR", "")],
        Some("xxx bbb ccc"),
    ),
    (
        "${FOO+aaa} ${BAR+bbb} ${BAZ+ccc}",
        &[("FOO", "xxx"), ("BAR", "")],
        Some("aaa bbb "),
    ),
    (
        "${FOO:+aaa} ${BAR:+bbb} ${BAZ:+ccc}",
        &[("FOO", "xxx"), ("BAR", "")],
        Some("aaa  "),
    ),
    ("${BAR?bbb}", &[("BAR", "")], Some("")),
    ("${BAZ?ccc}", &[], None),
    ("${BAR:?bbb}", &[("BAR", "")], None),
    ("${FOO=aaa}", &[("FOO", "x")], None),
    (
        "${FOO#()[]{\\}^$.\\*\\?|\\\\}",
        &[("FOO", "()[]{}^$.*?|\\x")],
        Some("x"),
    ),
    ("${FOO%%\\**}", &[("FOO", "xx**")], Some("xx")),
    ("${FOO#*x*y}", &[("FOO", "xxyy")], Some("y")),
    ("${FOO#*}", &[("FOO", "xxyy")], Some("xxyy")),
    ("${FOO#$BAR}", &[("FOO", "xxyy"), ("BAR", "x")], Some("xyy")),
    ("${FOO##*x}", &[("FOO", "xxyy")], Some("yy")),
    ("${FOO#?\\?}", &[("FOO", "???y")], Some("?y")),
    (
        "${ABC:-.}${FOO%x}${ABC:-.}",
        &[("FOO", "xxyy")],
        Some(".xxyy."),
    ),
    ("${FOO%%\\**\\*}", &[("FOO", "a***yy*")], Some("a")),
    ("${FOO%y*}", &[("FOO", "xxyy")], Some("xxy")),
    ("${FOO%%y*}", &[("FOO", "xxyy")], Some("xx")),
    ("${FOO:#}", &[], None),
    ("${FOO:%%}", &[], None),
    (
        "${FOO/$NEEDLE/.} - ${FOO//$NEEDLE/.}",
        &[("FOO", "/foo*/*/*.txt"), ("NEEDLE", "\\*/")],
        Some("/foo.*/*.txt - /foo..*.txt"),
    ),
    (
        "${FOO/$NEEDLE/} - ${FOO//$NEEDLE/}",
        &[("FOO", "/tmp/tmp/bar.txt"), ("NEEDLE", "/tmp")],
        Some("/tmp/bar.txt - /bar.txt"),
    ),
    (
        "${FOO/$N/$R} - ${FOO//$N/$R}",
        &[("FOO", "/a/foo/b/c.txt"), ("N", "/?/"), ("R", "/")],
        Some("/foo/b/c.txt - /foo/c.txt"),
    ),
    (
        "${FOO//\\//\\/}",
        &[("FOO", "/tmp/foo.txt")],
        Some("\\/tmp\\/foo.txt"),
    ),
    (
        "${FOO/$BAR/ww}",
        &[("FOO", "xxyy"), ("BAR", "")],
        Some("wwxxyy"),
    ),
    ("${FOO//ww}", &[("FOO", "xxyy")], None),
    ("${FOO//}", &[("FOO", "xxyy")], None),
    ("${FOO///}", &[("FOO", "xxyy")], Some("xxyy")),
    ("${FOO///}", &[], Some("")),
    ("$1$$x$@", &[], Some("x")),
    (
        "something-${V}.${OS}-${ARCH}${VARIANT:+-${VARIANT}}",
        &[
            ("V", "1"),
            ("OS", "linux"),
            ("ARCH", "arm"),
            ("VARIANT", "v7"),
        ],
        Some("something-1.linux-arm-v7"),
    ),
];

#[test]
fn expansion_table() {
    let lex = ShellLex::new('\\');
    let mut bad = Vec::new();
    for (input, e, want) in CASES {
        let got = lex.process_word(input, &env(e)).ok();
        if got.as_deref() != *want {
            bad.push(format!("{input:?}: want {want:?}, got {got:?}"));
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn matches_are_reported() {
    let lex = ShellLex::new('\\');
    let r = lex
        .process_word_with_matches("${FOO-a} ${BAR} $BAZ", &env(&[("FOO", "x"), ("BAR", "")]))
        .unwrap();
    assert_eq!(r.result, "x  ");
    let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(r.matched, set(&["FOO", "BAR"]));
    assert_eq!(r.unmatched, set(&["BAZ"]));
}

#[test]
fn lexer_options() {
    let e = env(&[("A", "1")]);
    let mut lex = ShellLex::new('\\');
    lex.skip_unset_env = true;
    assert_eq!(
        lex.process_word("$A ${B} ${C:-x} $D", &e).unwrap(),
        "1 ${B} ${C:-x} $D"
    );
    let mut lex = ShellLex::new('\\');
    lex.raw_quotes = true;
    assert_eq!(lex.process_word("'a' \"$A\"", &e).unwrap(), "'a' \"1\"");
    let mut lex = ShellLex::new('\\');
    lex.skip_process_quotes = true;
    assert_eq!(lex.process_word("'$A' \"x\"", &e).unwrap(), "'1' \"x\"");
    let lex = ShellLex::new('`');
    assert_eq!(lex.process_word("a`$A \\x", &e).unwrap(), "a$A \\x");
    assert_eq!(e.get("A").as_deref(), Some("1"));
}
