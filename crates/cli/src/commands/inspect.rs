//! `strata inspect [-f FORMAT] [-s] [--type image|container] NAME…`: images, then
//! containers (`container inspect` and `image inspect` look at one kind only).

use anyhow::Result;
use serde_json::Value;

use crate::cli::InspectArgs;
use crate::Failure;

/// Which objects a name may refer to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Any,
    Image,
    Container,
}

pub fn run(root: &std::path::Path, a: InspectArgs, image_only: bool) -> Result<()> {
    run_kind(root, a, if image_only { Kind::Image } else { Kind::Any })
}

pub fn run_kind(root: &std::path::Path, a: InspectArgs, kind: Kind) -> Result<()> {
    let kind = match (kind, a.kind.as_deref()) {
        (Kind::Any, Some("image")) => Kind::Image,
        (Kind::Any, Some("container")) => Kind::Container,
        (Kind::Any, Some(other)) => {
            return Err(
                Failure::new(1, format!("\"{other}\" is not a valid value for --type")).into(),
            )
        }
        (k, _) => k,
    };
    let containers = if kind == Kind::Image {
        None
    } else {
        Some(super::open_containers(root)?)
    };
    let store = super::open_store(root)?;
    // Docker CLI 23+: `--format json` prints the objects as one compact JSON array.
    let compact = a.format.as_deref().map(str::trim) == Some("json");
    let template = match &a.format {
        Some(_) if compact => None,
        Some(f) => Some(format::Template::parse(f).map_err(|e| Failure::bare(1, e.to_string()))?),
        None => None,
    };
    let mut found: Vec<Value> = Vec::new();
    let mut errors = Vec::new();
    for name in &a.names {
        if kind != Kind::Container {
            match image::resolve(&store, name) {
                Ok(id) => {
                    found.push(serde_json::to_value(image::inspect(&store, &id)?)?);
                    continue;
                }
                Err(image::Error::NoSuchImage(_)) | Err(image::Error::InvalidReference(_)) => {}
                Err(e) => {
                    errors.push(e.to_string());
                    continue;
                }
            }
        }
        if let Some(c) = &containers {
            if let Some(v) = super::container::inspect_value(c, name, a.size)? {
                found.push(v);
                continue;
            }
        }
        errors.push(match kind {
            Kind::Image => format!("No such image: {name}"),
            Kind::Container => format!("No such container: {name}"),
            Kind::Any => format!("No such object: {name}"),
        });
    }
    match &template {
        Some(t) => {
            for v in &found {
                let out = t.render(v).map_err(|e| Failure::bare(1, e.to_string()))?;
                println!("{out}");
            }
        }
        None if compact => println!("{}", oci::GoJson::MARSHAL.to_string(&found)?),
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
