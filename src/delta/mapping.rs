//! Delta column mapping, name mode (`column_names = "original"`): a column's name in the table
//! is the header as written (`Valor Total (R$)`); its physical name — in the Parquet files,
//! their statistics, partition values and change data — is the Spark-safe name deltadrop works
//! with (`valor_total__r$_`). Everything past this room sees physical names only: batches,
//! writers, statistics, the file index and settings all stay as they are for other tables.
//!
//! deltalake 1.1 built without DataFusion does neither end itself: its `CreateBuilder` picks
//! random physical names (`col-<uuid>`), and `RecordBatchWriter::for_table` refuses a table
//! with column mapping. So this room writes a mapped table's version 0, and gives writers and
//! readers the table's schema by physical names ([`physical_arrow`]).

use std::collections::HashMap;
use std::sync::Arc;

use deltalake::arrow::datatypes::Schema;
use deltalake::kernel::engine::arrow_conversion::{TryIntoArrow, TryIntoKernel};
use deltalake::kernel::transaction::{CommitData, TransactionError};
use deltalake::kernel::{
    Action, ArrayType, DataType, MapType, MetadataExt, MetadataValue, Protocol, StructField,
    StructType,
};
use deltalake::logstore::CommitOrBytes;
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::table::state::DeltaTableState;
use deltalake::DeltaTableError;

use crate::config::StorageOptions;
use crate::schema::LABEL_KEY;

const MODE: &str = "delta.columnMapping.mode";
const MAX_ID: &str = "delta.columnMapping.maxColumnId";
const ID: &str = "delta.columnMapping.id";
const PHYSICAL: &str = "delta.columnMapping.physicalName";
const NESTED_IDS: &str = "delta.columnMapping.nested.ids";
/// The Arrow metadata key the Parquet writer takes a field id from.
const FIELD_ID: &str = "PARQUET:field_id";

/// The table's column mapping mode, when it has one (`name` or `id`; `none` is none).
pub(crate) fn mode(snapshot: &DeltaTableState) -> Option<&str> {
    snapshot
        .metadata()
        .configuration()
        .get(MODE)
        .map(String::as_str)
        .filter(|m| !m.eq_ignore_ascii_case("none"))
}

/// Whether a schema deltadrop writes names columns as written ([`LABEL_KEY`]): its table needs
/// column mapping.
pub(crate) fn labelled(ours: &Schema) -> bool {
    ours.fields().iter().any(|f| field_labelled(f))
}

/// Whether `f`, or a struct member at any depth inside it, keeps a name as written.
fn field_labelled(f: &deltalake::arrow::datatypes::Field) -> bool {
    use deltalake::arrow::datatypes::DataType as D;
    f.metadata().contains_key(LABEL_KEY)
        || match f.data_type() {
            D::Struct(members) => members.iter().any(|m| field_labelled(m)),
            D::List(e) | D::LargeList(e) => field_labelled(e),
            _ => false,
        }
}

/// The table's schema as deltadrop works with it: for a mapped table, each column named by its
/// physical name, its name in the table kept in [`LABEL_KEY`] (where it differs).
pub(crate) fn physical_arrow(snapshot: &DeltaTableState) -> Result<Schema, DeltaTableError> {
    let schema = snapshot.schema();
    if mode(snapshot).is_none() {
        return Ok(schema.as_ref().try_into_arrow()?);
    }
    physical_schema(snapshot, false)
}

/// [`physical_arrow`] of a mapped table, each field's id as its Parquet field id with `ids`.
fn physical_schema(snapshot: &DeltaTableState, ids: bool) -> Result<Schema, DeltaTableError> {
    let fields = snapshot
        .schema()
        .fields()
        .map(|f| physical_field(f, ids))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((&StructType::try_new(fields)?).try_into_arrow()?)
}

/// A mapped field's physical name (its name, for a table without mapping).
fn physical_name(f: &StructField) -> &str {
    match f.metadata.get(PHYSICAL) {
        Some(MetadataValue::String(p)) => p,
        _ => &f.name,
    }
}

/// A column (or struct member, at any depth) by its physical name, its name in the table kept
/// in [`LABEL_KEY`].
fn physical_field(f: &StructField, ids: bool) -> Result<StructField, DeltaTableError> {
    let physical = physical_name(f).to_string();
    let mut metadata: HashMap<String, MetadataValue> = f
        .metadata
        .iter()
        .filter(|(k, _)| ![ID, PHYSICAL, NESTED_IDS].contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if physical != f.name {
        metadata.insert(LABEL_KEY.into(), MetadataValue::String(f.name.clone()));
    }
    if let (true, Some(MetadataValue::Number(id))) = (ids, f.metadata.get(ID)) {
        metadata.insert(FIELD_ID.into(), MetadataValue::String(id.to_string()));
    }
    let data_type = nested_type(&f.data_type, &mut |m| physical_field(m, ids))?;
    Ok(StructField::new(physical, data_type, f.nullable).with_metadata(metadata))
}

/// `t` with `field` applied to every struct member inside it (through arrays and maps too);
/// a type without members as it is.
fn nested_type(
    t: &DataType,
    field: &mut impl FnMut(&StructField) -> Result<StructField, DeltaTableError>,
) -> Result<DataType, DeltaTableError> {
    Ok(match t {
        DataType::Struct(s) => DataType::from(StructType::try_new(
            s.fields().map(&mut *field).collect::<Result<Vec<_>, _>>()?,
        )?),
        DataType::Array(a) => DataType::from(ArrayType::new(
            nested_type(a.element_type(), field)?,
            a.contains_null(),
        )),
        DataType::Map(m) => DataType::from(MapType::new(
            nested_type(m.key_type(), field)?,
            nested_type(m.value_type(), field)?,
            m.value_contains_null(),
        )),
        other => other.clone(),
    })
}

/// The table's partition columns by physical name (`partitionColumns` holds names in the
/// table).
pub(crate) fn physical_partition_columns(snapshot: &DeltaTableState) -> Vec<String> {
    let schema = snapshot.schema();
    snapshot
        .metadata()
        .partition_columns()
        .iter()
        .map(|p| match schema.field(p) {
            Some(f) if mode(snapshot).is_some() => physical_name(f).to_string(),
            _ => p.clone(),
        })
        .collect()
}

/// The Delta schema of a new mapped table from the schema deltadrop writes: each column named
/// as written, its physical name the one deltadrop works with, ids from 1.
fn logical_schema(ours: &Schema) -> Result<(StructType, i64), DeltaTableError> {
    let kernel: StructType = ours.try_into_kernel()?;
    let mut id = 0i64;
    let fields = kernel
        .fields()
        .map(|f| logical_field(f, &mut id))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((StructType::try_new(fields)?, id))
}

/// A column (or struct member, at any depth: the protocol wants every field mapped) named as
/// written, its physical name the one deltadrop works with, the next id.
fn logical_field(f: &StructField, id: &mut i64) -> Result<StructField, DeltaTableError> {
    *id += 1;
    let label = match f.metadata.get(LABEL_KEY) {
        Some(MetadataValue::String(l)) => l.clone(),
        _ => f.name.clone(),
    };
    let mut metadata = f.metadata.clone();
    metadata.remove(LABEL_KEY);
    metadata.insert(ID.into(), MetadataValue::Number(*id));
    metadata.insert(PHYSICAL.into(), MetadataValue::String(f.name.clone()));
    let data_type = nested_type(&f.data_type, &mut |m| logical_field(m, id))?;
    Ok(StructField::new(label, data_type, f.nullable).with_metadata(metadata))
}

/// Writes version 0 of a mapped table: protocol reader 2 / writer 5 (column mapping; writer 5
/// includes the change data feed, which `change_feed` turns on) and the schema of
/// [`logical_schema`]. Only if there is no version 0: Ok(false) when another writer created
/// the table first (the caller then checks theirs).
pub(crate) async fn create(
    url: &url::Url,
    options: &StorageOptions,
    name: &str,
    ours: &Schema,
    partition_by: &[String],
    change_feed: bool,
) -> Result<bool, DeltaTableError> {
    let (schema, max_id) = logical_schema(ours)?;
    let partitions: Vec<String> = partition_by
        .iter()
        .map(|p| {
            schema
                .fields()
                .find(|f| matches!(f.metadata.get(PHYSICAL), Some(MetadataValue::String(s)) if s == p))
                .map(|f| f.name.clone())
                .unwrap_or_else(|| p.clone())
        })
        .collect();
    let mut configuration = vec![
        (MODE.to_string(), "name".to_string()),
        (MAX_ID.to_string(), max_id.to_string()),
    ];
    if change_feed {
        configuration.push(("delta.enableChangeDataFeed".into(), "true".into()));
    }
    let metadata = deltalake::kernel::new_metadata(&schema, partitions, configuration)?
        .with_name(name.to_string())?;
    let protocol: Protocol = serde_json::from_value(serde_json::json!({
        "minReaderVersion": 2,
        "minWriterVersion": 5,
    }))?;
    let operation = DeltaOperation::Create {
        mode: SaveMode::ErrorIfExists,
        location: url.clone(),
        protocol: protocol.clone(),
        metadata: metadata.clone(),
    };
    let bytes = CommitData::new(
        vec![Action::Protocol(protocol), Action::Metadata(metadata)],
        operation,
        HashMap::new(),
        vec![],
    )
    .get_bytes()?;
    let table = deltalake::DeltaTableBuilder::from_url(url.clone())?
        .with_storage_options(options.0.clone())
        .build()?;
    match table
        .log_store()
        .write_commit_entry(0, CommitOrBytes::LogBytes(bytes), uuid::Uuid::new_v4())
        .await
    {
        Ok(()) => Ok(true),
        Err(TransactionError::VersionAlreadyExists(_)) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// The table's protocol as deltalake's writer checks see it once this room has taken column
/// mapping (name mode) off their hands: reader version 2 (or the `columnMapping` reader
/// feature) stands for nothing more than column mapping.
pub(crate) fn protocol_without_mapping(protocol: &Protocol) -> Result<Protocol, serde_json::Error> {
    let mut p = serde_json::to_value(protocol)?;
    if p["minReaderVersion"] == 2 {
        p["minReaderVersion"] = 1.into();
    }
    if let Some(features) = p["readerFeatures"].as_array_mut() {
        features.retain(|f| f != "columnMapping");
    }
    serde_json::from_value(p)
}

/// The writer's arrow schema for a mapped table's Parquet files: physical names, and each
/// column's id as its Parquet field id — readers such as delta-rs find a mapped column's data
/// by it.
pub(crate) fn writer_schema(snapshot: &DeltaTableState) -> Result<Arc<Schema>, DeltaTableError> {
    Ok(Arc::new(physical_schema(snapshot, true)?))
}

/// The table's metadata grown to `ours` (a column added by `on_new_column = "add"`): for a
/// mapped table, the columns it has keep their names, ids and physical names, and a new one
/// gets the next id (`delta.columnMapping.maxColumnId` moves with it); names as written stay
/// out of a table without column mapping.
pub(crate) fn grown_metadata(
    snapshot: &DeltaTableState,
    ours: &Schema,
) -> Result<deltalake::kernel::Metadata, DeltaTableError> {
    let kernel: StructType = ours.try_into_kernel()?;
    let metadata = snapshot.metadata().clone();
    if mode(snapshot).is_none() {
        let fields = kernel.fields().map(|f| {
            let mut f = f.clone();
            f.metadata.remove(LABEL_KEY);
            f
        });
        return Ok(metadata.with_schema(&StructType::try_new(fields.collect::<Vec<_>>())?)?);
    }
    let table = snapshot.schema();
    let mut max_id = metadata
        .configuration()
        .get(MAX_ID)
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or(0);
    let mut fields = Vec::new();
    for f in kernel.fields() {
        match table.fields().find(|t| physical_name(t) == f.name) {
            Some(t) => fields.push(t.clone()),
            None => fields.push(logical_field(f, &mut max_id)?),
        }
    }
    Ok(metadata
        .with_schema(&StructType::try_new(fields)?)?
        .add_config_key(MAX_ID.into(), max_id.to_string())?)
}
