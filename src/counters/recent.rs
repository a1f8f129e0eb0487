//! What the operator's page shows beyond the totals: the last hour second by second, and the
//! latest commits, rejected files, bad rows, commit failures and maintenance runs, with the
//! feed's state. Bounded: at most an hour of seconds (only those with something in them) and
//! [`LATEST`] entries of each list, whatever the load.

use std::collections::VecDeque;
use std::time::Duration;

use serde::Serialize;

/// How far back the per-second history goes.
pub const HISTORY_SECONDS: i64 = 3600;
/// How many of each kind of latest thing are kept.
pub const LATEST: usize = 10;
/// A bad row's raw text is cut to this many characters for the page.
pub const RAW_CHARS: usize = 160;

/// What a feed is doing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
#[serde(tag = "state", content = "reason", rename_all = "snake_case")]
pub enum RunState {
    /// Opening its tables (and settling what a previous run left).
    #[default]
    Starting,
    Running,
    /// `schema = "infer"` and no table yet: waiting for a first file to infer it from.
    WaitingForFirstFile,
    /// Finishing in-flight commits before the daemon exits.
    Stopping,
    /// It cannot go on (its table cannot be written any more, `on_bad_row = "fail"`...).
    Stopped(String),
}

impl RunState {
    /// In words, for `deltadrop status`.
    pub fn describe(&self) -> String {
        match self {
            RunState::Starting => "starting".into(),
            RunState::Running => "running".into(),
            RunState::WaitingForFirstFile => {
                "waiting for its first file (schema = \"infer\")".into()
            }
            RunState::Stopping => "stopping".into(),
            RunState::Stopped(why) => format!("stopped: {why}"),
        }
    }
}

/// One second of the last hour.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Second {
    /// Unix seconds.
    pub t: i64,
    pub files: u32,
    pub rows: u64,
    /// Found → committed, over the files committed in this second.
    pub latency_ms_sum: f64,
    pub latency_ms_max: f64,
    pub latency_n: u32,
    /// Commits that failed (retried after a backoff), and files given back for a retry.
    pub failures: u32,
    pub retries: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct CommitSeen {
    pub at_ms: i64,
    pub version: i64,
    pub files: u64,
    pub rows: u64,
    pub quarantined: u64,
    pub millis: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct RejectedSeen {
    pub at_ms: i64,
    pub name: String,
    pub reason: String,
}

/// A bad row as the page shows it (its raw text cut to [`RAW_CHARS`]).
#[derive(Debug, Clone, Serialize)]
pub struct BadRowSeen {
    pub at_ms: i64,
    pub file: String,
    pub line: u64,
    pub column: Option<String>,
    pub error: String,
    pub raw: String,
}

impl BadRowSeen {
    pub fn new(file: &str, line: u64, column: Option<&str>, error: &str, raw: &str) -> Self {
        BadRowSeen {
            at_ms: now_ms(),
            file: file.to_string(),
            line,
            column: column.map(str::to_string),
            error: error.to_string(),
            raw: cut(raw, RAW_CHARS),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct FailureSeen {
    pub at_ms: i64,
    pub error: String,
}

/// The last maintenance run: one line per table it maintained.
#[derive(Debug, Clone, Serialize)]
pub struct MaintenanceSeen {
    pub at_ms: i64,
    pub tables: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CheckpointSeen {
    pub at_ms: i64,
    pub version: i64,
    pub millis: f64,
}

/// One feed's recent history.
#[derive(Debug, Default)]
pub struct Recent {
    pub state: RunState,
    seconds: VecDeque<Second>,
    commits: VecDeque<CommitSeen>,
    rejected: VecDeque<RejectedSeen>,
    bad_rows: VecDeque<BadRowSeen>,
    failures: VecDeque<FailureSeen>,
    maintenance: Option<MaintenanceSeen>,
    checkpoint: Option<CheckpointSeen>,
}

/// A copy of [`Recent`] for the page, with the last minute and hour summed.
#[derive(Debug, Clone, Serialize)]
pub struct RecentView {
    pub state: RunState,
    pub files_last_minute: u64,
    pub rows_last_minute: u64,
    pub files_last_hour: u64,
    pub rows_last_hour: u64,
    pub seconds: Vec<Second>,
    /// Newest first, as are the lists below.
    pub commits: Vec<CommitSeen>,
    pub rejected: Vec<RejectedSeen>,
    pub bad_rows: Vec<BadRowSeen>,
    pub failures: Vec<FailureSeen>,
    pub maintenance: Option<MaintenanceSeen>,
    pub checkpoint: Option<CheckpointSeen>,
}

impl Recent {
    /// The bucket of the current second (older than an hour ones are dropped here).
    fn second(&mut self) -> &mut Second {
        let now = now_ms().div_euclid(1000);
        while self
            .seconds
            .front()
            .is_some_and(|s| s.t <= now - HISTORY_SECONDS)
        {
            self.seconds.pop_front();
        }
        // A clock stepped back lands in the newest bucket rather than out of order.
        if self.seconds.back().is_none_or(|s| s.t < now) {
            self.seconds.push_back(Second {
                t: now,
                ..Second::default()
            });
        }
        // Just pushed, or the newest bucket is at or past now.
        let last = self.seconds.len() - 1;
        &mut self.seconds[last]
    }

    pub fn file_committed(&mut self, rows: u64, latency: Option<Duration>) {
        let s = self.second();
        s.files += 1;
        s.rows += rows;
        if let Some(l) = latency {
            let ms = l.as_secs_f64() * 1000.0;
            s.latency_ms_sum += ms;
            s.latency_ms_max = s.latency_ms_max.max(ms);
            s.latency_n += 1;
        }
    }

    pub fn retry(&mut self) {
        self.second().retries += 1;
    }

    pub fn commit_failed(&mut self, error: String) {
        self.second().failures += 1;
        push(
            &mut self.failures,
            FailureSeen {
                at_ms: now_ms(),
                error,
            },
        );
    }

    pub fn commit(&mut self, c: CommitSeen) {
        push(&mut self.commits, c);
    }

    pub fn rejected(&mut self, name: String, reason: String) {
        push(
            &mut self.rejected,
            RejectedSeen {
                at_ms: now_ms(),
                name,
                reason,
            },
        );
    }

    pub fn bad_rows(&mut self, rows: Vec<BadRowSeen>) {
        for r in rows {
            push(&mut self.bad_rows, r);
        }
    }

    pub fn maintenance(&mut self, tables: Vec<String>) {
        self.maintenance = Some(MaintenanceSeen {
            at_ms: now_ms(),
            tables,
        });
    }

    pub fn checkpoint(&mut self, version: i64, took: Duration) {
        self.checkpoint = Some(CheckpointSeen {
            at_ms: now_ms(),
            version,
            millis: took.as_secs_f64() * 1000.0,
        });
    }

    pub fn view(&self) -> RecentView {
        let now = now_ms().div_euclid(1000);
        let sum = |since: i64| {
            self.seconds
                .iter()
                .filter(|s| s.t > now - since)
                .fold((0u64, 0u64), |(f, r), s| {
                    (f + u64::from(s.files), r + s.rows)
                })
        };
        let (files_last_minute, rows_last_minute) = sum(60);
        let (files_last_hour, rows_last_hour) = sum(HISTORY_SECONDS);
        RecentView {
            state: self.state.clone(),
            files_last_minute,
            rows_last_minute,
            files_last_hour,
            rows_last_hour,
            seconds: self
                .seconds
                .iter()
                .filter(|s| s.t > now - HISTORY_SECONDS)
                .cloned()
                .collect(),
            commits: newest_first(&self.commits),
            rejected: newest_first(&self.rejected),
            bad_rows: newest_first(&self.bad_rows),
            failures: newest_first(&self.failures),
            maintenance: self.maintenance.clone(),
            checkpoint: self.checkpoint.clone(),
        }
    }
}

fn newest_first<T: Clone>(d: &VecDeque<T>) -> Vec<T> {
    d.iter().rev().cloned().collect()
}

/// Appends, dropping the oldest beyond [`LATEST`].
fn push<T>(d: &mut VecDeque<T>, v: T) {
    if d.len() == LATEST {
        d.pop_front();
    }
    d.push_back(v);
}

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// `s` cut to `max` characters (on a character boundary), with "…" when cut.
fn cut(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_keep_the_latest_and_seconds_sum_up() {
        let mut r = Recent::default();
        for i in 0..(LATEST as u64 + 5) {
            r.commit(CommitSeen {
                at_ms: 0,
                version: i as i64,
                files: 1,
                rows: 10,
                quarantined: 0,
                millis: 1.0,
            });
            r.file_committed(10, Some(Duration::from_millis(4)));
        }
        let v = r.view();
        assert_eq!(v.commits.len(), LATEST);
        assert_eq!(v.commits[0].version, LATEST as i64 + 4, "newest first");
        assert_eq!(v.files_last_minute, LATEST as u64 + 5);
        assert_eq!(v.rows_last_hour, 10 * (LATEST as u64 + 5));
        let s: u32 = v.seconds.iter().map(|s| s.latency_n).sum();
        assert_eq!(s, LATEST as u32 + 5);
    }

    #[test]
    fn raw_text_is_cut_on_a_character_boundary() {
        let raw = "é".repeat(RAW_CHARS + 10);
        let b = BadRowSeen::new("f.csv", 3, None, "bad", &raw);
        assert_eq!(b.raw.chars().count(), RAW_CHARS + 1);
        assert!(b.raw.ends_with('…'));
        assert_eq!(BadRowSeen::new("f", 1, None, "e", "short").raw, "short");
    }
}
