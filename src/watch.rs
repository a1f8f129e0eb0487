//! Watch stage: finds complete files in the inboxes and dispatches them to the pool. It owns the
//! notify debouncer, the poll timer and the settle bookkeeping.
//!
//! A file is complete when an event says so (closed after writing, or moved in), or — for files
//! seen only by polling or only as "created" — when its size and mtime stay the same for the
//! settle time. The poll runs even with events on: it covers filesystems without events and
//! anything the events missed (queue overflow).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{select, Receiver, Sender};
use notify::event::{AccessKind, AccessMode, EventKind, ModifyKind};
use notify::{RecommendedWatcher, RecursiveMode};
use notify_debouncer_full::{new_debouncer_opt, DebounceEventResult, Debouncer, NoCache};

use crate::config::{Config, FeedConfig};
use crate::job::{FeedId, FileJob, Tracker};

#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("cannot read inbox {path}: {source}")]
    Inbox {
        path: PathBuf,
        source: std::io::Error,
    },
}

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

/// Names that are never ingested (still being written by common tools).
pub fn is_temp_name(name: &str) -> bool {
    name.starts_with('.')
        || name.ends_with('~')
        || [".tmp", ".part", ".crdownload", ".partial", ".swp"]
            .iter()
            .any(|s| name.to_ascii_lowercase().ends_with(s))
}

/// Whether `name` is a data file of this feed (by extension, case-insensitive).
pub fn has_feed_extension(feed: &FeedConfig, name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    feed.extensions.iter().any(|ext| {
        lower.len() > ext.len() + 1
            && lower.ends_with(ext.as_str())
            && lower.as_bytes()[lower.len() - ext.len() - 1] == b'.'
    })
}

/// A data file's name for this feed: its extension, and not a temp or hidden name.
fn is_data_name(feed: &FeedConfig, name: &str) -> bool {
    !is_temp_name(name) && has_feed_extension(feed, name)
}

/// The data files waiting in a feed's inbox — regular files (symlinks not followed) with a
/// data file name — sorted by name. Quiet: for counts and look-ups, not for dispatch.
pub fn inbox_files(feed: &FeedConfig) -> Vec<PathBuf> {
    data_files_in(&feed.inbox, feed)
}

/// The same for any folder of the feed's (its inbox, or its claim folder in a shared inbox).
fn data_files_in(dir: &Path, feed: &FeedConfig) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = rd
        .flatten()
        .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| is_data_name(feed, n))
        })
        .map(|e| e.path())
        .collect();
    files.sort();
    files
}

/// A file whose name is not UTF-8 (uploads from Windows or old SFTP clients name files in
/// windows-1252 or latin-1) cannot be named in the table, the log or the state: once it has
/// been quiet for the settle time it is renamed in the inbox to its windows-1252 reading
/// ("relat\xf3rio.csv" → "relatório.csv") and taken under that name. Returns the new path;
/// None when the file is not (yet) to be taken.
fn utf8_name(feed: &FeedConfig, path: &Path, settle: Duration) -> Option<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    let raw = path.file_name()?.as_bytes();
    let (decoded, _, _) = encoding_rs::WINDOWS_1252.decode(raw);
    // Decoded control characters (C1 bytes) would make a name no one can type.
    let name: String = decoded
        .chars()
        .map(|c| if c.is_control() { '_' } else { c })
        .collect();
    if !is_data_name(feed, &name) {
        return None;
    }
    let quiet = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age >= settle);
    if !quiet {
        return None;
    }
    let dir = path.parent()?;
    // A hard link never replaces a file of that name (a rename would): the first free name
    // gets the link, then the old name goes.
    let mut last = None;
    for n in 1u32..100 {
        let target = match n {
            1 => dir.join(&name),
            n => dir.join(format!("{n}-{name}")),
        };
        let moved = match std::fs::hard_link(path, &target) {
            Ok(()) => std::fs::remove_file(path).inspect_err(|_| {
                // Both names would hold the file: keep the old one, try again next round.
                let _ = std::fs::remove_file(&target);
            }),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            // No hard links here (SMB, some FUSE mounts): a rename to a name seen free.
            Err(e) if !target.exists() => std::fs::rename(path, &target).map_err(|_| e),
            Err(e) => Err(e),
        };
        match moved {
            Ok(()) => {
                log::warn!(
                    "feed {}: file name {:?} is not UTF-8: renamed to {} to ingest it",
                    feed.name,
                    path.file_name().unwrap_or_default(),
                    target.display()
                );
                return Some(target);
            }
            Err(e) => {
                last = Some(e);
                break;
            }
        }
    }
    log::warn!(
        "feed {}: file name {:?} is not UTF-8 and cannot be renamed ({}): rename it to take it",
        feed.name,
        path.file_name().unwrap_or_default(),
        last.map_or_else(|| "no free name".to_string(), |e| e.to_string())
    );
    None
}

fn wanted(feed: &FeedConfig, path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        log::debug!("ignoring {}: name is not valid UTF-8", path.display());
        return false;
    };
    if is_temp_name(name) {
        log::debug!("ignoring {name}: hidden or temporary name");
        return false;
    }
    if !has_feed_extension(feed, name) {
        log::debug!(
            "ignoring {name}: not a .{} file",
            feed.extensions.join("/.")
        );
        return false;
    }
    if let Some(marker) = crate::quarantine::marker_for(path, feed.ready_marker.as_deref()) {
        if !marker.exists() {
            log::debug!("waiting for {name}'s ready marker {}", marker.display());
            return false;
        }
    }
    true
}

/// A name that says "data for this feed" (a data file's extension, not a temp name).
fn looks_like_data(feed: &FeedConfig, path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| is_data_name(feed, n))
}

/// Why a regular file that `wanted` refused will stay in the inbox for good: another extension
/// (an .xlsx export, a README). None for what is expected there and taken care of: temp and
/// hidden names, ready markers, files waiting for their marker.
fn never_taken(feed: &FeedConfig, path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    if is_temp_name(name) || is_data_name(feed, name) {
        return None;
    }
    if feed
        .ready_marker
        .as_deref()
        .is_some_and(|m| name.ends_with(m))
    {
        return None;
    }
    let lower = name.to_ascii_lowercase();
    if [".xlsx", ".xls", ".xlsm", ".ods"]
        .iter()
        .any(|e| lower.ends_with(e))
    {
        return Some("a spreadsheet, not CSV: save it as CSV (UTF-8) and drop that".into());
    }
    Some(format!(
        "not a .{} file (the feed's `extensions`)",
        feed.extensions.join("/.")
    ))
}

/// With `ready_marker`, an event on `x.csv.done` is about `x.csv`.
fn data_path(feed: &FeedConfig, path: PathBuf) -> PathBuf {
    if let (Some(m), Some(name)) = (
        feed.ready_marker.as_deref(),
        path.file_name().and_then(|n| n.to_str()),
    ) {
        if let Some(data) = name.strip_suffix(m) {
            if !data.is_empty() {
                return path.with_file_name(data);
            }
        }
    }
    path
}

/// (size, mtime) of a file: what must stay the same for the settle time.
type Stamp = (u64, Option<SystemTime>);

/// The stamp of a regular file, not following symlinks; None for anything else.
pub(crate) fn file_stamp(path: &Path) -> Option<Stamp> {
    let m = std::fs::symlink_metadata(path).ok()?;
    if m.file_type().is_file() {
        Some((m.len(), m.modified().ok()))
    } else {
        if m.file_type().is_symlink() {
            log::debug!(
                "ignoring {}: symbolic links are not followed",
                path.display()
            );
        } else {
            log::debug!("ignoring {}: not a regular file", path.display());
        }
        None
    }
}

/// A file waiting to be quiet for the settle time.
struct Settling {
    stamp: Stamp,
    /// When it was last seen changing (an event, or a different stamp).
    changed: Instant,
}

pub struct Watcher {
    feeds: Vec<FeedConfig>,
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
    debouncer: Option<Debouncer<RecommendedWatcher, NoCache>>,
    /// Set at shutdown. The shutdown channel only wakes the loop: its one message may be taken
    /// by any `select!` here, so the flag is what says "stop".
    stopping: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Watcher {
    pub fn new(
        cfg: &Config,
        tracker: Tracker,
        jobs: Sender<FileJob>,
        stopping: std::sync::Arc<std::sync::atomic::AtomicBool>,
    ) -> Watcher {
        // Bounded: if the pool lags far behind, events are dropped and the poll finds the files.
        let (signals_tx, signals_rx) = crossbeam_channel::bounded(65_536);
        Watcher {
            feeds: cfg.feeds.clone(),
            settle: cfg.settle,
            poll_interval: cfg.poll_interval,
            tracker,
            jobs,
            signals_rx,
            signals_tx,
            settling: HashMap::new(),
            never_taken: vec![HashSet::new(); cfg.feeds.len()],
            timers: BTreeMap::new(),
            debouncer: None,
            stopping,
        }
    }

    /// Starts inotify (or the platform's watcher) on every inbox. On failure the daemon goes on
    /// polling and says why.
    pub fn start_events(&mut self, debounce: Duration) {
        // Events carry canonical paths; the rest of the daemon uses the configured inbox path, so
        // that one file has one name in the tracker whichever way it was found.
        let inboxes: Vec<(PathBuf, FeedId, PathBuf)> = self
            .feeds
            .iter()
            .enumerate()
            .map(|(i, f)| (canonical(&f.inbox), i, f.inbox.clone()))
            .collect();
        let tx = self.signals_tx.clone();
        let handler = move |res: DebounceEventResult| match res {
            Ok(events) => {
                for ev in events {
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
                    let Some((_, feed, inbox)) = inboxes.iter().find(|(dir, _, _)| dir == parent)
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
        // most of the drop → commit latency (10 ms of a 14 ms p50 before it was cut to 2 ms), so
        // it stays short. The tick is half the window, at least 1 ms: the debouncer thread wakes
        // every tick even when idle, and 1,000 wake-ups a second cost well under 1% of a core.
        let tick = (debounce / 2).max(Duration::from_millis(1)).min(debounce);
        let deb = new_debouncer_opt::<_, RecommendedWatcher, NoCache>(
            debounce,
            Some(tick),
            handler,
            NoCache,
            notify::Config::default(),
        );
        let mut deb = match deb {
            Ok(d) => d,
            Err(e) => {
                log::warn!(
                    "{}; polling every {:?} instead",
                    explain_notify(&e),
                    self.poll_interval
                );
                return;
            }
        };
        for f in &self.feeds {
            if let Err(e) = deb.watch(&f.inbox, RecursiveMode::NonRecursive) {
                log::warn!(
                    "feed {}: cannot watch {}: {}; polling every {:?} instead",
                    f.name,
                    f.inbox.display(),
                    explain_notify(&e),
                    self.poll_interval
                );
            }
        }
        self.debouncer = Some(deb);
    }

    /// Dispatches every eligible file in the inboxes now, without settling (`run --once`).
    pub fn dispatch_all_once(&mut self, shutdown: &Receiver<()>) -> Result<usize, WatchError> {
        let mut n = 0;
        for feed in 0..self.feeds.len() {
            for (path, _) in self.list(feed, Duration::ZERO)? {
                if self.dispatch(feed, path, shutdown) {
                    n += 1;
                }
            }
        }
        Ok(n)
    }

    /// The daemon loop: until `shutdown` receives (or disconnects).
    pub fn run(mut self, shutdown: Receiver<()>) -> Result<(), WatchError> {
        let mut next_poll = Instant::now();
        loop {
            if self.stopping() {
                break;
            }
            let now = Instant::now();
            if now >= next_poll {
                self.scan_all(&shutdown)?;
                next_poll = Instant::now() + self.poll_interval;
            }
            self.fire_due_timers(&shutdown);
            self.retry_due(&shutdown);
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
                    Ok(sig) => self.on_signal(sig, &shutdown)?,
                    Err(_) => return Ok(()),
                },
                recv(shutdown) -> _ => break,
                default(timeout) => {}
            }
        }
        if let Some(d) = self.debouncer.take() {
            d.stop_nonblocking();
        }
        Ok(())
    }

    fn stopping(&self) -> bool {
        self.stopping.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn on_signal(&mut self, sig: Signal, shutdown: &Receiver<()>) -> Result<(), WatchError> {
        match sig {
            Signal::Complete(feed, path) => {
                let path = data_path(&self.feeds[feed], path);
                if wanted(&self.feeds[feed], &path) && file_stamp(&path).is_some() {
                    self.settling.remove(&path);
                    self.dispatch(feed, path, shutdown);
                }
            }
            Signal::Touched(feed, path) => {
                let path = data_path(&self.feeds[feed], path);
                if wanted(&self.feeds[feed], &path) {
                    if let Some((size, mtime)) = file_stamp(&path) {
                        self.observe(feed, path, size, mtime, false);
                    }
                }
            }
            Signal::Rescan => {
                log::info!("file events may have been lost; rescanning the inboxes");
                self.scan_all(shutdown)?;
            }
        }
        Ok(())
    }

    /// Lists eligible regular files of a feed's inbox, oldest first. A name that is not UTF-8
    /// is renamed once the file has been quiet for `quiet` (see `utf8_name`).
    fn list(&mut self, feed: FeedId, quiet: Duration) -> Result<Vec<(PathBuf, Stamp)>, WatchError> {
        let f = &self.feeds[feed];
        let rd = std::fs::read_dir(&f.inbox).map_err(|source| WatchError::Inbox {
            path: f.inbox.clone(),
            source,
        })?;
        let mut out = Vec::new();
        // Files that sit in the inbox but will never be taken, and why.
        let mut never: Vec<(PathBuf, String)> = Vec::new();
        for entry in rd.flatten() {
            let mut path = entry.path();
            let file_type = entry.file_type();
            if entry.file_name().to_str().is_none() && file_type.as_ref().is_ok_and(|t| t.is_file())
            {
                match utf8_name(f, &path, quiet) {
                    Some(renamed) => path = renamed,
                    None => continue,
                }
            }
            match file_type {
                Ok(t) if t.is_dir() => {
                    log::debug!("ignoring {}: subfolders are not scanned", path.display());
                    continue;
                }
                Ok(t) if t.is_symlink() => {
                    if looks_like_data(f, &path) {
                        never.push((path, "a symbolic link: links are never followed (move or copy the file itself in)".to_string()));
                    }
                    continue;
                }
                Ok(t) if !t.is_file() => {
                    if looks_like_data(f, &path) {
                        never.push((
                            path,
                            "not a regular file (FIFO, socket or device)".to_string(),
                        ));
                    }
                    continue;
                }
                Err(_) => continue,
                Ok(_) => {}
            }
            if !wanted(f, &path) {
                if let Some(why) = never_taken(f, &path) {
                    never.push((path, why));
                }
                continue;
            }
            if let Some(stamp) = file_stamp(&path) {
                out.push((path, stamp));
            }
        }
        // Files this daemon claimed from a shared inbox but has not finished (a crash or a
        // transient failure): they are complete and ours, so they go first.
        if let Some(dir) = &f.claim_dir {
            for path in data_files_in(dir, f) {
                if let Some((size, _)) = file_stamp(&path) {
                    out.push((path, (size, None)));
                }
            }
        }
        out.sort_by(|a, b| a.1 .1.cmp(&b.1 .1).then_with(|| a.0.cmp(&b.0)));
        self.say_never_taken(feed, never);
        Ok(out)
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

    fn scan_all(&mut self, shutdown: &Receiver<()>) -> Result<(), WatchError> {
        for feed in 0..self.feeds.len() {
            let files = match self.list(feed, self.settle) {
                Ok(f) => f,
                // A vanished or unreadable inbox is logged, not fatal: it may come back.
                Err(e) => {
                    log::error!("feed {}: {e}", self.feeds[feed].name);
                    continue;
                }
            };
            for (path, (size, mtime)) in files {
                if self.tracker.is_claimed(&path) {
                    continue;
                }
                if self.in_claim_dir(feed, &path) {
                    self.dispatch(feed, path, shutdown);
                    continue;
                }
                self.observe(feed, path, size, mtime, true);
                if self.stopping() {
                    return Ok(());
                }
            }
        }
        self.fire_due_timers(shutdown);
        Ok(())
    }

    /// A file seen by the poll or a create/modify event: dispatch it once it is settled.
    fn observe(
        &mut self,
        feed: FeedId,
        path: PathBuf,
        size: u64,
        mtime: Option<SystemTime>,
        from_poll: bool,
    ) {
        let now = Instant::now();
        let stamp = (size, mtime);
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
    fn retry_due(&mut self, shutdown: &Receiver<()>) {
        for path in self.tracker.due_retries(Instant::now()) {
            let feed = path.parent().and_then(|dir| {
                self.feeds
                    .iter()
                    .position(|f| f.inbox == dir || f.claim_dir.as_deref() == Some(dir))
            });
            match (feed, file_stamp(&path)) {
                (Some(feed), Some(_)) => {
                    self.dispatch(feed, path, shutdown);
                }
                // Gone (or not ours): forget it.
                _ => self.tracker.release(&path),
            }
        }
    }

    fn fire_due_timers(&mut self, shutdown: &Receiver<()>) {
        let now = Instant::now();
        let later = self.timers.split_off(&(now + Duration::from_nanos(1)));
        let due = std::mem::replace(&mut self.timers, later);
        for (_, paths) in due {
            for (feed, path) in paths {
                self.check_settled(feed, path, shutdown);
            }
        }
    }

    /// A file is taken once it has not changed for the whole settle time.
    fn check_settled(&mut self, feed: FeedId, path: PathBuf, shutdown: &Receiver<()>) {
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
                self.dispatch(feed, path, shutdown);
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
                if let Some(m) = crate::quarantine::marker_for(path, f.ready_marker.as_deref()) {
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
    fn dispatch(&mut self, feed: FeedId, path: PathBuf, shutdown: &Receiver<()>) -> bool {
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
            recv(shutdown) -> _ => {
                self.tracker.release(&path);
                false
            }
        }
    }
}

fn canonical(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
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
    fn temp_and_hidden_names_are_skipped() {
        for n in [
            ".a.csv",
            "a.csv.tmp",
            "a.csv.part",
            "a.csv.crdownload",
            "a.csv~",
            "A.CSV.TMP",
        ] {
            assert!(is_temp_name(n), "{n}");
        }
        assert!(!is_temp_name("sales-2024.csv"));
    }

    #[test]
    fn watcher_limits_are_explained_with_the_fix() {
        let e = notify::Error::new(notify::ErrorKind::MaxFilesWatch);
        assert!(explain_notify(&e).contains("raise fs.inotify.max_user_watches"));
        let e = notify::Error::io(std::io::Error::from_raw_os_error(24));
        assert!(explain_notify(&e).contains("fs.inotify.max_user_instances"));
    }

    #[test]
    fn extensions_match_case_insensitively() {
        let cfg = Config::embedded(Path::new("/x")).unwrap();
        let f = &cfg.feeds[0];
        assert!(has_feed_extension(f, "a.csv"));
        assert!(has_feed_extension(f, "A.CSV"));
        assert!(!has_feed_extension(f, "a.csvx"));
        assert!(!has_feed_extension(f, "csv"));
        assert!(!has_feed_extension(f, "a.txt"));
    }
}
