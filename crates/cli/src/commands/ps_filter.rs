//! The daemon's container filters (`ps --filter`, `GET /containers/json?filters=`), as
//! Docker 20.10's `daemon/list.go` applies them: values of one key are alternatives, except
//! `label`, whose values must all match; different keys all apply. `name` and `id` are
//! regular expressions (a bad one matches nothing); `status` lists stopped containers
//! without `all`.

use std::collections::BTreeMap;

use container::{Containers, Summary};
use serde_json::Value;

/// Why the daemon refuses a filter, in its words.
#[derive(Debug)]
pub enum FilterError {
    /// A 400: an unknown key or a value the key cannot take.
    Invalid(String),
    /// A 404: `before`/`since` name no container.
    NotFound(String),
}

impl std::fmt::Display for FilterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FilterError::Invalid(m) | FilterError::NotFound(m) => f.write_str(m),
        }
    }
}

const KEYS: [&str; 15] = [
    "ancestor",
    "before",
    "exited",
    "expose",
    "health",
    "id",
    "isolation",
    "is-task",
    "label",
    "name",
    "network",
    "publish",
    "since",
    "status",
    "volume",
];

const STATUSES: [&str; 7] = [
    "created",
    "restarting",
    "running",
    "removing",
    "paused",
    "exited",
    "dead",
];

/// The rows `filters` keeps, newest first as given; and whether the filters ask for
/// stopped containers too (a `status` filter does, as Docker's).
pub fn apply(
    c: &mut Containers,
    rows: Vec<Summary>,
    filters: &[(String, String)],
) -> Result<(Vec<Summary>, bool), FilterError> {
    let mut by_key: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (k, v) in filters {
        if !KEYS.contains(&k.as_str()) {
            return Err(FilterError::Invalid(format!("Invalid filter '{k}'")));
        }
        by_key.entry(k.as_str()).or_default().push(v.as_str());
    }
    // Values are checked before anything is matched, as the daemon's `foldFilter`.
    for (k, vals) in &by_key {
        for v in vals {
            match *k {
                "status" if !STATUSES.contains(v) => {
                    return Err(FilterError::Invalid(format!("Invalid filter 'status={v}'")))
                }
                "exited" if v.parse::<i64>().is_err() => {
                    return Err(FilterError::Invalid(format!(
                        "strconv.Atoi: parsing {v:?}: invalid syntax"
                    )))
                }
                "health" if !["starting", "healthy", "unhealthy", "none"].contains(v) => {
                    return Err(FilterError::Invalid(format!(
                        "Unrecognised filter value for health: {v}"
                    )))
                }
                "is-task" if !["true", "false"].contains(v) => {
                    return Err(FilterError::Invalid(format!(
                        "Invalid filter 'is-task=[{}]'",
                        vals.join(" ")
                    )))
                }
                "publish" | "expose" => {
                    ports(k, v)?;
                }
                _ => {}
            }
        }
    }
    // `before`/`since`: by creation, relative to the named container.
    let created_of = |c: &Containers, name: &str| -> Result<Created, FilterError> {
        c.find(name)
            .map(|r| created(&r.created))
            .map_err(|_| FilterError::NotFound(format!("no such container {name}")))
    };
    let before = match by_key.get("before").and_then(|v| v.last()) {
        Some(n) => Some(created_of(c, n)?),
        None => None,
    };
    let since = match by_key.get("since").and_then(|v| v.last()) {
        Some(n) => Some(created_of(c, n)?),
        None => None,
    };
    let ancestors: Option<Vec<String>> = by_key.get("ancestor").map(|vals| {
        vals.iter()
            .filter_map(|v| image::resolve(c.store(), v).ok())
            .map(|d| d.to_string())
            .collect()
    });
    let regexes = |k: &str| -> Vec<regex::Regex> {
        by_key
            .get(k)
            .map(|vals| {
                vals.iter()
                    .filter_map(|v| regex::Regex::new(v).ok())
                    .collect()
            })
            .unwrap_or_default()
    };
    let (names, ids) = (regexes("name"), regexes("id"));
    let any =
        |k: &str, f: &dyn Fn(&str) -> bool| by_key.get(k).is_none_or(|v| v.iter().any(|x| f(x)));
    let mut keep = Vec::new();
    for s in rows {
        let state = super::ps::state_of(&s);
        let r = &s.record;
        if by_key.contains_key("name")
            && !names
                .iter()
                .any(|re| re.is_match(&r.name) || re.is_match(&format!("/{}", r.name)))
        {
            continue;
        }
        if by_key.contains_key("id") && !ids.iter().any(|re| re.is_match(&r.id)) {
            continue;
        }
        if !any("status", &|v| v == state) {
            continue;
        }
        let started = r.state.started_at.is_some();
        if !any("exited", &|v| {
            !s.running && started && v.parse::<i64>().ok() == Some(r.state.exit_code as i64)
        }) {
            continue;
        }
        // strata runs no health checks: every container is `none`.
        if !any("health", &|v| v == "none") || !any("is-task", &|v| v == "false") {
            continue;
        }
        if before.is_some_and(|b| created(&r.created) >= b)
            || since.is_some_and(|b| created(&r.created) <= b)
        {
            continue;
        }
        if let Some(vals) = by_key.get("label") {
            let labels = c.labels(r).unwrap_or_default();
            let all = vals.iter().all(|v| match v.split_once('=') {
                Some((k, want)) => labels.get(k).is_some_and(|x| x == want),
                None => labels.contains_key(*v),
            });
            if !all {
                continue;
            }
        }
        if let Some(a) = &ancestors {
            if !lineage(c, &r.image_id.to_string()).any(|id| a.contains(&id)) {
                continue;
            }
        }
        if ["volume", "network", "publish", "expose"]
            .iter()
            .any(|k| by_key.contains_key(k))
        {
            let doc = c.inspect(&r.id, false).unwrap_or(Value::Null);
            if !matches_inspect(&doc, &by_key)? {
                continue;
            }
        }
        keep.push(s);
    }
    Ok((keep, by_key.contains_key("status")))
}

type Created = Option<chrono::DateTime<chrono::FixedOffset>>;

fn created(rfc3339: &str) -> Created {
    chrono::DateTime::parse_from_rfc3339(rfc3339).ok()
}

/// An image and its local parents (Docker's `ancestor` matches descendants too).
fn lineage<'a>(c: &'a mut Containers, id: &str) -> impl Iterator<Item = String> + 'a {
    let mut next = Some(id.to_string());
    let mut seen = 0;
    std::iter::from_fn(move || {
        let cur = next.take()?;
        seen += 1;
        if seen < 10_000 {
            next = cur
                .parse::<oci::Digest>()
                .ok()
                .and_then(|d| c.store().image(&d).ok().flatten())
                .and_then(|img| img.parent)
                .map(|p| p.to_string());
        }
        Some(cur)
    })
}

/// `publish`/`expose` values: `PORT[/PROTO]` or `START-END[/PROTO]`, as Docker's `portOp`.
fn ports(key: &str, value: &str) -> Result<Vec<String>, FilterError> {
    if value.contains(':') {
        return Err(FilterError::Invalid(format!(
            "filter for '{key}' should not contain ':': {value}"
        )));
    }
    let (port, proto) = value.split_once('/').unwrap_or((value, "tcp"));
    let num = |p: &str| {
        p.parse::<u16>().map_err(|_| {
            FilterError::Invalid(format!(
                "error while looking up for {key} {port}: strconv.ParseUint: parsing {p:?}: invalid syntax"
            ))
        })
    };
    let (start, end) = match port.split_once('-') {
        Some((a, b)) => (num(a)?, num(b)?),
        None => (num(port)?, num(port)?),
    };
    if end < start {
        return Err(FilterError::Invalid(format!(
            "error while looking up for {key} {port}: Invalid range specified for the Port: {port}"
        )));
    }
    Ok((start..=end).map(|p| format!("{p}/{proto}")).collect())
}

/// `volume`, `network`, `publish` and `expose` against the container's inspect document.
fn matches_inspect(doc: &Value, by_key: &BTreeMap<&str, Vec<&str>>) -> Result<bool, FilterError> {
    if let Some(vals) = by_key.get("volume") {
        let mounts = doc.get("Mounts").and_then(Value::as_array);
        let hit = mounts.is_some_and(|ms| {
            ms.iter().any(|m| {
                vals.iter().any(|v| {
                    m.get("Name").and_then(Value::as_str) == Some(*v)
                        || m.get("Destination").and_then(Value::as_str) == Some(*v)
                })
            })
        });
        if !hit {
            return Ok(false);
        }
    }
    if let Some(vals) = by_key.get("network") {
        let nets = doc
            .pointer("/NetworkSettings/Networks")
            .and_then(Value::as_object);
        let hit = nets.is_some_and(|m| {
            m.iter().any(|(name, n)| {
                let id = n.get("NetworkID").and_then(Value::as_str).unwrap_or("");
                vals.iter()
                    .any(|v| v == name || (!id.is_empty() && id.starts_with(*v)))
            })
        });
        if !hit {
            return Ok(false);
        }
    }
    // Docker matches the ports of its summary: `publish` the host's side of a binding,
    // `expose` the container's side of any port it has; a match of either is enough.
    if by_key.contains_key("publish") || by_key.contains_key("expose") {
        let mut published = Vec::new();
        let mut exposed = Vec::new();
        if let Some(m) = doc
            .pointer("/NetworkSettings/Ports")
            .and_then(Value::as_object)
        {
            for (private, bindings) in m {
                exposed.push(private.clone());
                let proto = private.split_once('/').map_or("tcp", |(_, p)| p);
                for b in bindings.as_array().into_iter().flatten() {
                    if let Some(h) = b.get("HostPort").and_then(Value::as_str) {
                        published.push(format!("{h}/{proto}"));
                    }
                }
            }
        }
        let mut hit = false;
        for (key, have) in [("publish", &published), ("expose", &exposed)] {
            for v in by_key.get(key).into_iter().flatten() {
                hit |= ports(key, v)?.iter().any(|p| have.contains(p));
            }
        }
        if !hit {
            return Ok(false);
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_values_as_docker_reads_them() {
        assert_eq!(ports("publish", "80").unwrap(), ["80/tcp"]);
        assert_eq!(ports("expose", "53/udp").unwrap(), ["53/udp"]);
        assert_eq!(
            ports("expose", "7000-7002").unwrap(),
            ["7000/tcp", "7001/tcp", "7002/tcp"]
        );
        assert_eq!(
            ports("publish", "1:2").unwrap_err().to_string(),
            "filter for 'publish' should not contain ':': 1:2"
        );
        assert!(ports("publish", "x").is_err());
    }
}
