//! `strata pull [-q] [-a] [--platform P] NAME[:TAG|@DIGEST]`

use std::io::{IsTerminal, Write};
use std::sync::Mutex;

use anyhow::Result;

use crate::cli::PullArgs;

/// What a terminal shows: one line per layer, redrawn in place.
#[derive(Default)]
struct Screen {
    order: Vec<String>,
}

/// Docker's bar: `[=====>      ]  1.2MB/3.4MB`.
fn bar(current: u64, total: u64) -> String {
    let width = 50;
    let filled = if total > 0 {
        ((current.min(total) as f64 / total as f64) * width as f64) as usize
    } else {
        0
    };
    let mut b = "=".repeat(filled);
    if filled < width {
        b.push('>');
        b.push_str(&" ".repeat(width - filled - 1));
    }
    format!(
        "[{b}] {:>8}/{}",
        format::human_size(current),
        format::human_size(total)
    )
}

/// Prints progress reports: Docker's plain lines when stdout is not a terminal, one live
/// line per layer (with a bar while bytes move) when it is. Called from several threads.
pub(super) fn reporter(quiet: bool) -> impl Fn(registry::Progress<'_>) + Sync {
    reporter_to(quiet, false)
}

/// Like [`reporter`], on standard error when `stderr` (as `run` and `create` report the
/// pull of a missing image).
pub(super) fn reporter_to(quiet: bool, stderr: bool) -> impl Fn(registry::Progress<'_>) + Sync {
    let tty = if stderr {
        std::io::stderr().is_terminal()
    } else {
        std::io::stdout().is_terminal()
    };
    let screen = Mutex::new(Screen::default());
    move |p: registry::Progress<'_>| {
        if quiet {
            return;
        }
        let mut out: Box<dyn Write> = if stderr {
            Box::new(std::io::stderr().lock())
        } else {
            Box::new(std::io::stdout().lock())
        };
        if !tty {
            if let Some(l) = p.plain() {
                let _ = writeln!(out, "{l}");
                let _ = out.flush();
            }
            return;
        }
        let mut sc = screen.lock().unwrap_or_else(|e| e.into_inner());
        let (id, text) = match p {
            registry::Progress::Line(l) => {
                sc.order.clear();
                let _ = writeln!(out, "{l}");
                let _ = out.flush();
                return;
            }
            registry::Progress::Layer { id, status } => (id, format!("{id}: {status}")),
            registry::Progress::Bytes {
                id,
                status,
                current,
                total,
            } => (id, format!("{id}: {status} {}", bar(current, total))),
        };
        match sc.order.iter().position(|x| x == id) {
            None => {
                sc.order.push(id.to_string());
                let _ = writeln!(out, "{text}");
            }
            Some(i) => {
                let up = sc.order.len() - i;
                let _ = write!(out, "\x1b[{up}A\r\x1b[2K{text}\x1b[{up}B\r");
            }
        }
        let _ = out.flush();
    }
}

/// Pulls one image with the registry's stored credentials, reporting to stdout, or to
/// stderr with `on_stderr` (as `run`, `create` and `build` do for an image they lack).
pub(super) fn pull_one(
    store: &mut store::Store,
    r: &oci::Reference,
    platform: Option<String>,
    quiet: bool,
    on_stderr: bool,
) -> Result<registry::Pulled> {
    let hosts = &crate::settings::get().hosts;
    let creds = registry::load_credentials(&hosts.config_file, &r.registry)?;
    let opts = registry::PullOptions {
        platform,
        concurrency: None,
    };
    Ok(registry::pull(
        store,
        r,
        creds,
        hosts,
        &opts,
        &reporter_to(quiet, on_stderr),
    )?)
}

pub fn run(root: &std::path::Path, a: PullArgs) -> Result<()> {
    let r = image::parse_name(&a.name)?;
    if a.all_tags
        && (r.digest.is_some() || a.name.rsplit('/').next().is_some_and(|l| l.contains(':')))
    {
        anyhow::bail!("tag can't be used with --all-tags/-a");
    }
    let mut store = super::open_store(root)?;
    let hosts = &crate::settings::get().hosts;
    let creds = registry::load_credentials(&hosts.config_file, &r.registry)?;
    let opts = registry::PullOptions {
        platform: a.platform.clone(),
        concurrency: None,
    };
    let progress = reporter(a.quiet);
    if !a.all_tags
        && r.tag.is_some()
        && !a.name.rsplit('/').next().is_some_and(|l| l.contains(':'))
        && !a.quiet
    {
        println!("Using default tag: latest");
    }
    let refs = if a.all_tags {
        registry::list_tags(&r, creds.clone(), hosts)
            .map_err(|e| super::daemon_failure(format!("{e:#}")))?
            .into_iter()
            .map(|t| r.with_tag(&t))
            .collect::<Result<Vec<_>, _>>()?
    } else {
        vec![r.clone()]
    };
    for r in &refs {
        registry::pull(&mut store, r, creds.clone(), hosts, &opts, &progress)
            .map_err(|e| super::daemon_failure(format!("{e:#}")))?;
    }
    if a.all_tags {
        if !a.quiet {
            println!(
                "Status: Downloaded newer images for {}",
                r.repository_familiar()
            );
        }
        println!("{}", r.name());
    } else {
        println!("{r}");
    }
    Ok(())
}
