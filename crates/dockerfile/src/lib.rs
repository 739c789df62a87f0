//! Dockerfile frontend: text -> AST (with line numbers) -> typed stages; word expansion;
//! `.dockerignore`. No I/O: every function works on strings the caller supplies.
//!
//! The crate follows BuildKit's Dockerfile frontend and Docker's classic builder rule for
//! rule, so the same text is accepted, rejected and expanded the same way.
//!
//! # Pipeline
//!
//! 1. [`parse`] turns text into an [`Ast`]: parser directives (`# syntax=`, `# escape=`,
//!    `# check=`), comments, continuation lines, heredocs, JSON versus shell form, flags.
//!    [`dump_ast`] prints it in BuildKit's test format.
//! 2. [`lower`] checks every instruction's arguments and flags (Docker's messages, with the
//!    line) and gives a [`Dockerfile`]: [`Stage`]s of typed [`Instruction`]s, the meta ARGs,
//!    `FROM` lines expanded with the global ARGs, stage references resolved, the target's
//!    [`Dockerfile::build_order`], and the build args nobody declared.
//! 3. At build time, for each step, the builder calls [`Instruction::expand`] with the stage's
//!    [`Scope`] (image environment plus the ARGs in scope), because `ENV` values accumulate
//!    and come partly from the base image. Expansion follows Docker's choice of which
//!    instruction expands what; `RUN`/`CMD`/`ENTRYPOINT` are left to the shell.
//!
//! ```
//! use dockerfile::{BuildOptions, Command};
//!
//! let text = "ARG V=1\nFROM alpine:$V AS base\nARG V\nENV A=$V\nWORKDIR /app/$A\n";
//! let df = dockerfile::parse_and_lower(text, &BuildOptions::default()).unwrap();
//! assert_eq!(df.stages[0].base, dockerfile::Base::Image("alpine:1".into()));
//!
//! // What a builder does for each stage in `df.build_order`:
//! let lex = df.lexer();
//! let mut scope = df.scope();
//! scope.set_env("PATH", "/usr/bin"); // the base image's environment
//! for step in &df.stages[0].instructions {
//!     let expanded = step.expand(&lex, &scope).unwrap();
//!     match &expanded.command {
//!         Command::Arg(_) => scope.apply_arg(&lex, step).unwrap(),
//!         Command::Env(kv) => kv.iter().for_each(|p| scope.set_env(&p.key, &p.value)),
//!         Command::Workdir(dir) => assert_eq!(dir, "/app/1"),
//!         _ => {}
//!     }
//! }
//! ```
//!
//! Word expansion on its own is [`ShellLex`]; `.dockerignore` handling is [`DockerIgnore`].
//! [`expose_ports`], [`parse_signal`] and [`resolve_workdir`] apply Docker's rules for
//! writing expanded values into an image configuration, and [`Instruction::nop_history`]
//! gives the classic builder's history text for metadata-only steps.
//!
//! # Docker versus BuildKit
//!
//! Where Docker 20.10's classic builder and BuildKit disagree, the crate takes BuildKit's
//! side: `TARGETPLATFORM`/`BUILDPLATFORM` and friends are predefined; an `ARG` default is
//! only expanded when no build arg overrides it; flag errors are worded in lower case
//! (`unknown flag: x`); parser errors carry their line (`dockerfile parse error line 3:
//! ENV must have two arguments`, where the classic builder says `failed to parse
//! Dockerfile: ...`). `COPY --from` is never expanded, as in both.

mod dockerignore;
mod error;
mod flags;
mod history;
mod instructions;
mod json;
mod mount;
mod parser;
mod shell;
mod stages;
mod util;
mod values;

pub use dockerignore::{choose_ignore_file, clean_path, ignore_file_candidates, DockerIgnore};
pub use error::{Error, Result};
pub use instructions::{
    Add, ArgDecl, Command, CommandLine, Copy, Healthcheck, Instruction, KeyValue, Network, Run,
    RunScript, Security, SourceContent,
};
pub use mount::{csv_fields, Mount, MountType, Sharing};
pub use parser::{
    chomp_heredoc, dump_ast, parse, parse_heredoc, warnings_text, Ast, CheckOptions, Directive,
    Heredoc, Node, Warning,
};
pub use shell::{Env, EnvList, Processed, ShellLex};
pub use stages::{
    lower, Base, BuildOptions, Dockerfile, Platform, Scope, Source, Stage, PLATFORM_ARGS,
    PROXY_ARGS,
};
pub use util::{go_quote, parse_go_duration};
pub use values::{expose_ports, parse_signal, resolve_workdir};

/// Parse and lower in one step.
pub fn parse_and_lower(text: &str, options: &BuildOptions) -> Result<Dockerfile> {
    lower(&parse(text)?, options)
}
