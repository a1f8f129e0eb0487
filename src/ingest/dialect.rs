//! A file's dialect — its delimiter, from Excel's `sep=` line, the config or sniffing — and
//! whether its first bytes are text at all.

use crate::config::CsvConfig;

use super::split::{self, Dialect, Splitter};
use super::window::{Window, HEAD_BYTES};

impl Dialect {
    /// The feed's quoting, escaping and comments with `delimiter`.
    pub fn of(csv: &CsvConfig, delimiter: u8) -> Dialect {
        Dialect {
            delimiter,
            quote: csv.quote,
            escape: csv.escape,
            comment: csv.comment,
        }
    }
}

/// Where a file's records start, and how to read them.
pub(crate) struct Start {
    pub(crate) dialect: Dialect,
    /// Offset of the first record (the header, or the first row) in the window.
    pub(crate) offset: usize,
    /// Its physical line.
    pub(crate) line: u64,
    /// An Excel `sep=` line was skipped.
    pub(crate) sep_line: bool,
    /// Title lines skipped (`skip_rows`; fewer if the file is shorter).
    pub(crate) title_lines: u64,
}

/// Where a file's records start — after an Excel `sep=` line and the `skip_rows` title
/// lines — and the file's dialect, decided from the text there.
pub(crate) fn start_of(win: &mut Window, name: &str, csv: &CsvConfig) -> std::io::Result<Start> {
    let (excel_sep, skip) = excel_sep_line(win.head());
    let first = 1 + u64::from(skip > 0);
    let (offset, line) = win.skip_lines(skip, first, csv.skip_rows)?;
    win.fill_to(offset + HEAD_BYTES)?;
    let sample = &win.buf[offset..win.buf.len().min(offset + HEAD_BYTES)];
    let delimiter = choose_delimiter(name, sample, excel_sep, csv);
    Ok(Start {
        dialect: Dialect::of(csv, delimiter),
        offset,
        line,
        sep_line: skip > 0,
        title_lines: line - first,
    })
}

/// A dialect character as it is written in the config (`\t`, `\x1f`).
pub(crate) fn printable(b: u8) -> String {
    match b {
        b'\t' => "\\t".to_string(),
        b if b < 0x20 || b == 0x7f => format!("\\x{b:02x}"),
        b => (b as char).to_string(),
    }
}

/// NUL bytes, or more than 1% control characters other than tab, line ends and the characters
/// the feed's dialect names (an export may delimit with `\x1f` or `\x1e`): not text.
pub fn looks_binary(sample: &[u8], csv: &CsvConfig) -> bool {
    if sample.is_empty() {
        return false;
    }
    if memchr::memchr(0, sample).is_some() {
        return true;
    }
    let dialect = [csv.delimiter, Some(csv.quote), csv.escape, csv.comment];
    let control = sample
        .iter()
        .filter(|b| **b < 0x20 && !matches!(**b, b'\t' | b'\n' | b'\r' | 0x0c))
        .filter(|b| !dialect.contains(&Some(**b)))
        .count();
    control * 100 > sample.len()
}

/// The delimiter of a file, from its first bytes (after any `sep=` line): Excel's `sep=` hint
/// wins, then the configured delimiter; `auto` sniffs. When the config names none, the default
/// (',', or ';' for pt-BR) holds unless it finds a single column in the first record that
/// another delimiter splits: a tab- or ';'-separated export dropped into a default feed then
/// loads, instead of being rejected or — with `schema = "infer"` — becoming a table of one
/// mashed column.
fn choose_delimiter(name: &str, sample: &[u8], excel_sep: Option<u8>, csv: &CsvConfig) -> u8 {
    if let Some(d) = excel_sep {
        return d;
    }
    let Some(configured) = csv.delimiter else {
        return split::sniff_delimiter(sample, csv.quote).unwrap_or(b',');
    };
    if !csv.delimiter_is_default {
        return configured;
    }
    let first = Splitter::new(Dialect::of(csv, configured))
        .at_most(1)
        .max_line_bytes(csv.max_line_bytes)
        .split(sample, 0, 1);
    if first.records.first().is_some_and(|r| r.fields.len() > 1) {
        return configured;
    }
    match split::sniff_delimiter(sample, csv.quote) {
        Some(found) if found != configured => {
            log::info!(
                "{name}: delimiter {:?} sniffed: the default {:?} finds a single column \
                 (set [feed.csv] delimiter to fix one)",
                found as char,
                configured as char
            );
            found
        }
        _ => configured,
    }
}

/// `sep=X` on the first line (Excel's delimiter hint): (X, bytes of that line).
fn excel_sep_line(buf: &[u8]) -> (Option<u8>, usize) {
    let line_end = memchr::memchr(b'\n', buf).unwrap_or(buf.len());
    let line = &buf[..line_end];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.len() == 5 && line[..4].eq_ignore_ascii_case(b"sep=") && line[4] != b'"' {
        (Some(line[4]), (line_end + 1).min(buf.len()))
    } else {
        (None, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv(delimiter: u8) -> CsvConfig {
        let cfg = crate::config::Config::embedded(std::path::Path::new("/x")).unwrap();
        CsvConfig {
            delimiter: Some(delimiter),
            ..cfg.feeds[0].csv.clone()
        }
    }

    #[test]
    fn binary_is_told_from_text() {
        let c = csv(b',');
        assert!(looks_binary(b"a,b\n\x00\x01", &c));
        assert!(looks_binary(&[0x01u8, 0x02, 0x03, b'a'], &c));
        assert!(!looks_binary("a;b\r\nção;\t1\n".as_bytes(), &c));
        assert!(!looks_binary(b"", &c));
        // A control-character delimiter is the feed's own, not binary noise.
        let unit = b"a\x1fb\x1fc\n1\x1f2\x1f3\n";
        assert!(looks_binary(unit, &c));
        assert!(!looks_binary(unit, &csv(0x1f)));
    }
}
