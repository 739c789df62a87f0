//! `strata cp [-a] [-L] CONTAINER:SRC DEST|-` and `strata cp [-a] [-L] SRC|- CONTAINER:DEST`:
//! Docker's copy rules (the container crate), Docker's messages: the daemon's prefixed
//! `Error response from daemon: `, the client's bare.

use std::io::{self, IsTerminal, Write};
use std::path::Path;

use anyhow::Result;

use crate::cli::CpArgs;
use crate::Failure;

/// Docker's `splitCpArg`: `CONTAINER:PATH`, unless the argument is a local path (absolute,
/// or starting with `.`).
fn split(arg: &str) -> (Option<&str>, &str) {
    if arg.starts_with('/') || arg.starts_with('.') {
        return (None, arg);
    }
    match arg.split_once(':') {
        Some((c, p)) => (Some(c), p),
        None => (None, arg),
    }
}

fn fail(e: container::CopyError, target: (&str, &str)) -> anyhow::Error {
    use container::CopyError as E;
    match e {
        E::Container(container::Error::Store(store::Error::ContainerNotFound(_))) => Failure::new(
            1,
            format!("No such container:path: {}:{}", target.0, target.1),
        ),
        E::NotFound { .. } => Failure::new(1, e.to_string()),
        E::CannotCopyDir | E::NoSuchDirectory | E::Client(_) => Failure::bare(1, e.to_string()),
        E::Daemon(_) | E::Container(_) => Failure::bare(1, super::pause::daemon_error(e)),
    }
    .into()
}

pub fn run(root: &Path, a: CpArgs) -> Result<()> {
    let (sc, sp) = split(&a.source);
    let (dc, dp) = split(&a.destination);
    let opts = container::CopyOptions {
        archive: a.archive,
        follow_link: a.follow_link,
    };
    match (sc, dc) {
        (Some(_), Some(_)) => {
            Err(Failure::bare(1, "copying between containers is not supported").into())
        }
        (None, None) => Err(Failure::bare(1, "must specify at least one container source").into()),
        (Some(c), None) => {
            let mut cs = super::open_containers(root)?;
            if dp == "-" {
                if io::stdout().is_terminal() {
                    return Err(Failure::bare(
                        1,
                        "cowardly refusing to save to a terminal. Use the -o flag or redirect",
                    )
                    .into());
                }
                let mut out = io::BufWriter::new(io::stdout().lock());
                cs.copy_from(c, sp, None, &mut out, &opts)
                    .map_err(|e| fail(e, (c, sp)))?;
                out.flush()?;
            } else {
                cs.copy_from(c, sp, Some(Path::new(dp)), &mut io::sink(), &opts)
                    .map_err(|e| fail(e, (c, sp)))?;
            }
            Ok(())
        }
        (None, Some(c)) => {
            let mut cs = super::open_containers(root)?;
            if sp == "-" {
                let mut input = io::stdin().lock();
                cs.copy_to(c, None, &mut input, dp, &opts)
                    .map_err(|e| fail(e, (c, dp)))?;
            } else {
                cs.copy_to(c, Some(Path::new(sp)), &mut io::empty(), dp, &opts)
                    .map_err(|e| fail(e, (c, dp)))?;
            }
            Ok(())
        }
    }
}
