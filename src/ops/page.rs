//! The operator's page: `GET /` is one self-contained HTML file (inline CSS, SVG drawn by a
//! small inline script, nothing fetched from elsewhere) that reads `GET /page.json` every two
//! seconds and redraws in place. The JSON is every feed's `/status` figures, its recent history
//! (`counters::recent`) and where its tables and folders are.

use serde::Serialize;

use super::metrics::{self, FeedStatus};
use crate::config::FeedConfig;
use crate::counters::{Counters, RecentView};

/// The page itself (no server-side values in it: everything comes through `page.json`, so no
/// file name or raw line is ever written into markup).
pub const HTML: &str = include_str!("page.html");

#[derive(Debug, Serialize)]
pub struct Page {
    pub version: String,
    pub pid: u32,
    pub uptime_seconds: f64,
    /// Unix milliseconds: the page's "now" (the daemon's clock, not the browser's).
    pub now_ms: i64,
    /// The status address: who can open this page.
    pub listen: String,
    pub feeds: Vec<PageFeed>,
}

#[derive(Debug, Serialize)]
pub struct PageFeed {
    #[serde(flatten)]
    pub status: FeedStatus,
    pub quarantine_table: String,
    pub rejected_dir: String,
    pub checkpoint_interval: u64,
    /// How often maintenance runs ("off" when it does not).
    pub maintenance_every: String,
    pub recent: RecentView,
}

/// What `page.json` answers. `feeds` are the run's feeds in the counters' (config) order.
pub fn data(counters: &Counters, feeds: &[std::sync::Arc<FeedConfig>], listen: &str) -> Page {
    let tables: Vec<String> = feeds.iter().map(|f| f.table_url.to_string()).collect();
    let status = metrics::status(counters, &tables);
    Page {
        version: status.version,
        pid: status.pid,
        uptime_seconds: status.uptime_seconds,
        now_ms: crate::counters::recent::now_ms(),
        listen: listen.to_string(),
        feeds: status
            .feeds
            .into_iter()
            .zip(feeds)
            .map(|(s, f)| PageFeed {
                recent: counters
                    .feed(&f.name)
                    .map(|c| c.recent_view())
                    .unwrap_or_else(|| crate::counters::recent::Recent::default().view()),
                quarantine_table: f.quarantine_url.to_string(),
                rejected_dir: f.rejected.display().to_string(),
                checkpoint_interval: f.checkpoint_interval,
                maintenance_every: if f.maintenance.interval.is_zero() {
                    "off".into()
                } else {
                    humantime::format_duration(f.maintenance.interval).to_string()
                },
                status: s,
            })
            .collect(),
    }
}
