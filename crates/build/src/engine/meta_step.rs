//! Steps that change only the image config (ENV, LABEL, ARG, EXPOSE, VOLUME, USER, CMD, …):
//! no container runs, but Docker's classic builder still reports one and records the step
//! as `#(nop) ` and a comment in the probe and the history.

use oci::{ContainerConfig, HealthConfig};

use super::*;
use crate::steps::Healthcheck;

impl Builder<'_> {
    /// Applies a metadata step: the new config, probed with `#(nop) ` and the comment.
    pub(super) fn meta_step(&mut self, st: &mut StageState, step: &Step) -> Result<()> {
        let mut cfg = st.run_config();
        let comment = self.meta_change(st, &mut cfg, step)?;
        let mut probe = cfg.clone();
        let mut cmd = st.shell.clone();
        cmd.push("#(nop) ".into());
        cmd.push(comment);
        probe.cmd = Some(cmd);
        let mut new_cfg = st.config.clone();
        new_cfg.config = Some(cfg);
        if self.probe(st, &probe)? {
            return Ok(());
        }
        let cid = new_container_id();
        self.say(st.quiet, &format!(" ---> Running in {}", &cid[..12]));
        self.say(
            st.quiet,
            &format!("Removing intermediate container {}", &cid[..12]),
        );
        new_cfg.container = cid;
        self.commit(st, new_cfg, Some(probe), None).map(|_| ())
    }

    /// Changes `cfg` (and the stage state) as the step says; returns the step's comment.
    fn meta_change(
        &self,
        st: &mut StageState,
        cfg: &mut ContainerConfig,
        step: &Step,
    ) -> Result<String> {
        Ok(match &step.op {
            Op::Env(pairs) => self.env(st, cfg, pairs)?,
            Op::Label { pairs, expand } => self.label(st, cfg, pairs, *expand)?,
            Op::Maintainer(m) => {
                st.config.author = m.clone();
                format!("MAINTAINER {m}")
            }
            Op::Arg(list) => self.arg(st, list)?,
            Op::Expose(ports) => self.expose(st, cfg, ports)?,
            Op::Volume(vols) => self.volume(st, cfg, vols, step.line)?,
            Op::User(u) => {
                cfg.user = self.expand(st, u)?;
                format!("USER {}", cfg.user)
            }
            Op::StopSignal(s) => {
                cfg.stop_signal = self.expand(st, s)?;
                if dockerfile::parse_signal(&cfg.stop_signal).is_err() {
                    return Err(BuildError::Step {
                        line: step.line,
                        msg: format!("Invalid signal: {}", cfg.stop_signal),
                    });
                }
                format!("STOPSIGNAL {}", cfg.stop_signal)
            }
            Op::Cmd(form) => {
                let argv = command_argv(form, &st.shell);
                let comment = format!("CMD {}", gofmt::quote_list(&argv));
                // `CMD []` leaves no command (Docker's parser makes no words of it).
                cfg.cmd = (!argv.is_empty()).then_some(argv);
                st.cmd_set = true;
                comment
            }
            Op::Entrypoint(form) => {
                let argv = command_argv(form, &st.shell);
                let comment = format!("ENTRYPOINT {}", gofmt::quote_list(&argv));
                cfg.entrypoint = (!argv.is_empty()).then_some(argv);
                if !st.cmd_set {
                    cfg.cmd = None;
                }
                comment
            }
            Op::Shell(sh) => {
                cfg.shell = Some(sh.clone());
                st.shell = sh.clone();
                format!("SHELL {}", gofmt::plain_list(sh))
            }
            Op::Healthcheck(h) => {
                let hc = health_config(h);
                let comment = health_comment(&hc);
                cfg.healthcheck = Some(hc);
                comment
            }
            Op::OnBuild(t) => {
                cfg.on_build.get_or_insert_with(Vec::new).push(t.clone());
                format!("ONBUILD {t}")
            }
            Op::Run(..) | Op::Workdir(_) | Op::Copy { .. } => {
                unreachable!("RUN, WORKDIR, COPY and ADD are steps of their own")
            }
        })
    }

    /// Every pair of one ENV sees the environment from before the instruction.
    fn env(
        &self,
        st: &StageState,
        cfg: &mut ContainerConfig,
        pairs: &[(String, String)],
    ) -> Result<String> {
        let before = st.env_pairs();
        let word = |w: &str| self.frontend.word(w, &before).map_err(BuildError::Frontend);
        let mut parts = Vec::new();
        let env = cfg.env.get_or_insert_with(Vec::new);
        for (k, v) in pairs {
            let (k, v) = (word(k)?, word(v)?);
            let same = |e: &&mut String| e.split_once('=').map(|(n, _)| n == k).unwrap_or(false);
            if let Some(e) = env.iter_mut().find(same) {
                *e = format!("{k}={v}");
            } else {
                env.push(format!("{k}={v}"));
            }
            parts.push(format!("{k}={v}"));
        }
        Ok(format!("ENV {}", parts.join(" ")))
    }

    fn label(
        &self,
        st: &StageState,
        cfg: &mut ContainerConfig,
        pairs: &[(String, String)],
        expand: bool,
    ) -> Result<String> {
        let mut parts = Vec::new();
        let labels = cfg.labels.get_or_insert_with(Default::default);
        for (k, v) in pairs {
            let (k, v) = if expand {
                (self.expand(st, k)?, self.expand(st, v)?)
            } else {
                (k.clone(), v.clone())
            };
            parts.push(format!("{k}={v}"));
            labels.insert(k, v);
        }
        Ok(format!("LABEL {}", parts.join(" ")))
    }

    /// ARG: a `--build-arg` value, else the default expanded; in scope from here on.
    fn arg(&self, st: &mut StageState, list: &[(String, Option<String>)]) -> Result<String> {
        let mut parts = Vec::new();
        for (name, default) in list {
            st.build
                .referenced
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(name.clone());
            // A build argument wins; then the stage's own default; then, for `ARG NAME`
            // without one, the default of the same ARG before the first FROM (Docker's
            // classic builder and BuildKit alike).
            let value = match st.opts().build_args.get(name) {
                Some(v) => Some(v.clone()),
                None => match default {
                    Some(d) => Some(self.expand(st, d)?),
                    None => st
                        .build
                        .meta
                        .iter()
                        .rev()
                        .find(|(k, _)| k == name)
                        .map(|(_, v)| v.clone()),
                },
            };
            st.args.retain(|(k, _)| k != name);
            st.args.push((name.clone(), value));
            parts.push(match default {
                Some(d) => format!("{name}={d}"),
                None => name.clone(),
            });
        }
        Ok(format!("ARG {}", parts.join(" ")))
    }

    /// EXPOSE: every word a port or a range of ports (`/tcp` unless a protocol is given), each
    /// port of a range exposed on its own; the history keeps the words as written, sorted, as
    /// Docker's classic builder does.
    fn expose(
        &self,
        st: &StageState,
        cfg: &mut ContainerConfig,
        ports: &[String],
    ) -> Result<String> {
        let mut words = Vec::new();
        for p in ports {
            words.extend(
                self.frontend
                    .words(p, &st.env_pairs())
                    .map_err(BuildError::Frontend)?,
            );
        }
        let set = cfg.exposed_ports.get_or_insert_with(Default::default);
        for w in &words {
            let expanded = dockerfile::expose_ports(w).map_err(|e| BuildError::Step {
                line: 0,
                msg: e.to_string(),
            })?;
            set.extend(expanded);
        }
        words.sort();
        Ok(format!("EXPOSE {}", words.join(" ")))
    }

    fn volume(
        &self,
        st: &StageState,
        cfg: &mut ContainerConfig,
        vols: &[String],
        line: usize,
    ) -> Result<String> {
        let mut all = Vec::new();
        for v in vols {
            let w = self.expand(st, v)?;
            if w.is_empty() {
                return Err(BuildError::Step {
                    line,
                    msg: "VOLUME specified can not be an empty string".into(),
                });
            }
            all.push(w);
        }
        let set = cfg.volumes.get_or_insert_with(Default::default);
        for v in &all {
            set.insert(v.clone());
        }
        Ok(format!("VOLUME {}", gofmt::plain_list(&all)))
    }
}

fn health_config(h: &Healthcheck) -> HealthConfig {
    let test = match &h.test {
        None => vec!["NONE".to_string()],
        Some(CommandForm::Shell(s)) => vec!["CMD-SHELL".to_string(), s.clone()],
        Some(CommandForm::Exec(v)) => {
            let mut t = vec!["CMD".to_string()];
            t.extend(v.iter().cloned());
            t
        }
    };
    HealthConfig {
        test: Some(test),
        interval: h.interval_ns,
        timeout: h.timeout_ns,
        start_period: h.start_period_ns,
        start_interval: h.start_interval_ns,
        retries: h.retries,
        ..Default::default()
    }
}

/// The HEALTHCHECK comment: Go's `%v` of Docker's struct.
fn health_comment(hc: &HealthConfig) -> String {
    format!(
        "HEALTHCHECK &{{{} {} {} {} {}}}",
        gofmt::quote_list(hc.test.as_deref().unwrap_or_default()),
        gofmt::quote(&gofmt::duration(hc.interval)),
        gofmt::quote(&gofmt::duration(hc.timeout)),
        gofmt::quote(&gofmt::duration(hc.start_period)),
        gofmt::quote_rune(hc.retries)
    )
}
