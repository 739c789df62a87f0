//! `strata import [-c INSTRUCTION]… [-m MESSAGE] FILE|- [REPOSITORY[:TAG]]`

use std::fs::File;
use std::io;

use anyhow::Result;

use super::progress::ProgressReader;
use crate::cli::ImportArgs;

pub fn run(root: &std::path::Path, a: ImportArgs) -> Result<()> {
    let tag = a.reference.as_deref().map(image::parse_name).transpose()?;
    if a.file.contains("://") {
        anyhow::bail!(
            "importing from a URL is not supported: download the tarball and import the file"
        );
    }
    let mut store = super::open_store(root)?;
    let opts = image::ImportOptions {
        changes: &a.changes,
        message: a.message.as_deref(),
        source: "-",
        tag: tag.as_ref(),
    };
    let id = if a.file == "-" {
        let input = ProgressReader::new(io::stdin().lock(), "Importing", None);
        image::import(&mut store, input, &opts).map_err(daemon_change)?
    } else {
        let f = File::open(&a.file).map_err(|e| super::open_failure(a.file.as_ref(), &e))?;
        let total = f.metadata().ok().map(|m| m.len());
        image::import(
            &mut store,
            ProgressReader::new(f, "Importing", total),
            &opts,
        )
        .map_err(daemon_change)?
    };
    println!("{id}");
    Ok(())
}

/// A refused `--change` is the daemon's answer in Docker.
fn daemon_change(e: image::Error) -> anyhow::Error {
    match e {
        e @ image::Error::Change { .. } => crate::Failure::daemon(1, e).into(),
        e => e.into(),
    }
}
