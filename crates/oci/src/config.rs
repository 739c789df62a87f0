//! Docker's image config JSON (moby `image.Image` and `container.Config`), with field names,
//! order and `null`/omitted rules exactly as Docker writes them, so that a config strata makes
//! is one Docker would make and `inspect` shows what Docker shows.
//!
//! The image ID is the sha256 of the stored config *bytes*; these types read configs and make
//! new ones, they never rewrite a stored one.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;

/// `{}`: the value of Docker's set-like maps (ExposedPorts, Volumes).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Empty {}

fn is_false(b: &bool) -> bool {
    !*b
}

/// `container.Config` in Go's field order. `null` fields stay `null` as Docker writes them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    #[serde(default)]
    pub hostname: String,
    #[serde(default)]
    pub domainname: String,
    #[serde(default)]
    pub user: String,
    #[serde(default)]
    pub attach_stdin: bool,
    #[serde(default)]
    pub attach_stdout: bool,
    #[serde(default)]
    pub attach_stderr: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, Empty>>,
    #[serde(default)]
    pub tty: bool,
    #[serde(default)]
    pub open_stdin: bool,
    #[serde(default)]
    pub stdin_once: bool,
    #[serde(default)]
    pub env: Option<Vec<String>>,
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<HealthConfig>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub args_escaped: bool,
    #[serde(default)]
    pub image: String,
    #[serde(default)]
    pub volumes: Option<BTreeMap<String, Empty>>,
    #[serde(default)]
    pub working_dir: String,
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub network_disabled: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mac_address: String,
    #[serde(default)]
    pub on_build: Option<Vec<String>>,
    #[serde(default)]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub stop_signal: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_timeout: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<Vec<String>>,
}

/// `container.HealthConfig`; durations in nanoseconds, as Go marshals `time.Duration`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthConfig {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub test: Vec<String>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub interval: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub timeout: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub start_period: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub start_interval: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub retries: i64,
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

/// One `history` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub author: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub created_by: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub comment: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub empty_layer: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub diff_ids: Vec<Digest>,
}

impl Default for RootFs {
    fn default() -> Self {
        RootFs {
            kind: "layers".into(),
            diff_ids: vec![],
        }
    }
}

/// moby's `image.Image`. Docker writes its keys sorted (it marshals through a map):
/// [`ImageConfig::to_docker_json`] does the same.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageConfig {
    #[serde(default)]
    pub architecture: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub author: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub comment: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<ContainerConfig>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub container: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_config: Option<ContainerConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub docker_version: String,
    #[serde(default)]
    pub history: Vec<History>,
    #[serde(default)]
    pub os: String,
    #[serde(default, rename = "os.features", skip_serializing_if = "Vec::is_empty")]
    pub os_features: Vec<String>,
    #[serde(
        default,
        rename = "os.version",
        skip_serializing_if = "String::is_empty"
    )]
    pub os_version: String,
    #[serde(default)]
    pub rootfs: RootFs,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub variant: String,
}

impl ImageConfig {
    /// Parses a config as found in a store, archive or registry.
    pub fn from_slice(bytes: &[u8]) -> Result<ImageConfig, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    /// Compact JSON with the top-level keys sorted, byte for byte as Docker writes a config.
    pub fn to_docker_json(&self) -> Vec<u8> {
        let v = serde_json::to_value(self).expect("configs serialise");
        let serde_json::Value::Object(map) = v else {
            unreachable!("a struct serialises to an object")
        };
        let sorted: BTreeMap<String, serde_json::Value> = map.into_iter().collect();
        serde_json::to_vec(&sorted).expect("configs serialise")
    }

    /// The ID an image with this config has: the sha256 of [`Self::to_docker_json`].
    pub fn id(&self) -> Digest {
        Digest::of(&self.to_docker_json())
    }
}

/// Docker's `GraphDriver` in `inspect`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct GraphDriver {
    #[serde(rename = "Data")]
    pub data: BTreeMap<String, String>,
    #[serde(rename = "Name")]
    pub name: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct InspectRootFs {
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(rename = "Layers")]
    pub layers: Vec<Digest>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct InspectMetadata {
    #[serde(rename = "LastTagTime")]
    pub last_tag_time: String,
}

/// `docker image inspect` (API 1.41), in Docker's field order.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageInspect {
    pub id: String,
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
    pub parent: String,
    pub comment: String,
    pub created: String,
    pub container: String,
    pub container_config: ContainerConfig,
    pub docker_version: String,
    pub author: String,
    pub config: ContainerConfig,
    pub architecture: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub variant: String,
    pub os: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub os_version: String,
    pub size: u64,
    pub virtual_size: u64,
    pub graph_driver: GraphDriver,
    #[serde(rename = "RootFS")]
    pub root_fs: InspectRootFs,
    pub metadata: InspectMetadata,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A config Docker 20.10 wrote for `docker import -c 'ENV A=b' -c 'CMD ["sh"]'`.
    const DOCKER_IMPORT: &str = r#"{"architecture":"amd64","comment":"Imported from -","config":{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":["A=b"],"Cmd":["sh"],"Image":"","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":null},"container_config":{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":null,"Image":"","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":null},"created":"2026-11-28T12:26:34.870231955Z","docker_version":"20.10.24+dfsg1","history":[{"created":"2026-11-28T12:26:34.870231955Z","comment":"Imported from -"}],"os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:429412fb0a6297cbde6f4cd7b7c8bbb2987d5ba129824884f0e482b8a8893945"]}}"#;

    #[test]
    fn a_docker_config_round_trips_byte_for_byte() {
        let c = ImageConfig::from_slice(DOCKER_IMPORT.as_bytes()).unwrap();
        assert_eq!(
            String::from_utf8(c.to_docker_json()).unwrap(),
            DOCKER_IMPORT
        );
        assert_eq!(
            c.id().to_string(),
            "sha256:601656f719b3de1e1e5009f6fc05e04c79e15c6e265db1f505009b1a81a7a08e"
        );
    }

    #[test]
    fn healthcheck_and_ports_serialise_as_docker_does() {
        let cc = ContainerConfig {
            exposed_ports: Some([("8080/tcp".to_string(), Empty {})].into_iter().collect()),
            healthcheck: Some(HealthConfig {
                test: vec!["CMD-SHELL".into(), "true".into()],
                interval: 30_000_000_000,
                ..Default::default()
            }),
            ..Default::default()
        };
        let j = serde_json::to_string(&cc).unwrap();
        assert!(
            j.contains(r#""AttachStderr":false,"ExposedPorts":{"8080/tcp":{}},"Tty":false"#),
            "{j}"
        );
        assert!(
            j.contains(
                r#""Healthcheck":{"Test":["CMD-SHELL","true"],"Interval":30000000000},"Image":"""#
            ),
            "{j}"
        );
    }
}
