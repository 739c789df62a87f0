//! Shared helpers for the integration tests: a root check, a raw tar builder that can write
//! the malformed and malicious entries no well-behaved builder would, and a tree snapshot
//! that captures everything a layer can carry, for comparisons.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

#[path = "../../../../support/test_guard.rs"]
mod test_guard;
#[allow(unused_imports)]
pub use test_guard::{cannot_run, ci};

/// Whether this process runs as root.
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Whether the test runs as root; otherwise see [`cannot_run`].
pub fn require_root() -> bool {
    if is_root() {
        return true;
    }
    cannot_run("needs root (chown, device nodes, trusted xattrs, mounts)");
    false
}

/// Builds tar archives entry by entry with exactly the names and link targets given.
#[derive(Default)]
pub struct RawTar {
    pub buf: Vec<u8>,
}

impl RawTar {
    pub fn new() -> Self {
        Self::default()
    }

    /// One entry with raw name/link bytes (names up to 100 bytes).
    pub fn raw(
        &mut self,
        name: &[u8],
        kind: tar::EntryType,
        mode: u32,
        link: &[u8],
        data: &[u8],
    ) -> &mut Self {
        let mut h = tar::Header::new_ustar();
        {
            let u = h.as_ustar_mut().unwrap();
            u.name[..name.len()].copy_from_slice(name);
            u.linkname[..link.len()].copy_from_slice(link);
        }
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_600_000_000);
        h.set_size(data.len() as u64);
        h.set_cksum();
        self.buf.extend_from_slice(h.as_bytes());
        self.buf.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        self.buf.extend(std::iter::repeat_n(0u8, pad));
        self
    }

    pub fn file(&mut self, name: &str, data: &[u8]) -> &mut Self {
        self.raw(name.as_bytes(), tar::EntryType::Regular, 0o644, b"", data)
    }
    pub fn dir(&mut self, name: &str) -> &mut Self {
        self.raw(name.as_bytes(), tar::EntryType::Directory, 0o755, b"", b"")
    }
    pub fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.raw(
            name.as_bytes(),
            tar::EntryType::Symlink,
            0o777,
            target.as_bytes(),
            b"",
        )
    }
    pub fn hardlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.raw(
            name.as_bytes(),
            tar::EntryType::Link,
            0o644,
            target.as_bytes(),
            b"",
        )
    }
    /// A PAX extended header applying to the next entry.
    pub fn pax(&mut self, records: &[(&str, &[u8])]) -> &mut Self {
        let mut data = Vec::new();
        for (k, v) in records {
            let base = k.len() + v.len() + 3;
            let mut len = base + base.to_string().len();
            if base + len.to_string().len() != len {
                len = base + len.to_string().len();
            }
            data.extend_from_slice(format!("{len} {k}=").as_bytes());
            data.extend_from_slice(v);
            data.push(b'\n');
        }
        self.raw(b"PaxHeaders.0/x", tar::EntryType::XHeader, 0, b"", &data)
    }
    /// The archive with its end-of-archive marker.
    pub fn finish(&self) -> Vec<u8> {
        let mut out = self.buf.clone();
        out.extend_from_slice(&[0u8; 1024]);
        out
    }
}

/// Everything observable about one path in a tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub kind: &'static str,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: i64,
    pub rdev: u64,
    pub content: Vec<u8>,
    pub link: Option<Vec<u8>>,
    pub xattrs: BTreeMap<Vec<u8>, Vec<u8>>,
    /// Index of the first path sharing this inode (hardlinks), if it is not this one.
    pub same_inode_as: Option<String>,
}

/// Lists the xattrs of `path` (not following symlinks).
pub fn xattrs(path: &Path) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut names = vec![0u8; 65536];
    let n = rustix::fs::llistxattr(path, &mut names[..]).unwrap_or(0);
    for name in names[..n].split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let mut value = vec![0u8; 65536];
        if let Ok(len) = rustix::fs::lgetxattr(path, name, &mut value[..]) {
            out.insert(name.to_vec(), value[..len].to_vec());
        }
    }
    out
}

/// Snapshot of every path under `root` (the root itself excluded), with
/// `mtime_of_dirs` deciding whether directory mtimes are compared.
pub fn snapshot(root: &Path) -> BTreeMap<String, Node> {
    let mut out = BTreeMap::new();
    let mut inodes: BTreeMap<(u64, u64), String> = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let mut entries: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for path in entries {
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let md = fs::symlink_metadata(&path).unwrap();
            let ft = md.file_type();
            let kind = if ft.is_dir() {
                "dir"
            } else if ft.is_file() {
                "file"
            } else if ft.is_symlink() {
                "symlink"
            } else if ft.is_char_device() {
                "char"
            } else if ft.is_block_device() {
                "block"
            } else if ft.is_fifo() {
                "fifo"
            } else {
                "other"
            };
            let same_inode_as = if ft.is_file() && md.nlink() > 1 {
                let key = (md.dev(), md.ino());
                match inodes.get(&key) {
                    Some(first) => Some(first.clone()),
                    None => {
                        inodes.insert(key, rel.clone());
                        None
                    }
                }
            } else {
                None
            };
            let node = Node {
                kind,
                mode: md.mode(),
                uid: md.uid(),
                gid: md.gid(),
                mtime: md.mtime(),
                rdev: md.rdev(),
                content: if ft.is_file() {
                    fs::read(&path).unwrap()
                } else {
                    Vec::new()
                },
                link: ft.is_symlink().then(|| {
                    std::os::unix::ffi::OsStrExt::as_bytes(
                        fs::read_link(&path).unwrap().as_os_str(),
                    )
                    .to_vec()
                }),
                xattrs: xattrs(&path),
                same_inode_as,
            };
            if ft.is_dir() {
                stack.push(path.clone());
            }
            out.insert(rel, node);
        }
    }
    out
}

/// Names of the entries of a (plain) tar, in order.
pub fn tar_names(tar_bytes: &[u8]) -> Vec<String> {
    let mut ar = tar::Archive::new(tar_bytes);
    ar.entries()
        .unwrap()
        .map(|e| String::from_utf8_lossy(&e.unwrap().path_bytes()).into_owned())
        .collect()
}
