//! The `strata` binary: parses arguments, opens the store, and hands each command to the
//! library crates. Every command lives in its own short file under `commands/`.

mod api;
mod cli;
mod commands;
mod output;
mod settings;
mod usage;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use crate::cli::Cli;

/// The program's name where Docker's messages say `docker`.
pub const PROGRAM: &str = "strata";

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
    /// A failure Docker's daemon reports: its CLI prints `Error response from daemon: `
    /// before the message.
    pub fn daemon(code: u8, message: impl std::fmt::Display) -> Self {
        Failure::bare(code, format!("Error response from daemon: {message}"))
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
    if unsafe { libc::geteuid() } == 0 && !runtime::rootless::active() {
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

/// The error and its causes joined by ": ", as anyhow's `{:#}` does, but leaving out a cause
/// whose text the message already holds (errors that print their source and also return it).
fn chain_message(e: &anyhow::Error) -> String {
    let mut msg = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if msg.contains(&text) {
            continue;
        }
        if !msg.is_empty() {
            msg.push_str(": ");
        }
        msg.push_str(&text);
    }
    msg
}

/// A reader of strata's output that went away (`strata ps | head`) ends strata as it ends
/// Docker's CLI, by SIGPIPE, without a panic message. Only the printing to standard output
/// or error dies this way; writes to pipes and sockets elsewhere still get EPIPE as an
/// error (SIGPIPE stays ignored for them).
fn quiet_on_closed_output() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if msg.starts_with("failed printing to std") && msg.contains("Broken pipe") {
            // SAFETY: plain signal calls; the process ends here.
            unsafe {
                libc::signal(libc::SIGPIPE, libc::SIG_DFL);
                libc::raise(libc::SIGPIPE);
            }
        }
        default(info)
    }));
}

fn main() -> ExitCode {
    runtime::rootless::pause_if_asked();
    quiet_on_closed_output();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage::report(&e),
    };
    output::init_logging(if cli.debug { "debug" } else { &cli.log_level });
    if let Err(msg) = settings::load(&cli) {
        eprintln!("Error: {msg}");
        return ExitCode::from(125);
    }
    // The store's default depends on the user, so it is chosen before a non-root user
    // becomes root in its user namespace.
    let root = cli.root.clone().unwrap_or_else(default_root);
    // A relative root (`STRATA_ROOT=store`) is taken from here once: mounts and the
    // processes strata starts in other directories need it absolute.
    let root = std::path::absolute(&root).unwrap_or(root);
    // Commands that touch neither the store nor containers run as the user is.
    let needs_namespace = !matches!(
        cli.command,
        cli::Command::Version(_) | cli::Command::Login(_) | cli::Command::Logout(_)
    );
    if let Err(msg) = needs_namespace.then(runtime::rootless::enter).transpose() {
        eprintln!("Error: rootless: {msg}");
        return ExitCode::from(125);
    }
    match commands::run(cli.command, &root) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let (code, msg, bare) = match e.downcast_ref::<Failure>() {
                Some(f) => (f.code, f.message.clone(), f.bare),
                None => (1, chain_message(&e), false),
            };
            if msg.is_empty() {
            } else if bare {
                eprintln!("{msg}");
            } else {
                eprintln!("Error: {msg}");
            }
            ExitCode::from(code)
        }
    }
}
