//! `strata image layers [--no-trunc] [--format json|svg|html|TEMPLATE] [--ci ...] IMAGE`: dive's
//! analysis of an image, printed (not interactive): the layers with what each adds,
//! changes and removes, the wasted bytes and the efficiency score, and with `--ci` dive's
//! three rules, exiting 1 when one fails. The figures are `image::analyze`'s.

use anyhow::Result;
use serde_json::{json, Value};

use crate::cli::LayersArgs;
use crate::Failure;

pub fn run(root: &std::path::Path, a: LayersArgs) -> Result<()> {
    let rules = if a.ci { Some(Rules::parse(&a)?) } else { None };
    let store = super::open_store(root)?;
    let id = image::resolve(&store, &a.image).map_err(|e| super::image_failure(&a.image, e))?;
    let analysis = image::analyze(&store, &id)?;
    if let Some(rules) = rules {
        let (report, pass) = ci_report(&analysis, &rules);
        print!("{report}");
        if !pass {
            return Err(Failure::bare(1, "").into());
        }
        return Ok(());
    }
    match a.format.as_deref().map(str::trim) {
        None | Some("") => print!("{}", text_report(&analysis, a.no_trunc)),
        Some("json") => println!("{}", serde_json::to_string_pretty(&to_json(&analysis))?),
        Some(kind @ ("svg" | "html")) => {
            let sharing = image::layer_sharing(&store, &id)?;
            let picture = super::layers_svg::Picture {
                name: &a.image,
                id: &id,
                analysis: &analysis,
                sharing: &sharing,
            };
            if kind == "svg" {
                print!("{}", super::layers_svg::svg(&picture));
            } else {
                print!("{}", super::layers_svg::html(&picture));
            }
        }
        Some(tpl) => {
            let out = format::render(tpl, &to_json(&analysis))
                .map_err(|e| Failure::bare(1, e.to_string()))?;
            println!("{out}");
        }
    }
    Ok(())
}

/// dive's `--json` export, with strata's counts and the user figures added.
fn to_json(a: &image::Analysis) -> Value {
    let layers: Vec<Value> = a
        .layers
        .iter()
        .map(|l| {
            json!({
                "index": l.index,
                "digestId": l.diff_id.map(|d| d.to_string()),
                "sizeBytes": l.size,
                "command": l.created_by.strip_prefix("/bin/sh -c ").unwrap_or(&l.created_by),
                "createdBy": l.created_by,
                "added": l.added,
                "changed": l.changed,
                "removed": l.removed,
                "wastedBytes": l.wasted,
                "duplicatedBytes": l.duplicated,
            })
        })
        .collect();
    let files: Vec<Value> = a
        .inefficiencies
        .iter()
        .map(|i| json!({"count": i.count, "sizeBytes": i.wasted, "file": i.path}))
        .collect();
    let duplicates: Vec<Value> = a
        .duplicates
        .iter()
        .map(
            |d| json!({"layer": d.layer, "sizeBytes": d.size, "file": d.path, "sameAs": d.same_as}),
        )
        .collect();
    json!({
        "layer": layers,
        "image": {
            "sizeBytes": a.size_bytes,
            "userSizeBytes": a.user_size_bytes,
            "inefficientBytes": a.wasted_bytes,
            "userWastedPercent": a.wasted_user_percent,
            "efficiencyScore": a.efficiency,
            "fileReference": files,
            "duplicatedBytes": a.duplicated_bytes,
            "duplicateReference": duplicates,
        },
    })
}

fn text_report(a: &image::Analysis, no_trunc: bool) -> String {
    let mut t = format::Table::new(&["LAYER", "SIZE", "ADDED", "CHANGED", "REMOVED", "CREATED BY"]);
    for l in &a.layers {
        t.push([
            l.index.to_string(),
            format::human_size(l.size),
            l.added.to_string(),
            l.changed.to_string(),
            l.removed.to_string(),
            format::history_created_by(&l.created_by, !no_trunc),
        ]);
    }
    let mut out = t.render();
    out.push('\n');
    // dive's image details pane.
    out.push_str(&format!(
        "Total Image size: {}\nPotential wasted space: {}\nImage efficiency score: {} %\n\n",
        format::humanize_bytes(a.size_bytes),
        format::humanize_bytes(a.wasted_bytes),
        (100.0 * a.efficiency) as i64
    ));
    out.push_str(&inefficient_files(a));
    out.push_str(&duplicated_files(a));
    out
}

/// strata's addition: files holding the same bytes as an earlier file under another path.
fn duplicated_files(a: &image::Analysis) -> String {
    let mut out = format!(
        "\nDuplicated content: {} (the same bytes stored again under another path)\n",
        format::humanize_bytes(a.duplicated_bytes)
    );
    let line = |layer: &str, size: &str, path: &str| format!("{layer:>5}  {size:>12}  {path}\n");
    out.push_str(&line("Layer", "Size", "File Path"));
    if a.duplicates.is_empty() {
        out.push_str("None\n");
    }
    for d in &a.duplicates {
        out.push_str(&line(
            &d.layer.to_string(),
            &format::humanize_bytes(d.size),
            &format!("{} (same as {})", d.path, d.same_as),
        ));
    }
    out
}

/// dive's CI report of the inefficient files, biggest first.
fn inefficient_files(a: &image::Analysis) -> String {
    let mut out = String::from("Inefficient Files:\n");
    let line = |count: &str, size: &str, path: &str| format!("{count:>5}  {size:>12}  {path}\n");
    out.push_str(&line("Count", "Wasted Space", "File Path"));
    if a.inefficiencies.is_empty() {
        out.push_str("None\n");
    }
    for i in &a.inefficiencies {
        out.push_str(&line(
            &i.count.to_string(),
            &format::humanize_bytes(i.wasted),
            &i.path,
        ));
    }
    out
}

/// dive's CI thresholds; `None` is a disabled rule.
struct Rules {
    lowest_efficiency: Option<f64>,
    highest_wasted_bytes: Option<u64>,
    highest_user_wasted_percent: Option<f64>,
}

impl Rules {
    fn parse(a: &LayersArgs) -> Result<Rules> {
        fn ratio(flag: &str, v: &str) -> Result<Option<f64>> {
            if v == "disabled" {
                return Ok(None);
            }
            v.trim()
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .map(Some)
                .ok_or_else(|| invalid(flag, v, "not a number"))
        }
        let bytes = match a.highest_wasted_bytes.as_str() {
            "disabled" => None,
            v => Some(
                parse_bytes(v).ok_or_else(|| invalid("highest-wasted-bytes", v, "not a size"))?,
            ),
        };
        Ok(Rules {
            lowest_efficiency: ratio("lowest-efficiency", &a.lowest_efficiency)?,
            highest_wasted_bytes: bytes,
            highest_user_wasted_percent: ratio(
                "highest-user-wasted-percent",
                &a.highest_user_wasted_percent,
            )?,
        })
    }
}

fn invalid(flag: &str, value: &str, why: &str) -> anyhow::Error {
    Failure::new(
        125,
        format!("invalid argument \"{value}\" for \"--{flag}\" flag: {why}"),
    )
    .into()
}

/// go-humanize `ParseBytes`: a number and an optional unit, decimal (`kB`, `MB`…) or binary
/// (`KiB`, `MiB`…), case and spaces ignored.
fn parse_bytes(s: &str) -> Option<u64> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == ','))
        .unwrap_or(s.len());
    let num: f64 = s[..split].replace(',', "").parse().ok()?;
    let unit = s[split..].to_ascii_lowercase();
    let mult: f64 = match unit.as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "ki" | "kib" => 1024.0,
        "m" | "mb" => 1e6,
        "mi" | "mib" => 1024f64.powi(2),
        "g" | "gb" => 1e9,
        "gi" | "gib" => 1024f64.powi(3),
        "t" | "tb" => 1e12,
        "ti" | "tib" => 1024f64.powi(4),
        "p" | "pb" => 1e15,
        "pi" | "pib" => 1024f64.powi(5),
        _ => return None,
    };
    let v = num * mult;
    (v.is_finite() && v < u64::MAX as f64).then_some(v as u64)
}

/// Go's `%v` of a float64: the shortest representation, with an exponent below 1e-4 and
/// from 1e21.
fn go_v(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    let sci = format!("{v:e}");
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if v != 0.0 && !(-4..21).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mant}e{sign}{:02}", exp.abs())
    } else {
        format!("{v}")
    }
}

/// dive's `--ci` output and whether every rule passed.
fn ci_report(a: &image::Analysis, rules: &Rules) -> (String, bool) {
    let mut out = format!(
        "  efficiency: {:.4} %\n  wastedBytes: {} bytes ({})\n  userWastedPercent: {:.4} %\n",
        a.efficiency * 100.0,
        a.wasted_bytes,
        format::humanize_bytes(a.wasted_bytes),
        a.wasted_user_percent * 100.0
    );
    out.push_str(&inefficient_files(a));
    out.push_str("Results:\n");
    // In dive's order: the rule names sorted.
    let results: [(&str, Option<Option<String>>); 3] = [
        (
            "highestUserWastedPercent",
            rules.highest_user_wasted_percent.map(|t| {
                (t < a.wasted_user_percent).then(|| format!(
                    "too many bytes wasted, relative to the user bytes added (%-user-wasted-bytes={} > threshold={})",
                    go_v(a.wasted_user_percent),
                    go_v(t)
                ))
            }),
        ),
        (
            "highestWastedBytes",
            rules.highest_wasted_bytes.map(|t| {
                (a.wasted_bytes > t).then(|| format!(
                    "too many bytes wasted (wasted-bytes={} > threshold={t})",
                    a.wasted_bytes
                ))
            }),
        ),
        (
            "lowestEfficiency",
            rules.lowest_efficiency.map(|t| {
                (t > a.efficiency).then(|| format!(
                    "image efficiency is too low (efficiency={} < threshold={})",
                    go_v(a.efficiency),
                    go_v(t)
                ))
            }),
        ),
    ];
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    for (name, result) in &results {
        match result {
            None => {
                skipped += 1;
                out.push_str(&format!("  SKIP: {name}: rule disabled\n"));
            }
            Some(None) => {
                passed += 1;
                out.push_str(&format!("  PASS: {name}\n"));
            }
            Some(Some(msg)) => {
                failed += 1;
                out.push_str(&format!("  FAIL: {name}: {msg}\n"));
            }
        }
    }
    let status = if failed > 0 { "FAIL" } else { "PASS" };
    out.push_str(&format!(
        "Result:{status} [Total:{}] [Passed:{passed}] [Failed:{failed}] [Warn:0] [Skipped:{skipped}]\n",
        results.len()
    ));
    (out, failed == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_as_go_humanize_parses_them() {
        assert_eq!(parse_bytes("42"), Some(42));
        assert_eq!(parse_bytes("20MB"), Some(20_000_000));
        assert_eq!(parse_bytes("20 mb"), Some(20_000_000));
        assert_eq!(parse_bytes("1.5KiB"), Some(1536));
        assert_eq!(parse_bytes("1,000 kB"), Some(1_000_000));
        assert_eq!(parse_bytes("12 furlongs"), None);
        assert_eq!(parse_bytes(""), None);
    }

    #[test]
    fn floats_print_as_go_v() {
        assert_eq!(go_v(0.9), "0.9");
        assert_eq!(go_v(0.5), "0.5");
        assert_eq!(go_v(2.0 / 3.0), "0.6666666666666666");
        assert_eq!(go_v(1.0), "1");
        assert_eq!(go_v(0.00001), "1e-05");
        assert_eq!(go_v(f64::INFINITY), "+Inf");
    }
}
