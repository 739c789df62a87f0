//! A byte counter for long reads (`load`, `import`): on a terminal, one line on standard
//! error redrawn at most ten times a second (`Loading [=====>    ] 120MB/500MB`); nothing
//! when standard error is not a terminal, so CI logs stay plain.

use std::io::{self, IsTerminal, Read, Write};
use std::time::{Duration, Instant};

pub struct ProgressReader<R> {
    inner: R,
    label: &'static str,
    done: u64,
    total: Option<u64>,
    last: Option<Instant>,
    tty: bool,
}

impl<R: Read> ProgressReader<R> {
    pub fn new(inner: R, label: &'static str, total: Option<u64>) -> Self {
        ProgressReader {
            inner,
            label,
            done: 0,
            total,
            last: None,
            tty: io::stderr().is_terminal(),
        }
    }

    fn draw(&mut self) {
        let text = match self.total.filter(|&t| t > 0) {
            Some(t) => {
                let width = 50;
                let filled = ((self.done.min(t) as f64 / t as f64) * width as f64) as usize;
                let mut bar = "=".repeat(filled);
                if filled < width {
                    bar.push('>');
                    bar.push_str(&" ".repeat(width - filled - 1));
                }
                format!(
                    "{} [{bar}] {}/{}",
                    self.label,
                    format::human_size(self.done),
                    format::human_size(t)
                )
            }
            None => format!("{} {}", self.label, format::human_size(self.done)),
        };
        let mut err = io::stderr().lock();
        let _ = write!(err, "\r\x1b[2K{text}");
        let _ = err.flush();
    }
}

impl<R: Read> Read for ProgressReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        if self.tty
            && self
                .last
                .is_none_or(|t| t.elapsed() > Duration::from_millis(100))
        {
            self.last = Some(Instant::now());
            self.draw();
        }
        Ok(n)
    }
}

impl<R> Drop for ProgressReader<R> {
    fn drop(&mut self) {
        if self.tty && self.last.is_some() {
            // Leave the screen as it was: the command's own output follows.
            let _ = write!(io::stderr(), "\r\x1b[2K");
        }
    }
}
