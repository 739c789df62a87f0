//! The order advisor (strata's rule `CacheBustingOrder`): a `COPY`/`ADD` of files that change
//! often, placed before an expensive step that does not need them, makes every edit of those
//! files re-run the expensive step (the tutorial's "order matters").
//!
//! "Often" is the share of the context's last commits that touched the copied files
//! ([`ChangeLog`], from [`crate::git`]); without a git history, the share of recorded builds
//! in which the `COPY` missed ([`StepHistory::misses`]); without either, a whole-context or
//! directory `COPY` is assumed to change on every edit. "Expensive" is the step's recorded
//! duration ([`StepHistory::duration`]); without a record, a `RUN` that installs packages is
//! assumed to take [`ASSUMED_INSTALL`]. The expected cost per edit is the probability that an
//! edit changes the copied files times the duration of the step it re-runs needlessly.
//!
//! Everything here is pure: the caller supplies the context's files, the change log and the
//! build records.

use std::collections::BTreeSet;
use std::time::Duration;

use dockerfile::{Command, Dockerfile, Instruction};

use crate::Finding;

/// The rule's name.
pub const RULE_CACHE_BUSTING_ORDER: &str = "CacheBustingOrder";

/// What a package-installing `RUN` is assumed to take when no build recorded it.
pub const ASSUMED_INSTALL: Duration = Duration::from_secs(30);

/// Steps shorter than this are not worth reordering for.
pub const EXPENSIVE: Duration = Duration::from_secs(1);

/// What strata's build records know about a step (a step is named by its stage, its first
/// line and its instruction text).
pub trait StepHistory {
    /// How long the step took when it last ran.
    fn duration(&self, stage: usize, line: usize, text: &str) -> Option<Duration>;
    /// In how many of the recorded builds the step missed the cache because its own inputs
    /// changed (for a `COPY`: its files), out of how many: `(changed, builds)`.
    fn misses(&self, stage: usize, line: usize, text: &str) -> Option<(u32, u32)>;
}

/// No build records.
pub struct NoHistory;

impl StepHistory for NoHistory {
    fn duration(&self, _: usize, _: usize, _: &str) -> Option<Duration> {
        None
    }
    fn misses(&self, _: usize, _: usize, _: &str) -> Option<(u32, u32)> {
        None
    }
}

/// The files each of the context's last commits touched (paths relative to the context),
/// newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangeLog {
    /// One entry per commit.
    pub commits: Vec<Vec<String>>,
}

impl ChangeLog {
    /// How many commits touched any of `files`.
    pub fn touching(&self, files: &BTreeSet<String>) -> usize {
        self.commits
            .iter()
            .filter(|c| c.iter().any(|p| files.contains(p)))
            .count()
    }
}

/// What the advisor looks at.
pub struct Inputs<'a> {
    /// The lowered Dockerfile.
    pub dockerfile: &'a Dockerfile,
    /// The context's files (relative paths, `.dockerignore` applied).
    pub files: &'a [String],
    /// The context's git history, when there is one.
    pub changes: Option<&'a ChangeLog>,
    /// strata's build records.
    pub history: &'a dyn StepHistory,
}

/// A finding with the reordering that fixes it, when one can be made safely.
#[derive(Debug, Clone, PartialEq)]
pub struct Advice {
    /// The finding (both lines, the cost, the fix in words).
    pub finding: Finding,
    /// The expected cost per edit, in seconds.
    pub cost: f64,
    /// The rewrite.
    pub fix: Option<Fix>,
}

/// Move the `COPY` at `copy` (first and last line) to just after the `RUN` at `run`, and put
/// `insert` (a `COPY` of only the files the `RUN` needs) just before the `RUN`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fix {
    /// Lines of the offending `COPY`.
    pub copy: (usize, usize),
    /// Lines of the `RUN`.
    pub run: (usize, usize),
    /// An instruction to put before the `RUN`.
    pub insert: Option<String>,
}

/// A file a `COPY` puts into the image.
#[derive(Debug, Clone)]
struct Copied {
    /// Path in the context.
    src: String,
    /// Absolute path in the image.
    dest: String,
}

struct CopyStep<'a> {
    ins: &'a Instruction,
    files: Vec<Copied>,
    /// Copies a directory or the whole context (not named files).
    broad: bool,
    flags: Vec<String>,
    keyword: String,
    /// The destination depends on the working directory.
    relative_dest: bool,
}

/// Runs the advisor over every stage.
pub fn advise(inputs: &Inputs<'_>) -> Vec<Advice> {
    let mut out = Vec::new();
    for stage in &inputs.dockerfile.stages {
        let mut workdir = Some("/".to_string());
        let mut copies: Vec<CopyStep<'_>> = Vec::new();
        // Index in `stage.instructions` of each copy.
        let mut copy_pos: Vec<usize> = Vec::new();
        for (pos, ins) in stage.instructions.iter().enumerate() {
            match &ins.command {
                Command::Workdir(w) => {
                    workdir = match (&workdir, w.contains('$')) {
                        (_, true) | (None, _) => None,
                        (Some(cur), false) => Some(join(cur, w)),
                    };
                }
                Command::Copy(_) | Command::Add(_) => {
                    if let Some(c) = workdir
                        .as_deref()
                        .and_then(|wd| copy_step(ins, wd, inputs.files))
                    {
                        copies.push(c);
                        copy_pos.push(pos);
                    }
                }
                Command::Run(run) => {
                    let Some(wd) = &workdir else { continue };
                    let text = run.cmd.args.join(" ");
                    if let Some(a) = advise_run(
                        inputs,
                        stage.index,
                        &stage.instructions,
                        pos,
                        &text,
                        wd,
                        &copies,
                        &copy_pos,
                    ) {
                        out.push(a);
                    }
                }
                _ => {}
            }
        }
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn advise_run(
    inputs: &Inputs<'_>,
    stage: usize,
    instructions: &[Instruction],
    pos: usize,
    text: &str,
    workdir: &str,
    copies: &[CopyStep<'_>],
    copy_pos: &[usize],
) -> Option<Advice> {
    let run = &instructions[pos];
    if needs_everything(text) {
        return None;
    }
    let (duration, measured) = match inputs.history.duration(stage, run.line, &run.original) {
        Some(d) => (d, true),
        None if installs_packages(text) => (ASSUMED_INSTALL, false),
        None => return None,
    };
    if duration < EXPENSIVE {
        return None;
    }
    let mut best: Option<Advice> = None;
    for (ci, copy) in copies.iter().enumerate() {
        let needed = needed_files(text, workdir, &copy.files);
        if needed.len() == copy.files.len() {
            continue;
        }
        let all: BTreeSet<String> = copy.files.iter().map(|f| f.src.clone()).collect();
        let need_set: BTreeSet<String> = needed.iter().map(|f| f.src.clone()).collect();
        let (p_all, p_need, how, how_need) = match inputs.changes {
            Some(log) if !log.commits.is_empty() => {
                let n = log.commits.len();
                let (a, b) = (log.touching(&all), log.touching(&need_set));
                (
                    a as f64 / n as f64,
                    b as f64 / n as f64,
                    format!("the copied files changed in {a} of the last {n} commits"),
                    format!("{} changed in {b} of them", names(&need_set)),
                )
            }
            _ => match inputs.history.misses(stage, copy.ins.line, &copy.ins.original) {
                Some((m, b)) if b > 0 => (
                    f64::from(m) / f64::from(b),
                    0.0,
                    format!("no git history: the copied files changed in {m} of the last {b} builds"),
                    String::new(),
                ),
                _ if copy.broad => (
                    1.0,
                    0.0,
                    "no git history or build record: a directory copy is assumed to change with every edit".to_string(),
                    String::new(),
                ),
                _ => continue,
            },
        };
        if p_all <= p_need || p_all == 0.0 {
            continue;
        }
        let secs = duration.as_secs_f64();
        let cost = p_all * secs;
        if best.as_ref().is_some_and(|b| b.cost >= cost) {
            continue;
        }
        let took = if measured {
            format!("took {secs:.1} s in the last build")
        } else {
            format!(
                "has no build record and installs packages: assumed {} s",
                ASSUMED_INSTALL.as_secs()
            )
        };
        let needs = if need_set.is_empty() {
            "needs none of them".to_string()
        } else {
            format!("needs only {}", names(&need_set))
        };
        // Files the RUN needs that an earlier COPY already puts in the same place.
        let earlier_has = |f: &Copied| {
            copies[..ci]
                .iter()
                .any(|c| c.files.iter().any(|g| g.src == f.src && g.dest == f.dest))
        };
        let to_insert: Vec<&Copied> = needed.iter().copied().filter(|f| !earlier_has(f)).collect();
        let insert = insert_copy(copy, &to_insert);
        let fix_words = match &insert {
            Some(ins) => format!(
                "{ins} first, then line {} ({}), then line {} ({})",
                run.line,
                short(&run.original),
                copy.ins.line,
                short(&copy.ins.original)
            ),
            None => format!(
                "move line {} ({}) after line {} ({})",
                copy.ins.line,
                short(&copy.ins.original),
                run.line,
                short(&run.original)
            ),
        };
        let fix_hint = if safe_to_move(instructions, copy_pos[ci], pos, copies, ci) {
            " (build --check --fix-order prints the reordered Dockerfile)"
        } else {
            ""
        };
        let message = format!(
            "Line {cl} ({copy_text}) copies files that change often before line {rl} ({run_text}), \
             which {needs}: every change to them re-runs it.\n\
             Expected cost per edit: {cost:.1} s = {p_all:.2} x {secs:.1} s ({how}; the step {took}){after}.\n\
             Fix: {fix_words}{fix_hint}.",
            cl = copy.ins.line,
            copy_text = short(&copy.ins.original),
            rl = run.line,
            run_text = short(&run.original),
            after = if p_need > 0.0 {
                format!("; {:.1} s once reordered ({how_need})", p_need * secs)
            } else {
                String::new()
            },
        );
        let movable = !fix_hint.is_empty();
        best = Some(Advice {
            finding: Finding {
                rule: RULE_CACHE_BUSTING_ORDER,
                url: String::new(),
                message,
                ranges: vec![
                    (copy.ins.line, copy.ins.end_line.max(copy.ins.line)),
                    (run.line, run.end_line.max(run.line)),
                ],
            },
            cost,
            fix: movable.then(|| Fix {
                copy: (copy.ins.line, copy.ins.end_line.max(copy.ins.line)),
                run: (run.line, run.end_line.max(run.line)),
                insert,
            }),
        });
    }
    best
}

/// Whether the `COPY` at `from` can move to just after the `RUN` at `run` without changing
/// what the steps between see or do: no `RUN` between (it might read the files), no
/// `WORKDIR` when the destination is relative, no `COPY`/`ADD` writing the same paths.
fn safe_to_move(
    instructions: &[Instruction],
    from: usize,
    run: usize,
    copies: &[CopyStep<'_>],
    ci: usize,
) -> bool {
    let copy = &copies[ci];
    for ins in &instructions[from + 1..run] {
        match &ins.command {
            Command::Run(_) | Command::Onbuild(_) => return false,
            Command::Workdir(_) if copy.relative_dest => return false,
            Command::Copy(_) | Command::Add(_) => {
                let Some(c) = copies[ci + 1..].iter().find(|c| c.ins.line == ins.line) else {
                    return false;
                };
                let overlap = c.files.iter().any(|f| {
                    copy.files.iter().any(|g| {
                        f.dest == g.dest
                            || f.dest.starts_with(&format!("{}/", g.dest))
                            || g.dest.starts_with(&format!("{}/", f.dest))
                    })
                });
                if overlap {
                    return false;
                }
            }
            _ => {}
        }
    }
    true
}

/// The `COPY` of only the needed files, with the original's flags, to where the original
/// puts them.
fn insert_copy(copy: &CopyStep<'_>, files: &[&Copied]) -> Option<String> {
    if files.is_empty() {
        return None;
    }
    let mut flags = copy.flags.join(" ");
    if !flags.is_empty() {
        flags.push(' ');
    }
    let dirs: BTreeSet<&str> = files.iter().map(|f| parent(&f.dest)).collect();
    let srcs: Vec<&str> = files.iter().map(|f| f.src.as_str()).collect();
    if dirs.len() == 1 {
        let dir = dirs.into_iter().next().unwrap_or("/");
        let dest = if dir == "/" {
            "/".to_string()
        } else {
            format!("{dir}/")
        };
        return Some(format!("{} {flags}{} {dest}", copy.keyword, srcs.join(" ")));
    }
    // One COPY per file otherwise (rare: manifests in several directories).
    Some(
        files
            .iter()
            .map(|f| format!("{} {flags}{} {}", copy.keyword, f.src, f.dest))
            .collect::<Vec<_>>()
            .join("\n"),
    )
}

fn parent(p: &str) -> &str {
    match p.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &p[..i],
    }
}

fn names(set: &BTreeSet<String>) -> String {
    let v: Vec<&str> = set.iter().map(String::as_str).collect();
    if v.len() <= 3 {
        v.join(", ")
    } else {
        format!("{}, … ({} files)", v[..3].join(", "), v.len())
    }
}

fn short(s: &str) -> String {
    let s = s.trim();
    if s.chars().count() > 60 {
        format!("{}…", s.chars().take(59).collect::<String>())
    } else {
        s.to_string()
    }
}

/// `rel` joined to the absolute directory `base`, normalised.
fn join(base: &str, rel: &str) -> String {
    let full = if rel.starts_with('/') {
        rel.to_string()
    } else {
        format!("{base}/{rel}")
    };
    let mut parts: Vec<&str> = Vec::new();
    for p in full.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}

/// The files a `COPY`/`ADD` from the context copies, and where they go; `None` for what the
/// advisor does not follow (`--from`, URLs, heredocs, variables).
fn copy_step<'a>(ins: &'a Instruction, workdir: &str, files: &[String]) -> Option<CopyStep<'a>> {
    let (sources, dest, mut flags) = match &ins.command {
        Command::Copy(c) => {
            if c.from.is_some() || !c.contents.is_empty() || c.parents {
                return None;
            }
            let mut flags = Vec::new();
            flags.extend(c.chown.as_ref().map(|v| format!("--chown={v}")));
            flags.extend(c.chmod.as_ref().map(|v| format!("--chmod={v}")));
            if c.link {
                flags.push("--link".into());
            }
            (&c.sources, &c.dest, flags)
        }
        Command::Add(a) => {
            if !a.contents.is_empty()
                || a.sources
                    .iter()
                    .any(|s| s.contains("://") || s.ends_with(".tar") || s.contains(".tar."))
            {
                return None;
            }
            let mut flags = Vec::new();
            flags.extend(a.chown.as_ref().map(|v| format!("--chown={v}")));
            flags.extend(a.chmod.as_ref().map(|v| format!("--chmod={v}")));
            (&a.sources, &a.dest, flags)
        }
        _ => return None,
    };
    flags.retain(|f| !f.contains('$'));
    if dest.contains('$') || sources.iter().any(|s| s.contains('$')) {
        return None;
    }
    let dest_abs = join(workdir, dest);
    let dest_is_dir = dest.ends_with('/') || sources.len() > 1 || dest == "." || dest == "./";
    let mut out = Vec::new();
    let mut broad = false;
    for src in sources {
        let s = dockerfile::clean_path(src.trim_start_matches('/'));
        let s = if s == "." { String::new() } else { s };
        let is_glob = s.contains(['*', '?', '[']);
        for f in files {
            if is_glob {
                // A pattern matches files or directories by their path.
                let (matched_root, rest) = match glob_prefix(&s, f) {
                    Some(r) => r,
                    None => continue,
                };
                let name = matched_root.rsplit('/').next().unwrap_or(&matched_root);
                let d = if rest.is_empty() {
                    if dest_is_dir || sources.len() > 1 {
                        format!("{dest_abs}/{name}")
                    } else {
                        dest_abs.clone()
                    }
                } else {
                    broad = true;
                    format!("{dest_abs}/{name}/{rest}")
                };
                out.push(Copied {
                    src: f.clone(),
                    dest: join("/", &d),
                });
            } else if s.is_empty() || f.starts_with(&format!("{s}/")) {
                // A directory: its contents go into the destination.
                broad = true;
                let rest = if s.is_empty() {
                    f.as_str()
                } else {
                    &f[s.len() + 1..]
                };
                out.push(Copied {
                    src: f.clone(),
                    dest: join(&dest_abs, rest),
                });
            } else if *f == s {
                let name = s.rsplit('/').next().unwrap_or(&s);
                let d = if dest_is_dir {
                    join(&dest_abs, name)
                } else {
                    dest_abs.clone()
                };
                out.push(Copied {
                    src: f.clone(),
                    dest: d,
                });
            }
        }
    }
    if out.is_empty() {
        return None;
    }
    let keyword = ins
        .original
        .split_whitespace()
        .next()
        .unwrap_or("COPY")
        .to_string();
    Some(CopyStep {
        ins,
        files: out,
        broad,
        flags,
        keyword,
        relative_dest: !dest.starts_with('/'),
    })
}

/// Whether the glob `pattern` matches `path` or one of its parent directories; returns the
/// matched part and the rest.
fn glob_prefix(pattern: &str, path: &str) -> Option<(String, String)> {
    let pp: Vec<&str> = pattern.split('/').collect();
    let fp: Vec<&str> = path.split('/').collect();
    if fp.len() < pp.len() {
        return None;
    }
    for (p, f) in pp.iter().zip(&fp) {
        if !glob(p.as_bytes(), f.as_bytes()) {
            return None;
        }
    }
    Some((fp[..pp.len()].join("/"), fp[pp.len()..].join("/")))
}

/// `*`, `?` and `[...]` on one path component.
fn glob(p: &[u8], s: &[u8]) -> bool {
    match (p.first(), s.first()) {
        (None, None) => true,
        (Some(b'*'), _) => glob(&p[1..], s) || (!s.is_empty() && glob(p, &s[1..])),
        (Some(b'?'), Some(_)) => glob(&p[1..], &s[1..]),
        (Some(b'['), Some(c)) => match p.iter().position(|&b| b == b']') {
            Some(end) => {
                let class = &p[1..end];
                let (neg, class) = match class.first() {
                    Some(b'^' | b'!') => (true, &class[1..]),
                    _ => (false, class),
                };
                let mut hit = false;
                let mut i = 0;
                while i < class.len() {
                    if i + 2 < class.len() && class[i + 1] == b'-' {
                        hit |= class[i] <= *c && *c <= class[i + 2];
                        i += 3;
                    } else {
                        hit |= class[i] == *c;
                        i += 1;
                    }
                }
                hit != neg && glob(&p[end + 1..], &s[1..])
            }
            None => false,
        },
        (Some(a), Some(b)) => a == b && glob(&p[1..], &s[1..]),
        _ => false,
    }
}

/// Dependency manifests that package tools read without being told their names.
const MANIFESTS: [(&str, &[&str]); 9] = [
    (
        "npm",
        &[
            "package.json",
            "package-lock.json",
            "npm-shrinkwrap.json",
            ".npmrc",
        ],
    ),
    (
        "yarn",
        &["package.json", "yarn.lock", ".yarnrc", ".yarnrc.yml"],
    ),
    (
        "pnpm",
        &["package.json", "pnpm-lock.yaml", "pnpm-workspace.yaml"],
    ),
    ("go mod", &["go.mod", "go.sum"]),
    ("cargo fetch", &["Cargo.toml", "Cargo.lock"]),
    ("bundle", &["Gemfile", "Gemfile.lock"]),
    ("composer", &["composer.json", "composer.lock"]),
    ("poetry", &["pyproject.toml", "poetry.lock"]),
    ("pipenv", &["Pipfile", "Pipfile.lock"]),
];

/// Commands that install packages (the heuristic for an expensive step without a record).
fn installs_packages(cmd: &str) -> bool {
    const INSTALLERS: [&str; 20] = [
        "pip install",
        "pip3 install",
        "python -m pip install",
        "npm install",
        "npm ci",
        "npm i ",
        "yarn install",
        "pnpm install",
        "apt-get install",
        "apt install",
        "apk add",
        "dnf install",
        "yum install",
        "go mod download",
        "cargo fetch",
        "bundle install",
        "composer install",
        "poetry install",
        "pipenv install",
        "gem install",
    ];
    let c = cmd.split_whitespace().collect::<Vec<_>>().join(" ");
    INSTALLERS.iter().any(|i| c.contains(i)) || c.trim() == "yarn" || c.ends_with("&& yarn")
}

/// Commands that build from all the sources (they need everything copied).
fn needs_everything(cmd: &str) -> bool {
    const BUILDERS: [&str; 9] = [
        "go build",
        "go install",
        "cargo build",
        "cargo install",
        "mvn ",
        "gradle",
        "make",
        "npm run",
        "pip install .",
    ];
    let c = cmd.split_whitespace().collect::<Vec<_>>().join(" ");
    BUILDERS.iter().any(|b| c.contains(b)) || c.ends_with("pip install .")
}

/// The copied files the command refers to: by a path word (relative to the working
/// directory, or absolute; a directory word means everything under it), or as a manifest
/// its package tool reads from the working directory.
fn needed_files<'a>(cmd: &str, workdir: &str, files: &'a [Copied]) -> Vec<&'a Copied> {
    let mut paths: Vec<String> = Vec::new();
    let words: Vec<&str> = cmd
        .split(|c: char| c.is_whitespace() || ";&|<>()'\"=,`".contains(c))
        .filter(|w| !w.is_empty())
        .collect();
    let mut after_cd = false;
    for w in &words {
        if after_cd {
            after_cd = false;
            continue;
        }
        if *w == "cd" {
            after_cd = true;
            continue;
        }
        if w.starts_with('-') || w.starts_with('$') || w.contains("://") {
            continue;
        }
        paths.push(join(workdir, w));
    }
    let flat = words.join(" ");
    for (tool, manifests) in MANIFESTS {
        if flat.contains(tool) {
            paths.extend(manifests.iter().map(|m| join(workdir, m)));
        }
    }
    files
        .iter()
        .filter(|f| {
            paths
                .iter()
                .any(|p| f.dest == *p || (p != "/" && f.dest.starts_with(&format!("{p}/"))))
        })
        .collect()
}

/// The Dockerfile with every fix applied (from the bottom up, skipping fixes that overlap),
/// or `None` when none can be applied.
pub fn fix_order(text: &str, advice: &[Advice]) -> Option<String> {
    let mut fixes: Vec<&Fix> = advice.iter().filter_map(|a| a.fix.as_ref()).collect();
    if fixes.is_empty() {
        return None;
    }
    fixes.sort_by_key(|f| std::cmp::Reverse(f.copy.0));
    let mut lines: Vec<String> = text.split_inclusive('\n').map(str::to_string).collect();
    if let Some(l) = lines.last_mut() {
        if !l.ends_with('\n') {
            l.push('\n');
        }
    }
    let mut lowest = usize::MAX;
    for f in fixes {
        if f.run.1 >= lowest || f.run.1 > lines.len() || f.copy.1 >= f.run.0 {
            continue;
        }
        let (c0, c1, r0, r1) = (f.copy.0 - 1, f.copy.1, f.run.0 - 1, f.run.1);
        let mut new: Vec<String> = lines[..c0].to_vec();
        new.extend_from_slice(&lines[c1..r0]);
        if let Some(i) = &f.insert {
            new.extend(i.lines().map(|l| format!("{l}\n")));
        }
        new.extend_from_slice(&lines[r0..r1]);
        new.extend_from_slice(&lines[c0..c1]);
        new.extend_from_slice(&lines[r1..]);
        lines = new;
        lowest = f.copy.0;
    }
    Some(lines.concat())
}

#[cfg(test)]
mod tests {
    use super::*;

    const BAD: &str = "FROM py:1\nWORKDIR /app\nCOPY . /app\nRUN pip install -r requirements.txt\nCMD [\"sh\", \"/app/api.sh\"]\n";
    const GOOD: &str = "FROM py:1\nWORKDIR /app\nCOPY requirements.txt /app/\nRUN pip install -r requirements.txt\nCOPY . /app\nCMD [\"sh\", \"/app/api.sh\"]\n";

    fn files() -> Vec<String> {
        [
            "requirements.txt",
            "app/api.py",
            "app/util.py",
            "Dockerfile",
        ]
        .map(String::from)
        .to_vec()
    }

    fn log() -> ChangeLog {
        // 4 commits: app code in 3 of them, requirements.txt in 1.
        ChangeLog {
            commits: vec![
                vec!["app/api.py".into()],
                vec!["app/util.py".into(), "app/api.py".into()],
                vec!["app/api.py".into()],
                vec!["requirements.txt".into(), "Dockerfile".into()],
            ],
        }
    }

    fn run(text: &str, changes: Option<&ChangeLog>, history: &dyn StepHistory) -> Vec<Advice> {
        let df = dockerfile::parse_and_lower(text, &Default::default()).unwrap();
        let files = files();
        advise(&Inputs {
            dockerfile: &df,
            files: &files,
            changes,
            history,
        })
    }

    #[test]
    fn tutorial_bad_order_is_flagged_with_both_lines_and_cost() {
        let log = log();
        let a = run(BAD, Some(&log), &NoHistory);
        assert_eq!(a.len(), 1, "{a:#?}");
        let f = &a[0].finding;
        assert_eq!(f.ranges, vec![(3, 3), (4, 4)]);
        // Every commit touched the copied files: 1.00 x 30 s.
        assert!((a[0].cost - 30.0).abs() < 1e-9, "{}", a[0].cost);
        assert!(
            f.message.contains("Expected cost per edit: 30.0 s"),
            "{}",
            f.message
        );
        assert!(
            f.message.contains("needs only requirements.txt"),
            "{}",
            f.message
        );
        assert!(f.message.contains("7.5 s once reordered"), "{}", f.message);
        let fix = a[0].fix.as_ref().unwrap();
        assert_eq!(fix.insert.as_deref(), Some("COPY requirements.txt /app/"));
        let fixed = fix_order(BAD, &a).unwrap();
        assert_eq!(
            fixed,
            "FROM py:1\nWORKDIR /app\nCOPY requirements.txt /app/\nRUN pip install -r requirements.txt\nCOPY . /app\nCMD [\"sh\", \"/app/api.sh\"]\n"
        );
        // The fixed file is quiet.
        assert!(run(&fixed, Some(&log), &NoHistory).is_empty());
    }

    #[test]
    fn good_order_is_quiet() {
        assert!(run(GOOD, Some(&log()), &NoHistory).is_empty());
        assert!(run(GOOD, None, &NoHistory).is_empty());
    }

    struct Records;
    impl StepHistory for Records {
        fn duration(&self, _: usize, line: usize, _: &str) -> Option<Duration> {
            (line == 4).then(|| Duration::from_millis(12_500))
        }
        fn misses(&self, _: usize, line: usize, _: &str) -> Option<(u32, u32)> {
            (line == 3).then_some((3, 4))
        }
    }

    #[test]
    fn build_records_give_duration_and_miss_rate() {
        let a = run(BAD, None, &Records);
        assert_eq!(a.len(), 1);
        assert!((a[0].cost - 0.75 * 12.5).abs() < 1e-9);
        assert!(a[0]
            .finding
            .message
            .contains("the copied files changed in 3 of the last 4 builds"));
        assert!(a[0].finding.message.contains("took 12.5 s"));
        // A quick step is no reason to reorder.
        struct Quick;
        impl StepHistory for Quick {
            fn duration(&self, _: usize, _: usize, _: &str) -> Option<Duration> {
                Some(Duration::from_millis(200))
            }
            fn misses(&self, _: usize, _: usize, _: &str) -> Option<(u32, u32)> {
                None
            }
        }
        assert!(run(BAD, None, &Quick).is_empty());
    }

    #[test]
    fn step_needing_nothing_moves_up() {
        let text = "FROM deb:1\nCOPY app /app\nRUN apt-get install -y curl\n";
        let a = run(text, None, &NoHistory);
        assert_eq!(a.len(), 1);
        assert!(a[0].finding.message.contains("needs none of them"));
        assert_eq!(
            fix_order(text, &a).unwrap(),
            "FROM deb:1\nRUN apt-get install -y curl\nCOPY app /app\n"
        );
    }

    #[test]
    fn unsafe_moves_are_reported_without_a_fix() {
        let text = "FROM py:1\nWORKDIR /app\nCOPY . /app\nRUN echo hi\nRUN pip install -r requirements.txt\n";
        let a = run(text, None, &NoHistory);
        assert_eq!(a.len(), 1);
        assert!(a[0].fix.is_none());
        assert!(fix_order(text, &a).is_none());
    }

    #[test]
    fn steps_between_stay_before_the_run() {
        // The RUN needs line 4's file: the offending COPY moves down, the rest stays.
        let text = "FROM py:1\nWORKDIR /app\nCOPY app /app/app\nCOPY requirements.txt .\nENV X=1\nRUN pip install -r requirements.txt\n";
        let a = run(text, None, &NoHistory);
        assert_eq!(a.len(), 1, "{a:#?}");
        assert!(a[0].finding.message.contains("needs none of them"));
        assert!(a[0]
            .finding
            .message
            .contains("Fix: move line 3 (COPY app /app/app) after line 6"));
        assert_eq!(
            fix_order(text, &a).unwrap(),
            "FROM py:1\nWORKDIR /app\nCOPY requirements.txt .\nENV X=1\nRUN pip install -r requirements.txt\nCOPY app /app/app\n"
        );
    }

    #[test]
    fn builds_and_whole_source_installs_need_everything() {
        for cmd in ["pip install .", "make", "go build ./..."] {
            let text = format!("FROM py:1\nWORKDIR /app\nCOPY . /app\nRUN {cmd}\n");
            assert!(run(&text, Some(&log()), &NoHistory).is_empty(), "{cmd}");
        }
    }

    #[test]
    fn globs() {
        assert!(glob(b"*.txt", b"requirements.txt"));
        assert!(!glob(b"*.txt", b"a.py"));
        assert!(glob(b"re[a-z]*", b"req"));
        assert_eq!(
            glob_prefix("app/*", "app/x/y.py"),
            Some(("app/x".into(), "y.py".into()))
        );
    }
}
