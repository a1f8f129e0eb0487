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
/// With `on_new_column = "rescue"`: the file's unknown columns of a row, as a JSON object.
pub const RESCUED: &str = "_rescued_data";
/// Column metadata key holding the date/timestamp format a column is read with.
pub const FORMAT_KEY: &str = "deltadrop.format";
/// Column metadata key holding a column's name as written, under `column_names = "original"`
/// (the column's Delta name; `name` is then its Parquet name). Only inside deltadrop: the
/// table's schema holds it as the column's name (the delta room's column mapping).
pub const LABEL_KEY: &str = "deltadrop.label";
/// Column names deltadrop writes itself: no data column may take them.
pub const RESERVED: [&str; 3] = [SOURCE_FILE, INGESTED_AT, RESCUED];

/// Characters Spark refuses in a Delta column name (without column mapping).
pub const SPARK_REFUSES: &str = " ,;{}()\n\t=";

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
    if h.is_empty() || h.chars().any(|c| SPARK_REFUSES.contains(c)) {
        fold_name(h)
    } else {
        h.to_string()
    }
}

/// The column names a header row (or an object's keys) gives, in order: each usable as a Delta
/// column name ([`column_name_for`]), an empty one named by its position (`column_3`), and a
/// repeat of an earlier name or of one of `reserved` — which Delta refuses, case-insensitively
/// — made unique with a suffix (`Name_2`).
pub fn unique_names(written: &[String], reserved: &[&str]) -> Vec<String> {
    let mut seen: std::collections::HashSet<String> =
        reserved.iter().map(|r| r.to_lowercase()).collect();
    written
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

/// What each of [`unique_names`] is named in a table that keeps the names as written
/// (`column_names = "original"`): the name written, trimmed, where it differs from the name.
/// An empty one keeps its positional name, and one Delta would take as a repeat (names
/// compare without case) keeps its suffixed one.
pub fn unique_labels(
    written: &[String],
    names: &[String],
    reserved: &[&str],
) -> Vec<Option<String>> {
    let mut seen: std::collections::HashSet<String> =
        reserved.iter().map(|r| r.to_lowercase()).collect();
    written
        .iter()
        .zip(names)
        .map(|(h, n)| {
            let h = h.trim();
            let label = (!h.is_empty() && h != n && !seen.contains(&h.to_lowercase()))
                .then(|| h.to_string());
            seen.insert(label.as_deref().unwrap_or(n).to_lowercase());
            label
        })
        .collect()
}

/// Struct members of the keys `written` (in order) and their types: named and labelled as a
/// header's columns are ([`unique_names`], [`unique_labels`]), nullable.
pub fn members_of(written: Vec<(String, ColType, Option<TimeFormat>)>) -> Vec<ColumnSpec> {
    let keys: Vec<String> = written.iter().map(|(k, _, _)| k.clone()).collect();
    let names = unique_names(&keys, &[]);
    let labels = unique_labels(&keys, &names, &[]);
    written
        .into_iter()
        .zip(names.iter().zip(labels))
        .map(|((_, ty, format), (name, label))| ColumnSpec {
            label,
            format,
            ..ColumnSpec::new(name, ty, true)
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColType {
    String,
    Int32,
    Int64,
    Float64,
    Bool,
    Date,
    Decimal {
        precision: u8,
        scale: i8,
    },
    /// Microseconds, UTC. Input without a zone is read in the feed's timezone (default UTC).
    Timestamp,
    /// A JSON object's members, each read as a column of its own (JSON lines, `nested =
    /// "struct"`): a Delta struct. Written `struct<city:string,zip:int64>`.
    Struct(Arc<[ColumnSpec]>),
    /// A JSON array: a Delta array of its elements' type. Written `array<string>`.
    List(Arc<ColType>),
}

impl fmt::Display for ColType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ColType::String => write!(f, "string"),
            ColType::Int32 => write!(f, "int32"),
            ColType::Int64 => write!(f, "int64"),
            ColType::Float64 => write!(f, "float64"),
            ColType::Bool => write!(f, "bool"),
            ColType::Date => write!(f, "date"),
            ColType::Decimal { precision, scale } => write!(f, "decimal({precision},{scale})"),
            ColType::Timestamp => write!(f, "timestamp"),
            ColType::Struct(members) => {
                f.write_str("struct<")?;
                for (i, m) in members.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write_member_name(f, m.shown())?;
                    write!(f, ":{}", m.ty)?;
                }
                f.write_str(">")
            }
            ColType::List(element) => write!(f, "array<{element}>"),
        }
    }
}

/// A struct member's name as `struct<…>` writes it: as it is when it is a plain word, else
/// between backquotes (a backquote in it doubled), as Spark's DDL does.
fn write_member_name(f: &mut fmt::Formatter<'_>, name: &str) -> fmt::Result {
    if !name.is_empty() && name.chars().all(|c| c.is_alphanumeric() || c == '_') {
        f.write_str(name)
    } else {
        write!(f, "`{}`", name.replace('`', "``"))
    }
}

impl std::str::FromStr for ColType {
    type Err = String;

    /// The names used in config: string, int32, int64, float64, bool, date, timestamp,
    /// decimal(p,s), struct<name:type,…>, array<type>.
    fn from_str(s: &str) -> Result<Self, String> {
        let mut rest = s;
        let ty = parse_type(&mut rest).map_err(|e| format!("'{s}': {e}"))?;
        if !rest.trim().is_empty() {
            return Err(format!(
                "'{s}': unexpected '{}' after the type",
                rest.trim()
            ));
        }
        Ok(ty)
    }
}

const TYPE_NAMES: &str =
    "string, int32, int64, float64, bool, date, timestamp, decimal(p,s), struct<name:type,…>, array<type>";

/// One type from the start of `s`, which is left after it.
fn parse_type(s: &mut &str) -> Result<ColType, String> {
    *s = s.trim_start();
    let word_end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    let word = s[..word_end].to_ascii_lowercase();
    *s = s[word_end..].trim_start();
    Ok(match word.as_str() {
        "string" | "str" | "text" => ColType::String,
        "int32" | "int" | "integer" => ColType::Int32,
        "int64" | "long" | "bigint" => ColType::Int64,
        "float64" | "double" | "float" => ColType::Float64,
        "bool" | "boolean" => ColType::Bool,
        "date" => ColType::Date,
        "timestamp" => ColType::Timestamp,
        "decimal" => {
            let inner = s
                .strip_prefix('(')
                .and_then(|r| r.split_once(')'))
                .ok_or("decimal needs precision and scale: decimal(p,s)")?;
            *s = inner.1;
            let (p, sc) = inner
                .0
                .split_once(',')
                .ok_or("decimal needs precision and scale: decimal(p,s)")?;
            let precision: u8 = p.trim().parse().map_err(|_| "bad decimal precision")?;
            let scale: i8 = sc.trim().parse().map_err(|_| "bad decimal scale")?;
            // Delta (and Spark) decimals: precision 1..=38, 0 <= scale <= precision.
            if !(1..=38).contains(&precision) || scale < 0 || scale as u8 > precision {
                return Err("decimal precision must be 1..38 and scale 0..precision".into());
            }
            ColType::Decimal { precision, scale }
        }
        "array" => {
            *s = s
                .strip_prefix('<')
                .ok_or("array needs its element type: array<type>")?;
            let element = parse_type(s)?;
            *s = s
                .trim_start()
                .strip_prefix('>')
                .ok_or("array<…> is not closed by '>'")?;
            ColType::List(Arc::new(element))
        }
        "struct" => {
            *s = s
                .strip_prefix('<')
                .ok_or("struct needs its members: struct<name:type,…>")?;
            let mut members: Vec<(String, ColType, Option<TimeFormat>)> = Vec::new();
            loop {
                *s = s.trim_start();
                if let Some(r) = s.strip_prefix('>') {
                    *s = r;
                    break;
                }
                if !members.is_empty() {
                    *s = s
                        .strip_prefix(',')
                        .ok_or("struct members are separated by ',' and closed by '>'")?
                        .trim_start();
                }
                let written = parse_member_name(s)?;
                *s = s
                    .trim_start()
                    .strip_prefix(':')
                    .ok_or_else(|| format!("struct member '{written}' needs ':type'"))?;
                let ty = parse_type(s)?;
                if members.iter().any(|(w, _, _)| *w == written) {
                    return Err(format!("struct member '{written}' is named twice"));
                }
                members.push((written, ty, None));
            }
            if members.is_empty() {
                return Err("a struct needs at least one member".into());
            }
            // Two names that fold to one Spark-safe name, or differ only in case: the later
            // one gets `_2`, `_3`…
            ColType::Struct(members_of(members).into())
        }
        "" => return Err(format!("a type is missing ({TYPE_NAMES})")),
        other => return Err(format!("unknown type '{other}' ({TYPE_NAMES})")),
    })
}

/// A struct member's name from the start of `s`: a plain word, or between backquotes.
fn parse_member_name(s: &mut &str) -> Result<String, String> {
    if let Some(r) = s.strip_prefix('`') {
        let mut name = String::new();
        let mut chars = r.char_indices();
        while let Some((i, c)) = chars.next() {
            if c == '`' {
                if r[i + 1..].starts_with('`') {
                    name.push('`');
                    chars.next();
                    continue;
                }
                *s = &r[i + 1..];
                return Ok(name);
            }
            name.push(c);
        }
        return Err("a struct member's name opens a backquote it does not close".into());
    }
    let end = s.find([':', ',', '>']).unwrap_or(s.len());
    let name = s[..end].trim().to_string();
    if name.is_empty() {
        return Err("a struct member has no name".into());
    }
    *s = &s[end..];
    Ok(name)
}

impl ColType {
    pub fn arrow(&self) -> DataType {
        match self {
            ColType::String => DataType::Utf8,
            ColType::Int32 => DataType::Int32,
            ColType::Int64 => DataType::Int64,
            ColType::Float64 => DataType::Float64,
            ColType::Bool => DataType::Boolean,
            ColType::Date => DataType::Date32,
            ColType::Decimal { precision, scale } => DataType::Decimal128(*precision, *scale),
            ColType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            ColType::Struct(members) => {
                DataType::Struct(members.iter().map(ColumnSpec::field).collect())
            }
            ColType::List(element) => {
                DataType::List(Arc::new(Field::new("element", element.arrow(), true)))
            }
        }
    }

    /// The inverse of [`Self::arrow`], for tables that already exist.
    pub fn from_arrow(t: &DataType) -> Option<ColType> {
        Some(match t {
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => ColType::String,
            DataType::Int32 => ColType::Int32,
            DataType::Int64 => ColType::Int64,
            DataType::Float64 => ColType::Float64,
            DataType::Boolean => ColType::Bool,
            DataType::Date32 => ColType::Date,
            DataType::Decimal128(p, s) => ColType::Decimal {
                precision: *p,
                scale: *s,
            },
            DataType::Timestamp(TimeUnit::Microsecond, Some(_)) => ColType::Timestamp,
            DataType::Struct(fields) => ColType::Struct(
                fields
                    .iter()
                    .map(|f| ColumnSpec::from_field(f).ok())
                    .collect::<Option<Vec<_>>>()?
                    .into(),
            ),
            DataType::List(element) | DataType::LargeList(element) => {
                ColType::List(Arc::new(ColType::from_arrow(element.data_type())?))
            }
            _ => return None,
        })
    }

    /// Whether values of this type are read from JSON text (a struct or an array).
    pub fn is_nested(&self) -> bool {
        matches!(self, ColType::Struct(_) | ColType::List(_))
    }

    /// Whether a struct member somewhere in this type keeps a name as written.
    fn labelled(&self) -> bool {
        match self {
            ColType::Struct(members) => {
                members.iter().any(|m| m.label.is_some() || m.ty.labelled())
            }
            ColType::List(element) => element.labelled(),
            _ => false,
        }
    }

    /// This type with every struct member's name as written dropped.
    fn without_labels(&self) -> ColType {
        match self {
            ColType::Struct(members) => ColType::Struct(
                members
                    .iter()
                    .map(|m| ColumnSpec {
                        label: None,
                        ty: m.ty.without_labels(),
                        ..m.clone()
                    })
                    .collect::<Vec<_>>()
                    .into(),
            ),
            ColType::List(element) => ColType::List(Arc::new(element.without_labels())),
            other => other.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnSpec {
    /// The name deltadrop works with: headers are matched to it, and it names the column in
    /// Parquet files, statistics and settings. Spark-safe.
    pub name: String,
    /// Under `column_names = "original"`: the name as written (`Valor Total (R$)`), the
    /// column's name in the table, when it differs from `name`.
    pub label: Option<String>,
    pub ty: ColType,
    pub nullable: bool,
    /// Input format for dates/timestamps.
    pub format: Option<TimeFormat>,
}

/// How the text of a date or timestamp is read. Kept in a table column's metadata
/// ([`FORMAT_KEY`]) and shown in messages as its text: `iso`, `epoch_s`, `epoch_ms`, or the
/// chrono pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimeFormat {
    /// ISO 8601: `2024-03-01` for a date; for a timestamp `2024-03-01T14:05:00Z`, or without a
    /// zone a local time of the feed's timezone.
    Iso,
    /// A timestamp as whole seconds since 1970-01-01 UTC.
    EpochSeconds,
    /// A timestamp as whole milliseconds since 1970-01-01 UTC.
    EpochMillis,
    /// A chrono pattern (`%d/%m/%Y %H:%M`).
    Chrono(String),
}

impl From<&str> for TimeFormat {
    /// From its text (see [`TimeFormat`]); any other text is a chrono pattern.
    fn from(s: &str) -> Self {
        match s {
            "iso" => TimeFormat::Iso,
            "epoch_s" => TimeFormat::EpochSeconds,
            "epoch_ms" => TimeFormat::EpochMillis,
            pattern => TimeFormat::Chrono(pattern.to_string()),
        }
    }
}

impl fmt::Display for TimeFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TimeFormat::Iso => "iso",
            TimeFormat::EpochSeconds => "epoch_s",
            TimeFormat::EpochMillis => "epoch_ms",
            TimeFormat::Chrono(p) => p,
        })
    }
}

impl ColumnSpec {
    pub fn new(name: &str, ty: ColType, nullable: bool) -> Self {
        ColumnSpec {
            name: name.to_string(),
            label: None,
            ty,
            nullable,
            format: None,
        }
    }

    /// The column's name as readers of the table see it.
    pub fn shown(&self) -> &str {
        self.label.as_deref().unwrap_or(&self.name)
    }

    /// The column's Arrow field; its date/timestamp format and its name as written ride in
    /// its metadata ([`FORMAT_KEY`], [`LABEL_KEY`]).
    pub fn field(&self) -> Field {
        let f = Field::new(&self.name, self.ty.arrow(), self.nullable);
        let metadata: std::collections::HashMap<String, String> = self
            .format
            .iter()
            .map(|fmt| (FORMAT_KEY.to_string(), fmt.to_string()))
            .chain(
                self.label
                    .iter()
                    .map(|l| (LABEL_KEY.to_string(), l.clone())),
            )
            .collect();
        if metadata.is_empty() {
            f
        } else {
            f.with_metadata(metadata)
        }
    }

    /// The inverse of [`Self::field`], for tables that already exist.
    pub fn from_field(f: &Field) -> Result<ColumnSpec, String> {
        let name = f.name();
        Ok(ColumnSpec {
            format: f
                .metadata()
                .get(FORMAT_KEY)
                .map(|s| TimeFormat::from(s.as_str())),
            label: f.metadata().get(LABEL_KEY).cloned(),
            ..ColumnSpec::new(
                name,
                ColType::from_arrow(f.data_type()).ok_or_else(|| {
                    format!(
                        "column '{name}' has type {} that deltadrop does not write",
                        f.data_type()
                    )
                })?,
                f.is_nullable(),
            )
        })
    }
}

/// The data columns of a feed, in table order. Lineage columns are appended by [`Self::arrow`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TableSchema {
    pub columns: Vec<ColumnSpec>,
    /// Whether the table has a `_rescued_data` column (`on_new_column = "rescue"`).
    pub rescued: bool,
    /// The table's partition column (`partition_by`), if any.
    pub partition: Option<Partition>,
}

/// The one column a table is partitioned by: a data column, or (`date(col)`) a column
/// deltadrop derives from a timestamp column — its UTC date — placed after the data columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    pub column: String,
    /// `Some(timestamp column)` for a derived date column.
    pub date_of: Option<String>,
}

impl TableSchema {
    /// The sales schema of the original project; header names must match exactly.
    pub fn sales() -> TableSchema {
        use ColType::*;
        TableSchema {
            rescued: false,
            partition: None,
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

    /// The Arrow schema of the table: data columns, then `_source_file`, `_ingested_at`. A
    /// column's date/timestamp format rides along in its metadata ([`FORMAT_KEY`]), so that a
    /// table whose columns were inferred reads its files the same way after a restart.
    pub fn arrow(&self) -> SchemaRef {
        let mut fields: Vec<Field> = self.columns.iter().map(ColumnSpec::field).collect();
        if let Some((p, source)) = self.derived_partition() {
            fields.push(Field::new(
                &p.column,
                ColType::Date.arrow(),
                source.nullable,
            ));
        }
        if self.rescued {
            fields.push(Field::new(RESCUED, DataType::Utf8, true));
        }
        fields.push(Field::new(SOURCE_FILE, DataType::Utf8, false));
        fields.push(Field::new(INGESTED_AT, ColType::Timestamp.arrow(), false));
        Arc::new(Schema::new(fields))
    }

    /// The data columns of an existing table (lineage and rescue columns left out).
    pub fn from_arrow(schema: &Schema) -> Result<TableSchema, String> {
        let mut columns = Vec::new();
        let mut rescued = false;
        for f in schema.fields() {
            match f.name().as_str() {
                SOURCE_FILE | INGESTED_AT => {}
                RESCUED => rescued = true,
                _ => columns.push(ColumnSpec::from_field(f)?),
            }
        }
        Ok(TableSchema {
            columns,
            rescued,
            partition: None,
        })
    }

    /// A derived partition column and the data column it comes from.
    pub fn derived_partition(&self) -> Option<(&Partition, &ColumnSpec)> {
        let p = self.partition.as_ref()?;
        let source = self
            .columns
            .iter()
            .find(|c| Some(&c.name) == p.date_of.as_ref())?;
        Some((p, source))
    }

    /// The table's partition columns (none, or one).
    pub fn partition_columns(&self) -> Vec<String> {
        self.partition.iter().map(|p| p.column.clone()).collect()
    }

    pub fn position(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    /// Whether a table of these columns needs Delta column mapping (a name as written that is
    /// not the Spark-safe one).
    pub fn labelled(&self) -> bool {
        self.columns
            .iter()
            .any(|c| c.label.is_some() || c.ty.labelled())
    }

    /// These columns without their names as written: what a table created without column
    /// mapping holds (it keeps its naming whatever the feed's `column_names` says).
    pub fn without_labels(mut self) -> TableSchema {
        for c in &mut self.columns {
            c.label = None;
            c.ty = c.ty.without_labels();
        }
        self
    }
}

/// `t` without the metadata of the fields nested in it (names as written, formats, column
/// mapping): what two tables must agree on for one to take the other's rows.
pub fn bare(t: &DataType) -> DataType {
    let field = |f: &Field| Field::new(f.name(), bare(f.data_type()), f.is_nullable());
    match t {
        DataType::Struct(fields) => DataType::Struct(fields.iter().map(|f| field(f)).collect()),
        DataType::List(e) => DataType::List(Arc::new(field(e))),
        DataType::LargeList(e) => DataType::LargeList(Arc::new(field(e))),
        other => other.clone(),
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
                if bare(t.data_type()) != bare(f.data_type()) {
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
    fn type_names_parse() {
        assert_eq!(
            "decimal(12, 2)".parse::<ColType>(),
            Ok(ColType::Decimal {
                precision: 12,
                scale: 2
            })
        );
        assert_eq!("INT64".parse::<ColType>(), Ok(ColType::Int64));
        assert!("decimal(40,2)".parse::<ColType>().is_err());
        assert!("varchar"
            .parse::<ColType>()
            .unwrap_err()
            .contains("unknown type"));
        let s = TableSchema::sales();
        assert_eq!(TableSchema::from_arrow(&s.arrow()).unwrap(), s);
    }

    #[test]
    fn nested_types_parse_print_and_survive_a_table() {
        let written = "struct<id:int64,`Valor (R$)`:decimal(12,2),itens:array<struct<dia:date,`a``b`:string>>>";
        let t: ColType = written.parse().unwrap();
        assert_eq!(t.to_string(), written);
        let ColType::Struct(members) = &t else {
            panic!("{t:?}")
        };
        assert_eq!(members[1].name, "valor__r$_");
        assert_eq!(members[1].label.as_deref(), Some("Valor (R$)"));
        assert_eq!(
            " STRUCT < id : BIGINT , x : Array<Int> > "
                .parse::<ColType>()
                .unwrap()
                .to_string(),
            "struct<id:int64,x:array<int32>>"
        );
        // Through Arrow (a table's schema) and back, names as written kept in the metadata.
        assert_eq!(ColType::from_arrow(&t.arrow()), Some(t.clone()));
        assert!(TableSchema {
            columns: vec![ColumnSpec::new("c", t.clone(), true)],
            ..TableSchema::default()
        }
        .labelled());
        assert!(!TableSchema {
            columns: vec![ColumnSpec::new("c", t, true)],
            ..TableSchema::default()
        }
        .without_labels()
        .labelled());
        for (bad, why) in [
            ("struct<>", "at least one member"),
            ("array<int64", "not closed"),
            ("struct<a:int64,a:string>", "named twice"),
            ("struct<a int64>", "needs ':type'"),
            ("struct<`a:int64>", "does not close"),
            ("array<varchar>", "unknown type 'varchar'"),
            ("int64 int64", "after the type"),
        ] {
            let e = bad.parse::<ColType>().unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
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
