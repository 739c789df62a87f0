//! One case per error message: the text, and the exact error Docker's words give (with the
//! line number where there is one).

use dockerfile::*;

/// Parse, lower and expand every instruction of every stage; the first error.
fn first_error(text: &str, target: Option<&str>) -> String {
    let o = BuildOptions {
        target: target.map(str::to_string),
        ..Default::default()
    };
    let df = match parse_and_lower(text, &o) {
        Ok(df) => df,
        Err(e) => return e.to_string(),
    };
    let lex = df.lexer();
    for st in &df.stages {
        let mut scope = df.scope();
        for ins in &st.instructions {
            match ins.expand(&lex, &scope) {
                Err(e) => return e.to_string(),
                Ok(e) => match &e.command {
                    Command::Env(kv) => kv.iter().for_each(|k| scope.set_env(&k.key, &k.value)),
                    Command::Arg(_) => {
                        if let Err(e) = scope.apply_arg(&lex, ins) {
                            return e.to_string();
                        }
                    }
                    _ => {}
                },
            }
        }
    }
    panic!("no error for {text:?}");
}

const CASES: &[(&str, &str)] = &[
    // parser
    ("", "dockerfile parse error line 1: file with no instructions"),
    ("# just a comment\n\n", "dockerfile parse error line 2: file with no instructions"),
    ("# escape=\\\n# escape=`\nFROM a\n", "dockerfile parse error line 2: only one escape parser directive can be used"),
    ("# escape=x\nFROM a\n", "dockerfile parse error line 1: invalid escape token 'x' does not match ` or \\"),
    ("FROM a\nENV PATH\n", "dockerfile parse error line 2: ENV must have two arguments"),
    ("FROM a\nLABEL x\n", "dockerfile parse error line 2: LABEL must have two arguments"),
    ("FROM a\nENV a=b c\n", "dockerfile parse error line 2: Syntax error - can't find = in \"c\". Must be of the form: name=value"),
    ("FROM a\nCMD [\"a\", [\"b\"]]\n", "dockerfile parse error line 2: when using JSON array syntax, arrays must be comprised of strings only"),
    ("FROM a\nRUN <<EOF\nno end\n", "dockerfile parse error line 2: unterminated heredoc"),
    // instructions
    ("FROOM busybox\n", "dockerfile parse error line 1: unknown instruction: FROOM"),
    ("FROM a\nENV\n", "dockerfile parse error line 2: ENV requires at least one argument"),
    ("FROM a\nENV =x\n", "dockerfile parse error line 2: ENV names can not be blank"),
    ("FROM a\nLABEL =x\n", "dockerfile parse error line 2: LABEL names can not be blank"),
    ("FROM a\nMAINTAINER\n", "dockerfile parse error line 2: MAINTAINER requires exactly one argument"),
    ("FROM a\nADD x\n", "dockerfile parse error line 2: ADD requires at least two arguments, but only one was provided. Destination could not be determined"),
    ("FROM a\nCOPY x\n", "dockerfile parse error line 2: COPY requires at least two arguments, but only one was provided. Destination could not be determined"),
    ("FROM a\nCOPY x <<EOF\nbody\nEOF\n", "dockerfile parse error line 2: COPY cannot accept a heredoc as a destination"),
    ("FROM a AS 1x\n", "dockerfile parse error line 1: invalid name for build stage: \"1x\", name can't start with a number or contain symbols"),
    ("FROM a b\n", "dockerfile parse error line 1: FROM requires either one or three arguments"),
    ("FROM a\nONBUILD\n", "dockerfile parse error line 2: ONBUILD requires at least one argument"),
    ("FROM a\nONBUILD ONBUILD RUN x\n", "dockerfile parse error line 2: Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"),
    ("FROM a\nONBUILD FROM b\n", "dockerfile parse error line 2: FROM isn't allowed as an ONBUILD trigger"),
    ("FROM a\nONBUILD maintainer me\n", "dockerfile parse error line 2: MAINTAINER isn't allowed as an ONBUILD trigger"),
    ("FROM a\nWORKDIR\n", "dockerfile parse error line 2: WORKDIR requires exactly one argument"),
    ("FROM a\nRUN --network=bridge x\n", "dockerfile parse error line 2: unsupported network mode \"bridge\""),
    ("FROM a\nRUN --security=x x\n", "dockerfile parse error line 2: unsupported security mode \"x\""),
    ("FROM a\nRUN --mount=from=$X,target=/t x\n", "dockerfile parse error line 2: 'from' doesn't support variable expansion, define alias stage instead"),
    ("FROM a\nRUN --mount=type=bind,a\\\"b x\n", "dockerfile parse error line 2: failed to parse csv mounts: bare \" in non-quoted-field"),
    ("FROM a\nHEALTHCHECK\n", "dockerfile parse error line 2: HEALTHCHECK requires at least one argument"),
    ("FROM a\nHEALTHCHECK NONE x\n", "dockerfile parse error line 2: HEALTHCHECK NONE takes no arguments"),
    ("FROM a\nHEALTHCHECK CONNECT TCP 7000\n", "dockerfile parse error line 2: Unknown type \"CONNECT\" in HEALTHCHECK (try CMD)"),
    ("FROM a\nHEALTHCHECK CMD\n", "dockerfile parse error line 2: Missing command after HEALTHCHECK CMD"),
    ("FROM a\nHEALTHCHECK --interval=1us CMD x\n", "dockerfile parse error line 2: Interval \"interval\" cannot be less than 1ms"),
    ("FROM a\nHEALTHCHECK --timeout=soon CMD x\n", "dockerfile parse error line 2: time: invalid duration \"soon\""),
    ("FROM a\nHEALTHCHECK --timeout=5 CMD x\n", "dockerfile parse error line 2: time: missing unit in duration \"5\""),
    ("FROM a\nHEALTHCHECK --timeout=5y CMD x\n", "dockerfile parse error line 2: time: unknown unit \"y\" in duration \"5y\""),
    ("FROM a\nHEALTHCHECK --retries=-1 CMD x\n", "dockerfile parse error line 2: --retries cannot be negative (-1)"),
    ("FROM a\nHEALTHCHECK --retries=many CMD x\n", "dockerfile parse error line 2: strconv.ParseInt: parsing \"many\": invalid syntax"),
    ("FROM a\nEXPOSE\n", "dockerfile parse error line 2: EXPOSE requires at least one argument"),
    ("FROM a\nUSER\n", "dockerfile parse error line 2: USER requires exactly one argument"),
    ("FROM a\nVOLUME\n", "dockerfile parse error line 2: VOLUME requires at least one argument"),
    ("FROM a\nVOLUME [\"\"]\n", "dockerfile parse error line 2: VOLUME specified can not be an empty string"),
    ("FROM a\nSTOPSIGNAL\n", "dockerfile parse error line 2: STOPSIGNAL requires exactly one argument"),
    ("FROM a\nARG\n", "dockerfile parse error line 2: ARG requires at least one argument"),
    ("FROM a\nARG =x\n", "dockerfile parse error line 2: ARG names can not be blank"),
    ("FROM a\nSHELL []\n", "dockerfile parse error line 2: SHELL requires at least one argument"),
    ("FROM a\nSHELL /bin/sh -c\n", "dockerfile parse error line 2: SHELL requires the arguments to be in JSON form"),
    // flags
    ("FROM a\nCOPY --user=me a b\n", "dockerfile parse error line 2: unknown flag: user"),
    ("FROM a\nCOPY --from=a --from=b a b\n", "dockerfile parse error line 2: duplicate flag specified: from"),
    ("FROM a\nCOPY --from a b\n", "dockerfile parse error line 2: missing a value on flag: from"),
    ("FROM a\nCOPY --link=yes a b\n", "dockerfile parse error line 2: expecting boolean value for flag link, not: yes"),
    ("FROM a\nCOPY --link= a b\n", "dockerfile parse error line 2: missing a value on flag: link"),
    // stages
    ("RUN x\n", "dockerfile parse error line 1: no build stage in current context"),
    ("ARG X\nFROM ${X}\n", "dockerfile parse error line 2: base name (${X}) should not be blank"),
    ("FROM a AS x\nFROM b AS X\n", "dockerfile parse error line 2: duplicate stage name \"x\""),
    ("FROM a\nCOPY --from=9 a b\n", "dockerfile parse error line 2: invalid stage index 9"),
    ("FROM a AS one\nCOPY --from=two a b\nFROM b AS two\nCOPY --from=one a b\n", "circular dependency detected on stage: two"),
    ("ARG A=1\n", "dockerfile contains no stages to build"),
    // expansion
    ("ARG X\nFROM ${X:?required}\n", "dockerfile parse error line 2: failed to process \"${X:?required}\": X: required"),
    ("FROM a\nWORKDIR ${X:?}\n", "dockerfile parse error line 2: failed to process \"${X:?}\": X: is not allowed to be unset"),
    ("FROM a\nENV A=\nWORKDIR /${A:?}\n", "dockerfile parse error line 3: failed to process \"/${A:?}\": A: is not allowed to be empty"),
    ("FROM a\nARG X=${Y:?needed}\n", "dockerfile parse error line 2: failed to process \"${Y:?needed}\": Y: needed"),
    ("FROM a\nUSER ${}\n", "dockerfile parse error line 2: failed to process \"${}\": syntax error: bad substitution"),
    ("FROM a\nUSER ${X\n", "dockerfile parse error line 2: failed to process \"${X\": unsupported modifier (\u{fffd}) in substitution"),
    ("FROM a\nUSER ${X:#a}\n", "dockerfile parse error line 2: failed to process \"${X:#a}\": unsupported modifier (:#) in substitution"),
    ("FROM a\nUSER ${X/a\n", "dockerfile parse error line 2: failed to process \"${X/a\": syntax error: missing '/' in ${}"),
    ("FROM a\nUSER ${X#\\a}\n", "dockerfile parse error line 2: failed to process \"${X#\\\\a}\": invalid pattern (\\a) in substitution: invalid escape '\\a'"),
    ("FROM a\nUSER \"a\n", "dockerfile parse error line 2: failed to process \"\\\"a\": unexpected end of statement while looking for matching double-quote"),
    ("FROM a\nUSER 'a\n", "dockerfile parse error line 2: failed to process \"'a\": unexpected end of statement while looking for matching single-quote"),
    // mounts (checked when expanded)
    ("FROM a\nRUN --mount=type=nfs x\n", "dockerfile parse error line 2: unsupported mount type \"nfs\""),
    ("FROM a\nRUN --mount=target=/t,bogus x\n", "dockerfile parse error line 2: invalid field 'bogus' must be a key=value pair"),
    ("FROM a\nRUN --mount=target=/t,required x\n", "dockerfile parse error line 2: unexpected key 'required' for mount type 'bind'"),
    ("FROM a\nRUN --mount=target=/t,size=1m x\n", "dockerfile parse error line 2: unexpected key 'size' for mount type 'bind'"),
    ("FROM a\nRUN --mount=type=tmpfs,target=/t,size=lots x\n", "dockerfile parse error line 2: invalid value for size: lots"),
    ("FROM a\nRUN --mount=target=/t,ro=maybe x\n", "dockerfile parse error line 2: invalid value for ro: maybe"),
    ("FROM a\nRUN --mount=target=/t,mode=0755 x\n", "dockerfile parse error line 2: mode not allowed for \"bind\" type mounts"),
    ("FROM a\nRUN --mount=type=tmpfs,target=/t,uid=1 x\n", "dockerfile parse error line 2: uid not allowed for \"tmpfs\" type mounts"),
    ("FROM a\nRUN --mount=target=/t,gid=1 x\n", "dockerfile parse error line 2: gid not allowed for \"bind\" type mounts"),
    ("FROM a\nRUN --mount=type=cache,target=/t,mode=9 x\n", "dockerfile parse error line 2: invalid value 9 for mode"),
    ("FROM a\nRUN --mount=type=cache,target=/t,uid=x x\n", "dockerfile parse error line 2: invalid value x for uid"),
    ("FROM a\nRUN --mount=type=cache,target=/t,gid=-1 x\n", "dockerfile parse error line 2: invalid value -1 for gid"),
    ("FROM a\nRUN --mount=type=cache,target=/t,sharing=never x\n", "dockerfile parse error line 2: unsupported sharing value \"never\""),
    ("FROM a\nRUN --mount=target=/t,sharing=locked x\n", "dockerfile parse error line 2: invalid cache sharing set for bind mount"),
    ("FROM a\nRUN --mount=type=secret,id=a,from=b x\n", "dockerfile parse error line 2: secret mount should not have a from"),
    ("FROM a\nRUN --mount=type=secret,id=a,sharing=shared x\n", "dockerfile parse error line 2: secret mount should not define sharing"),
    ("FROM a\nRUN --mount=type=secret x\n", "dockerfile parse error line 2: invalid secret mount. one of source, target required"),
    ("FROM a\nRUN --mount=type=secret,id=a,source=b x\n", "dockerfile parse error line 2: both source and id can't be set"),
    ("FROM a\nRUN --mount=target=/t,color=red x\n", "dockerfile parse error line 2: unexpected key 'color' in 'color=red'"),
];

#[test]
fn every_error_message() {
    let mut failures = Vec::new();
    for (text, want) in CASES {
        let got = first_error(text, None);
        if &got != want {
            failures.push(format!("{text:?}\n  want {want}\n  got  {got}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn overlong_line() {
    let ok = format!("FROM a\nLABEL x={}\n", "y".repeat(65535 - 8));
    assert!(parse(&ok).is_ok());
    let long = format!("FROM a\nLABEL x={}\n", "y".repeat(65536 - 8));
    assert_eq!(
        parse(&long).unwrap_err().to_string(),
        "dockerfile parse error line 2: dockerfile line greater than max allowed size of 65535"
    );
}

#[test]
fn target_not_found() {
    assert_eq!(
        first_error("FROM a AS one\n", Some("two")),
        "failed to reach build target two in Dockerfile"
    );
}

#[test]
fn errors_carry_lines() {
    let e =
        parse("FROM a\n\nRUN x \\\n  y\nFROOM\n").and_then(|a| lower(&a, &BuildOptions::default()));
    assert_eq!(e.unwrap_err().line(), Some(5));
}

#[test]
fn dockerignore_errors() {
    assert_eq!(
        DockerIgnore::parse("ok\n[a-\n").unwrap_err().to_string(),
        "dockerignore line 2: syntax error in pattern"
    );
    assert_eq!(
        DockerIgnore::parse("a\\").unwrap_err().to_string(),
        "dockerignore line 1: syntax error in pattern"
    );
    assert_eq!(
        DockerIgnore::parse("# c\n!\n").unwrap_err().to_string(),
        "dockerignore line 2: illegal exclusion pattern: \"!\""
    );
}
