//! Docker's image-history text (`created_by`) for the instructions that only change the image
//! configuration, as the classic builder writes it: `/bin/sh -c #(nop)  CMD ["a"]`.

use std::time::Duration;

use crate::instructions::{Command, Healthcheck, Instruction};
use crate::util::go_quote;

/// Go's `%q` of a `[]string`: `["a" "b c"]`.
fn q_slice(v: &[String]) -> String {
    let parts: Vec<String> = v.iter().map(|s| go_quote(s)).collect();
    format!("[{}]", parts.join(" "))
}

/// Go's `%v` of a `[]string`: `[a b c]`.
fn v_slice(v: &[String]) -> String {
    format!("[{}]", v.join(" "))
}

/// Go's `%q` of an integer: a quoted rune.
fn q_rune(n: u32) -> String {
    let c = char::from_u32(n).unwrap_or('\u{fffd}');
    let body = match c {
        '\'' => "\\'".to_string(),
        '\\' => "\\\\".to_string(),
        '\u{07}' => "\\a".into(),
        '\u{08}' => "\\b".into(),
        '\u{0c}' => "\\f".into(),
        '\n' => "\\n".into(),
        '\r' => "\\r".into(),
        '\t' => "\\t".into(),
        '\u{0b}' => "\\v".into(),
        c if (c as u32) < 0x20 || c as u32 == 0x7f => format!("\\x{:02x}", c as u32),
        c => {
            let q = go_quote(&c.to_string());
            q[1..q.len() - 1].to_string()
        }
    };
    format!("'{body}'")
}

fn frac(v: u128, prec: u32) -> String {
    let p = 10u128.pow(prec);
    let int = v / p;
    let f = v % p;
    if f == 0 {
        return int.to_string();
    }
    let mut fs = format!("{:0width$}", f, width = prec as usize);
    while fs.ends_with('0') {
        fs.pop();
    }
    format!("{int}.{fs}")
}

/// Go's `time.Duration.String()`.
pub(crate) fn go_duration(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns == 0 {
        return "0s".into();
    }
    if ns < 1_000 {
        return format!("{ns}ns");
    }
    if ns < 1_000_000 {
        return format!("{}µs", frac(ns, 3));
    }
    if ns < 1_000_000_000 {
        return format!("{}ms", frac(ns, 6));
    }
    let total_s = ns / 1_000_000_000;
    let sub = ns % 1_000_000_000;
    let h = total_s / 3600;
    let m = (total_s % 3600) / 60;
    let s = total_s % 60;
    let secs = frac(s * 1_000_000_000 + sub, 9);
    if h > 0 {
        format!("{h}h{m}m{secs}s")
    } else if m > 0 {
        format!("{m}m{secs}s")
    } else {
        format!("{secs}s")
    }
}

impl Instruction {
    /// The history `created_by` text Docker's classic builder writes for this (expanded)
    /// instruction when it only changes metadata, given the stage's current shell (`SHELL`,
    /// default `["/bin/sh", "-c"]`). `None` for `RUN`, `COPY` and `ADD`, whose text depends on
    /// what they did.
    pub fn nop_history(&self, shell: &[String]) -> Option<String> {
        let mut prefix_shell = shell.to_vec();
        let with_shell = |prepend: bool, args: &[String]| -> Vec<String> {
            if prepend {
                shell.iter().chain(args.iter()).cloned().collect()
            } else {
                args.to_vec()
            }
        };
        let msg = match &self.command {
            Command::Env(kv) => {
                let mut s = "ENV".to_string();
                for p in kv {
                    s.push_str(&format!(" {}={}", p.key, p.value));
                }
                s
            }
            Command::Label(kv) => {
                let mut s = "LABEL".to_string();
                for p in kv {
                    s.push_str(&format!(" {}={}", p.key, p.value));
                }
                s
            }
            Command::Arg(decls) => {
                let mut s = "ARG".to_string();
                for d in decls {
                    match &d.default {
                        Some(v) => s.push_str(&format!(" {}={}", d.name, v)),
                        None => s.push_str(&format!(" {}", d.name)),
                    }
                }
                s
            }
            Command::Maintainer(m) => format!("MAINTAINER {m}"),
            Command::Workdir(w) => {
                let sh = shell.join(" ");
                return Some(format!("{sh} #(nop) WORKDIR {w}"));
            }
            Command::User(u) => format!("USER {u}"),
            Command::Volume(v) => format!("VOLUME {}", v_slice(v)),
            Command::StopSignal(s) => format!("STOPSIGNAL {s}"),
            Command::Expose(p) => {
                let mut p = p.clone();
                p.sort();
                format!("EXPOSE {}", p.join(" "))
            }
            Command::Onbuild(e) => format!("ONBUILD {e}"),
            Command::Shell(s) => {
                prefix_shell = s.clone();
                format!("SHELL {}", v_slice(s))
            }
            Command::Cmd(c) => format!("CMD {}", q_slice(&with_shell(c.prepend_shell, &c.args))),
            Command::Entrypoint(c) => format!(
                "ENTRYPOINT {}",
                q_slice(&with_shell(c.prepend_shell, &c.args))
            ),
            Command::Healthcheck(h) => {
                let (test, i, t, sp, r) = match h {
                    Healthcheck::None => (
                        vec!["NONE".to_string()],
                        Duration::ZERO,
                        Duration::ZERO,
                        Duration::ZERO,
                        0,
                    ),
                    Healthcheck::Check {
                        test,
                        interval,
                        timeout,
                        start_period,
                        retries,
                        ..
                    } => (test.clone(), *interval, *timeout, *start_period, *retries),
                };
                format!(
                    "HEALTHCHECK &{{{} {} {} {} {}}}",
                    q_slice(&test),
                    go_quote(&go_duration(i)),
                    go_quote(&go_duration(t)),
                    go_quote(&go_duration(sp)),
                    q_rune(r)
                )
            }
            Command::Run(_) | Command::Copy(_) | Command::Add(_) => return None,
        };
        Some(format!("{} #(nop)  {msg}", prefix_shell.join(" ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(go_duration(Duration::from_secs(5)), "5s");
        assert_eq!(go_duration(Duration::from_secs(60)), "1m0s");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(go_duration(Duration::from_millis(500)), "500ms");
        assert_eq!(go_duration(Duration::from_secs(3661)), "1h1m1s");
        assert_eq!(go_duration(Duration::from_nanos(1500)), "1.5µs");
    }

    #[test]
    fn runes() {
        assert_eq!(q_rune(3), "'\\x03'");
        assert_eq!(q_rune(10), "'\\n'");
        assert_eq!(q_rune(65), "'A'");
    }
}
