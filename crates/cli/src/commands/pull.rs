//! `strata pull [-q] [-a] [--platform P] NAME[:TAG|@DIGEST]`

use std::io::Write;

use anyhow::Result;

use crate::cli::PullArgs;

/// Prints progress lines as they come (from several download threads at once).
fn printer(quiet: bool) -> impl Fn(&str) + Sync {
    move |line: &str| {
        if !quiet {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
    }
}

pub fn run(root: &std::path::Path, a: PullArgs) -> Result<()> {
    let r = image::parse_name(&a.name)?;
    if a.all_tags
        && (r.digest.is_some() || a.name.rsplit('/').next().is_some_and(|l| l.contains(':')))
    {
        anyhow::bail!("tag can't be used with --all-tags/-a");
    }
    let mut store = super::open_store(root)?;
    let creds = registry::load_credentials(&r.registry)?;
    let opts = registry::PullOptions {
        platform: a.platform.clone(),
        concurrency: None,
    };
    let progress = printer(a.quiet);
    if !a.all_tags
        && r.tag.is_some()
        && !a.name.rsplit('/').next().is_some_and(|l| l.contains(':'))
        && !a.quiet
    {
        println!("Using default tag: latest");
    }
    let refs = if a.all_tags {
        registry::list_tags(&r, creds.clone())?
            .into_iter()
            .map(|t| r.with_tag(&t))
            .collect::<Result<Vec<_>, _>>()?
    } else {
        vec![r.clone()]
    };
    for r in &refs {
        registry::pull(&mut store, r, creds.clone(), &opts, &progress)?;
    }
    if a.all_tags {
        if !a.quiet {
            println!(
                "Status: Downloaded newer images for {}",
                r.repository_familiar()
            );
        }
        println!("{}", r.name());
    } else {
        println!("{r}");
    }
    Ok(())
}
