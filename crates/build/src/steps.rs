//! The build's own description of a Dockerfile: stages of steps whose words are still
//! unexpanded, as the frontend hands them over. The engine expands them step by step, because
//! what `$VAR` means depends on the ENV and ARG steps before it.

/// A command in shell form (run through the current SHELL) or exec form (as written).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandForm {
    Shell(String),
    Exec(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Healthcheck {
    /// `None` for `HEALTHCHECK NONE`.
    pub test: Option<CommandForm>,
    pub interval_ns: i64,
    pub timeout_ns: i64,
    pub start_period_ns: i64,
    pub start_interval_ns: i64,
    pub retries: i64,
}

/// What a `RUN --mount` mounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunMountKind {
    /// A directory or file from the context, or from a stage or image (`from=`).
    Bind {
        from: Option<String>,
        source: String,
    },
    /// A persistent directory kept between builds, keyed by `id` (the target by default).
    Cache {
        id: String,
        mode: u32,
        uid: u32,
        gid: u32,
    },
    Tmpfs {
        size: Option<i64>,
    },
    /// A secret given with `build --secret id=…,src=…`.
    Secret {
        id: String,
        required: bool,
        env: Option<String>,
    },
    /// An SSH agent socket given with `build --ssh ID[=SOCKET]`; `SSH_AUTH_SOCK` points at
    /// the first one.
    Ssh {
        id: String,
        required: bool,
    },
}

/// One `RUN --mount=…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunMount {
    pub kind: RunMountKind,
    /// Absolute path in the container (relative paths are joined to WORKDIR).
    pub target: String,
    pub readonly: bool,
    /// The flag as written, part of the step's cache key and history.
    pub spec: String,
}

/// `RUN --network`: `default` is the build's own (`build --network`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RunNetwork {
    #[default]
    Default,
    None,
    Host,
}

/// `RUN --network` and `RUN --security`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RunFlags {
    pub network: RunNetwork,
    /// `--security=insecure`: a privileged process (needs `build --allow security.insecure`).
    pub insecure: bool,
}

impl RunFlags {
    /// The flags as they go into the step's cache key, before the mounts (none for the
    /// defaults, so a RUN without them keeps its key).
    pub fn key_words(&self) -> Vec<String> {
        let mut out = Vec::new();
        match self.network {
            RunNetwork::Default => {}
            RunNetwork::None => out.push("--network=none".to_string()),
            RunNetwork::Host => out.push("--network=host".to_string()),
        }
        if self.insecure {
            out.push("--security=insecure".to_string());
        }
        out
    }
}

impl Op {
    /// Whether the step changes the root filesystem (RUN, COPY, ADD, WORKDIR), rather than
    /// only the config: what BuildKit's display shows.
    pub fn does_work(&self) -> bool {
        matches!(self, Op::Run(..) | Op::Copy { .. } | Op::Workdir(_))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Run(CommandForm, Vec<RunMount>, RunFlags),
    Copy {
        /// ADD instead of COPY.
        add: bool,
        /// Heredoc sources (`COPY <<EOF /dst`): file name and content, already expanded
        /// where Docker expands them.
        inline: Vec<(String, String)>,
        srcs: Vec<String>,
        dest: String,
        from: Option<String>,
        chown: Option<String>,
        chmod: Option<String>,
        /// `--link`: the layer is made apart from the layers under it.
        link: bool,
    },
    Workdir(String),
    Env(Vec<(String, String)>),
    /// `expand` is false for `--label` (Docker's `NewLabelCommand(k, v, true)`).
    Label {
        pairs: Vec<(String, String)>,
        expand: bool,
    },
    Arg(Vec<(String, Option<String>)>),
    Expose(Vec<String>),
    Volume(Vec<String>),
    User(String),
    Cmd(CommandForm),
    Entrypoint(CommandForm),
    Shell(Vec<String>),
    StopSignal(String),
    Healthcheck(Healthcheck),
    OnBuild(String),
    Maintainer(String),
}

/// One instruction, with the text `Step N/M :` prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub text: String,
    pub line: usize,
    pub op: Op,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// `FROM` as written (printed) and the image word, unexpanded.
    pub from_text: String,
    pub base: String,
    pub name: Option<String>,
    pub steps: Vec<Step>,
    /// The 1-based line of `FROM` (0 when unknown).
    pub line: usize,
}

impl Stage {
    /// Whether the stage is named `name` (`FROM … AS name`; names ignore case).
    pub fn is_named(&self, name: &str) -> bool {
        self.name
            .as_deref()
            .is_some_and(|n| n.eq_ignore_ascii_case(name))
    }
}

/// One `ARG` declaration: a name and its default, unexpanded.
pub type ArgDecl = (String, Option<String>);

/// A whole Dockerfile: the ARGs before the first FROM, then the stages.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    /// Each pre-FROM ARG instruction: its text and its (name, default) declarations.
    pub meta_args: Vec<(String, Vec<ArgDecl>)>,
    pub stages: Vec<Stage>,
    /// The parser's warnings as Docker prints them before the first step (empty
    /// continuation lines), if any.
    pub warnings: Option<String>,
}

impl Plan {
    /// The number Docker prints after `Step N/`: pre-FROM ARGs, FROMs and instructions of
    /// the stages up to `last` (the target's, or the last one).
    pub fn step_count(&self, last: usize) -> usize {
        self.meta_args.len()
            + self
                .stages
                .iter()
                .take(last + 1)
                .map(|s| 1 + s.steps.len())
                .sum::<usize>()
    }

    /// The number `Step N/` prints for the FROM of stage `index` (its steps follow it).
    pub fn first_step(&self, index: usize) -> usize {
        let before: usize = self.stages[..index].iter().map(|s| 1 + s.steps.len()).sum();
        self.meta_args.len() + before + 1
    }
}
