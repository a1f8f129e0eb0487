//! Archive stage: where every file's trip ends. The only code that moves a file out of the
//! inbox — to `processed/` (or deleted) once its rows are committed, to `rejected/` with
//! `NAME.error.txt` when it cannot be ingested — that gives a file back for a later retry, and
//! that counts what became of each file. Nothing here deletes data that is not committed.

mod files;
mod grown;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::config::FeedConfig;
use crate::counters::{Event, FeedCounters};
use crate::job::file_name;
use crate::readiness::same_content;
use crate::state::FileRecord;
use crate::tracker::Tracker;

/// A file whose processing fails on an internal error (a bug, a panic in a dependency) is tried
/// this many times, then rejected with the error: never retried forever.
pub const MAX_INTERNAL_ATTEMPTS: u32 = 3;

/// How one feed's files end: moved, given back or left, released from the tracker, counted.
/// Clones share everything (one per feed and run, used by the pool, the committer and the
/// watcher).
#[derive(Clone)]
pub struct Archive {
    feed: Arc<FeedConfig>,
    tracker: Tracker,
    counters: Arc<FeedCounters>,
    /// Files lately moved to processed/, watched for growth.
    recent: Arc<Mutex<grown::Recent>>,
}

impl Archive {
    pub fn new(feed: Arc<FeedConfig>, tracker: Tracker, counters: Arc<FeedCounters>) -> Archive {
        Archive {
            feed,
            tracker,
            counters,
            recent: Arc::default(),
        }
    }

    pub fn feed(&self) -> &FeedConfig {
        &self.feed
    }

    pub fn counters(&self) -> &Arc<FeedCounters> {
        &self.counters
    }

    /// The file's rows are committed: it leaves the inbox (errors are logged: the loaded index
    /// already makes the file a duplicate) — if the inbox still holds the file that was read
    /// (`stamp`: its size and modification time then). A producer that renamed a new version
    /// over the name after the commit's last look (a re-sent export) left a file that was never
    /// read: it stays for its own load.
    pub fn committed(&self, rec: &FileRecord, stamp: (u64, Option<std::time::SystemTime>)) {
        let still = match std::fs::symlink_metadata(&rec.path) {
            Ok(m) => m.len() == stamp.0 && m.modified().ok() == stamp.1,
            Err(_) => false,
        };
        if !still && rec.path.exists() {
            log::info!(
                "feed {}: {} was replaced after its rows were committed: the new file stays in the inbox to be loaded",
                self.feed.name,
                rec.name
            );
        }
        let moved = if still {
            self.move_out(&rec.path)
        } else {
            None
        };
        if let Some(to) = moved {
            self.recent_lock().push(grown::Archived {
                processed: to,
                name: rec.name.clone(),
                size: rec.size,
                at: Instant::now(),
            });
        }
        let latency = self.tracker.age(&rec.path);
        self.tracker.release(&rec.path);
        self.counters.record(Event::FileCommitted {
            rows: rec.rows,
            bytes: rec.size,
            quarantined: rec.bad_rows,
            warned: rec.warned_rows,
            latency,
        });
    }

    /// The file's content was loaded before (`known` says where): archived, not loaded again.
    pub fn duplicate(&self, path: &Path, known: &str) {
        log::warn!(
            "feed {}: {} has the same content as {known}; not loaded again, archived",
            self.feed.name,
            file_name(path)
        );
        self.move_out(path);
        self.tracker.release(path);
        self.counters.record(Event::FileDuplicate);
    }

    /// A file of a commit that landed before the last stop, which no stage holds: it leaves
    /// the inbox if the inbox still holds that very content (a new file may have been dropped
    /// under the same name since). Counted in the run that committed it.
    pub fn landed_before(&self, rec: &FileRecord) {
        if same_content(&rec.path, &rec.hash) {
            self.move_out(&rec.path);
        }
    }

    /// A file of a commit whose outcome was unknown (the write reported an error) and that did
    /// land: it leaves the inbox as [`Self::landed_before`] says, and counts as committed. Its
    /// retry is left to the tracker: a retry of a file that is gone is dropped.
    pub fn landed(&self, rec: &FileRecord) {
        self.landed_before(rec);
        self.counters.record(Event::FileCommitted {
            rows: rec.rows,
            bytes: rec.size,
            quarantined: rec.bad_rows,
            warned: rec.warned_rows,
            latency: None,
        });
    }

    /// The file cannot be ingested: to `rejected/` with the reason beside it, logged. If even
    /// that fails, it is given back for a retry.
    pub fn reject(&self, path: &Path, reason: &str) {
        match reject(
            path,
            &self.feed.rejected,
            reason,
            self.feed.marker_for(path),
        ) {
            Ok(to) => {
                log::warn!(
                    "feed {}: rejected {} → {}: {reason}",
                    self.feed.name,
                    file_name(path),
                    to.display()
                );
                self.tracker.release(path);
                self.counters.record(Event::FileRejected {
                    name: file_name(path),
                    reason: reason.to_string(),
                });
            }
            Err(e) => {
                let d = self.retry(path);
                log::error!(
                    "feed {}: {} must be rejected ({reason}) but {e}; retry in {d:?}",
                    self.feed.name,
                    file_name(path)
                );
            }
        }
    }

    /// The file is not complete yet (a writer has it open): it is looked at again soon. Not a
    /// failure: not counted.
    pub fn not_ready(&self, path: &Path) -> Duration {
        self.tracker.release_not_ready(path)
    }

    /// The file failed for a reason that may pass: it stays where it is and is taken again
    /// after a backoff. Returns the delay (the caller says why in the log).
    pub fn retry(&self, path: &Path) -> Duration {
        self.counters.record(Event::Retry);
        self.tracker.release_for_retry(path)
    }

    /// The file failed on an internal error: retried a few times (a dependency's state may have
    /// been at fault), then rejected with the error rather than retried forever.
    pub fn internal(&self, path: &Path, error: &str) {
        let attempt = self.tracker.internal_errors(path) + 1;
        if attempt >= MAX_INTERNAL_ATTEMPTS {
            self.reject(
                path,
                &format!(
                    "{}: internal error ({attempt} attempts): {error} — this is a bug in deltadrop, please report it with this file",
                    file_name(path)
                ),
            );
            return;
        }
        self.counters.record(Event::Retry);
        let d = self.tracker.release_after_internal_error(path);
        log::error!(
            "feed {}: internal error while processing {}: {error}; retry in {d:?}",
            self.feed.name,
            path.display()
        );
    }

    /// The file stays where it is, untouched and not counted (the daemon is stopping, the file
    /// vanished, or its table cannot be written any more).
    pub fn leave(&self, path: &Path) {
        self.tracker.release(path);
    }

    /// Files lately archived that grew since (their writer was still going): each is named
    /// loudly and counted, and its new bytes set aside to be loaded (see `grown`).
    pub fn check_grown(&self) {
        let grown = self.recent_lock().look(&self.feed);
        for g in grown {
            log::error!("feed {}: {}", self.feed.name, grown::describe(&g));
            self.counters.record(Event::Grown {
                name: g.name.clone(),
                bytes: g.bytes,
            });
        }
    }

    fn recent_lock(&self) -> std::sync::MutexGuard<'_, grown::Recent> {
        self.recent.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Moves a file (and its ready marker) out of the inbox, as `on_success` says; where it
    /// went, if it was moved.
    fn move_out(&self, path: &Path) -> Option<PathBuf> {
        match archive(
            path,
            &self.feed.processed,
            self.feed.on_success,
            self.feed.marker_for(path),
        ) {
            Ok(to) => to,
            Err(e) => {
                log::error!("feed {}: {e}", self.feed.name);
                None
            }
        }
    }
}

pub use files::{archive, archive_names, reject, COPIES_LOOKED_UP};
