//! The step loop of the classic builder.
//!
//! Every step's result is an image whose parent is the previous step's. Before running a
//! step, its "probe" config (the image config with `Cmd` replaced by a string naming the
//! step) is compared with the `container_config` of the parent's children: a match is a cache
//! hit, the first miss turns lookups off for the rest of the stage. That is Docker's classic
//! cache, so `Using cache`, `history` IDs and `--no-cache` behave as Docker's do.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use oci::{ContainerConfig, Digest, History, ImageConfig, Reference, RootFs};
use snapshot::Snapshotter;
use store::{NewImage, Store};

mod copy_step;
mod insight;
mod meta_step;
mod progress;
mod remote;
mod run_step;
mod schedule;
mod stages;

pub use insight::MISS_PREFIX;
pub use progress::Progress;
use progress::{Outcome, Vertex, VertexOutput};
use stages::{last_stage, stage_ref};

use crate::context::Context;
use crate::copy::{copy_into, CopyRequest};
use crate::error::{BuildError, HookError, Result};
use crate::gofmt;
use crate::steps::{CommandForm, Op, Plan, RunFlags, RunMount, RunMountKind, RunNetwork, Step};

/// Runs a RUN step's process in a mounted root filesystem; the binary wires the runtime in.
pub trait RunStep: Sync {
    /// Returns the process's exit code.
    fn run(&self, req: &RunRequest<'_>) -> std::result::Result<i32, HookError>;
}

pub struct RunRequest<'a> {
    pub rootfs: &'a Path,
    pub argv: &'a [String],
    pub env: &'a [String],
    pub user: &'a str,
    pub workdir: &'a str,
    pub network_none: bool,
    /// `RUN --network=host`.
    pub network_host: bool,
    /// `RUN --security=insecure`: privileged, as `run --privileged`.
    pub insecure: bool,
    /// Send the process's output nowhere (`build -q`).
    pub quiet: bool,
    /// Where the process's output goes otherwise.
    pub output: &'a dyn StepOutput,
    /// `RUN --mount`s, resolved to host paths.
    pub mounts: &'a [HostMount],
    /// Set when the build is cancelled: the step's processes are to be killed.
    pub cancel: Option<&'a std::sync::atomic::AtomicBool>,
}

/// Where a RUN step's output goes, chunk by chunk as it is read from the process's
/// standard output and standard error (each chunk whole, in the order read).
pub trait StepOutput: Sync {
    fn write(&self, stderr: bool, data: &[u8]);
}

/// A RUN step's output in the classic builder's build output: standard output as it is,
/// standard error in [`stderr_chunk`]s.
struct ClassicOutput<'o>(Mutex<&'o mut (dyn Write + Send)>);

impl StepOutput for ClassicOutput<'_> {
    fn write(&self, stderr: bool, data: &[u8]) {
        let mut out = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let _ = if stderr {
            out.write_all(&stderr_chunk(data))
        } else {
            out.write_all(data)
        };
        let _ = out.flush();
    }
}

/// A mount for a RUN step: a host path bound at `target`, or a tmpfs when `source` is None.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostMount {
    pub source: Option<PathBuf>,
    pub target: String,
    pub readonly: bool,
    pub tmpfs_size: Option<i64>,
}

/// Expands words and parses ONBUILD triggers: the frontend's services the engine needs.
pub trait Frontend: Sync {
    fn word(&self, word: &str, env: &[(String, String)]) -> std::result::Result<String, HookError>;
    fn words(
        &self,
        text: &str,
        env: &[(String, String)],
    ) -> std::result::Result<Vec<String>, HookError>;
    fn parse_trigger(&self, text: &str) -> std::result::Result<Step, HookError>;
}

#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    pub tags: Vec<Reference>,
    pub no_cache: bool,
    pub quiet: bool,
    pub build_args: BTreeMap<String, String>,
    pub network_none: bool,
    pub labels: Vec<(String, String)>,
    pub target: Option<String>,
    /// `--pull`: fetch every base image anew.
    pub pull: bool,
    /// `--secret id=…,src=…`: secret id → host file.
    pub secrets: BTreeMap<String, PathBuf>,
    /// `--ssh ID=SOCKET`: agent sockets that `RUN --mount=type=ssh` may use.
    pub ssh: BTreeMap<String, PathBuf>,
    /// `SOURCE_DATE_EPOCH` (seconds): every `created` the build writes is this time, and
    /// every later mtime in its layers is clamped to it; the cache only reuses images made so.
    pub source_date_epoch: Option<i64>,
    /// `--squash`, `--squash-all`.
    pub squash: Squash,
    /// `--allow security.insecure`: `RUN --security=insecure` may run.
    pub allow_insecure: bool,
    /// `--platform`: recorded in every config the build writes.
    pub platform: Option<oci::Platform>,
    /// How many stages may be built at once; 0: one per CPU, at least two.
    pub jobs: usize,
    /// The classic output, or BuildKit's display.
    pub progress: Progress,
    /// The key build records keep this build's steps under (`store::source_key` of the
    /// context and Dockerfile); None keeps none and explains no miss.
    pub source: Option<String>,
    /// `--explain`: list every changed input of the first step that misses the cache.
    pub explain: bool,
    /// Set from elsewhere to stop the build at its next step (its client went away).
    pub cancel: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
}

/// What `--squash` (Docker's) and `--squash-all` (Podman's) merge into one layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Squash {
    #[default]
    No,
    /// The layers the final stage added on its base.
    NewLayers,
    /// Every layer, the base image's too.
    All,
}

impl BuildOptions {
    /// The `created` of the images the build makes: now, or `SOURCE_DATE_EPOCH`.
    pub fn created(&self) -> String {
        match self.source_date_epoch {
            Some(e) => oci::unix_time(e),
            None => oci::now(),
        }
    }

    /// Whether the classic builder's lines are left out (`-q`, or BuildKit's display).
    fn classic_quiet(&self) -> bool {
        self.quiet || self.progress != Progress::Classic
    }
}

/// Fetches a missing image into the store and returns its ID.
pub type Puller = dyn Fn(&mut Store, &str) -> std::result::Result<Digest, HookError> + Sync;

/// What a download for `ADD URL` reports besides the bytes it wrote.
#[derive(Debug, Clone, Default)]
pub struct Downloaded {
    /// The `Content-Disposition` header, which names the file when the URL path does not.
    pub content_disposition: Option<String>,
    /// The `Last-Modified` header, which becomes the file's mtime.
    pub last_modified: Option<std::time::SystemTime>,
}

/// Downloads a URL (`ADD http…`) into the file at the given path.
pub type Fetcher = dyn Fn(&str, &Path) -> std::result::Result<Downloaded, HookError> + Sync;

pub struct Builder<'a> {
    pub store: &'a mut Store,
    pub snapshots: &'a dyn Snapshotter,
    pub runner: &'a dyn RunStep,
    pub frontend: &'a dyn Frontend,
    pub context: &'a Context,
    /// Scratch space for mounts, on the store's filesystem.
    pub work_dir: PathBuf,
    /// Mount points a running step needs (Docker's `-init` layer), stacked above the image.
    pub init_layer: PathBuf,
    /// Where `RUN --mount=type=cache` directories persist between builds.
    pub cache_dir: PathBuf,
    /// Fetches an image the store lacks (`FROM`, `--pull`); `None` when no registry is wired.
    pub puller: Option<&'a Puller>,
    /// Downloads the URLs of `ADD`; `None` makes them an error.
    pub fetcher: Option<&'a Fetcher>,
    /// Filled by [`Builder::build`]: the final image of every stage built, in build order.
    pub stage_images: Vec<Digest>,
    /// Filled by [`Builder::build`]: every step run, for the build's record, by number.
    pub steps: Vec<store::StepRecord>,
    /// Told the image's ID before `Successfully built` is written (the Engine API's `aux`
    /// message goes there).
    pub on_built: Option<&'a (dyn Fn(&Digest) + Sync)>,
    pub out: &'a mut (dyn Write + Send),
}

/// What the thread of every stage shares: the builder's hooks and directories.
struct Shared<'s> {
    snapshots: &'s dyn Snapshotter,
    runner: &'s dyn RunStep,
    frontend: &'s dyn Frontend,
    context: &'s Context,
    work_dir: &'s Path,
    init_layer: &'s Path,
    cache_dir: &'s Path,
    puller: Option<&'s Puller>,
    fetcher: Option<&'s Fetcher>,
}

impl Shared<'_> {
    /// The thread of stage `index`: waits for the stages it needs and a slot, builds it,
    /// and lets the output of the stages after it go. A stage the target does not need
    /// (BuildKit's display) lets it go at once, and is built only if a stage asks for it
    /// while it runs; None when it is not built.
    fn stage_thread(
        &self,
        store: StageStore<'_>,
        bs: &BuildState,
        index: usize,
        ordered: &schedule::Ordered<'_>,
    ) -> Option<Result<Digest>> {
        /// A stage that panics fails at once (the stages waiting for it stop), and the last
        /// stage ending, even so, ends the waits of skipped stages.
        struct Guard<'g> {
            graph: &'g schedule::Graph,
            index: usize,
            last: bool,
        }
        impl Drop for Guard<'_> {
            fn drop(&mut self) {
                if std::thread::panicking() {
                    self.graph.fail(self.index);
                }
                if self.last {
                    self.graph.end();
                }
            }
        }
        let _guard = Guard {
            graph: &bs.graph,
            index,
            last: index == bs.last,
        };
        if bs.graph.skipped(index) {
            // The stages after it print on; if it is built after all, its output comes at
            // the end.
            ordered.finish(index, false);
            if !bs.graph.wanted(index) {
                return None;
            }
        }
        let needs = schedule::needs(bs.plan, index, self.frontend, &bs.meta);
        let r = bs
            .graph
            .start(index, &needs)
            .inspect_err(|_| bs.graph.fail(index))
            .and_then(|()| {
                let r = self.build_stage(store, bs, index, &mut ordered.stage(index));
                bs.graph.finish(index, r.as_ref().ok().copied());
                r
            });
        ordered.finish(index, r.is_err());
        Some(r)
    }

    /// Builds stage `index` on the given store: the build's own for the stage built on the
    /// calling thread, or a connection of its own on the same root (a SQLite connection is
    /// not shared between threads; WAL and the store lock order the writes of several, as
    /// they order those of several processes).
    fn build_stage(
        &self,
        store: StageStore<'_>,
        bs: &BuildState,
        index: usize,
        out: &mut (dyn Write + Send),
    ) -> Result<Digest> {
        let mut own = None;
        let store = match store {
            StageStore::Builder(s) => s,
            StageStore::Open(root) => own.insert(Store::open(root)?),
        };
        let mut b = Builder {
            store,
            snapshots: self.snapshots,
            runner: self.runner,
            frontend: self.frontend,
            context: self.context,
            work_dir: self.work_dir.to_path_buf(),
            init_layer: self.init_layer.to_path_buf(),
            cache_dir: self.cache_dir.to_path_buf(),
            puller: self.puller,
            fetcher: self.fetcher,
            stage_images: Vec::new(),
            steps: Vec::new(),
            on_built: None,
            out,
        };
        let r = b.build_stage(bs, index);
        drop(b);
        // What the stage holds must stay held until the build's own store has taken over
        // its image (see `Builder::build`'s end).
        if let Some(store) = own {
            bs.stage_stores
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(store);
        }
        r
    }
}

/// The store a stage is built on.
enum StageStore<'s> {
    /// The builder's own (the last stage, built on the calling thread).
    Builder(&'s mut Store),
    /// A connection of the stage's own, opened on this root.
    Open(&'s Path),
}

/// What every step of one build reads: the plan, the options, the meta ARGs and the stages
/// built so far (BuildKit's `dispatchOpt`).
struct BuildState<'p> {
    plan: &'p Plan,
    opts: &'p BuildOptions,
    /// The ARGs before the first FROM, with their values.
    meta: Vec<(String, String)>,
    /// The stages as a graph: the final image of every stage built so far, by stage index.
    graph: schedule::Graph,
    /// Whether a step's image was recorded without waiting for the disk (see
    /// [`Builder::build`]).
    unsynced: AtomicBool,
    /// The last stage built (the target's).
    last: usize,
    /// The image the last stage starts from (None for scratch), for `--squash`.
    last_base: Mutex<Option<Digest>>,
    /// The names of the ARGs declared so far (meta ARGs and the ARG steps run): build args
    /// named by none are reported as not consumed.
    referenced: Mutex<std::collections::BTreeSet<String>>,
    /// `--explain` has explained a miss.
    explained: AtomicBool,
    /// The steps run so far, for the build's record.
    steps: Mutex<Vec<store::StepRecord>>,
    /// The store handles of stages built on threads of their own, kept (with the images they
    /// hold) until the build's result is held by the build's own handle.
    stage_stores: Mutex<Vec<Store>>,
}

/// The state of the stage being built (BuildKit's `dispatchState`).
struct StageState<'b> {
    build: &'b BuildState<'b>,
    /// The stage's index in the plan.
    index: usize,
    id: Option<Digest>,
    config: ImageConfig,
    shell: Vec<String>,
    busted: bool,
    cmd_set: bool,
    /// ARGs in scope, in declaration order, with their values.
    args: Vec<(String, Option<String>)>,
    /// Print nothing (`build -q`, and the step `--label` adds).
    quiet: bool,
    /// The step on BuildKit's display, while it runs.
    vertex: Option<Vertex>,
    /// The step was a cache hit.
    cached: bool,
    /// The current step as the output shows it, its number (`Step N`) and its position in
    /// the stage (0 is FROM, ONBUILD triggers are negative).
    instruction: String,
    step_no: usize,
    position: i64,
    /// The stage's base as named and its ID (`NAME@sha256:…`).
    base: String,
    /// The number of the stage's first step that missed.
    first_miss: Option<usize>,
    /// A COPY/ADD's sources hash and the files it was computed from.
    files: Option<(String, crate::context::Listing)>,
    /// A missed step's inputs, recorded once it is built.
    pending: Option<insight::Pending>,
    /// Why the current step missed.
    reason: Option<String>,
    /// Print no miss reason (a `COPY --link` that reuses its layer).
    hide_miss: bool,
}

impl<'b> StageState<'b> {
    /// A stage on `config` (the base image's, or scratch's): `PATH` set and the base
    /// image's SHELL in force.
    fn new(
        build: &'b BuildState<'b>,
        index: usize,
        id: Option<Digest>,
        config: ImageConfig,
    ) -> Self {
        let mut st = StageState {
            build,
            index,
            id,
            config,
            shell: vec!["/bin/sh".into(), "-c".into()],
            busted: build.opts.no_cache,
            cmd_set: false,
            args: vec![],
            quiet: build.opts.classic_quiet(),
            vertex: None,
            cached: false,
            instruction: String::new(),
            step_no: 0,
            position: 0,
            base: String::new(),
            first_miss: None,
            files: None,
            pending: None,
            reason: None,
            hide_miss: false,
        };
        let mut cfg = st.run_config();
        let env = cfg.env.get_or_insert_with(Vec::new);
        if !env.iter().any(|e| e.starts_with("PATH=")) {
            env.insert(0, oci::DEFAULT_PATH_ENV.to_string());
        }
        if let Some(sh) = cfg.shell.as_ref().filter(|sh| !sh.is_empty()) {
            st.shell = sh.clone();
        }
        st.config.config = Some(cfg);
        st
    }

    fn opts(&self) -> &'b BuildOptions {
        self.build.opts
    }

    fn run_config(&self) -> ContainerConfig {
        self.config.config.clone().unwrap_or_default()
    }
    fn env_pairs(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        for (k, v) in &self.args {
            if let Some(v) = v {
                out.push((k.clone(), v.clone()));
            }
        }
        // ENV wins over ARG of the same name.
        for e in self.run_config().env.unwrap_or_default() {
            if let Some((k, v)) = e.split_once('=') {
                out.retain(|(n, _)| n != k);
                out.push((k.to_string(), v.to_string()));
            }
        }
        out
    }
}

/// The `LABEL` steps `--label` adds to the last stage built (none on other stages), one per
/// label, sorted by key.
fn label_steps(bs: &BuildState, index: usize) -> Vec<Step> {
    if index != bs.last {
        return Vec::new();
    }
    let labels: BTreeMap<&str, &str> = bs
        .opts
        .labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    labels
        .into_iter()
        .map(|(k, v)| Step {
            text: format!("LABEL {k}={v}"),
            line: 0,
            op: Op::Label {
                pairs: vec![(k.to_string(), v.to_string())],
                expand: false,
            },
        })
        .collect()
}

/// The build args Docker 20.10's classic builder accepts without an `ARG`
/// (`builtinAllowedBuildArgs`): passed to RUN steps, never reported as unused.
pub const CLASSIC_PROXY_ARGS: [&str; 8] = [
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
];

/// A chunk of a step's standard error as Docker's classic builder writes it into the build
/// output: between the escape sequences that turn it bright red (`streamformatter`'s
/// stderr writer), one pair per write.
fn stderr_chunk(buf: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(buf.len() + 9);
    out.extend_from_slice(b"\x1b[91m");
    out.extend_from_slice(buf);
    out.extend_from_slice(b"\x1b[0m");
    out
}

fn new_container_id() -> String {
    let mut b = [0u8; 32];
    if let Ok(mut f) = fs::File::open("/dev/urandom") {
        use std::io::Read;
        let _ = f.read_exact(&mut b);
    }
    hex::encode(b)
}

/// Docker's `compare()` of two container configs for a cache hit.
fn cache_match(a: &ContainerConfig, b: &ContainerConfig) -> bool {
    if a.open_stdin || b.open_stdin {
        return false;
    }
    let keys = |m: &Option<std::collections::BTreeSet<String>>| m.clone().unwrap_or_default();
    a.attach_stdout == b.attach_stdout
        && a.attach_stderr == b.attach_stderr
        && a.user == b.user
        && a.tty == b.tty
        && a.cmd.clone().unwrap_or_default() == b.cmd.clone().unwrap_or_default()
        && a.env.clone().unwrap_or_default() == b.env.clone().unwrap_or_default()
        && a.entrypoint.clone().unwrap_or_default() == b.entrypoint.clone().unwrap_or_default()
        && a.labels.clone().unwrap_or_default() == b.labels.clone().unwrap_or_default()
        && keys(&a.exposed_ports) == keys(&b.exposed_ports)
        && keys(&a.volumes) == keys(&b.volumes)
}

/// A digest of what [`cache_match`] compares, recorded with each image the builder makes
/// (`store::Publisher::set_cache_key`) so that a probe reads only the configs that can match:
/// two configs get the same key exactly when they match. None for a config that matches
/// nothing (`OpenStdin`).
fn cache_key(c: &ContainerConfig) -> Option<String> {
    if c.open_stdin {
        return None;
    }
    let mut h = oci::Hasher::new();
    // Every part is length-prefixed, so no two configs hash the same bytes.
    let mut part = |b: &[u8]| {
        h.update(&(b.len() as u64).to_le_bytes());
        h.update(b);
    };
    // Changing what is compared changes this version, so older keys never match.
    part(b"strata-cache-key-1");
    part(&[c.attach_stdout as u8, c.attach_stderr as u8, c.tty as u8]);
    part(c.user.as_bytes());
    let mut list = |items: &mut dyn ExactSizeIterator<Item = &str>| {
        part(&(items.len() as u64).to_le_bytes());
        for i in items {
            part(i.as_bytes());
        }
    };
    let none = Vec::new();
    for v in [&c.cmd, &c.env, &c.entrypoint] {
        list(&mut v.as_ref().unwrap_or(&none).iter().map(String::as_str));
    }
    let labels = c.labels.clone().unwrap_or_default();
    list(
        &mut labels
            .iter()
            .flat_map(|(k, v)| [k.as_str(), v.as_str()])
            .collect::<Vec<_>>()
            .into_iter(),
    );
    for set in [&c.exposed_ports, &c.volumes] {
        let set = set.clone().unwrap_or_default();
        list(&mut set.iter().map(String::as_str));
    }
    Some(h.finish().to_string())
}

fn command_argv(form: &CommandForm, shell: &[String]) -> Vec<String> {
    match form {
        CommandForm::Shell(s) => {
            let mut v = shell.to_vec();
            v.push(s.clone());
            v
        }
        CommandForm::Exec(v) => v.clone(),
    }
}

impl Builder<'_> {
    fn say(&mut self, quiet: bool, line: &str) {
        if !quiet {
            let _ = writeln!(self.out, "{line}");
            let _ = self.out.flush();
        }
    }

    /// Shows that step `number` started, on BuildKit's display.
    fn begin_vertex(&mut self, bs: &BuildState, number: usize, name: String) -> Option<Vertex> {
        let mode = bs.opts.progress;
        (mode != Progress::Classic && !bs.opts.quiet)
            .then(|| Vertex::begin(self.out, mode, number, name))
    }

    /// Shows how a step ended, on BuildKit's display.
    fn end_vertex(&mut self, v: Option<Vertex>, err: Option<&BuildError>, cached: bool) {
        let Some(v) = v else { return };
        let msg;
        let outcome = match err {
            Some(BuildError::Cancelled) => Outcome::Canceled,
            Some(e) => {
                msg = e.to_string();
                Outcome::Error(&msg)
            }
            None if cached => Outcome::Cached,
            None => Outcome::Done,
        };
        v.end(self.out, outcome);
    }

    /// Docker's ` ---> ID` line after a step (empty for `FROM scratch`).
    fn say_image(&mut self, st: &StageState) {
        let id = st.id.map(|id| id.short()).unwrap_or_default();
        self.say(st.quiet, &format!(" ---> {id}"));
    }

    /// Builds the plan; returns the final image's ID.
    ///
    /// Each step's image is recorded without waiting for the disk ([`Store::unsynced`]): the
    /// tag at the end waits for it, which makes every earlier record durable with it, or,
    /// without a tag or when the build fails, a sync of the store before returning. What a
    /// build printed is durable once it returns, with one disk wait instead of one per step.
    pub fn build(&mut self, plan: &Plan, opts: &BuildOptions) -> Result<Digest> {
        let unsynced = std::cell::Cell::new(false);
        let built = self.build_stages(plan, opts, &unsynced);
        // The export comes after every step on BuildKit's display.
        let vertex = plan.step_count(plan.stages.len().saturating_sub(1)) + opts.labels.len() + 1;
        let tagged = built.and_then(|id| self.tag(&id, opts, unsynced.get(), vertex).map(|()| id));
        if unsynced.get() && (tagged.is_err() || opts.tags.is_empty()) {
            let synced = self.store.sync();
            if tagged.is_ok() {
                synced?;
            }
        }
        tagged
    }

    /// Builds the stages; returns the final image's ID, untagged.
    fn build_stages(
        &mut self,
        plan: &Plan,
        opts: &BuildOptions,
        unsynced: &std::cell::Cell<bool>,
    ) -> Result<Digest> {
        let last = last_stage(plan, opts.target.as_deref())?;
        if let Some(w) = &plan.warnings {
            if opts.progress != Progress::Classic {
                let _ = self.out.write_all(w.as_bytes());
            } else if !opts.quiet {
                let _ = self.out.write_all(&stderr_chunk(w.as_bytes()));
                let _ = self.out.flush();
            }
        }
        let meta = self.meta_args(plan, opts, last)?;
        let referenced = meta.iter().map(|(k, _)| k.clone()).collect();
        let jobs = match opts.jobs {
            0 => schedule::default_jobs(),
            n => n,
        };
        let bs = BuildState {
            plan,
            opts,
            meta,
            graph: schedule::Graph::new(plan.stages.len(), jobs),
            unsynced: AtomicBool::new(false),
            last,
            last_base: Mutex::new(None),
            referenced: Mutex::new(referenced),
            explained: AtomicBool::new(false),
            steps: Mutex::new(Vec::new()),
            stage_stores: Mutex::new(Vec::new()),
        };
        let r = self.build_up_to_last(&bs);
        // Held here before the stages' handles (and what they hold) go with `bs`.
        let r = r.and_then(|id| {
            if self.store.hold_image(&id)? {
                Ok(id)
            } else {
                Err(store::Error::ImageNotFound(id).into())
            }
        });
        let mut steps = std::mem::take(&mut *bs.steps.lock().unwrap_or_else(|e| e.into_inner()));
        steps.sort_by_key(|s| s.number);
        self.steps = steps;
        unsynced.set(bs.unsynced.load(Ordering::Relaxed));
        if r.is_ok() {
            self.warn_unused_args(&bs);
        }
        r.and_then(|id| self.squash(&bs, id))
    }

    /// `--squash`: the final image with the layers on its stage's base merged into one
    /// (Docker's `SquashImage`); `--squash-all`: all its layers in one.
    fn squash(&mut self, bs: &BuildState, id: Digest) -> Result<Digest> {
        let base = match bs.opts.squash {
            Squash::No => return Ok(id),
            Squash::NewLayers => *bs.last_base.lock().unwrap_or_else(|e| e.into_inner()),
            Squash::All => None,
        };
        Ok(image::squash(
            self.store,
            &id,
            base.as_ref(),
            &bs.opts.created(),
        )?)
    }

    /// Builds every stage up to the last one (Docker's classic builder builds them all,
    /// needed by the target or not; with BuildKit's display, only the ones the last one
    /// needs, as BuildKit), each as soon as the stages it needs are built, at most `jobs`
    /// at once; returns the last one's image.
    fn build_up_to_last(&mut self, bs: &BuildState) -> Result<Digest> {
        if bs.opts.progress != Progress::Classic {
            if let Some(wanted) = schedule::wanted(bs.plan, bs.last, self.frontend, &bs.meta) {
                for i in (0..bs.last).filter(|i| !wanted.contains(i)) {
                    bs.graph.skip(i);
                }
            }
        }
        let root = self.store.root().to_path_buf();
        let through = bs.opts.progress == Progress::RawJson;
        let ordered = schedule::Ordered::new(&mut *self.out, bs.last + 1, through);
        let shared = Shared {
            snapshots: self.snapshots,
            runner: self.runner,
            frontend: self.frontend,
            context: self.context,
            work_dir: &self.work_dir,
            init_layer: &self.init_layer,
            cache_dir: &self.cache_dir,
            puller: self.puller,
            fetcher: self.fetcher,
        };
        // The last stage is built on this thread with the builder's store (a one-stage build
        // opens no second connection and starts no thread); the others each on a thread.
        let store = &mut *self.store;
        let results: Vec<Option<Result<Digest>>> = std::thread::scope(|scope| {
            let threads: Vec<_> = (0..bs.last)
                .map(|i| {
                    let (shared, ordered, root) = (&shared, &ordered, &root);
                    scope.spawn(move || shared.stage_thread(StageStore::Open(root), bs, i, ordered))
                })
                .collect();
            let last = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                shared.stage_thread(StageStore::Builder(store), bs, bs.last, &ordered)
            }));
            let panicked = |i| {
                bs.graph.fail(i);
                Some(Err(BuildError::Step {
                    line: 0,
                    msg: "a build stage panicked".into(),
                }))
            };
            let mut results: Vec<_> = threads
                .into_iter()
                .enumerate()
                .map(|(i, t)| t.join().unwrap_or_else(|_| panicked(i)))
                .collect();
            results.push(last.unwrap_or_else(|_| panicked(bs.last)));
            results
        });
        ordered.flush_all();
        drop(ordered);
        self.stage_images = bs.graph.images().into_iter().flatten().collect();
        // The error of the stage that failed; the others only stopped because of it.
        let mut first_cancel = None;
        let mut last = None;
        for r in results.into_iter().flatten() {
            match r {
                Err(BuildError::Cancelled) => {
                    first_cancel = first_cancel.or(Some(BuildError::Cancelled))
                }
                Err(e) => return Err(e),
                Ok(id) => last = Some(id),
            }
        }
        if let Some(e) = first_cancel {
            return Err(e);
        }
        last.ok_or_else(|| BuildError::Step {
            line: 0,
            msg: "no build stage in the Dockerfile".into(),
        })
    }

    /// Docker's `[Warning] One or more build-args [A B] were not consumed` (on the build's
    /// output, before `Successfully built`): build args no ARG declared, other than the
    /// proxy variables the classic builder always accepts.
    fn warn_unused_args(&mut self, bs: &BuildState) {
        let referenced = bs.referenced.lock().unwrap_or_else(|e| e.into_inner());
        let unused: Vec<&str> = bs
            .opts
            .build_args
            .keys()
            .map(String::as_str)
            .filter(|k| {
                !referenced.contains(*k)
                    && !CLASSIC_PROXY_ARGS.contains(k)
                    && *k != "SOURCE_DATE_EPOCH"
            })
            .collect();
        if !unused.is_empty() {
            let line = format!(
                "[Warning] One or more build-args [{}] were not consumed",
                unused.join(" ")
            );
            self.say(bs.opts.classic_quiet(), &line);
        }
    }

    /// The ARGs before the first FROM (one step each): visible to FROM lines, and inside
    /// stages that declare them again.
    fn meta_args(
        &mut self,
        plan: &Plan,
        opts: &BuildOptions,
        last: usize,
    ) -> Result<Vec<(String, String)>> {
        let total = plan.step_count(last);
        let mut meta: Vec<(String, String)> = Vec::new();
        for (i, (text, decls)) in plan.meta_args.iter().enumerate() {
            self.say(
                opts.classic_quiet(),
                &format!("Step {}/{total} : {text}", i + 1),
            );
            for (name, default) in decls {
                let value = match opts.build_args.get(name) {
                    Some(v) => Some(v.clone()),
                    None => default
                        .as_ref()
                        .map(|d| self.frontend.word(d, &meta))
                        .transpose()
                        .map_err(BuildError::Frontend)?,
                };
                if let Some(v) = value {
                    meta.push((name.clone(), v));
                }
            }
        }
        Ok(meta)
    }

    /// Tags the final image and prints Docker's last lines (only the ID with `-q`).
    ///
    /// When the build recorded nothing new and every tag already names the image (an
    /// unchanged rebuild), the commit only moves Docker's `LastTagTime`, which need not wait
    /// for the disk: a crash loses nothing but that time.
    /// `vertex` numbers the export on BuildKit's display.
    fn tag(
        &mut self,
        id: &Digest,
        opts: &BuildOptions,
        unsynced: bool,
        vertex: usize,
    ) -> Result<()> {
        if opts
            .cancel
            .as_ref()
            .is_some_and(|c| c.load(Ordering::SeqCst))
        {
            return Err(BuildError::Cancelled);
        }
        let mut retag_only = !unsynced;
        for t in &opts.tags {
            if !retag_only {
                break;
            }
            retag_only = self.store.lookup_tag(&t.to_string())?.as_ref() == Some(id);
        }
        let commit = |store: &mut Store| -> Result<()> {
            let mut p = store.publish()?;
            for t in &opts.tags {
                p.tag(&t.to_string(), id)?;
            }
            p.commit()?;
            Ok(())
        };
        if retag_only {
            self.store.unsynced(commit)?;
        } else {
            commit(self.store)?;
        }
        for t in &opts.tags {
            image::record_event(self.store, "tag", id, Some(&t.familiar()));
        }
        if opts.quiet {
            let _ = writeln!(self.out, "{id}");
        } else if opts.progress != Progress::Classic {
            let v = Vertex::begin(self.out, opts.progress, vertex, "exporting to image".into());
            if opts.progress == Progress::Plain {
                let _ = writeln!(self.out, "#{vertex} writing image {id} done");
                for t in &opts.tags {
                    let _ = writeln!(self.out, "#{vertex} naming to {t} done");
                }
            }
            v.end(self.out, Outcome::Done);
        } else {
            if let Some(f) = self.on_built {
                let _ = self.out.flush();
                f(id);
            }
            self.say(false, &format!("Successfully built {}", id.short()));
            for t in &opts.tags {
                self.say(false, &format!("Successfully tagged {}", t.familiar()));
            }
        }
        Ok(())
    }

    /// Builds stage `index`: its base, the base's ONBUILD triggers, its steps, and on the
    /// last stage one `LABEL` step per `--label` (sorted), as Docker's classic builder adds
    /// them; returns the stage's final image.
    fn build_stage(&mut self, bs: &BuildState, index: usize) -> Result<Digest> {
        let stage = &bs.plan.stages[index];
        let total = bs.plan.step_count(bs.last) + label_steps(bs, index).len();
        let first = bs.plan.first_step(index);
        self.say(
            bs.opts.classic_quiet(),
            &format!("Step {first}/{total} : {}", stage.from_text),
        );
        let name = stage
            .name
            .clone()
            .unwrap_or_else(|| format!("stage-{index}"));
        let vertices = 1 + stage.steps.iter().filter(|s| s.op.does_work()).count();
        let v = self.begin_vertex(
            bs,
            first,
            format!("[{name} 1/{vertices}] {}", stage.from_text),
        );
        let started = std::time::Instant::now();
        let based = self.stage_base(bs, index);
        self.end_vertex(v, based.as_ref().err(), false);
        let from_record = store::StepRecord {
            number: first,
            stage: index,
            position: 0,
            line: stage.line,
            instruction: stage.from_text.clone(),
            duration_us: started.elapsed().as_micros() as u64,
            error: based.as_ref().err().map(|e| e.to_string()),
            ..Default::default()
        };
        bs.steps
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(from_record);
        let (id, config) = based?;
        // The base stays while this build stands on it, whatever other processes remove.
        if let Some(base) = id {
            if !self.store.hold_image(&base)? {
                return Err(store::Error::ImageNotFound(base).into());
            }
        }
        if index == bs.last {
            *bs.last_base.lock().unwrap_or_else(|e| e.into_inner()) = id;
        }
        let word = self
            .frontend
            .word(&stage.base, &bs.meta)
            .unwrap_or_else(|_| stage.base.clone());
        let base_name = match stage_ref(bs.plan, index, &word) {
            Some(j) => bs.plan.stages[j]
                .name
                .clone()
                .unwrap_or_else(|| format!("stage {j}")),
            None => word,
        };
        let mut st = StageState::new(bs, index, id, config);
        st.base = match id {
            Some(id) => format!("{base_name}@{id}"),
            None => base_name,
        };
        st.step_no = first;
        self.run_triggers(&mut st)?;
        // After the triggers: their steps print what a step prints, but not the image.
        self.say_image(&st);
        let labels = label_steps(bs, index);
        let mut shown = 1;
        for (k, step) in stage.steps.iter().chain(labels.iter()).enumerate() {
            bs.graph.check(index)?;
            if bs
                .opts
                .cancel
                .as_ref()
                .is_some_and(|c| c.load(Ordering::SeqCst))
            {
                return Err(BuildError::Cancelled);
            }
            let n = first + 1 + k;
            self.say(st.quiet, &format!("Step {n}/{total} : {}", step.text));
            if step.op.does_work() && k < stage.steps.len() {
                shown += 1;
                let text = format!("[{name} {shown}/{vertices}] {}", step.text);
                st.vertex = self.begin_vertex(bs, n, text);
            }
            st.cached = false;
            st.instruction = step.text.clone();
            st.step_no = n;
            st.position = k as i64 + 1;
            let layers = st.config.diff_ids().len();
            let started = std::time::Instant::now();
            let done = self.step(&mut st, step);
            let elapsed = started.elapsed();
            self.end_vertex(st.vertex.take(), done.as_ref().err(), st.cached);
            self.record_step(&mut st, step.line, layers, elapsed, done.as_ref().err());
            done?;
            self.say_image(&st);
        }
        let last = index == bs.last;
        match st.id {
            Some(id) => Ok(id),
            // The built image is `FROM scratch` and nothing else: Docker makes no image.
            None if last => Err(BuildError::Step {
                line: 0,
                msg: "No image was generated. Is your Dockerfile empty?".into(),
            }),
            None => {
                // An earlier stage FROM scratch with no steps: an image with no layers.
                let cfg = st.config.clone();
                st.quiet = true;
                self.commit(&mut st, cfg, None, None)
            }
        }
    }

    /// The image and config a stage starts from: scratch, an earlier stage or an image.
    fn stage_base(
        &mut self,
        bs: &BuildState,
        index: usize,
    ) -> Result<(Option<Digest>, ImageConfig)> {
        let base = self
            .frontend
            .word(&bs.plan.stages[index].base, &bs.meta)
            .map_err(BuildError::Frontend)?;
        if base.eq_ignore_ascii_case("scratch") {
            let config = ImageConfig {
                architecture: oci::host_architecture().into(),
                os: "linux".into(),
                ..Default::default()
            };
            return Ok((None, config));
        }
        let id = match stage_ref(bs.plan, index, &base) {
            Some(j) => bs.graph.built(index, j)?,
            None => self.base_image(&base, bs.opts)?,
        };
        Ok((Some(id), image::read_config(self.store, &id)?))
    }

    /// Adds the step just run to the build's record: how long it took, whether it was
    /// cached or why it missed, and the size of the layer it added.
    fn record_step(
        &mut self,
        st: &mut StageState,
        line: usize,
        layers: usize,
        elapsed: std::time::Duration,
        err: Option<&BuildError>,
    ) {
        let diff_ids = st.config.diff_ids();
        let bytes = match diff_ids.last() {
            Some(d) if diff_ids.len() > layers && err.is_none() => self
                .store
                .layer(d)
                .ok()
                .flatten()
                .map(|l| l.size)
                .unwrap_or_default(),
            _ => 0,
        };
        st.files = None;
        st.pending = None;
        let r = store::StepRecord {
            number: st.step_no,
            stage: st.index,
            position: st.position,
            line,
            instruction: st.instruction.clone(),
            duration_us: elapsed.as_micros() as u64,
            cached: st.cached,
            reason: st.reason.take(),
            bytes,
            error: err.map(|e| e.to_string()),
        };
        st.build
            .steps
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(r);
    }

    /// The ONBUILD triggers of the base image run first, then leave the config.
    fn run_triggers(&mut self, st: &mut StageState) -> Result<()> {
        let triggers = st.run_config().on_build.unwrap_or_default();
        if triggers.is_empty() {
            return Ok(());
        }
        let s = if triggers.len() == 1 { "" } else { "s" };
        let line = format!("# Executing {} build trigger{s}", triggers.len());
        self.say(st.quiet, &line);
        let mut cfg = st.run_config();
        cfg.on_build = None;
        st.config.config = Some(cfg);
        for (i, t) in triggers.into_iter().enumerate() {
            let step = self
                .frontend
                .parse_trigger(&t)
                .map_err(BuildError::Frontend)?;
            st.instruction = step.text.clone();
            st.position = -(i as i64) - 1;
            st.cached = false;
            let layers = st.config.diff_ids().len();
            let started = std::time::Instant::now();
            let done = self.step(st, &step);
            self.record_step(st, 0, layers, started.elapsed(), done.as_ref().err());
            done?;
        }
        Ok(())
    }

    /// The image a `FROM` names: from the store, or pulled when missing (always with
    /// `--pull`).
    fn base_image(&mut self, name: &str, opts: &BuildOptions) -> Result<Digest> {
        if !opts.pull {
            match image::resolve(self.store, name) {
                Ok(id) => return Ok(id),
                Err(image::Error::NoSuchImage(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        match self.puller {
            Some(pull) => pull(self.store, name).map_err(BuildError::Pull),
            None if opts.pull => Err(BuildError::Step {
                line: 0,
                msg: format!("--pull: cannot pull {name}: no registry client is available"),
            }),
            None => Err(BuildError::Step {
                line: 0,
                msg: format!(
                    "pull access denied for {name}: unable to find image '{name}' locally"
                ),
            }),
        }
    }

    /// Expands a word with the stage's ARGs and ENV.
    fn expand(&self, st: &StageState, w: &str) -> Result<String> {
        self.frontend
            .word(w, &st.env_pairs())
            .map_err(BuildError::Frontend)
    }

    fn step(&mut self, st: &mut StageState, step: &Step) -> Result<()> {
        match &step.op {
            Op::Run(form, mounts, flags) => self.run(st, step, form, mounts, *flags),
            Op::Workdir(w) => self.workdir(st, step, w),
            Op::Copy { .. } => self.copy(st, step),
            _ => self.meta_step(st, step),
        }
    }

    /// Looks for a cached child of the current image made by the same step; on a hit moves
    /// to it and prints Docker's lines.
    fn probe(&mut self, st: &mut StageState, probe: &ContainerConfig) -> Result<bool> {
        let parent = st.id;
        let busted = st.busted;
        let hit = self.probe_cache(st, probe)?;
        if hit {
            self.note_hit(st, parent)?;
        } else {
            self.note_miss(st, busted)?;
        }
        Ok(hit)
    }

    /// [`Builder::probe`]'s lookup.
    fn probe_cache(&mut self, st: &mut StageState, probe: &ContainerConfig) -> Result<bool> {
        if st.busted {
            return Ok(false);
        }
        // The children recorded with this step's key, and those recorded without one.
        let candidates = match cache_key(probe) {
            Some(key) => self.store.cache_candidates(st.id.as_ref(), &key)?,
            None => Vec::new(),
        };
        let mut best: Option<(String, Digest, ImageConfig)> = None;
        // With SOURCE_DATE_EPOCH, only images made with the same one (their times clamped).
        let epoch = st.opts().source_date_epoch.map(oci::unix_time);
        for c in candidates {
            let cfg = image::read_config(self.store, &c)?;
            let Some(cc) = &cfg.container_config else {
                continue;
            };
            let other_platform = st.opts().platform.as_ref().is_some_and(|p| {
                (&cfg.os, &cfg.architecture, &cfg.variant) != (&p.os, &p.architecture, &p.variant)
            });
            if !cache_match(cc, probe)
                || other_platform
                || epoch
                    .as_ref()
                    .is_some_and(|e| cfg.created != Some(e.clone()))
            {
                continue;
            }
            let created = cfg.created.clone().unwrap_or_default();
            if best.as_ref().map(|(t, _, _)| created > *t).unwrap_or(true) {
                best = Some((created, c, cfg));
            }
        }
        // A hit stands only if the image is still there (another process may have pruned
        // it since the lookup); held, it stays for the rest of the build.
        let best = match best {
            Some((_, id, _)) if !self.store.hold_image(&id)? => None,
            b => b,
        };
        match best {
            Some((_, id, cfg)) => {
                self.say(st.quiet, " ---> Using cache");
                st.cached = true;
                st.id = Some(id);
                if let Some(sh) = cfg.config.as_ref().and_then(|c| c.shell.clone()) {
                    st.shell = sh;
                }
                st.config = cfg;
                Ok(true)
            }
            None => {
                st.busted = true;
                Ok(false)
            }
        }
    }

    /// Records the step's image: `layer` is the new layer, if the step made one.
    fn commit(
        &mut self,
        st: &mut StageState,
        cfg: ImageConfig,
        probe: Option<ContainerConfig>,
        layer: Option<NewLayer>,
    ) -> Result<Digest> {
        self.commit_with(
            st,
            cfg,
            probe,
            layer.map(|l| StepLayer::New(Box::new(l))),
            None,
        )
    }

    /// Records the step's image with its layer, new or already stored; `link` records the
    /// layer as the one a `COPY --link` with that key makes.
    fn commit_with(
        &mut self,
        st: &mut StageState,
        mut cfg: ImageConfig,
        probe: Option<ContainerConfig>,
        layer: Option<StepLayer>,
        link: Option<&str>,
    ) -> Result<Digest> {
        let created = st.opts().created();
        let layer = match (layer, st.opts().source_date_epoch) {
            (Some(StepLayer::New(l)), Some(epoch)) => {
                Some(StepLayer::New(Box::new(l.clamped(epoch)?)))
            }
            (l, _) => l,
        };
        if st.opts().source_date_epoch.is_some() {
            // A random container ID would make every build's config differ.
            cfg.container = String::new();
        }
        let created_by = probe
            .as_ref()
            .and_then(|p| p.cmd.clone())
            .map(|c| c.join(" "))
            .unwrap_or_default();
        let mut parent_cfg_image = String::new();
        if let Some(id) = st.id {
            parent_cfg_image = id.to_string();
        }
        if let Some(c) = cfg.config.as_mut() {
            c.image = parent_cfg_image.clone();
        }
        let mut cc = probe.unwrap_or_default();
        cc.image = parent_cfg_image;
        let key = cache_key(&cc);
        cfg.container_config = Some(cc);
        cfg.created = Some(created.clone());
        cfg.docker_version = image::STRATA_VERSION.into();
        if let Some(p) = &st.opts().platform {
            cfg.os = p.os.clone();
            cfg.architecture = p.architecture.clone();
            cfg.variant = p.variant.clone();
        }
        if cfg.architecture.is_empty() {
            cfg.architecture = oci::host_architecture().into();
        }
        if cfg.os.is_empty() {
            cfg.os = "linux".into();
        }
        let empty = layer.is_none();
        let rootfs = cfg.rootfs.get_or_insert_with(RootFs::default);
        rootfs.kind = "layers".into();
        let diff_id = layer.as_ref().map(|l| match l {
            StepLayer::New(l) => l.layer.record.diff_id,
            StepLayer::Stored(d) => *d,
        });
        rootfs.diff_ids.extend(diff_id);
        if !created_by.is_empty() || st.id.is_some() || !empty {
            cfg.history.push(History {
                created: Some(created.clone()),
                created_by,
                empty_layer: empty,
                ..Default::default()
            });
        }
        let bytes = cfg.to_docker_json();
        let layers = cfg.diff_ids().to_vec();
        let parent = st.id;
        // Durable with the build's tag or final sync (see `build`).
        st.build.unsynced.store(true, Ordering::Relaxed);
        let id = self.store.unsynced(|store| -> Result<Digest> {
            let mut p = store.publish()?;
            if let Some(StepLayer::New(l)) = layer {
                l.layer.publish(&mut p)?;
            }
            if let (Some(key), Some(d)) = (link, &diff_id) {
                p.set_linked_layer(key, d)?;
            }
            let id = p.add_image(&NewImage {
                config: &bytes,
                layers: &layers,
                parent,
                created: &created,
            })?;
            if let Some(key) = &key {
                p.set_cache_key(&id, key)?;
            }
            // Held before anyone else can see it, dangling as it is until the tag.
            p.hold(&id)?;
            p.commit()?;
            Ok(id)
        })?;
        if let Some(sh) = cfg.config.as_ref().and_then(|c| c.shell.clone()) {
            st.shell = sh;
        }
        st.id = Some(id);
        st.config = cfg;
        self.record_pending(st)?;
        Ok(id)
    }

    /// The layer directories of the current image, top first, for mounting.
    fn lowers(&self, st: &StageState) -> Vec<PathBuf> {
        st.config
            .diff_ids()
            .iter()
            .rev()
            .map(|d| self.store.layer_dir(d))
            .collect()
    }

    /// Prepares and mounts a writable snapshot of the current image (init layer on top).
    fn mount(&self, st: &StageState, cid: &str) -> Result<(String, PathBuf)> {
        let key = format!("build-{}-{}", std::process::id(), &cid[..12]);
        let mut lowers = vec![self.init_layer.clone()];
        lowers.extend(self.lowers(st));
        // The step's changes become a layer that publishing makes durable, or are dropped.
        let mounts: Vec<snapshot::Mount> = self
            .snapshots
            .prepare(&key, &lowers)?
            .into_iter()
            .map(snapshot::Mount::volatile)
            .collect();
        let rootfs = self.work_dir.join(&key);
        fs::create_dir_all(&rootfs).map_err(|e| BuildError::io(&rootfs, e))?;
        if let Err(e) = snapshot::mount_all(&mounts, &rootfs) {
            let _ = self.snapshots.remove(&key);
            return Err(e.into());
        }
        Ok((key, rootfs))
    }

    /// Unmounts the step's snapshot and, when `keep`, turns its changes into a staged layer
    /// (`None` when nothing changed). The snapshot is gone afterwards either way.
    fn unmount_and_take(
        &mut self,
        key: &str,
        rootfs: &Path,
        keep: bool,
        cleanup: &[String],
    ) -> Result<Option<NewLayer>> {
        let unmounted = snapshot::unmount_all(rootfs);
        let _ = fs::remove_dir(rootfs);
        let result = (|| -> Result<Option<NewLayer>> {
            unmounted?;
            if !keep {
                return Ok(None);
            }
            let upper = self.snapshots.upper_dir(key)?;
            // Mount points made only for RUN --mount never belong to the layer.
            for p in cleanup {
                let host = upper.join(p.trim_start_matches('/'));
                match fs::symlink_metadata(&host) {
                    Ok(md) if md.is_dir() => {
                        let _ = fs::remove_dir(&host);
                    }
                    Ok(md) if md.is_file() && md.len() == 0 => {
                        let _ = fs::remove_file(&host);
                    }
                    _ => {}
                }
            }
            if fs::read_dir(&upper)
                .map_err(|e| BuildError::io(&upper, e))?
                .next()
                .is_none()
            {
                return Ok(None);
            }
            let staging = self.store.stage()?;
            // The upper directory already is the layer in overlay form: move it, no copy.
            let dir = staging.path().join("layer");
            fs::rename(&upper, &dir).map_err(|e| BuildError::io(&upper, e))?;
            let layer = image::stage_layer_dir(&staging, dir)?;
            Ok(Some(NewLayer {
                _staging: staging,
                layer,
            }))
        })();
        let _ = self.snapshots.remove(key);
        result
    }

    fn workdir(&mut self, st: &mut StageState, step: &Step, w: &str) -> Result<()> {
        let w = self.expand(st, w)?;
        let cur = st.run_config().working_dir;
        let path = clean_abs(&if w.starts_with('/') {
            w.clone()
        } else {
            format!("{}/{w}", if cur.is_empty() { "/" } else { &cur })
        });
        let mut cfg = st.run_config();
        cfg.working_dir = path.clone();
        let mut probe = cfg.clone();
        let mut cmd = st.shell.clone();
        cmd.push(format!("#(nop) WORKDIR {path}"));
        probe.cmd = Some(cmd);
        if self.probe(st, &probe)? {
            return Ok(());
        }
        let cid = new_container_id();
        self.say(st.quiet, &format!(" ---> Running in {}", &cid[..12]));
        let (key, rootfs) = self.mount(st, &cid)?;
        let made = crate::copy::mkdir_all_in_root(&rootfs, &path, None);
        let layer = self.unmount_and_take(&key, &rootfs, made.is_ok(), &[]);
        made.map_err(|msg| BuildError::Step {
            line: step.line,
            msg,
        })?;
        let layer = layer?;
        self.say(
            st.quiet,
            &format!("Removing intermediate container {}", &cid[..12]),
        );
        let mut new_cfg = st.config.clone();
        new_cfg.config = Some(cfg);
        new_cfg.container = cid;
        self.commit(st, new_cfg, Some(probe), layer)?;
        Ok(())
    }
}

/// Removes what builds killed before they finished left behind: their mounts under
/// `work_dir` and their snapshots. A build's snapshot keys carry its process ID.
pub fn cleanup_stale(snapshots: &dyn Snapshotter, work_dir: &Path) -> Result<usize> {
    let mut removed = 0;
    for key in snapshots.list()? {
        let mut parts = key.splitn(3, '-');
        let (Some(kind), Some(pid)) = (parts.next(), parts.next()) else {
            continue;
        };
        if kind != "build" && kind != "from" {
            continue;
        }
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        if pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let root = work_dir.join(&key);
        snapshot::unmount_all(&root)?;
        let _ = fs::remove_dir(&root);
        snapshots.remove(&key)?;
        removed += 1;
    }
    Ok(removed)
}

/// The layer of a step's image.
enum StepLayer {
    New(Box<NewLayer>),
    /// A layer the store holds (a `COPY --link` made on another parent).
    Stored(Digest),
}

/// A layer made by a step, staged and not yet published.
struct NewLayer {
    /// Holds the staging area (and so the layer's files) alive until it is published.
    _staging: store::Staging,
    layer: image::StagedLayer,
}

impl NewLayer {
    /// The layer with every mtime later than `epoch` set to it, staged again.
    fn clamped(self, epoch: i64) -> Result<NewLayer> {
        let dir = self.layer.into_dir();
        crate::epoch::clamp_mtimes(&dir, epoch).map_err(|e| BuildError::io(&dir, e))?;
        let layer = image::stage_layer_dir(&self._staging, dir)?;
        Ok(NewLayer {
            _staging: self._staging,
            layer,
        })
    }
}

fn clean_abs(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Configs that differ in one field each, and equal ones written differently.
    fn variants() -> Vec<ContainerConfig> {
        let base = ContainerConfig {
            cmd: Some(vec!["/bin/sh".into(), "-c".into(), "#(nop) ".into()]),
            env: Some(vec!["PATH=/bin".into()]),
            ..Default::default()
        };
        let mut out = vec![base.clone(), ContainerConfig::default()];
        let mut push = |f: &dyn Fn(&mut ContainerConfig)| {
            let mut c = base.clone();
            f(&mut c);
            out.push(c);
        };
        push(&|c| c.attach_stdout = true);
        push(&|c| c.attach_stderr = true);
        push(&|c| c.tty = true);
        push(&|c| c.user = "1000".into());
        push(&|c| c.cmd = None);
        push(&|c| c.cmd = Some(vec![]));
        push(&|c| c.cmd = Some(vec!["/bin/sh -c".into(), "#(nop) ".into()]));
        push(&|c| c.env = Some(vec!["PATH=/bin".into(), "A=1".into()]));
        push(&|c| c.entrypoint = Some(vec!["/bin/sh".into()]));
        push(&|c| c.entrypoint = Some(vec!["/bin/sh".into(), "-c".into()]));
        push(&|c| c.labels = Some([("a".into(), "b".into())].into()));
        push(&|c| c.labels = Some([("ab".into(), "".into())].into()));
        push(&|c| c.labels = Some(Default::default()));
        push(&|c| c.exposed_ports = Some(["80/tcp".to_string()].into()));
        push(&|c| c.volumes = Some(["80/tcp".to_string()].into()));
        // Not compared by Docker's cache.
        push(&|c| c.working_dir = "/app".into());
        push(&|c| c.image = "sha256:00".into());
        push(&|c| c.hostname = "h".into());
        out
    }

    #[test]
    fn cache_keys_are_equal_exactly_when_configs_match() {
        let all = variants();
        for a in &all {
            for b in &all {
                assert_eq!(
                    cache_key(a) == cache_key(b),
                    cache_match(a, b),
                    "{a:?}\n{b:?}"
                );
            }
        }
        let open = ContainerConfig {
            open_stdin: true,
            ..Default::default()
        };
        assert_eq!(cache_key(&open), None);
        assert!(!cache_match(&open, &open));
    }
}
