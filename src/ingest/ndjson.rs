//! JSON lines (`format = "ndjson"`, or `auto` on `.ndjson`, `.jsonl`, `.json`): one object per
//! line. Each object's values become the text the CSV path would have read — a string its
//! content, a number exactly as written (never through a float), `true`/`false`, an object or
//! an array its JSON text — so a JSON lines feed has everything a CSV feed has from the same
//! code: the table's types and formats, null words, expectations, quarantine with the line,
//! lineage, unknown-column policies. A key missing from an object is a null in that row; a
//! line that is not a JSON object is a bad row with its line.
//!
//! The columns a file names are the keys in the order they first appear. They can appear at
//! any line, so the column plan is made again whenever a batch of lines brings a new key: a
//! batch is never held back to wait for the rest of the file, and memory stays bounded by
//! `csv.batch_rows` lines whatever the file's size.

use std::borrow::Cow;
use std::io::{BufRead, BufReader, Read};
use std::sync::Arc;

use deltalake::arrow::array::{ArrayRef, RecordBatch, StringBuilder};
use deltalake::arrow::datatypes::{DataType, Field, Schema};
use serde_json::value::RawValue;

use crate::config::FeedConfig;
use crate::job::{BadRow, FileDialect};
use crate::schema::TableSchema;

use super::batch::{FileParse, Setup};
use super::header::{ColumnPlan, HeaderRead};
use super::json::{text_of, Keys, Object};
use super::split::Dialect;
use super::{internal, FileSummary, IngestError, SinkError};

/// Physical lines of a text, each without its line end, appended to a caller's buffer; at most
/// `max` bytes of a line are kept (the rest of a longer one is skipped, not held in memory).
struct Lines<R> {
    inner: BufReader<R>,
    max: usize,
    line: u64,
}

impl<R: Read> Lines<R> {
    /// Appends the next line to `buf`; its number and whether it was cut at `max`, None at
    /// the end.
    fn next_into(&mut self, buf: &mut Vec<u8>) -> std::io::Result<Option<(u64, bool)>> {
        let start = buf.len();
        let mut too_long = false;
        let mut any = false;
        loop {
            let chunk = self.inner.fill_buf()?;
            if chunk.is_empty() {
                break;
            }
            any = true;
            let (take, done) = match memchr::memchr(b'\n', chunk) {
                Some(i) => (i, true),
                None => (chunk.len(), false),
            };
            if !too_long {
                let kept = buf.len() - start;
                if kept + take > self.max {
                    too_long = true;
                    let keep = self.max.saturating_sub(kept).min(take);
                    buf.extend_from_slice(&chunk[..keep]);
                } else {
                    buf.extend_from_slice(&chunk[..take]);
                }
            }
            self.inner.consume(take + usize::from(done));
            if done {
                break;
            }
        }
        if !any {
            return Ok(None);
        }
        self.line += 1;
        if buf.len() > start && buf.last() == Some(&b'\r') {
            buf.pop();
        }
        Ok(Some((self.line, too_long)))
    }
}

/// The rows of one batch of lines: their text (for the bad ones' raw text, made only when one
/// is bad) and a text column per key, filled as the objects are read.
#[derive(Default)]
struct Pending {
    /// Every row's line, back to back.
    text: Vec<u8>,
    /// (physical line, start, end in `text`) per row.
    rows: Vec<(u64, usize, usize)>,
    /// The text columns.
    columns: Builders,
}

/// A text column per key, filled as the objects are read.
#[derive(Default)]
struct Builders {
    /// One builder per key seen in the file so far (a key first seen mid-batch starts with
    /// nulls for the rows before it).
    columns: Vec<StringBuilder>,
    /// Per key, the line of the last row that gave it a value.
    seen: Vec<u64>,
    /// The current object's members' columns, in the order written.
    idx: Vec<usize>,
}

impl Builders {
    /// One object as the next row (`rows` rows before it in the batch): each member's text in
    /// its key's column, null in the columns of keys it lacks.
    fn add(
        &mut self,
        cols: &mut Columns,
        members: &[(Cow<'_, str>, &RawValue)],
        line: u64,
        rows: usize,
    ) {
        self.idx.clear();
        let mut twice = false;
        for (pos, (k, _)) in members.iter().enumerate() {
            let c = cols.keys.of(k, pos);
            if c >= self.seen.len() {
                self.seen.resize(c + 1, 0);
            }
            twice |= self.seen[c] == line;
            self.seen[c] = line;
            self.idx.push(c);
        }
        while self.columns.len() < cols.keys.names().len() {
            let mut b = StringBuilder::new();
            b.append_nulls(rows);
            self.columns.push(b);
        }
        for (j, (c, (_, v))) in self.idx.iter().zip(members).enumerate() {
            // A key written twice: the last value counts, as in JavaScript.
            if twice && self.idx[j + 1..].contains(c) {
                continue;
            }
            self.columns[*c].append_option(text_of(v).as_deref());
        }
        for (b, seen) in self.columns.iter_mut().zip(&self.seen) {
            if *seen != line {
                b.append_null();
            }
        }
    }
}

impl Pending {
    fn row_text(&self, i: usize) -> (u64, String) {
        let (line, a, b) = self.rows[i];
        (line, String::from_utf8_lossy(&self.text[a..b]).into_owned())
    }
}

/// The keys a file named so far, in first-seen order.
#[derive(Default)]
struct Columns {
    keys: Keys,
    /// How many of the keys the current plan knows.
    planned: usize,
}

/// Reads one JSON lines text (decompressed and decoded already) into `parse`'s sink.
pub(super) struct JsonLines<'a> {
    pub(super) name: String,
    pub(super) feed: &'a FeedConfig,
    pub(super) schema: &'a TableSchema,
    pub(super) ingested_at: i64,
}

impl JsonLines<'_> {
    /// Every line of `text`, batch by batch; the summary of what was loaded and set apart.
    pub(super) fn run(
        &self,
        text: Box<dyn Read + Send>,
        summary: FileSummary,
        sink: impl FnMut(RecordBatch) -> Result<(), SinkError>,
    ) -> Result<FileSummary, IngestError> {
        let mut lines = Lines {
            inner: BufReader::with_capacity(256 * 1024, text),
            max: self.feed.csv.max_line_bytes,
            line: 0,
        };
        let mut cols = Columns::default();
        let mut parse = FileParse::new(
            Setup {
                name: self.name.clone(),
                feed: self.feed,
                schema: self.schema,
                plan: ColumnPlan::positional(self.schema),
                dialect: Dialect::RFC4180,
                ingested_at: self.ingested_at,
            },
            summary,
            sink,
        );
        let batch_rows = self.feed.csv.batch_rows.max(1);
        let mut p = Pending::default();
        loop {
            let start = p.text.len();
            let Some((line, too_long)) = lines.next_into(&mut p.text)? else {
                break;
            };
            let bytes = &p.text[start..];
            if too_long || bytes.iter().all(u8::is_ascii_whitespace) {
                if too_long {
                    parse.bad_record(BadRow {
                        line,
                        raw: String::from_utf8_lossy(bytes).into_owned(),
                        column: None,
                        error: format!(
                            "longer than max_line_bytes ({} bytes)",
                            self.feed.csv.max_line_bytes
                        ),
                    })?;
                }
                p.text.truncate(start);
                continue;
            }
            match serde_json::from_slice::<Object>(bytes) {
                Ok(Object(members)) => {
                    p.columns.add(&mut cols, &members, line, p.rows.len());
                    let end = p.text.len();
                    p.rows.push((line, start, end));
                }
                Err(e) => {
                    let raw = String::from_utf8_lossy(bytes).into_owned();
                    p.text.truncate(start);
                    parse.bad_record(BadRow {
                        line,
                        raw,
                        column: None,
                        error: format!("not a JSON object: {e}"),
                    })?;
                }
            }
            if p.rows.len() >= batch_rows {
                self.flush(&mut parse, &mut cols, &mut p)?;
            }
        }
        self.flush(&mut parse, &mut cols, &mut p)?;
        let (columns, missing) = parse.read_as();
        let mut summary = parse.finish();
        if cols.planned > 0 {
            summary.dialect.columns = columns;
            summary.dialect.missing = missing;
        }
        Ok(summary)
    }

    /// Hands one batch of rows to the batch loop, with a new column plan first when the batch
    /// brought new keys; leaves `p` empty for the next batch.
    fn flush<S: FnMut(RecordBatch) -> Result<(), SinkError>>(
        &self,
        parse: &mut FileParse<'_, S>,
        cols: &mut Columns,
        p: &mut Pending,
    ) -> Result<(), IngestError> {
        if p.rows.is_empty() {
            return Ok(());
        }
        let line = p.rows[0].0;
        if cols.planned != cols.keys.names().len() || cols.planned == 0 {
            parse.set_plan(self.plan(cols, line)?);
            cols.planned = cols.keys.names().len();
        }
        let n = p.rows.len();
        let width = parse.file_columns().len();
        let mut columns: Vec<ArrayRef> = p
            .columns
            .columns
            .iter_mut()
            .map(|b| Arc::new(b.finish()) as ArrayRef)
            .collect();
        // Table columns no key named (the plan appends them after the keys): all null.
        while columns.len() < width {
            let mut b = StringBuilder::new();
            b.append_nulls(n);
            columns.push(Arc::new(b.finish()));
        }
        let fields: Vec<Field> = parse
            .file_columns()
            .iter()
            .map(|c| Field::new(c, DataType::Utf8, true))
            .collect();
        let text =
            RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map_err(internal)?;
        let row = |i: usize| p.row_text(i);
        parse.process_indexed(&text, &row)?;
        p.rows.clear();
        p.text.clear();
        Ok(())
    }

    /// The plan for the keys seen so far: each key matched to a table column as a CSV header
    /// is (the feed's `header_match`, unknown keys under `on_new_column`), then every table
    /// column no key matched, so that its rows read it as null (a row lacking a required value
    /// is a bad row, not the whole file).
    fn plan(&self, cols: &Columns, line: u64) -> Result<ColumnPlan, IngestError> {
        let header = HeaderRead {
            name: &self.name,
            feed: self.feed,
            schema: self.schema,
            dialect: &Dialect::RFC4180,
        };
        let mut names = cols.keys.names().to_vec();
        names.extend(header.unmatched(cols.keys.names(), line)?);
        header.plan_for(names, line)
    }
}

/// A summary's record of how a JSON lines file was read (its columns once it is read).
pub(super) fn dialect(
    info: &super::source::SourceInfo,
    check: crate::job::WriterCheck,
) -> FileDialect {
    FileDialect {
        encoding: info.encoding_label().to_string(),
        compression: info.compression.to_string(),
        format: Some("ndjson".into()),
        writer_check: check,
        ..FileDialect::default()
    }
}

/// What schema inference reads of a JSON lines text.
pub(super) struct Sample {
    /// The keys, in first-seen order.
    pub(super) names: Vec<String>,
    /// (line, a text per key: empty for null or missing) per object.
    pub(super) rows: Vec<(u64, Vec<String>)>,
    /// Whether the whole text was read.
    pub(super) whole: bool,
}

/// The first `max_rows` objects of a JSON lines text (up to `max_bytes`), for schema
/// inference; the lines that are not objects are skipped.
pub(super) fn sample(
    text: Box<dyn Read + Send>,
    max_rows: usize,
    max_bytes: u64,
    max_line: usize,
) -> Result<Sample, IngestError> {
    let mut lines = Lines {
        inner: BufReader::with_capacity(256 * 1024, text),
        max: max_line,
        line: 0,
    };
    let mut cols = Columns::default();
    let mut rows: Vec<(u64, Vec<(usize, String)>)> = Vec::new();
    let mut read = 0u64;
    let mut whole = true;
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let Some((line, too_long)) = lines.next_into(&mut buf)? else {
            break;
        };
        read += buf.len() as u64 + 1;
        if too_long {
            continue;
        }
        if let Ok(Object(members)) = serde_json::from_slice::<Object>(&buf) {
            let row = members
                .iter()
                .enumerate()
                .filter_map(|(pos, (k, v))| {
                    text_of(v).map(|t| (cols.keys.of(k, pos), t.into_owned()))
                })
                .collect();
            rows.push((line, row));
        }
        if rows.len() >= max_rows || read >= max_bytes {
            whole = false;
            break;
        }
    }
    let width = cols.keys.names().len();
    let rows = rows
        .into_iter()
        .map(|(line, cells)| {
            let mut r = vec![String::new(); width];
            for (c, t) in cells {
                r[c] = t;
            }
            (line, r)
        })
        .collect();
    Ok(Sample {
        names: cols.keys.into_names(),
        rows,
        whole,
    })
}
