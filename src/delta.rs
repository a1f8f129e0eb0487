//! Delta stage: one committer per table. It owns the table's tokio runtime, its `DeltaTable`,
//! the feed's [`FeedState`], and the table version it last wrote, and is the only writer of
//! that feed's commits.
//!
//! Commits take the flat path (see KNOWN-TRAPS): the Parquet files are written with a
//! `RecordBatchWriter` (`flush()`, no commit), and the commit JSON — Add actions, a `txn` action
//! with this feed's app id and a strictly increasing version, and commitInfo listing the files —
//! is written with `LogStore::write_commit_entry` (atomic create-if-absent). Its cost does not
//! grow with the table's history. What that path skips we do here: the protocol check at start,
//! monotonic txn versions, and reading other writers' commits on a version conflict.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender};
use deltalake::arrow::record_batch::RecordBatch;
use deltalake::kernel::engine::arrow_conversion::{TryIntoArrow, TryIntoKernel};
use deltalake::kernel::transaction::{CommitData, CommitProperties, TransactionError, PROTOCOL};
use deltalake::kernel::{Action, Add, MetadataExt, StructType, Transaction};
use deltalake::logstore::{CommitOrBytes, LogStoreRef};
use deltalake::operations::create::CreateBuilder;
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::writer::{DeltaWriter, RecordBatchWriter};
use deltalake::{DeltaTable, DeltaTableError};
use serde_json::{json, Value};

use crate::config::{FeedConfig, StorageOptions};
use crate::ingest::BadRow;
use crate::job::{Board, FileData, NewColumns, ParsedFile, TableInfo, Tracker};
use crate::quarantine;
use crate::schema;
use crate::schema::TableSchema;
use crate::state::{FeedState, FileRecord, Intent, StateError};

#[derive(Debug, thiserror::Error)]
pub enum DeltaError {
    #[error("table {url}: {source}")]
    Table {
        url: String,
        source: Box<DeltaTableError>,
    },
    #[error("table {url} has a schema this feed cannot write (deltadrop never rewrites a table):\n  {}", .problems.join("\n  "))]
    IncompatibleSchema { url: String, problems: Vec<String> },
    #[error("table {url}: its protocol needs features deltadrop cannot write: {message}")]
    Protocol { url: String, message: String },
    #[error("table {url}: version {version} written by another writer changed the table's metadata or protocol; restart deltadrop so that it checks the new schema")]
    MetadataChanged { url: String, version: i64 },
    #[error("table {url}: its log has no version {version} any more (was the table folder deleted or replaced while deltadrop ran?); nothing more is written to it and the files in flight stay in the inbox; to start a new table there, move the state folder away and restart")]
    LogGone { url: String, version: i64 },
    #[error("table {url}: its txn version for app id '{app_id}' is {table_txn}, lower than the {state_txn} this daemon's state recorded; the table was restored or replaced — move the state folder away to start over")]
    TxnWentBack {
        url: String,
        app_id: String,
        table_txn: i64,
        state_txn: i64,
    },
    #[error("table {url}: version {version} removed {path}, which this compaction also replaces; nothing was committed (the next run starts over)")]
    Conflict {
        url: String,
        version: i64,
        path: String,
    },
    #[error("table {url}: {message}")]
    Maintenance { url: String, message: String },
    #[error("cannot start the tokio runtime: {0}")]
    Runtime(std::io::Error),
    #[error(transparent)]
    State(#[from] StateError),
}

fn table_err(url: &url::Url) -> impl FnOnce(DeltaTableError) -> DeltaError + '_ {
    move |source| DeltaError::Table {
        url: url.to_string(),
        source: Box::new(source),
    }
}

/// Every table operation starts with a runtime, so this is also where the cloud schemes
/// (az://, abfss://, s3://, ...) get registered, once per process.
pub fn runtime() -> Result<tokio::runtime::Runtime, DeltaError> {
    static CLOUD: std::sync::Once = std::sync::Once::new();
    CLOUD.call_once(|| {
        deltalake::azure::register_handlers(None);
        deltalake::aws::register_handlers(None);
    });
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(DeltaError::Runtime)
}

/// Opens the table at `url`, creating it (and a local table's folder) with `ours` if there is
/// none. An existing table must have exactly these columns and types; it is never rewritten.
pub async fn open_or_create(
    url: &url::Url,
    options: &StorageOptions,
    name: &str,
    ours: &deltalake::arrow::datatypes::Schema,
    partition_by: &[String],
) -> Result<DeltaTable, DeltaError> {
    let table = match open_existing(url, options).await? {
        Some(t) => t,
        None => {
            let kernel: StructType = ours
                .try_into_kernel()
                .map_err(|e| table_err(url)(DeltaTableError::Generic(format!("schema: {e}"))))?;
            log::info!("creating Delta table {url}");
            let created = CreateBuilder::new()
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
    let partitioned_by = table
        .snapshot()
        .map_err(table_err(url))?
        .metadata()
        .partition_columns()
        .to_vec();
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
    PROTOCOL
        .can_write_to(snapshot)
        .map_err(|e| DeltaError::Protocol {
            url: url.to_string(),
            message: e.to_string(),
        })?;
    Ok(Some(table))
}

/// A local table's folder, created if missing (None for a cloud table).
fn local_folder(url: &url::Url) -> Result<Option<std::path::PathBuf>, DeltaError> {
    let Some(path) = (url.scheme() == "file")
        .then(|| url.to_file_path().ok())
        .flatten()
    else {
        return Ok(None);
    };
    std::fs::create_dir_all(&path).map_err(|e| {
        table_err(url)(DeltaTableError::Generic(format!(
            "cannot create folder {}: {e}",
            path.display()
        )))
    })?;
    Ok(Some(path))
}

/// Before a committer's first write to a local table: the folder must take hard links (see
/// `localfs`). Once per table and start, not on every open (maintenance opens tables too).
fn check_writable_folder(url: &url::Url) -> Result<(), DeltaError> {
    match local_folder(url)? {
        Some(path) => crate::localfs::check_table_folder(&path)
            .map_err(|message| table_err(url)(DeltaTableError::Generic(message))),
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
    snapshot
        .schema()
        .as_ref()
        .try_into_arrow()
        .map_err(|e| table_err(url)(DeltaTableError::Generic(format!("schema: {e}"))))
}

/// The quarantine table's columns.
pub fn quarantine_schema() -> deltalake::arrow::datatypes::SchemaRef {
    use deltalake::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
    std::sync::Arc::new(Schema::new(vec![
        Field::new("feed", DataType::Utf8, false),
        Field::new("source_file", DataType::Utf8, false),
        Field::new("file_hash", DataType::Utf8, false),
        Field::new("line_number", DataType::Int64, false),
        Field::new("raw_line", DataType::Utf8, true),
        Field::new("column", DataType::Utf8, true),
        Field::new("error", DataType::Utf8, false),
        Field::new(
            "_ingested_at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
    ]))
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
    Ok(RecordBatchWriter::for_table(table)
        .map_err(table_err(table.table_url()))?
        .with_writer_properties(props)
        .with_target_file_size(64 * 1024 * 1024))
}

/// Messages to a committer.
pub enum CommitMsg {
    File(Box<ParsedFile>),
    /// Grow the table's schema (`on_new_column = "add"`), then let the file be taken again.
    AddColumns(Box<NewColumns>),
}

/// A Delta log this committer writes with the flat path: it tracks the version itself and
/// reads other writers' commits only on a conflict.
pub(crate) struct Log {
    url: url::Url,
    log_store: LogStoreRef,
    /// The newest version known.
    version: i64,
    /// Files the commit being written removes (compaction): another writer's commit that
    /// removed one of them first makes ours invalid, so it is refused rather than retried.
    pub(crate) removing: HashSet<String>,
}

impl Log {
    pub(crate) fn new(table: &DeltaTable) -> Log {
        Log {
            url: table.table_url().clone(),
            log_store: table.log_store(),
            version: table.version().unwrap_or(0) as i64,
            removing: HashSet::new(),
        }
    }

    /// Writes `actions` + our txn at the next free version; returns the version.
    fn commit(
        &mut self,
        rt: &tokio::runtime::Runtime,
        actions: Vec<Action>,
        app_metadata: HashMap<String, Value>,
        app_id: &str,
        txn: i64,
    ) -> Result<i64, CommitError> {
        let op = DeltaOperation::Write {
            mode: SaveMode::Append,
            partition_by: None,
            predicate: None,
        };
        self.commit_op(rt, actions, op, app_metadata, Some((app_id, txn)))
    }

    pub(crate) fn commit_op(
        &mut self,
        rt: &tokio::runtime::Runtime,
        actions: Vec<Action>,
        operation: DeltaOperation,
        app_metadata: HashMap<String, Value>,
        txn: Option<(&str, i64)>,
    ) -> Result<i64, CommitError> {
        let (app_id, txn) = txn.unwrap_or(("", -1));
        let data = CommitData::new(
            actions,
            operation,
            app_metadata,
            if txn >= 0 {
                vec![Transaction::new(app_id, txn)]
            } else {
                vec![]
            },
        );
        let bytes = data.get_bytes().map_err(CommitError::commit)?;
        self.check_log_is_there()?;
        let mut conflicts = 0;
        loop {
            let attempt = self.version + 1;
            let result = rt.block_on(self.log_store.write_commit_entry(
                attempt as u64,
                CommitOrBytes::LogBytes(bytes.clone()),
                uuid::Uuid::new_v4(),
            ));
            match result {
                Ok(()) => {
                    self.version = attempt;
                    return Ok(attempt);
                }
                Err(TransactionError::VersionAlreadyExists(_)) => {
                    // Another writer took this version: read what it wrote, then try the next.
                    conflicts += 1;
                    let landed = self.catch_up(rt, app_id, txn)?;
                    log::debug!(
                        "table {}: version {attempt} taken by another writer; caught up to {}{}",
                        self.url,
                        self.version,
                        if landed.is_some() {
                            " (ours was among them)"
                        } else {
                            ", retrying"
                        }
                    );
                    if let Some(v) = landed {
                        if txn >= 0 {
                            return Ok(v);
                        }
                    }
                    if conflicts > 100 {
                        return Err(CommitError::commit(TransactionError::VersionAlreadyExists(
                            attempt as u64,
                        )));
                    }
                }
                Err(e) => return Err(CommitError::Ambiguous(Box::new(e))),
            }
        }
    }

    /// A local table whose folder was deleted (or swapped) under a running daemon would take
    /// our next commit as the only file of a new log — a table no reader can open, with the
    /// rows in it counted as loaded. A log that lacks the newest version we know and has
    /// nothing newer is not ours any more. A stat per commit: local tables only (a cloud table
    /// would pay a request per commit for it).
    fn check_log_is_there(&self) -> Result<(), CommitError> {
        if self.url.scheme() != "file" || self.version < 0 {
            return Ok(());
        }
        let Ok(dir) = self.url.to_file_path() else {
            return Ok(());
        };
        let log_dir = dir.join("_delta_log");
        if log_dir.join(format!("{:020}.json", self.version)).exists() {
            return Ok(());
        }
        // Other writers' log cleanup may have removed it (a daemon idle for a month beside
        // busy ones): then the log has moved on past it, which catching up handles.
        let newest = std::fs::read_dir(&log_dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let name = e.file_name();
                let digits = name.to_str()?.get(..20)?;
                digits.parse::<i64>().ok()
            })
            .max();
        if newest.is_some_and(|v| v >= self.version) {
            return Ok(());
        }
        Err(CommitError::Fatal(Box::new(DeltaError::LogGone {
            url: self.url.to_string(),
            version: self.version,
        })))
    }

    /// Reads commits after `self.version`. Returns the version holding our (`app_id`, `txn`),
    /// if one does. Refuses to go on if another writer changed metadata or protocol.
    fn catch_up(
        &mut self,
        rt: &tokio::runtime::Runtime,
        app_id: &str,
        txn: i64,
    ) -> Result<Option<i64>, CommitError> {
        let mut ours = None;
        loop {
            let v = self.version + 1;
            let entry = rt
                .block_on(self.log_store.read_commit_entry(v as u64))
                .map_err(CommitError::read)?;
            let Some(bytes) = entry else { break };
            for line in bytes.split(|b| *b == b'\n') {
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                let action: Value = serde_json::from_slice(line).map_err(|e| {
                    CommitError::read(DeltaTableError::Generic(format!(
                        "commit {v} is not valid JSON: {e}"
                    )))
                })?;
                if action.get("metaData").is_some() || action.get("protocol").is_some() {
                    return Err(CommitError::Fatal(Box::new(DeltaError::MetadataChanged {
                        url: self.url.to_string(),
                        version: v,
                    })));
                }
                if let Some(path) = action
                    .get("remove")
                    .and_then(|r| r.get("path"))
                    .and_then(Value::as_str)
                {
                    if self.removing.contains(path) {
                        return Err(CommitError::Fatal(Box::new(DeltaError::Conflict {
                            url: self.url.to_string(),
                            version: v,
                            path: path.to_string(),
                        })));
                    }
                }
                if let Some(t) = action.get("txn") {
                    if t.get("appId").and_then(Value::as_str) == Some(app_id)
                        && t.get("version").and_then(Value::as_i64) == Some(txn)
                    {
                        ours = Some(v);
                    }
                }
            }
            self.version = v;
        }
        Ok(ours)
    }
}

/// Where a feed's bad rows go.
struct Quarantine {
    table: DeltaTable,
    log: Log,
    writer: RecordBatchWriter,
}

pub struct Committer {
    feed: FeedConfig,
    /// This feed's index in the board.
    feed_id: usize,
    board: Option<Board>,
    metrics: Option<crate::metrics::MetricsRef>,
    /// The data columns this feed writes (for `infer`: as fixed at table creation).
    schema: TableSchema,
    rt: tokio::runtime::Runtime,
    table: DeltaTable,
    log: Log,
    writer: RecordBatchWriter,
    quarantine: Quarantine,
    /// The txn version the next commit will carry (both tables use the same one).
    next_txn: i64,
    state: FeedState,
    tracker: Tracker,
    /// A previous commit attempt failed in a way that leaves its outcome unknown, or its
    /// quarantine half is still to be written.
    unresolved: bool,
    checkpoints: Option<Sender<i64>>,
    failures: u32,
}

impl Committer {
    /// Opens (or creates) the tables and settles what a previous run left unfinished: an intent
    /// whose commit landed has its files archived (and its quarantine rows committed if they
    /// were not); one that did not is dropped (its files are still in the inbox).
    /// None: `schema = "infer"`, no table yet, and no file in the inbox to infer one from.
    pub fn start(
        feed: FeedConfig,
        state: FeedState,
        tracker: Tracker,
    ) -> Result<Option<Committer>, DeltaError> {
        let rt = runtime()?;
        let url = feed.table_url.clone();
        check_writable_folder(&url)?;
        check_writable_folder(&feed.quarantine_url)?;
        let create = |schema: &TableSchema| {
            rt.block_on(open_or_create(
                &url,
                &feed.storage_options,
                &feed.name,
                &schema.arrow(),
                &schema.partition_columns(),
            ))
        };
        let (table, schema) = if feed.infer {
            match rt.block_on(open_existing(&url, &feed.storage_options))? {
                Some(t) => {
                    let arrow = table_arrow_schema(&t)?;
                    let schema = TableSchema::from_arrow(&arrow).map_err(|m| {
                        DeltaError::IncompatibleSchema {
                            url: url.to_string(),
                            problems: vec![m],
                        }
                    })?;
                    (t, schema)
                }
                None => {
                    let Some(schema) = infer_from_first_file(&feed)? else {
                        return Ok(None);
                    };
                    (create(&schema)?, schema)
                }
            }
        } else {
            let mut schema = feed.schema.clone();
            if feed.on_new_column == crate::config::OnNewColumn::Add {
                // Columns added by earlier runs are part of the table now.
                if let Some(t) = rt.block_on(open_existing(&url, &feed.storage_options))? {
                    schema = grown_schema(&schema, &table_arrow_schema(&t)?);
                }
            }
            (create(&schema)?, schema)
        };
        let writer = writer_for(&table)?;
        let q_table = rt.block_on(open_or_create(
            &feed.quarantine_url,
            &feed.storage_options,
            &format!("{}_quarantine", feed.name),
            &quarantine_schema(),
            &[],
        ))?;
        let quarantine = Quarantine {
            writer: writer_for(&q_table)?,
            log: Log::new(&q_table),
            table: q_table,
        };
        let log = Log::new(&table);
        let table_txn = txn_version(&rt, &table, &feed.app_id)?;
        let mut c = Committer {
            feed,
            feed_id: 0,
            board: None,
            metrics: None,
            schema,
            rt,
            table,
            log,
            writer,
            quarantine,
            next_txn: table_txn.unwrap_or(0) + 1,
            state,
            tracker,
            unresolved: false,
            checkpoints: None,
            failures: 0,
        };
        c.settle_intent(table_txn)?;
        log::info!(
            "feed {}: table {} at version {}, next txn {} (app id {}), {} file(s) known loaded",
            c.feed.name,
            url,
            c.log.version,
            c.next_txn,
            c.feed.app_id,
            c.state.loaded_count()
        );
        Ok(Some(c))
    }

    pub fn table(&self) -> &DeltaTable {
        &self.table
    }

    /// Where this committer publishes schema changes (for the workers) and metrics.
    pub fn publish_to(
        &mut self,
        board: Board,
        metrics: crate::metrics::MetricsRef,
        feed_id: usize,
    ) {
        metrics.feeds[feed_id]
            .table_version
            .store(self.log.version, Ordering::Relaxed);
        self.board = Some(board);
        self.metrics = Some(metrics);
        self.feed_id = feed_id;
    }

    fn feed_metrics(&self) -> Option<&crate::metrics::FeedMetrics> {
        self.metrics.as_ref().map(|m| &m.feeds[self.feed_id])
    }

    /// `on_new_column = "add"`: grows the table by the columns it lacks (nullable), in a
    /// metadata-only commit, and releases the file to be taken again.
    fn add_columns(&mut self, nc: NewColumns) -> Result<(), CommitError> {
        let new: Vec<_> = nc
            .columns
            .into_iter()
            .filter(|c| self.schema.position(&c.name).is_none())
            .collect();
        if !new.is_empty() {
            let mut schema = self.schema.clone();
            schema.columns.extend(new.iter().cloned());
            let kernel: StructType = schema.arrow().as_ref().try_into_kernel().map_err(|e| {
                CommitError::write(DeltaTableError::Generic(format!("schema: {e}")))
            })?;
            let snapshot = self.table.snapshot().map_err(CommitError::read)?;
            let metadata = snapshot
                .metadata()
                .clone()
                .with_schema(&kernel)
                .map_err(|e| {
                    CommitError::write(DeltaTableError::Generic(format!("schema: {e}")))
                })?;
            let added: Vec<_> = kernel
                .fields()
                .filter(|f| new.iter().any(|c| &c.name == f.name()))
                .cloned()
                .collect();
            let v = self.log.commit_op(
                &self.rt,
                vec![Action::Metadata(metadata)],
                DeltaOperation::AddColumn { fields: added },
                HashMap::new(),
                None,
            )?;
            // Reload so that writers are built for the new schema.
            self.rt
                .block_on(self.table.load())
                .map_err(CommitError::read)?;
            self.writer = writer_for(&self.table).map_err(|e| CommitError::Fatal(Box::new(e)))?;
            self.schema = schema;
            if let Some(board) = &self.board {
                let mut b = board.write().unwrap_or_else(|e| e.into_inner());
                let generation = b[self.feed_id].generation + 1;
                b[self.feed_id] = TableInfo {
                    schema: self.schema.clone(),
                    table: self.table.clone(),
                    generation,
                };
            }
            log::info!(
                "feed {}: {} brought new column(s) {}; table evolved at version {v}",
                self.feed.name,
                nc.job.name(),
                new.iter()
                    .map(|c| format!("{} {}", c.name, c.ty))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        // The worker takes the file again right away, now that the table has the columns.
        let _ = nc.done.send(true);
        Ok(())
    }

    pub fn schema(&self) -> &TableSchema {
        &self.schema
    }

    pub fn version(&self) -> i64 {
        self.log.version
    }

    /// Given the table's txn version for our app id, finish or drop the recorded intent.
    fn settle_intent(&mut self, table_txn: Option<i64>) -> Result<(), DeltaError> {
        let Some(intent) = self.state.intent().cloned() else {
            return Ok(());
        };
        if intent.app_id != self.feed.app_id {
            log::warn!(
                "feed {}: dropping a commit intent made under app id {} (now {})",
                self.feed.name,
                intent.app_id,
                self.feed.app_id
            );
            self.state.clear_intent()?;
            return Ok(());
        }
        let landed = table_txn.is_some_and(|t| t >= intent.txn);
        if !landed && table_txn.unwrap_or(0) < intent.txn - 1 {
            return Err(DeltaError::TxnWentBack {
                url: self.feed.table_url.to_string(),
                app_id: self.feed.app_id.clone(),
                table_txn: table_txn.unwrap_or(0),
                state_txn: intent.txn - 1,
            });
        }
        if landed {
            log::info!(
                "feed {}: commit txn {} with {} file(s) landed before the last stop; archiving its files",
                self.feed.name,
                intent.txn,
                intent.files.len()
            );
            self.state.record_loaded(&intent.files, self.log.version)?;
            self.finish_quarantine(&intent)
                .map_err(|e| DeltaError::Table {
                    url: self.feed.quarantine_url.to_string(),
                    source: Box::new(DeltaTableError::Generic(e.to_string())),
                })?;
            for f in &intent.files {
                self.archive_if_same(f);
            }
        } else {
            log::info!(
                "feed {}: commit txn {} did not land before the last stop; its {} file(s) will be ingested again",
                self.feed.name,
                intent.txn,
                intent.files.len()
            );
        }
        self.state.clear_intent()?;
        Ok(())
    }

    /// The quarantine half of a landed intent: committed unless the quarantine table already
    /// holds our txn.
    fn finish_quarantine(&mut self, intent: &Intent) -> Result<(), CommitError> {
        if intent.quarantine.is_empty() {
            return Ok(());
        }
        let have = txn_version(&self.rt, &self.quarantine.table, &self.feed.app_id)
            .map_err(|e| CommitError::Fatal(Box::new(e)))?;
        // The log may have moved on since the table was opened.
        let found = self
            .quarantine
            .log
            .catch_up(&self.rt, &self.feed.app_id, intent.txn)?;
        if have.is_some_and(|t| t >= intent.txn) || found.is_some() {
            return Ok(());
        }
        let rows: u64 = intent.files.iter().map(|f| f.bad_rows).sum();
        let v = self.commit_quarantine(intent.quarantine.clone(), intent.txn, rows)?;
        log::info!(
            "feed {}: quarantine rows of txn {} committed (quarantine version {v})",
            self.feed.name,
            intent.txn
        );
        Ok(())
    }

    fn commit_quarantine(
        &mut self,
        adds: Vec<Add>,
        txn: i64,
        rows: u64,
    ) -> Result<i64, CommitError> {
        let mut meta = HashMap::new();
        meta.insert(
            "deltadrop".to_string(),
            json!({"feed": self.feed.name, "appId": self.feed.app_id, "txn": txn, "rows": rows}),
        );
        meta.insert("isBlindAppend".to_string(), json!(true));
        let actions = adds.into_iter().map(Action::Add).collect();
        self.quarantine
            .log
            .commit(&self.rt, actions, meta, &self.feed.app_id, txn)
    }

    /// Moves a file whose rows are committed out of the inbox (errors are logged: the loaded
    /// index already makes the file a duplicate).
    fn archive(&self, path: &std::path::Path) {
        if let Err(e) = quarantine::archive(
            path,
            &self.feed.processed,
            self.feed.on_success,
            self.feed.ready_marker.as_deref(),
        ) {
            log::error!("feed {}: {e}", self.feed.name);
        }
    }

    /// Archives a committed file if the inbox still holds that very content (a new file may
    /// have been dropped under the same name since).
    fn archive_if_same(&self, f: &FileRecord) {
        let same = std::fs::File::open(&f.path)
            .and_then(|file| {
                let mut h = blake3::Hasher::new();
                h.update_reader(file)?;
                Ok(h.finalize().to_hex().to_string() == f.hash)
            })
            .unwrap_or(false);
        if same {
            self.archive(&f.path);
        }
    }

    /// Runs until the channel closes (every worker is done), then returns.
    /// A fatal error (the table changed under us) stops this committer and asks the daemon to
    /// shut down through `fatal`; it is returned too.
    pub fn run(mut self, rx: Receiver<CommitMsg>, fatal: Sender<()>) -> Result<(), DeltaError> {
        let feed_name = self.feed.name.clone();
        let (ck_tx, ck_handle) = spawn_checkpointer(&self.feed);
        self.checkpoints = Some(ck_tx);
        let mut result = Ok(());
        let mut pending_schema: Option<Box<NewColumns>> = None;
        while let Some(first) = pending_schema
            .take()
            .map(CommitMsg::AddColumns)
            .or_else(|| rx.recv().ok())
        {
            let f = match first {
                CommitMsg::File(f) => f,
                CommitMsg::AddColumns(nc) => {
                    let done = nc.done.clone();
                    if let Err(e) = self.add_columns(*nc) {
                        let _ = done.send(false);
                        log::error!("feed {feed_name}: cannot add columns: {e}");
                        if let CommitError::Fatal(e) = e {
                            let _ = fatal.send(());
                            result = Err(*e);
                            break;
                        }
                    }
                    continue;
                }
            };
            let mut group = Vec::new();
            let mut rows = f.rows;
            group.push(*f);
            // Everything ready right now shares this commit, within the bounds.
            while group.len() < self.feed.max_files_per_commit
                && rows < self.feed.max_rows_per_commit
            {
                match rx.try_recv() {
                    Ok(CommitMsg::File(f)) => {
                        rows += f.rows;
                        group.push(*f);
                    }
                    Ok(CommitMsg::AddColumns(nc)) => {
                        pending_schema = Some(nc);
                        break;
                    }
                    Err(_) => break,
                }
            }
            if let Err(e) = self.commit_group(group) {
                log::error!("feed {feed_name}: {e}");
                let _ = fatal.send(());
                // Drain so that workers blocked on this channel can finish; their files stay
                // in the inbox.
                for msg in rx.iter() {
                    match msg {
                        CommitMsg::File(f) => self.tracker.release(&f.job.path),
                        CommitMsg::AddColumns(nc) => {
                            let _ = nc.done.send(false);
                        }
                    }
                }
                result = Err(e);
                break;
            }
        }
        // A quarantine commit still owed (its table was down): one last try before exiting.
        if self.unresolved {
            if let Err(e) = self.resolve_unknown_outcome() {
                log::error!("feed {feed_name}: {e}; it is retried at the next start");
            }
        }
        drop(self.checkpoints.take());
        if let Some(h) = ck_handle {
            let _ = h.join();
        }
        log::debug!(
            "feed {feed_name}: committer stopped at version {}",
            self.log.version
        );
        result
    }

    fn fresh_writers(&mut self) -> Result<(), DeltaError> {
        self.writer = writer_for(&self.table)?;
        self.quarantine.writer = writer_for(&self.quarantine.table)?;
        Ok(())
    }

    fn commit_group(&mut self, group: Vec<ParsedFile>) -> Result<(), DeltaError> {
        let started = Instant::now();
        let paths: Vec<_> = group.iter().map(|f| f.job.path.clone()).collect();
        // A panic in a dependency is a failed attempt, not a dead committer.
        let attempt = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.try_commit_group(group, started)
        }))
        .unwrap_or_else(|_| {
            // The outcome of a commit interrupted by a panic is unknown: check the log first.
            self.unresolved = self.state.intent().is_some();
            Err(CommitError::write(DeltaTableError::Generic(
                "internal error (panic) during the commit".into(),
            )))
        });
        match attempt {
            Ok(()) => {
                self.failures = 0;
                Ok(())
            }
            Err(CommitError::Fatal(e)) => {
                for p in &paths {
                    self.tracker.release(p);
                }
                Err(*e)
            }
            Err(e) => {
                self.failures += 1;
                let delay = crate::job::backoff(self.failures);
                log::error!(
                    "feed {}: commit failed, {} file(s) stay in the inbox and are retried: {e}",
                    self.feed.name,
                    paths.len()
                );
                // Fresh writers (not `reset()`: it panics after a failed flush).
                if let Err(e) = self.fresh_writers() {
                    log::error!("feed {}: {e}", self.feed.name);
                }
                for p in &paths {
                    self.tracker.release_for_retry(p);
                }
                if let Some(m) = self.feed_metrics() {
                    m.transient_failures
                        .fetch_add(paths.len() as u64, Ordering::Relaxed);
                }
                // Do not hammer a broken table: the channel fills and workers wait meanwhile.
                std::thread::sleep(delay);
                Ok(())
            }
        }
    }

    fn try_commit_group(
        &mut self,
        group: Vec<ParsedFile>,
        started: Instant,
    ) -> Result<(), CommitError> {
        if self.unresolved {
            self.resolve_unknown_outcome()?;
        }
        // Duplicates: content already loaded, or twice in this group.
        let mut seen = HashSet::new();
        let mut files = Vec::with_capacity(group.len());
        for f in group {
            let dup = self.feed.dedupe
                && (self.state.loaded(&f.hash).is_some() || !seen.insert(f.hash.clone()));
            if dup {
                self.archive_duplicate(&f);
            } else {
                files.push(f);
            }
        }
        if files.is_empty() {
            return Ok(());
        }

        let mut adds: Vec<Add> = Vec::new();
        let mut records = Vec::with_capacity(files.len());
        let (mut rows, mut bad, mut warned) = (0u64, 0u64, 0u64);
        let mut buffered = false;
        let oldest = files.iter().map(|f| f.started).min().unwrap_or(started);
        let ingested_at = chrono::Utc::now().timestamp_micros();
        let mut q_rows = QuarantineRows::default();
        for f in files.iter_mut() {
            match std::mem::replace(&mut f.data, FileData::Written(Vec::new())) {
                FileData::Batches(batches) => {
                    let target = self.writer.arrow_schema();
                    for b in batches {
                        // Parsed before a schema change: the new columns are null.
                        let b = conform(b, &target).map_err(CommitError::write)?;
                        self.rt
                            .block_on(self.writer.write(b))
                            .map_err(CommitError::write)?;
                        buffered = true;
                    }
                }
                FileData::Written(a) => adds.extend(a),
            }
            let name = f.job.name();
            q_rows.extend(&self.feed.name, &name, &f.hash, &f.bad, ingested_at);
            rows += f.rows;
            bad += f.bad.len() as u64;
            warned += f.warned;
            records.push(FileRecord {
                name,
                path: f.job.path.clone(),
                size: f.size,
                hash: f.hash.clone(),
                rows: f.rows,
                bad_rows: f.bad.len() as u64,
                warned_rows: f.warned,
            });
        }
        if buffered {
            adds.extend(
                self.rt
                    .block_on(self.writer.flush())
                    .map_err(CommitError::write)?,
            );
        }
        let q_adds = if q_rows.is_empty() {
            Vec::new()
        } else {
            let batch = q_rows
                .finish()
                .map_err(|e| CommitError::write(DeltaTableError::Generic(e.to_string())))?;
            self.rt
                .block_on(self.quarantine.writer.write(batch))
                .map_err(CommitError::write)?;
            self.rt
                .block_on(self.quarantine.writer.flush())
                .map_err(CommitError::write)?
        };

        let txn = self.next_txn;
        let intent = Intent {
            app_id: self.feed.app_id.clone(),
            txn,
            files: records.clone(),
            quarantine: q_adds.clone(),
        };
        self.state.write_intent(intent.clone())?;
        crash_point("after_intent");
        let version = match self.write_main_commit(adds, &records, txn, rows) {
            Ok(v) => v,
            Err(e) => {
                if matches!(e, CommitError::Ambiguous(_)) {
                    // The commit may have landed even though we got an error: until the log
                    // says otherwise, its outcome is unknown.
                    self.unresolved = true;
                }
                return Err(e);
            }
        };
        self.next_txn = txn + 1;
        crash_point("after_commit");
        self.state.record_loaded(&records, version)?;
        crash_point("after_record");
        if !q_adds.is_empty() {
            if let Err(e) = self.commit_quarantine(q_adds, txn, bad) {
                // The rows are safe in the intent; the quarantine half is retried before the
                // next commit (and at the next start).
                log::error!(
                    "feed {}: quarantine commit of txn {txn} failed, retried later: {e}",
                    self.feed.name
                );
                self.unresolved = true;
            }
            crash_point("after_quarantine_commit");
        }

        crash_point("before_archive");
        for f in &files {
            // On failure the rows are committed and recorded: the file is a duplicate from now on.
            self.archive(&f.job.path);
            self.tracker.release(&f.job.path);
            crash_point("during_archive");
        }
        let stats = self.tracker.stats();
        let bytes: u64 = files.iter().map(|f| f.size).sum();
        stats
            .files_committed
            .fetch_add(files.len() as u64, Ordering::Relaxed);
        stats.rows_committed.fetch_add(rows, Ordering::Relaxed);
        stats.bytes_committed.fetch_add(bytes, Ordering::Relaxed);
        stats.rows_quarantined.fetch_add(bad, Ordering::Relaxed);
        if let Some(m) = self.feed_metrics() {
            m.files_committed
                .fetch_add(files.len() as u64, Ordering::Relaxed);
            m.rows_committed.fetch_add(rows, Ordering::Relaxed);
            m.rows_quarantined.fetch_add(bad, Ordering::Relaxed);
            m.rows_warned.fetch_add(warned, Ordering::Relaxed);
            m.observe_commit(started.elapsed(), version);
        }
        log::info!(
            "feed {}: committed version {version}: {} file(s), {rows} rows, {bad} quarantined, {warned} warned, in {} ms (first file taken {} ms ago)",
            self.feed.name,
            files.len(),
            started.elapsed().as_millis(),
            oldest.elapsed().as_millis()
        );
        if version % self.feed.checkpoint_interval as i64 == 0 {
            if let Some(tx) = &self.checkpoints {
                let _ = tx.try_send(version);
            }
        }
        Ok(())
    }

    fn write_main_commit(
        &mut self,
        adds: Vec<Add>,
        files: &[FileRecord],
        txn: i64,
        rows: u64,
    ) -> Result<i64, CommitError> {
        let files_meta: Vec<Value> = files
            .iter()
            .map(|f| {
                json!({"name": f.name, "size": f.size, "hash": f.hash, "rows": f.rows,
                       "badRows": f.bad_rows, "warnedRows": f.warned_rows})
            })
            .collect();
        let mut app_metadata = HashMap::new();
        app_metadata.insert(
            "deltadrop".to_string(),
            json!({
                "feed": self.feed.name,
                "appId": self.feed.app_id,
                "txn": txn,
                "rows": rows,
                "badRows": files.iter().map(|f| f.bad_rows).sum::<u64>(),
                "warnedRows": files.iter().map(|f| f.warned_rows).sum::<u64>(),
                "files": files_meta,
            }),
        );
        app_metadata.insert("isBlindAppend".to_string(), json!(true));
        let actions = adds.into_iter().map(Action::Add).collect();
        self.log
            .commit(&self.rt, actions, app_metadata, &self.feed.app_id, txn)
    }

    fn archive_duplicate(&self, f: &ParsedFile) {
        let known = self
            .state
            .loaded(&f.hash)
            .map(|l| format!("'{}' in version {}", l.name, l.version))
            .unwrap_or_else(|| "another file of this batch".to_string());
        log::warn!(
            "feed {}: {} has the same content as {known}; not loaded again, archived",
            self.feed.name,
            f.job.name()
        );
        self.archive(&f.job.path);
        self.tracker
            .stats()
            .files_duplicate
            .fetch_add(1, Ordering::Relaxed);
        if let Some(m) = self.feed_metrics() {
            m.files_duplicate.fetch_add(1, Ordering::Relaxed);
        }
        self.tracker.release(&f.job.path);
    }

    /// After an ambiguous failure: find out from the log whether the intent's commit landed,
    /// and finish its quarantine half if it did.
    fn resolve_unknown_outcome(&mut self) -> Result<(), CommitError> {
        let Some(intent) = self.state.intent().cloned() else {
            self.unresolved = false;
            return Ok(());
        };
        let landed = self.log.catch_up(&self.rt, &self.feed.app_id, intent.txn)?;
        let already = intent.txn < self.next_txn;
        match landed {
            Some(v) => {
                log::info!(
                    "feed {}: the commit that reported an error did land (version {v}); its files are archived",
                    self.feed.name
                );
                self.next_txn = intent.txn + 1;
                self.state.record_loaded(&intent.files, v)?;
                self.finish_quarantine(&intent)?;
                for f in &intent.files {
                    self.archive_if_same(f);
                }
            }
            // Committed earlier in this run: only the quarantine half was owed.
            None if already => self.finish_quarantine(&intent)?,
            None => log::info!(
                "feed {}: the failed commit did not land; its files will be ingested again",
                self.feed.name
            ),
        }
        self.state.clear_intent()?;
        self.unresolved = false;
        Ok(())
    }
}

/// Fault injection for the crash tests: with `DELTADROP_CRASH_AT=<point>` (and optionally
/// `DELTADROP_CRASH_AFTER=<n>`, default 1) the process aborts — like `kill -9` — the n-th time
/// it passes that point. Points: after_intent, after_commit, after_record, before_archive,
/// during_archive, after_quarantine_commit.
pub fn crash_point(name: &str) {
    use std::sync::atomic::AtomicU64;
    use std::sync::OnceLock;
    static AT: OnceLock<Option<(String, u64)>> = OnceLock::new();
    static HITS: AtomicU64 = AtomicU64::new(0);
    let at = AT.get_or_init(|| {
        let point = std::env::var("DELTADROP_CRASH_AT").ok()?;
        let after = std::env::var("DELTADROP_CRASH_AFTER")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(1);
        Some((point, after))
    });
    if let Some((point, after)) = at {
        if point == name && HITS.fetch_add(1, Ordering::SeqCst) + 1 >= *after {
            eprintln!("DELTADROP_CRASH_AT={name}: aborting");
            std::process::abort();
        }
    }
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
        .map(|f| {
            batch.column_by_name(f.name()).cloned().unwrap_or_else(|| {
                deltalake::arrow::array::new_null_array(f.data_type(), batch.num_rows())
            })
        })
        .collect();
    RecordBatch::try_new(target.clone(), cols).map_err(|e| DeltaTableError::Generic(e.to_string()))
}

/// The feed's columns grown by the nullable columns an earlier run added to the table, in the
/// table's order (formats and types of configured columns kept).
fn grown_schema(config: &TableSchema, table: &deltalake::arrow::datatypes::Schema) -> TableSchema {
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

/// The quarantine rows of one commit, column by column.
#[derive(Default)]
struct QuarantineRows {
    feed: Vec<String>,
    file: Vec<String>,
    hash: Vec<String>,
    line: Vec<i64>,
    raw: Vec<String>,
    column: Vec<Option<String>>,
    error: Vec<String>,
    at: Vec<i64>,
}

impl QuarantineRows {
    fn is_empty(&self) -> bool {
        self.feed.is_empty()
    }

    fn extend(&mut self, feed: &str, file: &str, hash: &str, bad: &[BadRow], at: i64) {
        for b in bad {
            self.feed.push(feed.to_string());
            self.file.push(file.to_string());
            self.hash.push(hash.to_string());
            self.line.push(b.line as i64);
            self.raw.push(b.raw.clone());
            self.column.push(b.column.clone());
            self.error.push(b.error.clone());
            self.at.push(at);
        }
    }

    fn finish(self) -> Result<RecordBatch, deltalake::arrow::error::ArrowError> {
        use deltalake::arrow::array::{Int64Array, StringArray, TimestampMicrosecondArray};
        use std::sync::Arc;
        RecordBatch::try_new(
            quarantine_schema(),
            vec![
                Arc::new(StringArray::from(self.feed)),
                Arc::new(StringArray::from(self.file)),
                Arc::new(StringArray::from(self.hash)),
                Arc::new(Int64Array::from(self.line)),
                Arc::new(StringArray::from(self.raw)),
                Arc::new(StringArray::from(self.column)),
                Arc::new(StringArray::from(self.error)),
                Arc::new(TimestampMicrosecondArray::from(self.at).with_timezone("UTC")),
            ],
        )
    }
}

fn txn_version(
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

/// `schema = "infer"` with no table yet: infers the schema from the first file in the inbox a
/// schema can be inferred from. None when there is none yet: the feed waits (see `run`) while
/// the other feeds run.
fn infer_from_first_file(feed: &FeedConfig) -> Result<Option<TableSchema>, DeltaError> {
    for p in crate::watch::inbox_files(feed) {
        match crate::ingest::infer::sniff(&p, feed, false) {
            Ok(s) => {
                let mut schema = s.schema;
                schema.rescued = feed.schema.rescued;
                // Per-column hints from the config override what inference found.
                let fold = crate::ingest::fold_name;
                for c in schema.columns.iter_mut() {
                    if let Some(h) = feed
                        .schema
                        .columns
                        .iter()
                        .find(|h| h.name == c.name || fold(&h.name) == fold(&c.name))
                    {
                        *c = h.clone();
                    }
                }
                // A header Delta cannot take as a schema is the file's fault, not the
                // table's: the file is rejected and the next one is tried.
                let kernel: Result<StructType, _> = schema.arrow().as_ref().try_into_kernel();
                if let Err(e) = kernel {
                    let reason = format!(
                        "{}: its header cannot be a Delta schema: {e}",
                        crate::job::file_name(&p)
                    );
                    if let Err(e) = crate::quarantine::reject_logged(feed, &p, &reason) {
                        log::warn!("feed {}: {reason}; {e}", feed.name);
                    }
                    continue;
                }
                log::info!(
                    "feed {}: schema inferred from {} ({} rows sampled): {}",
                    feed.name,
                    p.display(),
                    s.rows_sampled,
                    schema
                        .columns
                        .iter()
                        .map(|c| format!("{} {}", c.name, c.ty))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                return Ok(Some(schema));
            }
            Err(e) => log::warn!(
                "feed {}: cannot infer a schema from {}: {e}",
                feed.name,
                p.display()
            ),
        }
    }
    Ok(None)
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum CommitError {
    #[error("writing Parquet: {0}")]
    Write(Box<DeltaTableError>),
    #[error("writing the commit: {0}")]
    Commit(Box<TransactionError>),
    /// The write returned an error, but the commit may have landed.
    #[error("writing the commit (outcome unknown): {0}")]
    Ambiguous(Box<TransactionError>),
    #[error("reading the log: {0}")]
    Read(Box<DeltaTableError>),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Fatal(Box<DeltaError>),
}

impl CommitError {
    fn write(e: DeltaTableError) -> Self {
        CommitError::Write(Box::new(e))
    }
    fn commit(e: TransactionError) -> Self {
        CommitError::Commit(Box::new(e))
    }
    fn read(e: DeltaTableError) -> Self {
        CommitError::Read(Box::new(e))
    }
}

/// Checkpoints are written by their own thread so that a commit never waits for one.
fn spawn_checkpointer(feed: &FeedConfig) -> (Sender<i64>, Option<JoinHandle<()>>) {
    let (tx, rx) = crossbeam_channel::bounded::<i64>(4);
    let url = feed.table_url.clone();
    let options = feed.storage_options.clone();
    let name = feed.name.clone();
    let handle = std::thread::Builder::new()
        .name(format!("checkpoint-{name}"))
        .spawn(move || {
            let rt = match runtime() {
                Ok(rt) => rt,
                Err(e) => {
                    log::error!("feed {name}: no checkpoints: {e}");
                    return;
                }
            };
            while let Ok(mut version) = rx.recv() {
                // Only the newest request matters.
                while let Ok(v) = rx.try_recv() {
                    version = v;
                }
                let t = Instant::now();
                let res = rt.block_on(checkpoint(&url, &options, version));
                match res {
                    Ok(()) => log::debug!(
                        "feed {name}: checkpoint at version {version} in {} ms",
                        t.elapsed().as_millis()
                    ),
                    Err(e) => {
                        log::warn!("feed {name}: checkpoint at version {version} failed: {e}")
                    }
                }
            }
        })
        .ok();
    (tx, handle)
}

/// Writes a checkpoint at `version` and removes log files older than the table's log
/// retention (`delta.logRetentionDuration`, 30 days by default) that the checkpoint covers.
pub async fn checkpoint(
    url: &url::Url,
    options: &StorageOptions,
    version: i64,
) -> Result<(), DeltaTableError> {
    checkpoint_table(&load(url, options, Some(version)).await?).await
}

/// The same for a table already loaded at the version to checkpoint.
pub async fn checkpoint_table(table: &DeltaTable) -> Result<(), DeltaTableError> {
    deltalake::checkpoints::create_checkpoint(table, None).await?;
    if deltalake::table::config::TablePropertiesExt::enable_expired_log_cleanup(
        table.snapshot()?.table_config(),
    ) {
        deltalake::checkpoints::cleanup_metadata(table, None).await?;
    }
    Ok(())
}

/// Keeps the type of the per-feed channel in one place.
pub fn channel(cap: usize) -> (Sender<CommitMsg>, Receiver<CommitMsg>) {
    crossbeam_channel::bounded(cap)
}
