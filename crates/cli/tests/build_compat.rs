//! Side-by-side build compatibility with Docker 20.10's classic builder (`DOCKER_BUILDKIT=0`):
//! many small Dockerfiles on a busybox base, each built by strata and by Docker, comparing
//! the outcome (success, or the exit code and the error's last line), the build's output
//! (image and container IDs blanked), the image's `Config` (without the parent ID), its
//! history `CreatedBy` strings, and every entry (name, mode, owner, size, type, link target)
//! of each layer the build added.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Output};

use common::*;

const DOCKER: &str = "/usr/bin/docker";

/// One build: the Dockerfile (`BASE` stands for the busybox image), the context's other
/// files, and extra `build` arguments.
struct Case {
    name: &'static str,
    dockerfile: &'static str,
    files: &'static [(&'static str, &'static str)],
    args: &'static [&'static str],
}

const fn case(name: &'static str, dockerfile: &'static str) -> Case {
    Case {
        name,
        dockerfile,
        files: &[],
        args: &[],
    }
}

/// What one builder made of a case.
#[derive(Debug, PartialEq)]
struct Outcome {
    /// `Ok(())`, or the exit code and the last line of standard error.
    result: Result<(), (i32, String)>,
    /// Standard output and standard error with IDs blanked (and the client's words before
    /// a daemon's error cut).
    output: String,
    errors: String,
    /// `Config` without `Image`, history `CreatedBy` strings (newest first), and the
    /// entries of every layer above the base.
    config: String,
    history: Vec<String>,
    layers: Vec<Vec<String>>,
}

/// Replaces every run of 12 or 64 lowercase hex digits by `<id>`, and drops the colour
/// codes around a step's standard error (how its writes are cut up is the shell's business).
fn blank_ids(s: &str) -> String {
    let s = &s.replace("\x1b[91m", "").replace("\x1b[0m", "");
    let mut out = String::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let run = b[i..]
            .iter()
            .take_while(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
            .count();
        if run == 12 || run == 64 {
            out.push_str("<id>");
            i += run;
        } else if run > 0 {
            out.push_str(&s[i..i + run]);
            i += run;
        } else {
            let ch = s[i..].chars().next().unwrap();
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

/// The error's last line without the client's prefix.
fn last_error_line(o: &Output) -> String {
    let err = String::from_utf8_lossy(&o.stderr);
    err.lines()
        .rfind(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim_start_matches("Error response from daemon: ")
        .trim_start_matches("Error: ")
        .to_string()
}

/// Every entry of the layers of a saved image after the first `skip`.
fn saved_layers(archive: &Path, skip: usize) -> Vec<Vec<String>> {
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut ar = tar::Archive::new(fs::File::open(archive).unwrap());
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().to_string_lossy().into_owned();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        files.insert(name.trim_start_matches("./").to_string(), data);
    }
    let manifest: serde_json::Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
    let layers = manifest[0]["Layers"].as_array().unwrap();
    layers
        .iter()
        .skip(skip)
        .map(|l| {
            let data = &files[l.as_str().unwrap()];
            let mut ar = tar::Archive::new(&data[..]);
            ar.entries()
                .unwrap()
                .map(|e| {
                    let e = e.unwrap();
                    let h = e.header();
                    format!(
                        "{} {:o} {}:{} {} {:?} {}",
                        e.path().unwrap().display(),
                        h.mode().unwrap(),
                        h.uid().unwrap(),
                        h.gid().unwrap(),
                        h.size().unwrap(),
                        h.entry_type(),
                        h.link_name()
                            .unwrap()
                            .map(|l| l.display().to_string())
                            .unwrap_or_default()
                    )
                })
                .collect()
        })
        .collect()
}

struct Side<'a> {
    strata: Option<&'a Strata>,
    work: &'a Path,
}

impl Side<'_> {
    fn cmd(&self) -> Command {
        match self.strata {
            Some(s) => {
                let mut c = Command::new(assert_cmd::cargo::cargo_bin("strata"));
                c.env("STRATA_ROOT", s.root.path())
                    .env_remove("DOCKER_CONFIG");
                c
            }
            None => {
                let mut c = Command::new(DOCKER);
                c.env("DOCKER_BUILDKIT", "0");
                c
            }
        }
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.cmd().args(args).output().unwrap();
        assert_success(&o);
        String::from_utf8(o.stdout).unwrap()
    }

    /// Builds `ctx` as `tag` (without the cache, which other cases filled) and describes the
    /// result.
    fn build(&self, ctx: &Path, tag: &str, args: &[&str], base_layers: usize) -> Outcome {
        let o = self
            .cmd()
            .args(["build", "--no-cache", "--network", "none", "-t", tag])
            .args(args)
            .arg(ctx)
            .output()
            .unwrap();
        let clean = |b: &[u8]| -> String {
            String::from_utf8_lossy(b)
                .lines()
                .filter(|l| !l.starts_with("Sending build context to Docker daemon"))
                // strata's own line under a step that missed the cache (Docker has none).
                .filter(|l| !l.starts_with(" ---> Cache miss: "))
                .map(|l| {
                    let l = l
                        .trim_start_matches("Error response from daemon: ")
                        .trim_start_matches("Error: ");
                    format!("{}\n", blank_ids(l))
                })
                .collect()
        };
        let output = clean(&o.stdout);
        let errors = clean(&o.stderr);
        if !o.status.success() {
            return Outcome {
                result: Err((o.status.code().unwrap_or(-1), last_error_line(&o))),
                output,
                errors,
                config: String::new(),
                history: Vec::new(),
                layers: Vec::new(),
            };
        }
        let mut config: serde_json::Value =
            serde_json::from_str(&self.ok(&["inspect", "-f", "{{json .Config}}", tag])).unwrap();
        if let Some(m) = config.as_object_mut() {
            m.remove("Image");
        }
        let history = self
            .ok(&["history", "--no-trunc", "--format", "{{.CreatedBy}}", tag])
            .lines()
            .map(str::to_string)
            .collect();
        let archive = self.work.join(format!(
            "{}.tar",
            if self.strata.is_some() { "s" } else { "d" }
        ));
        self.ok(&["save", "-o", archive.to_str().unwrap(), tag]);
        let layers = saved_layers(&archive, base_layers);
        let _ = fs::remove_file(&archive);
        Outcome {
            result: Ok(()),
            output,
            errors,
            config: config.to_string(),
            history,
            layers,
        }
    }
}

/// Builds every case with both builders; returns the names of the cases that differ, after
/// printing how.
fn compare(cases: &[Case]) -> Vec<String> {
    let base = unique("strata-compat-base:");
    let tar = busybox_tar();
    let s = Strata::new();
    s.ok(&["import", tar.to_str().unwrap(), &base]);
    run_ok(DOCKER, &["import", tar.to_str().unwrap(), &base]);
    let work = tempfile::tempdir().unwrap();
    let ours = Side {
        strata: Some(&s),
        work: work.path(),
    };
    let theirs = Side {
        strata: None,
        work: work.path(),
    };
    let mut differ = Vec::new();
    for c in cases {
        let ctx = work.path().join(c.name);
        fs::create_dir_all(&ctx).unwrap();
        fs::write(ctx.join("a"), "a\n").unwrap();
        fs::write(ctx.join("b"), "b\n").unwrap();
        for (path, content) in c.files {
            let p = ctx.join(path);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            if let Some(target) = content.strip_prefix("->") {
                std::os::unix::fs::symlink(target, &p).unwrap();
            } else if let Some(src) = content.strip_prefix("tar:") {
                // A tar of the context's directory `src` (made beforehand in `files`).
                let st = Command::new("tar")
                    .arg("-C")
                    .arg(&ctx)
                    .args(["--owner=0", "--group=0", "-cf"])
                    .arg(&p)
                    .arg(src)
                    .status()
                    .unwrap();
                assert!(st.success());
            } else {
                fs::write(&p, content).unwrap();
            }
        }
        fs::write(ctx.join("Dockerfile"), c.dockerfile.replace("BASE", &base)).unwrap();
        let tag = format!("{}-{}", unique("strata-compat:"), c.name);
        let a = ours.build(&ctx, &tag, c.args, 1);
        let b = theirs.build(&ctx, &tag, c.args, 1);
        let _ = Command::new(DOCKER).args(["rmi", "-f", &tag]).output();
        if a != b {
            eprintln!("=== {}: strata differs from Docker", c.name);
            if a.result != b.result {
                eprintln!(
                    "result: strata {:?}\n        docker {:?}",
                    a.result, b.result
                );
            }
            if a.output != b.output {
                eprintln!("output, strata:\n{}output, docker:\n{}", a.output, b.output);
            }
            if a.errors != b.errors {
                eprintln!("errors, strata:\n{}errors, docker:\n{}", a.errors, b.errors);
            }
            if a.config != b.config {
                eprintln!("config: strata {}\n        docker {}", a.config, b.config);
            }
            if a.history != b.history {
                eprintln!(
                    "history: strata {:#?}\n         docker {:#?}",
                    a.history, b.history
                );
            }
            if a.layers != b.layers {
                eprintln!(
                    "layers: strata {:#?}\n        docker {:#?}",
                    a.layers, b.layers
                );
            }
            differ.push(c.name.to_string());
        }
    }
    docker_remove_with_descendants(&base);
    differ
}

fn cases() -> Vec<Case> {
    vec![
        // ONBUILD: triggers run in the next stage built FROM the image.
        case(
            "onbuild",
            "FROM BASE AS base\nONBUILD RUN echo hi > /onb\nONBUILD COPY a /a-onb\nFROM base\nRUN cat /onb /a-onb\n",
        ),
        case("onbuild-chained", "FROM BASE\nONBUILD ONBUILD RUN true\n"),
        case("onbuild-from", "FROM BASE\nONBUILD FROM x\n"),
        case("onbuild-maintainer", "FROM BASE\nONBUILD MAINTAINER x\n"),
        // SHELL, and the shell forms after it.
        case(
            "shell",
            "FROM BASE\nSHELL [\"/bin/sh\", \"-ec\"]\nRUN echo hi\nCMD echo x\nENTRYPOINT echo y\n",
        ),
        case("shell-not-json", "FROM BASE\nSHELL sh -c\n"),
        // HEALTHCHECK variants and errors.
        case(
            "healthcheck-flags",
            "FROM BASE\nHEALTHCHECK --interval=5s --timeout=3s --start-period=1s --retries=2 CMD wget -q x || exit 1\n",
        ),
        case("healthcheck-exec", "FROM BASE\nHEALTHCHECK CMD [\"true\", \"a b\"]\n"),
        case("healthcheck-none", "FROM BASE\nHEALTHCHECK NONE\n"),
        case("healthcheck-1ms", "FROM BASE\nHEALTHCHECK --interval=1ms CMD true\n"),
        case("healthcheck-zero", "FROM BASE\nHEALTHCHECK --interval=0s --timeout=0 CMD true\n"),
        case("healthcheck-bad-flag", "FROM BASE\nHEALTHCHECK --foo=1 CMD true\n"),
        case("healthcheck-empty", "FROM BASE\nHEALTHCHECK\n"),
        case("healthcheck-no-cmd", "FROM BASE\nHEALTHCHECK CMD\n"),
        case("healthcheck-none-args", "FROM BASE\nHEALTHCHECK NONE extra\n"),
        case("healthcheck-retries-0", "FROM BASE\nHEALTHCHECK --retries=0 CMD true\n"),
        case("healthcheck-bad-type", "FROM BASE\nHEALTHCHECK BOGUS true\n"),
        case("healthcheck-no-unit", "FROM BASE\nHEALTHCHECK --interval=5 CMD true\n"),
        // STOPSIGNAL.
        case("stopsignal-name", "FROM BASE\nSTOPSIGNAL SIGKILL\n"),
        case("stopsignal-number", "FROM BASE\nSTOPSIGNAL 9\n"),
        case("stopsignal-rt", "FROM BASE\nSTOPSIGNAL SIGRTMIN+3\n"),
        case("stopsignal-bad", "FROM BASE\nSTOPSIGNAL BOGUS\n"),
        case("stopsignal-lower", "FROM BASE\nSTOPSIGNAL term\n"),
        case("stopsignal-arg", "FROM BASE\nARG S=SIGUSR1\nSTOPSIGNAL $S\n"),
        // USER.
        case("user-uid-gid", "FROM BASE\nUSER 1000:1000\nRUN id > /tmp/id || true\n"),
        case("user-arg", "FROM BASE\nARG U=nobody\nUSER $U\nRUN id\n"),
        case("user-unknown", "FROM BASE\nUSER nosuch\nRUN id\n"),
        case("user-empty", "FROM BASE\nUSER\n"),
        // WORKDIR.
        case(
            "workdir-relative-env",
            "FROM BASE\nENV D=/base\nWORKDIR $D\nWORKDIR rel\nWORKDIR ../other/./x\nRUN pwd\n",
        ),
        case("workdir-relative", "FROM BASE\nWORKDIR rel\nRUN pwd\n"),
        case("workdir-arg", "FROM BASE\nARG W=/w\nWORKDIR ${W}/sub\nRUN pwd\n"),
        case("workdir-empty", "FROM BASE\nWORKDIR\n"),
        // ENV forms.
        case(
            "env-forms",
            "FROM BASE\nENV a b c  d\nENV x=1 y=\"two words\" z=\\$x w=$x\nENV PATH=$PATH:/extra\nRUN echo $a $y $z $w\n",
        ),
        case("env-one-word", "FROM BASE\nENV a\n"),
        case("env-empty-value", "FROM BASE\nENV a=\n"),
        case("env-blank-name", "FROM BASE\nENV =x\n"),
        case(
            "env-substitutions",
            "FROM BASE\nENV A=hello\nENV B=${A:+set} C=${A:-unset} D=${NOPE:-def} E=${NOPE:+x}\nLABEL l=${A}-$A\n",
        ),
        // LABEL.
        case("label-multi", "FROM BASE\nLABEL a=1 b=\"2 3\" \"c d\"=e\nLABEL f=$HOME\n"),
        case("label-no-value", "FROM BASE\nLABEL a\n"),
        case("label-bad-second", "FROM BASE\nLABEL f=1 g\n"),
        // ARG before FROM, used in FROM.
        case(
            "arg-in-from",
            "ARG B=BASE\nARG T\nFROM $B\nRUN echo $B\nARG B\nRUN echo $B\n",
        ),
        case("arg-default-in-from", "ARG B\nFROM ${B:-BASE}\n"),
        case("arg-late", "FROM BASE\nRUN echo $X\nARG X=late\nRUN echo $X\n"),
        case("arg-two", "FROM BASE\nARG A=1 B=2\nRUN echo $A $B\n"),
        Case {
            name: "build-arg-unused",
            dockerfile: "FROM BASE\nARG A\nRUN echo $A\n",
            files: &[],
            args: &[
                "--build-arg",
                "A=1",
                "--build-arg",
                "X=2",
                "--build-arg",
                "HTTP_PROXY=h",
            ],
        },
        // (One unused argument per case: Docker lists several in no fixed order.)
        Case {
            name: "build-arg-unused-all-proxy",
            dockerfile: "FROM BASE\nRUN true\n",
            files: &[],
            args: &["--build-arg", "ALL_PROXY=p", "--build-arg", "no_proxy=n"],
        },
        Case {
            name: "build-arg-proxy-env",
            dockerfile: "FROM BASE\nRUN echo \"[$http_proxy] [$ALL_PROXY]\"\n",
            files: &[],
            args: &[
                "--build-arg",
                "http_proxy=h",
                "--build-arg",
                "ALL_PROXY=p",
            ],
        },
        // ADD of a local tar (extracted) and COPY of it (kept).
        Case {
            name: "add-tar",
            dockerfile: "FROM BASE\nADD t.tar /addtar/\nCOPY t.tar /copytar/\nADD t.tar /addtar-file\n",
            files: &[("d/x", "x\n"), ("d/y/z", "z\n"), ("t.tar", "tar:d")],
            args: &[],
        },
        // COPY --chown with names and numbers.
        case(
            "chown-names",
            "FROM BASE\nCOPY --chown=nobody:nogroup a /a1\nCOPY --chown=1:2 a /a2\nCOPY --chown=nobody a /a3\nADD --chown=65534 b /b1\n",
        ),
        case("chown-unknown-user", "FROM BASE\nCOPY --chown=nosuch a /a1\n"),
        case("chown-unknown-group", "FROM BASE\nCOPY --chown=root:nosuch a /a1\n"),
        // A source directory written with a trailing slash.
        Case {
            name: "copy-dir-slash",
            dockerfile: "FROM BASE\nCOPY sub/ /x\nCOPY sub /y/\nCOPY sub/. /z/\n",
            files: &[("sub/f", "s\n"), ("sub/in/g", "t\n")],
            args: &[],
        },
        // Symlinks among the sources: followed at the top, kept inside directories.
        Case {
            name: "copy-symlinks",
            dockerfile: "FROM BASE\nCOPY link /\nCOPY link /x/\nCOPY d /d/\nCOPY dlink /dl/\nCOPY li* /w/\n",
            files: &[
                ("target.txt", "content\n"),
                ("link", "->target.txt"),
                ("d/inner", "->../target.txt"),
                ("dlink", "->d"),
            ],
            args: &[],
        },
        // Links inside a directory source count in its hash as their targets, or, dangling,
        // as their own paths.
        Case {
            name: "copy-dir-links",
            dockerfile: "FROM BASE\nCOPY d1 /d1/\nCOPY d2 /d2/\nCOPY . /all/\n",
            files: &[
                ("f", "f\n"),
                ("d1/f", "x\n"),
                ("d2/l", "->../f"),
                ("d2/dangling", "->../nothing"),
                ("d2/abs", "->/f"),
                ("d2/dir", "->../d1"),
            ],
            args: &[],
        },
        // The escape directive, and instructions in any case.
        case("escape", "# escape=`\nFROM BASE\nRUN echo a `\n  && echo b\nENV P=C:\\\\x\n"),
        case("lower-case", "from BASE\nrun echo hi\nCopy a /a\nenv A=1\n"),
        // JSON forms that are not JSON are shell forms.
        case("bad-json", "FROM BASE\nCMD [\"echo\", \"hi\"\nENTRYPOINT [ \"a\" b ]\n"),
        case("bad-json-run", "FROM BASE\nRUN [\"echo\", hi]\n"),
        case("json-spaces", "FROM BASE\nCMD [\"a\",  \"b\"]   \n"),
        case("json-run-env", "FROM BASE\nENV X=1\nRUN [\"sh\", \"-c\", \"echo $X\"]\n"),
        case("entrypoint-cmd", "FROM BASE\nENTRYPOINT [\"/bin/echo\"]\nCMD [\"hi\"]\n"),
        case("cmd-shell-entrypoint", "FROM BASE\nCMD echo $HOME\nENTRYPOINT [\"sh\", \"-c\"]\n"),
        case("cmd-empty", "FROM BASE\nCMD []\nENTRYPOINT []\n"),
        // Unknown and malformed instructions.
        case("unknown", "FROM BASE\nFOO bar\n"),
        case("unknown-later", "FROM BASE\nRUN echo ok\nFOO bar\n"),
        case("no-from", "RUN true\n"),
        case("from-three-words", "FROM BASE AS a b\n"),
        case("stage-name-digit", "FROM BASE AS 1x\n"),
        case("copy-one-arg", "FROM BASE\nCOPY a\n"),
        case("volume-empty", "FROM BASE\nVOLUME\n"),
        case("volume-json-empty", "FROM BASE\nVOLUME []\n"),
        // Other instructions.
        case("maintainer", "FROM BASE\nMAINTAINER Someone <a@b>\n"),
        case("volume-forms", "FROM BASE\nVOLUME [\"/a\", \"/b\"]\nVOLUME /c /d\n"),
        case("expose-sctp", "FROM BASE\nEXPOSE 80/sctp\n"),
        case("expose-bad", "FROM BASE\nEXPOSE abc\n"),
        case("expose-arg", "FROM BASE\nARG P=8080\nEXPOSE $P\n"),
        case("stage-case", "FROM BASE AS Stage1\nFROM stage1\nRUN true\n"),
        case("copy-url", "FROM BASE\nCOPY http://127.0.0.1:1/x /x\n"),
        case("copy-absolute", "FROM BASE\nCOPY /a /x\n"),
        case("copy-outside", "FROM BASE\nCOPY ../a /x\n"),
        case("add-two", "FROM BASE\nADD a b /dir/\n"),
        // Every stage up to the target is built, used or not.
        case(
            "unused-stage",
            "FROM BASE AS unused\nRUN echo unused-stage-ran\nFROM BASE\nRUN echo main\n",
        ),
        Case {
            name: "target-middle",
            dockerfile: "FROM BASE AS one\nRUN echo one\nFROM BASE AS two\nRUN echo two\nFROM BASE AS three\nRUN echo three\n",
            files: &[],
            args: &["--target", "two"],
        },
        Case {
            name: "labels-option",
            dockerfile: "FROM BASE AS one\nFROM BASE AS two\nRUN true\n",
            files: &[],
            args: &["--label", "b=2", "--label", "a=$HOME", "--target", "one"],
        },
        // ENV hides an ARG of the same name from RUN (and its cache key); ARGs before
        // FROM are not in a stage's RUN unless declared again.
        case(
            "arg-hidden-by-env",
            "ARG M=meta\nFROM BASE\nRUN echo \"[$M]\"\nARG X=1\nENV X=2\nRUN echo \"[$X]\"\n",
        ),
        // What a RUN changes under a VOLUME is lost (new, changed, deleted and re-moded
        // files alike); COPY into it is kept; a volume the image lacks leaves its mount
        // point in the layer.
        case(
            "volume-run",
            "FROM BASE\nRUN mkdir -p /v/sub && echo old > /v/f && echo gone > /v/del && echo keep > /v/sub/k\nVOLUME /v\nRUN echo new > /v/f && echo x > /v/new && rm /v/del && mkdir /v/nd && echo y > /outside && chmod 600 /v/sub/k\nCOPY a /v/copied\nRUN echo after > /v/after2\nRUN ls -l /v /v/sub | sed 1d | cut -c1-10; cat /v/f\n",
        ),
        case(
            "volume-new-path",
            "FROM BASE\nVOLUME /nv/deep /j2\nRUN touch /nv/deep/x /nv/y /j2/z && mkdir -p /j2/a/b\n",
        ),
        // `.dockerignore`: an exception under an excluded directory keeps that file.
        Case {
            name: "dockerignore-exception",
            dockerfile: "FROM BASE\nCOPY . /c/\nCOPY docs /d/\nRUN find /c /d | sort\n",
            files: &[
                ("docs/keep.txt", "k\n"),
                ("docs/other.txt", "o\n"),
                ("docs/sub/s.txt", "s\n"),
                (".dockerignore", "docs\n!docs/keep.txt\n"),
            ],
            args: &[],
        },
        // COPY --from: the current stage, an index past it, an earlier stage.
        case("copy-from-current", "FROM BASE\nCOPY --from=0 /etc/passwd /p\n"),
        case(
            "copy-from-current-second",
            "FROM BASE\nFROM BASE\nCOPY --from=1 /etc/passwd /x/\n",
        ),
        case("copy-from-out-of-bounds", "FROM BASE\nCOPY --from=1 /etc/passwd /x/\n"),
        case(
            "copy-from-stage",
            "FROM BASE AS one\nRUN echo x > /x\nFROM BASE\nCOPY --from=one /x /y\nCOPY --from=0 /x /z\n",
        ),
        case("copy-from-image", "FROM BASE\nCOPY --from=BASE /etc/group /g\n"),
        // Wildcards that match nothing.
        case("copy-glob-nothing", "FROM BASE\nCOPY nomatch* /x/\n"),
        case("copy-glob-nothing-and-file", "FROM BASE\nCOPY a nomatch* /x/\n"),
        case("add-glob-nothing", "FROM BASE\nADD nomatch* /x/\n"),
        case("add-glob-nothing-and-file", "FROM BASE\nADD a nomatch* /x/\n"),
        case("copy-from-glob-nothing", "FROM BASE\nCOPY --from=BASE /nomatch* /x/\n"),
        case(
            "copy-from-glob-nothing-and-file",
            "FROM BASE\nCOPY --from=BASE /etc/passwd /nomatch* /x/\n",
        ),
        case("copy-missing", "FROM BASE\nCOPY nomatch /x/\n"),
        // Empty continuation lines: warned about before the first step.
        case(
            "empty-continuation",
            "FROM BASE\nRUN echo a \\\n\n  && echo b\nRUN echo c \\\n# comment\n\n  && echo d\n",
        ),
        // A step's standard error is part of the build output.
        // (Only standard error: the order of the two streams is not fixed, in Docker either.)
        case("run-stderr", "FROM BASE\nRUN echo err >&2\n"),
        case("run-fails", "FROM BASE\nRUN echo err >&2 && exit 3\n"),
        Case {
            name: "quiet-fails",
            dockerfile: "FROM BASE\nRUN echo out\nRUN echo err >&2\nCOPY nomatch /x\n",
            files: &[],
            args: &["-q"],
        },
    ]
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn builds_match_docker_classic_builder() {
    if !require_root() || !docker() {
        return;
    }
    let differ = compare(&cases());
    assert!(differ.is_empty(), "cases that differ: {differ:?}");
}
