//! Progress reports of a pull or push, shaped like Docker's JSON messages so a front end can
//! print plain lines (not a terminal) or redraw one line per layer with a bar (a terminal).

/// One progress report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress<'a> {
    /// A line about the whole operation (`Digest: sha256:…`, `Status: …`).
    Line(&'a str),
    /// A new status of one layer (`Pulling fs layer`, `Pull complete`, `Pushed`…), `id` being
    /// the short digest.
    Layer { id: &'a str, status: &'a str },
    /// Bytes moved so far in a layer's transfer (`status` is `Downloading` or `Pushing`).
    Bytes {
        id: &'a str,
        status: &'a str,
        current: u64,
        total: u64,
    },
}

impl Progress<'_> {
    /// The line Docker prints for this report when output is not a terminal (none for byte
    /// counts).
    pub fn plain(&self) -> Option<String> {
        match self {
            Progress::Line(l) => Some(l.to_string()),
            Progress::Layer { id, status } => Some(format!("{id}: {status}")),
            Progress::Bytes { .. } => None,
        }
    }
}

/// Reports `Bytes` every 512 KiB read (and at the end) while passing the bytes through.
pub(crate) struct Counting<'a, R> {
    pub inner: R,
    pub id: &'a str,
    pub status: &'a str,
    pub total: u64,
    pub current: u64,
    pub last: u64,
    pub progress: &'a (dyn Fn(Progress<'_>) + Sync),
}

impl<R: std::io::Read> std::io::Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.current += n as u64;
        if self.current - self.last >= 512 << 10 || (n == 0 && self.current != self.last) {
            self.last = self.current;
            (self.progress)(Progress::Bytes {
                id: self.id,
                status: self.status,
                current: self.current,
                total: self.total,
            });
        }
        Ok(n)
    }
}

pub(crate) fn line(progress: &(dyn Fn(Progress<'_>) + Sync), text: &str) {
    progress(Progress::Line(text));
}

pub(crate) fn layer(progress: &(dyn Fn(Progress<'_>) + Sync), id: &str, status: &str) {
    progress(Progress::Layer { id, status });
}
