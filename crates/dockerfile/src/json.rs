//! A JSON reader with Go's `encoding/json` acceptance rules, used only to decide whether an
//! instruction's arguments are a JSON array of strings (exec form).

/// What a JSON-looking argument turned out to be.
pub(crate) enum JsonArgs {
    /// A valid array whose elements are all strings.
    Strings(Vec<String>),
    /// Valid JSON array holding something other than a string: Docker rejects it.
    NotStrings,
    /// Not valid JSON: Docker falls back to shell form.
    Invalid,
}

/// Parse `s` (already known to start with `[`) as a whole JSON document.
pub(crate) fn parse_array(s: &str) -> JsonArgs {
    let mut p = P {
        b: s.as_bytes(),
        s,
        i: 0,
    };
    p.ws();
    if p.peek() != Some(b'[') {
        return JsonArgs::Invalid;
    }
    p.i += 1;
    let mut items: Vec<Option<String>> = Vec::new();
    p.ws();
    if p.peek() == Some(b']') {
        p.i += 1;
    } else {
        loop {
            p.ws();
            match p.peek() {
                Some(b'"') => match p.string() {
                    Some(st) => items.push(Some(st)),
                    None => return JsonArgs::Invalid,
                },
                _ => {
                    if !p.value() {
                        return JsonArgs::Invalid;
                    }
                    items.push(None);
                }
            }
            p.ws();
            match p.peek() {
                Some(b',') => p.i += 1,
                Some(b']') => {
                    p.i += 1;
                    break;
                }
                _ => return JsonArgs::Invalid,
            }
        }
    }
    p.ws();
    if p.i != p.b.len() {
        return JsonArgs::Invalid;
    }
    if items.iter().any(|x| x.is_none()) {
        return JsonArgs::NotStrings;
    }
    JsonArgs::Strings(items.into_iter().flatten().collect())
}

struct P<'a> {
    b: &'a [u8],
    s: &'a str,
    i: usize,
}

impl P<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }
    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }
    fn lit(&mut self, w: &[u8]) -> bool {
        if self.b[self.i..].starts_with(w) {
            self.i += w.len();
            true
        } else {
            false
        }
    }
    fn hex4(&self, at: usize) -> Option<u32> {
        let h = self.b.get(at..at + 4)?;
        let s = std::str::from_utf8(h).ok()?;
        if !s.bytes().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        u32::from_str_radix(s, 16).ok()
    }
    /// A string starting at `"`; `None` when invalid.
    fn string(&mut self) -> Option<String> {
        self.i += 1;
        let mut out = String::new();
        loop {
            let c = self.peek()?;
            match c {
                b'"' => {
                    self.i += 1;
                    return Some(out);
                }
                b'\\' => {
                    let e = *self.b.get(self.i + 1)?;
                    self.i += 2;
                    match e {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let r = self.hex4(self.i)?;
                            self.i += 4;
                            if (0xD800..0xE000).contains(&r) {
                                let mut dec = None;
                                if r < 0xDC00
                                    && self.b.get(self.i) == Some(&b'\\')
                                    && self.b.get(self.i + 1) == Some(&b'u')
                                {
                                    if let Some(r2) = self.hex4(self.i + 2) {
                                        if (0xDC00..0xE000).contains(&r2) {
                                            dec = char::from_u32(
                                                0x10000 + ((r - 0xD800) << 10) + (r2 - 0xDC00),
                                            );
                                        }
                                    }
                                }
                                match dec {
                                    Some(ch) => {
                                        self.i += 6;
                                        out.push(ch);
                                    }
                                    None => out.push('\u{FFFD}'),
                                }
                            } else {
                                out.push(char::from_u32(r).unwrap_or('\u{FFFD}'));
                            }
                        }
                        _ => return None,
                    }
                }
                c if c < 0x20 => return None,
                _ => {
                    // copy one UTF-8 character
                    let ch = self.s[self.i..].chars().next()?;
                    out.push(ch);
                    self.i += ch.len_utf8();
                }
            }
        }
    }
    fn number(&mut self) -> bool {
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.peek() {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => {
                while matches!(self.peek(), Some(b'0'..=b'9')) {
                    self.i += 1;
                }
            }
            _ => return false,
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return false;
            }
            while matches!(self.peek(), Some(b'0'..=b'9')) {
                self.i += 1;
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return false;
            }
            while matches!(self.peek(), Some(b'0'..=b'9')) {
                self.i += 1;
            }
        }
        true
    }
    /// Skip any JSON value (iteratively, so deep nesting cannot overflow the stack).
    fn value(&mut self) -> bool {
        // stack of containers: b'[' or b'{'
        let mut stack: Vec<u8> = Vec::new();
        loop {
            self.ws();
            // parse a scalar or open a container
            match self.peek() {
                Some(b'[') => {
                    self.i += 1;
                    self.ws();
                    if self.peek() == Some(b']') {
                        self.i += 1;
                    } else {
                        stack.push(b'[');
                        if stack.len() > 10000 {
                            return false;
                        }
                        continue;
                    }
                }
                Some(b'{') => {
                    self.i += 1;
                    self.ws();
                    if self.peek() == Some(b'}') {
                        self.i += 1;
                    } else {
                        stack.push(b'{');
                        if stack.len() > 10000 {
                            return false;
                        }
                        if !self.key() {
                            return false;
                        }
                        continue;
                    }
                }
                Some(b'"') => {
                    if self.string().is_none() {
                        return false;
                    }
                }
                Some(b't') => {
                    if !self.lit(b"true") {
                        return false;
                    }
                }
                Some(b'f') => {
                    if !self.lit(b"false") {
                        return false;
                    }
                }
                Some(b'n') => {
                    if !self.lit(b"null") {
                        return false;
                    }
                }
                Some(b'-' | b'0'..=b'9') => {
                    if !self.number() {
                        return false;
                    }
                }
                _ => return false,
            }
            // after a value: close containers or continue with a comma
            loop {
                let Some(&top) = stack.last() else {
                    return true;
                };
                self.ws();
                match self.peek() {
                    Some(b',') => {
                        self.i += 1;
                        if top == b'{' && !self.key() {
                            return false;
                        }
                        break;
                    }
                    Some(b']') if top == b'[' => {
                        self.i += 1;
                        stack.pop();
                    }
                    Some(b'}') if top == b'{' => {
                        self.i += 1;
                        stack.pop();
                    }
                    _ => return false,
                }
            }
        }
    }
    /// An object key and its colon.
    fn key(&mut self) -> bool {
        self.ws();
        if self.peek() != Some(b'"') || self.string().is_none() {
            return false;
        }
        self.ws();
        if self.peek() != Some(b':') {
            return false;
        }
        self.i += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        assert!(matches!(parse_array(r#"["a", "b"]"#), JsonArgs::Strings(v) if v == ["a", "b"]));
        assert!(matches!(
            parse_array(r#"["a", ["b"]]"#),
            JsonArgs::NotStrings
        ));
        assert!(matches!(
            parse_array(r#"["a", {"x": [1]}]"#),
            JsonArgs::NotStrings
        ));
        assert!(matches!(parse_array(r#"['a']"#), JsonArgs::Invalid));
        assert!(matches!(parse_array(r#"["a"] x"#), JsonArgs::Invalid));
        assert!(
            matches!(parse_array(r#"["\ud83d\ude00\ud800"]"#), JsonArgs::Strings(v) if v == ["😀\u{fffd}"])
        );
    }
}
