//! `strata events [--since] [--until] [--filter] [--format]`: the store's event journal
//! (`store::events`) in Docker's line format, followed until interrupted unless `--until`.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use anyhow::Result;
use serde_json::json;
use store::events::{Event, Follower};

use crate::cli::EventsArgs;
use crate::Failure;

/// The time as Docker's CLI sends it to the daemon (and its errors show it): a Unix time as
/// given, anything else as `SECONDS.NANOS`.
fn time_arg(v: &str) -> Result<(i64, String)> {
    let t = super::parse_time(v).ok_or_else(|| {
        Failure::bare(
            1,
            format!("failed to parse value as time or duration: {v:?}"),
        )
    })?;
    let nanos = t.timestamp_nanos_opt().unwrap_or(i64::MAX);
    let shown = if v.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        v.to_string()
    } else {
        format!("{}.{:09}", t.timestamp(), t.timestamp_subsec_nanos())
    };
    Ok((nanos, shown))
}

/// Docker's event filters: values of one key are alternatives, keys must all match.
pub(crate) struct Filters(HashMap<String, Vec<String>>);

impl Filters {
    pub(crate) fn parse(args: &[String]) -> Result<Filters> {
        let mut m: HashMap<String, Vec<String>> = HashMap::new();
        for f in args {
            let (k, v) = f.split_once('=').ok_or_else(|| {
                Failure::bare(
                    125,
                    format!(
                        "invalid argument \"{f}\" for \"-f, --filter\" flag: bad format of filter (expected name=value)\nSee '{p} events --help'.",
                        p = crate::PROGRAM
                    ),
                )
            })?;
            m.entry(k.to_lowercase()).or_default().push(v.to_string());
        }
        Ok(Filters(m))
    }

    fn exact(&self, key: &str, value: &str) -> bool {
        self.0
            .get(key)
            .is_none_or(|vs| vs.iter().any(|v| v == value))
    }

    fn exact_any(&self, key: &str, values: &[&str]) -> bool {
        self.0
            .get(key)
            .is_none_or(|vs| vs.iter().any(|v| values.contains(&v.as_str())))
    }

    fn fuzzy(&self, key: &str, values: &[&str]) -> bool {
        self.0.get(key).is_none_or(|vs| {
            vs.iter()
                .any(|v| values.iter().any(|s| s.starts_with(v.as_str())))
        })
    }

    /// `daemon/events/filter.go`'s `Include`.
    pub(crate) fn include(&self, e: &Event) -> bool {
        let attr = |k: &str| e.actor.attributes.get(k).map(String::as_str).unwrap_or("");
        let name = attr("name");
        let id = e.actor.id.as_str();
        // `exec_create`, `exec_start` and `health_status` match the actions with their
        // command after a colon.
        let event_ok = match self.0.get("event") {
            Some(vs)
                if vs.iter().any(|v| {
                    matches!(v.as_str(), "exec_create" | "exec_start" | "health_status")
                }) =>
            {
                self.fuzzy("event", &[&e.action])
            }
            _ => self.exact("event", &e.action),
        };
        let image_name = if e.kind == "image" {
            name
        } else {
            attr("image")
        };
        let strip = |s: &str| -> String {
            match s.rsplit_once(':') {
                Some((repo, tag)) if !tag.contains('/') && !s.starts_with("sha256:") => {
                    repo.to_string()
                }
                _ => s.to_string(),
            }
        };
        let labels_ok = self.0.get("label").is_none_or(|vs| {
            vs.iter().all(|v| match v.split_once('=') {
                Some((k, want)) => e.actor.attributes.get(k).is_some_and(|x| x == want),
                None => e.actor.attributes.contains_key(v.as_str()),
            })
        });
        event_ok
            && self.exact("type", &e.kind)
            && self.fuzzy("container", &[id, name])
            && self.fuzzy("volume", &[id, name])
            && self.fuzzy("network", &[id, name])
            && self.exact_any("image", &[id, image_name, &strip(id), &strip(image_name)])
            && labels_ok
    }
}

/// What a `--format` template sees: Docker's `events.Message` by its Go field names.
fn template_data(e: &Event) -> serde_json::Value {
    json!({
        "Status": e.status, "ID": e.id, "From": e.from, "Type": e.kind, "Action": e.action,
        "Actor": {"ID": e.actor.id, "Attributes": e.actor.attributes},
        "Scope": e.scope, "Time": e.time, "TimeNano": e.time_nano,
    })
}

pub fn run(root: &Path, a: EventsArgs) -> Result<()> {
    let since = a.since.as_deref().map(time_arg).transpose()?;
    let until = a.until.as_deref().map(time_arg).transpose()?;
    if let (Some((s, ss)), Some((u, us))) = (&since, &until) {
        if s > u {
            return Err(Failure::new(
                1,
                format!("Error response from daemon: `since` time ({ss}) cannot be after `until` time ({us})"),
            )
            .into());
        }
    }
    let filters = Filters::parse(&a.filters)?;
    let template = match a.format.as_deref().map(str::trim) {
        None | Some("") => None,
        Some("json") | Some("{{json .}}") => Some(None),
        Some(f) => Some(Some(
            format::Template::parse(f).map_err(|e| Failure::bare(1, e.to_string()))?,
        )),
    };
    let until_nanos = until.as_ref().map(|u| u.0);
    let mut out = std::io::stdout().lock();
    let show = |e: &Event, out: &mut dyn Write| -> Result<bool> {
        if until_nanos.is_some_and(|u| e.time_nano > u) {
            return Ok(false);
        }
        if !filters.include(e) {
            return Ok(true);
        }
        let text = match &template {
            None => e.line(),
            Some(None) => e.to_json(),
            Some(Some(t)) => t
                .render(&template_data(e))
                .map_err(|err| Failure::bare(1, err.to_string()))?,
        };
        if writeln!(out, "{text}").and_then(|_| out.flush()).is_err() {
            return Ok(false); // the reader went away
        }
        Ok(true)
    };
    // The follower starts before the past is read, so nothing falls between the two.
    let mut follower = Follower::at_end(root);
    if since.is_some() || until.is_some() {
        let from = since.as_ref().map(|s| s.0).unwrap_or(i64::MIN);
        for e in follower.history()? {
            if e.time_nano >= from && !show(&e, &mut out)? {
                return Ok(());
            }
        }
    }
    loop {
        let now = oci::now_nanos();
        if until_nanos.is_some_and(|u| now > u) {
            return Ok(());
        }
        for e in follower.poll()? {
            if since.as_ref().is_some_and(|s| e.time_nano < s.0) {
                continue;
            }
            if !show(&e, &mut out)? {
                return Ok(());
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
