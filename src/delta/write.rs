//! Writing to a table from outside the committer: the one door the rooms that rewrite tables
//! (`maintain`'s compaction, `requeue`) go through. Rows become Parquet data files
//! ([`TableWrite`]), and a [`Commit`] lands through the same flat log path as ingestion
//! ([`commit`]), so every write to a table is made by this room.

use deltalake::arrow::datatypes::SchemaRef;
use deltalake::arrow::record_batch::RecordBatch;
use deltalake::kernel::Add;
use deltalake::writer::{DeltaWriter, RecordBatchWriter};
use deltalake::{DeltaTable, DeltaTableError};

use super::log::{Commit, CommitError, Log};
use super::table::{conform, writer_for};
use super::DeltaError;

/// Data files of one table being written, not yet committed.
pub(crate) struct TableWrite<'a> {
    rt: &'a tokio::runtime::Runtime,
    table: &'a DeltaTable,
    writer: RecordBatchWriter,
    target: SchemaRef,
}

impl<'a> TableWrite<'a> {
    pub(crate) fn new(
        rt: &'a tokio::runtime::Runtime,
        table: &'a DeltaTable,
    ) -> Result<TableWrite<'a>, DeltaError> {
        let writer = writer_for(table)?;
        let target = writer.arrow_schema();
        Ok(TableWrite {
            rt,
            table,
            writer,
            target,
        })
    }

    /// Writes `batch`, conformed to the table's columns (rows read under an older schema get
    /// the columns added since as nulls).
    pub(crate) fn write(&mut self, batch: RecordBatch) -> Result<(), DeltaTableError> {
        let batch = conform(batch, &self.target)?;
        self.rt.block_on(self.writer.write(batch))
    }

    /// Closes the data files written since the last flush and returns their Add actions: one
    /// file at least per flush (the writer also rolls at its target size).
    pub(crate) fn flush(&mut self) -> Result<Vec<Add>, DeltaTableError> {
        self.rt.block_on(self.writer.flush())
    }

    /// Deletes data files written here that will not be committed.
    pub(crate) fn discard(&self, adds: &[Add]) {
        super::table::delete_files(self.rt, self.table, adds.iter().map(|a| a.path.as_str()));
    }
}

/// Writes `commit` to `table` at its next free version (reading other writers' commits on a
/// conflict, as the committer does); returns the version it landed at.
pub(crate) fn commit(
    rt: &tokio::runtime::Runtime,
    table: &DeltaTable,
    commit: Commit<'_>,
) -> Result<i64, CommitError> {
    Log::new(table).commit(rt, commit)
}
