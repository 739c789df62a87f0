//! The life of a container: create (a snapshot on the image plus a record), start in the
//! foreground (mount, spawn, record the exit, unmount), stop, kill, wait, remove, and the
//! cleanup of what a killed strata left behind.

use std::fs;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

use snapshot::Snapshotter;
use store::{ContainerRecord, ContainerState, NewContainer, Store};

use crate::config::{self, CreateOptions, Stored};
use crate::error::{Error, Result};

/// The containers of one strata root: its store, its snapshots and its state directories.
pub struct Containers {
    pub(crate) store: Store,
    pub(crate) root: PathBuf,
    pub(crate) snapshots: Box<dyn Snapshotter>,
    /// `docker-init` for `--init` (see [`Containers::set_init_path`]).
    pub(crate) init_path: Option<PathBuf>,
    /// The pasta binary for the private network (see [`Containers::set_pasta`]).
    pub(crate) pasta: Option<PathBuf>,
    /// A private network started ahead of the next [`Containers::start`] (see
    /// [`Containers::start_network_early`]).
    pub(crate) early_network: Option<runtime::PrivateNetwork>,
}

/// Where a started container's standard streams go.
#[derive(Debug, Default)]
pub struct StartIo {
    pub stdin: runtime::Stdio,
    pub stdout: runtime::Stdio,
    pub stderr: runtime::Stdio,
    /// The log readers of `stdout`/`stderr` (see [`crate::log_pipes`]): drained before the
    /// container is recorded as exited, so a reader that sees `exited` has every line.
    pub log: Option<crate::LogPump>,
}

/// What `docker exec` runs in a container.
#[derive(Debug, Default)]
pub struct ExecRequest {
    pub args: Vec<String>,
    /// Added to the container's environment.
    pub env: Vec<String>,
    /// The container's own when `None`.
    pub workdir: Option<String>,
    /// The container's own when `None`.
    pub user: Option<String>,
    /// `exec --privileged`: every capability for this process (the container's seccomp
    /// filter and mounts stay, as Docker's).
    pub privileged: bool,
    pub tty: bool,
    /// With `tty`: the output of the terminal goes to `io.stdout` (this process's stdout
    /// when it is `Inherit`), and a duplicate of the terminal's master side is sent here
    /// once the process runs, for the caller to size it (`docker exec` resize).
    pub terminal: Option<std::sync::mpsc::Sender<OwnedFd>>,
    /// With `tty`: the terminal's size (rows, columns) from the start.
    pub tty_size: Option<(u16, u16)>,
    pub io: StartIo,
    /// Told once the process runs (`docker exec -d` returns then); dropped unsent when it
    /// could not be started.
    pub started: Option<std::sync::mpsc::Sender<()>>,
}

/// What [`Containers::probe_monitor_lock`] found.
pub(crate) enum MonitorLock {
    /// A live monitor holds it.
    Held,
    /// Nobody did: the caller holds it now.
    Taken(fs::File),
    /// There is none (never started, or being removed).
    Absent,
}

/// Whether a process exists and is not a zombie.
pub(crate) fn alive(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => s
            .rsplit_once(')')
            .map(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X']))
            .unwrap_or(false),
        Err(_) => false,
    }
}

static FORWARD_TO: AtomicI32 = AtomicI32::new(0);
const FORWARDED: [i32; 6] = [
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
];

extern "C" fn forward(sig: i32) {
    let pid = FORWARD_TO.load(Ordering::SeqCst);
    if pid > 0 {
        // SAFETY: kill is async-signal-safe.
        unsafe {
            libc::kill(pid, sig);
        }
    }
}

impl Containers {
    /// Opens the store and snapshotter of a strata root.
    pub fn open(root: &Path) -> Result<Containers> {
        Self::open_with(root, snapshot::Choice::Auto)
    }

    /// Opens the store and the chosen snapshotter of a strata root (`snapshot::open`
    /// remembers that overlayfs works there).
    pub fn open_with(root: &Path, snapshotter: snapshot::Choice) -> Result<Containers> {
        let store = Store::open(root)?;
        let snapshots = snapshot::open(&store::Layout::new(root).snapshots(), snapshotter)?;
        Ok(Containers {
            store,
            root: root.to_path_buf(),
            snapshots,
            init_path: None,
            pasta: None,
            early_network: None,
        })
    }

    /// Starts the private network (a namespace, and pasta connecting it) of a container about
    /// to be made with `opts` and started by this handle's next [`Containers::start`], so that
    /// pasta sets it up while the container is recorded and its root filesystem mounted:
    /// `run` on the default network, which pasta takes a few milliseconds to set up. Only for
    /// the default network without published ports (those are picked at the start, `-P` from
    /// the image); otherwise, or when it fails, the start makes the network as always.
    pub fn start_network_early(&mut self, opts: &crate::config::CreateOptions) {
        let default_network = matches!(opts.network.as_str(), "default" | "bridge");
        if !default_network
            || !opts.networks.is_empty()
            || !opts.publish.is_empty()
            || opts.publish_all
        {
            return;
        }
        if let Some(p) = &self.pasta {
            self.early_network =
                runtime::PrivateNetwork::start_with(Some(p), &[], runtime::INTERFACE).ok();
        }
    }

    /// The init binary `--init` mounts at `/sbin/docker-init` (Docker's `init-path`; tini).
    /// Without one, starting a container made with `--init` fails with a clear error.
    pub fn set_init_path(&mut self, path: Option<PathBuf>) {
        self.init_path = path;
    }

    /// Where the started container's first process is recorded (PID and start time), so that
    /// `exec` joins that very process and never whatever reused its PID.
    fn init_record(&self, id: &str) -> PathBuf {
        self.state_dir(id).join("init.pid")
    }

    /// The pasta binary that connects containers on the default (private) network; without
    /// one, starting such a container fails with [`runtime::Error::PastaMissing`].
    pub fn set_pasta(&mut self, pasta: Option<PathBuf>) {
        self.pasta = pasta;
    }

    /// Records a container event in the store's journal (`events`) with Docker's
    /// attributes: the container's labels, the image as it was named at creation, its name,
    /// and `extra` (`exitCode`, `signal`…).
    pub fn record_event(&self, action: &str, rec: &ContainerRecord, extra: &[(&str, String)]) {
        let labels = Self::stored(rec)
            .ok()
            .and_then(|s| s.config.labels)
            .unwrap_or_default();
        let e = store::events::Event::container(action, &rec.id)
            .attrs(labels)
            .attr("image", rec.image_name.as_str())
            .attr("name", rec.name.as_str())
            .attrs(extra.iter().map(|(k, v)| (*k, v.as_str())));
        store::events::record(&self.store, e);
    }

    /// The container's labels (`--label`, and the image's).
    pub fn labels(
        &self,
        rec: &ContainerRecord,
    ) -> Option<std::collections::BTreeMap<String, String>> {
        Self::stored(rec).ok().and_then(|s| s.config.labels)
    }

    /// [`Containers::record_event`] for a container named by ID, name or prefix (nothing is
    /// recorded when there is no such container).
    pub fn record_event_for(&self, action: &str, name: &str, extra: &[(&str, String)]) {
        if let Ok(rec) = self.find(name) {
            self.record_event(action, &rec, extra);
        }
    }

    /// The snapshotter's name (`overlayfs`, or the copying fallback's).
    pub fn snapshotter_name(&self) -> &'static str {
        self.snapshots.name()
    }

    /// The store (for image commands sharing this handle).
    pub fn store(&mut self) -> &mut Store {
        &mut self.store
    }

    /// The directory of a container's state: `/etc` files, the rootfs mount point, logs.
    pub fn state_dir(&self, id: &str) -> PathBuf {
        store::Layout::new(&self.root).containers().join(id)
    }

    /// Where compiled seccomp filters are kept (`ROOT/cache/seccomp`).
    pub(crate) fn seccomp_cache(&self) -> PathBuf {
        store::Layout::new(self.store.root()).seccomp_cache()
    }

    pub(crate) fn rootfs(&self, id: &str) -> PathBuf {
        self.state_dir(id).join("rootfs")
    }

    /// Where a detached container's output goes.
    /// Docker's json-file name, `ID-json.log`; containers made by an earlier strata keep
    /// their `container.log`.
    pub fn log_path(&self, id: &str) -> PathBuf {
        let dir = self.state_dir(id);
        let old = dir.join("container.log");
        if old.exists() {
            return old;
        }
        dir.join(format!("{id}-json.log"))
    }

    /// Finds a container by ID, name or unique ID prefix.
    pub fn find(&self, name: &str) -> Result<ContainerRecord> {
        Ok(self.store.find_container(name)?)
    }

    /// Every container, newest first.
    pub fn list(&self) -> Result<Vec<ContainerRecord>> {
        Ok(self.store.containers()?)
    }

    pub(crate) fn stored(rec: &ContainerRecord) -> Result<Stored> {
        serde_json::from_str(&rec.config).map_err(|e| Error::Corrupt {
            id: rec.id.clone(),
            reason: e.to_string(),
        })
    }

    /// Docker's `-init` layer, shared by every container of this root (made once).
    fn init_layer(&self) -> Result<PathBuf> {
        let dir = store::Layout::new(&self.root)
            .containers()
            .join("init-layer");
        if dir.join(".dockerenv").exists() {
            return Ok(dir);
        }
        let parent = store::Layout::new(&self.root).containers();
        fs::create_dir_all(&parent).map_err(|e| Error::io(&parent, e))?;
        let tmp = parent.join(format!("init-layer.{}", std::process::id()));
        let _ = fs::remove_dir_all(&tmp);
        fs::create_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
        runtime::make_init_layer(&tmp)?;
        if fs::rename(&tmp, &dir).is_err() {
            // Another process made it first.
            let _ = fs::remove_dir_all(&tmp);
        }
        Ok(dir)
    }

    /// The lower directories of a container's snapshot, top first: init layer, image layers.
    pub(crate) fn lowers(&self, image: &oci::Digest) -> Result<Vec<PathBuf>> {
        let img = self
            .store
            .image(image)?
            .ok_or(store::Error::ImageNotFound(*image))?;
        let mut lowers = vec![self.init_layer()?];
        lowers.extend(img.layers.iter().rev().map(|d| self.store.layer_dir(d)));
        Ok(lowers)
    }

    /// `docker create`: checks the options against the image, prepares the writable snapshot
    /// and records the container (state `created`).
    pub fn create(&mut self, image_name: &str, opts: &CreateOptions) -> Result<ContainerRecord> {
        self.create_as(image_name, opts, true)
    }

    /// [`Containers::create`] for `docker run`, whose start follows at once: the record does
    /// not wait for the disk ([`store::Store::unsynced`]); the start records the running
    /// state (or its failure) durably, and that makes the record durable too.
    pub fn create_to_run(
        &mut self,
        image_name: &str,
        opts: &CreateOptions,
    ) -> Result<ContainerRecord> {
        self.create_as(image_name, opts, false)
    }

    fn create_as(
        &mut self,
        image_name: &str,
        opts: &CreateOptions,
        synced: bool,
    ) -> Result<ContainerRecord> {
        let image_id = image::resolve(&self.store, image_name)?;
        let img = image::read_config(&self.store, &image_id)?;
        let id = config::new_id();
        let (mount_points, new_volumes) = self.plan_mounts(opts, &img)?;
        let run = config::run_options(
            &id,
            opts,
            self.runtime_mounts_unchecked(&mount_points, opts)?,
        )?;
        crate::ports::parse_publish(&opts.publish)?;
        let spec = runtime::compose(&config::image_runtime_config(&img), &run)?;
        let name = match &opts.name {
            Some(n) => Some(config::validate_name(n)?),
            None => None,
        };
        let cfg = config::container_config(&id, image_name, &img, &spec, opts);
        let mut options = opts.clone();
        if let Some(a) =
            self.primary_attachment(&opts.network, &opts.network_aliases, opts.ip.as_deref())?
        {
            options.networks = vec![a];
        }
        config::check_resources(&options)?;
        config::restart_policy(options.restart.as_deref())?;
        if let Some(sig) = options.stop_signal.as_deref().filter(|s| !s.is_empty()) {
            signal_number(sig)?;
        }
        if let (Some(m), None) = (options.memory.filter(|m| *m > 0), options.memory_swap) {
            // Docker's default: as much swap as memory.
            options.memory_swap = Some(2 * m as i64);
        }
        if options.privileged && !options.security_opt.iter().any(|o| o.starts_with("label")) {
            // Docker's daemon records that SELinux labelling is off for privileged containers.
            options.security_opt.push("label=disable".into());
        }
        let stored = Stored {
            options,
            config: cfg,
            path: spec.process.args.first().cloned().unwrap_or_default(),
            args: spec.process.args.iter().skip(1).cloned().collect(),
            mount_points: Some(mount_points.clone()),
        };
        let volume_names: Vec<String> = mount_points
            .iter()
            .filter(|m| m.kind == crate::MountType::Volume)
            .map(|m| m.name.clone())
            .collect();
        let json = serde_json::to_string(&stored).map_err(|e| Error::Invalid(e.to_string()))?;
        let lowers = self.lowers(&image_id)?;
        // A volume's directory is in place before the row that names it.
        self.make_volume_dirs(&new_volumes)?;
        let snapshots = &self.snapshots;
        // The snapshot is made under the store lock, so cleanup never sees it unrecorded.
        let record = |store: &mut Store| -> Result<()> {
            let mut attempt = 0;
            loop {
                let n = match &name {
                    Some(n) => n.clone(),
                    None => config::generate_name(&id, attempt),
                };
                let mut p = store.publish()?;
                for v in &new_volumes {
                    p.add_volume(v)?;
                }
                let added = p.add_container(&NewContainer {
                    id: &id,
                    name: &n,
                    image_id: &image_id,
                    image_name,
                    snapshot: &id,
                    config: &json,
                });
                match added {
                    Ok(()) => {
                        for v in &volume_names {
                            p.attach_volume(&id, v)?;
                        }
                        snapshots.prepare(&id, &lowers)?;
                        if let Err(e) = p.commit() {
                            let _ = snapshots.remove(&id);
                            return Err(e.into());
                        }
                        return Ok(());
                    }
                    Err(store::Error::NameInUse { .. }) if name.is_none() && attempt < 50 => {
                        attempt += 1;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        };
        let recorded = if synced {
            record(&mut self.store)
        } else {
            self.store.unsynced(record)
        };
        if let Err(e) = recorded {
            // The directories of volumes that were to be created with it go too.
            for v in &new_volumes {
                if matches!(self.store.volume(&v.name), Ok(None)) {
                    let _ = fs::remove_dir_all(self.volumes_dir().join(&v.name));
                }
            }
            return Err(e);
        }
        let rec = self
            .store
            .container(&id)?
            .ok_or_else(|| store::Error::ContainerNotFound(id.clone()))?;
        self.record_volume_events("create", &rec.id, &mount_points);
        self.record_event("create", &rec, &[]);
        Ok(rec)
    }
}

/// Signal number of a name (`SIGTERM`, `TERM`, `term`, `RTMIN+3`) or number (`15`), as
/// Docker parses `kill -s` and `StopSignal`: the Dockerfile frontend's table is the one home of
/// signal names.
pub fn signal_number(s: &str) -> Result<i32> {
    dockerfile::parse_signal(s)
        .map(|n| n as i32)
        .map_err(|_| Error::Invalid(format!("Invalid signal: {s}")))
}

fn send(pid: i32, sig: i32) {
    if pid > 0 {
        // SAFETY: plain syscall.
        unsafe {
            libc::kill(pid, sig);
        }
    }
}

/// Copies between a container's pty master and the streams it was given: `input` (the
/// caller's stdin, or the pipe an attach socket feeds) to the terminal, and the terminal's
/// output (one stream, as Docker's for a `-t` container) to `output` (the caller's stdout,
/// or the log's stdout pipe). Returns the output thread: it ends once every process holding
/// the terminal is gone and the last bytes are passed on.
fn relay_tty(
    master: OwnedFd,
    input: runtime::Stdio,
    output: runtime::Stdio,
) -> Option<std::thread::JoinHandle<()>> {
    use std::io::{Read, Write};
    let reader = master.try_clone().ok()?;
    let mut sink: Box<dyn Write + Send> = match output {
        runtime::Stdio::Inherit => Box::new(std::io::stdout()),
        runtime::Stdio::Fd(fd) => Box::new(fs::File::from(fd)),
        runtime::Stdio::Null => Box::new(std::io::sink()),
    };
    let out = std::thread::spawn(move || {
        let mut out = fs::File::from(reader);
        let mut buf = [0u8; 8192];
        // EIO once the last process holding the terminal closed it.
        while let Ok(n) = out.read(&mut buf) {
            if n == 0 || sink.write_all(&buf[..n]).is_err() {
                break;
            }
            let _ = sink.flush();
        }
    });
    let source: Option<Box<dyn Read + Send>> = match input {
        runtime::Stdio::Inherit => Some(Box::new(std::io::stdin())),
        runtime::Stdio::Fd(fd) => Some(Box::new(fs::File::from(fd))),
        runtime::Stdio::Null => None,
    };
    if let Some(mut source) = source {
        let mut m = fs::File::from(master);
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = source.read(&mut buf) {
                if n == 0 || m.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        });
    }
    Some(out)
}

impl Containers {
    /// Starts a created or exited container and stays with it until it ends (this process
    /// is its monitor): forwards SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2,
    /// records the exit code, unmounts its root filesystem, and removes it when created with
    /// `--rm`. Returns Docker's exit code; a start failure is recorded (state `created`, the
    /// exit code 126/127 and the error) and returned as the error.
    pub fn start(&mut self, name: &str, io: StartIo) -> Result<i32> {
        let StartIo {
            stdin,
            stdout,
            stderr,
            log,
        } = io;
        let rec = self.find(name)?;
        if rec.state.status == "running" && alive(rec.state.pid) {
            return Err(Error::AlreadyRunning(rec.id));
        }
        let stored = Self::stored(&rec)?;
        let img = image::read_config(&self.store, &rec.image_id)?;
        let points = stored.points();
        let mounts = match self.runtime_mounts(&points, &stored.options) {
            Ok(m) => m,
            Err(e) => return Err(self.failed_start(&rec, &stored, e)),
        };
        let run = config::run_options(&rec.id, &stored.options, mounts)?;
        let rootfs = self.rootfs(&rec.id);
        fs::create_dir_all(&rootfs).map_err(|e| Error::io(&rootfs, e))?;
        // Held while this process monitors the container: cleanup leaves it alone. The
        // monitor of the run before (`restart`, or a `start` right after `stop`) may still
        // be finishing its cleanup after recording the exit: wait for it, a while.
        let deadline = Instant::now() + Duration::from_secs(10);
        let _monitor = loop {
            if let Some(l) = self.try_monitor_lock(&rec.id)? {
                break l;
            }
            let running = self
                .store
                .container(&rec.id)?
                .is_some_and(|c| c.state.status == "running" && alive(c.state.pid));
            if running || Instant::now() >= deadline {
                return Err(Error::AlreadyRunning(rec.id));
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        // The private network first: pasta connects it while the root filesystem is mounted
        // and the container's process sets itself up.
        let mut run = run;
        let user_primary = crate::networks::is_user_network(&stored.options.network);
        let early_network = self.early_network.take();
        let early = (|| -> Result<_> {
            let network = self.network_state(&rec, &stored, &mut run)?;
            let attached = self.attached_networks(&stored.options.networks)?;
            let net = if run.network == runtime::Network::Private {
                // On a user-defined network, eth0 is that network's; pasta (outbound traffic
                // and published ports) gets an interface of its own, and none at all when
                // every network of the container is internal.
                let internal_only = user_primary
                    && !attached.is_empty()
                    && attached.iter().all(|(_, n)| n.config.internal);
                let ifname = if user_primary {
                    crate::networks::PASTA_INTERFACE
                } else {
                    runtime::INTERFACE
                };
                match (&self.pasta, internal_only) {
                    (_, true) => Some(runtime::PrivateNetwork::start_with(None, &[], ifname)?),
                    (Some(p), false) => match early_network {
                        // Started for this start by `start_network_early`.
                        Some(n) if run.ports.is_empty() && !user_primary => Some(n),
                        _ => Some(runtime::PrivateNetwork::start_with(
                            Some(p),
                            &run.ports,
                            ifname,
                        )?),
                    },
                    (None, false) => None,
                }
            } else {
                None
            };
            if let Some(n) = &net {
                if !attached.is_empty() {
                    let first = usize::from(!user_primary);
                    self.connect_at_start(&rec, &attached, first, n.namespace_fd())?;
                }
            }
            Ok((network, net, !attached.is_empty()))
        })();
        // A root filesystem is mounted only at the mount point (its own mounts are in the
        // container's namespace), so one statx tells whether one is left there.
        let _ = snapshot::unmount_if_mounted(&rootfs);
        if early.is_ok() {
            let mut mounts = self.snapshots.mounts(&rec.snapshot)?;
            if stored.options.auto_remove {
                // Removed when it ends: nothing it writes needs to reach the disk.
                mounts = mounts.into_iter().map(snapshot::Mount::volatile).collect();
            }
            snapshot::mount_all(&mounts, &rootfs)?;
        }
        let early = match early {
            Ok(x) => self.populate_volumes(&points, &rootfs).map(|()| x),
            Err(e) => Err(e),
        };
        let state_dir = self.state_dir(&rec.id);
        let _ = fs::remove_file(state_dir.join(crate::ports::STATE_FILE));
        let tty = stored.options.tty;
        // With a terminal, the container's streams are its pty: the given stdin is copied to
        // it and its output to the given stdout (the log's pipe for a detached container).
        let (stdin, stdout, relay) = if tty {
            (
                runtime::Stdio::Null,
                runtime::Stdio::Null,
                Some((stdin, stdout)),
            )
        } else {
            (stdin, stdout, None)
        };
        let pasta = self.pasta.clone();
        let spawned = (|| -> Result<runtime::Container> {
            let (network, net, on_networks) = early?;
            let mut spec = runtime::compose(&config::image_runtime_config(&img), &run)?;
            check_workdir(&rootfs, &spec.process.cwd)?;
            let user = runtime::resolve_user(&rootfs, &spec.process.user)?;
            spec.apply_user(&user);
            runtime::write_etc_files(&state_dir, &spec)?;
            if on_networks {
                self.write_network_hosts(&rec.id)?;
            }
            let c = runtime::spawn(
                &rootfs,
                &spec,
                runtime::SpawnOptions {
                    id: rec.id.clone(),
                    state_dir: Some(state_dir.clone()),
                    stdin,
                    stdout,
                    stderr,
                    kill_with_parent: true,
                    tty,
                    init_path: self.init_path.clone(),
                    pasta,
                    seccomp_cache: Some(self.seccomp_cache()),
                    network: net,
                },
            )?;
            if let Some(n) = network {
                n.write(&state_dir)?;
            }
            Ok(c)
        })();
        let mut c = match spawned {
            Ok(c) => c,
            Err(e) => {
                let _ = snapshot::unmount_if_mounted(&rootfs);
                return Err(self.failed_start(&rec, &stored, e));
            }
        };
        // Forward signals to the container from here on.
        FORWARD_TO.store(c.pid(), Ordering::SeqCst);
        // SAFETY: zeroed sigaction structures are valid; the handler only calls kill.
        let mut old: [libc::sigaction; FORWARDED.len()] = unsafe { std::mem::zeroed() };
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = forward as *const () as usize;
            sa.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            for (i, s) in FORWARDED.iter().enumerate() {
                libc::sigaction(*s, &sa, &mut old[i]);
            }
        }
        let relay = c
            .take_pty_master()
            .zip(relay)
            .and_then(|(m, (input, output))| relay_tty(m, input, output));
        let init = c.init_process();
        let record = self.init_record(&rec.id);
        let _ = fs::write(&record, format!("{} {}\n", init.pid, init.start_time));
        let started = ContainerState {
            status: "running".into(),
            pid: c.pid(),
            exit_code: 0,
            started_at: Some(oci::now()),
            finished_at: None,
            error: String::new(),
        };
        // A `--rm` container's records need not reach the disk: it is removed when it ends,
        // and after an OS crash `cleanup` removes a record left running without a monitor.
        let auto_remove = stored.options.auto_remove;
        let recorded = if auto_remove {
            self.store
                .unsynced(|s| s.set_container_state(&rec.id, &started))
        } else {
            self.store.set_container_state(&rec.id, &started)
        };
        let networks = self.container_networks(&stored.options);
        if recorded.is_ok() {
            for n in &networks {
                self.record_network_event("connect", n, Some(&rec.id));
            }
            self.record_volume_events("mount", &rec.id, &points);
            self.record_event("start", &rec, &[]);
        }
        let code = if recorded.is_err() {
            let _ = c.signal(libc::SIGKILL);
            c.wait()
        } else {
            c.wait()
        };
        if let Some(t) = relay {
            let _ = t.join();
        }
        if let Some(p) = log {
            p.finish();
        }
        let _ = self.release_endpoints(&rec.id);
        let _ = fs::remove_file(state_dir.join(crate::ports::STATE_FILE));
        FORWARD_TO.store(0, Ordering::SeqCst);
        // SAFETY: restoring the previous handlers.
        unsafe {
            for (i, s) in FORWARDED.iter().enumerate() {
                libc::sigaction(*s, &old[i], std::ptr::null_mut());
            }
        }
        let _ = snapshot::unmount_if_mounted(&rootfs);
        recorded?;
        let code = code?;
        let ended = ContainerState {
            status: "exited".into(),
            pid: 0,
            exit_code: code,
            finished_at: Some(oci::now()),
            ..started
        };
        // Under the name it has now (it may have been renamed while it ran).
        let now = self.store.container(&rec.id).ok().flatten();
        self.record_event(
            "die",
            now.as_ref().unwrap_or(&rec),
            &[("exitCode", code.to_string())],
        );
        // The networks it is on now (`network connect` and `disconnect` while it ran).
        let networks = match now.as_ref().map(Self::stored) {
            Some(Ok(cur)) => self.container_networks(&cur.options),
            _ => networks,
        };
        for n in &networks {
            self.record_network_event("disconnect", n, Some(&rec.id));
        }
        self.record_volume_events("unmount", &rec.id, &points);
        // The record may be gone already (`rm -f` while it ran). A `--rm` container's exit
        // is recorded for whoever waits for it, then the container is removed.
        if auto_remove {
            let id = &rec.id;
            if self
                .store
                .unsynced(|s| s.set_container_state(id, &ended))
                .is_ok()
            {
                self.remove_as(id, true, true, false)?;
            }
        } else {
            let _ = self.store.set_container_state(&rec.id, &ended);
        }
        Ok(code)
    }

    /// Records why a container could not start (state `created`, Docker's exit code and the
    /// error), removes it when made with `--rm`, and gives the error back.
    fn failed_start(&mut self, rec: &ContainerRecord, stored: &Stored, e: Error) -> Error {
        let _ = self.release_endpoints(&rec.id);
        let st = ContainerState {
            status: "created".into(),
            // Docker's daemon records 126/127 for a command that cannot run, and 128 for
            // any other failure to start (`docker run` itself exits 125 for those).
            exit_code: match e.exit_code() {
                125 => 128,
                c => c,
            },
            error: e.to_string(),
            ..rec.state.clone()
        };
        let _ = self.store.set_container_state(&rec.id, &st);
        if stored.options.auto_remove {
            let _ = self.remove_with_volumes(&rec.id, true, true);
        }
        e
    }

    /// On the private network: the ports this start publishes (`-p`, and `-P` over the
    /// exposed ports, random host ports picked now), put into `run`, and what the state
    /// directory records of them while the container runs.
    fn network_state(
        &self,
        rec: &ContainerRecord,
        stored: &Stored,
        run: &mut runtime::RunOptions,
    ) -> Result<Option<crate::ports::NetworkState>> {
        if run.network != runtime::Network::Private {
            return Ok(None);
        }
        let bindings = crate::ports::parse_publish(&stored.options.publish)?;
        let exposed: Vec<String> = stored
            .config
            .exposed_ports
            .iter()
            .flatten()
            .cloned()
            .collect();
        let endpoint = format!("{} ({})", rec.name, rec.id);
        let (maps, shown) =
            crate::ports::resolve(&bindings, &exposed, stored.options.publish_all, &endpoint)?;
        run.ports = maps;
        let a = runtime::Addresses::detect();
        Ok(Some(crate::ports::NetworkState {
            ip: a.ipv4.map(|i| i.to_string()).unwrap_or_default(),
            prefix_len: a.prefix_len,
            gateway: a.gateway.map(|i| i.to_string()).unwrap_or_default(),
            mac: a.mac,
            ports: shown,
        }))
    }

    /// Starts a container in a new session with `monitor` (this program re-executed to run
    /// [`Containers::start`] with output to the log file) and returns once it is running or
    /// has failed to start.
    pub fn start_detached(&mut self, name: &str, monitor: std::process::Command) -> Result<()> {
        use std::os::unix::process::CommandExt;
        let rec = self.find(name)?;
        if rec.state.status == "running" && alive(rec.state.pid) {
            return Err(Error::AlreadyRunning(rec.id));
        }
        let before = rec.state.started_at.clone();
        let mut cmd = monitor;
        cmd.stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        // SAFETY: setsid is async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                libc::setsid();
                Ok(())
            });
        }
        let mut child = cmd.spawn().map_err(|e| Error::io("monitor", e))?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let Some(cur) = self.store.container(&rec.id)? else {
                return Ok(()); // --rm and already gone
            };
            if cur.state.status == "running" || cur.state.started_at != before {
                return Ok(());
            }
            if !cur.state.error.is_empty() && cur.state.error != rec.state.error {
                return Err(Error::Invalid(cur.state.error));
            }
            if let Ok(Some(st)) = child.try_wait() {
                let cur = self.store.container(&rec.id)?;
                let err = cur.map(|c| c.state.error).unwrap_or_default();
                return Err(Error::Invalid(if err.is_empty() {
                    format!("the container monitor exited with {st}")
                } else {
                    err
                }));
            }
            if Instant::now() > deadline {
                return Err(Error::Invalid("timed out starting the container".into()));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Takes the container's monitor lock without waiting (None: another process holds it).
    /// Whether a live monitor holds container `id`'s lock, without creating anything (the
    /// container may be being removed meanwhile): `Taken` holds it for the caller.
    pub(crate) fn probe_monitor_lock(&self, id: &str) -> Result<MonitorLock> {
        let p = self.state_dir(id).join("monitor.lock");
        let f = match fs::OpenOptions::new().write(true).open(&p) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(MonitorLock::Absent),
            Err(e) => return Err(Error::io(&p, e)),
        };
        match f.try_lock() {
            Ok(()) => Ok(MonitorLock::Taken(f)),
            Err(fs::TryLockError::WouldBlock) => Ok(MonitorLock::Held),
            Err(fs::TryLockError::Error(e)) => Err(Error::io(&p, e)),
        }
    }

    pub(crate) fn try_monitor_lock(&self, id: &str) -> Result<Option<fs::File>> {
        let dir = self.state_dir(id);
        fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let p = dir.join("monitor.lock");
        let f = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&p)
            .map_err(|e| Error::io(&p, e))?;
        match f.try_lock() {
            Ok(()) => Ok(Some(f)),
            Err(fs::TryLockError::WouldBlock) => Ok(None),
            Err(fs::TryLockError::Error(e)) => Err(Error::io(&p, e)),
        }
    }

    /// Waits until no monitor holds container `id`'s lock (its monitor has exited), for at
    /// most `timeout`.
    fn wait_monitor_gone(&self, id: &str, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        while matches!(self.probe_monitor_lock(id)?, MonitorLock::Held) && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(())
    }

    /// `docker exec`: runs the request's process in the running container; returns the
    /// exit code.
    pub fn exec(&mut self, name: &str, req: ExecRequest) -> Result<i32> {
        let ExecRequest {
            args,
            env,
            workdir,
            user,
            privileged,
            tty,
            terminal,
            tty_size,
            io,
            started,
        } = req;
        let rec = self.find(name)?;
        if rec.state.status != "running" || !alive(rec.state.pid) {
            return Err(Error::NotRunning(rec.id));
        }
        if self.is_paused(&rec) {
            return Err(Error::PausedExec(rec.id));
        }
        let stored = Self::stored(&rec)?;
        let img = image::read_config(&self.store, &rec.image_id)?;
        let run = config::run_options(&rec.id, &stored.options, Vec::new())?;
        let spec = runtime::compose(&config::image_runtime_config(&img), &run)?;
        let exec_id = [("execID", config::new_id())];
        let command = args.join(" ");
        self.record_event(&format!("exec_create: {command}"), &rec, &exec_id);
        let mut p = spec.exec_process(args, &env, workdir, user)?;
        if privileged {
            p.capabilities = runtime::all_capabilities();
        }
        let rootfs = self.rootfs(&rec.id);
        let u = runtime::resolve_user(&rootfs, &p.user)?;
        p.apply_user(&u);
        let init = self
            .init_process(&rec)
            .ok_or_else(|| Error::NotRunning(rec.id.clone()))?;
        // With a terminal, stdin (`-i`) is copied to it rather than given to the process.
        let (stdin, tty_input) = if tty {
            (runtime::Stdio::Null, io.stdin)
        } else {
            (io.stdin, runtime::Stdio::Null)
        };
        let (stdout, stderr, tty_output) = if tty {
            (runtime::Stdio::Null, runtime::Stdio::Null, io.stdout)
        } else {
            (io.stdout, io.stderr, runtime::Stdio::Inherit)
        };
        let mut c = runtime::exec(
            init,
            &p,
            runtime::ExecOptions {
                stdin,
                stdout,
                stderr,
                tty,
                tty_size,
                seccomp_cache: Some(self.seccomp_cache()),
            },
        )?;
        self.record_event(&format!("exec_start: {command}"), &rec, &exec_id);
        if let Some(s) = started {
            let _ = s.send(());
        }
        let master = c.take_pty_master();
        if let (Some(m), Some(to)) = (&master, terminal) {
            if let Ok(dup) = m.try_clone() {
                let _ = to.send(dup);
            }
        }
        let relay = master.and_then(|m| relay_tty(m, tty_input, tty_output));
        let code = c.wait()?;
        // The terminal's last output is still to be copied: wait for the copy to end (the
        // terminal closes with its last process), but not for long, as a process the command
        // left in the background may hold the terminal open.
        if let Some(r) = relay {
            let deadline = Instant::now() + Duration::from_secs(2);
            while !r.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        let [(_, exec)] = &exec_id;
        self.record_event(
            "exec_die",
            &rec,
            &[("execID", exec.clone()), ("exitCode", code.to_string())],
        );
        Ok(code)
    }

    /// The first process of a running container as its start recorded it (PID and start
    /// time), when that is the PID the record names.
    pub(crate) fn init_process(&self, rec: &ContainerRecord) -> Option<runtime::InitProcess> {
        fs::read_to_string(self.init_record(&rec.id))
            .ok()
            .and_then(|t| {
                let (pid, start) = t.trim().split_once(' ')?;
                Some(runtime::InitProcess {
                    pid: pid.parse().ok()?,
                    start_time: start.parse().ok()?,
                })
            })
            .filter(|i| i.pid == rec.state.pid && rec.state.status == "running")
    }

    /// `docker rename`.
    pub fn rename(&mut self, name: &str, new_name: &str) -> Result<()> {
        let rec = self.find(name)?;
        let n = config::validate_name(new_name)?;
        if n == rec.name {
            return Err(Error::Invalid(
                "Renaming a container with the same name as its current name".into(),
            ));
        }
        self.store.rename_container(&rec.id, &n)?;
        let renamed = ContainerRecord {
            name: n,
            ..rec.clone()
        };
        self.record_event("rename", &renamed, &[("oldName", format!("/{}", rec.name))]);
        Ok(())
    }

    /// Sends a signal to a running container's process.
    pub fn kill(&mut self, name: &str, signal: &str) -> Result<ContainerRecord> {
        let sig = signal_number(signal)?;
        let rec = self.find(name)?;
        if rec.state.status != "running" || !alive(rec.state.pid) {
            return Err(Error::NotRunning(rec.id));
        }
        send(rec.state.pid, sig);
        // Docker resumes a paused container after sending it its stop signal (any signal
        // when it has none configured), so that the signal is delivered.
        let stop_signal = Self::stored(&rec)
            .ok()
            .map(|s| s.config.stop_signal)
            .filter(|s| !s.is_empty());
        let resumes = match stop_signal {
            None => true,
            Some(s) => sig == libc::SIGKILL || signal_number(&s).ok() == Some(sig),
        };
        if resumes {
            self.thaw_after_signal(&rec);
        }
        self.record_event("kill", &rec, &[("signal", sig.to_string())]);
        Ok(rec)
    }

    /// `docker stop`: the stop signal, then SIGKILL after `timeout` seconds (default: the
    /// container's `--stop-timeout`, else 10). Stopping a stopped container is not an error.
    pub fn stop(&mut self, name: &str, timeout: Option<u64>) -> Result<ContainerRecord> {
        let rec = self.find(name)?;
        let pid = rec.state.pid;
        if rec.state.status != "running" || !alive(pid) {
            return Ok(rec);
        }
        let stored = Self::stored(&rec)?;
        let sig = if stored.config.stop_signal.is_empty() {
            libc::SIGTERM
        } else {
            signal_number(&stored.config.stop_signal)?
        };
        let t = timeout.or(stored.options.stop_timeout).unwrap_or(10);
        send(pid, sig);
        self.thaw_after_signal(&rec);
        self.record_event("kill", &rec, &[("signal", sig.to_string())]);
        if !wait_dead(pid, Duration::from_secs(t)) {
            send(pid, libc::SIGKILL);
            self.thaw_after_signal(&rec);
            self.record_event("kill", &rec, &[("signal", libc::SIGKILL.to_string())]);
            wait_dead(pid, Duration::from_secs(10));
        }
        self.settle(&rec.id);
        self.record_event("stop", &rec, &[]);
        Ok(rec)
    }

    /// Waits until the monitor recorded the end of a container whose process is gone, and
    /// cleans up itself when the monitor is gone too.
    fn settle(&mut self, id: &str) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            match self.store.container(id) {
                Ok(Some(c)) if c.state.status == "running" => {}
                _ => return,
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.cleanup();
    }

    /// `docker wait`: blocks until the container stops, returns its exit code.
    pub fn wait(&mut self, name: &str) -> Result<i32> {
        let rec = self.find(name)?;
        loop {
            let Some(cur) = self.store.container(&rec.id)? else {
                return Ok(rec.state.exit_code);
            };
            if cur.state.status != "running" {
                return Ok(cur.state.exit_code);
            }
            if !alive(cur.state.pid) {
                self.settle(&rec.id);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `docker rm`: unmounts, removes the snapshot, the cgroups, the state directory and the
    /// record. A running container needs `force` (it is killed first).
    pub fn remove(&mut self, name: &str, force: bool) -> Result<ContainerRecord> {
        self.remove_with_volumes(name, force, false)
    }

    /// `docker rm [-v]`: [`Containers::remove`], and with `volumes` its anonymous volumes
    /// too (those no other container uses).
    pub fn remove_with_volumes(
        &mut self,
        name: &str,
        force: bool,
        volumes: bool,
    ) -> Result<ContainerRecord> {
        self.remove_as(name, force, volumes, true)
    }

    /// [`Containers::remove_with_volumes`]; the record's deletion waits for the disk when
    /// `synced` (not for a `--rm` container's own monitor: see [`Containers::start`]).
    fn remove_as(
        &mut self,
        name: &str,
        force: bool,
        volumes: bool,
        synced: bool,
    ) -> Result<ContainerRecord> {
        let rec = self.find(name)?;
        if rec.state.status == "running" && alive(rec.state.pid) {
            if !force {
                return Err(Error::Running(rec.id));
            }
            send(rec.state.pid, libc::SIGKILL);
            self.thaw_after_signal(&rec);
            self.record_event("kill", &rec, &[("signal", libc::SIGKILL.to_string())]);
            wait_dead(rec.state.pid, Duration::from_secs(10));
            // Its monitor cleans up as the container dies (unmounts, endpoints, `--rm`):
            // let it finish rather than race it.
            self.wait_monitor_gone(&rec.id, Duration::from_secs(10))?;
        }
        // Dead before anything goes (Docker's daemon does the same): a removal killed
        // mid-way leaves a dead container that `rm` removes, never a `created` or `exited`
        // one without its snapshot.
        let mut dead = rec.state.clone();
        dead.status = "dead".into();
        dead.pid = 0;
        dead.error = store::REMOVAL_IN_PROGRESS.into();
        // (A process killed keeps what SQLite wrote without an fsync.)
        match self
            .store
            .unsynced(|s| s.set_container_state(&rec.id, &dead))
        {
            Ok(()) | Err(store::Error::ContainerNotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
        let rootfs = self.rootfs(&rec.id);
        snapshot::unmount_if_mounted(&rootfs)?;
        match self.snapshots.remove(&rec.snapshot) {
            Ok(()) | Err(snapshot::Error::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
        runtime::remove_stale_cgroups(&rec.id);
        self.release_endpoints(&rec.id)?;
        let dir = self.state_dir(&rec.id);
        if dir.exists() {
            fs::remove_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        }
        let deleted = if synced {
            self.store.delete_container(&rec.id)
        } else {
            self.store.unsynced(|s| s.delete_container(&rec.id))
        };
        match deleted {
            Ok(()) => self.record_event("destroy", &rec, &[]),
            Err(store::Error::ContainerNotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
        if volumes {
            if let Some(points) = Self::stored(&rec).ok().and_then(|s| s.mount_points) {
                self.remove_anonymous_volumes(&points)?;
            }
        }
        Ok(rec)
    }

    /// Finds and repairs what a killed strata left: containers recorded as running whose
    /// monitor is gone (nobody holds their `monitor.lock`) become `exited` (137, or removed when made with `--rm`); root
    /// filesystems still mounted for stopped containers are unmounted; snapshots of
    /// containers that were never recorded are removed. Returns the IDs it repaired.
    pub fn cleanup(&mut self) -> Result<Vec<String>> {
        let mut fixed = Vec::new();
        let mounted_now = snapshot::mounts_under(&store::Layout::new(&self.root).containers())?;
        for c in self.store.containers()? {
            let rootfs = self.rootfs(&c.id);
            let mounted = mounted_now.iter().any(|m| m.starts_with(&rootfs));
            if c.state.status != "running" && !mounted {
                continue;
            }
            // A live monitor holds the lock: the container is starting, running or ending.
            let _lock = match self.probe_monitor_lock(&c.id)? {
                MonitorLock::Held => continue,
                MonitorLock::Taken(f) => Some(f),
                MonitorLock::Absent => None,
            };
            let Some(c) = self.store.container(&c.id)? else {
                continue;
            };
            snapshot::unmount_all(&rootfs)?;
            runtime::remove_stale_cgroups(&c.id);
            if c.state.status == "running" {
                // Its monitor is gone: Docker's daemon would have seen it die.
                self.record_event("die", &c, &[("exitCode", "137".into())]);
                let auto_remove = Self::stored(&c)
                    .map(|s| s.options.auto_remove)
                    .unwrap_or(false);
                if auto_remove {
                    self.remove_with_volumes(&c.id, true, true)?;
                } else {
                    let st = ContainerState {
                        status: "exited".into(),
                        pid: 0,
                        exit_code: 137,
                        finished_at: Some(oci::now()),
                        ..c.state.clone()
                    };
                    self.store.set_container_state(&c.id, &st)?;
                }
            }
            fixed.push(c.id);
        }
        // Snapshots named like container IDs without a record: a create that died between
        // the snapshot and the commit. Checked under the store lock, which create holds.
        // Under the store lock (which create holds while it prepares and records), so a
        // snapshot seen here without a record really has none.
        let lock = store::Layout::new(&self.root).lock()?;
        let orphans: Vec<String> = self
            .snapshots
            .list()?
            .into_iter()
            .filter(|k| k.len() == 64 && k.bytes().all(|b| b.is_ascii_hexdigit()))
            .collect();
        if !orphans.is_empty() {
            let known: std::collections::HashSet<String> = self
                .store
                .containers()?
                .into_iter()
                .map(|c| c.snapshot)
                .collect();
            for k in orphans.iter().filter(|k| !known.contains(*k)) {
                let dir = self.state_dir(k);
                let _ = snapshot::unmount_all(&dir.join("rootfs"));
                let _ = self.snapshots.remove(k);
                let _ = fs::remove_dir_all(&dir);
                fixed.push(k.clone());
            }
        }
        drop(lock);
        self.cleanup_networks()?;
        Ok(fixed)
    }
}

/// Docker's check before a start: the working directory may be missing (it is made then),
/// but not something else than a directory (resolved inside the root, symlinks followed).
fn check_workdir(rootfs: &Path, cwd: &str) -> Result<()> {
    use std::os::fd::{AsRawFd, FromRawFd};
    let rel = cwd.trim_start_matches('/');
    if rel.is_empty() {
        return Ok(());
    }
    let Ok(path) = std::ffi::CString::new(rel) else {
        return Ok(());
    };
    let root = fs::File::open(rootfs).map_err(|e| Error::io(rootfs, e))?;
    // SAFETY: open_how is plain data; zero is valid for every field.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (libc::O_PATH | libc::O_CLOEXEC) as u64;
    how.resolve = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;
    // SAFETY: valid descriptor, NUL-terminated path and an open_how of the size given.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            root.as_raw_fd(),
            path.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    if fd < 0 {
        // Missing (made by the runtime) or unreachable (the runtime reports it).
        return Ok(());
    }
    // SAFETY: openat2 returned a new descriptor that nothing else owns.
    let f = fs::File::from(unsafe { OwnedFd::from_raw_fd(fd as i32) });
    match f.metadata() {
        Ok(m) if !m.is_dir() => Err(Error::Invalid(format!(
            "Cannot mkdir: {cwd} is not a directory"
        ))),
        _ => Ok(()),
    }
}

fn wait_dead(pid: i32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while alive(pid) {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}

#[cfg(test)]
mod signal_tests {
    use super::signal_number;

    #[test]
    fn kill_signals_are_named_as_in_dockerfiles() {
        assert_eq!(signal_number("SIGTERM").unwrap(), libc::SIGTERM);
        assert_eq!(signal_number("kill").unwrap(), libc::SIGKILL);
        assert_eq!(signal_number("9").unwrap(), 9);
        assert_eq!(signal_number("RTMIN+3").unwrap(), 37);
        assert_eq!(
            signal_number("NOPE").unwrap_err().to_string(),
            signal_number("0")
                .unwrap_err()
                .to_string()
                .replace(": 0", ": NOPE")
        );
        assert!(signal_number("65").is_err());
    }
}
