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
pub fn csv_fields(s: &str) -> Result<Vec<String>, String> {
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

/// Parse one mount spec, each value expanded by `expand` before it is read (BuildKit's
/// `ParseMount`): the fields one by one, then the checks on the mount as a whole.
pub(crate) fn parse_mount(
    spec: &str,
    expand: &mut dyn FnMut(&str) -> crate::Result<String>,
) -> Result<Mount, String> {
    let fields = csv_fields(spec).map_err(|e| format!("failed to parse csv mounts: {e}"))?;
    let mut m = MountFields::default();
    for field in &fields {
        match field.split_once('=') {
            None => m.set_flag(field)?,
            Some((key, value)) => {
                let value = expand(value).map_err(|e| e.to_string())?;
                m.set_value(&key.to_lowercase(), value, field)?;
            }
        }
    }
    m.finish()
}

/// A mount while its fields are read.
struct MountFields {
    mount: Mount,
    /// No `ro`/`rw` was given: the default depends on the type.
    readonly_by_default: bool,
}

impl Default for MountFields {
    fn default() -> Self {
        MountFields {
            mount: Mount {
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
            },
            readonly_by_default: true,
        }
    }
}

impl MountFields {
    /// A field without `=`: `ro`, `rw`, `required`.
    fn set_flag(&mut self, field: &str) -> Result<(), String> {
        let key = field.to_lowercase();
        match key.as_str() {
            "readonly" | "ro" => self.set_readonly(true),
            "readwrite" | "rw" => self.set_readonly(false),
            "required" => {
                self.check_kind(&key, &[MountType::Secret, MountType::Ssh])?;
                self.mount.required = true;
            }
            _ => return Err(format!("invalid field '{field}' must be a key=value pair")),
        }
        Ok(())
    }

    /// A `key=value` field (`key` lower-cased, `value` expanded).
    fn set_value(&mut self, key: &str, value: String, field: &str) -> Result<(), String> {
        let bad = || format!("invalid value for {key}: {value}");
        let m = &mut self.mount;
        match key {
            "type" => m.kind = mount_type(&value)?,
            "from" => m.from = Some(value),
            "source" | "src" => m.source = Some(value),
            "target" | "dst" | "destination" => m.target = Some(value),
            "readonly" | "ro" => self.set_readonly(parse_bool(&value).ok_or_else(bad)?),
            "readwrite" | "rw" => self.set_readonly(!parse_bool(&value).ok_or_else(bad)?),
            "required" => {
                self.check_kind(key, &[MountType::Secret, MountType::Ssh])?;
                self.mount.required = parse_bool(&value).ok_or_else(bad)?;
            }
            "size" => {
                self.check_kind(key, &[MountType::Tmpfs])?;
                self.mount.size = Some(ram_in_bytes(&value).ok_or_else(bad)?);
            }
            "id" => m.id = Some(value),
            "sharing" => m.sharing = Some(sharing(&value)?),
            "mode" => m.mode = Some(parse_id(&value, 8, "mode")?),
            "uid" => m.uid = Some(parse_id(&value, 10, "uid")?),
            "gid" => m.gid = Some(parse_id(&value, 10, "gid")?),
            "env" => m.env = Some(value),
            _ => return Err(format!("unexpected key '{key}' in '{field}'")),
        }
        Ok(())
    }

    fn set_readonly(&mut self, readonly: bool) {
        self.mount.readonly = readonly;
        self.readonly_by_default = false;
    }

    /// `unexpected key` unless the type read so far is one of `kinds` (`required` is for
    /// secret and ssh mounts, `size` for tmpfs).
    fn check_kind(&self, key: &str, kinds: &[MountType]) -> Result<(), String> {
        if kinds.contains(&self.mount.kind) {
            return Ok(());
        }
        Err(format!(
            "unexpected key '{key}' for mount type '{}'",
            self.mount.kind.as_str()
        ))
    }

    /// The checks on the mount as a whole, then the defaults that depend on its type.
    fn finish(self) -> Result<Mount, String> {
        let mut m = self.mount;
        check_ownership(&m)?;
        if self.readonly_by_default {
            m.readonly = !matches!(m.kind, MountType::Cache | MountType::Tmpfs);
        }
        if m.kind == MountType::Secret {
            check_secret(&m)?;
        }
        if m.sharing.is_some() && m.kind != MountType::Cache {
            return Err(format!(
                "invalid cache sharing set for {} mount",
                m.kind.as_str()
            ));
        }
        if m.kind == MountType::Cache && m.sharing.is_none() {
            m.sharing = Some(Sharing::Shared);
        }
        Ok(m)
    }
}

/// `type=`.
fn mount_type(value: &str) -> Result<MountType, String> {
    match value.to_lowercase().as_str() {
        "bind" => Ok(MountType::Bind),
        "cache" => Ok(MountType::Cache),
        "tmpfs" => Ok(MountType::Tmpfs),
        "secret" => Ok(MountType::Secret),
        "ssh" => Ok(MountType::Ssh),
        _ => Err(format!(
            "unsupported mount type {}",
            crate::util::go_quote(value)
        )),
    }
}

/// `sharing=`.
fn sharing(value: &str) -> Result<Sharing, String> {
    match value.to_lowercase().as_str() {
        "shared" => Ok(Sharing::Shared),
        "private" => Ok(Sharing::Private),
        "locked" => Ok(Sharing::Locked),
        _ => Err(format!(
            "unsupported sharing value {}",
            crate::util::go_quote(value)
        )),
    }
}

/// `mode=` (octal), `uid=`, `gid=` (decimal).
fn parse_id(value: &str, radix: u32, key: &str) -> Result<u32, String> {
    parse_unsigned(value, radix).ok_or_else(|| format!("invalid value {value} for {key}"))
}

/// `mode`, `uid` and `gid` only apply to the files a secret, ssh or cache mount creates.
fn check_ownership(m: &Mount) -> Result<(), String> {
    if matches!(
        m.kind,
        MountType::Secret | MountType::Ssh | MountType::Cache
    ) {
        return Ok(());
    }
    let kind = m.kind.as_str();
    for (key, given) in [
        ("mode", m.mode.is_some()),
        ("uid", m.uid.is_some()),
        ("gid", m.gid.is_some()),
    ] {
        if given {
            return Err(format!("{key} not allowed for \"{kind}\" type mounts"));
        }
    }
    Ok(())
}

/// A secret mount has no `from` or `sharing`, and is named by exactly one of its source or
/// id (or only by its target).
fn check_secret(m: &Mount) -> Result<(), String> {
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
    Ok(())
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
