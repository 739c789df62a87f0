//! `pull`: resolve a reference to a manifest (choosing this machine's platform from a list),
//! fetch and verify the config, then download the missing layers a few at a time, each
//! hashed while it streams and unpacked straight into a staging area. Everything is published
//! in one transaction at the end, so a failed or tampered pull leaves the store unchanged.

use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use oci::{media_type, Digest, Manifest, Reference};
use serde::Deserialize;
use store::{NewImage, Store};

use crate::auth::Credentials;
use crate::client::{backoff, describe, Body, Client};
use crate::error::{Error, Result};
use crate::hosts::Hosts;
use crate::progress::{layer, line, Counting, Progress};

/// The manifest types a pull accepts, in the `Accept` header.
const ACCEPT: &str = "application/vnd.docker.distribution.manifest.v2+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json";

/// Largest manifest or config a pull reads.
const SMALL_LIMIT: u64 = 16 << 20;

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
    resp.body_mut()
        .with_config()
        .limit(SMALL_LIMIT)
        .read_to_vec()
        .map_err(|e| Error::http(url, e))
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
    let bytes = read_small(&url, &mut resp)?;
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
    Ok((m, top))
}

/// Reads a blob, resuming with a `Range` request when the connection breaks.
pub(crate) struct BlobReader<'a> {
    client: &'a Client,
    url: String,
    reader: Option<ureq::BodyReader<'static>>,
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
        self.reader = Some(resp.into_body().into_reader());
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
                Err(e) if self.resumes < 5 && e.kind() != io::ErrorKind::InvalidData => {
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
pub fn pull(
    store: &mut Store,
    r: &Reference,
    creds: Option<Credentials>,
    hosts: &Hosts,
    opts: &PullOptions,
    progress: &(dyn Fn(Progress<'_>) + Sync),
) -> Result<Pulled> {
    let client = Client::new(&r.registry, creds, hosts);
    client.add_scope(&r.repository, "pull");
    let familiar = r.familiar();
    line(
        progress,
        &format!(
            "{}: Pulling from {}",
            r.tag
                .clone()
                .or_else(|| r.digest.map(|d| d.to_string()))
                .unwrap_or_else(|| "latest".into()),
            r.repository
        ),
    );
    let (manifest, digest) = resolve_manifest(&client, r, opts)?;
    let config_digest = manifest.config.digest;
    let repo_digest = format!("{}@{}", r.name(), digest);

    // Already complete in the store: only the names change.
    if let Some(img) = store.image(&config_digest)? {
        if img.layers.iter().all(|l| store.layer_dir(l).is_dir()) {
            let mut p = store.publish()?;
            if r.digest.is_none() {
                p.tag(&r.to_string(), &config_digest)?;
            }
            p.add_repo_digest(&repo_digest, &config_digest)?;
            p.commit()?;
            line(progress, &format!("Digest: {digest}"));
            line(
                progress,
                &format!("Status: Image is up to date for {familiar}"),
            );
            return Ok(Pulled {
                id: config_digest,
                digest,
                downloaded: false,
            });
        }
    }

    let config_url = client.url(&format!(
        "{}/blobs/{config_digest}",
        r.api_repository_path()
    ));
    let mut resp = client.request("GET", &config_url, &[], Body::Empty)?;
    check_status(
        &config_url,
        &format!("blob {config_digest} not found: blob unknown to registry"),
        &mut resp,
    )?;
    let config = read_small(&config_url, &mut resp)?;
    let actual = Digest::of(&config);
    if actual != config_digest {
        return Err(Error::DigestMismatch {
            what: format!("config of {familiar}"),
            expected: config_digest,
            actual,
        });
    }
    let head: ConfigHead = serde_json::from_slice(&config).map_err(|e| Error::Manifest {
        what: format!("config {config_digest}"),
        message: e.to_string(),
    })?;
    let diff_ids = head.rootfs.diff_ids;
    if diff_ids.len() != manifest.layers.len() {
        return Err(Error::Manifest {
            what: digest.to_string(),
            message: format!(
                "the config names {} layers, the manifest {}",
                diff_ids.len(),
                manifest.layers.len()
            ),
        });
    }

    // Which layers to fetch: not in the store, each diff_id once.
    let mut todo: Vec<(usize, oci::Descriptor, Digest)> = Vec::new();
    for (i, (d, diff)) in manifest.layers.iter().zip(&diff_ids).enumerate() {
        if store.layer(diff)?.is_some() {
            layer(progress, &short(&d.digest), "Already exists");
        } else if !todo.iter().any(|(_, _, x)| x == diff) {
            layer(progress, &short(&d.digest), "Pulling fs layer");
            todo.push((i, d.clone(), *diff));
        }
    }

    let staging = store.stage()?;
    let concurrency = opts
        .concurrency
        .unwrap_or(hosts.max_concurrent_downloads)
        .max(1);
    let queue = Mutex::new(todo.into_iter().rev().collect::<Vec<_>>());
    let results: Mutex<Vec<(usize, image::StagedLayer)>> = Mutex::new(Vec::new());
    let failure: Mutex<Option<Error>> = Mutex::new(None);
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        for _ in 0..concurrency {
            s.spawn(|| loop {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                let Some((i, desc, diff)) = queue.lock().unwrap_or_else(|e| e.into_inner()).pop()
                else {
                    return;
                };
                let id = short(&desc.digest);
                layer(progress, &id, "Downloading");
                let url = client.url(&format!(
                    "{}/blobs/{}",
                    r.api_repository_path(),
                    desc.digest
                ));
                let reader = BlobReader {
                    client: &client,
                    url,
                    reader: None,
                    offset: 0,
                    resumes: 0,
                };
                let what = format!("layer {}", desc.digest);
                match image::ingest_layer(
                    &staging,
                    &what,
                    io::BufReader::with_capacity(
                        1 << 20,
                        Counting {
                            inner: reader,
                            id: &id,
                            status: "Downloading",
                            total: desc.size,
                            current: 0,
                            last: 0,
                            progress,
                        },
                    ),
                    Some(&desc.digest),
                    Some(&diff),
                ) {
                    Ok(l) => {
                        layer(progress, &id, "Download complete");
                        results
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push((i, l));
                    }
                    Err(e) => {
                        stop.store(true, Ordering::Relaxed);
                        let mut f = failure.lock().unwrap_or_else(|e| e.into_inner());
                        if f.is_none() {
                            *f = Some(e.into());
                        }
                        return;
                    }
                }
            });
        }
    });
    if let Some(e) = failure.into_inner().unwrap_or_else(|e| e.into_inner()) {
        return Err(e);
    }
    let mut staged = results.into_inner().unwrap_or_else(|e| e.into_inner());
    staged.sort_by_key(|(i, _)| *i);

    let mut p = store.publish()?;
    let mut done = Vec::new();
    for (i, l) in staged {
        l.publish(&mut p)?;
        done.push(i);
    }
    let id = p.add_image(&NewImage {
        config: &config,
        layers: &diff_ids,
        parent: None,
        created: head.created.as_deref().unwrap_or_default(),
    })?;
    if r.digest.is_none() {
        p.tag(&r.to_string(), &id)?;
    }
    p.add_repo_digest(&repo_digest, &id)?;
    p.commit()?;
    for i in done {
        layer(
            progress,
            &short(&manifest.layers[i].digest),
            "Pull complete",
        );
    }
    line(progress, &format!("Digest: {digest}"));
    line(
        progress,
        &format!("Status: Downloaded newer image for {familiar}"),
    );
    Ok(Pulled {
        id,
        digest,
        downloaded: true,
    })
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
