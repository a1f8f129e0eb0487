//! Pool stage: worker threads that take [`FileJob`]s, parse them (ingest stage) and hand the
//! result to the feed's committer. Each worker owns, per feed, a Parquet writer for large files
//! and a small tokio runtime to drive it. Rejections happen here; commits never do.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender};
use deltalake::arrow::record_batch::RecordBatch;
use deltalake::writer::{DeltaWriter, RecordBatchWriter};

use crate::config::FeedConfig;
use crate::delta::{self, CommitMsg};
use crate::ingest::{self, IngestError};
use crate::job::{Board, FileData, FileJob, NewColumns, ParsedFile, Tracker};
use crate::quarantine;
use crate::schema::{ColType, ColumnSpec, TableSchema};

/// Files up to this size are parsed into memory and share a Parquet file with the other files
/// of their commit; larger ones are streamed by the worker into their own Parquet files.
pub const INLINE_MAX_BYTES: u64 = 2 * 1024 * 1024;

/// The sink's answer when the daemon stops in the middle of a large file.
const CANCELLED: &str = "cancelled: stopping";
const ENCODER_STOPPED: &str = "the Parquet encoder stopped";

pub struct PoolContext {
    pub feeds: Arc<Vec<FeedConfig>>,
    pub metrics: crate::metrics::MetricsRef,
    /// Each feed's current table and columns.
    pub board: Board,
    /// Triggered by `on_bad_row = "fail"`.
    pub shutdown: crate::Shutdown,
    pub committers: Vec<Sender<CommitMsg>>,
    pub tracker: Tracker,
    /// Set at shutdown: large files being parsed are abandoned (they stay in the inbox).
    pub cancel: Arc<AtomicBool>,
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
            let path = job.path.clone();
            // A panic in a dependency must not cost a worker (the pool would shrink to nothing):
            // the file is given back for a later retry, the worker starts afresh.
            let outcome =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.process(job)));
            if outcome.is_err() {
                let d = self.ctx.tracker.release_for_retry(&path);
                log::error!(
                    "internal error while processing {}; retry in {d:?}",
                    path.display()
                );
                self.writers.iter_mut().for_each(|w| *w = None);
                self.rt = None;
            }
        }
    }

    fn process(&mut self, job: FileJob) {
        self.process_attempt(job, true);
    }

    /// `may_grow`: a header with new columns may still evolve the table (once per file).
    fn process_attempt(&mut self, job: FileJob, may_grow: bool) {
        let started = Instant::now();
        let ctx = self.ctx.clone();
        let feed = &ctx.feeds[job.feed];
        let name = job.name();
        let size = std::fs::metadata(&job.path).map(|m| m.len()).unwrap_or(0);
        let ingested_at = chrono::Utc::now().timestamp_micros();
        let cancel = self.ctx.cancel.clone();

        let (schema, generation) = {
            let board = ctx.board.read().unwrap_or_else(|e| e.into_inner());
            (board[job.feed].schema.clone(), board[job.feed].generation)
        };
        let schema = &schema;
        if feed.max_file_bytes > 0 && size > feed.max_file_bytes {
            let reason = format!(
                "{name}: {size} bytes, more than max_file_bytes ({}); not read",
                feed.max_file_bytes
            );
            reject(&ctx, feed, &job, &reason);
            return;
        }
        let result = if size <= INLINE_MAX_BYTES {
            let mut batches = Vec::new();
            ingest::parse_file(&job.path, feed, schema, ingested_at, |b| {
                batches.push(b);
                Ok(())
            })
            .map(|s| (s, FileData::Batches(batches)))
        } else {
            self.parse_large(&job, schema, generation, ingested_at, &cancel)
        };

        let tracker = &ctx.tracker;
        match result {
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
                    started,
                }));
                if ctx.committers[job.feed].send(msg).is_err() {
                    // The committer stopped (fatal error): the file stays in the inbox.
                    tracker.release(&job.path);
                }
            }
            Err(IngestError::Reject(reason)) => reject(&ctx, feed, &job, &reason),
            Err(IngestError::NewColumns(names)) if may_grow => {
                if self.new_columns(&ctx, &job, names) {
                    self.process_attempt(job, false);
                }
            }
            Err(IngestError::NewColumns(names)) => {
                let d = tracker.release_for_retry(&job.path);
                log::warn!(
                    "feed {}: {name}: column(s) {} could not be added; retry in {d:?}",
                    feed.name,
                    names.join(", ")
                );
            }
            Err(IngestError::Fail(reason)) => {
                log::error!("feed {}: {reason}; stopping", feed.name);
                tracker.release(&job.path);
                ctx.shutdown.fail();
            }
            Err(IngestError::Cancelled) => {
                log::info!("feed {}: {name} left in the inbox (stopping)", feed.name);
                tracker.release(&job.path);
            }
            Err(IngestError::Gone) => {
                log::debug!("feed {}: {name} vanished before it was read", feed.name);
                tracker.release(&job.path);
            }
            Err(IngestError::Changed) => {
                ctx.metrics.feeds[job.feed]
                    .transient_failures
                    .fetch_add(1, Ordering::Relaxed);
                let d = tracker.release_for_retry(&job.path);
                log::info!(
                    "feed {}: {name} changed while it was read (still being written?); retry in {d:?}",
                    feed.name
                );
            }
            // An unreadable file will not become readable by waiting.
            Err(IngestError::Io(e)) if e.kind() == std::io::ErrorKind::PermissionDenied => reject(
                &ctx,
                feed,
                &job,
                &format!("{name}: cannot read the file: {e}"),
            ),
            // Corrupt compressed data, or text the decoder refuses: waiting will not fix it.
            Err(IngestError::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::InvalidData
                        | std::io::ErrorKind::InvalidInput
                        | std::io::ErrorKind::UnexpectedEof
                ) =>
            {
                reject(
                    &ctx,
                    feed,
                    &job,
                    &format!("{name}: corrupt or truncated content: {e}"),
                )
            }
            Err(e) => {
                let d = tracker.release_for_retry(&job.path);
                log::warn!("feed {}: {name}: {e}; retry in {d:?}", feed.name);
            }
        }
    }

    /// Streams a large file into Parquet files of the table (uncommitted until the committer
    /// references them).
    /// The file has columns the table lacks (`on_new_column = "add"`): infer their types and
    /// ask the committer to add them; the file is taken again once the table has them.
    /// Returns true once the table has the columns (the file should be parsed again); on false
    /// the file has been given back for a later retry.
    fn new_columns(&self, ctx: &PoolContext, job: &FileJob, names: Vec<String>) -> bool {
        let feed = &ctx.feeds[job.feed];
        let sniffed = match crate::ingest::infer::sniff(&job.path, feed, false) {
            Ok(s) => s,
            Err(e) => {
                let d = ctx.tracker.release_for_retry(&job.path);
                log::warn!("feed {}: {}: {e}; retry in {d:?}", feed.name, job.name());
                return false;
            }
        };
        let columns: Vec<ColumnSpec> = names
            .iter()
            .map(|n| {
                // `n` is already the column name the header gives (`ingest::header_names`).
                let ty = sniffed
                    .schema
                    .columns
                    .iter()
                    .find(|c| &c.name == n)
                    .map(|c| c.ty)
                    .unwrap_or(ColType::String);
                ColumnSpec::new(n, ty, true)
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
            let d = ctx.tracker.release_for_retry(&job.path);
            log::warn!(
                "feed {}: {}: the table could not take its new columns; retry in {d:?}",
                feed.name,
                job.name()
            );
        }
        added
    }

    fn parse_large(
        &mut self,
        job: &FileJob,
        schema: &TableSchema,
        generation: u64,
        ingested_at: i64,
        cancel: &AtomicBool,
    ) -> Result<(ingest::FileSummary, FileData), IngestError> {
        if self.rt.is_none() {
            self.rt = Some(delta::runtime().map_err(|e| IngestError::Sink(e.to_string()))?);
        }
        let stale = !matches!(&self.writers[job.feed], Some((g, _)) if *g == generation);
        if stale {
            let board = self.ctx.board.read().unwrap_or_else(|e| e.into_inner());
            let w = delta::writer_for(&board[job.feed].table)
                .map_err(|e| IngestError::Sink(e.to_string()))?;
            self.writers[job.feed] = Some((board[job.feed].generation, w));
        }
        let (Some(rt), Some((_, writer))) = (self.rt.as_ref(), self.writers[job.feed].as_mut())
        else {
            return Err(IngestError::Sink("writer unavailable".into()));
        };
        let feed = &self.ctx.feeds[job.feed];
        // Parsing and Parquet encoding cost about the same; on their own threads, joined by a
        // short queue of batches, they overlap and one large file gets two cores.
        let (tx, rx) = crossbeam_channel::bounded::<RecordBatch>(4);
        let (parsed, encoded) = std::thread::scope(|scope| {
            let encoder = scope.spawn(move || -> Result<(), String> {
                for b in rx {
                    rt.block_on(writer.write(b))
                        .map_err(|e| format!("writing Parquet: {e}"))?;
                }
                Ok(())
            });
            let parsed = ingest::parse_file(&job.path, feed, schema, ingested_at, |b| {
                if cancel.load(Ordering::Relaxed) {
                    return Err(CANCELLED.into());
                }
                // Fails only when the encoder stopped on an error, reported below.
                tx.send(b).map_err(|_| ENCODER_STOPPED.to_string())
            });
            drop(tx);
            let encoded = encoder
                .join()
                .unwrap_or_else(|_| Err("the Parquet encoder panicked".into()));
            (parsed, encoded)
        });
        let parsed = match (parsed, encoded) {
            (Err(IngestError::Sink(m)), _) if m == CANCELLED => Err(IngestError::Cancelled),
            (_, Err(e)) => Err(IngestError::Sink(e)),
            (other, Ok(())) => other,
        };
        let (Some(rt), Some((_, writer))) = (self.rt.as_ref(), self.writers[job.feed].as_mut())
        else {
            return Err(IngestError::Sink("writer unavailable".into()));
        };
        let result = match parsed {
            Ok(summary) => rt
                .block_on(writer.flush())
                .map(|adds| (summary, FileData::Written(adds)))
                .map_err(|e| IngestError::Sink(format!("writing Parquet: {e}"))),
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

/// Moves a file that cannot be ingested to `rejected/`; if even that fails, retries later.
fn reject(ctx: &PoolContext, feed: &FeedConfig, job: &FileJob, reason: &str) {
    let tracker = &ctx.tracker;
    match quarantine::reject_logged(feed, &job.path, reason) {
        Ok(_) => {
            tracker
                .stats()
                .files_rejected
                .fetch_add(1, Ordering::Relaxed);
            ctx.metrics.feeds[job.feed]
                .files_rejected
                .fetch_add(1, Ordering::Relaxed);
            tracker.release(&job.path);
        }
        Err(e) => {
            let d = tracker.release_for_retry(&job.path);
            log::error!(
                "feed {}: {} must be rejected ({reason}) but {e}; retry in {d:?}",
                feed.name,
                job.name()
            );
        }
    }
}
