//! `build --check`: BuildKit's build checks (as far as they apply to a classic build), with
//! their rule names, URLs and messages, plus strata's own order advisor
//! ([`order::RULE_CACHE_BUSTING_ORDER`]), which finds a `COPY`/`ADD` of often-changing files
//! placed before an expensive step that does not need them.
//!
//! The rules are pure: they work on the parsed Dockerfile and on data the caller supplies
//! (base image environments, the context's files, how often files changed, how long steps
//! took). Only [`git`] reads anything from disk: the context's git history.

pub mod git;
pub mod order;
mod print;
mod rules;

pub use print::{render, summary_line};
pub use rules::{buildkit_rules, BaseEnv};

/// One finding of a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The rule's name (`JSONArgsRecommended`).
    pub rule: &'static str,
    /// Where the rule is documented (empty for none).
    pub url: String,
    /// The message (BuildKit's words for BuildKit's rules); may span several lines.
    pub message: String,
    /// The Dockerfile lines it refers to: 1-based inclusive ranges.
    pub ranges: Vec<(usize, usize)>,
}

impl Finding {
    /// The first line the finding refers to (0 when none).
    pub fn line(&self) -> usize {
        self.ranges.first().map(|r| r.0).unwrap_or(0)
    }
}

/// BuildKit's documentation URL for a rule (`https://docs.docker.com/go/dockerfile/rule/NAME/`
/// with NAME in kebab case).
pub fn rule_url(rule: &str) -> String {
    let mut kebab = String::new();
    let chars: Vec<char> = rule.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() {
            let prev_lower = i > 0 && !chars[i - 1].is_ascii_uppercase();
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            let prev_upper = i > 0 && chars[i - 1].is_ascii_uppercase();
            if i > 0 && (prev_lower || (prev_upper && next_lower)) {
                kebab.push('-');
            }
            kebab.push(c.to_ascii_lowercase());
        } else {
            kebab.push(*c);
        }
    }
    format!("https://docs.docker.com/go/dockerfile/rule/{kebab}/")
}

/// Drops what `# check=skip=...` (or `skip=all`) turns off, and sorts the rest as BuildKit
/// prints them: by first line, then rule name.
pub fn apply_options(
    mut findings: Vec<Finding>,
    options: &dockerfile::CheckOptions,
) -> Vec<Finding> {
    if options.skip_all {
        return Vec::new();
    }
    findings.retain(|f| !options.skip.iter().any(|s| s == f.rule));
    findings.sort_by(|a, b| (a.line(), a.rule).cmp(&(b.line(), b.rule)));
    findings
}

/// BuildKit's error for `check=error=true`: `lint violation found for rules: A, B` (each rule
/// once, in the order first found).
pub fn error_message(findings: &[Finding]) -> Option<String> {
    let mut rules: Vec<&str> = Vec::new();
    for f in findings {
        if !rules.contains(&f.rule) {
            rules.push(f.rule);
        }
    }
    if rules.is_empty() {
        return None;
    }
    Some(format!(
        "lint violation found for rules: {}",
        rules.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_in_kebab_case() {
        assert_eq!(
            rule_url("JSONArgsRecommended"),
            "https://docs.docker.com/go/dockerfile/rule/json-args-recommended/"
        );
        assert_eq!(
            rule_url("FromAsCasing"),
            "https://docs.docker.com/go/dockerfile/rule/from-as-casing/"
        );
        assert_eq!(
            rule_url("SecretsUsedInArgOrEnv"),
            "https://docs.docker.com/go/dockerfile/rule/secrets-used-in-arg-or-env/"
        );
    }
}
