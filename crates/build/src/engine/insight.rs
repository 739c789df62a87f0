//! Why a step missed the cache: the inputs of each step's last build are kept in the store
//! (`store::records`), and a miss is explained by comparing them with this build's: the
//! instruction, the image it builds on (the stage's base), the build args in scope, and for
//! COPY and ADD every file their cache key was computed from (hash and mode, from the hashing
//! the cache key already did). One line under the step (` ---> Cache miss: …`), and with
//! `--explain` every changed input of the first missed step.

use std::sync::atomic::Ordering;

use store::{FileEntry, StepInputs};

use super::*;

/// The line prefix of a miss reason in the classic output.
pub const MISS_PREFIX: &str = " ---> Cache miss: ";

/// What a miss of the current step leaves to record once the step is built.
pub(super) struct Pending {
    pub inputs: StepInputs,
    pub files: Option<Vec<FileEntry>>,
}

/// One changed file between two listings.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum FileChange<'a> {
    Added(&'a FileEntry),
    Removed(&'a FileEntry),
    Changed(&'a FileEntry, &'a FileEntry),
}

/// The changes from `old` to `new`, both sorted by path.
pub(super) fn diff_files<'a>(old: &'a [FileEntry], new: &'a [FileEntry]) -> Vec<FileChange<'a>> {
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::new();
    while i < old.len() || j < new.len() {
        match (old.get(i), new.get(j)) {
            (Some(o), Some(n)) if o.path == n.path => {
                if o.hash != n.hash || o.mode != n.mode {
                    out.push(FileChange::Changed(o, n));
                }
                i += 1;
                j += 1;
            }
            (Some(o), Some(n)) if o.path < n.path => {
                out.push(FileChange::Removed(o));
                i += 1;
            }
            (Some(o), None) => {
                out.push(FileChange::Removed(o));
                i += 1;
            }
            (_, Some(n)) => {
                out.push(FileChange::Added(n));
                j += 1;
            }
            (None, None) => break,
        }
    }
    out
}

fn perm(mode: u32) -> String {
    format!("{:04o}", mode & 0o7777)
}

/// Names for a list of paths: the first three, then how many more.
fn some_names(names: &[&str]) -> String {
    let mut s = names.iter().take(3).copied().collect::<Vec<_>>().join(", ");
    if names.len() > 3 {
        s.push_str(&format!(" and {} more", names.len() - 3));
    }
    s
}

/// `N files added under DIR/: a, b, c` (or `PATH added`).
fn added_or_removed(paths: &[&str], what: &str) -> String {
    if let [one] = paths {
        return format!("{one} {what}");
    }
    // The longest directory every path is under.
    let mut common: &str = paths[0].rsplit_once('/').map(|(d, _)| d).unwrap_or("");
    for p in paths {
        while !common.is_empty() && !p.starts_with(&format!("{common}/")) {
            common = common.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
        }
    }
    let rel: Vec<&str> = paths
        .iter()
        .map(|p| {
            if common.is_empty() {
                p
            } else {
                &p[common.len() + 1..]
            }
        })
        .collect();
    let under = if common.is_empty() {
        String::new()
    } else {
        format!(" under {common}/")
    };
    format!("{} files {what}{under}: {}", paths.len(), some_names(&rel))
}

/// The one-line summary of file changes: what changed, was added or removed (directories
/// only when nothing else did).
pub(super) fn files_reason(changes: &[FileChange]) -> Option<String> {
    let pick = |dirs: bool| {
        let (mut changed, mut modes, mut added, mut removed) = (vec![], vec![], vec![], vec![]);
        for c in changes {
            match c {
                FileChange::Changed(o, n) if o.is_dir() == dirs || n.is_dir() == dirs => {
                    if o.mode != n.mode {
                        modes.push((*o, *n));
                    } else {
                        changed.push(n.path.as_str());
                    }
                }
                FileChange::Added(n) if n.is_dir() == dirs => added.push(n.path.as_str()),
                FileChange::Removed(o) if o.is_dir() == dirs => removed.push(o.path.as_str()),
                _ => {}
            }
        }
        let mut parts = Vec::new();
        match changed.as_slice() {
            [] => {}
            [one] => parts.push(format!("{one} changed")),
            many => parts.push(format!(
                "{} files changed: {}",
                many.len(),
                some_names(many)
            )),
        }
        match modes.as_slice() {
            [] => {}
            [(o, n)] => parts.push(format!(
                "mode of {} changed ({} -> {})",
                n.path,
                perm(o.mode),
                perm(n.mode)
            )),
            many => {
                let names: Vec<&str> = many.iter().map(|(_, n)| n.path.as_str()).collect();
                parts.push(format!(
                    "mode of {} files changed: {}",
                    many.len(),
                    some_names(&names)
                ))
            }
        }
        if !added.is_empty() {
            parts.push(added_or_removed(&added, "added"));
        }
        if !removed.is_empty() {
            parts.push(added_or_removed(&removed, "removed"));
        }
        parts
    };
    let mut parts = pick(false);
    if parts.is_empty() {
        parts = pick(true);
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// The first build arg that differs: `build arg NAME changed (a -> b)`.
fn args_reason(old: &[String], new: &[String]) -> Option<String> {
    let split = |a: &String| {
        let (k, v) = a.split_once('=').unwrap_or((a, ""));
        (k.to_string(), v.to_string())
    };
    let old: Vec<(String, String)> = old.iter().map(split).collect();
    let new: Vec<(String, String)> = new.iter().map(split).collect();
    for (k, v) in &new {
        match old.iter().find(|(o, _)| o == k) {
            Some((_, ov)) if ov != v => {
                return Some(format!("build arg {k} changed ({ov} -> {v})"))
            }
            None => return Some(format!("build arg {k} is now set ({v})")),
            _ => {}
        }
    }
    old.iter()
        .find(|(k, _)| !new.iter().any(|(n, _)| n == k))
        .map(|(k, v)| format!("build arg {k} is no longer set (was {v})"))
}

fn short(id: &str) -> &str {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    &hex[..hex.len().min(12)]
}

/// `NAME@ID` of a stage's base: the name and the short ID.
fn split_base(base: &str) -> (&str, &str) {
    match base.rsplit_once('@') {
        Some((n, id)) => (n, short(id)),
        None => (base, ""),
    }
}

/// Why `new` missed when the last build had `old` (and `old_files`, `new_files` the
/// listings of COPY/ADD).
pub(super) fn miss_reason(
    old: &StepInputs,
    new: &StepInputs,
    old_files: &[FileEntry],
    new_files: &[FileEntry],
) -> String {
    if old.instruction != new.instruction {
        return format!("the instruction changed (was: {})", old.instruction);
    }
    if old.parent != new.parent {
        if old.base != new.base {
            let (name, now) = split_base(&new.base);
            let (_, was) = split_base(&old.base);
            return format!("the base image changed ({name} now {now}, was {was})");
        }
        return format!(
            "the image it builds on changed (now {}, was {})",
            short(&new.parent),
            short(&old.parent)
        );
    }
    if let Some(r) = args_reason(&old.args, &new.args) {
        return r;
    }
    if old.files != new.files {
        if let Some(r) = files_reason(&diff_files(old_files, new_files)) {
            return r;
        }
        return "its source files changed".into();
    }
    "no cached image of it is left (removed, or built with other options)".into()
}

/// Every changed input, one line each (`--explain`).
pub(super) fn explain_lines(
    old: &StepInputs,
    new: &StepInputs,
    old_files: &[FileEntry],
    new_files: &[FileEntry],
) -> Vec<String> {
    let mut out = Vec::new();
    if old.instruction != new.instruction {
        out.push(format!(
            "instruction: {} -> {}",
            old.instruction, new.instruction
        ));
    }
    if old.base != new.base {
        out.push(format!("base image: {} -> {}", old.base, new.base));
    }
    if old.parent != new.parent {
        out.push(format!("parent image: {} -> {}", old.parent, new.parent));
    }
    let get = |l: &[String], k: &str| {
        l.iter().find_map(|a| {
            a.split_once('=')
                .filter(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        })
    };
    let mut names: Vec<&str> = old
        .args
        .iter()
        .chain(new.args.iter())
        .map(|a| a.split_once('=').map(|(k, _)| k).unwrap_or(a))
        .collect();
    names.sort_unstable();
    names.dedup();
    for k in names {
        let (o, n) = (get(&old.args, k), get(&new.args, k));
        if o != n {
            let show = |v: Option<String>| v.unwrap_or_else(|| "(unset)".into());
            out.push(format!("build arg {k}: {} -> {}", show(o), show(n)));
        }
    }
    let hex = |f: Option<&FileEntry>| f.map(|f| hex::encode(&f.hash[..6])).unwrap_or("-".into());
    let mode = |f: Option<&FileEntry>| f.map(|f| perm(f.mode)).unwrap_or("-".into());
    for c in diff_files(old_files, new_files) {
        let (kind, o, n) = match c {
            FileChange::Added(n) => ("added", None, Some(n)),
            FileChange::Removed(o) => ("removed", Some(o), None),
            FileChange::Changed(o, n) => ("changed", Some(o), Some(n)),
        };
        let path = &o.or(n).map(|f| f.path.as_str()).unwrap_or_default();
        out.push(format!(
            "{kind} {path}: hash {} -> {}, mode {} -> {}",
            hex(o),
            hex(n),
            mode(o),
            mode(n)
        ));
    }
    out
}

impl Builder<'_> {
    /// The inputs of the current step as they are now.
    pub(super) fn current_inputs(&self, st: &StageState) -> StepInputs {
        StepInputs {
            instruction: st.instruction.clone(),
            args: st
                .args
                .iter()
                .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}")))
                .collect(),
            parent: st.id.map(|d| d.to_string()).unwrap_or_default(),
            base: st.base.clone(),
            files: st.files.as_ref().map(|(h, _)| h.clone()),
        }
    }

    /// After a cache hit: records the step's inputs when the store has none or others (an
    /// unchanged rebuild reads one row per step and writes nothing).
    pub(super) fn note_hit(&mut self, st: &mut StageState, parent: Option<Digest>) -> Result<()> {
        let Some(source) = st.opts().source.clone() else {
            return Ok(());
        };
        let mut inputs = self.current_inputs(st);
        inputs.parent = parent.map(|d| d.to_string()).unwrap_or_default();
        let old = self.store.step_inputs(&source, st.index, st.position)?;
        if old.as_ref() == Some(&inputs) {
            return Ok(());
        }
        let files = st.files.as_ref().map(|(_, l)| l.sorted());
        self.store.unsynced(|s| {
            s.record_step_inputs(&source, st.index, st.position, &inputs, files.as_deref())
        })?;
        Ok(())
    }

    /// After a cache miss: says why, under the step (and with `--explain` every changed
    /// input of the build's first miss), and keeps the inputs to record once it is built.
    pub(super) fn note_miss(&mut self, st: &mut StageState, busted: bool) -> Result<()> {
        let Some(source) = st.opts().source.clone() else {
            return Ok(());
        };
        let inputs = self.current_inputs(st);
        let files = st.files.as_ref().map(|(_, l)| l.sorted());
        let forced = busted || st.opts().no_cache;
        let old = match forced {
            true => None,
            false => self.store.step_inputs(&source, st.index, st.position)?,
        };
        let old_files = match old.as_ref().and_then(|o| o.files.as_ref()) {
            Some(id) if Some(id) != inputs.files.as_ref() => self.store.input_files(id)?,
            _ => Vec::new(),
        };
        let new_files = files.as_deref().unwrap_or_default();
        let reason = if st.opts().no_cache {
            "--no-cache".to_string()
        } else if busted {
            format!(
                "an earlier step missed (step {})",
                st.first_miss.unwrap_or_default()
            )
        } else {
            match &old {
                None => "first build of this step".to_string(),
                Some(old) => miss_reason(old, &inputs, &old_files, new_files),
            }
        };
        if st.first_miss.is_none() {
            st.first_miss = Some(st.step_no);
        }
        if st.hide_miss {
            st.pending = Some(Pending { inputs, files });
            return Ok(());
        }
        self.say(st.quiet, &format!("{MISS_PREFIX}{reason}"));
        // BuildKit's display has no such line: only when asked for (`--explain`).
        if let Some(v) = st.vertex.as_ref().filter(|_| st.opts().explain) {
            v.note(self.out, &format!("cache miss: {reason}"));
        }
        if st.opts().explain && !st.build.explained.swap(true, Ordering::Relaxed) {
            let lines = match &old {
                Some(old) => explain_lines(old, &inputs, &old_files, new_files),
                _ => Vec::new(),
            };
            let lines = if lines.is_empty() {
                vec![format!("nothing to compare: {reason}")]
            } else {
                lines
            };
            for l in lines {
                // Explanations go out with -q too: they were asked for.
                let _ = writeln!(self.out, "      {l}");
            }
            let _ = self.out.flush();
        }
        st.reason = Some(reason);
        st.pending = Some(Pending { inputs, files });
        Ok(())
    }

    /// Records the inputs of a step just built (see [`Builder::note_miss`]).
    pub(super) fn record_pending(&mut self, st: &mut StageState) -> Result<()> {
        let (Some(p), Some(source)) = (st.pending.take(), st.opts().source.clone()) else {
            return Ok(());
        };
        self.store.unsynced(|s| {
            s.record_step_inputs(
                &source,
                st.index,
                st.position,
                &p.inputs,
                p.files.as_deref(),
            )
        })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(path: &str, h: u8, mode: u32) -> FileEntry {
        FileEntry {
            path: path.into(),
            hash: [h; 16],
            mode,
        }
    }

    #[test]
    fn file_changes_are_summed_up() {
        let old = vec![
            f("app", 1, 0o040755),
            f("app/api.py", 2, 0o100644),
            f("app/run.sh", 3, 0o100755),
        ];
        let new = vec![
            f("app", 9, 0o040755),
            f("app/a.py", 4, 0o100644),
            f("app/api.py", 5, 0o100644),
            f("app/b.py", 4, 0o100644),
            f("app/c.py", 4, 0o100644),
            f("app/run.sh", 3, 0o100700),
        ];
        assert_eq!(
            files_reason(&diff_files(&old, &new)).unwrap(),
            "app/api.py changed; mode of app/run.sh changed (0755 -> 0700); \
             3 files added under app/: a.py, b.py, c.py"
        );
        let removed = files_reason(&diff_files(&new, &old)).unwrap();
        assert!(removed.ends_with("3 files removed under app/: a.py, b.py, c.py"));
        assert_eq!(
            args_reason(&["A=plain".into()], &["A=fancy".into()]).unwrap(),
            "build arg A changed (plain -> fancy)"
        );
    }
}
