//! `strata attach [--no-stdin] [--sig-proxy] [--detach-keys] CONTAINER`: the live output
//! of a running container, from now on, until it ends; then its exit code, as Docker's.
//! Without a daemon, the output is followed from the log the container's monitor writes
//! (stream by stream); SIGINT, SIGTERM and the other signals Docker proxies go to the
//! container's process. Standard input is not forwarded yet (see the report of this
//! branch): a container started with `-i` is attached without it, as `--no-stdin`.

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use anyhow::Result;

use crate::cli::AttachArgs;
use crate::Failure;

static PROXY_TO: AtomicI32 = AtomicI32::new(0);

extern "C" fn proxy(sig: i32) {
    let pid = PROXY_TO.load(Ordering::SeqCst);
    if pid > 0 {
        // SAFETY: kill is async-signal-safe.
        unsafe {
            libc::kill(pid, sig);
        }
    }
}

pub fn run(root: &Path, a: AttachArgs) -> Result<()> {
    let c = super::open_containers(root)?;
    let rec = c.find(&a.container)?;
    let stored_running = rec.state.status == "running";
    let alive = stored_running && Path::new(&format!("/proc/{}", rec.state.pid)).exists();
    if !alive {
        return Err(Failure::new(
            1,
            "You cannot attach to a stopped container, start it first",
        )
        .into());
    }
    if c.is_paused(&rec) {
        return Err(Failure::new(
            1,
            "You cannot attach to a paused container, unpause it first",
        )
        .into());
    }
    if let Some(k) = &a.detach_keys {
        if k.is_empty() || k.split(',').any(|p| p.is_empty()) {
            return Err(Failure::new(1, format!("Invalid detach keys ({k}) provided")).into());
        }
    }
    if a.sig_proxy {
        PROXY_TO.store(rec.state.pid, Ordering::SeqCst);
        for s in [
            libc::SIGINT,
            libc::SIGTERM,
            libc::SIGHUP,
            libc::SIGQUIT,
            libc::SIGUSR1,
            libc::SIGUSR2,
        ] {
            // SAFETY: the handler only calls kill.
            unsafe {
                libc::signal(s, proxy as *const () as libc::sighandler_t);
            }
        }
    }
    let path = c.log_path(&rec.id);
    // From now on: what was written before the attach is `logs`' business.
    let mut offset = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let mut out = std::io::stdout();
    let mut err = std::io::stderr();
    loop {
        let cur = c.find(&rec.id).ok();
        let running = cur.as_ref().is_some_and(|r| {
            r.state.status == "running" && r.state.started_at == rec.state.started_at
        });
        let (entries, next) = container::read_entries(&path, offset)?;
        offset = next;
        for e in entries {
            match e.stream {
                container::Stream::Stdout => out.write_all(e.log.as_bytes())?,
                container::Stream::Stderr => err.write_all(e.log.as_bytes())?,
            }
        }
        out.flush()?;
        // The monitor drains the output before it records the end, so what is read after
        // seeing the end is the last of it.
        if !running {
            let code = cur.map_or(0, |r| r.state.exit_code);
            return if code == 0 {
                Ok(())
            } else {
                Err(Failure::new(code.clamp(1, 255) as u8, "").into())
            };
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
