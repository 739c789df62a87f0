//! `strata rm`, `stop`, `kill`, `wait`, `logs`, `diff`, `commit`, `export`, `container
//! inspect` and `container prune`: thin wrappers over the container crate.

use std::io::{self, IsTerminal, Write};
use std::path::Path;

use anyhow::Result;

use crate::cli::{
    CommitArgs, ContainerArg, ContainersArgs, ExportArgs, InspectArgs, KillArgs, LogsArgs,
    PruneArgs, RenameArgs, RmArgs, StopArgs,
};
use crate::Failure;

/// Runs `f` on each name, printing its line on success; Docker's error handling: every
/// error printed (`shown` gives its text with Docker's prefix), exit 1 when any failed.
fn each(
    names: &[String],
    shown: impl Fn(&str, container::Error) -> String,
    mut f: impl FnMut(&str) -> container::Result<Option<String>>,
) -> Result<()> {
    let mut errs = Vec::new();
    for n in names {
        match f(n) {
            Ok(Some(line)) => println!("{line}"),
            Ok(None) => {}
            Err(e) => errs.push(shown(n, e)),
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(Failure::bare(1, errs.join("\n")).into())
    }
}

/// A daemon error as Docker's CLI prints it.
fn daemon(_: &str, e: container::Error) -> String {
    format!("Error response from daemon: {e}")
}

pub fn rm(root: &Path, a: RmArgs) -> Result<()> {
    let mut c = super::open_containers(root)?;
    each(&a.containers, super::lookup_error, |n| {
        c.remove_with_volumes(n, a.force, a.volumes)
            .map(|_| Some(n.to_string()))
    })
}

pub fn stop(root: &Path, a: StopArgs) -> Result<()> {
    let mut c = super::open_containers(root)?;
    each(&a.containers, daemon, |n| {
        c.stop(n, a.time).map(|_| Some(n.to_string()))
    })
}

pub fn kill(root: &Path, a: KillArgs) -> Result<()> {
    let mut c = super::open_containers(root)?;
    let shown = |n: &str, e: container::Error| match e {
        // The daemon checks the signal before it looks for the container.
        container::Error::Invalid(m) if m.starts_with("Invalid signal") => {
            format!("Error response from daemon: {m}")
        }
        e => format!("Error response from daemon: Cannot kill container: {n}: {e}"),
    };
    each(&a.containers, shown, |n| {
        c.kill(n, &a.signal).map(|_| Some(n.to_string()))
    })
}

pub fn wait(root: &Path, a: ContainersArgs) -> Result<()> {
    let mut c = super::open_containers(root)?;
    each(&a.containers, daemon, |n| {
        c.wait(n).map(|code| Some(code.to_string()))
    })
}

/// A `--since`/`--until` value of `logs` (see [`super::parse_time`]).
fn log_time(flag: &str, v: &str) -> Result<chrono::DateTime<chrono::Utc>> {
    super::parse_time(v)
        .ok_or_else(|| Failure::new(1, format!("invalid value for \"{flag}\": {v:?}")).into())
}

pub fn logs(root: &Path, a: LogsArgs) -> Result<()> {
    let c = super::open_containers(root)?;
    let rec = c
        .find(&a.container)
        .map_err(|e| Failure::bare(1, super::lookup_error(&a.container, e)))?;
    let path = c.log_path(&rec.id);
    // Docker's json-file reader: anything but a number of lines (`all`, `-1`, `x`) is all.
    let tail: Option<usize> = a.tail.trim().parse().ok();
    let since = a
        .since
        .as_deref()
        .map(|v| log_time("since", v))
        .transpose()?;
    let until = a
        .until
        .as_deref()
        .map(|v| log_time("until", v))
        .transpose()?;
    let in_range = |e: &::container::LogEntry| -> bool {
        if since.is_none() && until.is_none() {
            return true;
        }
        let Ok(t) = chrono::DateTime::parse_from_rfc3339(&e.time) else {
            return false;
        };
        since.is_none_or(|s| t >= s) && until.is_none_or(|u| t <= u)
    };
    let mut out = io::stdout().lock();
    let mut err = io::stderr().lock();
    let mut show = |entries: &[::container::LogEntry]| -> io::Result<()> {
        for e in entries {
            let w: &mut dyn Write = match e.stream {
                ::container::Stream::Stdout => &mut out,
                ::container::Stream::Stderr => &mut err,
            };
            if a.timestamps {
                write!(w, "{} ", e.time)?;
            }
            // `--details`: the log's extra attributes (strata's logs have none) and a space.
            if a.details {
                w.write_all(b" ")?;
            }
            w.write_all(e.log.as_bytes())?;
        }
        out.flush()?;
        err.flush()
    };
    let (entries, mut offset) = ::container::read_entries(&path, 0)?;
    let mut entries: Vec<_> = entries.into_iter().filter(|e| in_range(e)).collect();
    if let Some(n) = tail {
        let skip = entries.len().saturating_sub(n);
        entries.drain(..skip);
    }
    show(&entries)?;
    // -f: follow while the container runs (or until --until has passed).
    if !a.follow {
        return Ok(());
    }
    loop {
        let running = c
            .find(&rec.id)
            .map(|r| r.state.status == "running")
            .unwrap_or(false);
        let (more, next) = ::container::read_entries(&path, offset)?;
        offset = next;
        let more: Vec<_> = more.into_iter().filter(|e| in_range(e)).collect();
        show(&more)?;
        if until.is_some_and(|u| chrono::Utc::now() > u) {
            break;
        }
        // The monitor drains the output before it records `exited`, so the entries read
        // after seeing that state are the last ones.
        if !running {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    Ok(())
}

pub fn diff(root: &Path, a: ContainerArg) -> Result<()> {
    let mut c = super::open_containers(root)?;
    let changes = c.diff(&a.container).map_err(super::daemon_failure)?;
    let mut out = io::stdout().lock();
    for ch in changes {
        writeln!(out, "{ch}")?;
    }
    Ok(())
}

pub fn commit(root: &Path, a: CommitArgs) -> Result<()> {
    // Docker's client parses the new name before it asks the daemon.
    if let Some(Err(image::Error::InvalidReference(m))) =
        a.reference.as_deref().map(image::parse_name)
    {
        return Err(Failure::bare(1, m).into());
    }
    let mut c = super::open_containers(root)?;
    let id = c
        .commit(
            &a.container,
            &container::CommitOptions {
                reference: a.reference.clone(),
                author: a.author.clone().unwrap_or_default(),
                message: a.message.clone().unwrap_or_default(),
                changes: a.changes.clone(),
            },
        )
        .map_err(super::daemon_failure)?;
    println!("{id}");
    Ok(())
}

pub fn export(root: &Path, a: ExportArgs) -> Result<()> {
    if let Some(p) = &a.output {
        super::validate_output_path(p, "failed to export container")?;
    }
    let mut c = super::open_containers(root)?;
    // The daemon's lookup comes first, before any output is made.
    c.find(&a.container).map_err(super::daemon_failure)?;
    match &a.output {
        Some(p) => super::write_archive_file(
            p,
            super::cannot_create("failed to export container", p),
            |w| Ok(c.export(&a.container, w)?),
        )?,
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
    let filters = super::PruneFilters::parse(&a.filters, "container prune")?;
    let mut c = super::open_containers(root)?;
    let (removed, total) = super::system::prune_containers(&mut c, &filters)?;
    if !removed.is_empty() {
        println!("Deleted Containers:");
        for id in &removed {
            println!("{id}");
        }
        println!();
    }
    store::events::record_in(
        root,
        store::events::Event::container("prune", "").attr("reclaimed", total.to_string()),
    );
    println!("Total reclaimed space: {}", format::human_size(total));
    Ok(())
}

pub fn rename(root: &Path, a: RenameArgs) -> Result<()> {
    let mut c = super::open_containers(root)?;
    c.rename(&a.container, &a.new_name).map_err(|e| {
        Failure::bare(
            1,
            format!(
                "Error response from daemon: {e}\nError: failed to rename container named {}",
                a.container
            ),
        )
    })?;
    Ok(())
}

/// `strata port CONTAINER [PRIVATE_PORT[/PROTO]]`: Docker 20.10's lines
/// (`8080/tcp -> 127.0.0.1:18080`), or the host addresses of one port.
pub fn port(root: &Path, a: crate::cli::PortArgs) -> Result<()> {
    let c = super::open_containers(root)?;
    // The client's inspect: a missing container is `Error: No such container: X`.
    let ports = c
        .published_ports(&a.container)
        .map_err(|e| Failure::bare(1, super::lookup_error(&a.container, e)))?;
    // Go's net.JoinHostPort: IPv6 addresses in brackets.
    let join = |ip: &str, port: u16| {
        if ip.contains(':') {
            format!("[{ip}]:{port}")
        } else {
            format!("{ip}:{port}")
        }
    };
    let Some(want) = &a.port else {
        for p in &ports {
            println!("{} -> {}", p.key(), join(&p.host_ip, p.host_port));
        }
        return Ok(());
    };
    let (port, proto) = match want.split_once('/') {
        Some((p, proto)) if !proto.is_empty() => (p, proto),
        Some((p, _)) => (p, "tcp"),
        None => (want.as_str(), "tcp"),
    };
    // Docker 20.10's client prints nat.NewPort's error as it is.
    let n: u16 = port.parse().map_err(|_| {
        Failure::bare(
            1,
            format!("strconv.ParseUint: parsing {port:?}: invalid syntax"),
        )
    })?;
    let hits: Vec<_> = ports
        .iter()
        .filter(|p| p.container_port == n && p.protocol == proto)
        .collect();
    if hits.is_empty() {
        return Err(Failure::new(
            1,
            format!(
                "No public port '{port}/{proto}' published for {}",
                a.container
            ),
        )
        .into());
    }
    for p in hits {
        println!("{}", join(&p.host_ip, p.host_port));
    }
    Ok(())
}

/// `strata top CONTAINER [ps OPTIONS]`: Docker's table (tabwriter 20/1/3).
pub fn top(root: &Path, a: crate::cli::TopArgs) -> Result<()> {
    let c = super::open_containers(root)?;
    // Docker passes the options as one string split on spaces.
    let args: Vec<String> = a
        .ps_args
        .join(" ")
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    let t = c.top(&a.container, &args).map_err(super::daemon_failure)?;
    c.record_event_for("top", &a.container, &[]);
    let mut text = t.titles.join("\t");
    text.push('\n');
    for p in &t.processes {
        text.push_str(&p.join("\t"));
        text.push('\n');
    }
    print!("{}", format::tabwriter(&text, 20, 3));
    Ok(())
}
