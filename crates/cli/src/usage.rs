//! Command-line errors in Docker 20.10's CLI words and exit codes: `unknown flag: --x` and
//! `See 'strata run --help'.` (125), `"strata run" requires at least 1 argument.` with the
//! usage line (1), `strata: 'x' is not a strata command.` (1), `invalid argument "x" for
//! "-n, --last" flag: …` (125).

use std::process::ExitCode;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{Arg, CommandFactory};

use crate::PROGRAM;

/// Global options that take a value (skipped when finding the subcommand in argv).
const GLOBAL_WITH_VALUE: &[&str] = &["--root", "-l", "--log-level", "--insecure-registry"];

/// The subcommand path argv names (`["container", "ls"]`) and its clap command.
fn command_path(args: &[String]) -> (Vec<String>, clap::Command) {
    let mut cmd = crate::cli::Cli::command();
    cmd.build();
    let mut path = Vec::new();
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        if a == "--" {
            break;
        }
        if a.starts_with('-') {
            if path.is_empty() && GLOBAL_WITH_VALUE.contains(&a.as_str()) {
                it.next();
            }
            continue;
        }
        let Some(sub) = cmd.find_subcommand(a).cloned() else {
            break;
        };
        path.push(sub.get_name().to_string());
        cmd = sub;
    }
    (path, cmd)
}

fn positionals(cmd: &clap::Command) -> Vec<&Arg> {
    cmd.get_positionals().filter(|a| !a.is_hide_set()).collect()
}

fn multiple(a: &Arg) -> bool {
    a.get_num_args().is_some_and(|n| n.max_values() > 1)
}

/// Docker's usage line: `strata run [OPTIONS] IMAGE [COMMAND...]`.
fn usage_line(path: &[String], cmd: &clap::Command) -> String {
    let mut u = format!("Usage:  {PROGRAM}");
    for p in path {
        u.push(' ');
        u.push_str(p);
    }
    if cmd.has_subcommands() && cmd.get_positionals().next().is_none() {
        return u;
    }
    let own_flag = |a: &&Arg| {
        !a.is_positional()
            && !a.is_global_set()
            && !a.is_hide_set()
            && !matches!(a.get_id().as_str(), "help" | "version")
    };
    if cmd.get_arguments().any(|a| own_flag(&a)) {
        u.push_str(" [OPTIONS]");
    }
    for a in positionals(cmd) {
        let name = a
            .get_value_names()
            .and_then(|v| v.first())
            .map(|s| s.to_string())
            .unwrap_or_else(|| a.get_id().as_str().to_uppercase());
        let shown = match (a.is_required_set(), multiple(a)) {
            // Docker's `[COMMAND] [ARG...]`.
            (false, true) if name == "COMMAND" => "[COMMAND] [ARG...]".to_string(),
            (true, true) if name == "COMMAND" => "COMMAND [ARG...]".to_string(),
            (true, true) => format!("{name} [{name}...]"),
            (true, false) => name,
            (false, true) => format!("[{name}...]"),
            (false, false) => format!("[{name}]"),
        };
        u.push(' ');
        u.push_str(&shown);
    }
    u
}

/// Docker's count message (`requires at least 1 argument`) for this command's positionals.
fn count_message(cmd: &clap::Command) -> String {
    let ps = positionals(cmd);
    let min = ps.iter().filter(|a| a.is_required_set()).count();
    let unbounded = ps.iter().any(|a| multiple(a));
    let max = ps.len();
    let word = |n: usize| if n == 1 { "argument" } else { "arguments" };
    if unbounded {
        format!("requires at least {min} {}", word(min))
    } else if min == max {
        format!("requires exactly {min} {}", word(min))
    } else if min == 0 {
        format!("requires at most {max} {}", word(max))
    } else {
        format!("requires at least {min} and at most {max} {}", word(max))
    }
}

fn context(e: &clap::Error, k: ContextKind) -> Option<String> {
    match e.get(k)? {
        ContextValue::String(s) => Some(s.clone()),
        ContextValue::Strings(v) => v.first().cloned(),
        _ => None,
    }
}

/// The flag as Docker names it in messages: `-n, --last` or `--cpus`.
fn flag_name(cmd: &clap::Command, shown: &str) -> String {
    let long = shown
        .split([' ', '='])
        .next()
        .unwrap_or(shown)
        .trim_start_matches('-');
    let arg = cmd.get_arguments().find(|a| {
        a.get_long() == Some(long) || a.get_short().map(String::from).as_deref() == Some(long)
    });
    match arg {
        Some(a) => match (a.get_short(), a.get_long()) {
            (Some(s), Some(l)) => format!("-{s}, --{l}"),
            (None, Some(l)) => format!("--{l}"),
            (Some(s), None) => format!("-{s}"),
            (None, None) => shown.to_string(),
        },
        None => shown.to_string(),
    }
}

/// Prints a parse error as Docker 20.10's CLI does and returns its exit code.
pub fn report(e: &clap::Error) -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (path, mut cmd) = command_path(&args);
    let full = std::iter::once(PROGRAM.to_string())
        .chain(path.iter().cloned())
        .collect::<Vec<_>>()
        .join(" ");
    let see = format!("See '{full} --help'.");
    let flag_error = |m: String| {
        eprintln!("{m}\n{see}");
        ExitCode::from(125)
    };
    // `"strata run" requires at least 1 argument.`, the usage line and what it does.
    let count_error = |cmd: &clap::Command| {
        let about = cmd.get_about().map(|a| a.to_string()).unwrap_or_default();
        eprintln!(
            "\"{full}\" {}.\n{see}\n\n{}\n\n{about}",
            count_message(cmd),
            usage_line(&path, cmd)
        );
        ExitCode::from(1)
    };
    match e.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            ExitCode::SUCCESS
        }
        ErrorKind::UnknownArgument => {
            let bad = context(e, ContextKind::InvalidArg).unwrap_or_default();
            let bad = bad.split('=').next().unwrap_or(&bad).to_string();
            if let Some(long) = bad.strip_prefix("--") {
                flag_error(format!("unknown flag: --{long}"))
            } else if let Some(shorts) = bad.strip_prefix('-') {
                let c = shorts
                    .chars()
                    .find(|c| cmd.get_arguments().all(|a| a.get_short() != Some(*c)))
                    .unwrap_or('?');
                flag_error(format!("unknown shorthand flag: '{c}' in {bad}"))
            } else {
                count_error(&cmd)
            }
        }
        ErrorKind::InvalidSubcommand => {
            let bad = context(e, ContextKind::InvalidSubcommand).unwrap_or_default();
            if path.is_empty() {
                eprintln!("{PROGRAM}: '{bad}' is not a {PROGRAM} command.\nSee '{PROGRAM} --help'");
            } else {
                // A group given an unknown command: its help, on stderr.
                eprintln!("\n{}", cmd.render_help());
            }
            ExitCode::from(1)
        }
        ErrorKind::MissingRequiredArgument | ErrorKind::WrongNumberOfValues
            if context(e, ContextKind::InvalidArg).is_none_or(|a| !a.starts_with('-')) =>
        {
            count_error(&cmd)
        }
        ErrorKind::ValueValidation | ErrorKind::InvalidValue => {
            let arg = context(e, ContextKind::InvalidArg).unwrap_or_default();
            let value = context(e, ContextKind::InvalidValue).unwrap_or_default();
            let reason = std::error::Error::source(e)
                .map(|s| s.to_string())
                .or_else(|| match e.get(ContextKind::ValidValue) {
                    Some(ContextValue::Strings(v)) => {
                        Some(format!("valid values are {}", v.join(", ")))
                    }
                    _ => None,
                })
                .unwrap_or_else(|| "invalid value".into());
            flag_error(format!(
                "invalid argument {value:?} for {:?} flag: {reason}",
                flag_name(&cmd, &arg)
            ))
        }
        _ => {
            let text = e.render().to_string();
            let first = text
                .lines()
                .next()
                .unwrap_or("")
                .trim_start_matches("error: ")
                .to_string();
            flag_error(first)
        }
    }
}
