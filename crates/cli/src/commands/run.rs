//! `strata run`, `create`, `start`, `restart`, `exec` and the hidden `container-monitor` that keeps a detached
//! container company. The logic is in the container crate.

use std::fs;
use std::path::Path;

use anyhow::Result;
use container::{CreateOptions, StartIo};

use crate::cli::{ContainerArg, ExecArgs, RunArgs, StartArgs, StopArgs};
use crate::Failure;

fn exit_code(e: &container::Error) -> u8 {
    match e {
        // The CLI's own lookups fail with 1, as Docker's do.
        container::Error::Store(store::Error::ContainerNotFound(_))
        | container::Error::NotRunning(_)
        | container::Error::PausedExec(_) => 1,
        e => e.exit_code().clamp(1, 255) as u8,
    }
}

fn fail(e: container::Error) -> anyhow::Error {
    Failure::new(exit_code(&e), e.to_string()).into()
}

/// A daemon error of `create` or `exec`, with Docker's prefix.
fn daemon(e: container::Error) -> anyhow::Error {
    Failure::daemon(exit_code(&e), e).into()
}

/// A daemon error of `run` as Docker's CLI prints it: `docker: Error response from daemon:
/// MESSAGE.`, and where to find help when the container could not be made (Docker's
/// `reportError`: one final period; no help for what fails only at the start).
fn run_failure(code: u8, e: &container::Error) -> anyhow::Error {
    run_message(
        code,
        &format!("Error response from daemon: {e}"),
        !e.at_start(),
    )
}

fn run_message(code: u8, message: &str, help: bool) -> anyhow::Error {
    let p = crate::PROGRAM;
    let mut m = format!("{p}: {}.", message.trim_end_matches('.'));
    if help && code == 125 {
        m.push_str(&format!("\nSee '{p} run --help'."));
    }
    Failure::bare(code, m).into()
}

/// Checks the flags of `run`/`create` and turns them into options; a refused value as
/// Docker's CLI prints it: a flag's own parse error (`invalid argument "X" for "--flag"
/// flag: …`) as it is, the checks after parsing behind `docker: ` with a final period,
/// both followed by where to find help, exit 125.
fn validate(a: &RunArgs, command: &str) -> Result<CreateOptions> {
    let checked = check_publish(a).and_then(|()| options(a)).and_then(|o| {
        if a.rm && o.restart.is_some() {
            return Err(Failure::new(125, "Conflicting options: --restart and --rm").into());
        }
        Ok(o)
    });
    checked.map_err(|e| match e.downcast::<Failure>() {
        Ok(f) if f.code == 125 && !f.bare => {
            let p = crate::PROGRAM;
            let help = format!("See '{p} {command} --help'.");
            let m = if f.message.starts_with("invalid argument ") {
                format!("{}\n{help}", f.message)
            } else {
                format!("{p}: {}.\n{help}", f.message.trim_end_matches('.'))
            };
            Failure::bare(125, m).into()
        }
        Ok(f) => f.into(),
        Err(e) => e,
    })
}

/// Docker's memory sizes: `512`, `64k`, `6m`, `1g` (binary units, optional `b`).
fn parse_memory(s: &str) -> Result<u64> {
    parse_size("-m, --memory", s)
}

/// A size flag (`-m, --memory`, `--memory-swap`) as Docker's `RAMInBytes` reads it, with
/// the CLI's error.
pub(crate) fn parse_size(flag: &str, s: &str) -> Result<u64> {
    let t = s.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1u64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        Some('t') => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    let n: f64 = num
        .parse()
        .ok()
        .filter(|n: &f64| n.is_finite() && *n >= 0.0)
        .ok_or_else(|| {
            Failure::new(
                125,
                format!("invalid argument \"{s}\" for \"{flag}\" flag: invalid size: '{s}'"),
            )
        })?;
    Ok((n * mult as f64) as u64)
}

/// `--memory-swap`: a size, or -1 for unlimited swap.
pub(crate) fn parse_swap(s: &str) -> Result<i64> {
    if s.trim() == "-1" {
        return Ok(-1);
    }
    Ok(parse_size("--memory-swap", s)? as i64)
}

/// `-e K=V`, `-e K` (from this environment, dropped when unset) and `--env-file` lines.
fn environment(a: &RunArgs) -> Result<Vec<String>> {
    let mut items = Vec::new();
    for f in &a.env_file {
        let text = fs::read_to_string(f).map_err(|e| {
            Failure::new(125, format!("open {}: {}", f.display(), super::io_text(&e)))
        })?;
        for line in text.lines() {
            let l = line.trim_start();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            items.push(l.to_string());
        }
    }
    items.extend(a.env.iter().cloned());
    let mut out = Vec::new();
    for it in items {
        if it.contains('=') {
            if it.starts_with('=') {
                return Err(Failure::new(
                    125,
                    format!(
                        "invalid argument \"{it}\" for \"-e, --env\" flag: invalid environment variable: {it}"
                    ),
                )
                .into());
            }
            out.push(it);
        } else if let Ok(v) = std::env::var(&it) {
            out.push(format!("{it}={v}"));
        }
    }
    Ok(out)
}

fn options(a: &RunArgs) -> Result<CreateOptions> {
    Ok(CreateOptions {
        name: a.name.clone(),
        args: a.command.clone(),
        entrypoint: a.entrypoint.clone(),
        env: environment(a)?,
        workdir: a.workdir.clone(),
        user: a.user.clone(),
        hostname: a.hostname.clone(),
        network: a.network.clone(),
        network_aliases: a.network_aliases.clone(),
        ip: a.ip.clone(),
        networks: Vec::new(),
        publish: a.publish.clone(),
        publish_all: a.publish_all,
        expose: a.expose.clone(),
        extra_hosts: a.add_host.clone(),
        shm_size: a
            .shm_size
            .as_deref()
            .map(|v| parse_size("--shm-size", v))
            .transpose()?,
        ulimits: a.ulimits.clone(),
        dns: a.dns.clone(),
        dns_search: a.dns_search.clone(),
        dns_options: a.dns_options.clone(),
        volumes: a.volumes.clone(),
        tmpfs: a.tmpfs.clone(),
        mounts: a.mounts.clone(),
        volumes_from: a.volumes_from.clone(),
        read_only: a.read_only,
        cap_add: a.cap_add.clone(),
        cap_drop: a.cap_drop.clone(),
        privileged: a.privileged,
        memory: a.memory.as_deref().map(parse_memory).transpose()?,
        memory_swap: a.memory_swap.as_deref().map(parse_swap).transpose()?,
        nano_cpus: a
            .cpus
            .as_deref()
            .map(super::update::parse_cpus)
            .transpose()?,
        cpu_shares: a.cpu_shares.map(|c| c.max(0) as u64),
        cpuset_cpus: a.cpuset_cpus.clone(),
        pids_limit: a.pids_limit,
        restart: (a.restart != "no").then(|| a.restart.clone()),
        interactive: a.interactive,
        stdin_once: false,
        tty: a.tty,
        init: a.init,
        stop_signal: a.stop_signal.clone(),
        stop_timeout: a.stop_timeout,
        auto_remove: a.rm,
        security_opt: security_opts(&a.security_opt)?,
        devices: a
            .devices
            .iter()
            .map(|d| runtime::DeviceMapping::parse(d).map(Into::into))
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| Failure::new(125, e.to_string()))?,
        labels: a.labels.clone(),
        device_cgroup_rules: a
            .device_cgroup_rules
            .iter()
            .map(|r| runtime::DeviceRule::parse(r).map(|_| r.clone()))
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| Failure::new(125, e.to_string()))?,
    })
}

/// `--security-opt` as Docker's CLI reads it: `KEY=VALUE` (or the deprecated `KEY:VALUE`),
/// or a bare `no-new-privileges`; `seccomp=FILE` is replaced by the file's compacted JSON.
fn security_opts(opts: &[String]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for opt in opts {
        let kv = opt.split_once('=').or_else(|| {
            (opt != "no-new-privileges")
                .then(|| opt.split_once(':'))
                .flatten()
        });
        let Some((k, v)) = kv else {
            if opt == "no-new-privileges" {
                out.push(opt.clone());
                continue;
            }
            return Err(Failure::new(125, format!("Invalid --security-opt: {opt:?}")).into());
        };
        if k == "seccomp" && v != "unconfined" {
            let text = fs::read_to_string(v).map_err(|e| {
                Failure::new(
                    125,
                    format!(
                        "opening seccomp profile ({v}) failed: open {v}: {}",
                        super::io_text(&e)
                    ),
                )
            })?;
            let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
                Failure::new(
                    125,
                    format!("compacting json for seccomp profile ({v}) failed: {e}"),
                )
            })?;
            out.push(format!("seccomp={json}"));
            continue;
        }
        out.push(opt.clone());
    }
    Ok(out)
}

pub(crate) fn monitor_command(root: &Path, id: &str) -> Result<std::process::Command> {
    let exe = std::env::current_exe()?;
    let mut cmd = std::process::Command::new(exe);
    cmd.env("STRATA_ROOT", root)
        .arg("container-monitor")
        .arg(id);
    Ok(cmd)
}

fn exit_with(code: i32) -> Result<()> {
    if code == 0 {
        Ok(())
    } else {
        Err(Failure::new(code.clamp(1, 255) as u8, "").into())
    }
}

/// Pulls the image of `run`/`create` when `--pull` asks for it: `missing` (the default)
/// when the store lacks it, announced as Docker does; `always` every time. Progress goes to
/// standard error, so that standard output keeps only the container's output or ID.
fn pull_if_needed(c: &mut ::container::Containers, a: &RunArgs) -> Result<(), String> {
    let store = c.store();
    let missing = match image::resolve(store, &a.image) {
        Ok(_) => false,
        Err(image::Error::NoSuchImage(_)) => true,
        Err(e) => return Err(e.to_string()),
    };
    if a.pull == "never" || (a.pull == "missing" && !missing) {
        return Ok(());
    }
    let r = image::parse_name(&a.image).map_err(|e| e.to_string())?;
    if missing {
        eprintln!("Unable to find image '{}' locally", r.familiar());
    }
    super::pull::pull_one(store, &r, a.platform.clone(), a.quiet, true)
        .map_err(|e| format!("{e:#}"))?;
    Ok(())
}

/// Checks `-p` as Docker's CLI does (its messages, exit 125) and warns, as Docker does, that
/// the host network discards them.
fn check_publish(a: &RunArgs) -> Result<()> {
    ::container::parse_publish(&a.publish).map_err(|e| Failure::new(125, e.to_string()))?;
    ::container::parse_expose(&a.expose).map_err(|e| Failure::new(125, e.to_string()))?;
    for u in &a.ulimits {
        runtime::Rlimit::parse(u).map_err(|e| {
            Failure::new(
                125,
                format!("invalid argument {u:?} for \"--ulimit\" flag: {e}"),
            )
        })?;
    }
    for d in &a.dns {
        ::container::check_dns_servers(std::slice::from_ref(d)).map_err(|e| {
            Failure::new(
                125,
                format!("invalid argument {d:?} for \"--dns\" flag: {e}"),
            )
        })?;
    }
    ::container::parse_extra_hosts(&a.add_host).map_err(|e| {
        let raw = a.add_host.join(",");
        Failure::new(
            125,
            format!("invalid argument {raw:?} for \"--add-host\" flag: {e}"),
        )
    })?;
    if a.network == "host" && (!a.publish.is_empty() || a.publish_all) {
        eprintln!("WARNING: Published ports are discarded when using host network mode");
    }
    Ok(())
}

pub fn create(root: &Path, a: RunArgs) -> Result<()> {
    let opts = validate(&a, "create")?;
    let mut c = super::open_containers(root)?;
    pull_if_needed(&mut c, &a).map_err(|e| Failure::daemon(1, e))?;
    // Docker's `create` returns the daemon's error as it is: exit 1.
    let rec = c
        .create(&a.image, &opts)
        .map_err(|e| Failure::daemon(1, e))?;
    println!("{}", rec.id);
    Ok(())
}

pub fn run(root: &Path, a: RunArgs) -> Result<()> {
    if a.detach && a.interactive && a.tty {
        // Accepted as Docker does; the streams go to the log.
    }
    let opts = validate(&a, "run")?;
    let mut c = super::open_containers(root)?;
    if !a.detach {
        // pasta sets the network up while the container is made and mounted.
        c.start_network_early(&opts);
    }
    pull_if_needed(&mut c, &a)
        .map_err(|e| run_message(125, &format!("Error response from daemon: {e}"), true))?;
    let rec = c
        .create_to_run(&a.image, &opts)
        .map_err(|e| run_failure(exit_code(&e), &e))?;
    if a.detach {
        c.start_detached(&rec.id, monitor_command(root, &rec.id)?)
            .map_err(|e| {
                run_message(
                    exit_code(&e),
                    &format!("Error response from daemon: {e}"),
                    false,
                )
            })?;
        println!("{}", rec.id);
        return Ok(());
    }
    // The output goes to the terminal and, unless the container is removed at its end, to
    // its log too (`logs` shows it later, as Docker's; a `-t` container's as one stream).
    let logged = !a.rm;
    let (stdout, stderr, pump) = if logged {
        let (o, e, p) = ::container::log_pipes(&c.log_path(&rec.id), true)?;
        (o, e, Some(p))
    } else {
        (runtime::Stdio::Inherit, runtime::Stdio::Inherit, None)
    };
    let io = StartIo {
        stdin: if a.interactive {
            runtime::Stdio::Inherit
        } else {
            runtime::Stdio::Null
        },
        stdout,
        stderr,
        log: pump,
    };
    c.record_event("attach", &rec, &[]);
    let _raw = super::attach::raw_while(a.tty, a.interactive);
    let code = c.start(&rec.id, io).map_err(|e| {
        run_message(
            exit_code(&e),
            &format!("Error response from daemon: {e}"),
            false,
        )
    })?;
    exit_with(code)
}

pub fn start(root: &Path, a: StartArgs) -> Result<()> {
    let mut c = super::open_containers(root)?;
    if a.attach || a.interactive {
        if a.containers.len() > 1 {
            return Err(
                Failure::new(1, "you cannot start and attach multiple containers at once").into(),
            );
        }
        let io = StartIo {
            stdin: if a.interactive {
                runtime::Stdio::Inherit
            } else {
                runtime::Stdio::Null
            },
            ..Default::default()
        };
        c.record_event_for("attach", &a.containers[0], &[]);
        let code = c.start(&a.containers[0], io).map_err(daemon)?;
        return exit_with(code);
    }
    let mut errs = Vec::new();
    for name in &a.containers {
        let started = c.find(name).and_then(|rec| {
            c.start_detached(
                &rec.id,
                monitor_command(root, &rec.id)
                    .map_err(|e| container::Error::Invalid(e.to_string()))?,
            )
        });
        match started {
            // Starting a running container is not an error (Docker prints its name too).
            Ok(()) | Err(container::Error::AlreadyRunning(_)) => println!("{name}"),
            Err(e) => errs.push((name.as_str(), format!("Error response from daemon: {e}"))),
        }
    }
    if errs.is_empty() {
        return Ok(());
    }
    let failed: Vec<&str> = errs.iter().map(|(n, _)| *n).collect();
    let mut lines: Vec<String> = errs.iter().map(|(_, e)| e.clone()).collect();
    lines.push(format!(
        "Error: failed to start containers: {}",
        failed.join(", ")
    ));
    Err(Failure::bare(1, lines.join("\n")).into())
}

/// The detached container's monitor: runs it with output to its log file.
pub fn monitor(root: &Path, a: ContainerArg) -> Result<()> {
    let mut c = super::open_containers(root)?;
    let rec = c.find(&a.container)?;
    let (stdout, stderr, pump) = ::container::log_pipes(&c.log_path(&rec.id), false)?;
    // `-i`: stdin stays open, fed by `attach` through the socket this monitor serves.
    let stdin = if c.open_stdin(&rec.id) {
        ::container::serve_stdin(&c.state_dir(&rec.id), c.stdin_once(&rec.id))?
    } else {
        runtime::Stdio::Null
    };
    let io = StartIo {
        stdin,
        stdout,
        stderr,
        log: Some(pump),
    };
    let code = c.start(&rec.id, io).map_err(fail)?;
    exit_with(code)
}

pub fn exec(root: &Path, a: ExecArgs) -> Result<()> {
    for e in &a.env {
        if e.starts_with('=') {
            return Err(Failure::bare(
                125,
                format!(
                    "invalid argument \"{e}\" for \"-e, --env\" flag: invalid environment variable: {e}\nSee '{} exec --help'.",
                    crate::PROGRAM
                ),
            )
            .into());
        }
    }
    if a.detach && a.detached_child.is_none() {
        return exec_detached();
    }
    let mut c = super::open_containers(root)?;
    let mut env = Vec::new();
    for e in &a.env {
        if e.contains('=') {
            env.push(e.clone());
        } else if let Ok(v) = std::env::var(e) {
            env.push(format!("{e}={v}"));
        }
    }
    let detached = a.detached_child.is_some();
    let io = StartIo {
        stdin: if a.interactive && !detached {
            runtime::Stdio::Inherit
        } else {
            runtime::Stdio::Null
        },
        ..Default::default()
    };
    // The process's terminal has the size of ours from the start.
    let tty_size = if a.tty && !detached {
        use std::os::fd::AsFd;
        runtime::terminal_size(std::io::stdout().as_fd())
            .or_else(|| runtime::terminal_size(std::io::stdin().as_fd()))
    } else {
        None
    };
    // `exec -d`'s background half tells the foreground half through a pipe that the
    // process runs (one NUL byte) or why it could not start (the message).
    let ready = a.detached_child.map(|fd| {
        // SAFETY: the descriptor was passed by `exec_detached` for this process to own.
        let f = unsafe { <fs::File as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        std::sync::Arc::new(std::sync::Mutex::new(Some(f)))
    });
    let started = ready.clone().map(|ready| {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        std::thread::spawn(move || {
            if rx.recv().is_ok() {
                if let Some(mut f) = ready.lock().ok().and_then(|mut g| g.take()) {
                    let _ = std::io::Write::write_all(&mut f, b"\0");
                }
            }
        });
        tx
    });
    let req = container::ExecRequest {
        args: a.command.clone(),
        env,
        workdir: a.workdir.clone(),
        user: a.user.clone(),
        privileged: a.privileged,
        tty: a.tty && !detached,
        terminal: None,
        tty_size,
        io,
        started,
    };
    let _raw = super::attach::raw_while(a.tty && !detached, a.interactive && !detached);
    let result = c.exec(&a.container, req);
    if let (Err(e), Some(ready)) = (&result, &ready) {
        if let Some(mut f) = ready.lock().ok().and_then(|mut g| g.take()) {
            let _ = std::io::Write::write_all(&mut f, e.to_string().as_bytes());
        }
    }
    let code = result.map_err(|e| match e {
        // The client's own lookup.
        container::Error::Store(store::Error::ContainerNotFound(_)) => {
            Failure::bare(1, super::lookup_error(&a.container, e)).into()
        }
        container::Error::NotRunning(_) | container::Error::PausedExec(_) => daemon(e),
        // What the runtime refused comes, as in Docker, through the exec's own output
        // stream (stdout): 126 unless the command was not found (127).
        e => {
            let code = match exit_code(&e) {
                125 => 126,
                c => c,
            };
            println!("{e}");
            Failure::bare(code, "").into()
        }
    })?;
    exit_with(code)
}

/// `exec -d`: the same command again in the background (its own session, no terminal, no
/// streams), as `--detached-child FD`; returns once it says the process runs, or fails
/// with its reason as Docker's daemon reports an exec that did not start.
fn exec_detached() -> Result<()> {
    use std::io::Read;
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let (mut rx, tx) = std::io::pipe()?;
    // The write side is inherited by the child only (the pipe is close-on-exec; the child
    // gets a duplicate made in its own pre-exec step).
    let fd = tx.as_raw_fd();
    let mut argv = std::env::args_os();
    let exe = std::env::current_exe()?;
    argv.next();
    let mut args: Vec<std::ffi::OsString> = Vec::new();
    let mut inserted = false;
    for x in argv {
        let at = !inserted && (x == "exec");
        args.push(x);
        if at {
            args.push("--detached-child".into());
            args.push(fd.to_string().into());
            inserted = true;
        }
    }
    let mut cmd = std::process::Command::new(exe);
    cmd.args(&args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0);
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let flags = libc::fcntl(fd, libc::F_GETFD);
            if flags < 0 || libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn()?;
    drop(tx);
    let mut said = Vec::new();
    rx.read_to_end(&mut said)?;
    if said == b"\0" {
        // The background half goes on alone; nobody here waits for it.
        std::mem::forget(child);
        return Ok(());
    }
    let _ = child.wait();
    let msg = String::from_utf8_lossy(&said).into_owned();
    if msg.is_empty() {
        return Err(Failure::daemon(1, "exec failed: the background process ended").into());
    }
    Err(Failure::daemon(1, msg).into())
}

pub fn restart(root: &Path, a: StopArgs) -> Result<()> {
    let mut c = super::open_containers(root)?;
    let mut errs = Vec::new();
    for name in &a.containers {
        let r = c.stop(name, a.time).and_then(|rec| {
            let cmd = monitor_command(root, &rec.id)
                .map_err(|e| container::Error::Invalid(e.to_string()))?;
            c.start_detached(&rec.id, cmd)
        });
        match r {
            Ok(()) => {
                c.record_event_for("restart", name, &[]);
                println!("{name}")
            }
            Err(e) => errs.push(format!("Error response from daemon: {e}")),
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(Failure::bare(1, errs.join("\n")).into())
    }
}
