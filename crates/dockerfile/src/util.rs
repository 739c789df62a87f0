//! Small helpers that reproduce Go standard-library behaviour the Dockerfile frontend depends
//! on: `unicode.IsSpace`, `strconv.Quote`, `time.ParseDuration`, `strconv.ParseBool`.

use crate::error::Error;

/// Go's `unicode.IsSpace` (the same set as Rust's `char::is_whitespace`).
pub(crate) fn is_space(c: char) -> bool {
    c.is_whitespace()
}

/// Go's `unicode.IsSpace(rune(b))` applied to a single byte, as BuildKit does in a few
/// byte-wise loops (so 0x85 and 0xA0 count as spaces there).
pub(crate) fn is_space_byte(b: u8) -> bool {
    matches!(b, b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | b' ' | 0x85 | 0xA0)
}

/// The regexp class `[\t\v\f\r ]` BuildKit uses to split words.
pub(crate) fn is_ws_class(c: char) -> bool {
    matches!(c, '\t' | '\u{0b}' | '\u{0c}' | '\r' | ' ')
}

/// Split on runs of `[\t\v\f\r ]`, like Go's `regexp.Split(s, n)` for that pattern.
pub(crate) fn split_ws(s: &str, n: Option<usize>) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = s;
    loop {
        if let Some(limit) = n {
            if out.len() + 1 == limit {
                out.push(rest.to_string());
                return out;
            }
        }
        match rest.find(is_ws_class) {
            None => {
                out.push(rest.to_string());
                return out;
            }
            Some(i) => {
                out.push(rest[..i].to_string());
                let after = &rest[i..];
                let skip = after.len() - after.trim_start_matches(is_ws_class).len();
                rest = &after[skip..];
            }
        }
    }
}

/// Go's `strings.TrimSpace`.
pub(crate) fn trim_space(s: &str) -> &str {
    s.trim_matches(is_space)
}

fn is_format_or_private(c: char) -> bool {
    let u = c as u32;
    matches!(u,
        0xAD | 0x600..=0x605 | 0x61C | 0x6DD | 0x70F | 0x180E | 0x200B..=0x200F
        | 0x202A..=0x202E | 0x2060..=0x2064 | 0x2066..=0x206F | 0xFEFF | 0xFFF9..=0xFFFB
        | 0x110BD | 0x1BCA0..=0x1BCA3 | 0x1D173..=0x1D17A | 0xE0001 | 0xE0020..=0xE007F
        | 0xE000..=0xF8FF | 0xF0000..=0x10FFFF | 0xFDD0..=0xFDEF)
        || (u & 0xFFFE) == 0xFFFE
}

/// An approximation of Go's `strconv.IsPrint` without Unicode tables.
fn is_print(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    !(c.is_control() || c.is_whitespace() || is_format_or_private(c))
}

/// Go's `strconv.Quote`: a double-quoted string with Go escapes.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if is_print(c) => out.push(c),
            '\u{07}' => out.push_str("\\a"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{0b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push_str(&format!("\\U{:08x}", c as u32)),
        }
    }
    out.push('"');
    out
}

/// Go's `strconv.ParseBool`.
pub(crate) fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// Go's `time.ParseDuration`, as nanoseconds (may be negative). The error is an
/// [`Error::Value`] with Go's message (`time: invalid duration "x"`).
pub fn parse_go_duration(s: &str) -> crate::Result<i128> {
    go_duration_nanos(s).map_err(Error::Value)
}

fn go_duration_nanos(s: &str) -> Result<i128, String> {
    let err = || format!("time: invalid duration {}", go_quote(s));
    let mut rest = s;
    let mut neg = false;
    if let Some(r) = rest.strip_prefix('-') {
        neg = true;
        rest = r;
    } else if let Some(r) = rest.strip_prefix('+') {
        rest = r;
    }
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(err());
    }
    let mut total: i128 = 0;
    while !rest.is_empty() {
        let int_len = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let int_part = &rest[..int_len];
        rest = &rest[int_len..];
        let mut frac_part = "";
        if let Some(r) = rest.strip_prefix('.') {
            let l = r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len());
            frac_part = &r[..l];
            rest = &r[l..];
            if int_part.is_empty() && frac_part.is_empty() {
                return Err(err());
            }
        } else if int_part.is_empty() {
            return Err(err());
        }
        let unit_len = rest
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let mult: i128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => return Err(format!("time: missing unit in duration {}", go_quote(s))),
            _ => {
                return Err(format!(
                    "time: unknown unit {} in duration {}",
                    go_quote(unit),
                    go_quote(s)
                ))
            }
        };
        let iv: i128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse::<i128>().map_err(|_| err())?
        };
        let mut v = iv.checked_mul(mult).ok_or_else(err)?;
        if !frac_part.is_empty() {
            let digits = &frac_part[..frac_part.len().min(18)];
            let fv: i128 = digits.parse().map_err(|_| err())?;
            let scale = 10i128.pow(digits.len() as u32);
            v += fv * mult / scale;
        }
        total = total.checked_add(v).ok_or_else(err)?;
        if total > i64::MAX as i128 {
            return Err(err());
        }
    }
    Ok(if neg { -total } else { total })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_matches_go() {
        assert_eq!(go_quote("a\"b\\"), r#""a\"b\\""#);
        assert_eq!(go_quote("\u{0}\u{7f}\n"), r#""\x00\x7f\n""#);
        assert_eq!(go_quote("♥\u{a0}"), "\"♥\\u00a0\"");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_go_duration("5s"), Ok(5_000_000_000));
        assert_eq!(parse_go_duration("1m30s"), Ok(90_000_000_000));
        assert_eq!(parse_go_duration("1.5ms"), Ok(1_500_000));
        assert_eq!(parse_go_duration("0"), Ok(0));
        assert_eq!(
            parse_go_duration("5").unwrap_err().to_string(),
            "time: missing unit in duration \"5\""
        );
        assert!(parse_go_duration("abc").is_err());
    }

    #[test]
    fn split_like_go() {
        assert_eq!(split_ws("a  b\tc", None), vec!["a", "b", "c"]);
        assert_eq!(split_ws("a  b c", Some(2)), vec!["a", "b c"]);
        assert_eq!(split_ws("a", Some(2)), vec!["a"]);
    }
}
