//! Tables: opening (or creating) and checking them, their schema, and the Parquet
//! writers that fill them. An existing table is never rewritten: one this feed cannot write is
//! refused with what differs.

use deltalake::arrow::record_batch::RecordBatch;
use deltalake::kernel::engine::arrow_conversion::TryIntoKernel;
use deltalake::kernel::transaction::{CommitProperties, PROTOCOL};
use deltalake::kernel::StructType;
use deltalake::operations::create::CreateBuilder;
use deltalake::protocol::SaveMode;
use deltalake::writer::RecordBatchWriter;
use deltalake::{DeltaTable, DeltaTableError};

use super::{failed, table_err, DeltaError};
use crate::config::StorageOptions;
use crate::schema::{self, TableSchema};

/// Opens the table at `url`, creating it (and a local table's folder) with `ours` if there is
/// none. An existing table must have exactly these columns and types; it is never rewritten.
/// `change_feed`: a new table carries Delta's change data feed (its rows can change).
pub async fn open_or_create(
    url: &url::Url,
    options: &StorageOptions,
    name: &str,
    ours: &deltalake::arrow::datatypes::Schema,
    partition_by: &[String],
    change_feed: bool,
) -> Result<DeltaTable, DeltaError> {
    let table = match open_existing(url, options).await? {
        Some(t) => t,
        None if super::mapping::labelled(ours) => {
            log::info!("creating Delta table {url} (column names as written: column mapping)");
            let created =
                super::mapping::create(url, options, name, ours, partition_by, change_feed)
                    .await
                    .map_err(table_err(url))?;
            if !created {
                log::info!("table {url} was created by another writer meanwhile: using it");
            }
            load(url, options, None).await.map_err(table_err(url))?
        }
        None => {
            let kernel: StructType = ours
                .try_into_kernel()
                .map_err(DeltaError::step(url, "schema"))?;
            log::info!("creating Delta table {url}");
            let mut create = CreateBuilder::new();
            if change_feed {
                // Writer version 4, nothing more: readers need no new feature.
                create = create.with_configuration_property(
                    deltalake::TableProperty::EnableChangeDataFeed,
                    Some("true"),
                );
            }
            let created = create
                .with_location(url.to_string())
                .with_table_name(name.to_string())
                .with_columns(kernel.fields().cloned())
                .with_partition_columns(partition_by.to_vec())
                // Ignore: if someone else created it before our look, use theirs (checked below).
                .with_save_mode(SaveMode::Ignore)
                // Someone creating it between our look and our write (two daemons starting at
                // once) wins version 0; with retries deltalake would then commit our creation
                // again as version 1 — a second metadata commit that every writer must refuse.
                .with_commit_properties(CommitProperties::default().with_max_retries(0))
                .with_storage_options(options.0.clone())
                .await;
            if let Err(e) = created {
                if open_existing(url, options).await?.is_none() {
                    return Err(table_err(url)(e));
                }
                log::info!("table {url} was created by another writer meanwhile: using it");
            }
            load(url, options, None).await.map_err(table_err(url))?
        }
    };
    let theirs = table_arrow_schema(&table)?;
    let mut problems = schema::incompatibilities(ours, &theirs);
    let partitioned_by =
        super::mapping::physical_partition_columns(table.snapshot().map_err(table_err(url))?);
    if partitioned_by != partition_by {
        problems.push(format!(
            "the table is partitioned by [{}], the feed by [{}] (partition_by)",
            partitioned_by.join(", "),
            partition_by.join(", ")
        ));
    }
    if !problems.is_empty() {
        return Err(DeltaError::IncompatibleSchema {
            url: url.to_string(),
            problems,
        });
    }
    Ok(table)
}

/// Opens a table if there is one (checking that we can write it); creates a local table's
/// folder so that a later create works.
pub async fn open_existing(
    url: &url::Url,
    options: &StorageOptions,
) -> Result<Option<DeltaTable>, DeltaError> {
    local_folder(url)?;
    let table = match load(url, options, None).await {
        Ok(t) => t,
        Err(DeltaTableError::NotATable(_)) => return Ok(None),
        Err(e) => return Err(table_err(url)(e)),
    };
    let snapshot = table.snapshot().map_err(table_err(url))?;
    check_protocol(snapshot).map_err(|message| DeltaError::Protocol {
        url: url.to_string(),
        message,
    })?;
    Ok(Some(table))
}

/// Whether deltadrop can write a table of this protocol: what `deltalake` (built without
/// `datafusion`) writes, plus the change data feed, which deltadrop writes itself
/// (`change.rs`). The other features that writer version 4 implies — column invariants, CHECK
/// constraints, generated columns — are refused where the table uses them: deltadrop does
/// not enforce them.
fn check_protocol(snapshot: &deltalake::table::state::DeltaTableState) -> Result<(), String> {
    use deltalake::kernel::transaction::TransactionError;
    let mapped = super::mapping::mode(snapshot);
    if let Some(m) = mapped.filter(|m| !m.eq_ignore_ascii_case("name")) {
        return Err(format!(
            "column mapping mode '{m}' (deltadrop writes tables with column mapping in name mode)"
        ));
    }
    let checked = match mapped {
        // Column mapping is deltadrop's own (mapping.rs): deltalake checks the rest.
        Some(_) => {
            let protocol = super::mapping::protocol_without_mapping(snapshot.protocol())
                .map_err(|e| e.to_string())?;
            PROTOCOL.can_write_to(&Unmapped {
                table: snapshot,
                protocol,
            })
        }
        None => PROTOCOL.can_write_to(snapshot),
    };
    match checked {
        Ok(()) => Ok(()),
        Err(TransactionError::UnsupportedTableFeatures(missing)) => {
            let ours = [
                "columnMapping",
                "changeDataFeed",
                "invariants",
                "checkConstraints",
                "generatedColumns",
            ];
            if let Some(f) = missing
                .iter()
                .find(|f| !ours.contains(&f.to_string().as_str()))
            {
                return Err(format!("{f} ({} feature(s) in all)", missing.len()));
            }
            let metadata = snapshot.metadata();
            if let Some(k) = metadata
                .configuration()
                .keys()
                .find(|k| k.starts_with("delta.constraints."))
            {
                return Err(format!("CHECK constraint {k}"));
            }
            let schema = serde_json::to_string(&snapshot.schema()).unwrap_or_default();
            for used in ["delta.invariants", "delta.generationExpression"] {
                if schema.contains(used) {
                    return Err(format!("a column with {used}"));
                }
            }
            Ok(())
        }
        Err(e) => Err(e.to_string()),
    }
}

/// A mapped table as deltalake's writer checks see it: its protocol without column mapping.
struct Unmapped<'a> {
    table: &'a deltalake::table::state::DeltaTableState,
    protocol: deltalake::kernel::Protocol,
}

impl deltalake::kernel::transaction::TableReference for Unmapped<'_> {
    fn config(&self) -> &delta_kernel::table_properties::TableProperties {
        deltalake::kernel::transaction::TableReference::config(self.table)
    }
    fn protocol(&self) -> &deltalake::kernel::Protocol {
        &self.protocol
    }
    fn metadata(&self) -> &deltalake::kernel::Metadata {
        deltalake::kernel::transaction::TableReference::metadata(self.table)
    }
    fn eager_snapshot(&self) -> &deltalake::kernel::EagerSnapshot {
        deltalake::kernel::transaction::TableReference::eager_snapshot(self.table)
    }
}

/// A local table's folder, created if missing (None for a cloud table).
fn local_folder(url: &url::Url) -> Result<Option<std::path::PathBuf>, DeltaError> {
    let Some(path) = (url.scheme() == "file")
        .then(|| url.to_file_path().ok())
        .flatten()
    else {
        return Ok(None);
    };
    std::fs::create_dir_all(&path).map_err(DeltaError::step(
        url,
        format!("cannot create folder {}", path.display()),
    ))?;
    Ok(Some(path))
}

/// Before a committer's first write to a local table: the folder must take hard links (see
/// `localfs`). Once per table and start, not on every open (maintenance opens tables too).
pub(crate) fn check_writable_folder(url: &url::Url) -> Result<(), DeltaError> {
    match local_folder(url)? {
        Some(path) => {
            super::localfs::check_table_folder(&path).map_err(|source| DeltaError::Folder {
                url: url.to_string(),
                source,
            })
        }
        None => Ok(()),
    }
}

/// Loads the table at `url` (at `version`, or the newest) with the feed's storage options.
pub async fn load(
    url: &url::Url,
    options: &StorageOptions,
    version: Option<i64>,
) -> Result<DeltaTable, DeltaTableError> {
    let mut builder = deltalake::DeltaTableBuilder::from_url(url.clone())?
        .with_storage_options(options.0.clone());
    if let Some(v) = version {
        builder = builder.with_version(v.max(0) as u64);
    }
    builder.load().await
}

pub fn table_arrow_schema(
    table: &DeltaTable,
) -> Result<deltalake::arrow::datatypes::Schema, DeltaError> {
    let url = table.table_url();
    let snapshot = table.snapshot().map_err(table_err(url))?;
    super::mapping::physical_arrow(snapshot).map_err(DeltaError::step(url, "schema"))
}

/// A writer for Parquet files of `table`. Files roll at 64 MiB and row groups hold at most
/// 256Ki rows: both bound what a worker keeps in memory while it streams a large CSV file
/// (measured in BENCHMARKS.md).
pub fn writer_for(table: &DeltaTable) -> Result<RecordBatchWriter, DeltaError> {
    let props = deltalake::parquet::file::properties::WriterProperties::builder()
        .set_created_by(format!("deltadrop {}", env!("CARGO_PKG_VERSION")))
        .set_compression(deltalake::parquet::basic::Compression::SNAPPY)
        .set_max_row_group_row_count(Some(256 * 1024))
        // A column with many distinct values (ids, timestamps) is interned into a dictionary
        // until the dictionary reaches this size, then written plain; at the 1 MiB default that
        // wasted interning was a fifth of the CPU time of a large file (perf, BENCHMARKS.md).
        // Columns with few distinct values (stores, products, prices) stay well under it.
        .set_dictionary_page_size_limit(128 * 1024)
        .build();
    let url = table.table_url();
    let snapshot = table.snapshot().map_err(table_err(url))?;
    let writer = if super::mapping::mode(snapshot).is_some() {
        // deltalake refuses to build a writer from a mapped table; one built from its physical
        // schema writes what the protocol asks (physical names in files and statistics).
        RecordBatchWriter::try_new(
            url.as_str(),
            super::mapping::writer_schema(snapshot).map_err(table_err(url))?,
            Some(super::mapping::physical_partition_columns(snapshot)),
            Some(table.log_store().config().options().raw.clone()),
        )
    } else {
        RecordBatchWriter::for_table(table)
    }
    .map_err(table_err(url))?;
    Ok(writer
        .with_writer_properties(props)
        .with_target_file_size(64 * 1024 * 1024))
}

/// `schema` with the table's names as written: a table keeps the naming it was created with,
/// whatever the feed's `column_names` says now (the batches then carry what its writer
/// expects).
pub(crate) fn named_as_table(
    mut schema: TableSchema,
    table: &deltalake::arrow::datatypes::Schema,
) -> TableSchema {
    for c in &mut schema.columns {
        let Ok(f) = table.field_with_name(&c.name) else {
            c.label = None;
            continue;
        };
        c.label = f.metadata().get(crate::schema::LABEL_KEY).cloned();
        // A struct's members named as the table names them, at every depth.
        if c.ty.is_nested()
            && crate::schema::bare(f.data_type()) == crate::schema::bare(&c.ty.arrow())
        {
            if let Some(t) = crate::schema::ColType::from_arrow(f.data_type()) {
                c.ty = t;
            }
        }
    }
    schema
}

/// `batch` with the columns of `target` in its order; columns it lacks are null.
pub(crate) fn conform(
    batch: RecordBatch,
    target: &deltalake::arrow::datatypes::SchemaRef,
) -> Result<RecordBatch, DeltaTableError> {
    if batch.schema().fields() == target.fields() {
        return Ok(batch);
    }
    let cols = target
        .fields()
        .iter()
        .map(|f| match batch.column_by_name(f.name()) {
            Some(c) if c.data_type() != f.data_type() => retyped(c, f.data_type()),
            Some(c) => Ok(c.clone()),
            None => Ok(deltalake::arrow::array::new_null_array(
                f.data_type(),
                batch.num_rows(),
            )),
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| failed("rows in the table's columns", e))?;
    RecordBatch::try_new(target.clone(), cols).map_err(|e| failed("rows in the table's columns", e))
}

/// A struct or list column given the table's type for it: the same values, its members'
/// metadata the table's (a mapped table's Parquet field ids, names as written). Arrow compares
/// nested fields with their metadata; any other difference is left for the batch to refuse.
fn retyped(
    c: &deltalake::arrow::array::ArrayRef,
    to: &deltalake::arrow::datatypes::DataType,
) -> Result<deltalake::arrow::array::ArrayRef, deltalake::arrow::error::ArrowError> {
    use deltalake::arrow::array::{Array, AsArray, ListArray, StructArray};
    use deltalake::arrow::datatypes::DataType as D;
    Ok(match (c.data_type(), to) {
        (D::Struct(_), D::Struct(fields)) if c.as_struct().num_columns() == fields.len() => {
            let s = c.as_struct();
            let children = s
                .columns()
                .iter()
                .zip(fields.iter())
                .map(|(a, f)| match a.data_type() == f.data_type() {
                    true => Ok(a.clone()),
                    false => retyped(a, f.data_type()),
                })
                .collect::<Result<Vec<_>, _>>()?;
            std::sync::Arc::new(StructArray::try_new(
                fields.clone(),
                children,
                s.nulls().cloned(),
            )?)
        }
        (D::List(_), D::List(field)) => {
            let l = c.as_list::<i32>();
            let values = match l.values().data_type() == field.data_type() {
                true => l.values().clone(),
                false => retyped(l.values(), field.data_type())?,
            };
            std::sync::Arc::new(ListArray::try_new(
                field.clone(),
                l.offsets().clone(),
                values,
                l.nulls().cloned(),
            )?)
        }
        _ => c.clone(),
    })
}

/// The feed's columns grown by the nullable columns an earlier run added to the table, in the
/// table's order (formats and types of configured columns kept).
pub(crate) fn grown_schema(
    config: &TableSchema,
    table: &deltalake::arrow::datatypes::Schema,
) -> TableSchema {
    let Ok(from_table) = TableSchema::from_arrow(table) else {
        return config.clone();
    };
    if config
        .columns
        .iter()
        .any(|c| from_table.position(&c.name).is_none())
    {
        // The table lacks configured columns: let the compatibility check say so.
        return config.clone();
    }
    TableSchema {
        columns: from_table
            .columns
            .into_iter()
            .map(|tc| {
                config
                    .columns
                    .iter()
                    .find(|c| c.name == tc.name)
                    .cloned()
                    .unwrap_or(tc)
            })
            .collect(),
        rescued: config.rescued,
        partition: config.partition.clone(),
    }
}

pub(crate) fn txn_version(
    rt: &tokio::runtime::Runtime,
    table: &DeltaTable,
    app_id: &str,
) -> Result<Option<i64>, DeltaError> {
    let url = table.table_url();
    rt.block_on(
        table
            .snapshot()
            .map_err(table_err(url))?
            .transaction_version(table.log_store().as_ref(), app_id),
    )
    .map_err(table_err(url))
}

/// The rows of one data file of `table` (`path` as the log names it).
pub fn read_data_file(
    rt: &tokio::runtime::Runtime,
    table: &DeltaTable,
    path: &str,
) -> Result<Vec<RecordBatch>, DeltaTableError> {
    use deltalake::logstore::object_store::ObjectStoreExt;
    use deltalake::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let location = deltalake::Path::parse(path).map_err(|e| failed(path, e))?;
    let store = table.object_store();
    let bytes = rt
        .block_on(async { store.get(&location).await?.bytes().await })
        .map_err(|e| failed(format!("{path}: reading"), e))?;
    ParquetRecordBatchReaderBuilder::try_new(bytes)
        .and_then(|b| b.build())
        .map_err(|e| failed(path, e))?
        .map(|b| b.map_err(|e| failed(path, e)))
        .collect()
}

/// The rows of one data file as rows of the table `schema`: its partition columns put back
/// (partition values live in the log, not in the file, and a writer files rows under them) and
/// columns added after it was written null. What compaction and corrections rewrite.
pub(crate) fn read_rows(
    rt: &tokio::runtime::Runtime,
    table: &DeltaTable,
    schema: &deltalake::arrow::datatypes::SchemaRef,
    path: &str,
    partition: &std::collections::HashMap<String, Option<String>>,
) -> Result<Vec<RecordBatch>, DeltaTableError> {
    read_data_file(rt, table, path)?
        .into_iter()
        .map(|b| conform(with_partition_values(b, schema, partition)?, schema))
        .collect()
}

/// Deletes data files written for a commit that did not happen (best effort: vacuum finds any
/// left over once they are older than its retention).
pub(crate) fn delete_files<'a>(
    rt: &tokio::runtime::Runtime,
    table: &DeltaTable,
    paths: impl IntoIterator<Item = &'a str>,
) {
    use deltalake::logstore::object_store::ObjectStoreExt;
    let store = table.object_store();
    for p in paths {
        if let Ok(p) = deltalake::Path::parse(p) {
            let _ = rt.block_on(store.delete(&p));
        }
    }
}

/// `batch` (read from a data file) with its partition columns added back, each filled with
/// the file's partition value, typed as in the table's `schema`.
fn with_partition_values(
    batch: RecordBatch,
    schema: &deltalake::arrow::datatypes::SchemaRef,
    partition: &std::collections::HashMap<String, Option<String>>,
) -> Result<RecordBatch, DeltaTableError> {
    if partition.is_empty() {
        return Ok(batch);
    }
    let err = |e: deltalake::arrow::error::ArrowError| failed("partition values", e);
    let mut fields: Vec<_> = batch.schema().fields().iter().cloned().collect();
    let mut columns = batch.columns().to_vec();
    for (name, value) in partition {
        let Ok(field) = schema.field_with_name(name) else {
            continue;
        };
        let text =
            deltalake::arrow::array::StringArray::from(vec![value.as_deref(); batch.num_rows()]);
        columns.push(deltalake::arrow::compute::cast(&text, field.data_type()).map_err(err)?);
        fields.push(std::sync::Arc::new(field.clone()));
    }
    let with = std::sync::Arc::new(deltalake::arrow::datatypes::Schema::new(fields));
    RecordBatch::try_new(with, columns).map_err(err)
}

/// The action that takes a data file out of the table. `data_change = false` (compaction):
/// the rows are still there, in other files; true: they are gone.
pub fn remove(
    path: &str,
    size: u64,
    partition: &std::collections::HashMap<String, Option<String>>,
    data_change: bool,
) -> deltalake::kernel::Action {
    deltalake::kernel::Action::Remove(deltalake::kernel::Remove {
        path: path.to_string(),
        data_change,
        deletion_timestamp: Some(chrono::Utc::now().timestamp_millis()),
        extended_file_metadata: Some(true),
        partition_values: Some(partition.clone()),
        size: Some(size as i64),
        tags: None,
        deletion_vector: None,
        base_row_id: None,
        default_row_commit_version: None,
    })
}
