//! Delta stage: one committer per table, the only writer of its feed's commits — exactly once
//! together with the feed's local state — and what it stands on.
//!
//! - [`table`]: opening, creating and checking tables; Parquet writers. `open`: a feed's
//!   tables for a pipeline.
//! - [`log`]: the flat commit path. Parquet files are written with a `RecordBatchWriter`
//!   (`flush()`, no commit), and the commit JSON — Add actions, a `txn` action with the feed's
//!   app id and a strictly increasing version, commitInfo listing the files — is written with
//!   `LogStore::write_commit_entry` (atomic create-if-absent). Its cost does not grow with the
//!   table's history (NOTES.md). What that path skips is done there: monotonic txn versions,
//!   and reading other writers' commits on a version conflict.
//! - [`committer`]: the committer loop — groups ready files into one commit, writes the intent,
//!   commits, records, hands the files to the archive stage.
//! - [`recover`]: settling what a stop or a failure left: an intent whose outcome is unknown.
//! - [`quarantine`]: the quarantine table's rows, committed under the same txn version.
//! - [`checkpoint`]: checkpoints off the commit path.
//! - [`localfs`]: the startup check of a local table's folder.

mod change;
pub mod checkpoint;
pub mod committer;
mod corrections;
mod files;
pub mod localfs;
pub mod log;
mod open;
mod prepare;
pub(crate) mod quarantine;
mod recover;
mod report;
mod screen;
mod sequence;
pub mod table;
#[cfg(test)]
mod testing;
pub(crate) mod write;

use deltalake::DeltaTableError;

use crate::state::StateError;

pub use committer::{Committer, CommitterContext};
pub use open::FeedTables;

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
    /// A step of a table operation failed: `what` names it; its error is kept as the source.
    #[error("table {url}: {what}: {source}")]
    Step {
        url: String,
        what: String,
        source: BoxError,
    },
    /// A local table folder where Delta's commits cannot work.
    #[error("table {url}: {source}")]
    Folder {
        url: String,
        source: localfs::NoHardLinks,
    },
    #[error("cannot start the tokio runtime: {0}")]
    Runtime(std::io::Error),
    #[error(transparent)]
    State(#[from] StateError),
}

impl DeltaError {
    /// The step `what` of an operation on the table at `url` failed with `source`.
    pub(crate) fn step<E: Into<BoxError>>(
        url: &url::Url,
        what: impl Into<String>,
    ) -> impl FnOnce(E) -> DeltaError + '_ {
        let what = what.into();
        move |source| DeltaError::Step {
            url: url.to_string(),
            what,
            source: source.into(),
        }
    }

    /// A `DeltaTableError` of `table`, named by its location.
    pub fn from_table(
        table: &deltalake::DeltaTable,
    ) -> impl Fn(DeltaTableError) -> DeltaError + '_ {
        move |source| DeltaError::Table {
            url: table.table_url().to_string(),
            source: Box::new(source),
        }
    }
}

/// An error of whichever library a step stands on, kept as the source of ours.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A step of ours that failed under code returning deltalake's error: `what` names it.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {source}")]
pub(crate) struct Failed {
    what: String,
    source: BoxError,
}

/// deltalake's error for the step `what` that failed with `source`, which stays the error's
/// source (`DeltaTableError::Generic` would keep only its text).
pub(crate) fn failed(what: impl Into<String>, source: impl Into<BoxError>) -> DeltaTableError {
    DeltaTableError::GenericError {
        source: Box::new(Failed {
            what: what.into(),
            source: source.into(),
        }),
    }
}

fn table_err(url: &url::Url) -> impl FnOnce(DeltaTableError) -> DeltaError + '_ {
    move |source| DeltaError::Table {
        url: url.to_string(),
        source: Box::new(source),
    }
}

fn register_cloud() {
    static CLOUD: std::sync::Once = std::sync::Once::new();
    CLOUD.call_once(|| {
        #[cfg(feature = "cloud")]
        {
            deltalake::azure::register_handlers(None);
            deltalake::aws::register_handlers(None);
        }
    });
}

/// Every table operation starts with a runtime, so this is also where the cloud schemes
/// (az://, abfss://, s3://, ...) get registered, once per process.
pub fn runtime() -> Result<tokio::runtime::Runtime, DeltaError> {
    register_cloud();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(DeltaError::Runtime)
}

/// The runtime a worker streams a large file's Parquet through. The Delta writer hands each
/// 5 MiB part of a file to a spawned upload task; on a current-thread runtime those tasks only
/// start when the encoder next blocks on the runtime, so up to ten parts (50 MiB) sat queued in
/// memory. One runtime thread of its own starts each upload at once, and lets the encoding of
/// the next batch overlap it (measured in BENCHMARKS.md, issue 15).
pub fn upload_runtime() -> Result<tokio::runtime::Runtime, DeltaError> {
    register_cloud();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("deltadrop-upload")
        .enable_all()
        .build()
        .map_err(DeltaError::Runtime)
}

/// Fault injection for the crash tests: with `DELTADROP_CRASH_AT=<point>` (and optionally
/// `DELTADROP_CRASH_AFTER=<n>`, default 1) the process aborts — like `kill -9` — the n-th time
/// it passes that point. Points: after_intent, after_change_written (a commit that changes
/// rows: its files written, not committed), after_commit, after_record, before_archive,
/// during_archive, after_quarantine_commit; requeue_after_intent, requeue_after_table.
///
/// Only with the `failpoints` cargo feature (on in `cargo test`, off in `cargo build`): a
/// shipped binary reads no such variable, so its environment cannot make it stop mid-commit.
#[cfg(feature = "failpoints")]
pub fn crash_point(name: &str) {
    use std::sync::atomic::{AtomicU64, Ordering};
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

/// Without the `failpoints` feature: nothing, compiled away.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn crash_point(_name: &str) {}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[test]
    fn a_failed_step_keeps_its_error_as_the_source() {
        let e = failed(
            "part-0.parquet: reading",
            std::io::Error::other("disk gone"),
        );
        let step = e.source().expect("the step");
        assert_eq!(step.to_string(), "part-0.parquet: reading: disk gone");
        let cause = step.source().expect("its cause");
        assert!(
            cause.downcast_ref::<std::io::Error>().is_some(),
            "{cause:?}"
        );

        let url = url::Url::parse("file:///lake/sales").expect("a URL");
        let e = DeltaError::step(&url, "schema")(std::io::Error::other("bad type"));
        assert_eq!(e.to_string(), "table file:///lake/sales: schema: bad type");
        let cause = e.source().expect("its cause");
        assert!(
            cause.downcast_ref::<std::io::Error>().is_some(),
            "{cause:?}"
        );
    }
}
