//! Command-line arguments, with Docker's flag names, short forms and defaults.

use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "strata",
    version,
    about = "A daemonless, Docker-compatible image builder and runtime"
)]
pub struct Cli {
    /// Root directory of the store (default /var/lib/strata as root, else $XDG_DATA_HOME/strata)
    #[arg(long, global = true, env = "STRATA_ROOT", value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Set the logging level ("debug"|"info"|"warn"|"error"|"fatal"); before the command, as
    /// Docker's global options (after it, `-l` is the command's own, as `ps -l`)
    #[arg(short = 'l', long, default_value = "info", value_name = "LEVEL")]
    pub log_level: String,
    /// Enable debug mode
    #[arg(short = 'D', long, global = true)]
    pub debug: bool,
    /// A registry to reach over plain HTTP (HOST[:PORT]; repeatable). Also read from
    /// "insecure-registries" in $STRATA_CONFIG (default /etc/strata/daemon.json)
    #[arg(long = "insecure-registry", global = true, value_name = "HOST[:PORT]")]
    pub insecure_registries: Vec<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum Command {
    /// Build an image from a Dockerfile
    Build(BuildArgs),
    /// Import the contents from a tarball to create a filesystem image
    Import(ImportArgs),
    /// Load an image from a tar archive or STDIN
    Load(LoadArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default)
    Save(SaveArgs),
    /// List images
    Images(ImagesArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(TagArgs),
    /// Remove one or more images
    Rmi(RmiArgs),
    /// Return low-level information on images
    Inspect(InspectArgs),
    /// Show the history of an image
    History(HistoryArgs),
    /// Manage images
    #[command(subcommand)]
    Image(ImageCommand),
    /// Manage strata
    #[command(subcommand)]
    System(SystemCommand),
    /// Manage builds
    #[command(subcommand)]
    Builder(BuilderCommand),
    // ---- containers ----
    /// Run a command in a new container
    Run(RunArgs),
    /// Create a new container
    Create(RunArgs),
    /// Start one or more stopped containers
    Start(StartArgs),
    /// List containers
    Ps(PsArgs),
    /// Remove one or more containers
    Rm(RmArgs),
    /// Stop one or more running containers
    Stop(StopArgs),
    /// Kill one or more running containers
    Kill(KillArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(ContainersArgs),
    /// Fetch the logs of a container
    Logs(LogsArgs),
    /// Inspect changes to files or directories on a container's filesystem
    Diff(ContainerArg),
    /// Create a new image from a container's changes
    Commit(CommitArgs),
    /// Export a container's filesystem as a tar archive
    Export(ExportArgs),
    /// Run a command in a running container
    Exec(ExecArgs),
    /// Rename a container
    Rename(RenameArgs),
    /// Restart one or more containers
    Restart(StopArgs),
    /// Display the running processes of a container
    Top(TopArgs),
    /// List port mappings or a specific mapping for the container
    Port(PortArgs),
    /// Pause all processes within one or more containers
    Pause(ContainersArgs),
    /// Unpause all processes within one or more containers
    Unpause(ContainersArgs),
    /// Update configuration of one or more containers
    Update(UpdateArgs),
    /// Display a live stream of container(s) resource usage statistics
    Stats(StatsArgs),
    /// Copy files/folders between a container and the local filesystem
    Cp(CpArgs),
    /// Attach local standard input, output, and error streams to a running container
    Attach(AttachArgs),
    /// Manage containers
    #[command(subcommand)]
    Container(ContainerCommand),
    /// Manage volumes
    Volume(VolumeArgs),
    /// Manage networks
    #[command(subcommand)]
    Network(NetworkCommand),
    /// (internal) monitor a detached container until it ends
    #[command(hide = true, name = "container-monitor")]
    ContainerMonitor(ContainerArg),
    // ---- end containers ----
    /// Show the strata version information
    Version(VersionArgs),
    /// Get real time events from the store's journal
    Events(EventsArgs),
    /// Display system-wide information
    Info(InfoArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish or powershell)
    Completion(CompletionArgs),
    // ---- registry ----
    /// Download an image from a registry
    Pull(PullArgs),
    /// Upload an image to a registry
    Push(PushArgs),
    /// Log in to a registry
    Login(LoginArgs),
    /// Log out from a registry
    Logout(LogoutArgs),
}

#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum ImageCommand {
    Import(ImportArgs),
    Load(LoadArgs),
    Save(SaveArgs),
    #[command(visible_alias = "list")]
    Ls(ImagesArgs),
    Tag(TagArgs),
    #[command(visible_alias = "remove")]
    Rm(RmiArgs),
    Inspect(InspectArgs),
    History(HistoryArgs),
    /// Show where an image's bytes go: its layers, wasted space and efficiency (as dive)
    Layers(LayersArgs),
    /// Remove unused images
    Prune(PruneArgs),
    Build(Box<BuildArgs>),
    Pull(PullArgs),
    Push(PushArgs),
}

#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum BuilderCommand {
    /// Remove build cache (intermediate images no tagged image needs, RUN --mount=type=cache
    /// directories, build records)
    Prune(BuilderPruneArgs),
    /// Show the records of past builds
    #[command(subcommand)]
    History(BuildHistoryCommand),
    /// Build an image from a Dockerfile
    Build(Box<BuildArgs>),
}

#[derive(Args, Debug)]
pub struct BuilderPruneArgs {
    /// Remove all unused build cache, not just dangling ones
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Provide filter values (e.g. "until=24h")
    #[arg(long = "filter", value_name = "filter")]
    pub filters: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Amount of disk space to keep for cache
    #[arg(long = "keep-storage", value_name = "bytes")]
    pub keep_storage: Option<String>,
}

#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum BuildHistoryCommand {
    /// List build records
    Ls(BuildHistoryLsArgs),
    /// Inspect a build record (default: the latest)
    Inspect(BuildHistoryInspectArgs),
    /// Remove build records
    Rm(BuildHistoryRmArgs),
}

#[derive(Args, Debug)]
pub struct BuildHistoryLsArgs {
    /// Format the output (table, json, or a Go template)
    #[arg(long)]
    pub format: Option<String>,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
}

#[derive(Args, Debug)]
pub struct BuildHistoryInspectArgs {
    /// Format the output (json, or a Go template)
    #[arg(long)]
    pub format: Option<String>,
    /// The build's ID (or a prefix of it); the latest build when not given
    pub id: Option<String>,
}

#[derive(Args, Debug)]
pub struct BuildHistoryRmArgs {
    /// Remove all build records
    #[arg(long)]
    pub all: bool,
    pub ids: Vec<String>,
}

#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum SystemCommand {
    /// Check the store: blobs, layers, metadata references, leftovers (exit 1 on a problem)
    Check(SystemCheckArgs),
    /// Show strata disk usage
    Df(DfArgs),
    /// Get real time events from the store's journal
    Events(EventsArgs),
    /// Display system-wide information
    Info(InfoArgs),
    /// Remove unused data
    Prune(SystemPruneArgs),
    /// Serve Docker's Engine API on a socket (the docker CLI, docker-py, Compose...)
    Service(ServiceArgs),
    /// Stop running containers and, rootless, the user namespace's pause process (so the
    /// next command reads /etc/subuid and /etc/subgid again)
    Migrate(MigrateArgs),
}

#[derive(Args, Debug)]
pub struct MigrateArgs {}

#[derive(Args, Debug)]
pub struct ServiceArgs {
    /// Seconds without a request or open connection before the service exits (0: never)
    #[arg(
        short = 't',
        long = "time",
        default_value_t = 5,
        value_name = "SECONDS"
    )]
    pub time: u64,
    /// Where to listen: unix:///PATH or tcp://127.0.0.1:PORT (default: /run/strata/strata.sock
    /// as root, $XDG_RUNTIME_DIR/strata/strata.sock otherwise)
    #[arg(value_name = "URI")]
    pub uri: Option<String>,
    /// Listen on a TCP address that is not loopback, without TLS (dockerd's --tls=false):
    /// whoever reaches it gets root on this machine
    #[arg(long = "tls", value_name = "bool", default_value_t = true, action = clap::ArgAction::Set)]
    pub tls: bool,
}

#[derive(Args, Debug)]
pub struct VersionArgs {
    /// Format the output using the given Go template ("json": the whole as JSON)
    #[arg(short = 'f', long, value_name = "string")]
    pub format: Option<String>,
}

#[derive(Args, Debug)]
pub struct EventsArgs {
    /// Filter output based on conditions provided
    #[arg(short = 'f', long = "filter", value_name = "filter")]
    pub filters: Vec<String>,
    /// Format the output using the given Go template ("json": one JSON object per line)
    #[arg(long, value_name = "string")]
    pub format: Option<String>,
    /// Show all events created since timestamp
    #[arg(long, value_name = "string")]
    pub since: Option<String>,
    /// Stream events until this timestamp
    #[arg(long, value_name = "string")]
    pub until: Option<String>,
}

#[derive(Args, Debug)]
pub struct InfoArgs {
    /// Format the output using the given Go template ("json": the whole as JSON)
    #[arg(short = 'f', long, value_name = "string")]
    pub format: Option<String>,
}

#[derive(Args, Debug)]
pub struct SystemCheckArgs {
    /// Remove what nothing references (orphan blobs and layers, dead staging areas, stray
    /// mounts); damaged images are reported and kept
    #[arg(long)]
    pub repair: bool,
    /// Also put every layer's tar back together from its files and hash it against its diff_id
    #[arg(long)]
    pub deep: bool,
}

#[derive(Args, Debug)]
pub struct SystemPruneArgs {
    /// Remove all unused images not just dangling ones
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Provide filter values (e.g. 'label=<key>=<value>')
    #[arg(long = "filter", value_name = "filter")]
    pub filters: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Prune volumes
    #[arg(long)]
    pub volumes: bool,
}

#[derive(Args, Debug)]
pub struct CompletionArgs {
    /// The shell: bash, zsh, fish, elvish or powershell
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// Apply Dockerfile instruction to the created image
    #[arg(short = 'c', long = "change", value_name = "INSTRUCTION")]
    pub changes: Vec<String>,
    /// Set commit message for imported image
    #[arg(short = 'm', long)]
    pub message: Option<String>,
    /// Set platform if server is multi-platform capable
    #[arg(long)]
    pub platform: Option<String>,
    /// A tarball (plain, gzip, bzip2, xz or zstd) or - for standard input
    pub file: String,
    /// REPOSITORY[:TAG]
    pub reference: Option<String>,
}

#[derive(Args, Debug)]
pub struct LoadArgs {
    /// Read from tar archive file, instead of STDIN
    #[arg(short = 'i', long)]
    pub input: Option<PathBuf>,
    /// Suppress the load output
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct SaveArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short = 'o', long)]
    pub output: Option<PathBuf>,
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ImagesArgs {
    /// Show all images (default hides intermediate images)
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Only show image IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Show digests
    #[arg(long)]
    pub digests: bool,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Pretty-print images using a Go template
    #[arg(long)]
    pub format: Option<String>,
    /// Filter output based on conditions provided (dangling, label, before, since, reference)
    #[arg(short = 'f', long = "filter")]
    pub filters: Vec<String>,
    /// Draw the images as the tree of the layers they share
    #[arg(long, conflicts_with_all = ["quiet", "format", "digests", "filters", "reference"])]
    pub tree: bool,
    /// REPOSITORY[:TAG]
    pub reference: Option<String>,
}

#[derive(Args, Debug)]
pub struct TagArgs {
    #[arg(value_name = "SOURCE_IMAGE[:TAG]")]
    pub source: String,
    #[arg(value_name = "TARGET_IMAGE[:TAG]")]
    pub target: String,
}

#[derive(Args, Debug)]
pub struct RmiArgs {
    /// Force removal of the image
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Do not delete untagged parents
    #[arg(long)]
    pub no_prune: bool,
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
}

#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Remove all unused images, not just dangling ones
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Provide filter values (e.g. 'until=<timestamp>')
    #[arg(long = "filter", value_name = "filter")]
    pub filters: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Format the output using the given Go template
    #[arg(short = 'f', long)]
    pub format: Option<String>,
    /// Display total file sizes if the type is container
    #[arg(short = 's', long)]
    pub size: bool,
    /// Return JSON for specified type
    #[arg(long = "type")]
    pub kind: Option<String>,
    #[arg(required = true, value_name = "NAME")]
    pub names: Vec<String>,
}

#[derive(Args, Debug)]
pub struct HistoryArgs {
    /// Print sizes and dates in human readable format
    #[arg(short = 'H', long, default_value_t = true, action = ArgAction::Set, num_args = 0..=1,
          default_missing_value = "true", require_equals = true)]
    pub human: bool,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Only show image IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Pretty-print history using a Go template
    #[arg(long)]
    pub format: Option<String>,
    pub image: String,
}

#[derive(Args, Debug)]
pub struct LayersArgs {
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Format the output: 'json', 'svg' or 'html' (a picture of the layer stack), or a Go
    /// template over the JSON
    #[arg(long)]
    pub format: Option<String>,
    /// Check the image against the thresholds below, as dive --ci does (exit 1 on a failure;
    /// dive's own flag names, --lowestEfficiency and so on, are accepted too)
    #[arg(long, conflicts_with = "format")]
    pub ci: bool,
    /// Lowest efficiency score allowed (0 to 1, or 'disabled')
    #[arg(
        long,
        alias = "lowestEfficiency",
        default_value = "0.9",
        value_name = "RATIO"
    )]
    pub lowest_efficiency: String,
    /// Most wasted bytes allowed ('20MB', '1.5GiB'..., or 'disabled')
    #[arg(
        long,
        alias = "highestWastedBytes",
        default_value = "disabled",
        value_name = "BYTES"
    )]
    pub highest_wasted_bytes: String,
    /// Largest share of wasted bytes in the bytes above the base layer (0 to 1, or 'disabled')
    #[arg(
        long,
        alias = "highestUserWastedPercent",
        default_value = "0.1",
        value_name = "RATIO"
    )]
    pub highest_user_wasted_percent: String,
    pub image: String,
}

#[derive(Args, Debug)]
pub struct DfArgs {
    /// Show detailed information on space usage
    #[arg(short = 'v', long)]
    pub verbose: bool,
    /// Pretty-print using a Go template
    #[arg(long)]
    pub format: Option<String>,
}

#[derive(Args, Debug)]
pub struct BuildArgs {
    /// Name and optionally a tag in the 'name:tag' format
    #[arg(short = 't', long = "tag")]
    pub tags: Vec<String>,
    /// Name of the Dockerfile (default: 'PATH/Dockerfile'); - reads it from standard input
    #[arg(short = 'f', long = "file")]
    pub file: Option<String>,
    /// Set build-time variables
    #[arg(long = "build-arg", value_name = "KEY[=VALUE]")]
    pub build_args: Vec<String>,
    /// Set the target build stage to build
    #[arg(long)]
    pub target: Option<String>,
    /// Do not use cache when building the image
    #[arg(long)]
    pub no_cache: bool,
    /// Always attempt to pull a newer version of the image
    #[arg(long)]
    pub pull: bool,
    /// Suppress the build output and print image ID on success
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Set the networking mode for the RUN instructions during build: default (a private
    /// network through pasta), host or none
    #[arg(long, default_value = "default")]
    pub network: String,
    /// Add a custom host-to-IP mapping (host:ip) for the RUN instructions
    #[arg(long = "add-host", value_name = "list")]
    pub add_host: Vec<String>,
    /// Size of /dev/shm for the RUN instructions
    #[arg(long = "shm-size", value_name = "bytes")]
    pub shm_size: Option<String>,
    /// Memory limit of each RUN instruction
    #[arg(short = 'm', long = "memory", value_name = "bytes")]
    pub memory: Option<String>,
    /// Swap limit equal to memory plus swap: -1 to enable unlimited swap
    #[arg(long = "memory-swap", value_name = "bytes", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long = "cpu-shares")]
    pub cpu_shares: Option<u64>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    /// Limit the CPU CFS (Completely Fair Scheduler) period
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<u64>,
    /// Limit the CPU CFS (Completely Fair Scheduler) quota
    #[arg(long = "cpu-quota")]
    pub cpu_quota: Option<u64>,
    /// Set metadata for an image
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    /// Secret file to expose to RUN --mount=type=secret (id=NAME,src=PATH)
    #[arg(long = "secret", value_name = "id=NAME,src=PATH")]
    pub secrets: Vec<String>,
    /// SSH agent socket to expose to RUN --mount=type=ssh (default|ID[=SOCKET])
    #[arg(long = "ssh", value_name = "default|ID[=SOCKET]")]
    pub ssh: Vec<String>,
    /// Import build cache (type=local,src=DIR or type=registry,ref=NAME)
    #[arg(long = "cache-from", value_name = "type=local,src=DIR")]
    pub cache_from: Vec<String>,
    /// Export build cache (type=local,dest=DIR or type=registry,ref=NAME; mode=min|max,
    /// compression=gzip|zstd|uncompressed, compression-level=N, force-compression=BOOL,
    /// oci-mediatypes=BOOL)
    #[arg(long = "cache-to", value_name = "type=local,dest=DIR")]
    pub cache_to: Option<String>,
    /// Write the image ID to the file
    #[arg(long)]
    pub iidfile: Option<std::path::PathBuf>,
    /// Set platform if server is multi-platform capable
    #[arg(long)]
    pub platform: Option<String>,
    /// Set type of progress output (auto, plain, tty, quiet, rawjson); without it the
    /// classic builder's output
    #[arg(long)]
    pub progress: Option<String>,
    /// Remove intermediate containers after a successful build (always)
    #[arg(long, default_value_t = true, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub rm: bool,
    /// Always remove intermediate containers
    #[arg(long)]
    pub force_rm: bool,
    /// Output destination (format: "type=local,dest=path"; type=image|local|tar|oci|docker;
    /// a path alone is type=local, - is type=tar to standard output)
    #[arg(short = 'o', long = "output", value_name = "stringArray")]
    pub outputs: Vec<String>,
    /// Squash newly built layers into a single new layer
    #[arg(long)]
    pub squash: bool,
    /// Squash all of the image's layers, the base image's too, into a single new layer
    #[arg(long)]
    pub squash_all: bool,
    /// Check the build (BuildKit's build checks and strata's order advisor) without building
    #[arg(long)]
    pub check: bool,
    /// With --check: print the Dockerfile reordered as the order advisor suggests
    #[arg(long, requires = "check")]
    pub fix_order: bool,
    /// Allow extra privileged entitlement (security.insecure, network.host)
    #[arg(long = "allow", value_name = "stringSlice")]
    pub allow: Vec<String>,
    /// Under the first step that misses the cache, list every input that changed since its
    /// last build (each file with its old and new hash and mode)
    #[arg(long)]
    pub explain: bool,
    /// The build context: a directory, or - for a tar archive on standard input
    pub context: String,
}

// ---- containers ----

#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum ContainerCommand {
    Run(RunArgs),
    Create(RunArgs),
    Start(StartArgs),
    #[command(visible_alias = "list", alias = "ps")]
    Ls(PsArgs),
    #[command(visible_alias = "remove")]
    Rm(RmArgs),
    Stop(StopArgs),
    Kill(KillArgs),
    Wait(ContainersArgs),
    Logs(LogsArgs),
    Diff(ContainerArg),
    Commit(CommitArgs),
    Export(ExportArgs),
    Inspect(InspectArgs),
    Exec(ExecArgs),
    Rename(RenameArgs),
    Restart(StopArgs),
    Top(TopArgs),
    Port(PortArgs),
    Pause(ContainersArgs),
    Unpause(ContainersArgs),
    Update(UpdateArgs),
    Stats(StatsArgs),
    Cp(CpArgs),
    Attach(AttachArgs),
    /// Remove all stopped containers
    Prune(PruneArgs),
}

#[derive(Args, Debug)]
pub struct UpdateArgs {
    /// Memory limit
    #[arg(short = 'm', long)]
    pub memory: Option<String>,
    /// Swap limit equal to memory plus swap: '-1' to enable unlimited swap
    #[arg(long, allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Number of CPUs
    #[arg(long)]
    pub cpus: Option<String>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long)]
    pub cpu_shares: Option<i64>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long)]
    pub cpuset_cpus: Option<String>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long, allow_negative_numbers = true)]
    pub pids_limit: Option<i64>,
    /// Restart policy to apply when a container exits
    #[arg(long)]
    pub restart: Option<String>,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct StatsArgs {
    /// Show all containers (default shows just running)
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Disable streaming stats and only pull the first result
    #[arg(long)]
    pub no_stream: bool,
    /// Do not truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Pretty-print images using a Go template
    #[arg(long)]
    pub format: Option<String>,
    #[arg(value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct CpArgs {
    /// Archive mode (copy all uid/gid information)
    #[arg(short = 'a', long)]
    pub archive: bool,
    /// Always follow symbol link in SRC_PATH
    #[arg(short = 'L', long)]
    pub follow_link: bool,
    /// CONTAINER:SRC_PATH, SRC_PATH or - (a tar archive on standard input)
    #[arg(value_name = "SRC", allow_hyphen_values = true)]
    pub source: String,
    /// DEST_PATH, CONTAINER:DEST_PATH or - (a tar archive on standard output)
    #[arg(value_name = "DEST", allow_hyphen_values = true)]
    pub destination: String,
}

#[derive(Args, Debug)]
pub struct AttachArgs {
    /// Override the key sequence for detaching a container
    #[arg(long)]
    pub detach_keys: Option<String>,
    /// Do not attach STDIN
    #[arg(long)]
    pub no_stdin: bool,
    /// Proxy all received signals to the process
    #[arg(long, default_value_t = true, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub sig_proxy: bool,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

#[derive(Args, Debug)]
pub struct PortArgs {
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    /// PRIVATE_PORT[/PROTO]
    #[arg(value_name = "PRIVATE_PORT[/PROTO]")]
    pub port: Option<String>,
}

#[derive(Args, Debug)]
pub struct TopArgs {
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    /// Options for ps (default -ef)
    #[arg(
        value_name = "ps OPTIONS",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub ps_args: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ExecArgs {
    /// Detached mode: run command in the background
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// The background half of `exec -d`: the descriptor to report the start on.
    #[arg(long, hide = true)]
    pub detached_child: Option<i32>,
    /// Keep STDIN open even if not attached
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Set environment variables
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long)]
    pub workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Give extended privileges to the command
    #[arg(long)]
    pub privileged: bool,
    pub container: String,
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        required = true,
        value_name = "COMMAND"
    )]
    pub command: Vec<String>,
}

#[derive(Args, Debug)]
pub struct RenameArgs {
    pub container: String,
    pub new_name: String,
}

#[derive(Args, Debug)]
#[command(disable_help_flag = true)]
pub struct RunArgs {
    /// Print help
    #[arg(long, action = ArgAction::Help)]
    pub help: Option<bool>,
    /// Run container in background and print container ID
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Automatically remove the container when it exits
    #[arg(long)]
    pub rm: bool,
    /// Assign a name to the container
    #[arg(long)]
    pub name: Option<String>,
    /// Set meta data on a container
    #[arg(short = 'l', long = "label", value_name = "list")]
    pub labels: Vec<String>,
    /// Pull image before running ("always"|"missing"|"never")
    #[arg(long, default_value = "missing", value_parser = ["always", "missing", "never"])]
    pub pull: String,
    /// Suppress the pull output
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Set platform if server is multi-platform capable
    #[arg(long)]
    pub platform: Option<String>,
    /// Set environment variables
    #[arg(short = 'e', long = "env", value_name = "K[=V]")]
    pub env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long = "env-file")]
    pub env_file: Vec<PathBuf>,
    /// Working directory inside the container
    #[arg(short = 'w', long)]
    pub workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Container host name
    #[arg(short = 'h', long)]
    pub hostname: Option<String>,
    /// Connect a container to a network: bridge (the default: a private network through
    /// pasta), host, none, or a network made with `network create`
    #[arg(long = "network", alias = "net", default_value = "default")]
    pub network: String,
    /// Add network-scoped alias for the container
    #[arg(long = "network-alias", alias = "net-alias", value_name = "list")]
    pub network_aliases: Vec<String>,
    /// IPv4 address (e.g., 172.30.100.104)
    #[arg(long = "ip", value_name = "string")]
    pub ip: Option<String>,
    /// Publish a container's port(s) to the host ([IP:][HOST_PORT:]CONTAINER_PORT[/PROTO])
    #[arg(short = 'p', long = "publish", value_name = "list")]
    pub publish: Vec<String>,
    /// Publish all exposed ports to random ports
    #[arg(short = 'P', long = "publish-all")]
    pub publish_all: bool,
    /// Expose a port or a range of ports
    #[arg(long = "expose", value_name = "list")]
    pub expose: Vec<String>,
    /// Add a custom host-to-IP mapping (host:ip)
    #[arg(long = "add-host", value_name = "list")]
    pub add_host: Vec<String>,
    /// Size of /dev/shm
    #[arg(long = "shm-size", value_name = "bytes")]
    pub shm_size: Option<String>,
    /// Ulimit options (NAME=SOFT[:HARD])
    #[arg(long = "ulimit", value_name = "ulimit")]
    pub ulimits: Vec<String>,
    /// Set custom DNS servers
    #[arg(long = "dns", value_name = "list")]
    pub dns: Vec<String>,
    /// Set custom DNS search domains
    #[arg(long = "dns-search", value_name = "list")]
    pub dns_search: Vec<String>,
    /// Set DNS options
    #[arg(long = "dns-option", alias = "dns-opt", value_name = "list")]
    pub dns_options: Vec<String>,
    /// Bind mount a volume (SRC:DST[:MODE], NAME:DST[:MODE] or DST for an anonymous volume)
    #[arg(short = 'v', long = "volume")]
    pub volumes: Vec<String>,
    /// Mount volumes from the specified container(s) (CONTAINER[:ro|rw])
    #[arg(long = "volumes-from", value_name = "list")]
    pub volumes_from: Vec<String>,
    /// Mount the container's root filesystem as read only
    #[arg(long)]
    pub read_only: bool,
    /// Mount a tmpfs directory
    #[arg(long)]
    pub tmpfs: Vec<String>,
    /// Attach a filesystem mount to the container (type=bind|volume|tmpfs,…)
    #[arg(long = "mount", value_name = "mount")]
    pub mounts: Vec<String>,
    /// Keep STDIN open even if not attached
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Run an init inside the container that forwards signals and reaps processes
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub init: Option<bool>,
    /// Memory limit
    #[arg(short = 'm', long)]
    pub memory: Option<String>,
    /// Number of CPUs
    #[arg(long)]
    pub cpus: Option<String>,
    /// Swap limit equal to memory plus swap: '-1' to enable unlimited swap
    #[arg(long, allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// CPU shares (relative weight). Docker's short `-c` is left out: the parser here would
    /// take a `-c` after the image (`sh -c ...`) as this flag
    #[arg(long)]
    pub cpu_shares: Option<i64>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long)]
    pub cpuset_cpus: Option<String>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long, allow_negative_numbers = true)]
    pub pids_limit: Option<i64>,
    /// Restart policy to apply when a container exits (recorded; strata has no daemon to
    /// restart it)
    #[arg(long, default_value = "no")]
    pub restart: String,
    /// Add Linux capabilities
    #[arg(long)]
    pub cap_add: Vec<String>,
    /// Drop Linux capabilities
    #[arg(long)]
    pub cap_drop: Vec<String>,
    /// Give extended privileges to this container
    #[arg(long)]
    pub privileged: bool,
    /// Security Options (seccomp=unconfined|PROFILE.json, no-new-privileges[=BOOL])
    #[arg(long = "security-opt")]
    pub security_opt: Vec<String>,
    /// Add a host device to the container (HOST[:CONTAINER][:rwm])
    #[arg(long = "device")]
    pub devices: Vec<String>,
    /// Add a rule to the cgroup allowed devices list ('c|b|a MAJOR:MINOR rwm')
    #[arg(long = "device-cgroup-rule")]
    pub device_cgroup_rules: Vec<String>,
    /// Signal to stop a container
    #[arg(long)]
    pub stop_signal: Option<String>,
    /// Timeout (in seconds) to stop a container
    #[arg(long)]
    pub stop_timeout: Option<u64>,
    pub image: String,
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "COMMAND"
    )]
    pub command: Vec<String>,
}

#[derive(Args, Debug)]
pub struct StartArgs {
    /// Attach STDOUT/STDERR and forward signals
    #[arg(short = 'a', long)]
    pub attach: bool,
    /// Attach container's STDIN
    #[arg(short = 'i', long)]
    pub interactive: bool,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct PsArgs {
    /// Show all containers (default shows just running)
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Only display container IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Display total file sizes
    #[arg(short = 's', long)]
    pub size: bool,
    /// Show n last created containers (includes all states)
    #[arg(short = 'n', long = "last", default_value_t = -1, allow_negative_numbers = true)]
    pub last: i64,
    /// Show the latest created container (includes all states)
    #[arg(short = 'l', long)]
    pub latest: bool,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Pretty-print containers using a Go template
    #[arg(long)]
    pub format: Option<String>,
    /// Filter output based on conditions provided (id, name, status, exited, ancestor)
    #[arg(short = 'f', long = "filter")]
    pub filters: Vec<String>,
}

#[derive(Args, Debug)]
pub struct RmArgs {
    /// Force the removal of a running container (uses SIGKILL)
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Remove anonymous volumes associated with the container
    #[arg(short = 'v', long)]
    pub volumes: bool,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct StopArgs {
    /// Seconds to wait for stop before killing it
    #[arg(short = 't', long = "time")]
    pub time: Option<u64>,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct KillArgs {
    /// Signal to send to the container
    #[arg(short = 's', long, default_value = "KILL")]
    pub signal: String,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ContainersArgs {
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ContainerArg {
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

#[derive(Args, Debug)]
pub struct LogsArgs {
    /// Follow log output
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Show extra details provided to logs
    #[arg(long)]
    pub details: bool,
    /// Number of lines to show from the end of the logs (or "all")
    #[arg(short = 'n', long, default_value = "all", allow_hyphen_values = true)]
    pub tail: String,
    /// Show timestamps
    #[arg(short = 't', long)]
    pub timestamps: bool,
    /// Show logs since timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m for 42 minutes)
    #[arg(long)]
    pub since: Option<String>,
    /// Show logs before a timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m for 42 minutes)
    #[arg(long)]
    pub until: Option<String>,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

#[derive(Args, Debug)]
pub struct CommitArgs {
    /// Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")
    #[arg(short = 'a', long)]
    pub author: Option<String>,
    /// Apply Dockerfile instruction to the created image
    #[arg(short = 'c', long = "change")]
    pub changes: Vec<String>,
    /// Commit message
    #[arg(short = 'm', long)]
    pub message: Option<String>,
    /// Pause container during commit (accepted; strata does not pause)
    #[arg(short = 'p', long, default_value_t = true, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub pause: bool,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub reference: Option<String>,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short = 'o', long)]
    pub output: Option<PathBuf>,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

// ---- registry ----

#[derive(Args, Debug)]
pub struct PullArgs {
    /// Download all tagged images in the repository
    #[arg(short = 'a', long = "all-tags")]
    pub all_tags: bool,
    /// Set platform if server is multi-platform capable
    #[arg(long, env = "DOCKER_DEFAULT_PLATFORM")]
    pub platform: Option<String>,
    /// Suppress verbose output
    #[arg(short = 'q', long)]
    pub quiet: bool,
    pub name: String,
}

#[derive(Args, Debug)]
pub struct PushArgs {
    /// Suppress verbose output
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Push all tagged images in the repository
    #[arg(short = 'a', long = "all-tags")]
    pub all_tags: bool,
    /// Compression of the layers that have no blob yet (gzip, zstd, uncompressed)
    #[arg(long, value_name = "TYPE", default_value = "gzip")]
    pub compression: String,
    /// Compression level (gzip 0-9, zstd 1-22)
    #[arg(long = "compression-level", value_name = "N")]
    pub compression_level: Option<String>,
    /// Compress again the layers known by blobs of another compression
    #[arg(long = "force-compression", default_value_t = false, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub force_compression: bool,
    /// Use OCI media types in the manifest (always with zstd)
    #[arg(long = "oci-mediatypes", default_value_t = false, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub oci_mediatypes: bool,
    pub name: String,
}

#[derive(Args, Debug)]
pub struct LoginArgs {
    /// Username
    #[arg(short = 'u', long)]
    pub username: Option<String>,
    /// Password
    #[arg(short = 'p', long)]
    pub password: Option<String>,
    /// Take the password from stdin
    #[arg(long)]
    pub password_stdin: bool,
    pub server: Option<String>,
}

#[derive(Args, Debug)]
pub struct LogoutArgs {
    pub server: Option<String>,
}

#[derive(Args, Debug)]
pub struct VolumeArgs {
    #[command(subcommand)]
    pub command: Option<VolumeCommand>,
}

#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum VolumeCommand {
    /// Create a volume
    Create(VolumeCreateArgs),
    /// Display detailed information on one or more volumes
    Inspect(VolumeInspectArgs),
    /// List volumes
    #[command(visible_alias = "list")]
    Ls(VolumeLsArgs),
    /// Remove all unused local volumes
    Prune(VolumePruneArgs),
    /// Remove one or more volumes
    #[command(visible_alias = "remove")]
    Rm(VolumeRmArgs),
}

#[derive(Args, Debug)]
pub struct VolumeCreateArgs {
    /// Specify volume driver name
    #[arg(short = 'd', long, default_value = "local")]
    pub driver: String,
    /// Set metadata for a volume
    #[arg(long = "label", value_name = "list")]
    pub labels: Vec<String>,
    /// Set driver specific options
    #[arg(short = 'o', long = "opt", value_name = "map")]
    pub opts: Vec<String>,
    /// Specify volume name
    #[arg(long = "name")]
    pub name_flag: Option<String>,
    /// VOLUME
    pub name: Option<String>,
}

#[derive(Args, Debug)]
pub struct VolumeInspectArgs {
    /// Format the output using the given Go template
    #[arg(short = 'f', long)]
    pub format: Option<String>,
    #[arg(required = true, value_name = "VOLUME")]
    pub volumes: Vec<String>,
}

#[derive(Args, Debug)]
pub struct VolumeLsArgs {
    /// Provide filter values (e.g. 'dangling=true')
    #[arg(short = 'f', long = "filter")]
    pub filters: Vec<String>,
    /// Pretty-print volumes using a Go template
    #[arg(long)]
    pub format: Option<String>,
    /// Only display volume names
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct VolumePruneArgs {
    /// Provide filter values (e.g. 'label=<label>')
    #[arg(long = "filter")]
    pub filters: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
}

#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum NetworkCommand {
    /// Create a network
    Create(NetworkCreateArgs),
    /// List networks
    #[command(visible_alias = "list")]
    Ls(NetworkLsArgs),
    /// Display detailed information on one or more networks
    Inspect(NetworkInspectArgs),
    /// Remove one or more networks
    #[command(visible_alias = "remove")]
    Rm(NetworkRmArgs),
    /// Connect a container to a network
    Connect(NetworkConnectArgs),
    /// Disconnect a container from a network
    Disconnect(NetworkDisconnectArgs),
    /// Remove all unused networks
    Prune(NetworkPruneArgs),
}

#[derive(Args, Debug)]
pub struct NetworkCreateArgs {
    /// Driver to manage the Network
    #[arg(short = 'd', long, default_value = "bridge")]
    pub driver: String,
    /// Subnet in CIDR format that represents a network segment
    #[arg(long)]
    pub subnet: Vec<String>,
    /// IPv4 or IPv6 Gateway for the master subnet
    #[arg(long)]
    pub gateway: Vec<String>,
    /// Set metadata on a network
    #[arg(long = "label")]
    pub labels: Vec<String>,
    /// Set driver specific options
    #[arg(short = 'o', long = "opt")]
    pub options: Vec<String>,
    /// Restrict external access to the network
    #[arg(long)]
    pub internal: bool,
    /// Enable manual container attachment
    #[arg(long)]
    pub attachable: bool,
    pub name: String,
}

#[derive(Args, Debug)]
pub struct NetworkLsArgs {
    /// Provide filter values (e.g. 'driver=bridge')
    #[arg(short = 'f', long = "filter")]
    pub filters: Vec<String>,
    /// Pretty-print networks using a Go template
    #[arg(long)]
    pub format: Option<String>,
    /// Do not truncate the output
    #[arg(long)]
    pub no_trunc: bool,
    /// Only display network IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct NetworkInspectArgs {
    /// Format the output using the given Go template
    #[arg(short = 'f', long)]
    pub format: Option<String>,
    /// Verbose output for diagnostics
    #[arg(short = 'v', long)]
    pub verbose: bool,
    #[arg(required = true, value_name = "NETWORK")]
    pub networks: Vec<String>,
}

#[derive(Args, Debug)]
pub struct NetworkRmArgs {
    #[arg(required = true, value_name = "NETWORK")]
    pub networks: Vec<String>,
}

#[derive(Args, Debug)]
pub struct NetworkConnectArgs {
    /// Add network-scoped alias for the container
    #[arg(long = "alias")]
    pub aliases: Vec<String>,
    /// IPv4 address (e.g., 172.30.100.104)
    #[arg(long)]
    pub ip: Option<String>,
    pub network: String,
    pub container: String,
}

#[derive(Args, Debug)]
pub struct NetworkDisconnectArgs {
    /// Force the container to disconnect from a network
    #[arg(short = 'f', long)]
    pub force: bool,
    pub network: String,
    pub container: String,
}

#[derive(Args, Debug)]
pub struct NetworkPruneArgs {
    /// Provide filter values (e.g. 'until=<timestamp>')
    #[arg(long = "filter")]
    pub filters: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct VolumeRmArgs {
    /// Force the removal of one or more volumes
    #[arg(short = 'f', long)]
    pub force: bool,
    #[arg(required = true, value_name = "VOLUME")]
    pub volumes: Vec<String>,
}
