//! One function per command; each turns parsed arguments into library calls and prints
//! the result the way Docker prints it.

mod attach;
pub(crate) mod build;
mod build_check;
mod build_history;
mod build_output;
mod build_tty;
pub mod builder_gc;
pub use builder_gc::parse_keep_storage;
mod builder_history;
mod container;
mod cp;
mod df;
pub(crate) mod events;
mod history;
mod images;
mod import;
mod inspect;
mod layers;
mod layers_svg;
mod load;
mod login;
mod network;
mod pause;
mod progress;
pub(crate) mod ps;
pub(crate) mod ps_filter;
mod pull;
mod push;
mod rmi;
pub(crate) mod run;
mod save;
mod stats;
pub(crate) mod system;
pub(crate) mod update;
pub(crate) mod volume;

use std::path::Path;

use anyhow::Result;
use store::Store;

use crate::Failure;

use crate::cli::{
    BuilderCommand, Command, ContainerCommand, ImageCommand, NetworkCommand, SystemCommand,
};

pub fn open_store(root: &Path) -> Result<Store> {
    Store::open(root)
        .map_err(|e| anyhow::anyhow!("cannot open the store at {}: {e}", root.display()))
}

pub fn run(cmd: Command, root: &Path) -> Result<()> {
    match cmd {
        Command::Version(a) => system::version(a),
        Command::Build(a) => build::run(root, a),
        Command::Image(ImageCommand::Build(a)) | Command::Builder(BuilderCommand::Build(a)) => {
            build::run(root, *a)
        }
        Command::Events(a) | Command::System(SystemCommand::Events(a)) => events::run(root, a),
        Command::Info(a) | Command::System(SystemCommand::Info(a)) => system::info(root, a),
        Command::System(SystemCommand::Prune(a)) => system::prune(root, a),
        Command::System(SystemCommand::Check(a)) => system::check(root, a),
        Command::System(SystemCommand::Migrate(_)) => system::migrate(root),
        Command::System(SystemCommand::Service(a)) => crate::api::serve(root, a),
        Command::Completion(a) => system::completion(a),
        Command::Import(a) | Command::Image(ImageCommand::Import(a)) => import::run(root, a),
        Command::Load(a) | Command::Image(ImageCommand::Load(a)) => load::run(root, a),
        Command::Save(a) | Command::Image(ImageCommand::Save(a)) => save::run(root, a),
        Command::Tag(a) | Command::Image(ImageCommand::Tag(a)) => images::tag(root, a),
        Command::Rmi(a) | Command::Image(ImageCommand::Rm(a)) => rmi::run(root, a),
        Command::Image(ImageCommand::Prune(a)) => rmi::prune(root, a),
        Command::Images(a) | Command::Image(ImageCommand::Ls(a)) => images::list(root, a),
        Command::History(a) | Command::Image(ImageCommand::History(a)) => history::run(root, a),
        Command::Image(ImageCommand::Layers(a)) => layers::run(root, a),
        Command::Inspect(a) => inspect::run(root, a, false),
        Command::Image(ImageCommand::Inspect(a)) => inspect::run(root, a, true),
        Command::System(SystemCommand::Df(a)) => df::run(root, a),
        Command::Builder(BuilderCommand::Prune(a)) => builder_gc::prune(root, a),
        Command::Builder(BuilderCommand::History(c)) => builder_history::run(root, c),
        // ---- containers ----
        Command::Run(a) | Command::Container(ContainerCommand::Run(a)) => run::run(root, a),
        Command::Create(a) | Command::Container(ContainerCommand::Create(a)) => {
            run::create(root, a)
        }
        Command::Start(a) | Command::Container(ContainerCommand::Start(a)) => run::start(root, a),
        Command::ContainerMonitor(a) => run::monitor(root, a),
        Command::Ps(a) | Command::Container(ContainerCommand::Ls(a)) => ps::run(root, a),
        Command::Rm(a) | Command::Container(ContainerCommand::Rm(a)) => container::rm(root, a),
        Command::Stop(a) | Command::Container(ContainerCommand::Stop(a)) => {
            container::stop(root, a)
        }
        Command::Kill(a) | Command::Container(ContainerCommand::Kill(a)) => {
            container::kill(root, a)
        }
        Command::Wait(a) | Command::Container(ContainerCommand::Wait(a)) => {
            container::wait(root, a)
        }
        Command::Logs(a) | Command::Container(ContainerCommand::Logs(a)) => {
            container::logs(root, a)
        }
        Command::Diff(a) | Command::Container(ContainerCommand::Diff(a)) => {
            container::diff(root, a)
        }
        Command::Commit(a) | Command::Container(ContainerCommand::Commit(a)) => {
            container::commit(root, a)
        }
        Command::Export(a) | Command::Container(ContainerCommand::Export(a)) => {
            container::export(root, a)
        }
        Command::Container(ContainerCommand::Inspect(a)) => container::inspect(root, a),
        Command::Container(ContainerCommand::Prune(a)) => container::prune(root, a),
        Command::Exec(a) | Command::Container(ContainerCommand::Exec(a)) => run::exec(root, a),
        Command::Rename(a) | Command::Container(ContainerCommand::Rename(a)) => {
            container::rename(root, a)
        }
        Command::Restart(a) | Command::Container(ContainerCommand::Restart(a)) => {
            run::restart(root, a)
        }
        Command::Top(a) | Command::Container(ContainerCommand::Top(a)) => container::top(root, a),
        Command::Port(a) | Command::Container(ContainerCommand::Port(a)) => {
            container::port(root, a)
        }
        Command::Volume(a) => volume::run(root, a),
        Command::Pause(a) | Command::Container(ContainerCommand::Pause(a)) => pause::pause(root, a),
        Command::Unpause(a) | Command::Container(ContainerCommand::Unpause(a)) => {
            pause::unpause(root, a)
        }
        Command::Update(a) | Command::Container(ContainerCommand::Update(a)) => {
            update::run(root, a)
        }
        Command::Stats(a) | Command::Container(ContainerCommand::Stats(a)) => stats::run(root, a),
        Command::Cp(a) | Command::Container(ContainerCommand::Cp(a)) => cp::run(root, a),
        Command::Attach(a) | Command::Container(ContainerCommand::Attach(a)) => {
            attach::run(root, a)
        }
        // ---- end containers ----
        Command::Network(n) => match n {
            NetworkCommand::Create(a) => network::create(root, a),
            NetworkCommand::Ls(a) => network::ls(root, a),
            NetworkCommand::Inspect(a) => network::inspect(root, a),
            NetworkCommand::Rm(a) => network::rm(root, a),
            NetworkCommand::Connect(a) => network::connect(root, a),
            NetworkCommand::Disconnect(a) => network::disconnect(root, a),
            NetworkCommand::Prune(a) => network::prune(root, a),
        },
        // ---- registry ----
        Command::Pull(a) | Command::Image(ImageCommand::Pull(a)) => pull::run(root, a),
        Command::Push(a) | Command::Image(ImageCommand::Push(a)) => push::run(root, a),
        Command::Login(a) => login::login(a),
        Command::Logout(a) => login::logout(a),
    }
}

/// A `--since`/`--until` value as Docker takes it: an RFC 3339 time (date only, or without a
/// zone, meaning UTC), Unix seconds with an optional fraction, or a Go duration before now.
pub fn parse_time(v: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    use chrono::{NaiveDate, NaiveDateTime, TimeZone, Utc};
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(v) {
        return Some(t.with_timezone(&Utc));
    }
    for f in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(v, f) {
            return Some(Utc.from_utc_datetime(&t));
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(v, "%Y-%m-%d") {
        return Some(Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0)?));
    }
    if let Some((secs, frac)) = v.split_once('.').or(Some((v, ""))).filter(|(a, b)| {
        !a.is_empty()
            && a.bytes().all(|c| c.is_ascii_digit())
            && b.bytes().all(|c| c.is_ascii_digit())
    }) {
        let s: i64 = secs.parse().ok()?;
        let nanos: u32 = format!("{frac:0<9}")[..9].parse().ok()?;
        return Utc.timestamp_opt(s, nanos).single();
    }
    let nanos = dockerfile::parse_go_duration(v).ok()?;
    let nanos = i64::try_from(nanos).ok()?;
    Some(Utc::now() - chrono::Duration::nanoseconds(nanos))
}

/// A container-library error as a failure with exit code 1 (Docker's for daemon errors).
pub fn container_failure(e: ::container::Error) -> anyhow::Error {
    crate::Failure::new(1, e.to_string()).into()
}

/// An I/O error in Go's words ("no such file or directory").
pub fn io_text(e: &std::io::Error) -> String {
    runtime::io_text(e)
}

/// Docker's CLI's check of `save -o`/`export -o` before it asks for anything: the
/// directory must exist, and an existing path must be a directory, a regular file or a
/// FIFO (`must be a directory or a regular file: got a device`). `what` leads the message
/// (`failed to save image`).
pub fn validate_output_path(path: &Path, what: &str) -> Result<()> {
    use std::os::unix::fs::FileTypeExt;
    let fail = |m: String| -> anyhow::Error { Failure::bare(1, format!("{what}: {m}")).into() };
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    if let Some(d) = dir {
        if !d.exists() {
            return Err(fail(format!(
                "invalid output path: directory {:?} does not exist",
                d.display().to_string()
            )));
        }
    }
    if let Ok(m) = std::fs::metadata(path) {
        let t = m.file_type();
        let why = if t.is_block_device() || t.is_char_device() {
            Some("got a device")
        } else if t.is_socket() {
            Some("got an irregular file")
        } else {
            None
        };
        if let Some(why) = why {
            return Err(fail(format!(
                "invalid output path: {:?} must be a directory or a regular file: {why}",
                path.display().to_string()
            )));
        }
    }
    Ok(())
}

/// Writes an archive to the `-o` path `path` (`save`, `export`, `build --output`) through
/// `write`. A regular file (or a new one) is written with `O_DIRECT` ([`layer::DirectFile`]:
/// the archive must reach the disk before the command ends, and a copy in the page cache
/// would only slow that down), made durable, and removed again when writing fails; a FIFO
/// (`-o /dev/stdout` of a pipe) is written to as it is, never synced or removed.
/// `cannot_create` says why a file could not be made.
pub fn write_archive_file(
    path: &Path,
    cannot_create: impl FnOnce(std::io::Error) -> anyhow::Error,
    write: impl FnOnce(&mut dyn std::io::Write) -> Result<()>,
) -> Result<()> {
    use std::io::Write;
    let regular = match std::fs::metadata(path) {
        Ok(m) => m.is_file(),
        Err(_) => true,
    };
    let f = std::fs::File::create(path).map_err(cannot_create)?;
    let res = if regular {
        (|| -> Result<()> {
            let mut w = layer::DirectFile::new(f)?;
            write(&mut w)?;
            w.finish()?.sync_all()?;
            Ok(())
        })()
    } else {
        let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
        write(&mut w).and_then(|_| Ok(w.flush()?))
    };
    if res.is_err() && regular {
        // Never leave a half-written archive under the name the user gave.
        let _ = std::fs::remove_file(path);
    }
    res
}

/// The error of an archive file `path` that could not be made: `WHAT: create PATH: WHY`.
pub fn cannot_create(what: &str, path: &Path) -> impl FnOnce(std::io::Error) -> anyhow::Error {
    let context = format!("{what}: create {}", path.display());
    move |e| anyhow::Error::new(e).context(context)
}

/// A local file the client cannot open, in Docker's CLI's words (`open PATH: no such file or
/// directory`, no prefix).
pub fn open_failure(path: &std::path::Path, e: &std::io::Error) -> anyhow::Error {
    Failure::bare(1, format!("open {}: {}", path.display(), io_text(e))).into()
}

/// An error of the daemon's as Docker's CLI prints it (`Error response from daemon: …`,
/// exit 1).
pub fn daemon_failure(e: impl std::fmt::Display) -> anyhow::Error {
    Failure::daemon(1, e).into()
}

/// An image error of the daemon's: a missing image named as Docker's daemon names a
/// reference it could not find (`No such image: NAME:latest`), anything else as it is.
pub fn image_failure(name: &str, e: image::Error) -> anyhow::Error {
    match e {
        image::Error::NoSuchImage(_) if !name.contains('@') => {
            let name = oci::Reference::parse(name)
                .map(|r| r.familiar())
                .unwrap_or_else(|_| name.to_string());
            daemon_failure(format!("No such image: {name}"))
        }
        e => daemon_failure(e),
    }
}

/// Docker's CLI on a call whose missing object it reports itself (`rm`, `logs`, `exec`,
/// `port`, `attach`, `network rm`, `volume rm`…): `Error: No such container: NAME` with the
/// name as given; any other answer is the daemon's.
pub fn lookup_error(name: &str, e: ::container::Error) -> String {
    use ::container::Error as E;
    let kind = match &e {
        E::Store(store::Error::ContainerNotFound(_)) => "container",
        E::Store(store::Error::VolumeNotFound(_)) => "volume",
        E::Store(store::Error::NetworkNotFound(_)) => "network",
        E::Image(image::Error::NoSuchImage(_)) => "image",
        _ => return format!("Error response from daemon: {e}"),
    };
    format!("Error: No such {kind}: {name}")
}

/// `KEY=VALUE` or `KEY` (an empty value) flags (`--label`, `--opt`), as Docker's list and
/// map options.
pub fn key_values(list: &[String]) -> std::collections::BTreeMap<String, String> {
    list.iter()
        .map(|l| match l.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (l.clone(), String::new()),
        })
        .collect()
}

/// Splits a `--filter NAME=VALUE` as Docker's client does; a filter without `=` is the
/// client's usage error (exit 125) naming `command` (`ps`, `network ls`…).
pub fn split_filter<'a>(f: &'a str, command: &str) -> Result<(&'a str, &'a str)> {
    f.split_once('=').ok_or_else(|| {
        crate::Failure::bare(
            125,
            format!(
                "invalid argument \"{f}\" for \"-f, --filter\" flag: bad format of filter \
                 (expected name=value)\nSee '{} {command} --help'.",
                crate::PROGRAM
            ),
        )
        .into()
    })
}

/// `--filter until=…|label=…|label!=…` of `system prune` and `network prune`, as Docker's
/// prune filters.
pub struct PruneFilters {
    pub until: Option<chrono::DateTime<chrono::Utc>>,
    pub labels: Vec<(String, Option<String>, bool)>,
}

impl PruneFilters {
    pub fn parse(args: &[String], command: &str) -> Result<PruneFilters> {
        let mut f = PruneFilters {
            until: None,
            labels: Vec::new(),
        };
        for a in args {
            let (k, v) = a.split_once('=').ok_or_else(|| {
                Failure::bare(
                    125,
                    format!(
                        "invalid argument \"{a}\" for \"--filter\" flag: bad format of filter (expected name=value)\nSee '{p} {command} --help'.",
                        p = crate::PROGRAM
                    ),
                )
            })?;
            match k {
                "until" => {
                    f.until = Some(parse_time(v).ok_or_else(|| {
                        Failure::daemon(
                            1,
                            format!("failed to parse value as time or duration: {v:?}"),
                        )
                    })?)
                }
                "label" | "label!" => {
                    let (lk, lv) = match v.split_once('=') {
                        Some((a, b)) => (a.to_string(), Some(b.to_string())),
                        None => (v.to_string(), None),
                    };
                    f.labels.push((lk, lv, k == "label"));
                }
                other => return Err(Failure::daemon(1, format!("Invalid filter '{other}'")).into()),
            }
        }
        Ok(f)
    }

    pub fn is_empty(&self) -> bool {
        self.until.is_none() && self.labels.is_empty()
    }

    pub fn matches(
        &self,
        created: &str,
        labels: &std::collections::BTreeMap<String, String>,
    ) -> bool {
        if let Some(u) = self.until {
            match history::parse_time(created) {
                Some(c) if c < u => {}
                _ => return false,
            }
        }
        self.labels_match(labels)
    }

    pub fn labels_match(&self, labels: &std::collections::BTreeMap<String, String>) -> bool {
        self.labels.iter().all(|(k, v, want)| {
            let has = match v {
                Some(v) => labels.get(k) == Some(v),
                None => labels.contains_key(k),
            };
            has == *want
        })
    }
}

/// Opens the containers of a root and repairs what a killed strata left behind.
pub fn open_containers(root: &Path) -> Result<::container::Containers> {
    let mut c = ::container::Containers::open_with(root, crate::settings::get().snapshotter)
        .map_err(|e| anyhow::anyhow!("cannot open the store at {}: {e}", root.display()))?;
    let settings = crate::settings::get();
    c.set_pasta(settings.pasta.clone());
    c.set_init_path(settings.init_path.clone());
    c.cleanup()?;
    Ok(c)
}
