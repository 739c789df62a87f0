//! OCI image manifests, indexes and descriptors (which also carry Docker's schema2 manifest
//! and manifest list, the same shape under other media types), the media type constants, the
//! files of an image archive (`oci-layout`, Docker's `manifest.json` and `repositories`), and
//! layer chain IDs.
//!
//! These are strata's own thin serde types rather than `oci-spec`'s: field order follows the
//! Go structs (`image-spec/specs-go/v1`) so what strata writes matches Docker's bytes, and one
//! type reads both the OCI and the Docker media types.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::digest::{Digest, Hasher};

pub mod media_type {
    //! Media types of manifests, configs and layers.
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
    pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
    pub const OCI_LAYER_NONDIST: &str = "application/vnd.oci.image.layer.nondistributable.v1.tar";
    pub const OCI_LAYER_NONDIST_GZIP: &str =
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
    pub const OCI_LAYER_NONDIST_ZSTD: &str =
        "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd";
    pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    pub const DOCKER_MANIFEST_LIST: &str =
        "application/vnd.docker.distribution.manifest.list.v2+json";
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
    pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
    pub const DOCKER_LAYER_FOREIGN_GZIP: &str =
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
    /// Docker's old signed schema 1 manifests, which strata refuses.
    pub const DOCKER_MANIFEST_V1_SIGNED: &str =
        "application/vnd.docker.distribution.manifest.v1+prettyjws";
    pub const DOCKER_MANIFEST_V1: &str = "application/vnd.docker.distribution.manifest.v1+json";
}

pub mod annotation {
    //! Annotation keys strata reads and writes.
    /// The tag of a manifest in an OCI layout's `index.json` (Docker 25 writes the tag only).
    pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
    /// The full image name of a manifest in `index.json`, as containerd and Docker 25 write it.
    pub const CONTAINERD_IMAGE_NAME: &str = "io.containerd.image.name";
    pub const CREATED: &str = "org.opencontainers.image.created";
}

/// The content of an OCI layout's `oci-layout` file.
pub const OCI_LAYOUT_FILE_CONTENT: &str = r#"{"imageLayoutVersion":"1.0.0"}"#;

/// How a layer blob is compressed, by media type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

/// What a media type names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    Manifest,
    Index,
    Config,
    Layer(Compression),
    Unknown,
}

/// Classifies a media type (OCI or Docker schema2).
pub fn media_kind(mt: &str) -> MediaKind {
    use media_type::*;
    match mt {
        OCI_MANIFEST | DOCKER_MANIFEST => MediaKind::Manifest,
        OCI_INDEX | DOCKER_MANIFEST_LIST => MediaKind::Index,
        OCI_CONFIG | DOCKER_CONFIG => MediaKind::Config,
        OCI_LAYER | OCI_LAYER_NONDIST | DOCKER_LAYER => MediaKind::Layer(Compression::None),
        OCI_LAYER_GZIP | OCI_LAYER_NONDIST_GZIP | DOCKER_LAYER_GZIP | DOCKER_LAYER_FOREIGN_GZIP => {
            MediaKind::Layer(Compression::Gzip)
        }
        OCI_LAYER_ZSTD | OCI_LAYER_NONDIST_ZSTD => MediaKind::Layer(Compression::Zstd),
        _ => MediaKind::Unknown,
    }
}

/// `platform` of an index entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(rename = "os.version", skip_serializing_if = "String::is_empty")]
    pub os_version: String,
    #[serde(rename = "os.features", skip_serializing_if = "Vec::is_empty")]
    pub os_features: Vec<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub variant: String,
    /// Docker manifest lists only.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub features: Vec<String>,
}

/// A content descriptor: media type, digest and size of a blob.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Descriptor {
    #[serde(rename = "mediaType")]
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(
        rename = "artifactType",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub artifact_type: Option<String>,
}

impl Descriptor {
    pub fn new(media_type: &str, digest: Digest, size: u64) -> Self {
        Descriptor {
            media_type: media_type.to_string(),
            digest,
            size,
            urls: Vec::new(),
            annotations: BTreeMap::new(),
            data: None,
            platform: None,
            artifact_type: None,
        }
    }

    /// The descriptor of `bytes` (digest and size computed).
    pub fn of(media_type: &str, bytes: &[u8]) -> Self {
        Self::new(media_type, Digest::of(bytes), bytes.len() as u64)
    }
}

/// An image manifest: OCI (`application/vnd.oci.image.manifest.v1+json`) or Docker schema2
/// (`application/vnd.docker.distribution.manifest.v2+json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    #[serde(rename = "mediaType", default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(
        rename = "artifactType",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub artifact_type: Option<String>,
    pub config: Descriptor,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// An image index (OCI) or manifest list (Docker schema2), also an OCI layout's `index.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Index {
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    #[serde(rename = "mediaType", default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(
        rename = "artifactType",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub artifact_type: Option<String>,
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// Why a manifest or index could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("invalid manifest json: {0}")]
    Json(#[from] serde_json::Error),
    #[error("unsupported manifest schema version {0}")]
    SchemaVersion(u32),
    #[error("unsupported manifest media type {0:?}")]
    MediaType(String),
}

/// Schema 2, and a media type (when there is one) of the wanted kind.
fn check_kind(schema: u32, media: Option<&str>, want: MediaKind) -> Result<(), ManifestError> {
    if schema != 2 {
        return Err(ManifestError::SchemaVersion(schema));
    }
    match media {
        Some(mt) if media_kind(mt) != want => Err(ManifestError::MediaType(mt.to_string())),
        _ => Ok(()),
    }
}

impl Manifest {
    /// A new OCI manifest for `config` and `layers`.
    pub fn new_oci(config: Descriptor, layers: Vec<Descriptor>) -> Self {
        Manifest {
            schema_version: 2,
            media_type: Some(media_type::OCI_MANIFEST.to_string()),
            artifact_type: None,
            config,
            layers,
            subject: None,
            annotations: BTreeMap::new(),
        }
    }

    /// Reads a manifest, refusing schema 1 and index media types.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, ManifestError> {
        let m: Manifest = serde_json::from_slice(bytes)?;
        check_kind(
            m.schema_version,
            m.media_type.as_deref(),
            MediaKind::Manifest,
        )?;
        Ok(m)
    }

    /// Compact JSON as Go's `json.Marshal` writes it.
    pub fn to_json(&self) -> Vec<u8> {
        crate::GoJson::MARSHAL.to_vec(self).unwrap_or_default()
    }
}

impl Index {
    /// A new OCI index holding `manifests`.
    pub fn new_oci(manifests: Vec<Descriptor>) -> Self {
        Index {
            schema_version: 2,
            media_type: Some(media_type::OCI_INDEX.to_string()),
            artifact_type: None,
            manifests,
            subject: None,
            annotations: BTreeMap::new(),
        }
    }

    /// Reads an index or manifest list.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, ManifestError> {
        let i: Index = serde_json::from_slice(bytes)?;
        check_kind(i.schema_version, i.media_type.as_deref(), MediaKind::Index)?;
        Ok(i)
    }

    /// Compact JSON as Go's `json.Marshal` writes it.
    pub fn to_json(&self) -> Vec<u8> {
        crate::GoJson::MARSHAL.to_vec(self).unwrap_or_default()
    }
}

/// Finds out whether a JSON document is a manifest or an index when the media type is not
/// known from outside: its own `mediaType`, else the presence of `manifests` or `config`.
pub fn sniff_kind(bytes: &[u8]) -> MediaKind {
    #[derive(Deserialize)]
    struct Probe {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
        manifests: Option<Value>,
        config: Option<Value>,
    }
    match serde_json::from_slice::<Probe>(bytes) {
        Ok(p) => match p.media_type.as_deref().map(media_kind) {
            Some(k) if k != MediaKind::Unknown => k,
            _ if p.manifests.is_some() => MediaKind::Index,
            _ if p.config.is_some() => MediaKind::Manifest,
            _ => MediaKind::Unknown,
        },
        Err(_) => MediaKind::Unknown,
    }
}

/// `RepoTags` is `null` in Docker's `manifest.json` for an image saved by ID.
fn null_as_empty<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(d)?.unwrap_or_default())
}
fn empty_as_null<S: Serializer>(v: &[String], s: S) -> Result<S::Ok, S::Error> {
    if v.is_empty() {
        s.serialize_none()
    } else {
        v.serialize(s)
    }
}

/// One entry of the `manifest.json` of a `docker save` archive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SaveManifestEntry {
    /// Path of the config inside the archive (`<id>.json` or `blobs/sha256/<id>`).
    #[serde(rename = "Config")]
    pub config: String,
    /// Familiar `name:tag` strings; written as `null` when empty, as Docker does.
    #[serde(
        rename = "RepoTags",
        default,
        deserialize_with = "null_as_empty",
        serialize_with = "empty_as_null"
    )]
    pub repo_tags: Vec<String>,
    /// Paths of the uncompressed layer tars, bottom first.
    #[serde(rename = "Layers", default)]
    pub layers: Vec<String>,
    #[serde(rename = "Parent", default, skip_serializing_if = "String::is_empty")]
    pub parent: String,
    /// Foreign layers, by diff_id.
    #[serde(
        rename = "LayerSources",
        default,
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub layer_sources: BTreeMap<String, Descriptor>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The legacy `repositories` file of a `docker save` archive: repository → tag → v1 ID.
pub type SaveRepositories = BTreeMap<String, BTreeMap<String, String>>;

/// Docker's chain ID of the top layer of a stack: `ChainID(L0) = DiffID(L0)`,
/// `ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln))`. `None` for no layers.
pub fn chain_id(diff_ids: &[Digest]) -> Option<Digest> {
    chain_ids(diff_ids).pop()
}

/// The chain ID of every prefix of the stack, bottom first.
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => *d,
            Some(prev) => {
                let mut h = Hasher::new();
                h.update(prev.to_string().as_bytes());
                h.update(b" ");
                h.update(d.to_string().as_bytes());
                h.finish()
            }
        };
        out.push(next);
    }
    out
}

/// diff_id of the empty layer (a tar of 1024 zero bytes), which Docker's classic builder
/// marks as `empty_layer` in history.
pub fn empty_layer_diff_id() -> Digest {
    Digest::of(&[0u8; 1024])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Digest {
        format!("sha256:{s}").parse().unwrap()
    }

    #[test]
    fn chain_id_matches_docker_layerdb() {
        // From a Docker 20.10 layerdb: these diff_ids stack to these chain IDs.
        let diff = [
            d("be28efddfa23fa17881c77cbf1a423754391d6d9a8b5f06f888bfdddcf82bc16"),
            d("c9c531bdf7b179281fe22949d328ab4bc9e6c758f6a92ed71f4b1f5fdf5ed1fc"),
            d("b8cbd86f010384850644126675b8ad93212e7cbb3ab6bb8b0852a2c5fa8674e9"),
        ];
        let ids = chain_ids(&diff);
        assert_eq!(ids[0], diff[0]);
        assert_eq!(
            ids[1],
            d("5b8161ee15024a9e6c5981fa31cfd6f3cefe83673830fb14e4751eb2db0ae2ac")
        );
        assert_eq!(
            ids[2],
            d("0b34a7863444c2f522af4c5b6630ee35d22e171600f15b06af58028cb7c696ca")
        );
        assert_eq!(chain_id(&diff), Some(ids[2]));
        assert_eq!(chain_id(&[]), None);
    }

    #[test]
    fn empty_layer_digest() {
        assert_eq!(
            empty_layer_diff_id().to_string(),
            "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"
        );
    }

    #[test]
    fn docker_schema2_manifest_reads_and_writes() {
        let src = r#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":1457,"digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},"layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":244,"digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}]}"#;
        let m = Manifest::from_slice(src.as_bytes()).unwrap();
        assert_eq!(m.layers[0].size, 244);
        assert_eq!(
            media_kind(&m.layers[0].media_type),
            MediaKind::Layer(Compression::Gzip)
        );
        assert_eq!(sniff_kind(src.as_bytes()), MediaKind::Manifest);
        let out = String::from_utf8(m.to_json()).unwrap();
        assert!(out.starts_with(r#"{"schemaVersion":2,"mediaType":"application/vnd.docker"#));
        assert!(out.contains(
            r#"{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"sha256:e3b0"#
        ));
    }

    #[test]
    fn oci_index_with_annotations() {
        let mut desc = Descriptor::of(media_type::OCI_MANIFEST, b"{}");
        desc.annotations
            .insert(annotation::REF_NAME.into(), "latest".into());
        desc.annotations.insert(
            annotation::CONTAINERD_IMAGE_NAME.into(),
            "docker.io/library/x:latest".into(),
        );
        let i = Index::new_oci(vec![desc]);
        let j = String::from_utf8(i.to_json()).unwrap();
        assert_eq!(
            j,
            format!(
                r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{}","size":2,"annotations":{{"io.containerd.image.name":"docker.io/library/x:latest","org.opencontainers.image.ref.name":"latest"}}}}]}}"#,
                Digest::of(b"{}")
            )
        );
        assert_eq!(Index::from_slice(j.as_bytes()).unwrap(), i);
        assert_eq!(sniff_kind(j.as_bytes()), MediaKind::Index);
    }

    #[test]
    fn refuses_schema1_and_wrong_kinds() {
        let s1 = br#"{"schemaVersion":1,"name":"x","tag":"y","fsLayers":[]}"#;
        assert!(matches!(
            Index::from_slice(s1),
            Err(ManifestError::SchemaVersion(1)) | Err(ManifestError::Json(_))
        ));
        let idx = String::from_utf8(Index::new_oci(vec![]).to_json()).unwrap();
        assert!(Manifest::from_slice(idx.as_bytes()).is_err());
        assert!(Manifest::from_slice(b"{").is_err());
        let bad_digest = br#"{"schemaVersion":2,"config":{"mediaType":"x","digest":"sha256:zz","size":1},"layers":[]}"#;
        assert!(Manifest::from_slice(bad_digest).is_err());
    }

    #[test]
    fn save_manifest_null_repo_tags() {
        let src = r#"[{"Config":"abc.json","RepoTags":null,"Layers":["a/layer.tar"]}]"#;
        let v: Vec<SaveManifestEntry> = serde_json::from_str(src).unwrap();
        assert!(v[0].repo_tags.is_empty());
        assert_eq!(serde_json::to_string(&v).unwrap(), src);
    }
}
