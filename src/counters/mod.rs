//! Counters: one set per feed, the daemon's only record of what it did. They are bumped in one
//! place, [`FeedCounters::record`], and read by `/metrics` (they are the Prometheus metric
//! families themselves, encoded by `prometheus-client`), by `/status` and `status --json`, by
//! the `run --once` progress bar and by the stop line; and the operator's page reads their
//! recent history ([`recent`]), kept by the same `record`.

pub mod recent;

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

pub use recent::{BadRowSeen, RecentView, RunState};
use recent::{CommitSeen, Recent};

/// Upper bounds of the commit-duration buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0,
];

/// What happened, as far as counting goes.
#[derive(Debug, Clone)]
pub enum Event {
    /// A file's rows are committed (bad rows in the quarantine table, warned rows kept).
    FileCommitted {
        rows: u64,
        bytes: u64,
        quarantined: u64,
        warned: u64,
        /// From the moment it was found complete to its commit (None when unknown: a commit
        /// settled after a restart).
        latency: Option<Duration>,
    },
    /// A file went to `rejected/`, for `reason`.
    FileRejected { name: String, reason: String },
    /// A file's content was loaded before: archived, not loaded again.
    FileDuplicate,
    /// A file was given back to wait out a backoff (a failure that may pass).
    Retry,
    /// A commit landed at `version`, `took` after the committer started on it.
    Commit {
        took: Duration,
        version: i64,
        files: u64,
        rows: u64,
        quarantined: u64,
    },
    /// Bad rows a commit put in the quarantine table (the latest few, for the page).
    BadRows(Vec<BadRowSeen>),
    /// A commit failed; its files are retried after a backoff.
    CommitFailed { error: String },
    /// A maintenance run: what it did, one line per table.
    Maintained { tables: Vec<String> },
    /// A checkpoint was written at `version`.
    Checkpoint { version: i64, took: Duration },
    /// The feed's state changed.
    State(RunState),
    /// The table's version when its committer started.
    TableAt { version: i64 },
    /// Live figures, counted when someone asks: files waiting in the inbox, files in flight.
    Backlog { waiting: u64, in_flight: u64 },
    /// The feed's inbox in object storage could not be listed, read or archived.
    InboxUnreachable { error: String },
    /// A loaded file grew afterwards (its writer was still going): `bytes` were set aside.
    Grown { name: String, bytes: u64 },
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FeedLabel {
    feed: String,
}

/// One feed's counters: handles into the registry's families, labelled with the feed.
pub struct FeedCounters {
    files_committed: Counter,
    rows_committed: Counter,
    rows_quarantined: Counter,
    rows_warned: Counter,
    files_rejected: Counter,
    files_duplicate: Counter,
    transient_failures: Counter,
    table_version: Gauge,
    last_commit_seconds: Gauge<f64, AtomicU64>,
    commit_duration: Histogram,
    backlog: Gauge,
    in_flight: Gauge,
    files_grown: Counter,
    bytes_grown: Counter,
    /// The last file that grew after it was loaded, and by how many bytes.
    last_grown: std::sync::Mutex<Option<(String, u64)>>,
    /// Not exported (the progress bar's MB/s).
    bytes_committed: Counter,
    /// Exported as the histogram's count (prometheus-client does not read that back).
    commits: Counter,
    /// The last hour and the latest events, for the page.
    recent: std::sync::Mutex<Recent>,
}

/// A feed's counters read at one moment (or several feeds' summed: see [`Counters::totals`]).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Snapshot {
    pub files_committed: u64,
    pub rows_committed: u64,
    pub bytes_committed: u64,
    pub rows_quarantined: u64,
    pub rows_warned: u64,
    pub files_rejected: u64,
    pub files_duplicate: u64,
    pub transient_failures: u64,
    pub commits: u64,
    pub table_version: i64,
    /// Unix milliseconds of the last commit of this run, if any.
    pub last_commit_ms: Option<i64>,
    pub backlog: u64,
    pub in_flight: u64,
    pub files_grown: u64,
    pub bytes_grown: u64,
}

impl Snapshot {
    /// Files done with: committed, rejected or found duplicate.
    pub fn files_done(&self) -> u64 {
        self.files_committed + self.files_rejected + self.files_duplicate
    }
}

impl FeedCounters {
    /// The one place where counters change.
    pub fn record(&self, event: Event) {
        match event {
            Event::FileCommitted {
                rows,
                bytes,
                quarantined,
                warned,
                latency,
            } => {
                self.recent().file_committed(rows, latency);
                self.files_committed.inc();
                self.rows_committed.inc_by(rows);
                self.bytes_committed.inc_by(bytes);
                self.rows_quarantined.inc_by(quarantined);
                self.rows_warned.inc_by(warned);
            }
            Event::FileRejected { name, reason } => {
                self.files_rejected.inc();
                self.recent().rejected(name, reason);
            }
            Event::FileDuplicate => {
                self.files_duplicate.inc();
            }
            Event::Retry => {
                self.transient_failures.inc();
                self.recent().retry();
            }
            Event::Commit {
                took,
                version,
                files,
                rows,
                quarantined,
            } => {
                self.recent().commit(CommitSeen {
                    at_ms: recent::now_ms(),
                    version,
                    files,
                    rows,
                    quarantined,
                    millis: took.as_secs_f64() * 1000.0,
                });
                self.commit_duration.observe(took.as_secs_f64());
                self.commits.inc();
                self.table_version.set(version);
                let now_ms = chrono::Utc::now().timestamp_millis();
                self.last_commit_seconds.set(now_ms as f64 / 1000.0);
            }
            Event::TableAt { version } => {
                self.table_version.set(version);
            }
            Event::Backlog { waiting, in_flight } => {
                self.backlog.set(i64::try_from(waiting).unwrap_or(i64::MAX));
                self.in_flight
                    .set(i64::try_from(in_flight).unwrap_or(i64::MAX));
            }
            Event::Grown { name, bytes } => {
                self.files_grown.inc();
                self.bytes_grown.inc_by(bytes);
                *self.last_grown.lock().unwrap_or_else(|e| e.into_inner()) = Some((name, bytes));
            }
            Event::BadRows(rows) => self.recent().bad_rows(rows),
            Event::CommitFailed { error } => self.recent().commit_failed(error),
            Event::InboxUnreachable { error } => {
                self.recent().commit_failed(format!("inbox: {error}"))
            }
            Event::Maintained { tables } => self.recent().maintenance(tables),
            Event::Checkpoint { version, took } => self.recent().checkpoint(version, took),
            Event::State(state) => self.recent().state = state,
        }
    }

    fn recent(&self) -> std::sync::MutexGuard<'_, Recent> {
        // A poisoned lock only means a reader panicked mid-copy: the history is still whole.
        self.recent.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The last hour and the latest events (the operator's page).
    pub fn recent_view(&self) -> RecentView {
        self.recent().view()
    }

    pub fn state(&self) -> RunState {
        self.recent().state.clone()
    }

    /// The last file that grew after it was loaded (name, bytes), if one did in this run.
    pub fn last_grown(&self) -> Option<(String, u64)> {
        self.last_grown
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn snapshot(&self) -> Snapshot {
        let last = self.last_commit_seconds.get();
        Snapshot {
            files_committed: self.files_committed.get(),
            rows_committed: self.rows_committed.get(),
            bytes_committed: self.bytes_committed.get(),
            rows_quarantined: self.rows_quarantined.get(),
            rows_warned: self.rows_warned.get(),
            files_rejected: self.files_rejected.get(),
            files_duplicate: self.files_duplicate.get(),
            transient_failures: self.transient_failures.get(),
            commits: self.commits.get(),
            table_version: self.table_version.get(),
            last_commit_ms: (last > 0.0).then(|| (last * 1000.0).round() as i64),
            backlog: u64::try_from(self.backlog.get()).unwrap_or(0),
            in_flight: u64::try_from(self.in_flight.get()).unwrap_or(0),
            files_grown: self.files_grown.get(),
            bytes_grown: self.bytes_grown.get(),
        }
    }
}

/// Every feed's counters, in config order, and the registry that exports them.
pub struct Counters {
    registry: Registry,
    feeds: Vec<(String, Arc<FeedCounters>)>,
    uptime: Gauge<f64, AtomicU64>,
    started: Instant,
}

impl Counters {
    /// Registers the metric families, then one set of counters per feed in `names`.
    pub fn new(names: impl IntoIterator<Item = String>) -> Arc<Counters> {
        let mut registry = Registry::default();
        let families = Families::register(&mut registry);
        let uptime = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "deltadrop_uptime_seconds",
            "Seconds since the daemon started",
            uptime.clone(),
        );
        let feeds = names
            .into_iter()
            .map(|name| {
                let c = families.labelled(&name);
                (name, Arc::new(c))
            })
            .collect();
        Arc::new(Counters {
            registry,
            feeds,
            uptime,
            started: Instant::now(),
        })
    }

    /// The counters of the feed named `name`.
    pub fn feed(&self, name: &str) -> Option<Arc<FeedCounters>> {
        self.feeds
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, c)| c.clone())
    }

    /// (name, counters) of every feed, in config order.
    pub fn feeds(&self) -> &[(String, Arc<FeedCounters>)] {
        &self.feeds
    }

    /// Every feed's counters summed (table version and last commit: the largest).
    pub fn totals(&self) -> Snapshot {
        self.feeds.iter().fold(Snapshot::default(), |a, (_, c)| {
            let s = c.snapshot();
            Snapshot {
                files_committed: a.files_committed + s.files_committed,
                rows_committed: a.rows_committed + s.rows_committed,
                bytes_committed: a.bytes_committed + s.bytes_committed,
                rows_quarantined: a.rows_quarantined + s.rows_quarantined,
                rows_warned: a.rows_warned + s.rows_warned,
                files_rejected: a.files_rejected + s.files_rejected,
                files_duplicate: a.files_duplicate + s.files_duplicate,
                transient_failures: a.transient_failures + s.transient_failures,
                commits: a.commits + s.commits,
                table_version: a.table_version.max(s.table_version),
                last_commit_ms: a.last_commit_ms.max(s.last_commit_ms),
                backlog: a.backlog + s.backlog,
                in_flight: a.in_flight + s.in_flight,
                files_grown: a.files_grown + s.files_grown,
                bytes_grown: a.bytes_grown + s.bytes_grown,
            }
        })
    }

    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// The registry the counters are exported from (see `ops::metrics`).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Brings the run-wide gauges up to date before an export.
    pub fn before_export(&self) {
        self.uptime.set(self.uptime().as_secs_f64());
    }
}

/// The per-feed metric families, registered in the order `/metrics` lists them; a feed's
/// counters are their members labelled with its name.
struct Families {
    counters: CounterFamilies,
    gauges: GaugeFamilies,
    commit_duration: Family<FeedLabel, Histogram>,
}

/// The counter families: what happened since the daemon started.
struct CounterFamilies {
    files_committed: Family<FeedLabel, Counter>,
    rows_committed: Family<FeedLabel, Counter>,
    rows_quarantined: Family<FeedLabel, Counter>,
    rows_warned: Family<FeedLabel, Counter>,
    files_rejected: Family<FeedLabel, Counter>,
    files_grown: Family<FeedLabel, Counter>,
    bytes_grown: Family<FeedLabel, Counter>,
    files_duplicate: Family<FeedLabel, Counter>,
    transient_failures: Family<FeedLabel, Counter>,
}

/// The gauge families: how things stand now.
struct GaugeFamilies {
    backlog: Family<FeedLabel, Gauge>,
    in_flight: Family<FeedLabel, Gauge>,
    table_version: Family<FeedLabel, Gauge>,
    last_commit: Family<FeedLabel, Gauge<f64, AtomicU64>>,
}

impl Families {
    fn register(registry: &mut Registry) -> Families {
        let counters = CounterFamilies::register(registry);
        let gauges = GaugeFamilies::register(registry);
        let commit_duration =
            Family::<FeedLabel, Histogram>::new_with_constructor(|| Histogram::new(BUCKETS));
        registry.register(
            "deltadrop_commit_duration_seconds",
            "Time to write one commit (Parquet + log)",
            commit_duration.clone(),
        );
        Families {
            counters,
            gauges,
            commit_duration,
        }
    }

    /// The counters of the feed named `name`.
    fn labelled(&self, name: &str) -> FeedCounters {
        let l = FeedLabel {
            feed: name.to_string(),
        };
        let (c, g) = (&self.counters, &self.gauges);
        FeedCounters {
            files_committed: c.files_committed.get_or_create(&l).clone(),
            rows_committed: c.rows_committed.get_or_create(&l).clone(),
            rows_quarantined: c.rows_quarantined.get_or_create(&l).clone(),
            rows_warned: c.rows_warned.get_or_create(&l).clone(),
            files_rejected: c.files_rejected.get_or_create(&l).clone(),
            files_duplicate: c.files_duplicate.get_or_create(&l).clone(),
            transient_failures: c.transient_failures.get_or_create(&l).clone(),
            table_version: g.table_version.get_or_create(&l).clone(),
            last_commit_seconds: g.last_commit.get_or_create(&l).clone(),
            commit_duration: self.commit_duration.get_or_create(&l).clone(),
            backlog: g.backlog.get_or_create(&l).clone(),
            in_flight: g.in_flight.get_or_create(&l).clone(),
            files_grown: c.files_grown.get_or_create(&l).clone(),
            bytes_grown: c.bytes_grown.get_or_create(&l).clone(),
            last_grown: std::sync::Mutex::new(None),
            bytes_committed: Counter::default(),
            commits: Counter::default(),
            recent: Default::default(),
        }
    }
}

impl CounterFamilies {
    fn register(registry: &mut Registry) -> CounterFamilies {
        let mut counter = |name: &str, help: &str| {
            let f = Family::<FeedLabel, Counter>::default();
            // prometheus-client appends `_total` to a counter's name.
            registry.register(name.trim_end_matches("_total"), help, f.clone());
            f
        };
        CounterFamilies {
            files_committed: counter(
                "deltadrop_files_ingested_total",
                "Files whose rows were committed",
            ),
            rows_committed: counter(
                "deltadrop_rows_ingested_total",
                "Rows committed to the table",
            ),
            rows_quarantined: counter(
                "deltadrop_rows_quarantined_total",
                "Bad rows committed to the quarantine table",
            ),
            rows_warned: counter(
                "deltadrop_rows_warned_total",
                "Rows that failed an expectation with action = warn (kept)",
            ),
            files_rejected: counter("deltadrop_files_rejected_total", "Files moved to rejected/"),
            files_grown: counter(
                "deltadrop_files_grown_after_load_total",
                "Loaded files that grew afterwards (their writer was still going); the new bytes were set aside to load",
            ),
            bytes_grown: counter(
                "deltadrop_bytes_grown_after_load_total",
                "Bytes such files grew by",
            ),
            files_duplicate: counter(
                "deltadrop_files_duplicate_total",
                "Files whose content was already loaded (archived, not loaded again)",
            ),
            transient_failures: counter(
                "deltadrop_transient_failures_total",
                "Failures retried with backoff (table unwritable, file still being written...)",
            ),
        }
    }
}

impl GaugeFamilies {
    fn register(registry: &mut Registry) -> GaugeFamilies {
        let mut gauge = |name: &str, help: &str| {
            let f = Family::<FeedLabel, Gauge>::default();
            registry.register(name, help, f.clone());
            f
        };
        let backlog = gauge("deltadrop_backlog_files", "Files waiting in the inbox");
        let in_flight = gauge(
            "deltadrop_in_flight_files",
            "Files being parsed or committed",
        );
        let table_version = gauge(
            "deltadrop_table_version",
            "Delta table version of the last commit",
        );
        let last_commit = Family::<FeedLabel, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "deltadrop_last_commit_timestamp_seconds",
            "Unix time of the last commit (0: none in this run)",
            last_commit.clone(),
        );
        GaugeFamilies {
            backlog,
            in_flight,
            table_version,
            last_commit,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_histogram_is_cumulative_and_names_are_unchanged() {
        let c = Counters::new(["sales".to_string()]);
        let f = c.feed("sales").unwrap();
        for (took, version) in [
            (Duration::from_micros(1500), 3),
            (Duration::from_millis(30), 4),
        ] {
            f.record(Event::Commit {
                took,
                version,
                files: 1,
                rows: 6,
                quarantined: 0,
            });
        }
        f.record(Event::Backlog {
            waiting: 2,
            in_flight: 1,
        });
        f.record(Event::FileCommitted {
            rows: 6,
            bytes: 100,
            quarantined: 1,
            warned: 0,
            latency: None,
        });
        let text = crate::ops::metrics::prometheus(&c);
        for line in [
            "deltadrop_commit_duration_seconds_bucket{feed=\"sales\",le=\"0.001\"} 0",
            "deltadrop_commit_duration_seconds_bucket{feed=\"sales\",le=\"0.002\"} 1",
            "deltadrop_commit_duration_seconds_bucket{feed=\"sales\",le=\"0.05\"} 2",
            "deltadrop_commit_duration_seconds_count{feed=\"sales\"} 2",
            "deltadrop_table_version{feed=\"sales\"} 4",
            "deltadrop_backlog_files{feed=\"sales\"} 2",
            "deltadrop_rows_ingested_total{feed=\"sales\"} 6",
            "# TYPE deltadrop_files_ingested_total counter",
            "# HELP deltadrop_rows_quarantined_total Bad rows committed to the quarantine table.",
            "# TYPE deltadrop_commit_duration_seconds histogram",
        ] {
            assert!(text.contains(line), "{line}\n{text}");
        }
        let s = f.snapshot();
        assert_eq!((s.commits, s.table_version, s.rows_committed), (2, 4, 6));
        assert!(s.last_commit_ms.is_some());
        assert_eq!(c.totals().rows_quarantined, 1);
    }
}
