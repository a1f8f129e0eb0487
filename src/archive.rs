//! Archive stage: where every file's trip ends. The only code that moves a file out of the
//! inbox — to `processed/` (or deleted) once its rows are committed, to `rejected/` with
//! `NAME.error.txt` when it cannot be ingested — that gives a file back for a later retry, and
//! that counts what became of each file. Nothing here deletes data that is not committed.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::config::{FeedConfig, OnSuccess};
use crate::counters::{Event, FeedCounters};
use crate::job::file_name;
use crate::state::FileRecord;
use crate::tracker::Tracker;

/// A file whose processing fails on an internal error (a bug, a panic in a dependency) is tried
/// this many times, then rejected with the error: never retried forever.
pub const MAX_INTERNAL_ATTEMPTS: u32 = 3;

/// How one feed's files end: moved, given back or left, released from the tracker, counted.
pub struct Archive {
    feed: Arc<FeedConfig>,
    tracker: Tracker,
    counters: Arc<FeedCounters>,
}

impl Archive {
    pub fn new(feed: Arc<FeedConfig>, tracker: Tracker, counters: Arc<FeedCounters>) -> Archive {
        Archive {
            feed,
            tracker,
            counters,
        }
    }

    pub fn feed(&self) -> &FeedConfig {
        &self.feed
    }

    pub fn counters(&self) -> &FeedCounters {
        &self.counters
    }

    /// The file's rows are committed: it leaves the inbox (errors are logged: the loaded index
    /// already makes the file a duplicate).
    pub fn committed(&self, rec: &FileRecord) {
        self.move_out(&rec.path);
        self.tracker.release(&rec.path);
        self.counters.record(Event::FileCommitted {
            rows: rec.rows,
            bytes: rec.size,
            quarantined: rec.bad_rows,
            warned: rec.warned_rows,
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
                self.counters.record(Event::FileRejected);
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

    /// Moves a file (and its ready marker) out of the inbox, as `on_success` says.
    fn move_out(&self, path: &Path) {
        if let Err(e) = archive(
            path,
            &self.feed.processed,
            self.feed.on_success,
            self.feed.marker_for(path),
        ) {
            log::error!("feed {}: {e}", self.feed.name);
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("cannot move {from} to {to}: {source}")]
    Move {
        from: PathBuf,
        to: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot delete {path}: {source}")]
    Delete {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Whether `path` holds content whose blake3 hash is `hash`.
fn same_content(path: &Path, hash: &str) -> bool {
    fs::File::open(path)
        .and_then(|file| {
            let mut h = blake3::Hasher::new();
            h.update_reader(file)?;
            Ok(h.finalize().to_hex().to_string() == hash)
        })
        .unwrap_or(false)
}

/// Moves a committed file (and its ready marker, if any) out of the inbox. Returns where the
/// file went (None if deleted). A file already gone (a previous run moved it) is fine.
pub fn archive(
    path: &Path,
    processed: &Path,
    on_success: OnSuccess,
    marker: Option<PathBuf>,
) -> Result<Option<PathBuf>, ArchiveError> {
    let res = archive_one(path, processed, on_success);
    if let Some(m) = marker {
        if m.exists() {
            archive_one(&m, processed, on_success)?;
        }
    }
    res
}

fn archive_one(
    path: &Path,
    processed: &Path,
    on_success: OnSuccess,
) -> Result<Option<PathBuf>, ArchiveError> {
    if !path.exists() {
        return Ok(None);
    }
    match on_success {
        OnSuccess::Delete => match fs::remove_file(path) {
            Ok(()) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(ArchiveError::Delete {
                path: path.to_path_buf(),
                source,
            }),
        },
        OnSuccess::Move => move_into(path, processed).map(Some),
    }
}

/// Moves a file that cannot be ingested to `rejected/` and writes `NAME.error.txt` beside it.
/// The error file is written first: a crash in between leaves the file in the inbox, where it is
/// rejected again on restart.
pub fn reject(
    path: &Path,
    rejected: &Path,
    reason: &str,
    marker: Option<PathBuf>,
) -> Result<PathBuf, ArchiveError> {
    if let Some(m) = marker {
        if m.exists() {
            let _ = move_into(&m, rejected);
        }
    }
    ensure_dir(rejected)?;
    let target = free_name(rejected, &file_name(path));
    let err_path = error_file_for(&target);
    let text = format!(
        "file: {}\nrejected at: {}\n\n{}\n",
        path.display(),
        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        reason.trim_end()
    );
    let mut f = fs::File::create(&err_path).map_err(|source| ArchiveError::Write {
        path: err_path.clone(),
        source,
    })?;
    f.write_all(text.as_bytes())
        .and_then(|_| f.sync_all())
        .map_err(|source| ArchiveError::Write {
            path: err_path.clone(),
            source,
        })?;
    rename(path, &target)?;
    Ok(target)
}

pub fn error_file_for(target: &Path) -> PathBuf {
    let mut name = target.as_os_str().to_owned();
    name.push(".error.txt");
    PathBuf::from(name)
}

fn move_into(path: &Path, dir: &Path) -> Result<PathBuf, ArchiveError> {
    ensure_dir(dir)?;
    let target = free_name(dir, &file_name(path));
    rename(path, &target)?;
    Ok(target)
}

fn rename(from: &Path, to: &Path) -> Result<(), ArchiveError> {
    match fs::rename(from, to) {
        Ok(()) => Ok(()),
        // Different filesystems: copy, sync, then remove the original.
        Err(e) if e.raw_os_error() == Some(18) => fs::copy(from, to)
            .and_then(|_| fs::File::open(to)?.sync_all())
            .and_then(|_| fs::remove_file(from))
            .map_err(|source| ArchiveError::Move {
                from: from.to_path_buf(),
                to: to.to_path_buf(),
                source,
            }),
        Err(source) => Err(ArchiveError::Move {
            from: from.to_path_buf(),
            to: to.to_path_buf(),
            source,
        }),
    }
}

fn ensure_dir(dir: &Path) -> Result<(), ArchiveError> {
    fs::create_dir_all(dir).map_err(|source| ArchiveError::Write {
        path: dir.to_path_buf(),
        source,
    })
}

/// `dir/name`, or `dir/stem.N.ext` when a file of that name is already there
/// (the same name dropped again must not overwrite the earlier file).
fn free_name(dir: &Path, name: &str) -> PathBuf {
    let first = dir.join(name);
    if !first.exists() {
        return first;
    }
    let (stem, ext) = match name.rfind('.') {
        Some(i) if i > 0 => (&name[..i], &name[i..]),
        _ => (name, ""),
    };
    (1u64..)
        .map(|n| dir.join(format!("{stem}.{n}{ext}")))
        .find(|p| !p.exists())
        .unwrap_or(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_name_twice_keeps_both_files() {
        let d = tempfile::tempdir().unwrap();
        let inbox = d.path().join("in");
        let done = d.path().join("done");
        fs::create_dir_all(&inbox).unwrap();
        for content in ["one", "two"] {
            fs::write(inbox.join("a.csv"), content).unwrap();
            archive(&inbox.join("a.csv"), &done, OnSuccess::Move, None).unwrap();
        }
        assert_eq!(fs::read_to_string(done.join("a.csv")).unwrap(), "one");
        assert_eq!(fs::read_to_string(done.join("a.1.csv")).unwrap(), "two");
    }

    #[test]
    fn a_rejected_file_gets_its_reason_beside_it() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("bad.csv");
        fs::write(&f, "x").unwrap();
        let to = reject(&f, &d.path().join("rejected"), "line 3: broken", None).unwrap();
        assert!(to.exists() && !f.exists());
        let why = fs::read_to_string(error_file_for(&to)).unwrap();
        assert!(why.contains("line 3: broken") && why.contains("bad.csv"));
    }
}
