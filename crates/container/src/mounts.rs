//! A container's mount points as Docker's daemon registers them (`registerMountPoints`): from
//! `--volumes-from`, `-v`, `--mount`, and an anonymous volume for every `VOLUME` path of the
//! image (and `-v /path`) that nothing else mounts. They are worked out once, at `create`,
//! and recorded with the container; `start` turns them into runtime mounts and `inspect`
//! shows them in `Mounts`.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Docker's mount types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MountType {
    Bind,
    Volume,
    Tmpfs,
}

impl MountType {
    pub fn as_str(self) -> &'static str {
        match self {
            MountType::Bind => "bind",
            MountType::Volume => "volume",
            MountType::Tmpfs => "tmpfs",
        }
    }
}

/// One mount point of a container (Docker's `volume/mounts.MountPoint`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountPoint {
    pub kind: MountType,
    /// The volume's name (volumes only).
    #[serde(default)]
    pub name: String,
    /// The host path of a bind (volumes: derived from the name and the root).
    #[serde(default)]
    pub source: String,
    pub destination: String,
    /// Docker's `Mode` (`ro`, `z`, `nocopy`, … as given; `z` for named volumes without one).
    #[serde(default)]
    pub mode: String,
    pub rw: bool,
    /// `rprivate` for binds unless given; empty for volumes and tmpfs.
    #[serde(default)]
    pub propagation: String,
    /// A volume the user named (`-v NAME:/d`, `--mount source=NAME`): never removed with the
    /// container. Anonymous volumes are.
    #[serde(default)]
    pub named: bool,
    /// Copy the image's content at the destination into the volume while it is empty.
    #[serde(default)]
    pub copy_data: bool,
    /// A `-v` bind whose missing host directory is created at start (Docker's `-v`).
    #[serde(default)]
    pub create_source: bool,
    /// tmpfs data options (`size=…,mode=…`).
    #[serde(default)]
    pub tmpfs_options: String,
    /// From `--mount`: what `HostConfig.Mounts` shows of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<serde_json::Value>,
}

/// Go's `filepath.Clean` for the absolute paths mounts use.
pub(crate) fn clean(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    format!("/{}", out.join("/"))
}

/// Docker's check of a local volume name.
pub fn validate_volume_name(name: &str) -> Result<()> {
    if name.len() == 1 {
        return Err(Error::Invalid(format!(
            "create {name}: volume name is too short, names should be at least two alphanumeric characters"
        )));
    }
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if !ok {
        return Err(Error::Invalid(format!(
            "create {name}: \"{name}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
        )));
    }
    Ok(())
}

const PROPAGATIONS: [&str; 6] = [
    "private", "rprivate", "shared", "rshared", "slave", "rslave",
];

/// One `-v` value: `/path` (an anonymous volume, returned as None: it goes to
/// `Config.Volumes`), `SRC:DST[:MODE]` with an absolute host path (a bind) or a volume name.
pub(crate) fn parse_volume_flag(spec: &str) -> Result<Option<MountPoint>> {
    let invalid = || Error::Invalid(format!("invalid volume specification: '{spec}'"));
    let parts: Vec<&str> = spec.split(':').collect();
    let (src, dst, mode) = match parts.as_slice() {
        [d] => {
            if !d.starts_with('/') {
                return Err(invalid());
            }
            return Ok(None);
        }
        [s, d] => (*s, *d, ""),
        [s, d, m] => (*s, *d, *m),
        _ => return Err(invalid()),
    };
    if src.is_empty() || dst.is_empty() {
        return Err(invalid());
    }
    let bind = src.starts_with('/');
    let kind = if bind { "bind" } else { "volume" };
    if !dst.starts_with('/') {
        return Err(Error::Invalid(format!(
            "invalid volume specification: '{spec}': invalid mount config for type \"{kind}\": invalid mount path: '{dst}' mount path must be absolute"
        )));
    }
    // Docker's valid modes: rw|ro, a label (z|Z), a propagation, nocopy; one of each.
    let (mut rw, mut label, mut prop, mut nocopy) = (None, false, None, false);
    if !mode.is_empty() {
        for m in mode.split(',') {
            let ok = match m {
                "rw" | "ro" if rw.is_none() => {
                    rw = Some(m == "rw");
                    true
                }
                "z" | "Z" if !label => {
                    label = true;
                    true
                }
                "nocopy" if !nocopy => {
                    nocopy = true;
                    true
                }
                p if PROPAGATIONS.contains(&p) && prop.is_none() => {
                    prop = Some(p.to_string());
                    true
                }
                _ => false,
            };
            if !ok {
                return Err(Error::Invalid(format!("invalid mode: {mode}")));
            }
        }
    }
    if bind && nocopy {
        return Err(Error::Invalid(format!("invalid mode: {mode}")));
    }
    if !bind {
        validate_volume_name(src)?;
        if prop.is_some() {
            return Err(Error::Invalid(format!("invalid mode: {mode}")));
        }
    }
    Ok(Some(MountPoint {
        kind: if bind {
            MountType::Bind
        } else {
            MountType::Volume
        },
        name: if bind { String::new() } else { src.to_string() },
        source: if bind { clean(src) } else { String::new() },
        destination: clean(dst),
        mode: if !bind && mode.is_empty() {
            "z".into()
        } else {
            mode.to_string()
        },
        rw: rw.unwrap_or(true),
        propagation: if bind {
            prop.unwrap_or_else(|| "rprivate".into())
        } else {
            String::new()
        },
        named: !bind,
        copy_data: !bind && !nocopy,
        create_source: bind,
        tmpfs_options: String::new(),
        spec: None,
    }))
}

/// Docker's `RAMInBytes`: `1024`, `64k`, `1.5m`, `1g` (binary units, optional `b`/`ib`).
fn ram_in_bytes(s: &str) -> Option<i64> {
    let t = s.trim().to_ascii_lowercase();
    let num_end = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(num_end);
    let n: f64 = num.parse().ok()?;
    let mult: f64 = match unit.trim_end_matches("ib").trim_end_matches('b') {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0f64.powi(3),
        "t" => 1024.0f64.powi(4),
        "p" => 1024.0f64.powi(5),
        _ => return None,
    };
    Some((n * mult) as i64)
}

/// One `--mount` value as Docker's CLI (`opts.MountOpt`) and daemon read it. CLI errors
/// (`invalid argument "…" for "--mount" flag: …`) and the daemon's (`invalid mount config
/// for type "…": …`) keep Docker's words.
pub fn parse_mount_flag(spec: &str) -> Result<MountPoint> {
    let flag = |why: String| {
        Error::Invalid(format!(
            "invalid argument \"{spec}\" for \"--mount\" flag: {why}"
        ))
    };
    let mut kind = "volume".to_string();
    let (mut source, mut target) = (None::<String>, None::<String>);
    let mut readonly = false;
    let (mut volume_opts, mut bind_opts, mut tmpfs_opts) = (false, false, false);
    let mut nocopy = false;
    let mut propagation = None::<String>;
    let (mut size, mut mode) = (None::<i64>, None::<u32>);
    let mut driver = None::<String>;
    let mut labels = serde_json::Map::new();
    let mut driver_opts = serde_json::Map::new();
    let parse_bool = |k: &str, b: &str| match b.to_ascii_lowercase().as_str() {
        "1" | "t" | "true" => Ok(true),
        "0" | "f" | "false" => Ok(false),
        _ => Err(flag(format!("invalid value for {k}: {b}"))),
    };
    for field in spec.split(',') {
        let (k, v) = match field.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v.trim())),
            None => (field.trim().to_ascii_lowercase(), None),
        };
        match (k.as_str(), v) {
            ("readonly" | "ro", None) => readonly = true,
            ("volume-nocopy", None) => {
                volume_opts = true;
                nocopy = true;
            }
            ("bind-nonrecursive", None) => bind_opts = true,
            (_, None) => {
                return Err(flag(format!(
                    "invalid field '{field}' must be a key=value pair"
                )))
            }
            ("type", Some(t)) => kind = t.to_ascii_lowercase(),
            ("source" | "src", Some(s)) => source = Some(s.to_string()),
            ("target" | "destination" | "dst", Some(t)) => target = Some(t.to_string()),
            ("readonly" | "ro", Some(b)) => readonly = parse_bool(&k, b)?,
            ("consistency", Some(_)) => {}
            ("bind-propagation", Some(p)) => {
                bind_opts = true;
                propagation = Some(p.to_ascii_lowercase());
            }
            ("bind-nonrecursive", Some(b)) => {
                bind_opts = true;
                parse_bool(&k, b)?;
            }
            ("volume-driver", Some(d)) => {
                volume_opts = true;
                driver = Some(d.to_string());
            }
            ("volume-label", Some(l)) => {
                volume_opts = true;
                let (a, b) = l.split_once('=').unwrap_or((l, ""));
                labels.insert(a.into(), b.into());
            }
            ("volume-opt", Some(o)) => {
                volume_opts = true;
                let (a, b) = o.split_once('=').unwrap_or((o, ""));
                driver_opts.insert(a.into(), b.into());
            }
            ("volume-nocopy", Some(b)) => {
                volume_opts = true;
                nocopy = parse_bool(&k, b)?;
            }
            ("tmpfs-size", Some(s)) => {
                tmpfs_opts = true;
                size = Some(
                    ram_in_bytes(s).ok_or_else(|| flag(format!("invalid value for {k}: {s}")))?,
                );
            }
            ("tmpfs-mode", Some(m)) => {
                tmpfs_opts = true;
                mode = Some(
                    u32::from_str_radix(m, 8)
                        .map_err(|_| flag(format!("invalid value for {k}: {m}")))?,
                );
            }
            _ => return Err(flag(format!("unexpected key '{k}' in '{field}'"))),
        }
    }
    let target = target.ok_or_else(|| flag("target is required".into()))?;
    let mix = |what: &str| {
        flag(format!(
            "cannot mix '{what}-*' options with mount type '{kind}'"
        ))
    };
    if volume_opts && kind != "volume" {
        return Err(mix("volume"));
    }
    if bind_opts && kind != "bind" {
        return Err(mix("bind"));
    }
    if tmpfs_opts && kind != "tmpfs" {
        return Err(mix("tmpfs"));
    }
    // What `HostConfig.Mounts` shows (Docker's `mount.Mount`, empty fields left out).
    let mut shown = serde_json::Map::new();
    shown.insert("Type".into(), kind.clone().into());
    if let Some(s) = &source {
        shown.insert("Source".into(), s.clone().into());
    }
    shown.insert("Target".into(), target.clone().into());
    if readonly {
        shown.insert("ReadOnly".into(), true.into());
    }
    if let Some(p) = &propagation {
        shown.insert(
            "BindOptions".into(),
            serde_json::json!({ "Propagation": p }),
        );
    } else if bind_opts {
        shown.insert("BindOptions".into(), serde_json::json!({}));
    }
    if volume_opts {
        let mut vo = serde_json::Map::new();
        if nocopy {
            vo.insert("NoCopy".into(), true.into());
        }
        if !labels.is_empty() {
            vo.insert("Labels".into(), labels.clone().into());
        }
        let mut dc = serde_json::Map::new();
        if let Some(d) = &driver {
            dc.insert("Name".into(), d.clone().into());
        }
        if !driver_opts.is_empty() {
            dc.insert("Options".into(), driver_opts.clone().into());
        }
        vo.insert("DriverConfig".into(), dc.into());
        shown.insert("VolumeOptions".into(), vo.into());
    }
    if tmpfs_opts {
        let mut to = serde_json::Map::new();
        if let Some(s) = size {
            to.insert("SizeBytes".into(), s.into());
        }
        if let Some(m) = mode {
            to.insert("Mode".into(), m.into());
        }
        shown.insert("TmpfsOptions".into(), to.into());
    }
    let bad =
        |why: String| Error::Invalid(format!("invalid mount config for type \"{kind}\": {why}"));
    if !target.starts_with('/') {
        return Err(bad(format!(
            "invalid mount path: '{target}' mount path must be absolute"
        )));
    }
    let base = MountPoint {
        kind: MountType::Volume,
        name: String::new(),
        source: String::new(),
        destination: clean(&target),
        mode: String::new(),
        rw: !readonly,
        propagation: String::new(),
        named: false,
        copy_data: false,
        create_source: false,
        tmpfs_options: String::new(),
        spec: Some(shown.into()),
    };
    match kind.as_str() {
        "bind" => {
            let src = source.ok_or_else(|| bad("field Source must not be empty".into()))?;
            if !src.starts_with('/') {
                return Err(bad(format!(
                    "invalid mount path: '{src}' mount path must be absolute"
                )));
            }
            if std::fs::symlink_metadata(&src).is_err() {
                return Err(bad(format!("bind source path does not exist: {src}")));
            }
            if let Some(p) = &propagation {
                if !PROPAGATIONS.contains(&p.as_str()) {
                    return Err(bad(format!("invalid propagation mode: {p}")));
                }
            }
            Ok(MountPoint {
                kind: MountType::Bind,
                source: clean(&src),
                propagation: propagation.unwrap_or_else(|| "rprivate".into()),
                ..base
            })
        }
        "tmpfs" => {
            if source.is_some() {
                return Err(bad("field Source must not be specified".into()));
            }
            let mut options = Vec::new();
            if let Some(s) = size {
                options.push(format!("size={s}"));
            }
            if let Some(m) = mode {
                options.push(format!("mode={m:o}"));
            }
            Ok(MountPoint {
                kind: MountType::Tmpfs,
                tmpfs_options: options.join(","),
                ..base
            })
        }
        "volume" => {
            if let Some(d) = driver.as_deref().filter(|d| *d != "local") {
                return Err(Error::Invalid(format!(
                    "error looking up volume plugin {d}: plugin \"{d}\" not found"
                )));
            }
            let name = source.unwrap_or_default();
            if name.is_empty() {
                if readonly {
                    return Err(bad(
                        "must not set ReadOnly mode when using anonymous volumes".into(),
                    ));
                }
            } else {
                validate_volume_name(&name)?;
            }
            Ok(MountPoint {
                kind: MountType::Volume,
                named: !name.is_empty(),
                name,
                mode: "z".into(),
                copy_data: !nocopy,
                ..base
            })
        }
        other => Err(flag(format!("invalid mount type {other:?}"))),
    }
}

/// An anonymous volume at `destination` (image `VOLUME`, `-v /path`, `--mount` without a
/// source): its name is filled in when the container is created.
pub(crate) fn anonymous(destination: &str) -> MountPoint {
    MountPoint {
        kind: MountType::Volume,
        name: String::new(),
        source: String::new(),
        destination: clean(destination),
        mode: String::new(),
        rw: true,
        propagation: String::new(),
        named: false,
        copy_data: true,
        create_source: false,
        tmpfs_options: String::new(),
        spec: None,
    }
}

/// The user's mounts (`-v` then `--mount`), checked for two on one destination.
pub(crate) fn user_mounts(volumes: &[String], mounts: &[String]) -> Result<Vec<MountPoint>> {
    let mut out: Vec<MountPoint> = Vec::new();
    let mut add = |m: MountPoint| -> Result<()> {
        if out.iter().any(|o| o.destination == m.destination) {
            return Err(Error::Invalid(format!(
                "Duplicate mount point: {}",
                m.destination
            )));
        }
        out.push(m);
        Ok(())
    };
    for v in volumes {
        if let Some(m) = parse_volume_flag(v)? {
            add(m)?;
        }
    }
    for m in mounts {
        add(parse_mount_flag(m)?)?;
    }
    Ok(out)
}

/// The destinations of `-v /path` (anonymous volumes, listed in `Config.Volumes`).
pub(crate) fn anonymous_flags(volumes: &[String]) -> Vec<String> {
    volumes
        .iter()
        .filter(|v| !v.contains(':') && v.starts_with('/'))
        .map(|v| clean(v))
        .collect()
}

/// `--volumes-from CONTAINER[:ro|rw]`: the container and the mode.
pub(crate) fn parse_volumes_from(spec: &str) -> Result<(&str, Option<bool>)> {
    match spec.rsplit_once(':') {
        Some((c, "ro")) => Ok((c, Some(false))),
        Some((c, "rw")) => Ok((c, Some(true))),
        Some((_, m)) => Err(Error::Invalid(format!("invalid mode: {m}"))),
        None => Ok((spec, None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_flags_follow_docker() {
        assert!(parse_volume_flag("/data").unwrap().is_none());
        let m = parse_volume_flag("vol:/data").unwrap().unwrap();
        assert_eq!(
            (m.kind, m.name.as_str(), m.mode.as_str(), m.rw, m.named),
            (MountType::Volume, "vol", "z", true, true)
        );
        let m = parse_volume_flag("vol:/data:ro").unwrap().unwrap();
        assert_eq!((m.mode.as_str(), m.rw), ("ro", false));
        assert!(
            !parse_volume_flag("vol:/d:nocopy")
                .unwrap()
                .unwrap()
                .copy_data
        );
        let b = parse_volume_flag("/tmp/x/:/b:rw,shared").unwrap().unwrap();
        assert_eq!(
            (b.kind, b.source.as_str(), b.propagation.as_str()),
            (MountType::Bind, "/tmp/x", "shared")
        );
        assert_eq!(
            parse_volume_flag("a:/x:foo").unwrap_err().to_string(),
            "invalid mode: foo"
        );
        assert!(parse_volume_flag("a/b:/x")
            .unwrap_err()
            .to_string()
            .contains("includes invalid characters for a local volume name"));
        assert_eq!(
            parse_volume_flag("ab:x").unwrap_err().to_string(),
            "invalid volume specification: 'ab:x': invalid mount config for type \"volume\": invalid mount path: 'x' mount path must be absolute"
        );
    }

    #[test]
    fn mount_flags_follow_docker() {
        let m = parse_mount_flag("type=volume,src=vn,dst=/n,readonly,volume-nocopy").unwrap();
        assert_eq!((m.name.as_str(), m.rw, m.copy_data), ("vn", false, false));
        assert_eq!(
            m.spec.unwrap().to_string(),
            r#"{"Type":"volume","Source":"vn","Target":"/n","ReadOnly":true,"VolumeOptions":{"NoCopy":true,"DriverConfig":{}}}"#
        );
        let e = |s: &str| parse_mount_flag(s).unwrap_err().to_string();
        assert_eq!(
            e("type=volume,src=v1,dst=/x,bind-propagation=shared"),
            "invalid argument \"type=volume,src=v1,dst=/x,bind-propagation=shared\" for \"--mount\" flag: cannot mix 'bind-*' options with mount type 'volume'"
        );
        assert_eq!(
            e("type=tmpfs,src=v,dst=/x"),
            "invalid mount config for type \"tmpfs\": field Source must not be specified"
        );
        assert!(e("type=bind,src=/tmp,dst=/x,volume-nocopy")
            .ends_with("cannot mix 'volume-*' options with mount type 'bind'"));
        assert!(e("type=volume,src=v,dst=/x").contains("volume name is too short"));
        assert_eq!(
            user_mounts(&["/tmp:/x".into()], &["type=volume,dst=/x/".into()])
                .unwrap_err()
                .to_string(),
            "Duplicate mount point: /x"
        );
        let t = parse_mount_flag("type=tmpfs,dst=/t,tmpfs-size=1m,tmpfs-mode=700").unwrap();
        assert_eq!(t.tmpfs_options, "size=1048576,mode=700");
    }
}

impl MountPoint {
    /// One entry of `inspect`'s `Mounts`, as Docker's.
    pub fn inspect(&self) -> serde_json::Value {
        match self.kind {
            MountType::Volume => serde_json::json!({
                "Type": "volume",
                "Name": self.name,
                "Source": self.source,
                "Destination": self.destination,
                "Driver": "local",
                "Mode": self.mode,
                "RW": self.rw,
                "Propagation": self.propagation,
            }),
            kind => serde_json::json!({
                "Type": kind.as_str(),
                "Source": self.source,
                "Destination": self.destination,
                "Mode": self.mode,
                "RW": self.rw,
                "Propagation": self.propagation,
            }),
        }
    }
}
