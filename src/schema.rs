//! Table schemas: the columns a feed's CSV files must provide, their Delta/Arrow types, and the
//! lineage columns every table gets. Only types Spark reads are used (UTC timestamps, decimals,
//! strings, int64): no `timestamp_ntz`, no unsigned or view types.

use std::fmt;
use std::sync::Arc;

use deltalake::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// Lineage column: the file name the row came from.
pub const SOURCE_FILE: &str = "_source_file";
/// Lineage column: when deltadrop ingested the row (UTC).
pub const INGESTED_AT: &str = "_ingested_at";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColType {
    String,
    Int64,
    Decimal {
        precision: u8,
        scale: i8,
    },
    /// Microseconds, UTC. Input without a zone is read as UTC.
    Timestamp,
}

impl fmt::Display for ColType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ColType::String => write!(f, "string"),
            ColType::Int64 => write!(f, "int64"),
            ColType::Decimal { precision, scale } => write!(f, "decimal({precision},{scale})"),
            ColType::Timestamp => write!(f, "timestamp (UTC)"),
        }
    }
}

impl ColType {
    pub fn arrow(&self) -> DataType {
        match self {
            ColType::String => DataType::Utf8,
            ColType::Int64 => DataType::Int64,
            ColType::Decimal { precision, scale } => DataType::Decimal128(*precision, *scale),
            ColType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnSpec {
    pub name: String,
    pub ty: ColType,
    pub nullable: bool,
}

impl ColumnSpec {
    fn new(name: &str, ty: ColType, nullable: bool) -> Self {
        ColumnSpec {
            name: name.to_string(),
            ty,
            nullable,
        }
    }
}

/// The data columns of a feed, in table order. Lineage columns are appended by [`Self::arrow`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSchema {
    pub columns: Vec<ColumnSpec>,
}

impl TableSchema {
    pub fn builtin(name: &str) -> Option<TableSchema> {
        match name {
            "sales" => Some(Self::sales()),
            _ => None,
        }
    }

    /// The sales schema of the original project; header names must match exactly.
    pub fn sales() -> TableSchema {
        use ColType::*;
        TableSchema {
            columns: vec![
                ColumnSpec::new("sale_id", String, false),
                ColumnSpec::new("sold_at", Timestamp, false),
                ColumnSpec::new("store_id", String, false),
                ColumnSpec::new("product_id", String, false),
                ColumnSpec::new("quantity", Int64, false),
                ColumnSpec::new(
                    "unit_price",
                    Decimal {
                        precision: 12,
                        scale: 2,
                    },
                    false,
                ),
                ColumnSpec::new(
                    "total",
                    Decimal {
                        precision: 14,
                        scale: 2,
                    },
                    false,
                ),
                ColumnSpec::new("payment_method", String, false),
                ColumnSpec::new("customer_id", String, true),
            ],
        }
    }

    /// The Arrow schema of the table: data columns, then `_source_file`, `_ingested_at`.
    pub fn arrow(&self) -> SchemaRef {
        let mut fields: Vec<Field> = self
            .columns
            .iter()
            .map(|c| Field::new(&c.name, c.ty.arrow(), c.nullable))
            .collect();
        fields.push(Field::new(SOURCE_FILE, DataType::Utf8, false));
        fields.push(Field::new(INGESTED_AT, ColType::Timestamp.arrow(), false));
        Arc::new(Schema::new(fields))
    }

    pub fn position(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }
}

/// Differences between the schema a feed writes and the schema an existing table has.
/// Empty means compatible. Nullability may be stricter on our side than in the table.
pub fn incompatibilities(ours: &Schema, table: &Schema) -> Vec<String> {
    let mut out = Vec::new();
    for f in ours.fields() {
        match table.field_with_name(f.name()) {
            Err(_) => out.push(format!("column '{}' is missing from the table", f.name())),
            Ok(t) => {
                if t.data_type() != f.data_type() {
                    out.push(format!(
                        "column '{}' is {} in the table, deltadrop writes {}",
                        f.name(),
                        t.data_type(),
                        f.data_type()
                    ));
                } else if !t.is_nullable() && f.is_nullable() {
                    out.push(format!(
                        "column '{}' is NOT NULL in the table, deltadrop may write nulls",
                        f.name()
                    ));
                }
            }
        }
    }
    for t in table.fields() {
        if ours.field_with_name(t.name()).is_err() {
            out.push(format!(
                "the table has column '{}' that this feed does not write",
                t.name()
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sales_schema_has_lineage_and_spark_types() {
        let s = TableSchema::sales().arrow();
        assert_eq!(s.fields().len(), 11);
        assert_eq!(
            s.field_with_name("unit_price").unwrap().data_type(),
            &DataType::Decimal128(12, 2)
        );
        assert_eq!(
            s.field_with_name(INGESTED_AT).unwrap().data_type(),
            &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
        );
        assert!(s.field_with_name("customer_id").unwrap().is_nullable());
        assert!(!s.field_with_name("sale_id").unwrap().is_nullable());
    }

    #[test]
    fn incompatible_tables_are_described() {
        let ours = TableSchema::sales().arrow();
        assert!(incompatibilities(&ours, &ours).is_empty());
        let other = Schema::new(vec![Field::new("sale_id", DataType::Int64, false)]);
        let diff = incompatibilities(&ours, &other);
        assert!(diff.iter().any(|d| d.contains("'sale_id' is Int64")));
        assert!(diff.iter().any(|d| d.contains("'total' is missing")));
    }
}
