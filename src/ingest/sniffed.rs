//! What `sniff` (and `schema = "infer"`) found in a file, and the ready-to-paste `[[feed]]` block
//! `deltadrop sniff` prints for it. Shared by the readers of each format (`infer` for CSV, JSON
//! lines and workbooks, `columnar` for Parquet).

use std::path::Path;

use crate::job::file_name;
use crate::schema::{TableSchema, TimeFormat};

use super::guess::java_style;
use super::source::Compression;

/// What sniffing a file found.
#[derive(Debug, Clone)]
pub struct Sniffed {
    pub encoding: String,
    pub compression: Compression,
    pub delimiter: u8,
    /// `Some("pt-BR")` when Brazilian number/date formats fit the data better.
    pub locale: Option<&'static str>,
    pub schema: TableSchema,
    pub rows_sampled: usize,
    /// The first record (after title lines) is a header; false when it reads as data.
    pub header: bool,
    /// Lines before the header (report titles, blank lines) not configured as `skip_rows`.
    pub title_lines: usize,
    /// Lines at the end that are not rows (totals, record counts) not configured as
    /// `skip_footer`.
    pub footer_lines: usize,
    /// What of the file was read: "the whole file", or which stretches.
    pub sample: String,
    /// Columns that look typed but are loaded as text, and why.
    pub warnings: Vec<String>,
    /// Read as JSON lines (no delimiter, header or edges apply).
    pub json: bool,
    /// Read from this sheet of a workbook.
    pub sheet: Option<String>,
    /// A Parquet file: the columns are its schema's.
    pub parquet: bool,
}

/// The comment lines above a sniffed file's `[[feed]]` block: how it was read, and what of it
/// is not rows.
fn sniff_comments(path: &Path, s: &Sniffed) -> String {
    let mut out = String::new();
    let how = if s.parquet {
        "Parquet".to_string()
    } else if s.json {
        "JSON lines".to_string()
    } else if let Some(sheet) = &s.sheet {
        format!("sheet {sheet:?}")
    } else {
        format!("delimiter {:?}", s.delimiter as char)
    };
    out.push_str(&format!(
        "# {}: encoding {}, compression {}, {how}, {} row(s) read ({})\n",
        path.display(),
        s.encoding,
        s.compression,
        s.rows_sampled,
        s.sample
    ));
    if !s.header {
        out.push_str("# no header row: the columns are named by position\n");
    }
    if s.title_lines > 0 {
        out.push_str(&format!(
            "# {} line(s) before the header (a title?)\n",
            s.title_lines
        ));
    }
    if s.footer_lines > 0 {
        out.push_str(&format!(
            "# {} line(s) at the end that are not rows (totals?)\n",
            s.footer_lines
        ));
    }
    for w in &s.warnings {
        out.push_str(&format!("# {w}\n"));
    }
    out
}

/// A ready-to-paste `[[feed]]` block for a sniffed file.
pub fn feed_toml(path: &Path, s: &Sniffed) -> String {
    let stem = file_name(path);
    let stem = stem.split('.').next().unwrap_or("feed");
    let feed_name: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut out = sniff_comments(path, s);
    out.push_str("[[feed]]\n");
    out.push_str(&format!("name = \"{feed_name}\"\n"));
    out.push_str("inbox = \"inbox\"\n");
    out.push_str(&format!("table = \"lake/{feed_name}\"\n"));
    if s.json {
        out.push_str("format = \"ndjson\"\n");
    }
    if let Some(sheet) = &s.sheet {
        out.push_str(&format!(
            "format = \"xlsx\"\nsheet = {}\n",
            toml_string(sheet)
        ));
    }
    if let Some(l) = s.locale {
        out.push_str(&format!("locale = \"{l}\"\n"));
    }
    let enc = s.encoding.to_ascii_lowercase();
    if !enc.starts_with("utf-8") {
        out.push_str(&format!("encoding = \"{enc}\"\n"));
    }
    if s.schema.labelled() {
        out.push_str("column_names = \"original\"\n");
    }
    out.push_str("columns = [\n");
    for c in &s.schema.columns {
        let format = match &c.format {
            Some(f) if *f != TimeFormat::Iso => {
                format!(", format = {}", toml_string(&java_style(f)))
            }
            _ => String::new(),
        };
        out.push_str(&format!(
            "  {{ name = {}, type = \"{}\"{format} }},\n",
            toml_string(c.shown()),
            c.ty
        ));
    }
    if s.json || s.sheet.is_some() || s.parquet {
        out.push_str("]\n");
        return out;
    }
    out.push_str("]\n\n[feed.csv]\n");
    let delim = match s.delimiter {
        b'\t' => "\\t".to_string(),
        d => (d as char).to_string(),
    };
    out.push_str(&format!("delimiter = \"{delim}\"\n"));
    if !s.header {
        out.push_str("header = false\n");
    }
    if s.title_lines > 0 {
        out.push_str(&format!("skip_rows = {}\n", s.title_lines));
    }
    if s.footer_lines > 0 {
        out.push_str(&format!("skip_footer = {}\n", s.footer_lines));
    }
    out
}

fn toml_string(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}
