//! Golden tests: typed stages after lowering and build-time expansion, covering every
//! instruction and flag, ARG/ENV scoping, stages and targets.

use std::time::Duration;

use dockerfile::*;

/// Expand every instruction of `stage` the way a builder does, with `base_env` as the base
/// image's environment; returns the expanded instructions.
fn run_stage(df: &Dockerfile, stage: usize, base_env: &[(&str, &str)]) -> Vec<Command> {
    let mut scope = df.scope();
    for (k, v) in base_env {
        scope.set_env(k, v);
    }
    let lex = df.lexer();
    let mut out = Vec::new();
    for ins in &df.stages[stage].instructions {
        let e = ins.expand(&lex, &scope).unwrap();
        match &e.command {
            Command::Env(kv) => kv.iter().for_each(|k| scope.set_env(&k.key, &k.value)),
            Command::Arg(_) => scope.apply_arg(&lex, ins).unwrap(),
            _ => {}
        }
        out.push(e.command);
    }
    out
}

fn s(v: &str) -> String {
    v.to_string()
}

fn opts(args: &[(&str, &str)]) -> BuildOptions {
    let mut o = BuildOptions::default();
    for (k, v) in args {
        o.build_args.insert(k.to_string(), v.to_string());
    }
    o
}

#[test]
fn every_instruction_typed_after_expansion() {
    let text = r#"# syntax=docker/dockerfile:1
# check=skip=all
ARG BASE=alpine
ARG TAG
FROM --platform=$BUILDPLATFORM ${BASE}:${TAG:-latest} AS Build
ARG TAG
ARG DIR=/src
ENV HOME=/root PATH=$DIR/bin:$PATH
ENV OLD style value
LABEL "com.example.vendor"="ACME" version=1.0 desc="a $DIR b"
MAINTAINER someone <a@b.c>
WORKDIR $DIR/work
USER ${UID:-1000}:${GID-2000}
VOLUME ["/data", "$DIR/v"]
VOLUME /a $DIR
EXPOSE 80/tcp ${PORTS}
STOPSIGNAL SIG$SIG
ADD --chown=$UID:1 --chmod=0644 --checksum=sha256:abc --keep-git-dir --link --exclude=*.md --unpack=false https://e.com/a.tar $DIR/
COPY --from=1 --chown=a:b --chmod=755 --link --parents --exclude=x --exclude=y a* b/ $DIR/dst/
COPY ["with space", "/dst dir/"]
RUN --mount=type=cache,target=$DIR/cache,id=c1,sharing=private,mode=0700,uid=1,gid=2 --mount=type=bind,from=other,source=/s,target=/t,rw --mount=type=tmpfs,target=/tmp,size=64m --mount=type=secret,id=tok,target=/run/s,required,env=TOKEN --mount=type=ssh,id=default,required=false --network=none --security=insecure echo $DIR
RUN ["echo", "$DIR"]
CMD ["run", "$DIR"]
CMD run $DIR
ENTRYPOINT []
ENTRYPOINT exec app
HEALTHCHECK NONE
HEALTHCHECK --interval=5s --timeout=3s --start-period=1m --start-interval=500ms --retries=3 CMD curl -f http://localhost/
HEALTHCHECK CMD ["true"]
SHELL ["/bin/bash", "-c"]
ONBUILD RUN echo $DIR
FROM scratch AS other
"#;
    let mut o = opts(&[
        ("TAG", "3.19"),
        ("UID", "42"),
        ("PORTS", "443 53/udp"),
        ("SIG", "TERM"),
        ("UNUSED", "1"),
    ]);
    o.build_platform = Platform::parse("linux/arm64").unwrap();
    let df = parse_and_lower(text, &o).unwrap();
    assert_eq!(df.directives.len(), 2);
    assert_eq!(df.directives[1].name, "check");
    let ast = parse(text).unwrap();
    assert!(ast.check_options().unwrap().unwrap().skip_all);
    let ast =
        parse("# check=skip=JSONArgsRecommended, StageNameCasing;error=true\nFROM a\n").unwrap();
    assert_eq!(
        ast.check_options().unwrap(),
        Some(CheckOptions {
            skip: vec![s("JSONArgsRecommended"), s("StageNameCasing")],
            skip_all: false,
            error: true
        })
    );
    let ast = parse("# check=bogus\nFROM a\n").unwrap();
    assert_eq!(
        ast.check_options().unwrap_err().to_string(),
        "dockerfile parse error line 1: invalid check option \"bogus\""
    );
    assert_eq!(
        df.unused_build_args,
        vec![s("PORTS"), s("SIG"), s("UID"), s("UNUSED")]
    );
    let st = &df.stages[0];
    assert_eq!(st.name.as_deref(), Some("build"));
    assert_eq!(st.base, Base::Image(s("alpine:3.19")));
    assert_eq!(st.base_raw, "${BASE}:${TAG:-latest}");
    assert_eq!(st.platform.as_deref(), Some("linux/arm64"));
    assert_eq!(st.line, 5);
    assert_eq!(st.deps, vec![1]);
    assert_eq!(df.build_order, vec![1]);
    assert_eq!(df.build_order_for(Some("build")).unwrap(), vec![1, 0]);
    assert_eq!(df.target, 1);
    assert_eq!(st.instructions[0].original, "ARG TAG");

    let cmds = run_stage(&df, 0, &[("PATH", "/usr/bin")]);
    let mut it = cmds.into_iter();
    assert_eq!(
        it.next().unwrap(),
        Command::Arg(vec![ArgDecl {
            name: s("TAG"),
            default: None
        }])
    );
    assert_eq!(
        it.next().unwrap(),
        Command::Arg(vec![ArgDecl {
            name: s("DIR"),
            default: Some(s("/src"))
        }])
    );
    assert_eq!(
        it.next().unwrap(),
        Command::Env(vec![
            KeyValue {
                key: s("HOME"),
                value: s("/root")
            },
            KeyValue {
                key: s("PATH"),
                value: s("/src/bin:/usr/bin")
            },
        ])
    );
    assert_eq!(
        it.next().unwrap(),
        Command::Env(vec![KeyValue {
            key: s("OLD"),
            value: s("style value")
        }])
    );
    assert_eq!(
        it.next().unwrap(),
        Command::Label(vec![
            KeyValue {
                key: s("com.example.vendor"),
                value: s("ACME")
            },
            KeyValue {
                key: s("version"),
                value: s("1.0")
            },
            KeyValue {
                key: s("desc"),
                value: s("a /src b")
            },
        ])
    );
    assert_eq!(
        it.next().unwrap(),
        Command::Maintainer(s("someone <a@b.c>"))
    );
    assert_eq!(it.next().unwrap(), Command::Workdir(s("/src/work")));
    assert_eq!(
        it.next().unwrap(),
        Command::User(s("1000:2000")),
        "UID not declared by ARG"
    );
    assert_eq!(
        it.next().unwrap(),
        Command::Volume(vec![s("/data"), s("/src/v")])
    );
    assert_eq!(
        it.next().unwrap(),
        Command::Volume(vec![s("/a"), s("/src")])
    );
    assert_eq!(
        it.next().unwrap(),
        Command::Expose(vec![s("80/tcp")]),
        "PORTS not declared"
    );
    assert_eq!(it.next().unwrap(), Command::StopSignal(s("SIG")));
    assert_eq!(
        it.next().unwrap(),
        Command::Add(Add {
            sources: vec![s("https://e.com/a.tar")],
            contents: vec![],
            dest: s("/src/"),
            chown: Some(s(":1")),
            chmod: Some(s("0644")),
            checksum: Some(s("sha256:abc")),
            keep_git_dir: true,
            link: true,
            excludes: vec![s("*.md")],
            unpack: Some(false),
        })
    );
    assert_eq!(
        it.next().unwrap(),
        Command::Copy(Copy {
            sources: vec![s("a*"), s("b/")],
            contents: vec![],
            dest: s("/src/dst/"),
            from: Some(s("1")),
            chown: Some(s("a:b")),
            chmod: Some(s("755")),
            link: true,
            parents: true,
            excludes: vec![s("x"), s("y")],
        })
    );
    let Command::Copy(c) = it.next().unwrap() else {
        panic!()
    };
    assert_eq!((c.sources, c.dest), (vec![s("with space")], s("/dst dir/")));
    let Command::Run(run) = it.next().unwrap() else {
        panic!()
    };
    assert_eq!(
        run.cmd,
        CommandLine {
            args: vec![s("echo $DIR")],
            prepend_shell: true
        }
    );
    assert_eq!(run.network, Some(Network::None));
    assert_eq!(run.security, Some(Security::Insecure));
    assert_eq!(run.mount_specs.len(), 5);
    let m = &run.mounts;
    assert_eq!(m.len(), 5);
    assert_eq!(
        m[0],
        Mount {
            kind: MountType::Cache,
            from: None,
            source: None,
            target: Some(s("/src/cache")),
            readonly: false,
            size: None,
            id: Some(s("c1")),
            sharing: Some(Sharing::Private),
            required: false,
            env: None,
            mode: Some(0o700),
            uid: Some(1),
            gid: Some(2),
        }
    );
    assert_eq!(m[1].kind, MountType::Bind);
    assert_eq!(m[1].from.as_deref(), Some("other"));
    assert_eq!(m[1].source.as_deref(), Some("/s"));
    assert!(!m[1].readonly);
    assert_eq!(
        (m[2].kind, m[2].size, m[2].readonly),
        (MountType::Tmpfs, Some(64 << 20), false)
    );
    assert_eq!(m[3].kind, MountType::Secret);
    assert!(m[3].required && m[3].readonly);
    assert_eq!(m[3].env.as_deref(), Some("TOKEN"));
    assert_eq!((m[4].kind, m[4].required), (MountType::Ssh, false));
    let Command::Run(run) = it.next().unwrap() else {
        panic!()
    };
    assert_eq!(
        run.cmd,
        CommandLine {
            args: vec![s("echo"), s("$DIR")],
            prepend_shell: false
        }
    );
    assert_eq!(run.network, None);
    assert_eq!(
        it.next().unwrap(),
        Command::Cmd(CommandLine {
            args: vec![s("run"), s("$DIR")],
            prepend_shell: false
        })
    );
    assert_eq!(
        it.next().unwrap(),
        Command::Cmd(CommandLine {
            args: vec![s("run $DIR")],
            prepend_shell: true
        })
    );
    assert_eq!(
        it.next().unwrap(),
        Command::Entrypoint(CommandLine {
            args: vec![],
            prepend_shell: false
        })
    );
    assert_eq!(
        it.next().unwrap(),
        Command::Entrypoint(CommandLine {
            args: vec![s("exec app")],
            prepend_shell: true
        })
    );
    assert_eq!(it.next().unwrap(), Command::Healthcheck(Healthcheck::None));
    assert_eq!(
        it.next().unwrap(),
        Command::Healthcheck(Healthcheck::Check {
            test: vec![s("CMD-SHELL"), s("curl -f http://localhost/")],
            interval: Duration::from_secs(5),
            timeout: Duration::from_secs(3),
            start_period: Duration::from_secs(60),
            start_interval: Duration::from_millis(500),
            retries: 3,
        })
    );
    let Command::Healthcheck(Healthcheck::Check {
        test,
        interval,
        retries,
        ..
    }) = it.next().unwrap()
    else {
        panic!()
    };
    assert_eq!(
        (test, interval, retries),
        (vec![s("CMD"), s("true")], Duration::ZERO, 0)
    );
    assert_eq!(
        it.next().unwrap(),
        Command::Shell(vec![s("/bin/bash"), s("-c")])
    );
    assert_eq!(it.next().unwrap(), Command::Onbuild(s("RUN echo $DIR")));
    assert!(it.next().is_none());
}

#[test]
fn arg_and_env_scoping() {
    let text = "ARG V=meta\nARG ONLY_META=m\nFROM scratch\nRUN x\nARG V\nARG ONLY_META\nENV V=env\nARG V=arg\nWORKDIR /$V/$ONLY_META\nARG TARGETARCH\nARG NOTSET\nUSER ${NOTSET-unset}:$TARGETARCH\nARG HTTP_PROXY\n";
    let mut o = opts(&[("ONLY_META", "given"), ("http_proxy", "p")]);
    o.target_platform = Platform::parse("linux/arm/v7").unwrap();
    let df = parse_and_lower(text, &o).unwrap();
    assert_eq!(df.unused_build_args, Vec::<String>::new());
    let cmds = run_stage(&df, 0, &[]);
    // ENV wins over an ARG of the same name declared later.
    assert_eq!(cmds[5], Command::Workdir(s("/env/given")));
    assert_eq!(cmds[8], Command::User(s("unset:arm")));
    // Proxy build args are visible without ARG.
    let mut scope = df.scope();
    assert_eq!(scope.get("http_proxy").as_deref(), Some("p"));
    let decl = ArgDecl {
        name: s("V"),
        default: None,
    };
    scope.declare_arg(&df.lexer(), &decl).unwrap();
    // A build arg wins over a default, which is then never expanded.
    let df2 = parse_and_lower(
        "FROM a\nARG X=${Y:?no}\nUSER $X\n",
        &opts(&[("X", "given")]),
    )
    .unwrap();
    assert_eq!(run_stage(&df2, 0, &[])[1], Command::User(s("given")));
    assert_eq!(scope.get("V").as_deref(), Some("meta"));
    assert!(scope.args().contains(&(s("http_proxy"), s("p"))));
    // A meta `ARG` without a value keeps the automatic platform value.
    let df = parse_and_lower(
        "ARG TARGETOS\nFROM img-$TARGETOS-${BUILDARCH}\n",
        &opts(&[]),
    )
    .unwrap();
    assert_eq!(df.stages[0].base, Base::Image(s("img-linux-amd64")));
    // Meta args are invisible in a stage that does not redeclare them.
    let df = parse_and_lower("ARG X=1\nFROM scratch\nWORKDIR /${X:-none}\n", &opts(&[])).unwrap();
    assert_eq!(run_stage(&df, 0, &[])[0], Command::Workdir(s("/none")));
}

#[test]
fn stages_targets_and_order() {
    let text = "FROM alpine AS base\nFROM base AS a\nRUN --mount=from=c,target=/x true\nFROM busybox AS b\nCOPY --from=base / /\nFROM scratch AS c\nFROM b\nCOPY --from=a /a /a\nCOPY --from=1 /b /b\nCOPY --from=nginx:latest /etc/nginx /n\n";
    let df = parse_and_lower(text, &opts(&[])).unwrap();
    assert_eq!(df.stages.len(), 5);
    assert_eq!(df.stages[1].base, Base::Stage(0));
    assert_eq!(df.stages[3].base, Base::Scratch);
    assert_eq!(df.stages[4].base, Base::Stage(2));
    assert_eq!(df.stages[1].deps, vec![0, 3]);
    assert_eq!(df.stages[4].deps, vec![1, 2]);
    assert_eq!(df.target, 4);
    assert_eq!(df.build_order, vec![0, 3, 1, 2, 4]);
    assert_eq!(df.build_order_for(Some("B")).unwrap(), vec![0, 2]);
    assert_eq!(
        df.resolve_source("nginx:latest").unwrap(),
        Source::Image(s("nginx:latest"))
    );
    assert_eq!(df.resolve_source("A").unwrap(), Source::Stage(1));
    let mut o = opts(&[]);
    o.target = Some(s("a"));
    let df = parse_and_lower(text, &o).unwrap();
    assert_eq!((df.target, df.build_order.clone()), (1, vec![0, 3, 1]));
}

#[test]
fn unused_build_args_depend_on_target() {
    let text = "FROM scratch AS one\nARG A\nFROM scratch AS two\nARG B\n";
    let mut o = opts(&[("A", "1"), ("B", "2"), ("HTTPS_PROXY", "x")]);
    assert_eq!(
        parse_and_lower(text, &o).unwrap().unused_build_args,
        vec![s("A")]
    );
    o.target = Some(s("one"));
    assert_eq!(
        parse_and_lower(text, &o).unwrap().unused_build_args,
        vec![s("B")]
    );
}

#[test]
fn heredocs_as_buildkit() {
    let text = "FROM alpine\nRUN <<EOF\necho $HOME\nEOF\nRUN <<-\"EOT\" bash\n\techo '$A'\n\tEOT\nRUN <<EOF\n#!/usr/bin/env python3\nprint(1)\nEOF\nRUN cat <<A 3<<B > out\na\nA\nb\nB\nCOPY <<one.txt <<\"two.txt\" /dst/\n$A \"q\"\none.txt\n$A\ntwo.txt\nONBUILD RUN <<EOF\nx\nEOF\n";
    let df = parse_and_lower(text, &opts(&[])).unwrap();
    let ins = &df.stages[0].instructions;
    assert_eq!(ins[0].line, 2);
    assert_eq!(ins[0].end_line, 4);
    let Command::Run(r) = &ins[0].command else {
        panic!()
    };
    assert_eq!(r.heredocs[0].content, "echo $HOME\n");
    assert_eq!(
        r.script(),
        RunScript::Args {
            args: vec![s("echo $HOME\n")],
            prepend_shell: true
        }
    );
    let Command::Run(r) = &ins[1].command else {
        panic!()
    };
    assert!(r.heredocs[0].chomp && !r.heredocs[0].expand);
    assert_eq!(
        r.script(),
        RunScript::Args {
            args: vec![s("<<-\"EOT\" bash\n\techo '$A'\nEOT")],
            prepend_shell: true
        }
    );
    let Command::Run(r) = &ins[2].command else {
        panic!()
    };
    assert_eq!(
        r.script(),
        RunScript::File {
            name: s("EOF"),
            data: s("#!/usr/bin/env python3\nprint(1)\n")
        }
    );
    let Command::Run(r) = &ins[3].command else {
        panic!()
    };
    assert_eq!(r.heredocs.len(), 2);
    assert_eq!(r.heredocs[1].file_descriptor, 3);
    assert_eq!(
        r.script(),
        RunScript::Args {
            args: vec![s("cat <<A 3<<B > out\na\nA\nb\nB")],
            prepend_shell: true
        }
    );
    let mut scope = df.scope();
    scope.set_env("A", "val");
    let e = ins[4].expand(&df.lexer(), &scope).unwrap();
    let Command::Copy(c) = e.command else {
        panic!()
    };
    assert_eq!(c.sources, Vec::<String>::new());
    assert_eq!(
        c.contents[0],
        SourceContent {
            path: s("one.txt"),
            data: s("val \"q\"\n"),
            expand: true
        }
    );
    assert_eq!(
        c.contents[1],
        SourceContent {
            path: s("two.txt"),
            data: s("$A\n"),
            expand: false
        }
    );
    assert_eq!(ins[5].command, Command::Onbuild(s("RUN <<EOF\nx\nEOF")));
}

#[test]
fn escape_directive_and_continuations() {
    let text = "# escape=`\nFROM windows\nRUN dir `\n    # comment inside\n\n    c:\\ `\n";
    let ast = parse(text).unwrap();
    assert_eq!(ast.escape, '`');
    assert_eq!(ast.children[1].args, vec![s("dir     c:\\")]);
    assert_eq!(ast.children[1].start_line, 3);
    assert_eq!(ast.children[1].end_line, 6);
    assert_eq!(ast.warnings.len(), 1);
    assert!(ast.warnings[0]
        .message
        .starts_with("[WARNING]: Empty continuation line found in:\n    RUN dir "));
    assert_eq!(
        dockerfile::warnings_text(&ast.warnings).unwrap(),
        format!(
            "{}\n[WARNING]: Empty continuation lines will become errors in a future release.\n",
            ast.warnings[0].message
        )
    );
    let df = lower(&ast, &opts(&[])).unwrap();
    assert_eq!(df.lexer().escape(), '`');
}

#[test]
fn json_and_shell_forms() {
    let ast = parse("FROM a\nCMD [\"a\", 'b']\nCMD [\"a\"\nENTRYPOINT [\"x\"]\n").unwrap();
    assert!(!ast.children[1].json);
    assert_eq!(ast.children[1].args, vec![s("[\"a\", 'b']")]);
    assert!(!ast.children[2].json);
    assert!(ast.children[3].json);
    assert!(parse("FROM a\nCMD [1]\n").is_err());
}

/// History text as Docker 20.10's classic builder wrote it for the same Dockerfile (taken
/// from `docker history --no-trunc`).
#[test]
fn nop_history_matches_docker() {
    let text = "FROM scratch\nARG X=1\nARG Y\nENV A=1 B=\"two words\"\nENV OLD style  value\nLABEL a=b \"c d\"=e\nMAINTAINER me <m@x>\nWORKDIR /w/$A\nUSER u:g\nVOLUME [\"/data\", \"/logs\"]\nVOLUME /one\nSTOPSIGNAL SIGKILL\nEXPOSE 80 53/udp 8000-8001\nONBUILD RUN echo  $A\nSHELL [\"/bin/bash\", \"-c\"]\nCMD echo $A\nENTRYPOINT [\"a\", \"b c\"]\nHEALTHCHECK --interval=5s --retries=3 CMD curl x\nHEALTHCHECK NONE\n";
    let want = [
        "/bin/sh -c #(nop)  ARG X=1",
        "/bin/sh -c #(nop)  ARG Y",
        "/bin/sh -c #(nop)  ENV A=1 B=two words",
        "/bin/sh -c #(nop)  ENV OLD=style  value",
        "/bin/sh -c #(nop)  LABEL a=b c d=e",
        "/bin/sh -c #(nop)  MAINTAINER me <m@x>",
        "/bin/sh -c #(nop) WORKDIR /w/1",
        "/bin/sh -c #(nop)  USER u:g",
        "/bin/sh -c #(nop)  VOLUME [/data /logs]",
        "/bin/sh -c #(nop)  VOLUME [/one]",
        "/bin/sh -c #(nop)  STOPSIGNAL SIGKILL",
        "/bin/sh -c #(nop)  EXPOSE 53/udp 80 8000-8001",
        "/bin/sh -c #(nop)  ONBUILD RUN echo  $A",
        "/bin/bash -c #(nop)  SHELL [/bin/bash -c]",
        "/bin/bash -c #(nop)  CMD [\"/bin/bash\" \"-c\" \"echo $A\"]",
        "/bin/bash -c #(nop)  ENTRYPOINT [\"a\" \"b c\"]",
        "/bin/bash -c #(nop)  HEALTHCHECK &{[\"CMD-SHELL\" \"curl x\"] \"5s\" \"0s\" \"0s\" '\\x03'}",
        "/bin/bash -c #(nop)  HEALTHCHECK &{[\"NONE\"] \"0s\" \"0s\" \"0s\" '\\x00'}",
    ];
    let df = parse_and_lower(text, &opts(&[("Y", "2")])).unwrap();
    let lex = df.lexer();
    let mut scope = df.scope();
    let mut shell = vec![s("/bin/sh"), s("-c")];
    let mut got = Vec::new();
    for ins in &df.stages[0].instructions {
        let mut e = ins.expand(&lex, &scope).unwrap();
        if let Command::Arg(d) = &mut e.command {
            // the history shows the declaration with its expanded default
            for a in d.iter_mut() {
                a.default = a
                    .default
                    .as_ref()
                    .map(|v| lex.process_word(v, &scope).unwrap());
            }
            scope.apply_arg(&lex, ins).unwrap();
        }
        if let Command::Env(kv) = &e.command {
            kv.iter().for_each(|p| scope.set_env(&p.key, &p.value));
        }
        got.push(e.nop_history(&shell).unwrap());
        if let Command::Shell(sh) = &e.command {
            shell = sh.clone();
        }
    }
    assert_eq!(got, want);
}

#[test]
fn bom_crlf_and_instruction_case() {
    let text = "\u{feff}# escape=\\\r\nfrom a\r\nrun x \\\r\n  y\r\nRUN <<EOF\r\nbody\r\nEOF\r\nCoPy a b\r\n";
    let ast = parse(text).unwrap();
    assert_eq!(ast.directives[0].name, "escape");
    assert_eq!(
        dump_ast(&ast),
        "(from \"a\")\n(run \"x   y\")\n(run \"<<EOF\")\n(copy \"a\" \"b\")\n"
    );
    assert_eq!(ast.children[2].heredocs[0].content, "body\r\n");
    assert_eq!(
        (ast.children[2].start_line, ast.children[2].end_line),
        (5, 7)
    );
    assert_eq!(ast.children[3].value, "CoPy");
}
