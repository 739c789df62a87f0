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

fn no_flags(node: &Node) -> Result<(), String> {
    Flags::parse(&node.flags, &[]).map(|_| ())
}

fn sources_and_dest(
    node: &Node,
    args: &[String],
    cmd: &str,
) -> Result<(Vec<String>, Vec<SourceContent>, String), String> {
    let (dest, srcs) = args.split_last().ok_or_else(|| at_least_one(cmd))?;
    if matches!(parse_heredoc(dest), Ok(Some(_))) {
        return Err(format!("{cmd} cannot accept a heredoc as a destination"));
    }
    let mut paths = Vec::new();
    let mut contents = Vec::new();
    for s in srcs {
        match parse_heredoc(s) {
            Ok(Some(h)) => {
                let body = node
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

fn opt_duration(v: Option<String>, name: &str) -> Result<Duration, String> {
    let Some(s) = v.filter(|s| !s.is_empty()) else {
        return Ok(Duration::ZERO);
    };
    let ns = parse_go_duration(&s)?;
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

/// Check one AST node and build its typed form (BuildKit's `ParseInstruction`).
pub(crate) fn parse_node(node: &Node) -> Result<Parsed, String> {
    let args = node.flat_args();
    let name = node.value.to_lowercase();
    let json = node.json;
    let cmd = match name.as_str() {
        "env" => {
            no_flags(node)?;
            Command::Env(parse_kvps(&args, "ENV")?)
        }
        "maintainer" => {
            if args.len() != 1 {
                return Err(exactly_one("MAINTAINER"));
            }
            no_flags(node)?;
            Command::Maintainer(args[0].clone())
        }
        "label" => {
            no_flags(node)?;
            Command::Label(parse_kvps(&args, "LABEL")?)
        }
        "add" => {
            if args.len() < 2 {
                return Err("ADD requires at least two arguments, but only one was provided. Destination could not be determined".into());
            }
            let f = Flags::parse(
                &node.flags,
                &[
                    ("exclude", Kind::Strs),
                    ("chown", Kind::Str),
                    ("chmod", Kind::Str),
                    ("link", Kind::Bool),
                    ("keep-git-dir", Kind::Bool),
                    ("checksum", Kind::Str),
                    ("unpack", Kind::Bool),
                ],
            )?;
            let (sources, contents, dest) = sources_and_dest(node, &args, "ADD")?;
            Command::Add(Add {
                sources,
                contents,
                dest,
                chown: f.string("chown").filter(|s| !s.is_empty()),
                chmod: f.string("chmod").filter(|s| !s.is_empty()),
                checksum: f.string("checksum").filter(|s| !s.is_empty()),
                keep_git_dir: f.bool("keep-git-dir").unwrap_or(false),
                link: f.bool("link").unwrap_or(false),
                excludes: f.strings("exclude"),
                unpack: f.bool("unpack"),
            })
        }
        "copy" => {
            if args.len() < 2 {
                return Err("COPY requires at least two arguments, but only one was provided. Destination could not be determined".into());
            }
            let f = Flags::parse(
                &node.flags,
                &[
                    ("exclude", Kind::Strs),
                    ("parents", Kind::Bool),
                    ("chown", Kind::Str),
                    ("from", Kind::Str),
                    ("chmod", Kind::Str),
                    ("link", Kind::Bool),
                ],
            )?;
            let (sources, contents, dest) = sources_and_dest(node, &args, "COPY")?;
            Command::Copy(Copy {
                sources,
                contents,
                dest,
                from: f.string("from").filter(|s| !s.is_empty()),
                chown: f.string("chown").filter(|s| !s.is_empty()),
                chmod: f.string("chmod").filter(|s| !s.is_empty()),
                link: f.bool("link").unwrap_or(false),
                parents: f.bool("parents").unwrap_or(false),
                excludes: f.strings("exclude"),
            })
        }
        "from" => {
            let stage_name = match args.len() {
                3 if args[1].eq_ignore_ascii_case("as") => {
                    let n = args[2].to_lowercase();
                    let mut cs = n.chars();
                    let ok = cs.next().is_some_and(|c| c.is_ascii_lowercase())
                        && cs.all(|c| {
                            c.is_ascii_lowercase()
                                || c.is_ascii_digit()
                                || matches!(c, '-' | '_' | '.')
                        });
                    if !ok {
                        return Err(format!(
                            "invalid name for build stage: {}, name can't start with a number or contain symbols",
                            go_quote(&args[2])
                        ));
                    }
                    Some(n)
                }
                1 => None,
                _ => return Err("FROM requires either one or three arguments".into()),
            };
            let f = Flags::parse(&node.flags, &[("platform", Kind::Str)])?;
            return Ok(Parsed::From(FromInstruction {
                base: args[0].clone(),
                name: stage_name,
                platform: f.string("platform").filter(|s| !s.is_empty()),
            }));
        }
        "onbuild" => {
            if args.is_empty() {
                return Err(at_least_one("ONBUILD"));
            }
            no_flags(node)?;
            let trigger = crate::util::trim_space(&args[0]).to_uppercase();
            match trigger.as_str() {
                "ONBUILD" => {
                    return Err("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed".into())
                }
                "MAINTAINER" | "FROM" => {
                    return Err(format!("{trigger} isn't allowed as an ONBUILD trigger"))
                }
                _ => {}
            }
            let orig = node.original.trim_start_matches(crate::util::is_space);
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
            for h in &node.heredocs {
                expr.push('\n');
                expr.push_str(&h.content);
                expr.push_str(&h.name);
            }
            Command::Onbuild(expr)
        }
        "workdir" => {
            if args.len() != 1 {
                return Err(exactly_one("WORKDIR"));
            }
            no_flags(node)?;
            Command::Workdir(args[0].clone())
        }
        "run" => {
            let f = Flags::parse(
                &node.flags,
                &[
                    ("mount", Kind::Strs),
                    ("network", Kind::Str),
                    ("security", Kind::Str),
                ],
            )?;
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
            Command::Run(Run {
                cmd: CommandLine {
                    args: handle_json_args(&args, json),
                    prepend_shell: !json,
                },
                heredocs: node.heredocs.clone(),
                mount_specs,
                mounts: Vec::new(),
                network,
                security,
            })
        }
        "cmd" | "entrypoint" => {
            no_flags(node)?;
            let line = CommandLine {
                args: handle_json_args(&args, json),
                prepend_shell: !json,
            };
            if name == "cmd" {
                Command::Cmd(line)
            } else {
                Command::Entrypoint(line)
            }
        }
        "healthcheck" => {
            if args.is_empty() {
                return Err(at_least_one("HEALTHCHECK"));
            }
            let typ = args[0].to_uppercase();
            let rest = &args[1..];
            if typ == "NONE" {
                if !rest.is_empty() {
                    return Err("HEALTHCHECK NONE takes no arguments".into());
                }
                Command::Healthcheck(Healthcheck::None)
            } else {
                let f = Flags::parse(
                    &node.flags,
                    &[
                        ("interval", Kind::Str),
                        ("timeout", Kind::Str),
                        ("start-period", Kind::Str),
                        ("start-interval", Kind::Str),
                        ("retries", Kind::Str),
                    ],
                )?;
                if typ != "CMD" {
                    return Err(format!(
                        "Unknown type {} in HEALTHCHECK (try CMD)",
                        go_quote(&typ)
                    ));
                }
                let cmd_slice = handle_json_args(rest, json);
                if cmd_slice.is_empty() {
                    return Err("Missing command after HEALTHCHECK CMD".into());
                }
                let head = if json { "CMD" } else { "CMD-SHELL" };
                let test = std::iter::once(head.to_string()).chain(cmd_slice).collect();
                let interval = opt_duration(f.string("interval"), "interval")?;
                let timeout = opt_duration(f.string("timeout"), "timeout")?;
                let start_period = opt_duration(f.string("start-period"), "start-period")?;
                let start_interval = opt_duration(f.string("start-interval"), "start-interval")?;
                let retries = match f.string("retries").filter(|s| !s.is_empty()) {
                    None => 0,
                    Some(r) => {
                        let v: i64 = r.parse::<i32>().map(i64::from).map_err(|_| {
                            format!("strconv.ParseInt: parsing {}: invalid syntax", go_quote(&r))
                        })?;
                        if v < 0 {
                            return Err(format!("--retries cannot be negative ({v})"));
                        }
                        v as u32
                    }
                };
                Command::Healthcheck(Healthcheck::Check {
                    test,
                    interval,
                    timeout,
                    start_period,
                    start_interval,
                    retries,
                })
            }
        }
        "expose" => {
            if args.is_empty() {
                return Err(at_least_one("EXPOSE"));
            }
            no_flags(node)?;
            let mut ports = args.clone();
            ports.sort();
            Command::Expose(ports)
        }
        "user" => {
            if args.len() != 1 {
                return Err(exactly_one("USER"));
            }
            no_flags(node)?;
            Command::User(args[0].clone())
        }
        "volume" => {
            if args.is_empty() {
                return Err(at_least_one("VOLUME"));
            }
            no_flags(node)?;
            let mut vols = Vec::new();
            for v in &args {
                let v = crate::util::trim_space(v);
                if v.is_empty() {
                    return Err("VOLUME specified can not be an empty string".into());
                }
                vols.push(v.to_string());
            }
            Command::Volume(vols)
        }
        "stopsignal" => {
            if args.len() != 1 {
                return Err(exactly_one("STOPSIGNAL"));
            }
            Command::StopSignal(args[0].clone())
        }
        "arg" => {
            if args.is_empty() {
                return Err(at_least_one("ARG"));
            }
            let mut decls = Vec::new();
            for a in &args {
                match a.split_once('=') {
                    Some((k, v)) => {
                        if k.is_empty() {
                            return Err("ARG names can not be blank".into());
                        }
                        decls.push(ArgDecl {
                            name: k.to_string(),
                            default: Some(v.to_string()),
                        });
                    }
                    None => decls.push(ArgDecl {
                        name: a.clone(),
                        default: None,
                    }),
                }
            }
            Command::Arg(decls)
        }
        "shell" => {
            no_flags(node)?;
            let shell = handle_json_args(&args, json);
            if shell.is_empty() {
                return Err(at_least_one("SHELL"));
            }
            if !json {
                return Err("SHELL requires the arguments to be in JSON form".into());
            }
            Command::Shell(shell)
        }
        _ => return Err(format!("unknown instruction: {}", node.value)),
    };
    Ok(Parsed::Command(cmd))
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
