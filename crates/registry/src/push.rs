//! `push`: upload an image's config and compressed layers as stored (so the image ID and the
//! layer digests are preserved), skipping blobs the registry has (HEAD) or can mount from
//! another repository the image came from, then PUT a Docker schema2 manifest (OCI when a
//! layer is zstd). Large blobs go up in chunks, the rest in one PUT.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use oci::{media_type, Descriptor, Digest, Manifest, Reference};
use store::Store;

use crate::auth::Credentials;
use crate::client::{describe, Body, Client, Report};
use crate::error::{Error, Result};
use crate::hosts::Hosts;
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

/// Makes sure the registry has blob `digest` (read from `path`) in `repo`.
pub(crate) fn upload(
    client: &Client,
    r: &Reference,
    path: &Path,
    digest: &Digest,
    size: u64,
    mount_from: &[String],
    report: Option<Report<'_>>,
) -> Result<Outcome> {
    let repo = r.api_repository_path();
    let head_url = client.url(&format!("{repo}/blobs/{digest}"));
    let mut head = client.request("HEAD", &head_url, &[], Body::Empty)?;
    match head.status().as_u16() {
        200 => return Ok(Outcome::Exists),
        404 => {}
        _ => expect(&head_url, &mut head, &[])?,
    }
    let mut session = None;
    for from in mount_from {
        let url = client.url(&format!("{repo}/blobs/uploads/?mount={digest}&from={from}"));
        let mut resp = client.request("POST", &url, &[], Body::Empty)?;
        match resp.status().as_u16() {
            201 => return Ok(Outcome::Mounted(from.clone())),
            202 => {
                session = Some(location(&url, &resp)?);
                break;
            }
            _ => {
                let _ = describe(&mut resp);
            }
        }
    }
    let mut loc = match session {
        Some(l) => l,
        None => {
            let url = client.url(&format!("{repo}/blobs/uploads/"));
            let mut resp = client.request("POST", &url, &[], Body::Empty)?;
            expect(&url, &mut resp, &[202])?;
            location(&url, &resp)?
        }
    };
    // Blobs larger than this go up in chunks of this size.
    let chunk = client.hosts.push_chunk_size.max(1);
    if size > chunk {
        let mut offset = 0;
        while offset < size {
            let len = chunk.min(size - offset);
            let url = client.url(&loc);
            let range = format!("{}-{}", offset, offset + len - 1);
            let mut resp = client.request(
                "PATCH",
                &url,
                &[
                    ("Content-Type", "application/octet-stream"),
                    ("Content-Range", &range),
                ],
                Body::File {
                    path,
                    offset,
                    len,
                    report,
                },
            )?;
            expect(&url, &mut resp, &[202])?;
            loc = location(&url, &resp)?;
            offset += len;
        }
        let url = client.url(&with_query(&loc, &format!("digest={digest}")));
        let mut resp = client.request("PUT", &url, &[], Body::Empty)?;
        expect(&url, &mut resp, &[201, 204])?;
    } else {
        let url = client.url(&with_query(&loc, &format!("digest={digest}")));
        let mut resp = client.request(
            "PUT",
            &url,
            &[("Content-Type", "application/octet-stream")],
            Body::File {
                path,
                offset: 0,
                len: size,
                report,
            },
        )?;
        expect(&url, &mut resp, &[201, 204])?;
    }
    Ok(Outcome::Pushed)
}

/// One blob to push.
struct Job {
    short: String,
    path: PathBuf,
    digest: Digest,
    size: u64,
}

/// Pushes the image `r` names to its registry. `progress` receives Docker's status lines.
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
        if !jobs.iter().any(|j| j.digest == blob.digest) {
            jobs.push(Job {
                short: blob.digest.hex()[..12].to_string(),
                path: store.blob_path(&blob.digest),
                digest: blob.digest,
                size: blob.size,
            });
        }
        layers.push(blob);
    }
    let zstd = layers.iter().any(|b| b.media_type.contains("zstd"));
    let layer_type = |mt: &str| -> String {
        let gzip = mt.contains("gzip");
        match (zstd, gzip) {
            (true, _) => mt.to_string(),
            (false, true) => media_type::DOCKER_LAYER_GZIP.to_string(),
            (false, false) => "application/vnd.docker.image.rootfs.diff.tar".to_string(),
        }
    };

    let client = Client::new(&r.registry, creds, hosts);
    client.add_scope(&r.repository, "pull,push");
    // Repositories of the same registry the image came from: candidates for a mount.
    let mut mount_from: Vec<String> = Vec::new();
    for rd in &img.repo_digests {
        let name = rd.split('@').next().unwrap_or("");
        if let Some(repo) = name.strip_prefix(&format!("{}/", r.registry)) {
            if repo != r.repository && !mount_from.iter().any(|m| m == repo) {
                client.add_scope(repo, "pull");
                mount_from.push(repo.to_string());
            }
        }
    }

    for j in jobs.iter().rev() {
        layer(progress, &j.short, "Preparing");
    }
    let queue = Mutex::new(jobs.iter().collect::<Vec<_>>());
    let failure: Mutex<Option<Error>> = Mutex::new(None);
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        for _ in 0..3 {
            s.spawn(|| loop {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                let Some(j) = queue.lock().unwrap_or_else(|e| e.into_inner()).pop() else {
                    return;
                };
                layer(progress, &j.short, "Waiting");
                let report = Report {
                    id: &j.short,
                    total: j.size,
                    progress,
                };
                match upload(
                    &client,
                    r,
                    &j.path,
                    &j.digest,
                    j.size,
                    &mount_from,
                    Some(report),
                ) {
                    Ok(Outcome::Exists) => layer(progress, &j.short, "Layer already exists"),
                    Ok(Outcome::Mounted(from)) => {
                        layer(progress, &j.short, &format!("Mounted from {from}"))
                    }
                    Ok(Outcome::Pushed) => layer(progress, &j.short, "Pushed"),
                    Err(e) => {
                        stop.store(true, Ordering::Relaxed);
                        let mut f = failure.lock().unwrap_or_else(|e| e.into_inner());
                        if f.is_none() {
                            *f = Some(e);
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
    upload(
        &client,
        r,
        &store.blob_path(&id),
        &id,
        config.len() as u64,
        &mount_from,
        None,
    )?;

    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(
            if zstd {
                media_type::OCI_MANIFEST
            } else {
                media_type::DOCKER_MANIFEST
            }
            .to_string(),
        ),
        artifact_type: None,
        config: Descriptor::new(
            if zstd {
                media_type::OCI_CONFIG
            } else {
                media_type::DOCKER_CONFIG
            },
            id,
            config.len() as u64,
        ),
        layers: layers
            .iter()
            .map(|b| Descriptor::new(&layer_type(&b.media_type), b.digest, b.size))
            .collect(),
        subject: None,
        annotations: Default::default(),
    };
    let bytes = manifest.to_json();
    let digest = Digest::of(&bytes);
    let tag = r.tag.clone().unwrap_or_else(|| "latest".into());
    let url = client.url(&format!("{}/manifests/{tag}", r.api_repository_path()));
    let ct = manifest.media_type.clone().unwrap_or_default();
    let mut resp = client.request(
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
    let mut p = store.publish()?;
    p.add_repo_digest(&format!("{}@{digest}", r.name()), &id)?;
    p.commit()?;
    line(
        progress,
        &format!("{tag}: digest: {digest} size: {}", bytes.len()),
    );
    Ok(Pushed {
        digest,
        size: bytes.len() as u64,
    })
}
