//! The bridge from the Dockerfile frontend (`dockerfile` crate: parsing, checking, BuildKit's
//! word expansion) to the engine's [`Plan`].

use dockerfile::{
    Base, Command, Healthcheck as DfHealth, Instruction, MountType, RunScript, ShellLex,
};

use crate::engine::Frontend;
use crate::error::HookError;
use crate::steps::{
    CommandForm, Healthcheck, Op, Plan, RunFlags, RunMount, RunMountKind, RunNetwork, Stage, Step,
};

/// Why the Dockerfile frontend refused a word, an instruction or an ONBUILD trigger.
#[derive(Debug, thiserror::Error)]
pub enum FrontendError {
    /// Word expansion or an instruction's arguments, in the `dockerfile` crate's words.
    #[error(transparent)]
    Dockerfile(#[from] dockerfile::Error),
    /// An ONBUILD trigger of the base image that does not parse. The message already names
    /// the cause, so it is kept as a field and not returned again by `source()`.
    #[error("invalid ONBUILD trigger {text:?}: {cause}")]
    Trigger {
        text: String,
        cause: dockerfile::Error,
    },
    #[error("empty ONBUILD trigger")]
    EmptyTrigger,
}

/// Word expansion and ONBUILD parsing with the Dockerfile's escape character.
pub struct DockerfileFrontend {
    lex: ShellLex,
}

impl DockerfileFrontend {
    pub fn new(escape: char) -> Self {
        DockerfileFrontend {
            lex: ShellLex::new(escape),
        }
    }
}

impl Frontend for DockerfileFrontend {
    fn word(&self, word: &str, env: &[(String, String)]) -> Result<String, HookError> {
        let w = self.lex.process_word(word, &env.to_vec());
        Ok(w.map_err(FrontendError::from)?)
    }
    fn words(&self, text: &str, env: &[(String, String)]) -> Result<Vec<String>, HookError> {
        let w = self.lex.process_words(text, &env.to_vec());
        Ok(w.map_err(FrontendError::from)?)
    }
    fn parse_trigger(&self, text: &str) -> Result<Step, HookError> {
        Ok(trigger_step(text)?)
    }
}

/// An ONBUILD trigger (`RUN …`), parsed as the one instruction of a stage.
fn trigger_step(text: &str) -> Result<Step, FrontendError> {
    let df = dockerfile::parse_and_lower(&format!("FROM scratch\n{text}\n"), &Default::default())
        .map_err(|cause| FrontendError::Trigger {
        text: text.to_string(),
        cause,
    })?;
    let ins = df
        .stages
        .first()
        .and_then(|s| s.instructions.first())
        .ok_or(FrontendError::EmptyTrigger)?;
    step_of(ins)
}

fn form(args: &[String], prepend_shell: bool) -> CommandForm {
    if prepend_shell {
        CommandForm::Shell(args.join(" "))
    } else {
        CommandForm::Exec(args.to_vec())
    }
}

fn step_of(ins: &Instruction) -> Result<Step, FrontendError> {
    let pairs = |kv: &[dockerfile::KeyValue]| -> Vec<(String, String)> {
        kv.iter()
            .map(|k| (k.key.clone(), k.value.clone()))
            .collect()
    };
    let op = match &ins.command {
        Command::Run(r) => run_op(ins, r)?,
        Command::Copy(c) => Op::Copy {
            add: false,
            inline: heredocs(&c.contents),
            srcs: c.sources.clone(),
            dest: c.dest.clone(),
            from: c.from.clone(),
            chown: c.chown.clone(),
            chmod: c.chmod.clone(),
            link: c.link,
        },
        Command::Add(a) => Op::Copy {
            add: true,
            inline: heredocs(&a.contents),
            srcs: a.sources.clone(),
            dest: a.dest.clone(),
            from: None,
            chown: a.chown.clone(),
            chmod: a.chmod.clone(),
            link: a.link,
        },
        Command::Cmd(c) => Op::Cmd(form(&c.args, c.prepend_shell)),
        Command::Entrypoint(c) => Op::Entrypoint(form(&c.args, c.prepend_shell)),
        Command::Env(kv) => Op::Env(pairs(kv)),
        Command::Label(kv) => Op::Label {
            pairs: pairs(kv),
            expand: true,
        },
        Command::Arg(decls) => Op::Arg(
            decls
                .iter()
                .map(|d| (d.name.clone(), d.default.clone()))
                .collect(),
        ),
        Command::Expose(p) => Op::Expose(p.clone()),
        Command::Volume(v) => Op::Volume(v.clone()),
        Command::User(u) => Op::User(u.clone()),
        Command::Workdir(w) => Op::Workdir(w.clone()),
        Command::StopSignal(s) => Op::StopSignal(s.clone()),
        Command::Maintainer(m) => Op::Maintainer(m.clone()),
        Command::Onbuild(t) => Op::OnBuild(t.clone()),
        Command::Shell(s) => Op::Shell(s.clone()),
        Command::Healthcheck(h) => Op::Healthcheck(healthcheck(h)),
    };
    Ok(Step {
        text: ins.original.trim().to_string(),
        line: ins.line,
        op,
    })
}

fn heredocs(contents: &[dockerfile::SourceContent]) -> Vec<(String, String)> {
    contents
        .iter()
        .map(|h| (h.path.clone(), h.data.clone()))
        .collect()
}

/// RUN: the command and its `--mount`s.
fn run_op(ins: &Instruction, r: &dockerfile::Run) -> Result<Op, FrontendError> {
    // Typed mounts come from expanding the instruction (BuildKit parses mounts after
    // expansion); variables in mount specs see an empty scope here.
    let typed = if r.mount_specs.is_empty() {
        Vec::new()
    } else {
        match ins
            .expand(&ShellLex::new('\\'), &Vec::<(String, String)>::new())?
            .command
        {
            Command::Run(x) => x.mounts,
            _ => Vec::new(),
        }
    };
    let mut mounts = Vec::new();
    for (m, spec) in typed.iter().zip(r.mount_specs.iter()) {
        let ssh_index = mounts
            .iter()
            .filter(|x: &&RunMount| matches!(x.kind, RunMountKind::Ssh { .. }))
            .count();
        mounts.push(run_mount(m, spec, ssh_index));
    }
    let cmd = match r.script() {
        RunScript::Args {
            args,
            prepend_shell,
        } => form(&args, prepend_shell),
        RunScript::File { data, .. } => CommandForm::Shell(data),
    };
    let flags = RunFlags {
        network: match r.network {
            None | Some(dockerfile::Network::Default) => RunNetwork::Default,
            Some(dockerfile::Network::None) => RunNetwork::None,
            Some(dockerfile::Network::Host) => RunNetwork::Host,
        },
        insecure: r.security == Some(dockerfile::Security::Insecure),
    };
    Ok(Op::Run(cmd, mounts, flags))
}

/// One `--mount` with BuildKit's defaults; `ssh_index` counts the ssh mounts before it.
fn run_mount(m: &dockerfile::Mount, spec: &str, ssh_index: usize) -> RunMount {
    let target = m.target.clone().unwrap_or_default();
    let kind = match m.kind {
        MountType::Bind => RunMountKind::Bind {
            from: m.from.clone(),
            source: m.source.clone().unwrap_or_else(|| "/".into()),
        },
        MountType::Cache => RunMountKind::Cache {
            id: m.id.clone().unwrap_or_else(|| target.clone()),
            mode: m.mode.unwrap_or(0o755),
            uid: m.uid.unwrap_or(0),
            gid: m.gid.unwrap_or(0),
        },
        MountType::Tmpfs => RunMountKind::Tmpfs { size: m.size },
        MountType::Secret => RunMountKind::Secret {
            id: m
                .id
                .clone()
                .unwrap_or_else(|| target.rsplit('/').next().unwrap_or_default().to_string()),
            required: m.required,
            env: m.env.clone(),
        },
        MountType::Ssh => RunMountKind::Ssh {
            id: m.id.clone().unwrap_or_else(|| "default".into()),
            required: m.required,
        },
    };
    let target = match (&kind, target.is_empty()) {
        (RunMountKind::Secret { id, env, .. }, true) if env.is_none() => {
            format!("/run/secrets/{id}")
        }
        // BuildKit's default: one numbered socket per ssh mount.
        (RunMountKind::Ssh { .. }, true) => format!("/run/buildkit/ssh_agent.{ssh_index}"),
        _ => target,
    };
    RunMount {
        kind,
        target,
        readonly: m.readonly,
        spec: format!("--mount={spec}"),
    }
}

fn healthcheck(h: &DfHealth) -> Healthcheck {
    match h {
        DfHealth::None => Healthcheck::default(),
        DfHealth::Check {
            test,
            interval,
            timeout,
            start_period,
            start_interval,
            retries,
        } => Healthcheck {
            test: Some(match test.first().map(String::as_str) {
                Some("CMD-SHELL") => CommandForm::Shell(test[1..].join(" ")),
                _ => CommandForm::Exec(test[1..].to_vec()),
            }),
            interval_ns: interval.as_nanos() as i64,
            timeout_ns: timeout.as_nanos() as i64,
            start_period_ns: start_period.as_nanos() as i64,
            start_interval_ns: start_interval.as_nanos() as i64,
            retries: *retries as i64,
        },
    }
}

/// The engine's plan for a lowered Dockerfile.
pub fn plan(df: &dockerfile::Dockerfile) -> Result<Plan, FrontendError> {
    let mut plan = Plan {
        warnings: dockerfile::warnings_text(&df.warnings),
        ..Plan::default()
    };
    for m in &df.meta_args {
        if let Command::Arg(decls) = &m.command {
            plan.meta_args.push((
                m.original.trim().to_string(),
                decls
                    .iter()
                    .map(|d| (d.name.clone(), d.default.clone()))
                    .collect(),
            ));
        }
    }
    for s in &df.stages {
        let base = match &s.base {
            Base::Scratch => "scratch".to_string(),
            Base::Stage(i) => i.to_string(),
            Base::Image(r) => r.clone(),
        };
        let mut steps = Vec::new();
        for ins in &s.instructions {
            steps.push(step_of(ins)?);
        }
        plan.stages.push(Stage {
            from_text: s.original.trim().to_string(),
            base,
            name: s.name.clone(),
            steps,
            line: s.line,
        });
    }
    Ok(plan)
}
