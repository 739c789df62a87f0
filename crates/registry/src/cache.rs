//! Build cache through a registry (`build --cache-to/--cache-from type=registry,ref=REF`):
//! the same OCI index the local cache writes (one manifest per image of the build's parent
//! chains, annotated with the image and its parent), pushed under REF's tag. Every manifest
//! is pushed by digest before the index that names it. Configs are the store's own, so the
//! image IDs survive the trip; layers go up as `push` sends them (known blobs skipped or
//! mounted, the rest compressed while they upload). An import reads the index, verifies every
//! manifest and config against its digest and streams only the layers the store lacks,
//! verifying them while they unpack; nothing is published unless all of it checks out.

use std::collections::{HashMap, HashSet};
use std::io::Read;

use image::ExportOptions;
use oci::{media_type, Digest, Reference};
use store::Store;

use crate::auth::Credentials;
use crate::client::{Body, Client};
use crate::error::{Error, Result};
use crate::hosts::Hosts;
use crate::progress::{line, Progress};
use crate::pull::{check_status, fetch_manifest, read_small, BlobReader};
use crate::push::{expect, remote_blob, tag_of, Blob, LayerJob, Push};

/// Pushes the cache of the parent chains of `tops` to `r`, its layers going out as `opts`
/// says (blobs the registry is known to hold for them mounted or skipped); returns the index
/// digest.
pub fn push_cache(
    store: &Store,
    tops: &[Digest],
    r: &Reference,
    creds: Option<Credentials>,
    hosts: &Hosts,
    opts: &ExportOptions,
    progress: &(dyn Fn(Progress<'_>) + Sync),
) -> Result<Digest> {
    if r.digest.is_some() {
        return Err(Error::Manifest {
            what: r.familiar(),
            message: "a cache is pushed to a tag, not a digest".into(),
        });
    }
    let plan = image::plan_cache(store, tops)?;
    let jobs = plan
        .layers
        .iter()
        .map(|rec| LayerJob::new(store, rec, &r.registry, opts, &[]))
        .collect::<Result<Vec<_>>>()?;
    let push = Push::new(r, creds, hosts, &[], &jobs, progress);
    for (d, bytes) in &plan.configs {
        push.destination()
            .upload(&Blob::stored(store, *d, bytes.len() as u64), None)?;
    }
    let (blobs, uploaded) = push.upload_layers(&jobs, opts);
    for (diff_id, blob) in &blobs {
        store.add_remote_blob(&remote_blob(r, diff_id, blob))?;
    }
    uploaded?;
    let m = plan.manifests(&blobs.into_iter().collect::<HashMap<_, _>>())?;
    let repo = r.api_repository_path();
    for (d, bytes) in &m.manifests {
        put_manifest(
            &push.client,
            &format!("{repo}/manifests/{d}"),
            media_type::OCI_MANIFEST,
            bytes,
        )?;
    }
    let tag = tag_of(r);
    put_manifest(
        &push.client,
        &format!("{repo}/manifests/{tag}"),
        media_type::OCI_INDEX,
        &m.index,
    )?;
    let digest = Digest::of(&m.index);
    line(
        progress,
        &format!(
            "exported build cache of {} images to {}: digest: {digest}",
            plan.images(),
            r.familiar()
        ),
    );
    Ok(digest)
}

fn put_manifest(client: &Client, path: &str, media: &str, bytes: &[u8]) -> Result<()> {
    let url = client.url(path);
    let mut resp = client.request("PUT", &url, &[("Content-Type", media)], Body::Bytes(bytes))?;
    expect(&url, &mut resp, &[200, 201, 202])
}

/// Reads a cache's blobs from a registry.
struct RegistrySource<'a> {
    client: &'a Client,
    r: &'a Reference,
    manifests: HashSet<Digest>,
}

impl image::CacheSource for RegistrySource<'_> {
    fn read(&self, d: &Digest) -> image::Result<Vec<u8>> {
        let fail = |e: Error| image::Error::Archive(format!("cache {}: {e}", self.r.familiar()));
        if self.manifests.contains(d) {
            // fetch_manifest verifies the bytes against the digest it is asked for.
            return Ok(fetch_manifest(self.client, self.r, &d.to_string())
                .map_err(fail)?
                .0);
        }
        let url = self
            .client
            .url(&format!("{}/blobs/{d}", self.r.api_repository_path()));
        let mut resp = self
            .client
            .request("GET", &url, &[], Body::Empty)
            .map_err(fail)?;
        check_status(
            &url,
            &format!("blob {d}: blob unknown to registry"),
            &mut resp,
        )
        .map_err(fail)?;
        let bytes = read_small(&url, &mut resp).map_err(fail)?;
        let actual = Digest::of(&bytes);
        if actual != *d {
            return Err(fail(Error::DigestMismatch {
                what: format!("cache blob {url}"),
                expected: *d,
                actual,
            }));
        }
        Ok(bytes)
    }

    fn open(&self, d: &Digest) -> image::Result<Box<dyn Read + '_>> {
        let url = self
            .client
            .url(&format!("{}/blobs/{d}", self.r.api_repository_path()));
        Ok(Box::new(std::io::BufReader::with_capacity(
            1 << 20,
            BlobReader::new(self.client, url),
        )))
    }

    fn describe(&self, d: &Digest) -> String {
        format!("cache layer {d} from {}", self.r.familiar())
    }

    /// The cache's repository holds the blob: a push there (or a mount from there) of the
    /// same layer sends nothing.
    fn remote_blob(&self, diff_id: &Digest, blob: &store::BlobRef) -> Option<store::RemoteBlob> {
        (!blob.media_type.is_empty() && blob.size > 0).then(|| remote_blob(self.r, diff_id, blob))
    }
}

/// Brings the build cache at `r` into the store; returns how many images were new.
pub fn pull_cache(
    store: &mut Store,
    r: &Reference,
    creds: Option<Credentials>,
    hosts: &Hosts,
    progress: &(dyn Fn(Progress<'_>) + Sync),
) -> Result<usize> {
    let client = Client::new(&r.registry, creds, hosts);
    client.add_scope(&r.repository, "pull");
    let reference = r.api_reference();
    let (index, media, digest) = fetch_manifest(&client, r, &reference)?;
    if media != media_type::OCI_INDEX {
        return Err(Error::Manifest {
            what: r.familiar(),
            message: format!("not a build cache: media type {media:?}"),
        });
    }
    let parsed = oci::Index::from_slice(&index).map_err(|e| Error::Manifest {
        what: digest.to_string(),
        message: e.to_string(),
    })?;
    let src = RegistrySource {
        client: &client,
        r,
        manifests: parsed.manifests.iter().map(|m| m.digest).collect(),
    };
    let new = image::import_cache_from(store, &index, &src)?;
    line(
        progress,
        &format!(
            "imported build cache from {}: {} images, {new} new",
            r.familiar(),
            parsed.manifests.len()
        ),
    );
    Ok(new)
}
