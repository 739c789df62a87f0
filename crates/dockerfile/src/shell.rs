//! BuildKit's shell lexer: expands `$VAR`, `${VAR...}` forms, removes quotes and escapes, and
//! splits into words, exactly as Docker does for the instructions it expands itself.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::error::{Error, Result};
use crate::util::is_space;

/// Something that can look up a variable by name during expansion.
pub trait Env {
    /// The value of `name`, or `None` when it is not set.
    fn get(&self, name: &str) -> Option<String>;
}

impl<T: Env + ?Sized> Env for &T {
    fn get(&self, name: &str) -> Option<String> {
        (**self).get(name)
    }
}

impl Env for HashMap<String, String> {
    fn get(&self, name: &str) -> Option<String> {
        HashMap::get(self, name).cloned()
    }
}

impl Env for BTreeMap<String, String> {
    fn get(&self, name: &str) -> Option<String> {
        BTreeMap::get(self, name).cloned()
    }
}

/// A list of `(name, value)` pairs; the last entry for a name wins.
impl Env for [(String, String)] {
    fn get(&self, name: &str) -> Option<String> {
        self.iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }
}

impl Env for Vec<(String, String)> {
    fn get(&self, name: &str) -> Option<String> {
        Env::get(self.as_slice(), name)
    }
}

/// A Docker-style environment list of `NAME=value` strings (a bare `NAME` is set and empty).
/// The first entry for a name wins, as in Docker's own lookup.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvList(pub Vec<String>);

impl Env for EnvList {
    fn get(&self, name: &str) -> Option<String> {
        for e in &self.0 {
            match e.split_once('=') {
                Some((k, v)) if k == name => return Some(v.to_string()),
                None if e == name => return Some(String::new()),
                _ => {}
            }
        }
        None
    }
}

/// The result of [`ShellLex::process_word_with_matches`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Processed {
    /// The expanded word.
    pub result: String,
    /// Variables that were referenced and set.
    pub matched: BTreeSet<String>,
    /// Variables that were referenced but not set.
    pub unmatched: BTreeSet<String>,
}

/// BuildKit's shell lexer with its options. [`ShellLex::new`] gives the behaviour Docker uses
/// for instruction arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShellLex {
    escape: char,
    /// Keep quote characters in the output.
    pub raw_quotes: bool,
    /// Keep escape characters in the output.
    pub raw_escapes: bool,
    /// Treat quotes as ordinary characters (used for heredoc bodies).
    pub skip_process_quotes: bool,
    /// Leave references to unset variables as they were written.
    pub skip_unset_env: bool,
}

impl ShellLex {
    /// A lexer using `escape` (`\` or `` ` ``) as its escape character.
    pub fn new(escape: char) -> Self {
        ShellLex {
            escape,
            raw_quotes: false,
            raw_escapes: false,
            skip_process_quotes: false,
            skip_unset_env: false,
        }
    }

    /// The escape character.
    pub fn escape(&self) -> char {
        self.escape
    }

    /// Expand `word` as one word (spaces kept).
    pub fn process_word(&self, word: &str, env: &dyn Env) -> Result<String> {
        Ok(self.process_word_with_matches(word, env)?.result)
    }

    /// Expand `word` and report which variables it referenced.
    pub fn process_word_with_matches(&self, word: &str, env: &dyn Env) -> Result<Processed> {
        let mut w = Word::new(self, word, env);
        let (result, _) = w.run(word)?;
        Ok(Processed {
            result,
            matched: w.matched,
            unmatched: w.unmatched,
        })
    }

    /// Expand `word` and split the result into words where unquoted white space occurs
    /// (as for `EXPOSE`).
    pub fn process_words(&self, word: &str, env: &dyn Env) -> Result<Vec<String>> {
        let mut w = Word::new(self, word, env);
        Ok(w.run(word)?.1)
    }
}

struct Words {
    buf: String,
    words: Vec<String>,
    in_word: bool,
}

impl Words {
    fn new() -> Self {
        Words {
            buf: String::new(),
            words: Vec::new(),
            in_word: false,
        }
    }
    fn add_char(&mut self, c: char) {
        if is_space(c) && self.in_word {
            if !self.buf.is_empty() {
                self.words.push(std::mem::take(&mut self.buf));
                self.in_word = false;
            }
        } else if !is_space(c) {
            self.add_raw_char(c);
        }
    }
    fn add_raw_char(&mut self, c: char) {
        self.buf.push(c);
        self.in_word = true;
    }
    fn add_string(&mut self, s: &str) {
        for c in s.chars() {
            self.add_char(c);
        }
    }
    fn add_raw_string(&mut self, s: &str) {
        self.buf.push_str(s);
        self.in_word = true;
    }
    fn finish(mut self) -> Vec<String> {
        if !self.buf.is_empty() {
            self.words.push(std::mem::take(&mut self.buf));
        }
        self.words
    }
}

struct Word<'a> {
    lex: &'a ShellLex,
    env: &'a dyn Env,
    chars: Vec<char>,
    pos: usize,
    raw_escapes: bool,
    matched: BTreeSet<String>,
    unmatched: BTreeSet<String>,
}

type R<T> = std::result::Result<T, String>;

impl<'a> Word<'a> {
    fn new(lex: &'a ShellLex, word: &str, env: &'a dyn Env) -> Self {
        Word {
            lex,
            env,
            chars: word.chars().collect(),
            pos: 0,
            raw_escapes: lex.raw_escapes,
            matched: BTreeSet::new(),
            unmatched: BTreeSet::new(),
        }
    }

    fn run(&mut self, source: &str) -> Result<(String, Vec<String>)> {
        let raw = self.lex.raw_escapes;
        self.stop_on(None, raw).map_err(|message| Error::Expand {
            word: source.to_string(),
            message,
        })
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.chars.get(self.pos).copied();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    fn stop_on(&mut self, stop: Option<char>, raw_escapes: bool) -> R<(String, Vec<String>)> {
        let saved = self.raw_escapes;
        self.raw_escapes = raw_escapes;
        let r = self.stop_on_inner(stop);
        self.raw_escapes = saved;
        r
    }

    fn stop_on_inner(&mut self, stop: Option<char>) -> R<(String, Vec<String>)> {
        let mut result = String::new();
        let mut words = Words::new();
        while let Some(ch) = self.peek() {
            if Some(ch) == stop {
                self.next();
                return Ok((result, words.finish()));
            }
            let special = ch == '$' || (!self.lex.skip_process_quotes && (ch == '\'' || ch == '"'));
            if special {
                let tmp = match ch {
                    '$' => self.dollar()?,
                    '\'' => self.single_quote()?,
                    _ => self.double_quote()?,
                };
                result.push_str(&tmp);
                if ch == '$' {
                    words.add_string(&tmp);
                } else {
                    words.add_raw_string(&tmp);
                }
            } else {
                let mut ch = self.next().unwrap_or_default();
                if ch == self.lex.escape {
                    if self.raw_escapes {
                        words.add_raw_char(ch);
                        result.push(ch);
                    }
                    match self.next() {
                        None => break,
                        Some(c) => ch = c,
                    }
                    words.add_raw_char(ch);
                } else {
                    words.add_char(ch);
                }
                result.push(ch);
            }
        }
        if let Some(s) = stop {
            return Err(format!(
                "unexpected end of statement while looking for matching {s}"
            ));
        }
        Ok((result, words.finish()))
    }

    fn single_quote(&mut self) -> R<String> {
        let mut result = String::new();
        let open = self.next().unwrap_or('\'');
        if self.lex.raw_quotes {
            result.push(open);
        }
        loop {
            match self.next() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching single-quote"
                            .into(),
                    )
                }
                Some('\'') => {
                    if self.lex.raw_quotes {
                        result.push('\'');
                    }
                    return Ok(result);
                }
                Some(c) => result.push(c),
            }
        }
    }

    fn double_quote(&mut self) -> R<String> {
        let mut result = String::new();
        let open = self.next().unwrap_or('"');
        if self.lex.raw_quotes {
            result.push(open);
        }
        loop {
            match self.peek() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching double-quote"
                            .into(),
                    )
                }
                Some('"') => {
                    self.next();
                    if self.lex.raw_quotes {
                        result.push('"');
                    }
                    return Ok(result);
                }
                Some('$') => {
                    let v = self.dollar()?;
                    result.push_str(&v);
                }
                Some(_) => {
                    let mut ch = self.next().unwrap_or_default();
                    if ch == self.lex.escape {
                        if self.raw_escapes {
                            result.push(ch);
                        }
                        match self.peek() {
                            None => continue,
                            Some(c) if c == '"' || c == '$' || c == self.lex.escape => {
                                ch = c;
                                self.next();
                            }
                            _ => {}
                        }
                    }
                    result.push(ch);
                }
            }
        }
    }

    fn get_env(&mut self, name: &str) -> Option<String> {
        let v = self.env.get(name);
        if v.is_some() {
            self.matched.insert(name.to_string());
        } else {
            self.unmatched.insert(name.to_string());
        }
        v
    }

    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(ch) = self.peek() {
            if name.is_empty() && is_digit(ch) {
                while let Some(c) = self.peek() {
                    if !is_digit(c) {
                        break;
                    }
                    self.next();
                    name.push(c);
                }
                return name;
            }
            if name.is_empty() && matches!(ch, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0') {
                self.next();
                return ch.to_string();
            }
            if !(ch.is_alphabetic() || is_digit(ch) || ch == '_') {
                break;
            }
            self.next();
            name.push(ch);
        }
        name
    }

    fn dollar(&mut self) -> R<String> {
        self.next();
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".into());
            }
            let v = self.get_env(&name);
            if v.is_none() && self.lex.skip_unset_env {
                return Ok(format!("${name}"));
            }
            return Ok(v.unwrap_or_default());
        }
        self.next();
        match self.peek() {
            None => return Err("syntax error: missing '}'".into()),
            Some('{') | Some('}') | Some(':') => {
                return Err("syntax error: bad substitution".into())
            }
            _ => {}
        }
        let name = self.name();
        let ch0 = self.next();
        let mut chs: String = ch0.unwrap_or('\u{fffd}').to_string();
        match ch0 {
            Some('}') => {
                let v = self.get_env(&name);
                if v.is_none() && self.lex.skip_unset_env {
                    return Ok(format!("${{{name}}}"));
                }
                Ok(v.unwrap_or_default())
            }
            Some(c @ (':' | '+' | '-' | '?' | '#' | '%')) => {
                let mut ch = Some(c);
                let null_is_unset = c == ':';
                if null_is_unset {
                    ch = self.next();
                    chs.push(ch.unwrap_or('\u{fffd}'));
                }
                let raw = matches!(ch, Some('#') | Some('%'));
                if null_is_unset && raw {
                    return Err(format!("unsupported modifier ({chs}) in substitution"));
                }
                let word = match self.stop_on(Some('}'), raw) {
                    Ok((w, _)) => w,
                    Err(e) => {
                        if self.peek().is_none() {
                            return Err("syntax error: missing '}'".into());
                        }
                        return Err(e);
                    }
                };
                let value = self.get_env(&name);
                if self.lex.skip_unset_env && value.is_none() {
                    return Ok(format!("${{{name}{chs}{word}}}"));
                }
                let set = value.is_some();
                let value = value.unwrap_or_default();
                match ch {
                    Some('-') => {
                        if !set || (null_is_unset && value.is_empty()) {
                            Ok(word)
                        } else {
                            Ok(value)
                        }
                    }
                    Some('+') => {
                        if !set || (null_is_unset && value.is_empty()) {
                            Ok(String::new())
                        } else {
                            Ok(word)
                        }
                    }
                    Some('?') => {
                        if !set {
                            let m = if word.is_empty() {
                                "is not allowed to be unset".to_string()
                            } else {
                                word
                            };
                            return Err(format!("{name}: {m}"));
                        }
                        if null_is_unset && value.is_empty() {
                            let m = if word.is_empty() {
                                "is not allowed to be empty".to_string()
                            } else {
                                word
                            };
                            return Err(format!("{name}: {m}"));
                        }
                        Ok(value)
                    }
                    Some(c @ ('%' | '#')) => {
                        let mut word = word;
                        let greedy = word.starts_with(c);
                        if greedy {
                            word.remove(0);
                        }
                        let pat = Pattern::compile(&word).map_err(|e| {
                            format!("invalid pattern ({word}) in substitution: {e}")
                        })?;
                        if c == '%' {
                            Ok(pat.trim_suffix(&value, greedy))
                        } else {
                            Ok(pat.trim_prefix(&value, greedy))
                        }
                    }
                    _ => Err(format!("unsupported modifier ({chs}) in substitution")),
                }
            }
            Some('/') => {
                let all = self.peek() == Some('/');
                if all {
                    self.next();
                }
                let pattern = match self.stop_on(Some('/'), true) {
                    Ok((w, _)) => w,
                    Err(e) => {
                        if self.peek().is_none() {
                            return Err("syntax error: missing '/' in ${}".into());
                        }
                        return Err(e);
                    }
                };
                let replacement = match self.stop_on(Some('}'), true) {
                    Ok((w, _)) => w,
                    Err(e) => {
                        if self.peek().is_none() {
                            return Err("syntax error: missing '}'".into());
                        }
                        return Err(e);
                    }
                };
                let value = self.get_env(&name);
                if self.lex.skip_unset_env && value.is_none() {
                    return Ok(format!("${{{name}/{pattern}/{replacement}}}"));
                }
                let value = value.unwrap_or_default();
                let pat = Pattern::compile(&pattern)
                    .map_err(|e| format!("invalid pattern ({pattern}) in substitution: {e}"))?;
                Ok(pat.replace(&value, &replacement, all))
            }
            _ => Err(format!("unsupported modifier ({chs}) in substitution")),
        }
    }
}

fn is_digit(c: char) -> bool {
    c.is_ascii_digit() || (!c.is_ascii() && c.is_numeric())
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Tok {
    Star,
    Any,
    Lit(char),
}

/// A shell pattern (`*`, `?`, `\` escapes) as BuildKit compiles it to a regular expression;
/// like Go's `.`, wildcards do not match a newline.
struct Pattern {
    toks: Vec<Tok>,
}

impl Pattern {
    fn compile(p: &str) -> R<Pattern> {
        let chars: Vec<char> = p.chars().collect();
        let mut toks = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            i += 1;
            match c {
                '*' => toks.push(Tok::Star),
                '?' => toks.push(Tok::Any),
                '\\' => {
                    if matches!(chars.get(i), Some('}') | Some('/')) {
                        continue;
                    }
                    match chars.get(i) {
                        Some(&n @ ('*' | '?' | '\\')) => {
                            toks.push(Tok::Lit(n));
                            i += 1;
                        }
                        Some(&n) => return Err(format!("invalid escape '\\{n}'")),
                        None => return Err("invalid escape '\\\u{fffd}'".to_string()),
                    }
                }
                c => toks.push(Tok::Lit(c)),
            }
        }
        Ok(Pattern { toks })
    }

    fn trim_prefix(&self, value: &str, greedy: bool) -> String {
        let s: Vec<char> = value.chars().collect();
        match Matcher::new(&self.toks, &s, greedy).at(0) {
            Some(end) => s[end..].iter().collect(),
            None => value.to_string(),
        }
    }

    fn trim_suffix(&self, value: &str, greedy: bool) -> String {
        let mut toks = self.toks.clone();
        toks.reverse();
        let mut s: Vec<char> = value.chars().collect();
        s.reverse();
        match Matcher::new(&toks, &s, greedy).at(0) {
            Some(end) => s[end..].iter().rev().collect(),
            None => value.to_string(),
        }
    }

    fn replace(&self, value: &str, repl: &str, all: bool) -> String {
        let s: Vec<char> = value.chars().collect();
        let mut m = Matcher::new(&self.toks, &s, true);
        if !all {
            return match m.find(0) {
                Some((a, b)) => {
                    let mut out: String = s[..a].iter().collect();
                    out.push_str(repl);
                    out.extend(&s[b..]);
                    out
                }
                None => value.to_string(),
            };
        }
        let repl = expand_template(repl);
        let mut out = String::new();
        let mut last_end = 0;
        let mut search = 0;
        while search <= s.len() {
            let Some((a, b)) = m.find(search) else {
                break;
            };
            out.extend(&s[last_end..a]);
            if b > last_end || a == 0 {
                out.push_str(&repl);
            }
            last_end = b;
            if search + 1 > b {
                search += 1;
            } else {
                search = b;
            }
        }
        if last_end < s.len() {
            out.extend(&s[last_end..]);
        }
        out
    }
}

/// Leftmost-first (backtracking-order) matching of a pattern against one subject, memoised
/// on (token, position) so the cost stays polynomial.
struct Matcher<'a> {
    toks: &'a [Tok],
    s: &'a [char],
    greedy: bool,
    memo: HashMap<(usize, usize), Option<usize>>,
}

impl<'a> Matcher<'a> {
    fn new(toks: &'a [Tok], s: &'a [char], greedy: bool) -> Self {
        Matcher {
            toks,
            s,
            greedy,
            memo: HashMap::new(),
        }
    }

    /// The end of the match anchored at `start`, if any.
    fn at(&mut self, start: usize) -> Option<usize> {
        self.go(0, start)
    }

    /// The leftmost match starting at or after `from`.
    fn find(&mut self, from: usize) -> Option<(usize, usize)> {
        (from..=self.s.len()).find_map(|i| self.at(i).map(|e| (i, e)))
    }

    fn go(&mut self, ti: usize, si: usize) -> Option<usize> {
        if ti == self.toks.len() {
            return Some(si);
        }
        if let Some(r) = self.memo.get(&(ti, si)) {
            return *r;
        }
        let r = match self.toks[ti] {
            Tok::Lit(c) => {
                if self.s.get(si) == Some(&c) {
                    self.go(ti + 1, si + 1)
                } else {
                    None
                }
            }
            Tok::Any => match self.s.get(si) {
                Some(&c) if c != '\n' => self.go(ti + 1, si + 1),
                _ => None,
            },
            Tok::Star => {
                let mut max = si;
                while max < self.s.len() && self.s[max] != '\n' {
                    max += 1;
                }
                if self.greedy {
                    (si..=max).rev().find_map(|k| self.go(ti + 1, k))
                } else {
                    (si..=max).find_map(|k| self.go(ti + 1, k))
                }
            }
        };
        self.memo.insert((ti, si), r);
        r
    }
}

/// Go's `Regexp.Expand` template for a pattern without capture groups: `$$` is a dollar,
/// `$name`/`${name}` references expand to nothing, a malformed `$` stays.
fn expand_template(t: &str) -> String {
    let c: Vec<char> = t.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < c.len() {
        if c[i] != '$' {
            out.push(c[i]);
            i += 1;
            continue;
        }
        if c.get(i + 1) == Some(&'$') {
            out.push('$');
            i += 2;
            continue;
        }
        let is_name = |ch: char| ch == '_' || ch.is_alphanumeric();
        if c.get(i + 1) == Some(&'{') {
            let mut j = i + 2;
            while j < c.len() && is_name(c[j]) {
                j += 1;
            }
            if j > i + 2 && c.get(j) == Some(&'}') {
                i = j + 1;
                continue;
            }
            out.push('$');
            i += 1;
            continue;
        }
        let mut j = i + 1;
        while j < c.len() && is_name(c[j]) {
            j += 1;
        }
        if j > i + 1 {
            i = j;
        } else {
            out.push('$');
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Vec<(String, String)> {
        vec![
            ("A".into(), "a b".into()),
            ("P".into(), "/usr/local/bin".into()),
        ]
    }

    #[test]
    fn basic_forms() {
        let l = ShellLex::new('\\');
        let e = env();
        assert_eq!(l.process_word("x$A", &e).unwrap(), "xa b");
        assert_eq!(l.process_word("${P%/*}", &e).unwrap(), "/usr/local");
        assert_eq!(l.process_word("${P##*/}", &e).unwrap(), "bin");
        assert_eq!(l.process_word("${P//\\//_}", &e).unwrap(), "_usr_local_bin");
        assert_eq!(l.process_words("x $A", &e).unwrap(), vec!["x", "a", "b"]);
        assert!(l.process_word("${Z:?oops}", &e).is_err());
    }
}
