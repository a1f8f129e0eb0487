//! deltadrop: a daemon that turns a drop folder of CSV files into a Delta Lake table, exactly once.
//!
//! The pipeline, one module per stage:
//! `watch` (events + poll → complete files) → `pool` (workers: `ingest` parses CSV into Arrow)
//! → `delta` (one committer per table, exactly-once with `state`) → `quarantine` (files leave
//! the inbox). `config` reads the TOML file; `cli` is the command line; `job` holds the types
//! that cross channels. [`run`] is the library entry point.

pub mod cli;
pub mod config;
pub mod delta;
pub mod ingest;
pub mod inspect;
pub mod job;
pub mod localfs;
pub mod maintain;
pub mod metrics;
pub mod pool;
pub mod quarantine;
pub mod schema;
pub mod state;
pub mod status;
pub mod watch;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};

use crate::config::{Config, ConfigError};
use crate::delta::{Committer, DeltaError};
use crate::job::Tracker;
use crate::state::{FeedState, InboxLock, StateError, StateLock};
use crate::watch::{WatchError, Watcher};

/// Every error the library returns; each module has its own enum underneath.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Delta(#[from] DeltaError),
    #[error(transparent)]
    Watch(#[from] WatchError),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    /// The user asked for something that cannot be done as asked.
    #[error("{0}")]
    Usage(String),
    /// The run stopped on purpose because of bad data (`on_bad_row = "fail"`).
    #[error("{0}")]
    Stopped(String),
}

impl Error {
    /// 2 for configuration and usage errors, 1 for everything else (see README).
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Config(_) | Error::Usage(_) => 2,
            _ => 1,
        }
    }
}

fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let context = context.into();
    move |source| Error::Io { context, source }
}

/// Asks a running [`run`] to stop: no new files are taken, in-flight commits finish.
#[derive(Clone)]
pub struct Shutdown {
    tx: Sender<()>,
    rx: Receiver<()>,
    flag: Arc<AtomicBool>,
    /// Set when the stop is due to an error (`on_bad_row = "fail"`): exit non-zero.
    failed: Arc<AtomicBool>,
}

impl Default for Shutdown {
    fn default() -> Self {
        let (tx, rx) = crossbeam_channel::unbounded();
        Shutdown {
            tx,
            rx,
            flag: Arc::new(AtomicBool::new(false)),
            failed: Arc::new(AtomicBool::new(false)),
        }
    }
}

impl Shutdown {
    pub fn trigger(&self) {
        self.flag.store(true, Ordering::SeqCst);
        let _ = self.tx.send(());
    }

    pub fn is_triggered(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    /// Stops because of an error: the run returns an error.
    pub fn fail(&self) {
        self.failed.store(true, Ordering::SeqCst);
        self.trigger();
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// Ingest what is in the inboxes now, then return.
    pub once: bool,
    /// With `once`: draw a progress bar (stderr is a terminal).
    pub progress: bool,
}

/// The `run --once` progress bar: files, rows, MB/s, ETA, from the shared counters.
mod progress {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use indicatif::{ProgressBar, ProgressStyle};

    use crate::job::Tracker;

    pub struct Progress {
        stop: Arc<AtomicBool>,
        thread: Option<std::thread::JoinHandle<()>>,
    }

    impl Drop for Progress {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::SeqCst);
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        }
    }

    pub fn start(total: u64, tracker: Tracker) -> Progress {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let bar = ProgressBar::new(total);
            let style =
                ProgressStyle::with_template("{bar:30} {pos}/{len} files  {msg}  ETA {eta}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            let started = Instant::now();
            loop {
                let s = tracker.stats();
                let done = s.files_committed.load(Ordering::Relaxed)
                    + s.files_rejected.load(Ordering::Relaxed)
                    + s.files_duplicate.load(Ordering::Relaxed);
                let rows = s.rows_committed.load(Ordering::Relaxed);
                let mb = s.bytes_committed.load(Ordering::Relaxed) as f64 / 1e6;
                let secs = started.elapsed().as_secs_f64().max(0.001);
                bar.set_position(done);
                bar.set_message(format!("{rows} rows  {:.1} MB/s", mb / secs));
                if flag.load(Ordering::SeqCst) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            bar.finish();
        });
        Progress {
            stop,
            thread: Some(thread),
        }
    }
}

/// What a run did.
#[derive(Debug, Clone, Copy, Default)]
pub struct Summary {
    pub files_committed: u64,
    pub rows_committed: u64,
    pub rows_quarantined: u64,
    pub files_rejected: u64,
    pub files_duplicate: u64,
    pub transient_failures: u64,
}

impl Summary {
    fn add(&mut self, o: &Summary) {
        self.files_committed += o.files_committed;
        self.rows_committed += o.rows_committed;
        self.rows_quarantined += o.rows_quarantined;
        self.files_rejected += o.files_rejected;
        self.files_duplicate += o.files_duplicate;
        self.transient_failures += o.transient_failures;
    }
}

/// Creates a folder if missing; an existing one is used as it is (never emptied).
pub fn ensure_dir(path: &Path) -> Result<(), Error> {
    std::fs::create_dir_all(path)
        .map_err(io_err(format!("cannot create folder {}", path.display())))
}

/// A daemon that does not claim files must not watch an inbox other daemons claim from: it
/// would read files they are ingesting too.
fn refuse_shared_inbox(f: &config::FeedConfig) -> Result<(), Error> {
    let claims = f.inbox.join(config::CLAIMS_DIR);
    let mut others: Vec<String> = std::fs::read_dir(&claims)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    if others.is_empty() {
        return Ok(());
    }
    others.sort();
    Err(Error::Usage(format!(
        "feed {}: inbox {} is shared (daemons {} claim files from it, see {}); set `shared_inbox = true` and a unique `instance` in this daemon's config too",
        f.name,
        f.inbox.display(),
        others.join(", "),
        claims.display()
    )))
}

/// Runs the daemon until `shutdown` is triggered (or, with `once`, until the inboxes as they
/// were at start are ingested).
pub fn run(cfg: &Config, opts: RunOptions, shutdown: Shutdown) -> Result<Summary, Error> {
    for f in &cfg.feeds {
        ensure_dir(&f.inbox)?;
        ensure_dir(&f.processed)?;
        ensure_dir(&f.rejected)?;
        match &f.claim_dir {
            Some(dir) => ensure_dir(dir)?,
            None => refuse_shared_inbox(f)?,
        }
    }
    let _lock = StateLock::acquire(&cfg.state_dir)?;
    let _inbox_locks = cfg
        .feeds
        .iter()
        .map(|f| InboxLock::acquire(&f.inbox, f.claim_dir.is_some()))
        .collect::<Result<Vec<_>, _>>()?;
    let mut total = Summary::default();
    loop {
        let tracker = Tracker::default();
        // Committers start first: they settle what a previous run left before any file is
        // taken. A feed with `schema = "infer"`, no table and no file yet waits aside: the
        // others run meanwhile, and its first file restarts the pipeline with it.
        let mut committers = Vec::with_capacity(cfg.feeds.len());
        let mut ready = Vec::new();
        let mut waiting = Vec::new();
        for f in &cfg.feeds {
            let state = FeedState::open(&cfg.state_dir, &f.name)?;
            match Committer::start(f.clone(), state, tracker.clone())? {
                Some(c) => {
                    committers.push(c);
                    ready.push(f.clone());
                }
                None => waiting.push(f.clone()),
            }
        }
        for f in &waiting {
            if opts.once {
                log::info!(
                    "feed {}: schema = \"infer\", no table yet and no file in {} to infer one from: nothing to do",
                    f.name,
                    f.inbox.display()
                );
            } else {
                log::info!(
                    "feed {}: schema = \"infer\" and no table yet: waiting for a first file in {} (the other feeds run meanwhile)",
                    f.name,
                    f.inbox.display()
                );
            }
        }
        let round_cfg = Config {
            feeds: ready,
            ..cfg.clone()
        };
        let round = Shutdown::default();
        let first_file = Arc::new(AtomicBool::new(false));
        let (done_tx, done_rx) = crossbeam_channel::bounded::<()>(0);
        let helpers = [
            forward_shutdown(&shutdown, &round, done_rx.clone()),
            (!opts.once && !waiting.is_empty())
                .then(|| {
                    watch_for_first_files(waiting, &round, first_file.clone(), done_rx.clone())
                })
                .flatten(),
        ];
        let result = if round_cfg.feeds.is_empty() {
            // Nothing to run until a first file arrives (or the daemon is stopped).
            if !opts.once {
                let _ = round.rx.recv();
            }
            Ok(Summary::default())
        } else {
            run_round(&round_cfg, opts, committers, tracker, round.clone())
        };
        drop(done_tx);
        for h in helpers.into_iter().flatten() {
            let _ = h.join();
        }
        total.add(&result?);
        if opts.once || shutdown.is_triggered() || !first_file.load(Ordering::SeqCst) {
            return Ok(total);
        }
        log::info!(
            "a first file arrived for a feed without a table: restarting the pipeline with it"
        );
    }
}

/// Triggers `round` when `outer` is: the daemon's stop reaches the pipeline of the moment.
fn forward_shutdown(
    outer: &Shutdown,
    round: &Shutdown,
    done: Receiver<()>,
) -> Option<std::thread::JoinHandle<()>> {
    let (outer, round) = (outer.clone(), round.clone());
    std::thread::Builder::new()
        .name("shutdown".into())
        .spawn(move || {
            if outer.is_triggered() {
                round.trigger();
                return;
            }
            crossbeam_channel::select! {
                recv(outer.rx) -> _ => round.trigger(),
                recv(done) -> _ => {}
            }
        })
        .ok()
}

/// Polls the inboxes of feeds that wait for a first file (`schema = "infer"`, no table): when a
/// data file appears (or one changes), stops the pipeline of the moment so that it restarts
/// with that feed. Files there already were tried (none gave a schema) and are left alone.
/// None if the thread cannot start: the feed then waits for the next start, the others run on.
fn watch_for_first_files(
    feeds: Vec<config::FeedConfig>,
    round: &Shutdown,
    fired: Arc<AtomicBool>,
    done: Receiver<()>,
) -> Option<std::thread::JoinHandle<()>> {
    let round = round.clone();
    let snapshot = |feeds: &[config::FeedConfig]| {
        feeds
            .iter()
            .flat_map(watch::inbox_files)
            .map(|p| {
                let stamp = watch::file_stamp(&p);
                (p, stamp)
            })
            .collect::<std::collections::HashSet<_>>()
    };
    let before = snapshot(&feeds);
    std::thread::Builder::new()
        .name("first-file".into())
        .spawn(move || loop {
            crossbeam_channel::select! {
                recv(done) -> _ => return,
                default(std::time::Duration::from_millis(200)) => {}
            }
            if snapshot(&feeds).iter().any(|f| !before.contains(f)) {
                fired.store(true, Ordering::SeqCst);
                round.trigger();
                return;
            }
        })
        .inspect_err(|e| log::error!("cannot watch for first files: {e}"))
        .ok()
}

/// One pipeline over the feeds that have a table: watcher → pool → committers, until `shutdown`.
fn run_round(
    cfg: &Config,
    opts: RunOptions,
    mut committers: Vec<Committer>,
    tracker: Tracker,
    shutdown: Shutdown,
) -> Result<Summary, Error> {
    let board: job::Board = Arc::new(std::sync::RwLock::new(
        committers
            .iter()
            .map(|c| job::TableInfo {
                schema: c.schema().clone(),
                table: c.table().clone(),
                generation: 0,
            })
            .collect(),
    ));
    let metrics = metrics::Metrics::new(cfg.feeds.iter().map(|f| f.name.clone()).collect());
    for (i, c) in committers.iter_mut().enumerate() {
        c.publish_to(board.clone(), metrics.clone(), i);
    }
    // Not for --once: a one-shot run has nothing to be asked about.
    let _status = if opts.once {
        None
    } else {
        status::start(cfg, metrics.clone(), tracker.clone())
    };

    let (jobs_tx, jobs_rx) = crossbeam_channel::bounded(cfg.workers * 4);
    let mut commit_txs = Vec::new();
    let mut committer_threads = Vec::new();
    for c in committers {
        // Bounded: parsed small files wait here in memory (at most 128 × 2 MiB of CSV).
        let (tx, rx) = delta::channel(128);
        commit_txs.push(tx);
        let fatal = shutdown.clone();
        let (ftx, frx) = crossbeam_channel::bounded::<()>(1);
        // Forward a committer's fatal error into the shutdown signal.
        std::thread::spawn(move || {
            if frx.recv().is_ok() {
                fatal.trigger();
            }
        });
        committer_threads.push(
            std::thread::Builder::new()
                .name("committer".into())
                .spawn(move || c.run(rx, ftx))
                .map_err(io_err("cannot start a committer thread"))?,
        );
    }
    let workers = pool::spawn(
        cfg.workers,
        jobs_rx,
        pool::PoolContext {
            feeds: Arc::new(cfg.feeds.clone()),
            metrics: metrics.clone(),
            board,
            shutdown: shutdown.clone(),
            committers: commit_txs,
            tracker: tracker.clone(),
            cancel: shutdown.flag.clone(),
        },
    )
    .map_err(io_err("cannot start worker threads"))?;

    let mut watcher = Watcher::new(cfg, tracker.clone(), jobs_tx, shutdown.flag.clone());
    // Lives until every commit is done (dropped at the end of this function).
    let mut _progress = None;
    let watched = if opts.once {
        if opts.progress {
            let total = cfg
                .feeds
                .iter()
                .map(|f| watch::inbox_files(f).len() as u64)
                .sum();
            _progress = Some(progress::start(total, tracker.clone()));
        }
        let n = watcher.dispatch_all_once(&shutdown.rx);
        drop(watcher);
        n.map(|n| log::info!("--once: {n} file(s) to ingest"))
    } else {
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
            cfg.feeds.len(),
            cfg.workers
        );
        // Maintenance runs beside ingestion (its commits take the same flat path); the
        // channel is never sent on: dropping its sender at shutdown wakes the threads.
        let (wake_tx, wake_rx) = crossbeam_channel::bounded::<()>(0);
        let maintainers: Vec<_> = cfg
            .feeds
            .iter()
            .filter_map(|f| {
                maintain::spawn_schedule(f.clone(), shutdown.flag.clone(), wake_rx.clone())
            })
            .collect();
        let res = watcher.run(shutdown.rx.clone());
        drop(wake_tx);
        for m in maintainers {
            let _ = m.join();
        }
        res
    };
    if !opts.once || shutdown.is_triggered() {
        log::info!("stopping: finishing in-flight commits");
    }
    // The watcher is gone, so the job channel is closed: workers drain it and exit, which
    // closes the committers' channels; committers commit what they hold and exit.
    for w in workers {
        let _ = w.join();
    }
    let mut first_err: Option<Error> = watched.err().map(Error::from);
    for t in committer_threads {
        match t.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                first_err.get_or_insert(Error::Delta(e));
            }
            Err(_) => {
                first_err.get_or_insert(Error::Stopped("a committer thread panicked".into()));
            }
        }
    }
    drop(_progress.take());
    let s = tracker.stats();
    let summary = Summary {
        files_committed: s.files_committed.load(Ordering::Relaxed),
        rows_committed: s.rows_committed.load(Ordering::Relaxed),
        rows_quarantined: s.rows_quarantined.load(Ordering::Relaxed),
        files_rejected: s.files_rejected.load(Ordering::Relaxed),
        files_duplicate: s.files_duplicate.load(Ordering::Relaxed),
        transient_failures: s.transient_failures.load(Ordering::Relaxed),
    };
    log::info!(
        "stopped: {} file(s) / {} rows committed, {} rows quarantined, {} file(s) rejected, {} duplicate(s)",
        summary.files_committed,
        summary.rows_committed,
        summary.rows_quarantined,
        summary.files_rejected,
        summary.files_duplicate
    );
    if first_err.is_none() && shutdown.failed.load(Ordering::SeqCst) {
        first_err = Some(Error::Stopped(
            "stopped by on_bad_row = \"fail\" (see the error above); the file is still in the inbox".into(),
        ));
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(summary),
    }
}
