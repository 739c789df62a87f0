//! BuildKit's text for check results (`docker build --check`), byte for byte: a summary line,
//! then per warning `WARNING: RULE - URL`, the message, and the Dockerfile lines around the
//! finding with `>>>` on the lines it refers to.

use crate::Finding;

/// `Check complete, 1 warning has been found!` / `N warnings have been found!` /
/// `Check complete, no warnings found.`
pub fn summary_line(count: usize) -> String {
    match count {
        0 => "Check complete, no warnings found.".to_string(),
        1 => "Check complete, 1 warning has been found!".to_string(),
        n => format!("Check complete, {n} warnings have been found!"),
    }
}

/// Every finding as BuildKit prints it, `filename` naming the Dockerfile and `text` being its
/// content.
pub fn render(findings: &[Finding], filename: &str, text: &str) -> String {
    let mut out = String::new();
    for f in findings {
        out.push_str(&format!("\nWARNING: {}", f.rule));
        if !f.url.is_empty() {
            out.push_str(&format!(" - {}", f.url));
        }
        out.push_str(&format!("\n{}\n", f.message));
        out.push_str(&source_lines(filename, text, &f.ranges));
    }
    out
}

/// BuildKit's `errdefs.Source.Print`: the lines of the ranges with some context (four lines
/// for a single line, two otherwise), between dashed rules.
pub fn source_lines(filename: &str, text: &str, ranges: &[(usize, usize)]) -> String {
    let lines: Vec<&str> = text.split('\n').collect();
    let (Some(mut start), Some(mut end)) = (
        ranges.iter().map(|r| r.0).min(),
        ranges.iter().map(|r| r.1).max(),
    ) else {
        return String::new();
    };
    if start > lines.len() || start < 1 {
        return String::new();
    }
    end = end.min(lines.len());
    let pad = if end == start { 4 } else { 2 };
    let first = start;
    let mut p = 0;
    while p < pad {
        if start > 1 {
            start -= 1;
            p += 1;
        }
        if end != lines.len() {
            end += 1;
            p += 1;
        }
        p += 1;
    }
    let rule = "-".repeat(20);
    let mut out = format!("{filename}:{first}\n{rule}\n");
    for (i, line) in lines.iter().enumerate().take(end).skip(start - 1) {
        let n = i + 1;
        let pfx = if ranges.iter().any(|r| r.0 <= n && n <= r.1) {
            ">>>"
        } else {
            "   "
        };
        out.push_str(&format!(" {n:>3} | {pfx} {line}\n"));
    }
    out.push_str(&rule);
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_gets_context_like_buildkit() {
        // BuildKit's output for line 7 of a 7-line file ending in a newline.
        let text = "FROM node\nWORKDIR /app\nCOPY package.json .\nCOPY . .\nRUN npm install\nEXPOSE 3000\nCMD node server.js\n";
        let got = source_lines("Dockerfile.before", text, &[(7, 7)]);
        assert_eq!(
            got,
            "Dockerfile.before:7\n--------------------\n   5 |     RUN npm install\n   6 |     EXPOSE 3000\n   7 | >>> CMD node server.js\n   8 |     \n--------------------\n"
        );
    }

    #[test]
    fn two_ranges_share_one_excerpt() {
        let text = "FROM a\nCOPY . .\nENV X=1\nRUN make\nCMD x\n";
        let got = source_lines("Dockerfile", text, &[(2, 2), (4, 4)]);
        assert!(got.starts_with("Dockerfile:2\n"), "{got}");
        assert!(got.contains("   2 | >>> COPY . .\n"), "{got}");
        assert!(got.contains("   3 |     ENV X=1\n"), "{got}");
        assert!(got.contains("   4 | >>> RUN make\n"), "{got}");
    }

    #[test]
    fn summary() {
        assert_eq!(summary_line(0), "Check complete, no warnings found.");
        assert_eq!(summary_line(1), "Check complete, 1 warning has been found!");
        assert_eq!(
            summary_line(3),
            "Check complete, 3 warnings have been found!"
        );
    }
}
