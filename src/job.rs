//! Job: every domain value that crosses a channel between stages — a file to ingest (watch →
//! pool), what its content became (pool → committer), a request to grow the table (pool →
//! committer) — and the board through which a committer tells the workers the table's columns.
//! Nothing here does anything: these are the words the stages speak.

use std::path::{Path, PathBuf};
use std::time::Instant;

use deltalake::arrow::record_batch::RecordBatch;
use deltalake::kernel::Add;

use crate::schema::{ColumnSpec, TableSchema};

/// Index of a feed in the pipeline's feed list.
pub type FeedId = usize;

/// A file the watcher believes is complete and ready to ingest.
#[derive(Debug, Clone)]
pub struct FileJob {
    pub feed: FeedId,
    pub path: PathBuf,
}

impl FileJob {
    pub fn name(&self) -> String {
        file_name(&self.path)
    }
}

/// A path's file name as text, for messages and the table's `_source_file`.
pub fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// A row that did not make it into the table: it goes to the quarantine table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRow {
    /// Physical line in the file (1-based), right even when quoted fields hold newlines.
    pub line: u64,
    pub raw: String,
    /// The first column at fault, if the fault is in a value.
    pub column: Option<String>,
    pub error: String,
}

impl BadRow {
    /// "line 4, column 'x': why" — how a bad row is named in messages.
    pub fn describe(&self) -> String {
        match &self.column {
            Some(c) => format!("line {}, column '{c}': {}", self.line, self.error),
            None => format!("line {}: {}", self.line, self.error),
        }
    }
}

/// How a file was read: recorded with its commit (commitInfo `deltadrop.files[].dialect`) and
/// shown by `inspect --file`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileDialect {
    /// A file that is not CSV: its format (`ndjson`). Absent for CSV, and in records written
    /// before other formats were read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// A workbook's sheet that was read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sheet: Option<String>,
    pub encoding: String,
    pub compression: String,
    pub delimiter: String,
    pub quote: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escape: Option<String>,
    pub header: bool,
    /// Lines not read as rows: an Excel `sep=` line, title lines, footer lines.
    pub skipped_lines: SkippedLines,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    /// The table columns the file's columns were read as: `name type` (and a format).
    pub columns: Vec<String>,
    /// Table columns the file lacked (null in its rows).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<String>,
    /// How the file was known complete.
    #[serde(default)]
    pub writer_check: WriterCheck,
}

/// How a file was known complete, recorded as `lease` or `settle`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WriterCheck {
    /// No writer had it open, none opened it while it was read.
    Lease,
    /// No such check here: unchanged for the settle time. Also what a record written before
    /// the check was recorded reads as: it claims no check.
    #[default]
    Settle,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SkippedLines {
    pub sep: u64,
    pub title: u64,
    pub footer: u64,
}

/// What the content of one file became.
pub enum FileData {
    /// Small files: parsed batches, written into one Parquet file per commit by the committer.
    Batches(Vec<RecordBatch>),
    /// Large files: Parquet files the worker already streamed to the table (not yet committed).
    Written(Vec<Add>),
}

/// A parsed file on its way to the committer.
pub struct ParsedFile {
    pub job: FileJob,
    /// blake3 of the whole file content, hex.
    pub hash: String,
    pub size: u64,
    pub rows: u64,
    pub data: FileData,
    /// Rows for the quarantine table.
    pub bad: Vec<BadRow>,
    /// Rows that failed a `warn` expectation.
    pub warned: u64,
    /// How it was read.
    pub dialect: FileDialect,
    /// Size and modification time when it was read (checked again before the commit).
    pub stamp: (u64, Option<std::time::SystemTime>),
    /// When the worker took the file (for the per-commit latency log).
    pub started: Instant,
}

/// A file whose header has columns the table lacks, with their inferred types.
pub struct NewColumns {
    pub job: FileJob,
    pub columns: Vec<ColumnSpec>,
    /// The committer answers once the table has them (true) or could not add them (false).
    pub done: crossbeam_channel::Sender<bool>,
}

/// Messages to a feed's committer.
pub enum CommitMsg {
    File(Box<ParsedFile>),
    /// Grow the table's schema (`on_new_column = "add"`), then let the file be taken again.
    AddColumns(Box<NewColumns>),
}

/// Each feed's current table and columns: written by its committer when the table's schema
/// grows (`on_new_column = "add"`), read by workers for every file.
pub type Board = std::sync::Arc<std::sync::RwLock<Vec<TableInfo>>>;

#[derive(Clone)]
pub struct TableInfo {
    pub schema: TableSchema,
    pub table: deltalake::DeltaTable,
    /// Bumped at every schema change (workers rebuild their writers).
    pub generation: u64,
}

/// A new board from each feed's table and columns, in feed order.
pub fn board(tables: Vec<(TableSchema, deltalake::DeltaTable)>) -> Board {
    std::sync::Arc::new(std::sync::RwLock::new(
        tables
            .into_iter()
            .map(|(schema, table)| TableInfo {
                schema,
                table,
                generation: 0,
            })
            .collect(),
    ))
}
