//! `strata rmi [-f] [--no-prune] IMAGE…` and `strata image prune [-a] [-f]`

use anyhow::Result;

use crate::cli::{PruneArgs, RmiArgs};
use crate::Failure;

pub fn run(root: &std::path::Path, a: RmiArgs) -> Result<()> {
    let mut store = super::open_store(root)?;
    let opts = image::RemoveOptions {
        force: a.force,
        no_prune: a.no_prune,
    };
    let mut failed = false;
    for name in &a.images {
        match image::remove(&mut store, name, opts) {
            Ok(lines) => lines.iter().for_each(|l| println!("{l}")),
            // Docker's client words a missing image itself; the rest is the daemon's.
            Err(e) if e.to_string().starts_with("No such image") => {
                eprintln!("Error: {e}");
                failed = true;
            }
            Err(e) => {
                eprintln!("Error response from daemon: {e}");
                failed = true;
            }
        }
    }
    if failed {
        return Err(Failure::new(1, "").into());
    }
    Ok(())
}

pub fn prune(root: &std::path::Path, a: PruneArgs) -> Result<()> {
    let _ = a.force; // strata never prompts.
    let filters = super::PruneFilters::parse(&a.filters, "image prune")?;
    let mut store = super::open_store(root)?;
    let (lines, reclaimed) = super::system::prune_images(&mut store, a.all, &filters)?;
    if !lines.is_empty() {
        println!("Deleted Images:");
        lines.iter().for_each(|l| println!("{l}"));
        println!();
    }
    store::events::record(
        &store,
        store::events::Event::image("prune", "").attr("reclaimed", reclaimed.to_string()),
    );
    println!("Total reclaimed space: {}", format::human_size_4(reclaimed));
    Ok(())
}
