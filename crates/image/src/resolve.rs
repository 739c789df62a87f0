//! Finding an image by what a user typed: a name (`busybox`, `reg:5000/a/b:1`), a name with a
//! digest (`a@sha256:…`), a full image ID (`sha256:…`) or a unique prefix of one (`6016`).
//! The order is Docker's: a name that parses as a reference is looked up as a tag first, and
//! only then as an ID prefix.

use oci::{Digest, Reference};
use store::Store;

use crate::error::{Error, Result};

/// The image ID `name` refers to.
pub fn resolve(store: &Store, name: &str) -> Result<Digest> {
    if let Some(hex) = name.strip_prefix("sha256:") {
        return by_prefix(store, hex)?.ok_or_else(|| Error::NoSuchImage(name.to_string()));
    }
    match Reference::parse(name) {
        Ok(r) => {
            let found = match r.digest.as_ref() {
                Some(d) => store.lookup_repo_digest(&format!("{}@{d}", r.name()))?,
                None => store.lookup_tag(&r.to_string())?,
            };
            if let Some(id) = found {
                return Ok(id);
            }
        }
        Err(e) => {
            if !is_hex(name) {
                return Err(Error::InvalidReference(e.to_string()));
            }
        }
    }
    if is_hex(name) {
        if let Some(id) = by_prefix(store, name)? {
            return Ok(id);
        }
    }
    Err(Error::NoSuchImage(name.to_string()))
}

fn is_hex(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The image whose ID `name` is or starts with (`sha256:` optional), if any.
pub(crate) fn by_id(store: &Store, name: &str) -> Result<Option<Digest>> {
    by_prefix(store, name.strip_prefix("sha256:").unwrap_or(name))
}

fn by_prefix(store: &Store, hex: &str) -> Result<Option<Digest>> {
    if !is_hex(hex) {
        return Ok(None);
    }
    let found = store.images_with_prefix(hex)?;
    match found.len() {
        0 => Ok(None),
        1 => Ok(Some(found[0])),
        _ => Err(Error::Conflict(format!(
            "the image ID prefix {hex} is ambiguous"
        ))),
    }
}

/// Parses a name for `tag`, `import` and the like, where an ID is not allowed.
pub fn parse_name(name: &str) -> Result<Reference> {
    Reference::parse(name).map_err(|e| Error::InvalidReference(e.to_string()))
}

/// Every local tag of `r`'s repository, sorted (`push --all-tags`, `save REPO`).
pub fn local_tags(store: &Store, r: &Reference) -> Result<Vec<Reference>> {
    let prefix = format!("{}:", r.name());
    let mut tags: Vec<String> = store
        .images()?
        .into_iter()
        .flat_map(|i| i.tags)
        .filter(|t| t.starts_with(&prefix))
        .collect();
    tags.sort();
    tags.iter().map(|t| parse_name(t)).collect()
}
