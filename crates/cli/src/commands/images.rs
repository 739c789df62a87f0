//! `strata images [-a] [-q] [--digests] [--no-trunc] [--format] [--filter] [REPOSITORY[:TAG]]`
//! and `strata tag`.

use anyhow::Result;
use serde_json::{json, Value};

use crate::cli::{ImagesArgs, TagArgs};
use crate::Failure;

pub fn tag(root: &std::path::Path, a: TagArgs) -> Result<()> {
    let mut store = super::open_store(root)?;
    // Docker's client parses the new name before it asks the daemon.
    if let Err(image::Error::InvalidReference(m)) = image::parse_name(&a.target) {
        return Err(Failure::bare(
            1,
            format!(
                "Error parsing reference: {:?} is not a valid repository/tag: {m}",
                a.target
            ),
        )
        .into());
    }
    image::tag(&mut store, &a.source, &a.target).map_err(|e| match e {
        e @ image::Error::NoSuchImage(_) => super::image_failure(&a.source, e),
        image::Error::InvalidReference(m) => Failure::bare(1, m).into(),
        e => e.into(),
    })?;
    Ok(())
}

/// `--filter NAME=VALUE` as Docker's client reads it: the name lower-cased, both trimmed;
/// without `=` a usage error (exit 125).
fn parse_filters(list: &[String]) -> Result<Vec<(String, String)>> {
    list.iter()
        .map(|f| match f.split_once('=') {
            Some((k, v)) => Ok((k.trim().to_lowercase(), v.trim().to_string())),
            None => Err(Failure::bare(
                125,
                format!(
                    "invalid argument \"{f}\" for \"-f, --filter\" flag: bad format of filter \
                     (expected name=value)\nSee 'strata images --help'."
                ),
            )
            .into()),
        })
        .collect()
}

pub fn list(root: &std::path::Path, a: ImagesArgs) -> Result<()> {
    if a.tree {
        return tree(root);
    }
    let pairs = parse_filters(&a.filters)?;
    let store = super::open_store(root)?;
    let mut filters = image::ImageFilters::new(&pairs)?;
    if let Some(r) = &a.reference {
        filters.add_reference(r);
    }
    let rows = image::list_images(&store, a.all, &filters)?;
    let now = chrono::Utc::now().timestamp_micros() as f64 / 1e6;
    let values: Vec<Value> = rows
        .iter()
        .map(|r| {
            let created = super::history::parse_time(&r.created);
            json!({
                "ID": if a.no_trunc { r.id.to_string() } else { r.id.short() },
                "Repository": r.repository.clone().unwrap_or_else(|| "<none>".into()),
                "Tag": r.tag.clone().unwrap_or_else(|| "<none>".into()),
                "Digest": r.digest.clone().unwrap_or_else(|| "<none>".into()),
                "CreatedSince": created.map(|c| format::human_ago(c.timestamp() as f64, now)).unwrap_or_else(|| "N/A".into()),
                "CreatedAt": created.map(|c| c.format("%Y-%m-%d %H:%M:%S +0000 UTC").to_string()).unwrap_or_default(),
                "Size": format::human_size(r.size),
                // Docker's list leaves the shared sizes out (-1: N/A); only `system df -v`
                // computes them. VirtualSize has four significant digits there.
                "VirtualSize": format::human_size_4(r.size),
                "SharedSize": "N/A",
                "UniqueSize": "N/A",
                "Containers": "N/A",
            })
        })
        .collect();
    let fmt = if a.quiet {
        "{{.ID}}".to_string()
    } else if let Some(f) = &a.format {
        f.clone()
    } else if a.digests {
        "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}".into()
    } else {
        "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}".into()
    };
    let header = json!({
        "ID": "IMAGE ID", "Repository": "REPOSITORY", "Tag": "TAG", "Digest": "DIGEST",
        "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE", "VirtualSize": "VIRTUAL SIZE",
        "SharedSize": "SHARED SIZE", "UniqueSize": "UNIQUE SIZE", "Containers": "CONTAINERS",
    });
    let lf = format::ListFormat::parse(&fmt).map_err(|e| Failure::bare(1, e.to_string()))?;
    print!(
        "{}",
        lf.render(&header, &values)
            .map_err(|e| Failure::bare(1, e.to_string()))?
    );
    Ok(())
}

/// `images --tree`: every layer under the layer below it, with the images whose top layer
/// it is, drawn as `tree` draws directories.
fn tree(root: &std::path::Path) -> Result<()> {
    let store = super::open_store(root)?;
    let (roots, empty) = image::layer_tree(&store)?;
    let mut out = String::new();
    draw_layers(&roots, "", true, &mut out);
    for img in &empty {
        out.push_str(&format!("(no layers)  {}\n", image_names(img)));
    }
    print!("{out}");
    Ok(())
}

fn image_names((id, names): &(oci::Digest, Vec<String>)) -> String {
    let names = if names.is_empty() {
        "<none>".to_string()
    } else {
        names.join(", ")
    };
    format!("{names} ({})", id.short())
}

fn draw_layers(layers: &[image::TreeLayer], prefix: &str, top: bool, out: &mut String) {
    for (i, l) in layers.iter().enumerate() {
        let last = i + 1 == layers.len();
        let (here, below) = match (top, last) {
            (true, _) => ("", String::new()),
            (false, true) => ("└── ", format!("{prefix}    ")),
            (false, false) => ("├── ", format!("{prefix}│   ")),
        };
        out.push_str(&format!(
            "{prefix}{here}{}  {}",
            l.diff_id.short(),
            format::human_size(l.size)
        ));
        for img in &l.images {
            out.push_str(&format!("  {}", image_names(img)));
        }
        out.push('\n');
        draw_layers(&l.children, &below, false, out);
    }
}
