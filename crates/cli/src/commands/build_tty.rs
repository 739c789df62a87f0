//! `build --progress=tty` (and `auto`) on a terminal: BuildKit's terminal display, drawn from
//! the build's `rawjson` events. A frame is the header (`[+] Building 2.1s (5/8)`) and one
//! line a step (` => [builder 2/4] RUN cargo build   1.2s`, `CACHED`, `ERROR`), with the
//! last lines of a running step's output under it (` => => # …`); it is redrawn in place
//! ten times a second and once more at the end (`FINISHED`). Lines that are not events (the
//! Dockerfile's warnings) are printed above the frame.

use std::collections::{HashMap, VecDeque};
use std::io::{self, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use base64::Engine as _;

/// Lines of a running step's output shown under it.
const LOG_LINES: usize = 6;

/// One step on the display.
struct Vertex {
    name: String,
    /// When the display heard that it started.
    seen: Instant,
    /// How long it took, once it ended.
    took: Option<Duration>,
    cached: bool,
    error: bool,
    logs: VecDeque<String>,
    partial: Vec<u8>,
}

struct State {
    out: Box<dyn Write + Send>,
    start: Instant,
    vertices: Vec<Vertex>,
    by_digest: HashMap<String, usize>,
    /// Bytes of an event line not complete yet.
    partial: Vec<u8>,
    /// Lines of the last frame, to draw over.
    drawn: usize,
    finished: bool,
}

struct Shared {
    state: Mutex<State>,
    tick: Condvar,
}

/// The display: [`Display::writer`] takes the events; [`Display::finish`] draws the last
/// frame.
pub(super) struct Display {
    shared: Arc<Shared>,
    ticker: Option<std::thread::JoinHandle<()>>,
}

/// Where the build writes its events.
pub(super) struct Writer(Arc<Shared>);

impl Display {
    pub(super) fn new(out: Box<dyn Write + Send>) -> Display {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                out,
                start: Instant::now(),
                vertices: Vec::new(),
                by_digest: HashMap::new(),
                partial: Vec::new(),
                drawn: 0,
                finished: false,
            }),
            tick: Condvar::new(),
        });
        let s = shared.clone();
        let ticker = std::thread::spawn(move || {
            let mut g = lock(&s);
            while !g.finished {
                g.draw(false);
                g = s
                    .tick
                    .wait_timeout(g, Duration::from_millis(100))
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
        });
        Display {
            shared,
            ticker: Some(ticker),
        }
    }

    pub(super) fn writer(&self) -> Writer {
        Writer(self.shared.clone())
    }

    /// Stops redrawing and draws the last frame.
    pub(super) fn finish(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        {
            let mut g = lock(&self.shared);
            if g.finished {
                return;
            }
            g.finished = true;
            g.draw(true);
        }
        self.shared.tick.notify_all();
        if let Some(t) = self.ticker.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Display {
    fn drop(&mut self) {
        self.stop();
    }
}

fn lock(s: &Shared) -> MutexGuard<'_, State> {
    s.state.lock().unwrap_or_else(|e| e.into_inner())
}

impl Write for Writer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut g = lock(&self.0);
        g.partial.extend_from_slice(buf);
        while let Some(end) = g.partial.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = g.partial.drain(..=end).collect();
            g.event(&line[..line.len() - 1]);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The seconds between two RFC 3339 times of an event.
fn between(started: &serde_json::Value, completed: &serde_json::Value) -> Option<Duration> {
    let t = |v: &serde_json::Value| chrono::DateTime::parse_from_rfc3339(v.as_str()?).ok();
    (t(completed)? - t(started)?).to_std().ok()
}

impl State {
    /// One line of the build's output: a `SolveStatus` event, or text to show above.
    fn event(&mut self, line: &[u8]) {
        let Ok(status) = serde_json::from_slice::<serde_json::Value>(line) else {
            self.clear();
            let _ = self.out.write_all(line);
            let _ = self.out.write_all(b"\n");
            self.draw(false);
            return;
        };
        for v in status["vertexes"].as_array().into_iter().flatten() {
            let digest = v["digest"].as_str().unwrap_or_default().to_string();
            let i = match self.by_digest.get(&digest) {
                Some(i) => *i,
                None => {
                    self.vertices.push(Vertex {
                        name: v["name"].as_str().unwrap_or_default().to_string(),
                        seen: Instant::now(),
                        took: None,
                        cached: false,
                        error: false,
                        logs: VecDeque::new(),
                        partial: Vec::new(),
                    });
                    self.by_digest.insert(digest, self.vertices.len() - 1);
                    self.vertices.len() - 1
                }
            };
            let x = &mut self.vertices[i];
            x.cached |= v["cached"].as_bool().unwrap_or(false);
            x.error |= v["error"].is_string();
            if !v["completed"].is_null() {
                x.took = Some(
                    between(&v["started"], &v["completed"]).unwrap_or_else(|| x.seen.elapsed()),
                );
            }
        }
        for l in status["logs"].as_array().into_iter().flatten() {
            let Some(&i) = l["vertex"].as_str().and_then(|d| self.by_digest.get(d)) else {
                continue;
            };
            let data = base64::engine::general_purpose::STANDARD
                .decode(l["data"].as_str().unwrap_or_default())
                .unwrap_or_default();
            let x = &mut self.vertices[i];
            x.partial.extend_from_slice(&data);
            while let Some(end) = x.partial.iter().position(|b| *b == b'\n') {
                let text: Vec<u8> = x.partial.drain(..=end).collect();
                x.logs
                    .push_back(String::from_utf8_lossy(&text[..text.len() - 1]).into_owned());
                if x.logs.len() > LOG_LINES {
                    x.logs.pop_front();
                }
            }
        }
    }

    /// Erases the frame drawn last.
    fn clear(&mut self) {
        if self.drawn > 0 {
            let _ = write!(self.out, "\x1b[{}A\x1b[J", self.drawn);
            self.drawn = 0;
        }
    }

    /// Draws the frame over the last one (`last`: the final one, every step shown).
    fn draw(&mut self, last: bool) {
        let (width, height) = terminal_size();
        let done = self.vertices.iter().filter(|v| v.took.is_some()).count();
        let mut lines = vec![format!(
            "[+] Building {:.1}s ({done}/{}){}",
            self.start.elapsed().as_secs_f64(),
            self.vertices.len(),
            if last { " FINISHED" } else { "" }
        )];
        for v in &self.vertices {
            let took = v.took.unwrap_or_else(|| v.seen.elapsed());
            let time = format!("{:.1}s", took.as_secs_f64());
            let prefix = if v.error {
                "ERROR "
            } else if v.cached {
                "CACHED "
            } else {
                ""
            };
            let mut text = format!(" => {prefix}{}", v.name);
            let room = width.saturating_sub(time.len() + 1);
            if text.chars().count() > room {
                text = text.chars().take(room).collect();
            }
            let pad = room.saturating_sub(text.chars().count());
            lines.push(format!("{text}{:pad$} {time}", ""));
            // A running step's last lines; a failed one's stay.
            if (v.took.is_none() && !last) || v.error {
                for log in &v.logs {
                    let log: String = format!(" => => # {log}").chars().take(width).collect();
                    lines.push(log);
                }
            }
        }
        // Only the newest lines fit while the build runs; the last frame is all of it.
        if !last && lines.len() + 1 > height {
            let keep = height.saturating_sub(2).max(1);
            let header = lines.remove(0);
            let skip = lines.len().saturating_sub(keep);
            lines.drain(..skip);
            lines.insert(0, header);
        }
        self.clear();
        for l in &lines {
            let _ = writeln!(self.out, "{l}");
        }
        self.drawn = lines.len();
        let _ = self.out.flush();
    }
}

/// The width and height of the terminal on standard error (80×24 when unknown).
fn terminal_size() -> (usize, usize) {
    // SAFETY: TIOCGWINSZ fills the winsize it is given.
    unsafe {
        let mut ws: libc::winsize = std::mem::zeroed();
        if libc::ioctl(2, libc::TIOCGWINSZ, &mut ws) == 0 && ws.ws_col > 0 && ws.ws_row > 0 {
            return (ws.ws_col as usize, ws.ws_row as usize);
        }
    }
    (80, 24)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the display wrote, kept for the test.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_last_frame_has_every_step_with_its_state() {
        let sink = Sink::default();
        let d = Display::new(Box::new(sink.clone()));
        let mut w = d.writer();
        let events = [
            r#"{"vertexes":[{"digest":"sha256:1","name":"[a 1/2] FROM bb:1","started":"2024-01-01T00:00:00Z"}]}"#,
            r#"{"vertexes":[{"digest":"sha256:1","name":"[a 1/2] FROM bb:1","started":"2024-01-01T00:00:00Z","completed":"2024-01-01T00:00:00.5Z"}]}"#,
            r#"{"vertexes":[{"digest":"sha256:2","name":"[a 2/2] RUN make","started":"2024-01-01T00:00:01Z"}]}"#,
            r#"{"logs":[{"vertex":"sha256:2","stream":1,"data":"b3V0Cg=="}]}"#,
            r#"{"vertexes":[{"digest":"sha256:2","name":"[a 2/2] RUN make","started":"2024-01-01T00:00:01Z","completed":"2024-01-01T00:00:03.3Z"}]}"#,
            r#"{"vertexes":[{"digest":"sha256:3","name":"[a 3/3] COPY x /x","started":"2024-01-01T00:00:04Z","completed":"2024-01-01T00:00:04Z","cached":true}]}"#,
        ];
        for e in events {
            w.write_all(e.as_bytes()).unwrap();
            w.write_all(b"\n").unwrap();
        }
        w.write_all(b"a warning\n").unwrap();
        d.finish();
        let out = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        assert!(out.contains("a warning\n"), "{out}");
        // The last frame, after the last erase.
        let last = out.rsplit("\x1b[J").next().unwrap();
        let lines: Vec<&str> = last.lines().collect();
        assert!(lines[0].starts_with("[+] Building "), "{last}");
        assert!(lines[0].ends_with(" (3/3) FINISHED"), "{last}");
        let trimmed: Vec<String> = lines[1..]
            .iter()
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        assert_eq!(
            trimmed,
            [
                "=> [a 1/2] FROM bb:1 0.5s",
                "=> [a 2/2] RUN make 2.3s",
                "=> CACHED [a 3/3] COPY x /x 0.0s"
            ]
        );
        assert_eq!(lines[2].chars().count(), 80, "right-aligned times");
    }
}
