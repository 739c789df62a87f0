use assert_cmd::Command;

#[test]
fn version_flag_prints_the_version() {
    Command::cargo_bin("strata")
        .unwrap()
        .arg("--version")
        .assert()
        .success()
        .stdout(predicates::str::contains(env!("CARGO_PKG_VERSION")));
}

/// Docker 20.10: `docker: 'frobnicate' is not a docker command.`, exit 1.
#[test]
fn unknown_command_is_a_usage_error() {
    Command::cargo_bin("strata")
        .unwrap()
        .arg("frobnicate")
        .assert()
        .failure()
        .code(1)
        .stderr("strata: 'frobnicate' is not a strata command.\nSee 'strata --help'\n");
}

/// The configuration file's `insecure-registries` is read on every command; a broken file or
/// entry is a clear error that names it, before anything else happens.
#[test]
fn insecure_registry_configuration_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("daemon.json");
    std::fs::write(&cfg, "{\"insecure-registries\": [\"reg.example:5000\"]}").unwrap();
    let strata = |args: &[&str]| {
        Command::cargo_bin("strata")
            .unwrap()
            .env("STRATA_CONFIG", &cfg)
            .env("STRATA_ROOT", dir.path().join("root"))
            .args(args)
            .output()
            .unwrap()
    };
    assert!(strata(&["images"]).status.success());
    std::fs::write(&cfg, "{\"insecure-registries\": \"reg.example\"}").unwrap();
    let out = strata(&["images"]);
    assert_eq!(out.status.code(), Some(125));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("daemon.json") && err.contains("must be a list"),
        "{err}"
    );
    std::fs::write(&cfg, "{not json").unwrap();
    let out = strata(&["images"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid configuration file"));
    std::fs::write(&cfg, "{}").unwrap();
    let out = strata(&["--insecure-registry", "http://reg.example:5000", "images"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&out.stderr).contains("without a scheme"));
}
