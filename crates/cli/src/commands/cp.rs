//! `strata cp`.

use std::path::Path;

use anyhow::Result;

use crate::cli::CpArgs;

pub fn run(_root: &Path, _a: CpArgs) -> Result<()> {
    anyhow::bail!("not yet")
}
