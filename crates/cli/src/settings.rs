//! What the binary reads from its environment and configuration file, once, before any command
//! runs. Library crates read no environment variable: commands hand them these values.

use std::path::PathBuf;
use std::sync::OnceLock;

use crate::cli::Cli;

/// Settings of this invocation besides its command's arguments.
#[derive(Debug)]
pub struct Settings {
    /// How registries are reached: insecure registries (`--insecure-registry` and
    /// `insecure-registries` in `$STRATA_CONFIG`), Docker's `config.json` (`$DOCKER_CONFIG`,
    /// else `~/.docker`), and the transfer tunables (`STRATA_MAX_CONCURRENT_DOWNLOADS`,
    /// `STRATA_MAX_CONCURRENT_UPLOADS`, `STRATA_PUSH_CHUNK_SIZE`, `STRATA_TAGS_PAGE_SIZE`).
    pub hosts: registry::Hosts,
    /// `STRATA_SNAPSHOTTER`: `overlayfs`, `fuse-overlayfs`, `copy`, or unset for the automatic
    /// choice (overlayfs, else rootless `fuse-overlayfs` when installed, else copy).
    pub snapshotter: snapshot::Choice,
    /// The init binary for `--init` (tini): `init-path` in the configuration file when set
    /// (if it names no file there is none), else the first of [`INIT_PATHS`] that exists.
    /// None when there is none: a container with `--init` then fails with a clear error.
    pub init_path: Option<PathBuf>,
    /// The pasta binary (Debian's `passt` package) that connects the default private
    /// network: `$STRATA_PASTA`, else `pasta` in `$PATH`, else `/usr/bin` or `/usr/sbin`
    /// (its `pasta.avx2` beside it on a CPU with AVX2).
    pub pasta: Option<PathBuf>,
    /// `STRATA_BUILD_JOBS`: how many stages a build runs at once (1: one after another);
    /// unset (0): one per CPU, at least two.
    pub build_jobs: usize,
    /// The build cache's garbage collection after each build: `builder.gc` in the
    /// configuration file (Docker's daemon.json keys: `enabled`, default true, and
    /// `defaultKeepStorage`, e.g. `"20GB"` or bytes). None when disabled.
    pub builder_gc: Option<BuilderGc>,
}

/// The automatic build cache policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuilderGc {
    /// Bytes of build cache to keep; None: 10% of the store's filesystem, at most 20 GB.
    pub keep_storage: Option<u64>,
}

/// Where Docker installs `docker-init` (tini), searched when the configuration file names
/// no `init-path`.
const INIT_PATHS: [&str; 3] = [
    "/usr/bin/tini-static",
    "/usr/bin/docker-init",
    "/usr/libexec/docker/docker-init",
];

static SETTINGS: OnceLock<Settings> = OnceLock::new();

/// The settings `main` loaded.
pub fn get() -> &'static Settings {
    SETTINGS
        .get()
        .expect("settings are loaded by main before any command runs")
}

/// Reads the environment and the configuration file once; an error is a usage error.
pub fn load(cli: &Cli) -> anyhow::Result<&'static Settings> {
    let config = config_file()?;
    let mut hosts = registry::Hosts::new(docker_config_file());
    hosts.insecure = insecure_registries(&cli.insecure_registries, &config)?;
    if let Some(n) = number("STRATA_MAX_CONCURRENT_DOWNLOADS")? {
        hosts.max_concurrent_downloads = n as usize;
    }
    if let Some(n) = number("STRATA_MAX_CONCURRENT_UPLOADS")? {
        hosts.max_concurrent_uploads = n as usize;
    }
    if let Some(n) = number("STRATA_PUSH_CHUNK_SIZE")? {
        hosts.push_chunk_size = n;
    }
    if let Some(n) = number("STRATA_TAGS_PAGE_SIZE")? {
        hosts.tags_page_size =
            u32::try_from(n).map_err(|_| anyhow::anyhow!("STRATA_TAGS_PAGE_SIZE is too large"))?;
    }
    let build_jobs = number("STRATA_BUILD_JOBS")?.unwrap_or(0) as usize;
    let snapshotter = std::env::var("STRATA_SNAPSHOTTER")
        .unwrap_or_default()
        .parse()
        .map_err(|e| anyhow::anyhow!("STRATA_SNAPSHOTTER: {e}"))?;
    let init_path = match config.value.get("init-path") {
        Some(v) => {
            let p = v
                .as_str()
                .ok_or_else(|| config.invalid("init-path must be a string"))?;
            Some(PathBuf::from(p)).filter(|p| p.is_file())
        }
        None => INIT_PATHS.iter().map(PathBuf::from).find(|p| p.is_file()),
    };
    let builder_gc = builder_gc(&config)?;
    Ok(SETTINGS.get_or_init(|| Settings {
        hosts,
        snapshotter,
        init_path,
        pasta: pasta(),
        build_jobs,
        builder_gc,
    }))
}

/// `builder.gc` of the configuration file: `{"enabled": bool, "defaultKeepStorage": SIZE}`.
fn builder_gc(config: &ConfigFile) -> anyhow::Result<Option<BuilderGc>> {
    let Some(gc) = config.value.get("builder").and_then(|b| b.get("gc")) else {
        return Ok(Some(BuilderGc { keep_storage: None }));
    };
    if !gc.is_object() {
        return Err(config.invalid("builder.gc must be an object"));
    }
    match gc.get("enabled") {
        None => {}
        Some(serde_json::Value::Bool(true)) => {}
        Some(serde_json::Value::Bool(false)) => return Ok(None),
        Some(_) => return Err(config.invalid("builder.gc.enabled must be true or false")),
    }
    let keep_storage = match gc.get("defaultKeepStorage") {
        None => None,
        Some(serde_json::Value::Number(n)) => Some(
            n.as_u64()
                .ok_or_else(|| config.invalid("builder.gc.defaultKeepStorage must be a size"))?,
        ),
        Some(serde_json::Value::String(s)) => {
            Some(crate::commands::parse_keep_storage(s).ok_or_else(|| {
                config.invalid(format!("builder.gc.defaultKeepStorage: invalid size {s:?}"))
            })?)
        }
        Some(_) => return Err(config.invalid("builder.gc.defaultKeepStorage must be a size")),
    };
    Ok(Some(BuilderGc { keep_storage }))
}

fn pasta() -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &std::path::Path| {
        std::fs::metadata(p)
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    };
    if let Some(p) = std::env::var_os("STRATA_PASTA").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        return executable(&p).then_some(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path)
        .chain(["/usr/bin".into(), "/usr/sbin".into()])
        .map(|d| d.join("pasta"))
        .find(|p| executable(p))?;
    // passt's packages install `pasta.avx2` beside `pasta`, which re-executes itself as that
    // on a CPU with AVX2: a second exec at every container start (2 ms here), saved by
    // running it directly.
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        let mut avx2 = found.clone().into_os_string();
        avx2.push(".avx2");
        let avx2 = PathBuf::from(avx2);
        if executable(&avx2) {
            return Some(avx2);
        }
    }
    Some(found)
}

/// strata's configuration file (`$STRATA_CONFIG`, default `/etc/strata/daemon.json`), with
/// Docker's daemon.json keys; an absent file is an empty one.
struct ConfigFile {
    path: PathBuf,
    value: serde_json::Value,
}

impl ConfigFile {
    fn invalid(&self, what: impl std::fmt::Display) -> anyhow::Error {
        anyhow::anyhow!("invalid configuration file {}: {what}", self.path.display())
    }
}

fn config_file() -> anyhow::Result<ConfigFile> {
    let path = std::env::var_os("STRATA_CONFIG")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/etc/strata/daemon.json"));
    let value = match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| anyhow::anyhow!("invalid configuration file {}: {e}", path.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => serde_json::json!({}),
        Err(e) => return Err(anyhow::anyhow!("{}: {e}", path.display())),
    };
    Ok(ConfigFile { path, value })
}

/// A positive number from the environment variable `name`, if set.
fn number(name: &str) -> anyhow::Result<Option<u64>> {
    match std::env::var(name) {
        Ok(v) => match v.trim().parse::<u64>() {
            Ok(n) if n > 0 => Ok(Some(n)),
            _ => Err(anyhow::anyhow!("{name}={v:?} is not a positive number")),
        },
        Err(_) => Ok(None),
    }
}

/// Docker's client configuration file: `$DOCKER_CONFIG/config.json`, else
/// `~/.docker/config.json`.
fn docker_config_file() -> PathBuf {
    let dir = match std::env::var_os("DOCKER_CONFIG") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => {
            let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
            PathBuf::from(home).join(".docker")
        }
    };
    dir.join("config.json")
}

/// Registries named insecure by `--insecure-registry` and by `insecure-registries` in the
/// configuration file.
fn insecure_registries(flags: &[String], config: &ConfigFile) -> anyhow::Result<Vec<String>> {
    let mut list: Vec<String> = flags.to_vec();
    if let Some(entries) = config.value.get("insecure-registries") {
        let entries = entries
            .as_array()
            .ok_or_else(|| config.invalid("insecure-registries must be a list"))?;
        for e in entries {
            let s = e.as_str().ok_or_else(|| {
                config.invalid(format!("insecure-registries holds {e}, not a string"))
            })?;
            list.push(s.to_string());
        }
    }
    for r in &list {
        // Docker accepts a scheme-less host[:port]; a URL is a common mistake.
        if r.contains("://") || r.contains('/') || r.is_empty() {
            return Err(anyhow::anyhow!(
                "insecure registry {r} is not valid: use HOST[:PORT], without a scheme or path"
            ));
        }
    }
    Ok(list)
}
