//! What an endpoint answers, and Docker's error bodies.

use bytes::Bytes;
use hyper::StatusCode;
use serde_json::{json, Value};
use tokio::sync::mpsc;

/// A handler's answer.
pub enum Reply {
    /// A JSON body.
    Json(StatusCode, Value),
    /// A status without a body (`204 No Content`, `304 Not Modified`).
    Empty(StatusCode),
    /// A body of the given content type.
    Raw(StatusCode, &'static str, Vec<u8>),
    /// A body written as it is produced (logs, events, progress), ended when the sender is
    /// dropped.
    Stream(&'static str, mpsc::Receiver<Bytes>),
    /// Another answer with headers of its own.
    Headers(Box<Reply>, Vec<(&'static str, String)>),
}

impl Reply {
    pub fn ok(v: Value) -> Reply {
        Reply::Json(StatusCode::OK, v)
    }
}

/// An error with Docker's status: 404 for what does not exist, 409 for conflicts, 400 for a
/// bad request, 500 otherwise; the body is `{"message": "..."}`.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }
    pub fn body(&self) -> Value {
        json!({ "message": self.message })
    }
}

pub type Result<T> = std::result::Result<T, ApiError>;

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> ApiError {
        if let Some(e) = e.downcast_ref::<container::Error>() {
            return container_error(e);
        }
        if let Some(e) = e.downcast_ref::<image::Error>() {
            return image_error(e);
        }
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}"))
    }
}

impl From<container::Error> for ApiError {
    fn from(e: container::Error) -> ApiError {
        container_error(&e)
    }
}

impl From<image::Error> for ApiError {
    fn from(e: image::Error) -> ApiError {
        image_error(&e)
    }
}

impl From<store::Error> for ApiError {
    fn from(e: store::Error) -> ApiError {
        store_error(&e)
    }
}

fn store_error(e: &store::Error) -> ApiError {
    let status = match e {
        store::Error::ContainerNotFound(_) | store::Error::ImageNotFound(_) => {
            StatusCode::NOT_FOUND
        }
        store::Error::NameInUse { .. } => StatusCode::CONFLICT,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    ApiError::new(status, e.to_string())
}

fn image_error(e: &image::Error) -> ApiError {
    let status = match e {
        image::Error::Store(s) => return store_error(s),
        image::Error::NoSuchImage(_) | image::Error::NoSuchReference(_) => StatusCode::NOT_FOUND,
        image::Error::Conflict(_) => StatusCode::CONFLICT,
        image::Error::InvalidReference(_)
        | image::Error::InvalidFilter(_)
        | image::Error::Filter(_) => StatusCode::BAD_REQUEST,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    ApiError::new(status, e.to_string())
}

fn container_error(e: &container::Error) -> ApiError {
    use container::Error as E;
    let status = match e {
        E::Store(s) => return store_error(s),
        E::Image(i) => return image_error(i),
        E::InvalidName(_) | E::Invalid(_) => StatusCode::BAD_REQUEST,
        E::Running(_)
        | E::NotRunning(_)
        | E::AlreadyPaused(_)
        | E::NotPaused(_)
        | E::PausedExec(_) => StatusCode::CONFLICT,
        E::AlreadyRunning(_) => StatusCode::NOT_MODIFIED,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    ApiError::new(status, e.to_string())
}

/// A `Write` that sends what it is given down a channel (a streamed body).
pub struct ChannelWriter(pub mpsc::Sender<Bytes>);

impl std::io::Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(Bytes::copy_from_slice(buf))
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A request body read as it arrives (archives: `/images/load`, `/build`), on a blocking
/// thread. A body cut short (the client went away) is an error, never a shorter archive.
pub struct BodyReader {
    rx: mpsc::Receiver<std::io::Result<Bytes>>,
    chunk: Bytes,
}

impl BodyReader {
    pub fn new(rx: mpsc::Receiver<std::io::Result<Bytes>>) -> BodyReader {
        BodyReader {
            rx,
            chunk: Bytes::new(),
        }
    }
}

impl std::io::Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.chunk.is_empty() {
            match self.rx.blocking_recv() {
                Some(c) => self.chunk = c?,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk[..n]);
        let _ = self.chunk.split_to(n);
        Ok(n)
    }
}

/// A piece of a container's output as attach, logs and exec send it: raw for a container
/// with a terminal, else one frame of Docker's multiplexed stream (the stream, 1 stdout or
/// 2 stderr, three zero bytes, the length as a big-endian u32, then the bytes).
pub fn output_chunk(tty: bool, stream: u8, data: &[u8]) -> Bytes {
    if tty {
        return Bytes::copy_from_slice(data);
    }
    let mut b = Vec::with_capacity(8 + data.len());
    b.extend_from_slice(&[stream, 0, 0, 0]);
    b.extend_from_slice(&(data.len() as u32).to_be_bytes());
    b.extend_from_slice(data);
    Bytes::from(b)
}
