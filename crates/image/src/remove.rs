//! `rmi` and `image prune` with Docker's rules: removing a name untags it; an image is
//! deleted when no name is left and nothing depends on it; deleting an image also deletes
//! the untagged parents it leaves without children (unless `--no-prune`); layers and blobs
//! go when the last image using them does.

use oci::Reference;
use store::Store;

use crate::error::{Error, Result};

/// Docker's output lines, in order: `Untagged: NAME`, `Deleted: sha256:…`.
pub type Report = Vec<String>;

/// Options of `rmi`.
#[derive(Debug, Clone, Copy, Default)]
pub struct RemoveOptions {
    pub force: bool,
    pub no_prune: bool,
}

fn familiar(name: &str) -> String {
    Reference::parse(name)
        .map(|r| r.familiar())
        .unwrap_or_else(|_| name.to_string())
}

fn repository_of(name: &str) -> String {
    Reference::parse(name)
        .map(|r| r.name())
        .unwrap_or_else(|_| name.to_string())
}

/// The events of an `rmi`: an `untag` for each name removed, a `delete` for each image
/// deleted (Docker names both by the image ID). Labels are read before the config goes.
fn record_removal(store: &Store, id: &oci::Digest, report: &Report) {
    for line in report {
        if line.starts_with("Untagged: ") {
            crate::record_event(store, "untag", id, None);
        } else if let Some(d) = line.strip_prefix("Deleted: ") {
            if let Ok(d) = d.parse::<oci::Digest>() {
                crate::record_event(store, "delete", &d, None);
            }
        }
    }
}

/// Removes one image name or ID, as `rmi` does.
pub fn remove(store: &mut Store, name: &str, opts: RemoveOptions) -> Result<Report> {
    let id = crate::resolve(store, name)?;
    let img = store
        .image(&id)?
        .ok_or_else(|| Error::NoSuchImage(name.to_string()))?;
    let by_id = name.starts_with("sha256:") || img.id.hex().starts_with(name);
    let named = if by_id {
        None
    } else {
        crate::resolve::parse_name(name).ok()
    };
    let mut report = Vec::new();
    let mut p = store.publish()?;
    let named_tag = named
        .as_ref()
        .filter(|r| r.digest.as_ref().is_none() && img.tags.contains(&r.to_string()));
    let just_untag = named_tag.is_some() && img.tags.len() > 1;
    if let Some(c) = p.containers_using(&id)?.first().filter(|_| !just_untag) {
        // Docker keeps an image its containers use: refuse, or with -f only untag it.
        let cid = &c.id[..12.min(c.id.len())];
        if !opts.force {
            return Err(Error::Conflict(if by_id {
                let state = if c.state.status == "running" {
                    "running"
                } else {
                    "stopped"
                };
                format!(
                    "unable to delete {} (must be forced) - image is being used by {state} container {cid}",
                    id.short()
                )
            } else {
                format!(
                    "unable to remove repository reference \"{name}\" (must force) - container {cid} is using its referenced image {}",
                    id.short()
                )
            }));
        }
        let names: Vec<String> = match named_tag {
            Some(r) => vec![r.to_string()],
            None => img.tags.clone(),
        };
        for t in &names {
            p.untag(t)?;
            report.push(format!("Untagged: {}", familiar(t)));
        }
        p.commit()?;
        record_removal(store, &id, &report);
        return Ok(report);
    }
    match named.filter(|r| r.digest.as_ref().is_none() && img.tags.contains(&r.to_string())) {
        Some(r) => {
            p.untag(&r.to_string())?;
            report.push(format!("Untagged: {}", r.familiar()));
            if img.tags.len() > 1 {
                p.commit()?;
                record_removal(store, &id, &report);
                return Ok(report);
            }
            for d in &img.repo_digests {
                p.remove_repo_digest(d, &id)?;
                report.push(format!("Untagged: {}", familiar(d)));
            }
        }
        None => {
            let mut repos: Vec<String> = img.tags.iter().map(|t| repository_of(t)).collect();
            repos.sort();
            repos.dedup();
            if repos.len() > 1 && !opts.force {
                return Err(Error::Conflict(format!(
                    "unable to delete {} (must be forced) - image is referenced in multiple repositories",
                    id.short()
                )));
            }
            let children = p.children(&id)?;
            if !children.is_empty() {
                return Err(Error::Conflict(format!(
                    "unable to delete {} (cannot be forced) - image has dependent child images",
                    id.short()
                )));
            }
            for t in &img.tags {
                p.untag(t)?;
                report.push(format!("Untagged: {}", familiar(t)));
            }
            for d in &img.repo_digests {
                p.remove_repo_digest(d, &id)?;
                report.push(format!("Untagged: {}", familiar(d)));
            }
        }
    }
    if !p.children(&id)?.is_empty() {
        // An untagged image with children stays as an intermediate image.
        p.commit()?;
        record_removal(store, &id, &report);
        return Ok(report);
    }
    let mut next = Some(id);
    let held = p.held_elsewhere()?;
    while let Some(cur) = next.take() {
        if held.contains(&cur) {
            // A build elsewhere stands on it: it stays, untagged, until that build is done
            // (Docker's daemon keeps the layers a running build references the same way).
            break;
        }
        let rec = p.image(&cur)?.ok_or(store::Error::ImageNotFound(cur))?;
        p.delete_image(&cur)?;
        report.push(format!("Deleted: {cur}"));
        if opts.no_prune {
            break;
        }
        if let Some(parent) = rec.parent {
            if let Some(prec) = p.image(&parent)? {
                if prec.tags.is_empty() && p.children(&parent)?.is_empty() {
                    next = Some(parent);
                }
            }
        }
    }
    p.commit()?;
    record_removal(store, &id, &report);
    let freed = store.collect_garbage()?;
    for l in freed.layers {
        report.push(format!("Deleted: {l}"));
    }
    Ok(report)
}

/// `image prune`: removes dangling images (untagged, no children), or with `all` every image
/// without a name... and without dependants. Returns the report and the bytes reclaimed.
pub fn prune(store: &mut Store, all: bool) -> Result<(Report, u64)> {
    let mut report = Vec::new();
    let before: u64 = store.layers()?.iter().map(|l| l.size).sum();
    loop {
        let mut removed_any = false;
        for img in store.images()? {
            if !store.containers_using(&img.id)?.is_empty() {
                continue;
            }
            let dangling = img.tags.is_empty() && store.children(&img.id)?.is_empty();
            let unused = all && store.children(&img.id)?.is_empty();
            if !(dangling || unused) {
                continue;
            }
            let mut p = store.publish()?;
            // Decided again under the store lock: another process may have removed it, used
            // it or built on it since the listing.
            let Some(img) = p.image(&img.id)? else {
                continue;
            };
            let dangling = img.tags.is_empty() && p.children(&img.id)?.is_empty();
            let unused = all && p.children(&img.id)?.is_empty();
            if !(dangling || unused)
                || !p.containers_using(&img.id)?.is_empty()
                || p.held_elsewhere()?.contains(&img.id)
            {
                continue;
            }
            for t in &img.tags {
                p.untag(t)?;
                report.push(format!("untagged: {}", familiar(t)));
            }
            for d in &img.repo_digests {
                p.remove_repo_digest(d, &img.id)?;
                report.push(format!("untagged: {}", familiar(d)));
            }
            p.delete_image(&img.id)?;
            p.commit()?;
            report.push(format!("deleted: {}", img.id));
            for _ in img.tags.iter().chain(&img.repo_digests) {
                crate::record_event(store, "untag", &img.id, None);
            }
            crate::record_event(store, "delete", &img.id, None);
            removed_any = true;
        }
        if !removed_any {
            break;
        }
    }
    let freed = store.collect_garbage()?;
    for l in &freed.layers {
        report.push(format!("deleted: {l}"));
    }
    let after: u64 = store.layers()?.iter().map(|l| l.size).sum();
    Ok((report, before.saturating_sub(after)))
}
