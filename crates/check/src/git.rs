//! The context's git history, read with gix (never by running a `git` binary): which files
//! each of the last commits touched.

use std::collections::BTreeMap;
use std::path::Path;

use crate::order::ChangeLog;

/// Why the history could not be read.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// gix failed.
    #[error("reading the git history of {path}: {message}")]
    Git {
        /// The repository.
        path: String,
        /// gix's error.
        message: String,
    },
}

fn git_err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Git {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// The files touched by each of the last `limit` commits on HEAD's first-parent line, as
/// paths relative to `context` (files outside it are left out; a commit that touched only
/// such files still counts, with no paths). `Ok(None)` when `context` is in no git
/// repository, or the repository has no commits.
pub fn changes(context: &Path, limit: usize) -> Result<Option<ChangeLog>, Error> {
    let repo = match gix::discover(context) {
        Ok(r) => r,
        Err(_) => return Ok(None),
    };
    let Some(workdir) = repo.workdir().map(Path::to_path_buf) else {
        return Ok(None);
    };
    let workdir = workdir.canonicalize().map_err(|e| git_err(&workdir, e))?;
    let ctx = context.canonicalize().map_err(|e| git_err(context, e))?;
    let prefix = match ctx.strip_prefix(&workdir) {
        Ok(p) if p.as_os_str().is_empty() => String::new(),
        Ok(p) => format!("{}/", p.to_string_lossy()),
        Err(_) => return Ok(None),
    };
    let head = match repo.head_id() {
        Ok(id) => id.detach(),
        Err(_) => return Ok(None),
    };
    let mut commits = Vec::new();
    let mut id = head;
    for _ in 0..limit {
        let commit = repo.find_commit(id).map_err(|e| git_err(&workdir, e))?;
        let tree = commit.tree_id().map_err(|e| git_err(&workdir, e))?.detach();
        let parent = commit.parent_ids().next().map(|p| p.detach());
        let parent_tree = match parent {
            Some(p) => Some(
                repo.find_commit(p)
                    .map_err(|e| git_err(&workdir, e))?
                    .tree_id()
                    .map_err(|e| git_err(&workdir, e))?
                    .detach(),
            ),
            None => None,
        };
        let mut touched = Vec::new();
        diff_trees(&repo, parent_tree, Some(tree), "", 0, &mut touched)
            .map_err(|e| git_err(&workdir, e))?;
        commits.push(
            touched
                .into_iter()
                .filter_map(|p| p.strip_prefix(&prefix).map(str::to_string))
                .collect(),
        );
        match parent {
            Some(p) => id = p,
            None => break,
        }
    }
    if commits.is_empty() {
        return Ok(None);
    }
    Ok(Some(ChangeLog { commits }))
}

type Entries = BTreeMap<String, (gix::ObjectId, bool)>;

fn entries(repo: &gix::Repository, tree: Option<gix::ObjectId>) -> Result<Entries, String> {
    let mut out = BTreeMap::new();
    let Some(id) = tree else { return Ok(out) };
    let obj = repo.find_object(id).map_err(|e| e.to_string())?;
    let tree = obj.try_into_tree().map_err(|e| e.to_string())?;
    let decoded = tree.decode().map_err(|e| e.to_string())?;
    for e in &decoded.entries {
        out.insert(e.filename.to_string(), (e.oid.to_owned(), e.mode.is_tree()));
    }
    Ok(out)
}

/// How deep trees may nest (a crafted repository could nest them until the stack overflows).
const MAX_DEPTH: usize = 256;

/// The paths (files) that differ between two trees, descending only into subtrees whose ids
/// differ.
fn diff_trees(
    repo: &gix::Repository,
    old: Option<gix::ObjectId>,
    new: Option<gix::ObjectId>,
    prefix: &str,
    depth: usize,
    out: &mut Vec<String>,
) -> Result<(), String> {
    if old == new {
        return Ok(());
    }
    if depth > MAX_DEPTH {
        return Err(format!(
            "trees nested deeper than {MAX_DEPTH} levels under {prefix}"
        ));
    }
    let a = entries(repo, old)?;
    let b = entries(repo, new)?;
    let mut names: Vec<&String> = a.keys().chain(b.keys()).collect();
    names.sort();
    names.dedup();
    for name in names {
        let (ea, eb) = (a.get(name), b.get(name));
        if ea == eb {
            continue;
        }
        let path = format!("{prefix}{name}");
        let sub = |e: Option<&(gix::ObjectId, bool)>| e.filter(|e| e.1).map(|e| e.0);
        let (ta, tb) = (sub(ea), sub(eb));
        if ta.is_some() || tb.is_some() {
            diff_trees(repo, ta, tb, &format!("{path}/"), depth + 1, out)?;
        }
        let file = |e: Option<&(gix::ObjectId, bool)>| e.filter(|e| !e.1).map(|e| e.0);
        if file(ea) != file(eb) {
            out.push(path);
        }
    }
    Ok(())
}
