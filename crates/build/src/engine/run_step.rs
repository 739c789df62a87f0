//! RUN: the probe key (command, build args in scope, mount specs), the step's snapshot and
//! process, and `--mount`s resolved to host paths whose mount points stay out of the layer.

use std::fs;
use std::path::{Path, PathBuf};

use super::*;

/// The `--mount`s of one RUN, resolved for its process.
#[derive(Default)]
struct RunMounts {
    /// What the process gets.
    host: Vec<HostMount>,
    /// Image paths that exist only as mount points (kept out of the layer).
    cleanup: Vec<String>,
    /// Read-only views of stages and images (`from=`), unmounted after the step.
    views: Vec<(String, PathBuf)>,
    /// Copies for writable binds, removed after the step.
    scratch: Vec<store::Staging>,
}

/// Where one `--mount` comes from.
enum MountSource {
    /// Nothing to mount (an optional secret or ssh socket not given, or a secret given
    /// only as an environment variable).
    Skip,
    Tmpfs,
    Host(PathBuf),
}

impl Builder<'_> {
    pub(super) fn run(
        &mut self,
        st: &mut StageState,
        step: &Step,
        form: &CommandForm,
        mounts: &[RunMount],
        flags: RunFlags,
    ) -> Result<()> {
        if flags.insecure && !st.opts().allow_insecure {
            // BuildKit checks entitlements before anything runs or is looked up.
            return Err(BuildError::Step {
                line: step.line,
                msg: "security.insecure is not allowed".into(),
            });
        }
        let argv = command_argv(form, &st.shell);
        // Build args in scope go into the key and the process's environment, not the image;
        // an ENV of the same name hides them (Docker's `FilterAllowed`).
        let env_keys: Vec<String> = st
            .run_config()
            .env
            .unwrap_or_default()
            .iter()
            .map(|e| e.split_once('=').map(|(k, _)| k).unwrap_or(e).to_string())
            .collect();
        let arg_env: Vec<String> = st
            .args
            .iter()
            .filter(|(k, _)| !env_keys.contains(k))
            .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}")))
            .collect();
        // The proxy variables given with `--build-arg` are in scope too without an ARG: they
        // reach the process and make the key carry the (then maybe empty) list of build args.
        let proxies = st.opts().build_args.keys().any(|k| {
            CLASSIC_PROXY_ARGS.contains(&k.as_str())
                && !env_keys.contains(k)
                && !st.args.iter().any(|(a, _)| a == k)
        });
        let probe = run_probe(st, &argv, &arg_env, proxies, mounts, flags);
        if self.probe(st, &probe)? {
            return Ok(());
        }
        let cfg = st.run_config();
        let mut env = run_env(st, &cfg, &arg_env);
        let cid = new_container_id();
        self.say(st.quiet, &format!(" ---> Running in {}", &cid[..12]));
        let workdir = if cfg.working_dir.is_empty() {
            "/".to_string()
        } else {
            cfg.working_dir.clone()
        };
        let (key, rootfs) = self.mount(st, &cid)?;
        let mut m = RunMounts::default();
        let prepared = self
            .volume_mounts(&cfg, &rootfs, &mut m)
            .and_then(|()| self.run_mounts(st, mounts, (&workdir, &rootfs), &mut env, &mut m));
        if let Err(e) = prepared {
            let _ = self.unmount_and_take(&key, &rootfs, false, &[]);
            m.views.into_iter().for_each(|v| self.drop_view(Some(v)));
            return Err(e.with_line(step.line));
        }
        let output: Box<dyn StepOutput + '_> = match &st.vertex {
            Some(v) => Box::new(VertexOutput::new(v, &mut *self.out)),
            None => Box::new(ClassicOutput(Mutex::new(&mut *self.out))),
        };
        let code = self.runner.run(&RunRequest {
            rootfs: &rootfs,
            argv: &argv,
            env: &env,
            user: &cfg.user,
            workdir: &workdir,
            network_none: match flags.network {
                RunNetwork::Default => st.opts().network_none,
                RunNetwork::None => true,
                RunNetwork::Host => false,
            },
            network_host: flags.network == RunNetwork::Host,
            insecure: flags.insecure,
            quiet: st.opts().quiet,
            output: &*output,
            mounts: &m.host,
            cancel: st.opts().cancel.as_deref(),
        });
        drop(output);
        m.views.into_iter().for_each(|v| self.drop_view(Some(v)));
        drop(m.scratch);
        // A cancelled build keeps nothing of the step, whatever its process did.
        let cancelled = st
            .opts()
            .cancel
            .as_ref()
            .is_some_and(|c| c.load(std::sync::atomic::Ordering::SeqCst));
        let ok = !cancelled && code.as_ref().is_ok_and(|c| *c == 0);
        let layer = self.unmount_and_take(&key, &rootfs, ok, &m.cleanup);
        if cancelled {
            return Err(BuildError::Cancelled);
        }
        let code = code.map_err(BuildError::Run)?;
        if code != 0 {
            return Err(BuildError::RunFailed {
                command: argv.join(" "),
                code,
            });
        }
        let layer = layer?;
        self.say(
            st.quiet,
            &format!("Removing intermediate container {}", &cid[..12]),
        );
        let mut new_cfg = st.config.clone();
        new_cfg.container = cid;
        self.commit(st, new_cfg, Some(probe), layer)?;
        Ok(())
    }

    /// Resolves a RUN's `--mount`s (in the process's `workdir` and `rootfs`) into `out`;
    /// secrets given as variables and the ssh socket go into `env`.
    fn run_mounts(
        &mut self,
        st: &StageState,
        mounts: &[RunMount],
        (workdir, rootfs): (&str, &Path),
        env: &mut Vec<String>,
        out: &mut RunMounts,
    ) -> Result<()> {
        for m in mounts {
            let target = if m.target.starts_with('/') {
                clean_abs(&m.target)
            } else if m.target.is_empty() {
                String::new()
            } else {
                clean_abs(&format!("{workdir}/{}", m.target))
            };
            let source = match self.mount_source(st, m, &target, env, out)? {
                MountSource::Skip => continue,
                MountSource::Tmpfs => None,
                MountSource::Host(p) => Some(p),
            };
            if target.is_empty() || target == "/" {
                return Err(BuildError::Step {
                    line: 0,
                    msg: format!("{}: a mount target is required", m.spec),
                });
            }
            out.cleanup.extend(mount_points_only(rootfs, &target));
            let tmpfs_size = match &m.kind {
                RunMountKind::Tmpfs { size } => *size,
                _ => None,
            };
            out.host.push(HostMount {
                source,
                target,
                readonly: m.readonly,
                tmpfs_size,
            });
        }
        Ok(())
    }

    /// What a `--mount` mounts at `target`.
    fn mount_source(
        &mut self,
        st: &StageState,
        m: &RunMount,
        target: &str,
        env: &mut Vec<String>,
        out: &mut RunMounts,
    ) -> Result<MountSource> {
        let opts = st.opts();
        match &m.kind {
            RunMountKind::Tmpfs { .. } => Ok(MountSource::Tmpfs),
            RunMountKind::Cache { id, mode, uid, gid } => {
                self.cache_mount(id, *mode, (*uid, *gid)).map(MountSource::Host)
            }
            RunMountKind::Secret {
                id,
                required,
                env: var,
            } => match opts.secrets.get(id) {
                Some(p) => {
                    if let Some(var) = var {
                        let v = fs::read_to_string(p).map_err(|e| BuildError::io(p, e))?;
                        env.push(format!("{var}={}", v.trim_end_matches('\n')));
                        if m.target.is_empty() {
                            return Ok(MountSource::Skip);
                        }
                    }
                    Ok(MountSource::Host(p.clone()))
                }
                None if *required => Err(BuildError::Step {
                    line: 0,
                    msg: format!("secret {id} not found: give it with --secret id={id},src=FILE"),
                }),
                None => Ok(MountSource::Skip),
            },
            RunMountKind::Ssh { id, required } => match opts.ssh.get(id) {
                Some(sock) => {
                    if !env.iter().any(|e| e.starts_with("SSH_AUTH_SOCK=")) {
                        env.push(format!("SSH_AUTH_SOCK={target}"));
                    }
                    Ok(MountSource::Host(sock.clone()))
                }
                None if *required => Err(BuildError::Step {
                    line: 0,
                    msg: format!(
                        "no SSH key {id:?} forwarded from the client: give it with --ssh {id}[=SOCKET]"
                    ),
                }),
                None => Ok(MountSource::Skip),
            },
            RunMountKind::Bind { from, source } => {
                let base = match from {
                    Some(f) => {
                        let v = self.mount_view(st, f)?;
                        let root = v.1.clone();
                        out.views.push(v);
                        root
                    }
                    None => self.context.root().to_path_buf(),
                };
                self.bind_mount(&base, source, m.readonly, out)
                    .map(MountSource::Host)
            }
        }
    }

    /// The image's VOLUMEs, each a fresh copy of what the image holds there (Docker's
    /// anonymous volumes start so), so that what the step changes under them is lost: Docker's
    /// classic builder commits the container's layer, which its volumes are not part of. A
    /// mount point the image lacks is made in the layer, as Docker makes it.
    fn volume_mounts(
        &mut self,
        cfg: &ContainerConfig,
        rootfs: &Path,
        out: &mut RunMounts,
    ) -> Result<()> {
        let Some(vols) = &cfg.volumes else {
            return Ok(());
        };
        for v in vols {
            let target = clean_abs(v);
            if target == "/" {
                continue;
            }
            let host = crate::copy::resolve_in_root(rootfs, &target, true);
            let stg = self.store.stage()?;
            let copy = stg.path().join("volume");
            if fs::symlink_metadata(&host).is_ok_and(|m| m.is_dir()) {
                copy_tree(&host, &copy, &target)?;
            } else {
                fs::create_dir(&copy).map_err(|e| BuildError::io(&copy, e))?;
            }
            out.scratch.push(stg);
            out.host.push(HostMount {
                source: Some(copy),
                target,
                readonly: false,
                tmpfs_size: None,
            });
        }
        Ok(())
    }

    /// The directory of a cache mount, made (with its mode and owner) on first use.
    fn cache_mount(&self, id: &str, mode: u32, (uid, gid): (u32, u32)) -> Result<PathBuf> {
        let safe: String = id
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let dir = self.cache_dir.join(format!(
            "{safe}-{}",
            &oci::Digest::of(id.as_bytes()).hex()[..12]
        ));
        if !dir.exists() {
            use std::os::unix::fs::PermissionsExt;
            fs::create_dir_all(&dir).map_err(|e| BuildError::io(&dir, e))?;
            fs::set_permissions(&dir, fs::Permissions::from_mode(mode))
                .map_err(|e| BuildError::io(&dir, e))?;
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid))
                .map_err(|e| BuildError::io(&dir, e))?;
        }
        // Its time is when a build last used it, which the build cache's garbage collection
        // (`builder prune`, the automatic policy) goes by.
        let _ = fs::File::open(&dir).and_then(|f| f.set_modified(std::time::SystemTime::now()));
        Ok(dir)
    }

    /// The host path of a bind mount's `source` under `base`; a writable bind gets a copy,
    /// because the step must not change its source.
    fn bind_mount(
        &mut self,
        base: &Path,
        source: &str,
        readonly: bool,
        out: &mut RunMounts,
    ) -> Result<PathBuf> {
        let host = crate::copy::resolve_in_root(base, source, true);
        if !host.exists() {
            return Err(BuildError::Step {
                line: 0,
                msg: format!("failed to compute cache key: {source:?} not found"),
            });
        }
        if readonly {
            return Ok(host);
        }
        let stg = self.store.stage()?;
        let copy = stg.path().join("bind");
        copy_tree(&host, &copy, source)?;
        out.scratch.push(stg);
        Ok(copy)
    }
}

/// Copies `host` (named `what` in errors) to `copy` with modes, owners and times.
fn copy_tree(host: &Path, copy: &Path, what: &str) -> Result<()> {
    let st = std::process::Command::new("cp")
        .arg("-a")
        .arg(host)
        .arg(copy)
        .status()
        .map_err(|e| BuildError::io(host, e))?;
    if !st.success() {
        return Err(BuildError::Step {
            line: 0,
            msg: format!("cannot copy {what} for a mount"),
        });
    }
    Ok(())
}

/// The probe of a RUN: the command, after the build args in scope (`|N a=1 b=2 …`, as
/// Docker keys them; `|0` when only proxy variables are), the mount specs (never a secret's
/// content) and the `--network`/`--security` flags other than the defaults.
fn run_probe(
    st: &StageState,
    argv: &[String],
    arg_env: &[String],
    proxies: bool,
    mounts: &[RunMount],
    flags: RunFlags,
) -> ContainerConfig {
    let mut probe = st.run_config();
    let mut saved = argv.to_vec();
    if !arg_env.is_empty() || proxies {
        let mut sorted = arg_env.to_vec();
        sorted.sort();
        let mut c = vec![format!("|{}", sorted.len())];
        c.extend(sorted);
        c.extend(argv.iter().cloned());
        saved = c;
    }
    if !mounts.is_empty() {
        let mut c: Vec<String> = mounts.iter().map(|m| m.spec.clone()).collect();
        c.extend(saved);
        saved = c;
    }
    let words = flags.key_words();
    if !words.is_empty() {
        saved = words.into_iter().chain(saved).collect();
    }
    probe.cmd = Some(saved);
    probe
}

/// The process's environment: the config's, the build args in scope it lacks, and the
/// predefined proxy args given with `--build-arg` (which never reach the key).
fn run_env(st: &StageState, cfg: &ContainerConfig, arg_env: &[String]) -> Vec<String> {
    let mut env = cfg.env.clone().unwrap_or_default();
    for a in arg_env {
        let k = a.split_once('=').map(|(k, _)| k).unwrap_or("");
        if !env
            .iter()
            .any(|e| e.split_once('=').map(|(n, _)| n) == Some(k))
        {
            env.push(a.clone());
        }
    }
    for (k, v) in &st.opts().build_args {
        if CLASSIC_PROXY_ARGS.contains(&k.as_str())
            && !env.iter().any(|e| e.starts_with(&format!("{k}=")))
        {
            env.push(format!("{k}={v}"));
        }
    }
    env
}

/// The components of `target` that the image lacks, deepest first: they exist only as
/// mount points.
fn mount_points_only(rootfs: &Path, target: &str) -> Vec<String> {
    let mut cur = String::new();
    let mut missing = Vec::new();
    for c in target.split('/').filter(|c| !c.is_empty()) {
        cur.push('/');
        cur.push_str(c);
        if fs::symlink_metadata(crate::copy::resolve_in_root(rootfs, &cur, false)).is_err() {
            missing.push(cur.clone());
        }
    }
    missing.reverse();
    missing
}
