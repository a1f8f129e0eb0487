//! Ingest stage: one CSV file → typed Arrow batches of the feed's table, streamed in batches of
//! `csv.batch_rows` (a file larger than memory is never loaded whole), plus the rows that could
//! not be loaded, each with its physical line, raw text and reason.
//!
//! How a file goes through it, in [`parse_file`]: [`source`] opens the bytes as UTF-8 text
//! (decompressed, transcoded, hashed); [`window`] holds the stretch being parsed; [`dialect`]
//! decides the delimiter and tells text from binary; [`header`] matches the header to the
//! table's columns; [`batch`] runs arrow-csv over the text and, where it refuses a stretch,
//! [`split`] (csv-core) sets the bad records apart; [`value`] converts text to the table's
//! types value by value, so one bad value costs one row; [`expect`] checks expectations.
//! [`infer`] guesses a schema from a file (`schema = "infer"`, `deltadrop sniff`).

mod batch;
mod columnar;
pub(crate) mod dialect;
pub(crate) mod excel;
mod expect;
pub mod fuzz;
mod guess;
pub(crate) mod header;
pub(crate) mod infer;
mod json;
pub(crate) mod lease;
mod ndjson;
mod plain;
pub(crate) mod quoting;
pub(crate) mod sniffed;
pub(crate) mod source;
pub(crate) mod split;
pub(crate) mod value;
mod window;

use std::fs;
use std::path::Path;
use std::time::SystemTime;

use deltalake::arrow::record_batch::RecordBatch;

use crate::config::{FeedConfig, FileFormat, MaxBadRows};
use crate::job::{file_name, BadRow, FileDialect, SkippedLines, WriterCheck};
use crate::schema::TableSchema;
use window::Window;

pub(crate) use crate::schema::fold_name;
pub(crate) use header::header_names;

#[derive(Debug, thiserror::Error)]
pub(crate) enum IngestError {
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
    /// Another process has the file open for writing: not ready, taken once it is closed.
    #[error("another process has it open for writing")]
    Busy,
    /// Reading failed for a reason that may pass (I/O error); the file stays in the inbox.
    #[error("cannot read file: {0}")]
    Io(#[from] std::io::Error),
    /// Writing the batches (the Parquet writer) failed; the file stays in the inbox and is
    /// retried.
    #[error("writing Parquet: {0}")]
    Write(String),
    /// A bug: something that cannot fail did. Retried a few times, then the file is rejected.
    #[error("internal error: {0}")]
    Internal(String),
    /// The daemon is stopping: the file was left as it is, to be taken at the next start.
    #[error("stopped before the file was read to the end")]
    Cancelled,
    /// `on_new_column = "add"`: the header has these columns the table lacks, named as
    /// `header_names` names them.
    #[error("new column(s): {}", .0.join(", "))]
    NewColumns(Vec<String>),
}

/// Why a batch sink refused a batch.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SinkError {
    /// The daemon is stopping: stop reading.
    #[error("cancelled: stopping")]
    Cancelled,
    /// Writing failed (it may pass: disk full, an object store outage).
    #[error("{0}")]
    Write(String),
}

impl From<SinkError> for IngestError {
    fn from(e: SinkError) -> Self {
        match e {
            SinkError::Cancelled => IngestError::Cancelled,
            SinkError::Write(m) => IngestError::Write(m),
        }
    }
}

/// An Arrow error where none can happen: a bug.
fn internal(e: deltalake::arrow::error::ArrowError) -> IngestError {
    IngestError::Internal(e.to_string())
}

/// What one pass over a file produced, besides the good batches.
#[derive(Debug, Clone, Default)]
pub(crate) struct FileSummary {
    pub hash: String,
    pub size: u64,
    /// Rows loaded into the table.
    pub rows: u64,
    /// Rows for the quarantine table.
    pub bad: Vec<BadRow>,
    /// Rows that failed a `warn` expectation (kept, counted).
    pub warned: u64,
    /// How the file was read.
    pub dialect: FileDialect,
    /// Size and modification time when it was read: a commit checks the file still has them.
    pub stamp: (u64, Option<SystemTime>),
}

/// Parses `path` for `feed` with the table schema `schema`, handing each batch of good rows to
/// `sink`.
pub(crate) fn parse_file(
    path: &Path,
    feed: &FeedConfig,
    schema: &TableSchema,
    ingested_at_micros: i64,
    sink: impl FnMut(RecordBatch) -> Result<(), SinkError>,
) -> Result<FileSummary, IngestError> {
    let name = file_name(path);
    let before = stat(path)?;
    if !before.file_type().is_file() {
        return Err(IngestError::Reject(format!("{name}: not a regular file")));
    }
    let lease = open_leased(path)?;
    let r = Reading {
        lease: &lease,
        path,
        name,
        before: &before,
        feed,
        schema,
        ingested_at: ingested_at_micros,
    };
    let read = match feed.format_of(path) {
        FileFormat::Excel => r.workbook(sink),
        FileFormat::Parquet => r.parquet(sink),
        format @ (FileFormat::Csv | FileFormat::Ndjson) => r.text(format, sink),
    };
    // A writer that opened the file while it was read broke the lease, and the read stopped
    // (whatever error that gave, even one that would reject the file): read it again later.
    if lease.broken() {
        return Err(IngestError::Changed);
    }
    read
}

/// One file being read under its lease: what every format's reader needs.
struct Reading<'a> {
    lease: &'a lease::Lease,
    path: &'a Path,
    name: String,
    before: &'a fs::Metadata,
    feed: &'a FeedConfig,
    schema: &'a TableSchema,
    ingested_at: i64,
}

impl Reading<'_> {
    /// The checks after any format's read: the `max_bad_rows` ratio, then the file as it was
    /// before the read (size, mtime, every byte hashed); the summary gets its hash, size and
    /// stamp.
    fn finish(
        &self,
        mut summary: FileSummary,
        hash: &source::HashHandle,
    ) -> Result<FileSummary, IngestError> {
        check_bad_ratio(&summary, self.feed, &self.name)?;
        let (hash_hex, bytes_read) = read_unchanged(self.path, self.before, hash)?;
        summary.hash = hash_hex;
        summary.size = bytes_read;
        summary.stamp = (self.before.len(), modified(self.before));
        Ok(summary)
    }

    /// Text (CSV or JSON lines): decompressed, transcoded and hashed as it streams.
    fn text(
        &self,
        format: FileFormat,
        sink: impl FnMut(RecordBatch) -> Result<(), SinkError>,
    ) -> Result<FileSummary, IngestError> {
        let (text, hash, info) = source::open_text(self.lease.reader()?, self.feed.encoding)?;
        let summary = if format == FileFormat::Ndjson {
            let summary = FileSummary {
                dialect: ndjson::dialect(&info, writer_check(self.lease)),
                ..FileSummary::default()
            };
            let reader = ndjson::JsonLines {
                name: self.name.clone(),
                feed: self.feed,
                schema: self.schema,
                ingested_at: self.ingested_at,
            };
            reader.run(text, summary, sink)?
        } else {
            read_csv(text, &info, self, self.feed, sink)?
        };
        self.finish(summary, &hash)
    }

    /// A workbook: its sheet as CSV text ([`excel::read_sheet`]) through [`read_csv`], with the
    /// feed's CSV dialect set to that text's; bad rows named by their sheet row.
    fn workbook(
        &self,
        sink: impl FnMut(RecordBatch) -> Result<(), SinkError>,
    ) -> Result<FileSummary, IngestError> {
        let name = &self.name;
        let max = excel::MAX_WORKBOOK_BYTES;
        let Some((bytes, hash)) = source::read_all_hashed(self.lease.reader()?, max)? else {
            return Err(IngestError::Reject(format!(
                "{name}: a workbook larger than {} MiB: save its sheet as CSV and drop that",
                max >> 20
            )));
        };
        let mut sheet = workbook_sheet(bytes, name, self.feed, self.schema)?;
        let info = source::SourceInfo {
            compression: source::Compression::None,
            encoding: encoding_rs::UTF_8,
            utf8_bom: false,
        };
        let csv = std::mem::take(&mut sheet.csv);
        let text: Box<dyn std::io::Read + Send> = Box::new(std::io::Cursor::new(csv));
        let mut summary =
            read_csv(text, &info, self, &sheet_feed(self.feed), sink).map_err(|e| match e {
                IngestError::Reject(m) => {
                    IngestError::Reject(format!("{m} (sheet '{}')", sheet.name))
                }
                other => other,
            })?;
        for b in &mut summary.bad {
            b.line = sheet.row_of(b.line);
            b.error = format!("sheet '{}': {}", sheet.name, b.error);
        }
        let d = &mut summary.dialect;
        d.format = Some("xlsx".into());
        d.sheet = Some(sheet.name.clone());
        d.encoding = String::new();
        d.compression = String::new();
        d.skipped_lines.title = sheet.title_rows;
        d.skipped_lines.footer = sheet.footer_rows;
        self.finish(summary, &hash)
    }

    /// A Parquet file: hashed in one pass under the lease, then read batch by batch
    /// ([`columnar::ParquetRead`]) from its own handle (the reader seeks: footer first).
    fn parquet(
        &self,
        sink: impl FnMut(RecordBatch) -> Result<(), SinkError>,
    ) -> Result<FileSummary, IngestError> {
        let hash = source::hash_stream(self.lease.reader()?)?;
        let file = fs::File::open(self.path)?;
        let summary = FileSummary {
            dialect: FileDialect {
                format: Some("parquet".into()),
                writer_check: writer_check(self.lease),
                ..FileDialect::default()
            },
            ..FileSummary::default()
        };
        let reader = columnar::ParquetRead {
            name: self.name.clone(),
            feed: self.feed,
            schema: self.schema,
            ingested_at: self.ingested_at,
        };
        let summary = reader.run(file, summary, sink)?;
        self.finish(summary, &hash)
    }
}

/// The sheet of a workbook's bytes the feed reads: `sheet`, or the first whose header fits the
/// table.
pub(crate) fn workbook_sheet(
    bytes: Vec<u8>,
    name: &str,
    feed: &FeedConfig,
    schema: &TableSchema,
) -> Result<excel::Sheet, IngestError> {
    let csv = &feed.csv;
    let fits = |names: &[String]| {
        schema.columns.is_empty()
            || header::HeaderRead {
                name,
                feed,
                schema,
                dialect: &split::Dialect::RFC4180,
            }
            .plan_for(names.to_vec(), 1)
            .is_ok()
    };
    let wanted = excel::Wanted {
        sheet: feed.sheet.as_deref(),
        fits: &fits,
        skip_rows: csv.skip_rows,
        skip_footer: csv.skip_footer,
        header: csv.header,
        decimal: feed.values.decimal_separator,
    };
    excel::read_sheet(bytes, name, &wanted)
}

/// The feed as it reads a workbook's sheet rendered as CSV text: `,` and `"`, UTF-8, no
/// comments; the rows before the header already left out (`skip_rows` is the layout's), total
/// rows too unless `skip_footer` says how many.
pub(crate) fn sheet_feed(feed: &FeedConfig) -> FeedConfig {
    let mut f = feed.clone();
    f.encoding = crate::config::Encoding::Fixed(encoding_rs::UTF_8);
    f.csv.delimiter = Some(b',');
    f.csv.delimiter_is_default = false;
    f.csv.skip_rows = 0;
    f.csv.quote = b'"';
    f.csv.escape = None;
    f.csv.comment = None;
    // Cells that store a date, a number or a boolean are rendered as ISO dates, numbers with
    // the feed's decimal separator (`excel::Wanted::decimal`) and true/false: read those
    // whatever text formats the feed sets for the cells that are typed as text.
    f.values.iso_too = true;
    for (list, word) in [
        (&mut f.values.true_values, "true"),
        (&mut f.values.false_values, "false"),
    ] {
        if !list.iter().any(|v| v.eq_ignore_ascii_case(word)) {
            list.push(word.to_string());
        }
    }
    f
}

/// The CSV text of a file through the batch loop, read as `feed` says (a workbook's sheet is
/// read under [`sheet_feed`], not the feed's own dialect).
fn read_csv(
    text: Box<dyn std::io::Read + Send>,
    info: &source::SourceInfo,
    r: &Reading,
    feed: &FeedConfig,
    sink: impl FnMut(RecordBatch) -> Result<(), SinkError>,
) -> Result<FileSummary, IngestError> {
    let (name, schema, lease) = (r.name.clone(), r.schema, r.lease);
    let ingested_at_micros = r.ingested_at;
    let mut win = text_window(text, &name, feed)?;
    let st = dialect::start_of(&mut win, &name, &feed.csv)?;
    let (plan, start, line) = column_plan(&mut win, &st, &name, feed, schema)?;
    let record = file_dialect(&st, info, &plan, lease, feed, schema);
    let mut p = batch::FileParse::new(
        batch::Setup {
            name: name.clone(),
            feed,
            schema,
            plan,
            dialect: st.dialect,
            ingested_at: ingested_at_micros,
        },
        FileSummary {
            dialect: record,
            ..FileSummary::default()
        },
        sink,
    );
    p.run(&mut win, start, line)?;
    let mut summary = p.finish();
    summary.dialect.skipped_lines.footer = win.footer_dropped();
    Ok(summary)
}

/// The window over a file's text with its head read in; a head that is not text rejects the
/// file.
fn text_window(
    text: Box<dyn std::io::Read + Send>,
    name: &str,
    feed: &FeedConfig,
) -> Result<Window, IngestError> {
    let mut win = Window::new(text, feed.csv.skip_footer);
    win.set_comment(feed.csv.comment);
    win.fill_to(window::HEAD_BYTES)?;
    if dialect::looks_binary(win.head(), &feed.csv) {
        return Err(IngestError::Reject(format!(
            "{name}: not CSV text (NUL bytes or control characters in the first {} KiB; \
             compression is recognised only for gzip and zstd)",
            window::HEAD_BYTES / 1024
        )));
    }
    Ok(win)
}

/// How the file's columns map onto the table's (by its header, or by position), and the
/// offset and physical line its rows start at.
fn column_plan(
    win: &mut Window,
    st: &dialect::Start,
    name: &str,
    feed: &FeedConfig,
    schema: &TableSchema,
) -> Result<(header::ColumnPlan, usize, u64), IngestError> {
    if !feed.csv.header {
        return Ok((header::ColumnPlan::positional(schema), st.offset, st.line));
    }
    let found = header::HeaderRead {
        name,
        feed,
        schema,
        dialect: &st.dialect,
    };
    found.read(win, st.offset, st.line)
}

/// How the file was read, as its summary records it.
fn file_dialect(
    st: &dialect::Start,
    info: &source::SourceInfo,
    plan: &header::ColumnPlan,
    lease: &lease::Lease,
    feed: &FeedConfig,
    schema: &TableSchema,
) -> FileDialect {
    let d = &st.dialect;
    FileDialect {
        encoding: info.encoding_label().to_string(),
        compression: info.compression.to_string(),
        delimiter: dialect::printable(d.delimiter),
        quote: dialect::printable(d.quote),
        escape: d.escape.map(dialect::printable),
        header: feed.csv.header,
        skipped_lines: SkippedLines {
            sep: u64::from(st.sep_line),
            title: st.title_lines,
            footer: 0,
        },
        locale: feed.locale.clone(),
        columns: plan.read_as(schema),
        missing: plan.missing(schema),
        writer_check: writer_check(lease),
        ..FileDialect::default()
    }
}

/// How the file was known complete.
fn writer_check(lease: &lease::Lease) -> WriterCheck {
    match lease.check() {
        lease::Check::Held => WriterCheck::Lease,
        lease::Check::Unavailable => WriterCheck::Settle,
    }
}

/// `max_bad_rows` as a ratio: a file with more bad rows than that is rejected whole.
fn check_bad_ratio(
    summary: &FileSummary,
    feed: &FeedConfig,
    name: &str,
) -> Result<(), IngestError> {
    if let MaxBadRows::Ratio(r) = feed.max_bad_rows {
        let bad = summary.bad.len() as f64;
        let total = bad + summary.rows as f64;
        if total > 0.0 && bad / total > r {
            return Err(IngestError::Reject(format!(
                "{name}: {} of {} rows are bad, more than max_bad_rows ({}%); first: {}",
                summary.bad.len(),
                total,
                r * 100.0,
                summary.bad[0].describe()
            )));
        }
    }
    Ok(())
}

/// The hash and the number of bytes read, once the file is known to be as it was before the
/// read: same size and mtime, every byte read.
fn read_unchanged(
    path: &Path,
    before: &fs::Metadata,
    hash: &source::HashHandle,
) -> Result<(String, u64), IngestError> {
    // One still writing without a lease to tell (or a file replaced under us) shows as a changed
    // size or mtime.
    let after = stat(path)?;
    let (hash_hex, bytes_read) = hash.finish();
    if after.len() != before.len()
        || modified(&after) != modified(before)
        || bytes_read != before.len()
    {
        return Err(IngestError::Changed);
    }
    Ok((hash_hex, bytes_read))
}

/// The first record of a text as `feed` reads it (after an Excel `sep=` line and title
/// lines): its raw bytes (UTF-8), and the text's dialect. For reading rows of a file again with
/// its header (`requeue`).
pub(crate) fn header_record(
    text: Box<dyn std::io::Read + Send>,
    name: &str,
    feed: &FeedConfig,
) -> Result<(Vec<u8>, split::Dialect), IngestError> {
    let mut win = Window::new(text, 0);
    win.fill_to(window::HEAD_BYTES)?;
    let st = dialect::start_of(&mut win, name, &feed.csv)?;
    loop {
        let s = split::Splitter::new(st.dialect)
            .at_most(1)
            .at_eof(win.eof)
            .max_line_bytes(feed.csv.max_line_bytes)
            .split(&win.buf, st.offset, st.line);
        if let Some(r) = s.records.first() {
            return Ok((win.buf[r.start..r.end].to_vec(), st.dialect));
        }
        if win.eof || win.buf.len() > feed.csv.max_line_bytes {
            return Err(IngestError::Reject(format!("{name}: no header line")));
        }
        win.fill()?;
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

/// Opens a file for reading if no other process holds it open for writing (see `lease`).
fn open_leased(path: &Path) -> Result<lease::Lease, IngestError> {
    match lease::open(path) {
        Ok(l) => Ok(l),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(IngestError::Gone),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Err(IngestError::Busy),
        Err(e) => Err(e.into()),
    }
}
