//! One pipeline over the feeds that have a table: committers (which settle what a previous run
//! left first), then the worker pool, then the watcher — and, beside them, table maintenance.
//! It runs until its stop signal (or, with `--once`, until the files found at start are done),
//! then shuts down by closing channels: the watcher's end closes the job channel, the workers
//! drain it and exit, which closes the committers' channels; the committers commit what they
//! hold and exit.

use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::Sender;

use super::progress::{self, Progress};
use super::{Run, RunOptions};
use crate::config::{Config, FeedConfig};
use crate::counters::{Event, RunState};
use crate::delta::checkpoint::Checkpointer;
use crate::delta::{Committer, CommitterContext, DeltaError, FeedTables};
use crate::error::{io_err, Error};
use crate::job::{self, Board, CommitMsg, FileJob};
use crate::pool::{self, PoolContext};
use crate::shutdown::Shutdown;
use crate::state::FeedState;
use crate::watch::{self, WatchError, WatchedFeeds, Watcher};

/// A feed whose tables are open, with its state: ready for a committer.
pub(super) struct Opened {
    pub(super) feed: Arc<FeedConfig>,
    pub(super) tables: FeedTables,
    pub(super) state: FeedState,
}

/// Bounded: parsed small files wait here in memory (at most 128 × 2 MiB of CSV per feed).
const COMMIT_QUEUE: usize = 128;

/// Starts the stages from the pipeline's end (committers, then workers, then the watcher),
/// watches, then drains them from its front.
pub(super) fn run(
    cfg: &Config,
    opts: RunOptions,
    run: &Run,
    opened: Vec<Opened>,
    stop: &Shutdown,
) -> Result<(), Error> {
    let feeds: Vec<Arc<FeedConfig>> = opened.iter().map(|o| o.feed.clone()).collect();
    let board = job::board(
        opened
            .iter()
            .map(|o| (o.tables.schema.clone(), o.tables.table.clone()))
            .collect(),
    );
    // One checkpoint thread for every feed; it ends once the committers (and this handle) are
    // gone.
    let (checkpoints, checkpoint_thread) = Checkpointer::spawn();
    let committers = start_committers(run, opened, &board, &checkpoints, stop)?;
    let (commit_txs, committer_threads) = spawn_committers(committers)?;
    let archives: Vec<_> = feeds
        .iter()
        .map(|f| run.archive(f))
        .collect::<Result<_, _>>()?;
    let pool = PoolContext {
        feeds: feeds.clone(),
        board,
        committers: commit_txs,
        archives: archives.clone(),
        shutdown: stop.clone(),
    };
    let (jobs_tx, workers) = spawn_workers(cfg.workers, pool)?;
    let inboxes = WatchedFeeds {
        feeds: feeds.clone(),
        archives,
    };
    let watcher = Watcher::new(cfg, inboxes, run.tracker.clone(), jobs_tx, stop.clone());
    let (watched, progress) = if opts.once {
        dispatch_once(watcher, opts.progress, &feeds, run)
    } else {
        (watch_until_stopped(cfg, watcher, &feeds, run, stop), None)
    };
    if !opts.once || stop.is_triggered() {
        log::info!("stopping: finishing in-flight commits");
        set_state(run, &feeds, RunState::Stopping);
    }
    let threads = Threads {
        workers,
        committers: committer_threads,
        checkpoints,
        checkpoint_thread,
        progress,
    };
    threads.drain(watched, stop)
}

/// A committer per feed, in feed order; each settles what a previous run left as it starts.
fn start_committers(
    run: &Run,
    opened: Vec<Opened>,
    board: &Board,
    checkpoints: &Checkpointer,
    stop: &Shutdown,
) -> Result<Vec<Committer>, Error> {
    let mut committers = Vec::with_capacity(opened.len());
    for (feed_id, o) in opened.into_iter().enumerate() {
        let ctx = CommitterContext {
            feed_id,
            board: board.clone(),
            archive: run.archive(&o.feed)?,
            shutdown: stop.clone(),
            alive: run.watchdog.register(),
            checkpoints: checkpoints.clone(),
        };
        committers.push(Committer::start(o.feed, o.tables, o.state, ctx)?);
    }
    Ok(committers)
}

type CommitterThread = JoinHandle<Result<(), DeltaError>>;

/// A thread per committer, fed by its own bounded channel: the senders (what the workers get,
/// in feed order) and the threads.
fn spawn_committers(
    committers: Vec<Committer>,
) -> Result<(Vec<Sender<CommitMsg>>, Vec<CommitterThread>), Error> {
    let mut commit_txs = Vec::with_capacity(committers.len());
    let mut committer_threads = Vec::with_capacity(committers.len());
    for c in committers {
        let (tx, rx) = crossbeam_channel::bounded::<CommitMsg>(COMMIT_QUEUE);
        commit_txs.push(tx);
        committer_threads.push(
            std::thread::Builder::new()
                .name("committer".into())
                .spawn(move || c.run(rx))
                .map_err(io_err("cannot start a committer thread"))?,
        );
    }
    Ok((commit_txs, committer_threads))
}

/// The worker pool on the receiving end of the job channel: the channel's sending end (the
/// watcher's) and the workers.
fn spawn_workers(
    workers: usize,
    ctx: PoolContext,
) -> Result<(Sender<FileJob>, Vec<JoinHandle<()>>), Error> {
    let (jobs_tx, jobs_rx) = crossbeam_channel::bounded(workers * 4);
    let workers =
        pool::spawn(workers, jobs_rx, ctx).map_err(io_err("cannot start worker threads"))?;
    Ok((jobs_tx, workers))
}

/// The `--once` progress bar, over the files in the inboxes now.
fn start_progress(feeds: &[Arc<FeedConfig>], run: &Run) -> Progress {
    let total = feeds
        .iter()
        .map(|f| watch::inbox_files(f).len() as u64)
        .sum();
    progress::start(total, run.counters.clone())
}

/// `--once`: hands every file in the inboxes to the workers (dropping the watcher then closes
/// the job channel); with `show_progress`, the progress bar over them.
fn dispatch_once(
    mut watcher: Watcher,
    show_progress: bool,
    feeds: &[Arc<FeedConfig>],
    run: &Run,
) -> (Result<(), WatchError>, Option<Progress>) {
    let progress = show_progress.then(|| start_progress(feeds, run));
    let n = watcher.dispatch_all_once();
    drop(watcher);
    (
        n.map(|n| log::info!("--once: {n} file(s) to ingest")),
        progress,
    )
}

/// The daemon: watches the inboxes (events, or polling alone) until the stop, with table
/// maintenance beside it.
fn watch_until_stopped(
    cfg: &Config,
    mut watcher: Watcher,
    feeds: &[Arc<FeedConfig>],
    run: &Run,
    stop: &Shutdown,
) -> Result<(), WatchError> {
    if cfg.events {
        watcher.start_events(cfg.debounce);
    } else {
        log::info!(
            "events off: polling every {}",
            humantime::format_duration(cfg.poll_interval)
        );
    }
    log::info!(
        "watching {} inbox(es) with {} worker(s); Ctrl-C to stop",
        feeds.len(),
        cfg.workers
    );
    set_state(run, feeds, RunState::Running);
    crate::service::ready(&super::backlog_line(
        &run.feeds,
        &run.counters,
        &run.tracker,
    ));
    // Maintenance runs beside ingestion (its commits take the same flat path) until the
    // stop.
    let maintainer = crate::maintain::spawn_schedule(
        feeds
            .iter()
            .filter_map(|f| Some((f.clone(), run.counters.feed(&f.name)?)))
            .collect(),
        stop.clone(),
    );
    let res = watcher.run();
    if let Some(m) = maintainer {
        let _ = m.join();
    }
    res
}

/// What is left running once the watcher is gone, joined in the order the channels close.
struct Threads {
    workers: Vec<JoinHandle<()>>,
    committers: Vec<CommitterThread>,
    /// The pipeline's own handle: the checkpoint thread ends once it and the committers' are
    /// dropped.
    checkpoints: Checkpointer,
    checkpoint_thread: Option<JoinHandle<()>>,
    /// Lives until every commit is done.
    progress: Option<Progress>,
}

impl Threads {
    /// Waits for every thread; the first error: the watcher's, a committer's, then the stop's
    /// reason.
    fn drain(self, watched: Result<(), WatchError>, stop: &Shutdown) -> Result<(), Error> {
        // The watcher is gone, so the job channel is closed: workers drain it and exit, which
        // closes the committers' channels; committers commit what they hold and exit.
        for w in self.workers {
            let _ = w.join();
        }
        let mut first_err: Option<Error> = watched.err().map(Error::from);
        for e in join_committers(self.committers) {
            first_err.get_or_insert(e);
        }
        // A checkpoint being written is finished, not cut off.
        drop(self.checkpoints);
        if let Some(t) = self.checkpoint_thread {
            let _ = t.join();
        }
        drop(self.progress);
        if let Some(reason) = stop.failure() {
            first_err.get_or_insert(Error::BadData(reason));
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// Sets the state of `feeds` (a feed stopped by an error keeps saying why).
fn set_state(run: &Run, feeds: &[Arc<FeedConfig>], state: RunState) {
    for f in feeds {
        if let Some(c) = run.counters.feed(&f.name) {
            if !matches!(c.state(), RunState::Stopped(_)) {
                c.record(Event::State(state.clone()));
            }
        }
    }
}

/// Waits for every committer; their errors, in feed order.
fn join_committers(threads: Vec<CommitterThread>) -> Vec<Error> {
    threads
        .into_iter()
        .filter_map(|t| match t.join() {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(Error::Delta(e)),
            Err(_) => Some(Error::Internal("a committer thread panicked".into())),
        })
        .collect()
}
