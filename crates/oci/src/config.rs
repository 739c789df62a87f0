//! Docker's image configuration JSON (moby `image.Image` with `container.Config`) and the
//! `docker inspect <image>` view (API 1.41 `types.ImageInspect`), as serde structs that
//! serialise in Docker's key order with Docker's `omitempty` rules.
//!
//! The image ID is the sha256 of the stored config bytes, so a store keeps the bytes it was
//! given; these structs are for reading them and for writing new configs
//! ([`ImageConfig::to_docker_json`] gives what dockerd would write). Unknown keys are kept in
//! `extra` maps so that a config from a newer tool survives a round trip.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::digest::Digest;
use crate::gojson::GoJson;

macro_rules! default_path {
    () => {
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    };
}

/// Docker's default `PATH` for Linux containers: what a container gets when its image sets
/// none, and what a build puts first in the `Env` of an image that had none.
pub const DEFAULT_PATH: &str = default_path!();

/// [`DEFAULT_PATH`] as an `Env` entry.
pub const DEFAULT_PATH_ENV: &str = concat!("PATH=", default_path!());

/// The Go zero `time.Time` as Docker prints it.
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

fn is_false(b: &bool) -> bool {
    !*b
}
fn is_zero(n: &i64) -> bool {
    *n == 0
}
fn none_or_empty<T>(v: &Option<Vec<T>>) -> bool {
    v.as_ref().is_none_or(|v| v.is_empty())
}
fn none_or_empty_set(v: &Option<BTreeSet<String>>) -> bool {
    v.as_ref().is_none_or(|v| v.is_empty())
}

/// Go's `strslice.StrSlice`: `null`, a list of strings, or a single string (read as a
/// one-element list).
mod strslice {
    use super::*;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            One(String),
            Many(Vec<String>),
        }
        Ok(match Option::<Either>::deserialize(d)? {
            None => None,
            Some(Either::One(s)) => Some(vec![s]),
            Some(Either::Many(v)) => Some(v),
        })
    }
}

/// Go's `map[string]struct{}` (`Volumes`, `ExposedPorts`) as a sorted set: written as
/// `{"key":{}}` (Go sorts map keys), read from any object ignoring the values.
mod set_as_map {
    use super::*;

    pub fn serialize<S: Serializer>(v: &Option<BTreeSet<String>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            None => s.serialize_none(),
            Some(set) => {
                let m: BTreeMap<&str, Map<String, Value>> =
                    set.iter().map(|k| (k.as_str(), Map::new())).collect();
                m.serialize(s)
            }
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<BTreeSet<String>>, D::Error> {
        let m = Option::<BTreeMap<String, Value>>::deserialize(d)?;
        Ok(m.map(|m| m.into_keys().collect()))
    }
}

/// `container.Config`: the runtime configuration stored in an image (`config`) and the
/// config of the container that built it (`container_config`). Field order is Go's.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ContainerConfig {
    #[serde(rename = "Hostname")]
    pub hostname: String,
    #[serde(rename = "Domainname")]
    pub domainname: String,
    #[serde(rename = "User")]
    pub user: String,
    #[serde(rename = "AttachStdin")]
    pub attach_stdin: bool,
    #[serde(rename = "AttachStdout")]
    pub attach_stdout: bool,
    #[serde(rename = "AttachStderr")]
    pub attach_stderr: bool,
    /// `"8080/tcp"`, `"53/udp"`.
    #[serde(
        rename = "ExposedPorts",
        with = "set_as_map",
        skip_serializing_if = "none_or_empty_set"
    )]
    pub exposed_ports: Option<BTreeSet<String>>,
    #[serde(rename = "Tty")]
    pub tty: bool,
    #[serde(rename = "OpenStdin")]
    pub open_stdin: bool,
    #[serde(rename = "StdinOnce")]
    pub stdin_once: bool,
    /// `None` is written as `null`, `Some(vec![])` as `[]`, as Go distinguishes them.
    #[serde(rename = "Env")]
    pub env: Option<Vec<String>>,
    #[serde(rename = "Cmd", deserialize_with = "strslice::deserialize")]
    pub cmd: Option<Vec<String>>,
    #[serde(rename = "Healthcheck", skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<HealthConfig>,
    #[serde(rename = "ArgsEscaped", skip_serializing_if = "is_false")]
    pub args_escaped: bool,
    #[serde(rename = "Image")]
    pub image: String,
    #[serde(rename = "Volumes", with = "set_as_map")]
    pub volumes: Option<BTreeSet<String>>,
    #[serde(rename = "WorkingDir")]
    pub working_dir: String,
    #[serde(rename = "Entrypoint", deserialize_with = "strslice::deserialize")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(rename = "NetworkDisabled", skip_serializing_if = "is_false")]
    pub network_disabled: bool,
    #[serde(rename = "MacAddress", skip_serializing_if = "String::is_empty")]
    pub mac_address: String,
    #[serde(rename = "OnBuild")]
    pub on_build: Option<Vec<String>>,
    #[serde(rename = "Labels")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(rename = "StopSignal", skip_serializing_if = "String::is_empty")]
    pub stop_signal: String,
    #[serde(rename = "StopTimeout", skip_serializing_if = "Option::is_none")]
    pub stop_timeout: Option<i64>,
    #[serde(
        rename = "Shell",
        deserialize_with = "strslice::deserialize",
        skip_serializing_if = "none_or_empty"
    )]
    pub shell: Option<Vec<String>>,
    /// Keys this struct does not know, kept for round trips.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `container.HealthConfig`; durations are nanoseconds as in Go's JSON.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HealthConfig {
    /// `["NONE"]`, `["CMD", args…]` or `["CMD-SHELL", command]`.
    #[serde(rename = "Test", skip_serializing_if = "none_or_empty")]
    pub test: Option<Vec<String>>,
    #[serde(rename = "Interval", skip_serializing_if = "is_zero")]
    pub interval: i64,
    #[serde(rename = "Timeout", skip_serializing_if = "is_zero")]
    pub timeout: i64,
    #[serde(rename = "StartPeriod", skip_serializing_if = "is_zero")]
    pub start_period: i64,
    #[serde(rename = "StartInterval", skip_serializing_if = "is_zero")]
    pub start_interval: i64,
    #[serde(rename = "Retries", skip_serializing_if = "is_zero")]
    pub retries: i64,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One `history` entry of an image config.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct History {
    /// RFC 3339 with nanoseconds, kept as written. Docker always writes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub author: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub created_by: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub comment: String,
    /// True when the step produced no layer (no `rootfs.diff_ids` entry for it).
    #[serde(skip_serializing_if = "is_false")]
    pub empty_layer: bool,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `rootfs`: the layer diff_ids, bottom first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub diff_ids: Vec<Digest>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Default for RootFs {
    fn default() -> Self {
        RootFs {
            kind: "layers".to_string(),
            diff_ids: Vec::new(),
            extra: Map::new(),
        }
    }
}

/// moby's `image.Image`: the image config JSON. Fields are in alphabetical order because
/// dockerd writes the top level through a Go map, which sorts keys; [`Self::to_docker_json`]
/// also sorts unknown keys among them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ImageConfig {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub architecture: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub author: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub comment: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<ContainerConfig>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub container: String,
    /// Docker always writes it (zero values when no container made the image); OCI configs
    /// from other tools lack it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_config: Option<ContainerConfig>,
    /// RFC 3339 with nanoseconds, kept as written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub docker_version: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<History>,
    /// Legacy v1 ID, only in old configs.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub os: String,
    #[serde(rename = "os.features", skip_serializing_if = "Vec::is_empty")]
    pub os_features: Vec<String>,
    #[serde(rename = "os.version", skip_serializing_if = "String::is_empty")]
    pub os_version: String,
    /// Legacy parent image ID, only in old configs (dockerd keeps the parent link outside).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub parent: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rootfs: Option<RootFs>,
    #[serde(skip_serializing_if = "is_zero")]
    pub size: i64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub variant: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// This machine's architecture as Go names it (`GOARCH`), which Docker writes in configs and
/// platforms: the one place strata turns Rust's name into Go's.
pub fn host_architecture() -> &'static str {
    go_architecture(std::env::consts::ARCH, cfg!(target_endian = "little"))
}

/// Go's name (`amd64`, `arm64`, `ppc64le`, …) for a Rust target architecture name; Rust names
/// both byte orders of some architectures alike, Go does not.
pub fn go_architecture(rust_arch: &str, little_endian: bool) -> &str {
    match (rust_arch, little_endian) {
        ("x86_64", _) => "amd64",
        ("x86", _) => "386",
        ("aarch64", _) => "arm64",
        ("powerpc64", true) => "ppc64le",
        ("powerpc64", false) => "ppc64",
        ("mips64", true) => "mips64le",
        ("mips", true) => "mipsle",
        ("loongarch64", _) => "loong64",
        (other, _) => other,
    }
}

/// Why a config could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid image config json: {0}")]
    Json(#[from] serde_json::Error),
}

impl ImageConfig {
    /// Reads a config from its stored bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, ConfigError> {
        Ok(serde_json::from_slice(bytes)?)
    }

    /// The bytes dockerd would store for this config: compact, HTML-escaped, top-level keys
    /// sorted. The image ID of a new image is the sha256 of exactly these bytes.
    pub fn to_docker_json(&self) -> Vec<u8> {
        // Serialising plain data to a Value cannot fail (all map keys are strings).
        let v = serde_json::to_value(self).unwrap_or(Value::Null);
        let sorted: BTreeMap<String, Value> = match v {
            Value::Object(m) => m.into_iter().collect(),
            _ => BTreeMap::new(),
        };
        GoJson::MARSHAL.to_vec(&sorted).unwrap_or_default()
    }

    /// The config `docker import` writes: one layer, one history entry whose comment is
    /// `comment` (`Imported from -` for a file or stdin, or the `-m` message), `config`
    /// holding what `--change` set, a zero `container_config`, `created` everywhere.
    pub fn imported(
        created: &str,
        comment: &str,
        docker_version: &str,
        diff_id: Digest,
        config: ContainerConfig,
    ) -> Self {
        ImageConfig {
            architecture: host_architecture().to_string(),
            comment: comment.to_string(),
            config: Some(config),
            container_config: Some(ContainerConfig::default()),
            created: Some(created.to_string()),
            docker_version: docker_version.to_string(),
            history: vec![History {
                created: Some(created.to_string()),
                comment: comment.to_string(),
                ..Default::default()
            }],
            os: "linux".to_string(),
            rootfs: Some(RootFs {
                diff_ids: vec![diff_id],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// The diff_ids of the layers, bottom first (empty when there is no `rootfs`).
    pub fn diff_ids(&self) -> &[Digest] {
        self.rootfs
            .as_ref()
            .map(|r| r.diff_ids.as_slice())
            .unwrap_or(&[])
    }

    /// The comment `docker inspect` shows: the config's, or else the last history entry's.
    pub fn inspect_comment(&self) -> String {
        if !self.comment.is_empty() {
            return self.comment.clone();
        }
        self.history
            .last()
            .map(|h| h.comment.clone())
            .unwrap_or_default()
    }
}

/// `GraphDriver` of `docker inspect`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GraphDriver {
    #[serde(rename = "Data")]
    pub data: Option<BTreeMap<String, String>>,
    #[serde(rename = "Name")]
    pub name: String,
}

/// `RootFS` of `docker inspect`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InspectRootFs {
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(rename = "Layers", default, skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<String>,
    #[serde(
        rename = "BaseLayer",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub base_layer: String,
}

/// `Metadata` of `docker inspect`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InspectMetadata {
    /// RFC 3339 with nanoseconds; [`ZERO_TIME`] when the image was never tagged.
    #[serde(rename = "LastTagTime")]
    pub last_tag_time: String,
}

impl Default for InspectMetadata {
    fn default() -> Self {
        InspectMetadata {
            last_tag_time: ZERO_TIME.to_string(),
        }
    }
}

/// `docker inspect <image>` as API 1.41 returns it, fields in Docker's order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImageInspect {
    #[serde(rename = "Id")]
    pub id: String,
    #[serde(rename = "RepoTags")]
    pub repo_tags: Vec<String>,
    #[serde(rename = "RepoDigests")]
    pub repo_digests: Vec<String>,
    #[serde(rename = "Parent")]
    pub parent: String,
    #[serde(rename = "Comment")]
    pub comment: String,
    #[serde(rename = "Created")]
    pub created: String,
    #[serde(rename = "Container")]
    pub container: String,
    #[serde(rename = "ContainerConfig")]
    pub container_config: Option<ContainerConfig>,
    #[serde(rename = "DockerVersion")]
    pub docker_version: String,
    #[serde(rename = "Author")]
    pub author: String,
    #[serde(rename = "Config")]
    pub config: Option<ContainerConfig>,
    #[serde(rename = "Architecture")]
    pub architecture: String,
    #[serde(rename = "Variant", default, skip_serializing_if = "String::is_empty")]
    pub variant: String,
    #[serde(rename = "Os")]
    pub os: String,
    #[serde(
        rename = "OsVersion",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub os_version: String,
    #[serde(rename = "Size")]
    pub size: i64,
    #[serde(rename = "VirtualSize")]
    pub virtual_size: i64,
    #[serde(rename = "GraphDriver")]
    pub graph_driver: GraphDriver,
    #[serde(rename = "RootFS")]
    pub root_fs: InspectRootFs,
    #[serde(rename = "Metadata")]
    pub metadata: InspectMetadata,
}

impl ImageInspect {
    /// Fills every field that comes from the config itself, as dockerd does; the caller sets
    /// `repo_tags`, `repo_digests`, `parent`, `size`/`virtual_size`, `graph_driver` and
    /// `metadata` from the store.
    pub fn from_config(id: &Digest, c: &ImageConfig) -> Self {
        ImageInspect {
            id: id.to_string(),
            repo_tags: Vec::new(),
            repo_digests: Vec::new(),
            parent: String::new(),
            comment: c.inspect_comment(),
            created: c.created.clone().unwrap_or_else(|| ZERO_TIME.to_string()),
            container: c.container.clone(),
            container_config: Some(c.container_config.clone().unwrap_or_default()),
            docker_version: c.docker_version.clone(),
            author: c.author.clone(),
            config: c.config.clone(),
            architecture: c.architecture.clone(),
            variant: c.variant.clone(),
            os: c.os.clone(),
            os_version: c.os_version.clone(),
            size: 0,
            virtual_size: 0,
            graph_driver: GraphDriver::default(),
            root_fs: InspectRootFs {
                kind: c
                    .rootfs
                    .as_ref()
                    .map(|r| r.kind.clone())
                    .unwrap_or_else(|| "layers".into()),
                layers: c.diff_ids().iter().map(|d| d.to_string()).collect(),
                base_layer: String::new(),
            },
            metadata: InspectMetadata::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn go_architecture_names_both_byte_orders() {
        use super::go_architecture as g;
        assert_eq!(g("x86_64", true), "amd64");
        assert_eq!(g("aarch64", true), "arm64");
        assert_eq!(g("powerpc64", true), "ppc64le");
        assert_eq!(g("powerpc64", false), "ppc64");
        assert_eq!(g("s390x", false), "s390x");
        assert_eq!(g("riscv64", true), "riscv64");
    }

    use super::*;

    #[test]
    fn zero_container_config_matches_docker() {
        let c = ContainerConfig::default();
        assert_eq!(
            GoJson::MARSHAL.to_string(&c).unwrap(),
            r#"{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":null,"Image":"","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":null}"#
        );
    }

    #[test]
    fn strslice_accepts_a_string() {
        let c: ContainerConfig = serde_json::from_str(r#"{"Cmd":"sh","Entrypoint":null}"#).unwrap();
        assert_eq!(c.cmd, Some(vec!["sh".to_string()]));
        assert_eq!(c.entrypoint, None);
    }

    #[test]
    fn unknown_keys_survive() {
        let src = r#"{"architecture":"amd64","future":{"x":1},"os":"linux"}"#;
        let c = ImageConfig::from_slice(src.as_bytes()).unwrap();
        assert_eq!(c.extra["future"]["x"], 1);
        assert_eq!(String::from_utf8(c.to_docker_json()).unwrap(), src);
    }

    #[test]
    fn bad_config_is_an_error() {
        let e = ImageConfig::from_slice(br#"{"rootfs":{"type":"layers","diff_ids":["md5:x"]}}"#)
            .unwrap_err();
        assert!(
            e.to_string().starts_with("invalid image config json"),
            "{e}"
        );
        assert!(ImageConfig::from_slice(b"[").is_err());
    }

    #[test]
    fn inspect_comment_falls_back_to_history() {
        let mut c = ImageConfig {
            history: vec![History {
                comment: "buildkit.dockerfile.v0".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        assert_eq!(c.inspect_comment(), "buildkit.dockerfile.v0");
        c.comment = "mine".into();
        assert_eq!(c.inspect_comment(), "mine");
    }
}
