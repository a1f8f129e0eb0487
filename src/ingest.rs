//! Ingest stage: one CSV file → typed Arrow batches matching the feed's table schema, streamed in
//! batches of `csv.batch_rows` (a file larger than memory is never loaded whole), with the
//! content hash computed in the same pass.
//!
//! arrow-csv reads every column as text; the conversion to the table's types is ours, checked
//! value by value, so that an error names the line, the column and the value. Line numbers are
//! physical lines (found by a second, error-only pass with the `csv` crate), correct even when
//! quoted fields hold newlines.

use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use arrow_csv::ReaderBuilder;
use deltalake::arrow::array::{
    Array, ArrayRef, PrimitiveArray, PrimitiveBuilder, StringArray, StringBuilder,
    TimestampMicrosecondBuilder,
};
use deltalake::arrow::datatypes::{
    ArrowPrimitiveType, DataType, Decimal128Type, Field, Int64Type, Schema, SchemaRef,
    TimestampMicrosecondType,
};
use deltalake::arrow::record_batch::RecordBatch;

use crate::config::{CsvConfig, FeedConfig};
use crate::schema::{ColType, ColumnSpec, TableSchema};

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The file cannot be ingested as it is: it goes to `rejected/` with this message.
    #[error("{0}")]
    Reject(String),
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
}

/// What one pass over a file produced, besides the batches.
#[derive(Debug, Clone)]
pub struct FileSummary {
    pub hash: String,
    pub size: u64,
    pub rows: u64,
}

/// A value that does not convert to its column's type.
#[derive(Debug)]
struct ValueError {
    /// 0-based index of the data record in the file.
    record: u64,
    column: String,
    message: String,
}

/// Parses `path` for `feed`, handing each typed batch to `sink`.
pub fn parse_file(
    path: &Path,
    feed: &FeedConfig,
    ingested_at_micros: i64,
    mut sink: impl FnMut(RecordBatch) -> Result<(), String>,
) -> Result<FileSummary, IngestError> {
    let name = crate::job::file_name(path);
    let before = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(IngestError::Gone),
        Err(e) => return Err(e.into()),
    };
    if !before.file_type().is_file() {
        return Err(IngestError::Reject(format!("{name}: not a regular file")));
    }
    let csv = &feed.csv;
    let schema = &feed.schema;
    let plan = plan_columns(path, &name, csv, schema)?;
    let text_schema = Arc::new(Schema::new(
        plan.file_columns
            .iter()
            .map(|n| Field::new(n, DataType::Utf8, true))
            .collect::<Vec<_>>(),
    ));
    let out_schema = schema.arrow();

    let file = open(path)?;
    let mut hasher = blake3::Hasher::new();
    let mut bytes_read = 0u64;
    let mut reader = BufReader::with_capacity(
        256 * 1024,
        HashingReader {
            inner: file,
            hasher: &mut hasher,
            bytes: &mut bytes_read,
        },
    );
    if reader.fill_buf()?.starts_with(UTF8_BOM) {
        reader.consume(UTF8_BOM.len());
    }
    let mut builder = ReaderBuilder::new(text_schema)
        .with_header(csv.header)
        .with_delimiter(csv.delimiter)
        .with_quote(csv.quote)
        .with_batch_size(csv.batch_rows);
    if let Some(e) = csv.escape {
        builder = builder.with_escape(e);
    }
    let csv_reader = builder
        .build_buffered(reader)
        .map_err(|e| IngestError::Reject(format!("{name}: {e}")))?;

    let mut rows = 0u64;
    for batch in csv_reader {
        let batch = match batch {
            Ok(b) => b,
            Err(e) => {
                return Err(IngestError::Reject(diagnose(
                    path,
                    &name,
                    csv,
                    plan.file_columns.len(),
                    rows,
                    &e.to_string(),
                )))
            }
        };
        let typed = convert_batch(
            &batch,
            &plan,
            schema,
            &out_schema,
            &name,
            rows,
            ingested_at_micros,
        )
        .map_err(|v| {
            let line = line_of_record(path, csv, v.record)
                .map(|l| format!("line {l}"))
                .unwrap_or_else(|| format!("record {}", v.record + 1));
            IngestError::Reject(format!(
                "{name}: {line}, column '{}': {}",
                v.column, v.message
            ))
        })?;
        rows += typed.num_rows() as u64;
        if typed.num_rows() > 0 {
            sink(typed).map_err(IngestError::Sink)?;
        }
    }

    // A producer still writing (or a file replaced under us) shows as a changed size or mtime.
    let after = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(IngestError::Gone),
        Err(e) => return Err(e.into()),
    };
    if after.len() != before.len()
        || modified(&after) != modified(&before)
        || bytes_read != before.len()
    {
        return Err(IngestError::Changed);
    }
    Ok(FileSummary {
        hash: hasher.finalize().to_hex().to_string(),
        size: bytes_read,
        rows,
    })
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

struct HashingReader<'a, R> {
    inner: R,
    hasher: &'a mut blake3::Hasher,
    bytes: &'a mut u64,
}

impl<R: Read> Read for HashingReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        *self.bytes += n as u64;
        Ok(n)
    }
}

/// How the file's columns map onto the table's columns.
struct ColumnPlan {
    /// Column names as the file has them, in file order.
    file_columns: Vec<String>,
    /// For each table column: its index in the file, if the file has it.
    source: Vec<Option<usize>>,
}

fn csv_reader_builder(csv: &CsvConfig) -> csv::ReaderBuilder {
    let mut b = csv::ReaderBuilder::new();
    b.has_headers(false)
        .flexible(true)
        .delimiter(csv.delimiter)
        .quote(csv.quote);
    if let Some(e) = csv.escape {
        b.escape(Some(e)).double_quote(false);
    }
    b
}

/// Reads the header (if any) and matches it to the schema by name.
fn plan_columns(
    path: &Path,
    name: &str,
    csv: &CsvConfig,
    schema: &TableSchema,
) -> Result<ColumnPlan, IngestError> {
    if !csv.header {
        return Ok(ColumnPlan {
            file_columns: schema.columns.iter().map(|c| c.name.clone()).collect(),
            source: (0..schema.columns.len()).map(Some).collect(),
        });
    }
    let file = open(path)?;
    let mut rdr = csv_reader_builder(csv).from_reader(file);
    let mut rec = csv::ByteRecord::new();
    let got = rdr
        .read_byte_record(&mut rec)
        .map_err(|e| IngestError::Reject(format!("{name}: line 1 (header): {e}")))?;
    if !got || rec.iter().all(|f| f.is_empty()) {
        return Err(IngestError::Reject(format!(
            "{name}: empty file, no header line (expected columns: {})",
            column_list(schema)
        )));
    }
    let mut file_columns = Vec::with_capacity(rec.len());
    for (i, raw) in rec.iter().enumerate() {
        let raw = if i == 0 {
            raw.strip_prefix(UTF8_BOM).unwrap_or(raw)
        } else {
            raw
        };
        let s = std::str::from_utf8(raw).map_err(|_| {
            IngestError::Reject(format!(
                "{name}: line 1 (header), column {}: not valid UTF-8 (is this a CSV file?)",
                i + 1
            ))
        })?;
        file_columns.push(s.trim().to_string());
    }
    let mut source = vec![None; schema.columns.len()];
    let mut unknown = Vec::new();
    for (i, col) in file_columns.iter().enumerate() {
        match schema.position(col) {
            Some(t) if source[t].is_some() => {
                return Err(IngestError::Reject(format!(
                    "{name}: line 1 (header): column '{col}' appears twice"
                )))
            }
            Some(t) => source[t] = Some(i),
            None => unknown.push(col.clone()),
        }
    }
    let missing: Vec<&ColumnSpec> = schema
        .columns
        .iter()
        .zip(&source)
        .filter(|(c, s)| s.is_none() && !c.nullable)
        .map(|(c, _)| c)
        .collect();
    if !missing.is_empty() || !unknown.is_empty() {
        let mut msg = format!("{name}: line 1 (header) does not match the table:");
        if !missing.is_empty() {
            let names: Vec<&str> = missing.iter().map(|c| c.name.as_str()).collect();
            msg.push_str(&format!(
                "\n  missing required column(s): {}",
                names.join(", ")
            ));
        }
        if !unknown.is_empty() {
            let shown: Vec<String> = unknown.iter().take(20).map(|u| format!("'{u}'")).collect();
            msg.push_str(&format!(
                "\n  column(s) the table does not have: {}{}",
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
                .join(&(csv.delimiter as char).to_string())
        ));
        return Err(IngestError::Reject(msg));
    }
    Ok(ColumnPlan {
        file_columns,
        source,
    })
}

fn column_list(schema: &TableSchema) -> String {
    schema
        .columns
        .iter()
        .map(|c| c.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn convert_batch(
    batch: &RecordBatch,
    plan: &ColumnPlan,
    schema: &TableSchema,
    out_schema: &SchemaRef,
    source_file: &str,
    first_record: u64,
    ingested_at_micros: i64,
) -> Result<RecordBatch, ValueError> {
    let n = batch.num_rows();
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.columns.len() + 2);
    for (spec, src) in schema.columns.iter().zip(&plan.source) {
        let col = match src {
            Some(i) => {
                let text = batch
                    .column(*i)
                    .as_any()
                    .downcast_ref::<StringArray>()
                    .ok_or_else(|| ValueError {
                        record: first_record,
                        column: spec.name.clone(),
                        message: "internal: column was not read as text".into(),
                    })?;
                convert_column(text, spec, first_record)?
            }
            None => deltalake::arrow::array::new_null_array(&spec.ty.arrow(), n),
        };
        columns.push(col);
    }
    columns.push(Arc::new(StringArray::from(vec![source_file; n])));
    let mut ts = TimestampMicrosecondBuilder::with_capacity(n);
    ts.append_value_n(ingested_at_micros, n);
    columns.push(Arc::new(ts.finish().with_timezone("UTC")));
    RecordBatch::try_new(out_schema.clone(), columns).map_err(|e| ValueError {
        record: first_record,
        column: "?".into(),
        message: format!("internal: {e}"),
    })
}

/// Converts one text column. arrow-csv gives null exactly for empty fields.
fn convert_column(
    text: &StringArray,
    spec: &ColumnSpec,
    first_record: u64,
) -> Result<ArrayRef, ValueError> {
    let err = |i: usize, message: String| ValueError {
        record: first_record + i as u64,
        column: spec.name.clone(),
        message,
    };
    let n = text.len();
    match spec.ty {
        ColType::String => {
            if spec.nullable || text.null_count() == 0 {
                return Ok(Arc::new(text.clone()));
            }
            // An empty string in a NOT NULL string column is a value, not a missing one.
            let mut b = StringBuilder::with_capacity(n, text.value_data().len());
            for i in 0..n {
                b.append_value(if text.is_null(i) { "" } else { text.value(i) });
            }
            Ok(Arc::new(b.finish()))
        }
        ColType::Int64 => {
            let arr = convert_primitive::<Int64Type>(text, spec, first_record, |s| {
                parse_int(s).ok_or_else(|| format!("'{}' is not an integer", clip(s)))
            })?;
            Ok(Arc::new(arr))
        }
        ColType::Decimal { precision, scale } => {
            let arr = convert_primitive::<Decimal128Type>(text, spec, first_record, |s| {
                parse_decimal(s, precision, scale).map_err(|m| {
                    format!("'{}' is not a decimal({precision},{scale}): {m}", clip(s))
                })
            })?
            .with_precision_and_scale(precision, scale)
            .map_err(|e| err(0, format!("internal: {e}")))?;
            Ok(Arc::new(arr))
        }
        ColType::Timestamp => {
            let arr = convert_primitive::<TimestampMicrosecondType>(
                text,
                spec,
                first_record,
                |s| {
                    parse_timestamp(s).ok_or_else(|| {
                        format!(
                            "'{}' is not an ISO 8601 timestamp (e.g. 2024-03-01T14:05:00Z or 2024-03-01 14:05:00)",
                            clip(s)
                        )
                    })
                },
            )?;
            Ok(Arc::new(arr.with_timezone("UTC")))
        }
    }
}

/// Converts a text column with `parse`; empty fields are nulls, refused in a required column.
fn convert_primitive<T: ArrowPrimitiveType>(
    text: &StringArray,
    spec: &ColumnSpec,
    first_record: u64,
    parse: impl Fn(&str) -> Result<T::Native, String>,
) -> Result<PrimitiveArray<T>, ValueError> {
    let err = |i: usize, message: String| ValueError {
        record: first_record + i as u64,
        column: spec.name.clone(),
        message,
    };
    let mut b = PrimitiveBuilder::<T>::with_capacity(text.len());
    for i in 0..text.len() {
        match present(text, i) {
            None if spec.nullable => b.append_null(),
            None => return Err(err(i, "empty value in a required column".into())),
            Some(s) => b.append_value(parse(s).map_err(|m| err(i, m))?),
        }
    }
    Ok(b.finish())
}

/// The trimmed value, or None for an empty/blank field.
fn present(text: &StringArray, i: usize) -> Option<&str> {
    if text.is_null(i) {
        return None;
    }
    let s = text.value(i).trim();
    (!s.is_empty()).then_some(s)
}

/// Long values are cut in messages (an error file must stay readable).
fn clip(s: &str) -> String {
    const MAX: usize = 80;
    if s.chars().count() <= MAX {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(MAX).collect::<String>())
    }
}

fn parse_int(s: &str) -> Option<i64> {
    s.parse::<i64>().ok()
}

/// Exact decimal parsing (never through f64): `[+-]digits[.digits]`.
/// Extra fractional digits are accepted only when they are zeros.
pub fn parse_decimal(s: &str, precision: u8, scale: i8) -> Result<i128, String> {
    let scale = scale.max(0) as usize;
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let (int_part, frac_part) = match body.split_once('.') {
        Some((i, f)) => (i, f),
        None => (body, ""),
    };
    if (int_part.is_empty() && frac_part.is_empty())
        || !int_part.bytes().all(|b| b.is_ascii_digit())
        || !frac_part.bytes().all(|b| b.is_ascii_digit())
    {
        return Err("not a number (expected digits with an optional '.' fraction)".into());
    }
    let (kept, dropped) = frac_part.split_at(frac_part.len().min(scale));
    if dropped.bytes().any(|b| b != b'0') {
        return Err(format!("more than {scale} decimal places"));
    }
    let int_digits = int_part.trim_start_matches('0');
    let max_int_digits = (precision as usize).saturating_sub(scale);
    if int_digits.len() > max_int_digits {
        return Err(format!(
            "too large (at most {max_int_digits} digits before the decimal point)"
        ));
    }
    let mut v: i128 = 0;
    for b in int_digits.bytes().chain(kept.bytes()) {
        v = v * 10 + i128::from(b - b'0');
    }
    for _ in kept.len()..scale {
        v *= 10;
    }
    Ok(if neg { -v } else { v })
}

/// ISO 8601 date or date-time; without a zone the value is taken as UTC.
pub fn parse_timestamp(s: &str) -> Option<i64> {
    arrow_cast::parse::string_to_datetime(&chrono::Utc, s)
        .ok()
        .map(|dt| dt.timestamp_micros())
}

/// The physical line (1-based) where data record `record` (0-based) starts.
fn line_of_record(path: &Path, csv: &CsvConfig, record: u64) -> Option<u64> {
    let target = record + u64::from(csv.header);
    let mut rdr = csv_reader_builder(csv).from_reader(File::open(path).ok()?);
    let mut rec = csv::ByteRecord::new();
    let mut k = 0u64;
    while rdr.read_byte_record(&mut rec).ok()? {
        if k == target {
            return rec.position().map(|p| p.line());
        }
        k += 1;
    }
    None
}

/// Turns an arrow-csv error into a message with the physical line: a second pass with the `csv`
/// crate finds the first record at or after `from_record` with the wrong number of fields or
/// invalid UTF-8.
fn diagnose(
    path: &Path,
    name: &str,
    csv: &CsvConfig,
    columns: usize,
    from_record: u64,
    arrow_message: &str,
) -> String {
    let Ok(file) = File::open(path) else {
        return format!("{name}: {arrow_message}");
    };
    let mut rdr = csv_reader_builder(csv).from_reader(file);
    let mut rec = csv::ByteRecord::new();
    let mut k = 0u64;
    let first_data = u64::from(csv.header);
    loop {
        match rdr.read_byte_record(&mut rec) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return format!("{name}: {e}"),
        }
        let line = rec.position().map(|p| p.line()).unwrap_or(k + 1);
        if k >= first_data + from_record {
            if rec.len() != columns {
                return format!(
                    "{name}: line {line}: {} field(s), the header has {columns}",
                    rec.len()
                );
            }
            if let Some((i, _)) = rec
                .iter()
                .enumerate()
                .find(|(_, f)| std::str::from_utf8(f).is_err())
            {
                return format!(
                    "{name}: line {line}, field {}: not valid UTF-8 (the file must be UTF-8)",
                    i + 1
                );
            }
        }
        k += 1;
    }
    format!("{name}: {arrow_message}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_are_exact() {
        assert_eq!(parse_decimal("12.34", 12, 2), Ok(1234));
        assert_eq!(parse_decimal("-0.5", 12, 2), Ok(-50));
        assert_eq!(parse_decimal("+7", 12, 2), Ok(700));
        assert_eq!(parse_decimal(".25", 12, 2), Ok(25));
        assert_eq!(parse_decimal("3.100", 12, 2), Ok(310));
        assert_eq!(parse_decimal("9999999999.99", 12, 2), Ok(999_999_999_999));
        assert!(parse_decimal("99999999999", 12, 2).is_err());
        assert!(parse_decimal("1.234", 12, 2)
            .unwrap_err()
            .contains("2 decimal places"));
        for bad in ["", ".", "1e5", "12,3", "abc", "1.2.3", "--1", "1 2"] {
            assert!(parse_decimal(bad, 12, 2).is_err(), "{bad}");
        }
    }

    #[test]
    fn timestamps_without_zone_are_utc() {
        let utc = parse_timestamp("2024-03-01T14:05:00Z").unwrap();
        assert_eq!(parse_timestamp("2024-03-01 14:05:00"), Some(utc));
        assert_eq!(parse_timestamp("2024-03-01T11:05:00-03:00"), Some(utc));
        assert_eq!(parse_timestamp("2024-03-01T14:05:00.000+00:00"), Some(utc));
        assert_eq!(
            parse_timestamp("2024-03-01"),
            Some(utc - (14 * 3600 + 5 * 60) * 1_000_000)
        );
        assert_eq!(parse_timestamp("01/03/2024"), None);
        assert_eq!(parse_timestamp("2024-13-01T00:00:00"), None);
    }
}
