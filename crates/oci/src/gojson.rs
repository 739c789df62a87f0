//! JSON written byte for byte as Go's `encoding/json` writes it, which is what Docker stores
//! and prints: `json.Marshal` escapes `<`, `>`, `&`, U+2028 and U+2029 (`\u003c` …) and
//! writes backspace and form feed as `\u0008`/`\u000c`; the CLI's encoders turn the HTML
//! escaping off and may indent. Field order comes from the serde structs themselves.

use std::io;

use serde::Serialize;
use serde_json::ser::{CharEscape, CompactFormatter, Formatter, PrettyFormatter};

/// How to write Go-compatible JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GoJson {
    /// Escape `<`, `>`, `&`, U+2028, U+2029 as `json.Marshal` does (Docker's stored configs
    /// and manifests); off for the CLI's `json.Encoder` with `SetEscapeHTML(false)`.
    pub escape_html: bool,
    /// Indent with this many spaces per level (`json.MarshalIndent`), or compact when `None`.
    pub indent: Option<usize>,
}

impl GoJson {
    /// `json.Marshal`: compact, HTML-escaped. What dockerd writes to disk.
    pub const MARSHAL: GoJson = GoJson {
        escape_html: true,
        indent: None,
    };
    /// The CLI's `json` template function: compact, not HTML-escaped.
    pub const ENCODER: GoJson = GoJson {
        escape_html: false,
        indent: None,
    };
    /// `docker inspect` without `-f`: 4-space indent, not HTML-escaped.
    pub const INSPECT: GoJson = GoJson {
        escape_html: false,
        indent: Some(4),
    };

    /// Serialises `value` into bytes.
    pub fn to_vec<T: Serialize + ?Sized>(self, value: &T) -> serde_json::Result<Vec<u8>> {
        let mut out = Vec::new();
        self.to_writer(&mut out, value)?;
        Ok(out)
    }

    /// Serialises `value` into a string.
    pub fn to_string<T: Serialize + ?Sized>(self, value: &T) -> serde_json::Result<String> {
        let v = self.to_vec(value)?;
        // The serializer only writes valid UTF-8.
        String::from_utf8(v).map_err(|e| serde::ser::Error::custom(e.to_string()))
    }

    /// Serialises `value` into `w`.
    pub fn to_writer<W: io::Write, T: Serialize + ?Sized>(
        self,
        w: W,
        value: &T,
    ) -> serde_json::Result<()> {
        match self.indent {
            None => {
                let f = GoFormatter {
                    inner: CompactFormatter,
                    escape_html: self.escape_html,
                };
                value.serialize(&mut serde_json::Serializer::with_formatter(w, f))
            }
            Some(n) => {
                let spaces = vec![b' '; n];
                let f = GoFormatter {
                    inner: PrettyFormatter::with_indent(&spaces),
                    escape_html: self.escape_html,
                };
                value.serialize(&mut serde_json::Serializer::with_formatter(w, f))
            }
        }
    }
}

struct GoFormatter<F> {
    inner: F,
    escape_html: bool,
}

impl<F: Formatter> Formatter for GoFormatter<F> {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            let esc = match c {
                '<' | '>' | '&' if self.escape_html => true,
                // Go escapes these two whatever SetEscapeHTML says.
                '\u{2028}' | '\u{2029}' => true,
                _ => false,
            };
            if esc {
                w.write_all(&fragment.as_bytes()[start..i])?;
                write!(w, "\\u{:04x}", c as u32)?;
                start = i + c.len_utf8();
            }
        }
        w.write_all(&fragment.as_bytes()[start..])
    }

    fn write_char_escape<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        e: CharEscape,
    ) -> io::Result<()> {
        match e {
            CharEscape::Backspace => w.write_all(b"\\u0008"),
            CharEscape::FormFeed => w.write_all(b"\\u000c"),
            other => self.inner.write_char_escape(w, other),
        }
    }

    fn begin_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.inner.begin_array(w)
    }
    fn end_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.inner.end_array(w)
    }
    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.inner.begin_array_value(w, first)
    }
    fn end_array_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.inner.end_array_value(w)
    }
    fn begin_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.inner.begin_object(w)
    }
    fn end_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.inner.end_object(w)
    }
    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.inner.begin_object_key(w, first)
    }
    fn end_object_key<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.inner.end_object_key(w)
    }
    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.inner.begin_object_value(w)
    }
    fn end_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.inner.end_object_value(w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn marshal_escapes_html_like_go() {
        let v = json!({"k": "a<b>&c\u{2028}\u{8}\u{c}\n\t\u{1}\"\\/é"});
        assert_eq!(
            GoJson::MARSHAL.to_string(&v).unwrap(),
            r#"{"k":"a\u003cb\u003e\u0026c\u2028\u0008\u000c\n\t\u0001\"\\/é"}"#
        );
        assert_eq!(
            GoJson::ENCODER.to_string(&v).unwrap(),
            r#"{"k":"a<b>&c\u2028\u0008\u000c\n\t\u0001\"\\/é"}"#
        );
    }

    #[test]
    fn indent_like_marshal_indent() {
        let v = json!({"a": [1, "x"], "b": {}, "c": [], "d": null});
        assert_eq!(
            GoJson::INSPECT.to_string(&v).unwrap(),
            "{\n    \"a\": [\n        1,\n        \"x\"\n    ],\n    \"b\": {},\n    \"c\": [],\n    \"d\": null\n}"
        );
    }
}
