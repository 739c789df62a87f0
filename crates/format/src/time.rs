//! Timestamps as Docker reads and prints them: RFC 3339 strings from image configs parsed to
//! an instant, and printed back the way Go's `time` package formats them (`RFC3339Nano` with
//! trailing zeros dropped for `inspect`, `RFC3339` for `history --format {{.CreatedAt}}`,
//! `2006-01-02 15:04:05 -0700 MST` for `images`). Output is always in UTC, which is what the
//! CLI prints on a machine whose local zone is UTC.

/// An instant: seconds since the Unix epoch plus nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    pub secs: i64,
    pub nanos: u32,
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn num(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

impl Timestamp {
    /// Parses RFC 3339 (`2026-11-28T05:40:42.723413981Z`, `…+01:00`, lowercase `t`/`z`
    /// accepted). `None` when malformed.
    pub fn parse_rfc3339(s: &str) -> Option<Self> {
        let b = s.as_bytes();
        if b.len() < 20
            || b[4] != b'-'
            || b[7] != b'-'
            || !matches!(b[10], b'T' | b't')
            || b[13] != b':'
            || b[16] != b':'
        {
            return None;
        }
        let year = num(s.get(0..4)?)? as i64;
        let (mon, day) = (num(s.get(5..7)?)?, num(s.get(8..10)?)?);
        let (h, mi, sec) = (
            num(s.get(11..13)?)?,
            num(s.get(14..16)?)?,
            num(s.get(17..19)?)?,
        );
        if !(1..=12).contains(&mon) || !(1..=31).contains(&day) || h > 23 || mi > 59 || sec > 60 {
            return None;
        }
        let mut rest = s.get(19..)?;
        let mut nanos = 0u32;
        if let Some(frac) = rest.strip_prefix('.') {
            let n = frac.bytes().take_while(u8::is_ascii_digit).count();
            if n == 0 || n > 9 {
                return None;
            }
            nanos = num(&frac[..n])? * 10u32.pow(9 - n as u32);
            rest = &frac[n..];
        }
        let offset: i64 = match rest {
            "Z" | "z" => 0,
            o if o.len() == 6 && (o.starts_with('+') || o.starts_with('-')) && &o[3..4] == ":" => {
                let v = i64::from(num(&o[1..3])?) * 3600 + i64::from(num(&o[4..6])?) * 60;
                if o.starts_with('-') {
                    -v
                } else {
                    v
                }
            }
            _ => return None,
        };
        let days = days_from_civil(year, mon, day);
        let secs =
            days * 86_400 + i64::from(h) * 3600 + i64::from(mi) * 60 + i64::from(sec) - offset;
        Some(Timestamp { secs, nanos })
    }

    /// Seconds since the epoch as a float, for [`crate::human_ago`].
    pub fn as_secs_f64(&self) -> f64 {
        self.secs as f64 + f64::from(self.nanos) / 1e9
    }

    fn parts(&self) -> (i64, u32, u32, i64, i64, i64) {
        let days = self.secs.div_euclid(86_400);
        let rem = self.secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        (y, m, d, rem / 3600, rem % 3600 / 60, rem % 60)
    }

    /// Go's `time.RFC3339Nano` in UTC: fraction without trailing zeros, none when zero
    /// (`2026-11-28T12:43:59.57Z`). What `inspect` shows for `Created`.
    pub fn rfc3339_nano(&self) -> String {
        let (y, m, d, h, mi, s) = self.parts();
        let mut out = format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}");
        if self.nanos > 0 {
            let f = format!("{:09}", self.nanos);
            out.push('.');
            out.push_str(f.trim_end_matches('0'));
        }
        out.push('Z');
        out
    }

    /// Go's `time.RFC3339` in UTC (`2026-11-28T05:40:42Z`): `history` `CreatedAt`.
    pub fn rfc3339(&self) -> String {
        let (y, m, d, h, mi, s) = self.parts();
        format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
    }

    /// `2006-01-02 15:04:05 -0700 MST` in UTC (`2026-11-28 12:43:59 +0000 UTC`): `images`
    /// `CreatedAt`.
    pub fn go_date_time(&self) -> String {
        let (y, m, d, h, mi, s) = self.parts();
        format!("{y:04}-{m:02}-{d:02} {h:02}:{mi:02}:{s:02} +0000 UTC")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_like_go() {
        let t = Timestamp::parse_rfc3339("2026-11-28T12:43:59.727437489Z").unwrap();
        assert_eq!(t.secs, 1_795_869_839); // date -u -d 2026-11-28T12:43:59Z +%s
        assert_eq!(t.nanos, 727_437_489);
        assert_eq!(t.rfc3339_nano(), "2026-11-28T12:43:59.727437489Z");
        assert_eq!(t.rfc3339(), "2026-11-28T12:43:59Z");
        assert_eq!(t.go_date_time(), "2026-11-28 12:43:59 +0000 UTC");
        let t = Timestamp::parse_rfc3339("2026-11-28T13:43:59.570000Z").unwrap();
        assert_eq!(t.rfc3339_nano(), "2026-11-28T13:43:59.57Z");
        let t = Timestamp::parse_rfc3339("2026-11-28T13:43:59+01:00").unwrap();
        assert_eq!(t.rfc3339_nano(), "2026-11-28T12:43:59Z");
        let t = Timestamp::parse_rfc3339("1970-01-01T00:00:00Z").unwrap();
        assert_eq!(t.secs, 0);
        let t = Timestamp::parse_rfc3339("0001-01-01T00:00:00Z").unwrap();
        assert_eq!(t.rfc3339_nano(), "0001-01-01T00:00:00Z");
        let t = Timestamp::parse_rfc3339("2024-02-29T23:59:59Z").unwrap();
        assert_eq!(t.rfc3339(), "2024-02-29T23:59:59Z");
        assert_eq!(t.secs, 1_709_251_199);
    }

    #[test]
    fn rejects_malformed() {
        for s in [
            "",
            "2026-11-28",
            "2026-11-28 12:43:59Z",
            "2026-13-28T12:43:59Z",
            "2026-11-28T12:43:59",
            "2026-11-28T12:43:59.Z",
            "2026-11-28T12:43:59.1234567890Z",
            "2026-11-28T12:43:59+0100",
            "20x6-11-28T12:43:59Z",
            "2026-11-28T12:43:59Zjunk",
            "2026-11-28T12:43:59.é",
        ] {
            assert_eq!(Timestamp::parse_rfc3339(s), None, "{s}");
        }
    }
}
