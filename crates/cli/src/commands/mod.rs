//! One function per command; each turns parsed arguments into library calls and prints
//! the result the way Docker prints it.

mod build;
mod df;
mod history;
mod images;
mod import;
mod inspect;
mod load;
mod login;
mod pull;
mod push;
mod rmi;
mod save;

use std::path::Path;

use anyhow::Result;
use store::Store;

use crate::cli::{Command, ImageCommand, SystemCommand};

pub fn open_store(root: &Path) -> Result<Store> {
    Store::open(root)
        .map_err(|e| anyhow::anyhow!("cannot open the store at {}: {e}", root.display()))
}

pub fn run(cmd: Command, root: &Path) -> Result<()> {
    match cmd {
        Command::Version => {
            println!("strata version {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Command::Build(a) => build::run(root, a),
        Command::Import(a) | Command::Image(ImageCommand::Import(a)) => import::run(root, a),
        Command::Load(a) | Command::Image(ImageCommand::Load(a)) => load::run(root, a),
        Command::Save(a) | Command::Image(ImageCommand::Save(a)) => save::run(root, a),
        Command::Tag(a) | Command::Image(ImageCommand::Tag(a)) => images::tag(root, a),
        Command::Rmi(a) | Command::Image(ImageCommand::Rm(a)) => rmi::run(root, a),
        Command::Image(ImageCommand::Prune(a)) => rmi::prune(root, a),
        Command::Images(a) | Command::Image(ImageCommand::Ls(a)) => images::list(root, a),
        Command::History(a) | Command::Image(ImageCommand::History(a)) => history::run(root, a),
        Command::Inspect(a) => inspect::run(root, a, false),
        Command::Image(ImageCommand::Inspect(a)) => inspect::run(root, a, true),
        Command::System(SystemCommand::Df(a)) => df::run(root, a),
        // ---- registry ----
        Command::Pull(a) => pull::run(root, a),
        Command::Push(a) => push::run(root, a),
        Command::Login(a) => login::login(a),
        Command::Logout(a) => login::logout(a),
    }
}
