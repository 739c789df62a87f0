//! Typed instructions: each AST node checked and turned into a [`Command`] with Docker's
//! argument rules, plus [`Instruction::expand`], which performs the word expansion Docker does
//! at build time for that instruction.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::flags::{Flags, Kind};
use crate::mount::{parse_mount, precheck_mount, Mount};
use crate::parser::{chomp_heredoc, parse_heredoc, Heredoc, Node};
use crate::shell::{Env, ShellLex};
use crate::util::{go_quote, parse_go_duration};

/// One instruction inside a stage, with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// 1-based first line.
    pub line: usize,
    /// 1-based last line.
    pub end_line: usize,
    /// The logical source line (continuations joined), e.g. `CMD ["a"]`, for history entries.
    pub original: String,
    /// What the instruction does.
    pub command: Command,
}

/// A `KEY=value` pair of `ENV` or `LABEL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    /// The name.
    pub key: String,
    /// The value (unexpanded until [`Instruction::expand`]).
    pub value: String,
}

/// One `ARG` declaration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgDecl {
    /// The name.
    pub name: String,
    /// The default after `=`, if any.
    pub default: Option<String>,
}

/// A command line of `RUN`, `CMD` or `ENTRYPOINT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandLine {
    /// Exec form: the JSON array. Shell form: one string, the whole command.
    pub args: Vec<String>,
    /// True for shell form: the stage's `SHELL` must be put in front of `args`.
    pub prepend_shell: bool,
}

/// A heredoc used as the content of a file for `COPY`/`ADD`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceContent {
    /// The file name (the heredoc delimiter).
    pub path: String,
    /// The content (tabs already chomped for `<<-`; expanded by [`Instruction::expand`] when
    /// `expand` is true).
    pub data: String,
    /// Whether variables in `data` are expanded.
    pub expand: bool,
}

/// `ADD`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Add {
    /// Source paths or URLs.
    pub sources: Vec<String>,
    /// Heredoc sources.
    pub contents: Vec<SourceContent>,
    /// Destination.
    pub dest: String,
    /// `--chown`.
    pub chown: Option<String>,
    /// `--chmod`.
    pub chmod: Option<String>,
    /// `--checksum`.
    pub checksum: Option<String>,
    /// `--keep-git-dir`.
    pub keep_git_dir: bool,
    /// `--link`.
    pub link: bool,
    /// `--exclude` patterns.
    pub excludes: Vec<String>,
    /// `--unpack` when given.
    pub unpack: Option<bool>,
}

/// `COPY`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copy {
    /// Source paths.
    pub sources: Vec<String>,
    /// Heredoc sources.
    pub contents: Vec<SourceContent>,
    /// Destination.
    pub dest: String,
    /// `--from`: a stage name, a stage index or an image (never expanded).
    pub from: Option<String>,
    /// `--chown`.
    pub chown: Option<String>,
    /// `--chmod`.
    pub chmod: Option<String>,
    /// `--link`.
    pub link: bool,
    /// `--parents`.
    pub parents: bool,
    /// `--exclude` patterns.
    pub excludes: Vec<String>,
}

/// `RUN --network`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    /// `default`.
    Default,
    /// `none`.
    None,
    /// `host`.
    Host,
}

/// `RUN --security`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// `sandbox` (the default).
    Sandbox,
    /// `insecure`.
    Insecure,
}

/// `RUN`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    /// The command.
    pub cmd: CommandLine,
    /// Heredocs attached to the line (bodies as written; see [`Run::script`]).
    pub heredocs: Vec<Heredoc>,
    /// The raw `--mount` values.
    pub mount_specs: Vec<String>,
    /// The typed mounts. BuildKit parses mounts after expanding their values, so this is
    /// filled by [`Instruction::expand`] and empty before.
    pub mounts: Vec<Mount>,
    /// `--network` when given.
    pub network: Option<Network>,
    /// `--security` when given.
    pub security: Option<Security>,
}

/// What a `RUN` actually executes once its heredocs are taken into account (BuildKit's rules).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunScript {
    /// Run these arguments (exec form, or shell form with the stage's shell in front).
    Args {
        /// The arguments.
        args: Vec<String>,
        /// Whether the shell goes in front.
        prepend_shell: bool,
    },
    /// A single heredoc starting with `#!`: write `data` as an executable file named `name`
    /// and run it directly.
    File {
        /// File name (the delimiter).
        name: String,
        /// Script content.
        data: String,
    },
}

impl Run {
    /// The command to execute, with heredocs folded in as BuildKit does: `RUN <<EOF` runs the
    /// body with the shell (or as a file if it starts with `#!`); other heredoc lines give the
    /// shell the whole text with the bodies appended.
    pub fn script(&self) -> RunScript {
        if self.heredocs.is_empty() || !self.cmd.prepend_shell || self.cmd.args.len() != 1 {
            return RunScript::Args {
                args: self.cmd.args.clone(),
                prepend_shell: self.cmd.prepend_shell,
            };
        }
        let first = &self.heredocs[0];
        if matches!(parse_heredoc(&self.cmd.args[0]), Ok(Some(_))) {
            let data = if first.chomp {
                chomp_heredoc(&first.content)
            } else {
                first.content.clone()
            };
            if first.content.starts_with("#!") {
                return RunScript::File {
                    name: first.name.clone(),
                    data,
                };
            }
            return RunScript::Args {
                args: vec![data],
                prepend_shell: true,
            };
        }
        let mut full = self.cmd.args[0].clone();
        for h in &self.heredocs {
            full.push('\n');
            full.push_str(&h.content);
            full.push_str(&h.name);
        }
        RunScript::Args {
            args: vec![full],
            prepend_shell: true,
        }
    }
}

/// `HEALTHCHECK`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Healthcheck {
    /// `HEALTHCHECK NONE`: disable any inherited check.
    None,
    /// `HEALTHCHECK [flags] CMD ...`.
    Check {
        /// `["CMD", args...]` (exec form) or `["CMD-SHELL", command]` (shell form).
        test: Vec<String>,
        /// `--interval` (zero: inherit).
        interval: Duration,
        /// `--timeout` (zero: inherit).
        timeout: Duration,
        /// `--start-period` (zero: inherit).
        start_period: Duration,
        /// `--start-interval` (zero: inherit).
        start_interval: Duration,
        /// `--retries` (zero: inherit).
        retries: u32,
    },
}

/// Every instruction except `FROM` (which starts a [`crate::Stage`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `ADD`.
    Add(Add),
    /// `ARG` (one or more declarations).
    Arg(Vec<ArgDecl>),
    /// `CMD`.
    Cmd(CommandLine),
    /// `COPY`.
    Copy(Copy),
    /// `ENTRYPOINT`; exec form `[]` gives no arguments.
    Entrypoint(CommandLine),
    /// `ENV`.
    Env(Vec<KeyValue>),
    /// `EXPOSE` port specs (sorted as Docker sorts them; expanded into words later).
    Expose(Vec<String>),
    /// `HEALTHCHECK`.
    Healthcheck(Healthcheck),
    /// `LABEL`.
    Label(Vec<KeyValue>),
    /// `MAINTAINER`.
    Maintainer(String),
    /// `ONBUILD`: the trigger's source text (stored in the image, run by child builds).
    Onbuild(String),
    /// `RUN`.
    Run(Run),
    /// `SHELL` (JSON form only).
    Shell(Vec<String>),
    /// `STOPSIGNAL`.
    StopSignal(String),
    /// `USER`.
    User(String),
    /// `VOLUME` paths.
    Volume(Vec<String>),
    /// `WORKDIR`.
    Workdir(String),
}

/// `FROM` as parsed, before stage resolution.
pub(crate) struct FromInstruction {
    pub base: String,
    pub name: Option<String>,
    pub platform: Option<String>,
}

/// What a node turns into.
pub(crate) enum Parsed {
    From(FromInstruction),
    Command(Command),
}

/// One AST node as the instruction parsers see it (BuildKit's `parseRequest`).
struct Request<'a> {
    node: &'a Node,
    /// The arguments, words of every kind flattened.
    args: Vec<String>,
    /// Whether the arguments were written as a JSON array.
    json: bool,
}

impl Request<'_> {
    /// The flags, checked against the ones the instruction accepts.
    fn flags(&self, spec: &[(&str, Kind)]) -> Result<Flags, String> {
        Flags::parse(&self.node.flags, spec)
    }

    /// Refuses any flag.
    fn no_flags(&self) -> Result<(), String> {
        self.flags(&[]).map(|_| ())
    }

    /// `cmd requires exactly one argument` unless there is exactly one; the argument.
    fn exactly_one(&self, cmd: &str) -> Result<String, String> {
        match self.args.as_slice() {
            [arg] => Ok(arg.clone()),
            _ => Err(exactly_one(cmd)),
        }
    }

    /// `cmd requires at least one argument` when there is none.
    fn at_least_one(&self, cmd: &str) -> Result<(), String> {
        if self.args.is_empty() {
            return Err(at_least_one(cmd));
        }
        Ok(())
    }

    /// The arguments as a command line (exec form as given, shell form joined).
    fn command_line(&self) -> CommandLine {
        CommandLine {
            args: handle_json_args(&self.args, self.json),
            prepend_shell: !self.json,
        }
    }
}

fn at_least_one(cmd: &str) -> String {
    format!("{cmd} requires at least one argument")
}

fn exactly_one(cmd: &str) -> String {
    format!("{cmd} requires exactly one argument")
}

fn handle_json_args(args: &[String], json: bool) -> Vec<String> {
    if args.is_empty() {
        return Vec::new();
    }
    if json {
        return args.to_vec();
    }
    vec![args.join(" ")]
}

/// Check one AST node and build its typed form (BuildKit's `ParseInstruction`): a dispatch on
/// the keyword to the instruction's own parser. Errors carry the node's line.
pub(crate) fn parse_node(node: &Node) -> Result<Parsed> {
    let req = Request {
        node,
        args: node.flat_args(),
        json: node.json,
    };
    let parsed = match node.value.to_lowercase().as_str() {
        "env" => parse_env(&req).map(Parsed::Command),
        "maintainer" => parse_maintainer(&req).map(Parsed::Command),
        "label" => parse_label(&req).map(Parsed::Command),
        "add" => parse_add(&req).map(Parsed::Command),
        "copy" => parse_copy(&req).map(Parsed::Command),
        "from" => parse_from(&req).map(Parsed::From),
        "onbuild" => parse_onbuild(&req).map(Parsed::Command),
        "workdir" => parse_workdir(&req).map(Parsed::Command),
        "run" => parse_run(&req).map(Parsed::Command),
        "cmd" => parse_cmd(&req).map(Parsed::Command),
        "entrypoint" => parse_entrypoint(&req).map(Parsed::Command),
        "healthcheck" => parse_healthcheck(&req).map(Parsed::Command),
        "expose" => parse_expose(&req).map(Parsed::Command),
        "user" => parse_user(&req).map(Parsed::Command),
        "volume" => parse_volume(&req).map(Parsed::Command),
        "stopsignal" => parse_stopsignal(&req).map(Parsed::Command),
        "arg" => parse_arg(&req).map(Parsed::Command),
        "shell" => parse_shell(&req).map(Parsed::Command),
        _ => Err(format!("unknown instruction: {}", node.value)),
    };
    parsed.map_err(|message| Error::parse(node.start_line, message))
}

/// [`parse_node`] as Docker 20.10's classic builder checks instructions (BuildKit v0.8's
/// parser): flag errors capitalised (`Unknown flag: x`), and HEALTHCHECK stricter (no
/// `--start-interval`, durations of at least 1ms even when zero, at least one retry).
pub(crate) fn parse_node_classic(node: &Node) -> Result<Parsed> {
    let parsed = parse_node(node).map_err(|e| match e {
        Error::Parse { line, message } => Error::Parse {
            line,
            message: classic_flag_message(message),
        },
        e => e,
    })?;
    if matches!(parsed, Parsed::Command(Command::Healthcheck(_))) {
        classic_healthcheck_flags(&node.flags).map_err(|m| Error::parse(node.start_line, m))?;
    }
    Ok(parsed)
}

/// BuildKit v0.8's words for a flag it refuses.
fn classic_flag_message(message: String) -> String {
    for (new, old) in [
        ("unknown flag: ", "Unknown flag: "),
        ("duplicate flag specified: ", "Duplicate flag specified: "),
        ("missing a value on flag: ", "Missing a value on flag: "),
        ("arg should start with -- : ", "Arg should start with -- : "),
    ] {
        if let Some(rest) = message.strip_prefix(new) {
            return format!("{old}{rest}");
        }
    }
    message
}

/// HEALTHCHECK flags as BuildKit v0.8 checks them.
fn classic_healthcheck_flags(flags: &[String]) -> Result<(), String> {
    for f in flags {
        let body = f.trim_start_matches("--");
        let (name, value) = body.split_once('=').unwrap_or((body, ""));
        match name {
            "start-interval" => return Err(format!("Unknown flag: {name}")),
            "interval" | "timeout" | "start-period"
                if parse_go_duration(value).is_ok_and(|ns| ns < 1_000_000) =>
            {
                return Err(format!(
                    "Interval {} cannot be less than 1ms",
                    go_quote(name)
                ));
            }
            "retries" if value.parse::<i64>().is_ok_and(|n| n < 1) => {
                return Err(format!(
                    "--retries must be at least 1 (not {})",
                    value.parse::<i64>().unwrap_or_default()
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

/// `ENV key=value ...` (no flags).
fn parse_env(req: &Request) -> Result<Command, String> {
    req.no_flags()?;
    Ok(Command::Env(parse_kvps(&req.args, "ENV")?))
}

/// `MAINTAINER name` (no flags).
fn parse_maintainer(req: &Request) -> Result<Command, String> {
    let name = req.exactly_one("MAINTAINER")?;
    req.no_flags()?;
    Ok(Command::Maintainer(name))
}

/// `LABEL key=value ...` (no flags).
fn parse_label(req: &Request) -> Result<Command, String> {
    req.no_flags()?;
    Ok(Command::Label(parse_kvps(&req.args, "LABEL")?))
}

/// `ADD [--exclude] [--chown] [--chmod] [--link] [--keep-git-dir] [--checksum] [--unpack]
/// src... dest`.
fn parse_add(req: &Request) -> Result<Command, String> {
    if req.args.len() < 2 {
        return Err("ADD requires at least two arguments, but only one was provided. Destination could not be determined".into());
    }
    let f = req.flags(&[
        ("exclude", Kind::Strs),
        ("chown", Kind::Str),
        ("chmod", Kind::Str),
        ("link", Kind::Bool),
        ("keep-git-dir", Kind::Bool),
        ("checksum", Kind::Str),
        ("unpack", Kind::Bool),
    ])?;
    let (sources, contents, dest) = sources_and_dest(req, "ADD")?;
    Ok(Command::Add(Add {
        sources,
        contents,
        dest,
        chown: non_empty(f.string("chown")),
        chmod: non_empty(f.string("chmod")),
        checksum: non_empty(f.string("checksum")),
        keep_git_dir: f.bool("keep-git-dir").unwrap_or(false),
        link: f.bool("link").unwrap_or(false),
        excludes: f.strings("exclude"),
        unpack: f.bool("unpack"),
    }))
}

/// `COPY [--exclude] [--parents] [--chown] [--from] [--chmod] [--link] src... dest`.
fn parse_copy(req: &Request) -> Result<Command, String> {
    if req.args.len() < 2 {
        return Err("COPY requires at least two arguments, but only one was provided. Destination could not be determined".into());
    }
    let f = req.flags(&[
        ("exclude", Kind::Strs),
        ("parents", Kind::Bool),
        ("chown", Kind::Str),
        ("from", Kind::Str),
        ("chmod", Kind::Str),
        ("link", Kind::Bool),
    ])?;
    let (sources, contents, dest) = sources_and_dest(req, "COPY")?;
    Ok(Command::Copy(Copy {
        sources,
        contents,
        dest,
        from: non_empty(f.string("from")),
        chown: non_empty(f.string("chown")),
        chmod: non_empty(f.string("chmod")),
        link: f.bool("link").unwrap_or(false),
        parents: f.bool("parents").unwrap_or(false),
        excludes: f.strings("exclude"),
    }))
}

/// `FROM [--platform] image [AS name]`.
fn parse_from(req: &Request) -> Result<FromInstruction, String> {
    let args = &req.args;
    let name = match args.len() {
        3 if args[1].eq_ignore_ascii_case("as") => Some(stage_name(&args[2])?),
        1 => None,
        _ => return Err("FROM requires either one or three arguments".into()),
    };
    let f = req.flags(&[("platform", Kind::Str)])?;
    Ok(FromInstruction {
        base: args[0].clone(),
        name,
        platform: non_empty(f.string("platform")),
    })
}

/// A stage name, lower-cased: a letter, then letters, digits, `-`, `_` or `.`.
fn stage_name(raw: &str) -> Result<String, String> {
    let name = raw.to_lowercase();
    let mut cs = name.chars();
    let ok = cs.next().is_some_and(|c| c.is_ascii_lowercase())
        && cs.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'));
    if !ok {
        return Err(format!(
            "invalid name for build stage: {}, name can't start with a number or contain symbols",
            go_quote(raw)
        ));
    }
    Ok(name)
}

/// `ONBUILD instruction` (no flags): the trigger's text, heredoc bodies included.
fn parse_onbuild(req: &Request) -> Result<Command, String> {
    req.at_least_one("ONBUILD")?;
    req.no_flags()?;
    let trigger = crate::util::trim_space(&req.args[0]).to_uppercase();
    match trigger.as_str() {
        "ONBUILD" => return Err("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed".into()),
        "MAINTAINER" | "FROM" => {
            return Err(format!("{trigger} isn't allowed as an ONBUILD trigger"))
        }
        _ => {}
    }
    let orig = req.node.original.trim_start_matches(crate::util::is_space);
    let mut expr = if orig
        .get(..7)
        .is_some_and(|p| p.eq_ignore_ascii_case("onbuild"))
    {
        orig[7..]
            .trim_start_matches(crate::util::is_space)
            .to_string()
    } else {
        orig.to_string()
    };
    for h in &req.node.heredocs {
        expr.push('\n');
        expr.push_str(&h.content);
        expr.push_str(&h.name);
    }
    Ok(Command::Onbuild(expr))
}

/// `WORKDIR path` (no flags).
fn parse_workdir(req: &Request) -> Result<Command, String> {
    let path = req.exactly_one("WORKDIR")?;
    req.no_flags()?;
    Ok(Command::Workdir(path))
}

/// `RUN [--mount]... [--network] [--security] command`. The mounts are only prechecked here:
/// BuildKit parses them after expansion.
fn parse_run(req: &Request) -> Result<Command, String> {
    let f = req.flags(&[
        ("mount", Kind::Strs),
        ("network", Kind::Str),
        ("security", Kind::Str),
    ])?;
    let mount_specs = f.strings("mount");
    for m in &mount_specs {
        precheck_mount(m)?;
    }
    let network = match f.string("network").as_deref() {
        None => None,
        Some("default") => Some(Network::Default),
        Some("none") => Some(Network::None),
        Some("host") => Some(Network::Host),
        Some(o) => return Err(format!("unsupported network mode {}", go_quote(o))),
    };
    let security = match f.string("security").as_deref() {
        None => None,
        Some("sandbox") => Some(Security::Sandbox),
        Some("insecure") => Some(Security::Insecure),
        Some(o) => return Err(format!("unsupported security mode {}", go_quote(o))),
    };
    Ok(Command::Run(Run {
        cmd: req.command_line(),
        heredocs: req.node.heredocs.clone(),
        mount_specs,
        mounts: Vec::new(),
        network,
        security,
    }))
}

/// `CMD command` (no flags).
fn parse_cmd(req: &Request) -> Result<Command, String> {
    req.no_flags()?;
    Ok(Command::Cmd(req.command_line()))
}

/// `ENTRYPOINT command` (no flags).
fn parse_entrypoint(req: &Request) -> Result<Command, String> {
    req.no_flags()?;
    Ok(Command::Entrypoint(req.command_line()))
}

/// `HEALTHCHECK NONE` (flags ignored) or `HEALTHCHECK [--interval] [--timeout]
/// [--start-period] [--start-interval] [--retries] CMD command`.
fn parse_healthcheck(req: &Request) -> Result<Command, String> {
    req.at_least_one("HEALTHCHECK")?;
    let typ = req.args[0].to_uppercase();
    let rest = &req.args[1..];
    if typ == "NONE" {
        if !rest.is_empty() {
            return Err("HEALTHCHECK NONE takes no arguments".into());
        }
        return Ok(Command::Healthcheck(Healthcheck::None));
    }
    let f = req.flags(&[
        ("interval", Kind::Str),
        ("timeout", Kind::Str),
        ("start-period", Kind::Str),
        ("start-interval", Kind::Str),
        ("retries", Kind::Str),
    ])?;
    if typ != "CMD" {
        return Err(format!(
            "Unknown type {} in HEALTHCHECK (try CMD)",
            go_quote(&typ)
        ));
    }
    let cmd_slice = handle_json_args(rest, req.json);
    if cmd_slice.is_empty() {
        return Err("Missing command after HEALTHCHECK CMD".into());
    }
    let head = if req.json { "CMD" } else { "CMD-SHELL" };
    Ok(Command::Healthcheck(Healthcheck::Check {
        test: std::iter::once(head.to_string()).chain(cmd_slice).collect(),
        interval: opt_duration(f.string("interval"), "interval")?,
        timeout: opt_duration(f.string("timeout"), "timeout")?,
        start_period: opt_duration(f.string("start-period"), "start-period")?,
        start_interval: opt_duration(f.string("start-interval"), "start-interval")?,
        retries: retries(f.string("retries"))?,
    }))
}

/// `--retries`: Go's `strconv.ParseInt` of an `int`, not negative (empty: zero).
fn retries(v: Option<String>) -> Result<u32, String> {
    let Some(r) = non_empty(v) else {
        return Ok(0);
    };
    let v: i64 = r
        .parse::<i32>()
        .map(i64::from)
        .map_err(|_| format!("strconv.ParseInt: parsing {}: invalid syntax", go_quote(&r)))?;
    if v < 0 {
        return Err(format!("--retries cannot be negative ({v})"));
    }
    Ok(v as u32)
}

/// `EXPOSE port...` (no flags), sorted.
fn parse_expose(req: &Request) -> Result<Command, String> {
    req.at_least_one("EXPOSE")?;
    req.no_flags()?;
    let mut ports = req.args.clone();
    ports.sort();
    Ok(Command::Expose(ports))
}

/// `USER user[:group]` (no flags).
fn parse_user(req: &Request) -> Result<Command, String> {
    let user = req.exactly_one("USER")?;
    req.no_flags()?;
    Ok(Command::User(user))
}

/// `VOLUME path...` (no flags), each trimmed and not empty.
fn parse_volume(req: &Request) -> Result<Command, String> {
    req.at_least_one("VOLUME")?;
    req.no_flags()?;
    let vols = req
        .args
        .iter()
        .map(|v| match crate::util::trim_space(v) {
            "" => Err("VOLUME specified can not be an empty string".to_string()),
            v => Ok(v.to_string()),
        })
        .collect::<Result<_, String>>()?;
    Ok(Command::Volume(vols))
}

/// `STOPSIGNAL signal` (flags not checked, as in BuildKit).
fn parse_stopsignal(req: &Request) -> Result<Command, String> {
    Ok(Command::StopSignal(req.exactly_one("STOPSIGNAL")?))
}

/// `ARG name[=default]...` (flags not checked, as in BuildKit).
fn parse_arg(req: &Request) -> Result<Command, String> {
    req.at_least_one("ARG")?;
    let decls = req
        .args
        .iter()
        .map(|a| match a.split_once('=') {
            Some(("", _)) => Err("ARG names can not be blank".to_string()),
            Some((k, v)) => Ok(ArgDecl {
                name: k.to_string(),
                default: Some(v.to_string()),
            }),
            None => Ok(ArgDecl {
                name: a.clone(),
                default: None,
            }),
        })
        .collect::<Result<_, String>>()?;
    Ok(Command::Arg(decls))
}

/// `SHELL ["executable", "param"...]` (no flags, JSON form only).
fn parse_shell(req: &Request) -> Result<Command, String> {
    req.no_flags()?;
    let shell = handle_json_args(&req.args, req.json);
    if shell.is_empty() {
        return Err(at_least_one("SHELL"));
    }
    if !req.json {
        return Err("SHELL requires the arguments to be in JSON form".into());
    }
    Ok(Command::Shell(shell))
}

/// An option given as an empty string is the same as no option.
fn non_empty(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.is_empty())
}

fn parse_kvps(args: &[String], cmd: &str) -> Result<Vec<KeyValue>, String> {
    if args.is_empty() {
        return Err(at_least_one(cmd));
    }
    if !args.chunks_exact(3).remainder().is_empty() {
        return Err(format!("Bad input to {cmd}, too many arguments"));
    }
    let mut out = Vec::new();
    for t in args.chunks(3) {
        if t[0].is_empty() {
            return Err(format!("{cmd} names can not be blank"));
        }
        out.push(KeyValue {
            key: t[0].clone(),
            value: t[1].clone(),
        });
    }
    Ok(out)
}

/// `COPY`/`ADD` arguments: the sources (paths, and heredocs with their bodies) and the
/// destination.
fn sources_and_dest(
    req: &Request,
    cmd: &str,
) -> Result<(Vec<String>, Vec<SourceContent>, String), String> {
    let (dest, srcs) = req.args.split_last().ok_or_else(|| at_least_one(cmd))?;
    if matches!(parse_heredoc(dest), Ok(Some(_))) {
        return Err(format!("{cmd} cannot accept a heredoc as a destination"));
    }
    let mut paths = Vec::new();
    let mut contents = Vec::new();
    for s in srcs {
        match parse_heredoc(s) {
            Ok(Some(h)) => {
                let body = req
                    .node
                    .heredocs
                    .iter()
                    .rev()
                    .find(|d| d.name == h.name)
                    .map(|d| d.content.clone())
                    .unwrap_or_default();
                let data = if h.chomp { chomp_heredoc(&body) } else { body };
                contents.push(SourceContent {
                    path: h.name,
                    data,
                    expand: h.expand,
                });
            }
            _ => paths.push(s.clone()),
        }
    }
    Ok((paths, contents, dest.clone()))
}

/// A `HEALTHCHECK` duration flag: empty or zero means inherit, else at least 1ms.
fn opt_duration(v: Option<String>, name: &str) -> Result<Duration, String> {
    let Some(s) = non_empty(v) else {
        return Ok(Duration::ZERO);
    };
    let ns = parse_go_duration(&s).map_err(|e| e.to_string())?;
    if ns == 0 {
        return Ok(Duration::ZERO);
    }
    if ns < 1_000_000 {
        return Err(format!(
            "Interval {} cannot be less than 1ms",
            go_quote(name)
        ));
    }
    Ok(Duration::from_nanos(ns as u64))
}

impl Instruction {
    /// A copy of this instruction with its arguments expanded the way Docker does at build
    /// time, using `env` (the stage's environment and the ARGs in scope; see
    /// [`crate::Scope`]) and `lex` (built with the Dockerfile's escape character):
    ///
    /// * `ENV`, `LABEL`: names and values; `WORKDIR`, `USER`, `STOPSIGNAL`, each
    ///   `VOLUME`; `ADD`/`COPY` sources, destination, `--chown`, `--chmod`, `--checksum`
    ///   (not `--from`), heredoc bodies that allow expansion (quotes kept);
    /// * `EXPOSE`: each spec is expanded and split into words;
    /// * `RUN`: the `--mount` values, after which [`Run::mounts`] holds the typed mounts;
    /// * `RUN`/`CMD`/`ENTRYPOINT`/`SHELL`/`HEALTHCHECK`/`MAINTAINER`/`ONBUILD`: unchanged (the
    ///   shell or a later build does it);
    /// * `ARG`: unchanged; [`crate::Scope::declare_arg`] expands a default only when no build
    ///   arg overrides it, as BuildKit does.
    pub fn expand(&self, lex: &ShellLex, env: &dyn Env) -> Result<Instruction> {
        let line = self.line;
        let w = |s: &str| lex.process_word(s, env).map_err(|e| e.at_line(line));
        // An option that expands to nothing is the same as no option, as in Docker.
        let wo = |s: &Option<String>| -> Result<Option<String>> {
            Ok(s.as_ref()
                .map(|v| w(v))
                .transpose()?
                .filter(|v| !v.is_empty()))
        };
        let raw_lex = {
            let mut l = ShellLex::new('\\');
            l.skip_process_quotes = true;
            l
        };
        let contents = |cs: &[SourceContent]| -> Result<Vec<SourceContent>> {
            cs.iter()
                .map(|c| {
                    let mut c = c.clone();
                    if c.expand {
                        c.data = raw_lex
                            .process_word(&c.data, env)
                            .map_err(|e| e.at_line(line))?;
                    }
                    Ok(c)
                })
                .collect()
        };
        let kvs = |v: &[KeyValue]| -> Result<Vec<KeyValue>> {
            v.iter()
                .map(|kv| {
                    Ok(KeyValue {
                        key: w(&kv.key)?,
                        value: w(&kv.value)?,
                    })
                })
                .collect()
        };
        let command = match &self.command {
            Command::Env(v) => Command::Env(kvs(v)?),
            Command::Label(v) => Command::Label(kvs(v)?),
            Command::Workdir(p) => Command::Workdir(w(p)?),
            Command::User(u) => Command::User(w(u)?),
            Command::StopSignal(s) => Command::StopSignal(w(s)?),
            Command::Volume(v) => Command::Volume(v.iter().map(|x| w(x)).collect::<Result<_>>()?),
            Command::Expose(v) => {
                let mut out = Vec::new();
                for p in v {
                    out.extend(lex.process_words(p, env).map_err(|e| e.at_line(line))?);
                }
                Command::Expose(out)
            }
            Command::Add(a) => Command::Add(Add {
                sources: a.sources.iter().map(|x| w(x)).collect::<Result<_>>()?,
                contents: contents(&a.contents)?,
                dest: w(&a.dest)?,
                chown: wo(&a.chown)?,
                chmod: wo(&a.chmod)?,
                checksum: wo(&a.checksum)?,
                ..a.clone()
            }),
            Command::Copy(c) => Command::Copy(Copy {
                sources: c.sources.iter().map(|x| w(x)).collect::<Result<_>>()?,
                contents: contents(&c.contents)?,
                dest: w(&c.dest)?,
                chown: wo(&c.chown)?,
                chmod: wo(&c.chmod)?,
                ..c.clone()
            }),
            Command::Run(r) => {
                let mut r = r.clone();
                let mut mounts = Vec::new();
                for spec in &r.mount_specs {
                    let mut ex = |v: &str| lex.process_word(v, env);
                    mounts.push(parse_mount(spec, &mut ex).map_err(|m| Error::parse(line, m))?);
                }
                r.mounts = mounts;
                Command::Run(r)
            }
            other => other.clone(),
        };
        Ok(Instruction {
            command,
            ..self.clone()
        })
    }
}
