//! Daemon: the library's entry point, [`run`]. It prepares the folders and takes the locks,
//! keeps the run's one set of counters and its status endpoint, and runs a [`pipeline`] over
//! the feeds that have a table — restarting it when a feed that waits for a first file to infer
//! its schema gets one. It ends with the stop line and a [`Summary`].

mod pipeline;
mod progress;

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::archive::Archive;
use crate::config::{self, Config, FeedConfig};
use crate::counters::{Counters, Event, RunState, Snapshot};
use crate::delta::FeedTables;
use crate::error::{io_err, Error};
use crate::schema::TableSchema;
use crate::shutdown::Shutdown;
use crate::state::{FeedState, InboxLock, StateLock};
use crate::tracker::Tracker;
use crate::{ingest, ops, watch};

#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// Ingest what is in the inboxes now, then return.
    pub once: bool,
    /// With `once`: draw a progress bar (stderr is a terminal).
    pub progress: bool,
}

/// What a run did that its caller acts on (the rest is in the stop line of the log).
#[derive(Debug, Clone, Copy, Default)]
pub struct Summary {
    /// Files that could not be ingested for a reason that may pass (`run --once` exits 1).
    pub transient_failures: u64,
}

impl From<Snapshot> for Summary {
    fn from(s: Snapshot) -> Self {
        Summary {
            transient_failures: s.transient_failures,
        }
    }
}

/// Creates a folder if missing; an existing one is used as it is (never emptied).
pub fn ensure_dir(path: &Path) -> Result<(), Error> {
    std::fs::create_dir_all(path)
        .map_err(io_err(format!("cannot create folder {}", path.display())))
}

/// What every stage of a run shares: the feeds (config order), their counters, and which file
/// is where.
pub(crate) struct Run {
    pub(crate) feeds: Vec<Arc<FeedConfig>>,
    pub(crate) counters: Arc<Counters>,
    pub(crate) tracker: Tracker,
    /// Each feed's archive stage, in feed order (shared by every pipeline of the run).
    archives: Vec<Archive>,
    /// systemd's watchdog, fed by the committers of whichever pipeline runs.
    pub(crate) watchdog: Arc<crate::service::Watchdog>,
}

impl Run {
    fn new(cfg: &Config) -> Result<Run, Error> {
        let feeds: Vec<Arc<FeedConfig>> = cfg.feeds.iter().cloned().map(Arc::new).collect();
        let counters = Counters::new(cfg.feeds.iter().map(|f| f.name.clone()));
        let tracker = Tracker::default();
        let archives = feeds
            .iter()
            .map(|f| {
                let c = counters
                    .feed(&f.name)
                    .ok_or_else(|| Error::Internal(format!("no counters for feed {}", f.name)))?;
                Ok(Archive::new(f.clone(), tracker.clone(), c))
            })
            .collect::<Result<_, Error>>()?;
        let watchdog = crate::service::Watchdog::from_env({
            let (feeds, counters, tracker) = (feeds.clone(), counters.clone(), tracker.clone());
            move || backlog_line(&feeds, &counters, &tracker)
        });
        Ok(Run {
            feeds,
            counters,
            tracker,
            archives,
            watchdog,
        })
    }

    /// The archive stage of `feed`: where its files end, counted with its counters.
    pub(crate) fn archive(&self, feed: &Arc<FeedConfig>) -> Result<Archive, Error> {
        self.feeds
            .iter()
            .position(|f| f.name == feed.name)
            .map(|i| self.archives[i].clone())
            .ok_or_else(|| Error::Internal(format!("no archive for feed {}", feed.name)))
    }
}

/// One line on every feed's backlog and table (systemd's STATUS=).
pub(crate) fn backlog_line(
    feeds: &[Arc<FeedConfig>],
    counters: &Counters,
    tracker: &Tracker,
) -> String {
    feeds
        .iter()
        .map(|f| {
            let version = counters
                .feed(&f.name)
                .map_or(-1, |c| c.snapshot().table_version);
            format!(
                "{}: {} waiting, {} in flight, table version {version}",
                f.name,
                watch::inbox_files(f).len(),
                tracker.busy_under(&f.inbox)
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
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
    let run = Run::new(cfg)?;
    // Not for --once: a one-shot run has nothing to be asked about.
    let _status = if opts.once {
        None
    } else {
        ops::status::start(
            cfg,
            run.feeds.clone(),
            run.counters.clone(),
            run.tracker.clone(),
        )
    };
    // Remote inboxes: their objects come into the local inboxes the pipelines read — all at
    // once for --once, every poll_interval otherwise — and what the archive does with them is
    // carried out in their stores.
    let mut mirror = crate::remote::Mirror::open(cfg, |n| run.counters.feed(n))?;
    let mut mirror_thread = None;
    let mirror_stop = shutdown.child();
    if let Some(m) = mirror.as_mut() {
        let first = m.pass();
        if opts.once {
            first?;
        }
    }
    if !opts.once {
        if let Some(m) = mirror.take() {
            mirror_thread = Some(
                m.spawn(cfg.poll_interval, mirror_stop.clone())
                    .map_err(io_err("cannot start the remote inbox thread"))?,
            );
        }
    }
    let result = rounds(cfg, opts, &run, &shutdown);
    mirror_stop.trigger();
    if let Some(t) = mirror_thread {
        let _ = t.join();
    }
    if let Some(m) = mirror.as_mut() {
        m.settle();
    }
    let s = run.counters.totals();
    log::info!(
        "stopped: {} file(s) / {} rows committed, {} rows quarantined, {} file(s) rejected, {} duplicate(s)",
        s.files_committed,
        s.rows_committed,
        s.rows_quarantined,
        s.files_rejected,
        s.files_duplicate
    );
    result.map(|()| Summary::from(s))
}

/// Pipelines, one after the other, until the daemon stops: a new one starts when a feed that
/// waited for a first file gets one.
fn rounds(cfg: &Config, opts: RunOptions, run: &Run, shutdown: &Shutdown) -> Result<(), Error> {
    loop {
        let round = shutdown.child();
        // Tables are opened (and a previous run's commit settled) before any file is taken. A
        // feed with `schema = "infer"`, no table and no file yet waits aside: the others run
        // meanwhile, and its first file restarts the pipeline with it.
        let mut ready = Vec::new();
        let mut waiting = Vec::new();
        for f in &run.feeds {
            let mut state = FeedState::open(&cfg.state_dir, &f.name)?;
            match FeedTables::open(f, || first_file_schema(run, f))? {
                Some(tables) => {
                    // A requeue a crash interrupted is finished before the committer starts.
                    crate::requeue::settle(&tables, &mut state, f)?;
                    ready.push(pipeline::Opened {
                        feed: f.clone(),
                        tables,
                        state,
                    })
                }
                None => waiting.push(f.clone()),
            }
        }
        for f in &waiting {
            if let Some(c) = run.counters.feed(&f.name) {
                c.record(Event::State(RunState::WaitingForFirstFile));
            }
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
        let first_file = Arc::new(AtomicBool::new(false));
        let watcher = (!opts.once && !waiting.is_empty())
            .then(|| watch_for_first_files(waiting, &round, first_file.clone()))
            .flatten();
        let result = if ready.is_empty() {
            // Nothing to run until a first file arrives (or the daemon is stopped).
            if !opts.once {
                crate::service::ready(&backlog_line(&run.feeds, &run.counters, &run.tracker));
                match run.watchdog.tick() {
                    Some(tick) => {
                        while !round.wait_timeout(tick) {
                            run.watchdog.idle();
                        }
                    }
                    None => round.wait(),
                }
            }
            Ok(())
        } else {
            pipeline::run(cfg, opts, run, ready, &round)
        };
        // The round is over, whatever ended it: this also stops the first-file watcher.
        round.trigger();
        if let Some(w) = watcher {
            let _ = w.join();
        }
        result?;
        if opts.once || shutdown.is_triggered() || !first_file.load(Ordering::SeqCst) {
            return Ok(());
        }
        log::info!(
            "a first file arrived for a feed without a table: restarting the pipeline with it"
        );
    }
}

/// `schema = "infer"` with no table yet: the schema of the first file in the inbox one can be
/// inferred from. A file whose header Delta refuses is rejected; None when there is no such
/// file yet.
fn first_file_schema(run: &Run, feed: &Arc<FeedConfig>) -> Option<TableSchema> {
    for p in watch::inbox_files(feed) {
        match ingest::infer::table_schema(&p, feed) {
            Ok((schema, sampled)) => {
                log::info!(
                    "feed {}: schema inferred from {} ({sampled} rows sampled): {}",
                    feed.name,
                    p.display(),
                    schema
                        .columns
                        .iter()
                        .map(|c| format!("{} {}", c.name, c.ty))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                return Some(schema);
            }
            Err(ingest::IngestError::Reject(reason)) => match run.archive(feed) {
                Ok(a) => a.reject(&p, &reason),
                Err(e) => log::warn!("feed {}: {reason}; {e}", feed.name),
            },
            Err(e) => log::warn!(
                "feed {}: cannot infer a schema from {}: {e}",
                feed.name,
                p.display()
            ),
        }
    }
    None
}

/// Polls the inboxes of feeds that wait for a first file (`schema = "infer"`, no table): when a
/// data file appears (or one changes), stops the pipeline of the moment so that it restarts
/// with that feed. Files there already were tried (none gave a schema) and are left alone.
/// None if the thread cannot start: the feed then waits for the next start, the others run on.
fn watch_for_first_files(
    feeds: Vec<Arc<FeedConfig>>,
    round: &Shutdown,
    fired: Arc<AtomicBool>,
) -> Option<JoinHandle<()>> {
    let round = round.clone();
    let snapshot = |feeds: &[Arc<FeedConfig>]| {
        feeds
            .iter()
            .flat_map(|f| watch::inbox_files(f))
            .map(|p| {
                let stamp = watch::inbox::file_stamp(&p);
                (p, stamp)
            })
            .collect::<HashSet<_>>()
    };
    let before = snapshot(&feeds);
    std::thread::Builder::new()
        .name("first-file".into())
        .spawn(move || {
            while !round.wait_timeout(Duration::from_millis(200)) {
                if snapshot(&feeds).iter().any(|f| !before.contains(f)) {
                    fired.store(true, Ordering::SeqCst);
                    round.trigger();
                    return;
                }
            }
        })
        .inspect_err(|e| log::error!("cannot watch for first files: {e}"))
        .ok()
}

/// A daemon that does not claim files must not watch an inbox other daemons claim from: it
/// would read files they are ingesting too.
fn refuse_shared_inbox(f: &FeedConfig) -> Result<(), Error> {
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
