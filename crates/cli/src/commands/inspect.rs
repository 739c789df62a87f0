//! `strata inspect [-f FORMAT] NAME…` (images; containers join when they exist).

use anyhow::Result;

use crate::cli::InspectArgs;
use crate::Failure;

pub fn run(root: &std::path::Path, a: InspectArgs, image_only: bool) -> Result<()> {
    let store = super::open_store(root)?;
    let template = match &a.format {
        Some(f) => Some(format::Template::parse(f).map_err(|e| Failure::bare(1, e.to_string()))?),
        None => None,
    };
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for name in &a.names {
        let id = match image::resolve(&store, name) {
            Ok(id) => id,
            Err(image::Error::NoSuchImage(_)) => {
                errors.push(if image_only {
                    format!("No such image: {name}")
                } else {
                    format!("No such object: {name}")
                });
                continue;
            }
            Err(e) => {
                errors.push(e.to_string());
                continue;
            }
        };
        found.push(image::inspect(&store, &id)?);
    }
    match &template {
        Some(t) => {
            for obj in &found {
                let v = serde_json::to_value(obj)?;
                let out = t.render(&v).map_err(|e| Failure::bare(1, e.to_string()))?;
                println!("{out}");
            }
        }
        None => {
            let text = oci::GoJson::INSPECT.to_string(&found)?;
            println!("{text}");
        }
    }
    if !errors.is_empty() {
        for e in &errors[..errors.len() - 1] {
            eprintln!("Error: {e}");
        }
        return Err(Failure::new(1, errors.last().cloned().unwrap_or_default()).into());
    }
    Ok(())
}
