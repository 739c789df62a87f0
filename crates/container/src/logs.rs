//! Container logs in Docker's `json-file` format: one JSON object per line,
//! `{"log":"text\n","stream":"stdout","time":"2026-11-28T16:00:00.123456789Z"}`.
//!
//! The container's stdout and stderr are pipes; one thread reads both as their bytes
//! arrive, passes them on at once (to the terminal of a foreground `run`, when asked) and
//! appends each complete line, with its stream and arrival time, to the log. Lines longer than 16 KiB are
//! split, as Docker splits them. A log written by an older strata (raw bytes) still reads:
//! a line that is not a JSON entry is taken as stdout text without a time.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::Path;
use std::thread::JoinHandle;

use serde::{Deserialize, Serialize};

/// Docker's longest log line; longer output is cut into entries of this size.
const MAX_LINE: usize = 16 * 1024;

/// Which stream an entry came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout,
    Stderr,
}

/// One log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    pub log: String,
    pub stream: Stream,
    /// RFC 3339 with nanoseconds, UTC; empty for lines of an old raw log.
    #[serde(default)]
    pub time: String,
}

/// The reader threads of one container's output; [`LogPump::finish`] waits for them.
#[derive(Debug)]
pub struct LogPump {
    threads: Vec<JoinHandle<()>>,
}

impl LogPump {
    /// Waits until both streams reached their end (the container and everything it started
    /// have exited) and every line is in the log.
    pub fn finish(self) {
        for t in self.threads {
            let _ = t.join();
        }
    }
}

fn append(log: &mut File, stream: Stream, line: &[u8]) {
    let entry = LogEntry {
        log: String::from_utf8_lossy(line).into_owned(),
        stream,
        time: oci::now(),
    };
    let mut text = serde_json::to_vec(&entry).expect("log entries serialise");
    text.push(b'\n');
    // One write per entry with O_APPEND: a reader never sees half an entry interleaved.
    let _ = log.write_all(&text);
}

/// One stream being read: its pipe, where its bytes go on to, and its unfinished line.
struct Source {
    pipe: io::PipeReader,
    stream: Stream,
    tee: Option<Box<dyn Write + Send>>,
    line: Vec<u8>,
    open: bool,
}

/// Reads both streams in one thread, in the order their bytes arrive (`poll`), so that the
/// log keeps the order in which the container wrote to stdout and stderr. A stream's last
/// partial line is logged at its end, after whatever the other stream had ready then.
fn pump(mut sources: Vec<Source>, log: &mut File) {
    use std::os::fd::AsRawFd;
    let mut buf = vec![0u8; 32 * 1024];
    while sources.iter().any(|s| s.open) {
        let mut fds: Vec<libc::pollfd> = sources
            .iter()
            .map(|s| libc::pollfd {
                fd: if s.open { s.pipe.as_raw_fd() } else { -1 },
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        // SAFETY: `fds` is a valid array of pollfd of the given length.
        let r = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
        if r < 0 {
            if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            break;
        }
        let mut ended = Vec::new();
        for (i, s) in sources.iter_mut().enumerate() {
            if !s.open || fds[i].revents == 0 {
                continue;
            }
            let n = match s.pipe.read(&mut buf) {
                Ok(0) | Err(_) => {
                    ended.push(i);
                    continue;
                }
                Ok(n) => n,
            };
            if let Some(t) = s.tee.as_mut() {
                let _ = t.write_all(&buf[..n]);
                let _ = t.flush();
            }
            for &b in &buf[..n] {
                s.line.push(b);
                if b == b'\n' || s.line.len() >= MAX_LINE {
                    append(log, s.stream, &s.line);
                    s.line.clear();
                }
            }
        }
        for i in ended {
            let s = &mut sources[i];
            s.open = false;
            if !s.line.is_empty() {
                append(log, s.stream, &s.line);
                s.line.clear();
            }
        }
    }
}

/// Pipes for a container's stdout and stderr that feed the log at `path`; with `tee`, the
/// bytes also go on to this process's own stdout and stderr.
pub fn log_pipes(path: &Path, tee: bool) -> io::Result<(runtime::Stdio, runtime::Stdio, LogPump)> {
    if let Some(d) = path.parent() {
        fs::create_dir_all(d)?;
    }
    let mut file = OpenOptions::new().create(true).append(true).open(path)?;
    let (out_r, out_w) = io::pipe()?;
    let (err_r, err_w) = io::pipe()?;
    let source = |pipe, stream| Source {
        pipe,
        stream,
        tee: match (tee, stream) {
            (false, _) => None,
            (true, Stream::Stdout) => Some(Box::new(io::stdout()) as Box<dyn Write + Send>),
            (true, Stream::Stderr) => Some(Box::new(io::stderr())),
        },
        line: Vec::new(),
        open: true,
    };
    let sources = vec![source(out_r, Stream::Stdout), source(err_r, Stream::Stderr)];
    let threads = vec![std::thread::spawn(move || pump(sources, &mut file))];
    Ok((
        runtime::Stdio::Fd(out_w.into()),
        runtime::Stdio::Fd(err_w.into()),
        LogPump { threads },
    ))
}

/// Parses one line of a log file.
pub fn parse_line(line: &str) -> LogEntry {
    match serde_json::from_str::<LogEntry>(line) {
        Ok(e) => e,
        Err(_) => LogEntry {
            log: format!("{line}\n"),
            stream: Stream::Stdout,
            time: String::new(),
        },
    }
}

/// Reads the complete entries of a log from `offset` on; returns them and the offset just
/// after the last complete line (a line still being written is left for the next read).
pub fn read_entries(path: &Path, offset: u64) -> io::Result<(Vec<LogEntry>, u64)> {
    let f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((Vec::new(), offset)),
        Err(e) => return Err(e),
    };
    let mut r = BufReader::new(f);
    io::Seek::seek(&mut r, io::SeekFrom::Start(offset))?;
    let mut out = Vec::new();
    let mut pos = offset;
    let mut raw = Vec::new();
    loop {
        raw.clear();
        let n = r.read_until(b'\n', &mut raw)?;
        if n == 0 || raw.last() != Some(&b'\n') {
            break;
        }
        pos += n as u64;
        let text = String::from_utf8_lossy(&raw[..n - 1]);
        out.push(parse_line(&text));
    }
    Ok((out, pos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_dockers_json_and_raw_lines_still_read() {
        let e = parse_line(
            r#"{"log":"hi\n","stream":"stderr","time":"2026-11-28T16:00:00.000000001Z"}"#,
        );
        assert_eq!(e.stream, Stream::Stderr);
        assert_eq!(e.log, "hi\n");
        let raw = parse_line("plain text");
        assert_eq!(
            (raw.log.as_str(), raw.stream),
            ("plain text\n", Stream::Stdout)
        );
    }

    #[test]
    fn pipes_split_lines_by_stream_and_keep_a_final_partial_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.log");
        let (out, err, pump) = log_pipes(&path, false).unwrap();
        let (runtime::Stdio::Fd(out), runtime::Stdio::Fd(err)) = (out, err) else {
            panic!("pipes expected")
        };
        let mut out = File::from(out);
        let mut err = File::from(err);
        out.write_all(b"one\ntwo").unwrap();
        err.write_all(b"oops\n").unwrap();
        out.write_all(&vec![b'x'; MAX_LINE + 10]).unwrap();
        drop(out);
        drop(err);
        pump.finish();
        let (entries, end) = read_entries(&path, 0).unwrap();
        assert_eq!(end, fs::metadata(&path).unwrap().len());
        let outs: Vec<&str> = entries
            .iter()
            .filter(|e| e.stream == Stream::Stdout)
            .map(|e| e.log.as_str())
            .collect();
        assert_eq!(outs[0], "one\n");
        assert!(outs[1].starts_with("two") && outs[1].len() == MAX_LINE);
        assert_eq!(outs[2].len(), 13);
        assert!(entries
            .iter()
            .any(|e| e.stream == Stream::Stderr && e.log == "oops\n"));
        assert!(entries
            .iter()
            .all(|e| e.time.ends_with('Z') && e.time.len() == 30));
    }
}
