//! RUN: the probe key (command, build args in scope, mount specs), the step's snapshot and
//! process, and `--mount`s resolved to host paths whose mount points stay out of the layer.

use std::fs;
use std::path::{Path, PathBuf};

use oci::Digest;

use super::*;

impl Builder<'_> {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn run(
        &mut self,
        st: &mut StageState,
        plan: &Plan,
        built: &[Option<Digest>],
        step: &Step,
        form: &CommandForm,
        mounts: &[RunMount],
        opts: &BuildOptions,
    ) -> Result<()> {
        let argv = command_argv(form, &st.shell);
        // Build args in scope go into the key and the process's environment, not the image.
        let mut arg_env: Vec<String> = Vec::new();
        for (k, v) in &st.args {
            if let Some(v) = v {
                arg_env.push(format!("{k}={v}"));
            }
        }
        for (k, v) in &opts.build_args {
            if PROXY_ARGS.contains(&k.as_str()) && !st.args.iter().any(|(n, _)| n == k) {
                // Predefined args reach the process but not the key.
                let _ = (k, v);
            }
        }
        let mut probe = st.run_config();
        let mut saved = argv.clone();
        if !arg_env.is_empty() {
            let mut sorted = arg_env.clone();
            sorted.sort();
            let mut c = vec![format!("|{}", sorted.len())];
            c.extend(sorted);
            c.extend(argv.clone());
            saved = c;
        }
        // Mount specs are part of the step's identity (never a secret's content).
        if !mounts.is_empty() {
            let mut c: Vec<String> = mounts.iter().map(|m| m.spec.clone()).collect();
            c.extend(saved);
            saved = c;
        }
        probe.cmd = Some(saved);
        if self.probe(st, &probe, opts)? {
            return Ok(());
        }
        let cfg = st.run_config();
        let mut env = cfg.env.clone().unwrap_or_default();
        for a in &arg_env {
            let k = a.split_once('=').map(|(k, _)| k).unwrap_or("");
            if !env
                .iter()
                .any(|e| e.split_once('=').map(|(n, _)| n) == Some(k))
            {
                env.push(a.clone());
            }
        }
        for (k, v) in &opts.build_args {
            if PROXY_ARGS.contains(&k.as_str())
                && !env.iter().any(|e| e.starts_with(&format!("{k}=")))
            {
                env.push(format!("{k}={v}"));
            }
        }
        let cid = new_container_id();
        self.say(opts.quiet, &format!(" ---> Running in {}", &cid[..12]));
        let workdir = if cfg.working_dir.is_empty() {
            "/".to_string()
        } else {
            cfg.working_dir.clone()
        };
        let (key, rootfs) = self.mount(st, &cid)?;
        let mut views = Vec::new();
        let mut scratch = Vec::new();
        let prepared = self.run_mounts(
            plan,
            built,
            mounts,
            &workdir,
            &rootfs,
            opts,
            &mut env,
            &mut views,
            &mut scratch,
        );
        let (host_mounts, cleanup) = match prepared {
            Ok(x) => x,
            Err(e) => {
                let _ = self.unmount_and_take(&key, &rootfs, false, &[]);
                views.into_iter().for_each(|v| self.drop_view(Some(v)));
                return Err(e.with_line(step.line));
            }
        };
        let code = self.runner.run(&RunRequest {
            rootfs: &rootfs,
            argv: &argv,
            env: &env,
            user: &cfg.user,
            workdir: &workdir,
            network_none: opts.network_none,
            quiet: opts.quiet,
            mounts: &host_mounts,
        });
        views.into_iter().for_each(|v| self.drop_view(Some(v)));
        drop(scratch);
        let layer = self.unmount_and_take(
            &key,
            &rootfs,
            code.as_ref().map(|c| *c == 0).unwrap_or(false),
            &cleanup,
        );
        let code = code.map_err(BuildError::Run)?;
        if code != 0 {
            return Err(BuildError::RunFailed {
                command: argv.join(" "),
                code,
            });
        }
        let layer = layer?;
        self.say(
            opts.quiet,
            &format!("Removing intermediate container {}", &cid[..12]),
        );
        let mut new_cfg = st.config.clone();
        new_cfg.container = cid;
        self.commit(st, new_cfg, Some(probe), layer, opts.quiet)?;
        Ok(())
    }

    /// Resolves a RUN's `--mount`s to host mounts; returns them and the image paths that
    /// exist only as their mount points (to keep out of the layer).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn run_mounts(
        &mut self,
        plan: &Plan,
        built: &[Option<Digest>],
        mounts: &[RunMount],
        workdir: &str,
        rootfs: &Path,
        opts: &BuildOptions,
        env: &mut Vec<String>,
        views: &mut Vec<(String, PathBuf)>,
        scratch: &mut Vec<store::Staging>,
    ) -> Result<(Vec<HostMount>, Vec<String>)> {
        let mut out = Vec::new();
        let mut cleanup = Vec::new();
        for m in mounts {
            let target = if m.target.starts_with('/') {
                clean_abs(&m.target)
            } else if m.target.is_empty() {
                String::new()
            } else {
                clean_abs(&format!("{workdir}/{}", m.target))
            };
            let source: Option<PathBuf> = match &m.kind {
                RunMountKind::Tmpfs { .. } => None,
                RunMountKind::Cache { id, mode, uid, gid } => {
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
                        fs::create_dir_all(&dir).map_err(|e| BuildError::io(&dir, e))?;
                        use std::os::unix::fs::PermissionsExt;
                        fs::set_permissions(&dir, fs::Permissions::from_mode(*mode))
                            .map_err(|e| BuildError::io(&dir, e))?;
                        std::os::unix::fs::chown(&dir, Some(*uid), Some(*gid))
                            .map_err(|e| BuildError::io(&dir, e))?;
                    }
                    Some(dir)
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
                                continue;
                            }
                        }
                        Some(p.clone())
                    }
                    None if *required => {
                        return Err(BuildError::Step {
                            line: 0,
                            msg: format!(
                                "secret {id} not found: give it with --secret id={id},src=FILE"
                            ),
                        })
                    }
                    None => continue,
                },
                RunMountKind::Ssh { id, required } => match opts.ssh.get(id) {
                    Some(sock) => {
                        if !env.iter().any(|e| e.starts_with("SSH_AUTH_SOCK=")) {
                            env.push(format!("SSH_AUTH_SOCK={target}"));
                        }
                        Some(sock.clone())
                    }
                    None if *required => {
                        return Err(BuildError::Step {
                            line: 0,
                            msg: format!(
                                "no SSH key {id:?} forwarded from the client: give it with --ssh {id}[=SOCKET]"
                            ),
                        })
                    }
                    None => continue,
                },
                RunMountKind::Bind { from, source } => {
                    let base = match from {
                        Some(f) => {
                            let v = self.mount_view(plan, built, f)?;
                            let root = v.1.clone();
                            views.push(v);
                            root
                        }
                        None => self.context.root().to_path_buf(),
                    };
                    let host = crate::copy::resolve_in_root(&base, source, true);
                    if !host.exists() {
                        return Err(BuildError::Step {
                            line: 0,
                            msg: format!("failed to compute cache key: {source:?} not found"),
                        });
                    }
                    if m.readonly {
                        Some(host)
                    } else {
                        // A writable bind gets a copy: the step must not change its source.
                        let stg = self.store.stage()?;
                        let copy = stg.path().join("bind");
                        let st = std::process::Command::new("cp")
                            .arg("-a")
                            .arg(&host)
                            .arg(&copy)
                            .status()
                            .map_err(|e| BuildError::io(&host, e))?;
                        if !st.success() {
                            return Err(BuildError::Step {
                                line: 0,
                                msg: format!("cannot copy {source} for a writable bind mount"),
                            });
                        }
                        scratch.push(stg);
                        Some(copy)
                    }
                }
            };
            if target.is_empty() || target == "/" {
                return Err(BuildError::Step {
                    line: 0,
                    msg: format!("{}: a mount target is required", m.spec),
                });
            }
            // Every component of the target that the image lacks is a mount point only.
            let mut cur = String::new();
            let mut missing = Vec::new();
            for c in target.split('/').filter(|c| !c.is_empty()) {
                cur.push('/');
                cur.push_str(c);
                if fs::symlink_metadata(crate::copy::resolve_in_root(rootfs, &cur, false)).is_err()
                {
                    missing.push(cur.clone());
                }
            }
            missing.reverse();
            cleanup.extend(missing);
            let tmpfs_size = match &m.kind {
                RunMountKind::Tmpfs { size } => *size,
                _ => None,
            };
            out.push(HostMount {
                source,
                target,
                readonly: m.readonly,
                tmpfs_size,
            });
        }
        Ok((out, cleanup))
    }
}
