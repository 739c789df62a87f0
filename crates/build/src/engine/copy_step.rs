//! COPY and ADD: sources from the context, a stage, an image or heredocs; the probe key from
//! their content hash; the copy into the step's snapshot. Also the read-only views of other
//! stages' and images' root filesystems that `COPY --from` and `RUN --mount=from=` read.

use std::fs;
use std::path::PathBuf;

use oci::Digest;

use super::*;

impl Builder<'_> {
    pub(super) fn copy(
        &mut self,
        st: &mut StageState,
        plan: &Plan,
        built: &[Option<Digest>],
        step: &Step,
        opts: &BuildOptions,
    ) -> Result<()> {
        let Op::Copy {
            add,
            inline,
            srcs,
            dest,
            from,
            chown,
            chmod,
        } = &step.op
        else {
            unreachable!("copy() is called for COPY and ADD")
        };
        let line = step.line;
        let word = "COPY";
        let kind = if *add { "ADD" } else { word };
        let mut exp_srcs = Vec::new();
        for s in srcs {
            exp_srcs.push(self.expand(st, s, line)?);
        }
        // URLs: ADD downloads them (every build, as Docker's classic builder); COPY refuses.
        let urls = exp_srcs.iter().filter(|s| super::remote::is_url(s)).count();
        if urls > 0 && !*add {
            return Err(BuildError::Step {
                line,
                msg: "source can't be a URL for COPY".into(),
            });
        }
        if urls > 0 && (urls != exp_srcs.len() || from.is_some() || !inline.is_empty()) {
            return Err(BuildError::Step {
                line,
                msg: "ADD: URLs cannot be mixed with other sources in one instruction".into(),
            });
        }
        let remote_staging = if urls > 0 {
            let (stg, names) = self.download(&exp_srcs, line, opts.quiet)?;
            exp_srcs = names;
            Some(stg)
        } else {
            None
        };
        let dest = self.expand(st, dest, line)?;
        let chown = chown
            .as_ref()
            .map(|c| self.expand(st, c, line))
            .transpose()?;
        // The sources: the context, or the root filesystem of a stage or image.
        let mut from_mount: Option<(String, PathBuf)> = None;
        let from_ctx;
        // Heredoc sources become files in a scratch context of their own.
        let inline_staging = if inline.is_empty() {
            None
        } else {
            Some(self.store.stage()?)
        };
        if let Some(stg) = &inline_staging {
            for (name, data) in inline {
                let p = stg.path().join(name.trim_start_matches('/'));
                fs::write(&p, data).map_err(|e| BuildError::io(&p, e))?;
                exp_srcs.push(name.trim_start_matches('/').to_string());
            }
        }
        let ctx: &Context = match (from, &inline_staging) {
            _ if remote_staging.is_some() => {
                let stg = remote_staging.as_ref().expect("checked");
                from_ctx = Context::new(stg.path(), Box::new(|_| false)).for_downloads();
                &from_ctx
            }
            (_, Some(stg)) => {
                from_ctx = Context::new(stg.path(), Box::new(|_| false));
                &from_ctx
            }
            (None, None) => self.context,
            (Some(f), None) => {
                let f = self.expand(st, f, line)?;
                let (key, root) = self
                    .mount_view(plan, built, &f)
                    .map_err(|e| e.with_line(line))?;
                from_mount = Some((key, root.clone()));
                from_ctx = Context::new(root, Box::new(|_| false)).with_owner_names();
                &from_ctx
            }
        };
        let sources = match ctx.sources(&exp_srcs) {
            Ok(s) => s,
            Err(e) => {
                self.drop_view(from_mount);
                return Err(match e {
                    crate::ContextError::NotFound(p) => BuildError::Step {
                        line,
                        msg: format!("{kind} failed: file not found in build context or excluded by .dockerignore: stat {p}: file does not exist"),
                    },
                    e => e.into(),
                });
            }
        };
        let wd = st.run_config().working_dir;
        let abs_dest = if dest.starts_with('/') {
            dest.clone()
        } else {
            format!(
                "{}/{}",
                if wd.is_empty() {
                    ""
                } else {
                    wd.trim_end_matches('/')
                },
                dest
            )
        };
        let mut probe = st.run_config();
        let mut cmd = st.shell.clone();
        // Docker writes `--chown=U:G` right before the hash; `--chmod` (which only BuildKit
        // knows) follows the same style so that changing it is a cache miss.
        let mut chown_part = chown
            .as_ref()
            .map(|c| format!("--chown={c}"))
            .unwrap_or_default();
        if let Some(m) = chmod {
            chown_part.push_str(&format!("--chmod={m}"));
        }
        cmd.push(format!(
            "#(nop) {kind} {chown_part}{} in {dest} ",
            sources.hash
        ));
        probe.cmd = Some(cmd);
        if self.probe(st, &probe, opts)? {
            self.drop_view(from_mount);
            return Ok(());
        }
        let cid = new_container_id();
        let res = self.mount(st, &cid);
        let (key, rootfs) = match res {
            Ok(x) => x,
            Err(e) => {
                self.drop_view(from_mount);
                return Err(e);
            }
        };
        let copied = copy_into(&CopyRequest {
            context: ctx,
            sources: &sources.sources,
            rootfs: &rootfs,
            dest: &abs_dest,
            dest_is_dir_hint: dest.ends_with('/')
                || dest.ends_with("/.")
                || sources.sources.len() > 1,
            chown: chown.as_deref(),
            chmod: chmod.as_deref(),
            // A downloaded archive stays an archive.
            extract_archives: *add && remote_staging.is_none(),
        });
        let layer = self.unmount_and_take(&key, &rootfs, copied.is_ok(), &[]);
        self.drop_view(from_mount);
        copied.map_err(|msg| BuildError::Step {
            line,
            msg: format!("{kind} failed: {msg}"),
        })?;
        let layer = layer?;
        let mut new_cfg = st.config.clone();
        new_cfg.container = String::new();
        // COPY always makes a layer, even an empty one, as Docker's classic builder does.
        let layer = match layer {
            Some(l) => Some(l),
            None => Some(self.empty_layer()?),
        };
        self.commit(st, new_cfg, Some(probe), layer, opts.quiet)?;
        Ok(())
    }

    /// Mounts a read-only view of a stage's or image's root filesystem.
    pub(super) fn mount_view(
        &mut self,
        plan: &Plan,
        built: &[Option<Digest>],
        from: &str,
    ) -> Result<(String, PathBuf)> {
        let id = match stage_ref(plan, plan.stages.len(), from) {
            Some(j) => built
                .get(j)
                .copied()
                .flatten()
                .ok_or_else(|| BuildError::Step {
                    line: 0,
                    msg: format!("stage {from} was not built"),
                })?,
            None => image::resolve(self.store, from)?,
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
        let mut w = staging.blob_writer()?;
        let d = layer::write_layer(&dir, &mut w, layer::Compression::Gzip)?;
        let blob = w.finish(Some(&d.digest))?;
        let rec = LayerRecord {
            diff_id: d.diff_id,
            size: 0,
            tar_size: d.uncompressed_size,
            blob: Some(BlobRef {
                digest: d.digest,
                media_type: image::layer_media_type(layer::Compression::Gzip),
                size: d.size,
            }),
        };
        Ok(NewLayer {
            _staging: staging,
            dir,
            rec,
            blob,
        })
    }
}
