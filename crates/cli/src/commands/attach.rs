//! `strata attach [--no-stdin] [--sig-proxy] [--detach-keys] CONTAINER`: the live output
//! of a running container, from now on, until it ends; then its exit code, as Docker's.
//! Without a daemon, the output is followed from the log the container's monitor writes
//! (stream by stream); SIGINT, SIGTERM and the other signals Docker proxies go to the
//! container's process. For a container started with `-i`, standard input goes to the
//! attach socket its monitor serves, until the detach keys (ctrl-p ctrl-q, or
//! `--detach-keys`) are read: then attach ends, leaving the container running. A container
//! with a terminal (`-t`) logs its terminal's output as one stream, which attach relays the
//! same way; its input needs a terminal here, put in raw mode while attached, as Docker's.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Mutex;
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
        detach_keys(k)?;
    }
    let tty = c.has_tty(&rec.id);
    // Docker's client: a terminal's input only from a terminal.
    let stdin_tty = std::io::stdin().is_terminal();
    if tty && !a.no_stdin && !stdin_tty {
        return Err(Failure::bare(1, "the input device is not a TTY").into());
    }
    // With a terminal, signals are the terminal's business (Docker proxies none).
    if a.sig_proxy && !tty {
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
    // From now on: what was written before the attach is `logs`' business. The event is
    // recorded once the place is taken, so whoever sees it knows that later output reaches
    // this attach.
    let mut offset = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    c.record_event("attach", &rec, &[]);
    if !a.no_stdin && c.open_stdin(&rec.id) {
        if let Some(sock) = c.connect_stdin(&rec.id) {
            let keys = detach_keys(a.detach_keys.as_deref().unwrap_or("ctrl-p,ctrl-q"))?;
            if tty && stdin_tty {
                raw_terminal();
            }
            std::thread::spawn(move || forward_stdin(sock, &keys));
        }
    }
    let mut out = std::io::stdout();
    let mut err = std::io::stderr();
    // However attach ends from here on, the terminal gets its settings back.
    let _restore = RestoreTerminal;
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

/// The terminal settings of stdin before [`raw_terminal`].
static SAVED_TERMINAL: Mutex<Option<libc::termios>> = Mutex::new(None);

/// Puts this process's terminal in raw mode, as Docker's client does when attaching to a
/// container with a terminal of its own: keys go to the container's terminal unprocessed
/// (it echoes and edits lines itself).
fn raw_terminal() {
    // SAFETY: termios calls on stdin with structures they fill.
    unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        if libc::tcgetattr(0, &mut t) != 0 {
            return;
        }
        let saved = t;
        libc::cfmakeraw(&mut t);
        if libc::tcsetattr(0, libc::TCSANOW, &t) == 0 {
            *SAVED_TERMINAL.lock().unwrap_or_else(|p| p.into_inner()) = Some(saved);
        }
    }
}

/// Raw mode for the length of a `run -it` or `exec -it` when standard input is a terminal,
/// as Docker's client sets it: restored when the returned guard is dropped.
pub(crate) fn raw_while(tty: bool, interactive: bool) -> Option<RestoreTerminal> {
    use std::io::IsTerminal;
    if !(tty && interactive && std::io::stdin().is_terminal()) {
        return None;
    }
    raw_terminal();
    Some(RestoreTerminal)
}

/// Calls [`restore_terminal`] when dropped.
pub(crate) struct RestoreTerminal;

impl Drop for RestoreTerminal {
    fn drop(&mut self) {
        restore_terminal();
    }
}

/// Gives the terminal its settings from before [`raw_terminal`] back.
fn restore_terminal() {
    if let Some(t) = SAVED_TERMINAL
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take()
    {
        // SAFETY: restoring settings read from the same descriptor.
        unsafe {
            libc::tcsetattr(0, libc::TCSANOW, &t);
        }
    }
}

/// Docker's `--detach-keys`: `ctrl-X` (X a letter or one of `@[\\]^_`) or a single character,
/// comma-separated.
fn detach_keys(spec: &str) -> Result<Vec<u8>> {
    let bad = || Failure::new(1, format!("Invalid detach keys ({spec}) provided"));
    let mut out = Vec::new();
    for k in spec.split(',') {
        if let Some(c) = k.strip_prefix("ctrl-") {
            let b = match c.as_bytes() {
                [b] if b.is_ascii_alphabetic() => b.to_ascii_lowercase() - b'a' + 1,
                [b'@'] => 0,
                [b'['] => 27,
                [b'\\'] => 28,
                [b']'] => 29,
                [b'^'] => 30,
                [b'_'] => 31,
                _ => return Err(bad().into()),
            };
            out.push(b);
        } else if k.len() == 1 {
            out.push(k.as_bytes()[0]);
        } else {
            return Err(bad().into());
        }
    }
    Ok(out)
}

/// Copies this process's stdin to the container's attach socket until EOF or the detach
/// keys; on the keys, ends the attach (exit 0, the container keeps running).
fn forward_stdin(mut sock: std::os::unix::net::UnixStream, keys: &[u8]) {
    use std::io::Read;
    let mut stdin = std::io::stdin().lock();
    let mut buf = [0u8; 4096];
    let mut matched = 0;
    let mut held: Vec<u8> = Vec::new();
    loop {
        let n = match stdin.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let mut out = Vec::with_capacity(n);
        for &b in &buf[..n] {
            if !keys.is_empty() && b == keys[matched] {
                matched += 1;
                held.push(b);
                if matched == keys.len() {
                    let _ = sock.write_all(&out);
                    let _ = std::io::stdout().flush();
                    restore_terminal();
                    std::process::exit(0);
                }
                continue;
            }
            out.append(&mut held);
            matched = 0;
            out.push(b);
        }
        if sock.write_all(&out).is_err() {
            return;
        }
    }
}
