//! `docker inspect -f TEMPLATE` outputs recorded from Docker 20.10 for an image built by the
//! classic builder, reproduced from the same inspect JSON.

use serde_json::Value;

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// Templates whose Docker output depends on Go types a JSON value does not carry: a nil
/// pointer prints `<nil>` in Go, a JSON null prints `<no value>` in the template engine.
const KNOWN_DIFFERENT: &[&str] = &["{{.Config.Healthcheck}}", "{{.Config.StopTimeout}}"];

#[test]
fn inspect_templates_match_docker() {
    let mut failures = Vec::new();
    for (image, templates) in [
        ("inspect-classic.json", "inspect-templates.json"),
        ("inspect-import.json", "inspect-templates-import.json"),
    ] {
        check(image, templates, &mut failures);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn check(image: &str, templates: &str, failures: &mut Vec<String>) {
    let inspect: Vec<Value> = serde_json::from_str(&fixture(image)).unwrap();
    let cases: Vec<Value> = serde_json::from_str(&fixture(templates)).unwrap();
    for c in &cases {
        let tpl = c["template"].as_str().unwrap();
        if KNOWN_DIFFERENT.contains(&tpl) {
            continue;
        }
        let got = format::render(tpl, &inspect[0]);
        if c["exit"] == 0 {
            match got {
                Ok(s) if format!("{s}\n") == c["stdout"].as_str().unwrap() => {}
                other => {
                    failures.push(format!("{tpl}: docker {:?}, strata {other:?}", c["stdout"]))
                }
            }
        } else {
            let want = c["stderr"].as_str().unwrap();
            let want = want.trim_end();
            let ok = match &got {
                // Parse errors (exit 64 in the CLI): the same text.
                Err(e) if c["exit"] == 64 => e.to_string() == want,
                // Execution errors: Go names the position (`:1:2: executing "" at <.X>: `),
                // strata does not; what follows must be the same.
                Err(e) => {
                    let tail = want.rsplit_once(">: ").map(|x| x.1).unwrap_or(want);
                    let e = e.to_string();
                    e.starts_with("template parsing error: template: ") && e.ends_with(tail)
                }
                Ok(_) => false,
            };
            if !ok {
                failures.push(format!("{tpl}: docker {want:?}, strata {got:?}"));
            }
        }
    }
}
