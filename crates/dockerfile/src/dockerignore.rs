//! `.dockerignore` as Docker reads and applies it, as pure functions over slash-separated
//! paths relative to the build context: Go `filepath.Match` syntax plus `**`, `!` exceptions
//! where the last matching line wins, and a path is excluded when it or a parent directory
//! matches.

use crate::error::{Error, Result};

/// Go's `filepath.Clean` for `/`-separated paths.
pub fn clean_path(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let rooted = p.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if out.last().is_some_and(|l| *l != "..") {
                    out.pop();
                } else if !rooted {
                    out.push("..");
                }
            }
            x => out.push(x),
        }
    }
    let joined = out.join("/");
    if rooted {
        format!("/{joined}")
    } else if joined.is_empty() {
        ".".into()
    } else {
        joined
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Lit(char),
    /// `?`: one character other than `/`.
    Any,
    /// `*`: any run of characters other than `/`.
    Star,
    /// `**` followed by more pattern: `(.*/)?`.
    DirStar,
    /// trailing `**`: `.*`.
    All,
    /// `[...]`.
    Class(bool, Vec<(char, char)>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum MatchType {
    Exact,
    Prefix,
    Suffix,
    Regexp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct IgnorePattern {
    cleaned: String,
    exclusion: bool,
    kind: MatchType,
    toks: Vec<Tok>,
}

fn bad() -> String {
    "syntax error in pattern".into()
}

/// One `getEsc` step of Go's `filepath.Match` class parser.
fn class_char(c: &[char], i: &mut usize) -> std::result::Result<char, String> {
    match c.get(*i) {
        None | Some('-') | Some(']') => Err(bad()),
        Some('\\') => {
            *i += 1;
            let ch = *c.get(*i).ok_or_else(bad)?;
            *i += 1;
            if *i >= c.len() {
                return Err(bad());
            }
            Ok(ch)
        }
        Some(&ch) => {
            *i += 1;
            if *i >= c.len() {
                return Err(bad());
            }
            Ok(ch)
        }
    }
}

fn compile(pattern: &str) -> std::result::Result<(MatchType, Vec<Tok>), String> {
    let c: Vec<char> = pattern.chars().collect();
    let mut toks = Vec::new();
    let mut kind = MatchType::Exact;
    let mut i = 0;
    let mut first = true;
    while i < c.len() {
        let ch = c[i];
        i += 1;
        match ch {
            '*' if c.get(i) == Some(&'*') => {
                i += 1;
                if c.get(i) == Some(&'/') {
                    i += 1;
                }
                if i >= c.len() {
                    if kind == MatchType::Exact {
                        kind = MatchType::Prefix;
                    } else {
                        toks.push(Tok::All);
                        kind = MatchType::Regexp;
                    }
                } else {
                    toks.push(Tok::DirStar);
                    kind = MatchType::Regexp;
                }
                if first {
                    kind = MatchType::Suffix;
                }
            }
            '*' => {
                toks.push(Tok::Star);
                kind = MatchType::Regexp;
            }
            '?' => {
                toks.push(Tok::Any);
                kind = MatchType::Regexp;
            }
            '\\' => match c.get(i) {
                Some(&n) => {
                    toks.push(Tok::Lit(n));
                    i += 1;
                }
                None => return Err(bad()),
            },
            '[' => {
                let mut negated = false;
                if c.get(i) == Some(&'^') {
                    negated = true;
                    i += 1;
                }
                let mut ranges = Vec::new();
                loop {
                    if c.get(i) == Some(&']') && !ranges.is_empty() {
                        i += 1;
                        break;
                    }
                    let lo = class_char(&c, &mut i)?;
                    let mut hi = lo;
                    if c.get(i) == Some(&'-') {
                        i += 1;
                        hi = class_char(&c, &mut i)?;
                    }
                    ranges.push((lo, hi));
                }
                toks.push(Tok::Class(negated, ranges));
                kind = MatchType::Regexp;
            }
            ']' => return Err(bad()),
            ch => toks.push(Tok::Lit(ch)),
        }
        first = false;
    }
    Ok((kind, toks))
}

fn match_toks(toks: &[Tok], s: &[char]) -> bool {
    let mut memo = std::collections::HashSet::new();
    fn go(
        toks: &[Tok],
        s: &[char],
        ti: usize,
        si: usize,
        memo: &mut std::collections::HashSet<(usize, usize)>,
    ) -> bool {
        if ti == toks.len() {
            return si == s.len();
        }
        if !memo.insert((ti, si)) {
            return false;
        }
        match &toks[ti] {
            Tok::Lit(c) => s.get(si) == Some(c) && go(toks, s, ti + 1, si + 1, memo),
            Tok::Any => {
                matches!(s.get(si), Some(&c) if c != '/' && c != '\n')
                    && go(toks, s, ti + 1, si + 1, memo)
            }
            Tok::Class(neg, ranges) => match s.get(si) {
                Some(&c) if c != '\n' => {
                    let hit = ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi);
                    hit != *neg && go(toks, s, ti + 1, si + 1, memo)
                }
                _ => false,
            },
            Tok::Star => {
                let mut k = si;
                loop {
                    if go(toks, s, ti + 1, k, memo) {
                        return true;
                    }
                    if k < s.len() && s[k] != '/' && s[k] != '\n' {
                        k += 1;
                    } else {
                        return false;
                    }
                }
            }
            Tok::All => (si..=s.len())
                .take_while(|&k| k == si || s[k - 1] != '\n')
                .any(|k| go(toks, s, ti + 1, k, memo)),
            Tok::DirStar => {
                if go(toks, s, ti + 1, si, memo) {
                    return true;
                }
                (si..s.len())
                    .take_while(|&k| s[k] != '\n')
                    .any(|k| s[k] == '/' && go(toks, s, ti + 1, k + 1, memo))
            }
        }
    }
    go(toks, s, 0, 0, &mut memo)
}

impl IgnorePattern {
    fn matches(&self, path: &str) -> bool {
        match self.kind {
            MatchType::Exact => path == self.cleaned,
            MatchType::Prefix => path.starts_with(&self.cleaned[..self.cleaned.len() - 2]),
            MatchType::Suffix => {
                let suffix = &self.cleaned[2..];
                if path.ends_with(suffix) {
                    return true;
                }
                suffix.strip_prefix('/') == Some(path)
            }
            MatchType::Regexp => {
                let s: Vec<char> = path.chars().collect();
                match_toks(&self.toks, &s)
            }
        }
    }
}

/// The patterns of a `.dockerignore` file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DockerIgnore {
    patterns: Vec<IgnorePattern>,
}

impl DockerIgnore {
    /// Read a `.dockerignore` file: `#` comment lines and blank lines are skipped, each
    /// pattern is trimmed and cleaned (`./a` is `a`, a leading `/` is dropped), and `!`
    /// marks an exception. Fails on a pattern Go's `filepath.Match` would reject.
    pub fn parse(text: &str) -> Result<DockerIgnore> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut patterns = Vec::new();
        for (n, raw) in text.lines().enumerate() {
            let line = n + 1;
            if raw.starts_with('#') {
                continue;
            }
            let mut p = crate::util::trim_space(raw);
            if p.is_empty() {
                continue;
            }
            let exclusion = p.starts_with('!');
            if exclusion {
                p = crate::util::trim_space(&p[1..]);
                if p.is_empty() {
                    return Err(Error::Ignore {
                        line,
                        message: "illegal exclusion pattern: \"!\"".into(),
                    });
                }
            }
            let mut cleaned = clean_path(p);
            if cleaned.len() > 1 && cleaned.starts_with('/') {
                cleaned.remove(0);
            }
            let (kind, toks) =
                compile(&cleaned).map_err(|message| Error::Ignore { line, message })?;
            patterns.push(IgnorePattern {
                cleaned,
                exclusion,
                kind,
                toks,
            });
        }
        Ok(DockerIgnore { patterns })
    }

    /// The cleaned patterns, exceptions prefixed with `!`.
    pub fn patterns(&self) -> Vec<String> {
        self.patterns
            .iter()
            .map(|p| {
                if p.exclusion {
                    format!("!{}", p.cleaned)
                } else {
                    p.cleaned.clone()
                }
            })
            .collect()
    }

    /// Whether an exception (`!PATTERN`) starts with the directory `dir`, so that Docker's
    /// client walks `dir` even when it is excluded (`TarWithOptions`).
    pub fn has_exception_under(&self, dir: &str) -> bool {
        let dir_slash = format!("{}/", clean_path(dir).trim_start_matches('/'));
        self.patterns
            .iter()
            .any(|p| p.exclusion && format!("{}/", p.cleaned).starts_with(&dir_slash))
    }

    /// Whether `path` (relative to the context root, `/`-separated) is excluded from the
    /// context: the last pattern that matches it or one of its parent directories decides.
    pub fn matches(&self, path: &str) -> bool {
        let mut file = clean_path(path);
        while let Some(r) = file.strip_prefix('/') {
            file = r.to_string();
        }
        let parent = match file.rfind('/') {
            Some(i) => file[..i].to_string(),
            None => ".".to_string(),
        };
        let dirs: Vec<&str> = parent.split('/').collect();
        let mut matched = false;
        for p in &self.patterns {
            if p.exclusion != matched {
                continue;
            }
            let mut m = p.matches(&file);
            if !m && parent != "." {
                for i in 0..dirs.len() {
                    if p.matches(&dirs[..=i].join("/")) {
                        m = true;
                        break;
                    }
                }
            }
            if m {
                matched = !p.exclusion;
            }
        }
        matched
    }
}

/// The ignore-file names to look for, in order of precedence, for a Dockerfile at
/// `dockerfile_path` (relative to the context): `<dockerfile_path>.dockerignore` first, then
/// `.dockerignore` at the context root.
pub fn ignore_file_candidates(dockerfile_path: &str) -> Vec<String> {
    let mut v = Vec::new();
    let d = dockerfile_path.trim_end_matches('/');
    if !d.is_empty() {
        v.push(format!("{d}.dockerignore"));
    }
    v.push(".dockerignore".to_string());
    v
}

/// Pick the ignore file to use given which files exist (`exists` is asked about the names
/// from [`ignore_file_candidates`], in order).
pub fn choose_ignore_file(dockerfile_path: &str, exists: impl Fn(&str) -> bool) -> Option<String> {
    ignore_file_candidates(dockerfile_path)
        .into_iter()
        .find(|c| exists(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean() {
        assert_eq!(clean_path("./a//b/../c/"), "a/c");
        assert_eq!(clean_path("/../a"), "/a");
        assert_eq!(clean_path(".."), "..");
    }
}
