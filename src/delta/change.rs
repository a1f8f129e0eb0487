//! Commits that change rows: a corrected file replacing what its name loaded before
//! (`on_resend = "replace"`) and upserts by key (`merge_key`). Copy-on-write, as Delta
//! defines it without deletion vectors: a data file holding only replaced rows is removed, one
//! that also holds other rows is rewritten without them, and no other file is read (the file
//! index's statistics say which can hold the rows). The change data feed of the table gets
//! every row the commit deletes, updates or inserts (`cdc` actions, files under
//! `_change_data/`).

use std::collections::HashSet;
use std::sync::Arc;

use deltalake::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, StringArray};
use deltalake::arrow::compute::filter_record_batch;
use deltalake::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use deltalake::arrow::record_batch::RecordBatch;
use deltalake::kernel::{Action, Add, AddCDCFile};
use deltalake::writer::{DeltaWriter, RecordBatchWriter};
use deltalake::{DeltaTable, DeltaTableError};

use super::files::{key_of, FileIndex, IndexedFile, Keys, Touch};
use super::table::{delete_files, read_rows, remove, writer_for};
use super::{failed, DeltaError};
use crate::config::FeedConfig;
use crate::schema::SOURCE_FILE;

/// The change data feed's column: what happened to the row.
pub(crate) const CHANGE_TYPE: &str = "_change_type";
/// Where change data files go, under the table's root.
const CHANGE_DATA: &str = "_change_data";

/// What a change did to the rows already in the table, and the actions that do it.
#[derive(Debug, Default)]
pub(crate) struct Planned {
    /// Removes, the rewritten files' adds, and the change data feed's `cdc` files.
    pub(crate) actions: Vec<Action>,
    /// The files it removed or rewrote: another writer removing one first makes it stale.
    pub(crate) read: HashSet<String>,
    /// Files written for it (table-relative), deleted if it is not committed.
    pub(crate) written: Vec<String>,
    pub(crate) removed_rows: u64,
    pub(crate) removed_files: usize,
    pub(crate) rewritten_files: usize,
    /// Keys of the new rows that were in the table (updates); the others are inserts.
    pub(crate) updated_keys: HashSet<Vec<u8>>,
}

/// Plans and writes (but does not commit) the change: reads the files that may hold rows
/// `touch` replaces, writes what they keep, and the change data feed of the commit whose
/// new rows are `new_rows` (when the table has one). The files are read and rewritten on
/// every core: each is decoded and encoded again whole, which is most of an upsert's time.
pub(crate) fn plan(
    rt: &tokio::runtime::Runtime,
    table: &DeltaTable,
    feed: &FeedConfig,
    index: &FileIndex,
    touch: &Touch,
    new_rows: &[RecordBatch],
) -> Result<Planned, DeltaTableError> {
    let schema: SchemaRef = Arc::new(
        super::table::table_arrow_schema(table).map_err(|e| failed("the table's schema", e))?,
    );
    let candidates = index.candidates(touch);
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 4)
        .min(candidates.len().max(1));
    let mut shares: Vec<Vec<(String, IndexedFile)>> = vec![Vec::new(); threads];
    for (i, c) in candidates.into_iter().enumerate() {
        shares[i % threads].push(c);
    }
    // A current-thread runtime takes block_on from several threads: one drives its I/O, the
    // others hook into it.
    let rewrite = |share: Vec<(String, IndexedFile)>| {
        share
            .into_iter()
            .map(|(path, file)| rewrite_file(rt, table, &schema, touch, path, file))
            .collect::<Result<Vec<_>, _>>()
    };
    let mut outcomes: Vec<Rewritten> = Vec::new();
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = shares
            .into_iter()
            .map(|share| s.spawn(move || rewrite(share)))
            .collect();
        handles.into_iter().map(|h| h.join()).collect()
    });
    let mut first_err = None;
    for r in results {
        match r {
            Ok(Ok(o)) => outcomes.extend(o.into_iter().flatten()),
            Ok(Err(e)) => {
                first_err.get_or_insert(e);
            }
            Err(_) => {
                // A panic carries no error to keep: its message is the whole story.
                first_err
                    .get_or_insert(DeltaTableError::Generic("a rewrite thread panicked".into()));
            }
        }
    }
    outcomes.sort_by(|a, b| a.path.cmp(&b.path));
    let mut planned = Planned::default();
    for o in &outcomes {
        planned
            .written
            .extend(o.adds.iter().map(|a| a.path.clone()));
    }
    if let Some(e) = first_err {
        discard(rt, table, &planned.written);
        return Err(e);
    }
    let mut cdc = match change_feed(table) {
        true => Some(ChangeWriter::new(feed, &schema)?),
        false => None,
    };
    for o in outcomes {
        planned.read.insert(o.path.clone());
        planned.removed_rows += o.removed;
        planned
            .actions
            .push(remove(&o.path, o.size.max(0) as u64, &o.partition, true));
        if o.adds.is_empty() {
            planned.removed_files += 1;
        } else {
            planned.rewritten_files += 1;
        }
        planned.actions.extend(o.adds.into_iter().map(Action::Add));
        planned.updated_keys.extend(o.found);
        if let Some(cdc) = cdc.as_mut() {
            for (gone, types) in o.gone {
                cdc.write(rt, gone, &types)?;
            }
        }
    }
    let key_cols = touch.keys.as_ref().map(|k| k.columns.as_slice());
    if let Some(mut cdc) = cdc {
        if !planned.read.is_empty() {
            for b in new_rows {
                let types = inserted_types(b, key_cols, &planned.updated_keys);
                cdc.write(rt, b.clone(), &types)?;
            }
        }
        let files = cdc.finish(rt)?;
        planned.written.extend(files.iter().map(|c| c.path.clone()));
        planned.actions.extend(files.into_iter().map(Action::Cdc));
    }
    Ok(planned)
}

/// One data file the change touches: what it lost and what replaces it.
struct Rewritten {
    path: String,
    size: i64,
    partition: std::collections::HashMap<String, Option<String>>,
    removed: u64,
    /// The file holding the rows it keeps (none: every row went).
    adds: Vec<Add>,
    /// The rows it lost, each with its change type.
    gone: Vec<(RecordBatch, Vec<&'static str>)>,
    /// The keys it held of those the commit brings.
    found: HashSet<Vec<u8>>,
}

/// Reads one candidate file; if it holds rows `touch` replaces, writes the rest into a new
/// file of its own (merged, rewritten files' key ranges would span the table and every later
/// upsert would read them again). None: it holds none.
fn rewrite_file(
    rt: &tokio::runtime::Runtime,
    table: &DeltaTable,
    schema: &SchemaRef,
    touch: &Touch,
    path: String,
    file: IndexedFile,
) -> Result<Option<Rewritten>, DeltaTableError> {
    let key_cols = touch.keys.as_ref().map(|k| k.columns.as_slice());
    let mut found = HashSet::new();
    let mut removed = 0u64;
    let mut parts = Vec::new();
    for b in read_rows(rt, table, schema, &path, &file.partition)? {
        let (mask, by_key) = replaced_rows(&b, touch, key_cols, &mut found);
        removed += mask.true_count() as u64;
        parts.push((b, mask, by_key));
    }
    if removed == 0 {
        return Ok(None);
    }
    let mut kept: Option<RecordBatchWriter> = None;
    let mut gone = Vec::new();
    for (b, mask, by_key) in parts {
        let keep = deltalake::arrow::compute::not(&mask).map_err(arrow)?;
        let rest = filter_record_batch(&b, &keep).map_err(arrow)?;
        if rest.num_rows() > 0 {
            let w = match kept.as_mut() {
                Some(w) => w,
                None => kept.insert(writer_for(table).map_err(|e| failed("a Parquet writer", e))?),
            };
            rt.block_on(w.write(rest))?;
        }
        let lost = filter_record_batch(&b, &mask).map_err(arrow)?;
        let by_key = deltalake::arrow::compute::filter(&by_key, &mask).map_err(arrow)?;
        let types = by_key
            .as_boolean()
            .iter()
            .map(|k| match k {
                Some(true) => "update_preimage",
                _ => "delete",
            })
            .collect();
        gone.push((lost, types));
    }
    let adds = match kept.as_mut() {
        Some(w) => rt.block_on(w.flush())?,
        None => Vec::new(),
    };
    Ok(Some(Rewritten {
        path,
        size: file.size,
        partition: file.partition,
        removed,
        adds,
        gone,
        found,
    }))
}

/// Which rows of `b` the change replaces, and which of them by key (an update rather than a
/// delete); the keys found go to `found`.
fn replaced_rows(
    b: &RecordBatch,
    touch: &Touch,
    key_cols: Option<&[String]>,
    found: &mut HashSet<Vec<u8>>,
) -> (BooleanArray, BooleanArray) {
    let n = b.num_rows();
    let mut by_name = vec![false; n];
    if !touch.names.is_empty() {
        if let Some(src) = b
            .column_by_name(SOURCE_FILE)
            .and_then(|c| c.as_any().downcast_ref::<StringArray>())
        {
            for (i, v) in src.iter().enumerate() {
                by_name[i] = v.is_some_and(|v| touch.names.contains(v));
            }
        }
    }
    let mut by_key = vec![false; n];
    if let (Some(keys), Some(cols)) = (touch.keys.as_ref(), key_columns(b, key_cols)) {
        for (i, k) in by_key.iter_mut().enumerate() {
            let key = key_of(&cols, i);
            if keys.rows.contains(&key) {
                *k = true;
                found.insert(key);
            }
        }
    }
    let mask = by_name.iter().zip(&by_key).map(|(a, b)| *a || *b);
    (
        BooleanArray::from(mask.collect::<Vec<_>>()),
        BooleanArray::from(by_key),
    )
}

fn key_columns(b: &RecordBatch, key_cols: Option<&[String]>) -> Option<Vec<ArrayRef>> {
    key_cols?
        .iter()
        .map(|c| b.column_by_name(c).cloned())
        .collect()
}

/// The change type of each new row: an update of a key that was in the table, else an insert.
fn inserted_types(
    b: &RecordBatch,
    key_cols: Option<&[String]>,
    updated: &HashSet<Vec<u8>>,
) -> Vec<&'static str> {
    let cols = key_columns(b, key_cols);
    (0..b.num_rows())
        .map(|i| match &cols {
            Some(cols) if updated.contains(&key_of(cols, i)) => "update_postimage",
            _ => "insert",
        })
        .collect()
}

/// What [`last_row_per_key`] keeps of a commit's files.
pub(crate) struct LastRows {
    /// Each file's batches, without the rows a later row of their key replaces.
    pub(crate) files: Vec<Vec<RecordBatch>>,
    /// How many rows each file lost that way.
    pub(crate) dropped: Vec<u64>,
    pub(crate) keys: Keys,
}

/// The last row of each key across `batches` (file order, then line order) and how many rows
/// each file lost to a later row of its key. Rows are dropped, never reordered.
pub(crate) fn last_row_per_key(
    batches: Vec<Vec<RecordBatch>>,
    key: &[String],
) -> Result<LastRows, DeltaTableError> {
    let mut keys = Keys::new(key.to_vec());
    // Walk backwards: the first sighting of a key is its last row.
    let mut out: Vec<Vec<RecordBatch>> = Vec::with_capacity(batches.len());
    let mut dropped = vec![0u64; batches.len()];
    for (fi, file) in batches.into_iter().enumerate().rev() {
        let mut kept_file = Vec::with_capacity(file.len());
        for b in file.into_iter().rev() {
            let cols = key_columns(&b, Some(key)).ok_or_else(|| {
                DeltaTableError::Generic(format!(
                    "merge_key: the rows lack a key column ({})",
                    key.join(", ")
                ))
            })?;
            let mut keep = vec![false; b.num_rows()];
            for i in (0..b.num_rows()).rev() {
                keep[i] = keys.insert(&cols, i);
            }
            let keep = BooleanArray::from(keep);
            dropped[fi] += (b.num_rows() - keep.true_count()) as u64;
            kept_file.push(filter_record_batch(&b, &keep).map_err(arrow)?);
        }
        kept_file.reverse();
        out.push(kept_file);
    }
    out.reverse();
    keys.seal();
    Ok(LastRows {
        files: out,
        dropped,
        keys,
    })
}

/// Whether the table's rows carry a change data feed (`delta.enableChangeDataFeed`).
pub(crate) fn change_feed(table: &DeltaTable) -> bool {
    table.snapshot().is_ok_and(|s| {
        s.metadata()
            .configuration()
            .get("delta.enableChangeDataFeed")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    })
}

/// Writes change data files: the table's columns and `_change_type`, partitioned like the
/// table, under `_change_data/`.
struct ChangeWriter {
    writer: RecordBatchWriter,
    schema: SchemaRef,
}

impl ChangeWriter {
    fn new(feed: &FeedConfig, table: &SchemaRef) -> Result<ChangeWriter, DeltaTableError> {
        let mut fields: Vec<Field> = table.fields().iter().map(|f| f.as_ref().clone()).collect();
        fields.push(Field::new(CHANGE_TYPE, DataType::Utf8, false));
        let schema = Arc::new(Schema::new(fields));
        let url = format!(
            "{}/{CHANGE_DATA}",
            feed.table_url.as_str().trim_end_matches('/')
        );
        let writer = RecordBatchWriter::try_new(
            url,
            schema.clone(),
            Some(feed.schema.partition_columns()),
            Some(feed.storage_options.0.clone()),
        )?;
        Ok(ChangeWriter { writer, schema })
    }

    fn write(
        &mut self,
        rt: &tokio::runtime::Runtime,
        batch: RecordBatch,
        types: &[&'static str],
    ) -> Result<(), DeltaTableError> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let mut cols = batch.columns().to_vec();
        cols.push(Arc::new(StringArray::from(types.to_vec())) as ArrayRef);
        let b = RecordBatch::try_new(self.schema.clone(), cols).map_err(arrow)?;
        rt.block_on(self.writer.write(b))
    }

    fn finish(mut self, rt: &tokio::runtime::Runtime) -> Result<Vec<AddCDCFile>, DeltaTableError> {
        let adds: Vec<Add> = rt.block_on(self.writer.flush())?;
        Ok(adds
            .into_iter()
            .map(|a| AddCDCFile {
                path: format!("{CHANGE_DATA}/{}", a.path),
                size: a.size,
                partition_values: a.partition_values,
                data_change: false,
                tags: None,
            })
            .collect())
    }
}

/// Deletes files written for a change that was not committed.
pub(crate) fn discard(rt: &tokio::runtime::Runtime, table: &DeltaTable, written: &[String]) {
    delete_files(rt, table, written.iter().map(String::as_str));
}

/// The rows of files that were streamed to Parquet ahead of the commit (large files), read
/// back for the change data feed.
pub(crate) fn rows_of(
    rt: &tokio::runtime::Runtime,
    table: &DeltaTable,
    adds: &[Add],
) -> Result<Vec<RecordBatch>, DeltaTableError> {
    let schema: SchemaRef = Arc::new(
        super::table::table_arrow_schema(table).map_err(|e| failed("the table's schema", e))?,
    );
    let mut out = Vec::new();
    for a in adds {
        out.extend(read_rows(rt, table, &schema, &a.path, &a.partition_values)?);
    }
    Ok(out)
}

/// An Arrow error while the rows of a change are selected or built.
fn arrow(e: deltalake::arrow::error::ArrowError) -> DeltaTableError {
    failed("rows of the change", e)
}

/// Counts of what a change did, for the commit's metadata and the log line.
pub(crate) fn summary(planned: &Planned, names: usize, duplicates: u64) -> serde_json::Value {
    serde_json::json!({
        "replacedNames": names,
        "removedRows": planned.removed_rows,
        "removedFiles": planned.removed_files,
        "rewrittenFiles": planned.rewritten_files,
        "updatedKeys": planned.updated_keys.len(),
        "duplicateKeys": duplicates,
    })
}

/// Before a committer of a feed whose rows change writes: the `merge_key` columns are in
/// the table, and the table carries the change data feed (an existing table gets it in one
/// protocol + metadata commit: writer version 4, or the `changeDataFeed` feature on a table
/// with table features; readers need nothing new).
pub(crate) fn prepare(
    rt: &tokio::runtime::Runtime,
    table: &mut DeltaTable,
    log: &mut super::log::Log,
    feed: &FeedConfig,
) -> Result<(), super::DeltaError> {
    let url = table.table_url().to_string();
    let schema = super::table::table_arrow_schema(table)?;
    for k in &feed.merge_key {
        let problem = match schema.field_with_name(k) {
            Err(_) => format!("merge_key names column '{k}', which the table does not have"),
            Ok(f) if f.data_type().is_nested() => format!(
                "merge_key names column '{k}', a {} column: a key is one or more scalar columns",
                f.data_type()
            ),
            Ok(_) => continue,
        };
        return Err(super::DeltaError::IncompatibleSchema {
            url,
            problems: vec![problem],
        });
    }
    if change_feed(table) {
        return Ok(());
    }
    let at = table.table_url().clone();
    let snapshot = table.snapshot().map_err(super::table_err(&at))?;
    let mut protocol =
        serde_json::to_value(snapshot.protocol()).map_err(DeltaError::step(&at, "protocol"))?;
    let writer = protocol["minWriterVersion"].as_i64().unwrap_or(1);
    if writer >= 7 {
        let features = protocol["writerFeatures"].as_array_mut().ok_or_else(|| {
            DeltaError::step(&at, "protocol")("writer version 7 without writerFeatures")
        })?;
        if !features.iter().any(|f| f == "changeDataFeed") {
            features.push("changeDataFeed".into());
        }
    } else if writer < 4 {
        // Writer version 4 brings the change data feed; 5 and 6 (column mapping) include it.
        protocol["minWriterVersion"] = 4.into();
    }
    let protocol: deltalake::kernel::Protocol =
        serde_json::from_value(protocol).map_err(DeltaError::step(&at, "protocol"))?;
    let metadata = deltalake::kernel::MetadataExt::add_config_key(
        snapshot.metadata().clone(),
        "delta.enableChangeDataFeed".into(),
        "true".into(),
    )
    .map_err(DeltaError::step(&at, "metadata"))?;
    let properties = [("delta.enableChangeDataFeed".to_string(), "true".to_string())]
        .into_iter()
        .collect();
    let v = log
        .commit(
            rt,
            super::log::Commit::other(
                vec![Action::Protocol(protocol), Action::Metadata(metadata)],
                deltalake::protocol::DeltaOperation::SetTableProperties { properties },
                Default::default(),
            ),
        )
        .map_err(DeltaError::step(&at, "enabling the change data feed"))?;
    rt.block_on(table.load())
        .map_err(DeltaError::step(&at, "loading the table again"))?;
    log::info!(
        "table {url}: rows of feed {} can change (on_resend = \"replace\" or merge_key): the change data feed is on from version {v} (delta.enableChangeDataFeed)",
        feed.name
    );
    Ok(())
}

/// The operation a change commit records (Spark's `DESCRIBE HISTORY` shows it).
pub(crate) fn operation(touch: &Touch) -> deltalake::protocol::DeltaOperation {
    use deltalake::protocol::{DeltaOperation, MergePredicate, SaveMode};
    match &touch.keys {
        Some(k) => {
            let on = k
                .columns
                .iter()
                .map(|c| format!("target.{c} = source.{c}"))
                .collect::<Vec<_>>()
                .join(" AND ");
            DeltaOperation::Merge {
                predicate: None,
                merge_predicate: Some(on),
                matched_predicates: vec![MergePredicate {
                    action_type: "update".into(),
                    predicate: None,
                }],
                not_matched_predicates: vec![MergePredicate {
                    action_type: "insert".into(),
                    predicate: None,
                }],
                not_matched_by_source_predicates: vec![],
            }
        }
        None => DeltaOperation::Write {
            mode: SaveMode::Overwrite,
            partition_by: None,
            predicate: Some(format!(
                "{SOURCE_FILE} IN ({})",
                touch
                    .names
                    .iter()
                    .map(|n| format!("'{}'", n.replace('\'', "''")))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use deltalake::arrow::array::{Int64Array, StringArray};
    use deltalake::arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    fn batch(ids: &[&str], amounts: &[i64]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Utf8, false),
            Field::new("amount", DataType::Int64, false),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(ids.to_vec())),
                Arc::new(Int64Array::from(amounts.to_vec())),
            ],
        )
        .unwrap()
    }

    fn amounts(b: &[RecordBatch]) -> Vec<i64> {
        b.iter()
            .flat_map(|b| {
                let a = b.column(1).as_any().downcast_ref::<Int64Array>().unwrap();
                a.values().to_vec()
            })
            .collect()
    }

    #[test]
    fn the_last_row_of_a_key_wins_across_files_then_lines() {
        let key = vec!["id".to_string()];
        let files = vec![
            vec![batch(&["a", "b", "a"], &[1, 2, 3])],
            vec![batch(&["c"], &[4]), batch(&["b", "d"], &[5, 6])],
        ];
        let last = last_row_per_key(files, &key).unwrap();
        // File 1 keeps its second "a" (line order); its "b" goes to file 2's later row.
        assert_eq!(amounts(&last.files[0]), vec![3]);
        assert_eq!(amounts(&last.files[1]), vec![4, 5, 6]);
        assert_eq!(last.dropped, vec![2, 0]);
        let touch = Touch {
            names: Default::default(),
            keys: Some(last.keys),
        };
        assert!(!touch.is_empty());
    }

    #[test]
    fn rows_without_the_key_column_are_refused() {
        let key = vec!["order_id".to_string()];
        let err = last_row_per_key(vec![vec![batch(&["a"], &[1])]], &key)
            .err()
            .unwrap();
        assert!(err.to_string().contains("order_id"), "{err}");
    }

    #[test]
    fn a_correction_records_a_write_by_source_file_and_an_upsert_a_merge_on_its_keys() {
        use deltalake::protocol::DeltaOperation;
        let names = Touch {
            names: ["o'brien.csv".to_string()].into_iter().collect(),
            keys: None,
        };
        match operation(&names) {
            DeltaOperation::Write { predicate, .. } => {
                assert_eq!(
                    predicate.as_deref(),
                    Some("_source_file IN ('o''brien.csv')")
                )
            }
            other => panic!("{other:?}"),
        }
        let mut keys = Keys::new(vec!["store".into(), "sale".into()]);
        keys.seal();
        let upsert = Touch {
            names: Default::default(),
            keys: Some(keys),
        };
        match operation(&upsert) {
            DeltaOperation::Merge {
                merge_predicate, ..
            } => assert_eq!(
                merge_predicate.as_deref(),
                Some("target.store = source.store AND target.sale = source.sale")
            ),
            other => panic!("{other:?}"),
        }
    }
}
