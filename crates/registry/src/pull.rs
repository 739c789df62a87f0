//! `pull`: resolve a reference to a manifest (choosing this machine's platform from a list),
//! fetch and verify the config, then download the missing layers a few at a time, each
//! hashed while it streams and unpacked straight into a staging area. Everything is published
//! in one transaction at the end, so a failed or tampered pull leaves the store unchanged;
//! with the layers go the blobs they came as (registry, repository, digest), so a push of
//! them to that registry sends nothing again.

use std::io::{self, Read};

use oci::{media_type, Digest, Manifest, Reference};
use serde::Deserialize;
use store::{NewImage, Publisher, RemoteBlob, Staging, Store};

use crate::auth::Credentials;
use crate::client::{backoff, describe, Body, Client, TooSlow, Watchdog};
use crate::error::{Error, Result};
use crate::hosts::Hosts;
use crate::parallel;
use crate::progress::{layer, line, Counting, Progress};

/// The manifest types a pull accepts, in the `Accept` header.
const ACCEPT: &str = "application/vnd.docker.distribution.manifest.v2+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json";

/// Largest config (or tag list page) a pull reads.
const SMALL_LIMIT: u64 = 16 << 20;

/// Largest manifest or index a pull reads: 4 MiB, as containerd (`MaxManifestSize` in
/// `remotes/docker/resolver.go`, "the largest size accepted from a registry during
/// resolution") and the distribution registry (`maxManifestBodySize = 4 << 20`) cap them.
pub(crate) const MANIFEST_LIMIT: u64 = 4 << 20;

/// The layer media types a pull unpacks (Docker's and OCI's tar, gzip and zstd layers);
/// anything else is refused before it is downloaded, as containerd does.
const LAYER_TYPES: &[&str] = &[
    media_type::DOCKER_LAYER,
    media_type::DOCKER_LAYER_GZIP,
    media_type::DOCKER_LAYER_FOREIGN_GZIP,
    media_type::OCI_LAYER,
    media_type::OCI_LAYER_GZIP,
    media_type::OCI_LAYER_ZSTD,
    media_type::OCI_LAYER_NONDIST,
    media_type::OCI_LAYER_NONDIST_GZIP,
    media_type::OCI_LAYER_NONDIST_ZSTD,
];

/// Options of a pull.
#[derive(Debug, Clone, Default)]
pub struct PullOptions {
    /// `os/arch[/variant]`; default `linux/<this machine's arch>`.
    pub platform: Option<String>,
    /// Layers downloaded at once (default: [`Hosts::max_concurrent_downloads`]).
    pub concurrency: Option<usize>,
}

/// What a pull did.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// The image ID (the config's digest).
    pub id: Digest,
    /// The digest of the manifest (or manifest list) the reference resolved to.
    pub digest: Digest,
    /// False when the image was already in the store ("Image is up to date").
    pub downloaded: bool,
}

#[derive(Deserialize)]
struct ConfigHead {
    #[serde(default)]
    created: Option<String>,
    rootfs: RootFs,
}

#[derive(Deserialize)]
struct RootFs {
    #[serde(default)]
    diff_ids: Vec<Digest>,
}

fn short(d: &Digest) -> String {
    d.hex()[..12].to_string()
}

/// Reads a small body, refusing more than [`SMALL_LIMIT`] bytes.
pub(crate) fn read_small(
    url: &str,
    resp: &mut ureq::http::Response<ureq::Body>,
) -> Result<Vec<u8>> {
    read_limited(url, resp, SMALL_LIMIT, "body")
}

/// Reads a body of at most `limit` bytes (`what` names it in the error), refused at once when
/// its `Content-Length` says it is larger; a body that drips is given up on ([`Watchdog`]).
pub(crate) fn read_limited(
    url: &str,
    resp: &mut ureq::http::Response<ureq::Body>,
    limit: u64,
    what: &str,
) -> Result<Vec<u8>> {
    let too_big = || {
        Error::http(
            url,
            format!(
                "the {what} is larger than {} MiB, the most strata reads",
                limit >> 20
            ),
        )
    };
    let declared = resp
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_big());
    }
    let body = resp
        .body_mut()
        .with_config()
        .limit(u64::MAX)
        .reader()
        .take(limit + 1);
    let mut out = Vec::new();
    Watchdog::new(body, url)
        .read_to_end(&mut out)
        .map_err(|e| Error::http(url, e))?;
    if out.len() as u64 > limit {
        return Err(too_big());
    }
    Ok(out)
}

pub(crate) fn check_status(
    url: &str,
    what: &str,
    resp: &mut ureq::http::Response<ureq::Body>,
) -> Result<()> {
    match resp.status().as_u16() {
        200..=299 => Ok(()),
        401 => Err(Error::Unauthorized { url: url.into() }),
        403 => Err(Error::Denied { url: url.into() }),
        404 => Err(Error::NotFound(what.to_string())),
        _ => Err(Error::http(url, describe(resp))),
    }
}

/// Fetches a manifest or index by tag or digest: its bytes, media type and digest (checked
/// when the reference names one).
pub(crate) fn fetch_manifest(
    client: &Client,
    r: &Reference,
    reference: &str,
) -> Result<(Vec<u8>, String, Digest)> {
    let url = client.url(&format!(
        "{}/manifests/{reference}",
        r.api_repository_path()
    ));
    let mut resp = client.request("GET", &url, &[("Accept", ACCEPT)], Body::Empty)?;
    check_status(
        &url,
        &format!(
            "manifest for {}{}{reference} not found: manifest unknown: manifest unknown",
            r.repository_familiar(),
            if reference.starts_with("sha256:") {
                "@"
            } else {
                ":"
            }
        ),
        &mut resp,
    )?;
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(|s| s.split(';').next().unwrap_or("").trim().to_string())
        .unwrap_or_default();
    let bytes = read_limited(&url, &mut resp, MANIFEST_LIMIT, "manifest")?;
    let digest = Digest::of(&bytes);
    if let Ok(expected) = Digest::parse_lenient(reference) {
        if expected != digest {
            return Err(Error::DigestMismatch {
                what: format!("manifest {}", r.repository_familiar()),
                expected,
                actual: digest,
            });
        }
    }
    let media = match ct.as_str() {
        "" | "application/json" | "text/plain" => {
            let v: serde_json::Value =
                serde_json::from_slice(&bytes).map_err(|e| Error::Manifest {
                    what: digest.to_string(),
                    message: e.to_string(),
                })?;
            match v["mediaType"].as_str() {
                Some(m) => m.to_string(),
                None if v.get("manifests").is_some() => media_type::OCI_INDEX.to_string(),
                None => media_type::OCI_MANIFEST.to_string(),
            }
        }
        _ => ct,
    };
    Ok((bytes, media, digest))
}

fn wanted_platform(opts: &PullOptions) -> (String, String, Option<String>) {
    if let Some(p) = &opts.platform {
        let mut parts = p.split('/');
        let os = parts.next().unwrap_or("linux").to_string();
        let arch = parts.next().unwrap_or(oci::host_architecture()).to_string();
        let variant = parts.next().map(str::to_string);
        return (os, arch, variant);
    }
    ("linux".into(), oci::host_architecture().into(), None)
}

/// Resolves `r` to an image manifest: (manifest bytes, repo digest to record).
fn resolve_manifest(
    client: &Client,
    r: &Reference,
    opts: &PullOptions,
) -> Result<(Manifest, Digest)> {
    let (bytes, media, top) = fetch_manifest(client, r, &r.api_reference())?;
    let is_list = media == media_type::OCI_INDEX || media == media_type::DOCKER_MANIFEST_LIST;
    let bytes = if is_list {
        let index = oci::Index::from_slice(&bytes).map_err(|e| Error::Manifest {
            what: top.to_string(),
            message: e.to_string(),
        })?;
        let (os, arch, variant) = wanted_platform(opts);
        let pick = index.manifests.iter().find(|d| {
            d.platform.as_ref().is_some_and(|p| {
                p.os == os
                    && p.architecture == arch
                    && variant.as_ref().is_none_or(|v| &p.variant == v)
            })
        });
        let Some(d) = pick else {
            let mut w = format!("{os}/{arch}");
            if let Some(v) = &variant {
                w = format!("{w}/{v}");
            }
            return Err(Error::NoPlatform(w));
        };
        let (b, _, _) = fetch_manifest(client, r, &d.digest.to_string())?;
        b
    } else if media == media_type::DOCKER_MANIFEST || media == media_type::OCI_MANIFEST {
        bytes
    } else {
        return Err(Error::Manifest {
            what: top.to_string(),
            message: format!("unsupported media type {media:?}"),
        });
    };
    let m = Manifest::from_slice(&bytes).map_err(|e| Error::Manifest {
        what: top.to_string(),
        message: e.to_string(),
    })?;
    if let Some(l) = m
        .layers
        .iter()
        .find(|l| !LAYER_TYPES.contains(&l.media_type.as_str()))
    {
        return Err(Error::Manifest {
            what: top.to_string(),
            message: format!(
                "layer {} has the unsupported media type {:?}",
                l.digest, l.media_type
            ),
        });
    }
    Ok((m, top))
}

/// Reads a blob, resuming with a `Range` request when the connection breaks.
pub(crate) struct BlobReader<'a> {
    client: &'a Client,
    url: String,
    reader: Option<Watchdog<ureq::BodyReader<'static>>>,
    offset: u64,
    resumes: u32,
}

impl<'a> BlobReader<'a> {
    /// A reader of the blob at `url` that resumes where a broken connection left off.
    pub(crate) fn new(client: &'a Client, url: String) -> Self {
        BlobReader {
            client,
            url,
            reader: None,
            offset: 0,
            resumes: 0,
        }
    }

    fn open(&mut self) -> io::Result<()> {
        let range = format!("bytes={}-", self.offset);
        let headers: Vec<(&str, &str)> = if self.offset > 0 {
            vec![("Range", range.as_str())]
        } else {
            vec![]
        };
        let mut resp = self
            .client
            .request("GET", &self.url, &headers, Body::Empty)
            .map_err(io::Error::other)?;
        let status = resp.status().as_u16();
        if self.offset > 0 && status != 206 {
            return Err(io::Error::other(format!(
                "{}: connection broken at byte {} and the registry cannot resume ({status})",
                self.url, self.offset
            )));
        }
        check_status(
            &self.url,
            &format!("{}: blob unknown to registry", self.url),
            &mut resp,
        )
        .map_err(io::Error::other)?;
        self.reader = Some(Watchdog::new(resp.into_body().into_reader(), &self.url));
        Ok(())
    }
}

impl Read for BlobReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.reader.is_none() {
                self.open()?;
            }
            let r = self.reader.as_mut().expect("opened above");
            match r.read(buf) {
                Ok(n) => {
                    self.offset += n as u64;
                    return Ok(n);
                }
                Err(e)
                    if self.resumes < 5
                        && e.kind() != io::ErrorKind::InvalidData
                        && !e.get_ref().is_some_and(|i| i.is::<TooSlow>()) =>
                {
                    self.reader = None;
                    backoff(self.resumes);
                    self.resumes += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// Pulls `r` into the store. `progress` receives Docker's status lines.
///
/// The phases: resolve the manifest (and the platform, for a list) → stop here if the image
/// is complete in the store → fetch and verify the config → plan the missing layers →
/// download and unpack them in parallel into a staging area → publish everything in one
/// transaction.
pub fn pull(
    store: &mut Store,
    r: &Reference,
    creds: Option<Credentials>,
    hosts: &Hosts,
    opts: &PullOptions,
    progress: &(dyn Fn(Progress<'_>) + Sync),
) -> Result<Pulled> {
    let done = pull_unrecorded(store, r, creds, hosts, opts, progress)?;
    image::record_reference_event(store, "pull", r, &done.id);
    Ok(done)
}

fn pull_unrecorded(
    store: &mut Store,
    r: &Reference,
    creds: Option<Credentials>,
    hosts: &Hosts,
    opts: &PullOptions,
    progress: &(dyn Fn(Progress<'_>) + Sync),
) -> Result<Pulled> {
    let pull = Pull::new(r, creds, hosts, progress);
    pull.announce();
    let target = pull.resolve(opts)?;
    if let Some(pulled) = pull.up_to_date(store, &target)? {
        return Ok(pulled);
    }
    let config = pull.fetch_config(&target)?;
    let jobs = pull.plan_layers(store, &target, &config)?;
    // The staged layers live in here until they are published.
    let staging = store.stage()?;
    let concurrency = opts
        .concurrency
        .unwrap_or(hosts.max_concurrent_downloads)
        .max(1);
    let staged = pull.download_layers(&staging, jobs, concurrency)?;
    pull.publish(store, &target, &config, staged)
}

/// What every phase of a pull shares (as BuildKit's `dispatchState` carries a stage's).
struct Pull<'a> {
    r: &'a Reference,
    client: Client,
    progress: &'a (dyn Fn(Progress<'_>) + Sync),
}

/// The image manifest a reference resolved to.
struct Target {
    manifest: Manifest,
    /// The digest of what the reference named (a list's, for a list): the repo digest.
    digest: Digest,
}

/// An image config fetched and verified against its digest and the manifest.
struct Config {
    bytes: Vec<u8>,
    created: Option<String>,
    diff_ids: Vec<Digest>,
}

/// A layer to download: its position in the manifest, descriptor and expected diff_id.
struct LayerJob {
    index: usize,
    descriptor: oci::Descriptor,
    diff_id: Digest,
}

/// A downloaded layer waiting in the staging area, with its position in the manifest.
struct Staged {
    index: usize,
    layer: image::StagedLayer,
}

impl<'a> Pull<'a> {
    fn new(
        r: &'a Reference,
        creds: Option<Credentials>,
        hosts: &Hosts,
        progress: &'a (dyn Fn(Progress<'_>) + Sync),
    ) -> Self {
        let client = Client::new(&r.registry, creds, hosts);
        client.add_scope(&r.repository, "pull");
        Pull {
            r,
            client,
            progress,
        }
    }

    /// `TAG: Pulling from REPOSITORY` (the digest when there is no tag).
    fn announce(&self) {
        let r = self.r;
        let what = r
            .tag
            .clone()
            .or_else(|| r.digest.map(|d| d.to_string()))
            .unwrap_or_else(|| "latest".into());
        line(
            self.progress,
            &format!("{what}: Pulling from {}", r.repository),
        );
    }

    /// The manifest for this machine's platform (or the one asked for).
    fn resolve(&self, opts: &PullOptions) -> Result<Target> {
        let (manifest, digest) = resolve_manifest(&self.client, self.r, opts)?;
        Ok(Target { manifest, digest })
    }

    /// When the image is already complete in the store, only its names change.
    fn up_to_date(&self, store: &mut Store, target: &Target) -> Result<Option<Pulled>> {
        let id = target.manifest.config.digest;
        let Some(img) = store.image(&id)? else {
            return Ok(None);
        };
        if !img.layers.iter().all(|l| store.layer_dir(l).is_dir()) {
            return Ok(None);
        }
        self.name_and_commit(store.publish()?, &id, target)?;
        self.report_done(target, "Image is up to date for");
        Ok(Some(Pulled {
            id,
            digest: target.digest,
            downloaded: false,
        }))
    }

    /// The config blob, checked against the manifest's digest; it must name as many layers
    /// as the manifest.
    fn fetch_config(&self, target: &Target) -> Result<Config> {
        let manifest = &target.manifest;
        let config_digest = manifest.config.digest;
        let url = self.blob_url(&config_digest);
        let mut resp = self.client.request("GET", &url, &[], Body::Empty)?;
        check_status(
            &url,
            &format!("blob {config_digest} not found: blob unknown to registry"),
            &mut resp,
        )?;
        let bytes = read_small(&url, &mut resp)?;
        let actual = Digest::of(&bytes);
        if actual != config_digest {
            return Err(Error::DigestMismatch {
                what: format!("config of {}", self.r.familiar()),
                expected: config_digest,
                actual,
            });
        }
        let head: ConfigHead = serde_json::from_slice(&bytes).map_err(|e| Error::Manifest {
            what: format!("config {config_digest}"),
            message: e.to_string(),
        })?;
        let diff_ids = head.rootfs.diff_ids;
        if diff_ids.len() != manifest.layers.len() {
            return Err(Error::Manifest {
                what: target.digest.to_string(),
                message: format!(
                    "the config names {} layers, the manifest {}",
                    diff_ids.len(),
                    manifest.layers.len()
                ),
            });
        }
        Ok(Config {
            bytes,
            created: head.created,
            diff_ids,
        })
    }

    /// The layers to fetch: not in the store, each diff_id once.
    fn plan_layers(
        &self,
        store: &Store,
        target: &Target,
        config: &Config,
    ) -> Result<Vec<LayerJob>> {
        let mut jobs: Vec<LayerJob> = Vec::new();
        let layers = target.manifest.layers.iter().zip(&config.diff_ids);
        for (index, (d, diff)) in layers.enumerate() {
            if store.layer(diff)?.is_some() {
                layer(self.progress, &short(&d.digest), "Already exists");
            } else if !jobs.iter().any(|j| j.diff_id == *diff) {
                layer(self.progress, &short(&d.digest), "Pulling fs layer");
                jobs.push(LayerJob {
                    index,
                    descriptor: d.clone(),
                    diff_id: *diff,
                });
            }
        }
        Ok(jobs)
    }

    /// Downloads the layers `concurrency` at a time, in manifest order.
    fn download_layers(
        &self,
        staging: &Staging,
        jobs: Vec<LayerJob>,
        concurrency: usize,
    ) -> Result<Vec<Staged>> {
        parallel::run(jobs, concurrency, |job| self.download_layer(staging, job))
    }

    /// Streams one layer blob (resuming broken connections), hashing and unpacking it into
    /// the staging area; both its digest and its diff_id are checked.
    fn download_layer(&self, staging: &Staging, job: LayerJob) -> Result<Staged> {
        let desc = &job.descriptor;
        let id = short(&desc.digest);
        layer(self.progress, &id, "Downloading");
        let reader = BlobReader::new(&self.client, self.blob_url(&desc.digest));
        let counting = Counting {
            inner: reader,
            id: &id,
            status: "Downloading",
            total: desc.size,
            current: 0,
            last: 0,
            progress: self.progress,
        };
        let staged = image::ingest_layer(
            staging,
            &format!("layer {}", desc.digest),
            io::BufReader::with_capacity(1 << 20, counting),
            Some(&desc.digest),
            Some(&job.diff_id),
        )?;
        layer(self.progress, &id, "Download complete");
        Ok(Staged {
            index: job.index,
            layer: staged,
        })
    }

    /// One transaction: the staged layers, the image, its tag and repo digest.
    fn publish(
        &self,
        store: &mut Store,
        target: &Target,
        config: &Config,
        staged: Vec<Staged>,
    ) -> Result<Pulled> {
        let mut p = store.publish()?;
        let mut done = Vec::new();
        for s in staged {
            // Where this blob was verified to come from: pushing the layer back to this
            // registry mounts or skips it instead of compressing it again.
            let received = &s.layer.received;
            p.add_remote_blob(&RemoteBlob {
                diff_id: s.layer.record.diff_id,
                registry: self.r.registry.clone(),
                repository: self.r.repository.clone(),
                digest: received.digest,
                media_type: received.media_type.clone(),
                size: received.size,
            })?;
            s.layer.publish(&mut p)?;
            done.push(s.index);
        }
        let id = p.add_image(&NewImage {
            config: &config.bytes,
            layers: &config.diff_ids,
            parent: None,
            created: config.created.as_deref().unwrap_or_default(),
        })?;
        self.name_and_commit(p, &id, target)?;
        for i in done {
            let digest = &target.manifest.layers[i].digest;
            layer(self.progress, &short(digest), "Pull complete");
        }
        self.report_done(target, "Downloaded newer image for");
        Ok(Pulled {
            id,
            digest: target.digest,
            downloaded: true,
        })
    }

    /// Tags the image (unless pulled by digest), records the repo digest, commits.
    fn name_and_commit(&self, mut p: Publisher<'_>, id: &Digest, target: &Target) -> Result<()> {
        if self.r.digest.is_none() {
            p.tag(&self.r.to_string(), id)?;
        }
        p.add_repo_digest(&format!("{}@{}", self.r.name(), target.digest), id)?;
        p.commit()?;
        Ok(())
    }

    /// `Digest: ...` and `Status: STATUS NAME`.
    fn report_done(&self, target: &Target, status: &str) {
        line(self.progress, &format!("Digest: {}", target.digest));
        line(
            self.progress,
            &format!("Status: {status} {}", self.r.familiar()),
        );
    }

    fn blob_url(&self, digest: &Digest) -> String {
        self.client
            .url(&format!("{}/blobs/{digest}", self.r.api_repository_path()))
    }
}

/// The tags of `r`'s repository (`pull -a`), following the registry's `Link` pages.
pub fn list_tags(r: &Reference, creds: Option<Credentials>, hosts: &Hosts) -> Result<Vec<String>> {
    let client = Client::new(&r.registry, creds, hosts);
    client.add_scope(&r.repository, "pull");
    let n = hosts.tags_page_size.max(1);
    let mut next = Some(format!("{}/tags/list?n={n}", r.api_repository_path()));
    let mut tags: Vec<String> = Vec::new();
    let mut pages = 0;
    while let Some(path) = next.take() {
        pages += 1;
        let url = client.url(&path);
        if pages > 10_000 {
            return Err(Error::http(&url, "the tag list never ends"));
        }
        let mut resp = client.request("GET", &url, &[], Body::Empty)?;
        check_status(
            &url,
            &format!("repository {} not found", r.repository_familiar()),
            &mut resp,
        )?;
        next = resp
            .headers()
            .get("link")
            .and_then(|v| v.to_str().ok())
            .and_then(next_link);
        let bytes = read_small(&url, &mut resp)?;
        let v: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| Error::http(&url, e))?;
        if let Some(a) = v["tags"].as_array() {
            tags.extend(a.iter().filter_map(|t| t.as_str().map(str::to_string)));
        }
    }
    Ok(tags)
}

/// The target of `rel="next"` in a `Link` header: `</v2/x/tags/list?last=a&n=2>; rel="next"`.
fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        params
            .split(';')
            .any(|p| {
                let p = p.trim().replace(' ', "");
                p == "rel=\"next\"" || p == "rel=next"
            })
            .then(|| target.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::next_link;

    #[test]
    fn link_headers() {
        assert_eq!(
            next_link("</v2/a/tags/list?last=b&n=2>; rel=\"next\"").as_deref(),
            Some("/v2/a/tags/list?last=b&n=2")
        );
        assert_eq!(
            next_link("<https://r/x>; rel=\"prev\", <https://r/y>; rel=next").as_deref(),
            Some("https://r/y")
        );
        assert_eq!(next_link("garbage"), None);
    }
}
