//! Image references, parsed and normalised as Docker does (distribution/reference):
//! `busybox` is `docker.io/library/busybox:latest`, a first component with a `.` or `:` or
//! equal to `localhost` is a registry host, tags default to `latest` unless a digest is given.

use std::fmt;

use crate::digest::Digest;

pub const DEFAULT_REGISTRY: &str = "docker.io";
const LEGACY_REGISTRY: &str = "index.docker.io";
const NAME_MAX: usize = 255;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error("invalid reference format")]
    Format,
    #[error("invalid reference format: repository name must be lowercase")]
    Uppercase,
    #[error("repository name must not be more than 255 characters")]
    TooLong,
    #[error("invalid repository name ({0}), cannot specify 64-byte hexadecimal strings")]
    HexName(String),
    #[error("invalid reference format: {0}")]
    Digest(String),
}

/// A normalised image reference.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

fn is_alnum_lower(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// path-component := [a-z0-9]+ (separator [a-z0-9]+)*, separator := [_.] | __ | -+
fn valid_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() || !is_alnum_lower(b[0]) || !is_alnum_lower(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if is_alnum_lower(b[i]) {
            i += 1;
            continue;
        }
        // A separator run.
        let start = i;
        while i < b.len() && !is_alnum_lower(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn valid_domain(d: &str) -> bool {
    let (host, port) = if let Some(rest) = d.strip_prefix('[') {
        // [ipv6]:port
        let Some((h, after)) = rest.split_once(']') else {
            return false;
        };
        if h.is_empty()
            || !h
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return false;
        }
        match after {
            "" => return true,
            p => match p.strip_prefix(':') {
                Some(port) => ("", Some(port)),
                None => return false,
            },
        }
    } else {
        match d.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (d, None),
        }
    };
    if let Some(p) = port {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
    }
    if host.is_empty() {
        return d.starts_with('[');
    }
    host.split('.').all(|c| {
        let b = c.as_bytes();
        !b.is_empty()
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric()
            && b.iter().all(|x| x.is_ascii_alphanumeric() || *x == b'-')
    })
}

fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|x| x.is_ascii_alphanumeric() || matches!(x, b'_' | b'.' | b'-'))
}

impl Reference {
    /// Parses and normalises a reference as `docker pull`, `docker tag` and friends do.
    pub fn parse(s: &str) -> Result<Reference, ReferenceError> {
        if s.is_empty() {
            return Err(ReferenceError::Format);
        }
        if s.len() == 64
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(ReferenceError::HexName(s.to_string()));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => {
                let d: Digest = d
                    .parse()
                    .map_err(|e: crate::DigestError| ReferenceError::Digest(e.to_string()))?;
                (r, Some(d))
            }
            None => (s, None),
        };
        // The tag is after the last ':' that follows the last '/'.
        let last_slash = rest.rfind('/').map(|i| i + 1).unwrap_or(0);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => {
                let t = &rest[last_slash + i + 1..];
                if !valid_tag(t) {
                    return Err(ReferenceError::Format);
                }
                (&rest[..last_slash + i], Some(t.to_string()))
            }
            None => (rest, None),
        };
        if name.is_empty() {
            return Err(ReferenceError::Format);
        }
        let (registry, path) = match name.split_once('/') {
            Some((first, remainder))
                if first.contains('.')
                    || first.contains(':')
                    || first == "localhost"
                    || first.starts_with('[') =>
            {
                if !valid_domain(first) {
                    return Err(ReferenceError::Format);
                }
                (first.to_string(), remainder.to_string())
            }
            _ => (DEFAULT_REGISTRY.to_string(), name.to_string()),
        };
        let registry = if registry == LEGACY_REGISTRY {
            DEFAULT_REGISTRY.to_string()
        } else {
            registry
        };
        if path.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(ReferenceError::Uppercase);
        }
        if path.is_empty() || !path.split('/').all(valid_path_component) {
            return Err(ReferenceError::Format);
        }
        let repository = if registry == DEFAULT_REGISTRY && !path.contains('/') {
            format!("library/{path}")
        } else {
            path
        };
        if registry.len() + 1 + repository.len() > NAME_MAX {
            return Err(ReferenceError::TooLong);
        }
        let tag = match (tag, &digest) {
            (None, None) => Some("latest".to_string()),
            (t, _) => t,
        };
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// The registry host (with port), e.g. `docker.io`, `127.0.0.1:5000`.
    pub fn registry(&self) -> &str {
        &self.registry
    }
    /// The repository path inside the registry, e.g. `library/busybox`.
    pub fn repository(&self) -> &str {
        &self.repository
    }
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// `registry/repository`, e.g. `docker.io/library/busybox`.
    pub fn repository_string(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The repository as Docker shows it: `busybox`, `user/app`, `reg:5000/app`.
    pub fn familiar_repository(&self) -> String {
        if self.registry == DEFAULT_REGISTRY {
            self.repository
                .strip_prefix("library/")
                .unwrap_or(&self.repository)
                .to_string()
        } else {
            self.repository_string()
        }
    }

    /// The whole reference as Docker shows it: `busybox:latest`, `reg:5000/app@sha256:…`.
    pub fn familiar(&self) -> String {
        let mut s = self.familiar_repository();
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(&d.to_string());
        }
        s
    }

    /// `registry/repository@digest`, the form RepoDigests are recorded in (no tag).
    pub fn repo_digest_string(&self) -> String {
        match &self.digest {
            Some(d) => format!("{}@{d}", self.repository_string()),
            None => self.repository_string(),
        }
    }

    /// The same repository with another tag and no digest.
    pub fn with_tag(&self, tag: &str) -> Reference {
        Reference {
            tag: Some(tag.to_string()),
            digest: None,
            ..self.clone()
        }
    }

    /// The same repository with a digest and no tag.
    pub fn with_digest(&self, digest: Digest) -> Reference {
        Reference {
            tag: None,
            digest: Some(digest),
            ..self.clone()
        }
    }

    /// The host to speak the registry API to (`registry-1.docker.io` for Docker Hub).
    pub fn api_host(&self) -> &str {
        if self.registry == DEFAULT_REGISTRY {
            "registry-1.docker.io"
        } else {
            &self.registry
        }
    }

    /// The tag or digest to ask a registry for (`latest`, `sha256:…`).
    pub fn api_reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".to_string(),
        }
    }
}

impl fmt::Display for Reference {
    /// The fully qualified form: `docker.io/library/busybox:latest`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Reference({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full(s: &str) -> String {
        Reference::parse(s).unwrap().to_string()
    }

    #[test]
    fn normalises_like_docker() {
        assert_eq!(full("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(full("busybox:1.36"), "docker.io/library/busybox:1.36");
        assert_eq!(full("user/app"), "docker.io/user/app:latest");
        assert_eq!(
            full("index.docker.io/library/x"),
            "docker.io/library/x:latest"
        );
        assert_eq!(full("127.0.0.1:5000/a/b:tag"), "127.0.0.1:5000/a/b:tag");
        assert_eq!(full("localhost/x"), "localhost/x:latest");
        assert_eq!(full("localhost:5000/x"), "localhost:5000/x:latest");
        assert_eq!(full("quay.io/org/img"), "quay.io/org/img:latest");
        assert_eq!(full("[::1]:5000/img:1"), "[::1]:5000/img:1");
        assert_eq!(
            full("a__b/c.d/e-f--g:Tag_1.x-y"),
            "docker.io/a__b/c.d/e-f--g:Tag_1.x-y"
        );
        let d = format!("sha256:{}", "a".repeat(64));
        let r = Reference::parse(&format!("busybox@{d}")).unwrap();
        assert_eq!(r.tag(), None);
        assert_eq!(r.to_string(), format!("docker.io/library/busybox@{d}"));
        assert_eq!(r.familiar(), format!("busybox@{d}"));
        let r = Reference::parse(&format!("busybox:1@{d}")).unwrap();
        assert_eq!(r.tag(), Some("1"));
        assert_eq!(
            r.repo_digest_string(),
            format!("docker.io/library/busybox@{d}")
        );
    }

    #[test]
    fn familiar_forms() {
        assert_eq!(
            Reference::parse("busybox").unwrap().familiar(),
            "busybox:latest"
        );
        assert_eq!(
            Reference::parse("docker.io/user/app:2").unwrap().familiar(),
            "user/app:2"
        );
        assert_eq!(
            Reference::parse("reg:5000/x:1").unwrap().familiar(),
            "reg:5000/x:1"
        );
        assert_eq!(
            Reference::parse("reg:5000/x:1")
                .unwrap()
                .familiar_repository(),
            "reg:5000/x"
        );
        assert_eq!(
            Reference::parse("busybox").unwrap().api_host(),
            "registry-1.docker.io"
        );
    }

    #[test]
    fn rejects_what_docker_rejects() {
        assert_eq!(Reference::parse("UPPER"), Err(ReferenceError::Uppercase));
        assert_eq!(
            Reference::parse("user/Upper:tag"),
            Err(ReferenceError::Uppercase)
        );
        for bad in [
            "",
            ":tag",
            "a:",
            "a:-x",
            "a::b",
            "-a",
            "a-",
            "a//b",
            "a/",
            "a..b",
            "a___b",
            "a@sha256:00",
            "reg:port/x",
            "a b",
            "a:tag with space",
            &format!("a:{}", "t".repeat(129)),
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad:?} should be invalid");
        }
        assert!(matches!(
            Reference::parse(&"a".repeat(64)),
            Err(ReferenceError::HexName(_))
        ));
        assert_eq!(
            Reference::parse(&format!("x/{}", "a".repeat(260))),
            Err(ReferenceError::TooLong)
        );
        assert_eq!(
            Reference::parse("UPPER").unwrap_err().to_string(),
            "invalid reference format: repository name must be lowercase"
        );
    }
}
