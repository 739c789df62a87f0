//! `strata images` and `strata tag`.

use anyhow::Result;

use crate::cli::TagArgs;

pub fn tag(root: &std::path::Path, a: TagArgs) -> Result<()> {
    let mut store = super::open_store(root)?;
    image::tag(&mut store, &a.source, &a.target)?;
    Ok(())
}
