//! `strata push [-q] NAME[:TAG]`

use anyhow::Result;

use crate::cli::PushArgs;

pub fn run(root: &std::path::Path, a: PushArgs) -> Result<()> {
    let r = image::parse_name(&a.name)?;
    if r.digest.is_some() {
        anyhow::bail!("cannot push a digest reference");
    }
    let mut store = super::open_store(root)?;
    let creds = registry::load_credentials(&r.registry)?;
    let quiet = a.quiet;
    let progress = super::pull::reporter(quiet);
    if !quiet && !a.name.rsplit('/').next().is_some_and(|l| l.contains(':')) {
        println!("Using default tag: latest");
    }
    let pushed = registry::push(&mut store, &r, creds, &progress)?;
    if quiet {
        println!("{}@{}", r.name(), pushed.digest);
    }
    Ok(())
}
