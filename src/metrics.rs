//! Metrics: per-feed counters and a commit-duration histogram, updated lock-free by the
//! committers and workers, rendered as Prometheus text and as the `/status` JSON.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

/// Upper bounds of the commit-duration buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0,
];

#[derive(Default)]
pub struct FeedMetrics {
    pub files_committed: AtomicU64,
    pub rows_committed: AtomicU64,
    pub rows_quarantined: AtomicU64,
    pub rows_warned: AtomicU64,
    pub files_rejected: AtomicU64,
    pub files_duplicate: AtomicU64,
    pub transient_failures: AtomicU64,
    pub commits: AtomicU64,
    pub table_version: AtomicI64,
    /// Unix milliseconds of the last commit (0: none yet).
    pub last_commit_ms: AtomicI64,
    buckets: [AtomicU64; BUCKETS.len()],
    duration_sum_us: AtomicU64,
}

impl FeedMetrics {
    pub fn observe_commit(&self, took: Duration, version: i64) {
        let secs = took.as_secs_f64();
        for (i, le) in BUCKETS.iter().enumerate() {
            if secs <= *le {
                self.buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.duration_sum_us
            .fetch_add(took.as_micros() as u64, Ordering::Relaxed);
        self.commits.fetch_add(1, Ordering::Relaxed);
        self.table_version.store(version, Ordering::Relaxed);
        self.last_commit_ms
            .store(chrono::Utc::now().timestamp_millis(), Ordering::Relaxed);
    }
}

/// All feeds' metrics, in config order.
pub struct Metrics {
    pub names: Vec<String>,
    pub feeds: Vec<FeedMetrics>,
    pub started: Instant,
}

pub type MetricsRef = Arc<Metrics>;

impl Metrics {
    pub fn new(names: Vec<String>) -> MetricsRef {
        Arc::new(Metrics {
            feeds: names.iter().map(|_| FeedMetrics::default()).collect(),
            names,
            started: Instant::now(),
        })
    }
}

/// What `/status` answers and `deltadrop status` prints.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Status {
    pub version: String,
    pub pid: u32,
    pub uptime_seconds: f64,
    pub feeds: Vec<FeedStatus>,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct FeedStatus {
    pub name: String,
    pub table: String,
    /// Files waiting in the inbox (not yet taken).
    pub backlog: u64,
    pub in_flight: u64,
    pub table_version: i64,
    /// RFC 3339, or null before the first commit of this run.
    pub last_commit_at: Option<String>,
    pub commits: u64,
    pub files_committed: u64,
    pub rows_committed: u64,
    pub rows_quarantined: u64,
    pub rows_warned: u64,
    pub files_rejected: u64,
    pub files_duplicate: u64,
    pub transient_failures: u64,
}

/// Live figures a request adds to the counters: (backlog, in flight) per feed.
pub fn status(m: &Metrics, tables: &[String], live: &[(u64, u64)]) -> Status {
    let r = |a: &AtomicU64| a.load(Ordering::Relaxed);
    Status {
        version: env!("CARGO_PKG_VERSION").to_string(),
        pid: std::process::id(),
        uptime_seconds: m.started.elapsed().as_secs_f64(),
        feeds: m
            .feeds
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let last = f.last_commit_ms.load(Ordering::Relaxed);
                FeedStatus {
                    name: m.names[i].clone(),
                    table: tables.get(i).cloned().unwrap_or_default(),
                    backlog: live.get(i).map(|l| l.0).unwrap_or(0),
                    in_flight: live.get(i).map(|l| l.1).unwrap_or(0),
                    table_version: f.table_version.load(Ordering::Relaxed),
                    last_commit_at: (last > 0)
                        .then(|| chrono::DateTime::from_timestamp_millis(last))
                        .flatten()
                        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
                    commits: r(&f.commits),
                    files_committed: r(&f.files_committed),
                    rows_committed: r(&f.rows_committed),
                    rows_quarantined: r(&f.rows_quarantined),
                    rows_warned: r(&f.rows_warned),
                    files_rejected: r(&f.files_rejected),
                    files_duplicate: r(&f.files_duplicate),
                    transient_failures: r(&f.transient_failures),
                }
            })
            .collect(),
    }
}

/// Prometheus text exposition format (version 0.0.4).
pub fn prometheus(m: &Metrics, live: &[(u64, u64)]) -> String {
    let mut out = String::new();
    let r = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let mut family = |name: &str, kind: &str, help: &str, value: &dyn Fn(usize) -> String| {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
        for (i, feed) in m.names.iter().enumerate() {
            out.push_str(&format!(
                "{name}{{feed=\"{}\"}} {}\n",
                escape(feed),
                value(i)
            ));
        }
    };
    let f = &m.feeds;
    family(
        "deltadrop_files_ingested_total",
        "counter",
        "Files whose rows were committed.",
        &|i| r(&f[i].files_committed).to_string(),
    );
    family(
        "deltadrop_rows_ingested_total",
        "counter",
        "Rows committed to the table.",
        &|i| r(&f[i].rows_committed).to_string(),
    );
    family(
        "deltadrop_rows_quarantined_total",
        "counter",
        "Bad rows committed to the quarantine table.",
        &|i| r(&f[i].rows_quarantined).to_string(),
    );
    family(
        "deltadrop_rows_warned_total",
        "counter",
        "Rows that failed an expectation with action = warn (kept).",
        &|i| r(&f[i].rows_warned).to_string(),
    );
    family(
        "deltadrop_files_rejected_total",
        "counter",
        "Files moved to rejected/.",
        &|i| r(&f[i].files_rejected).to_string(),
    );
    family(
        "deltadrop_files_duplicate_total",
        "counter",
        "Files whose content was already loaded (archived, not loaded again).",
        &|i| r(&f[i].files_duplicate).to_string(),
    );
    family(
        "deltadrop_transient_failures_total",
        "counter",
        "Failures retried with backoff (table unwritable, file still being written...).",
        &|i| r(&f[i].transient_failures).to_string(),
    );
    family(
        "deltadrop_backlog_files",
        "gauge",
        "Files waiting in the inbox.",
        &|i| live.get(i).map(|l| l.0).unwrap_or(0).to_string(),
    );
    family(
        "deltadrop_in_flight_files",
        "gauge",
        "Files being parsed or committed.",
        &|i| live.get(i).map(|l| l.1).unwrap_or(0).to_string(),
    );
    family(
        "deltadrop_table_version",
        "gauge",
        "Delta table version of the last commit.",
        &|i| f[i].table_version.load(Ordering::Relaxed).to_string(),
    );
    family(
        "deltadrop_last_commit_timestamp_seconds",
        "gauge",
        "Unix time of the last commit (0: none in this run).",
        &|i| {
            format!(
                "{:.3}",
                f[i].last_commit_ms.load(Ordering::Relaxed) as f64 / 1000.0
            )
        },
    );
    out.push_str(
        "# HELP deltadrop_commit_duration_seconds Time to write one commit (Parquet + log).\n\
         # TYPE deltadrop_commit_duration_seconds histogram\n",
    );
    for (i, feed) in m.names.iter().enumerate() {
        let feed = escape(feed);
        for (b, le) in BUCKETS.iter().enumerate() {
            out.push_str(&format!(
                "deltadrop_commit_duration_seconds_bucket{{feed=\"{feed}\",le=\"{le}\"}} {}\n",
                r(&f[i].buckets[b])
            ));
        }
        let count = r(&f[i].commits);
        out.push_str(&format!(
            "deltadrop_commit_duration_seconds_bucket{{feed=\"{feed}\",le=\"+Inf\"}} {count}\n\
             deltadrop_commit_duration_seconds_sum{{feed=\"{feed}\"}} {:.6}\n\
             deltadrop_commit_duration_seconds_count{{feed=\"{feed}\"}} {count}\n",
            r(&f[i].duration_sum_us) as f64 / 1e6
        ));
    }
    out.push_str(&format!(
        "# HELP deltadrop_uptime_seconds Seconds since the daemon started.\n\
         # TYPE deltadrop_uptime_seconds gauge\ndeltadrop_uptime_seconds {:.3}\n",
        m.started.elapsed().as_secs_f64()
    ));
    out
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_histogram_is_cumulative() {
        let m = Metrics::new(vec!["sales".into()]);
        m.feeds[0].observe_commit(Duration::from_micros(1500), 3);
        m.feeds[0].observe_commit(Duration::from_millis(30), 4);
        let text = prometheus(&m, &[(2, 1)]);
        assert!(text
            .contains("deltadrop_commit_duration_seconds_bucket{feed=\"sales\",le=\"0.001\"} 0"));
        assert!(text
            .contains("deltadrop_commit_duration_seconds_bucket{feed=\"sales\",le=\"0.002\"} 1"));
        assert!(
            text.contains("deltadrop_commit_duration_seconds_bucket{feed=\"sales\",le=\"0.05\"} 2")
        );
        assert!(text.contains("deltadrop_commit_duration_seconds_count{feed=\"sales\"} 2"));
        assert!(text.contains("deltadrop_table_version{feed=\"sales\"} 4"));
        assert!(text.contains("deltadrop_backlog_files{feed=\"sales\"} 2"));
    }
}
