//! Dockerfile text to AST, following BuildKit's parser line for line: parser directives,
//! comments, continuation lines, per-instruction argument shapes, JSON (exec) form, flags and
//! heredocs. Also BuildKit's AST dump format.

use crate::error::{Error, Result};
use crate::json::{parse_array, JsonArgs};
use crate::shell::ShellLex;
use crate::util::{go_quote, is_space, is_space_byte, split_ws, trim_space};

/// A parsed Dockerfile: its instructions in order plus what the directives set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ast {
    /// One node per instruction.
    pub children: Vec<Node>,
    /// The escape character (`\` unless `# escape=` said otherwise).
    pub escape: char,
    /// The parser directives found at the top (`syntax`, `escape`, `check`).
    pub directives: Vec<Directive>,
    /// Non-fatal findings (empty continuation lines), in Docker's words.
    pub warnings: Vec<Warning>,
}

/// One parser directive such as `# syntax=docker/dockerfile:1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    /// Lower-cased name: `syntax`, `escape` or `check`.
    pub name: String,
    /// The value with surrounding white space removed.
    pub value: String,
    /// 1-based line.
    pub line: usize,
}

/// The `# check=` directive: which build checks to skip and whether warnings fail the build.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckOptions {
    /// Rule names after `skip=` (empty with `skip=all`).
    pub skip: Vec<String>,
    /// `skip=all`.
    pub skip_all: bool,
    /// `error=true`: check warnings are errors.
    pub error: bool,
}

impl Ast {
    /// The parsed `# check=` directive, if there is one (BuildKit's `skip=a,b;error=true`).
    pub fn check_options(&self) -> Result<Option<CheckOptions>> {
        let Some(d) = self.directives.iter().find(|d| d.name == "check") else {
            return Ok(None);
        };
        let err = |m: String| Error::parse(d.line, m);
        let mut o = CheckOptions::default();
        let v = trim_space(&d.value);
        if v.is_empty() {
            return Ok(Some(o));
        }
        for part in v.splitn(2, ';') {
            let Some((k, val)) = part.split_once('=') else {
                return Err(err(format!("invalid check option {}", go_quote(part))));
            };
            match trim_space(k) {
                "skip" => {
                    let val = trim_space(val);
                    if val == "all" {
                        o.skip_all = true;
                    } else {
                        o.skip = val.split(',').map(|r| trim_space(r).to_string()).collect();
                    }
                }
                "error" => {
                    o.error = crate::util::parse_bool(trim_space(val)).ok_or_else(|| {
                        err(format!("failed to parse check option {}", go_quote(part)))
                    })?;
                }
                other => return Err(err(format!("invalid check option {}", go_quote(other)))),
            }
        }
        Ok(Some(o))
    }
}

/// A non-fatal parser finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// Docker 20.10's message (`[WARNING]: Empty continuation line found in:\n    LINE`).
    pub message: String,
    /// 1-based line it refers to.
    pub line: usize,
}

/// What Docker 20.10's parser prints for its warnings (`Result.PrintWarnings`): each message,
/// then a last line saying that empty continuation lines will become errors; `None` when
/// there are none.
pub fn warnings_text(warnings: &[Warning]) -> Option<String> {
    if warnings.is_empty() {
        return None;
    }
    let mut out: Vec<&str> = warnings.iter().map(|w| w.message.as_str()).collect();
    out.push("[WARNING]: Empty continuation lines will become errors in a future release.");
    Some(out.join("\n") + "\n")
}

/// One heredoc attached to an instruction (`<<EOF` ... `EOF`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// The delimiter word with quotes removed (also the file name for `COPY <<NAME`).
    pub name: String,
    /// File descriptor written before `<<` (`3<<EOF`), 0 when absent.
    pub file_descriptor: u32,
    /// False when the delimiter was quoted: the body is then taken literally.
    pub expand: bool,
    /// `<<-`: leading tabs are stripped from the body.
    pub chomp: bool,
    /// The body, line endings included, terminator excluded.
    pub content: String,
}

/// One instruction as the parser sees it: the instruction word, its flags, and its arguments
/// shaped by the instruction's parse rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The instruction as written (case preserved), e.g. `RUN` or `froom`.
    pub value: String,
    /// Arguments; for `ENV`/`LABEL` triples of key, value and `=` or `""`.
    pub args: Vec<String>,
    /// The instruction nested in an `ONBUILD`.
    pub sub: Option<Box<Node>>,
    /// Arguments were a JSON array (exec form).
    pub json: bool,
    /// The `--flag[=value]` words before the arguments.
    pub flags: Vec<String>,
    /// Heredocs whose bodies followed this instruction.
    pub heredocs: Vec<Heredoc>,
    /// The logical line (continuations joined) the node was parsed from.
    pub original: String,
    /// 1-based first line.
    pub start_line: usize,
    /// 1-based last line (including heredoc bodies).
    pub end_line: usize,
    /// Comment lines immediately above the instruction.
    pub comments: Vec<String>,
}

impl Node {
    /// Lower-cased instruction name.
    pub fn instruction(&self) -> String {
        self.value.to_lowercase()
    }

    /// The flat argument list BuildKit's instruction parser works on (for `ONBUILD` the nested
    /// instruction word followed by its arguments).
    pub fn flat_args(&self) -> Vec<String> {
        let mut out = self.args.clone();
        if let Some(sub) = &self.sub {
            out.push(sub.value.clone());
            out.extend(sub.flat_args());
        }
        out
    }

    fn can_contain_heredoc(&self) -> bool {
        let mut n = self;
        if n.value.eq_ignore_ascii_case("onbuild") {
            if let Some(sub) = &n.sub {
                n = sub;
            }
        }
        let v = n.value.to_lowercase();
        matches!(v.as_str(), "add" | "copy" | "run") && !n.json
    }

    /// This node in BuildKit's dump format, without the surrounding parentheses.
    pub fn dump(&self) -> String {
        let mut s = self.value.to_lowercase();
        if !self.flags.is_empty() {
            let fl: Vec<String> = self.flags.iter().map(|f| go_quote(f)).collect();
            s.push_str(&format!(" [{}]", fl.join(" ")));
        }
        for a in &self.args {
            s.push(' ');
            s.push_str(&go_quote(a));
        }
        if let Some(sub) = &self.sub {
            s.push_str(" (");
            s.push_str(&sub.dump());
            s.push(')');
        }
        trim_space(&s).to_string()
    }
}

/// The whole AST in BuildKit's dump format: one `(instruction args...)` line per instruction,
/// each line ending in a newline.
pub fn dump_ast(ast: &Ast) -> String {
    let mut s = String::new();
    for c in &ast.children {
        s.push('(');
        s.push_str(&c.dump());
        s.push_str(")\n");
    }
    s
}

struct Directives {
    escape: char,
    done: bool,
    seen: Vec<String>,
    found: Vec<Directive>,
}

impl Directives {
    /// Look at one line (already trimmed of its line ending) for a directive. Returns whether
    /// it was one.
    fn check(&mut self, line: &str, lineno: usize) -> Result<bool> {
        if self.done {
            return Ok(false);
        }
        let Some(rest) = line.strip_prefix('#') else {
            self.done = true;
            return Ok(false);
        };
        let rest = rest.trim_start_matches(is_space);
        // ^([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$
        let name_len = rest
            .char_indices()
            .find(|&(i, c)| !(c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit())))
            .map(|(i, _)| i)
            .unwrap_or(rest.len());
        let re_space = |c: char| matches!(c, ' ' | '\t' | '\n' | '\u{c}' | '\r');
        let name = &rest[..name_len];
        let after = rest[name_len..].trim_start_matches(re_space);
        let value = after
            .strip_prefix('=')
            .map(|v| v.trim_start_matches(re_space).trim_end_matches(re_space));
        let (Some(value), false) = (value, name.is_empty()) else {
            self.done = true;
            return Ok(false);
        };
        if value.is_empty() || value.contains('\n') {
            self.done = true;
            return Ok(false);
        }
        let key = name.to_lowercase();
        if !matches!(key.as_str(), "syntax" | "escape" | "check") {
            self.done = true;
            return Ok(false);
        }
        if self.seen.contains(&key) {
            return Err(Error::parse(
                lineno,
                format!("only one {key} parser directive can be used"),
            ));
        }
        self.seen.push(key.clone());
        if key == "escape" {
            if value != "`" && value != "\\" {
                return Err(Error::parse(
                    lineno,
                    format!("invalid escape token '{value}' does not match ` or \\"),
                ));
            }
            self.escape = value.chars().next().unwrap_or('\\');
        }
        self.found.push(Directive {
            name: key,
            value: value.to_string(),
            line: lineno,
        });
        Ok(true)
    }
}

fn trim_newline(s: &str) -> &str {
    s.trim_end_matches(['\r', '\n'])
}

fn is_comment(line: &str) -> bool {
    line.trim_start_matches(is_space).starts_with('#')
}

/// Remove a trailing continuation escape; returns the line and whether the logical line ends.
fn trim_continuation(line: &str, escape: char) -> (String, bool) {
    let t = line.trim_end_matches([' ', '\t']);
    if let Some(body) = t.strip_suffix(escape) {
        match body.chars().last() {
            None => return (String::new(), false),
            Some(c) if c != escape => return (body.to_string(), false),
            _ => {}
        }
    }
    (line.to_string(), true)
}

/// Longest line BuildKit's scanner accepts (bytes, without the newline).
const MAX_LINE: usize = 65535;

/// Lines with their endings kept, like BuildKit's scanner.
fn split_lines(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        match rest.find('\n') {
            Some(i) => {
                out.push(&rest[..=i]);
                rest = &rest[i + 1..];
            }
            None => {
                out.push(rest);
                rest = "";
            }
        }
    }
    out
}

/// Parse Dockerfile text into an [`Ast`].
///
/// Fails like Docker on a file with no instructions, a repeated or invalid directive, an
/// `ENV`/`LABEL` without a value, a JSON array holding non-strings, or an unterminated heredoc.
/// Unknown instructions parse (with no arguments) and are rejected by [`crate::lower`].
pub fn parse(text: &str) -> Result<Ast> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines = split_lines(text);
    // BuildKit reads lines with Go's bufio.Scanner and its 64 KiB token limit.
    for (i, l) in lines.iter().enumerate() {
        if l.len() > MAX_LINE + 1 || (!l.ends_with('\n') && l.len() > MAX_LINE) {
            return Err(Error::parse(
                i + 1,
                format!("dockerfile line greater than max allowed size of {MAX_LINE}"),
            ));
        }
    }
    let mut d = Directives {
        escape: '\\',
        done: false,
        seen: Vec::new(),
        found: Vec::new(),
    };
    let mut children = Vec::new();
    let mut warnings = Vec::new();
    let mut comments: Vec<String> = Vec::new();
    let mut idx = 0usize; // index of next line to read; current line number = idx after read
    while idx < lines.len() {
        let raw = lines[idx];
        idx += 1;
        let lineno = idx;
        if is_comment(raw) {
            let t = trim_newline(raw).trim_start_matches(is_space);
            let c = trim_space(&t[1..]).to_string();
            if c.is_empty() {
                comments.clear();
            } else {
                comments.push(c);
            }
        }
        let token = trim_newline(raw).trim_start_matches(is_space);
        if d.check(token, lineno)? {
            comments.pop();
        }
        let token = if is_comment(token) { "" } else { token };
        let start_line = lineno;
        let (first, mut eol) = trim_continuation(token, d.escape);
        if eol && first.is_empty() {
            continue;
        }
        let mut line = first;
        let mut empty_cont = false;
        while !eol && idx < lines.len() {
            let raw = lines[idx];
            idx += 1;
            let token = trim_newline(raw);
            d.check(token, idx)?;
            if is_comment(raw) {
                continue;
            }
            if token.trim_start_matches(is_space).is_empty() {
                empty_cont = true;
                continue;
            }
            let (part, e) = trim_continuation(token, d.escape);
            eol = e;
            line.push_str(&part);
        }
        if empty_cont {
            warnings.push(Warning {
                message: format!("[WARNING]: Empty continuation line found in:\n    {line}"),
                line: idx,
            });
        }
        let mut node = node_from_line(&line, d.escape).map_err(|m| Error::parse(start_line, m))?;
        node.comments = std::mem::take(&mut comments);
        if node.can_contain_heredoc() && line.contains("<<") {
            let docs = heredocs_from_line(&line).map_err(|m| Error::parse(start_line, m))?;
            for mut doc in docs {
                let mut terminated = false;
                while idx < lines.len() {
                    let raw = lines[idx];
                    idx += 1;
                    let mut possible = trim_newline(raw);
                    if doc.chomp {
                        possible = possible.trim_start_matches('\t');
                    }
                    if possible == doc.name {
                        terminated = true;
                        break;
                    }
                    doc.content.push_str(raw);
                }
                if !terminated {
                    return Err(Error::parse(start_line, "unterminated heredoc"));
                }
                node.heredocs.push(doc);
            }
        }
        node.start_line = start_line;
        node.end_line = idx;
        children.push(node);
    }
    if children.is_empty() {
        return Err(Error::parse(
            lines.len().max(1),
            "file with no instructions",
        ));
    }
    Ok(Ast {
        children,
        escape: d.escape,
        directives: d.found,
        warnings,
    })
}

/// BuildKit's `extractBuilderFlags`: leading `--flag` words, then the rest of the line.
/// Works byte by byte as BuildKit does.
fn extract_flags(line: &str) -> (String, Vec<String>) {
    #[derive(PartialEq)]
    enum Ph {
        Spaces,
        Word,
        Quote,
    }
    let b = line.as_bytes();
    let mut words = Vec::new();
    let mut phase = Ph::Spaces;
    let mut word = String::new();
    let mut quote = 0u8;
    let mut blank_ok = false;
    let mut pos = 0usize;
    while pos <= b.len() {
        let ch = if pos < b.len() { b[pos] } else { 0 };
        if phase == Ph::Spaces {
            if pos == b.len() {
                break;
            }
            if is_space_byte(ch) {
                pos += 1;
                continue;
            }
            if ch != b'-' || pos + 1 == b.len() || b[pos + 1] != b'-' {
                return (String::from_utf8_lossy(&b[pos..]).into_owned(), words);
            }
            phase = Ph::Word;
        }
        if (phase == Ph::Word || phase == Ph::Quote) && pos == b.len() {
            if word != "--" && (blank_ok || !word.is_empty()) {
                words.push(word);
            }
            break;
        }
        if phase == Ph::Word {
            if is_space_byte(ch) {
                phase = Ph::Spaces;
                if word == "--" {
                    return (String::from_utf8_lossy(&b[pos..]).into_owned(), words);
                }
                if blank_ok || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                word.clear();
                blank_ok = false;
                pos += 1;
                continue;
            }
            if ch == b'\'' || ch == b'"' {
                quote = ch;
                blank_ok = true;
                phase = Ph::Quote;
                pos += 1;
                continue;
            }
            let mut c = ch;
            if c == b'\\' {
                if pos + 1 == b.len() {
                    pos += 1;
                    continue;
                }
                pos += 1;
                c = b[pos];
            }
            word.push(char::from(c));
            pos += 1;
            continue;
        }
        // in quote
        if ch == quote {
            phase = Ph::Word;
            pos += 1;
            continue;
        }
        let mut c = ch;
        if c == b'\\' {
            if pos + 1 == b.len() {
                phase = Ph::Word;
                pos += 1;
                continue;
            }
            pos += 1;
            c = b[pos];
        }
        word.push(char::from(c));
        pos += 1;
    }
    (String::new(), words)
}

fn split_command(line: &str) -> (String, Vec<String>, String) {
    let t = trim_space(line);
    let parts = split_ws(t, Some(2));
    let cmd = parts[0].clone();
    let (args, flags) = if parts.len() == 2 {
        extract_flags(&parts[1])
    } else {
        (String::new(), Vec::new())
    };
    (cmd, flags, trim_space(&args).to_string())
}

fn empty_node(value: String, original: &str, flags: Vec<String>) -> Node {
    Node {
        value,
        args: Vec::new(),
        sub: None,
        json: false,
        flags,
        heredocs: Vec::new(),
        original: original.to_string(),
        start_line: 0,
        end_line: 0,
        comments: Vec::new(),
    }
}

fn node_from_line(line: &str, escape: char) -> std::result::Result<Node, String> {
    let (cmd, flags, rest) = split_command(line);
    let mut node = empty_node(cmd, line, flags);
    match node.value.to_lowercase().as_str() {
        "add" | "copy" | "volume" => {
            let (args, json) = maybe_json_to_list(&rest)?;
            node.args = args;
            node.json = json;
        }
        "arg" => node.args = parse_words(&rest, escape),
        "cmd" | "entrypoint" | "run" | "shell" => {
            let (args, json) = maybe_json(&rest)?;
            node.args = args;
            node.json = json;
        }
        "env" => node.args = name_val(&rest, "ENV", escape)?,
        "label" => node.args = name_val(&rest, "LABEL", escape)?,
        "expose" | "from" => node.args = whitespace_delimited(&rest),
        "healthcheck" => {
            let b = rest.as_bytes();
            let sep = b.iter().position(|&c| is_space_byte(c)).unwrap_or(b.len());
            let next = b[sep..]
                .iter()
                .position(|&c| !is_space_byte(c))
                .map(|p| p + sep)
                .unwrap_or(b.len());
            if sep > 0 {
                let typ = String::from_utf8_lossy(&b[..sep]).into_owned();
                let r = String::from_utf8_lossy(&b[next..]).into_owned();
                let (args, json) = maybe_json(&r)?;
                node.args = std::iter::once(typ).chain(args).collect();
                node.json = json;
            }
        }
        "maintainer" | "stopsignal" | "user" | "workdir" => {
            if !rest.is_empty() {
                node.args = vec![rest];
            }
        }
        "onbuild" => {
            if !rest.is_empty() {
                node.sub = Some(Box::new(node_from_line(&rest, escape)?));
            }
        }
        _ => node.args = vec![String::new()],
    }
    Ok(node)
}

const NOT_STRINGS: &str = "when using JSON array syntax, arrays must be comprised of strings only";

fn try_json(rest: &str) -> std::result::Result<Option<Vec<String>>, String> {
    let r = rest.trim_start_matches(is_space);
    if !r.starts_with('[') {
        return Ok(None);
    }
    match parse_array(r) {
        JsonArgs::Strings(v) => Ok(Some(v)),
        JsonArgs::NotStrings => Err(NOT_STRINGS.to_string()),
        JsonArgs::Invalid => Ok(None),
    }
}

fn maybe_json(rest: &str) -> std::result::Result<(Vec<String>, bool), String> {
    if rest.is_empty() {
        return Ok((Vec::new(), false));
    }
    match try_json(rest)? {
        Some(v) => Ok((v, true)),
        None => Ok((vec![rest.to_string()], false)),
    }
}

fn maybe_json_to_list(rest: &str) -> std::result::Result<(Vec<String>, bool), String> {
    match try_json(rest)? {
        Some(v) => Ok((v, true)),
        None => Ok((whitespace_delimited(rest), false)),
    }
}

fn whitespace_delimited(rest: &str) -> Vec<String> {
    if rest.is_empty() {
        return Vec::new();
    }
    split_ws(rest, None)
}

/// BuildKit's `parseWords`: split on white space, keeping quotes and escapes.
fn parse_words(rest: &str, escape: char) -> Vec<String> {
    #[derive(PartialEq)]
    enum Ph {
        Spaces,
        Word,
        Quote,
    }
    let chars: Vec<char> = rest.chars().collect();
    let mut words = Vec::new();
    let mut phase = Ph::Spaces;
    let mut quote = '\0';
    let mut blank_ok = false;
    let mut word = String::new();
    let mut pos = 0usize;
    while pos <= chars.len() {
        let at_end = pos == chars.len();
        let mut ch = if at_end { '\0' } else { chars[pos] };
        if phase == Ph::Spaces {
            if at_end {
                break;
            }
            if is_space(ch) {
                pos += 1;
                continue;
            }
            phase = Ph::Word;
        }
        if (phase == Ph::Word || phase == Ph::Quote) && at_end {
            if blank_ok || !word.is_empty() {
                words.push(std::mem::take(&mut word));
            }
            break;
        }
        if phase == Ph::Word {
            if is_space(ch) {
                phase = Ph::Spaces;
                if blank_ok || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                word.clear();
                blank_ok = false;
                pos += 1;
                continue;
            }
            if ch == '\'' || ch == '"' {
                quote = ch;
                blank_ok = true;
                phase = Ph::Quote;
            }
            if ch == escape {
                if pos + 1 == chars.len() {
                    pos += 1;
                    continue;
                }
                word.push(ch);
                pos += 1;
                ch = chars[pos];
            }
            word.push(ch);
            pos += 1;
            continue;
        }
        // in quote
        if ch == quote {
            phase = Ph::Word;
        }
        if ch == escape && quote != '\'' {
            if pos + 1 == chars.len() {
                phase = Ph::Word;
                pos += 1;
                continue;
            }
            pos += 1;
            word.push(ch);
            ch = chars[pos];
        }
        word.push(ch);
        pos += 1;
    }
    words
}

fn name_val(rest: &str, key: &str, escape: char) -> std::result::Result<Vec<String>, String> {
    let words = parse_words(rest, escape);
    if words.is_empty() {
        return Ok(Vec::new());
    }
    if !words[0].contains('=') {
        let parts = split_ws(rest, Some(2));
        if parts.len() < 2 {
            return Err(format!("{key} must have two arguments"));
        }
        return Ok(vec![parts[0].clone(), parts[1].clone(), String::new()]);
    }
    let mut out = Vec::new();
    for w in words {
        let Some((k, v)) = w.split_once('=') else {
            return Err(format!(
                "Syntax error - can't find = in {}. Must be of the form: name=value",
                go_quote(&w)
            ));
        };
        out.extend([k.to_string(), v.to_string(), "=".to_string()]);
    }
    Ok(out)
}

/// Recognise a heredoc word such as `<<EOF`, `<<-"EOF"` or `3<<EOF` (BuildKit's
/// `ParseHeredoc`). Returns `None` for anything else.
pub fn parse_heredoc(word: &str) -> Result<Option<Heredoc>> {
    parse_heredoc_inner(word).map_err(Error::Value)
}

fn parse_heredoc_inner(word: &str) -> std::result::Result<Option<Heredoc>, String> {
    // ^(\d*)<<(-?)([^<]*)$
    let digits = word.len() - word.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let Some(after) = word[digits..].strip_prefix("<<") else {
        return Ok(None);
    };
    let (chomp, rest) = match after.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, after),
    };
    if rest.contains('<') || rest.is_empty() {
        return Ok(None);
    }
    let fd: u32 = word[..digits].parse().unwrap_or(0);
    let mut lex = ShellLex::new('\\');
    lex.skip_unset_env = true;
    let empty: Vec<(String, String)> = Vec::new();
    let words = lex.process_words(rest, &empty).map_err(|e| e.to_string())?;
    if words.len() != 1 {
        return Ok(None);
    }
    lex.raw_quotes = true;
    let raw = lex.process_words(rest, &empty).map_err(|e| e.to_string())?;
    if raw.len() != words.len() {
        return Err(format!(
            "internal lexing of heredoc produced inconsistent results: {rest}"
        ));
    }
    let count = |s: &str| s.chars().filter(|&c| c == '\'' || c == '"').count();
    let expand = count(&words[0]) == count(&raw[0]);
    Ok(Some(Heredoc {
        name: words[0].clone(),
        file_descriptor: fd,
        expand,
        chomp,
        content: String::new(),
    }))
}

fn heredocs_from_line(line: &str) -> std::result::Result<Vec<Heredoc>, String> {
    let mut lex = ShellLex::new('\\');
    lex.raw_quotes = true;
    lex.raw_escapes = true;
    lex.skip_unset_env = true;
    let empty: Vec<(String, String)> = Vec::new();
    let words = lex.process_words(line, &empty).unwrap_or_default();
    let mut docs = Vec::new();
    for w in words {
        if let Some(h) = parse_heredoc_inner(&w)? {
            docs.push(h);
        }
    }
    Ok(docs)
}

/// Strip leading tabs from every line of a heredoc body (for `<<-`).
pub fn chomp_heredoc(content: &str) -> String {
    split_lines(content)
        .into_iter()
        .map(|l| l.trim_start_matches('\t'))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_and_args() {
        let (args, flags) = extract_flags("--from=a --chown='x y' src dst");
        assert_eq!(flags, vec!["--from=a", "--chown=x y"]);
        assert_eq!(args, "src dst");
        let (args, flags) = extract_flags("--a -- --b");
        assert_eq!(flags, vec!["--a"]);
        assert_eq!(args, " --b");
    }

    #[test]
    fn continuation() {
        assert_eq!(trim_continuation("a \\  ", '\\'), ("a ".into(), false));
        assert_eq!(trim_continuation("\\", '\\'), ("".into(), false));
        assert_eq!(trim_continuation("a\\\\", '\\'), ("a\\\\".into(), true));
    }

    #[test]
    fn heredoc_words() {
        let h = parse_heredoc("<<-\"EOF\"").unwrap().unwrap();
        assert!(h.chomp && !h.expand && h.name == "EOF");
        let h = parse_heredoc("3<<EOF").unwrap().unwrap();
        assert!(h.expand && h.file_descriptor == 3);
        assert!(parse_heredoc("<<").unwrap().is_none());
    }
}
