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

#[test]
fn unknown_command_is_a_usage_error() {
    Command::cargo_bin("strata")
        .unwrap()
        .arg("frobnicate")
        .assert()
        .failure()
        .code(125);
}
