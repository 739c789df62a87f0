//! The Dockerfile instructions `import --change` (and later `commit --change`) apply to a
//! config: ENV, CMD, ENTRYPOINT, WORKDIR, USER, EXPOSE, LABEL, VOLUME, STOPSIGNAL, ONBUILD.

use oci::ContainerConfig;

use crate::error::{Error, Result};

fn bad(change: &str, reason: impl Into<String>) -> Error {
    Error::Change {
        change: change.to_string(),
        reason: reason.into(),
    }
}

/// Splits words as Docker's ENV/LABEL parsing does: white space separates, quotes group
/// and are removed, a backslash escapes the next character.
fn words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, '"') | (None, '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (Some(q), c) if c == q => quote = None,
            (q, '\\') if q != Some('\'') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
                in_word = true;
            }
            (_, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    out
}

/// `["a","b"]` when the text is a JSON array of strings, the shell form otherwise.
fn command(args: &str) -> Vec<String> {
    if args.trim_start().starts_with('[') {
        if let Ok(v) = serde_json::from_str::<Vec<String>>(args) {
            return v;
        }
    }
    vec!["/bin/sh".into(), "-c".into(), args.to_string()]
}

fn pairs(change: &str, args: &str, allow_legacy: bool) -> Result<Vec<(String, String)>> {
    let ws = words(args);
    if ws.is_empty() {
        return Err(bad(change, "missing arguments"));
    }
    if allow_legacy && !ws[0].contains('=') {
        // ENV name value…
        let (k, v) = args
            .trim()
            .split_once(char::is_whitespace)
            .ok_or_else(|| bad(change, "ENV needs a value"))?;
        return Ok(vec![(k.to_string(), words(v).join(" "))]);
    }
    ws.into_iter()
        .map(|w| {
            let (k, v) = w
                .split_once('=')
                .ok_or_else(|| bad(change, format!("expected NAME=VALUE, got {w:?}")))?;
            if k.is_empty() {
                return Err(bad(change, "names can not be blank"));
            }
            Ok((k.to_string(), v.to_string()))
        })
        .collect()
}

/// Applies one instruction to `cfg`.
pub fn apply_change(cfg: &mut ContainerConfig, change: &str) -> Result<()> {
    let trimmed = change.trim();
    let (instr, args) = trimmed
        .split_once(char::is_whitespace)
        .unwrap_or((trimmed, ""));
    let args = args.trim();
    match instr.to_ascii_uppercase().as_str() {
        "ENV" => {
            let env = cfg.env.get_or_insert_with(Vec::new);
            for (k, v) in pairs(change, args, true)? {
                env.retain(|e| e.split_once('=').map(|(n, _)| n) != Some(k.as_str()));
                env.push(format!("{k}={v}"));
            }
        }
        "LABEL" => {
            let labels = cfg.labels.get_or_insert_with(Default::default);
            for (k, v) in pairs(change, args, false)? {
                labels.insert(k, v);
            }
        }
        "CMD" => cfg.cmd = Some(command(args)),
        "ENTRYPOINT" => cfg.entrypoint = Some(command(args)),
        "WORKDIR" => cfg.working_dir = args.to_string(),
        "USER" => cfg.user = args.to_string(),
        "STOPSIGNAL" => cfg.stop_signal = args.to_string(),
        "EXPOSE" => {
            let ports = cfg.exposed_ports.get_or_insert_with(Default::default);
            for p in words(args) {
                let p = if p.contains('/') {
                    p
                } else {
                    format!("{p}/tcp")
                };
                ports.insert(p);
            }
        }
        "VOLUME" => {
            let vols = cfg.volumes.get_or_insert_with(Default::default);
            let list = if args.starts_with('[') {
                serde_json::from_str::<Vec<String>>(args).map_err(|e| bad(change, e.to_string()))?
            } else {
                words(args)
            };
            for v in list {
                vols.insert(v);
            }
        }
        "ONBUILD" => cfg
            .on_build
            .get_or_insert_with(Vec::new)
            .push(args.to_string()),
        "" => return Err(bad(change, "empty instruction")),
        other => {
            return Err(bad(
                change,
                format!("{other} is not a valid change command"),
            ))
        }
    }
    Ok(())
}
