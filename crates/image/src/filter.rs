//! `images --filter`: the daemon side of Docker 20.10's image filters (`dangling`, `label`,
//! `before`, `since`, `reference`), with its errors word for word. A `REPOSITORY[:TAG]`
//! argument is one more `reference` filter, as Docker's client makes it.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, FixedOffset};
use oci::{Digest, Reference};
use store::Store;

use crate::config::read_config;
use crate::error::{Error, Result};
use crate::views::{image_row, shared_sizes, ImageRow};

/// The filters Docker accepts for images.
const ACCEPTED: [&str; 5] = ["dangling", "label", "before", "since", "reference"];

/// Parsed `images` filters. Values of one name are alternatives for `reference` and
/// `dangling`, and all required for `label`, as in Docker's `filters.Args`.
#[derive(Debug, Clone, Default)]
pub struct ImageFilters {
    /// `Some(true)`: only dangling images (`dangling=true`); `Some(false)`: only named ones.
    dangling: Option<bool>,
    labels: Vec<String>,
    before: Option<String>,
    since: Option<String>,
    references: Vec<String>,
}

impl ImageFilters {
    /// Filters from `(name, value)` pairs (names already lower-cased and trimmed, as Docker's
    /// client sends them). An unknown name is `Invalid filter 'NAME'`; a `dangling` value
    /// other than `true`/`false` is `Invalid filter 'dangling=[VALUES]'`.
    pub fn new(pairs: &[(String, String)]) -> Result<Self> {
        let mut by_name: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (k, v) in pairs {
            let values = by_name.entry(k.as_str()).or_default();
            if !values.contains(&v.as_str()) {
                values.push(v.as_str());
            }
        }
        if let Some(bad) = by_name.keys().find(|k| !ACCEPTED.contains(k)) {
            return Err(Error::InvalidFilter(bad.to_string()));
        }
        let mut f = ImageFilters::default();
        if let Some(values) = by_name.get("dangling") {
            f.dangling = Some(if values.contains(&"true") {
                true
            } else if values.contains(&"false") {
                false
            } else {
                let mut v = values.clone();
                v.sort();
                return Err(Error::InvalidFilter(format!("dangling=[{}]", v.join(" "))));
            });
        }
        let all = |name: &str| -> Vec<String> {
            by_name
                .get(name)
                .map(|v| v.iter().map(|s| s.to_string()).collect())
                .unwrap_or_default()
        };
        f.labels = all("label");
        f.references = all("reference");
        f.before = all("before").pop();
        f.since = all("since").pop();
        Ok(f)
    }

    /// Adds a `reference` pattern (the `REPOSITORY[:TAG]` argument of `images`).
    pub fn add_reference(&mut self, pattern: &str) {
        if !self.references.iter().any(|r| r == pattern) {
            self.references.push(pattern.to_string());
        }
    }

    /// Whether any filter is set.
    pub fn is_empty(&self) -> bool {
        self.dangling.is_none()
            && self.labels.is_empty()
            && self.before.is_none()
            && self.since.is_none()
            && self.references.is_empty()
    }

    /// Whether an image's labels hold every `label=KEY` / `label=KEY=VALUE` (Docker's
    /// `MatchKVList`).
    fn labels_match(&self, labels: &BTreeMap<String, String>) -> bool {
        if self.labels.is_empty() {
            return true;
        }
        if labels.is_empty() {
            return false;
        }
        self.labels.iter().all(|f| match f.split_once('=') {
            Some((k, v)) => labels.get(k).is_some_and(|have| have == v),
            None => labels.contains_key(f.as_str()),
        })
    }

    /// Whether `name` (a full reference) is kept by the `reference` patterns (Docker's
    /// `FamiliarMatch`, any pattern).
    fn reference_match(&self, name: &str) -> Result<bool> {
        if self.references.is_empty() {
            return Ok(true);
        }
        let Ok(r) = Reference::parse_bare(name) else {
            return Ok(false);
        };
        for p in &self.references {
            if r.familiar_match(p)
                .map_err(|e| Error::Filter(e.to_string()))?
            {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// The creation time of the image `name` names, for `before`/`since`.
fn created_of(store: &Store, name: &str) -> Result<Option<DateTime<FixedOffset>>> {
    let id = crate::resolve(store, name).map_err(|e| match e {
        // Docker names a missing reference with its tag: `No such image: x:latest`.
        Error::NoSuchImage(n) => match Reference::parse(&n) {
            Ok(r) if !n.starts_with("sha256:") => Error::NoSuchImage(r.familiar()),
            _ => Error::NoSuchImage(n),
        },
        e => e,
    })?;
    Ok(parse_time(
        &read_config(store, &id)?.created.unwrap_or_default(),
    ))
}

fn parse_time(s: &str) -> Option<DateTime<FixedOffset>> {
    DateTime::parse_from_rfc3339(s).ok()
}

/// The rows `images` lists with `filters`, as Docker's daemon selects them: `before`,
/// `since` and `label` pick images, `reference` picks names (an image left with none is not
/// listed), `dangling=true` lists untagged images no other image is built on, and images
/// without names appear only when dangling (or, with `all`, when intermediate). Newest first.
pub fn list_images(store: &Store, all: bool, filters: &ImageFilters) -> Result<Vec<ImageRow>> {
    let before = filters
        .before
        .as_deref()
        .map(|n| created_of(store, n))
        .transpose()?
        .flatten();
    let since = filters
        .since
        .as_deref()
        .map(|n| created_of(store, n))
        .transpose()?
        .flatten();
    let images = store.images()?;
    let shared = shared_sizes(store, &images)?;
    let mut has_children: HashMap<Digest, bool> = HashMap::new();
    for img in &images {
        if let Some(p) = img.parent {
            has_children.insert(p, true);
        }
    }
    let dangling_only = filters.dangling == Some(true);
    let mut rows = Vec::new();
    for img in images {
        let childless = !has_children.contains_key(&img.id);
        if dangling_only && !childless {
            continue;
        }
        let cfg = match read_config(store, &img.id) {
            Ok(c) => c,
            // Removed by another process since the listing was read: not listed.
            Err(_) if store.image(&img.id)?.is_none() => continue,
            Err(e) => return Err(e),
        };
        let created = cfg.created.clone().unwrap_or_else(|| img.created.clone());
        let t = parse_time(&created);
        if before.is_some() && t >= before {
            continue;
        }
        if since.is_some() && t <= since {
            continue;
        }
        let labels = cfg
            .config
            .as_ref()
            .and_then(|c| c.labels.clone())
            .unwrap_or_default();
        if !filters.labels_match(&labels) {
            continue;
        }
        let mut img = img;
        let mut tags = Vec::new();
        for t in std::mem::take(&mut img.tags) {
            if filters.reference_match(&t)? {
                tags.push(t);
            }
        }
        let mut digests = Vec::new();
        for d in std::mem::take(&mut img.repo_digests) {
            if filters.reference_match(&d)? {
                digests.push(d);
            }
        }
        img.tags = tags;
        img.repo_digests = digests;
        if img.tags.is_empty() && img.repo_digests.is_empty() {
            if !(all || childless)
                || filters.dangling == Some(false)
                || !filters.references.is_empty()
            {
                continue;
            }
        } else if dangling_only && !img.tags.is_empty() {
            continue;
        }
        let shared_size = *shared.get(&img.id).unwrap_or(&0);
        rows.extend(image_row(&img, created, shared_size));
    }
    rows.sort_by(|a, b| b.created.cmp(&a.created));
    Ok(rows)
}
