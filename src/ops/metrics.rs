//! What a running daemon says about itself, read from its counters: the `/status` JSON (which
//! `deltadrop status` prints) and the Prometheus text of `/metrics`.

use serde::{Deserialize, Serialize};

use crate::counters::Counters;

/// What `/status` answers and `deltadrop status` prints.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Status {
    pub version: String,
    pub pid: u32,
    pub uptime_seconds: f64,
    pub feeds: Vec<FeedStatus>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FeedStatus {
    pub name: String,
    /// Running, waiting for a first file, stopping, stopped with the reason.
    #[serde(default)]
    pub state: String,
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
    /// Loaded files that grew afterwards (their writer was still going), and by how much; the
    /// new bytes were set aside to be loaded.
    #[serde(default)]
    pub files_grown: u64,
    #[serde(default)]
    pub bytes_grown: u64,
    /// The last such file: "name (+N bytes)".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_grown: Option<String>,
}

/// Every feed's counters as `/status` shows them; `tables` are the feeds' table locations, in
/// the counters' (config) order.
pub fn status(counters: &Counters, tables: &[String]) -> Status {
    Status {
        version: env!("CARGO_PKG_VERSION").to_string(),
        pid: std::process::id(),
        uptime_seconds: counters.uptime().as_secs_f64(),
        feeds: counters
            .feeds()
            .iter()
            .enumerate()
            .map(|(i, (name, c))| {
                let s = c.snapshot();
                FeedStatus {
                    name: name.clone(),
                    state: c.state().describe(),
                    table: tables.get(i).cloned().unwrap_or_default(),
                    backlog: s.backlog,
                    in_flight: s.in_flight,
                    table_version: s.table_version,
                    last_commit_at: s
                        .last_commit_ms
                        .and_then(chrono::DateTime::from_timestamp_millis)
                        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
                    commits: s.commits,
                    files_committed: s.files_committed,
                    rows_committed: s.rows_committed,
                    rows_quarantined: s.rows_quarantined,
                    rows_warned: s.rows_warned,
                    files_rejected: s.files_rejected,
                    files_duplicate: s.files_duplicate,
                    transient_failures: s.transient_failures,
                    files_grown: s.files_grown,
                    bytes_grown: s.bytes_grown,
                    last_grown: c.last_grown().map(|(n, b)| format!("{n} (+{b} bytes)")),
                }
            })
            .collect(),
    }
}

/// The `Content-Type` of [`prometheus`]: Prometheus text, version 0.0.4.
pub const PROMETHEUS_CONTENT_TYPE: &str =
    prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Every counter in the Prometheus text exposition format (version 0.0.4).
pub fn prometheus(counters: &Counters) -> String {
    counters.before_export();
    let mut out = String::new();
    if let Err(e) =
        prometheus_client::encoding::prometheus_text::encode(&mut out, counters.registry())
    {
        log::warn!("encoding the metrics failed: {e}");
    }
    out
}
