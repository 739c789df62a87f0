//! `strata system df [-v]`

use anyhow::Result;

use crate::cli::DfArgs;

fn with_percent(reclaimable: u64, total: u64) -> String {
    if total == 0 {
        return format::human_size_4(reclaimable);
    }
    format!(
        "{} ({}%)",
        format::human_size_4(reclaimable),
        reclaimable * 100 / total
    )
}

pub fn run(root: &std::path::Path, a: DfArgs) -> Result<()> {
    let store = super::open_store(root)?;
    let du = image::disk_usage(&store)?;
    // Containers: how many, how many run, their writable layers, those of stopped ones.
    let c = super::open_containers(root)?;
    let rows = c.summaries(true)?;
    let active = rows.iter().filter(|r| r.running).count();
    let c_size: u64 = rows.iter().map(|r| r.size_rw.unwrap_or(0)).sum();
    let c_free: u64 = rows
        .iter()
        .filter(|r| !r.running)
        .map(|r| r.size_rw.unwrap_or(0))
        .sum();
    // Images in use: those containers were made from (Docker's CONTAINERS column), and
    // what removing the others would free: everything but the unique size of those in use.
    let mut per_image: std::collections::HashMap<String, u64> = Default::default();
    for r in &rows {
        *per_image.entry(r.record.image_id.to_string()).or_default() += 1;
    }
    let image_rows = image::image_rows(&store, true)?;
    let in_use = |id: &oci::Digest| per_image.get(&id.to_string()).copied().unwrap_or(0);
    let used: u64 = image_rows
        .iter()
        .filter(|r| in_use(&r.id) > 0)
        .map(|r| r.size.saturating_sub(r.shared_size))
        .sum();
    let active_images = image_rows
        .iter()
        .map(|r| r.id.to_string())
        .collect::<std::collections::HashSet<_>>()
        .iter()
        .filter(|id| per_image.contains_key(*id))
        .count();
    let volumes = super::volume::disk_usage(root)?;
    let volumes_size: u64 = volumes.iter().map(|v| v.2).sum();
    let unused: u64 = volumes.iter().filter(|v| v.1 == 0).map(|v| v.2).sum();
    let (n, size) = build_cache_usage(root);
    let row = |t: &str, total: String, active: String, size: String, rec: String| {
        serde_json::json!({
            "Type": t, "TotalCount": total, "Active": active, "Size": size, "Reclaimable": rec,
        })
    };
    let values = vec![
        row(
            "Images",
            du.images.to_string(),
            active_images.to_string(),
            format::human_size_4(du.images_size),
            with_percent(du.images_size.saturating_sub(used), du.images_size),
        ),
        row(
            "Containers",
            rows.len().to_string(),
            active.to_string(),
            format::human_size_4(c_size),
            with_percent(c_free, c_size),
        ),
        row(
            "Local Volumes",
            volumes.len().to_string(),
            volumes.iter().filter(|v| v.1 > 0).count().to_string(),
            format::human_size_4(volumes_size),
            with_percent(unused, volumes_size),
        ),
        row(
            "Build Cache",
            n.to_string(),
            "0".into(),
            format::human_size_4(size),
            format::human_size_4(size),
        ),
    ];
    if let Some(f) = &a.format {
        let header = serde_json::json!({
            "Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE", "Size": "SIZE",
            "Reclaimable": "RECLAIMABLE",
        });
        let lf = format::ListFormat::parse(f).map_err(|e| crate::Failure::new(1, e.to_string()))?;
        let out = lf
            .render(&header, &values)
            .map_err(|e| crate::Failure::new(1, e.to_string()))?;
        print!("{out}");
        return Ok(());
    }
    let mut t = format::Table::new(&["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]);
    for v in &values {
        t.push(
            ["Type", "TotalCount", "Active", "Size", "Reclaimable"]
                .map(|k| v[k].as_str().unwrap_or("").to_string()),
        );
    }
    if !a.verbose {
        print!("{}", t.render());
        return Ok(());
    }
    println!("Images space usage:\n");
    let mut it = format::Table::new(&[
        "REPOSITORY",
        "TAG",
        "IMAGE ID",
        "CREATED",
        "SIZE",
        "SHARED SIZE",
        "UNIQUE SIZE",
        "CONTAINERS",
    ]);
    let now = chrono::Utc::now().timestamp() as f64;
    for r in &image_rows {
        let created = super::history::parse_time(&r.created)
            .map(|c| format::human_ago(c.timestamp() as f64, now))
            .unwrap_or_default();
        it.push([
            r.repository.clone().unwrap_or_else(|| "<none>".into()),
            r.tag.clone().unwrap_or_else(|| "<none>".into()),
            r.id.short(),
            created,
            format::human_size_4(r.size),
            format::human_size_4(r.shared_size),
            format::human_size_4(r.size.saturating_sub(r.shared_size)),
            in_use(&r.id).to_string(),
        ]);
    }
    print!("{}", it.render());
    println!("\nContainers space usage:\n");
    print!(
        "{}",
        format::Table::new(&[
            "CONTAINER ID",
            "IMAGE",
            "COMMAND",
            "LOCAL VOLUMES",
            "SIZE",
            "CREATED",
            "STATUS",
            "NAMES"
        ])
        .render()
    );
    println!("\nLocal Volumes space usage:\n");
    let mut vt = format::Table::new(&["VOLUME NAME", "LINKS", "SIZE"]);
    for (name, links, size) in &volumes {
        vt.push([name.clone(), links.to_string(), format::human_size_4(*size)]);
    }
    print!("{}", vt.render());
    println!("\nBuild cache usage: {}\n", format::human_size_4(size));
    print!(
        "{}",
        format::Table::new(&[
            "CACHE ID",
            "CACHE TYPE",
            "SIZE",
            "CREATED",
            "LAST USED",
            "USAGE",
            "SHARED"
        ])
        .render()
    );
    Ok(())
}

/// `RUN --mount=type=cache` directories: how many, and their size.
pub fn build_cache_usage(root: &std::path::Path) -> (usize, u64) {
    let dir = store::Layout::new(root).build_cache();
    let Ok(rd) = std::fs::read_dir(&dir) else {
        return (0, 0);
    };
    let mut n = 0;
    let mut size = 0;
    for e in rd.flatten() {
        n += 1;
        size += layer::diff_size(&e.path()).unwrap_or(0);
    }
    (n, size)
}

/// Removes the `RUN --mount=type=cache` directories, the context hash cache and the build
/// records (what explains cache misses, `builder history`: rows of the database, whose file
/// does not shrink, so they count for no reclaimed space).
pub fn clear_build_cache(root: &std::path::Path) -> Result<()> {
    let dir = store::Layout::new(root).build_cache();
    if let Ok(rd) = std::fs::read_dir(&dir) {
        for e in rd.flatten() {
            std::fs::remove_dir_all(e.path())?;
        }
    }
    // The context hash cache only saves reading files again; it goes too.
    if let Ok(rd) = std::fs::read_dir(store::Layout::new(root).build_hashes()) {
        for e in rd.flatten() {
            let _ = std::fs::remove_file(e.path());
        }
    }
    super::open_store(root)?.clear_build_records()?;
    Ok(())
}
