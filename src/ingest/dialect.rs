//! A file's dialect — its delimiter, from Excel's `sep=` line, the config or sniffing — and
//! whether its first bytes are text at all.

use crate::config::CsvConfig;

use super::split::{self, Dialect, Splitter};

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

/// The dialect of the file that starts with `head` (its first 64 KiB, or all of it if
/// shorter), and how many bytes of it an Excel `sep=` line takes (they are no record).
pub(crate) fn dialect_of(name: &str, head: &[u8], csv: &CsvConfig) -> (Dialect, usize) {
    let buf = head;
    let (excel_sep, skip) = excel_sep_line(buf);
    let delimiter = choose_delimiter(name, &buf[skip..], excel_sep, csv);
    (Dialect::of(csv, delimiter), skip)
}

/// NUL bytes, or more than 1% control characters other than tab and line ends: not text.
pub fn looks_binary(sample: &[u8]) -> bool {
    if sample.is_empty() {
        return false;
    }
    if memchr::memchr(0, sample).is_some() {
        return true;
    }
    let control = sample
        .iter()
        .filter(|b| **b < 0x20 && !matches!(**b, b'\t' | b'\n' | b'\r' | 0x0c))
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

    #[test]
    fn binary_is_told_from_text() {
        assert!(looks_binary(b"a,b\n\x00\x01"));
        assert!(looks_binary(&[0x01u8, 0x02, 0x03, b'a']));
        assert!(!looks_binary("a;b\r\nção;\t1\n".as_bytes()));
        assert!(!looks_binary(b""));
    }
}
