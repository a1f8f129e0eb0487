//! The batch loop of one file: arrow-csv splits the text on the fast path; a stretch it refuses
//! is re-read with csv-core ([`super::split`]) to set the bad records apart; each text batch is
//! converted to the table's types ([`super::value`]), checked ([`super::expect`]), lineage
//! added, and its good rows handed to the sink.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_csv::reader::Decoder;
use arrow_csv::ReaderBuilder;
use deltalake::arrow::array::{
    Array, ArrayRef, BooleanArray, Date32Array, RecordBatch, StringArray, StringBuilder,
    TimestampMicrosecondArray, TimestampMicrosecondBuilder,
};
use deltalake::arrow::compute::filter_record_batch;
use deltalake::arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use crate::config::{FeedConfig, MaxBadRows, OnBadRow};
use crate::job::BadRow;
use crate::schema::TableSchema;

use super::expect;
use super::header::ColumnPlan;
use super::quoting::{self, Lint};
use super::split::{self, Dialect, RawRecord, Splitter};
use super::value::{self, CellError};
use super::window::Window;
use super::{internal, FileSummary, IngestError, SinkError};

/// Where the rows of a text batch came from, to name bad ones.
enum Rows<'a> {
    /// Records already split: line and raw text per row.
    Known(Vec<(u64, String)>),
    /// A stretch of the window holding exactly the batch's records, starting at `line`.
    Range { bytes: &'a [u8], line: u64 },
}

/// What a file's batch loop works with, decided before it starts.
pub(crate) struct Setup<'a> {
    pub(crate) name: String,
    pub(crate) feed: &'a FeedConfig,
    pub(crate) schema: &'a TableSchema,
    pub(crate) plan: ColumnPlan,
    pub(crate) dialect: Dialect,
    /// The `_ingested_at` of every row.
    pub(crate) ingested_at: i64,
}

/// One file's batch loop: its setup, what it found so far, and where good rows go.
pub(crate) struct FileParse<'a, S> {
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

impl<'a, S: FnMut(RecordBatch) -> Result<(), SinkError>> FileParse<'a, S> {
    pub(crate) fn new(setup: Setup<'a>, summary: FileSummary, sink: S) -> Self {
        FileParse {
            out_schema: setup.schema.arrow(),
            name: setup.name,
            feed: setup.feed,
            schema: setup.schema,
            plan: setup.plan,
            dialect: setup.dialect,
            ingested_at: setup.ingested_at,
            summary,
            sink,
        }
    }

    /// What the loop found (rows, bad rows, warned rows).
    pub(crate) fn finish(self) -> FileSummary {
        self.summary
    }

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
    pub(crate) fn run(
        &mut self,
        win: &mut Window,
        start: usize,
        line: u64,
    ) -> Result<(), IngestError> {
        let mut decoder = self.decoder();
        let mut batch_start = start;
        let mut batch_line = line;
        let mut pos = start;
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
                    let end = self.slow_path(win, batch_start, batch_line, true)?;
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
                        let flushed = decoder.flush();
                        // csv-core reads text after a closing quote into the field; our rules
                        // differ (see `quoting`): such a stretch is read record by record.
                        let plain = flushed.is_ok()
                            && !quoting::needs_attention(&win.buf[range.clone()], &self.dialect);
                        match flushed {
                            Ok(Some(text)) if plain => {
                                let rows = Rows::Range {
                                    bytes: &win.buf[range.clone()],
                                    line: batch_line,
                                };
                                self.process(&text, rows)?;
                            }
                            Ok(None) => {}
                            // Invalid UTF-8 in a complete stretch of records, or quoting to
                            // check record by record.
                            Ok(Some(_)) | Err(_) => {
                                decoder = self.decoder();
                                let (end, end_line) =
                                    self.slow_path_range(win, range.clone(), batch_line)?;
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
                    let (end, end_line) = self.slow_path(win, batch_start, batch_line, false)?;
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
        forced: bool,
    ) -> Result<(usize, u64), IngestError> {
        loop {
            let s = Splitter::new(self.dialect)
                .expecting(Some(self.plan.file_columns.len()))
                .at_most(self.feed.csv.batch_rows)
                .at_eof(win.eof)
                .max_line_bytes(self.feed.csv.max_line_bytes)
                .split(&win.buf, from, line);
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
    ) -> Result<(usize, u64), IngestError> {
        let s = Splitter::new(self.dialect)
            .expecting(Some(self.plan.file_columns.len()))
            .max_line_bytes(self.feed.csv.max_line_bytes)
            .split(&win.buf[..range.end], range.start, line);
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
        for mut r in records {
            let error = match &r.error {
                Some(e) => Some(e.clone()),
                None => match quoting::lint_record(&buf[r.start..r.end], &self.dialect) {
                    Lint::Clean => None,
                    Lint::Bad(why) => Some(why),
                    Lint::Trim(fields) => {
                        for (i, n) in fields {
                            if let Some(f) = r.fields.get_mut(i) {
                                let keep = f.len().saturating_sub(n);
                                if f.is_char_boundary(keep) {
                                    f.truncate(keep);
                                }
                            }
                        }
                        None
                    }
                },
            };
            if let Some(error) = error {
                self.bad_row(BadRow {
                    line: r.line,
                    raw: r.raw(buf),
                    column: None,
                    error,
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
        let text = RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).map_err(internal)?;
        self.process(&text, Rows::Known(known))
    }

    /// A bad row, under the feed's policy.
    fn bad_row(&mut self, b: BadRow) -> Result<(), IngestError> {
        match self.feed.on_bad_row {
            OnBadRow::RejectFile => {
                return Err(IngestError::Reject(format!(
                    "{}: {}",
                    self.name,
                    b.describe()
                )))
            }
            OnBadRow::Fail => {
                return Err(IngestError::Fail(format!(
                    "{}: {} (on_bad_row = \"fail\")",
                    self.name,
                    b.describe()
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
                        .map(BadRow::describe)
                        .unwrap_or_else(|| b.describe())
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
                    None => return Err(IngestError::Internal("text column expected".into())),
                },
                None => deltalake::arrow::array::new_null_array(&spec.ty.arrow(), n),
            };
            columns.push(col);
        }
        let mut failed = vec![false; n];
        for e in &errors {
            failed[e.row] = true;
        }
        let checks = expect::Checks {
            list: &self.feed.expectations,
            schema: self.schema,
        };
        let (warned, fail) = checks.run(&columns, &mut failed, &mut errors);
        self.summary.warned += warned;
        if let Some(fail) = fail {
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
            (self.sink)(batch)?;
        }
        Ok(())
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

/// (line, raw text) of the given rows (sorted) of a batch.
fn locate(rows: &Rows<'_>, d: &Dialect, wanted: Vec<usize>) -> Vec<(u64, String)> {
    match rows {
        Rows::Known(v) => wanted
            .iter()
            .map(|&r| v.get(r).cloned().unwrap_or((0, String::new())))
            .collect(),
        Rows::Range { bytes, line } => {
            let s = Splitter::new(*d).split(bytes, 0, *line);
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
        .ok_or_else(|| IngestError::Internal(format!("{source} is not a timestamp column")))?;
    let days: Date32Array = ts.unary(|us| us.div_euclid(MICROS_PER_DAY) as i32);
    Ok(Arc::new(days))
}
