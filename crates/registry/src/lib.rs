//! strata's registry client: a synchronous implementation of the OCI distribution protocol
//! as Docker speaks it, on `ureq`, with threads for parallel transfers.
//!
//! - [`pull`]: manifest (Docker schema2 or OCI, lists and indexes resolved to a platform),
//!   config verified by digest, missing layers downloaded a few at a time, each hashed while
//!   it streams and unpacked into a staging area, all published in one transaction.
//! - [`push`]: each layer as a blob the registry is known to hold (HEAD, cross-repository
//!   mount) or its tar compressed while it uploads (gzip or zstd, BuildKit's options in
//!   [`image::ExportOptions`]), then the manifest; RepoDigests and the layers' blobs recorded.
//! - [`push_cache`], [`pull_cache`]: build cache as an OCI index of the build's images.
//! - [`Progress`]: Docker-like status reports for plain lines or live bars.
//! - [`Client`]: HTTPS, or plain HTTP for loopback and insecure registries
//!   ([`Hosts::is_insecure`]); Basic and Bearer token authentication; retries with backoff.
//! - [`Hosts`]: everything configurable (insecure registries, Docker's `config.json`,
//!   concurrency, chunk sizes), filled in by the binary and passed down; this crate reads no
//!   environment variable.
//! - [`load_credentials`], [`store_credentials`], [`erase_credentials`]: Docker's
//!   `config.json` and credential helpers.
//!
//! **Architecture invariant:** nothing reaches the store before every byte of a pull has
//! been checked against its digest; a failed pull publishes nothing.

mod auth;
mod cache;
mod client;
mod download;
mod error;
mod hosts;
mod parallel;
mod progress;
mod pull;
mod push;

pub use auth::{
    erase_credentials, load_credentials, parse_challenge, server_key, store_credentials, Challenge,
    Credentials,
};
pub use cache::{pull_cache, push_cache};
pub use client::{timeout, Client, TIMEOUT_ENV};
pub use download::{download, Download};
pub use error::{Error, Result};
pub use hosts::Hosts;
pub use progress::Progress;
pub use pull::{list_tags, pull, PullOptions, Pulled};
pub use push::{local_tags, push, Pushed};
