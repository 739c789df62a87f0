//! Image references (`busybox`, `127.0.0.1:5000/a/b:tag`, `name@sha256:…`) parsed and
//! normalised exactly as Docker's `distribution/reference` does (`ParseNormalizedNamed`), with
//! Docker's error texts, plus the short "familiar" form Docker prints and the registry API
//! host and path a registry client needs.

use std::fmt;
use std::str::FromStr;

use crate::digest::Digest;

/// Registry that names without a host belong to.
pub const DEFAULT_REGISTRY: &str = "docker.io";
/// Host name that serves the Docker Hub registry API.
pub const DOCKER_HUB_API_HOST: &str = "registry-1.docker.io";
const LEGACY_DEFAULT_REGISTRY: &str = "index.docker.io";
const OFFICIAL_NAMESPACE: &str = "library";
/// The tag given to a reference that names neither a tag nor a digest.
pub const DEFAULT_TAG: &str = "latest";
/// Longest accepted repository name, registry included (`NameTotalLengthMax`).
pub const NAME_TOTAL_LENGTH_MAX: usize = 255;

/// Why a reference was refused; the messages are Docker's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error("invalid reference format")]
    InvalidFormat,
    #[error("invalid reference format: repository name must be lowercase")]
    Uppercase,
    #[error("repository name must have at least one component")]
    Empty,
    #[error("repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters")]
    TooLong,
    #[error("invalid repository name ({0}), cannot specify 64-byte hexadecimal strings")]
    HexIdentifier(String),
    #[error("invalid tag format")]
    InvalidTag,
    #[error("unsupported digest algorithm")]
    DigestAlgorithm,
    #[error("invalid checksum digest length")]
    DigestLength,
    #[error("invalid checksum digest format")]
    DigestFormat,
}

/// A normalised image reference: `registry/repository[:tag][@digest]`.
///
/// `registry` is always set (`docker.io` by default) and `repository` is the full path in
/// that registry (`library/busybox` for official Docker Hub images).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    pub registry: String,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

impl Reference {
    /// Parses like Docker's `ParseNormalizedNamed` followed by `TagNameOnly`: a reference
    /// with neither tag nor digest gets the tag `latest`.
    pub fn parse(s: &str) -> Result<Self, ReferenceError> {
        let mut r = Self::parse_bare(s)?;
        if r.tag.is_none() && r.digest.is_none() {
            r.tag = Some(DEFAULT_TAG.to_string());
        }
        Ok(r)
    }

    /// Parses like Docker's `ParseNormalizedNamed`, keeping tag and digest as written (both
    /// may be absent), for commands that treat "no tag" differently (`images REPO`).
    pub fn parse_bare(s: &str) -> Result<Self, ReferenceError> {
        if is_hex_identifier(s) {
            return Err(ReferenceError::HexIdentifier(s.to_string()));
        }
        let (registry, remainder) = split_docker_domain(s);
        let remote_name = match remainder.find(':') {
            Some(i) => &remainder[..i],
            None => &remainder,
        };
        if remote_name.to_lowercase() != remote_name {
            return Err(ReferenceError::Uppercase);
        }
        parse_full(&format!("{registry}/{remainder}"))
    }

    /// Parses a repository name only (no tag, no digest), e.g. the `REPOSITORY` argument of
    /// `images` or `import`.
    pub fn parse_repository(s: &str) -> Result<Self, ReferenceError> {
        let r = Self::parse_bare(s)?;
        if r.tag.is_some() || r.digest.is_some() {
            return Err(ReferenceError::InvalidFormat);
        }
        Ok(r)
    }

    /// Builds a reference from parts, validating each as `parse` would.
    pub fn new(
        registry: &str,
        repository: &str,
        tag: Option<&str>,
        digest: Option<Digest>,
    ) -> Result<Self, ReferenceError> {
        if !valid_domain(registry) || !valid_path(repository) {
            return Err(ReferenceError::InvalidFormat);
        }
        if registry.len() + 1 + repository.len() > NAME_TOTAL_LENGTH_MAX {
            return Err(ReferenceError::TooLong);
        }
        if let Some(t) = tag {
            if !valid_tag(t) {
                return Err(ReferenceError::InvalidTag);
            }
        }
        Ok(Reference {
            registry: registry.to_string(),
            repository: repository.to_string(),
            tag: tag.map(str::to_string),
            digest,
        })
    }

    /// `registry/repository`, Docker's `Name()`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The repository as Docker shows it: `busybox`, `user/img`, `myreg:5000/x`.
    pub fn repository_familiar(&self) -> String {
        if self.registry == DEFAULT_REGISTRY {
            match self.repository.strip_prefix("library/") {
                Some(rest) if !rest.contains('/') => rest.to_string(),
                _ => self.repository.clone(),
            }
        } else {
            self.name()
        }
    }

    /// Docker's short display (`FamiliarString`): `busybox:latest`, `myreg:5000/x:1`,
    /// `busybox@sha256:…`.
    pub fn familiar(&self) -> String {
        let mut s = self.repository_familiar();
        self.push_suffix(&mut s);
        s
    }

    /// Docker's `FamiliarMatch`: whether `pattern` (Go's `path.Match`) matches the familiar
    /// string (`busybox:latest`) or, failing that, the familiar name (`busybox`).
    pub fn familiar_match(&self, pattern: &str) -> Result<bool, crate::BadPattern> {
        if crate::path_match(pattern, &self.familiar())? {
            return Ok(true);
        }
        Ok(crate::path_match(pattern, &self.repository_familiar()).unwrap_or(false))
    }

    /// The same reference with the tag replaced and no digest.
    pub fn with_tag(&self, tag: &str) -> Result<Self, ReferenceError> {
        if !valid_tag(tag) {
            return Err(ReferenceError::InvalidTag);
        }
        Ok(Reference {
            tag: Some(tag.to_string()),
            digest: None,
            ..self.clone()
        })
    }

    /// The same repository pinned to `digest`, without tag (`repo@sha256:…`, a RepoDigest).
    pub fn with_digest(&self, digest: Digest) -> Self {
        Reference {
            tag: None,
            digest: Some(digest),
            ..self.clone()
        }
    }

    /// True for references in Docker Hub.
    pub fn is_docker_hub(&self) -> bool {
        self.registry == DEFAULT_REGISTRY
    }

    /// Host (with port) to send registry API requests to: Docker Hub's registry lives at
    /// `registry-1.docker.io`, every other registry at its own name.
    pub fn api_host(&self) -> &str {
        if self.is_docker_hub() {
            DOCKER_HUB_API_HOST
        } else {
            &self.registry
        }
    }

    /// Path of this repository in the registry API: `/v2/<repository>`.
    pub fn api_repository_path(&self) -> String {
        format!("/v2/{}", self.repository)
    }

    /// What to put after `/manifests/`: the digest when there is one, else the tag
    /// (`latest` when neither was given).
    pub fn api_reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => DEFAULT_TAG.to_string(),
        }
    }

    /// `/v2/<repository>/manifests/<tag-or-digest>`.
    pub fn api_manifest_path(&self) -> String {
        format!(
            "{}/manifests/{}",
            self.api_repository_path(),
            self.api_reference()
        )
    }

    fn push_suffix(&self, s: &mut String) {
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(&d.to_string());
        }
    }
}

impl fmt::Display for Reference {
    /// The full form: `docker.io/library/busybox:latest`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = self.name();
        self.push_suffix(&mut s);
        f.write_str(&s)
    }
}

impl fmt::Debug for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Reference({self})")
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl serde::Serialize for Reference {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Reference {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse_bare(&s).map_err(serde::de::Error::custom)
    }
}

/// `^[a-f0-9]{64}$`: a bare image ID, which Docker refuses as a repository name.
fn is_hex_identifier(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Docker's `splitDockerDomain`: the first component is a registry host when it contains
/// `.` or `:` or is `localhost`; Docker Hub names get the `library/` namespace.
fn split_docker_domain(name: &str) -> (String, String) {
    let (mut domain, mut remainder) = match name.find('/') {
        Some(i) if name[..i].contains(['.', ':']) || &name[..i] == "localhost" => {
            (name[..i].to_string(), name[i + 1..].to_string())
        }
        _ => (DEFAULT_REGISTRY.to_string(), name.to_string()),
    };
    if domain == LEGACY_DEFAULT_REGISTRY {
        domain = DEFAULT_REGISTRY.to_string();
    }
    if domain == DEFAULT_REGISTRY && !remainder.contains('/') {
        remainder = format!("{OFFICIAL_NAMESPACE}/{remainder}");
    }
    (domain, remainder)
}

/// Docker's `Parse` on `domain/remainder`: `name[:tag][@digest]` against the grammar.
fn parse_full(s: &str) -> Result<Reference, ReferenceError> {
    match match_reference(s) {
        Some(parts) => {
            let (domain, path, tag, digest) = parts;
            if domain.len() + 1 + path.len() > NAME_TOTAL_LENGTH_MAX {
                return Err(ReferenceError::TooLong);
            }
            let digest = match digest {
                Some(d) => Some(validate_digest(d)?),
                None => None,
            };
            Ok(Reference {
                registry: domain.to_string(),
                repository: path.to_string(),
                tag: tag.map(str::to_string),
                digest,
            })
        }
        None => {
            if s.is_empty() {
                Err(ReferenceError::Empty)
            } else if match_reference(&s.to_lowercase()).is_some() {
                Err(ReferenceError::Uppercase)
            } else {
                Err(ReferenceError::InvalidFormat)
            }
        }
    }
}

type Parts<'a> = (&'a str, &'a str, Option<&'a str>, Option<&'a str>);

/// Matches `domain/path[:tag][@digest]` (the domain is always present here, since
/// normalisation adds it) and returns the pieces, or None when the grammar does not match.
fn match_reference(s: &str) -> Option<Parts<'_>> {
    let (name_tag, digest) = match s.split_once('@') {
        Some((a, d)) => (a, Some(d)),
        None => (s, None),
    };
    if let Some(d) = digest {
        if !digest_grammar(d) {
            return None;
        }
    }
    let slash = name_tag.find('/')?;
    let domain = &name_tag[..slash];
    let rest = &name_tag[slash + 1..];
    // Path components cannot contain ':', so the first ':' after the domain starts the tag.
    let (path, tag) = match rest.split_once(':') {
        Some((p, t)) => (p, Some(t)),
        None => (rest, None),
    };
    if !valid_domain(domain) || !valid_path(path) {
        return None;
    }
    if let Some(t) = tag {
        if !valid_tag(t) {
            return None;
        }
    }
    Some((domain, path, tag, digest))
}

/// `domain-component(.domain-component)*(:port)?`, or a bracketed IPv6 address with an
/// optional port.
fn valid_domain(d: &str) -> bool {
    let (host, port) = if let Some(rest) = d.strip_prefix('[') {
        let Some((addr, after)) = rest.split_once(']') else {
            return false;
        };
        if addr.is_empty() || !addr.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
            return false;
        }
        match after {
            "" => return true,
            p => match p.strip_prefix(':') {
                Some(port) => ("ok", Some(port)),
                None => return false,
            },
        }
    } else {
        match d.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (d, None),
        }
    };
    if let Some(p) = port {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
    }
    !host.is_empty()
        && host.split('.').all(|c| {
            !c.is_empty()
                && c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !c.starts_with('-')
                && !c.ends_with('-')
        })
}

/// `path-component(/path-component)*`.
fn valid_path(p: &str) -> bool {
    !p.is_empty() && p.split('/').all(valid_path_component)
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
fn valid_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
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

/// `[\w][\w.-]{0,127}`.
pub fn valid_tag(t: &str) -> bool {
    let word = |x: u8| x.is_ascii_alphanumeric() || x == b'_';
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && word(b[0])
        && b[1..].iter().all(|&x| word(x) || x == b'.' || x == b'-')
}

/// `[A-Za-z][A-Za-z0-9]*([-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}`.
fn digest_grammar(d: &str) -> bool {
    let Some((alg, hex)) = d.split_once(':') else {
        return false;
    };
    let alg_ok = alg.split(['-', '_', '+', '.']).all(|part| {
        let b = part.as_bytes();
        !b.is_empty() && b[0].is_ascii_alphabetic() && b.iter().all(|x| x.is_ascii_alphanumeric())
    });
    alg_ok && hex.len() >= 32 && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `go-digest`'s `Validate` for a digest that already matched the grammar.
fn validate_digest(d: &str) -> Result<Digest, ReferenceError> {
    let (alg, hex) = d.split_once(':').ok_or(ReferenceError::DigestFormat)?;
    let want = match alg {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return Err(ReferenceError::DigestAlgorithm),
    };
    if hex.len() != want {
        return Err(ReferenceError::DigestLength);
    }
    if alg != "sha256" {
        // Valid for Docker, but strata (like every registry in practice) only handles sha256.
        return Err(ReferenceError::DigestAlgorithm);
    }
    d.parse::<Digest>()
        .map_err(|_| ReferenceError::DigestFormat)
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn full(s: &str) -> String {
        Reference::parse(s).unwrap().to_string()
    }

    #[test]
    fn normalises_like_docker() {
        assert_eq!(full("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(full("busybox:1.36"), "docker.io/library/busybox:1.36");
        assert_eq!(full("user/img"), "docker.io/user/img:latest");
        assert_eq!(
            full("docker.io/busybox"),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(
            full("index.docker.io/busybox"),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(
            full("docker.io/library/busybox"),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(full("localhost/x"), "localhost/x:latest");
        assert_eq!(full("localhost:5000/x"), "localhost:5000/x:latest");
        assert_eq!(full("127.0.0.1:5000/a/b:tag"), "127.0.0.1:5000/a/b:tag");
        assert_eq!(full("example.com/a/b/c"), "example.com/a/b/c:latest");
        assert_eq!(full("[::1]:5000/x:y"), "[::1]:5000/x:y");
        // A first component without '.' or ':' is a namespace, not a host.
        assert_eq!(full("myhost/x"), "docker.io/myhost/x:latest");
        assert_eq!(
            full("a.b-c_d__e---f"),
            "docker.io/library/a.b-c_d__e---f:latest"
        );
    }

    #[test]
    fn tags_and_digests() {
        let r = Reference::parse(&format!("busybox@{D}")).unwrap();
        assert_eq!(r.tag, None);
        assert_eq!(r.digest.unwrap().to_string(), D);
        assert_eq!(r.to_string(), format!("docker.io/library/busybox@{D}"));
        assert_eq!(r.familiar(), format!("busybox@{D}"));
        assert_eq!(r.api_reference(), D);

        let r = Reference::parse(&format!("reg:5000/x:1@{D}")).unwrap();
        assert_eq!(r.tag.as_deref(), Some("1"));
        assert_eq!(r.registry, "reg:5000");
        assert_eq!(r.familiar(), format!("reg:5000/x:1@{D}"));

        // Tags may contain uppercase letters; repositories may not.
        assert_eq!(
            full("busybox:Latest_1.x-y"),
            "docker.io/library/busybox:Latest_1.x-y"
        );
        assert!(Reference::parse(&format!("x:{}", "a".repeat(128))).is_ok());
    }

    #[test]
    fn bare_parse_keeps_absent_tag() {
        let r = Reference::parse_bare("busybox").unwrap();
        assert_eq!(r.tag, None);
        assert_eq!(r.to_string(), "docker.io/library/busybox");
        assert!(Reference::parse_repository("busybox:1").is_err());
        assert_eq!(
            Reference::parse_repository("a/b").unwrap().repository,
            "a/b"
        );
    }

    #[test]
    fn familiar_forms() {
        let f = |s: &str| Reference::parse(s).unwrap().familiar();
        assert_eq!(f("busybox"), "busybox:latest");
        assert_eq!(f("docker.io/library/busybox:1"), "busybox:1");
        assert_eq!(f("user/img"), "user/img:latest");
        assert_eq!(f("docker.io/library/a/b"), "library/a/b:latest");
        assert_eq!(f("myreg:5000/x:1"), "myreg:5000/x:1");
        assert_eq!(
            Reference::parse("busybox").unwrap().repository_familiar(),
            "busybox"
        );
        assert_eq!(
            Reference::parse("localhost/x")
                .unwrap()
                .repository_familiar(),
            "localhost/x"
        );
    }

    #[test]
    fn registry_api_helpers() {
        let r = Reference::parse("busybox").unwrap();
        assert_eq!(r.api_host(), "registry-1.docker.io");
        assert_eq!(
            r.api_manifest_path(),
            "/v2/library/busybox/manifests/latest"
        );
        let r = Reference::parse("127.0.0.1:5000/a/b:t").unwrap();
        assert_eq!(r.api_host(), "127.0.0.1:5000");
        assert_eq!(r.api_repository_path(), "/v2/a/b");
        assert!(!r.is_docker_hub());
    }

    #[test]
    fn docker_error_texts() {
        let e = |s: &str| Reference::parse(s).unwrap_err().to_string();
        assert_eq!(
            e("UPPER"),
            "invalid reference format: repository name must be lowercase"
        );
        assert_eq!(
            e("user/Img:tag"),
            "invalid reference format: repository name must be lowercase"
        );
        assert_eq!(e("a:b:c"), "invalid reference format");
        assert_eq!(e(""), "invalid reference format");
        assert_eq!(e("-a"), "invalid reference format");
        assert_eq!(e("a-"), "invalid reference format");
        assert_eq!(e("a..b"), "invalid reference format");
        assert_eq!(e("a___b"), "invalid reference format");
        assert_eq!(e("a//b"), "invalid reference format");
        assert_eq!(e("a/"), "invalid reference format");
        assert_eq!(e("x:-tag"), "invalid reference format");
        assert_eq!(
            e(&format!("x:{}", "a".repeat(129))),
            "invalid reference format"
        );
        assert_eq!(e("host:port/x"), "invalid reference format");
        assert_eq!(e("a b"), "invalid reference format");
        assert_eq!(e("x@sha256:abc"), "invalid reference format");
        assert_eq!(
            e(&format!("x@sha256:{}", "A".repeat(64))),
            "invalid checksum digest format"
        );
        assert_eq!(
            e(&format!("x@sha256:{}", "a".repeat(40))),
            "invalid checksum digest length"
        );
        assert_eq!(
            e(&format!("x@foo:{}", "a".repeat(40))),
            "unsupported digest algorithm"
        );
        let hex = "a".repeat(64);
        assert_eq!(
            e(&hex),
            format!("invalid repository name ({hex}), cannot specify 64-byte hexadecimal strings")
        );
        // Uppercase in a registry host is fine, in the path it is not.
        assert_eq!(full("Example.COM/x"), "Example.COM/x:latest");
        assert_eq!(
            e("example.com/X"),
            "invalid reference format: repository name must be lowercase"
        );
    }

    #[test]
    fn length_limit_counts_registry() {
        // docker.io/library/ is 18 characters: 237 more reach the 255 limit.
        assert!(Reference::parse(&"a".repeat(237)).is_ok());
        assert_eq!(
            Reference::parse(&"a".repeat(238)).unwrap_err(),
            ReferenceError::TooLong
        );
    }

    #[test]
    fn with_tag_and_digest() {
        let r = Reference::parse("busybox:1").unwrap();
        assert_eq!(r.with_tag("2").unwrap().familiar(), "busybox:2");
        assert!(r.with_tag("-x").is_err());
        let d: Digest = D.parse().unwrap();
        assert_eq!(r.with_digest(d).familiar(), format!("busybox@{D}"));
    }

    #[test]
    fn serde_round_trip() {
        let r = Reference::parse("user/img:1").unwrap();
        let j = serde_json::to_string(&r).unwrap();
        assert_eq!(j, "\"docker.io/user/img:1\"");
        assert_eq!(serde_json::from_str::<Reference>(&j).unwrap(), r);
    }

    #[test]
    fn generated_inputs_never_panic_and_round_trip() {
        // A small deterministic generator over the characters that matter to the grammar.
        let alphabet: Vec<char> = "ab0Z:/@.-_[]é ".chars().collect();
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut valid = 0;
        for _ in 0..20_000 {
            let len = (next() % 16) as usize;
            let mut s: String = (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect();
            if next() % 4 == 0 {
                s.push('@');
                s.push_str(D);
            }
            if let Ok(r) = Reference::parse(&s) {
                valid += 1;
                assert_eq!(Reference::parse(&r.to_string()).unwrap(), r, "{s:?}");
                assert_eq!(Reference::parse(&r.familiar()).unwrap(), r, "{s:?}");
            }
        }
        assert!(
            valid > 100,
            "generator produced too few valid references ({valid})"
        );
    }
}
