//! `strata load [-i FILE] [-q]`

use std::fs::File;
use std::io::{self, IsTerminal};

use anyhow::Result;

use super::progress::ProgressReader;
use crate::cli::LoadArgs;
use crate::Failure;

pub fn run(root: &std::path::Path, a: LoadArgs) -> Result<()> {
    let mut store = super::open_store(root)?;
    let loaded = match &a.input {
        Some(p) => {
            let f = File::open(p).map_err(|e| super::open_failure(p, &e))?;
            let total = f.metadata().ok().map(|m| m.len());
            image::load(&mut store, ProgressReader::new(f, "Loading", total))
        }
        None => {
            if io::stdin().is_terminal() {
                return Err(
                    Failure::new(1, "requested load from stdin, but stdin is empty").into(),
                );
            }
            image::load(
                &mut store,
                ProgressReader::new(io::stdin().lock(), "Loading", None),
            )
        }
    }?;
    for m in loaded.messages {
        println!("{m}");
    }
    Ok(())
}
