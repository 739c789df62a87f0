//! The Dockerfile instructions `import --change` (and `commit --change`) apply to a config:
//! ENV, CMD, ENTRYPOINT, WORKDIR, USER, EXPOSE, LABEL, VOLUME, STOPSIGNAL, ONBUILD. Each is
//! parsed and expanded by the Dockerfile frontend, as one line of a Dockerfile.

use dockerfile::{Command, EnvList, ShellLex};
use oci::ContainerConfig;

use crate::error::{Error, Result};

fn bad(change: &str, reason: impl Into<String>) -> Error {
    Error::Change {
        change: change.to_string(),
        reason: reason.into(),
    }
}

fn argv(cmd: &dockerfile::CommandLine) -> Vec<String> {
    if cmd.prepend_shell {
        let mut v = vec!["/bin/sh".to_string(), "-c".to_string()];
        v.extend(cmd.args.iter().cloned());
        v
    } else {
        cmd.args.clone()
    }
}

/// Applies one instruction to `cfg`.
pub fn apply_change(cfg: &mut ContainerConfig, change: &str) -> Result<()> {
    // Docker's daemon checks the instruction's name first, in lower case.
    let word = change
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    const ALLOWED: [&str; 10] = [
        "entrypoint",
        "cmd",
        "user",
        "workdir",
        "env",
        "volume",
        "expose",
        "onbuild",
        "label",
        "stopsignal",
    ];
    if !ALLOWED.contains(&word.as_str()) {
        return Err(bad(change, format!("{word} is not a valid change command")));
    }
    let text = format!("FROM scratch\n{}\n", change.trim());
    let df = dockerfile::parse_and_lower(&text, &Default::default()).map_err(|e| {
        // The parser's own words, without the Dockerfile line this one-line text had.
        let m = e.to_string();
        let m = match m.strip_prefix("dockerfile parse error line ") {
            Some(rest) => rest
                .split_once(": ")
                .map_or(m.clone(), |(_, r)| r.to_string()),
            None => m,
        };
        bad(change, m)
    })?;
    let ins = df
        .stages
        .first()
        .and_then(|s| s.instructions.first())
        .ok_or_else(|| bad(change, "empty instruction"))?;
    let env = EnvList(cfg.env.clone().unwrap_or_default());
    let ins = ins
        .expand(&ShellLex::new(df.escape), &env)
        .map_err(|e| bad(change, e.to_string()))?;
    match ins.command {
        Command::Env(kv) => {
            let list = cfg.env.get_or_insert_with(Vec::new);
            for k in kv {
                list.retain(|e| e.split_once('=').map(|(n, _)| n) != Some(k.key.as_str()));
                list.push(format!("{}={}", k.key, k.value));
            }
        }
        Command::Label(kv) => {
            let labels = cfg.labels.get_or_insert_with(Default::default);
            for k in kv {
                labels.insert(k.key, k.value);
            }
        }
        Command::Cmd(c) => cfg.cmd = Some(argv(&c)),
        Command::Entrypoint(c) => cfg.entrypoint = Some(argv(&c)),
        Command::Workdir(w) => cfg.working_dir = w,
        Command::User(u) => cfg.user = u,
        Command::StopSignal(s) => cfg.stop_signal = s,
        Command::Expose(ports) => {
            let set = cfg.exposed_ports.get_or_insert_with(Default::default);
            for p in ports {
                set.insert(if p.contains('/') {
                    p
                } else {
                    format!("{p}/tcp")
                });
            }
        }
        Command::Volume(vols) => {
            let set = cfg.volumes.get_or_insert_with(Default::default);
            set.extend(vols);
        }
        Command::Onbuild(t) => cfg.on_build.get_or_insert_with(Vec::new).push(t),
        _ => {
            let word = change
                .split_whitespace()
                .next()
                .unwrap_or("")
                .to_ascii_uppercase();
            return Err(bad(change, format!("{word} is not a valid change command")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_apply_as_dockerfile_lines() {
        let mut c = ContainerConfig::default();
        for ch in [
            "ENV A=1 B=\"two words\"",
            "ENV C $A",
            "CMD [\"sh\"]",
            "ENTRYPOINT echo hi",
            "EXPOSE 80 53/udp",
            "LABEL a=b",
            "VOLUME /data",
            "WORKDIR /srv",
            "USER 1000",
            "STOPSIGNAL SIGKILL",
        ] {
            apply_change(&mut c, ch).unwrap();
        }
        assert_eq!(
            c.env,
            Some(vec!["A=1".into(), "B=two words".into(), "C=1".into()])
        );
        assert_eq!(c.cmd, Some(vec!["sh".into()]));
        assert_eq!(
            c.entrypoint,
            Some(vec!["/bin/sh".into(), "-c".into(), "echo hi".into()])
        );
        assert!(c.exposed_ports.as_ref().unwrap().contains("80/tcp"));
        assert_eq!(c.working_dir, "/srv");
        assert!(apply_change(&mut c, "RUN echo")
            .unwrap_err()
            .to_string()
            .contains("not a valid change command"));
        assert!(apply_change(&mut c, "FROOM x").is_err());
    }
}
