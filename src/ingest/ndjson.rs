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

use std::collections::HashMap;
use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::sync::Arc;

use deltalake::arrow::array::{ArrayRef, RecordBatch, StringBuilder};
use deltalake::arrow::datatypes::{DataType, Field, Schema};
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::config::FeedConfig;
use crate::job::{BadRow, FileDialect};
use crate::schema::TableSchema;

use super::batch::{FileParse, Setup};
use super::header::{ColumnPlan, HeaderRead};
use super::split::Dialect;
use super::{internal, FileSummary, IngestError, SinkError};

/// One JSON object's members, in the order written, each value as its raw JSON text.
struct Object(Vec<(String, Box<RawValue>)>);

impl<'de> serde::Deserialize<'de> for Object {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Object;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Object, A::Error> {
                let mut members = Vec::with_capacity(m.size_hint().unwrap_or(8));
                while let Some((k, v)) = m.next_entry::<String, Box<RawValue>>()? {
                    members.push((k, v));
                }
                Ok(Object(members))
            }
        }
        d.deserialize_map(V)
    }
}

/// A value as the text the CSV path would have read; None for JSON null.
fn text_of(v: &RawValue) -> Option<String> {
    let raw = v.get();
    match raw.as_bytes().first() {
        Some(b'"') => serde_json::from_str::<String>(raw).ok(),
        Some(b'n') if raw == "null" => None,
        _ => Some(raw.to_string()),
    }
}

/// Physical lines of a text, each without its line end, at most `max` bytes kept (the rest of a
/// longer line is skipped, not held in memory).
struct Lines<R> {
    inner: BufReader<R>,
    max: usize,
    line: u64,
}

enum Line {
    Text(Vec<u8>),
    TooLong(Vec<u8>),
}

impl<R: Read> Lines<R> {
    /// The next line and its number, None at the end.
    fn next(&mut self) -> std::io::Result<Option<(u64, Line)>> {
        let mut buf = Vec::new();
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
                if buf.len() + take > self.max {
                    too_long = true;
                    let keep = self.max.saturating_sub(buf.len()).min(take);
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
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
        let l = if too_long {
            Line::TooLong(buf)
        } else {
            Line::Text(buf)
        };
        Ok(Some((self.line, l)))
    }
}

/// The rows of one batch of lines, as text cells by column of the file.
#[derive(Default)]
struct Pending {
    /// (line, raw text) per row.
    rows: Vec<(u64, String)>,
    /// Per row, (file column, text) of its non-null values.
    cells: Vec<Vec<(usize, String)>>,
}

/// The keys a file named so far, in first-seen order.
#[derive(Default)]
struct Columns {
    names: Vec<String>,
    index: HashMap<String, usize>,
    /// How many of `names` the current plan knows.
    planned: usize,
}

impl Columns {
    fn of(&mut self, key: &str) -> usize {
        if let Some(i) = self.index.get(key) {
            return *i;
        }
        let i = self.names.len();
        self.names.push(key.to_string());
        self.index.insert(key.to_string(), i);
        i
    }
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
        let mut pending = Pending::default();
        let mut first_line = 1;
        while let Some((line, l)) = lines.next()? {
            let bytes = match l {
                Line::TooLong(b) => {
                    parse.bad_record(BadRow {
                        line,
                        raw: String::from_utf8_lossy(&b).into_owned(),
                        column: None,
                        error: format!(
                            "longer than max_line_bytes ({} bytes)",
                            self.feed.csv.max_line_bytes
                        ),
                    })?;
                    continue;
                }
                Line::Text(b) => b,
            };
            if bytes.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let raw = String::from_utf8_lossy(&bytes).into_owned();
            match serde_json::from_slice::<Object>(&bytes) {
                Ok(Object(members)) => {
                    let mut row = Vec::with_capacity(members.len());
                    for (k, v) in members {
                        let c = cols.of(&k);
                        if let Some(t) = text_of(&v) {
                            // A key written twice: the last value counts, as in JavaScript.
                            row.retain(|(i, _): &(usize, String)| *i != c);
                            row.push((c, t));
                        }
                    }
                    if pending.rows.is_empty() {
                        first_line = line;
                    }
                    pending.rows.push((line, raw));
                    pending.cells.push(row);
                }
                Err(e) => parse.bad_record(BadRow {
                    line,
                    raw,
                    column: None,
                    error: format!("not a JSON object: {e}"),
                })?,
            }
            if pending.rows.len() >= batch_rows {
                self.flush(
                    &mut parse,
                    &mut cols,
                    std::mem::take(&mut pending),
                    first_line,
                )?;
            }
        }
        self.flush(&mut parse, &mut cols, pending, first_line)?;
        let (columns, missing) = parse.read_as();
        let mut summary = parse.finish();
        if cols.planned > 0 {
            summary.dialect.columns = columns;
            summary.dialect.missing = missing;
        }
        Ok(summary)
    }

    /// Hands one batch of rows to the batch loop, with a new column plan first when the batch
    /// brought new keys.
    fn flush<S: FnMut(RecordBatch) -> Result<(), SinkError>>(
        &self,
        parse: &mut FileParse<'_, S>,
        cols: &mut Columns,
        pending: Pending,
        line: u64,
    ) -> Result<(), IngestError> {
        if pending.rows.is_empty() {
            return Ok(());
        }
        if cols.planned != cols.names.len() || cols.planned == 0 {
            parse.set_plan(self.plan(cols, line)?);
            cols.planned = cols.names.len();
        }
        let width = parse.file_columns().len();
        let mut builders: Vec<StringBuilder> = (0..width).map(|_| StringBuilder::new()).collect();
        for row in &pending.cells {
            let mut values: Vec<Option<&str>> = vec![None; width];
            for (c, t) in row {
                values[*c] = Some(t.as_str());
            }
            for (b, v) in builders.iter_mut().zip(values) {
                b.append_option(v);
            }
        }
        let fields: Vec<Field> = parse
            .file_columns()
            .iter()
            .map(|c| Field::new(c, DataType::Utf8, true))
            .collect();
        let columns: Vec<ArrayRef> = builders
            .into_iter()
            .map(|mut b| Arc::new(b.finish()) as ArrayRef)
            .collect();
        let text =
            RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map_err(internal)?;
        parse.process_known(&text, pending.rows)
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
        let mut names = cols.names.clone();
        names.extend(header.unmatched(&cols.names, line)?);
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
    while let Some((line, l)) = lines.next()? {
        let Line::Text(bytes) = l else { continue };
        read += bytes.len() as u64 + 1;
        if let Ok(Object(members)) = serde_json::from_slice::<Object>(&bytes) {
            let row = members
                .iter()
                .filter_map(|(k, v)| text_of(v).map(|t| (cols.of(k), t)))
                .collect();
            rows.push((line, row));
        }
        if rows.len() >= max_rows || read >= max_bytes {
            whole = false;
            break;
        }
    }
    let width = cols.names.len();
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
        names: cols.names,
        rows,
        whole,
    })
}
