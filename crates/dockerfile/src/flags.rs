//! BuildKit's instruction flag rules (`--name`, `--name=value`, repeated string flags,
//! booleans), with Docker's error messages.

use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Bool,
    Str,
    Strs,
}

/// Parsed flag values by name.
#[derive(Debug, Default)]
pub(crate) struct Flags {
    values: BTreeMap<String, Vec<String>>,
}

impl Flags {
    /// Parse `args` (each starting with `--`) against the allowed `spec`.
    pub(crate) fn parse(args: &[String], spec: &[(&str, Kind)]) -> Result<Flags, String> {
        let mut f = Flags::default();
        for arg in args {
            let Some(body) = arg.strip_prefix("--") else {
                return Err(format!("arg should start with -- : {arg}"));
            };
            if body.is_empty() {
                return Ok(f);
            }
            let (name, value) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (body, None),
            };
            let Some(&(_, kind)) = spec.iter().find(|(n, _)| *n == name) else {
                return Err(format!("unknown flag: {name}"));
            };
            if f.values.contains_key(name) && kind != Kind::Strs {
                return Err(format!("duplicate flag specified: {name}"));
            }
            let v = match kind {
                Kind::Bool => match value {
                    Some("") => return Err(format!("missing a value on flag: {name}")),
                    None => "true".to_string(),
                    Some(v) => match v.to_lowercase().as_str() {
                        "true" => "true".to_string(),
                        "false" => "false".to_string(),
                        _ => {
                            return Err(format!(
                                "expecting boolean value for flag {name}, not: {v}"
                            ))
                        }
                    },
                },
                Kind::Str | Kind::Strs => match value {
                    None => return Err(format!("missing a value on flag: {name}")),
                    Some(v) => v.to_string(),
                },
            };
            f.values.entry(name.to_string()).or_default().push(v);
        }
        Ok(f)
    }

    pub(crate) fn string(&self, name: &str) -> Option<String> {
        self.values.get(name).and_then(|v| v.last().cloned())
    }

    pub(crate) fn strings(&self, name: &str) -> Vec<String> {
        self.values.get(name).cloned().unwrap_or_default()
    }

    pub(crate) fn bool(&self, name: &str) -> Option<bool> {
        self.string(name).map(|v| v == "true")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn rules() {
        let spec = [
            ("link", Kind::Bool),
            ("from", Kind::Str),
            ("exclude", Kind::Strs),
        ];
        let f = Flags::parse(
            &s(&["--link", "--from=a", "--exclude=x", "--exclude=y"]),
            &spec,
        )
        .unwrap();
        assert_eq!(f.bool("link"), Some(true));
        assert_eq!(f.string("from").as_deref(), Some("a"));
        assert_eq!(f.strings("exclude"), vec!["x", "y"]);
        assert_eq!(
            Flags::parse(&s(&["--nope"]), &spec).unwrap_err(),
            "unknown flag: nope"
        );
        assert_eq!(
            Flags::parse(&s(&["--from"]), &spec).unwrap_err(),
            "missing a value on flag: from"
        );
        assert_eq!(
            Flags::parse(&s(&["--link=maybe"]), &spec).unwrap_err(),
            "expecting boolean value for flag link, not: maybe"
        );
        assert_eq!(
            Flags::parse(&s(&["--from=a", "--from=b"]), &spec).unwrap_err(),
            "duplicate flag specified: from"
        );
    }
}
