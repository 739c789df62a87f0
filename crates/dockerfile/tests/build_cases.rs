//! Cross-check against Docker's own output: for every shared end-to-end build case, simulate
//! the image configuration a builder derives from the lowered and expanded instructions and
//! compare the fields Docker recorded (Env, Labels, ExposedPorts, WorkingDir, User, Volumes,
//! StopSignal, Shell, Cmd, Entrypoint, Healthcheck, OnBuild). Cases come from
//! `$STRATA_BUILD_CASES` or `../shared/conformance/build/cases`.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use common::conformance_data;
use dockerfile::*;
use serde_json::{json, Map, Value};

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

#[derive(Clone, Default)]
struct Config {
    env: Vec<(String, String)>,
    labels: BTreeMap<String, String>,
    ports: BTreeMap<String, Value>,
    volumes: BTreeMap<String, Value>,
    workdir: String,
    user: String,
    stop: String,
    shell: Option<Vec<String>>,
    cmd: Option<Vec<String>>,
    entrypoint: Option<Vec<String>>,
    health: Option<Value>,
    onbuild: Vec<String>,
}

fn simulate(df: &Dockerfile, idx: usize, done: &BTreeMap<usize, Config>) -> Config {
    let st = &df.stages[idx];
    let mut cfg = match &st.base {
        Base::Stage(i) => done[i].clone(),
        _ => Config {
            env: vec![("PATH".into(), DEFAULT_PATH.into())],
            ..Default::default()
        },
    };
    let mut scope = df.scope();
    for (k, v) in &cfg.env {
        scope.set_env(k, v);
    }
    let lex = df.lexer();
    let mut cmd_set = false;
    for ins in &st.instructions {
        let e = ins.expand(&lex, &scope).unwrap();
        let shell = cfg
            .shell
            .clone()
            .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()]);
        let with_shell = |c: &CommandLine| {
            if c.prepend_shell {
                shell
                    .iter()
                    .cloned()
                    .chain(c.args.iter().cloned())
                    .collect()
            } else {
                c.args.clone()
            }
        };
        match &e.command {
            Command::Env(kv) => {
                for k in kv {
                    scope.set_env(&k.key, &k.value);
                    match cfg.env.iter_mut().find(|(n, _)| n == &k.key) {
                        Some(x) => x.1 = k.value.clone(),
                        None => cfg.env.push((k.key.clone(), k.value.clone())),
                    }
                }
            }
            Command::Arg(_) => scope.apply_arg(&lex, ins).unwrap(),
            Command::Label(kv) => {
                for k in kv {
                    cfg.labels.insert(k.key.clone(), k.value.clone());
                }
            }
            Command::Expose(p) => {
                for p in p {
                    let p = if p.contains('/') {
                        p.clone()
                    } else {
                        format!("{p}/tcp")
                    };
                    cfg.ports.insert(p, json!({}));
                }
            }
            Command::Volume(v) => {
                for v in v {
                    cfg.volumes.insert(v.clone(), json!({}));
                }
            }
            Command::Workdir(p) => cfg.workdir = resolve_workdir(&cfg.workdir, p),
            Command::User(u) => cfg.user = u.clone(),
            Command::StopSignal(s) => {
                parse_signal(s).unwrap();
                cfg.stop = s.clone();
            }
            Command::Shell(s) => cfg.shell = Some(s.clone()),
            Command::Cmd(c) => {
                cfg.cmd = Some(with_shell(c));
                cmd_set = true;
            }
            Command::Entrypoint(c) => {
                cfg.entrypoint = Some(with_shell(c));
                if !cmd_set {
                    cfg.cmd = None;
                }
            }
            Command::Onbuild(t) => cfg.onbuild.push(t.clone()),
            Command::Healthcheck(Healthcheck::Check {
                test,
                interval,
                timeout,
                start_period,
                retries,
                ..
            }) => {
                let mut h = Map::new();
                h.insert("Test".into(), json!(test));
                for (k, d) in [
                    ("Interval", interval),
                    ("Timeout", timeout),
                    ("StartPeriod", start_period),
                ] {
                    if !d.is_zero() {
                        h.insert(k.into(), json!(d.as_nanos() as u64));
                    }
                }
                if *retries != 0 {
                    h.insert("Retries".into(), json!(retries));
                }
                cfg.health = Some(Value::Object(h));
            }
            Command::Healthcheck(Healthcheck::None) => cfg.health = Some(json!({"Test": ["NONE"]})),
            _ => {}
        }
    }
    cfg
}

fn to_json(c: &Config) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert(
        "Env".into(),
        json!(c
            .env
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()),
    );
    m.insert("Labels".into(), json!(c.labels));
    m.insert("ExposedPorts".into(), json!(c.ports));
    m.insert("Volumes".into(), json!(c.volumes));
    m.insert("WorkingDir".into(), json!(c.workdir));
    m.insert("User".into(), json!(c.user));
    m.insert("StopSignal".into(), json!(c.stop));
    m.insert("Shell".into(), json!(c.shell));
    m.insert("Cmd".into(), json!(c.cmd));
    m.insert("Entrypoint".into(), json!(c.entrypoint));
    m.insert("Healthcheck".into(), json!(c.health));
    m.insert("OnBuild".into(), json!(c.onbuild));
    m
}

#[test]
fn build_case_configs_match_docker() {
    let Some(dir) = conformance_data("STRATA_BUILD_CASES", "build/cases") else {
        return;
    };
    let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("Dockerfile").is_file())
        .collect();
    names.sort();
    let (mut passed, mut failed) = (0, 0);
    for case in names {
        let text = std::fs::read_to_string(case.join("Dockerfile")).unwrap();
        let expected: Value =
            serde_json::from_str(&std::fs::read_to_string(case.join("expected.json")).unwrap())
                .unwrap();
        let df = parse_and_lower(&text, &BuildOptions::default()).unwrap();
        let mut done = BTreeMap::new();
        for &i in &df.build_order {
            let c = simulate(&df, i, &done);
            done.insert(i, c);
        }
        let got = to_json(&done[&df.target]);
        let mut ok = true;
        for (k, want) in expected["config"].as_object().unwrap() {
            if got.get(k) != Some(want) {
                ok = false;
                eprintln!(
                    "FAIL {} {k}: want {want}, got {:?}",
                    case.display(),
                    got.get(k)
                );
            }
        }
        if ok {
            passed += 1;
        } else {
            failed += 1;
        }
    }
    println!("{passed} passed, {failed} failed");
    assert_eq!(failed, 0);
}
