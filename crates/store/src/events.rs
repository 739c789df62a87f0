//! The event journal behind `strata events`. Docker's daemon keeps events in memory; strata
//! has no daemon, so every command appends its events to `ROOT/events.log` (see
//! [`crate::Layout::events`]) and `events` reads them back and follows the file.
//!
//! Each line is one of Docker's event messages as JSON (the bytes `docker events --format
//! '{{json .}}'` prints), written with a single `write` on a file opened `O_APPEND`: writers
//! never interleave, and a reader that meets a line without its newline (one being written,
//! or cut by a crash) leaves it (see [`read_from`]). Nothing is synced: events are a record
//! of what happened, not state, and Docker keeps none across restarts either. Once the
//! journal passes [`ROTATE_AT`] it is renamed `events.log.1` (replacing the one before) under
//! `events.lock`, so it stays bounded; readers read both.
//!
//! Recording is one call from any command:
//! `store::events::record(&store, Event::container("start", &id).attrs(attrs))`.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{Layout, Store};

/// The journal's size at which it is rotated.
pub const ROTATE_AT: u64 = 4 << 20;

/// Who an event is about: an ID and attributes (`name`, `image`, `exitCode`, labels…).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Attributes", default)]
    pub attributes: BTreeMap<String, String>,
}

/// One of Docker's event messages (`events.Message`), field for field.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Deprecated copies of `Action`, `Actor.ID` and the `image` attribute, which Docker still
    /// sends for container and image events.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub status: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub from: String,
    /// `container`, `image`, `volume`, `network`.
    #[serde(rename = "Type")]
    pub kind: String,
    /// `create`, `start`, `die`, `exec_create: sh -c …`, `tag`, …
    #[serde(rename = "Action")]
    pub action: String,
    #[serde(rename = "Actor")]
    pub actor: Actor,
    #[serde(default)]
    pub scope: String,
    /// Seconds since the Unix epoch.
    #[serde(default)]
    pub time: i64,
    /// Nanoseconds since the Unix epoch.
    #[serde(rename = "timeNano", default)]
    pub time_nano: i64,
}

impl Event {
    /// An event of any type about the object `id`.
    pub fn new(kind: &str, action: &str, id: &str) -> Event {
        Event {
            kind: kind.into(),
            action: action.into(),
            actor: Actor {
                id: id.into(),
                attributes: BTreeMap::new(),
            },
            scope: "local".into(),
            ..Event::default()
        }
    }

    /// A container event; give it the `image` and `name` attributes and the container's
    /// labels, as Docker does.
    pub fn container(action: &str, id: &str) -> Event {
        Event::new("container", action, id)
    }

    /// An image event (`id` is the image ID, `sha256:…`, or the reference pulled or pushed).
    pub fn image(action: &str, id: &str) -> Event {
        Event::new("image", action, id)
    }

    pub fn volume(action: &str, name: &str) -> Event {
        Event::new("volume", action, name)
    }

    pub fn network(action: &str, id: &str) -> Event {
        Event::new("network", action, id)
    }

    /// Adds one attribute.
    pub fn attr(mut self, key: impl Into<String>, value: impl Into<String>) -> Event {
        self.actor.attributes.insert(key.into(), value.into());
        self
    }

    /// Adds attributes (labels, for instance).
    pub fn attrs<K: Into<String>, V: Into<String>>(
        mut self,
        attrs: impl IntoIterator<Item = (K, V)>,
    ) -> Event {
        for (k, v) in attrs {
            self.actor.attributes.insert(k.into(), v.into());
        }
        self
    }

    /// Docker's line: `2026-12-02T11:00:00.000000000Z container start ID (image=busybox, name=x)`.
    pub fn line(&self) -> String {
        let secs = self.time_nano.div_euclid(1_000_000_000);
        let nanos = self.time_nano.rem_euclid(1_000_000_000) as u32;
        let t = chrono::DateTime::from_timestamp(secs, nanos)
            .unwrap_or_default()
            .format("%Y-%m-%dT%H:%M:%S%.9fZ");
        let mut s = format!("{t} {} {} {}", self.kind, self.action, self.actor.id);
        if !self.actor.attributes.is_empty() {
            let a: Vec<String> = self
                .actor
                .attributes
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            s.push_str(&format!(" ({})", a.join(", ")));
        }
        s
    }

    /// The JSON Docker prints for `{{json .}}`.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Stamps the time and Docker's deprecated fields.
    fn finish(mut self) -> Event {
        if self.time_nano == 0 {
            self.time_nano = oci::now_nanos();
        }
        self.time = self.time_nano.div_euclid(1_000_000_000);
        if self.scope.is_empty() {
            self.scope = "local".into();
        }
        if matches!(self.kind.as_str(), "container" | "image") {
            self.status = self.action.clone();
            self.id = self.actor.id.clone();
        }
        if self.kind == "container" {
            self.from = self
                .actor
                .attributes
                .get("image")
                .cloned()
                .unwrap_or_default();
        }
        self
    }
}

/// Appends an event to the store's journal. Never fails the command: an event that cannot be
/// written is reported on stderr and dropped.
pub fn record(store: &Store, event: Event) {
    record_in(store.root(), event)
}

/// [`record`] for a root whose store is not open.
pub fn record_in(root: &Path, event: Event) {
    if let Err(e) = append(&Layout::new(root), event.finish()) {
        eprintln!("WARNING: cannot record the event in the journal: {e}");
    }
}

fn append(layout: &Layout, event: Event) -> io::Result<()> {
    let path = layout.events();
    let mut line = serde_json::to_vec(&event).map_err(io::Error::other)?;
    line.push(b'\n');
    let mut f = OpenOptions::new().create(true).append(true).open(&path)?;
    // One write of the whole line: O_APPEND keeps concurrent writers' lines whole.
    f.write_all(&line)?;
    if f.metadata()?.len() > ROTATE_AT {
        rotate(layout, &path)?;
    }
    Ok(())
}

fn rotate(layout: &Layout, path: &Path) -> io::Result<()> {
    let lock_path = layout.root().join("events.lock");
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(lock_path)?;
    lock.lock()?;
    // Another writer may have rotated it while this one waited.
    if fs::metadata(path)?.len() > ROTATE_AT {
        fs::rename(path, old_path(path))?;
    }
    Ok(())
}

fn old_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".1");
    PathBuf::from(p)
}

/// Every event in the journal of `root`, oldest first (the rotated part first).
pub fn read_all(root: &Path) -> io::Result<Vec<Event>> {
    let path = Layout::new(root).events();
    let mut out = Vec::new();
    for p in [old_path(&path), path] {
        if let Ok(f) = File::open(&p) {
            read_from(&f, 0, &mut out)?;
        }
    }
    Ok(out)
}

/// Reads the complete lines of `file` from `offset` on into `out` and returns the offset after
/// the last complete line. Lines that are not events (damaged) are skipped.
pub fn read_from(file: &File, offset: u64, out: &mut Vec<Event>) -> io::Result<u64> {
    let mut r = BufReader::new(file);
    r.seek(io::SeekFrom::Start(offset))?;
    let mut pos = offset;
    let mut raw = Vec::new();
    loop {
        raw.clear();
        let n = r.read_until(b'\n', &mut raw)?;
        if n == 0 || raw.last() != Some(&b'\n') {
            return Ok(pos);
        }
        pos += n as u64;
        if let Ok(e) = serde_json::from_slice::<Event>(&raw) {
            out.push(e);
        }
    }
}

/// Follows the journal of a root: [`Follower::poll`] returns the events appended since the
/// last call, across rotations.
pub struct Follower {
    path: PathBuf,
    file: Option<File>,
    offset: u64,
}

impl Follower {
    /// Starts at the journal's current end.
    pub fn at_end(root: &Path) -> Follower {
        let path = Layout::new(root).events();
        let file = File::open(&path).ok();
        let offset = file
            .as_ref()
            .and_then(|f| f.metadata().ok())
            .map(|m| m.len())
            .unwrap_or(0);
        Follower { path, file, offset }
    }

    /// The events written before this follower started (the rotated part first), so that
    /// reading the past and then following sees every event once.
    pub fn history(&self) -> io::Result<Vec<Event>> {
        let mut out = Vec::new();
        if let Ok(f) = File::open(old_path(&self.path)) {
            read_from(&f, 0, &mut out)?;
        }
        if let Some(f) = &self.file {
            let mut all = Vec::new();
            let mut h: &File = f;
            h.seek(io::SeekFrom::Start(0))?;
            let mut r = BufReader::new(h).take(self.offset);
            let mut raw = Vec::new();
            while r.read_until(b'\n', &mut raw)? > 0 {
                if raw.last() == Some(&b'\n') {
                    if let Ok(e) = serde_json::from_slice::<Event>(&raw) {
                        all.push(e);
                    }
                }
                raw.clear();
            }
            out.extend(all);
        }
        Ok(out)
    }

    /// The events written since the last poll.
    pub fn poll(&mut self) -> io::Result<Vec<Event>> {
        use std::os::unix::fs::MetadataExt;
        let mut out = Vec::new();
        if let Some(f) = &self.file {
            self.offset = read_from(f, self.offset, &mut out)?;
        }
        // Rotated (or made) since it was opened: finish the old file, go on with the new one.
        let current = fs::metadata(&self.path).ok().map(|m| (m.dev(), m.ino()));
        let open = self
            .file
            .as_ref()
            .and_then(|f| f.metadata().ok())
            .map(|m| (m.dev(), m.ino()));
        if current.is_some() && current != open {
            if let Ok(f) = File::open(&self.path) {
                self.offset = read_from(&f, 0, &mut out)?;
                self.file = Some(f);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_dockers_lines_and_json() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = Follower::at_end(dir.path());
        let mut e = Event::container("die", "abc")
            .attr("image", "busybox")
            .attr("name", "x")
            .attr("exitCode", "3");
        e.time_nano = 1_796_211_292_585_307_947;
        record_in(dir.path(), e);
        let all = read_all(dir.path()).unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(
            all[0].line(),
            "2026-12-02T11:34:52.585307947Z container die abc (exitCode=3, image=busybox, name=x)"
        );
        assert_eq!(
            all[0].to_json(),
            r#"{"status":"die","id":"abc","from":"busybox","Type":"container","Action":"die","Actor":{"ID":"abc","Attributes":{"exitCode":"3","image":"busybox","name":"x"}},"scope":"local","time":1796211292,"timeNano":1796211292585307947}"#
        );
        assert_eq!(f.poll().unwrap(), all);
        assert!(f.poll().unwrap().is_empty());
        // A half-written line is left for later; network events have no deprecated fields.
        let path = Layout::new(dir.path()).events();
        let mut j = OpenOptions::new().append(true).open(&path).unwrap();
        j.write_all(b"{\"Type\":\"net").unwrap();
        assert!(f.poll().unwrap().is_empty());
        record_in(dir.path(), Event::network("create", "n1").attr("name", "n"));
        assert_eq!(read_all(dir.path()).unwrap().len(), 1);
        assert!(!Event::network("create", "n1")
            .finish()
            .to_json()
            .contains("status"));
    }

    #[test]
    fn the_journal_rotates_and_followers_keep_up() {
        let dir = tempfile::tempdir().unwrap();
        record_in(dir.path(), Event::image("tag", "first"));
        let mut f = Follower::at_end(dir.path());
        let big = "x".repeat(64 * 1024);
        let n = (ROTATE_AT / (64 * 1024)) as usize + 2;
        for i in 0..n {
            record_in(
                dir.path(),
                Event::image("tag", &i.to_string()).attr("name", big.as_str()),
            );
        }
        let mut seen = f.poll().unwrap();
        assert!(Layout::new(dir.path()).root().join("events.log.1").exists());
        seen.extend(f.poll().unwrap());
        let ids: Vec<String> = seen.iter().map(|e| e.actor.id.clone()).collect();
        assert_eq!(ids.len(), n, "{ids:?}");
        assert!(read_all(dir.path()).unwrap().len() >= n);
        assert_eq!(Follower::at_end(dir.path()).history().unwrap().len(), n + 1);
    }
}
