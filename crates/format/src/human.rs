//! Docker's human-readable strings, as go-units and the CLI's formatter print them: sizes
//! (`1.99MB`, `3.22kB`), durations (`About an hour`), `… ago`, short IDs and the `…`
//! ellipsis of long cells.

use std::time::Duration;

use unicode_width::UnicodeWidthChar;

const DECIMAL_UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
const BINARY_UNITS: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];

/// Go's `fmt` `%.{prec}g` for a finite, non-negative or negative float.
pub fn go_format_g(v: f64, prec: usize) -> String {
    let prec = prec.max(1);
    if v == 0.0 {
        return "0".to_string();
    }
    if !v.is_finite() {
        return if v.is_nan() {
            "NaN".into()
        } else if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    // Round to `prec` significant digits first: the exponent after rounding decides the form.
    let sci = format!("{:.*e}", prec - 1, v);
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if exp < -4 || exp >= prec as i32 {
        let mant = trim_zeros(mant);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mant}e{sign}{:02}", exp.abs())
    } else {
        let decimals = (prec as i32 - 1 - exp).max(0) as usize;
        trim_zeros(&format!("{v:.decimals$}")).to_string()
    }
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

fn custom_size(size: f64, base: f64, units: &[&str], prec: usize) -> String {
    let mut size = size;
    let mut i = 0;
    while size >= base && i < units.len() - 1 {
        size /= base;
        i += 1;
    }
    format!("{}{}", go_format_g(size, prec), units[i])
}

/// go-units `HumanSizeWithPrecision(size, 3)`: what `images`, `history` and `ps -s` print
/// (`1.99MB`, `3.22kB`, `745B`, `0B`).
pub fn human_size(bytes: u64) -> String {
    human_size_with_precision(bytes as f64, 3)
}

/// go-units `HumanSize` (4 significant digits), used by `system df` (`1.986MB`).
pub fn human_size_4(bytes: u64) -> String {
    human_size_with_precision(bytes as f64, 4)
}

/// go-units `HumanSizeWithPrecision`: decimal units, `%.{prec}g`.
pub fn human_size_with_precision(size: f64, prec: usize) -> String {
    custom_size(size, 1000.0, &DECIMAL_UNITS, prec)
}

/// go-units `BytesSize`: binary units, 4 significant digits (`1.5KiB`).
pub fn bytes_size(bytes: u64) -> String {
    custom_size(bytes as f64, 1024.0, &BINARY_UNITS, 4)
}

/// go-humanize `Bytes`, which dive prints (`2.1 MB`, `512 kB`, `7 B`): decimal units, one
/// decimal below 10, none above.
pub fn humanize_bytes(bytes: u64) -> String {
    if bytes < 10 {
        return format!("{bytes} B");
    }
    let units = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let e = ((bytes as f64).ln() / 1000f64.ln()).floor();
    let val = ((bytes as f64) / 1000f64.powf(e) * 10.0 + 0.5).floor() / 10.0;
    let unit = units[(e as usize).min(units.len() - 1)];
    if val < 10.0 {
        format!("{val:.1} {unit}")
    } else {
        format!("{val:.0} {unit}")
    }
}

/// go-units `HumanDuration`: `Less than a second`, `1 second`, `N seconds`, `About a
/// minute`, `N minutes`, `About an hour`, `N hours`, `N days`, `N weeks`, `N months`,
/// `N years`.
pub fn human_duration(d: Duration) -> String {
    let secs_f = d.as_secs_f64();
    let seconds = d.as_secs();
    if seconds < 1 {
        return "Less than a second".into();
    }
    if seconds == 1 {
        return "1 second".into();
    }
    if seconds < 60 {
        return format!("{seconds} seconds");
    }
    let minutes = seconds / 60;
    if minutes == 1 {
        return "About a minute".into();
    }
    if minutes < 60 {
        return format!("{minutes} minutes");
    }
    let hours = (secs_f / 3600.0).round() as u64;
    if hours == 1 {
        return "About an hour".into();
    }
    if hours < 48 {
        return format!("{hours} hours");
    }
    if hours < 24 * 7 * 2 {
        return format!("{} days", hours / 24);
    }
    if hours < 24 * 30 * 2 {
        return format!("{} weeks", hours / 24 / 7);
    }
    if hours < 24 * 365 * 2 {
        return format!("{} months", hours / 24 / 30);
    }
    format!("{} years", seconds / 3600 / 24 / 365)
}

/// `CreatedSince` of `images` and `history`: `human_duration(now - then) + " ago"`, with
/// times in seconds since the epoch (fractions allowed). A time in the future counts as
/// less than a second, as in Go (a negative duration).
pub fn human_ago(then_secs: f64, now_secs: f64) -> String {
    let d = (now_secs - then_secs).max(0.0);
    format!("{} ago", human_duration(Duration::from_secs_f64(d)))
}

/// Docker's `stringid.TruncateID`: drops an `algo:` prefix and keeps 12 characters.
pub fn short_id(id: &str) -> String {
    let id = id.split_once(':').map(|x| x.1).unwrap_or(id);
    id.chars().take(12).collect()
}

/// Display width of `s` in terminal columns (East Asian wide characters count 2).
pub fn display_width(s: &str) -> usize {
    s.chars().map(|c| c.width().unwrap_or(0)).sum()
}

/// The CLI's `formatter.Ellipsis`: `s` when it fits in `max_width` display columns, else its
/// longest prefix of at most `max_width - 1` columns followed by `…`.
pub fn ellipsis(s: &str, max_width: usize) -> String {
    if max_width == 0 {
        return String::new();
    }
    if display_width(s) <= max_width {
        return s.to_string();
    }
    let mut out = String::new();
    let mut w = 0;
    for c in s.chars() {
        let cw = c.width().unwrap_or(0);
        if w + cw > max_width - 1 {
            break;
        }
        w += cw;
        out.push(c);
    }
    out.push('…');
    out
}

/// The `CREATED BY` cell of `docker history`: tabs become spaces, then (unless `--no-trunc`)
/// the text is cut to 45 columns with `…`.
pub fn history_created_by(created_by: &str, truncate: bool) -> String {
    let s = created_by.replace('\t', " ");
    if truncate {
        ellipsis(&s, 45)
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_as_go_humanize_prints_them() {
        // go-humanize's own test table.
        assert_eq!(humanize_bytes(0), "0 B");
        assert_eq!(humanize_bytes(9), "9 B");
        assert_eq!(humanize_bytes(10), "10 B");
        assert_eq!(humanize_bytes(1000), "1.0 kB");
        assert_eq!(humanize_bytes(5500), "5.5 kB");
        assert_eq!(humanize_bytes(1024), "1.0 kB");
        assert_eq!(humanize_bytes(1_048_576), "1.0 MB");
        assert_eq!(humanize_bytes(2_097_152), "2.1 MB");
        assert_eq!(humanize_bytes(82_854_982), "83 MB");
    }

    #[test]
    fn sizes_as_docker_prints_them() {
        // Values printed by Docker 20.10 (`docker images`, `history`, `system df`).
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(745), "745B");
        assert_eq!(human_size(3216), "3.22kB");
        assert_eq!(human_size(1_985_559), "1.99MB");
        assert_eq!(human_size(1_984_241), "1.98MB");
        assert_eq!(human_size(58), "58B");
        assert_eq!(human_size(87_800_000), "87.8MB");
        assert_eq!(human_size(1000), "1kB");
        assert_eq!(human_size(999_999), "1e+03kB");
        assert_eq!(human_size_4(1_985_559), "1.986MB");
        assert_eq!(human_size_4(21_830_000), "21.83MB");
        assert_eq!(human_size_4(36), "36B");
        assert_eq!(bytes_size(1536), "1.5KiB");
        assert_eq!(bytes_size(1024 * 1024), "1MiB");
    }

    #[test]
    fn go_g_format() {
        assert_eq!(go_format_g(1.985559, 3), "1.99");
        assert_eq!(go_format_g(100.0, 3), "100");
        assert_eq!(go_format_g(0.0001234, 3), "0.000123");
        assert_eq!(go_format_g(0.00001234, 3), "1.23e-05");
        assert_eq!(go_format_g(1234.0, 3), "1.23e+03");
        assert_eq!(go_format_g(2.5, 3), "2.5");
    }

    #[test]
    fn durations() {
        let s = Duration::from_secs;
        assert_eq!(
            human_duration(Duration::from_millis(500)),
            "Less than a second"
        );
        assert_eq!(human_duration(s(1)), "1 second");
        assert_eq!(human_duration(s(7)), "7 seconds");
        assert_eq!(human_duration(s(59)), "59 seconds");
        assert_eq!(human_duration(s(60)), "About a minute");
        assert_eq!(human_duration(s(119)), "About a minute");
        assert_eq!(human_duration(s(120)), "2 minutes");
        assert_eq!(human_duration(s(3599)), "59 minutes");
        assert_eq!(human_duration(s(3600)), "About an hour");
        assert_eq!(human_duration(s(5399)), "About an hour");
        assert_eq!(human_duration(s(5400)), "2 hours");
        assert_eq!(human_duration(s(47 * 3600)), "47 hours");
        assert_eq!(human_duration(s(48 * 3600)), "2 days");
        assert_eq!(human_duration(s(14 * 86400)), "2 weeks");
        assert_eq!(human_duration(s(21 * 86400)), "3 weeks");
        assert_eq!(human_duration(s(60 * 86400)), "2 months");
        assert_eq!(human_duration(s(2 * 365 * 86400)), "2 years");
        assert_eq!(human_ago(100.0, 107.5), "7 seconds ago");
        assert_eq!(human_ago(100.0, 90.0), "Less than a second ago");
    }

    #[test]
    fn ids_and_ellipsis() {
        assert_eq!(short_id("sha256:57619d8c6c76aaaaaaaaaaaa"), "57619d8c6c76");
        assert_eq!(short_id("57619d8c6c76aaaa"), "57619d8c6c76");
        let created_by = r#"/bin/sh -xc #(nop)  CMD ["/bin/sh" "-xc" "echo shellform"]"#;
        assert_eq!(
            ellipsis(created_by, 45),
            r#"/bin/sh -xc #(nop)  CMD ["/bin/sh" "-xc" "ec…"#
        );
        assert_eq!(ellipsis("short", 45), "short");
        assert_eq!(ellipsis(&"x".repeat(45), 45), "x".repeat(45));
        // Wide characters count twice.
        assert_eq!(ellipsis("日本語テキスト", 6), "日本…");
        assert_eq!(ellipsis("abc", 0), "");
        assert_eq!(history_created_by("a\tb", true), "a b");
        assert_eq!(history_created_by(&"y".repeat(50), false), "y".repeat(50));
    }
}
