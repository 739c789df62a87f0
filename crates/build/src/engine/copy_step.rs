//! COPY and ADD: sources from the context, a stage, an image or heredocs; the probe key from
//! their content hash; the copy into the step's snapshot. Also the read-only views of other
//! stages' and images' root filesystems that `COPY --from` and `RUN --mount=from=` read.

use std::fs;
use std::path::PathBuf;

use oci::ContainerConfig;

use super::*;

/// A COPY or ADD with its words expanded.
struct CopyWords {
    /// `COPY` or `ADD`, as errors and the probe name it.
    kind: &'static str,
    srcs: Vec<String>,
    dest: String,
    chown: Option<String>,
    /// Downloaded URLs (ADD) or heredoc files: a scratch context of their own.
    staging: Option<store::Staging>,
    /// `staging` holds downloads (which stay archives and are hashed as downloads).
    downloaded: bool,
}

/// Where a COPY reads: the build context, or a context of its own (downloads, heredocs, or
/// a view of a stage or image, which must be unmounted after the step).
struct CopyFrom {
    ctx: Option<Context>,
    view: Option<(String, PathBuf)>,
}

impl Builder<'_> {
    pub(super) fn copy(&mut self, st: &mut StageState, step: &Step) -> Result<()> {
        let Op::Copy {
            add,
            from,
            chmod,
            link,
            ..
        } = &step.op
        else {
            unreachable!("copy() is called for COPY and ADD")
        };
        let line = step.line;
        let w = self.copy_words(st, step)?;
        let from = self.copy_from(st, &w, from.as_deref(), line)?;
        let default_ctx = self.context;
        let ctx = from.ctx.as_ref().unwrap_or(default_ctx);
        let mut sources = match ctx.sources(&w.srcs) {
            Ok(s) => s,
            Err(e) => {
                self.drop_view(from.view);
                return Err(match e {
                    crate::ContextError::NotFound(p) => BuildError::Step {
                        line,
                        msg: format!("{} failed: file not found in build context or excluded by .dockerignore: stat {p}: file does not exist", w.kind),
                    },
                    e @ (crate::ContextError::NoSources | crate::ContextError::Outside(_)) => {
                        BuildError::Step {
                            line,
                            msg: format!("{} failed: {e}", w.kind),
                        }
                    }
                    e => e.into(),
                });
            }
        };
        if sources.sources.len() > 1 && !w.dest.ends_with('/') {
            self.drop_view(from.view);
            return Err(BuildError::Step {
                line,
                msg: format!(
                    "When using {} with more than one source file, the destination must be a directory and end with a /",
                    w.kind
                ),
            });
        }
        let probe = copy_probe(st, &w, chmod.as_deref(), &sources.hash);
        st.files = Some((sources.hash.clone(), std::mem::take(&mut sources.files)));
        // `COPY --link` (with no owner name to look up under it): the layer depends on the
        // sources only, so the one made on another parent is reused.
        let numeric = |c: &str| c.split(':').all(|p| p.parse::<u32>().is_ok());
        let link_key = (*link && w.chown.as_deref().is_none_or(numeric))
            .then(|| linked_key(&probe, &abs_dest(st, &w.dest)));
        let linked_layer = match link_key.as_ref().filter(|_| !st.opts().no_cache) {
            Some(key) => self.store.linked_layer(key)?,
            None => None,
        };
        // A miss that reuses a linked layer is no miss to the user.
        st.hide_miss = linked_layer.is_some();
        let hit = self.probe(st, &probe);
        st.hide_miss = false;
        if hit? {
            self.drop_view(from.view);
            return Ok(());
        }
        {
            if let Some(diff_id) = linked_layer {
                self.drop_view(from.view);
                self.say(st.quiet, " ---> Using cache");
                st.cached = true;
                let mut new_cfg = st.config.clone();
                new_cfg.container = String::new();
                let layer = Some(StepLayer::Stored(diff_id));
                self.commit_with(st, new_cfg, Some(probe), layer, None)?;
                return Ok(());
            }
        }
        // A linked layer is made in an empty directory, else in the step's snapshot.
        let linked = match &link_key {
            Some(_) => match self
                .store
                .stage()
                .and_then(|stg| Ok((stg.new_dir("layer")?, stg)))
            {
                Ok(x) => Some(x),
                Err(e) => {
                    self.drop_view(from.view);
                    return Err(e.into());
                }
            },
            None => None,
        };
        let cid = new_container_id();
        let (key, rootfs) = match &linked {
            Some((dir, _)) => (String::new(), dir.clone()),
            None => match self.mount(st, &cid) {
                Ok(x) => x,
                Err(e) => {
                    self.drop_view(from.view);
                    return Err(e);
                }
            },
        };
        let take = |b: &mut Self, keep: bool| -> Result<Option<NewLayer>> {
            match &linked {
                None => b.unmount_and_take(&key, &rootfs, keep, &[]),
                Some(_) => Ok(None),
            }
        };
        // Docker resolves `--chown` in the step's root filesystem, and says so unprefixed.
        if let Some(Err(e)) = w
            .chown
            .as_deref()
            .map(|c| crate::copy::parse_chown(&rootfs, c))
        {
            let _ = take(self, false);
            self.drop_view(from.view);
            return Err(BuildError::Step {
                line,
                msg: e.to_string(),
            });
        }
        let upper = self.overlay_upper(&key);
        let copied = copy_into(&CopyRequest {
            context: ctx,
            sources: &sources.sources,
            rootfs: &rootfs,
            dest: &abs_dest(st, &w.dest),
            dest_is_dir_hint: w.dest.ends_with('/')
                || w.dest.ends_with("/.")
                || sources.sources.len() > 1,
            chown: w.chown.as_deref(),
            chmod: chmod.as_deref(),
            // A downloaded archive stays an archive.
            extract_archives: *add && !w.downloaded,
            upper: upper.as_deref(),
        });
        let layer = take(self, copied.is_ok());
        self.drop_view(from.view);
        copied.map_err(|msg| BuildError::Step {
            line,
            msg: format!("{} failed: {msg}", w.kind),
        })?;
        if let Some((dir, staging)) = linked {
            let layer = image::stage_layer_dir(&staging, dir)?;
            let layer = NewLayer {
                _staging: staging,
                layer,
            };
            let mut new_cfg = st.config.clone();
            new_cfg.container = String::new();
            let layer = Some(StepLayer::New(Box::new(layer)));
            self.commit_with(st, new_cfg, Some(probe), layer, link_key.as_deref())?;
            return Ok(());
        }
        // COPY always makes a layer, even an empty one, as Docker's classic builder does.
        let layer = match layer? {
            Some(l) => l,
            None => self.empty_layer()?,
        };
        let mut new_cfg = st.config.clone();
        new_cfg.container = String::new();
        self.commit(st, new_cfg, Some(probe), Some(layer))?;
        Ok(())
    }

    /// Expands the sources, the destination and `--chown`; downloads URLs (ADD: every
    /// build, as Docker's classic builder does; COPY refuses them) and writes heredocs.
    fn copy_words(&mut self, st: &StageState, step: &Step) -> Result<CopyWords> {
        let Op::Copy {
            add,
            inline,
            srcs,
            dest,
            from,
            chown,
            ..
        } = &step.op
        else {
            unreachable!("copy_words() is called for COPY and ADD")
        };
        let line = step.line;
        let kind = if *add { "ADD" } else { "COPY" };
        let mut exp_srcs = Vec::new();
        for s in srcs {
            exp_srcs.push(self.expand(st, s)?);
        }
        let urls = exp_srcs.iter().filter(|s| super::remote::is_url(s)).count();
        if urls > 0 && !*add {
            return Err(BuildError::Step {
                line,
                msg: "COPY failed: source can't be a URL for COPY".into(),
            });
        }
        if urls > 0 && (urls != exp_srcs.len() || from.is_some() || !inline.is_empty()) {
            return Err(BuildError::Step {
                line,
                msg: "ADD: URLs cannot be mixed with other sources in one instruction".into(),
            });
        }
        let mut staging = None;
        if urls > 0 {
            let (stg, names) = self.download(&exp_srcs, line, st.quiet)?;
            exp_srcs = names;
            staging = Some(stg);
        }
        let dest = self.expand(st, dest)?;
        let chown = chown.as_ref().map(|c| self.expand(st, c)).transpose()?;
        // Heredoc sources become files in a scratch context of their own.
        if !inline.is_empty() {
            let stg = self.store.stage()?;
            for (name, data) in inline {
                let p = stg.path().join(name.trim_start_matches('/'));
                fs::write(&p, data).map_err(|e| BuildError::io(&p, e))?;
                exp_srcs.push(name.trim_start_matches('/').to_string());
            }
            staging = Some(stg);
        }
        Ok(CopyWords {
            kind,
            srcs: exp_srcs,
            dest,
            chown,
            staging,
            downloaded: urls > 0,
        })
    }

    /// The context a COPY reads from: its own scratch context, a stage's or image's root
    /// filesystem (`--from`), or the build context (`ctx: None`).
    fn copy_from(
        &mut self,
        st: &StageState,
        w: &CopyWords,
        from: Option<&str>,
        line: usize,
    ) -> Result<CopyFrom> {
        let own = |ctx| CopyFrom {
            ctx: Some(ctx),
            view: None,
        };
        match (&w.staging, from) {
            (Some(stg), _) if w.downloaded => {
                Ok(own(
                    Context::new(stg.path(), Box::new(|_| false)).for_downloads()
                ))
            }
            (Some(stg), _) => Ok(own(Context::new(stg.path(), Box::new(|_| false)))),
            (None, None) => Ok(CopyFrom {
                ctx: None,
                view: None,
            }),
            (None, Some(f)) => {
                let f = self.expand(st, f)?;
                let (key, root) = self.mount_view(st, &f).map_err(|e| e.with_line(line))?;
                Ok(CopyFrom {
                    ctx: Some(Context::new(root.clone(), Box::new(|_| false)).with_owner_names()),
                    view: Some((key, root)),
                })
            }
        }
    }

    /// Mounts a read-only view of a stage's or image's root filesystem: `from` names an
    /// earlier stage (by name or index) or else an image, pulled when missing. Other
    /// indexes fail as Docker's classic builder fails them: `invalid from flag value 1:
    /// refers to current build stage` / `index out of bounds`.
    pub(super) fn mount_view(&mut self, st: &StageState, from: &str) -> Result<(String, PathBuf)> {
        let bs = st.build;
        let invalid = |why: &str| BuildError::Step {
            line: 0,
            msg: format!("invalid from flag value {from}: {why}"),
        };
        let by_name = bs.plan.stages[..st.index]
            .iter()
            .position(|s| s.is_named(from));
        let index = match by_name {
            Some(j) => Some(j),
            None => match from.parse::<i64>() {
                Ok(i) if i == st.index as i64 => {
                    return Err(invalid("refers to current build stage"))
                }
                Ok(i) if i < 0 || i > st.index as i64 => {
                    return Err(invalid("index out of bounds"))
                }
                Ok(i) => Some(i as usize),
                Err(_) => None,
            },
        };
        let id = match index {
            Some(j) => bs.graph.built(st.index, j)?,
            None => self
                .base_image(from, bs.opts)
                .map_err(|e| invalid(&e.to_string()))?,
        };
        let cfg = image::read_config(self.store, &id)?;
        let lowers: Vec<PathBuf> = cfg
            .diff_ids()
            .iter()
            .rev()
            .map(|d| self.store.layer_dir(d))
            .collect();
        let key = format!("from-{}-{}", std::process::id(), &new_container_id()[..12]);
        let mounts = self.snapshots.view(&key, &lowers)?;
        let root = self.work_dir.join(&key);
        fs::create_dir_all(&root).map_err(|e| BuildError::io(&root, e))?;
        if let Err(e) = snapshot::mount_all(&mounts, &root) {
            let _ = self.snapshots.remove(&key);
            return Err(e.into());
        }
        Ok((key, root))
    }

    /// The upper directory of a snapshot mounted as one overlay, which COPY may write into
    /// directly (`None` for the copy snapshotter, whose upper directory is computed after).
    fn overlay_upper(&self, key: &str) -> Option<PathBuf> {
        match self.snapshots.mounts(key).ok()?.as_slice() {
            [m] if m.kind == "overlay" => m.option("upperdir").map(PathBuf::from),
            _ => None,
        }
    }

    pub(super) fn drop_view(&self, m: Option<(String, PathBuf)>) {
        if let Some((key, root)) = m {
            let _ = snapshot::unmount_all(&root);
            let _ = fs::remove_dir(&root);
            let _ = self.snapshots.remove(&key);
        }
    }

    /// The empty layer (a tar of two zero blocks), for COPY steps that changed nothing.
    pub(super) fn empty_layer(&mut self) -> Result<NewLayer> {
        let staging = self.store.stage()?;
        let dir = staging.new_dir("layer")?;
        let layer = image::stage_layer_dir(&staging, dir)?;
        Ok(NewLayer {
            _staging: staging,
            layer,
        })
    }
}

/// The probe of a COPY or ADD: the sources' hash, after `--chown=U:G` as Docker writes it;
/// `--chmod` (which only BuildKit knows) follows the same style so that changing it is a
/// cache miss.
fn copy_probe(st: &StageState, w: &CopyWords, chmod: Option<&str>, hash: &str) -> ContainerConfig {
    let mut probe = st.run_config();
    let mut cmd = st.shell.clone();
    let mut flags = w
        .chown
        .as_ref()
        .map(|c| format!("--chown={c}"))
        .unwrap_or_default();
    if let Some(m) = chmod {
        flags.push_str(&format!("--chmod={m}"));
    }
    cmd.push(format!("#(nop) {} {flags}{hash} in {} ", w.kind, w.dest));
    probe.cmd = Some(cmd);
    probe
}

/// The key of a `COPY --link` layer: the step's probe command (sources' hash, flags,
/// destination) and the absolute destination, nothing of the layers under it.
fn linked_key(probe: &ContainerConfig, dest: &str) -> String {
    let cmd = probe
        .cmd
        .as_ref()
        .and_then(|c| c.last())
        .map(String::as_str);
    let text = format!("strata-link-1\0{}\0{dest}", cmd.unwrap_or_default());
    oci::Digest::of(text.as_bytes()).to_string()
}

/// The destination as an absolute path: relative ones are under WORKDIR.
fn abs_dest(st: &StageState, dest: &str) -> String {
    if dest.starts_with('/') {
        return dest.to_string();
    }
    let wd = st.run_config().working_dir;
    format!("{}/{dest}", wd.trim_end_matches('/'))
}
