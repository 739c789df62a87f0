//! The `strata` binary: parses arguments and hands them to the library crates.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "strata",
    version,
    about = "A daemonless, Docker-compatible image builder and runtime"
)]
struct Cli {
    /// Root directory of the store
    #[arg(long, global = true, env = "STRATA_ROOT")]
    root: Option<PathBuf>,
    /// Log level: debug, info, warn, error, fatal
    #[arg(short = 'l', long, global = true, default_value = "info")]
    log_level: String,
    /// Enable debug output
    #[arg(short = 'D', long, global = true)]
    debug: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Show the version information
    Version,
}

fn main() {
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
            std::process::exit(code);
        }
    };
    match cli.command {
        Command::Version => println!("strata version {}", env!("CARGO_PKG_VERSION")),
    }
}
