//! Tracker: which files are owned by a stage right now, and which wait out a retry backoff.
//! The watcher claims a path before dispatching it; the archive stage, where every file's trip
//! ends, releases it (or gives it back for a retry). So a file is in one stage at a time.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Files currently owned by a stage, and files waiting out a retry backoff.
#[derive(Clone, Default)]
pub struct Tracker {
    inner: Arc<Mutex<HashMap<PathBuf, Slot>>>,
}

#[derive(Clone, Copy)]
struct Slot {
    /// When the file may be taken again; None while a stage holds it.
    retry_at: Option<Instant>,
    /// Earlier transient failures, so that the backoff keeps growing.
    attempts: u32,
    /// Earlier internal errors (bugs): bounded, see `archive::MAX_INTERNAL_ATTEMPTS`.
    internal: u32,
    /// When it was first claimed (kept through retries): a file's found → committed latency.
    since: Instant,
}

impl Tracker {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PathBuf, Slot>> {
        // A poisoned lock only means another thread panicked mid-update of a plain map;
        // the map itself is still consistent.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Claims `path` for processing; false if it is in flight or backing off.
    pub fn claim(&self, path: &Path) -> bool {
        let mut map = self.lock();
        let slot = match map.get(path) {
            Some(Slot { retry_at: None, .. }) => return false,
            Some(Slot {
                retry_at: Some(at), ..
            }) if Instant::now() < *at => return false,
            Some(s) => Slot {
                retry_at: None,
                ..*s
            },
            None => Slot {
                retry_at: None,
                attempts: 0,
                internal: 0,
                since: Instant::now(),
            },
        };
        map.insert(path.to_path_buf(), slot);
        true
    }

    /// How long ago `path` was first claimed, if it is tracked.
    pub fn age(&self, path: &Path) -> Option<Duration> {
        self.lock().get(path).map(|s| s.since.elapsed())
    }

    pub fn is_claimed(&self, path: &Path) -> bool {
        matches!(self.lock().get(path), Some(Slot { retry_at: None, .. }))
    }

    /// The file is done with (committed, rejected or gone).
    pub fn release(&self, path: &Path) {
        self.lock().remove(path);
    }

    /// The file failed for a reason that may pass: retry after an exponential backoff.
    /// Returns the delay chosen.
    pub fn release_for_retry(&self, path: &Path) -> Duration {
        self.retry(path, false)
    }

    /// The file is not ready (a writer holds it): look again after a short, constant wait.
    pub fn release_not_ready(&self, path: &Path) -> Duration {
        let delay = NOT_READY_WAIT;
        let mut map = self.lock();
        let before = map.get(path).copied().unwrap_or(Slot {
            retry_at: None,
            attempts: 0,
            internal: 0,
            since: Instant::now(),
        });
        map.insert(
            path.to_path_buf(),
            Slot {
                retry_at: Some(Instant::now() + delay),
                ..before
            },
        );
        delay
    }

    /// The file failed on an internal error: retry after a backoff, counting the error.
    pub fn release_after_internal_error(&self, path: &Path) -> Duration {
        self.retry(path, true)
    }

    fn retry(&self, path: &Path, internal: bool) -> Duration {
        let mut map = self.lock();
        let before = map.get(path).copied().unwrap_or(Slot {
            retry_at: None,
            attempts: 0,
            internal: 0,
            since: Instant::now(),
        });
        let attempts = before.attempts.saturating_add(1);
        let delay = backoff(attempts);
        map.insert(
            path.to_path_buf(),
            Slot {
                retry_at: Some(Instant::now() + delay),
                attempts,
                internal: before.internal + u32::from(internal),
                ..before
            },
        );
        delay
    }

    /// How many internal errors the file met before.
    pub fn internal_errors(&self, path: &Path) -> u32 {
        self.lock().get(path).map_or(0, |s| s.internal)
    }

    /// The earliest time a file waiting out its backoff may be retried.
    pub fn next_retry(&self) -> Option<Instant> {
        self.lock().values().filter_map(|s| s.retry_at).min()
    }

    /// Files whose backoff has passed (they stay listed until claimed or released).
    pub fn due_retries(&self, now: Instant) -> Vec<PathBuf> {
        self.lock()
            .iter()
            .filter(|(_, s)| s.retry_at.is_some_and(|at| at <= now))
            .map(|(p, _)| p.clone())
            .collect()
    }

    /// Files in flight whose path is directly under `dir` (one feed's inbox).
    pub fn busy_under(&self, dir: &Path) -> usize {
        self.lock()
            .iter()
            .filter(|(p, s)| s.retry_at.is_none() && p.parent() == Some(dir))
            .count()
    }
}

/// How long a file a writer still holds open waits before it is looked at again.
pub const NOT_READY_WAIT: Duration = Duration::from_millis(100);

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

    #[test]
    fn internal_errors_are_counted_apart_from_other_failures() {
        let t = Tracker::default();
        let p = Path::new("/in/c.csv");
        assert!(t.claim(p));
        t.release_for_retry(p);
        t.release_after_internal_error(p);
        assert_eq!(t.internal_errors(p), 1);
        t.release(p);
        assert_eq!(t.internal_errors(p), 0);
    }
}
