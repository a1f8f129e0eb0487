//! The quarantine table: where a feed's bad rows go — file, line, raw text, column, reason —
//! committed right after the main commit under the same txn version, so that after a crash the
//! quarantine half is finished exactly once (see `recover`).

use std::collections::HashMap;
use std::sync::Arc;

use deltalake::arrow::datatypes::SchemaRef;
use deltalake::arrow::record_batch::RecordBatch;
use deltalake::kernel::{Action, Add};
use deltalake::writer::{DeltaWriter, RecordBatchWriter};
use deltalake::DeltaTable;
use serde_json::json;

use super::log::{Commit, CommitError, Log};
use super::table::{txn_version, writer_for};
use super::DeltaError;
use crate::config::FeedConfig;
use crate::job::BadRow;
use crate::state::Intent;

/// The quarantine table's columns.
pub fn schema() -> SchemaRef {
    use deltalake::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
    Arc::new(Schema::new(vec![
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

/// Where a feed's bad rows go: the table, its log (flat path) and a Parquet writer.
pub(super) struct Quarantine {
    pub(super) table: DeltaTable,
    pub(super) log: Log,
    writer: RecordBatchWriter,
    feed: String,
    /// The feed's app id: the quarantine commit carries the main commit's txn version.
    app_id: String,
}

impl Quarantine {
    pub(super) fn new(table: DeltaTable, feed: &FeedConfig) -> Result<Quarantine, DeltaError> {
        Ok(Quarantine {
            writer: writer_for(&table)?,
            log: Log::new(&table),
            table,
            feed: feed.name.clone(),
            app_id: feed.app_id.clone(),
        })
    }

    /// A fresh writer (after a failed write: `reset()` panics after a failed flush).
    pub(super) fn fresh_writer(&mut self) -> Result<(), DeltaError> {
        self.writer = writer_for(&self.table)?;
        Ok(())
    }

    /// Writes a commit's bad rows to Parquet files of the table, not committed yet: their Add
    /// actions (none for no rows).
    pub(super) fn write(
        &mut self,
        rt: &tokio::runtime::Runtime,
        rows: QuarantineRows,
    ) -> Result<Vec<Add>, CommitError> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let batch = rows
            .finish()
            .map_err(|e| CommitError::write(super::failed("quarantine rows", e)))?;
        rt.block_on(self.writer.write(batch))
            .map_err(CommitError::write)?;
        rt.block_on(self.writer.flush()).map_err(CommitError::write)
    }

    /// Commits `adds` (`rows` bad rows) under the feed's app id and `txn`.
    pub(super) fn commit(
        &mut self,
        rt: &tokio::runtime::Runtime,
        adds: Vec<Add>,
        txn: i64,
        rows: u64,
    ) -> Result<i64, CommitError> {
        let mut meta = HashMap::new();
        meta.insert(
            "deltadrop".to_string(),
            json!({"feed": self.feed, "appId": self.app_id, "txn": txn, "rows": rows}),
        );
        meta.insert("isBlindAppend".to_string(), json!(true));
        let actions = adds.into_iter().map(Action::Add).collect();
        let commit = Commit::append(actions, meta, &self.app_id, txn);
        self.log.commit(rt, commit)
    }

    /// The quarantine half of a landed intent: committed unless the table already holds our
    /// txn.
    pub(super) fn finish(
        &mut self,
        rt: &tokio::runtime::Runtime,
        intent: &Intent,
    ) -> Result<(), CommitError> {
        if intent.quarantine.is_empty() {
            return Ok(());
        }
        let have = txn_version(rt, &self.table, &self.app_id)
            .map_err(|e| CommitError::Fatal(Box::new(e)))?;
        // The log may have moved on since the table was opened.
        let found = self.log.catch_up(rt, &self.app_id, intent.txn)?;
        if have.is_some_and(|t| t >= intent.txn) || found.is_some() {
            return Ok(());
        }
        let rows: u64 = intent.files.iter().map(|f| f.bad_rows).sum();
        let v = self.commit(rt, intent.quarantine.clone(), intent.txn, rows)?;
        log::info!(
            "feed {}: quarantine rows of txn {} committed (quarantine version {v})",
            self.feed,
            intent.txn
        );
        Ok(())
    }
}

/// The quarantine rows of one commit, column by column. Every row of a commit has the same
/// feed and `_ingested_at`.
pub(super) struct QuarantineRows {
    feed_name: String,
    ingested_at: i64,
    file: Vec<String>,
    hash: Vec<String>,
    line: Vec<i64>,
    raw: Vec<String>,
    column: Vec<Option<String>>,
    error: Vec<String>,
}

impl QuarantineRows {
    pub(super) fn new(feed: &str, ingested_at: i64) -> QuarantineRows {
        QuarantineRows {
            feed_name: feed.to_string(),
            ingested_at,
            file: Vec::new(),
            hash: Vec::new(),
            line: Vec::new(),
            raw: Vec::new(),
            column: Vec::new(),
            error: Vec::new(),
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.file.is_empty()
    }

    /// The bad rows of the file `file` (content hash `hash`).
    pub(super) fn extend(&mut self, file: &str, hash: &str, bad: &[BadRow]) {
        for b in bad {
            self.file.push(file.to_string());
            self.hash.push(hash.to_string());
            self.line.push(b.line as i64);
            self.raw.push(b.raw.clone());
            self.column.push(b.column.clone());
            self.error.push(b.error.clone());
        }
    }

    fn finish(self) -> Result<RecordBatch, deltalake::arrow::error::ArrowError> {
        use deltalake::arrow::array::{Int64Array, StringArray, TimestampMicrosecondArray};
        let n = self.file.len();
        RecordBatch::try_new(
            schema(),
            vec![
                Arc::new(StringArray::from(vec![self.feed_name.as_str(); n])),
                Arc::new(StringArray::from(self.file)),
                Arc::new(StringArray::from(self.hash)),
                Arc::new(Int64Array::from(self.line)),
                Arc::new(StringArray::from(self.raw)),
                Arc::new(StringArray::from(self.column)),
                Arc::new(StringArray::from(self.error)),
                Arc::new(
                    TimestampMicrosecondArray::from(vec![self.ingested_at; n]).with_timezone("UTC"),
                ),
            ],
        )
    }
}
