//! `strata system service`: Docker's Engine API (1.41, what Docker 20.10 serves) on a Unix
//! socket or a loopback TCP port, for the clients that speak it (the docker CLI, docker-py,
//! Compose, testcontainers). Like Podman's service it keeps no state of its own: every
//! request opens the store and calls the same crates (and the same functions of the
//! commands) as the CLI, so the CLI and the service can be used on one store at once, and
//! the service can be stopped at any time.
//!
//! hyper serves HTTP/1.1 on a small tokio runtime; each request's work runs on tokio's
//! blocking pool (the store and the runtime are synchronous). `server.rs` listens and times
//! out, `route.rs` strips the version prefix and dispatches, `reply.rs` is what a handler
//! answers (JSON, errors as `{"message": …}`, streams), and `system.rs`, `images.rs` and
//! `containers.rs` are the endpoints.

mod attach;
mod build;
mod containers;
mod contents;
mod df;
mod distribution;
mod exec;
mod images;
mod networks;
mod reply;
mod route;
mod server;
mod system;
mod volumes;

pub use server::serve;

/// The API version served, and the oldest one accepted (Docker 20.10's).
pub const API_VERSION: &str = "1.41";
pub const MIN_API_VERSION: &str = "1.12";
