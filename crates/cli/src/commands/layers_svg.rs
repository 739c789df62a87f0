//! `image layers --format svg|html`: the layer stack drawn for people who would rather look.
//! One row per layer, the top layer first as in a stack: a bar as long as the layer's share
//! of the biggest layer, its wasted bytes (`LayerAnalysis::wasted`) in red at its start, its
//! colour telling whether other images are built on it (and so share it on disk), and under
//! it the step that made it, its counts and the images sharing it. Plain SVG 1.1 with no
//! script or external reference, so any browser or image viewer shows it.

use std::fmt::Write;

/// Colours: a layer only this image uses, one shared with other images, wasted bytes.
pub const OWN: &str = "#1f77b4";
pub const SHARED: &str = "#2ca02c";
pub const WASTED: &str = "#d62728";

const WIDTH: u32 = 1000;
const BAR_X: u32 = 190;
const BAR_MAX: u32 = WIDTH - BAR_X - 20;
const ROW: u32 = 64;
const TOP: u32 = 84;

/// What the drawing says about the image besides the analysis.
pub struct Picture<'a> {
    /// The name the user gave, and the image ID.
    pub name: &'a str,
    pub id: &'a oci::Digest,
    pub analysis: &'a image::Analysis,
    /// Per layer, base first: the other images built on it (`image::layer_sharing`).
    pub sharing: &'a [Vec<image::TreeImage>],
}

pub fn svg(p: &Picture<'_>) -> String {
    let a = p.analysis;
    let rows = a.layers.len() as u32;
    let height = TOP + rows * ROW + 56;
    let biggest = a.layers.iter().map(|l| l.size).max().unwrap_or(0).max(1);
    let mut s = String::new();
    let _ = write!(
        s,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="12">"##
    );
    let _ = write!(
        s,
        r##"<title>{}</title><rect width="100%" height="100%" fill="#ffffff"/>"##,
        esc(&format!("Layers of {}", p.name))
    );
    let _ = write!(
        s,
        r##"<text x="20" y="30" font-size="18" font-weight="bold">{} <tspan font-size="13" font-weight="normal" fill="#555555">{}</tspan></text>"##,
        esc(p.name),
        esc(&p.id.short())
    );
    let _ = write!(
        s,
        r##"<text x="20" y="54" fill="#333333">{} layers · total {} · wasted {} · efficiency {} %</text>"##,
        a.layers.len(),
        esc(&format::humanize_bytes(a.size_bytes)),
        esc(&format::humanize_bytes(a.wasted_bytes)),
        (100.0 * a.efficiency) as i64
    );
    for (row, l) in a.layers.iter().rev().enumerate() {
        let y = TOP + row as u32 * ROW;
        let shared = p.sharing.get(l.index).map(Vec::as_slice).unwrap_or(&[]);
        let colour = if shared.is_empty() { OWN } else { SHARED };
        let bar = scale(l.size, biggest).max(3);
        let waste = scale(l.wasted, biggest).min(bar);
        let _ = write!(
            s,
            r##"<g class="layer" data-index="{}"><text x="20" y="{}" font-weight="bold">layer {}</text><text x="20" y="{}" fill="#333333">{}</text>"##,
            l.index,
            y + 16,
            l.index,
            y + 32,
            esc(&format::human_size(l.size))
        );
        let _ = write!(
            s,
            r##"<rect x="{BAR_X}" y="{}" width="{bar}" height="22" fill="{colour}"/>"##,
            y + 2
        );
        if l.wasted > 0 {
            let _ = write!(
                s,
                r##"<rect x="{BAR_X}" y="{}" width="{}" height="22" fill="{WASTED}"><title>{} wasted</title></rect>"##,
                y + 2,
                waste.max(2),
                esc(&format::humanize_bytes(l.wasted))
            );
        }
        let mut detail = format!("+{} ~{} -{}", l.added, l.changed, l.removed);
        if l.wasted > 0 {
            let _ = write!(detail, " · {} wasted", format::humanize_bytes(l.wasted));
        }
        if !shared.is_empty() {
            let names: Vec<String> = shared.iter().map(image_name).collect();
            let _ = write!(detail, " · shared with {}", names.join(", "));
        }
        let _ = write!(
            s,
            r##"<text x="{BAR_X}" y="{}" fill="#222222">{}</text><text x="{BAR_X}" y="{}" fill="#555555">{}</text></g>"##,
            y + 40,
            esc(&clip(
                l.created_by
                    .strip_prefix("/bin/sh -c ")
                    .unwrap_or(&l.created_by),
                120
            )),
            y + 55,
            esc(&clip(&detail, 130))
        );
    }
    let y = TOP + rows * ROW + 20;
    for (i, (colour, what)) in [
        (OWN, "only this image"),
        (SHARED, "shared with other images"),
        (WASTED, "wasted (overwritten, deleted or stored twice)"),
    ]
    .into_iter()
    .enumerate()
    {
        let x = 20 + i as u32 * 220;
        let _ = write!(
            s,
            r##"<rect x="{x}" y="{}" width="14" height="14" fill="{colour}"/><text x="{}" y="{}">{what}</text>"##,
            y - 11,
            x + 20,
            y
        );
    }
    s.push_str("</svg>\n");
    s
}

/// The SVG in a page of its own.
pub fn html(p: &Picture<'_>) -> String {
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{}</title></head>\n<body style=\"margin:0\">\n{}</body></html>\n",
        esc(&format!("Layers of {}", p.name)),
        svg(p)
    )
}

fn scale(size: u64, biggest: u64) -> u32 {
    ((size as f64 / biggest as f64) * BAR_MAX as f64).round() as u32
}

fn image_name((id, names): &image::TreeImage) -> String {
    names.first().cloned().unwrap_or_else(|| id.short())
}

fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

/// XML text and attribute escaping; characters XML 1.0 cannot hold at all are dropped.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(' '),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_from_the_image_is_escaped() {
        assert_eq!(
            esc("RUN echo '<a>' && x \u{1}\"q\""),
            "RUN echo &apos;&lt;a&gt;&apos; &amp;&amp; x &quot;q&quot;"
        );
        assert_eq!(clip("abcdef", 4), "abc…");
    }

    #[test]
    fn every_layer_gets_a_bar_and_waste_is_red() {
        let layer = |index: usize, size: u64, wasted: u64| image::LayerAnalysis {
            index,
            diff_id: None,
            created_by: format!("/bin/sh -c step {index} <x>"),
            size,
            added: 1,
            changed: 0,
            removed: 0,
            wasted,
            duplicated: 0,
        };
        let a = image::Analysis {
            layers: vec![layer(0, 1000, 0), layer(1, 500, 250)],
            size_bytes: 1500,
            user_size_bytes: 500,
            wasted_bytes: 250,
            wasted_user_percent: 0.5,
            efficiency: 0.9,
            inefficiencies: Vec::new(),
            duplicated_bytes: 0,
            duplicates: Vec::new(),
        };
        let id = oci::Digest::of(b"x");
        let sharing = vec![vec![(id, vec!["base:1".to_string()])], vec![]];
        let out = svg(&Picture {
            name: "app",
            id: &id,
            analysis: &a,
            sharing: &sharing,
        });
        assert_eq!(out.matches(r##"class="layer""##).count(), 2);
        assert!(out.contains(&format!(
            r##"width="{BAR_MAX}" height="22" fill="{SHARED}""##
        )));
        assert!(out.contains(&format!(
            r##"width="{}" height="22" fill="{OWN}""##,
            BAR_MAX / 2
        )));
        assert!(out.contains(&format!(
            r##"width="{}" height="22" fill="{WASTED}""##,
            (BAR_MAX as f64 / 4.0).round()
        )));
        assert!(out.contains("step 1 &lt;x&gt;"));
        assert!(out.contains("shared with base:1"));
    }
}
