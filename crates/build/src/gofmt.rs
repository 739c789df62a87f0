//! Go's formatting of the values the classic builder prints in history: `%q` of strings and
//! string slices, `%v` of slices, `time.Duration.String()`.

/// `strconv.Quote`.
pub fn quote(s: &str) -> String {
    dockerfile::go_quote(s)
}

/// `%q` of a `[]string`: `["a" "b"]`.
pub fn quote_list(v: &[String]) -> String {
    format!(
        "[{}]",
        v.iter().map(|s| quote(s)).collect::<Vec<_>>().join(" ")
    )
}

/// `%v` of a `[]string`: `[a b]`.
pub fn plain_list(v: &[String]) -> String {
    format!("[{}]", v.join(" "))
}

/// `time.Duration(ns).String()`.
pub fn duration(ns: i64) -> String {
    if ns == 0 {
        return "0s".into();
    }
    let neg = ns < 0;
    let u = ns.unsigned_abs();
    let s = if u < 1_000_000_000 {
        let (unit, div) = if u < 1_000 {
            ("ns", 1)
        } else if u < 1_000_000 {
            ("µs", 1_000)
        } else {
            ("ms", 1_000_000)
        };
        format!("{}{unit}", trim_frac(u, div))
    } else {
        let h = u / 3_600_000_000_000;
        let m = (u / 60_000_000_000) % 60;
        let sec = trim_frac(u % 60_000_000_000, 1_000_000_000);
        if h > 0 {
            format!("{h}h{m}m{sec}s")
        } else if m > 0 {
            format!("{m}m{sec}s")
        } else {
            format!("{sec}s")
        }
    };
    if neg {
        format!("-{s}")
    } else {
        s
    }
}

fn trim_frac(v: u64, div: u64) -> String {
    let whole = v / div;
    let frac = v % div;
    if frac == 0 {
        return whole.to_string();
    }
    let width = div.to_string().len() - 1;
    let f = format!("{frac:0width$}");
    format!("{whole}.{}", f.trim_end_matches('0'))
}

/// `%q` of an int (a rune literal), as `HEALTHCHECK`'s Retries prints.
pub fn quote_rune(n: i64) -> String {
    match char::from_u32(n as u32) {
        Some('\'') => "'\\''".into(),
        Some('\\') => "'\\\\'".into(),
        Some(c) if (n as u32) >= 0x20 && n != 0x7f => format!("'{c}'"),
        _ => format!("'\\x{:02x}'", n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_go() {
        assert_eq!(
            quote_list(&["/bin/sh".into(), "-c".into()]),
            r#"["/bin/sh" "-c"]"#
        );
        assert_eq!(plain_list(&["/data".into()]), "[/data]");
        assert_eq!(quote("a\"b\n"), r#""a\"b\n""#);
        assert_eq!(duration(30_000_000_000), "30s");
        assert_eq!(duration(90_000_000_000), "1m30s");
        assert_eq!(duration(3_600_000_000_000), "1h0m0s");
        assert_eq!(duration(1_500_000_000), "1.5s");
        assert_eq!(duration(500_000_000), "500ms");
        assert_eq!(quote_rune(0), r"'\x00'");
        assert_eq!(quote_rune(3), r"'\x03'");
        assert_eq!(quote_rune(65), "'A'");
    }
}
