//! Carrying out COPY and ADD in a step's mounted root filesystem: Docker's rules for the
//! destination (a trailing `/`, several sources, an existing directory), owners from the
//! image's own `/etc/passwd` and `/etc/group`, modes and mtimes kept, symlinks copied as
//! symlinks, hardlinks kept, local archives unpacked by ADD. Every path in the image is
//! resolved inside its root, even through the image's own symlinks.

use std::collections::HashMap;
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::context::{Context, Source};

pub struct CopyRequest<'a> {
    pub context: &'a Context,
    pub sources: &'a [Source],
    pub rootfs: &'a Path,
    /// Absolute destination inside the image.
    pub dest: &'a str,
    /// The destination names a directory (trailing `/`, or several sources).
    pub dest_is_dir_hint: bool,
    pub chown: Option<&'a str>,
    pub chmod: Option<&'a str>,
    pub extract_archives: bool,
}

type R<T> = std::result::Result<T, String>;

/// Resolves `path` (absolute, in the image) to a host path under `rootfs`, following the
/// image's symlinks inside the root; the last component is followed only when `follow_last`.
pub fn resolve_in_root(rootfs: &Path, path: &str, follow_last: bool) -> PathBuf {
    let mut done: Vec<String> = Vec::new();
    let mut todo: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .rev()
        .map(str::to_string)
        .collect();
    let mut hops = 0;
    while let Some(c) = todo.pop() {
        match c.as_str() {
            "." => continue,
            ".." => {
                done.pop();
                continue;
            }
            _ => {}
        }
        done.push(c);
        if todo.is_empty() && !follow_last {
            break;
        }
        let host = rootfs.join(done.join("/"));
        if let Ok(md) = fs::symlink_metadata(&host) {
            if md.file_type().is_symlink() && hops < 255 {
                hops += 1;
                if let Ok(t) = fs::read_link(&host) {
                    done.pop();
                    let t = t.to_string_lossy().into_owned();
                    if t.starts_with('/') {
                        done.clear();
                    }
                    for part in t.split('/').filter(|s| !s.is_empty()).rev() {
                        todo.push(part.to_string());
                    }
                }
            }
        }
    }
    rootfs.join(done.join("/"))
}

/// `mkdir -p` of an image path inside the root; returns whether anything was created.
pub fn mkdir_all_in_root(rootfs: &Path, path: &str, owner: Option<(u32, u32)>) -> R<bool> {
    let mut cur = String::new();
    let mut created = false;
    for c in path.split('/').filter(|s| !s.is_empty()) {
        cur.push('/');
        cur.push_str(c);
        let host = resolve_in_root(rootfs, &cur, true);
        match fs::symlink_metadata(&host) {
            Ok(md) if md.is_dir() => continue,
            Ok(_) => return Err(format!("mkdir {cur}: not a directory")),
            Err(_) => {
                fs::create_dir(&host).map_err(|e| format!("mkdir {cur}: {e}"))?;
                fs::set_permissions(&host, fs::Permissions::from_mode(0o755))
                    .map_err(|e| e.to_string())?;
                if let Some((u, g)) = owner {
                    std::os::unix::fs::lchown(&host, Some(u), Some(g))
                        .map_err(|e| e.to_string())?;
                }
                created = true;
            }
        }
    }
    Ok(created)
}

fn lookup(rootfs: &Path, file: &str, name: &str) -> Option<(u32, u32)> {
    let f = fs::File::open(resolve_in_root(rootfs, file, true)).ok()?;
    for line in BufReader::new(f).lines().map_while(Result::ok) {
        let fields: Vec<&str> = line.split(':').collect();
        if fields.len() >= 3 && fields[0] == name {
            let id = fields[2].parse().ok()?;
            let gid = fields.get(3).and_then(|g| g.parse().ok()).unwrap_or(id);
            return Some((id, gid));
        }
    }
    None
}

/// A `--chown` name the image's passwd or group file lacks (Docker's words).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChownError {
    #[error("unable to find user {0}: no matching entries in passwd file")]
    NoSuchUser(String),
    #[error("unable to find group {0}: no matching entries in group file")]
    NoSuchGroup(String),
}

/// `--chown=user[:group]` through the image's passwd and group files, as Docker resolves it.
pub fn parse_chown(rootfs: &Path, spec: &str) -> Result<(u32, u32), ChownError> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let (uid, primary) = match user.parse::<u32>() {
        Ok(u) => (u, u),
        Err(_) => lookup(rootfs, "/etc/passwd", user)
            .ok_or_else(|| ChownError::NoSuchUser(user.to_string()))?,
    };
    let gid = match group {
        None => {
            if user.parse::<u32>().is_ok() {
                uid
            } else {
                primary
            }
        }
        Some(g) => match g.parse::<u32>() {
            Ok(g) => g,
            Err(_) => lookup(rootfs, "/etc/group", g)
                .map(|(id, _)| id)
                .ok_or_else(|| ChownError::NoSuchGroup(g.to_string()))?,
        },
    };
    Ok((uid, gid))
}

/// `--chmod`: an octal mode, or symbolic clauses as BuildKit accepts (`u+x,go-w`, `a=rX`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chmod {
    Octal(u32),
    Symbolic(Vec<(u32, char, u32, bool)>),
}

impl Chmod {
    /// The mode a file of mode `old` (permission bits) gets.
    pub fn apply(&self, old: u32, is_dir: bool) -> u32 {
        match self {
            Chmod::Octal(m) => *m,
            Chmod::Symbolic(clauses) => {
                let mut mode = old & 0o7777;
                for (who, op, perms, big_x) in clauses {
                    let mut bits = perms & who;
                    if *big_x && (is_dir || old & 0o111 != 0) {
                        bits |= 0o111 & who;
                    }
                    match op {
                        '+' => mode |= bits,
                        '-' => mode &= !bits,
                        _ => mode = (mode & !who) | bits,
                    }
                }
                mode
            }
        }
    }
}

pub fn parse_chmod(spec: &str) -> R<Chmod> {
    if spec.bytes().all(|b| b.is_ascii_digit()) {
        return u32::from_str_radix(spec, 8)
            .ok()
            .filter(|m| *m <= 0o7777)
            .map(Chmod::Octal)
            .ok_or_else(|| format!("invalid chmod parameter {spec:?}"));
    }
    let bad = || format!("invalid chmod parameter {spec:?}");
    let mut clauses = Vec::new();
    for clause in spec.split(',') {
        let op_at = clause.find(['+', '-', '=']).ok_or_else(bad)?;
        let (who_s, rest) = clause.split_at(op_at);
        let mut who = 0;
        for c in who_s.chars() {
            who |= match c {
                'u' => 0o4700,
                'g' => 0o2070,
                'o' => 0o1007,
                'a' => 0o7777,
                _ => return Err(bad()),
            };
        }
        if who == 0 {
            who = 0o7777;
        }
        let mut chars = rest.chars();
        let op = chars.next().ok_or_else(bad)?;
        let (mut perms, mut big_x) = (0, false);
        for c in chars {
            perms |= match c {
                'r' => 0o444,
                'w' => 0o222,
                'x' => 0o111,
                'X' => {
                    big_x = true;
                    0
                }
                's' => 0o6000,
                't' => 0o1000,
                _ => return Err(bad()),
            };
        }
        clauses.push((who, op, perms, big_x));
    }
    Ok(Chmod::Symbolic(clauses))
}

struct Copier<'a> {
    owner: (u32, u32),
    chmod: Option<Chmod>,
    links: HashMap<(u64, u64), PathBuf>,
    rootfs: &'a Path,
}

/// The uncompressed stream of a local archive ADD unpacks: plain, gzip, zstd (the layer
/// formats), bzip2 or xz.
fn archive_stream(path: &Path) -> std::io::Result<Box<dyn Read>> {
    let mut f = BufReader::new(fs::File::open(path)?);
    let magic = f.fill_buf()?.to_vec();
    if magic.starts_with(b"BZh") {
        return Ok(Box::new(bzip2::bufread::MultiBzDecoder::new(f)));
    }
    if magic.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
        return Ok(Box::new(xz2::bufread::XzDecoder::new_multi_decoder(f)));
    }
    layer::decompress(f)
        .map(|(_, r)| r)
        .map_err(std::io::Error::other)
}

/// Whether ADD should unpack the file: it is a tar, possibly compressed.
fn is_archive(path: &Path) -> bool {
    let Ok(mut plain) = archive_stream(path) else {
        return false;
    };
    let mut head = [0u8; 512];
    let mut got = 0;
    while got < 512 {
        match plain.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(_) => return false,
        }
    }
    got == 512 && (&head[257..262] == b"ustar")
}

impl Copier<'_> {
    fn copy_entry(&mut self, src: &Path, dst: &Path, top: bool) -> R<()> {
        let md = fs::symlink_metadata(src).map_err(|e| format!("{}: {e}", src.display()))?;
        let ft = md.file_type();
        if let Ok(old) = fs::symlink_metadata(dst) {
            if !(old.is_dir() && ft.is_dir()) {
                if old.is_dir() {
                    fs::remove_dir_all(dst).map_err(|e| e.to_string())?;
                } else {
                    fs::remove_file(dst).map_err(|e| e.to_string())?;
                }
            }
        }
        if ft.is_dir() {
            if !dst.exists() {
                fs::create_dir(dst).map_err(|e| format!("mkdir {}: {e}", dst.display()))?;
            }
            let mut names: Vec<_> = fs::read_dir(src)
                .map_err(|e| e.to_string())?
                .flatten()
                .map(|e| e.file_name())
                .collect();
            names.sort();
            for n in names {
                self.copy_entry(&src.join(&n), &dst.join(&n), false)?;
            }
        } else if ft.is_symlink() {
            let t = fs::read_link(src).map_err(|e| e.to_string())?;
            std::os::unix::fs::symlink(&t, dst)
                .map_err(|e| format!("symlink {}: {e}", dst.display()))?;
        } else if ft.is_file() {
            if md.nlink() > 1 {
                if let Some(first) = self.links.get(&(md.dev(), md.ino())) {
                    fs::hard_link(first, dst)
                        .map_err(|e| format!("link {}: {e}", dst.display()))?;
                    return Ok(());
                }
                self.links.insert((md.dev(), md.ino()), dst.to_path_buf());
            }
            fs::copy(src, dst).map_err(|e| format!("copy {}: {e}", src.display()))?;
        } else {
            return Ok(());
        }
        let _ = top;
        std::os::unix::fs::lchown(dst, Some(self.owner.0), Some(self.owner.1))
            .map_err(|e| e.to_string())?;
        if !ft.is_symlink() {
            let mode = self
                .chmod
                .as_ref()
                .map(|c| c.apply(md.mode(), md.is_dir()))
                .unwrap_or(md.mode() & 0o7777);
            fs::set_permissions(dst, fs::Permissions::from_mode(mode))
                .map_err(|e| e.to_string())?;
        }
        let mtime = filetime_of(&md);
        set_mtime(dst, mtime);
        Ok(())
    }
}

fn filetime_of(md: &fs::Metadata) -> (i64, i64) {
    (md.mtime(), md.mtime_nsec())
}

fn set_mtime(p: &Path, (s, ns): (i64, i64)) {
    let t = rustix::fs::Timespec {
        tv_sec: s,
        tv_nsec: ns as _,
    };
    let ts = rustix::fs::Timestamps {
        last_access: t,
        last_modification: t,
    };
    let _ = rustix::fs::utimensat(
        rustix::fs::CWD,
        p,
        &ts,
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    );
}

/// Copies the sources into the mounted root filesystem.
pub fn copy_into(req: &CopyRequest<'_>) -> R<()> {
    let owner = match req.chown {
        Some(c) => parse_chown(req.rootfs, c).map_err(|e| e.to_string())?,
        None => (0, 0),
    };
    let chmod = req.chmod.map(parse_chmod).transpose()?;
    let mut c = Copier {
        owner,
        chmod,
        links: HashMap::new(),
        rootfs: req.rootfs,
    };
    let dest_host = resolve_in_root(req.rootfs, req.dest, true);
    let dest_is_dir = req.dest_is_dir_hint
        || fs::metadata(&dest_host)
            .map(|m| m.is_dir())
            .unwrap_or(false);
    let dir_owner = req.chown.map(|_| owner);
    for src in req.sources {
        let src_host = req.context.path_of(&src.rel);
        if src.is_dir {
            mkdir_all_in_root(c.rootfs, req.dest, dir_owner)?;
            let target = resolve_in_root(c.rootfs, req.dest, true);
            let mut names: Vec<_> = fs::read_dir(&src_host)
                .map_err(|e| e.to_string())?
                .flatten()
                .map(|e| e.file_name())
                .collect();
            names.sort();
            for n in names {
                let rel = if src.rel.is_empty() {
                    n.to_string_lossy().into_owned()
                } else {
                    format!("{}/{}", src.rel, n.to_string_lossy())
                };
                if req.context.excluded(&rel) {
                    continue;
                }
                c.copy_tree_filtered(req.context, &rel, &target.join(&n))?;
            }
            continue;
        }
        if req.extract_archives && is_archive(&src_host) {
            mkdir_all_in_root(c.rootfs, req.dest, dir_owner)?;
            let target = resolve_in_root(c.rootfs, req.dest, true);
            let f = archive_stream(&src_host).map_err(|e| format!("{}: {e}", src.rel))?;
            layer::apply_layer_with(
                f,
                &target,
                &layer::ApplyOptions {
                    whiteouts: layer::WhiteoutMode::Delete,
                    ..Default::default()
                },
            )
            .map_err(|e| format!("{}: {e}", src.rel))?;
            continue;
        }
        let name = Path::new(&src.rel)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let image_path = if dest_is_dir {
            mkdir_all_in_root(c.rootfs, req.dest, dir_owner)?;
            format!("{}/{}", req.dest.trim_end_matches('/'), name)
        } else {
            if let Some((parent, _)) = req.dest.rsplit_once('/') {
                mkdir_all_in_root(
                    c.rootfs,
                    if parent.is_empty() { "/" } else { parent },
                    dir_owner,
                )?;
            }
            req.dest.to_string()
        };
        let target = resolve_in_root(c.rootfs, &image_path, false);
        c.copy_entry(&src_host, &target, true)?;
    }
    Ok(())
}

impl Copier<'_> {
    /// Copies a context entry, skipping what `.dockerignore` excludes below it.
    fn copy_tree_filtered(&mut self, ctx: &Context, rel: &str, dst: &Path) -> R<()> {
        let src = ctx.path_of(rel);
        let md = fs::symlink_metadata(&src).map_err(|e| format!("{}: {e}", src.display()))?;
        if !md.is_dir() {
            return self.copy_entry(&src, dst, false);
        }
        if let Ok(old) = fs::symlink_metadata(dst) {
            if !old.is_dir() {
                fs::remove_file(dst).map_err(|e| e.to_string())?;
            }
        }
        if !dst.exists() {
            fs::create_dir(dst).map_err(|e| format!("mkdir {}: {e}", dst.display()))?;
        }
        let mut names: Vec<_> = fs::read_dir(&src)
            .map_err(|e| e.to_string())?
            .flatten()
            .map(|e| e.file_name())
            .collect();
        names.sort();
        for n in names {
            let child = format!("{rel}/{}", n.to_string_lossy());
            if ctx.excluded(&child) {
                continue;
            }
            self.copy_tree_filtered(ctx, &child, &dst.join(&n))?;
        }
        std::os::unix::fs::lchown(dst, Some(self.owner.0), Some(self.owner.1))
            .map_err(|e| e.to_string())?;
        let mode = self
            .chmod
            .as_ref()
            .map(|c| c.apply(md.mode(), md.is_dir()))
            .unwrap_or(md.mode() & 0o7777);
        fs::set_permissions(dst, fs::Permissions::from_mode(mode)).map_err(|e| e.to_string())?;
        set_mtime(dst, filetime_of(&md));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chmod_octal_and_symbolic() {
        assert_eq!(parse_chmod("755").unwrap().apply(0o600, false), 0o755);
        assert_eq!(parse_chmod("u+x,go-w").unwrap().apply(0o666, false), 0o744);
        assert_eq!(parse_chmod("a=rX").unwrap().apply(0o640, false), 0o444);
        assert_eq!(parse_chmod("a=rX").unwrap().apply(0o750, false), 0o555);
        assert_eq!(parse_chmod("a=rX").unwrap().apply(0o700, true), 0o555);
        assert_eq!(parse_chmod("+x").unwrap().apply(0o644, false), 0o755);
        assert!(parse_chmod("q+x").is_err());
        assert!(parse_chmod("99999").is_err());
    }
}
