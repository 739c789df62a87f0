//! `strata push [-q] [-a] NAME[:TAG]`

use anyhow::Result;

use crate::cli::PushArgs;

pub fn run(root: &std::path::Path, a: PushArgs) -> Result<()> {
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
        let prefix = format!("{}:", r.name());
        let mut tags: Vec<String> = store
            .images()?
            .into_iter()
            .flat_map(|i| i.tags)
            .filter(|t| t.starts_with(&prefix))
            .collect();
        tags.sort();
        if tags.is_empty() {
            anyhow::bail!(
                "An image does not exist locally with the tag: {}",
                r.repository_familiar()
            );
        }
        tags.iter()
            .map(|t| image::parse_name(t))
            .collect::<Result<Vec<_>, _>>()?
    } else {
        if !quiet && !explicit_tag {
            println!("Using default tag: latest");
        }
        vec![r.clone()]
    };
    for r in &refs {
        let pushed = registry::push(&mut store, r, creds.clone(), hosts, &progress)?;
        if quiet {
            println!("{}@{}", r.name(), pushed.digest);
        }
    }
    Ok(())
}
