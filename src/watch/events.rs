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
use notify_debouncer_full::{
    new_debouncer_opt_immediate, DebounceEventHandler, DebounceEventResult, Debouncer, NoCache,
};

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
    let inboxes = Inboxes::of(feeds);
    let handler = move |res: DebounceEventResult| forward(res, &inboxes, &tx);
    let mut deb = match debouncer(debounce, handler) {
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
    watch_inboxes(&mut deb, feeds, poll_interval);
    Some(deb)
}

/// The debouncer, handing what it gathers to `handler`.
fn debouncer(
    debounce: Duration,
    handler: impl DebounceEventHandler,
) -> Result<Events, notify::Error> {
    // An event reaches us `debounce` after it happened, plus up to one tick: the window is
    // most of the drop → commit latency (10 ms of a 14 ms p50 before it was cut to 2 ms, then
    // 1 ms), so it stays short; a rename's two halves arrive in one inotify read, well inside
    // it. The tick is half the window, at least 1 ms. The debouncer thread ticks
    // only while events are pending (our patch of notify-debouncer-full, vendor/): an idle
    // daemon is not woken by it at all (it was ~1,000 times a second).
    let tick = (debounce / 2).max(Duration::from_millis(1)).min(debounce);
    new_debouncer_opt_immediate::<_, RecommendedWatcher, NoCache, _>(
        debounce,
        Some(tick),
        handler,
        NoCache,
        notify::Config::default(),
        moved_in,
    )
}

/// A file moved into the inbox is complete as it appears (the producer's rename is atomic):
/// its event skips the window (our second patch of the debouncer). The rest — created,
/// written, closed — is debounced.
fn moved_in(ev: &notify::Event) -> bool {
    matches!(ev.kind, EventKind::Modify(ModifyKind::Name(RenameMode::To)))
}

/// Watches every inbox; one that cannot be watched is only polled, and the log says why.
fn watch_inboxes(deb: &mut Events, feeds: &[Arc<FeedConfig>], poll_interval: Duration) {
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
}

/// The debouncer's handler: each event about an inbox's file becomes a signal; lost events and
/// watcher errors, a rescan.
fn forward(res: DebounceEventResult, inboxes: &Inboxes, tx: &Sender<Signal>) {
    match res {
        Ok(events) => {
            for ev in events {
                log::trace!("event {:?} {:?}", ev.kind, ev.paths);
                if ev.need_rescan() {
                    let _ = tx.try_send(Signal::Rescan);
                    continue;
                }
                let Some(sig) = signal(&ev, inboxes) else {
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
    }
}

/// What `ev` says about a file in an inbox: complete (closed after writing, renamed in),
/// touched, or nothing.
fn signal(ev: &notify::Event, inboxes: &Inboxes) -> Option<Signal> {
    let complete = matches!(
        ev.kind,
        EventKind::Access(AccessKind::Close(AccessMode::Write))
            | EventKind::Modify(ModifyKind::Name(_))
    );
    let touched = matches!(ev.kind, EventKind::Create(_) | EventKind::Modify(_));
    // For renames the destination is the last path.
    let (feed, path) = inboxes.file(ev.paths.last()?)?;
    if complete {
        Some(Signal::Complete(feed, path))
    } else if touched {
        Some(Signal::Touched(feed, path))
    } else {
        None
    }
}

/// Every feed's inbox, by the names its events can carry.
///
/// inotify's events carry canonical paths, Windows' the watched path as given; the rest of the
/// daemon uses the configured inbox path, so that one file has one name in the tracker whichever
/// way it was found. `std::fs::canonicalize` on Windows gives `\\?\C:\...`, which no event path
/// carries (every event under Wine was dropped for that): `dunce` gives the plain form.
struct Inboxes(Vec<Inbox>);

struct Inbox {
    /// The canonical path and the configured one.
    names: Vec<PathBuf>,
    feed: FeedId,
    configured: PathBuf,
}

impl Inboxes {
    fn of(feeds: &[Arc<FeedConfig>]) -> Inboxes {
        let inboxes = feeds
            .iter()
            .enumerate()
            .map(|(feed, f)| Inbox {
                names: vec![canonical(&f.inbox), f.inbox.clone()],
                feed,
                configured: f.inbox.clone(),
            })
            .collect();
        Inboxes(inboxes)
    }

    /// The feed whose inbox holds `path` directly, and the file's path under the configured
    /// inbox path.
    fn file(&self, path: &Path) -> Option<(FeedId, PathBuf)> {
        let (parent, name) = (path.parent()?, path.file_name()?);
        let inbox = self
            .0
            .iter()
            .find(|i| i.names.iter().any(|d| d == parent))?;
        Some((inbox.feed, inbox.configured.join(name)))
    }
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

    #[test]
    fn an_event_names_its_file_under_the_configured_inbox() {
        let inbox = |names: [&str; 2], feed| Inbox {
            names: names.iter().map(PathBuf::from).collect(),
            feed,
            configured: PathBuf::from(names[1]),
        };
        let inboxes = Inboxes(vec![
            inbox(["/real/a", "/link/a"], 0),
            inbox(["/b", "/b"], 1),
        ]);
        let ev = |kind, paths: &[&str]| {
            let e = notify::Event::new(kind);
            paths.iter().fold(e, |e, p| e.add_path(PathBuf::from(p)))
        };
        let closed = EventKind::Access(AccessKind::Close(AccessMode::Write));
        let sig = signal(&ev(closed, &["/real/a/x.csv"]), &inboxes);
        assert!(
            matches!(&sig, Some(Signal::Complete(0, p)) if p == Path::new("/link/a/x.csv")),
            "{sig:?}"
        );
        // A rename's destination is its last path.
        let renamed = EventKind::Modify(ModifyKind::Name(RenameMode::Both));
        let sig = signal(&ev(renamed, &["/elsewhere/x.csv", "/b/x.csv"]), &inboxes);
        assert!(
            matches!(&sig, Some(Signal::Complete(1, p)) if p == Path::new("/b/x.csv")),
            "{sig:?}"
        );
        let created = EventKind::Create(notify::event::CreateKind::File);
        let sig = signal(&ev(created, &["/b/y.csv"]), &inboxes);
        assert!(matches!(&sig, Some(Signal::Touched(1, _))), "{sig:?}");
        // Opened only, or under a folder in the inbox: nothing.
        let opened = EventKind::Access(AccessKind::Open(AccessMode::Read));
        assert!(signal(&ev(opened, &["/b/y.csv"]), &inboxes).is_none());
        assert!(signal(&ev(created, &["/b/sub/y.csv"]), &inboxes).is_none());
    }
}
