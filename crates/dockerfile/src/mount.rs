//! `RUN --mount=...` values: CSV fields parsed into a typed [`Mount`] with BuildKit's rules
//! and messages, after each value has been expanded.

use crate::util::parse_bool;

/// The kind of a `RUN --mount`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountType {
    /// `type=bind` (the default): a directory from the context or another stage.
    Bind,
    /// `type=cache`: a persistent cache directory.
    Cache,
    /// `type=tmpfs`: an empty tmpfs.
    Tmpfs,
    /// `type=secret`: a secret file.
    Secret,
    /// `type=ssh`: an SSH agent socket.
    Ssh,
}

impl MountType {
    /// The name Docker uses.
    pub fn as_str(&self) -> &'static str {
        match self {
            MountType::Bind => "bind",
            MountType::Cache => "cache",
            MountType::Tmpfs => "tmpfs",
            MountType::Secret => "secret",
            MountType::Ssh => "ssh",
        }
    }
}

/// How concurrent builds share a cache mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sharing {
    /// `shared` (the default).
    Shared,
    /// `private`: a fresh directory when in use.
    Private,
    /// `locked`: wait for the other user.
    Locked,
}

/// One `RUN --mount` with every option Docker accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// `type=`.
    pub kind: MountType,
    /// `from=`: a stage name or index, or an image.
    pub from: Option<String>,
    /// `source=`/`src=`.
    pub source: Option<String>,
    /// `target=`/`dst=`/`destination=`.
    pub target: Option<String>,
    /// `readonly`/`ro` (`rw` clears it); defaults to true except for cache and tmpfs.
    pub readonly: bool,
    /// `size=` for tmpfs, in bytes.
    pub size: Option<i64>,
    /// `id=` (cache or secret id).
    pub id: Option<String>,
    /// `sharing=` for cache mounts; `Shared` when not given.
    pub sharing: Option<Sharing>,
    /// `required` for secret and ssh mounts.
    pub required: bool,
    /// `env=` for secrets: expose the secret as this environment variable.
    pub env: Option<String>,
    /// `mode=` (octal).
    pub mode: Option<u32>,
    /// `uid=`.
    pub uid: Option<u32>,
    /// `gid=`.
    pub gid: Option<u32>,
}

/// Split a mount spec into CSV fields like Go's `encoding/csv` (one record, `"` quoting).
pub(crate) fn csv_fields(s: &str) -> Result<Vec<String>, String> {
    let line = s.split('\n').next().unwrap_or("").trim_end_matches('\r');
    let chars: Vec<char> = line.chars().collect();
    let mut fields = Vec::new();
    let mut i = 0;
    loop {
        let mut field = String::new();
        if chars.get(i) == Some(&'"') {
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err("extraneous or missing \" in quoted-field".into()),
                    Some('"') if chars.get(i + 1) == Some(&'"') => {
                        field.push('"');
                        i += 2;
                    }
                    Some('"') => {
                        i += 1;
                        break;
                    }
                    Some(&c) => {
                        field.push(c);
                        i += 1;
                    }
                }
            }
            match chars.get(i) {
                None => {
                    fields.push(field);
                    return Ok(fields);
                }
                Some(',') => {
                    i += 1;
                    fields.push(field);
                }
                Some(_) => return Err("extraneous or missing \" in quoted-field".into()),
            }
        } else {
            while let Some(&c) = chars.get(i) {
                if c == ',' {
                    break;
                }
                if c == '"' {
                    return Err("bare \" in non-quoted-field".into());
                }
                field.push(c);
                i += 1;
            }
            fields.push(field);
            if chars.get(i) == Some(&',') {
                i += 1;
            } else {
                return Ok(fields);
            }
        }
    }
}

/// The `from=` value of a raw mount spec, if any (for stage dependencies).
pub(crate) fn mount_from(spec: &str) -> Option<String> {
    let fields = csv_fields(spec).ok()?;
    fields.iter().rev().find_map(|f| {
        let (k, v) = f.split_once('=')?;
        (k.eq_ignore_ascii_case("from")).then(|| v.to_string())
    })
}

/// Check what BuildKit checks before expansion: `from=` may not use variables.
pub(crate) fn precheck_mount(spec: &str) -> Result<(), String> {
    let fields = csv_fields(spec).map_err(|e| format!("failed to parse csv mounts: {e}"))?;
    for f in fields {
        if let Some((k, v)) = f.split_once('=') {
            if k.eq_ignore_ascii_case("from") {
                if let Some(i) = v.find('$') {
                    if i != v.len() - 1 {
                        return Err(
                            "'from' doesn't support variable expansion, define alias stage instead"
                                .into(),
                        );
                    }
                }
            }
        }
    }
    Ok(())
}

/// go-units `RAMInBytes`: `64m`, `1.5g`, `512k`, `1024` (binary multiples).
pub(crate) fn ram_in_bytes(s: &str) -> Option<i64> {
    let t = s;
    let num_len = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let num = &t[..num_len];
    if num.is_empty() || !num.starts_with(|c: char| c.is_ascii_digit()) || num.ends_with('.') {
        return None;
    }
    let mut rest = t[num_len..].strip_prefix(' ').unwrap_or(&t[num_len..]);
    let mut mult: f64 = 1.0;
    if let Some(c) = rest.chars().next() {
        let m = match c.to_ascii_lowercase() {
            'k' => Some(1024f64),
            'm' => Some(1024f64.powi(2)),
            'g' => Some(1024f64.powi(3)),
            't' => Some(1024f64.powi(4)),
            'p' => Some(1024f64.powi(5)),
            _ => None,
        };
        if let Some(m) = m {
            mult = m;
            rest = &rest[1..];
        }
    }
    let rest = rest.strip_prefix(['i', 'I']).unwrap_or(rest);
    let rest = rest.strip_prefix(['b', 'B']).unwrap_or(rest);
    if !rest.is_empty() {
        return None;
    }
    let v: f64 = num.parse().ok()?;
    Some((v * mult) as i64)
}

/// Go's `strconv.ParseUint(s, radix, 32)`: digits only, no sign.
fn parse_unsigned(s: &str, radix: u32) -> Option<u32> {
    if s.is_empty() || !s.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    u32::from_str_radix(s, radix).ok()
}

/// Parse one mount spec whose values have already been expanded by `expand`.
pub(crate) fn parse_mount(
    spec: &str,
    expand: &mut dyn FnMut(&str) -> crate::Result<String>,
) -> Result<Mount, String> {
    let fields = csv_fields(spec).map_err(|e| format!("failed to parse csv mounts: {e}"))?;
    let mut m = Mount {
        kind: MountType::Bind,
        from: None,
        source: None,
        target: None,
        readonly: false,
        size: None,
        id: None,
        sharing: None,
        required: false,
        env: None,
        mode: None,
        uid: None,
        gid: None,
    };
    let mut ro_auto = true;
    for field in &fields {
        let (key, value) = match field.split_once('=') {
            Some((k, v)) => (k.to_lowercase(), Some(v)),
            None => (field.to_lowercase(), None),
        };
        let Some(value) = value else {
            match key.as_str() {
                "readonly" | "ro" => {
                    m.readonly = true;
                    ro_auto = false;
                }
                "readwrite" | "rw" => {
                    m.readonly = false;
                    ro_auto = false;
                }
                "required" if matches!(m.kind, MountType::Secret | MountType::Ssh) => {
                    m.required = true
                }
                "required" => {
                    return Err(format!(
                        "unexpected key '{key}' for mount type '{}'",
                        m.kind.as_str()
                    ))
                }
                _ => return Err(format!("invalid field '{field}' must be a key=value pair")),
            }
            continue;
        };
        let value = expand(value).map_err(|e| e.to_string())?;
        let bad = || format!("invalid value for {key}: {value}");
        match key.as_str() {
            "type" => {
                m.kind = match value.to_lowercase().as_str() {
                    "bind" => MountType::Bind,
                    "cache" => MountType::Cache,
                    "tmpfs" => MountType::Tmpfs,
                    "secret" => MountType::Secret,
                    "ssh" => MountType::Ssh,
                    _ => {
                        return Err(format!(
                            "unsupported mount type {}",
                            crate::util::go_quote(&value)
                        ))
                    }
                }
            }
            "from" => m.from = Some(value),
            "source" | "src" => m.source = Some(value),
            "target" | "dst" | "destination" => m.target = Some(value),
            "readonly" | "ro" => {
                m.readonly = parse_bool(&value).ok_or_else(bad)?;
                ro_auto = false;
            }
            "readwrite" | "rw" => {
                m.readonly = !parse_bool(&value).ok_or_else(bad)?;
                ro_auto = false;
            }
            "required" => {
                if matches!(m.kind, MountType::Secret | MountType::Ssh) {
                    m.required = parse_bool(&value).ok_or_else(bad)?;
                } else {
                    return Err(format!(
                        "unexpected key '{key}' for mount type '{}'",
                        m.kind.as_str()
                    ));
                }
            }
            "size" => {
                if m.kind == MountType::Tmpfs {
                    m.size = Some(ram_in_bytes(&value).ok_or_else(bad)?);
                } else {
                    return Err(format!(
                        "unexpected key '{key}' for mount type '{}'",
                        m.kind.as_str()
                    ));
                }
            }
            "id" => m.id = Some(value),
            "sharing" => {
                m.sharing = Some(match value.to_lowercase().as_str() {
                    "shared" => Sharing::Shared,
                    "private" => Sharing::Private,
                    "locked" => Sharing::Locked,
                    _ => {
                        return Err(format!(
                            "unsupported sharing value {}",
                            crate::util::go_quote(&value)
                        ))
                    }
                })
            }
            "mode" => {
                m.mode = Some(
                    parse_unsigned(&value, 8)
                        .ok_or_else(|| format!("invalid value {value} for mode"))?,
                )
            }
            "uid" => {
                m.uid = Some(
                    parse_unsigned(&value, 10)
                        .ok_or_else(|| format!("invalid value {value} for uid"))?,
                )
            }
            "gid" => {
                m.gid = Some(
                    parse_unsigned(&value, 10)
                        .ok_or_else(|| format!("invalid value {value} for gid"))?,
                )
            }
            "env" => m.env = Some(value),
            _ => return Err(format!("unexpected key '{key}' in '{field}'")),
        }
    }
    let kind = m.kind.as_str();
    if !matches!(
        m.kind,
        MountType::Secret | MountType::Ssh | MountType::Cache
    ) {
        if m.mode.is_some() {
            return Err(format!("mode not allowed for \"{kind}\" type mounts"));
        }
        if m.uid.is_some() {
            return Err(format!("uid not allowed for \"{kind}\" type mounts"));
        }
        if m.gid.is_some() {
            return Err(format!("gid not allowed for \"{kind}\" type mounts"));
        }
    }
    if ro_auto {
        m.readonly = !matches!(m.kind, MountType::Cache | MountType::Tmpfs);
    }
    if m.kind == MountType::Secret {
        if m.from.is_some() {
            return Err("secret mount should not have a from".into());
        }
        if m.sharing.is_some() {
            return Err("secret mount should not define sharing".into());
        }
        if m.source.is_none() && m.target.is_none() && m.id.is_none() {
            return Err("invalid secret mount. one of source, target required".into());
        }
        if m.source.is_some() && m.id.is_some() {
            return Err("both source and id can't be set".into());
        }
    }
    if m.sharing.is_some() && m.kind != MountType::Cache {
        return Err(format!("invalid cache sharing set for {kind} mount"));
    }
    if m.kind == MountType::Cache && m.sharing.is_none() {
        m.sharing = Some(Sharing::Shared);
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_and_units() {
        assert_eq!(csv_fields("a=1,\"b=x,y\"").unwrap(), vec!["a=1", "b=x,y"]);
        assert!(csv_fields("a=\"x").is_err());
        assert_eq!(ram_in_bytes("64m"), Some(64 << 20));
        assert_eq!(ram_in_bytes("1.5k"), Some(1536));
        assert_eq!(ram_in_bytes("10"), Some(10));
        assert_eq!(ram_in_bytes("x"), None);
    }
}
