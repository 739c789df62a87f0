//! BuildKit's build checks (moby/buildkit `frontend/dockerfile/linter`), worked out on the
//! parsed Dockerfile. Rule names, URLs and messages are BuildKit's.
//!
//! Not implemented: `InvalidBaseImagePlatform` (strata only builds for the platform it runs
//! on, so a base image is never pulled for another one) and the experimental rules
//! (`CopyIgnoredFile`, `InvalidDefinitionDescription`), which BuildKit runs only when asked.

use std::collections::{BTreeSet, HashMap};

use dockerfile::{Ast, Node, ShellLex, PLATFORM_ARGS};

use crate::{rule_url, Finding};

/// The environment of a base image, when it is known (`None`: unknown, so `UndefinedVar`
/// stays quiet for that stage).
pub type BaseEnv<'a> = &'a dyn Fn(&str) -> Option<Vec<(String, String)>>;

fn finding(rule: &'static str, message: String, node: &Node) -> Finding {
    Finding {
        rule,
        url: rule_url(rule),
        message,
        ranges: vec![(node.start_line, node.end_line.max(node.start_line))],
    }
}

/// What a stage carries over to stages built on it.
#[derive(Clone, Default)]
struct StageState {
    name: Option<String>,
    shell_set: bool,
    /// A `WORKDIR` was given (in this stage or the stage it builds on).
    workdir_set: bool,
    /// Known variable names, `None` when the base image's environment is unknown.
    vars: Option<BTreeSet<String>>,
}

/// Runs every BuildKit rule that applies to a classic build. `base_env` gives the
/// environment of a base image by reference (for `UndefinedVar`).
pub fn buildkit_rules(ast: &Ast, base_env: BaseEnv<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    let lex = ShellLex::new(ast.escape);
    empty_continuations(ast, &mut out);
    instruction_casing(ast, &mut out);

    // Meta ARGs: name -> default (None when declared without one).
    let mut meta: Vec<(String, Option<String>)> = Vec::new();
    let mut stages: Vec<StageState> = Vec::new();
    let mut cur: Option<StageState> = None;
    // Per stage: the previous CMD / ENTRYPOINT / HEALTHCHECK.
    let mut used_once: HashMap<String, &Node> = HashMap::new();
    for node in &ast.children {
        let ins = node.instruction();
        if ins == "from" {
            if let Some(s) = cur.take() {
                stages.push(s);
            }
            used_once.clear();
            cur = Some(from_rules(node, &meta, &stages, &lex, base_env, &mut out));
            continue;
        }
        if ins == "arg" && cur.is_none() {
            for w in &node.args {
                let (name, default) = match w.split_once('=') {
                    Some((n, d)) => (n.to_string(), Some(unquote(d))),
                    None => (w.clone(), None),
                };
                secrets_rule(node, &name, &mut out);
                meta.push((name, default));
            }
            continue;
        }
        let Some(stage) = cur.as_mut() else { continue };
        match ins.as_str() {
            "cmd" | "entrypoint" | "healthcheck" => {
                if let Some(prev) = used_once.get(&ins) {
                    let mut f = finding(
                        "MultipleInstructionsDisallowed",
                        format!("Multiple {} instructions should not be used in the same stage because only the last one will be used", node.value),
                        prev,
                    );
                    f.ranges = vec![(prev.start_line, prev.end_line.max(prev.start_line))];
                    out.push(f);
                }
                used_once.insert(ins.clone(), node);
                if ins != "healthcheck" && !node.json && !stage.shell_set && !node.args.is_empty() {
                    out.push(finding(
                        "JSONArgsRecommended",
                        format!("JSON arguments recommended for {} to prevent unintended behavior related to OS signals", node.value),
                        node,
                    ));
                }
            }
            "shell" => stage.shell_set = true,
            "maintainer" => out.push(finding(
                "MaintainerDeprecated",
                "Maintainer instruction is deprecated in favor of using label".into(),
                node,
            )),
            "env" | "label" => {
                if node.args.len() == 3 && node.args[2].is_empty() {
                    out.push(finding(
                        "LegacyKeyValueFormat",
                        format!(
                            "\"{0} key=value\" should be used instead of legacy \"{0} key value\" format",
                            node.value
                        ),
                        node,
                    ));
                }
                for kv in node.args.chunks(3) {
                    if kv.len() < 2 {
                        continue;
                    }
                    if ins == "env" {
                        secrets_rule(node, &kv[0], &mut out);
                        undefined_vars(node, &kv[1], stage, &lex, &mut out);
                        if let Some(v) = stage.vars.as_mut() {
                            v.insert(kv[0].clone());
                        }
                    } else {
                        undefined_vars(node, &kv[0], stage, &lex, &mut out);
                        undefined_vars(node, &kv[1], stage, &lex, &mut out);
                    }
                }
            }
            "arg" => {
                for w in &node.args {
                    let (name, default) = match w.split_once('=') {
                        Some((n, d)) => (n.to_string(), Some(d.to_string())),
                        None => (w.clone(), None),
                    };
                    secrets_rule(node, &name, &mut out);
                    if let Some(d) = default {
                        undefined_vars(node, &d, stage, &lex, &mut out);
                    }
                    if let Some(v) = stage.vars.as_mut() {
                        v.insert(name);
                    }
                }
            }
            "workdir" => {
                let dir = node.args.first().map(String::as_str).unwrap_or("");
                undefined_vars(node, dir, stage, &lex, &mut out);
                // Only the stage's first WORKDIR is checked: fixing it fixes the rest.
                if !stage.workdir_set && !dir.starts_with('/') && !dir.starts_with('$') {
                    out.push(finding(
                        "WorkdirRelativePath",
                        format!("Relative workdir {dir:?} can have unexpected results if the base image changes"),
                        node,
                    ));
                }
                stage.workdir_set = true;
            }
            "expose" => {
                for port in &node.args {
                    undefined_vars(node, port, stage, &lex, &mut out);
                    if port.contains('$') {
                        continue;
                    }
                    if port.contains(':') {
                        out.push(finding(
                            "ExposeInvalidFormat",
                            format!("EXPOSE instruction should not define an IP address or host-port mapping, found '{port}'"),
                            node,
                        ));
                    }
                    if let Some((_, proto)) = port.split_once('/') {
                        if proto != proto.to_lowercase() {
                            out.push(finding(
                                "ExposeProtoCasing",
                                format!("Defined protocol '{port}' in EXPOSE instruction should be lowercase"),
                                node,
                            ));
                        }
                    }
                }
            }
            "copy" | "add" => {
                for fl in &node.flags {
                    if let Some((k, v)) = fl.split_once('=') {
                        if matches!(k, "--chown" | "--chmod") {
                            undefined_vars(node, v, stage, &lex, &mut out);
                        }
                    }
                }
                for a in &node.args {
                    if a.starts_with("<<") {
                        continue;
                    }
                    undefined_vars(node, a, stage, &lex, &mut out);
                }
            }
            "user" | "stopsignal" | "volume" => {
                for a in &node.args {
                    undefined_vars(node, a, stage, &lex, &mut out);
                }
            }
            _ => {}
        }
    }
    out
}

/// The rules about one `FROM` line; returns the stage's starting state.
fn from_rules(
    node: &Node,
    meta: &[(String, Option<String>)],
    stages: &[StageState],
    lex: &ShellLex,
    base_env: BaseEnv<'_>,
    out: &mut Vec<Finding>,
) -> StageState {
    let base = node.args.first().cloned().unwrap_or_default();
    let name = if node.args.len() >= 3 && node.args[1].eq_ignore_ascii_case("as") {
        Some(node.args[2].clone())
    } else {
        None
    };
    if let Some(n) = &name {
        if *n != n.to_lowercase() {
            out.push(finding(
                "StageNameCasing",
                format!("Stage name '{n}' should be lowercase"),
                node,
            ));
        }
        let as_word = &node.args[1];
        let from = &node.value;
        let from_lower = *from == from.to_lowercase();
        let from_upper = *from == from.to_uppercase();
        let mismatch = (from_lower && *as_word != as_word.to_lowercase())
            || (from_upper && !from_lower && *as_word != as_word.to_uppercase());
        if mismatch {
            out.push(finding(
                "FromAsCasing",
                format!("'{as_word}' and '{from}' keywords' casing do not match"),
                node,
            ));
        }
        let lower = n.to_lowercase();
        if stages
            .iter()
            .any(|s| s.name.as_deref() == Some(lower.as_str()))
        {
            out.push(finding(
                "DuplicateStageName",
                format!("Duplicate stage name {lower:?}, stage names should be unique"),
                node,
            ));
        }
        if lower == "scratch" || lower == "context" {
            out.push(finding(
                "ReservedStageName",
                format!("Stage name should not use the same name as reserved stage {lower:?}"),
                node,
            ));
        }
    }
    // Variables in FROM: only meta ARGs and the platform args are in scope.
    let mut declared: Vec<(String, String)> = PLATFORM_ARGS
        .iter()
        .map(|a| (a.to_string(), default_platform_value(a)))
        .collect();
    for (n, d) in meta {
        declared.push((n.clone(), d.clone().unwrap_or_default()));
    }
    let names: Vec<String> = declared.iter().map(|(n, _)| n.clone()).collect();
    let platform = node
        .flags
        .iter()
        .find_map(|f| f.strip_prefix("--platform="))
        .map(str::to_string);
    let mut words = vec![base.clone()];
    words.extend(platform.clone());
    for w in &words {
        if let Ok(p) = lex.process_word_with_matches(w, &declared) {
            for v in &p.unmatched {
                let msg = match suggest(v, &names) {
                    Some(s) => format!("FROM argument '{v}' is not declared (did you mean {s}?)"),
                    None => format!("FROM argument '{v}' is not declared"),
                };
                out.push(finding("UndefinedArgInFrom", msg, node));
            }
        }
    }
    // The base with the meta ARGs' defaults only.
    if base.contains('$') {
        let defaults: Vec<(String, String)> = meta
            .iter()
            .filter_map(|(n, d)| d.clone().map(|d| (n.clone(), d)))
            .chain(
                PLATFORM_ARGS
                    .iter()
                    .map(|a| (a.to_string(), default_platform_value(a))),
            )
            .collect();
        let stage_names: Vec<&str> = stages.iter().filter_map(|s| s.name.as_deref()).collect();
        if let Ok(expanded) = lex.process_word(&base, &defaults) {
            let is_stage = stage_names.contains(&expanded.to_lowercase().as_str());
            if !is_stage && (expanded.is_empty() || !valid_reference(&expanded)) {
                out.push(finding(
                    "InvalidDefaultArgInFrom",
                    format!(
                        "Default value for ARG {base} results in empty or invalid base image name"
                    ),
                    node,
                ));
            }
        }
    }
    if let Some(p) = &platform {
        if p == "$TARGETPLATFORM" || p == "${TARGETPLATFORM}" {
            out.push(finding(
                "RedundantTargetPlatform",
                format!("Setting platform to predefined {p} in FROM is redundant as this is the default behavior"),
                node,
            ));
        } else if !p.contains('$') {
            // A stage named for its platform (`build_amd64`) is how a constant is meant.
            let lname = name.as_deref().unwrap_or("").to_lowercase();
            let named_for_it = p
                .split('/')
                .take(2)
                .any(|part| !part.is_empty() && lname.contains(&part.to_lowercase()));
            if !named_for_it {
                out.push(finding(
                    "FromPlatformFlagConstDisallowed",
                    format!("FROM --platform flag should not use constant value {p:?}"),
                    node,
                ));
            }
        }
    }
    // The stage's starting state: from an earlier stage, or from an image.
    let parent = stages
        .iter()
        .rev()
        .find(|s| s.name.as_deref() == Some(base.to_lowercase().as_str()));
    let mut state = match parent {
        Some(p) => p.clone(),
        None => {
            let vars: Option<BTreeSet<String>> = if base.eq_ignore_ascii_case("scratch") {
                Some(BTreeSet::new())
            } else {
                let expanded = lex.process_word(&base, &declared).unwrap_or(base.clone());
                base_env(&expanded).map(|env| env.into_iter().map(|(k, _)| k).collect())
            };
            // BuildKit always sets PATH.
            let vars = vars.map(|mut v| {
                v.insert("PATH".to_string());
                v
            });
            StageState {
                vars,
                ..Default::default()
            }
        }
    };
    state.name = name.map(|n| n.to_lowercase());
    state
}

fn default_platform_value(name: &str) -> String {
    match name {
        "BUILDPLATFORM" | "TARGETPLATFORM" => "linux/amd64".into(),
        "BUILDOS" | "TARGETOS" => "linux".into(),
        "BUILDARCH" | "TARGETARCH" => "amd64".into(),
        _ => String::new(),
    }
}

fn unquote(s: &str) -> String {
    let t = s.trim();
    if t.len() >= 2
        && ((t.starts_with('"') && t.ends_with('"')) || (t.starts_with('\'') && t.ends_with('\'')))
    {
        return t[1..t.len() - 1].to_string();
    }
    t.to_string()
}

/// `UndefinedVar` for the variables `word` uses that the stage does not know.
fn undefined_vars(
    node: &Node,
    word: &str,
    stage: &StageState,
    lex: &ShellLex,
    out: &mut Vec<Finding>,
) {
    let Some(vars) = &stage.vars else { return };
    if !word.contains('$') {
        return;
    }
    let env: Vec<(String, String)> = vars.iter().map(|v| (v.clone(), String::new())).collect();
    let Ok(p) = lex.process_word_with_matches(word, &env) else {
        return;
    };
    let names: Vec<String> = vars.iter().cloned().collect();
    // Args BuildKit never reports (they are not environment variables).
    let not_env = |v: &str| {
        PLATFORM_ARGS.contains(&v)
            || dockerfile::PROXY_ARGS.contains(&v)
            || v == "SOURCE_DATE_EPOCH"
            || v.starts_with("BUILDKIT_")
    };
    for v in p.unmatched.iter().filter(|v| !not_env(v)) {
        let msg = match suggest(v, &names) {
            Some(s) => format!("Usage of undefined variable '${v}' (did you mean ${s}?)"),
            None => format!("Usage of undefined variable '${v}'"),
        };
        let f = finding("UndefinedVar", msg, node);
        if !out.contains(&f) {
            out.push(f);
        }
    }
}

/// BuildKit's `suggest.Search`: the closest name at a Levenshtein distance under 3.
fn suggest(v: &str, options: &[String]) -> Option<String> {
    let mut best: Option<(usize, &String)> = None;
    for o in options {
        if o == v {
            return None;
        }
        let d = levenshtein(v, o);
        if d < 3 && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, o));
        }
    }
    best.map(|(_, o)| o.clone())
}

fn levenshtein(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// BuildKit's test for secret-looking names: a token such as `password` or `key` between
/// underscores or at either end, unless `public` is one of the tokens.
fn is_secret_key(key: &str) -> bool {
    const DENY: [&str; 10] = [
        "apikey",
        "auth",
        "credential",
        "credentials",
        "key",
        "password",
        "pword",
        "passwd",
        "secret",
        "token",
    ];
    let lower = key.to_lowercase();
    let tokens: Vec<&str> = lower.split('_').collect();
    tokens.iter().any(|t| DENY.contains(t)) && !tokens.contains(&"public")
}

fn secrets_rule(node: &Node, key: &str, out: &mut Vec<Finding>) {
    if is_secret_key(key) {
        out.push(finding(
            "SecretsUsedInArgOrEnv",
            format!(
                "Do not use ARG or ENV instructions for sensitive data ({} {key:?})",
                node.value.to_uppercase()
            ),
            node,
        ));
    }
}

/// A reference as Docker's parser accepts it (lower-case path components, optional tag and
/// digest).
fn valid_reference(r: &str) -> bool {
    let (rest, digest) = match r.split_once('@') {
        Some((a, d)) => (a, Some(d)),
        None => (r, None),
    };
    if let Some(d) = digest {
        let Some((alg, hex)) = d.split_once(':') else {
            return false;
        };
        if alg.is_empty() || hex.len() < 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return false;
        }
    }
    // The tag follows the last ':' after the last '/'.
    let slash = rest.rfind('/').map(|i| i + 1).unwrap_or(0);
    let (name, tag) = match rest[slash..].rfind(':') {
        Some(i) => (&rest[..slash + i], Some(&rest[slash + i + 1..])),
        None => (rest, None),
    };
    if let Some(t) = tag {
        let ok = !t.is_empty()
            && t.len() <= 128
            && t.bytes()
                .next()
                .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
        if !ok {
            return false;
        }
    }
    if name.is_empty() {
        return false;
    }
    let mut parts = name.split('/').peekable();
    let mut first = true;
    while let Some(p) = parts.next() {
        if p.is_empty() {
            return false;
        }
        // A registry host may have a port and capitals.
        let is_host = first
            && parts.peek().is_some()
            && (p.contains('.') || p.contains(':') || p == "localhost");
        first = false;
        if is_host {
            continue;
        }
        let ok = p
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
            && p.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
            && p.bytes().last().is_some_and(|b| b.is_ascii_alphanumeric());
        if !ok {
            return false;
        }
    }
    true
}

/// `NoEmptyContinuation`, from the parser's warnings.
fn empty_continuations(ast: &Ast, out: &mut Vec<Finding>) {
    for w in &ast.warnings {
        if let Some(node) = ast
            .children
            .iter()
            .find(|n| n.start_line <= w.line && w.line <= n.end_line.max(n.start_line))
        {
            out.push(finding(
                "NoEmptyContinuation",
                "Empty continuation line".into(),
                node,
            ));
        }
    }
}

/// `ConsistentInstructionCasing`: instructions of the stages (meta ARGs excluded) against the
/// casing most of them use (upper case on a tie).
fn instruction_casing(ast: &Ast, out: &mut Vec<Finding>) {
    let first_from = ast
        .children
        .iter()
        .position(|n| n.instruction() == "from")
        .unwrap_or(ast.children.len());
    let nodes = &ast.children[first_from..];
    let (mut lower, mut upper) = (0, 0);
    for n in nodes {
        let v = &n.value;
        if *v == v.to_lowercase() {
            lower += 1;
        } else if *v == v.to_uppercase() {
            upper += 1;
        }
    }
    let majority_lower = lower > upper;
    for n in nodes {
        let v = &n.value;
        let want = if majority_lower && *v != v.to_lowercase() {
            "lowercase"
        } else if !majority_lower && *v != v.to_uppercase() {
            "uppercase"
        } else {
            continue;
        };
        out.push(finding(
            "ConsistentInstructionCasing",
            format!("Command '{v}' should match the case of the command majority ({want})"),
            n,
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(text: &str) -> Vec<Finding> {
        let ast = dockerfile::parse(text).unwrap();
        buildkit_rules(&ast, &|_: &str| Some(vec![("PATH".into(), "/bin".into())]))
    }

    fn names(text: &str) -> Vec<&'static str> {
        rules(text).iter().map(|f| f.rule).collect()
    }

    fn one(text: &str, rule: &str) -> Finding {
        let all = rules(text);
        let f: Vec<_> = all.iter().filter(|f| f.rule == rule).collect();
        assert_eq!(f.len(), 1, "{all:#?}");
        f[0].clone()
    }

    #[test]
    fn clean_dockerfile_is_quiet() {
        let text = "ARG V=3\nFROM busybox:$V AS base\nWORKDIR /app\nENV A=1\nCOPY . .\nRUN make\nCMD [\"x\"]\n";
        assert_eq!(names(text), Vec::<&str>::new());
    }

    #[test]
    fn stage_names_and_casing() {
        let f = one("FROM alpine AS BuilderBase\nRUN x\n", "StageNameCasing");
        assert_eq!(f.message, "Stage name 'BuilderBase' should be lowercase");
        let f = one("FROM alpine as builder\nRUN x\n", "FromAsCasing");
        assert_eq!(f.message, "'as' and 'FROM' keywords' casing do not match");
        assert_eq!(f.ranges, vec![(1, 1)]);
        let f = one("from alpine AS builder\nrun x\n", "FromAsCasing");
        assert_eq!(f.message, "'AS' and 'from' keywords' casing do not match");
        let f = one("FROM a AS x\nFROM b AS x\n", "DuplicateStageName");
        assert_eq!(
            f.message,
            "Duplicate stage name \"x\", stage names should be unique"
        );
        assert_eq!(f.ranges, vec![(2, 2)]);
        let f = one("FROM a AS scratch\n", "ReservedStageName");
        assert_eq!(
            f.message,
            "Stage name should not use the same name as reserved stage \"scratch\""
        );
    }

    #[test]
    fn instruction_casing_follows_majority() {
        let f = one("FROM a\nrun x\nRUN y\n", "ConsistentInstructionCasing");
        assert_eq!(
            f.message,
            "Command 'run' should match the case of the command majority (uppercase)"
        );
        let f = one("from a\nrun x\nRun y\n", "ConsistentInstructionCasing");
        assert_eq!(
            f.message,
            "Command 'Run' should match the case of the command majority (lowercase)"
        );
    }

    #[test]
    fn json_args_and_multiple_instructions() {
        let all = rules("FROM a\nCMD echo hi\nCMD [\"b\"]\nENTRYPOINT run\n");
        let json: Vec<_> = all
            .iter()
            .filter(|f| f.rule == "JSONArgsRecommended")
            .collect();
        assert_eq!(json.len(), 2);
        assert_eq!(
            json[0].message,
            "JSON arguments recommended for CMD to prevent unintended behavior related to OS signals"
        );
        let m = one(
            "FROM a\nCMD echo hi\nCMD [\"b\"]\n",
            "MultipleInstructionsDisallowed",
        );
        assert_eq!(m.ranges, vec![(2, 2)], "points at the earlier one");
        assert_eq!(m.message, "Multiple CMD instructions should not be used in the same stage because only the last one will be used");
        // An explicit SHELL makes the shell form deliberate.
        assert!(
            !names("FROM a\nSHELL [\"/bin/bash\", \"-c\"]\nCMD echo hi\n")
                .contains(&"JSONArgsRecommended")
        );
    }

    #[test]
    fn legacy_env_maintainer_secrets() {
        let f = one("FROM a\nENV A 1\n", "LegacyKeyValueFormat");
        assert_eq!(
            f.message,
            "\"ENV key=value\" should be used instead of legacy \"ENV key value\" format"
        );
        one("FROM a\nMAINTAINER me\n", "MaintainerDeprecated");
        let f = one("FROM a\nARG API_KEY\n", "SecretsUsedInArgOrEnv");
        assert_eq!(
            f.message,
            "Do not use ARG or ENV instructions for sensitive data (ARG \"API_KEY\")"
        );
        one("FROM a\nENV DB_PASSWORD=x\n", "SecretsUsedInArgOrEnv");
        assert!(names("FROM a\nENV PUBLIC_KEY=x MONKEY=1\n").is_empty());
    }

    #[test]
    fn from_args() {
        let f = one("ARG VERSION=1\nFROM alpine:$VERSIO\n", "UndefinedArgInFrom");
        assert_eq!(
            f.message,
            "FROM argument 'VERSIO' is not declared (did you mean VERSION?)"
        );
        let f = one("ARG TAG\nFROM busybox:${TAG}\n", "InvalidDefaultArgInFrom");
        assert_eq!(
            f.message,
            "Default value for ARG busybox:${TAG} results in empty or invalid base image name"
        );
        let f = one(
            "FROM --platform=$TARGETPLATFORM a\n",
            "RedundantTargetPlatform",
        );
        assert_eq!(f.message, "Setting platform to predefined $TARGETPLATFORM in FROM is redundant as this is the default behavior");
        let f = one(
            "FROM --platform=linux/amd64 a AS base\n",
            "FromPlatformFlagConstDisallowed",
        );
        assert_eq!(
            f.message,
            "FROM --platform flag should not use constant value \"linux/amd64\""
        );
        assert!(names("FROM --platform=linux/amd64 a AS build_amd64\n").is_empty());
        assert!(names("FROM --platform=$BUILDPLATFORM a\n").is_empty());
    }

    #[test]
    fn workdir_expose_continuation() {
        let f = one("FROM a\nWORKDIR app\n", "WorkdirRelativePath");
        assert_eq!(
            f.message,
            "Relative workdir \"app\" can have unexpected results if the base image changes"
        );
        assert!(names("FROM a\nWORKDIR /app\nWORKDIR sub\n").is_empty());
        one("FROM a\nWORKDIR app\nWORKDIR sub\n", "WorkdirRelativePath");
        let f = one("FROM a\nEXPOSE 80/TCP\n", "ExposeProtoCasing");
        assert_eq!(
            f.message,
            "Defined protocol '80/TCP' in EXPOSE instruction should be lowercase"
        );
        let f = one("FROM a\nEXPOSE 127.0.0.1:80:80\n", "ExposeInvalidFormat");
        assert_eq!(f.message, "EXPOSE instruction should not define an IP address or host-port mapping, found '127.0.0.1:80:80'");
        let f = one("FROM a\nRUN a \\\n\n  b\n", "NoEmptyContinuation");
        assert_eq!(f.ranges, vec![(2, 4)]);
    }

    #[test]
    fn undefined_vars() {
        let f = one("FROM a\nENV FOO=1\nCOPY $FOOO /x\n", "UndefinedVar");
        assert_eq!(
            f.message,
            "Usage of undefined variable '$FOOO' (did you mean $FOO?)"
        );
        assert!(names("FROM a\nARG X\nENV Y=$X:$PATH\nWORKDIR /$Y\n").is_empty());
        // PATH is always set; platform args are no environment variables.
        assert!(names("FROM scratch\nENV P=$PATH\nLABEL arch=$TARGETARCH\n").is_empty());
        one("FROM scratch\nENV P=$HOME\n", "UndefinedVar");
        // An unknown base image environment keeps the rule quiet.
        let ast = dockerfile::parse("FROM a\nCOPY $X /x\n").unwrap();
        assert!(buildkit_rules(&ast, &|_: &str| None).is_empty());
    }

    #[test]
    fn references() {
        assert!(valid_reference("busybox"));
        assert!(valid_reference("localhost:5000/a/b:1.0"));
        assert!(!valid_reference("busybox:"));
        assert!(!valid_reference("Busybox"));
    }
}
