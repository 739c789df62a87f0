//! `strata save [-o FILE] IMAGE…`

use std::io::{self, BufWriter, IsTerminal, Write};

use anyhow::Result;

use crate::cli::SaveArgs;
use crate::Failure;

pub fn run(root: &std::path::Path, a: SaveArgs) -> Result<()> {
    if let Some(p) = &a.output {
        super::validate_output_path(p, "failed to save image")?;
    }
    let store = super::open_store(root)?;
    let items = image::plan_save(&store, &a.images).map_err(super::daemon_failure)?;
    match &a.output {
        Some(path) => super::write_archive_file(
            path,
            super::cannot_create("failed to save image", path),
            |w| Ok(image::save(&store, &items, w)?),
        ),
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
