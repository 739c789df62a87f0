//! BuildKit's progress display (`--progress=plain|rawjson`) next to the classic output.
//!
//! Every step that does work (FROM, RUN, COPY, ADD, WORKDIR) is a vertex numbered as its
//! classic `Step N`, named as BuildKit names it (`[builder 2/4] RUN cargo build`); RUN
//! output lines carry the vertex's number and the seconds since it started. Steps that only
//! change the config show nothing, as in BuildKit. `rawjson` prints the same events as
//! BuildKit's `SolveStatus` objects, one JSON object a line.

use std::io::Write;
use std::sync::Mutex;
use std::time::Instant;

use base64::Engine as _;

use super::StepOutput;

/// How the build reports what it does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Progress {
    /// Docker's classic builder: `Step N/M : …`, ` ---> …`.
    #[default]
    Classic,
    /// BuildKit's `--progress=plain`.
    Plain,
    /// BuildKit's `--progress=rawjson`.
    RawJson,
}

/// How a vertex ended.
pub(super) enum Outcome<'e> {
    Cached,
    Done,
    Error(&'e str),
    /// Stopped because another stage failed.
    Canceled,
}

/// A step on the display.
pub(super) struct Vertex {
    mode: Progress,
    number: usize,
    name: String,
    start: Instant,
    started: String,
}

impl Vertex {
    /// Shows that the step `#number name` started.
    pub(super) fn begin(
        out: &mut dyn Write,
        mode: Progress,
        number: usize,
        name: String,
    ) -> Vertex {
        let v = Vertex {
            mode,
            number,
            name,
            start: Instant::now(),
            started: oci::now(),
        };
        match mode {
            Progress::RawJson => v.json(out, None, None),
            _ => {
                let _ = writeln!(out, "\n#{} {}", v.number, v.name);
            }
        }
        let _ = out.flush();
        v
    }

    /// Shows how the step ended.
    pub(super) fn end(&self, out: &mut dyn Write, outcome: Outcome) {
        match self.mode {
            Progress::RawJson => self.json(out, Some(&outcome), None),
            _ => {
                let _ = match outcome {
                    Outcome::Cached => writeln!(out, "#{} CACHED", self.number),
                    Outcome::Done => writeln!(
                        out,
                        "#{} DONE {:.1}s",
                        self.number,
                        self.start.elapsed().as_secs_f64()
                    ),
                    Outcome::Error(e) => writeln!(out, "#{} ERROR: {e}", self.number),
                    Outcome::Canceled => writeln!(out, "#{} CANCELED", self.number),
                };
            }
        }
        let _ = out.flush();
    }

    /// A line of strata's own about the step (`--progress=plain` only).
    pub(super) fn note(&self, out: &mut dyn Write, text: &str) {
        if self.mode == Progress::Plain {
            let _ = writeln!(out, "#{} {text}", self.number);
            let _ = out.flush();
        }
    }

    /// Lines of a step's output (whole lines; `stderr` picks the stream).
    fn log(&self, out: &mut dyn Write, stderr: bool, data: &[u8]) {
        match self.mode {
            Progress::RawJson => self.json(out, None, Some((stderr, data))),
            _ => {
                let t = self.start.elapsed().as_secs_f64();
                for line in data.split_inclusive(|b| *b == b'\n') {
                    let _ = write!(out, "#{} {t:.3} ", self.number);
                    let _ = out.write_all(line);
                    if !line.ends_with(b"\n") {
                        let _ = out.write_all(b"\n");
                    }
                }
            }
        }
    }

    /// One `SolveStatus` line: the vertex (started, or ended with `outcome`) or a log.
    fn json(&self, out: &mut dyn Write, outcome: Option<&Outcome>, log: Option<(bool, &[u8])>) {
        let digest = oci::Digest::of(format!("{} {}", self.number, self.name).as_bytes());
        let status = match log {
            Some((stderr, data)) => serde_json::json!({
                "vertexes": null,
                "statuses": null,
                "logs": [{
                    "vertex": digest.to_string(),
                    "stream": if stderr { 2 } else { 1 },
                    "data": base64::engine::general_purpose::STANDARD.encode(data),
                    "timestamp": oci::now(),
                }],
            }),
            None => {
                let mut v = serde_json::json!({
                    "digest": digest.to_string(),
                    "name": self.name,
                    "started": self.started,
                });
                match outcome {
                    Some(Outcome::Cached) => v["cached"] = true.into(),
                    Some(Outcome::Error(e)) => v["error"] = (*e).into(),
                    Some(Outcome::Canceled) => v["error"] = "context canceled".into(),
                    _ => {}
                }
                if outcome.is_some() {
                    v["completed"] = oci::now().into();
                }
                serde_json::json!({"vertexes": [v], "statuses": null, "logs": null})
            }
        };
        // One write a line: the stages' lines go out as they come (see `Ordered`).
        let _ = out.write_all(format!("{status}\n").as_bytes());
    }
}

/// A RUN step's output on the display: line by line, each with its vertex's prefix (a line
/// cut off at the end of the output is ended).
pub(super) struct VertexOutput<'o> {
    vertex: &'o Vertex,
    state: Mutex<(&'o mut (dyn Write + Send), [Vec<u8>; 2])>,
}

impl<'o> VertexOutput<'o> {
    pub(super) fn new(vertex: &'o Vertex, out: &'o mut (dyn Write + Send)) -> Self {
        VertexOutput {
            vertex,
            state: Mutex::new((out, [Vec::new(), Vec::new()])),
        }
    }
}

/// What is left of unfinished lines is shown at the end.
impl Drop for VertexOutput<'_> {
    fn drop(&mut self) {
        let g = self.state.get_mut().unwrap_or_else(|e| e.into_inner());
        let (out, partial) = &mut *g;
        for (i, p) in partial.iter().enumerate() {
            if !p.is_empty() {
                self.vertex.log(*out, i == 1, p);
            }
        }
        let _ = out.flush();
    }
}

impl StepOutput for VertexOutput<'_> {
    fn write(&self, stderr: bool, data: &[u8]) {
        let mut g = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (out, partial) = &mut *g;
        let p = &mut partial[stderr as usize];
        p.extend_from_slice(data);
        if let Some(end) = p.iter().rposition(|b| *b == b'\n') {
            let lines: Vec<u8> = p.drain(..=end).collect();
            self.vertex.log(*out, stderr, &lines);
            let _ = out.flush();
        }
    }
}
