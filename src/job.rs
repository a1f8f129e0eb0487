//! Job stage types: the domain values that cross channels between stages
//! (watch → pool → delta committer), and the tracker that keeps one file in one stage at a time.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use deltalake::arrow::record_batch::RecordBatch;
use deltalake::kernel::Add;

/// Index of a feed in `Config::feeds`.
pub type FeedId = usize;

/// A file the watcher believes is complete and ready to ingest.
#[derive(Debug, Clone)]
pub struct FileJob {
    pub feed: FeedId,
    pub path: PathBuf,
}

impl FileJob {
    pub fn name(&self) -> String {
        file_name(&self.path)
    }
}

pub fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// Each feed's current table and columns: written by its committer when the table's schema
/// grows (`on_new_column = "add"`), read by workers for every file.
pub type Board = Arc<std::sync::RwLock<Vec<TableInfo>>>;

#[derive(Clone)]
pub struct TableInfo {
    pub schema: crate::schema::TableSchema,
    pub table: deltalake::DeltaTable,
    /// Bumped at every schema change (workers rebuild their writers).
    pub generation: u64,
}

/// A file whose header has columns the table lacks, with their inferred types.
pub struct NewColumns {
    pub job: FileJob,
    pub columns: Vec<crate::schema::ColumnSpec>,
    /// The committer answers once the table has them (true) or could not add them (false).
    pub done: crossbeam_channel::Sender<bool>,
}

/// What the content of one file became.
pub enum FileData {
    /// Small files: parsed batches, written into one Parquet file per commit by the committer.
    Batches(Vec<RecordBatch>),
    /// Large files: Parquet files the worker already streamed to the table (not yet committed).
    Written(Vec<Add>),
}

/// A parsed file on its way to the committer.
pub struct ParsedFile {
    pub job: FileJob,
    /// blake3 of the whole file content, hex.
    pub hash: String,
    pub size: u64,
    pub rows: u64,
    pub data: FileData,
    /// Rows for the quarantine table.
    pub bad: Vec<crate::ingest::BadRow>,
    /// Rows that failed a `warn` expectation.
    pub warned: u64,
    /// When the worker took the file (for the per-commit latency log).
    pub started: Instant,
}

/// Files currently owned by a stage, and files waiting out a retry backoff.
/// The watcher claims a path before dispatching it; whoever finishes with the file releases it.
#[derive(Clone, Default)]
pub struct Tracker {
    inner: Arc<Mutex<HashMap<PathBuf, Slot>>>,
    stats: Arc<Stats>,
}

#[derive(Clone, Copy)]
enum Slot {
    /// In a stage; `attempts` counts earlier transient failures, so backoff keeps growing.
    Busy {
        attempts: u32,
    },
    RetryAt {
        at: Instant,
        attempts: u32,
    },
}

/// Counters shared by all stages (for `--once` exit status and the shutdown summary).
#[derive(Default)]
pub struct Stats {
    pub files_committed: AtomicU64,
    pub rows_committed: AtomicU64,
    pub bytes_committed: AtomicU64,
    pub rows_quarantined: AtomicU64,
    pub files_rejected: AtomicU64,
    pub files_duplicate: AtomicU64,
    pub transient_failures: AtomicU64,
}

impl Tracker {
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PathBuf, Slot>> {
        // A poisoned lock only means another thread panicked mid-update of a plain map;
        // the map itself is still consistent.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Claims `path` for processing; false if it is in flight or backing off.
    pub fn claim(&self, path: &Path) -> bool {
        let mut map = self.lock();
        let attempts = match map.get(path) {
            Some(Slot::Busy { .. }) => return false,
            Some(Slot::RetryAt { at, .. }) if Instant::now() < *at => return false,
            Some(Slot::RetryAt { attempts, .. }) => *attempts,
            None => 0,
        };
        map.insert(path.to_path_buf(), Slot::Busy { attempts });
        true
    }

    pub fn is_claimed(&self, path: &Path) -> bool {
        matches!(self.lock().get(path), Some(Slot::Busy { .. }))
    }

    /// The file is done with (committed, rejected or gone).
    pub fn release(&self, path: &Path) {
        self.lock().remove(path);
    }

    /// The file failed for a reason that may pass: retry after an exponential backoff.
    /// Returns the delay chosen.
    pub fn release_for_retry(&self, path: &Path) -> Duration {
        self.stats
            .transient_failures
            .fetch_add(1, Ordering::Relaxed);
        let mut map = self.lock();
        let attempts = match map.get(path) {
            Some(Slot::Busy { attempts }) | Some(Slot::RetryAt { attempts, .. }) => *attempts,
            None => 0,
        }
        .saturating_add(1);
        let delay = backoff(attempts);
        map.insert(
            path.to_path_buf(),
            Slot::RetryAt {
                at: Instant::now() + delay,
                attempts,
            },
        );
        delay
    }

    /// The earliest time a file waiting out its backoff may be retried.
    pub fn next_retry(&self) -> Option<Instant> {
        self.lock()
            .values()
            .filter_map(|s| match s {
                Slot::RetryAt { at, .. } => Some(*at),
                Slot::Busy { .. } => None,
            })
            .min()
    }

    /// Files whose backoff has passed (they stay listed until claimed or released).
    pub fn due_retries(&self, now: Instant) -> Vec<PathBuf> {
        self.lock()
            .iter()
            .filter(|(_, s)| matches!(s, Slot::RetryAt { at, .. } if *at <= now))
            .map(|(p, _)| p.clone())
            .collect()
    }

    /// Files in flight whose path is directly under `dir` (one feed's inbox).
    pub fn busy_under(&self, dir: &Path) -> usize {
        self.lock()
            .iter()
            .filter(|(p, s)| matches!(s, Slot::Busy { .. }) && p.parent() == Some(dir))
            .count()
    }

    pub fn busy_count(&self) -> usize {
        self.lock()
            .values()
            .filter(|s| matches!(s, Slot::Busy { .. }))
            .count()
    }
}

/// Exponential backoff: 200 ms doubling up to 60 s.
pub fn backoff(attempts: u32) -> Duration {
    let ms = 200u64.saturating_mul(1u64 << attempts.saturating_sub(1).min(12));
    Duration::from_millis(ms.min(60_000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claimed_file_cannot_be_claimed_twice() {
        let t = Tracker::default();
        let p = Path::new("/in/a.csv");
        assert!(t.claim(p));
        assert!(!t.claim(p));
        t.release(p);
        assert!(t.claim(p));
    }

    #[test]
    fn a_failed_file_waits_out_its_backoff() {
        let t = Tracker::default();
        let p = Path::new("/in/b.csv");
        assert!(t.claim(p));
        let d = t.release_for_retry(p);
        assert!(d >= Duration::from_millis(200));
        assert!(!t.claim(p));
        assert_eq!(backoff(1), Duration::from_millis(200));
        assert_eq!(backoff(3), Duration::from_millis(800));
        assert_eq!(backoff(40), Duration::from_secs(60));
    }
}
