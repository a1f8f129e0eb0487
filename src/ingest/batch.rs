//! The batch loop of one file: a plain stretch (no quotes, see [`super::plain`]) is split into
//! text columns directly; arrow-csv splits the rest; a stretch it refuses is re-read with csv-core ([`super::split`]) to set the bad records apart; each text batch is
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
use super::plain::{self, Plain};
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
    /// Rows told by their index in the batch, their text made only for the bad ones (a
    /// columnar file's rows have no text until one is needed).
    Indexed(&'a dyn Fn(usize) -> (u64, String)),
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
    /// The file's columns as text, as the decoders give them.
    text_schema: SchemaRef,
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
            text_schema: text_schema_of(&setup.plan),
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

    /// Replaces the column plan: a JSON lines file names its columns as they appear.
    pub(crate) fn set_plan(&mut self, plan: ColumnPlan) {
        self.text_schema = text_schema_of(&plan);
        self.plan = plan;
    }

    /// The file's columns, as the plan reads them.
    pub(crate) fn file_columns(&self) -> &[String] {
        &self.plan.file_columns
    }

    /// The table columns the file's columns are read as, and those it lacks (its record).
    pub(crate) fn read_as(&self) -> (Vec<String>, Vec<String>) {
        (
            self.plan.read_as(self.schema),
            self.plan.missing(self.schema),
        )
    }

    /// Converts a text batch whose rows are located by `row` (index in the batch → locator
    /// and text, asked only for bad rows) and hands its good rows to the sink.
    pub(crate) fn process_indexed(
        &mut self,
        text: &RecordBatch,
        row: &dyn Fn(usize) -> (u64, String),
    ) -> Result<(), IngestError> {
        self.process(text, Rows::Indexed(row))
    }

    /// A record another format's reader could not read at all, under the feed's policy.
    pub(crate) fn bad_record(&mut self, b: BadRow) -> Result<(), IngestError> {
        self.bad_row(b)
    }

    /// What the loop found (rows, bad rows, warned rows).
    pub(crate) fn finish(self) -> FileSummary {
        self.summary
    }

    /// A decoder for the records from `from`. Its batch size is also what it allocates for at
    /// once (offsets and text for that many rows of the file's columns, zeroed): once the whole
    /// file is in the window, no more rows than its lines are asked for — 100 rows, not 8,192,
    /// for a small file (that allocation was a fifth of a worker's time in a burst of them).
    fn decoder(&self, win: &Window, from: usize) -> Decoder {
        // Every record but the last ends at a line end ("\n", "\r\n" or a lone "\r").
        let rows_left = if win.eof {
            memchr::memchr2_iter(b'\n', b'\r', &win.buf[from.min(win.buf.len())..]).count() + 1
        } else {
            usize::MAX
        };
        let mut b = ReaderBuilder::new(self.text_schema.clone())
            .with_header(false)
            .with_delimiter(self.dialect.delimiter)
            .with_quote(self.dialect.quote)
            .with_batch_size(self.feed.csv.batch_rows.min(rows_left));
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
        let mut decoder = self.decoder(win, start);
        let mut batch_start = start;
        let mut batch_line = line;
        let mut pos = start;
        loop {
            // At a batch start arrow-csv's decoder holds nothing: a plain stretch can go around it.
            if pos == batch_start {
                let plain = self.plain_batch(win, &mut batch_start, batch_line)?;
                pos = batch_start;
                if let Some((end, lines)) = plain {
                    batch_start = end;
                    batch_line += lines;
                    pos = end;
                    if win.eof && pos >= win.buf.len() {
                        return Ok(());
                    }
                    continue;
                }
            }
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
                    decoder = self.decoder(win, pos);
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
                        let (end_line, reread) =
                            self.flush_batch(win, &mut decoder, batch_start..pos, batch_line)?;
                        batch_line = end_line;
                        batch_start = pos;
                        if at_eof {
                            return Ok(());
                        }
                        if reread {
                            decoder = self.decoder(win, pos);
                        }
                    }
                }
                Err(_) => {
                    // A record arrow-csv refuses (field count): re-read this batch's stretch.
                    let (end, end_line) = self.slow_path(win, batch_start, batch_line, false)?;
                    batch_start = end;
                    batch_line = end_line;
                    pos = end;
                    decoder = self.decoder(win, pos);
                    if win.eof && pos >= win.buf.len() {
                        return Ok(());
                    }
                }
            }
        }
    }

    /// A batch arrow-csv has finished (`range` of the window, from physical line `line`): its
    /// text batch converted and handed on, or — invalid UTF-8, or quoting our rules read
    /// otherwise than csv-core (see `quoting`) — its stretch re-read record by record. Returns
    /// the line after it, and whether it was re-read (the decoder must then be built anew).
    fn flush_batch(
        &mut self,
        win: &mut Window,
        decoder: &mut Decoder,
        range: std::ops::Range<usize>,
        line: u64,
    ) -> Result<(u64, bool), IngestError> {
        let flushed = decoder.flush();
        let plain =
            flushed.is_ok() && !quoting::needs_attention(&win.buf[range.clone()], &self.dialect);
        match flushed {
            Ok(Some(text)) if plain => {
                let rows = Rows::Range {
                    bytes: &win.buf[range.clone()],
                    line,
                };
                self.process(&text, rows)?;
            }
            Ok(None) => {}
            Ok(Some(_)) | Err(_) => {
                let (end, end_line) = self.slow_path_range(win, range.clone(), line)?;
                debug_assert_eq!(end, range.end);
                return Ok((end_line, true));
            }
        }
        Ok((line + split::count_newlines(&win.buf[range]) as u64, false))
    }

    /// The next batch from `*start` if its stretch is plain ([`plain`]): read in, converted and
    /// handed on; returns where it ends and its line count. None: the general path reads it.
    /// `*start` moves when the window drops the bytes before it.
    fn plain_batch(
        &mut self,
        win: &mut Window,
        start: &mut usize,
        line: u64,
    ) -> Result<Option<(usize, u64)>, IngestError> {
        // A batch of lines longer than this is left to the general path (and its guards).
        const MOST: usize = 32 << 20;
        let rows = self.feed.csv.batch_rows;
        while !win.eof && !plain::has_lines(&win.buf, *start, rows) {
            if win.buf.len() - *start > MOST {
                return Ok(None);
            }
            if *start > 0 && *start >= win.buf.len() / 2 {
                *start -= win.compact(*start);
            }
            win.fill()?;
        }
        match plain::split(
            &win.buf,
            *start,
            rows,
            &self.dialect,
            &self.text_schema,
            win.eof,
        ) {
            Plain::Batch { text, end, lines } => {
                let bytes = &win.buf[*start..end];
                self.process(&text, Rows::Range { bytes, line })?;
                Ok(Some((end, lines)))
            }
            Plain::No => Ok(None),
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
        // Struct members the table lacks, kept for `_rescued_data`: not failures.
        let (mut rescued, mut errors): (Vec<CellError>, Vec<CellError>) =
            errors.into_iter().partition(|e| e.rescued.is_some());
        rescued.sort_by_key(|e| e.row);
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
            columns.push(self.rescued_column(text, &rescued));
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

    /// The file's unknown columns of each row, and the struct members the table lacks (under
    /// their path, `customer.tier`), as a JSON object (null when all are empty).
    fn rescued_column(&self, text: &RecordBatch, members: &[CellError]) -> ArrayRef {
        let n = text.num_rows();
        let mut b = StringBuilder::new();
        let mut members = members.iter().peekable();
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
            while let Some(m) = members.next_if(|m| m.row == row) {
                if let Some(v) = &m.rescued {
                    obj.insert(m.column.clone(), serde_json::Value::String(v.clone()));
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

/// The file's columns as text, as the decoders give them.
fn text_schema_of(plan: &ColumnPlan) -> SchemaRef {
    Arc::new(Schema::new(
        plan.file_columns
            .iter()
            .map(|n| Field::new(n, DataType::Utf8, true))
            .collect::<Vec<_>>(),
    ))
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
        Rows::Indexed(f) => wanted.iter().map(|&r| f(r)).collect(),
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

/// The batch loop's decisions, on text fed straight to it (no file, no lease): which rows reach
/// the sink and in which batches, which are set apart as bad with which line and reason, and
/// when a bad row ends the file instead.
#[cfg(test)]
mod tests {
    use std::path::Path;

    use deltalake::arrow::array::{Date32Array, Int64Array};

    use super::*;
    use crate::config::Config;
    use crate::ingest::{dialect, header, window};

    /// A feed of `id int64, name string`, with `extra` in its block and `csv` in `[feed.csv]`.
    fn feed(extra: &str, csv: &str) -> FeedConfig {
        feed_of(
            "columns = [{name = \"id\", type = \"int64\"}, {name = \"name\", type = \"string\"}]",
            extra,
            csv,
        )
    }

    fn feed_of(columns: &str, extra: &str, csv: &str) -> FeedConfig {
        let toml = format!("[[feed]]\nname = \"f\"\n{columns}\n{extra}\n[feed.csv]\n{csv}\n");
        let cfg = Config::from_toml(&toml, Path::new("/x"), None).expect("config");
        cfg.feeds[0].clone()
    }

    /// What one run of the loop decided.
    struct Parsed {
        batches: Vec<RecordBatch>,
        result: Result<FileSummary, IngestError>,
    }

    impl Parsed {
        fn summary(&self) -> &FileSummary {
            self.result.as_ref().expect("the file is loaded")
        }

        fn error(&self) -> String {
            match &self.result {
                Ok(_) => panic!("the file was loaded"),
                Err(e) => e.to_string(),
            }
        }

        /// (line, raw, column, error) of each bad row.
        fn bad(&self) -> Vec<(u64, String, Option<String>, String)> {
            self.summary()
                .bad
                .iter()
                .map(|b| (b.line, b.raw.clone(), b.column.clone(), b.error.clone()))
                .collect()
        }

        fn ids(&self) -> Vec<i64> {
            self.batches
                .iter()
                .flat_map(|b| {
                    let ids = b
                        .column_by_name("id")
                        .and_then(|c| c.as_any().downcast_ref::<Int64Array>())
                        .expect("id column");
                    ids.iter().map(|v| v.expect("an id")).collect::<Vec<_>>()
                })
                .collect()
        }

        /// The displayed values of a text column, row by row, None for null.
        fn text(&self, column: &str) -> Vec<Option<String>> {
            self.batches
                .iter()
                .flat_map(|b| {
                    let a = b
                        .column_by_name(column)
                        .and_then(|c| c.as_any().downcast_ref::<StringArray>())
                        .unwrap_or_else(|| panic!("text column {column}"));
                    a.iter().map(|v| v.map(str::to_string)).collect::<Vec<_>>()
                })
                .collect()
        }
    }

    /// Runs the loop over `text` the way `parse_file` does once the file is open: dialect,
    /// header, then the batch loop, every good batch collected.
    fn parse(feed: &FeedConfig, text: &[u8]) -> Parsed {
        let mut batches = Vec::new();
        let result = run_loop(feed, text.to_vec(), |b| {
            batches.push(b);
            Ok(())
        });
        Parsed { batches, result }
    }

    fn run_loop(
        feed: &FeedConfig,
        text: Vec<u8>,
        sink: impl FnMut(RecordBatch) -> Result<(), SinkError>,
    ) -> Result<FileSummary, IngestError> {
        let schema = &feed.schema;
        let mut win = Window::new(Box::new(std::io::Cursor::new(text)), feed.csv.skip_footer);
        win.set_comment(feed.csv.comment);
        win.fill_to(window::HEAD_BYTES)?;
        let st = dialect::start_of(&mut win, "t.csv", &feed.csv)?;
        let found = header::HeaderRead {
            name: "t.csv",
            feed,
            schema,
            dialect: &st.dialect,
        };
        let (plan, start, line) = found.read(&mut win, st.offset, st.line)?;
        let setup = Setup {
            name: "t.csv".into(),
            feed,
            schema,
            plan,
            dialect: st.dialect,
            ingested_at: 7,
        };
        let mut p = FileParse::new(setup, FileSummary::default(), sink);
        p.run(&mut win, start, line)?;
        Ok(p.finish())
    }

    /// `n` rows `i,name<i>` under the header, with `replace` giving other lines for some rows.
    fn rows(n: usize, replace: impl Fn(usize) -> Option<String>) -> Vec<u8> {
        let mut s = String::from("id,name\n");
        for i in 1..=n {
            s.push_str(&replace(i).unwrap_or_else(|| format!("{i},name{i}")));
            s.push('\n');
        }
        s.into_bytes()
    }

    #[test]
    fn good_rows_reach_the_sink_in_batches_of_batch_rows_with_their_lineage() {
        let f = feed("", "batch_rows = 2");
        let p = parse(&f, &rows(5, |_| None));
        let sizes: Vec<usize> = p.batches.iter().map(|b| b.num_rows()).collect();
        assert_eq!(sizes, [2, 2, 1]);
        assert_eq!(p.ids(), [1, 2, 3, 4, 5]);
        assert_eq!(p.summary().rows, 5);
        assert!(p.summary().bad.is_empty());
        assert!(p
            .text("_source_file")
            .iter()
            .all(|s| s.as_deref() == Some("t.csv")));
        let at = p.batches[0]
            .column_by_name("_ingested_at")
            .and_then(|c| c.as_any().downcast_ref::<TimestampMicrosecondArray>())
            .expect("_ingested_at");
        assert_eq!(at.value(0), 7);
        assert_eq!(
            p.batches[0].schema(),
            f.schema.arrow(),
            "the table's schema"
        );
    }

    /// arrow-csv refuses a batch with a record of the wrong field count: that batch is re-read
    /// record by record, the record set apart with its physical line, the rest loaded in order.
    #[test]
    fn a_record_with_the_wrong_field_count_costs_only_itself_in_any_batch() {
        for batch_rows in [1, 3, 8192] {
            let f = feed("", &format!("batch_rows = {batch_rows}"));
            let text = rows(10, |i| match i {
                4 => Some("4,x,extra".into()),
                8 => Some("8".into()),
                _ => None,
            });
            let p = parse(&f, &text);
            assert_eq!(
                p.ids(),
                [1, 2, 3, 5, 6, 7, 9, 10],
                "batch_rows {batch_rows}"
            );
            let bad = p.bad();
            assert_eq!(bad.len(), 2, "{bad:?}");
            assert_eq!(
                (bad[0].0, bad[0].1.as_str(), &bad[0].2),
                (5, "4,x,extra", &None)
            );
            assert_eq!((bad[1].0, bad[1].1.as_str()), (9, "8"));
            assert!(bad.iter().all(|b| b.3.contains("field")), "{bad:?}");
            assert_eq!(p.summary().rows, 8);
        }
    }

    /// A value that does not convert costs its row: the row is found again in the batch's
    /// stretch of text to name its physical line (a quoted field holding a line end before it
    /// makes that differ from the record count) and the column.
    #[test]
    fn a_value_that_does_not_convert_is_set_apart_with_its_line_and_column() {
        let f = feed("", "batch_rows = 2");
        let text = b"id,name\n1,\"two\nlines\"\n2,b\nx,c\n4,d\n";
        let p = parse(&f, text);
        assert_eq!(p.ids(), [1, 2, 4]);
        assert_eq!(p.text("name")[0].as_deref(), Some("two\nlines"));
        let bad = p.bad();
        assert_eq!(bad.len(), 1);
        assert_eq!(
            (bad[0].0, bad[0].1.as_str(), bad[0].2.as_deref()),
            (5, "x,c", Some("id"))
        );
        assert!(bad[0].3.contains("'x'"), "{}", bad[0].3);
    }

    #[test]
    fn every_failing_value_of_a_row_is_named_in_one_bad_row() {
        let f = feed_of(
            "columns = [{name = \"id\", type = \"int64\"}, {name = \"n\", type = \"int64\"}, {name = \"name\", type = \"string\"}]",
            "",
            "",
        );
        let p = parse(&f, b"id,n,name\nx,y,z\n1,2,ok\n");
        assert_eq!(p.ids(), [1]);
        let bad = p.bad();
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].2.as_deref(), Some("id"), "the first failing column");
        assert!(
            bad[0].3.starts_with("id: ") && bad[0].3.contains("; n: "),
            "{}",
            bad[0].3
        );
    }

    /// Quotes send the stretch through the quoting rules: whitespace after a closing quote is
    /// dropped, other text after it makes a bad row (csv-core would have glued it on).
    #[test]
    fn a_stretch_with_quotes_is_checked_by_the_quoting_rules() {
        let f = feed("", "");
        let p = parse(&f, b"id,name\n1,\"a\"  \n2,\"b\"c\n3,\"d\"\"e\"\n");
        assert_eq!(p.ids(), [1, 3]);
        assert_eq!(
            p.text("name"),
            [Some("a".to_string()), Some("d\"e".to_string())]
        );
        let bad = p.bad();
        assert_eq!(bad.len(), 1);
        assert_eq!((bad[0].0, bad[0].1.as_str()), (3, "2,\"b\"c"));
    }

    /// Bytes that are not UTF-8 in a stretch arrow-csv took: that stretch is re-read record by
    /// record and only the record holding them is bad.
    #[test]
    fn a_record_that_is_not_text_is_set_apart_alone() {
        let f = feed("", "batch_rows = 4");
        let p = parse(&f, b"id,name\n1,a\n2,\xff\xfe\n3,c\n4,d\n5,e\n");
        assert_eq!(p.ids(), [1, 3, 4, 5]);
        let bad = p.bad();
        assert_eq!(bad.len(), 1, "{bad:?}");
        assert_eq!(bad[0].0, 3);
    }

    /// An empty field is null on both paths (arrow-csv's rule, kept by the slow path), even
    /// where the feed's null words do not include "".
    #[test]
    fn an_empty_field_is_null_on_the_fast_and_the_slow_path() {
        let f = feed("null_values = [\"NULL\"]", "");
        let fast = parse(&f, b"id,name\n1,\n2,b\n");
        assert_eq!(fast.text("name"), [None, Some("b".to_string())]);
        let slow = parse(&f, b"id,name\n1,\n2,b,extra\n3,c\n");
        assert_eq!(slow.text("name"), [None, Some("c".to_string())]);
    }

    #[test]
    fn on_bad_row_reject_file_and_fail_end_the_file_at_the_first_bad_row() {
        let text = rows(3, |i| (i == 2).then(|| "x,b".to_string()));
        let p = parse(&feed("on_bad_row = \"reject_file\"", ""), &text);
        assert!(matches!(p.result, Err(IngestError::Reject(_))));
        assert!(
            p.error().starts_with("t.csv: line 3, column 'id'"),
            "{}",
            p.error()
        );

        let p = parse(&feed("on_bad_row = \"fail\"", ""), &text);
        assert!(matches!(p.result, Err(IngestError::Fail(_))));
        assert!(
            p.error().ends_with("(on_bad_row = \"fail\")"),
            "{}",
            p.error()
        );
    }

    #[test]
    fn more_bad_rows_than_a_max_bad_rows_count_reject_the_file_naming_the_first() {
        let bad_at = |n: usize| move |i: usize| (i <= n).then(|| format!("x{i},b"));
        let f = feed("max_bad_rows = 2", "");
        let p = parse(&f, &rows(5, bad_at(2)));
        assert_eq!(p.summary().bad.len(), 2, "at the limit: loaded");
        assert_eq!(p.ids(), [3, 4, 5]);

        let p = parse(&f, &rows(5, bad_at(3)));
        assert!(matches!(p.result, Err(IngestError::Reject(_))));
        let e = p.error();
        assert!(
            e.contains("more than max_bad_rows (2) bad rows; first: line 2"),
            "{e}"
        );
    }

    #[test]
    fn a_failing_expectation_with_action_fail_rejects_the_file_naming_the_line() {
        let f = feed(
            "[[feed.expect]]\ncolumn = \"id\"\nmax = 10\naction = \"fail\"",
            "batch_rows = 2",
        );
        let p = parse(&f, &rows(12, |_| None));
        assert!(matches!(p.result, Err(IngestError::Reject(_))));
        let e = p.error();
        assert!(e.starts_with("t.csv: line 12, column 'id'"), "{e}");
        assert!(e.ends_with("(expectation with action = \"fail\")"), "{e}");
    }

    /// `partition_by = "date(col)"`: the UTC day of each timestamp, before 1970 too.
    #[test]
    fn a_derived_date_partition_is_the_utc_day_of_its_timestamp() {
        let f = feed_of(
            "columns = [{name = \"id\", type = \"int64\"}, {name = \"at\", type = \"timestamp\"}]",
            "partition_by = \"date(at)\"",
            "",
        );
        let p = parse(
            &f,
            b"id,at\n1,1970-01-02T00:00:00Z\n2,1969-12-31T23:00:00Z\n3,2024-03-01T23:59:59-03:00\n",
        );
        let days = p.batches[0]
            .column_by_name("at_date")
            .and_then(|c| c.as_any().downcast_ref::<Date32Array>())
            .expect("at_date");
        let days: Vec<i32> = days.iter().map(|d| d.expect("a day")).collect();
        // 2024-03-02 (UTC) is day 19,784.
        assert_eq!(days, [1, -1, 19_784]);
    }

    /// `on_new_column = "rescue"`: the file's unknown columns of each row as a JSON object,
    /// null when they are all empty; a column without a name is named by its position.
    #[test]
    fn unknown_columns_are_rescued_as_json_per_row() {
        let f = feed("on_new_column = \"rescue\"", "");
        let p = parse(&f, b"id,name,extra,\n1,a,x,\n2,b,,y\n3,c,,\n");
        assert_eq!(p.ids(), [1, 2, 3]);
        assert_eq!(
            p.text("_rescued_data"),
            [
                Some(r#"{"extra":"x"}"#.to_string()),
                Some(r#"{"column_4":"y"}"#.to_string()),
                None
            ]
        );
    }

    #[test]
    fn a_sink_that_refuses_stops_the_loop_with_its_reason() {
        let mut taken = 0;
        let r = run_loop(&feed("", "batch_rows = 1"), rows(3, |_| None), |_| {
            taken += 1;
            match taken {
                1 => Ok(()),
                _ => Err(SinkError::Cancelled),
            }
        });
        assert!(matches!(r, Err(IngestError::Cancelled)), "{r:?}");
        assert_eq!(taken, 2, "no batch after the refusal");
    }
}
