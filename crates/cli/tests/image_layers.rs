//! `image layers`: dive's figures for an image built on busybox with a known overwrite (a
//! 1 MiB file written twice) and a known delete (a file copied in, then removed). The
//! expected figures are worked out here from those sizes and the busybox tarball, following
//! dive's `Efficiency`: each path's occurrences summed, an overwritten or deleted path's
//! occurrences all wasted, the score being the smallest occurrences over all of them.

mod common;

use std::fs;

use common::*;

const MIB: u64 = 1 << 20;
/// Size of the file copied in and deleted.
const GONE: u64 = 3000;

const DOCKERFILE: &str = "\
FROM busybox
COPY gone /gone
RUN head -c 1048576 /dev/zero > /big
RUN head -c 1048576 /dev/zero | tr '\\0' x > /big
RUN rm /gone
ENV AFTER=1
";

/// Sum of the entry sizes of the busybox tarball (the base layer as dive sizes it).
fn base_size() -> u64 {
    let mut ar = tar::Archive::new(fs::File::open(busybox_tar()).unwrap());
    ar.entries()
        .unwrap()
        .map(|e| e.unwrap().header().size().unwrap())
        .sum()
}

fn build(s: &Strata) -> tempfile::TempDir {
    s.ok(&["import", busybox_tar().to_str().unwrap(), "busybox"]);
    let ctx = tempfile::tempdir().unwrap();
    fs::write(ctx.path().join("gone"), vec![b'g'; GONE as usize]).unwrap();
    fs::write(ctx.path().join("Dockerfile"), DOCKERFILE).unwrap();
    s.ok(&[
        "build",
        "-q",
        "-t",
        "wasteful",
        ctx.path().to_str().unwrap(),
    ]);
    ctx
}

fn ci(s: &Strata, image: &str, flags: &[&str]) -> (i32, String) {
    let mut args = vec!["image", "layers", "--ci"];
    args.extend_from_slice(flags);
    args.push(image);
    let out = s.cmd().args(&args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn layers_count_the_overwrite_and_the_delete_as_dive() {
    if !require_root() {
        return;
    }
    let s = Strata::new();
    let _ctx = build(&s);
    let base = base_size();
    let total = base + GONE + MIB + MIB;
    // /big twice (both wasted), /gone added then whited out (the whiteout of a file is 0).
    let wasted = 2 * MIB + GONE;
    // Every other path is met once: the smallest occurrences are all but one /big and /gone.
    let efficiency = (total - MIB - GONE) as f64 / total as f64;

    let v: serde_json::Value =
        serde_json::from_str(&s.ok(&["image", "layers", "--format", "json", "wasteful"])).unwrap();
    let layers = v["layer"].as_array().unwrap();
    let sizes: Vec<u64> = layers
        .iter()
        .map(|l| l["sizeBytes"].as_u64().unwrap())
        .collect();
    assert_eq!(sizes, [base, GONE, MIB, MIB, 0]);
    let counts: Vec<(u64, u64, u64)> = layers
        .iter()
        .map(|l| {
            (
                l["added"].as_u64().unwrap(),
                l["changed"].as_u64().unwrap(),
                l["removed"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(&counts[1..], [(1, 0, 0), (1, 0, 0), (0, 1, 0), (0, 0, 1)]);
    // Each layer's share of the waste: /gone where it was added, /big twice.
    let shares: Vec<u64> = layers
        .iter()
        .map(|l| l["wastedBytes"].as_u64().unwrap())
        .collect();
    assert_eq!(shares, [0, GONE, MIB, MIB, 0]);
    assert!(counts[0].0 > 100, "busybox's files are added: {counts:?}");
    let by: Vec<&str> = layers
        .iter()
        .map(|l| l["createdBy"].as_str().unwrap())
        .collect();
    assert!(by[1].contains("COPY"), "{by:?}");
    assert!(by[2].contains("/dev/zero > /big"), "{by:?}");
    assert!(by[4].contains("rm /gone"), "{by:?}");
    let img = &v["image"];
    assert_eq!(img["sizeBytes"], total);
    assert_eq!(img["userSizeBytes"], total - base);
    assert_eq!(img["inefficientBytes"], wasted);
    assert_eq!(img["efficiencyScore"].as_f64().unwrap(), efficiency);
    assert_eq!(img["userWastedPercent"].as_f64().unwrap(), 1.0);
    assert_eq!(
        img["fileReference"],
        serde_json::json!([
            {"count": 2, "sizeBytes": 2 * MIB, "file": "/big"},
            {"count": 2, "sizeBytes": GONE, "file": "/gone"},
        ])
    );

    let text = s.ok(&["image", "layers", "wasteful"]);
    let lines: Vec<&str> = text.lines().collect();
    let cells = |l: &str| {
        l.split_whitespace()
            .take(5)
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        cells(lines[0]),
        ["LAYER", "SIZE", "ADDED", "CHANGED", "REMOVED"]
    );
    assert_eq!(cells(lines[3]), ["2", "1.05MB", "1", "0", "0"]);
    assert_eq!(cells(lines[4]), ["3", "1.05MB", "0", "1", "0"]);
    assert_eq!(cells(lines[5]), ["4", "0B", "0", "0", "1"]);
    assert!(
        text.contains("\nPotential wasted space: 2.1 MB\n"),
        "{text}"
    );
    let score = format!(
        "\nImage efficiency score: {} %\n",
        (efficiency * 100.0) as i64
    );
    assert!(text.contains(&score), "{text}");
    assert!(text.contains("    2        2.1 MB  /big\n"), "{text}");
    assert!(text.contains("    2        3.0 kB  /gone\n"), "{text}");
    // Nothing is stored twice under two paths: dive's waste is all there is.
    assert!(
        text.ends_with("Duplicated content: 0 B (the same bytes stored again under another path)\nLayer          Size  File Path\nNone\n"),
        "{text}"
    );
    assert_eq!(img["duplicatedBytes"], 0);

    // dive's default rules: the wasted user share (100%) fails.
    let (code, out) = ci(&s, "wasteful", &[]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!("  wastedBytes: {wasted} bytes (2.1 MB)\n")),
        "{out}"
    );
    assert!(out.contains("  userWastedPercent: 100.0000 %\n"), "{out}");
    assert!(out.contains("  FAIL: highestUserWastedPercent: too many bytes wasted, relative to the user bytes added (%-user-wasted-bytes=1 > threshold=0.1)\n"), "{out}");
    assert!(
        out.contains("  SKIP: highestWastedBytes: rule disabled\n"),
        "{out}"
    );
    assert!(out.contains("Result:FAIL"), "{out}");

    // Thresholds the image meets pass.
    let low = format!("{}", efficiency - 0.001);
    let (code, out) = ci(
        &s,
        "wasteful",
        &[
            "--lowest-efficiency",
            &low,
            "--highest-user-wasted-percent",
            "disabled",
        ],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("  PASS: lowestEfficiency\n"), "{out}");
    assert!(
        out.contains("Result:PASS [Total:3] [Passed:1] [Failed:0] [Warn:0] [Skipped:2]\n"),
        "{out}"
    );

    // Just above the score fails; so do wasted bytes above 2 MiB (dive's flag names).
    let high = format!("{}", efficiency + 0.001);
    let (code, out) = ci(
        &s,
        "wasteful",
        &[
            "--lowestEfficiency",
            &high,
            "--highestUserWastedPercent",
            "disabled",
            "--highestWastedBytes",
            "2MiB",
        ],
    );
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("  FAIL: lowestEfficiency: image efficiency is too low"),
        "{out}"
    );
    let over = format!(
        "  FAIL: highestWastedBytes: too many bytes wasted (wasted-bytes={wasted} > threshold={})\n",
        2 * MIB
    );
    assert!(out.contains(&over), "{out}");

    // The base alone wastes nothing and passes the defaults.
    let (code, out) = ci(&s, "busybox", &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("  efficiency: 100.0000 %\n"), "{out}");
    assert!(
        out.contains("Inefficient Files:\nCount  Wasted Space  File Path\nNone\n"),
        "{out}"
    );

    // A threshold that is no size is refused before anything is read.
    let (code, err) = s.fails(&[
        "image",
        "layers",
        "--ci",
        "--highest-wasted-bytes",
        "lots",
        "busybox",
    ]);
    assert_eq!(code, 125, "{err}");
    assert!(err.contains("--highest-wasted-bytes"), "{err}");
    let (code, err) = s.fails(&["image", "layers", "127.0.0.1:9/missing:1"]);
    assert_eq!(code, 1, "{err}");
}

/// The same content stored twice: a file copied in, then copied under another name by a
/// RUN. dive counts paths, so its figures see no waste; strata's duplicate count sees the
/// copy's bytes, in the RUN's layer, naming the file it repeats.
#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn the_same_content_under_another_path_is_counted_as_duplicated() {
    if !require_root() {
        return;
    }
    const DATA: u64 = 5000;
    let s = Strata::new();
    s.ok(&["import", busybox_tar().to_str().unwrap(), "busybox"]);
    let ctx = tempfile::tempdir().unwrap();
    fs::write(ctx.path().join("data"), vec![b'd'; DATA as usize]).unwrap();
    fs::write(
        ctx.path().join("Dockerfile"),
        "FROM busybox\nCOPY data /data\nRUN cp /data /copy\n",
    )
    .unwrap();
    s.ok(&["build", "-q", "-t", "dup", ctx.path().to_str().unwrap()]);

    let v: serde_json::Value =
        serde_json::from_str(&s.ok(&["image", "layers", "--format", "json", "dup"])).unwrap();
    let per_layer: Vec<u64> = v["layer"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["duplicatedBytes"].as_u64().unwrap())
        .collect();
    assert_eq!(per_layer, [0, 0, DATA]);
    let img = &v["image"];
    assert_eq!(img["duplicatedBytes"], DATA);
    assert_eq!(
        img["duplicateReference"],
        serde_json::json!([{"layer": 2, "sizeBytes": DATA, "file": "/copy", "sameAs": "/data"}])
    );
    // dive's figures count paths: no waste here.
    assert_eq!(img["inefficientBytes"], 0);
    assert_eq!(img["efficiencyScore"].as_f64().unwrap(), 1.0);

    let text = s.ok(&["image", "layers", "dup"]);
    assert!(
        text.contains(
            "\nDuplicated content: 5.0 kB (the same bytes stored again under another path)\n\
             Layer          Size  File Path\n    2        5.0 kB  /copy (same as /data)\n"
        ),
        "{text}"
    );
}

/// Counts the pixels of `png` within a small distance of each colour.
fn count_colours(png: &std::path::Path, colours: &[[u8; 3]]) -> Vec<usize> {
    let decoder = png::Decoder::new(std::io::BufReader::new(fs::File::open(png).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    assert!(channels >= 3, "{:?}", info.color_type);
    let mut counts = vec![0; colours.len()];
    for px in buf[..info.buffer_size()].chunks(channels) {
        for (i, c) in colours.iter().enumerate() {
            if (0..3).all(|k| px[k].abs_diff(c[k]) <= 8) {
                counts[i] += 1;
            }
        }
    }
    counts
}

fn rgb(hex: &str) -> [u8; 3] {
    let v = u32::from_str_radix(hex.trim_start_matches('#'), 16).unwrap();
    [(v >> 16) as u8, (v >> 8) as u8, v as u8]
}

/// The picture of the stack: one bar per layer, the base's green because `busybox` shares
/// it, the wasteful layers' red; rendered by headless Chromium into pixels of those colours.
#[test]
fn the_svg_picture_renders_in_chromium() {
    if !require_root() || !require_tool("chromium") {
        return;
    }
    let s = Strata::new();
    let _ctx = build(&s);
    let svg = s.ok(&["image", "layers", "--format", "svg", "wasteful"]);
    assert!(svg.starts_with("<svg "), "{svg}");
    assert_eq!(svg.matches(r#"class="layer""#).count(), 5, "{svg}");
    assert!(svg.contains("shared with busybox"), "{svg}");
    assert!(svg.contains("rm /gone"), "{svg}");
    let html = s.ok(&["image", "layers", "--format", "html", "wasteful"]);
    assert!(
        html.starts_with("<!DOCTYPE html>") && html.contains("<svg "),
        "{html}"
    );

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("layers.svg");
    fs::write(&file, &svg).unwrap();
    let shot = dir.path().join("layers.png");
    let out = std::process::Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=1000,500",
        ])
        .arg(format!(
            "--user-data-dir={}",
            dir.path().join("profile").display()
        ))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", file.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success() && shot.exists(),
        "chromium: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Colours of strata's picture (crates/cli/src/commands/layers_svg.rs).
    let counts = count_colours(&shot, &[rgb("#1f77b4"), rgb("#2ca02c"), rgb("#d62728")]);
    // The base bar (shared with busybox, full width) is the biggest green area; the two
    // 1 MiB layers are nearly all waste, and the COPY layer's waste is a sliver.
    assert!(counts[1] > 10_000, "green pixels: {counts:?}");
    assert!(counts[2] > 1_000, "red pixels: {counts:?}");
    assert!(counts[0] > 0, "blue pixels: {counts:?}");
}

/// `images --tree`: busybox's layer at the root, the image built on it below, each image
/// named on its top layer.
#[test]
fn images_tree_draws_the_shared_layers() {
    if !require_root() {
        return;
    }
    let s = Strata::new();
    let _ctx = build(&s);
    let ctx = tempfile::tempdir().unwrap();
    fs::write(ctx.path().join("f"), "other").unwrap();
    fs::write(ctx.path().join("Dockerfile"), "FROM busybox\nCOPY f /f\n").unwrap();
    s.ok(&["build", "-q", "-t", "other", ctx.path().to_str().unwrap()]);
    let tree = s.ok(&["images", "--tree"]);
    let lines: Vec<&str> = tree.lines().collect();
    assert!(lines[0].contains("busybox:latest"), "{tree}");
    assert!(
        !lines[0].starts_with(' ') && !lines[0].starts_with('├'),
        "{tree}"
    );
    // Two branches under the base: wasteful's COPY and other's COPY.
    let branches = lines
        .iter()
        .filter(|l| l.starts_with("├── ") || l.starts_with("└── "))
        .count();
    assert_eq!(branches, 2, "{tree}");
    let other = lines
        .iter()
        .find(|l| l.contains("other:latest"))
        .expect(&tree);
    assert!(
        other.starts_with("├── ") || other.starts_with("└── "),
        "{tree}"
    );
    let wasteful = lines
        .iter()
        .find(|l| l.contains("wasteful:latest"))
        .expect(&tree);
    assert!(
        wasteful.starts_with("    ") || wasteful.starts_with("│   "),
        "{tree}"
    );
    assert_eq!(tree.matches("wasteful:latest").count(), 1, "{tree}");
}
