//! `strata stats [--no-stream] [--no-trunc] [-a] [--format] [CONTAINER...]`: Docker's
//! columns from each container's cgroups, CPU % over the interval between two readings as
//! Docker's CLI computes it, memory without the inactive file cache, the limit capped at the
//! machine's memory. Without `--no-stream` the table is redrawn every half second, after
//! clearing the screen, as Docker does.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use serde_json::{json, Value};

use crate::cli::StatsArgs;
use crate::Failure;

const DEFAULT_FORMAT: &str =
    "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}";

/// The machine's memory (`MemTotal`), the most a container's limit is shown as.
fn machine_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// One row: `container` is the name as given (or the short ID when listing).
fn row(
    container: &str,
    s: &container::StatsSample,
    prev: Option<&container::StatsSample>,
    no_trunc: bool,
    machine: u64,
) -> Value {
    let id = if no_trunc {
        s.id.clone()
    } else {
        format::short_id(&s.id)
    };
    let (mut cpu, mut mem, mut limit, mut mem_perc) = (0.0, 0u64, 0u64, 0.0);
    if s.running {
        if let Some(p) = prev.filter(|p| p.running) {
            let cpu_delta = s.cgroup.cpu_total_ns as f64 - p.cgroup.cpu_total_ns as f64;
            let sys_delta = s.system_cpu_ns as f64 - p.system_cpu_ns as f64;
            if sys_delta > 0.0 && cpu_delta > 0.0 {
                cpu = cpu_delta / sys_delta * s.online_cpus as f64 * 100.0;
            }
        }
        let c = &s.cgroup;
        mem = match c.memory_inactive_file {
            Some(v) if v < c.memory_usage => c.memory_usage - v,
            _ => c.memory_usage,
        };
        limit = c.memory_limit;
        if machine > 0 && limit > machine {
            limit = machine;
        }
        if limit != 0 {
            mem_perc = mem as f64 / limit as f64 * 100.0;
        }
    }
    let pair = |a: u64, b: u64| format!("{} / {}", format::human_size(a), format::human_size(b));
    json!({
        "Container": container,
        "ID": id,
        "Name": s.name,
        "CPUPerc": format!("{cpu:.2}%"),
        "MemUsage": format!("{} / {}", format::bytes_size(mem), format::bytes_size(limit)),
        "MemPerc": format!("{mem_perc:.2}%"),
        "NetIO": pair(s.net_rx, s.net_tx),
        "BlockIO": pair(s.cgroup.block_read, s.cgroup.block_write),
        "PIDs": s.cgroup.pids.to_string(),
    })
}

pub fn run(root: &Path, a: StatsArgs) -> Result<()> {
    let c = super::open_containers(root)?;
    let fmt = a.format.clone().unwrap_or_else(|| DEFAULT_FORMAT.into());
    let lf = format::ListFormat::parse(&fmt).map_err(|e| Failure::bare(1, e.to_string()))?;
    let header = json!({
        "Container": "CONTAINER", "ID": "CONTAINER ID", "Name": "NAME", "CPUPerc": "CPU %",
        "MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %", "NetIO": "NET I/O",
        "BlockIO": "BLOCK I/O", "PIDs": "PIDS",
    });
    // Named containers are looked up once (an unknown one is the daemon's error); without
    // names, the list is made again at every reading, as Docker follows starts and stops.
    let named: Vec<(String, store::ContainerRecord)> = {
        let mut v = Vec::new();
        let mut errs = Vec::new();
        for n in &a.containers {
            match c.find(n) {
                Ok(r) => v.push((n.clone(), r)),
                Err(e) => errs.push(super::pause::daemon_error(e)),
            }
        }
        if !errs.is_empty() {
            return Err(Failure::bare(1, errs.join("\n")).into());
        }
        v
    };
    let list = |c: &container::Containers| -> Result<Vec<(String, store::ContainerRecord)>> {
        if !a.containers.is_empty() {
            // Fresh records: a container may have started or stopped meanwhile.
            return Ok(named
                .iter()
                .map(|(n, r)| (n.clone(), c.find(&r.id).unwrap_or_else(|_| r.clone())))
                .collect());
        }
        Ok(c.summaries(false)?
            .into_iter()
            .filter(|s| a.all || s.running)
            .map(|s| (format::short_id(&s.record.id), s.record))
            .collect())
    };
    let machine = machine_memory();
    let mut prev: HashMap<String, container::StatsSample> = HashMap::new();
    let sample_all = |c: &container::Containers,
                      recs: &[(String, store::ContainerRecord)]|
     -> HashMap<String, container::StatsSample> {
        recs.iter()
            .filter_map(|(_, r)| c.stats_sample(r).ok().map(|s| (r.id.clone(), s)))
            .collect()
    };
    let mut recs = list(&c)?;
    // The first reading: CPU % needs an interval, as the daemon's first answer does.
    prev.extend(sample_all(&c, &recs));
    let interval = if a.no_stream {
        Duration::from_millis(1000)
    } else {
        Duration::from_millis(500)
    };
    let mut out = std::io::stdout();
    loop {
        std::thread::sleep(interval);
        let now = sample_all(&c, &recs);
        let rows: Vec<Value> = recs
            .iter()
            .filter_map(|(name, r)| {
                let s = now.get(&r.id)?;
                Some(row(name, s, prev.get(&r.id), a.no_trunc, machine))
            })
            .collect();
        let text = lf
            .render(&header, &rows)
            .map_err(|e| Failure::bare(1, e.to_string()))?;
        if !a.no_stream {
            // Docker clears the screen and moves home before each table.
            write!(out, "\x1b[2J\x1b[H")?;
        }
        out.write_all(text.as_bytes())?;
        out.flush()?;
        if a.no_stream {
            return Ok(());
        }
        prev = now;
        recs = list(&c)?;
        // Containers seen for the first time get their first reading now.
        for (_, r) in &recs {
            if !prev.contains_key(&r.id) {
                if let Ok(s) = c.stats_sample(r) {
                    prev.insert(r.id.clone(), s);
                }
            }
        }
    }
}
