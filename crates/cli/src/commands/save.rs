//! `strata save [-o FILE] IMAGE…`

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};

use anyhow::{Context, Result};

use crate::cli::SaveArgs;
use crate::Failure;

pub fn run(root: &std::path::Path, a: SaveArgs) -> Result<()> {
    if let Some(p) = &a.output {
        super::validate_output_path(p, "failed to save image")?;
    }
    let store = super::open_store(root)?;
    let items = image::plan_save(&store, &a.images).map_err(super::daemon_failure)?;
    match &a.output {
        Some(path) => {
            // A FIFO (`-o /dev/stdout` of a pipe) is written to, never synced, replaced or
            // removed; only a regular file is made durable, and removed again when the save
            // fails. (Devices are refused above, as Docker's CLI does.)
            let regular = match std::fs::metadata(path) {
                Ok(m) => m.is_file(),
                Err(_) => true,
            };
            let f = File::create(path)
                .with_context(|| format!("failed to save image: create {}", path.display()))?;
            let res = if regular {
                // Written with O_DIRECT: the archive must reach the disk before `save`
                // ends, and a copy in the page cache would only slow that down.
                (|| -> Result<()> {
                    let mut w = layer::DirectFile::new(f)?;
                    image::save(&store, &items, &mut w)?;
                    w.finish()?.sync_all()?;
                    Ok(())
                })()
            } else {
                let mut w = BufWriter::with_capacity(1 << 20, f);
                image::save(&store, &items, &mut w)
                    .map_err(anyhow::Error::from)
                    .and_then(|_| Ok(w.flush()?))
            };
            if res.is_err() && regular {
                // Never leave a half-written archive under the name the user gave.
                let _ = std::fs::remove_file(path);
            }
            res
        }
        None => {
            if io::stdout().is_terminal() {
                return Err(Failure::new(
                    1,
                    "cowardly refusing to save to a terminal. Use the -o flag or redirect",
                )
                .into());
            }
            let mut out = BufWriter::with_capacity(1 << 20, io::stdout().lock());
            image::save(&store, &items, &mut out)?;
            out.flush()?;
            Ok(())
        }
    }
}
