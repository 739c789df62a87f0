//! `ADD URL`: Docker's classic builder downloads every URL on every build (into a file of
//! mode 0600 whose mtime is the `Last-Modified` header), names the file after the URL's path
//! or else its `Content-Disposition`, hashes it as a lone tar entry owned by root (no `file:`
//! prefix in history), and never extracts it. The HTTP itself comes through the [`Fetcher`]
//! the binary wires in, so this crate stays free of network code.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use super::*;

pub(super) fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

/// The last component of a URL's path (query and fragment cut), percent-decoded.
fn path_base(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let path = match rest.find('/') {
        Some(i) => &rest[i..],
        None => return None,
    };
    let path = path.split(['?', '#']).next().unwrap_or("");
    if path.ends_with('/') {
        return None;
    }
    let base = path.rsplit('/').next()?;
    let decoded = percent_decode(base)?;
    Some(decoded)
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// `filename=` of a `Content-Disposition` header, reduced to its last component.
fn disposition_name(header: &str) -> Option<String> {
    header.split(';').skip(1).find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        if !k.trim().eq_ignore_ascii_case("filename") {
            return None;
        }
        let v = v.trim().trim_matches('"');
        if v.ends_with('/') {
            return None;
        }
        v.rsplit('/').next().map(str::to_string)
    })
}

/// The name Docker gives the downloaded file, refused when it is not one plain component.
pub(super) fn filename_for(url: &str, content_disposition: Option<&str>) -> Option<String> {
    let name = path_base(url)
        .filter(|n| !n.is_empty())
        .or_else(|| content_disposition.and_then(disposition_name))?;
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\0']) {
        return None;
    }
    Some(name)
}

impl Builder<'_> {
    /// Downloads each URL into a new staging directory; returns it with the file names.
    pub(super) fn download(
        &mut self,
        urls: &[String],
        line: usize,
        quiet: bool,
    ) -> Result<(store::Staging, Vec<String>)> {
        let fetch = self.fetcher.ok_or_else(|| BuildError::Step {
            line,
            msg: "ADD: no HTTP client is available to download URLs".into(),
        })?;
        let stg = self.store.stage()?;
        let mut names = Vec::new();
        for (i, url) in urls.iter().enumerate() {
            let tmp = stg.path().join(format!(".download-{i}"));
            let got = fetch(url, &tmp).map_err(BuildError::Fetch)?;
            let name = filename_for(url, got.content_disposition.as_deref()).ok_or_else(|| {
                BuildError::Step {
                    line,
                    msg: format!("cannot determine filename from url: {url}"),
                }
            })?;
            if names.contains(&name) {
                return Err(BuildError::Step {
                    line,
                    msg: format!("ADD: two URLs download to the same file name {name}"),
                });
            }
            let path = stg.path().join(&name);
            fs::rename(&tmp, &path).map_err(|e| BuildError::io(&path, e))?;
            fs::set_permissions(&path, fs::Permissions::from_mode(0o600))
                .map_err(|e| BuildError::io(&path, e))?;
            if let Some(t) = got.last_modified {
                let f = fs::File::options()
                    .write(true)
                    .open(&path)
                    .map_err(|e| BuildError::io(&path, e))?;
                f.set_modified(t).map_err(|e| BuildError::io(&path, e))?;
            }
            // Docker's classic builder prints a blank line after each download.
            if !quiet {
                let _ = writeln!(self.out);
            }
            names.push(name);
        }
        Ok((stg, names))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_as_docker_derives_them() {
        assert_eq!(
            filename_for("http://h:1/a/remote.txt", None).as_deref(),
            Some("remote.txt")
        );
        assert_eq!(
            filename_for("https://h/x/y%20z.tgz?sig=1#f", None).as_deref(),
            Some("y z.tgz")
        );
        assert_eq!(filename_for("http://h/dir/", None), None);
        assert_eq!(
            filename_for("http://h/dir/", Some("attachment; filename=\"got.bin\"")).as_deref(),
            Some("got.bin")
        );
        assert_eq!(
            filename_for("http://h/", Some("attachment; filename=../../etc/x")).as_deref(),
            Some("x")
        );
        assert_eq!(filename_for("http://h/..", None), None);
        assert_eq!(filename_for("http://h/%2e%2e", None), None);
        assert_eq!(filename_for("http://h/a%2fb", None), None);
        assert_eq!(filename_for("http://h", None), None);
    }
}
