//! Pool stage: worker threads that take [`FileJob`]s, parse them (ingest stage) and hand the
//! result to the feed's committer, or — when a file cannot be loaded — to the archive stage.
//! Each worker owns, per feed, a Parquet writer for large files and a small tokio runtime to
//! drive it. Commits never happen here.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender};
use deltalake::arrow::record_batch::RecordBatch;
use deltalake::writer::{DeltaWriter, RecordBatchWriter};

use crate::archive::Archive;
use crate::config::FeedConfig;
use crate::delta;
use crate::ingest::{self, IngestError, SinkError};
use crate::job::{Board, CommitMsg, FileData, FileJob, NewColumns, ParsedFile};
use crate::schema::{ColType, ColumnSpec, TableSchema};
use crate::shutdown::Shutdown;

/// Files up to this size are parsed into memory and share a Parquet file with the other files
/// of their commit; larger ones are streamed by the worker into their own Parquet files.
pub const INLINE_MAX_BYTES: u64 = 2 * 1024 * 1024;

/// What the workers share, per feed in feed order.
pub struct PoolContext {
    pub feeds: Vec<Arc<FeedConfig>>,
    /// Each feed's current table and columns.
    pub board: Board,
    pub committers: Vec<Sender<CommitMsg>>,
    /// Where files that are not committed end (rejected, retried, left).
    pub archives: Vec<Archive>,
    /// Stops large files mid-way (they stay in the inbox); `on_bad_row = "fail"` triggers it.
    pub shutdown: Shutdown,
}

pub fn spawn(
    workers: usize,
    jobs: Receiver<FileJob>,
    ctx: PoolContext,
) -> std::io::Result<Vec<JoinHandle<()>>> {
    let ctx = Arc::new(ctx);
    (0..workers)
        .map(|i| {
            let jobs = jobs.clone();
            let ctx = ctx.clone();
            std::thread::Builder::new()
                .name(format!("worker-{i}"))
                .spawn(move || Worker::new(ctx).run(jobs))
        })
        .collect()
}

struct Worker {
    ctx: Arc<PoolContext>,
    rt: Option<tokio::runtime::Runtime>,
    /// Per feed: a large-file writer and the schema generation it was made for.
    writers: Vec<Option<(u64, RecordBatchWriter)>>,
}

impl Worker {
    fn new(ctx: Arc<PoolContext>) -> Worker {
        let n = ctx.feeds.len();
        Worker {
            ctx,
            rt: None,
            writers: (0..n).map(|_| None).collect(),
        }
    }

    fn run(mut self, jobs: Receiver<FileJob>) {
        for job in jobs.iter() {
            let (feed, path) = (job.feed, job.path.clone());
            // A panic in a dependency must not cost a worker (the pool would shrink to nothing):
            // the file is given back for a later retry, the worker starts afresh.
            let outcome =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.process(job, true)));
            if let Err(panic) = outcome {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic".to_string());
                self.ctx.archives[feed].internal(&path, &format!("panic: {what}"));
                self.writers.iter_mut().for_each(|w| *w = None);
                self.rt = None;
            }
        }
    }

    /// Parses one file and sends it on. `may_grow`: a header with new columns may still evolve
    /// the table (once per file).
    fn process(&mut self, job: FileJob, may_grow: bool) {
        let started = Instant::now();
        let ctx = self.ctx.clone();
        let feed = &ctx.feeds[job.feed];
        let archive = &ctx.archives[job.feed];
        let name = job.name();
        let size = std::fs::metadata(&job.path).map(|m| m.len()).unwrap_or(0);
        if feed.max_file_bytes > 0 && size > feed.max_file_bytes {
            let reason = format!(
                "{name}: {size} bytes, more than max_file_bytes ({}); not read",
                feed.max_file_bytes
            );
            archive.reject(&job.path, &reason);
            return;
        }
        let (schema, generation) = {
            let board = ctx.board.read().unwrap_or_else(|e| e.into_inner());
            (board[job.feed].schema.clone(), board[job.feed].generation)
        };
        let ingested_at = chrono::Utc::now().timestamp_micros();
        log::debug!("feed {}: reading {name} ({size} bytes)", feed.name);
        // Upserts keep the last row of each key across the whole commit: the committer needs
        // every row in memory, so a large file is not streamed to Parquet ahead of it.
        let result = if size <= INLINE_MAX_BYTES || !feed.merge_key.is_empty() {
            let mut batches = Vec::new();
            ingest::parse_file(&job.path, feed, &schema, ingested_at, |b| {
                batches.push(b);
                Ok(())
            })
            .map(|s| (s, FileData::Batches(batches)))
        } else {
            self.parse_large(&job, &schema, generation, ingested_at)
        };

        let err = match result {
            Ok((summary, data)) => {
                log::debug!(
                    "feed {}: parsed {name}: {} rows, {} bytes in {} ms",
                    feed.name,
                    summary.rows,
                    summary.size,
                    started.elapsed().as_millis()
                );
                let msg = CommitMsg::File(Box::new(ParsedFile {
                    job: job.clone(),
                    hash: summary.hash,
                    size: summary.size,
                    rows: summary.rows,
                    data,
                    bad: summary.bad,
                    warned: summary.warned,
                    dialect: summary.dialect,
                    stamp: summary.stamp,
                    started,
                }));
                if ctx.committers[job.feed].send(msg).is_err() {
                    // The committer stopped (fatal error): the file stays in the inbox.
                    archive.leave(&job.path);
                }
                return;
            }
            Err(e) => e,
        };
        match err {
            IngestError::NewColumns(names) if may_grow => {
                if self.new_columns(&job, names) {
                    self.process(job, false);
                }
            }
            other => fail(archive, &ctx.shutdown, &job, other),
        }
    }

    /// The file has columns the table lacks (`on_new_column = "add"`): infer their types and
    /// ask the committer to add them. Returns true once the table has the columns (the file
    /// should be parsed again); on false the file has been given back for a later retry.
    fn new_columns(&self, job: &FileJob, names: Vec<String>) -> bool {
        let ctx = &self.ctx;
        let feed = &ctx.feeds[job.feed];
        let archive = &ctx.archives[job.feed];
        let sniffed = match ingest::infer::sniff(&job.path, feed, false) {
            Ok(s) => s,
            Err(e) => {
                let d = archive.retry(&job.path);
                log::warn!("feed {}: {}: {e}; retry in {d:?}", feed.name, job.name());
                return false;
            }
        };
        let columns: Vec<ColumnSpec> = names
            .iter()
            .map(|n| {
                // `n` is already the column name the header gives (`ingest::header_names`);
                // the sniffed column also has its name as written (`column_names =
                // "original"`).
                let found = sniffed.schema.columns.iter().find(|c| &c.name == n);
                ColumnSpec {
                    label: found.and_then(|c| c.label.clone()),
                    ..ColumnSpec::new(n, found.map_or(ColType::String, |c| c.ty.clone()), true)
                }
            })
            .collect();
        let (done, answer) = crossbeam_channel::bounded(1);
        let msg = CommitMsg::AddColumns(Box::new(NewColumns {
            job: job.clone(),
            columns,
            done,
        }));
        let added = ctx.committers[job.feed].send(msg).is_ok() && answer.recv().unwrap_or(false);
        if !added {
            let d = archive.retry(&job.path);
            log::warn!(
                "feed {}: {}: the table could not take its new columns; retry in {d:?}",
                feed.name,
                job.name()
            );
        }
        added
    }

    /// Streams a large file into Parquet files of the table (uncommitted until the committer
    /// references them).
    fn parse_large(
        &mut self,
        job: &FileJob,
        schema: &TableSchema,
        generation: u64,
        ingested_at: i64,
    ) -> Result<(ingest::FileSummary, FileData), IngestError> {
        if self.rt.is_none() {
            self.rt = Some(delta::upload_runtime().map_err(|e| IngestError::Write(e.to_string()))?);
        }
        let stale = !matches!(&self.writers[job.feed], Some((g, _)) if *g == generation);
        if stale {
            let board = self.ctx.board.read().unwrap_or_else(|e| e.into_inner());
            let w = delta::table::writer_for(&board[job.feed].table)
                .map_err(|e| IngestError::Write(e.to_string()))?;
            self.writers[job.feed] = Some((board[job.feed].generation, w));
        }
        let (Some(rt), Some((_, writer))) = (self.rt.as_ref(), self.writers[job.feed].as_mut())
        else {
            return Err(IngestError::Internal(
                "no Parquet writer for the file".into(),
            ));
        };
        let feed = &self.ctx.feeds[job.feed];
        let stop = &self.ctx.shutdown;
        // Parsing and Parquet encoding cost about the same; on their own threads, joined by a
        // short queue of batches, they overlap and one large file gets two cores.
        let (tx, rx) = crossbeam_channel::bounded::<RecordBatch>(4);
        let (parsed, encoded) = std::thread::scope(|scope| {
            let encoder = scope.spawn(move || -> Result<(), String> {
                for b in rx {
                    rt.block_on(writer.write(b)).map_err(|e| e.to_string())?;
                }
                Ok(())
            });
            let parsed = ingest::parse_file(&job.path, feed, schema, ingested_at, |b| {
                if stop.is_triggered() {
                    return Err(SinkError::Cancelled);
                }
                // Fails only when the encoder stopped on an error, reported below.
                tx.send(b)
                    .map_err(|_| SinkError::Write("the Parquet encoder stopped".into()))
            });
            drop(tx);
            let encoded = encoder
                .join()
                .unwrap_or_else(|_| Err("the Parquet encoder panicked".into()));
            (parsed, encoded)
        });
        let parsed = match (parsed, encoded) {
            (Err(IngestError::Cancelled), _) => Err(IngestError::Cancelled),
            (_, Err(e)) => Err(IngestError::Write(e)),
            (other, Ok(())) => other,
        };
        let (Some(rt), Some((_, writer))) = (self.rt.as_ref(), self.writers[job.feed].as_mut())
        else {
            return Err(IngestError::Internal(
                "no Parquet writer for the file".into(),
            ));
        };
        let result = match parsed {
            Ok(summary) => rt
                .block_on(writer.flush())
                .map(|adds| (summary, FileData::Written(adds)))
                .map_err(|e| IngestError::Write(e.to_string())),
            Err(e) => Err(e),
        };
        if result.is_err() {
            // A fresh writer next time. Not `reset()`: after a failed flush it panics in
            // object_store ("Already shut down"). Parquet files already rolled stay
            // unreferenced until a vacuum.
            self.writers[job.feed] = None;
        }
        result
    }
}

/// Where a file that could not be parsed goes: rejected, retried, or left as it is.
fn fail(archive: &Archive, shutdown: &Shutdown, job: &FileJob, err: IngestError) {
    use std::io::ErrorKind;
    let (feed, name, path) = (&archive.feed().name, job.name(), &job.path);
    match err {
        IngestError::Reject(reason) => archive.reject(path, &reason),
        IngestError::NewColumns(names) => {
            let d = archive.retry(path);
            log::warn!(
                "feed {feed}: {name}: column(s) {} could not be added; retry in {d:?}",
                names.join(", ")
            );
        }
        IngestError::Fail(reason) => {
            log::error!("feed {feed}: {reason}; stopping");
            archive.leave(path);
            shutdown.fail(reason);
        }
        IngestError::Cancelled => {
            log::info!("feed {feed}: {name} left in the inbox (stopping)");
            archive.leave(path);
        }
        IngestError::Gone => {
            log::debug!("feed {feed}: {name} vanished before it was read");
            archive.leave(path);
        }
        IngestError::Busy => {
            let d = archive.not_ready(path);
            log::debug!(
                "feed {feed}: {name} is open for writing by another process: taken once it is closed (next look in {d:?})"
            );
        }
        IngestError::Changed => {
            let d = archive.retry(path);
            log::info!(
                "feed {feed}: {name} changed while it was read (still being written?); retry in {d:?}"
            );
        }
        // An unreadable file will not become readable by waiting.
        IngestError::Io(e) if e.kind() == ErrorKind::PermissionDenied => {
            archive.reject(path, &format!("{name}: cannot read the file: {e}"))
        }
        // Corrupt compressed data, or text the decoder refuses: waiting will not fix it.
        IngestError::Io(e)
            if matches!(
                e.kind(),
                ErrorKind::InvalidData | ErrorKind::InvalidInput | ErrorKind::UnexpectedEof
            ) =>
        {
            archive.reject(path, &format!("{name}: corrupt or truncated content: {e}"))
        }
        IngestError::Internal(e) => archive.internal(path, &e),
        e @ (IngestError::Io(_) | IngestError::Write(_)) => {
            let d = archive.retry(path);
            log::warn!("feed {feed}: {name}: {e}; retry in {d:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::Config;
    use crate::counters::Counters;
    use crate::tracker::Tracker;

    fn archive(dir: &Path) -> (Archive, Arc<crate::counters::FeedCounters>, Tracker) {
        let cfg = Config::embedded(dir).unwrap();
        let feed = Arc::new(cfg.feeds[0].clone());
        std::fs::create_dir_all(&feed.inbox).unwrap();
        let counters = Counters::new([feed.name.clone()]);
        let c = counters.feed(&feed.name).unwrap();
        let tracker = Tracker::default();
        (Archive::new(feed, tracker.clone(), c.clone()), c, tracker)
    }

    fn job(a: &Archive, tracker: &Tracker, name: &str) -> FileJob {
        let path = a.feed().inbox.join(name);
        std::fs::write(&path, "x").unwrap();
        assert!(tracker.claim(&path));
        FileJob { feed: 0, path }
    }

    #[test]
    fn each_failure_ends_where_it_belongs() {
        let dir = tempfile::tempdir().unwrap();
        let (a, c, tracker) = archive(dir.path());
        let stop = Shutdown::default();

        let bad = job(&a, &tracker, "bad.csv");
        fail(&a, &stop, &bad, IngestError::Reject("bad.csv: no".into()));
        assert!(!bad.path.exists() && a.feed().rejected.join("bad.csv").exists());
        assert!(!tracker.is_claimed(&bad.path));

        let busy = job(&a, &tracker, "busy.csv");
        fail(&a, &stop, &busy, IngestError::Changed);
        assert!(
            busy.path.exists() && !tracker.claim(&busy.path),
            "backing off"
        );

        let locked = job(&a, &tracker, "locked.csv");
        let denied = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        fail(&a, &stop, &locked, IngestError::Io(denied));
        assert!(a.feed().rejected.join("locked.csv").exists());

        let gone = job(&a, &tracker, "gone.csv");
        fail(&a, &stop, &gone, IngestError::Gone);
        assert!(
            gone.path.exists() && tracker.claim(&gone.path),
            "released, not counted"
        );

        let s = c.snapshot();
        assert_eq!((s.files_rejected, s.transient_failures), (2, 1));
        assert!(!stop.is_triggered());

        let strict = job(&a, &tracker, "strict.csv");
        fail(
            &a,
            &stop,
            &strict,
            IngestError::Fail("strict.csv: line 5".into()),
        );
        assert!(strict.path.exists());
        assert_eq!(stop.failure().as_deref(), Some("strict.csv: line 5"));
    }

    #[test]
    fn an_internal_error_is_retried_a_few_times_then_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let (a, c, tracker) = archive(dir.path());
        let stop = Shutdown::default();
        let j = job(&a, &tracker, "odd.csv");
        for attempt in 1..=crate::archive::MAX_INTERNAL_ATTEMPTS {
            assert!(j.path.exists(), "attempt {attempt}");
            fail(&a, &stop, &j, IngestError::Internal("boom".into()));
        }
        let why = std::fs::read_to_string(a.feed().rejected.join("odd.csv.error.txt")).unwrap();
        assert!(why.contains("internal error (3 attempts): boom"), "{why}");
        let s = c.snapshot();
        assert_eq!((s.files_rejected, s.transient_failures), (1, 2));
        assert!(!tracker.is_claimed(&j.path));
    }
}
