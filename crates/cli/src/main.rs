//! The `strata` binary: parses arguments, opens the store, and hands each command to the
//! library crates. Every command lives in its own short file under `commands/`.

mod cli;
mod commands;
mod output;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use crate::cli::Cli;

/// An error with the exit code Docker would use for it.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
    /// Print the message as it is, without Docker's `Error: ` prefix.
    pub bare: bool,
}

impl Failure {
    pub fn new(code: u8, message: impl Into<String>) -> Self {
        Failure {
            code,
            message: message.into(),
            bare: false,
        }
    }
    /// A failure whose message Docker prints without a prefix.
    pub fn bare(code: u8, message: impl Into<String>) -> Self {
        Failure {
            code,
            message: message.into(),
            bare: true,
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

fn default_root() -> PathBuf {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return PathBuf::from("/var/lib/strata");
    }
    if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(x).join("strata");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    home.join(".local/share/strata")
}

/// Registries named insecure by `--insecure-registry` and by `insecure-registries` in the
/// configuration file (Docker's daemon.json key), handed to the registry client through
/// `STRATA_INSECURE_REGISTRIES` (which the monitor processes inherit too). Set before any
/// thread starts.
fn insecure_registries(flags: &[String]) -> Result<(), String> {
    let path = std::env::var_os("STRATA_CONFIG")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/etc/strata/daemon.json"));
    let mut list: Vec<String> = flags.to_vec();
    match std::fs::read(&path) {
        Ok(bytes) => {
            let v: serde_json::Value = serde_json::from_slice(&bytes)
                .map_err(|e| format!("invalid configuration file {}: {e}", path.display()))?;
            if let Some(entries) = v.get("insecure-registries") {
                let entries = entries.as_array().ok_or_else(|| {
                    format!(
                        "invalid configuration file {}: insecure-registries must be a list",
                        path.display()
                    )
                })?;
                for e in entries {
                    let s = e.as_str().ok_or_else(|| {
                        format!(
                            "invalid configuration file {}: insecure-registries holds {e}, not a string",
                            path.display()
                        )
                    })?;
                    list.push(s.to_string());
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("{}: {e}", path.display())),
    }
    for r in &list {
        // Docker accepts a scheme-less host[:port]; a URL is a common mistake.
        if r.contains("://") || r.contains('/') || r.is_empty() {
            return Err(format!(
                "insecure registry {r} is not valid: use HOST[:PORT], without a scheme or path"
            ));
        }
    }
    if !list.is_empty() {
        if let Ok(old) = std::env::var("STRATA_INSECURE_REGISTRIES") {
            list.push(old);
        }
        std::env::set_var("STRATA_INSECURE_REGISTRIES", list.join(","));
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            let code = match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => 0,
                // Docker exits 125 when the command line itself is wrong.
                _ => 125,
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    output::init_logging(if cli.debug { "debug" } else { &cli.log_level });
    if let Err(msg) = insecure_registries(&cli.insecure_registries) {
        eprintln!("Error: {msg}");
        return ExitCode::from(125);
    }
    let root = cli.root.clone().unwrap_or_else(default_root);
    match commands::run(cli.command, &root) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let (code, msg, bare) = match e.downcast_ref::<Failure>() {
                Some(f) => (f.code, f.message.clone(), f.bare),
                None => (1, format!("{e:#}"), false),
            };
            if bare {
                eprintln!("{msg}");
            } else if !msg.is_empty() {
                eprintln!("Error: {msg}");
            }
            ExitCode::from(code)
        }
    }
}
