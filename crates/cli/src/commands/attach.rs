//! `strata attach`.

use std::path::Path;

use anyhow::Result;

use crate::cli::AttachArgs;

pub fn run(_root: &Path, _a: AttachArgs) -> Result<()> {
    anyhow::bail!("not yet")
}
