//! Filesystem events: a notify debouncer on every inbox, whose events become [`Signal`]s for
//! the watcher loop — "complete" (closed after writing, moved in), "touched" (wait for it to
//! settle), or "rescan" (events were lost). Events are a fast path only: the poll finds
//! everything they miss.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::Sender;
use notify::event::{AccessKind, AccessMode, EventKind, ModifyKind, RenameMode};
use notify::{RecommendedWatcher, RecursiveMode};
use notify_debouncer_full::{new_debouncer_opt_immediate, DebounceEventResult, Debouncer, NoCache};

use crate::config::FeedConfig;
use crate::job::FeedId;

/// What the watcher learned about a path.
#[derive(Debug)]
pub enum Signal {
    /// An event says the file is complete (closed after write, moved in).
    Complete(FeedId, PathBuf),
    /// Something happened to the file; it is complete once it settles.
    Touched(FeedId, PathBuf),
    /// Events may have been lost: scan everything.
    Rescan,
}

/// The running debouncer (dropping it stops the events).
pub(super) type Events = Debouncer<RecommendedWatcher, NoCache>;

/// Starts inotify (or the platform's watcher) on every inbox, sending signals to `tx`. On
/// failure the daemon goes on polling (every `poll_interval`) and says why.
pub(super) fn start(
    feeds: &[Arc<FeedConfig>],
    debounce: Duration,
    poll_interval: Duration,
    tx: Sender<Signal>,
) -> Option<Events> {
    // inotify's events carry canonical paths, Windows' the watched path as given; the rest of
    // the daemon uses the configured inbox path, so that one file has one name in the tracker
    // whichever way it was found. `std::fs::canonicalize` on Windows gives `\\?\C:\...`, which
    // no event path carries (every event under Wine was dropped for that): `dunce` gives the
    // plain form.
    let inboxes: Vec<(Vec<PathBuf>, FeedId, PathBuf)> = feeds
        .iter()
        .enumerate()
        .map(|(i, f)| {
            (
                vec![canonical(&f.inbox), f.inbox.clone()],
                i,
                f.inbox.clone(),
            )
        })
        .collect();
    let handler = move |res: DebounceEventResult| match res {
        Ok(events) => {
            for ev in events {
                log::trace!("event {:?} {:?}", ev.kind, ev.paths);
                if ev.need_rescan() {
                    let _ = tx.try_send(Signal::Rescan);
                    continue;
                }
                let complete = matches!(
                    ev.kind,
                    EventKind::Access(AccessKind::Close(AccessMode::Write))
                        | EventKind::Modify(ModifyKind::Name(_))
                );
                let touched = matches!(ev.kind, EventKind::Create(_) | EventKind::Modify(_));
                // For renames the destination is the last path.
                let Some(path) = ev.paths.last() else {
                    continue;
                };
                let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
                    continue;
                };
                let Some((_, feed, inbox)) = inboxes
                    .iter()
                    .find(|(dirs, _, _)| dirs.iter().any(|d| d == parent))
                else {
                    continue;
                };
                let path = inbox.join(name);
                let sig = if complete {
                    Signal::Complete(*feed, path)
                } else if touched {
                    Signal::Touched(*feed, path)
                } else {
                    continue;
                };
                if tx.try_send(sig).is_err() {
                    // Full: the next poll finds whatever this event was about.
                    log::debug!("event queue full; relying on the poll");
                }
            }
        }
        Err(errors) => {
            for e in errors {
                log::warn!("file watcher: {e}");
            }
            let _ = tx.try_send(Signal::Rescan);
        }
    };
    // An event reaches us `debounce` after it happened, plus up to one tick: the window is
    // most of the drop → commit latency (10 ms of a 14 ms p50 before it was cut to 2 ms, then
    // 1 ms), so it stays short; a rename's two halves arrive in one inotify read, well inside
    // it. The tick is half the window, at least 1 ms. The debouncer thread ticks
    // only while events are pending (our patch of notify-debouncer-full, vendor/): an idle
    // daemon is not woken by it at all (it was ~1,000 times a second).
    let tick = (debounce / 2).max(Duration::from_millis(1)).min(debounce);
    // A file moved into the inbox is complete as it appears (the producer's rename is atomic):
    // its event skips the window (our second patch of the debouncer). The rest — created,
    // written, closed — is debounced.
    let moved_in =
        |ev: &notify::Event| matches!(ev.kind, EventKind::Modify(ModifyKind::Name(RenameMode::To)));
    let deb = new_debouncer_opt_immediate::<_, RecommendedWatcher, NoCache, _>(
        debounce,
        Some(tick),
        handler,
        NoCache,
        notify::Config::default(),
        moved_in,
    );
    let mut deb = match deb {
        Ok(d) => d,
        Err(e) => {
            log::warn!(
                "{}; polling every {:?} instead",
                explain_notify(&e),
                poll_interval
            );
            return None;
        }
    };
    for f in feeds {
        if let Err(e) = deb.watch(&f.inbox, RecursiveMode::NonRecursive) {
            log::warn!(
                "feed {}: cannot watch {}: {}; polling every {:?} instead",
                f.name,
                f.inbox.display(),
                explain_notify(&e),
                poll_interval
            );
        }
    }
    Some(deb)
}

fn canonical(p: &Path) -> PathBuf {
    dunce::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

/// notify's errors, with what to do about the common ones.
fn explain_notify(e: &notify::Error) -> String {
    match &e.kind {
        notify::ErrorKind::MaxFilesWatch => "inotify watch limit reached: raise fs.inotify.max_user_watches (sysctl -w fs.inotify.max_user_watches=524288)".to_string(),
        notify::ErrorKind::Io(io) if io.raw_os_error() == Some(24) => {
            "too many inotify instances or open files: raise fs.inotify.max_user_instances or the open-file limit (ulimit -n)".to_string()
        }
        _ => format!("file watcher unavailable: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watcher_limits_are_explained_with_the_fix() {
        let e = notify::Error::new(notify::ErrorKind::MaxFilesWatch);
        assert!(explain_notify(&e).contains("raise fs.inotify.max_user_watches"));
        let e = notify::Error::io(std::io::Error::from_raw_os_error(24));
        assert!(explain_notify(&e).contains("fs.inotify.max_user_instances"));
    }
}
