//! `strata volume create|inspect|ls|prune|rm`, with Docker 20.10's output and errors. The
//! volumes themselves are the container crate's.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::Path;

use anyhow::Result;
use serde_json::{json, Value};

use crate::cli::{
    VolumeArgs, VolumeCommand, VolumeCreateArgs, VolumeInspectArgs, VolumeLsArgs, VolumePruneArgs,
    VolumeRmArgs,
};
use crate::Failure;

const USAGE: &str = "
Usage:  strata volume COMMAND

Manage volumes

Commands:
  create      Create a volume
  inspect     Display detailed information on one or more volumes
  ls          List volumes
  prune       Remove all unused local volumes
  rm          Remove one or more volumes

Run 'strata volume COMMAND --help' for more information on a command.
";

pub fn run(root: &Path, a: VolumeArgs) -> Result<()> {
    match a.command {
        None => {
            // Docker prints it on standard error and exits 0.
            eprint!("{USAGE}");
            Ok(())
        }
        Some(VolumeCommand::Create(a)) => create(root, a),
        Some(VolumeCommand::Inspect(a)) => inspect(root, a),
        Some(VolumeCommand::Ls(a)) => ls(root, a),
        Some(VolumeCommand::Prune(a)) => prune(root, a),
        Some(VolumeCommand::Rm(a)) => rm(root, a),
    }
}

use super::container_failure as fail;

use super::key_values;

fn create(root: &Path, a: VolumeCreateArgs) -> Result<()> {
    let name =
        match (a.name_flag, a.name) {
            (Some(_), Some(_)) => return Err(Failure::bare(
                1,
                "conflicting options: either specify --name or provide positional arg, not both",
            )
            .into()),
            (a, b) => a.or(b),
        };
    let mut c = super::open_containers(root)?;
    let v = c
        .volume_create(&container::VolumeRequest {
            name,
            driver: Some(a.driver),
            labels: key_values(&a.labels),
            options: key_values(&a.opts),
        })
        .map_err(super::daemon_failure)?;
    println!("{}", v.name);
    Ok(())
}

fn inspect(root: &Path, a: VolumeInspectArgs) -> Result<()> {
    let c = super::open_containers(root)?;
    let template = match &a.format {
        Some(f) => Some(format::Template::parse(f).map_err(|e| Failure::bare(1, e.to_string()))?),
        None => None,
    };
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for n in &a.volumes {
        match c.volume(n) {
            Ok(v) => found.push(v.inspect()),
            // The CLI's own words for a missing object.
            Err(container::Error::Store(store::Error::VolumeNotFound(_))) => {
                errors.push(format!("No such volume: {n}"))
            }
            Err(e) => errors.push(e.to_string()),
        }
    }
    match &template {
        Some(t) => {
            for v in &found {
                println!(
                    "{}",
                    t.render(v).map_err(|e| Failure::bare(1, e.to_string()))?
                );
            }
        }
        None => println!("{}", oci::GoJson::INSPECT.to_string(&found)?),
    }
    if let Some(last) = errors.pop() {
        for e in &errors {
            eprintln!("Error: {e}");
        }
        return Err(Failure::new(1, last).into());
    }
    Ok(())
}

/// fvbommel/sortorder's `NaturalLess`, which Docker's CLI sorts volume names with: runs of
/// digits compare as numbers, digits before other characters.
pub fn natural_less(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        let (da, db) = (a[i].is_ascii_digit(), b[j].is_ascii_digit());
        if da != db {
            return da;
        }
        if !da {
            if a[i] != b[j] {
                return a[i] < b[j];
            }
            i += 1;
            j += 1;
            continue;
        }
        while i < a.len() && a[i] == b'0' {
            i += 1;
        }
        while j < b.len() && b[j] == b'0' {
            j += 1;
        }
        let (nz_a, nz_b) = (i, j);
        while i < a.len() && a[i].is_ascii_digit() {
            i += 1;
        }
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        let (la, lb) = (i - nz_a, j - nz_b);
        if la != lb {
            return la < lb;
        }
        if a[nz_a..i] != b[nz_b..j] {
            return a[nz_a..i] < b[nz_b..j];
        }
        if nz_a != nz_b {
            return nz_a < nz_b;
        }
    }
    a.len() < b.len()
}

fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    if natural_less(a, b) {
        std::cmp::Ordering::Less
    } else if natural_less(b, a) {
        std::cmp::Ordering::Greater
    } else {
        std::cmp::Ordering::Equal
    }
}

/// Whether a volume's labels match `label=KEY` or `label=KEY=VALUE`.
fn has_label(v: &container::Volume, want: &str) -> bool {
    match want.split_once('=') {
        Some((k, val)) => v.labels.get(k).is_some_and(|x| x == val),
        None => v.labels.contains_key(want),
    }
}

fn bad_filter(f: &str) -> anyhow::Error {
    Failure::new(1, format!("Invalid filter '{f}'")).into()
}

/// Why [`filter_volumes`] refused: Docker's `Invalid filter '…'` (the text between the
/// quotes), or the volumes could not be read.
pub(crate) enum FilterError {
    Invalid(String),
    Volumes(container::Error),
}

/// The volumes that pass every filter (`volume ls` and `GET /volumes`): values of one key
/// are alternatives (all of them for `label`), different keys all apply.
pub(crate) fn filter_volumes(
    c: &container::Containers,
    mut vols: Vec<container::Volume>,
    by_key: &BTreeMap<String, Vec<String>>,
) -> std::result::Result<Vec<container::Volume>, FilterError> {
    for (k, vals) in by_key {
        match k.as_str() {
            "dangling" => {
                let mut want = Vec::new();
                for v in vals {
                    want.push(match v.as_str() {
                        "true" | "1" => true,
                        "false" | "0" => false,
                        _ => return Err(FilterError::Invalid(format!("dangling=[{v}]"))),
                    });
                }
                let mut keep = Vec::new();
                for v in vols {
                    let users = c.volume_users(&v.name).map_err(FilterError::Volumes)?;
                    if want.contains(&users.is_empty()) {
                        keep.push(v);
                    }
                }
                vols = keep;
            }
            "name" => vols.retain(|v| vals.iter().any(|n| v.name.contains(n.as_str()))),
            "driver" => vols.retain(|v| vals.iter().any(|d| &v.driver == d)),
            "label" => vols.retain(|v| vals.iter().all(|l| has_label(v, l))),
            other => return Err(FilterError::Invalid(other.to_string())),
        }
    }
    Ok(vols)
}

fn ls(root: &Path, a: VolumeLsArgs) -> Result<()> {
    let c = super::open_containers(root)?;
    let vols = c.volumes().map_err(fail)?;
    // Filters of one name are alternatives (any may match); different names all apply.
    let mut by_key: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for f in &a.filters {
        let (k, v) = super::split_filter(f, "volume ls")?;
        by_key.entry(k.to_string()).or_default().push(v.to_string());
    }
    let mut vols = filter_volumes(&c, vols, &by_key).map_err(|e| match e {
        FilterError::Invalid(f) => bad_filter(&f),
        FilterError::Volumes(e) => fail(e),
    })?;
    vols.sort_by(|x, y| natural_cmp(&x.name, &y.name));
    let fmt = if a.quiet {
        "{{.Name}}".to_string()
    } else {
        a.format
            .clone()
            .unwrap_or_else(|| "table {{.Driver}}\t{{.Name}}".into())
    };
    let rows: Vec<Value> = vols
        .iter()
        .map(|v| {
            json!({
                "Name": v.name,
                "Driver": v.driver,
                "Scope": "local",
                "Mountpoint": v.mountpoint.display().to_string(),
                "Labels": v.labels.iter().map(|(k, x)| format!("{k}={x}")).collect::<Vec<_>>().join(","),
                "Links": "N/A",
                "Size": "N/A",
            })
        })
        .collect();
    let header = json!({
        "Name": "VOLUME NAME", "Driver": "DRIVER", "Scope": "SCOPE", "Mountpoint": "MOUNTPOINT",
        "Labels": "LABELS", "Links": "LINKS", "Size": "SIZE",
    });
    let lf = format::ListFormat::parse(&fmt).map_err(|e| Failure::new(1, e.to_string()))?;
    print!(
        "{}",
        lf.render(&header, &rows)
            .map_err(|e| Failure::new(1, e.to_string()))?
    );
    Ok(())
}

fn rm(root: &Path, a: VolumeRmArgs) -> Result<()> {
    let mut c = super::open_containers(root)?;
    let mut last: Option<String> = None;
    for n in &a.volumes {
        match c.volume_remove(n, a.force) {
            Ok(()) => println!("{n}"),
            Err(container::Error::Store(store::Error::VolumeNotFound(_))) => {
                if let Some(prev) = last.replace(format!("No such volume: {n}")) {
                    eprintln!("Error: {prev}");
                }
            }
            Err(e) => {
                if let Some(prev) = last.replace(e.to_string()) {
                    eprintln!("Error: {prev}");
                }
            }
        }
    }
    match last {
        Some(e) => Err(Failure::new(1, e).into()),
        None => Ok(()),
    }
}

fn prune(root: &Path, a: VolumePruneArgs) -> Result<()> {
    // Docker 20.10 prunes with `label=` and `label!=` filters only.
    let mut with = Vec::new();
    let mut without = Vec::new();
    for f in &a.filters {
        if let Some(l) = f.strip_prefix("label!=") {
            without.push(l.to_string());
        } else if let Some(l) = f.strip_prefix("label=") {
            with.push(l.to_string());
        } else {
            let k = f.split_once('=').map_or(f.as_str(), |(k, _)| k);
            return Err(bad_filter(k));
        }
    }
    if !a.force {
        print!("WARNING! This will remove all local volumes not used by at least one container.\nAre you sure you want to continue? [y/N] ");
        io::stdout().flush()?;
        let mut line = String::new();
        io::stdin().read_line(&mut line)?;
        if !matches!(line.trim(), "y" | "Y" | "yes") {
            return Ok(());
        }
    }
    let mut c = super::open_containers(root)?;
    let (removed, total) = c
        .volume_prune(|v| {
            !with.iter().all(|l| has_label(v, l)) || without.iter().any(|l| has_label(v, l))
        })
        .map_err(fail)?;
    if !removed.is_empty() {
        println!("Deleted Volumes:");
        for n in &removed {
            println!("{n}");
        }
        println!();
    }
    println!("Total reclaimed space: {}", format::human_size_4(total));
    Ok(())
}

/// What `system df` shows of volumes: (name, links, size) in Docker's order, and the
/// summary line's values.
pub fn disk_usage(root: &Path) -> Result<Vec<(String, usize, u64)>> {
    let c = super::open_containers(root)?;
    let mut out = Vec::new();
    for v in c.volumes().map_err(fail)? {
        let links = c.volume_users(&v.name).map_err(fail)?.len();
        let size = c.volume_size(&v);
        out.push((v.name, links, size));
    }
    out.sort_by(|x, y| natural_cmp(&x.0, &y.0));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::natural_less;

    #[test]
    fn names_sort_naturally() {
        let mut v = vec![
            "156a", "0477b", "87f2", "d406", "1cde", "0da8", "vn1", "509637",
        ];
        v.sort_by(|a, b| super::natural_cmp(a, b));
        assert_eq!(
            v,
            ["0da8", "1cde", "87f2", "156a", "0477b", "509637", "d406", "vn1"]
        );
        assert!(natural_less("a2", "a10"));
        assert!(!natural_less("a", "a"));
    }
}
