//! Ingest stage: one CSV file → typed Arrow batches of the feed's table, streamed in batches of
//! `csv.batch_rows` (a file larger than memory is never loaded whole), plus the rows that could
//! not be loaded, each with its physical line, raw text and reason.
//!
//! The text comes from [`source`] (decompressed, transcoded to UTF-8). arrow-csv splits it into
//! text columns; when it refuses a batch (wrong field count, invalid UTF-8), [`split`] re-reads
//! that stretch with csv-core to set the bad records apart. [`value`] converts text to the
//! table's types, value by value, so that one bad value costs one row, not the file.

pub mod fuzz;
pub mod infer;
pub mod source;
pub mod split;
pub mod value;

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use arrow_csv::reader::Decoder;
use arrow_csv::ReaderBuilder;
use deltalake::arrow::array::{
    Array, ArrayRef, BooleanArray, Date32Array, Decimal128Array, Float64Array, Int32Array,
    Int64Array, RecordBatch, StringArray, StringBuilder, TimestampMicrosecondArray,
    TimestampMicrosecondBuilder,
};
use deltalake::arrow::compute::filter_record_batch;
use deltalake::arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use crate::config::{
    Check, ExpectAction, FeedConfig, HeaderMatch, MaxBadRows, OnBadRow, OnNewColumn,
};
use crate::schema::{ColType, ColumnSpec, TableSchema};
use split::{Dialect, RawRecord};
use value::CellError;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The file cannot be ingested as it is: it goes to `rejected/` with this message.
    #[error("{0}")]
    Reject(String),
    /// `on_bad_row = "fail"` (or an expectation with `action = "fail"` and that policy): the
    /// daemon stops; the file stays in the inbox.
    #[error("{0}")]
    Fail(String),
    /// The file disappeared before it was read.
    #[error("file vanished before it was read")]
    Gone,
    /// The file changed while it was read (still being written): try again later.
    #[error("file changed while it was read (still being written?)")]
    Changed,
    /// Reading failed for a reason that may pass (I/O error); the file stays in the inbox.
    #[error("cannot read file: {0}")]
    Io(#[from] std::io::Error),
    /// The batch sink (the Parquet writer) failed; the file stays in the inbox.
    #[error("{0}")]
    Sink(String),
    /// The daemon is stopping: the file was left as it is, to be taken at the next start.
    #[error("stopped before the file was read to the end")]
    Cancelled,
    /// `on_new_column = "add"`: the header has these columns the table lacks, named as
    /// `header_names` names them.
    #[error("new column(s): {}", .0.join(", "))]
    NewColumns(Vec<String>),
}

/// A row that did not make it into the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRow {
    /// Physical line in the file (1-based), right even when quoted fields hold newlines.
    pub line: u64,
    pub raw: String,
    /// The first column at fault, if the fault is in a value.
    pub column: Option<String>,
    pub error: String,
}

/// What one pass over a file produced, besides the good batches.
#[derive(Debug, Clone, Default)]
pub struct FileSummary {
    pub hash: String,
    pub size: u64,
    /// Rows loaded into the table.
    pub rows: u64,
    /// Rows for the quarantine table.
    pub bad: Vec<BadRow>,
    /// Rows that failed a `warn` expectation (kept, counted).
    pub warned: u64,
    pub encoding: String,
    pub delimiter: u8,
}

const SNIFF_BYTES: usize = 64 * 1024;

/// Parses `path` for `feed` with the table schema `schema`, handing each batch of good rows to
/// `sink`.
pub fn parse_file(
    path: &Path,
    feed: &FeedConfig,
    schema: &TableSchema,
    ingested_at_micros: i64,
    sink: impl FnMut(RecordBatch) -> Result<(), String>,
) -> Result<FileSummary, IngestError> {
    let name = crate::job::file_name(path);
    let before = stat(path)?;
    if !before.file_type().is_file() {
        return Err(IngestError::Reject(format!("{name}: not a regular file")));
    }
    let file = open(path)?;
    let (text, hash, info) = source::open_text(file, feed.encoding)?;
    let mut win = Window::new(text);
    win.fill_to(SNIFF_BYTES)?;
    if looks_binary(&win.buf[..win.buf.len().min(SNIFF_BYTES)]) {
        return Err(IngestError::Reject(format!(
            "{name}: not CSV text (NUL bytes or control characters in the first {} KiB; \
             compression is recognised only for gzip and zstd)",
            SNIFF_BYTES / 1024
        )));
    }
    // Excel writes a first line `sep=;` to name the delimiter: it wins, and is no record.
    let (excel_sep, skip) = excel_sep_line(&win.buf);
    let delimiter = choose_delimiter(
        &name,
        &win.buf[skip..win.buf.len().min(SNIFF_BYTES)],
        excel_sep,
        &feed.csv,
    );
    let dialect = Dialect {
        delimiter,
        quote: feed.csv.quote,
        escape: feed.csv.escape,
        comment: feed.csv.comment,
    };
    let first_line = 1 + u64::from(skip > 0);

    let (plan, start, line) = if feed.csv.header {
        read_header(&mut win, &name, feed, schema, &dialect, skip, first_line)?
    } else {
        (positional_plan(schema), skip, first_line)
    };

    let mut p = FileParse {
        name: name.clone(),
        feed,
        schema,
        out_schema: schema.arrow(),
        plan,
        dialect,
        ingested_at: ingested_at_micros,
        summary: FileSummary {
            encoding: info.encoding.to_string(),
            delimiter,
            ..FileSummary::default()
        },
        sink,
    };
    p.run(&mut win, start, line)?;

    if let MaxBadRows::Ratio(r) = feed.max_bad_rows {
        let bad = p.summary.bad.len() as f64;
        let total = bad + p.summary.rows as f64;
        if total > 0.0 && bad / total > r {
            return Err(IngestError::Reject(format!(
                "{name}: {} of {} rows are bad, more than max_bad_rows ({}%); first: {}",
                p.summary.bad.len(),
                total,
                r * 100.0,
                describe_bad(&p.summary.bad[0])
            )));
        }
    }

    // A producer still writing (or a file replaced under us) shows as a changed size or mtime.
    let after = stat(path)?;
    let (hash_hex, bytes_read) = hash.finish();
    if after.len() != before.len()
        || modified(&after) != modified(&before)
        || bytes_read != before.len()
    {
        return Err(IngestError::Changed);
    }
    let mut summary = p.summary;
    summary.hash = hash_hex;
    summary.size = bytes_read;
    Ok(summary)
}

/// NUL bytes, or more than 1% control characters other than tab and line ends: not text.
fn looks_binary(sample: &[u8]) -> bool {
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
pub(crate) fn choose_delimiter(
    name: &str,
    sample: &[u8],
    excel_sep: Option<u8>,
    csv: &crate::config::CsvConfig,
) -> u8 {
    if let Some(d) = excel_sep {
        return d;
    }
    let Some(configured) = csv.delimiter else {
        return split::sniff_delimiter(sample, csv.quote).unwrap_or(b',');
    };
    if !csv.delimiter_is_default {
        return configured;
    }
    let d = Dialect {
        delimiter: configured,
        quote: csv.quote,
        escape: csv.escape,
        comment: csv.comment,
    };
    let first = split::split(sample, 0, 1, &d, None, 1, true, csv.max_line_bytes);
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
pub(crate) fn excel_sep_line(buf: &[u8]) -> (Option<u8>, usize) {
    let line_end = memchr::memchr(b'\n', buf).unwrap_or(buf.len());
    let line = &buf[..line_end];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.len() == 5 && line[..4].eq_ignore_ascii_case(b"sep=") && line[4] != b'"' {
        (Some(line[4]), (line_end + 1).min(buf.len()))
    } else {
        (None, 0)
    }
}

fn stat(path: &Path) -> Result<fs::Metadata, IngestError> {
    match fs::symlink_metadata(path) {
        Ok(m) => Ok(m),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(IngestError::Gone),
        Err(e) => Err(e.into()),
    }
}

fn modified(m: &fs::Metadata) -> Option<SystemTime> {
    m.modified().ok()
}

fn open(path: &Path) -> Result<File, IngestError> {
    match File::open(path) {
        Ok(f) => Ok(f),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(IngestError::Gone),
        Err(e) => Err(e.into()),
    }
}

fn describe_bad(b: &BadRow) -> String {
    match &b.column {
        Some(c) => format!("line {}, column '{c}': {}", b.line, b.error),
        None => format!("line {}: {}", b.line, b.error),
    }
}

/// A sliding window over the text: holds the bytes of the batch being decoded (so that the
/// slow path can re-read them) and reads more as needed.
pub(crate) struct Window {
    src: Box<dyn Read + Send>,
    pub(crate) buf: Vec<u8>,
    pub(crate) eof: bool,
}

impl Window {
    pub(crate) fn new(src: Box<dyn Read + Send>) -> Window {
        Window {
            src,
            buf: Vec::with_capacity(512 * 1024),
            eof: false,
        }
    }

    /// Reads one more block; false at end of input.
    pub(crate) fn fill(&mut self) -> std::io::Result<bool> {
        if self.eof {
            return Ok(false);
        }
        let old = self.buf.len();
        self.buf.resize(old + 256 * 1024, 0);
        let n = loop {
            match self.src.read(&mut self.buf[old..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.buf.truncate(old);
                    return Err(e);
                }
            }
        };
        self.buf.truncate(old + n);
        if n == 0 {
            self.eof = true;
        }
        Ok(n > 0)
    }

    pub(crate) fn fill_to(&mut self, len: usize) -> std::io::Result<()> {
        while self.buf.len() < len && self.fill()? {}
        Ok(())
    }

    /// Drops the bytes before `keep_from`; returns how far offsets moved.
    fn compact(&mut self, keep_from: usize) -> usize {
        self.buf.drain(..keep_from);
        keep_from
    }
}

/// How the file's columns map onto the table's columns.
struct ColumnPlan {
    /// Column names as the file has them, in file order.
    file_columns: Vec<String>,
    /// For each table column: its index in the file, if the file has it.
    source: Vec<Option<usize>>,
    /// File columns the table does not have (kept in `_rescued_data`).
    rescued: Vec<usize>,
}

fn positional_plan(schema: &TableSchema) -> ColumnPlan {
    ColumnPlan {
        file_columns: schema.columns.iter().map(|c| c.name.clone()).collect(),
        source: (0..schema.columns.len()).map(Some).collect(),
        rescued: vec![],
    }
}

/// Lower case, accents removed, spaces, '-' and the characters Spark refuses in Delta column
/// names (` ,;{}()\n\t=`) as '_': how `header_match = "insensitive"` compares names, and the
/// column name `infer`/`sniff` give a header that Spark could not use as it is.
pub fn fold_name(s: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    s.trim()
        .nfd()
        .filter(|c| !unicode_normalization::char::is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .map(|c| if " -,;{}()\n\t=.".contains(c) { '_' } else { c })
        .collect()
}

/// A header usable as a Delta column name as it is, or its folded form.
pub fn column_name_for(header: &str) -> String {
    let h = header.trim();
    if h.is_empty() || h.chars().any(|c| " ,;{}()\n\t=".contains(c)) {
        fold_name(h)
    } else {
        h.to_string()
    }
}

/// The column names a header row gives: each usable as a Delta column name
/// (`column_name_for`), an empty one named by its position (`column_3`), and a repeated one —
/// which Delta refuses, case-insensitively — made unique with a suffix, so that the second
/// `Name` of an export is `Name_2` (and a `_source_file` column of the file, whose name is
/// deltadrop's own, `_source_file_2`). Inference names columns this way and ingestion matches
/// headers this way, so the two always agree.
pub fn header_names(header: &[String]) -> Vec<String> {
    let mut seen: std::collections::HashSet<String> = crate::schema::RESERVED
        .iter()
        .map(|r| r.to_string())
        .collect();
    header
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let base = if h.trim().is_empty() {
                format!("column_{}", i + 1)
            } else {
                column_name_for(h)
            };
            let mut name = base.clone();
            let mut k = 2;
            while !seen.insert(name.to_lowercase()) {
                name = format!("{base}_{k}");
                k += 1;
            }
            name
        })
        .collect()
}

/// Reads the header record and matches it to the schema; returns the plan, the offset of the
/// first data byte and its physical line.
fn read_header(
    win: &mut Window,
    name: &str,
    feed: &FeedConfig,
    schema: &TableSchema,
    d: &Dialect,
    skip: usize,
    first_line: u64,
) -> Result<(ColumnPlan, usize, u64), IngestError> {
    let s = loop {
        let s = split::split(
            &win.buf,
            skip,
            first_line,
            d,
            None,
            1,
            win.eof,
            feed.csv.max_line_bytes,
        );
        if !s.records.is_empty() || win.eof {
            break s;
        }
        if win.buf.len() > feed.csv.max_line_bytes {
            return Err(IngestError::Reject(format!(
                "{name}: the header line is longer than max_line_bytes ({}) — is this a CSV file?",
                feed.csv.max_line_bytes
            )));
        }
        win.fill()?;
    };
    let Some(rec) = s.records.first() else {
        return Err(IngestError::Reject(format!(
            "{name}: empty file, no header line (expected columns: {})",
            schema
                .columns
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    };
    if let Some(e) = &rec.error {
        return Err(IngestError::Reject(format!(
            "{name}: line {} (header): {e} — is this a CSV file?",
            rec.line
        )));
    }
    let file_columns: Vec<String> = rec.fields.iter().map(|f| f.trim().to_string()).collect();
    let mut source = vec![None; schema.columns.len()];
    let mut unknown = Vec::new();
    let keys = header_names(&file_columns);
    let find = |n: &str| schema.columns.iter().position(|c| c.name == n);
    for (i, col) in file_columns.iter().enumerate() {
        // Exact name first; a header also matches the column name infer/sniff made of it.
        let pos = find(col)
            .or_else(|| find(&keys[i]))
            .or_else(|| match feed.header_match {
                HeaderMatch::Exact => None,
                HeaderMatch::Insensitive => {
                    let k = fold_name(col);
                    schema.columns.iter().position(|c| fold_name(&c.name) == k)
                }
            });
        // A repeated header takes the column named after its place (`Name_2`) if there is one.
        let pos = match pos {
            Some(t) if source[t].is_some() => {
                find(&keys[i]).filter(|k| source[*k].is_none()).or(pos)
            }
            other => other,
        };
        match pos {
            Some(t) if source[t].is_some() => {
                return Err(IngestError::Reject(format!(
                    "{name}: line {} (header): column '{col}' appears twice",
                    rec.line
                )))
            }
            Some(t) => source[t] = Some(i),
            // A column without a name (a trailing delimiter on every line) is not a new
            // column; with rescue its values are kept all the same.
            None if col.is_empty() && feed.on_new_column != OnNewColumn::Rescue => {}
            None => unknown.push(i),
        }
    }
    let missing: Vec<&ColumnSpec> = schema
        .columns
        .iter()
        .zip(&source)
        .filter(|(c, s)| s.is_none() && !c.nullable)
        .map(|(c, _)| c)
        .collect();
    if !unknown.is_empty() && missing.is_empty() && feed.on_new_column == OnNewColumn::Add {
        return Err(IngestError::NewColumns(
            unknown.iter().map(|i| keys[*i].clone()).collect(),
        ));
    }
    let reject_unknown = !unknown.is_empty() && feed.on_new_column == OnNewColumn::Reject;
    if !missing.is_empty() || reject_unknown {
        let mut msg = format!(
            "{name}: line {} (header) does not match the table:",
            rec.line
        );
        if !missing.is_empty() {
            let names: Vec<&str> = missing.iter().map(|c| c.name.as_str()).collect();
            msg.push_str(&format!(
                "\n  missing required column(s): {}",
                names.join(", ")
            ));
        }
        if reject_unknown {
            let shown: Vec<String> = unknown
                .iter()
                .take(20)
                .map(|u| format!("'{}'", file_columns[*u]))
                .collect();
            msg.push_str(&format!(
                "\n  column(s) the table does not have: {}{} (on_new_column = \"rescue\" keeps them)",
                shown.join(", "),
                if unknown.len() > 20 { ", ..." } else { "" }
            ));
        }
        msg.push_str(&format!(
            "\n  expected header: {}",
            schema
                .columns
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
                .join(&(d.delimiter as char).to_string())
        ));
        return Err(IngestError::Reject(msg));
    }
    Ok((
        ColumnPlan {
            file_columns,
            source,
            rescued: if schema.rescued { unknown } else { vec![] },
        },
        s.end,
        s.end_line,
    ))
}

/// Where the rows of a text batch came from, to name bad ones.
enum Rows<'a> {
    /// Records already split: line and raw text per row.
    Known(Vec<(u64, String)>),
    /// A stretch of the window holding exactly the batch's records, starting at `line`.
    Range { bytes: &'a [u8], line: u64 },
}

struct FileParse<'a, S> {
    name: String,
    feed: &'a FeedConfig,
    schema: &'a TableSchema,
    out_schema: SchemaRef,
    plan: ColumnPlan,
    dialect: Dialect,
    ingested_at: i64,
    summary: FileSummary,
    sink: S,
}

impl<S: FnMut(RecordBatch) -> Result<(), String>> FileParse<'_, S> {
    fn decoder(&self) -> Decoder {
        let text_schema = Arc::new(Schema::new(
            self.plan
                .file_columns
                .iter()
                .map(|n| Field::new(n, DataType::Utf8, true))
                .collect::<Vec<_>>(),
        ));
        let mut b = ReaderBuilder::new(text_schema)
            .with_header(false)
            .with_delimiter(self.dialect.delimiter)
            .with_quote(self.dialect.quote)
            .with_batch_size(self.feed.csv.batch_rows);
        if let Some(e) = self.dialect.escape {
            b = b.with_escape(e);
        }
        if let Some(c) = self.dialect.comment {
            b = b.with_comment(c);
        }
        b.build_decoder()
    }

    /// The batch loop: arrow-csv on the fast path, csv-core on stretches it refuses.
    fn run(&mut self, win: &mut Window, start: usize, line: u64) -> Result<(), IngestError> {
        let mut decoder = self.decoder();
        let mut batch_start = start;
        let mut batch_line = line;
        let mut pos = start;
        let expected = self.plan.file_columns.len();
        loop {
            if pos >= win.buf.len() && !win.eof {
                // Keep the current batch's bytes for a possible slow-path re-read; drop what is
                // before them once it is most of the buffer (so each byte moves about once).
                if batch_start > 0 && batch_start >= win.buf.len() / 2 {
                    let shift = win.compact(batch_start);
                    batch_start -= shift;
                    pos -= shift;
                }
                if win.buf.len() - batch_start > 2 * self.feed.csv.max_line_bytes.max(64 << 20) {
                    // One record is growing without end: let the slow path deal with it.
                    let end = self.slow_path(win, batch_start, batch_line, expected, true)?;
                    batch_line = end.1;
                    batch_start = end.0;
                    pos = batch_start;
                    decoder = self.decoder();
                    continue;
                }
                win.fill()?;
                continue;
            }
            let at_eof = win.eof && pos >= win.buf.len();
            let input: &[u8] = if at_eof { &[] } else { &win.buf[pos..] };
            match decoder.decode(input) {
                Ok(n) => {
                    pos += n;
                    if decoder.capacity() == 0 || at_eof {
                        let range = batch_start..pos;
                        match decoder.flush() {
                            Ok(Some(text)) => {
                                let rows = Rows::Range {
                                    bytes: &win.buf[range.clone()],
                                    line: batch_line,
                                };
                                self.process(&text, rows)?;
                            }
                            Ok(None) => {}
                            // Invalid UTF-8 in a complete stretch of records.
                            Err(_) => {
                                decoder = self.decoder();
                                let (end, end_line) =
                                    self.slow_path_range(win, range.clone(), batch_line, expected)?;
                                debug_assert_eq!(end, range.end);
                                batch_start = end;
                                batch_line = end_line;
                                if at_eof {
                                    return Ok(());
                                }
                                continue;
                            }
                        }
                        batch_line += split::count_newlines(&win.buf[range]) as u64;
                        batch_start = pos;
                        if at_eof {
                            return Ok(());
                        }
                    }
                }
                Err(_) => {
                    // A record arrow-csv refuses (field count): re-read this batch's stretch.
                    let (end, end_line) =
                        self.slow_path(win, batch_start, batch_line, expected, false)?;
                    batch_start = end;
                    batch_line = end_line;
                    pos = end;
                    decoder = self.decoder();
                    if win.eof && pos >= win.buf.len() {
                        return Ok(());
                    }
                }
            }
        }
    }

    /// Splits up to one batch of records from `from` with csv-core (reading more input as
    /// needed), loads the good ones and sets the bad ones apart. Returns (end offset, line).
    fn slow_path(
        &mut self,
        win: &mut Window,
        from: usize,
        line: u64,
        expected: usize,
        forced: bool,
    ) -> Result<(usize, u64), IngestError> {
        loop {
            let s = split::split(
                &win.buf,
                from,
                line,
                &self.dialect,
                Some(expected),
                self.feed.csv.batch_rows,
                win.eof,
                self.feed.csv.max_line_bytes,
            );
            let enough = s.records.len() >= self.feed.csv.batch_rows || win.eof;
            if enough || (forced && !s.records.is_empty()) {
                self.load_records(&win.buf, s.records)?;
                return Ok((s.end, s.end_line));
            }
            if forced && win.buf.len() - from > 4 * self.feed.csv.max_line_bytes.max(64 << 20) {
                return Err(IngestError::Reject(format!(
                    "{}: line {line}: a record longer than {} bytes (unbalanced quote?)",
                    self.name,
                    4 * self.feed.csv.max_line_bytes.max(64 << 20)
                )));
            }
            win.fill()?;
        }
    }

    /// Slow path over a stretch known to hold whole records.
    fn slow_path_range(
        &mut self,
        win: &mut Window,
        range: std::ops::Range<usize>,
        line: u64,
        expected: usize,
    ) -> Result<(usize, u64), IngestError> {
        let s = split::split(
            &win.buf[..range.end],
            range.start,
            line,
            &self.dialect,
            Some(expected),
            usize::MAX,
            true,
            self.feed.csv.max_line_bytes,
        );
        self.load_records(&win.buf, s.records)?;
        Ok((
            range.end,
            line + split::count_newlines(&win.buf[range]) as u64,
        ))
    }

    fn load_records(&mut self, buf: &[u8], records: Vec<RawRecord>) -> Result<(), IngestError> {
        let n = self.plan.file_columns.len();
        let mut builders: Vec<StringBuilder> = (0..n).map(|_| StringBuilder::new()).collect();
        let mut known = Vec::new();
        for r in records {
            if let Some(e) = &r.error {
                self.bad_row(BadRow {
                    line: r.line,
                    raw: r.raw(buf),
                    column: None,
                    error: e.clone(),
                })?;
                continue;
            }
            for (b, f) in builders.iter_mut().zip(&r.fields) {
                // arrow-csv reads an empty field as null: do the same.
                if f.is_empty() {
                    b.append_null();
                } else {
                    b.append_value(f);
                }
            }
            known.push((r.line, r.raw(buf)));
        }
        if known.is_empty() {
            return Ok(());
        }
        let cols: Vec<ArrayRef> = builders
            .into_iter()
            .map(|mut b| Arc::new(b.finish()) as ArrayRef)
            .collect();
        let fields: Vec<Field> = self
            .plan
            .file_columns
            .iter()
            .map(|c| Field::new(c, DataType::Utf8, true))
            .collect();
        let text = RecordBatch::try_new(Arc::new(Schema::new(fields)), cols)
            .map_err(|e| IngestError::Sink(format!("internal: {e}")))?;
        self.process(&text, Rows::Known(known))
    }

    /// A bad row, under the feed's policy.
    fn bad_row(&mut self, b: BadRow) -> Result<(), IngestError> {
        match self.feed.on_bad_row {
            OnBadRow::RejectFile => {
                return Err(IngestError::Reject(format!(
                    "{}: {}",
                    self.name,
                    describe_bad(&b)
                )))
            }
            OnBadRow::Fail => {
                return Err(IngestError::Fail(format!(
                    "{}: {} (on_bad_row = \"fail\")",
                    self.name,
                    describe_bad(&b)
                )))
            }
            OnBadRow::Quarantine => {}
        }
        if let MaxBadRows::Count(max) = self.feed.max_bad_rows {
            if self.summary.bad.len() as u64 >= max {
                return Err(IngestError::Reject(format!(
                    "{}: more than max_bad_rows ({max}) bad rows; first: {}",
                    self.name,
                    self.summary
                        .bad
                        .first()
                        .map(describe_bad)
                        .unwrap_or_else(|| describe_bad(&b))
                )));
            }
        }
        self.summary.bad.push(b);
        Ok(())
    }

    /// Converts a text batch to the table's types, checks expectations, hands the good rows to
    /// the sink and sets the bad ones apart.
    fn process(&mut self, text: &RecordBatch, rows: Rows<'_>) -> Result<(), IngestError> {
        let n = text.num_rows();
        let mut errors: Vec<CellError> = Vec::new();
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.schema.columns.len() + 3);
        for (spec, src) in self.schema.columns.iter().zip(&self.plan.source) {
            let col = match src {
                Some(i) => match text.column(*i).as_any().downcast_ref::<StringArray>() {
                    Some(t) => value::convert_column(t, spec, &self.feed.values, &mut errors),
                    None => return Err(IngestError::Sink("internal: text column expected".into())),
                },
                None => deltalake::arrow::array::new_null_array(&spec.ty.arrow(), n),
            };
            columns.push(col);
        }
        let mut failed = vec![false; n];
        for e in &errors {
            failed[e.row] = true;
        }
        if let Some(fail) = self.check_expectations(&columns, &mut failed, &mut errors) {
            let (line, _) = locate(&rows, &self.dialect, vec![fail.row])
                .pop()
                .unwrap_or((0, String::new()));
            return Err(IngestError::Reject(format!(
                "{}: line {line}, column '{}': {} (expectation with action = \"fail\")",
                self.name, fail.column, fail.message
            )));
        }
        if let Some((_, source)) = self.schema.derived_partition() {
            columns.push(date_of(&columns, self.schema, &source.name)?);
        }
        if self.schema.rescued {
            columns.push(self.rescued_column(text));
        }
        columns.push(Arc::new(StringArray::from(vec![self.name.as_str(); n])));
        let mut ts = TimestampMicrosecondBuilder::with_capacity(n);
        ts.append_value_n(self.ingested_at, n);
        columns.push(Arc::new(ts.finish().with_timezone("UTC")));
        let internal =
            |e: deltalake::arrow::error::ArrowError| IngestError::Sink(format!("internal: {e}"));
        let batch = if errors.is_empty() {
            RecordBatch::try_new(self.out_schema.clone(), columns).map_err(internal)?
        } else {
            // Failed rows hold nulls where the table allows none: filter them out under an
            // all-nullable schema, then put the table's schema back on.
            let loose = Arc::new(Schema::new(
                self.out_schema
                    .fields()
                    .iter()
                    .map(|f| f.as_ref().clone().with_nullable(true))
                    .collect::<Vec<_>>(),
            ));
            let batch = RecordBatch::try_new(loose, columns).map_err(internal)?;
            let mut by_row: BTreeMap<usize, Vec<&CellError>> = BTreeMap::new();
            for e in &errors {
                by_row.entry(e.row).or_default().push(e);
            }
            let located = locate(&rows, &self.dialect, by_row.keys().copied().collect());
            for ((row, errs), (line, raw)) in by_row.iter().zip(located) {
                let _ = row;
                let error = errs
                    .iter()
                    .map(|e| {
                        if errs.len() == 1 {
                            e.message.clone()
                        } else {
                            format!("{}: {}", e.column, e.message)
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("; ");
                self.bad_row(BadRow {
                    line,
                    raw,
                    column: Some(errs[0].column.clone()),
                    error,
                })?;
            }
            let keep: BooleanArray = failed.iter().map(|f| Some(!f)).collect();
            let good = filter_record_batch(&batch, &keep).map_err(internal)?;
            RecordBatch::try_new(self.out_schema.clone(), good.columns().to_vec())
                .map_err(internal)?
        };
        self.summary.rows += batch.num_rows() as u64;
        if batch.num_rows() > 0 {
            (self.sink)(batch).map_err(IngestError::Sink)?;
        }
        Ok(())
    }

    /// Expectations (DLT-style) on converted values. `warn` counts, `quarantine` fails the row,
    /// `fail` rejects the file: the first such violation is returned.
    fn check_expectations(
        &mut self,
        columns: &[ArrayRef],
        failed: &mut [bool],
        errors: &mut Vec<CellError>,
    ) -> Option<CellError> {
        for exp in &self.feed.expectations {
            let Some(ci) = self.schema.position(&exp.column) else {
                continue;
            };
            let arr = &columns[ci];
            for (row, bad) in failed.iter_mut().enumerate() {
                if *bad {
                    continue;
                }
                let Some(message) = violation(&exp.check, arr, row) else {
                    continue;
                };
                match exp.action {
                    ExpectAction::Warn => self.summary.warned += 1,
                    ExpectAction::Quarantine => {
                        *bad = true;
                        errors.push(CellError {
                            row,
                            column: exp.column.clone(),
                            message,
                        });
                    }
                    ExpectAction::Fail => {
                        return Some(CellError {
                            row,
                            column: exp.column.clone(),
                            message,
                        })
                    }
                }
            }
        }
        None
    }

    /// The file's unknown columns of each row, as a JSON object (null when all are empty).
    fn rescued_column(&self, text: &RecordBatch) -> ArrayRef {
        let n = text.num_rows();
        let mut b = StringBuilder::new();
        for row in 0..n {
            let mut obj = serde_json::Map::new();
            for &i in &self.plan.rescued {
                if let Some(a) = text.column(i).as_any().downcast_ref::<StringArray>() {
                    if !a.is_null(row) {
                        let key = match self.plan.file_columns[i].as_str() {
                            "" => format!("column_{}", i + 1),
                            k => k.to_string(),
                        };
                        obj.insert(key, serde_json::Value::String(a.value(row).to_string()));
                    }
                }
            }
            if obj.is_empty() {
                b.append_null();
            } else {
                b.append_value(serde_json::Value::Object(obj).to_string());
            }
        }
        Arc::new(b.finish())
    }
}

/// The message for a value breaking `check`, if it does.
fn violation(check: &Check, arr: &ArrayRef, row: usize) -> Option<String> {
    let null = arr.is_null(row);
    let text = || -> Option<String> {
        arr.as_any()
            .downcast_ref::<StringArray>()
            .map(|s| s.value(row).to_string())
    };
    match check {
        Check::NotNull => null.then(|| "is null (expect not_null)".to_string()),
        _ if null => None,
        Check::Min(m) => number(arr, row)
            .filter(|v| v < m)
            .map(|v| format!("{v} is below the minimum {m}")),
        Check::Max(m) => number(arr, row)
            .filter(|v| v > m)
            .map(|v| format!("{v} is above the maximum {m}")),
        Check::Regex(re) => text()
            .filter(|s| !re.is_match(s))
            .map(|s| format!("'{}' does not match /{}/", value::clip(&s), re.as_str())),
        Check::OneOf(list) => text()
            .filter(|s| !list.contains(s))
            .map(|s| format!("'{}' is not one of {}", value::clip(&s), list.join(", "))),
        Check::Cpf => text()
            .filter(|s| !value::valid_cpf(s))
            .map(|s| format!("'{}' is not a valid CPF", value::clip(&s))),
        Check::Cnpj => text()
            .filter(|s| !value::valid_cnpj(s))
            .map(|s| format!("'{}' is not a valid CNPJ", value::clip(&s))),
    }
}

fn number(arr: &ArrayRef, row: usize) -> Option<f64> {
    let a = arr.as_any();
    if let Some(x) = a.downcast_ref::<Int64Array>() {
        return Some(x.value(row) as f64);
    }
    if let Some(x) = a.downcast_ref::<Int32Array>() {
        return Some(f64::from(x.value(row)));
    }
    if let Some(x) = a.downcast_ref::<Float64Array>() {
        return Some(x.value(row));
    }
    if let Some(x) = a.downcast_ref::<Decimal128Array>() {
        return Some(x.value(row) as f64 / 10f64.powi(i32::from(x.scale())));
    }
    None
}

/// (line, raw text) of the given rows (sorted) of a batch.
fn locate(rows: &Rows<'_>, d: &Dialect, wanted: Vec<usize>) -> Vec<(u64, String)> {
    match rows {
        Rows::Known(v) => wanted
            .iter()
            .map(|&r| v.get(r).cloned().unwrap_or((0, String::new())))
            .collect(),
        Rows::Range { bytes, line } => {
            let s = split::split(bytes, 0, *line, d, None, usize::MAX, true, usize::MAX);
            wanted
                .iter()
                .map(|&r| {
                    s.records
                        .get(r)
                        .map(|rec| (rec.line, rec.raw(bytes)))
                        .unwrap_or((0, String::new()))
                })
                .collect()
        }
    }
}

/// The type names used in messages and `sniff` output.
pub fn type_name(t: &ColType) -> String {
    t.to_string()
}

/// The UTC date of each value of timestamp column `source` (a derived partition column).
fn date_of(
    columns: &[ArrayRef],
    schema: &TableSchema,
    source: &str,
) -> Result<ArrayRef, IngestError> {
    const MICROS_PER_DAY: i64 = 86_400_000_000;
    let ts = schema
        .position(source)
        .and_then(|i| columns.get(i))
        .and_then(|c| c.as_any().downcast_ref::<TimestampMicrosecondArray>())
        .ok_or_else(|| {
            IngestError::Sink(format!("internal: {source} is not a timestamp column"))
        })?;
    let days: Date32Array = ts.unary(|us| us.div_euclid(MICROS_PER_DAY) as i32);
    Ok(Arc::new(days))
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

    #[test]
    fn names_fold_for_insensitive_matching() {
        assert_eq!(fold_name(" Preço Unitário "), "preco_unitario");
        assert_eq!(fold_name("Sale-ID"), "sale_id");
        assert_eq!(fold_name("DATA DA VENDA"), "data_da_venda");
        assert_eq!(column_name_for("Valor (R$)"), "valor__r$_");
        assert_eq!(column_name_for("ID"), "ID");
        let header: Vec<String> = ["a", "", "A", "a_2", "x y", "a"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            header_names(&header),
            ["a", "column_2", "A_2", "a_2_2", "x_y", "a_3"]
        );
        let lineage = vec!["_source_file".to_string(), "_Ingested_At".to_string()];
        assert_eq!(header_names(&lineage), ["_source_file_2", "_Ingested_At_2"]);
    }
}
