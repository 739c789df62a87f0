//! `strata rm`, `stop`, `kill`, `wait`, `logs`, `diff`, `commit`, `export`, `container
//! inspect` and `container prune`: thin wrappers over the container crate.

use std::io::{self, IsTerminal, Read, Write};
use std::path::Path;

use anyhow::Result;

use crate::cli::{
    CommitArgs, ContainerArg, ContainersArgs, ExportArgs, InspectArgs, KillArgs, LogsArgs,
    PruneArgs, RenameArgs, RmArgs, StopArgs,
};
use crate::Failure;

/// Runs `f` on each name, printing the name on success; Docker's error handling: every
/// error printed, exit 1 when any failed.
fn each(
    names: &[String],
    mut f: impl FnMut(&str) -> container::Result<Option<String>>,
) -> Result<()> {
    let mut last: Option<String> = None;
    for n in names {
        match f(n) {
            Ok(Some(line)) => println!("{line}"),
            Ok(None) => {}
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

pub fn rm(root: &Path, a: RmArgs) -> Result<()> {
    let mut c = super::open_containers(root)?;
    each(&a.containers, |n| {
        c.remove(n, a.force).map(|_| Some(n.to_string()))
    })
}

pub fn stop(root: &Path, a: StopArgs) -> Result<()> {
    let mut c = super::open_containers(root)?;
    each(&a.containers, |n| {
        c.stop(n, a.time).map(|_| Some(n.to_string()))
    })
}

pub fn kill(root: &Path, a: KillArgs) -> Result<()> {
    let mut c = super::open_containers(root)?;
    each(&a.containers, |n| {
        c.kill(n, &a.signal).map(|_| Some(n.to_string()))
    })
}

pub fn wait(root: &Path, a: ContainersArgs) -> Result<()> {
    let mut c = super::open_containers(root)?;
    each(&a.containers, |n| {
        c.wait(n).map(|code| Some(code.to_string()))
    })
}

pub fn logs(root: &Path, a: LogsArgs) -> Result<()> {
    let c = super::open_containers(root)?;
    let rec = c.find(&a.container)?;
    let path = c.log_path(&rec.id);
    let mut f = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(_) => return Ok(()),
    };
    let mut out = io::stdout().lock();
    if a.tail != "all" {
        let n: usize = a
            .tail
            .parse()
            .map_err(|_| Failure::new(1, format!("invalid value for --tail: {}", a.tail)))?;
        let mut all = Vec::new();
        f.read_to_end(&mut all)?;
        let mut start = all.len();
        let mut seen = 0;
        // Skip a final newline, then walk back over n line breaks.
        let end = if all.last() == Some(&b'\n') {
            all.len() - 1
        } else {
            all.len()
        };
        for i in (0..end).rev() {
            if all[i] == b'\n' {
                seen += 1;
                if seen == n {
                    start = i + 1;
                    break;
                }
            }
            start = i;
        }
        if n == 0 {
            start = all.len();
        }
        out.write_all(&all[start..])?;
    }
    let mut buf = vec![0u8; 65536];
    loop {
        let n = f.read(&mut buf)?;
        if n > 0 {
            out.write_all(&buf[..n])?;
            continue;
        }
        if !a.follow {
            break;
        }
        out.flush()?;
        let running = c
            .find(&rec.id)
            .map(|r| r.state.status == "running")
            .unwrap_or(false);
        if !running {
            // Drain what the monitor wrote last.
            let n = f.read(&mut buf)?;
            out.write_all(&buf[..n])?;
            if n == 0 {
                break;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    out.flush()?;
    Ok(())
}

pub fn diff(root: &Path, a: ContainerArg) -> Result<()> {
    let mut c = super::open_containers(root)?;
    let changes = c.diff(&a.container)?;
    let mut out = io::stdout().lock();
    for ch in changes {
        writeln!(out, "{ch}")?;
    }
    Ok(())
}

pub fn commit(root: &Path, a: CommitArgs) -> Result<()> {
    let mut c = super::open_containers(root)?;
    let id = c.commit(
        &a.container,
        &container::CommitOptions {
            reference: a.reference.clone(),
            author: a.author.clone().unwrap_or_default(),
            message: a.message.clone().unwrap_or_default(),
            changes: a.changes.clone(),
        },
    )?;
    println!("{id}");
    Ok(())
}

pub fn export(root: &Path, a: ExportArgs) -> Result<()> {
    let mut c = super::open_containers(root)?;
    match &a.output {
        Some(p) => {
            let f = std::fs::File::create(p)?;
            let mut w = io::BufWriter::new(f);
            c.export(&a.container, &mut w)?;
            w.flush()?;
        }
        None => {
            if io::stdout().is_terminal() {
                return Err(Failure::new(
                    1,
                    "cowardly refusing to save to a terminal. Use the -o flag or redirect",
                )
                .into());
            }
            let mut w = io::BufWriter::new(io::stdout().lock());
            c.export(&a.container, &mut w)?;
            w.flush()?;
        }
    }
    Ok(())
}

/// Container JSON for `inspect` (None when no container has that name).
pub fn inspect_value(
    c: &container::Containers,
    name: &str,
    size: bool,
) -> Result<Option<serde_json::Value>> {
    match c.inspect(name, size) {
        Ok(v) => Ok(Some(v)),
        Err(container::Error::Store(store::Error::ContainerNotFound(_))) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

pub fn inspect(root: &Path, a: InspectArgs) -> Result<()> {
    super::inspect::run_kind(root, a, super::inspect::Kind::Container)
}

pub fn prune(root: &Path, a: PruneArgs) -> Result<()> {
    if !a.force {
        print!("WARNING! This will remove all stopped containers.\nAre you sure you want to continue? [y/N] ");
        io::stdout().flush()?;
        let mut line = String::new();
        io::stdin().read_line(&mut line)?;
        if !matches!(line.trim(), "y" | "Y" | "yes") {
            return Ok(());
        }
    }
    let mut c = super::open_containers(root)?;
    let sizes: std::collections::HashMap<String, u64> = c
        .summaries(true)?
        .into_iter()
        .map(|s| (s.record.id.clone(), s.size_rw.unwrap_or(0)))
        .collect();
    let removed = c.prune()?;
    let mut total = 0;
    if !removed.is_empty() {
        println!("Deleted Containers:");
        for id in &removed {
            println!("{id}");
            total += sizes.get(id).copied().unwrap_or(0);
        }
        println!();
    }
    println!("Total reclaimed space: {}", format::human_size(total));
    Ok(())
}

pub fn rename(root: &Path, a: RenameArgs) -> Result<()> {
    let mut c = super::open_containers(root)?;
    c.rename(&a.container, &a.new_name)?;
    Ok(())
}
