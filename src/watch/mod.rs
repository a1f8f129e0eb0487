//! Watch stage: finds complete files in the inboxes and dispatches them to the pool. It owns the
//! notify debouncer ([`events`]), the poll timer and the settle bookkeeping; [`inbox`] says
//! what sits in an inbox.
//!
//! A file is complete when an event says so (closed after writing, or moved in), or — for files
//! seen only by polling or only as "created" — when its size and mtime stay the same for the
//! settle time. The poll runs even with events on: it covers filesystems without events and
//! anything the events missed (queue overflow).

mod events;
pub mod inbox;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{select, Receiver, Sender};

use crate::archive::Archive;
use crate::config::{Config, FeedConfig};
use crate::job::{FeedId, FileJob};
use crate::shutdown::Shutdown;
use crate::tracker::Tracker;
use events::Signal;
use inbox::{data_path, file_stamp, wanted, Stamp};

pub use inbox::inbox_files;

#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("cannot read inbox {path}: {source}")]
    Inbox {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A file waiting to be quiet for the settle time.
struct Settling {
    stamp: Stamp,
    /// When it was last seen changing (an event, or a different stamp).
    changed: Instant,
}

/// The feeds a watcher watches, in feed order, with their archive stages (whose archived files
/// it looks at on every poll, for growth).
pub struct WatchedFeeds {
    pub feeds: Vec<Arc<FeedConfig>>,
    pub archives: Vec<Archive>,
}

pub struct Watcher {
    feeds: Vec<Arc<FeedConfig>>,
    archives: Vec<Archive>,
    settle: Duration,
    poll_interval: Duration,
    tracker: Tracker,
    jobs: Sender<FileJob>,
    signals_rx: Receiver<Signal>,
    signals_tx: Sender<Signal>,
    /// Files waiting to settle: last (size, mtime) seen.
    settling: HashMap<PathBuf, Settling>,
    /// Per feed: files in the inbox that will never be taken, already warned about.
    never_taken: Vec<HashSet<PathBuf>>,
    /// When to look at a path again.
    timers: BTreeMap<Instant, Vec<(FeedId, PathBuf)>>,
    debouncer: Option<events::Events>,
    shutdown: Shutdown,
}

impl Watcher {
    /// A watcher of `feeds` (the pipeline's, in feed order) with `cfg`'s timings.
    pub fn new(
        cfg: &Config,
        watched: WatchedFeeds,
        tracker: Tracker,
        jobs: Sender<FileJob>,
        shutdown: Shutdown,
    ) -> Watcher {
        // Bounded: if the pool lags far behind, events are dropped and the poll finds the files.
        let (signals_tx, signals_rx) = crossbeam_channel::bounded(65_536);
        let n = watched.feeds.len();
        Watcher {
            feeds: watched.feeds,
            archives: watched.archives,
            settle: cfg.settle,
            poll_interval: cfg.poll_interval,
            tracker,
            jobs,
            signals_rx,
            signals_tx,
            settling: HashMap::new(),
            never_taken: vec![HashSet::new(); n],
            timers: BTreeMap::new(),
            debouncer: None,
            shutdown,
        }
    }

    /// Starts filesystem events on every inbox (see [`events`]).
    pub fn start_events(&mut self, debounce: Duration) {
        self.debouncer = events::start(
            &self.feeds,
            debounce,
            self.poll_interval,
            self.signals_tx.clone(),
        );
    }

    /// Dispatches every eligible file in the inboxes now, without settling (`run --once`).
    pub fn dispatch_all_once(&mut self) -> Result<usize, WatchError> {
        let mut n = 0;
        for feed in 0..self.feeds.len() {
            for (path, _) in self.list(feed, Duration::ZERO)? {
                if self.dispatch(feed, path) {
                    n += 1;
                }
            }
        }
        Ok(n)
    }

    /// The daemon loop: until the stop is triggered.
    pub fn run(mut self) -> Result<(), WatchError> {
        let mut next_poll = Instant::now();
        loop {
            if self.stopping() {
                break;
            }
            let now = Instant::now();
            if now >= next_poll {
                self.scan_all()?;
                next_poll = Instant::now() + self.poll_interval;
            }
            self.fire_due_timers();
            self.retry_due();
            let mut wake = self
                .timers
                .keys()
                .next()
                .copied()
                .map_or(next_poll, |t| t.min(next_poll));
            if let Some(t) = self.tracker.next_retry() {
                wake = wake.min(t);
            }
            let timeout = wake.saturating_duration_since(Instant::now());
            select! {
                recv(self.signals_rx) -> sig => match sig {
                    Ok(sig) => self.on_signal(sig)?,
                    Err(_) => return Ok(()),
                },
                recv(self.shutdown.signal()) -> _ => break,
                default(timeout) => {}
            }
        }
        if let Some(d) = self.debouncer.take() {
            d.stop_nonblocking();
        }
        Ok(())
    }

    fn stopping(&self) -> bool {
        self.shutdown.is_triggered()
    }

    fn on_signal(&mut self, sig: Signal) -> Result<(), WatchError> {
        match sig {
            Signal::Complete(feed, path) => {
                let path = data_path(&self.feeds[feed], path);
                if wanted(&self.feeds[feed], &path) && file_stamp(&path).is_some() {
                    self.settling.remove(&path);
                    self.dispatch(feed, path);
                }
            }
            Signal::Touched(feed, path) => {
                let path = data_path(&self.feeds[feed], path);
                if wanted(&self.feeds[feed], &path) {
                    if let Some(stamp) = file_stamp(&path) {
                        self.observe(feed, path, stamp, false);
                    }
                }
            }
            Signal::Rescan => {
                log::info!("file events may have been lost; rescanning the inboxes");
                self.scan_all()?;
            }
        }
        Ok(())
    }

    /// Eligible files of a feed's inbox, oldest first; the files that will never be taken are
    /// named (once).
    fn list(&mut self, feed: FeedId, quiet: Duration) -> Result<Vec<(PathBuf, Stamp)>, WatchError> {
        let scan = inbox::scan(&self.feeds[feed], quiet)?;
        self.say_never_taken(feed, scan.never);
        Ok(scan.files)
    }

    /// A file left in the inbox for good (a .xlsx, a symlink) is said once, not at every poll,
    /// and again only if it goes and comes back.
    fn say_never_taken(&mut self, feed: FeedId, never: Vec<(PathBuf, String)>) {
        let before = std::mem::take(&mut self.never_taken[feed]);
        for (path, why) in never {
            if !before.contains(&path) {
                log::warn!(
                    "feed {}: ignoring {}: {why}",
                    self.feeds[feed].name,
                    path.display()
                );
            }
            self.never_taken[feed].insert(path);
        }
    }

    fn scan_all(&mut self) -> Result<(), WatchError> {
        for a in &self.archives {
            a.check_grown();
        }
        for feed in 0..self.feeds.len() {
            let files = match self.list(feed, self.settle) {
                Ok(f) => f,
                // A vanished or unreadable inbox is logged, not fatal: it may come back.
                Err(e) => {
                    log::error!("feed {}: {e}", self.feeds[feed].name);
                    continue;
                }
            };
            for (path, stamp) in files {
                if self.tracker.is_claimed(&path) {
                    continue;
                }
                if self.in_claim_dir(feed, &path) {
                    self.dispatch(feed, path);
                    continue;
                }
                self.observe(feed, path, stamp, true);
                if self.stopping() {
                    return Ok(());
                }
            }
        }
        self.fire_due_timers();
        Ok(())
    }

    /// A file seen by the poll or a create/modify event: dispatch it once it is settled.
    fn observe(&mut self, feed: FeedId, path: PathBuf, stamp: Stamp, from_poll: bool) {
        let now = Instant::now();
        let mtime = stamp.1;
        // Declared ready by its marker: ready now.
        if self.feeds[feed].ready_marker.is_some() {
            self.settling.remove(&path);
            self.timers.entry(now).or_default().push((feed, path));
            return;
        }
        match self.settling.get_mut(&path) {
            Some(s) => {
                // An event is a change even when size and mtime look the same.
                if s.stamp != stamp || !from_poll {
                    s.stamp = stamp;
                    s.changed = now;
                }
                let due = s.changed + self.settle;
                self.timers
                    .entry(due.max(now))
                    .or_default()
                    .push((feed, path));
            }
            None => {
                let age = mtime
                    .and_then(|m| SystemTime::now().duration_since(m).ok())
                    .unwrap_or_default();
                // Untouched for the settle time already (e.g. present at startup): ready now.
                if from_poll && age >= self.settle {
                    self.timers.entry(now).or_default().push((feed, path));
                    return;
                }
                self.settling.insert(
                    path.clone(),
                    Settling {
                        stamp,
                        changed: now,
                    },
                );
                self.timers
                    .entry(now + self.settle)
                    .or_default()
                    .push((feed, path));
            }
        }
    }

    /// Files given back after a transient failure whose backoff has passed.
    fn retry_due(&mut self) {
        for path in self.tracker.due_retries(Instant::now()) {
            let feed = path.parent().and_then(|dir| {
                self.feeds
                    .iter()
                    .position(|f| f.inbox == dir || f.claim_dir.as_deref() == Some(dir))
            });
            match (feed, file_stamp(&path)) {
                (Some(feed), Some(_)) => {
                    self.dispatch(feed, path);
                }
                // Gone (or not ours): forget it.
                _ => self.tracker.release(&path),
            }
        }
    }

    fn fire_due_timers(&mut self) {
        let now = Instant::now();
        let later = self.timers.split_off(&(now + Duration::from_nanos(1)));
        let due = std::mem::replace(&mut self.timers, later);
        for (_, paths) in due {
            for (feed, path) in paths {
                self.check_settled(feed, path);
            }
        }
    }

    /// A file is taken once it has not changed for the whole settle time.
    fn check_settled(&mut self, feed: FeedId, path: PathBuf) {
        let Some(stamp) = file_stamp(&path) else {
            self.settling.remove(&path);
            return;
        };
        let now = Instant::now();
        let quiet_since = match self.settling.get_mut(&path) {
            None => None,
            Some(s) => {
                if s.stamp != stamp {
                    s.stamp = stamp;
                    s.changed = now;
                }
                Some(s.changed)
            }
        };
        match quiet_since {
            Some(changed) if now < changed + self.settle => {
                // Still changing: look again once it may have been quiet long enough.
                self.timers
                    .entry(changed + self.settle)
                    .or_default()
                    .push((feed, path));
            }
            _ => {
                self.settling.remove(&path);
                self.dispatch(feed, path);
            }
        }
    }

    fn in_claim_dir(&self, feed: FeedId, path: &Path) -> bool {
        self.feeds[feed].claim_dir.is_some()
            && path.parent() == self.feeds[feed].claim_dir.as_deref()
    }

    /// Shared inbox: takes `path` by renaming it into this daemon's claim folder. Rename is
    /// atomic (on NFS too), so of several daemons exactly one gets the file; the others see it
    /// vanish. None if another daemon was first, or the file cannot be claimed now.
    fn claim_from_shared_inbox(&self, feed: FeedId, path: &Path) -> Option<PathBuf> {
        let f = &self.feeds[feed];
        let dir = f.claim_dir.as_deref()?;
        let name = path.file_name()?;
        let claimed = dir.join(name);
        // Our own folder: nobody else writes it, so this check cannot race. A file of the same
        // name still in flight is finished first; this one waits for a later scan.
        if claimed.exists() {
            log::debug!(
                "{}: a file of that name is still being ingested; taking it later",
                path.display()
            );
            return None;
        }
        let mut res = std::fs::rename(path, &claimed);
        if res.is_err() && path.exists() && !dir.exists() {
            res = std::fs::create_dir_all(dir).and_then(|_| std::fs::rename(path, &claimed));
        }
        match res {
            Ok(()) => {
                // The ready marker follows its file, so that it is archived with it.
                if let Some(m) = f.marker_for(path) {
                    if let Some(mname) = m.file_name() {
                        let _ = std::fs::rename(&m, dir.join(mname));
                    }
                }
                log::debug!("claimed {} into {}", path.display(), dir.display());
                Some(claimed)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !path.exists() => {
                log::debug!("{}: taken by another daemon", path.display());
                None
            }
            Err(e) => {
                log::warn!(
                    "feed {}: cannot claim {} into {}: {e}",
                    f.name,
                    path.display(),
                    dir.display()
                );
                None
            }
        }
    }

    /// Claims and sends one file to the pool; false if it is already owned or we are stopping.
    fn dispatch(&mut self, feed: FeedId, path: PathBuf) -> bool {
        if self.stopping() || self.tracker.is_claimed(&path) {
            return false;
        }
        let path = if self.feeds[feed].claim_dir.is_some() && !self.in_claim_dir(feed, &path) {
            match self.claim_from_shared_inbox(feed, &path) {
                Some(p) => p,
                None => return false,
            }
        } else {
            path
        };
        if !self.tracker.claim(&path) {
            return false;
        }
        let job = FileJob {
            feed,
            path: path.clone(),
        };
        // Blocks while the pool is busy (back-pressure), but never past a shutdown.
        select! {
            send(self.jobs, job) -> res => {
                if res.is_err() {
                    self.tracker.release(&path);
                    return false;
                }
                true
            }
            recv(self.shutdown.signal()) -> _ => {
                self.tracker.release(&path);
                false
            }
        }
    }
}

/// The watcher's decisions, on a real inbox in a temporary folder with a settle time far longer
/// than a test, so that nothing settles by itself: time passing is a settling file's `changed`
/// moved back. Dispatched files arrive on an unbounded channel.
#[cfg(test)]
mod tests {
    use std::fs;
    use std::time::SystemTime;

    use crossbeam_channel::Receiver;

    use super::*;

    const SETTLE: Duration = Duration::from_secs(600);

    struct Site {
        _tmp: tempfile::TempDir,
        inbox: PathBuf,
        w: Watcher,
        jobs: Receiver<FileJob>,
        tracker: Tracker,
        shutdown: Shutdown,
    }

    /// A watcher of one feed; `top` and `feed` are added to the config's settings.
    fn site(top: &str, feed: &str) -> Site {
        let tmp = tempfile::tempdir().expect("tempdir");
        let toml = format!(
            "settle = \"600s\"\npoll_interval = \"1h\"\n{top}\n\
             [[feed]]\nname = \"f\"\ninbox = \"inbox\"\ntable = \"lake/f\"\n{feed}\n"
        );
        let cfg = Config::from_toml(&toml, tmp.path(), None).expect("config");
        let inbox = tmp.path().join("inbox");
        fs::create_dir_all(&inbox).expect("inbox");
        let (tx, jobs) = crossbeam_channel::unbounded();
        let tracker = Tracker::default();
        let shutdown = Shutdown::default();
        let watched = WatchedFeeds {
            feeds: cfg.feeds.iter().cloned().map(Arc::new).collect(),
            archives: Vec::new(),
        };
        let w = Watcher::new(&cfg, watched, tracker.clone(), tx, shutdown.clone());
        Site {
            _tmp: tmp,
            inbox,
            w,
            jobs,
            tracker,
            shutdown,
        }
    }

    impl Site {
        /// Writes `name` in the inbox, last modified `age` ago.
        fn file(&self, name: &str, age: Duration) -> PathBuf {
            let path = self.inbox.join(name);
            fs::write(&path, "id\n1\n").expect("write");
            let f = fs::File::options().write(true).open(&path).expect("open");
            f.set_modified(SystemTime::now() - age).expect("mtime");
            path
        }

        /// The paths dispatched so far.
        fn sent(&self) -> Vec<PathBuf> {
            self.jobs.try_iter().map(|j| j.path).collect()
        }

        /// As if the settling file at `path` last changed longer ago than the settle time.
        fn quiet_for_the_settle_time(&mut self, path: &Path) {
            let s = self.w.settling.get_mut(path).expect("settling");
            s.changed = Instant::now()
                .checked_sub(SETTLE + Duration::from_secs(1))
                .expect("an instant that long ago");
        }
    }

    #[test]
    fn a_file_untouched_for_the_settle_time_is_taken_at_the_first_poll() {
        let mut s = site("", "");
        let old = s.file("old.csv", Duration::from_secs(3600));
        s.w.scan_all().expect("scan");
        assert_eq!(s.sent(), vec![old.clone()]);
        assert!(s.tracker.is_claimed(&old));
        // Claimed: the next poll does not send it again.
        s.w.scan_all().expect("scan");
        assert!(s.sent().is_empty());
    }

    #[test]
    fn a_fresh_file_waits_for_the_settle_time_and_a_change_starts_it_again() {
        let mut s = site("", "");
        let path = s.file("new.csv", Duration::ZERO);
        let before = Instant::now();
        s.w.scan_all().expect("scan");
        assert!(s.sent().is_empty(), "not settled yet");
        let due = *s.w.timers.keys().next().expect("a timer");
        assert!(
            due >= before + SETTLE,
            "looked at again after the settle time"
        );

        // Quiet long enough, but its size changed meanwhile: the wait starts again.
        s.quiet_for_the_settle_time(&path);
        fs::write(&path, "id\n1\n2\n").expect("append");
        s.w.check_settled(0, path.clone());
        assert!(s.sent().is_empty(), "changed: not taken");
        assert!(s.w.settling[&path].changed >= before);

        // Quiet long enough and unchanged: taken, no longer settling.
        s.quiet_for_the_settle_time(&path);
        s.w.check_settled(0, path.clone());
        assert_eq!(s.sent(), vec![path.clone()]);
        assert!(!s.w.settling.contains_key(&path));
    }

    #[test]
    fn an_event_is_a_change_even_when_size_and_mtime_look_the_same() {
        let mut s = site("", "");
        let path = s.file("a.csv", Duration::ZERO);
        let stamp = file_stamp(&path).expect("stamp");
        s.w.observe(0, path.clone(), stamp, true);
        s.quiet_for_the_settle_time(&path);
        let quiet_since = s.w.settling[&path].changed;
        // A poll seeing the same stamp keeps the quiet time...
        s.w.observe(0, path.clone(), stamp, true);
        assert_eq!(s.w.settling[&path].changed, quiet_since);
        // ...an event does not.
        s.w.observe(0, path.clone(), stamp, false);
        assert!(s.w.settling[&path].changed > quiet_since);
    }

    #[test]
    fn a_complete_event_takes_a_wanted_file_at_once() {
        let mut s = site("", "");
        let path = s.file("a.csv", Duration::ZERO);
        s.w.scan_all().expect("scan");
        assert!(s.w.settling.contains_key(&path));
        s.w.on_signal(Signal::Complete(0, path.clone()))
            .expect("signal");
        assert_eq!(s.sent(), vec![path.clone()]);
        assert!(!s.w.settling.contains_key(&path));

        let tmp = s.file(".b.csv.tmp", Duration::ZERO);
        s.w.on_signal(Signal::Complete(0, tmp)).expect("signal");
        let gone = s.inbox.join("gone.csv");
        s.w.on_signal(Signal::Complete(0, gone)).expect("signal");
        assert!(s.sent().is_empty(), "a temp name, a file that is gone");
    }

    /// With `ready_marker`, the marker is the producer's "complete": no settle time.
    #[test]
    fn a_file_with_a_ready_marker_waits_for_it_and_not_for_the_settle_time() {
        let mut s = site("", "ready_marker = \".done\"");
        let path = s.file("x.csv", Duration::ZERO);
        s.w.scan_all().expect("scan");
        assert!(
            s.sent().is_empty() && s.w.timers.is_empty(),
            "no marker yet"
        );
        assert!(
            s.w.never_taken[0].is_empty(),
            "waiting for a marker is not 'never'"
        );
        let marker = s.file("x.csv.done", Duration::ZERO);
        s.w.on_signal(Signal::Touched(0, marker)).expect("signal");
        s.w.fire_due_timers();
        assert_eq!(s.sent(), [path]);
    }

    /// A shared inbox: a file is taken by renaming it into this daemon's claim folder; one
    /// already claimed (a crash, a retry) is taken from there first; a second file of the same
    /// name waits in the inbox until the first is done.
    #[test]
    fn in_a_shared_inbox_a_file_is_claimed_by_a_rename_into_our_folder() {
        let mut s = site("instance = \"a\"", "shared_inbox = true");
        let claims = s.inbox.join(crate::config::CLAIMS_DIR).join("a");
        let path = s.file("x.csv", Duration::from_secs(3600));
        s.w.scan_all().expect("scan");
        let claimed = claims.join("x.csv");
        assert_eq!(s.sent(), vec![claimed.clone()]);
        assert!(claimed.exists() && !path.exists());

        // The claimed one was given back (not yet done), and a new x.csv arrived.
        s.tracker.release(&claimed);
        let again = s.file("x.csv", Duration::from_secs(3600));
        s.w.scan_all().expect("scan");
        assert_eq!(s.sent(), vec![claimed.clone()]);
        assert!(
            again.exists(),
            "waits while a file of that name is in flight"
        );
    }

    #[test]
    fn run_once_takes_every_data_file_without_settling() {
        let mut s = site("", "");
        let a = s.file("a.csv", Duration::ZERO);
        let b = s.file("b.CSV", Duration::ZERO);
        s.file(".c.csv.part", Duration::ZERO);
        s.file("d.xlsx", Duration::ZERO);
        assert_eq!(s.w.dispatch_all_once().expect("dispatch"), 2);
        let mut sent = s.sent();
        sent.sort();
        assert_eq!(sent, [a, b]);
    }

    /// After the stop, nothing is sent or claimed (the send would otherwise race the stop
    /// signal: ten files make a lucky pass unlikely).
    #[test]
    fn once_stopping_no_file_is_taken_or_claimed() {
        let mut s = site("", "");
        let paths: Vec<PathBuf> = (0..10)
            .map(|i| s.file(&format!("{i}.csv"), Duration::from_secs(3600)))
            .collect();
        s.shutdown.trigger();
        s.w.scan_all().expect("scan");
        s.w.fire_due_timers();
        assert_eq!(s.w.dispatch_all_once().expect("dispatch"), 0);
        assert!(s.sent().is_empty());
        assert!(paths.iter().all(|p| !s.tracker.is_claimed(p)));
    }

    /// A file left for good is remembered (said once), and forgotten once it goes.
    #[test]
    fn a_file_never_taken_is_remembered_until_it_goes() {
        let mut s = site("", "");
        let xlsx = s.file("report.xlsx", Duration::ZERO);
        s.w.scan_all().expect("scan");
        s.w.scan_all().expect("scan");
        assert_eq!(s.w.never_taken[0].iter().collect::<Vec<_>>(), [&xlsx]);
        fs::remove_file(&xlsx).expect("remove");
        s.w.scan_all().expect("scan");
        assert!(s.w.never_taken[0].is_empty());
        assert!(s.sent().is_empty());
    }
}
