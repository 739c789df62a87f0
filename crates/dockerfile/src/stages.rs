//! Lowering: AST to build stages. Resolves meta ARGs and `FROM` lines, stage names and
//! references, target selection and build order, the ARG/ENV scope of a stage, and which
//! build args went unused.

use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::instructions::{parse_node, ArgDecl, Command, FromInstruction, Instruction, Parsed};
use crate::mount::mount_from;
use crate::parser::{Ast, Directive, Node, Warning};
use crate::shell::{Env, ShellLex};

/// The platform args every Dockerfile has without declaring them.
pub const PLATFORM_ARGS: [&str; 8] = [
    "BUILDPLATFORM",
    "BUILDOS",
    "BUILDARCH",
    "BUILDVARIANT",
    "TARGETPLATFORM",
    "TARGETOS",
    "TARGETARCH",
    "TARGETVARIANT",
];

/// Build args Docker accepts without an `ARG` line and never reports as unused.
pub const PROXY_ARGS: [&str; 10] = [
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// An OCI platform such as `linux/arm64/v8`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    /// `linux`.
    pub os: String,
    /// `amd64`, `arm64`, ...
    pub architecture: String,
    /// `v7`, `v8`, ... or empty.
    pub variant: String,
}

impl Default for Platform {
    fn default() -> Self {
        Platform {
            os: "linux".into(),
            architecture: "amd64".into(),
            variant: String::new(),
        }
    }
}

impl Platform {
    /// Parse `os/arch[/variant]`.
    pub fn parse(s: &str) -> Option<Platform> {
        let parts: Vec<&str> = s.split('/').collect();
        if parts.len() < 2 || parts.len() > 3 || parts.iter().any(|p| p.is_empty()) {
            return None;
        }
        Some(Platform {
            os: parts[0].to_lowercase(),
            architecture: parts[1].to_lowercase(),
            variant: parts.get(2).map(|v| v.to_lowercase()).unwrap_or_default(),
        })
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if !self.variant.is_empty() {
            write!(f, "/{}", self.variant)?;
        }
        Ok(())
    }
}

/// Inputs from outside the Dockerfile.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildOptions {
    /// `--build-arg NAME=value`.
    pub build_args: BTreeMap<String, String>,
    /// `--target`: the stage to build (the last one when `None`).
    pub target: Option<String>,
    /// Platform being built for (`TARGETPLATFORM` and friends).
    pub target_platform: Platform,
    /// Platform of the builder (`BUILDPLATFORM` and friends).
    pub build_platform: Platform,
    /// For Docker's classic builder, which builds every stage up to the target in order
    /// and checks a `--from` when it gets to it: a `--from` that names no earlier stage is
    /// no error here and no dependency.
    pub classic: bool,
}

/// What a stage's `FROM` refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Base {
    /// `FROM scratch`.
    Scratch,
    /// An earlier stage, by index.
    Stage(usize),
    /// An image reference (after expansion).
    Image(String),
}

/// A stage source referenced by `COPY --from` or `RUN --mount=from=`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Another stage of this Dockerfile.
    Stage(usize),
    /// An image reference.
    Image(String),
}

/// One build stage: a `FROM` and the instructions up to the next `FROM`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// Position among the stages (what `--from=N` refers to).
    pub index: usize,
    /// `AS name`, lower-cased.
    pub name: Option<String>,
    /// The base as written.
    pub base_raw: String,
    /// The base after expansion with the meta ARGs.
    pub base: Base,
    /// `--platform` after expansion.
    pub platform: Option<String>,
    /// 1-based line of `FROM`.
    pub line: usize,
    /// The `FROM` line's text.
    pub original: String,
    /// The instructions, unexpanded.
    pub instructions: Vec<Instruction>,
    /// Stages this stage needs (its base, `COPY --from`, `RUN --mount from=`), sorted.
    pub deps: Vec<usize>,
}

/// A lowered Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    /// The stages in file order.
    pub stages: Vec<Stage>,
    /// `ARG` lines before the first `FROM`.
    pub meta_args: Vec<Instruction>,
    /// Values of the global scope: platform args and meta ARGs (after build args).
    pub global_args: Vec<(String, String)>,
    /// The escape character.
    pub escape: char,
    /// Parser directives.
    pub directives: Vec<Directive>,
    /// Parser warnings.
    pub warnings: Vec<Warning>,
    /// Index of the stage to build.
    pub target: usize,
    /// The stages needed for the target, dependencies first, target last.
    pub build_order: Vec<usize>,
    /// Build args given but declared by no `ARG` in the meta scope or the stages built,
    /// sorted (Docker warns: `[Warning] One or more build-args [...] were not consumed`).
    pub unused_build_args: Vec<String>,
    options: BuildOptions,
}

fn platform_args(o: &BuildOptions) -> Vec<(String, String)> {
    let mut v = Vec::new();
    for (prefix, p) in [("BUILD", &o.build_platform), ("TARGET", &o.target_platform)] {
        v.push((format!("{prefix}PLATFORM"), p.to_string()));
        v.push((format!("{prefix}OS"), p.os.clone()));
        v.push((format!("{prefix}ARCH"), p.architecture.clone()));
        v.push((format!("{prefix}VARIANT"), p.variant.clone()));
    }
    v
}

fn is_predefined(name: &str) -> bool {
    PROXY_ARGS.contains(&name) || name.starts_with("BUILDKIT_") || PLATFORM_ARGS.contains(&name)
}

/// Turn an [`Ast`] into stages: check every instruction, resolve meta ARGs, `FROM` lines and
/// stage references, pick the target and its build order, and find unused build args.
pub fn lower(ast: &Ast, options: &BuildOptions) -> Result<Dockerfile> {
    let mut state = Lowering::new(ast.escape, options);
    for node in &ast.children {
        state.add(node)?;
    }
    let Lowering {
        mut stages,
        meta_args,
        global,
        ..
    } = state;
    if stages.is_empty() {
        return Err(Error::Stage(
            "dockerfile contains no stages to build".into(),
        ));
    }
    resolve_dependencies(&mut stages, options.classic)?;
    let target = target_index(&stages, options.target.as_deref())?;
    let build_order = order(&stages, target)?;
    let unused_build_args = unused_build_args(options, &meta_args, &stages, &build_order);
    Ok(Dockerfile {
        stages,
        meta_args,
        global_args: global,
        escape: ast.escape,
        directives: ast.directives.clone(),
        warnings: ast.warnings.clone(),
        target,
        build_order,
        unused_build_args,
        options: options.clone(),
    })
}

/// What lowering has gathered so far while it walks the nodes in order.
struct Lowering<'a> {
    lex: ShellLex,
    options: &'a BuildOptions,
    /// The global scope: platform args, then the meta ARGs as they are declared.
    global: Vec<(String, String)>,
    /// `ARG` lines before the first `FROM`.
    meta_args: Vec<Instruction>,
    stages: Vec<Stage>,
}

impl<'a> Lowering<'a> {
    /// The platform args (overridden by build args of the same name) as the global scope.
    fn new(escape: char, options: &'a BuildOptions) -> Self {
        let mut global = platform_args(options);
        for (k, v) in &options.build_args {
            if let Some(e) = global.iter_mut().find(|(n, _)| n == k) {
                e.1 = v.clone();
            }
        }
        Lowering {
            lex: ShellLex::new(escape),
            options,
            global,
            meta_args: Vec::new(),
            stages: Vec::new(),
        }
    }

    /// Check one node and file it: a meta ARG, a new stage, or an instruction of the
    /// current stage.
    fn add(&mut self, node: &Node) -> Result<()> {
        let parsed = if self.options.classic {
            crate::instructions::parse_node_classic(node)?
        } else {
            parse_node(node)?
        };
        match parsed {
            Parsed::Command(Command::Arg(decls)) if self.stages.is_empty() => {
                self.declare_meta_args(node, decls)
            }
            Parsed::Command(command) => {
                let Some(stage) = self.stages.last_mut() else {
                    // Docker's classic builder says it without the line.
                    let msg = "no build stage in current context";
                    return Err(if self.options.classic {
                        Error::Stage(msg.into())
                    } else {
                        Error::parse(node.start_line, msg)
                    });
                };
                stage.instructions.push(instruction(node, command));
                Ok(())
            }
            Parsed::From(from) => self.start_stage(node, from),
        }
    }

    /// An `ARG` before the first `FROM`: each value is the build arg, else the default
    /// expanded with the global scope so far.
    fn declare_meta_args(&mut self, node: &Node, decls: Vec<ArgDecl>) -> Result<()> {
        for d in &decls {
            let value = match self.options.build_args.get(&d.name) {
                Some(v) => Some(v.clone()),
                None => match &d.default {
                    Some(def) => Some(self.expand(def, node.start_line)?),
                    None => None,
                },
            };
            // Without a value the name keeps what the global scope already has
            // (e.g. `ARG TARGETPLATFORM`).
            if let Some(v) = value {
                self.global.retain(|(n, _)| n != &d.name);
                self.global.push((d.name.clone(), v));
            }
        }
        self.meta_args.push(instruction(node, Command::Arg(decls)));
        Ok(())
    }

    /// A `FROM`: its base and platform expanded with the global scope, the base resolved to
    /// an earlier stage, scratch or an image, the name checked for duplicates.
    fn start_stage(&mut self, node: &Node, from: FromInstruction) -> Result<()> {
        let line = node.start_line;
        let base = self.expand(&from.base, line)?;
        if base.is_empty() {
            return Err(Error::parse(
                line,
                format!("base name ({}) should not be blank", from.base),
            ));
        }
        let platform = match &from.platform {
            Some(p) => Some(self.expand(p, line)?),
            None => None,
        };
        let resolved = self.resolve_base(base);
        if let Some(n) = &from.name {
            if self.stages.iter().any(|s| s.name.as_ref() == Some(n)) {
                return Err(Error::parse(
                    line,
                    format!("duplicate stage name {}", crate::util::go_quote(n)),
                ));
            }
        }
        self.stages.push(Stage {
            index: self.stages.len(),
            name: from.name,
            base_raw: from.base,
            base: resolved,
            platform,
            line,
            original: node.original.clone(),
            instructions: Vec::new(),
            deps: Vec::new(),
        });
        Ok(())
    }

    /// An expanded base names an earlier stage (case-insensitive), `scratch`, or an image.
    fn resolve_base(&self, base: String) -> Base {
        let lower_base = base.to_lowercase();
        if let Some(s) = self
            .stages
            .iter()
            .find(|s| s.name.as_deref() == Some(lower_base.as_str()))
        {
            Base::Stage(s.index)
        } else if lower_base == "scratch" {
            Base::Scratch
        } else {
            Base::Image(base)
        }
    }

    /// A word expanded with the global scope, errors at `line`.
    fn expand(&self, word: &str, line: usize) -> Result<String> {
        self.lex
            .process_word(word, &self.global)
            .map_err(|e| e.at_line(line))
    }
}

/// An instruction made of a node's position and text and its checked command.
fn instruction(node: &Node, command: Command) -> Instruction {
    Instruction {
        line: node.start_line,
        end_line: node.end_line,
        original: node.original.clone(),
        command,
    }
}

/// Each stage's dependencies: its base stage, `COPY --from` and `RUN --mount from=`
/// stages, sorted and deduplicated (for `classic`, only earlier stages, see
/// [`BuildOptions::classic`]).
fn resolve_dependencies(stages: &mut [Stage], classic: bool) -> Result<()> {
    let names: Vec<Option<String>> = stages.iter().map(|s| s.name.clone()).collect();
    let count = stages.len();
    for (index, st) in stages.iter_mut().enumerate() {
        let mut deps = Vec::new();
        if let Base::Stage(i) = st.base {
            deps.push(i);
        }
        for ins in &st.instructions {
            let refs: Vec<String> = match &ins.command {
                Command::Copy(c) => c.from.iter().cloned().collect(),
                Command::Run(r) => r.mount_specs.iter().filter_map(|m| mount_from(m)).collect(),
                _ => Vec::new(),
            };
            for r in refs {
                match resolve_source(&names, count, &r) {
                    Ok(Source::Stage(i)) if !classic || i < index => deps.push(i),
                    Ok(_) => {}
                    Err(_) if classic => {}
                    Err(m) => return Err(Error::parse(ins.line, m)),
                }
            }
        }
        deps.sort_unstable();
        deps.dedup();
        st.deps = deps;
    }
    Ok(())
}

/// The stage `--target` names (case-insensitive), or the last stage when `None`.
fn target_index(stages: &[Stage], target: Option<&str>) -> Result<usize> {
    let Some(t) = target else {
        return Ok(stages.len() - 1);
    };
    let lt = t.to_lowercase();
    stages
        .iter()
        .find(|s| s.name.as_deref() == Some(lt.as_str()))
        .map(|s| s.index)
        .ok_or_else(|| Error::Stage(format!("failed to reach build target {t} in Dockerfile")))
}

/// Build args declared by no `ARG` of the meta scope or of the stages built, and not
/// predefined, sorted.
fn unused_build_args(
    options: &BuildOptions,
    meta_args: &[Instruction],
    stages: &[Stage],
    build_order: &[usize],
) -> Vec<String> {
    let built = build_order
        .iter()
        .flat_map(|&i| stages[i].instructions.iter());
    let declared: Vec<&str> = meta_args
        .iter()
        .chain(built)
        .filter_map(|ins| match &ins.command {
            Command::Arg(d) => Some(d.iter().map(|a| a.name.as_str())),
            _ => None,
        })
        .flatten()
        .collect();
    options
        .build_args
        .keys()
        .filter(|k| !declared.contains(&k.as_str()) && !is_predefined(k))
        .cloned()
        .collect()
}

/// Resolve a `--from` value: a stage name (case-insensitive), a stage index, or an image.
fn resolve_source(names: &[Option<String>], count: usize, r: &str) -> Result<Source, String> {
    let lr = r.to_lowercase();
    if let Some(i) = names.iter().position(|n| n.as_deref() == Some(lr.as_str())) {
        return Ok(Source::Stage(i));
    }
    if !r.is_empty() && r.bytes().all(|b| b.is_ascii_digit()) {
        return match r.parse::<usize>() {
            Ok(i) if i < count => Ok(Source::Stage(i)),
            _ => Err(format!("invalid stage index {r}")),
        };
    }
    Ok(Source::Image(r.to_string()))
}

fn order(stages: &[Stage], target: usize) -> Result<Vec<usize>> {
    // 0 = unvisited, 1 = in progress, 2 = done
    let mut state = vec![0u8; stages.len()];
    let mut out = Vec::new();
    // iterative DFS with explicit stack of (node, next dep index)
    let mut stack: Vec<(usize, usize)> = vec![(target, 0)];
    state[target] = 1;
    while let Some(&mut (n, ref mut di)) = stack.last_mut() {
        if *di < stages[n].deps.len() {
            let d = stages[n].deps[*di];
            *di += 1;
            match state[d] {
                0 => {
                    state[d] = 1;
                    stack.push((d, 0));
                }
                1 => {
                    let name = stages[d].name.clone().unwrap_or_else(|| d.to_string());
                    return Err(Error::Stage(format!(
                        "circular dependency detected on stage: {name}"
                    )));
                }
                _ => {}
            }
        } else {
            state[n] = 2;
            out.push(n);
            stack.pop();
        }
    }
    Ok(out)
}

impl Dockerfile {
    /// Docker's warning for [`Dockerfile::unused_build_args`], or `None` when all were used:
    /// `[Warning] One or more build-args [A B] were not consumed`.
    pub fn unused_build_args_warning(&self) -> Option<String> {
        if self.unused_build_args.is_empty() {
            return None;
        }
        Some(format!(
            "[Warning] One or more build-args [{}] were not consumed",
            self.unused_build_args.join(" ")
        ))
    }

    /// The lexer for this Dockerfile's escape character.
    pub fn lexer(&self) -> ShellLex {
        ShellLex::new(self.escape)
    }

    /// Resolve a `COPY --from` / `RUN --mount from=` value to a stage or an image.
    pub fn resolve_source(&self, reference: &str) -> Result<Source> {
        let names: Vec<Option<String>> = self.stages.iter().map(|s| s.name.clone()).collect();
        resolve_source(&names, self.stages.len(), reference).map_err(Error::Stage)
    }

    /// The stages needed to build `target` (a stage name, or the last stage when `None`),
    /// dependencies first.
    pub fn build_order_for(&self, target: Option<&str>) -> Result<Vec<usize>> {
        order(&self.stages, target_index(&self.stages, target)?)
    }

    /// A fresh variable scope for running a stage: knows the global ARG values and build args.
    /// Call [`Scope::set_env`] with the base image's environment first.
    pub fn scope(&self) -> Scope {
        Scope {
            global: self.global_args.clone(),
            build_args: self.options.build_args.clone(),
            args: Vec::new(),
            env: Vec::new(),
        }
    }
}

/// The variables visible to a build step: the image environment (base image plus `ENV`),
/// the `ARG`s declared so far in the stage, and the predefined proxy build args. Environment
/// variables win over ARGs of the same name. Use it as the [`Env`] for
/// [`Instruction::expand`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    global: Vec<(String, String)>,
    build_args: BTreeMap<String, String>,
    args: Vec<(String, String)>,
    env: Vec<(String, String)>,
}

impl Scope {
    /// Set an environment variable (from the base image or an expanded `ENV`).
    pub fn set_env(&mut self, key: &str, value: &str) {
        if let Some(e) = self.env.iter_mut().find(|(k, _)| k == key) {
            e.1 = value.to_string();
        } else {
            self.env.push((key.to_string(), value.to_string()));
        }
    }

    /// Declare an `ARG` as it appears in the stage (unexpanded): its value is the build arg
    /// if one was given, else its default expanded with the current scope, else the global
    /// (meta or platform) value; with none of these it stays unset. As in BuildKit, the
    /// default is only expanded (and can only fail) when no build arg overrides it.
    pub fn declare_arg(&mut self, lex: &ShellLex, decl: &ArgDecl) -> Result<()> {
        let value = match self.build_args.get(&decl.name) {
            Some(v) => Some(v.clone()),
            None => match &decl.default {
                Some(d) => Some(lex.process_word(d, &*self)?),
                None => self
                    .global
                    .iter()
                    .rev()
                    .find(|(k, _)| k == &decl.name)
                    .map(|(_, v)| v.clone()),
            },
        };
        self.args.retain(|(k, _)| k != &decl.name);
        if let Some(v) = value {
            self.args.push((decl.name.clone(), v));
        }
        Ok(())
    }

    /// Declare every `ARG` of an instruction, reporting errors at its line.
    pub fn apply_arg(&mut self, lex: &ShellLex, ins: &Instruction) -> Result<()> {
        if let Command::Arg(decls) = &ins.command {
            for d in decls {
                self.declare_arg(lex, d).map_err(|e| e.at_line(ins.line))?;
            }
        }
        Ok(())
    }

    /// The image environment in order of first definition.
    pub fn env(&self) -> &[(String, String)] {
        &self.env
    }

    /// The ARG values in scope (for a `RUN` step's environment), including given proxy
    /// build args, excluding names the environment overrides.
    pub fn args(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = self
            .args
            .iter()
            .filter(|(k, _)| !self.env.iter().any(|(e, _)| e == k))
            .cloned()
            .collect();
        for p in PROXY_ARGS {
            if let Some(v) = self.build_args.get(p) {
                if !out.iter().any(|(k, _)| k == p) && !self.env.iter().any(|(e, _)| e == p) {
                    out.push((p.to_string(), v.clone()));
                }
            }
        }
        out
    }
}

impl Env for Scope {
    fn get(&self, name: &str) -> Option<String> {
        if let Some((_, v)) = self.env.iter().find(|(k, _)| k == name) {
            return Some(v.clone());
        }
        if let Some((_, v)) = self.args.iter().find(|(k, _)| k == name) {
            return Some(v.clone());
        }
        if PROXY_ARGS.contains(&name) {
            return self.build_args.get(name).cloned();
        }
        None
    }
}
