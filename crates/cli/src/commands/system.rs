//! `strata info` (`system info`), `system prune`, `system check` and `completion`.

use std::io::{self, Write};
use std::path::Path;

use anyhow::Result;
use serde_json::{json, Value};

use crate::cli::{CompletionArgs, InfoArgs, SystemCheckArgs, SystemPruneArgs, VersionArgs};
use crate::Failure;

/// Docker's name of the filesystem type `statfs` reports (`graphdriver.FsNames`).
fn fs_name(magic: i64) -> String {
    match magic {
        0xEF53 => "extfs".into(),
        0x58465342 => "xfs".into(),
        0x9123683E => "btrfs".into(),
        0x01021994 => "tmpfs".into(),
        0x794c7630 => "overlayfs".into(),
        0x2fc12fc1 => "zfs".into(),
        0x6969 => "nfs".into(),
        0x65735546 => "fuse".into(),
        m => format!("<unknown> ({m:#x})"),
    }
}

fn statfs_type(p: &Path) -> Option<i64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(p.as_os_str().as_bytes()).ok()?;
    // SAFETY: a zeroed statfs is a valid out-parameter; `c` is NUL-terminated.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    (unsafe { libc::statfs(c.as_ptr(), &mut st) } == 0).then_some(st.f_type as i64)
}

fn os_release() -> (String, String) {
    let text = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    let get = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .map(|v| v.trim_matches('"').to_string())
            .unwrap_or_default()
    };
    (get("PRETTY_NAME"), get("VERSION_ID"))
}

pub(crate) fn uname() -> (String, String, String) {
    // SAFETY: a zeroed utsname is a valid out-parameter.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    unsafe { libc::uname(&mut u) };
    let s = |f: &[libc::c_char]| {
        // SAFETY: uname NUL-terminates its fields.
        unsafe { std::ffi::CStr::from_ptr(f.as_ptr()) }
            .to_string_lossy()
            .into_owned()
    };
    (s(&u.release), s(&u.machine), s(&u.nodename))
}

fn mem_total() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .unwrap_or(0)
        * 1024
}

/// What `info` reports, with the Engine API's field names (`{{.Containers}}`, `{{json .}}`).
pub(crate) fn info_value(root: &Path) -> Result<Value> {
    let c = super::open_containers(root)?;
    let rows = c.summaries(false)?;
    let running = rows.iter().filter(|s| s.running).count();
    let store = super::open_store(root)?;
    let images = store.images()?.len();
    let driver = match c.snapshotter_name() {
        "overlayfs" => "overlay2",
        other => other,
    };
    let backing = statfs_type(root).map(fs_name).unwrap_or_default();
    // Rootless (a user namespace): overlayfs with `userxattr`, no cgroups (see runtime's
    // cgroup.rs), and Docker's `rootless` security option.
    let rootless = runtime::rootless::active();
    let driver_status = if driver == "overlay2" {
        json!([
            ["Backing Filesystem", backing],
            ["Supports d_type", "true"],
            ["Native Overlay Diff", "true"],
            ["userxattr", if rootless { "true" } else { "false" }]
        ])
    } else {
        json!([["Backing Filesystem", backing]])
    };
    let cgroup_version = if statfs_type(Path::new("/sys/fs/cgroup")) == Some(0x63677270) {
        "2"
    } else {
        "1"
    };
    let (kernel, arch, host) = uname();
    let (os, os_version) = os_release();
    let settings = crate::settings::get();
    let mut insecure = vec!["127.0.0.0/8".to_string()];
    insecure.extend(settings.hosts.insecure.iter().cloned());
    let init_binary = if settings.init_path.is_some() {
        "docker-init"
    } else {
        ""
    };
    let mut security = vec!["name=seccomp,profile=default"];
    let mut warnings = Vec::new();
    if rootless {
        security.push("name=rootless");
        warnings.push(
            "WARNING: Running in rootless-mode without cgroups. Resource limits (--memory, --cpus, --pids-limit) are not available.",
        );
    }
    let ncpu = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    Ok(json!({
        "Containers": rows.len(),
        "ContainersRunning": running,
        "ContainersPaused": 0,
        "ContainersStopped": rows.len() - running,
        "Images": images,
        "Driver": driver,
        "DriverStatus": driver_status,
        "Plugins": {
            "Volume": ["local"],
            "Network": ["bridge", "host", "null"],
            "Authorization": null,
            "Log": ["json-file"],
        },
        "LoggingDriver": "json-file",
        "CgroupDriver": if rootless { "none" } else { "cgroupfs" },
        "CgroupVersion": cgroup_version,
        "KernelVersion": kernel,
        "OperatingSystem": os,
        "OSVersion": os_version,
        "OSType": "linux",
        "Architecture": arch,
        "IndexServerAddress": "https://index.docker.io/v1/",
        "RegistryConfig": {"InsecureRegistryCIDRs": insecure},
        "NCPU": ncpu,
        "MemTotal": mem_total(),
        "DockerRootDir": root.display().to_string(),
        "Name": host,
        "ServerVersion": env!("CARGO_PKG_VERSION"),
        "InitBinary": init_binary,
        "SecurityOptions": security,
        "Debug": false,
        "ExperimentalBuild": false,
        "LiveRestoreEnabled": false,
        "Warnings": if warnings.is_empty() { Value::Null } else { json!(warnings) },
    }))
}

/// Docker's `info` text from the values above (only the lines strata can make true).
fn info_text(v: &Value) -> String {
    let s = |k: &str| match &v[k] {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut o = String::new();
    o.push_str("Client:\n");
    o.push_str(&format!(" Version:    {}\n", env!("CARGO_PKG_VERSION")));
    o.push_str(" Debug Mode: false\n\nServer:\n");
    o.push_str(&format!(" Containers: {}\n", s("Containers")));
    o.push_str(&format!("  Running: {}\n", s("ContainersRunning")));
    o.push_str(&format!("  Paused: {}\n", s("ContainersPaused")));
    o.push_str(&format!("  Stopped: {}\n", s("ContainersStopped")));
    o.push_str(&format!(" Images: {}\n", s("Images")));
    o.push_str(&format!(" Server Version: {}\n", s("ServerVersion")));
    o.push_str(&format!(" Storage Driver: {}\n", s("Driver")));
    for pair in v["DriverStatus"].as_array().into_iter().flatten() {
        o.push_str(&format!(
            "  {}: {}\n",
            pair[0].as_str().unwrap_or(""),
            pair[1].as_str().unwrap_or("")
        ));
    }
    o.push_str(&format!(" Logging Driver: {}\n", s("LoggingDriver")));
    o.push_str(&format!(" Cgroup Driver: {}\n", s("CgroupDriver")));
    o.push_str(&format!(" Cgroup Version: {}\n", s("CgroupVersion")));
    o.push_str(" Plugins:\n");
    for k in ["Volume", "Network", "Log"] {
        let items: Vec<&str> = v["Plugins"][k]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        o.push_str(&format!("  {k}: {}\n", items.join(" ")));
    }
    if !s("InitBinary").is_empty() {
        o.push_str(&format!(" Init Binary: {}\n", s("InitBinary")));
    }
    // Docker's rendering of `name=NAME,key=value`: the name, then `Key: value` lines.
    o.push_str(" Security Options:\n");
    for opt in v["SecurityOptions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        for kv in opt.split(',') {
            match kv.split_once('=') {
                Some(("name", n)) => o.push_str(&format!("  {n}\n")),
                Some((k, val)) => {
                    let mut k = k.to_string();
                    if let Some(f) = k.get_mut(0..1) {
                        f.make_ascii_uppercase();
                    }
                    o.push_str(&format!("   {k}: {val}\n"));
                }
                None => {}
            }
        }
    }
    o.push_str(&format!(" Kernel Version: {}\n", s("KernelVersion")));
    o.push_str(&format!(" Operating System: {}\n", s("OperatingSystem")));
    o.push_str(&format!(" OSType: {}\n", s("OSType")));
    o.push_str(&format!(" Architecture: {}\n", s("Architecture")));
    o.push_str(&format!(" CPUs: {}\n", s("NCPU")));
    o.push_str(&format!(
        " Total Memory: {}\n",
        format::bytes_size(v["MemTotal"].as_u64().unwrap_or(0))
    ));
    o.push_str(&format!(" Name: {}\n", s("Name")));
    o.push_str(&format!(" Docker Root Dir: {}\n", s("DockerRootDir")));
    o.push_str(" Debug Mode: false\n");
    o.push_str(" Experimental: false\n");
    o.push_str(" Insecure Registries:\n");
    for r in v["RegistryConfig"]["InsecureRegistryCIDRs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        o.push_str(&format!("  {r}\n"));
    }
    o.push_str(" Live Restore Enabled: false\n\n");
    o
}

pub fn info(root: &Path, a: InfoArgs) -> Result<()> {
    let v = info_value(root)?;
    match a.format.as_deref().map(str::trim) {
        None | Some("") => {
            print!("{}", info_text(&v));
            for w in v["Warnings"].as_array().into_iter().flatten() {
                eprintln!("{}", w.as_str().unwrap_or_default());
            }
        }
        Some("json") => println!("{}", oci::GoJson::MARSHAL.to_string(&v)?),
        Some(f) => {
            let t = format::Template::parse(f).map_err(|e| Failure::bare(1, e.to_string()))?;
            let out = t.render(&v).map_err(|e| Failure::bare(1, e.to_string()))?;
            println!("{out}");
        }
    }
    Ok(())
}

/// `system check [--repair] [--deep]`: one line per problem, then a summary; exit 1 while
/// something is damaged (leftovers of killed processes are reported, exit 0). `--deep` puts each layer's tar back together the way `save` does
/// (`image::LayerSource`) and hashes it against its diff_id.
pub fn check(root: &Path, a: SystemCheckArgs) -> Result<()> {
    let store = super::open_store(root)?;
    let deep = |rec: &store::LayerRecord| -> std::result::Result<(), String> {
        let mut tar = image::LayerSource::new(&store, rec)
            .open()
            .map_err(|e| e.to_string())?;
        io::copy(&mut tar, &mut io::sink())
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    let deep: Option<store::check::DeepCheck<'_>> = if a.deep { Some(&deep) } else { None };
    let report = if a.repair {
        store.check_and_repair(deep)?
    } else {
        store.check(deep)?
    };
    let mut out = io::stdout().lock();
    for r in &report.repaired {
        writeln!(out, "{r}")?;
    }
    for p in &report.problems {
        writeln!(out, "{p}")?;
    }
    writeln!(out, "{}", report.summary())?;
    out.flush()?;
    // What killed processes leave (reported above) is no damage: the next command collects it.
    if report.is_sound() {
        Ok(())
    } else {
        Err(Failure::new(1, "").into())
    }
}

pub fn prune(root: &Path, a: SystemPruneArgs) -> Result<()> {
    let filters = super::PruneFilters::parse(&a.filters, "system prune")?;
    if a.volumes && filters.until.is_some() {
        return Err(Failure::bare(
            1,
            "ERROR: The \"until\" filter is not supported with \"--volumes\"",
        )
        .into());
    }
    if !a.force {
        let mut w = String::from("WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n");
        if a.volumes {
            w.push_str("  - all volumes not used by at least one container\n");
        }
        if a.all {
            w.push_str("  - all images without at least one container associated to them\n  - all build cache\n");
        } else {
            w.push_str("  - all dangling images\n  - all dangling build cache\n");
        }
        if !a.filters.is_empty() {
            w.push_str("\n  Items to be pruned will be filtered with:\n");
            for f in &a.filters {
                w.push_str(&format!("  - {f}\n"));
            }
        }
        w.push_str("\nAre you sure you want to continue? [y/N] ");
        print!("{w}");
        io::stdout().flush()?;
        let mut line = String::new();
        io::stdin().read_line(&mut line)?;
        if !matches!(line.trim().to_lowercase().as_str(), "y" | "yes") {
            return Ok(());
        }
    }
    let mut out = String::new();
    let mut reclaimed = 0u64;
    // Containers.
    let mut c = super::open_containers(root)?;
    let (removed, bytes) = prune_containers(&mut c, &filters)?;
    reclaimed += bytes;
    if !removed.is_empty() {
        out.push_str("Deleted Containers:\n");
        for id in &removed {
            out.push_str(id);
            out.push('\n');
        }
        out.push('\n');
    }
    // Networks (user-defined ones no container is on).
    let removed = c.prune_networks(|n| !filters.matches(&n.record.created, &n.config.labels))?;
    if !removed.is_empty() {
        out.push_str("Deleted Networks:\n");
        for n in &removed {
            out.push_str(n);
            out.push('\n');
        }
        out.push('\n');
    }
    if a.volumes {
        let (names, bytes) = c.volume_prune(|v| {
            let labels: std::collections::BTreeMap<String, String> = v
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            !filters.labels_match(&labels)
        })?;
        reclaimed += bytes;
        if !names.is_empty() {
            out.push_str("Deleted Volumes:\n");
            for n in &names {
                out.push_str(n);
                out.push('\n');
            }
            out.push('\n');
        }
    }
    // Images.
    let store = c.store();
    let (lines, bytes) = prune_images(store, a.all, &filters)?;
    reclaimed += bytes;
    if !lines.is_empty() {
        out.push_str("Deleted Images:\n");
        for l in &lines {
            out.push_str(l);
            out.push('\n');
        }
        out.push('\n');
    }
    // Build cache (RUN --mount=type=cache directories, the context hashes, build records).
    if filters.is_empty() {
        let (_, size) = super::df::build_cache_usage(root);
        super::df::clear_build_cache(root)?;
        reclaimed += size;
    }
    store::events::record_in(
        root,
        store::events::Event::container("prune", "").attr("reclaimed", reclaimed.to_string()),
    );
    out.push_str(&format!(
        "Total reclaimed space: {}\n",
        format::human_size_4(reclaimed)
    ));
    print!("{out}");
    Ok(())
}

/// `container prune` (and the containers of `system prune`): every stopped container the
/// `until`/`label` filters match; their IDs and the bytes of their writable layers.
pub(crate) fn prune_containers(
    c: &mut ::container::Containers,
    filters: &super::PruneFilters,
) -> Result<(Vec<String>, u64)> {
    let mut removed = Vec::new();
    let mut reclaimed = 0;
    for s in c.summaries(true)? {
        if s.running {
            continue;
        }
        let labels = c.labels(&s.record).unwrap_or_default();
        if !filters.matches(&s.record.created, &labels) {
            continue;
        }
        if c.remove(&s.record.id, false).is_ok() {
            reclaimed += s.size_rw.unwrap_or(0);
            removed.push(s.record.id.clone());
        }
    }
    Ok((removed, reclaimed))
}

/// `image prune` (and the images of `system prune`): dangling images, or with `all` every
/// image nothing uses, that the filters match; the report lines and the bytes freed.
pub(crate) fn prune_images(
    store: &mut store::Store,
    all: bool,
    filters: &super::PruneFilters,
) -> Result<(Vec<String>, u64)> {
    if filters.is_empty() {
        Ok(image::prune(store, all)?)
    } else {
        prune_images_filtered(store, all, filters)
    }
}

/// `image prune` restricted by `until`/`label` filters: each dangling image (or, with `all`,
/// each image no container uses and no image builds on) that matches, removed as `rmi` would,
/// reported in prune's lowercase words.
fn prune_images_filtered(
    store: &mut store::Store,
    all: bool,
    f: &super::PruneFilters,
) -> Result<(Vec<String>, u64)> {
    let before: u64 = store.layers()?.iter().map(|l| l.size).sum();
    let mut report = Vec::new();
    for img in store.images()? {
        if !store.containers_using(&img.id)?.is_empty() || !store.children(&img.id)?.is_empty() {
            continue;
        }
        if !(all || img.tags.is_empty()) {
            continue;
        }
        let labels = image::read_config(store, &img.id)
            .ok()
            .and_then(|c| c.config.and_then(|c| c.labels))
            .unwrap_or_default();
        if !f.matches(&img.created, &labels) {
            continue;
        }
        let opts = image::RemoveOptions {
            force: true,
            no_prune: true,
        };
        if let Ok(lines) = image::remove(store, &img.id.to_string(), opts) {
            for l in lines {
                report.push(l.replacen("Untagged: ", "untagged: ", 1).replacen(
                    "Deleted: ",
                    "deleted: ",
                    1,
                ));
            }
        }
    }
    let after: u64 = store.layers()?.iter().map(|l| l.size).sum();
    Ok((report, before.saturating_sub(after)))
}

/// `strata version [--format]`: one line, or Docker's `Client`/`Server` fields for a template
/// (strata is both).
pub fn version(a: VersionArgs) -> Result<()> {
    let v = env!("CARGO_PKG_VERSION");
    let Some(f) = a.format.as_deref().map(str::trim) else {
        println!("strata version {v}");
        return Ok(());
    };
    let (kernel, _, _) = uname();
    let part = json!({
        "Version": v, "Os": "linux", "Arch": oci::host_architecture(),
    });
    let mut server = part.clone();
    server["KernelVersion"] = json!(kernel);
    let data = json!({"Client": part, "Server": server});
    if f == "json" {
        println!("{}", oci::GoJson::MARSHAL.to_string(&data)?);
        return Ok(());
    }
    let t = format::Template::parse(f).map_err(|e| Failure::bare(1, e.to_string()))?;
    println!(
        "{}",
        t.render(&data)
            .map_err(|e| Failure::bare(1, e.to_string()))?
    );
    Ok(())
}

pub fn completion(a: CompletionArgs) -> Result<()> {
    use clap::CommandFactory;
    let mut cmd = crate::cli::Cli::command();
    // Generated into memory first: clap_complete panics on a write error, and a reader
    // that stops early (`| head`) is no error.
    let mut script = Vec::new();
    clap_complete::generate(a.shell, &mut cmd, crate::PROGRAM, &mut script);
    match io::stdout().lock().write_all(&script) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

/// `system migrate` (Podman's): stops running containers, then ends the rootless user's
/// pause process so that the next command makes a new user namespace.
pub fn migrate(root: &Path) -> Result<()> {
    let mut c = super::open_containers(root)?;
    for s in c.summaries(false)? {
        if s.running {
            c.stop(&s.record.id, None)?;
        }
    }
    if let Some(pid) = runtime::rootless::stop_pause().map_err(|e| Failure::new(125, e))? {
        eprintln!(
            "stopped the rootless pause process {pid}; the next command makes a new user namespace"
        );
    }
    Ok(())
}
