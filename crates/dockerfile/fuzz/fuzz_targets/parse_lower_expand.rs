//! Fuzz target: parse + dump + lower + expand every instruction, run the shell lexer on the
//! raw input, and match a .dockerignore built from it. None of it may panic.
#![no_main]

use dockerfile::{BuildOptions, Command, DockerIgnore, ShellLex};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let env = vec![
        ("A".to_string(), "x y".to_string()),
        ("E".to_string(), String::new()),
    ];
    let lex = ShellLex::new('\\');
    let _ = lex.process_word(&text, &env);
    let _ = lex.process_words(&text, &env);
    if let Ok(ig) = DockerIgnore::parse(&text) {
        for p in ["a", "a/b/c", ".git", "x.go", "dir/sub/file.txt"] {
            let _ = ig.matches(p);
        }
    }
    let Ok(ast) = dockerfile::parse(&text) else {
        return;
    };
    let _ = dockerfile::dump_ast(&ast);
    let _ = ast.check_options();
    let mut opts = BuildOptions::default();
    opts.build_args.insert("A".into(), "1".into());
    let Ok(df) = dockerfile::lower(&ast, &opts) else {
        return;
    };
    let lex = df.lexer();
    for stage in &df.stages {
        let mut scope = df.scope();
        for ins in &stage.instructions {
            let Ok(e) = ins.expand(&lex, &scope) else {
                continue;
            };
            let _ = e.nop_history(&["/bin/sh".to_string(), "-c".to_string()]);
            match &e.command {
                Command::Expose(ports) => {
                    for p in ports {
                        let _ = dockerfile::expose_ports(p);
                    }
                }
                Command::StopSignal(s) => {
                    let _ = dockerfile::parse_signal(s);
                }
                Command::Workdir(w) => {
                    let _ = dockerfile::resolve_workdir("/a", w);
                }
                Command::Env(kv) => {
                    for k in kv {
                        scope.set_env(&k.key, &k.value);
                    }
                }
                Command::Arg(_) => {
                    let _ = scope.apply_arg(&lex, ins);
                }
                Command::Run(r) => {
                    let _ = r.script();
                }
                _ => {}
            }
        }
    }
    let _ = df.build_order_for(None);
    for st in &df.stages {
        if let Some(n) = &st.name {
            let _ = df.resolve_source(n);
        }
    }
});
