//! `push`: upload an image's config and compressed layers as stored (so the image ID and the
//! layer digests are preserved), skipping blobs the registry has (HEAD) or can mount from
//! another repository the image came from, then PUT a Docker schema2 manifest (OCI when a
//! layer is zstd). Large blobs go up in chunks, the rest in one PUT.

use std::path::PathBuf;

use oci::{media_type, Descriptor, Digest, Manifest, Reference};
use store::{BlobRef, ImageRecord, Store};

use crate::auth::Credentials;
use crate::client::{describe, Body, Client, Report};
use crate::error::{Error, Result};
use crate::hosts::Hosts;
use crate::parallel;
use crate::progress::{layer, line, Progress};

/// What a push did.
#[derive(Debug, Clone)]
pub struct Pushed {
    /// The digest of the manifest the registry now holds.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
}

/// How a blob reached the registry.
pub(crate) enum Outcome {
    Exists,
    Mounted(String),
    Pushed,
}

fn with_query(location: &str, q: &str) -> String {
    if location.contains('?') {
        format!("{location}&{q}")
    } else {
        format!("{location}?{q}")
    }
}

fn location(url: &str, resp: &ureq::http::Response<ureq::Body>) -> Result<String> {
    resp.headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .ok_or_else(|| Error::http(url, "upload answer without a Location"))
}

pub(crate) fn expect(
    url: &str,
    resp: &mut ureq::http::Response<ureq::Body>,
    ok: &[u16],
) -> Result<()> {
    let s = resp.status().as_u16();
    if ok.contains(&s) {
        return Ok(());
    }
    match s {
        401 => Err(Error::Unauthorized { url: url.into() }),
        403 => Err(Error::Denied { url: url.into() }),
        _ => Err(Error::http(url, describe(resp))),
    }
}

/// A blob of the store to upload.
pub(crate) struct Blob {
    pub path: PathBuf,
    pub digest: Digest,
    pub size: u64,
}

impl Blob {
    /// The stored blob `digest` of `size` bytes.
    pub(crate) fn stored(store: &Store, digest: Digest, size: u64) -> Blob {
        Blob {
            path: store.blob_path(&digest),
            digest,
            size,
        }
    }
}

/// The repository blobs go to, and repositories of the same registry they may be mounted
/// from.
pub(crate) struct Destination<'a> {
    pub client: &'a Client,
    pub r: &'a Reference,
    pub mount_from: &'a [String],
}

/// How an upload begins: the blob was mounted, or a session is open at this location.
enum Start {
    Mounted(String),
    Session(String),
}

impl Destination<'_> {
    /// Makes sure the registry has `blob` in the repository: HEAD, else a cross-repository
    /// mount, else an upload in one PUT or, above the chunk size, in PATCHes.
    pub(crate) fn upload(&self, blob: &Blob, report: Option<Report<'_>>) -> Result<Outcome> {
        if self.exists(&blob.digest)? {
            return Ok(Outcome::Exists);
        }
        let session = match self.mount_or_start(&blob.digest)? {
            Start::Mounted(from) => return Ok(Outcome::Mounted(from)),
            Start::Session(location) => location,
        };
        // Blobs larger than this go up in chunks of this size.
        let chunk = self.client.hosts.push_chunk_size.max(1);
        if blob.size > chunk {
            self.put_chunked(session, blob, chunk, report)?;
        } else {
            self.put_whole(&session, blob, report)?;
        }
        Ok(Outcome::Pushed)
    }

    /// HEAD of the blob: 200 it exists, 404 it does not, anything else is an error.
    fn exists(&self, digest: &Digest) -> Result<bool> {
        let url = self.url(&format!("blobs/{digest}"));
        let mut head = self.client.request("HEAD", &url, &[], Body::Empty)?;
        match head.status().as_u16() {
            200 => Ok(true),
            404 => Ok(false),
            _ => expect(&url, &mut head, &[]).map(|()| false),
        }
    }

    /// Asks each candidate repository for a mount (201: mounted; 202: the registry opened
    /// an upload session instead); without one, opens a session.
    fn mount_or_start(&self, digest: &Digest) -> Result<Start> {
        for from in self.mount_from {
            let url = self.url(&format!("blobs/uploads/?mount={digest}&from={from}"));
            let mut resp = self.client.request("POST", &url, &[], Body::Empty)?;
            match resp.status().as_u16() {
                201 => return Ok(Start::Mounted(from.clone())),
                202 => return Ok(Start::Session(location(&url, &resp)?)),
                _ => {
                    let _ = describe(&mut resp);
                }
            }
        }
        let url = self.url("blobs/uploads/");
        let mut resp = self.client.request("POST", &url, &[], Body::Empty)?;
        expect(&url, &mut resp, &[202])?;
        Ok(Start::Session(location(&url, &resp)?))
    }

    /// PATCHes of `chunk` bytes, each answered with the next location, then the closing PUT.
    fn put_chunked(
        &self,
        mut session: String,
        blob: &Blob,
        chunk: u64,
        report: Option<Report<'_>>,
    ) -> Result<()> {
        let mut offset = 0;
        while offset < blob.size {
            let len = chunk.min(blob.size - offset);
            let url = self.client.url(&session);
            let range = format!("{}-{}", offset, offset + len - 1);
            let mut resp = self.client.request(
                "PATCH",
                &url,
                &[
                    ("Content-Type", "application/octet-stream"),
                    ("Content-Range", &range),
                ],
                Body::File {
                    path: &blob.path,
                    offset,
                    len,
                    report,
                },
            )?;
            expect(&url, &mut resp, &[202])?;
            session = location(&url, &resp)?;
            offset += len;
        }
        let url = self.closing_url(&session, &blob.digest);
        let mut resp = self.client.request("PUT", &url, &[], Body::Empty)?;
        expect(&url, &mut resp, &[201, 204])
    }

    /// The whole blob in the closing PUT.
    fn put_whole(&self, session: &str, blob: &Blob, report: Option<Report<'_>>) -> Result<()> {
        let url = self.closing_url(session, &blob.digest);
        let mut resp = self.client.request(
            "PUT",
            &url,
            &[("Content-Type", "application/octet-stream")],
            Body::File {
                path: &blob.path,
                offset: 0,
                len: blob.size,
                report,
            },
        )?;
        expect(&url, &mut resp, &[201, 204])
    }

    fn closing_url(&self, session: &str, digest: &Digest) -> String {
        self.client
            .url(&with_query(session, &format!("digest={digest}")))
    }

    /// `path` under the repository's API path.
    fn url(&self, path: &str) -> String {
        self.client
            .url(&format!("{}/{path}", self.r.api_repository_path()))
    }
}

/// Pushes the image `r` names to its registry. `progress` receives Docker's status lines.
///
/// The phases: plan the blobs (the layers' blobs as stored, each once) → upload them in
/// parallel → put the config → put the manifest → record the repo digest.
pub fn push(
    store: &mut Store,
    r: &Reference,
    creds: Option<Credentials>,
    hosts: &Hosts,
    progress: &(dyn Fn(Progress<'_>) + Sync),
) -> Result<Pushed> {
    let id = image::resolve(store, &r.to_string())?;
    let img = store
        .image(&id)?
        .ok_or_else(|| image::Error::NoSuchImage(r.familiar()))?;
    let config = store.read_blob(&id)?;
    line(
        progress,
        &format!("The push refers to repository [{}]", r.name()),
    );
    let plan = Plan::new(store, r, &img, config.len() as u64)?;
    let push = Push::new(r, creds, hosts, &img.repo_digests, progress);
    push.upload_layers(&plan.jobs)?;
    push.destination().upload(&plan.config, None)?;
    let pushed = push.put_manifest(&plan.manifest())?;
    record(store, r, &id, &pushed.digest)?;
    line(
        progress,
        &format!(
            "{}: digest: {} size: {}",
            tag_of(r),
            pushed.digest,
            pushed.size
        ),
    );
    Ok(pushed)
}

/// What a push uploads: the config, and the layers' blobs as stored.
struct Plan {
    config: Blob,
    /// The blob of every layer, base first (a repeated layer repeats).
    layers: Vec<BlobRef>,
    /// The distinct layer blobs.
    jobs: Vec<Job>,
}

/// One layer blob to push, with the short id its progress is reported under.
struct Job {
    short: String,
    blob: Blob,
}

impl Plan {
    /// Every layer of `img` must have its compressed blob in the store.
    fn new(store: &Store, r: &Reference, img: &ImageRecord, config_size: u64) -> Result<Plan> {
        let mut layers = Vec::new();
        let mut jobs: Vec<Job> = Vec::new();
        for diff in &img.layers {
            let rec = store
                .layer(diff)?
                .ok_or(store::Error::LayerNotFound(*diff))?;
            let blob = rec.blob.ok_or_else(|| Error::Manifest {
                what: r.familiar(),
                message: format!("layer {diff} has no compressed blob in the store"),
            })?;
            if !jobs.iter().any(|j| j.blob.digest == blob.digest) {
                jobs.push(Job {
                    short: blob.digest.hex()[..12].to_string(),
                    blob: Blob::stored(store, blob.digest, blob.size),
                });
            }
            layers.push(blob);
        }
        Ok(Plan {
            config: Blob::stored(store, img.id, config_size),
            layers,
            jobs,
        })
    }

    /// A Docker schema2 manifest, or an OCI one when a layer is zstd (which schema2 cannot
    /// name); layer media types as Docker writes them.
    fn manifest(&self) -> Manifest {
        let zstd = self.layers.iter().any(|b| b.media_type.contains("zstd"));
        let layer_type = |mt: &str| -> String {
            let gzip = mt.contains("gzip");
            match (zstd, gzip) {
                (true, _) => mt.to_string(),
                (false, true) => media_type::DOCKER_LAYER_GZIP.to_string(),
                (false, false) => "application/vnd.docker.image.rootfs.diff.tar".to_string(),
            }
        };
        let (manifest_type, config_type) = if zstd {
            (media_type::OCI_MANIFEST, media_type::OCI_CONFIG)
        } else {
            (media_type::DOCKER_MANIFEST, media_type::DOCKER_CONFIG)
        };
        Manifest {
            schema_version: 2,
            media_type: Some(manifest_type.to_string()),
            artifact_type: None,
            config: Descriptor::new(config_type, self.config.digest, self.config.size),
            layers: self
                .layers
                .iter()
                .map(|b| Descriptor::new(&layer_type(&b.media_type), b.digest, b.size))
                .collect(),
            subject: None,
            annotations: Default::default(),
        }
    }
}

/// What every phase of a push shares (as BuildKit's `dispatchState` carries a stage's).
struct Push<'a> {
    r: &'a Reference,
    client: Client,
    /// Repositories of the same registry the image came from: candidates for a mount.
    mount_from: Vec<String>,
    progress: &'a (dyn Fn(Progress<'_>) + Sync),
}

impl<'a> Push<'a> {
    fn new(
        r: &'a Reference,
        creds: Option<Credentials>,
        hosts: &Hosts,
        repo_digests: &[String],
        progress: &'a (dyn Fn(Progress<'_>) + Sync),
    ) -> Self {
        let client = Client::new(&r.registry, creds, hosts);
        client.add_scope(&r.repository, "pull,push");
        let mut mount_from: Vec<String> = Vec::new();
        for rd in repo_digests {
            let name = rd.split('@').next().unwrap_or("");
            if let Some(repo) = name.strip_prefix(&format!("{}/", r.registry)) {
                if repo != r.repository && !mount_from.iter().any(|m| m == repo) {
                    client.add_scope(repo, "pull");
                    mount_from.push(repo.to_string());
                }
            }
        }
        Push {
            r,
            client,
            mount_from,
            progress,
        }
    }

    fn destination(&self) -> Destination<'_> {
        Destination {
            client: &self.client,
            r: self.r,
            mount_from: &self.mount_from,
        }
    }

    /// Uploads the layer blobs three at a time, the top layer first, as Docker does.
    fn upload_layers(&self, jobs: &[Job]) -> Result<()> {
        for j in jobs.iter().rev() {
            layer(self.progress, &j.short, "Preparing");
        }
        parallel::run(jobs.iter().rev().collect(), 3, |j| self.upload_layer(j))?;
        Ok(())
    }

    fn upload_layer(&self, j: &Job) -> Result<()> {
        layer(self.progress, &j.short, "Waiting");
        let report = Report {
            id: &j.short,
            total: j.blob.size,
            progress: self.progress,
        };
        let status = match self.destination().upload(&j.blob, Some(report))? {
            Outcome::Exists => "Layer already exists".to_string(),
            Outcome::Mounted(from) => format!("Mounted from {from}"),
            Outcome::Pushed => "Pushed".to_string(),
        };
        layer(self.progress, &j.short, &status);
        Ok(())
    }

    /// PUTs the manifest under the tag; the registry's `Docker-Content-Digest`, when given,
    /// must be the manifest's.
    fn put_manifest(&self, manifest: &Manifest) -> Result<Pushed> {
        let bytes = manifest.to_json();
        let digest = Digest::of(&bytes);
        let url = self.client.url(&format!(
            "{}/manifests/{}",
            self.r.api_repository_path(),
            tag_of(self.r)
        ));
        let ct = manifest.media_type.clone().unwrap_or_default();
        let mut resp = self.client.request(
            "PUT",
            &url,
            &[("Content-Type", ct.as_str())],
            Body::Bytes(&bytes),
        )?;
        expect(&url, &mut resp, &[200, 201, 202])?;
        if let Some(d) = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| Digest::parse_lenient(v).ok())
        {
            if d != digest {
                return Err(Error::DigestMismatch {
                    what: format!("manifest pushed to {url}"),
                    expected: digest,
                    actual: d,
                });
            }
        }
        Ok(Pushed {
            digest,
            size: bytes.len() as u64,
        })
    }
}

/// The tag a push (or a cache push) writes: `latest` when the reference has none.
pub(crate) fn tag_of(r: &Reference) -> String {
    r.tag.clone().unwrap_or_else(|| "latest".into())
}

/// Records `NAME@DIGEST` on the image.
fn record(store: &mut Store, r: &Reference, id: &Digest, digest: &Digest) -> Result<()> {
    let mut p = store.publish()?;
    p.add_repo_digest(&format!("{}@{digest}", r.name()), id)?;
    p.commit()?;
    Ok(())
}
