//! Plain HTTP(S) downloads for `ADD URL`: one GET (redirects followed), the body streamed to a
//! file. Not a registry call, but this crate is where strata's HTTP client lives.

use std::fs;
use std::io;
use std::path::Path;
use std::time::Duration;

use crate::error::{Error, Result};

/// What a download learned from the response headers.
#[derive(Debug, Clone, Default)]
pub struct Download {
    pub content_disposition: Option<String>,
    pub last_modified: Option<String>,
    pub bytes: u64,
}

/// Downloads `url` into the file `dest` (created, or truncated).
pub fn download(url: &str, dest: &Path) -> Result<Download> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .user_agent(format!("strata/{}", env!("CARGO_PKG_VERSION")))
        .timeout_connect(Some(Duration::from_secs(30).min(crate::client::timeout())))
        .timeout_recv_response(Some(crate::client::response_timeout()))
        .timeout_per_read(Some(crate::client::timeout()))
        .build()
        .into();
    let mut resp = agent.get(url).call().map_err(|e| Error::http(url, e))?;
    let status = resp.status();
    if !status.is_success() {
        return Err(Error::http(
            url,
            format!("failed to GET {url} with status {status}"),
        ));
    }
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let content_disposition = header("content-disposition");
    let last_modified = header("last-modified");
    let mut f = fs::File::create(dest).map_err(|e| Error::io(dest.display(), e))?;
    let mut body =
        crate::client::Watchdog::new(resp.body_mut().with_config().limit(u64::MAX).reader(), url);
    let bytes = io::copy(&mut body, &mut f).map_err(|e| Error::http(url, e))?;
    Ok(Download {
        content_disposition,
        last_modified,
        bytes,
    })
}
