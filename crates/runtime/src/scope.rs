//! Resolving paths inside a root filesystem without escaping it: symlinks (absolute or with
//! `..`) are followed as if the root were `/`, like Docker's `FollowSymlinkInScope`.

use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

/// `path` (absolute, inside the container) resolved under `root`, following symlinks within
/// `root`. Missing components are kept as they are (for paths about to be created).
pub(crate) fn secure_join(root: &Path, path: &str) -> PathBuf {
    let mut pending: Vec<OsString> = components(Path::new(path));
    pending.reverse();
    let mut resolved: Vec<OsString> = Vec::new();
    let mut links = 0;
    while let Some(c) = pending.pop() {
        if c == ".." {
            resolved.pop();
            continue;
        }
        let candidate = resolved
            .iter()
            .fold(root.to_path_buf(), |p, c| p.join(c))
            .join(&c);
        match std::fs::read_link(&candidate) {
            Ok(target) if links < 255 => {
                links += 1;
                if target.is_absolute() {
                    resolved.clear();
                }
                let mut t = components(&target);
                t.reverse();
                pending.extend(t);
            }
            _ => resolved.push(c),
        }
    }
    resolved.iter().fold(root.to_path_buf(), |p, c| p.join(c))
}

fn components(p: &Path) -> Vec<OsString> {
    p.components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinks_stay_inside_the_root() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        std::fs::create_dir_all(r.join("real/etc")).unwrap();
        std::os::unix::fs::symlink("/real/etc", r.join("etc")).unwrap();
        std::os::unix::fs::symlink("../../../../outside", r.join("real/esc")).unwrap();
        assert_eq!(secure_join(r, "/etc/passwd"), r.join("real/etc/passwd"));
        assert_eq!(secure_join(r, "/real/esc/x"), r.join("outside/x"));
        assert_eq!(secure_join(r, "/../../x"), r.join("x"));
        assert_eq!(secure_join(r, "/new/dir"), r.join("new/dir"));
    }
}
