//! A file's dialect — its delimiter, from Excel's `sep=` line, the config or sniffing — and
//! whether its first bytes are text at all.

use crate::config::CsvConfig;

use super::split::{Dialect, Splitter};
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
    let end = win.buf.len().min(offset + HEAD_BYTES);
    let sample = Sample {
        text: &win.buf[offset..end],
        whole: win.eof && end == win.buf.len(),
    };
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
fn choose_delimiter(name: &str, sample: Sample, excel_sep: Option<u8>, csv: &CsvConfig) -> u8 {
    if let Some(d) = excel_sep {
        return d;
    }
    let Some(configured) = csv.delimiter else {
        return sniff_delimiter(sample, csv).unwrap_or(b',');
    };
    if !csv.delimiter_is_default {
        return configured;
    }
    let first = Splitter::new(Dialect::of(csv, configured))
        .at_most(1)
        .max_line_bytes(csv.max_line_bytes)
        .split(sample.text, 0, 1);
    if first.records.first().is_some_and(|r| r.fields.len() > 1) {
        return configured;
    }
    match sniff_delimiter(sample, csv) {
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

/// The first bytes of a file's records, that its delimiter is decided from.
#[derive(Clone, Copy)]
struct Sample<'a> {
    text: &'a [u8],
    /// The text ends here: a last record without a line end is whole, not cut.
    whole: bool,
}

/// The delimiters sniffing chooses among, in the order a tie goes.
const CANDIDATES: [u8; 4] = [b',', b';', b'\t', b'|'];

/// Records of the sample a sniff looks at.
const SNIFF_RECORDS: usize = 50;

/// Picks the delimiter among `, ; \t |` that splits the sample's first records into the same
/// number (> 1) of fields most consistently; ties go to the one with more fields. Records of
/// another width (a title, a footer) do not decide.
///
/// Delimiters are counted outside quoted fields only, and a quoted field may span lines: a
/// record is not a line. Which quote opens a field must not depend on the candidate: reading
/// the sample once per candidate (with csv-core, as before) let a wrong candidate miss the quote
/// that opens `1;"{` and count each line of the JSON object inside as a record with commas. So
/// one pass decides the records for all candidates: a quote opens a field at the start of a
/// record or right after any candidate, as csv-core reads it under the right one.
fn sniff_delimiter(sample: Sample, csv: &CsvConfig) -> Option<u8> {
    let tally = Tally::of(sample, csv, true);
    match best_delimiter(&tally.records) {
        Some(d) => Some(d),
        // A quote that never closes (a stray one, or a field longer than the sample) hid
        // what follows it: read as text, the lines still say something.
        None if tally.open_quote => best_delimiter(&Tally::of(sample, csv, false).records),
        None => None,
    }
}

/// How often each candidate occurs outside quoted fields, per record of a sample.
struct Tally {
    /// Per record (blank and comment lines are none), a count per candidate.
    records: Vec<[u32; CANDIDATES.len()]>,
    /// The sample ends inside a quoted field.
    open_quote: bool,
}

impl Tally {
    /// One pass over the sample's first [`SNIFF_RECORDS`] records; with `quoting` false,
    /// quotes are text (then a record is a line).
    fn of(sample: Sample, csv: &CsvConfig, quoting: bool) -> Tally {
        let text = sample.text;
        let mut t = Tally {
            records: Vec::with_capacity(SNIFF_RECORDS),
            open_quote: false,
        };
        let mut counts = [0u32; CANDIDATES.len()];
        // The record has a byte: a line end then ends a record, not a blank line.
        let mut content = false;
        let mut field_start = true;
        let mut i = 0;
        while i < text.len() && t.records.len() < SNIFF_RECORDS {
            let b = text[i];
            i += 1;
            if b == b'\n' || b == b'\r' {
                if content {
                    t.records.push(counts);
                }
                (counts, content, field_start) = ([0; CANDIDATES.len()], false, true);
            } else if !content && csv.comment == Some(b) {
                i = memchr::memchr(b'\n', &text[i..]).map_or(text.len(), |k| i + k + 1);
            } else if quoting && field_start && b == csv.quote {
                (content, field_start) = (true, false);
                match closing_quote(&text[i..], csv.quote, csv.escape) {
                    Some(k) => i += k + 1,
                    None => {
                        t.open_quote = true;
                        i = text.len();
                    }
                }
            } else {
                content = true;
                field_start = match CANDIDATES.iter().position(|c| *c == b) {
                    Some(k) => {
                        counts[k] += 1;
                        true
                    }
                    None => false,
                };
            }
        }
        // A last record without a line end may be cut by the sample's end: it decides only
        // when the text ends there, or when there is no other record.
        if content && t.records.len() < SNIFF_RECORDS && (sample.whole || t.records.is_empty()) {
            t.records.push(counts);
        }
        t
    }
}

/// The offset in `rest` (the text after an opening quote) of the quote that closes the field:
/// a doubled quote is a quote of the value, or, with an `escape`, the byte after it is.
fn closing_quote(rest: &[u8], quote: u8, escape: Option<u8>) -> Option<usize> {
    let mut at = 0;
    loop {
        let tail = rest.get(at..)?;
        let k = at
            + match escape {
                Some(e) => memchr::memchr2(quote, e, tail)?,
                None => memchr::memchr(quote, tail)?,
            };
        let escaped = rest[k] != quote || (escape.is_none() && rest.get(k + 1) == Some(&quote));
        if !escaped {
            return Some(k);
        }
        at = k + 2;
    }
}

/// The candidate whose most common number of fields (more than one; not the first record's,
/// as a report title can come first) holds in the most records; ties go to more fields, then
/// to the earlier candidate.
fn best_delimiter(records: &[[u32; CANDIDATES.len()]]) -> Option<u8> {
    let mut best: Option<((usize, u32), u8)> = None;
    for (k, &cand) in CANDIDATES.iter().enumerate() {
        // (delimiters in a record, records with that many)
        let mut widths: Vec<(u32, usize)> = Vec::new();
        for n in records.iter().map(|r| r[k]).filter(|n| *n > 0) {
            match widths.iter_mut().find(|(w, _)| *w == n) {
                Some(w) => w.1 += 1,
                None => widths.push((n, 1)),
            }
        }
        let Some(&(n, consistent)) = widths.iter().max_by_key(|(n, c)| (*c, *n)) else {
            continue;
        };
        if best.is_none_or(|(score, _)| (consistent, n) > score) {
            best = Some(((consistent, n), cand));
        }
    }
    best.map(|(_, d)| d)
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

    /// A feed whose config names no delimiter: ',' unless the file says otherwise.
    fn default_csv() -> CsvConfig {
        CsvConfig {
            delimiter_is_default: true,
            ..csv(b',')
        }
    }

    fn auto() -> CsvConfig {
        CsvConfig {
            delimiter: None,
            ..csv(b',')
        }
    }

    /// The sniffed delimiter of a whole file, with the feed's quoting.
    fn sniff(text: &[u8], c: &CsvConfig) -> Option<char> {
        let sample = Sample { text, whole: true };
        sniff_delimiter(sample, c).map(char::from)
    }

    /// The delimiter a feed reads `text` with, through the window as files are read.
    fn chosen(text: &[u8], c: &CsvConfig) -> char {
        let mut win = Window::new(Box::new(std::io::Cursor::new(text.to_vec())), 0);
        win.fill_to(HEAD_BYTES).unwrap();
        char::from(start_of(&mut win, "t.csv", c).unwrap().dialect.delimiter)
    }

    #[test]
    fn delimiters_are_sniffed() {
        let c = auto();
        assert_eq!(sniff(b"a;b;c\n1;2,5;3\n4;5;6\n", &c), Some(';'));
        assert_eq!(sniff(b"a,b\n1,2\n", &c), Some(','));
        assert_eq!(sniff(b"a\tb\tc\n1\t2\t3\n", &c), Some('\t'));
        assert_eq!(sniff(b"a|b\n\"x|y\"|2\n", &c), Some('|'));
        assert_eq!(sniff(b"justone\nvalue\n", &c), None);
        let titled = "Relatório, março\n\nid;valor;data\n1;1,50;x\n2;2,50;y\n";
        assert_eq!(sniff(titled.as_bytes(), &c), Some(';'));
        // Ties go to more fields (PapaParse's "choose avgFieldCount max one").
        assert_eq!(sniff(b"a,b,c\na,b,c|d|e|f", &c), Some(','));
        assert_eq!(
            sniff(b"one|two,two|three\nfour|five,five|six", &c),
            Some('|')
        );
    }

    /// A JSON object in a quoted field: its commas are inside quotes, and do not count.
    #[test]
    fn delimiters_inside_quoted_json_do_not_count() {
        let one_line = b"id;payload;n\n1;\"{\"\"a\"\": 1, \"\"b\"\": 2}\";3\n\
                         2;\"{\"\"a\"\": 1, \"\"b\"\": 2, \"\"c\"\": [3, 4]}\";4\n";
        assert_eq!(sniff(one_line, &auto()), Some(';'));
        assert_eq!(chosen(one_line, &default_csv()), ';');
        // Pretty-printed: every line of the object but one has a comma. Read line by line,
        // ',' won this (the bug, from PapaParse's suite) and every row was quarantined.
        let pretty = b"id;payload\n1;\"{\n  \"\"a\"\": 1,\n  \"\"b\"\": 2\n}\"\n\
                       2;\"{\n  \"\"a\"\": 5,\n  \"\"b\"\": 6\n}\"\n";
        assert_eq!(sniff(pretty, &auto()), Some(';'));
        assert_eq!(chosen(pretty, &default_csv()), ';');
        assert_eq!(chosen(pretty, &auto()), ';');
        // The same file with ',' is read with ','.
        let commas = b"id,payload\n1,\"{\n  \"\"a\"\": 1;\n  \"\"b\"\": 2\n}\"\n";
        assert_eq!(sniff(commas, &auto()), Some(','));
    }

    #[test]
    fn quoted_fields_that_span_lines_are_one_record() {
        let c = auto();
        // PapaParse: a line end inside a quoted header field.
        assert_eq!(
            sniff(b"\"a\na\",\"b\"\n\"c\",\"d\"\n\"e\",\"f\"", &c),
            Some(',')
        );
        assert_eq!(sniff(b"\"a\r\na\",b\r\nc,d\r\ne,f\r\ng,h", &c), Some(','));
        // Lines inside quotes holding other candidates, more of them than the real one.
        let notes = b"id\tnote\n1\t\"x, y; z\nw | v, u\"\n2\t\"p, q\nr, s\"\n3\tplain\n";
        assert_eq!(sniff(notes, &c), Some('\t'));
        // A quote inside an unquoted field is text, and opens nothing.
        assert_eq!(sniff(b"h;in\nbob;5'10\"\nann;6'1\"\n", &c), Some(';'));
        // PapaParse: quoted fields holding the other candidate, a doubled quote among them.
        let mixed = b"Field1;Field2;\"Field,3,\"\"3,3\";Field4;Field5;\"Field6,6\"";
        assert_eq!(sniff(mixed, &c), Some(';'));
        let first = b"\"Field1,1,1\";Field2;\"Field3\";Field4;Field5;Field6";
        assert_eq!(sniff(first, &c), Some(';'));
    }

    #[test]
    fn the_feeds_escape_and_comment_are_honoured() {
        let escaped = CsvConfig {
            escape: Some(b'\\'),
            ..auto()
        };
        let text = b"a;b\n\"x\\\";, y, z\";1\n\"q\\\\\";2\n";
        assert_eq!(sniff(text, &escaped), Some(';'));
        let commented = CsvConfig {
            comment: Some(b'#'),
            ..auto()
        };
        let text = b"# a, b, c\n# d, e, f\n#g,h,i\nid;v\n1;2\n";
        assert_eq!(sniff(text, &commented), Some(';'));
        assert_eq!(
            sniff(text, &auto()),
            Some(','),
            "comments are records without one"
        );
    }

    /// A last record without a line end is cut by the sample's end, unless the file ends there.
    #[test]
    fn a_cut_last_record_does_not_decide() {
        // Whole, "3,4" is a record as good as "a;b", and ',' comes first.
        let text = b"a;b\n3,4";
        assert_eq!(sniff(text, &auto()), Some(','));
        let cut = Sample { text, whole: false };
        assert_eq!(sniff_delimiter(cut, &auto()), Some(b';'));
        // A single record longer than the sample: the part there is all there is.
        let long = Sample {
            text: b"a;b;c;d",
            whole: false,
        };
        assert_eq!(sniff_delimiter(long, &auto()), Some(b';'));
    }

    #[test]
    fn unbalanced_quotes_still_get_an_answer() {
        let c = auto();
        // A stray quote opening the file would hide everything: read as text instead.
        let stray = b"\"id;name\n1;ana\n2;bia\n";
        assert_eq!(sniff(stray, &c), Some(';'));
        let cut = Sample {
            text: stray,
            whole: false,
        };
        assert_eq!(sniff_delimiter(cut, &c), Some(b';'));
        // A stray quote later: the records before it decide.
        assert_eq!(sniff(b"id;name\n1;\"ana\n2;bia\n3;cris\n", &c), Some(';'));
        assert_eq!(chosen(b"id;name\n1;\"ana\n2;bia\n", &default_csv()), ';');
        // A quote, a doubled quote or an escape as the last byte: no panic.
        let escaped = CsvConfig {
            escape: Some(b'\\'),
            ..auto()
        };
        for text in [
            &b"\""[..],
            b"\"\"",
            b"\"\"\"",
            b"a;\"",
            b"a;\"x\"\"",
            b"a;\"x\\",
            b"\"\\",
            b"\\\"",
            b"",
            b"\n\r\n",
        ] {
            for c in [&c, &escaped] {
                for whole in [true, false] {
                    sniff_delimiter(Sample { text, whole }, c);
                }
            }
        }
        assert_eq!(sniff(b"\"", &c), None);
        assert_eq!(chosen(b"a;\"x\\", &escaped), ';');
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
