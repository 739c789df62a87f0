//! How strata reaches registries, decided once by the binary (flags, environment, the
//! configuration file) and passed to every pull, push and login: containerd's `HostOptions`.

use std::path::PathBuf;

/// Settings for talking to registries. The library reads no environment variable: the binary
/// fills this in and hands it down.
#[derive(Debug, Clone)]
pub struct Hosts {
    /// Registries reached over plain HTTP besides loopback ones (`host` or `host:port`, as
    /// Docker's `insecure-registries`).
    pub insecure: Vec<String>,
    /// Docker's client configuration (`$DOCKER_CONFIG/config.json`): credentials and helpers.
    pub config_file: PathBuf,
    /// Layers a pull downloads at once (Docker's `max-concurrent-downloads`, 3).
    pub max_concurrent_downloads: usize,
    /// Layers a push uploads at once (Docker's `max-concurrent-uploads`, 5).
    pub max_concurrent_uploads: usize,
    /// Blobs larger than this are pushed in chunks of this many bytes.
    pub push_chunk_size: u64,
    /// Tags asked for per page of a tag list.
    pub tags_page_size: u32,
}

impl Hosts {
    /// Docker's defaults, with credentials in `config_file`.
    pub fn new(config_file: PathBuf) -> Hosts {
        Hosts {
            insecure: Vec::new(),
            config_file,
            max_concurrent_downloads: 3,
            max_concurrent_uploads: 5,
            push_chunk_size: 128 << 20,
            tags_page_size: 1000,
        }
    }

    /// True for hosts Docker talks to over plain HTTP: loopback addresses and `localhost`,
    /// and the registries named in [`Hosts::insecure`] (by `host:port` or by host alone).
    pub fn is_insecure(&self, registry: &str) -> bool {
        let host = host_of(registry);
        if host == "localhost" || host == "::1" {
            return true;
        }
        if host.starts_with("127.") && host.parse::<std::net::Ipv4Addr>().is_ok() {
            return true;
        }
        self.insecure
            .iter()
            .map(|r| r.trim())
            .any(|r| !r.is_empty() && (r == registry || r == host))
    }
}

/// The host of `host[:port]` or `[v6]:port`.
fn host_of(registry: &str) -> &str {
    if let Some(rest) = registry.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    registry.split(':').next().unwrap_or(registry)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_and_named_registries_are_insecure() {
        let mut h = Hosts::new(PathBuf::from("/nonexistent/config.json"));
        for r in [
            "127.0.0.1:5000",
            "localhost:5000",
            "[::1]:5000",
            "127.1.2.3",
        ] {
            assert!(h.is_insecure(r), "{r}");
        }
        assert!(!h.is_insecure("127.example.com"));
        assert!(!h.is_insecure("registry.example.com"));
        h.insecure = vec!["reg.example:5000".into(), " other.example".into()];
        assert!(h.is_insecure("reg.example:5000"));
        assert!(!h.is_insecure("reg.example:5001"));
        assert!(h.is_insecure("other.example"));
        assert!(h.is_insecure("other.example:443"));
        assert!(!h.is_insecure("example"));
    }
}
