//! Checks and normalisations Docker applies to some expanded instruction values when it writes
//! them into the image configuration: `EXPOSE` port specs, `STOPSIGNAL` names and relative
//! `WORKDIR`s.

use crate::dockerignore::clean_path;

/// The `ExposedPorts` keys (`80/tcp`, `53/udp`, ...) for one expanded `EXPOSE` word, as
/// Docker's `nat.ParsePortSpec` gives them: a range expands to every port, the protocol is
/// lower-cased and defaults to `tcp`, and an `ip:host:` prefix is ignored.
pub fn expose_ports(spec: &str) -> crate::Result<Vec<String>> {
    expose_ports_inner(spec).map_err(crate::Error::Value)
}

fn expose_ports_inner(spec: &str) -> Result<Vec<String>, String> {
    let parts: Vec<&str> = spec.split(':').collect();
    let container = parts[parts.len() - 1];
    let (proto, port) = {
        let p: Vec<&str> = container.split('/').collect();
        if container.is_empty() || p[0].is_empty() {
            ("", "")
        } else if p.len() == 1 || p[1].is_empty() {
            ("tcp", p[0])
        } else {
            (p[1], p[0])
        }
    };
    if port.is_empty() {
        return Err(format!("No port specified: {spec}<empty>"));
    }
    let parse = |s: &str| s.parse::<u16>().ok();
    let (start, end) = match port.split_once('-') {
        None => match parse(port) {
            Some(p) => (p, p),
            None => return Err(format!("Invalid containerPort: {port}")),
        },
        Some((a, b)) => match (parse(a), parse(b)) {
            (Some(a), Some(b)) if b >= a => (a, b),
            _ => return Err(format!("Invalid containerPort: {port}")),
        },
    };
    let proto_l = proto.to_lowercase();
    if !matches!(proto_l.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("Invalid proto: {proto}"));
    }
    Ok((start..=end).map(|p| format!("{p}/{proto_l}")).collect())
}

const SIGNALS: &[(&str, u32)] = &[
    ("ABRT", 6),
    ("ALRM", 14),
    ("BUS", 7),
    ("CHLD", 17),
    ("CLD", 17),
    ("CONT", 18),
    ("FPE", 8),
    ("HUP", 1),
    ("ILL", 4),
    ("INT", 2),
    ("IO", 29),
    ("IOT", 6),
    ("KILL", 9),
    ("PIPE", 13),
    ("POLL", 29),
    ("PROF", 27),
    ("PWR", 30),
    ("QUIT", 3),
    ("SEGV", 11),
    ("STKFLT", 16),
    ("STOP", 19),
    ("SYS", 31),
    ("TERM", 15),
    ("TRAP", 5),
    ("TSTP", 20),
    ("TTIN", 21),
    ("TTOU", 22),
    ("UNUSED", 31),
    ("URG", 23),
    ("USR1", 10),
    ("USR2", 12),
    ("VTALRM", 26),
    ("WINCH", 28),
    ("XCPU", 24),
    ("XFSZ", 25),
    ("RTMIN", 34),
    ("RTMAX", 64),
];

/// The signal number for a `STOPSIGNAL` value (`SIGTERM`, `term`, `15`, `RTMIN+3`), with
/// Docker's `Invalid signal: X` error.
pub fn parse_signal(raw: &str) -> crate::Result<u32> {
    parse_signal_inner(raw).map_err(crate::Error::Value)
}

fn parse_signal_inner(raw: &str) -> Result<u32, String> {
    let bad = || format!("Invalid signal: {raw}");
    if let Ok(n) = raw.parse::<i64>() {
        return if n > 0 && n <= 64 {
            Ok(n as u32)
        } else {
            Err(bad())
        };
    }
    let up = raw.to_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    if let Some(&(_, n)) = SIGNALS.iter().find(|(s, _)| *s == name) {
        return Ok(n);
    }
    for (base, num, sign) in [("RTMIN+", 34i64, 1i64), ("RTMAX-", 64, -1)] {
        if let Some(off) = name.strip_prefix(base).and_then(|o| o.parse::<i64>().ok()) {
            if (1..=15).contains(&off) {
                return Ok((num + sign * off) as u32);
            }
        }
    }
    Err(bad())
}

/// The working directory after `WORKDIR path` when the current one is `current` (empty for
/// none): relative paths are joined to it, and the result is cleaned.
pub fn resolve_workdir(current: &str, path: &str) -> String {
    if path.starts_with('/') {
        return clean_path(path);
    }
    let base = if current.is_empty() { "/" } else { current };
    clean_path(&format!("{base}/{path}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports() {
        assert_eq!(expose_ports("80").unwrap(), vec!["80/tcp"]);
        assert_eq!(
            expose_ports("8000-8002/UDP").unwrap(),
            vec!["8000/udp", "8001/udp", "8002/udp"]
        );
        assert_eq!(expose_ports("127.0.0.1:80:80").unwrap(), vec!["80/tcp"]);
        assert_eq!(
            expose_ports("80/xyz").unwrap_err().to_string(),
            "Invalid proto: xyz"
        );
        assert_eq!(
            expose_ports("abc").unwrap_err().to_string(),
            "Invalid containerPort: abc"
        );
    }

    #[test]
    fn signals() {
        assert_eq!(parse_signal("SIGTERM").unwrap(), 15);
        assert_eq!(parse_signal("kill").unwrap(), 9);
        assert_eq!(parse_signal("9").unwrap(), 9);
        assert_eq!(parse_signal("RTMIN+3").unwrap(), 37);
        assert_eq!(
            parse_signal("FOO").unwrap_err().to_string(),
            "Invalid signal: FOO"
        );
        assert!(parse_signal("0").is_err());
    }

    #[test]
    fn workdirs() {
        assert_eq!(resolve_workdir("", "a"), "/a");
        assert_eq!(resolve_workdir("/a", "b/../c"), "/a/c");
        assert_eq!(resolve_workdir("/a", "/x/./y/"), "/x/y");
    }
}
