//! `docker history` and `docker images` tables recorded from Docker 20.10, reproduced from the
//! same rows (recorded at the same moment with `--format '{{json .}}'`).

use format::{ListFormat, Table};
use serde_json::{json, Value};

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn rows(name: &str) -> Vec<Value> {
    fixture(name)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

const HISTORY: &str = r"table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}";
const IMAGES: &str = r"table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}";

fn history_header() -> Value {
    json!({"ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT",
           "CreatedBy": "CREATED BY", "Size": "SIZE", "Comment": "COMMENT"})
}

#[test]
fn history_table_matches_docker() {
    let f = ListFormat::parse(HISTORY).unwrap();
    let out = f
        .render(&history_header(), &rows("history-rows.jsonl"))
        .unwrap();
    assert_eq!(out, fixture("history-table.txt"));
}

#[test]
fn custom_history_table_matches_docker() {
    let f = ListFormat::parse(r"table {{.ID}}\t{{.Size}}\t{{upper .Comment}}").unwrap();
    let out = f
        .render(&history_header(), &rows("history-rows.jsonl"))
        .unwrap();
    assert_eq!(out, fixture("history-custom-table.txt"));
}

#[test]
fn images_table_matches_docker() {
    let header = json!({"Repository": "REPOSITORY", "Tag": "TAG", "ID": "IMAGE ID",
                        "CreatedSince": "CREATED", "Size": "SIZE"});
    let f = ListFormat::parse(IMAGES).unwrap();
    let out = f.render(&header, &rows("images-rows.jsonl")).unwrap();
    assert_eq!(out, fixture("images-table.txt"));

    // The same through the fixed-column helper.
    let mut t = Table::new(&["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]);
    for r in rows("images-rows.jsonl") {
        t.push(["Repository", "Tag", "ID", "CreatedSince", "Size"].map(|k| r[k].as_str().unwrap()));
    }
    assert_eq!(t.render(), fixture("images-table.txt"));
}

#[test]
fn json_of_a_row_is_sorted_and_html_escaped() {
    let f = ListFormat::parse("{{json .}}").unwrap();
    for name in ["history-rows.jsonl", "images-rows.jsonl"] {
        let want = fixture(name);
        let out = f.render(&json!({}), &rows(name)).unwrap();
        assert_eq!(out, want, "{name}");
    }
}

#[test]
fn created_at_strings_match_docker() {
    let inspect: Vec<Value> = serde_json::from_str(&fixture("inspect-classic.json")).unwrap();
    let created = inspect[0]["Created"].as_str().unwrap();
    let t = format::Timestamp::parse_rfc3339(created).unwrap();
    assert_eq!(t.rfc3339_nano(), created);
    assert_eq!(t.rfc3339(), rows("history-rows.jsonl")[0]["CreatedAt"]);
    assert_eq!(t.go_date_time(), rows("images-rows.jsonl")[0]["CreatedAt"]);
}

#[test]
fn system_df_table_matches_docker() {
    let f = ListFormat::parse(
        r"table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}",
    )
    .unwrap();
    let header = json!({"Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE",
                        "Size": "SIZE", "Reclaimable": "RECLAIMABLE"});
    let out = f.render(&header, &rows("df-rows.jsonl")).unwrap();
    assert_eq!(out, fixture("df-table.txt"));
}

#[test]
fn history_created_by_cells_match_docker() {
    // The untruncated texts come from the recorded image config's history, newest first.
    let cfg: Value = serde_json::from_str(&fixture("inspect-classic.json")).unwrap();
    assert_eq!(
        cfg[0]["Id"],
        "sha256:1b8a4ad5b45fc7f1ff8e2d65d8ce70d1ec234cea7b2b38704dd57fc6ffc21515"
    );
    let full = [
        r#"/bin/sh -c #(nop)  CMD ["/bin/sh" "-c" "echo <hi> & bye"]"#,
        r#"/bin/sh -c #(nop)  HEALTHCHECK &{["CMD-SHELL" "true"] "30s" "3s" "0s" '\x00'}"#,
        "/bin/sh -c #(nop) WORKDIR /app",
        "/bin/sh -c echo hi > /hi.txt",
    ];
    let rows = rows("history-rows.jsonl");
    for (f, r) in full.iter().zip(&rows) {
        assert_eq!(
            format::history_created_by(f, true),
            r["CreatedBy"].as_str().unwrap()
        );
    }
}
