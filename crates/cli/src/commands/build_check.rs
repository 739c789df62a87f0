//! `strata build --check [--fix-order] PATH`: BuildKit's build checks and strata's order
//! advisor, building nothing. The output is `docker build --check`'s: a summary line, then
//! each warning with its rule, URL, message and the Dockerfile lines; the exit status is 1
//! when a warning was found, as Docker's (with `# check=error=true` the build error
//! `lint violation found for rules: …` follows). `--fix-order` prints the Dockerfile reordered
//! as the order advisor suggests instead.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::cli::BuildArgs;
use crate::Failure;

/// How many commits of the context's history say how often files change.
const HISTORY_COMMITS: usize = 50;

pub fn run(root: &Path, a: &BuildArgs) -> Result<()> {
    if a.context == "-" {
        return Err(Failure::new(1, "--check needs a context directory, not -").into());
    }
    let context = PathBuf::from(&a.context);
    if !context.is_dir() {
        return Err(Failure::new(
            1,
            format!("unable to prepare context: path {:?} not found", a.context),
        )
        .into());
    }
    // Docker names the Dockerfile as the client was given it.
    let (path, shown) = match a.file.as_deref() {
        Some("-") => {
            return Err(Failure::new(1, "--check reads the Dockerfile from a file, not -").into())
        }
        Some(f) if Path::new(f).is_absolute() || Path::new(f).exists() => {
            (PathBuf::from(f), f.to_string())
        }
        Some(f) => (context.join(f), f.to_string()),
        None => {
            let p = context.join("Dockerfile");
            let shown = p.to_string_lossy().trim_start_matches("./").to_string();
            (p, shown)
        }
    };
    let text = fs::read_to_string(&path).map_err(|e| {
        Failure::new(
            1,
            format!("unable to prepare context: {}: {e}", path.display()),
        )
    })?;
    let ast = dockerfile::parse(&text).map_err(|e| Failure::new(1, e.to_string()))?;
    let options = ast
        .check_options()
        .map_err(|e| Failure::new(1, e.to_string()))?
        .unwrap_or_default();

    let store = super::open_store(root)?;
    let base_env = |name: &str| -> Option<Vec<(String, String)>> {
        let id = image::resolve(&store, name).ok()?;
        let config = image::read_config(&store, &id).ok()?;
        let env = config.config.and_then(|c| c.env).unwrap_or_default();
        Some(
            env.iter()
                .map(|e| match e.split_once('=') {
                    Some((k, v)) => (k.to_string(), v.to_string()),
                    None => (e.clone(), String::new()),
                })
                .collect(),
        )
    };
    let mut findings = check::buildkit_rules(&ast, &base_env);

    let df_opts = dockerfile::BuildOptions {
        build_args: a
            .build_args
            .iter()
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        target: a.target.clone(),
        classic: true,
        ..Default::default()
    };
    let lowered = dockerfile::lower(&ast, &df_opts);
    let mut advice = Vec::new();
    if let Ok(df) = &lowered {
        let ignore = dockerignore(&path, &context)?;
        let files = context_files(&context, ignore.as_ref());
        let changes = match check::git::changes(&context, HISTORY_COMMITS) {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!("{e}");
                None
            }
        };
        let history = super::build_history::records(&store, &context, &path);
        advice = check::order::advise(&check::order::Inputs {
            dockerfile: df,
            files: &files,
            changes: changes.as_ref(),
            history: history.as_ref(),
        });
        findings.extend(advice.iter().map(|a| a.finding.clone()));
    }
    let findings = check::apply_options(findings, &options);

    if a.fix_order {
        let advice: Vec<_> = if options.skip_all
            || options
                .skip
                .iter()
                .any(|s| s == check::order::RULE_CACHE_BUSTING_ORDER)
        {
            Vec::new()
        } else {
            advice
        };
        match check::order::fix_order(&text, &advice) {
            Some(fixed) => print!("{fixed}"),
            None => {
                eprintln!("nothing to reorder");
                print!("{text}");
            }
        }
        return Ok(());
    }

    let mut out = String::new();
    if !findings.is_empty() {
        out.push_str(&check::summary_line(findings.len()));
        out.push('\n');
        out.push_str(&check::render(&findings, &shown, &text));
    }
    if let Err(e) = &lowered {
        print!("{out}");
        return Err(Failure::new(1, e.to_string()).into());
    }
    if findings.is_empty() {
        out.push_str(&check::summary_line(0));
        out.push('\n');
    }
    print!("{out}");
    if options.error {
        if let Some(msg) = check::error_message(&findings) {
            println!();
            return Err(Failure::bare(1, format!("ERROR: {msg}")).into());
        }
    }
    if !findings.is_empty() {
        // Docker's `--check` exits 1 when it found something.
        return Err(Failure::bare(1, "").into());
    }
    Ok(())
}

/// The `.dockerignore` that applies (`NAME.dockerignore` beside the Dockerfile wins).
fn dockerignore(dockerfile: &Path, context: &Path) -> Result<Option<dockerfile::DockerIgnore>> {
    let name = dockerfile
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let candidates = [
        dockerfile.with_file_name(format!("{name}.dockerignore")),
        context.join(".dockerignore"),
    ];
    match candidates.iter().find_map(|c| fs::read_to_string(c).ok()) {
        Some(t) => {
            Ok(Some(dockerfile::DockerIgnore::parse(&t).map_err(|e| {
                Failure::new(1, format!(".dockerignore: {e}"))
            })?))
        }
        None => Ok(None),
    }
}

/// The context's files (not directories), relative, sorted, `.dockerignore` applied; `.git`
/// left out.
fn context_files(context: &Path, ignore: Option<&dockerfile::DockerIgnore>) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![(context.to_path_buf(), String::new())];
    while let Some((dir, rel)) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let path = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            if path == ".git" || ignore.is_some_and(|i| i.matches(&path)) {
                continue;
            }
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push((e.path(), path)),
                Ok(_) => out.push(path),
                Err(_) => {}
            }
        }
    }
    out.sort();
    out
}
