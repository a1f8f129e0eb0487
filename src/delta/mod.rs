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
pub(crate) mod committed;
pub mod committer;
mod corrections;
mod files;
pub mod localfs;
pub mod log;
mod mapping;
mod open;
mod prepare;
pub(crate) mod quarantine;
mod recover;
mod report;
mod screen;
mod sequence;
pub mod table;
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
/// during_archive, after_quarantine_commit; requeue_after_intent, requeue_after_table;
/// during_download (a remote inbox object: after each chunk written locally).
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

/// A pause for the tests that change the world at a known instant: with
/// `DELTADROP_PAUSE_AT=<point>` and `DELTADROP_PAUSE_FILE=<path>`, the first time the process
/// passes that point it creates `<path>.reached` and waits until `<path>` exists (polled; at
/// most 60 s). Points: during_download (a remote object's first chunk written locally).
/// Only with the `failpoints` feature, like [`crash_point`].
#[cfg(feature = "failpoints")]
pub fn pause_point(name: &str) {
    use std::sync::atomic::{AtomicBool, Ordering};
    static DONE: AtomicBool = AtomicBool::new(false);
    let (Ok(point), Ok(file)) = (
        std::env::var("DELTADROP_PAUSE_AT"),
        std::env::var("DELTADROP_PAUSE_FILE"),
    ) else {
        return;
    };
    if point != name || DONE.swap(true, Ordering::SeqCst) {
        return;
    }
    let _ = std::fs::write(format!("{file}.reached"), name);
    let until = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !std::path::Path::new(&file).exists() && std::time::Instant::now() < until {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Without the `failpoints` feature: nothing, compiled away.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn pause_point(_name: &str) {}

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

/// A committer on real tables in a temporary folder, for the commit stage's unit tests
/// (`sequence`, `recover`): a feed of the built-in config, files dropped in its inbox and
/// parsed as a worker parses them, and the tables read back as another process sees them.
#[cfg(test)]
mod testing {
    use std::path::PathBuf;
    use std::sync::Arc;
    use std::time::Instant;

    use super::committer::{Committer, CommitterContext};
    use super::log::{Commit, Log};
    use super::open::FeedTables;
    use super::DeltaError;
    use crate::archive::Archive;
    use crate::config::{Config, FeedConfig, EXAMPLE};
    use crate::counters::Counters;
    use crate::job::{self, FileData, FileJob, ParsedFile};
    use crate::shutdown::Shutdown;
    use crate::state::{FeedState, FileRecord};
    use crate::tracker::Tracker;

    pub(super) const HEADER: &str =
        "sale_id,sold_at,store_id,product_id,quantity,unit_price,total,payment_method,customer_id";

    pub(super) struct Site {
        pub(super) _dir: tempfile::TempDir,
        pub(super) feed: Arc<FeedConfig>,
        pub(super) state_dir: PathBuf,
    }

    /// The built-in config's feed in a temporary folder.
    pub(super) fn site() -> Site {
        site_with("")
    }

    /// The same, with the feed's `key = value` lines `settings` in place of the built-in ones (or
    /// added to the feed).
    pub(super) fn site_with(settings: &str) -> Site {
        let dir = tempfile::tempdir().unwrap();
        let mut text = EXAMPLE.to_string();
        for line in settings.lines() {
            let key = line.split('=').next().unwrap().trim();
            match text.find(&format!("\n{key} =")) {
                Some(at) => {
                    let end = at + 1 + text[at + 1..].find('\n').unwrap();
                    text.replace_range(at + 1..end, line);
                }
                // Not set in the built-in config: added to the feed.
                None => {
                    text = text.replacen(
                        "name = \"sales\"\n",
                        &format!("name = \"sales\"\n{line}\n"),
                        1,
                    )
                }
            }
        }
        let cfg = Config::from_toml(&text, dir.path(), None).unwrap();
        let feed = Arc::new(cfg.feeds[0].clone());
        std::fs::create_dir_all(&feed.inbox).unwrap();
        Site {
            feed,
            state_dir: cfg.state_dir.clone(),
            _dir: dir,
        }
    }

    /// A file in the inbox, and the record a commit of it carries.
    pub(super) fn drop_file(s: &Site, name: &str, content: &str) -> FileRecord {
        let path = s.feed.inbox.join(name);
        std::fs::write(&path, content).unwrap();
        FileRecord {
            name: name.into(),
            path,
            size: content.len() as u64,
            hash: blake3::hash(content.as_bytes()).to_hex().to_string(),
            rows: 1,
            bad_rows: 0,
            warned_rows: 0,
            dialect: None,
        }
    }

    /// Sales rows `ids` (one per id) as CSV text.
    pub(super) fn sales(ids: &[&str], price: &str) -> String {
        let mut s = format!("{HEADER}\n");
        for id in ids {
            s.push_str(&format!(
                "{id},2024-03-01T10:00:00Z,ST1,P1,1,{price},{price},cash,C1\n"
            ));
        }
        s
    }

    /// `content` dropped in the inbox as `name` and parsed as a worker parses it.
    pub(super) fn parsed(s: &Site, c: &Committer, name: &str, content: &str) -> ParsedFile {
        let rec = drop_file(s, name, content);
        let mut batches = Vec::new();
        let summary = crate::ingest::parse_file(&rec.path, &s.feed, &c.tables.schema, 0, |b| {
            batches.push(b);
            Ok(())
        })
        .unwrap();
        ParsedFile {
            job: FileJob {
                feed: 0,
                path: rec.path,
            },
            hash: summary.hash,
            size: summary.size,
            rows: summary.rows,
            data: FileData::Batches(batches),
            bad: summary.bad,
            warned: summary.warned,
            dialect: summary.dialect,
            stamp: summary.stamp,
            started: Instant::now(),
        }
    }

    pub(super) fn start(s: &Site) -> Result<Committer, DeltaError> {
        let tables = FeedTables::open(&s.feed, || None).unwrap().unwrap();
        let state = FeedState::open(&s.state_dir, &s.feed.name).unwrap();
        let counters = Counters::new([s.feed.name.clone()]);
        let ctx = CommitterContext {
            feed_id: 0,
            board: job::board(vec![(tables.schema.clone(), tables.table.clone())]),
            archive: Archive::new(
                s.feed.clone(),
                Tracker::default(),
                counters.feed(&s.feed.name).unwrap(),
            ),
            shutdown: Shutdown::default(),
            alive: crate::service::Watchdog::from_env(String::new).register(),
            checkpoints: crate::delta::checkpoint::Checkpointer::spawn().0,
        };
        Committer::start(s.feed.clone(), tables, state, ctx)
    }

    /// A table as another process (or a reader) sees it now.
    pub(super) fn fresh(c: &Committer, url: &url::Url) -> deltalake::DeltaTable {
        c.tables
            .rt
            .block_on(crate::delta::table::load(
                url,
                &c.feed.storage_options,
                None,
            ))
            .unwrap()
    }

    /// The rows of a table as another process sees it (from its files' statistics).
    pub(super) fn rows_in(c: &Committer, url: &url::Url) -> i64 {
        let t = fresh(c, url);
        t.snapshot()
            .unwrap()
            .log_data()
            .iter()
            .map(|f| f.num_records().unwrap_or(0) as i64)
            .sum()
    }

    /// Another process writing the table: a log of its own.
    pub(super) fn other_writer(c: &Committer) -> Log {
        Log::new(&fresh(c, &c.feed.table_url))
    }

    /// The commit of `txn` landing, as the committer writes it (without data files).
    pub(super) fn land(c: &Committer, log: &mut Log, app_id: &str, txn: i64) -> i64 {
        let commit = Commit::append(vec![], Default::default(), app_id, txn);
        log.commit(&c.tables.rt, commit).unwrap()
    }

    pub(super) fn in_inbox(s: &Site, name: &str) -> bool {
        s.feed.inbox.join(name).exists()
    }

    pub(super) fn in_processed(s: &Site, name: &str) -> bool {
        s.feed.processed.join(name).exists()
    }
}
