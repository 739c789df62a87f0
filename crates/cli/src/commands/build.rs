//! `strata build [-t NAME]… [-f FILE|-] [--build-arg K[=V]]… [--target] [--no-cache] [-q]
//! [--network host|none] [--label K=V]… [--iidfile FILE] CONTEXT|-`

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, IsTerminal, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{Context as _, Result};

use crate::cli::BuildArgs;
use crate::Failure;

/// The output of a `build -q`, kept in memory.
#[derive(Clone)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Runs RUN steps with strata's runtime.
struct Runner {
    state_dir: PathBuf,
    /// `--network`: the private network (default, as Docker's classic builder runs steps
    /// on its bridge), `host` or `none`.
    network: runtime::Network,
    /// The pasta binary, for the private network.
    pasta: Option<PathBuf>,
    /// Compiled seccomp filters (`ROOT/cache/seccomp`, shared with containers).
    seccomp_cache: PathBuf,
    /// What every step gets: `--add-host`, `--shm-size` and the limits (`-m`, `--memory-swap`,
    /// `--cpu-shares`, `--cpuset-cpus`, `--cpu-period`/`--cpu-quota`), as Docker's classic
    /// builder gives its RUN containers.
    step: StepSettings,
    /// Whether the cgroups of build steps of killed builds were removed: before the first
    /// RUN step, so that a build that runs nothing does not look for them.
    swept: std::sync::Once,
}

/// [`Runner::step`].
#[derive(Default, Clone)]
struct StepSettings {
    extra_hosts: Vec<(String, String)>,
    shm_size: Option<u64>,
    resources: runtime::Resources,
}

impl StepSettings {
    fn from_args(a: &BuildArgs) -> Result<StepSettings> {
        let extra_hosts = ::container::parse_extra_hosts(&a.add_host).map_err(|e| {
            Failure::new(
                125,
                format!(
                    "invalid argument {:?} for \"--add-host\" flag: {e}",
                    a.add_host.join(",")
                ),
            )
        })?;
        let size = |flag: &str, v: &Option<String>| -> Result<Option<u64>> {
            v.as_deref()
                .map(|s| super::run::parse_size(flag, s))
                .transpose()
        };
        let nano_cpus = match (a.cpu_quota, a.cpu_period) {
            (Some(q), p) if q > 0 => {
                Some(q * 1_000_000_000 / p.filter(|p| *p > 0).unwrap_or(100_000))
            }
            _ => None,
        };
        let resources = runtime::Resources {
            memory: size("-m, --memory", &a.memory)?,
            memory_swap: a
                .memory_swap
                .as_deref()
                .map(super::run::parse_swap)
                .transpose()?,
            nano_cpus,
            cpu_shares: a.cpu_shares.filter(|c| *c > 0),
            cpuset_cpus: a.cpuset_cpus.clone().filter(|c| !c.is_empty()),
            ..Default::default()
        };
        Ok(StepSettings {
            extra_hosts,
            shm_size: size("--shm-size", &a.shm_size)?,
            resources,
        })
    }
}

impl build::RunStep for Runner {
    fn run(&self, req: &build::RunRequest<'_>) -> std::result::Result<i32, build::HookError> {
        // Build steps of a killed build leave their (empty) cgroups behind.
        self.swept.call_once(runtime::remove_orphaned_cgroups);
        let image = runtime::ImageConfig {
            env: req.env.to_vec(),
            cmd: None,
            entrypoint: None,
            working_dir: req.workdir.to_string(),
            user: req.user.to_string(),
            ..Default::default()
        };
        let id = format!("build-{}-{}", std::process::id(), next_step());
        let opts = runtime::RunOptions {
            id: id.clone(),
            entrypoint: Some(String::new()),
            args: req.argv.to_vec(),
            mounts: req
                .mounts
                .iter()
                .map(|m| runtime::MountSpec {
                    kind: match &m.source {
                        Some(p) => runtime::MountKind::Bind { source: p.clone() },
                        None => runtime::MountKind::Tmpfs {
                            options: m
                                .tmpfs_size
                                .map(|s| format!("size={s}"))
                                .unwrap_or_default(),
                        },
                    },
                    destination: m.target.clone(),
                    readonly: m.readonly,
                })
                .collect(),
            // Docker runs build steps without no_new_privs (sudo/su work in RUN).
            no_new_privileges: false,
            network: if req.network_none {
                runtime::Network::None
            } else if req.network_host {
                runtime::Network::Host
            } else {
                self.network
            },
            privileged: req.insecure,
            extra_hosts: self.step.extra_hosts.clone(),
            shm_size: self.step.shm_size,
            resources: self.step.resources.clone(),
            ..Default::default()
        };
        let mut spec = runtime::compose(&image, &opts)?;
        let user = runtime::resolve_user(req.rootfs, &spec.process.user)?;
        spec.apply_user(&user);
        let state = self.state_dir.join(&id);
        runtime::write_etc_files(&state, &spec)?;
        // The step's output goes to the build's (each stage's output in its place).
        let piped = if req.quiet {
            None
        } else {
            Some((pipe()?, pipe()?))
        };
        let (out, err, readers) = match piped {
            None => (runtime::Stdio::Null, runtime::Stdio::Null, None),
            Some(((out_r, out_w), (err_r, err_w))) => (
                runtime::Stdio::Fd(out_w),
                runtime::Stdio::Fd(err_w),
                Some((out_r, err_r)),
            ),
        };
        let finished = AtomicBool::new(false);
        let res = std::thread::scope(|scope| {
            let relay = readers.map(|(o, e)| scope.spawn(move || relay(o, e, req.output)));
            let res = runtime::spawn(
                req.rootfs,
                &spec,
                runtime::SpawnOptions {
                    id,
                    state_dir: Some(state.clone()),
                    stdin: runtime::Stdio::Null,
                    stdout: out,
                    stderr: err,
                    kill_with_parent: true,
                    tty: false,
                    init_path: None,
                    pasta: self.pasta.clone(),
                    seccomp_cache: Some(self.seccomp_cache.clone()),
                    network: None,
                },
            )
            .and_then(|mut c| {
                // A cancelled build kills the step (its PID namespace goes with its first
                // process).
                // Through a pidfd taken while the process is unreaped, so that a PID
                // reused after the wait is never signalled.
                // SAFETY: pidfd_open of our own child, not yet waited for.
                let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, c.pid(), 0) };
                let pidfd = (pidfd >= 0).then(|| {
                    // SAFETY: a descriptor just returned to us.
                    unsafe { std::os::fd::OwnedFd::from_raw_fd(pidfd as i32) }
                });
                let watch = req.cancel.zip(pidfd).map(|(cancel, pidfd)| {
                    let finished = &finished;
                    scope.spawn(move || {
                        while !finished.load(Ordering::SeqCst) {
                            if cancel.load(Ordering::SeqCst) {
                                // SAFETY: a signal through the pidfd we own.
                                unsafe {
                                    libc::syscall(
                                        libc::SYS_pidfd_send_signal,
                                        pidfd.as_raw_fd(),
                                        libc::SIGKILL,
                                        std::ptr::null::<libc::siginfo_t>(),
                                        0,
                                    )
                                };
                                return;
                            }
                            std::thread::sleep(std::time::Duration::from_millis(50));
                        }
                    })
                });
                let r = c.wait();
                finished.store(true, Ordering::SeqCst);
                if let Some(w) = watch {
                    let _ = w.join();
                }
                r
            });
            // Every copy of the pipes' write ends is closed once the step's processes are
            // gone.
            if let Some(r) = relay {
                let _ = r.join();
            }
            res
        });
        let _ = fs::remove_dir_all(&state);
        Ok(res?)
    }
}

/// A pipe, both ends close-on-exec.
fn pipe() -> io::Result<(fs::File, std::os::fd::OwnedFd)> {
    use std::os::fd::FromRawFd;
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just made and are owned by nothing else.
    unsafe {
        Ok((
            fs::File::from_raw_fd(fds[0]),
            std::os::fd::OwnedFd::from_raw_fd(fds[1]),
        ))
    }
}

/// Hands a step's output to `sink` as it comes, chunk by chunk. One thread reads both
/// streams, standard output first when both have data, so that their order holds.
fn relay(out: fs::File, err: fs::File, sink: &dyn build::StepOutput) {
    use std::os::fd::AsRawFd;
    let mut buf = vec![0u8; 32 * 1024];
    let mut open: Vec<(fs::File, bool)> = vec![(out, false), (err, true)];
    while !open.is_empty() {
        let mut fds: Vec<libc::pollfd> = open
            .iter()
            .map(|(f, _)| libc::pollfd {
                fd: f.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        // SAFETY: `fds` holds `fds.len()` initialised entries for open descriptors.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
        if n < 0 {
            if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return;
        }
        let mut closed = Vec::new();
        for (i, p) in fds.iter().enumerate() {
            if p.revents == 0 {
                continue;
            }
            let (f, is_err) = &mut open[i];
            match f.read(&mut buf) {
                Ok(0) | Err(_) => closed.push(i),
                Ok(n) => sink.write(*is_err, &buf[..n]),
            }
        }
        for i in closed.into_iter().rev() {
            open.remove(i);
        }
    }
}

/// A failed pull as the build's hook error. Its message is the whole chain (`{:#}`), as
/// `strata` prints a pull's errors, so the chain is not offered again as `source()`.
#[derive(Debug)]
struct PullFailed(anyhow::Error);

impl std::fmt::Display for PullFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#}", self.0)
    }
}

impl std::error::Error for PullFailed {}

fn next_step() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

fn parse_kv(list: &[String], from_env: bool) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for item in list {
        match item.split_once('=') {
            Some((k, v)) => {
                out.insert(k.to_string(), v.to_string());
            }
            None if from_env => {
                // `--build-arg NAME` takes the value from the environment, when set.
                if let Ok(v) = std::env::var(item) {
                    out.insert(item.clone(), v);
                }
            }
            None => {
                out.insert(item.clone(), String::new());
            }
        }
    }
    out
}

/// The directory of a `--cache-from`/`--cache-to` spec (`type=local,src=DIR` / `dest=DIR`).
enum CacheSpec {
    /// `type=local,src|dest=DIR`: an OCI image layout directory.
    Local(PathBuf),
    /// `type=registry,ref=NAME[:TAG]`: an OCI index in a registry.
    Registry(oci::Reference),
}

/// A parsed `--cache-from`/`--cache-to`.
struct CacheArgs {
    spec: CacheSpec,
    /// `mode=max`: every stage's images, not only the final one.
    max: bool,
    /// How the layers go out (`compression`, `compression-level`, `force-compression`,
    /// `oci-mediatypes`).
    export: image::ExportOptions,
}

/// Parses `--cache-from`/`--cache-to` (`key` is `src` or `dest`).
fn cache_spec(spec: &str, key: &str) -> Result<CacheArgs> {
    let mut kind = None;
    let mut dir = None;
    let mut reference = None;
    let mut max = false;
    let mut compression = "gzip";
    let mut level = None;
    let mut force = false;
    let mut oci = false;
    let bad = |why: &str| -> anyhow::Error {
        Failure::new(125, format!("invalid cache spec {spec:?}: {why}")).into()
    };
    for field in spec.split(',') {
        match field.split_once('=') {
            Some(("type", t)) => kind = Some(t),
            Some((k, v)) if k == key => dir = Some(PathBuf::from(v)),
            Some(("ref", v)) => reference = Some(v),
            Some(("mode", "max")) => max = true,
            Some(("mode", "min")) => max = false,
            Some(("mode", m)) => return Err(bad(&format!("unknown mode {m:?}"))),
            Some(("compression", v)) => compression = v,
            Some(("compression-level", v)) => level = Some(v),
            Some(("force-compression", v)) => force = super::push::bool_field(field, v)?,
            Some(("oci-mediatypes", v)) => oci = super::push::bool_field(field, v)?,
            // BuildKit's options that change nothing here.
            Some(("image-manifest" | "ignore-error", _)) => {}
            // `--cache-from NAME` without a key means a registry reference, as in BuildKit.
            None if !field.is_empty() && kind.is_none() && reference.is_none() => {
                kind = Some("registry");
                reference = Some(field);
            }
            _ => return Err(bad(&format!("unknown field {field:?}"))),
        }
    }
    let export = super::push::export_options(compression, level, force, oci)?;
    let spec = match kind.unwrap_or("local") {
        "local" => {
            let dir = dir.ok_or_else(|| bad(&format!("{key}=DIR is required")))?;
            CacheSpec::Local(dir)
        }
        "registry" => {
            let r = reference.ok_or_else(|| bad("ref=NAME is required"))?;
            let r = image::parse_name(r).map_err(|e| Failure::new(125, e.to_string()))?;
            CacheSpec::Registry(r)
        }
        other => {
            return Err(Failure::new(
                1,
                format!("cache type {other} is not supported: use type=local or type=registry"),
            )
            .into())
        }
    };
    Ok(CacheArgs { spec, max, export })
}

/// `--ssh default|ID[=SOCKET]`: agent sockets (`$SSH_AUTH_SOCK` when none is named). Key
/// files, which BuildKit serves through an agent of its own, are refused with a clear error.
fn parse_ssh(list: &[String]) -> Result<BTreeMap<String, PathBuf>> {
    use std::os::unix::fs::FileTypeExt;
    let mut out = BTreeMap::new();
    for s in list {
        let (id, path) = match s.split_once('=') {
            Some((id, p)) => (id.to_string(), PathBuf::from(p)),
            None => match std::env::var_os("SSH_AUTH_SOCK") {
                Some(p) => (s.clone(), PathBuf::from(p)),
                None => {
                    return Err(Failure::new(
                        1,
                        format!(
                        "--ssh {s}: SSH_AUTH_SOCK is not set: give a socket with --ssh {s}=SOCKET"
                    ),
                    )
                    .into())
                }
            },
        };
        if id.is_empty() || path.as_os_str().is_empty() || path.to_string_lossy().contains(',') {
            return Err(Failure::new(
                125,
                format!("invalid ssh spec {s:?}: expected default|ID[=SOCKET]"),
            )
            .into());
        }
        match fs::metadata(&path) {
            Ok(md) if md.file_type().is_socket() => {}
            Ok(_) => {
                return Err(Failure::new(
                    1,
                    format!(
                        "--ssh {id}: {} is not an agent socket (key files are not supported: start ssh-agent and give its socket)",
                        path.display()
                    ),
                )
                .into())
            }
            Err(e) => {
                return Err(Failure::new(1, format!("--ssh {id}: {}: {e}", path.display())).into())
            }
        }
        out.insert(id, path);
    }
    Ok(out)
}

/// `--secret id=NAME,src=PATH` (also `source=`, and `type=file`).
fn parse_secrets(list: &[String]) -> Result<BTreeMap<String, PathBuf>> {
    let mut out = BTreeMap::new();
    for s in list {
        let (mut id, mut src) = (None, None);
        for field in s.split(',') {
            match field.split_once('=') {
                Some(("id", v)) => id = Some(v.to_string()),
                Some(("src" | "source", v)) => src = Some(PathBuf::from(v)),
                Some(("type", "file")) => {}
                _ => {
                    return Err(Failure::new(
                        125,
                        format!("invalid secret {s:?}: expected id=NAME,src=PATH"),
                    )
                    .into())
                }
            }
        }
        match (id, src) {
            (Some(id), Some(src)) => {
                if !src.is_file() {
                    return Err(Failure::new(
                        1,
                        format!("secret {id}: {} is not a file", src.display()),
                    )
                    .into());
                }
                out.insert(id, src);
            }
            _ => {
                return Err(Failure::new(
                    125,
                    format!("invalid secret {s:?}: expected id=NAME,src=PATH"),
                )
                .into())
            }
        }
    }
    Ok(out)
}

/// Where the build reads from: the context directory and the Dockerfile.
struct Input {
    context_dir: PathBuf,
    dockerfile_path: PathBuf,
    text: String,
    /// The context came as a tar whose headers' modes lack file type bits.
    plain_modes: bool,
}

/// What the builder needs on this machine: the snapshots, Docker's `-init` layer, the
/// directory for step mounts and the runner of RUN steps.
struct Machinery {
    snapshots: Box<dyn snapshot::Snapshotter>,
    init: PathBuf,
    work: PathBuf,
    runner: Runner,
}

/// Where a build's bytes come from and go: the terminal's for the CLI, a request's for the
/// Engine API (`/build`).
pub struct Session<'a> {
    /// The classic output, and the image ID of `-q`.
    pub out: Box<dyn Write + Send>,
    /// BuildKit's display, and the output `-q` kept when the build fails.
    pub err: Box<dyn Write + Send>,
    /// The context archive of `CONTEXT` `-` (standard input when None).
    pub archive: Option<Box<dyn Read + Send + 'a>>,
    /// Called with the image's ID before `Successfully built` (the API's `aux` message).
    pub on_built: Option<&'a (dyn Fn(&oci::Digest) + Sync)>,
    /// Set to stop the build at its next step (the API's client went away).
    pub cancel: Option<Arc<std::sync::atomic::AtomicBool>>,
    /// The Dockerfile is a path inside the context only, resolved there (the API: the
    /// context and its names come from a client, not from this machine's files).
    pub confined: bool,
}

impl Session<'_> {
    /// The CLI's: standard output and error, standard input for `-`.
    pub fn terminal() -> Session<'static> {
        Session {
            out: Box::new(io::stdout()),
            err: Box::new(io::stderr()),
            archive: None,
            on_built: None,
            cancel: None,
            confined: false,
        }
    }
}

pub fn run(root: &Path, a: BuildArgs) -> Result<()> {
    if a.check {
        return super::build_check::run(root, &a);
    }
    let mut kept = None;
    let built = build_keeping(root, a, Session::terminal(), &mut kept);
    // The build cache's size policy (`builder.gc` in the configuration file), on the build's
    // own store handle when it got that far.
    super::builder_gc::after_build(root, kept.as_mut());
    built.map(|_| ())
}

/// Builds as `a` says, reading and writing through `session`; returns the image's ID.
pub fn build(root: &Path, a: BuildArgs, session: Session<'_>) -> Result<oci::Digest> {
    build_keeping(root, a, session, &mut None)
}

/// [`build`], leaving the store handle it opened in `kept`.
fn build_keeping(
    root: &Path,
    mut a: BuildArgs,
    mut session: Session<'_>,
    kept: &mut Option<store::Store>,
) -> Result<oci::Digest> {
    let platform = a.platform.as_deref().map(build_platform).transpose()?;
    let allow_insecure = allow_insecure(&a.allow)?;
    let mut progress = progress_mode(a.progress.as_deref())?;
    // buildx's check: `-q` is the quiet display (`-q --progress=auto` is `-q`).
    if let Some(p) = a
        .progress
        .as_deref()
        .filter(|p| a.quiet && !matches!(*p, "auto" | "quiet"))
    {
        return Err(
            Failure::new(1, format!("progress={p} and quiet cannot be used together")).into(),
        );
    }
    // `--progress=quiet` is `-q`.
    a.quiet |= a.progress.as_deref() == Some("quiet");
    if a.quiet {
        progress = build::Progress::Classic;
    }
    // `tty` and `auto` on a terminal: BuildKit's terminal display, drawn from the rawjson
    // events (elsewhere they are `plain`, as Docker's are).
    let tty = progress == build::Progress::Plain
        && matches!(a.progress.as_deref(), Some("tty" | "auto"))
        && !session.confined
        && session.on_built.is_none()
        && io::stderr().is_terminal();
    if tty {
        progress = build::Progress::RawJson;
    }
    let network = network_mode(&a.network)?;
    let mut tags = Vec::new();
    for t in &a.tags {
        tags.push(image::parse_name(t)?);
    }
    let outputs = super::build_output::parse_outputs(&a.outputs)?;
    for r in super::build_output::image_names(&outputs) {
        if !tags.iter().any(|t| t.to_string() == r.to_string()) {
            tags.push(r.clone());
        }
    }
    let mut stdout = match session.confined {
        false => super::build_output::take_stdout(&outputs)?,
        true => None,
    };
    let store = kept.insert(super::open_store(root)?);
    // A context from standard input is unpacked into a staging area.
    let staging = if a.context == "-" {
        Some(store.stage()?)
    } else {
        None
    };
    let input = read_input(&a, staging.as_ref(), &mut session)?;
    let ctx = context(root, &a, &input)?;
    let mut build_args = parse_kv(&a.build_args, true);
    let source_date_epoch = source_date_epoch(&mut build_args)?;
    let df_opts = dockerfile::BuildOptions {
        build_args: build_args.clone(),
        target: a.target.clone(),
        classic: true,
        ..Default::default()
    };
    let df = dockerfile::parse_and_lower(&input.text, &df_opts).map_err(|e| match e {
        // What Docker 20.10's parser itself refuses (rather than its instruction checks) is
        // reported as `failed to parse NAME: …`, without a line.
        dockerfile::Error::Parse { message, .. }
            if message == "file with no instructions"
                || message.ends_with(" must have two arguments")
                || message.starts_with("Syntax error - can't find = in ") =>
        {
            Failure::new(
                1,
                format!("failed to parse {}: {message}", dockerfile_name(&input)),
            )
        }
        e => Failure::new(1, e.to_string()),
    })?;
    let plan = build::plan(&df).map_err(|e| Failure::new(1, e.to_string()))?;
    let m = machinery(root, network, StepSettings::from_args(&a)?)?;
    // `-q`: Docker's client keeps the whole build output (RUN steps' too) and shows it, on
    // standard error, only when the build fails; a build that succeeds prints its ID.
    let captured = a.quiet.then(|| Captured(Arc::new(Mutex::new(Vec::new()))));
    let opts = build::BuildOptions {
        tags: tags.clone(),
        no_cache: a.no_cache,
        quiet: false,
        build_args,
        network_none: a.network == "none",
        labels: parse_kv(&a.labels, false).into_iter().collect(),
        target: a.target.clone(),
        secrets: parse_secrets(&a.secrets)?,
        ssh: parse_ssh(&a.ssh)?,
        pull: a.pull,
        source_date_epoch,
        allow_insecure,
        platform,
        squash: match (a.squash, a.squash_all) {
            (_, true) => build::Squash::All,
            (true, false) => build::Squash::NewLayers,
            (false, false) => build::Squash::No,
        },
        jobs: crate::settings::get().build_jobs,
        progress,
        // A context from standard input is new every time: nothing to compare with.
        source: (a.context != "-")
            .then(|| store::source_key(&input.context_dir, &input.dockerfile_path)),
        explain: a.explain,
        cancel: session.cancel.clone(),
    };
    let started = std::time::SystemTime::now();
    import_caches(store, &a.cache_from, a.quiet)?;
    let cache_to = a
        .cache_to
        .as_deref()
        .map(|s| cache_spec(s, "dest"))
        .transpose()?;
    // Not locked for the whole build: a FROM that pulls reports progress from other threads.
    // BuildKit's display goes to standard error, as BuildKit's.
    let Session {
        out: session_out,
        err: session_err,
        on_built,
        ..
    } = session;
    // With `-q`, the streams the ID (or, on failure, the captured output) goes to.
    let mut display = None;
    let (mut out, quiet_to): (Box<dyn Write + Send>, _) = match &captured {
        Some(c) => (Box::new(c.clone()), Some((session_out, session_err))),
        None if tty => {
            let d = super::build_tty::Display::new(session_err);
            let w = d.writer();
            display = Some(d);
            (Box::new(w), None)
        }
        None if progress != build::Progress::Classic => (session_err, None),
        None => (session_out, None),
    };
    let frontend = build::DockerfileFrontend::new(df.escape);
    // Pull progress goes to the terminal only (not under the terminal display it would
    // scribble over).
    let puller = puller(a.quiet || on_built.is_some() || tty, opts.platform.as_ref());
    let mut b = build::Builder {
        store: &mut *store,
        snapshots: m.snapshots.as_ref(),
        runner: &m.runner,
        frontend: &frontend,
        context: &ctx,
        work_dir: m.work,
        init_layer: m.init,
        cache_dir: store::Layout::new(root).build_cache(),
        stage_images: Vec::new(),
        steps: Vec::new(),
        puller: Some(&puller),
        fetcher: Some(&fetch),
        on_built,
        out: &mut out,
    };
    let result = b.build(&plan, &opts);
    let stage_images = std::mem::take(&mut b.stage_images);
    let steps = std::mem::take(&mut b.steps);
    if let Some(d) = display {
        d.finish();
    }
    if let Some(source) = &opts.source {
        let record = build_record(source, &input, &a, started, &result, steps);
        // Only the record is lost: the build itself is done.
        if let Err(e) = store.unsynced(|s| s.add_build_record(&record)) {
            tracing::debug!("cannot record the build: {e}");
        }
    }
    if let Err(e) = ctx.save_hash_cache() {
        // Only speed is lost.
        tracing::debug!("cannot save the context hash cache: {e}");
    }
    drop(staging);
    let id = match (result, &captured) {
        (Ok(id), Some(_)) => {
            if let Some((mut to, _)) = quiet_to {
                writeln!(to, "{id}")?;
                to.flush()?;
            }
            id
        }
        (Ok(id), None) => id,
        (Err(e), Some(c)) => {
            let Some((_, mut err)) = quiet_to else {
                return Err(build_failure(e));
            };
            let _ = err.write_all(&c.0.lock().unwrap_or_else(|e| e.into_inner()));
            let _ = err.flush();
            return Err(build_failure(e));
        }
        (Err(e), None) => return Err(build_failure(e)),
    };
    if let Some(to) = &cache_to {
        let tops: Vec<oci::Digest> = if to.max { stage_images } else { vec![id] };
        export_cache(store, to, &tops, a.quiet)?;
    }
    if let Some(f) = &a.iidfile {
        fs::write(f, id.to_string()).with_context(|| format!("write {}", f.display()))?;
    }
    out.flush()?;
    super::build_output::export(store, &id, &outputs, &tags, &mut stdout)?;
    Ok(id)
}

/// The record `builder history` shows of a build.
fn build_record(
    source: &str,
    input: &Input,
    a: &BuildArgs,
    started: std::time::SystemTime,
    result: &std::result::Result<oci::Digest, build::BuildError>,
    steps: Vec<store::StepRecord>,
) -> store::BuildRecord {
    let started_ms = started
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default();
    let dir = input
        .context_dir
        .canonicalize()
        .unwrap_or_else(|_| input.context_dir.clone());
    let mut name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "/".into());
    if let Some(t) = &a.target {
        name = format!("{name} ({t})");
    }
    let (status, error, image) = match result {
        Ok(id) => ("Completed", String::new(), id.to_string()),
        Err(build::BuildError::Cancelled) => ("Canceled", String::new(), String::new()),
        Err(e) => ("Error", e.to_string(), String::new()),
    };
    store::BuildRecord {
        id: build_ref(),
        source: source.to_string(),
        context: dir.display().to_string(),
        dockerfile: input
            .dockerfile_path
            .canonicalize()
            .unwrap_or_else(|_| input.dockerfile_path.clone())
            .display()
            .to_string(),
        name,
        started_ms,
        duration_ms: started.elapsed().map(|d| d.as_millis() as u64).unwrap_or(0),
        target: a.target.clone().unwrap_or_default(),
        tags: a.tags.clone(),
        status: status.into(),
        error,
        image,
        steps,
    }
}

/// A build's ID as BuildKit makes them: 25 lowercase letters and digits.
fn build_ref() -> String {
    let mut b = [0u8; 25];
    if let Ok(mut f) = fs::File::open("/dev/urandom") {
        let _ = f.read_exact(&mut b);
    }
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    b.iter()
        .map(|x| ALPHABET[*x as usize % ALPHABET.len()] as char)
        .collect()
}

/// `SOURCE_DATE_EPOCH`: the build arg, or else the environment variable, which then becomes
/// the build arg too (as buildx passes it on).
fn source_date_epoch(build_args: &mut BTreeMap<String, String>) -> Result<Option<i64>> {
    const NAME: &str = "SOURCE_DATE_EPOCH";
    if !build_args.contains_key(NAME) {
        match std::env::var(NAME) {
            Ok(v) if !v.is_empty() => {
                build_args.insert(NAME.into(), v);
            }
            _ => return Ok(None),
        }
    }
    let v = &build_args[NAME];
    if v.is_empty() {
        return Ok(None);
    }
    v.parse::<i64>().map(Some).map_err(|_| {
        Failure::new(
            1,
            format!("invalid SOURCE_DATE_EPOCH: {v:?}: expected seconds since 1970-01-01"),
        )
        .into()
    })
}

/// `--allow`: BuildKit's entitlements; whether `security.insecure` is among them.
fn allow_insecure(list: &[String]) -> Result<bool> {
    let mut insecure = false;
    for e in list.iter().flat_map(|a| a.split(',')) {
        match e.trim() {
            "security.insecure" => insecure = true,
            // Host networking needs no grant here (`--network host` never did).
            "network.host" => {}
            other => return Err(Failure::new(1, format!("invalid entitlement: {other}")).into()),
        }
    }
    Ok(insecure)
}

/// `--platform OS/ARCH[/VARIANT]`, normalised as containerd does (`x86_64` is `amd64`,
/// `amd64/v1` is `amd64`, `aarch64` is `arm64`…): only a platform this machine runs without
/// emulation (its architecture, and for amd64 the microarchitecture levels its CPU has).
fn build_platform(spec: &str) -> Result<oci::Platform> {
    let mut parts = spec.split('/').map(|p| p.trim().to_ascii_lowercase());
    let os = parts.next().unwrap_or_default();
    let arch = parts.next();
    let variant = parts.next();
    if os.is_empty() || parts.next().is_some() {
        return Err(Failure::new(
            125,
            format!("invalid platform {spec:?}: expected OS[/ARCH[/VARIANT]] (linux/amd64)"),
        )
        .into());
    }
    let host = oci::host_architecture();
    let (architecture, variant) = match (arch.as_deref(), variant.as_deref()) {
        (None, _) => (host.to_string(), String::new()),
        (Some("x86_64" | "x86-64" | "amd64"), v) => (
            "amd64".to_string(),
            v.filter(|v| *v != "v1").unwrap_or("").to_string(),
        ),
        (Some("aarch64" | "arm64"), v) => (
            "arm64".to_string(),
            v.filter(|v| *v != "v8").unwrap_or("").to_string(),
        ),
        (Some("i386" | "386"), v) => ("386".to_string(), v.unwrap_or("").to_string()),
        (Some("armhf"), None) => ("arm".to_string(), "v7".to_string()),
        (Some("armel"), None) => ("arm".to_string(), "v6".to_string()),
        (Some(a), v) => (a.to_string(), v.unwrap_or("").to_string()),
    };
    let runs = os == "linux"
        && architecture == host
        && (variant.is_empty() || amd64_levels().contains(&variant.as_str()));
    if !runs {
        let mut native = vec![format!("linux/{host}")];
        native.extend(amd64_levels().iter().map(|l| format!("linux/{host}/{l}")));
        return Err(Failure::new(
            1,
            format!(
                "platform {spec} is not supported: this machine runs {} without emulation, and strata does not emulate other platforms",
                native.join(", ")
            ),
        )
        .into());
    }
    Ok(oci::Platform {
        os,
        architecture,
        variant,
        ..Default::default()
    })
}

/// The amd64 microarchitecture levels above v1 (GOAMD64) this CPU has.
fn amd64_levels() -> Vec<&'static str> {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        let mut out = Vec::new();
        let v2 = has!("cmpxchg16b")
            && has!("popcnt")
            && has!("sse3")
            && has!("sse4.1")
            && has!("sse4.2")
            && has!("ssse3");
        let v3 = v2
            && has!("avx")
            && has!("avx2")
            && has!("bmi1")
            && has!("bmi2")
            && has!("f16c")
            && has!("fma")
            && has!("lzcnt")
            && has!("movbe")
            && has!("xsave");
        let v4 = v3
            && has!("avx512f")
            && has!("avx512bw")
            && has!("avx512cd")
            && has!("avx512dq")
            && has!("avx512vl");
        for (ok, l) in [(v2, "v2"), (v3, "v3"), (v4, "v4")] {
            if ok {
                out.push(l);
            }
        }
        out
    }
    #[cfg(not(target_arch = "x86_64"))]
    Vec::new()
}

/// `--progress`: BuildKit's display (`tty` and `auto` are `plain`: no terminal display is
/// drawn), or the classic output when not given (and for `quiet`, which is `-q`).
fn progress_mode(progress: Option<&str>) -> Result<build::Progress> {
    match progress {
        None | Some("quiet") => Ok(build::Progress::Classic),
        Some("plain" | "tty" | "auto") => Ok(build::Progress::Plain),
        Some("rawjson") => Ok(build::Progress::RawJson),
        Some(other) => Err(Failure::new(
            125,
            format!("invalid progress mode {other:?}: use auto, plain, tty, quiet or rawjson"),
        )
        .into()),
    }
}

/// `--network`: the private network (as Docker's classic builder runs steps on its
/// bridge), `host` or `none`.
fn network_mode(network: &str) -> Result<runtime::Network> {
    match network {
        "default" | "bridge" => Ok(runtime::Network::Private),
        "host" => Ok(runtime::Network::Host),
        "none" => Ok(runtime::Network::None),
        other => Err(Failure::new(
            125,
            format!("network mode {other:?} is not supported: use default, host or none"),
        )
        .into()),
    }
}

/// The context directory (a tar on standard input, `-`, is unpacked into `staging`) and the
/// Dockerfile: `-f FILE`, `-f -`, a Dockerfile on standard input, or `CONTEXT/Dockerfile`.
fn read_input(
    a: &BuildArgs,
    staging: Option<&store::Staging>,
    session: &mut Session<'_>,
) -> Result<Input> {
    let (context_dir, mut text, plain_modes) = if let Some(staging) = staging {
        match session.archive.take() {
            Some(archive) => stdin_context(a, staging, archive, "reading the build context")?,
            None => stdin_context(
                a,
                staging,
                Box::new(io::stdin().lock()),
                "reading the build context from standard input",
            )?,
        }
    } else {
        let p = PathBuf::from(&a.context);
        if !p.is_dir() {
            return Err(Failure::new(
                1,
                format!("unable to prepare context: path {:?} not found", a.context),
            )
            .into());
        }
        (p, None, false)
    };
    if session.confined {
        let name = a.file.as_deref().unwrap_or("Dockerfile");
        let text = read_in_root(&context_dir, name)?;
        return Ok(Input {
            dockerfile_path: context_dir.join(name),
            context_dir,
            text,
            plain_modes,
        });
    }
    let dockerfile_name: String = match a.file.as_deref() {
        _ if text.is_some() => "Dockerfile".into(),
        Some("-") => {
            let mut s = String::new();
            io::stdin().read_to_string(&mut s)?;
            text = Some(s);
            "Dockerfile".into()
        }
        Some(f) => f.to_string(),
        None => "Dockerfile".into(),
    };
    let dockerfile_path = if a.file.is_some() && a.file.as_deref() != Some("-") {
        let p = PathBuf::from(&dockerfile_name);
        if p.is_absolute() || p.exists() {
            p
        } else {
            context_dir.join(&dockerfile_name)
        }
    } else {
        context_dir.join(&dockerfile_name)
    };
    let text = match text {
        Some(t) => t,
        None => fs::read_to_string(&dockerfile_path).map_err(|_| {
            Failure::new(1, format!("unable to prepare context: unable to evaluate symlinks in Dockerfile path: lstat {}: no such file or directory", dockerfile_path.display()))
        })?,
    };
    if text.is_empty() {
        // Docker names the file as it is in the context.
        let name = dockerfile_path
            .strip_prefix(&context_dir)
            .ok()
            .or_else(|| dockerfile_path.file_name().map(Path::new))
            .unwrap_or(&dockerfile_path)
            .display()
            .to_string();
        return Err(Failure::new(1, format!("the Dockerfile ({name}) cannot be empty")).into());
    }
    Ok(Input {
        context_dir,
        dockerfile_path,
        text,
        plain_modes,
    })
}

/// The Dockerfile `name` inside the unpacked context `dir`, every symlink on the way resolved
/// as if `dir` were `/` (a context from a client may hold links that point anywhere).
fn read_in_root(dir: &Path, name: &str) -> Result<String> {
    use rustix::fs::{openat2, Mode, OFlags, ResolveFlags};
    let missing = || Failure::new(1, format!("Cannot locate specified Dockerfile: {name}"));
    let root = fs::File::open(dir).with_context(|| format!("opening {}", dir.display()))?;
    let rel = name.trim_start_matches('/');
    if rel.is_empty() {
        return Err(missing().into());
    }
    let fd = openat2(
        &root,
        rel,
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    )
    .map_err(|_| missing())?;
    let mut f = fs::File::from(fd);
    if !f.metadata()?.is_file() {
        return Err(missing().into());
    }
    let mut text = String::new();
    f.read_to_string(&mut text)
        .with_context(|| format!("reading the Dockerfile {name}"))?;
    if text.is_empty() {
        return Err(Failure::new(1, format!("the Dockerfile ({rel}) cannot be empty")).into());
    }
    Ok(text)
}

/// The Dockerfile's name as Docker's daemon knows it: its path in the context, or the
/// random name Docker's client gives a Dockerfile from elsewhere.
fn dockerfile_name(input: &Input) -> String {
    match input.dockerfile_path.strip_prefix(&input.context_dir) {
        Ok(rel) if !rel.as_os_str().is_empty() => rel.display().to_string(),
        _ => {
            let mut b = [0u8; 10];
            if let Ok(mut f) = fs::File::open("/dev/urandom") {
                let _ = f.read_exact(&mut b);
            }
            let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
            format!(".dockerfile.{hex}")
        }
    }
}

/// `build -`: a tar on standard input is the context; anything else is a Dockerfile with
/// an empty context, as Docker does.
fn stdin_context(
    a: &BuildArgs,
    staging: &store::Staging,
    mut input: Box<dyn Read + '_>,
    what: &'static str,
) -> Result<(PathBuf, Option<String>, bool)> {
    if a.file.as_deref() == Some("-") {
        return Err(Failure::new(
            125,
            "invalid argument: can't use stdin for both build context and dockerfile",
        )
        .into());
    }
    let dir = staging.new_dir("context")?;
    // A pipe may hand over fewer bytes per read: collect the first block first.
    let mut head = Vec::with_capacity(512);
    (&mut input)
        .take(512)
        .read_to_end(&mut head)
        .context(what)?;
    let archive = is_archive(&head);
    let plain_modes = tar_without_type_bits(&head);
    let mut stdin = io::Cursor::new(head).chain(input);
    if !archive {
        let mut s = String::new();
        stdin
            .read_to_string(&mut s)
            .context("reading the Dockerfile from standard input")?;
        return Ok((dir, Some(s), false));
    }
    let opts = layer::ApplyOptions {
        whiteouts: layer::WhiteoutMode::Delete,
        ..Default::default()
    };
    layer::apply_layer_with(stdin, &dir, &opts).context(what)?;
    Ok((dir, None, plain_modes))
}

/// The build context with its `.dockerignore` (NAME.dockerignore beside a Dockerfile named
/// NAME wins) and, for a context on disk, the file hashes of earlier builds.
fn context(root: &Path, a: &BuildArgs, input: &Input) -> Result<build::Context> {
    let df_base = input
        .dockerfile_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let candidates = [
        input
            .dockerfile_path
            .with_file_name(format!("{df_base}.dockerignore")),
        input.context_dir.join(".dockerignore"),
    ];
    let ignore = match candidates.iter().find_map(|c| fs::read_to_string(c).ok()) {
        Some(t) => Some(
            dockerfile::DockerIgnore::parse(&t)
                .map_err(|e| Failure::new(1, format!(".dockerignore: {e}")))?,
        ),
        None => None,
    };
    let exceptions = ignore.clone();
    let excluder: build::Excluder =
        Box::new(move |p: &str| ignore.as_ref().map(|i| i.matches(p)).unwrap_or(false));
    let kept_under: build::Excluder = Box::new(move |p: &str| {
        exceptions
            .as_ref()
            .is_some_and(|i| i.has_exception_under(p))
    });
    let mut ctx = build::Context::new(&input.context_dir, excluder).with_exceptions(kept_under);
    if input.plain_modes {
        ctx = ctx.with_plain_modes();
    }
    if a.context != "-" {
        // A context on disk keeps its file hashes for the next build (a tar from standard
        // input is unpacked anew each time, so it would only fill the cache).
        ctx = ctx.with_hash_cache(build::HashCache::for_context(
            &store::Layout::new(root).build_hashes(),
            &input.context_dir,
        ));
    }
    Ok(ctx)
}

/// Opens the snapshots, makes the `-init` layer once, and removes what killed builds left.
fn machinery(root: &Path, network: runtime::Network, step: StepSettings) -> Result<Machinery> {
    let layout = store::Layout::new(root);
    let snapshots = snapshot::open(&layout.snapshots(), crate::settings::get().snapshotter)?;
    let build_dir = layout.build();
    let init = build_dir.join("init");
    if !init.join(".dockerenv").exists() {
        // Made aside and renamed into place: builds starting at once on a new store each
        // make one, and the first rename wins (an earlier version made it in place, where a
        // killed or concurrent build could leave it half made: that one is replaced).
        fs::create_dir_all(&build_dir)?;
        let tmp = build_dir.join(format!("init.{}", std::process::id()));
        let _ = fs::remove_dir_all(&tmp);
        fs::create_dir_all(&tmp)?;
        runtime::make_init_layer(&tmp)?;
        if init.exists() && !init.join(".dockerenv").exists() {
            let _ = fs::remove_dir_all(&init);
        }
        if fs::rename(&tmp, &init).is_err() {
            // Another build made it first.
            let _ = fs::remove_dir_all(&tmp);
        }
    }
    let work = build_dir.join("mounts");
    fs::create_dir_all(&work)?;
    build::cleanup_stale(snapshots.as_ref(), &work)?;
    let runner = Runner {
        state_dir: build_dir.join("state"),
        network,
        pasta: crate::settings::get().pasta.clone(),
        seccomp_cache: layout.seccomp_cache(),
        step,
        swept: std::sync::Once::new(),
    };
    Ok(Machinery {
        snapshots,
        init,
        work,
        runner,
    })
}

/// `--cache-from`: a local cache that fails is an error; a registry cache that is not
/// there (yet) is a warning, as in BuildKit, and the build goes on without it.
fn import_caches(store: &mut store::Store, specs: &[String], quiet: bool) -> Result<()> {
    for spec in specs {
        match cache_spec(spec, "src")?.spec {
            CacheSpec::Local(dir) => {
                image::import_cache(store, &dir).map_err(|e| {
                    Failure::new(1, format!("importing cache from {}: {e}", dir.display()))
                })?;
            }
            CacheSpec::Registry(r) => {
                let hosts = &crate::settings::get().hosts;
                let creds = registry::load_credentials(&hosts.config_file, &r.registry)?;
                let progress = super::pull::reporter(quiet);
                if let Err(e) = registry::pull_cache(store, &r, creds, hosts, &progress) {
                    eprintln!("WARNING: importing cache from {}: {e}", r.familiar());
                }
            }
        }
    }
    Ok(())
}

/// `--cache-to`: the images `tops` and their parents.
fn export_cache(
    store: &store::Store,
    to: &CacheArgs,
    tops: &[oci::Digest],
    quiet: bool,
) -> Result<()> {
    match &to.spec {
        CacheSpec::Local(dir) => {
            image::export_cache(store, tops, dir, &to.export).map_err(|e| {
                Failure::new(1, format!("exporting cache to {}: {e}", dir.display()))
            })?;
        }
        CacheSpec::Registry(r) => {
            let hosts = &crate::settings::get().hosts;
            let creds = registry::load_credentials(&hosts.config_file, &r.registry)?;
            let progress = super::pull::reporter(quiet);
            registry::push_cache(store, tops, r, creds, hosts, &to.export, &progress).map_err(
                |e| Failure::new(1, format!("exporting cache to {}: {e}", r.familiar())),
            )?;
        }
    }
    Ok(())
}

/// The FROM hook: an image the store lacks (or every FROM with `--pull`) is pulled, as
/// Docker does.
fn puller(
    quiet: bool,
    platform: Option<&oci::Platform>,
) -> impl Fn(&mut store::Store, &str) -> std::result::Result<oci::Digest, build::HookError> {
    let platform = platform.map(|p| {
        [p.os.as_str(), &p.architecture, &p.variant]
            .iter()
            .filter(|s| !s.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join("/")
    });
    move |store, name| {
        let r = image::parse_name(name)?;
        super::pull::pull_one(store, &r, platform.clone(), quiet, false)
            .map(|p| p.id)
            .map_err(|e| PullFailed(e).into())
    }
}

/// The `ADD URL` hook: a plain download; Last-Modified (an HTTP date) becomes the mtime.
fn fetch(url: &str, dest: &Path) -> std::result::Result<build::Downloaded, build::HookError> {
    let d = registry::download(url, dest)?;
    let last_modified = d
        .last_modified
        .as_deref()
        .and_then(|v| chrono::DateTime::parse_from_rfc2822(v).ok())
        .map(std::time::SystemTime::from);
    Ok(build::Downloaded {
        content_disposition: d.content_disposition,
        last_modified,
    })
}

/// A failed build as Docker reports it: a failed RUN exits with the command's code.
fn build_failure(e: build::BuildError) -> anyhow::Error {
    match e {
        build::BuildError::RunFailed { command, code } => {
            let code = code.clamp(1, 255) as u8;
            Failure::bare(
                code,
                format!("The command '{command}' returned a non-zero code: {code}"),
            )
            .into()
        }
        e => Failure::bare(1, e.to_string()).into(),
    }
}

/// Whether `head`, the first block of an uncompressed tar, is a header whose mode has no
/// file type bits (what newer docker CLIs send; older ones and most tools write them).
fn tar_without_type_bits(head: &[u8]) -> bool {
    let Some(field) = head.get(100..108) else {
        return false;
    };
    let digits: String = field
        .iter()
        .take_while(|b| **b != 0 && **b != b' ')
        .map(|b| *b as char)
        .collect();
    u32::from_str_radix(digits.trim(), 8).is_ok_and(|m| m & 0o170000 == 0)
}

/// Whether standard input holds an archive (compressed, or a tar header with a valid
/// checksum) rather than a Dockerfile, judged on its first bytes as Docker's CLI does.
fn is_archive(head: &[u8]) -> bool {
    const MAGICS: [&[u8]; 4] = [
        &[0x1f, 0x8b],
        b"BZh",
        &[0xfd, b'7', b'z', b'X', b'Z', 0],
        &[0x28, 0xb5, 0x2f, 0xfd],
    ];
    if MAGICS.iter().any(|m| head.starts_with(m)) {
        return true;
    }
    if head.len() < 512 {
        return false;
    }
    let h = &head[..512];
    let field = &h[148..156];
    let text: String = field
        .iter()
        .take_while(|&&b| b != 0 && b != b' ')
        .map(|&b| b as char)
        .collect();
    let Ok(want) = u32::from_str_radix(text.trim(), 8) else {
        return false;
    };
    let sum: u32 = h
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                b as u32
            }
        })
        .sum();
    sum == want
}
