//! The attach socket of a detached container started with `-i`: its monitor keeps the
//! write end of the container's standard input and serves `attach.sock` in the state
//! directory; every byte an `attach` client sends there goes to the container's stdin
//! (the output is followed from the log; a `-t` container's monitor copies the pipe to
//! the terminal and the terminal to the log). The socket lives in the root-only state
//! directory and dies with the monitor.

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::lifecycle::Containers;

const SOCKET: &str = "attach.sock";

/// Makes the container's stdin a pipe fed by clients of `STATE_DIR/attach.sock` (served by
/// a thread of this process, the container's monitor). Returns the read end for the
/// container.
pub fn serve_stdin(state_dir: &Path, once: bool) -> Result<runtime::Stdio> {
    let (r, w) = std::io::pipe().map_err(|e| Error::io("stdin pipe", e))?;
    let path = state_dir.join(SOCKET);
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).map_err(|e| Error::io(&path, e))?;
    std::thread::spawn(move || {
        let mut w = w;
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut buf = [0u8; 8192];
            loop {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if w.write_all(&buf[..n]).is_err() {
                            return;
                        }
                    }
                }
            }
            // `StdinOnce`: the first client's end is the end of the container's stdin.
            if once {
                return;
            }
        }
    });
    Ok(runtime::Stdio::Fd(OwnedFd::from(r)))
}

impl Containers {
    /// Where a running `-i` container's monitor takes stdin for `attach`.
    pub fn attach_socket(&self, id: &str) -> PathBuf {
        self.state_dir(id).join(SOCKET)
    }

    /// Connects to a running container's attach socket (None: it was not started with `-i`,
    /// or by a strata without attach sockets).
    pub fn connect_stdin(&self, id: &str) -> Option<UnixStream> {
        UnixStream::connect(self.attach_socket(id)).ok()
    }

    /// Whether the container's stdin ends with its first attached client (`StdinOnce`).
    pub fn stdin_once(&self, id: &str) -> bool {
        self.options_of(id).is_some_and(|o| o.stdin_once)
    }

    /// Whether the container keeps stdin open (`-i`).
    pub fn open_stdin(&self, id: &str) -> bool {
        self.options_of(id).is_some_and(|o| o.interactive)
    }

    /// Whether the container has a terminal of its own (`-t`).
    pub fn has_tty(&self, id: &str) -> bool {
        self.options_of(id).is_some_and(|o| o.tty)
    }

    fn options_of(&self, id: &str) -> Option<crate::CreateOptions> {
        self.find(id)
            .ok()
            .and_then(|r| Self::stored(&r).ok())
            .map(|s| s.options)
    }
}
