//! `push`: upload an image's config and layers, then PUT its manifest. Each layer goes as a
//! blob the registry already has (HEAD: "Layer already exists"), as one mounted from another
//! repository of the same registry ("Mounted from"), or as its tar compressed while it
//! uploads (POST, one streamed PATCH, PUT with the digest computed on the way). The blobs a
//! layer is known by (pulled or pushed before, or stored by old stores) are tried first, so
//! pushing what is there already compresses and uploads nothing. Docker schema2 manifests
//! with gzip, OCI ones with zstd or when asked.

use std::collections::HashMap;
use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use image::{ExportOptions, LayerSource};
use oci::{media_type, Descriptor, Digest, Hasher, Manifest, Reference};
use store::{BlobRef, ImageRecord, RemoteBlob, Store};

use crate::auth::Credentials;
use crate::client::{backoff, describe, Body, Client, Report, ATTEMPTS};
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

/// One layer to push: its tar, and the blobs it is known by that may go out as they are.
pub(crate) struct LayerJob {
    /// The short diff_id its progress is reported under, as Docker does.
    short: String,
    source: LayerSource,
    /// The wanted compression first.
    known: Vec<Known>,
}

/// A blob a layer is known by.
struct Known {
    blob: BlobRef,
    /// Repositories of the destination registry that hold it.
    repos: Vec<String>,
    /// The store's own copy (old stores), uploadable as it is.
    stored: Option<PathBuf>,
}

impl Known {
    /// The entry of `blob` in `known`, added if missing.
    fn entry(known: &mut Vec<Known>, blob: BlobRef) -> &mut Known {
        let i = match known.iter().position(|k| k.blob.digest == blob.digest) {
            Some(i) => i,
            None => {
                known.push(Known {
                    blob,
                    repos: Vec::new(),
                    stored: None,
                });
                known.len() - 1
            }
        };
        &mut known[i]
    }
}

impl LayerJob {
    /// The layer `rec` for a push to `registry`: the blobs the registries hold for it and
    /// its stored blob, those that `opts` lets go out as they are. A stored blob may also be
    /// mounted from `mount_from` (the repositories the image was pulled from or pushed to).
    pub(crate) fn new(
        store: &Store,
        rec: &store::LayerRecord,
        registry: &str,
        opts: &ExportOptions,
        mount_from: &[String],
    ) -> Result<LayerJob> {
        let source = LayerSource::new(store, rec);
        let mut known: Vec<Known> = Vec::new();
        for rb in store.remote_blobs(&rec.diff_id)? {
            if !opts.reuses(&rb.media_type) {
                continue;
            }
            let blob = BlobRef {
                digest: rb.digest,
                media_type: rb.media_type,
                size: rb.size,
            };
            let k = Known::entry(&mut known, blob);
            if rb.registry == registry && !k.repos.contains(&rb.repository) {
                k.repos.push(rb.repository);
            }
        }
        if let (Some(b), Some(path)) = (&rec.blob, source.blob_path()) {
            if opts.reuses(&b.media_type) {
                let k = Known::entry(&mut known, b.clone());
                k.stored = Some(path.to_path_buf());
                for m in mount_from {
                    if !k.repos.contains(m) {
                        k.repos.push(m.clone());
                    }
                }
            }
        }
        // Stable: the wanted compression first, otherwise as found.
        known.sort_by_key(|k| !opts.wants(&k.blob.media_type));
        Ok(LayerJob {
            short: rec.diff_id.hex()[..12].to_string(),
            source,
            known,
        })
    }

    pub(crate) fn diff_id(&self) -> Digest {
        self.source.record.diff_id
    }

    /// Repositories of the destination registry the layer may be mounted from.
    pub(crate) fn repos(&self) -> impl Iterator<Item = &str> {
        self.known
            .iter()
            .flat_map(|k| k.repos.iter().map(String::as_str))
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

/// Why one attempt at a streamed upload failed: worth another try (with the stream made
/// anew), or not.
enum Attempt {
    Retry(Error),
    Fail(Error),
}

impl From<Error> for Attempt {
    fn from(e: Error) -> Self {
        Attempt::Fail(e)
    }
}

impl From<image::Error> for Attempt {
    fn from(e: image::Error) -> Self {
        Attempt::Fail(e.into())
    }
}

impl Destination<'_> {
    /// Makes sure the registry has `blob` in the repository: HEAD, else a cross-repository
    /// mount, else an upload.
    pub(crate) fn upload(&self, blob: &Blob, report: Option<Report<'_>>) -> Result<Outcome> {
        if self.exists(&blob.digest)? {
            return Ok(Outcome::Exists);
        }
        let session = match self.mount_or_start(&blob.digest)? {
            Start::Mounted(from) => return Ok(Outcome::Mounted(from)),
            Start::Session(location) => location,
        };
        self.put_file(session, blob, report)?;
        Ok(Outcome::Pushed)
    }

    /// Makes sure the registry has a blob of the layer in the repository, and says which:
    /// a known blob already there (HEAD), one mounted from another repository of the
    /// registry, the stored blob uploaded, or else the layer's tar compressed as `opts`
    /// says while it uploads.
    pub(crate) fn put_layer(
        &self,
        job: &LayerJob,
        opts: &ExportOptions,
        report: Report<'_>,
    ) -> Result<(BlobRef, Outcome)> {
        let here = &self.r.repository;
        let recorded_here = |k: &&Known| k.repos.iter().any(|r| r == here);
        for k in job.known.iter().filter(recorded_here) {
            if self.exists(&k.blob.digest)? {
                return Ok((k.blob.clone(), Outcome::Exists));
            }
        }
        // A refused mount opens an upload session, kept for the upload.
        let mut session = None;
        for k in &job.known {
            for from in k.repos.iter().filter(|r| *r != here) {
                match self.mount(&k.blob.digest, from)? {
                    Some(Start::Mounted(from)) => {
                        return Ok((k.blob.clone(), Outcome::Mounted(from)))
                    }
                    Some(Start::Session(s)) => {
                        session.get_or_insert(s);
                    }
                    None => {}
                }
            }
        }
        for k in job.known.iter().filter(|k| !recorded_here(k)) {
            if self.exists(&k.blob.digest)? {
                return Ok((k.blob.clone(), Outcome::Exists));
            }
        }
        if let Some((k, path)) = job
            .known
            .iter()
            .find_map(|k| k.stored.as_ref().map(|p| (k, p)))
        {
            let session = match session {
                Some(s) => s,
                None => self.start()?,
            };
            let blob = Blob {
                path: path.clone(),
                digest: k.blob.digest,
                size: k.blob.size,
            };
            let report = Report {
                total: blob.size,
                ..report
            };
            self.put_file(session, &blob, Some(report))?;
            return Ok((k.blob.clone(), Outcome::Pushed));
        }
        let blob = self.put_compressed(session, job, opts, report)?;
        Ok((blob, Outcome::Pushed))
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

    /// Asks for a mount of `digest` from `from`: mounted (201), an upload session opened
    /// instead (202), or refused.
    fn mount(&self, digest: &Digest, from: &str) -> Result<Option<Start>> {
        let url = self.url(&format!("blobs/uploads/?mount={digest}&from={from}"));
        let mut resp = self.client.request("POST", &url, &[], Body::Empty)?;
        Ok(match resp.status().as_u16() {
            201 => Some(Start::Mounted(from.to_string())),
            202 => Some(Start::Session(location(&url, &resp)?)),
            _ => {
                let _ = describe(&mut resp);
                None
            }
        })
    }

    /// Asks each candidate repository for a mount; without one, opens a session.
    fn mount_or_start(&self, digest: &Digest) -> Result<Start> {
        for from in self.mount_from {
            if let Some(start) = self.mount(digest, from)? {
                return Ok(start);
            }
        }
        Ok(Start::Session(self.start()?))
    }

    /// Opens an upload session; its location.
    fn start(&self) -> Result<String> {
        let url = self.url("blobs/uploads/");
        let mut resp = self.client.request("POST", &url, &[], Body::Empty)?;
        expect(&url, &mut resp, &[202])?;
        location(&url, &resp)
    }

    /// Uploads a file in one PUT or, above the chunk size, in PATCHes.
    fn put_file(&self, session: String, blob: &Blob, report: Option<Report<'_>>) -> Result<()> {
        // Blobs larger than this go up in chunks of this size.
        let chunk = self.client.hosts.push_chunk_size.max(1);
        if blob.size > chunk {
            self.put_chunked(session, blob, chunk, report)
        } else {
            self.put_whole(&session, blob, report)
        }
    }

    /// The layer's tar compressed while it streams in one PATCH, then the closing PUT with
    /// the digest of what went up. A failed attempt is tried again with the stream made
    /// anew (nothing of it is kept on disk); an error of the layer itself (its files no
    /// longer give its tar) is not.
    fn put_compressed(
        &self,
        mut session: Option<String>,
        job: &LayerJob,
        opts: &ExportOptions,
        report: Report<'_>,
    ) -> Result<BlobRef> {
        let mut attempt = 0;
        loop {
            let location = match session.take() {
                Some(s) => s,
                None => self.start()?,
            };
            match self.try_put_compressed(location, job, opts, report) {
                Ok(blob) => return Ok(blob),
                Err(Attempt::Retry(_)) if attempt + 1 < ATTEMPTS => {
                    backoff(attempt);
                    attempt += 1;
                }
                Err(Attempt::Retry(e) | Attempt::Fail(e)) => return Err(e),
            }
        }
    }

    fn try_put_compressed(
        &self,
        session: String,
        job: &LayerJob,
        opts: &ExportOptions,
        report: Report<'_>,
    ) -> Result<BlobRef, Attempt> {
        let read = Arc::new(AtomicU64::new(0));
        let tar = Tally {
            inner: job.source.open()?,
            read: read.clone(),
        };
        let compressed = layer::compress_reader(tar, &opts.compress).map_err(image::Error::from)?;
        let mut body = Outgoing {
            inner: compressed,
            hasher: Hasher::new(),
            failure: None,
            read,
            reported: 0,
            total: job.source.record.tar_size,
            report,
        };
        let url = self.client.url(&session);
        let sent = self.client.send_stream(
            "PATCH",
            &url,
            &[("Content-Type", "application/octet-stream")],
            &mut body,
        );
        if let Some(e) = body.failure.take() {
            return Err(Attempt::Fail(
                image::Error::Read(format!("uploading layer {}", job.diff_id()), e).into(),
            ));
        }
        let mut resp = sent.map_err(Attempt::Retry)?;
        let status = resp.status().as_u16();
        if status >= 500 || status == 429 || status == 401 {
            return Err(Attempt::Retry(Error::http(&url, describe(&mut resp))));
        }
        expect(&url, &mut resp, &[202])?;
        let session = location(&url, &resp)?;
        let size = body.hasher.len();
        let digest = std::mem::replace(&mut body.hasher, Hasher::new()).finish();
        let url = self.closing_url(&session, &digest);
        let mut resp = self.client.request("PUT", &url, &[], Body::Empty)?;
        expect(&url, &mut resp, &[201, 204])?;
        Ok(BlobRef {
            digest,
            media_type: image::layer_media_type(opts.compress.compression),
            size,
        })
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

/// Counts the bytes of a layer's tar as the compressor reads them (on its own thread).
struct Tally<R> {
    inner: R,
    read: Arc<AtomicU64>,
}

impl<R: Read> Read for Tally<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// The body of a streamed upload: hashes what goes out, reports `Pushing` with the bytes of
/// the tar read so far (as Docker counts a layer it compresses), and keeps an error of the
/// stream itself, which the HTTP client would only report as a broken request.
struct Outgoing<'a> {
    inner: Box<dyn Read + Send>,
    hasher: Hasher,
    failure: Option<io::Error>,
    read: Arc<AtomicU64>,
    reported: u64,
    total: u64,
    report: Report<'a>,
}

impl Read for Outgoing<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = match self.inner.read(buf) {
            Ok(n) => n,
            Err(e) => {
                let message = e.to_string();
                self.failure = Some(e);
                return Err(io::Error::other(message));
            }
        };
        self.hasher.update(&buf[..n]);
        let read = self.read.load(Ordering::Relaxed);
        if read - self.reported >= 512 << 10 || (n == 0 && read != self.reported) {
            self.reported = read;
            (self.report.progress)(Progress::Bytes {
                id: self.report.id,
                status: "Pushing",
                current: read,
                total: self.total,
            });
        }
        Ok(n)
    }
}

/// Pushes the image `r` names to its registry, its layers going out as `opts` says.
/// `progress` receives Docker's status lines.
///
/// The phases: plan the layers (each once, with the blobs it is known by) → put them in
/// parallel → put the config → put the manifest → record the repo digest and where each
/// layer's blob now is.
pub fn push(
    store: &mut Store,
    r: &Reference,
    creds: Option<Credentials>,
    hosts: &Hosts,
    opts: &ExportOptions,
    progress: &(dyn Fn(Progress<'_>) + Sync),
) -> Result<Pushed> {
    let done = push_unrecorded(store, r, creds, hosts, opts, progress)?;
    if let Ok(id) = image::resolve(store, &r.to_string()) {
        image::record_reference_event(store, "push", r, &id);
    }
    Ok(done)
}

fn push_unrecorded(
    store: &mut Store,
    r: &Reference,
    creds: Option<Credentials>,
    hosts: &Hosts,
    opts: &ExportOptions,
    progress: &(dyn Fn(Progress<'_>) + Sync),
) -> Result<Pushed> {
    line(
        progress,
        &format!("The push refers to repository [{}]", r.name()),
    );
    let id = local_image(store, r)?;
    let img = store
        .image(&id)?
        .ok_or_else(|| image::Error::NoSuchImage(r.familiar()))?;
    let config = store.read_blob(&id)?;
    let mount_from = mount_sources(r, &img.repo_digests);
    let plan = Plan::new(store, r, &img, config.len() as u64, opts, &mount_from)?;
    let push = Push::new(r, creds, hosts, &mount_from, &plan.jobs, progress);
    let (blobs, uploaded) = push.upload_layers(&plan.jobs, opts);
    let remote: Vec<RemoteBlob> = blobs.iter().map(|(d, b)| remote_blob(r, d, b)).collect();
    if let Err(e) = uploaded {
        // What did go up is remembered: trying again skips it.
        record(store, r, &id, None, &remote)?;
        return Err(e);
    }
    push.destination().upload(&plan.config, None)?;
    let blobs: HashMap<Digest, BlobRef> = blobs.into_iter().collect();
    let pushed = push.put_manifest(&plan.manifest(&blobs, opts))?;
    record(store, r, &id, Some(&pushed.digest), &remote)?;
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

/// Every local tag of `r`'s repository, sorted: what `push --all-tags` (and the Engine
/// API's push without a tag) sends, as Docker does.
pub fn local_tags(store: &Store, r: &Reference) -> Result<Vec<Reference>> {
    Ok(image::local_tags(store, r)?)
}

/// The image `r` names, or Docker's errors: no local tag of the repository at all, or not
/// this tag.
fn local_image(store: &Store, r: &Reference) -> Result<Digest> {
    match image::resolve(store, &r.to_string()) {
        Ok(id) => Ok(id),
        Err(image::Error::NoSuchImage(_)) => {
            let tagged = !local_tags(store, r)?.is_empty();
            Err(Error::NotFound(if tagged {
                format!("tag does not exist: {}", r.familiar())
            } else {
                format!(
                    "An image does not exist locally with the tag: {}",
                    r.repository_familiar()
                )
            }))
        }
        Err(e) => Err(e.into()),
    }
}

/// Repositories of `r`'s registry the image was pulled from or pushed to (its repo
/// digests), other than `r`'s: where its config and stored blobs may be mounted from.
fn mount_sources(r: &Reference, repo_digests: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for rd in repo_digests {
        let name = rd.split('@').next().unwrap_or("");
        if let Some(repo) = name.strip_prefix(&format!("{}/", r.registry)) {
            if repo != r.repository && !out.iter().any(|m| m == repo) {
                out.push(repo.to_string());
            }
        }
    }
    out
}

/// What a push uploads: the config, and each layer once.
struct Plan {
    config: Blob,
    /// The diff_ids of the image, base first (a repeated layer repeats).
    layers: Vec<Digest>,
    /// The distinct layers.
    jobs: Vec<LayerJob>,
}

impl Plan {
    fn new(
        store: &Store,
        r: &Reference,
        img: &ImageRecord,
        config_size: u64,
        opts: &ExportOptions,
        mount_from: &[String],
    ) -> Result<Plan> {
        let mut jobs: Vec<LayerJob> = Vec::new();
        for diff in &img.layers {
            if jobs.iter().any(|j| j.diff_id() == *diff) {
                continue;
            }
            let rec = store
                .layer(diff)?
                .ok_or(store::Error::LayerNotFound(*diff))?;
            jobs.push(LayerJob::new(store, &rec, &r.registry, opts, mount_from)?);
        }
        Ok(Plan {
            config: Blob::stored(store, img.id, config_size),
            layers: img.layers.clone(),
            jobs,
        })
    }

    /// The manifest naming each layer by the blob it went up as: Docker's schema2, or OCI's
    /// when asked or when a layer is zstd.
    fn manifest(&self, blobs: &HashMap<Digest, BlobRef>, opts: &ExportOptions) -> Manifest {
        let layers: Vec<&BlobRef> = self.layers.iter().map(|d| &blobs[d]).collect();
        let oci = opts.oci_manifest(layers.iter().map(|b| b.media_type.as_str()));
        let (manifest_type, config_type) = if oci {
            (media_type::OCI_MANIFEST, media_type::OCI_CONFIG)
        } else {
            (media_type::DOCKER_MANIFEST, media_type::DOCKER_CONFIG)
        };
        Manifest {
            schema_version: 2,
            media_type: Some(manifest_type.to_string()),
            artifact_type: None,
            config: Descriptor::new(config_type, self.config.digest, self.config.size),
            layers: layers
                .iter()
                .map(|b| {
                    let c =
                        image::compression_of(&b.media_type).unwrap_or(layer::Compression::None);
                    Descriptor::new(image::manifest_layer_type(c, oci), b.digest, b.size)
                })
                .collect(),
            subject: None,
            annotations: Default::default(),
        }
    }
}

/// What every phase of a push shares (as BuildKit's `dispatchState` carries a stage's).
pub(crate) struct Push<'a> {
    r: &'a Reference,
    pub(crate) client: Client,
    /// Repositories of the same registry the image came from: candidates for a mount.
    mount_from: Vec<String>,
    progress: &'a (dyn Fn(Progress<'_>) + Sync),
}

impl<'a> Push<'a> {
    /// A client for `r`'s repository with pull access to the repositories the config
    /// and the layers may be mounted from.
    pub(crate) fn new(
        r: &'a Reference,
        creds: Option<Credentials>,
        hosts: &Hosts,
        mount_from: &[String],
        jobs: &[LayerJob],
        progress: &'a (dyn Fn(Progress<'_>) + Sync),
    ) -> Self {
        let client = Client::new(&r.registry, creds, hosts);
        client.add_scope(&r.repository, "pull,push");
        let layer_repos = jobs.iter().flat_map(LayerJob::repos);
        for repo in mount_from.iter().map(String::as_str).chain(layer_repos) {
            if repo != r.repository {
                client.add_scope(repo, "pull");
            }
        }
        Push {
            r,
            client,
            mount_from: mount_from.to_vec(),
            progress,
        }
    }

    pub(crate) fn destination(&self) -> Destination<'_> {
        Destination {
            client: &self.client,
            r: self.r,
            mount_from: &self.mount_from,
        }
    }

    /// Puts the layers [`Hosts::max_concurrent_uploads`] at a time, the top layer first, as
    /// Docker does. Returns the blob each layer that made it went up as (diff_id, blob), and
    /// the first failure.
    pub(crate) fn upload_layers(
        &self,
        jobs: &[LayerJob],
        opts: &ExportOptions,
    ) -> (Vec<(Digest, BlobRef)>, Result<()>) {
        for j in jobs.iter().rev() {
            layer(self.progress, &j.short, "Preparing");
        }
        let workers = self.client.hosts.max_concurrent_uploads.max(1);
        // Those that must wait for a free upload slot say so, as Docker's transfers do.
        for j in jobs.iter().rev().skip(workers) {
            layer(self.progress, &j.short, "Waiting");
        }
        let done = Mutex::new(Vec::new());
        let result = parallel::run(jobs.iter().rev().collect(), workers, |j| {
            let blob = self.upload_layer(j, opts)?;
            done.lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((j.diff_id(), blob));
            Ok(())
        });
        let done = done.into_inner().unwrap_or_else(|e| e.into_inner());
        (done, result.map(|_| ()))
    }

    fn upload_layer(&self, j: &LayerJob, opts: &ExportOptions) -> Result<BlobRef> {
        let report = Report {
            id: &j.short,
            total: j.source.record.tar_size,
            progress: self.progress,
        };
        let (blob, outcome) = self.destination().put_layer(j, opts, report)?;
        let status = match outcome {
            Outcome::Exists => "Layer already exists".to_string(),
            Outcome::Mounted(from) => format!("Mounted from {from}"),
            Outcome::Pushed => "Pushed".to_string(),
        };
        layer(self.progress, &j.short, &status);
        Ok(blob)
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

/// What the registry of `r` holds for the layer `diff_id`, in `r`'s repository.
pub(crate) fn remote_blob(r: &Reference, diff_id: &Digest, blob: &BlobRef) -> RemoteBlob {
    RemoteBlob {
        diff_id: *diff_id,
        registry: r.registry.clone(),
        repository: r.repository.clone(),
        digest: blob.digest,
        media_type: blob.media_type.clone(),
        size: blob.size,
    }
}

/// Records in one transaction where the layers' blobs now are, and `NAME@DIGEST` on the
/// image once its manifest is there.
fn record(
    store: &mut Store,
    r: &Reference,
    id: &Digest,
    manifest: Option<&Digest>,
    remote: &[RemoteBlob],
) -> Result<()> {
    let mut p = store.publish()?;
    for b in remote {
        p.add_remote_blob(b)?;
    }
    if let Some(digest) = manifest {
        p.add_repo_digest(&format!("{}@{digest}", r.name()), id)?;
    }
    p.commit()?;
    Ok(())
}
