//! Parquet files (`format = "parquet"`, or `auto` on `.parquet`), read batch by batch with the
//! parquet crate's Arrow reader (memory bounded by `csv.batch_rows` rows and one row group's
//! pages, whatever the file's size). The file's columns are matched to the table's by name as a
//! CSV header is, then conformed:
//!
//! - a column whose type can never hold the table's (a list or a struct where the table has a
//!   number, a boolean where it has a date) rejects the file naming both types, before a row
//!   is read;
//! - otherwise each value goes through the same conversion as CSV text — its Arrow text form
//!   (`arrow_cast`): an int32 becomes the table's int64, a float64 `1.5` in an int64 column is
//!   a bad row, a decimal keeps its digits, a timestamp its instant — so types widen as CSV
//!   values do, null words, expectations and quarantine apply, and a bad value costs its row.
//!
//! A bad row is located by its row group and row in that group (`row group 1, row 12`), its
//! `line_number` the row's number in the file (1-based), its raw text the row as JSON.

use std::fs::File;
use std::sync::Arc;

use deltalake::arrow::array::{Array, ArrayRef, RecordBatch, StringArray, StringBuilder};
use deltalake::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use deltalake::arrow::util::display::{ArrayFormatter, FormatOptions};
use deltalake::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::config::FeedConfig;
use crate::job::file_name;
use crate::schema::{ColType, ColumnSpec, TableSchema};

use super::batch::{FileParse, Setup};
use super::header::{ColumnPlan, HeaderRead};
use super::sniffed::Sniffed;
use super::source::Compression;
use super::split::Dialect;
use super::{internal, FileSummary, IngestError, SinkError};

/// Reads one Parquet file into the table's batches.
pub(super) struct ParquetRead<'a> {
    pub(super) name: String,
    pub(super) feed: &'a FeedConfig,
    pub(super) schema: &'a TableSchema,
    pub(super) ingested_at: i64,
}

impl ParquetRead<'_> {
    pub(super) fn run(
        &self,
        file: File,
        summary: FileSummary,
        sink: impl FnMut(RecordBatch) -> Result<(), SinkError>,
    ) -> Result<FileSummary, IngestError> {
        let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| {
            IngestError::Reject(format!(
                "{}: not a Parquet file deltadrop can read: {e}",
                self.name
            ))
        })?;
        let groups: Vec<u64> = builder
            .metadata()
            .row_groups()
            .iter()
            .map(|g| u64::try_from(g.num_rows()).unwrap_or(0))
            .collect();
        let file_schema = builder.schema().clone();
        let plan = self.plan(&file_schema)?;
        let text_schema: SchemaRef = Arc::new(Schema::new(
            plan.file_columns
                .iter()
                .map(|n| Field::new(n, DataType::Utf8, true))
                .collect::<Vec<_>>(),
        ));
        let reader = builder
            .with_batch_size(self.feed.csv.batch_rows.max(1))
            .build()
            .map_err(|e| IngestError::Reject(format!("{}: {e}", self.name)))?;
        let mut parse = FileParse::new(
            Setup {
                name: self.name.clone(),
                feed: self.feed,
                schema: self.schema,
                plan,
                dialect: Dialect::RFC4180,
                ingested_at: self.ingested_at,
            },
            summary,
            sink,
        );
        let mut done: u64 = 0;
        for batch in reader {
            let batch = batch.map_err(|e| {
                IngestError::Reject(format!(
                    "{}: {} cannot be read: {e}",
                    self.name,
                    locator(&groups, done + 1)
                ))
            })?;
            let columns = batch
                .columns()
                .iter()
                .map(text_column)
                .collect::<Result<Vec<_>, _>>()?;
            let text = RecordBatch::try_new(text_schema.clone(), columns).map_err(internal)?;
            let first = done + 1;
            let row = |i: usize| (first + i as u64, row_json(&text, i));
            parse.process_indexed(&text, &row)?;
            done += batch.num_rows() as u64;
        }
        let mut summary = parse.finish();
        for b in &mut summary.bad {
            b.error = format!("{}: {}", locator(&groups, b.line), b.error);
        }
        Ok(summary)
    }

    /// The file's columns matched to the table's as a header is; a column that can never be
    /// conformed to its table column's type rejects the file.
    fn plan(&self, file_schema: &Schema) -> Result<ColumnPlan, IngestError> {
        let names: Vec<String> = file_schema
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        let header = HeaderRead {
            name: &self.name,
            feed: self.feed,
            schema: self.schema,
            dialect: &Dialect::RFC4180,
        };
        let plan = header.plan_for(names, 1)?;
        for (spec, src) in self.schema.columns.iter().zip(&plan.source) {
            let Some(i) = src else { continue };
            let field = file_schema.field(*i);
            if !conformable(field.data_type(), &spec.ty) {
                return Err(IngestError::Reject(format!(
                    "{}: column '{}' is {} in the file and {} in the table: it cannot be conformed",
                    self.name,
                    field.name(),
                    field.data_type(),
                    spec.ty
                )));
            }
        }
        Ok(plan)
    }
}

/// Whether values of a file column of type `from` can be read into a table column of type
/// `to` (value by value, a value that does not fit being a bad row).
fn conformable(from: &DataType, to: &ColType) -> bool {
    use DataType as D;
    let text = matches!(from, D::Utf8 | D::LargeUtf8 | D::Utf8View | D::Null);
    let number = from.is_numeric();
    let time = matches!(from, D::Date32 | D::Date64 | D::Timestamp(_, _));
    match to {
        ColType::String => true,
        ColType::Int32 | ColType::Int64 | ColType::Float64 | ColType::Decimal { .. } => {
            text || number
        }
        ColType::Bool => text || matches!(from, D::Boolean),
        ColType::Date | ColType::Timestamp => text || time,
        // JSON text, or a Parquet struct or list (read as its JSON).
        ColType::Struct(_) => text || matches!(from, D::Struct(_)),
        ColType::List(_) => text || matches!(from, D::List(_) | D::LargeList(_)),
    }
}

/// A column as text: Arrow's own text form of each value (`arrow_cast`), nulls kept; a struct,
/// list or map as JSON, which a struct or array column reads back member by member.
fn text_column(c: &ArrayRef) -> Result<ArrayRef, IngestError> {
    if c.data_type() == &DataType::Utf8 {
        return Ok(c.clone());
    }
    if c.data_type().is_nested() {
        let field = Arc::new(Field::new("v", c.data_type().clone(), true));
        let options = arrow_json::writer::EncoderOptions::default();
        let mut e =
            arrow_json::writer::make_encoder(&field, c.as_ref(), &options).map_err(internal)?;
        let mut b = StringBuilder::with_capacity(c.len(), c.len() * 32);
        let mut buf = Vec::new();
        for i in 0..c.len() {
            if e.is_null(i) {
                b.append_null();
                continue;
            }
            buf.clear();
            e.encode(i, &mut buf);
            b.append_value(String::from_utf8_lossy(&buf));
        }
        return Ok(Arc::new(b.finish()));
    }
    if let Ok(t) = deltalake::arrow::compute::cast(c, &DataType::Utf8) {
        return Ok(t);
    }
    // Lists, structs, maps: their display form.
    let f = ArrayFormatter::try_new(c.as_ref(), &FormatOptions::default()).map_err(internal)?;
    let mut b = StringBuilder::with_capacity(c.len(), c.len() * 16);
    for i in 0..c.len() {
        if c.is_null(i) {
            b.append_null();
        } else {
            b.append_value(f.value(i).to_string());
        }
    }
    Ok(Arc::new(b.finish()))
}

/// Row `i` of a text batch as a JSON object (the quarantine's raw text of a bad row).
fn row_json(text: &RecordBatch, i: usize) -> String {
    let mut obj = serde_json::Map::new();
    for (f, c) in text.schema().fields().iter().zip(text.columns()) {
        let v = c
            .as_any()
            .downcast_ref::<StringArray>()
            .filter(|a| !a.is_null(i))
            .map_or(serde_json::Value::Null, |a| {
                serde_json::Value::String(a.value(i).to_string())
            });
        obj.insert(f.name().clone(), v);
    }
    serde_json::Value::Object(obj).to_string()
}

/// `row group G, row R` (both from 0, as Parquet tools count them) of the file's row `n`
/// (from 1).
fn locator(groups: &[u64], n: u64) -> String {
    let mut left = n.saturating_sub(1);
    for (g, rows) in groups.iter().enumerate() {
        if left < *rows {
            return format!("row group {g}, row {left}");
        }
        left -= rows;
    }
    format!("row {n}")
}

/// The table columns a Parquet file's schema gives (`schema = "infer"`): integers widened to
/// int64, floats to float64, decimals and dates and timestamps as they are, structs and lists
/// member by member ([`widened`]), the rest as text.
pub(super) fn columns_of(file: File) -> Result<(Vec<(String, ColType)>, u64), String> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| e.to_string())?;
    let rows = u64::try_from(builder.metadata().file_metadata().num_rows()).unwrap_or(0);
    let cols = builder
        .schema()
        .fields()
        .iter()
        .map(|f| {
            (
                f.name().clone(),
                widened(f.data_type()).unwrap_or(ColType::String),
            )
        })
        .collect();
    Ok((cols, rows))
}

/// The table type of a Parquet type: integers widened to int64, floats to float64, decimals,
/// dates and timestamps as they are, structs and lists member by member; None for the rest
/// (loaded as text).
fn widened(t: &DataType) -> Option<ColType> {
    use DataType as D;
    Some(match t {
        D::Int8 | D::Int16 | D::Int32 | D::Int64 | D::UInt8 | D::UInt16 | D::UInt32 => {
            ColType::Int64
        }
        D::Float16 | D::Float32 | D::Float64 => ColType::Float64,
        D::Decimal128(p, s) => ColType::Decimal {
            precision: *p,
            scale: *s,
        },
        D::Boolean => ColType::Bool,
        D::Date32 | D::Date64 => ColType::Date,
        D::Timestamp(_, _) => ColType::Timestamp,
        D::Utf8 | D::LargeUtf8 | D::Utf8View => ColType::String,
        D::Struct(fields) if !fields.is_empty() => ColType::Struct(
            crate::schema::members_of(
                fields
                    .iter()
                    .map(|f| {
                        let ty = widened(f.data_type()).unwrap_or(ColType::String);
                        (f.name().clone(), ty, None)
                    })
                    .collect(),
            )
            .into(),
        ),
        D::List(e) | D::LargeList(e) => {
            ColType::List(Arc::new(widened(e.data_type()).unwrap_or(ColType::String)))
        }
        _ => return None,
    })
}

/// `infer::sniff` of a Parquet file: its columns and types from its own schema.
pub(super) fn sniff(path: &std::path::Path) -> Result<Sniffed, IngestError> {
    let name = file_name(path);
    let (cols, rows) = columns_of(std::fs::File::open(path)?).map_err(|e| {
        IngestError::Reject(format!(
            "{name}: not a Parquet file deltadrop can read: {e}"
        ))
    })?;
    if cols.is_empty() {
        return Err(IngestError::Reject(format!(
            "{name}: a Parquet file without columns"
        )));
    }
    let columns = cols
        .into_iter()
        .map(|(name, ty)| ColumnSpec {
            name,
            label: None,
            ty,
            nullable: true,
            format: None,
        })
        .collect();
    Ok(Sniffed {
        encoding: "-".into(),
        compression: Compression::None,
        delimiter: b',',
        locale: None,
        schema: TableSchema {
            columns,
            ..TableSchema::default()
        },
        rows_sampled: usize::try_from(rows).unwrap_or(usize::MAX),
        header: true,
        title_lines: 0,
        footer_lines: 0,
        sample: "its schema".into(),
        warnings: Vec::new(),
        json: false,
        sheet: None,
        parquet: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_is_located_by_its_row_group() {
        let groups = [3, 2];
        assert_eq!(locator(&groups, 1), "row group 0, row 0");
        assert_eq!(locator(&groups, 3), "row group 0, row 2");
        assert_eq!(locator(&groups, 4), "row group 1, row 0");
        assert_eq!(locator(&groups, 9), "row 9");
    }

    #[test]
    fn only_types_that_can_hold_a_value_are_conformed() {
        assert!(conformable(&DataType::Int32, &ColType::Int64));
        assert!(conformable(&DataType::Float64, &ColType::Int64));
        assert!(conformable(&DataType::Utf8, &ColType::Date));
        assert!(!conformable(&DataType::Boolean, &ColType::Date));
        let list = DataType::List(Arc::new(Field::new("x", DataType::Int32, true)));
        assert!(!conformable(&list, &ColType::Int64));
        assert!(conformable(&list, &ColType::String));
    }
}
