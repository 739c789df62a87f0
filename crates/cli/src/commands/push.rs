//! `strata push [-q] [-a] [--compression gzip|zstd|uncompressed] [--compression-level N]
//! [--force-compression] [--oci-mediatypes] NAME[:TAG]`

use anyhow::Result;

use crate::cli::PushArgs;
use crate::Failure;

/// BuildKit's exporter options (`compression`, `compression-level`, `force-compression`,
/// `oci-mediatypes`), as `push` flags or `--cache-to` fields; a bad value exits 125.
pub fn export_options(
    compression: &str,
    level: Option<&str>,
    force_compression: bool,
    oci_mediatypes: bool,
) -> Result<image::ExportOptions> {
    let usage = |m: String| -> anyhow::Error { Failure::new(125, m).into() };
    let c = layer::Compression::from_name(compression).ok_or_else(|| {
        usage(format!(
            "unsupported compression type {compression}: use gzip, zstd or uncompressed"
        ))
    })?;
    let level = level
        .map(|l| {
            l.parse::<i32>()
                .map_err(|_| usage(format!("invalid compression level {l:?}")))
        })
        .transpose()?;
    let compress = layer::CompressOptions::new(c, level).map_err(|e| usage(e.to_string()))?;
    Ok(image::ExportOptions {
        compress,
        force_compression,
        oci_mediatypes,
    })
}

/// A `true`/`false` field of a BuildKit option list.
pub fn bool_field(key: &str, v: &str) -> Result<bool> {
    v.parse::<bool>().map_err(|_| {
        Failure::new(
            125,
            format!("invalid value {v:?} for {key}: use true or false"),
        )
        .into()
    })
}

pub fn run(root: &std::path::Path, a: PushArgs) -> Result<()> {
    let opts = export_options(
        &a.compression,
        a.compression_level.as_deref(),
        a.force_compression,
        a.oci_mediatypes,
    )?;
    let r = image::parse_name(&a.name)?;
    if r.digest.is_some() {
        anyhow::bail!("cannot push a digest reference");
    }
    let explicit_tag = a.name.rsplit('/').next().is_some_and(|l| l.contains(':'));
    if a.all_tags && explicit_tag {
        anyhow::bail!("tag can't be used with --all-tags/-a");
    }
    let mut store = super::open_store(root)?;
    let hosts = &crate::settings::get().hosts;
    let creds = registry::load_credentials(&hosts.config_file, &r.registry)?;
    let quiet = a.quiet;
    let progress = super::pull::reporter(quiet);
    let refs = if a.all_tags {
        // Every local tag of the repository, in order, as Docker pushes them.
        let tags = registry::local_tags(&store, &r)?;
        if tags.is_empty() {
            anyhow::bail!(
                "An image does not exist locally with the tag: {}",
                r.repository_familiar()
            );
        }
        tags
    } else {
        if !quiet && !explicit_tag {
            println!("Using default tag: latest");
        }
        vec![r.clone()]
    };
    for r in &refs {
        // Docker's client prints a push's errors (they come in its progress stream) bare.
        let pushed = registry::push(&mut store, r, creds.clone(), hosts, &opts, &progress)
            .map_err(|e| Failure::bare(1, format!("{:#}", anyhow::Error::from(e))))?;
        if quiet {
            println!("{}@{}", r.name(), pushed.digest);
        }
    }
    Ok(())
}
