//! Column output as the Docker CLI prints it: a port of Go's `text/tabwriter` alignment with
//! the CLI's settings (minwidth 10, tabwidth 1, padding 3, pad with spaces, no flags), a
//! [`Table`] of header + rows, and [`ListFormat`], the `--format` of list commands (`images`,
//! `history`, `ps`, `system df`) with its `table` prefix.

use serde_json::Value as Json;

use crate::template::{Template, TemplateError};

/// The CLI's tabwriter minimum cell width (padding included).
pub const MIN_WIDTH: usize = 10;
/// The CLI's tabwriter padding added to the widest cell of a column.
pub const PADDING: usize = 3;

/// Aligns tab-separated `text` as Go's `tabwriter.NewWriter(out, minwidth, 1, padding, ' ', 0)`
/// does after `Flush`: a column block is a run of consecutive lines that have a
/// tab-terminated cell in that column; each cell of the block is padded to the block's
/// widest cell + `padding` (at least `minwidth`). The last cell of a line is not aligned.
/// Widths count characters, as Go counts runes.
pub fn tabwriter(text: &str, minwidth: usize, padding: usize) -> String {
    let lines: Vec<Vec<&str>> = text.split('\n').map(|l| l.split('\t').collect()).collect();
    let mut out = String::with_capacity(text.len() * 2);
    let mut widths = Vec::new();
    let cfg = (minwidth, padding);
    format_block(&lines, &mut widths, 0, lines.len(), cfg, &mut out);
    out
}

fn cell_width(s: &str) -> usize {
    s.chars().count()
}

/// Go's `Writer.format`: lays out lines `line0..line1` given the widths of the columns to the
/// left (`widths`), recursing into each column block.
fn format_block(
    lines: &[Vec<&str>],
    widths: &mut Vec<usize>,
    mut line0: usize,
    line1: usize,
    cfg: (usize, usize),
    out: &mut String,
) {
    let column = widths.len();
    let mut this = line0;
    while this < line1 {
        if column + 1 >= lines[this].len() {
            this += 1;
            continue;
        }
        // A block starts here: print what precedes it.
        write_lines(lines, widths, line0, this, out);
        line0 = this;
        let mut width = cfg.0;
        while this < line1 && column + 1 < lines[this].len() {
            width = width.max(cell_width(lines[this][column]) + cfg.1);
            this += 1;
        }
        widths.push(width);
        format_block(lines, widths, line0, this, cfg, out);
        widths.pop();
        line0 = this;
    }
    write_lines(lines, widths, line0, line1, out);
}

fn write_lines(lines: &[Vec<&str>], widths: &[usize], from: usize, to: usize, out: &mut String) {
    for (i, line) in lines.iter().enumerate().take(to).skip(from) {
        for (j, cell) in line.iter().enumerate() {
            out.push_str(cell);
            if let Some(&w) = widths.get(j) {
                for _ in cell_width(cell)..w {
                    out.push(' ');
                }
            }
        }
        if i + 1 < lines.len() {
            out.push('\n');
        }
    }
}

/// A fixed-column table printed like the Docker CLI's (`images`, `history`, `ps`): header
/// and rows aligned by [`tabwriter`] with minwidth 10 and padding 3.
#[derive(Debug, Clone, Default)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new<S: AsRef<str>>(header: &[S]) -> Self {
        Table {
            header: header.iter().map(|s| s.as_ref().to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row. Cells must not contain tabs or newlines (replace them first, as Docker
    /// does for `CREATED BY`).
    pub fn push<S: Into<String>>(&mut self, row: impl IntoIterator<Item = S>) {
        self.rows.push(row.into_iter().map(Into::into).collect());
    }

    /// The aligned text, each line ending with `\n`.
    pub fn render(&self) -> String {
        let mut text = String::new();
        for line in std::iter::once(&self.header).chain(&self.rows) {
            text.push_str(&line.join("\t"));
            text.push('\n');
        }
        tabwriter(&text, MIN_WIDTH, PADDING)
    }
}

/// The `--format` of a list command: a Go template run once per row, or, with the `table`
/// prefix, a header line and the rows aligned like [`Table`].
#[derive(Debug)]
pub struct ListFormat {
    table: bool,
    row: Template,
    header: Option<Template>,
}

impl ListFormat {
    /// Prepares `format` as the CLI's formatter does: a leading `table` makes a table (and
    /// is removed), surrounding spaces are trimmed, and the two-character sequences `\t`
    /// and `\n` become a tab and a newline.
    pub fn parse(format: &str) -> Result<Self, TemplateError> {
        // Docker CLI 23+: `--format json` prints each row as one JSON line.
        let format = if format.trim() == "json" {
            "{{json .}}"
        } else {
            format
        };
        let table = format.starts_with("table");
        let body = if table {
            &format["table".len()..]
        } else {
            format
        };
        let body = body
            .trim_matches(' ')
            .replace("\\t", "\t")
            .replace("\\n", "\n");
        let row = Template::parse(&body)?.list_rows();
        let header = if table {
            Some(Template::parse_header(&body)?)
        } else {
            None
        };
        Ok(ListFormat { table, row, header })
    }

    pub fn is_table(&self) -> bool {
        self.table
    }

    /// Renders `rows` (objects of the row's fields, as strings where Docker has strings);
    /// `header` maps each field name to its column title (`{"ID": "IMAGE ID", …}`) and is
    /// used only for tables.
    pub fn render(&self, header: &Json, rows: &[Json]) -> Result<String, TemplateError> {
        let mut text = String::new();
        for r in rows {
            text.push_str(&self.row.render(r)?);
            text.push('\n');
        }
        match &self.header {
            Some(h) if self.table => {
                let mut all = h.render(header)?;
                all.push('\n');
                all.push_str(&text);
                Ok(tabwriter(&all, MIN_WIDTH, PADDING))
            }
            _ => Ok(text),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tabwriter_like_go() {
        assert_eq!(tabwriter("a\tb\tc\n", 10, 3), "a         b         c\n");
        assert_eq!(
            tabwriter("abcdefghijkl\tx\nb\ty\n", 10, 3),
            "abcdefghijkl   x\nb              y\n"
        );
        // A line without the column ends the block: the next block is aligned on its own.
        assert_eq!(
            tabwriter("aaaaaaaaaaaaaaa\t1\nno tabs\nb\t2\n", 10, 3),
            "aaaaaaaaaaaaaaa   1\nno tabs\nb         2\n"
        );
        // Empty trailing cells still pad the column before them.
        assert_eq!(tabwriter("x\t\n", 10, 3), "x         \n");
        // Characters, not bytes.
        assert_eq!(tabwriter("é…\tz\n", 10, 3), "é…        z\n");
        assert_eq!(tabwriter("", 10, 3), "");
    }

    #[test]
    fn table_pads_to_min_width() {
        let mut t = Table::new(&["REPOSITORY", "TAG"]);
        t.push(["busybox", "latest"]);
        assert_eq!(t.render(), "REPOSITORY   TAG\nbusybox      latest\n");
    }

    #[test]
    fn list_format_without_table() {
        let f = ListFormat::parse("{{.ID}}: {{.Size}}").unwrap();
        assert!(!f.is_table());
        let rows = [
            json!({"ID": "a", "Size": "1B"}),
            json!({"ID": "b", "Size": "2B"}),
        ];
        assert_eq!(f.render(&json!({}), &rows).unwrap(), "a: 1B\nb: 2B\n");
        let f = ListFormat::parse(r"table {{.ID}}\t{{.Size}}").unwrap();
        assert!(f.is_table());
        let h = json!({"ID": "IMAGE", "Size": "SIZE"});
        assert_eq!(
            f.render(&h, &rows).unwrap(),
            "IMAGE     SIZE\na         1B\nb         2B\n"
        );
        assert_eq!(f.render(&h, &[]).unwrap(), "IMAGE     SIZE\n");
        assert!(ListFormat::parse("table {{.ID").is_err());
    }
}
