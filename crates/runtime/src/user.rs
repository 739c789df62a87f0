//! Resolving `-u name|uid[:group|gid]` through the root filesystem's /etc/passwd and
//! /etc/group, as runc does: numeric IDs need no entry, names must have one, and supplementary
//! groups are the groups listing the user when no group is given.

use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};
use crate::scope::secure_join;

/// A resolved user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// User ID.
    pub uid: u32,
    /// Primary group ID.
    pub gid: u32,
    /// Supplementary group IDs.
    pub additional_gids: Vec<u32>,
    /// Home directory (`/` when the user has no passwd entry).
    pub home: String,
}

struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

struct GroupEntry {
    name: String,
    gid: u32,
    members: Vec<String>,
}

/// Reads `path` as colon-separated records; a missing file is empty.
fn records(path: &Path) -> Result<Vec<(usize, Vec<String>)>> {
    let text = match std::fs::read(path) {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).ctx("read", path),
    };
    Ok(text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|(i, l)| (i + 1, l.split(':').map(str::to_string).collect()))
        .collect())
}

fn parse_id(s: &str) -> Option<u32> {
    s.parse::<u32>().ok().filter(|n| *n <= i32::MAX as u32)
}

fn passwd(path: &Path) -> Result<Vec<PasswdEntry>> {
    // Malformed lines are skipped, as libc and runc skip them.
    Ok(records(path)?
        .into_iter()
        .filter_map(|(_, f)| {
            Some(PasswdEntry {
                name: f.first()?.clone(),
                uid: parse_id(f.get(2)?)?,
                gid: parse_id(f.get(3)?)?,
                home: f.get(5).cloned().unwrap_or_default(),
            })
        })
        .collect())
}

fn groups(path: &Path) -> Result<Vec<GroupEntry>> {
    Ok(records(path)?
        .into_iter()
        .filter_map(|(_, f)| {
            Some(GroupEntry {
                name: f.first()?.clone(),
                gid: parse_id(f.get(2)?)?,
                members: f
                    .get(3)
                    .map(|m| {
                        m.split(',')
                            .filter(|s| !s.is_empty())
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        })
        .collect())
}

/// Resolves `user` (`""`, `name`, `uid`, `name:group`, `uid:gid`, ...) against the passwd and
/// group files of the root filesystem at `rootfs` (symlinks followed inside it).
pub fn resolve_user(rootfs: &Path, user: &str) -> Result<User> {
    let passwd_path: PathBuf = secure_join(rootfs, "/etc/passwd");
    let group_path: PathBuf = secure_join(rootfs, "/etc/group");
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let u = if u.is_empty() { "0" } else { u };
    let users = passwd(&passwd_path)?;
    let entry = users
        .iter()
        .find(|e| e.name == u)
        .or_else(|| parse_id(u).and_then(|id| users.iter().find(|e| e.uid == id)));
    let (uid, mut gid, home, name) = match (entry, parse_id(u)) {
        (Some(e), _) => (e.uid, e.gid, e.home.clone(), Some(e.name.clone())),
        (None, Some(id)) => (id, 0, "/".to_string(), None),
        (None, None) => return Err(Error::UnknownUser(u.to_string())),
    };
    let home = if home.is_empty() { "/".into() } else { home };
    let mut additional_gids = Vec::new();
    let explicit = g.is_some_and(|g| !g.is_empty());
    match g.filter(|g| !g.is_empty()) {
        Some(g) => {
            let all = groups(&group_path)?;
            gid = match all.iter().find(|e| e.name == g) {
                Some(e) => e.gid,
                None => match parse_id(g) {
                    Some(id) => id,
                    None => return Err(Error::UnknownGroup(g.to_string())),
                },
            };
        }
        None => {
            if let Some(name) = &name {
                for e in groups(&group_path)? {
                    if e.members.iter().any(|m| m == name) && !additional_gids.contains(&e.gid) {
                        additional_gids.push(e.gid);
                    }
                }
            }
        }
    }
    // Docker passes the primary group as a supplementary one too (`id` shows it in
    // `groups=`); memberships only count when no group was given.
    if explicit {
        additional_gids.clear();
    }
    if !additional_gids.contains(&gid) {
        additional_gids.insert(0, gid);
    }
    Ok(User {
        uid,
        gid,
        additional_gids,
        home,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rootfs() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir(t.path().join("etc")).unwrap();
        std::fs::write(
            t.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\nnohome:x:1001:1001::\n",
        )
        .unwrap();
        std::fs::write(
            t.path().join("etc/group"),
            "root:x:0:\napp:x:1000:\nwheel:x:10:root,app\naudio:x:29:app\n",
        )
        .unwrap();
        t
    }

    #[test]
    fn names_and_ids_resolve_with_supplementary_groups() {
        let t = rootfs();
        let r = t.path();
        let app = resolve_user(r, "app").unwrap();
        assert_eq!(
            app,
            User {
                uid: 1000,
                gid: 1000,
                additional_gids: vec![1000, 10, 29],
                home: "/home/app".into()
            }
        );
        assert_eq!(resolve_user(r, "1000").unwrap(), app);
        assert_eq!(resolve_user(r, "").unwrap().additional_gids, vec![0, 10]);
        assert_eq!(resolve_user(r, "").unwrap().home, "/root");
        let n = resolve_user(r, "4242").unwrap();
        assert_eq!((n.uid, n.gid, n.home.as_str()), (4242, 0, "/"));
        assert_eq!(n.additional_gids, vec![0]);
        assert_eq!(resolve_user(r, "nohome").unwrap().home, "/");
    }

    #[test]
    fn explicit_groups_replace_supplementary_ones() {
        let t = rootfs();
        let u = resolve_user(t.path(), "app:audio").unwrap();
        assert_eq!((u.uid, u.gid), (1000, 29));
        assert_eq!(u.additional_gids, vec![29]);
        assert_eq!(resolve_user(t.path(), "5:77").unwrap().gid, 77);
    }

    #[test]
    fn unknown_names_fail_with_dockers_words() {
        let t = rootfs();
        let e = resolve_user(t.path(), "ghost").unwrap_err();
        assert_eq!(
            e.to_string(),
            "unable to find user ghost: no matching entries in passwd file"
        );
        let e = resolve_user(t.path(), "app:ghosts").unwrap_err();
        assert_eq!(
            e.to_string(),
            "unable to find group ghosts: no matching entries in group file"
        );
        let empty = tempfile::tempdir().unwrap();
        assert_eq!(resolve_user(empty.path(), "12:34").unwrap().gid, 34);
    }

    #[test]
    fn malformed_lines_are_skipped() {
        let t = rootfs();
        std::fs::write(
            t.path().join("etc/passwd"),
            "bad:x:notanumber:0\n+::::::\nroot:x:0:0::/root:/bin/sh\n",
        )
        .unwrap();
        assert_eq!(resolve_user(t.path(), "root").unwrap().home, "/root");
        assert!(matches!(
            resolve_user(t.path(), "bad"),
            Err(Error::UnknownUser(_))
        ));
    }
}
