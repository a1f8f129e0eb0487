//! Remote inbox: an inbox in object storage (`inbox = "az://drop/inbox"`, `s3://…`; `file://`
//! for tests). Object stores send no inotify, so every `poll_interval` the inbox prefix is
//! listed (one request per 1,000 waiting objects: loaded objects are no longer under it, and
//! sub-prefixes are not listed — its cost follows what waits, not what was loaded). A new object
//! is claimed ([`claim`]), downloaded into a local folder under `state_dir` and renamed into the
//! feed's local inbox, where every stage after this one — readiness, formats, quarantine,
//! exactly once, the archive — works as for a local drop. Where the archive puts the local copy
//! (`processed/`, `rejected/`) is then carried out in the store: the object is copied to the
//! `processed` or `rejected` prefix (with `NAME.error.txt`), then deleted from the inbox, then
//! its claim. Copy before delete: an object is never lost, and one seen again after a crash is a
//! duplicate of what was loaded.
//!
//! A fleet shares one inbox without a coordinator: a claim is an object created only if absent
//! (`PutMode::Create`) holding the daemon's instance and a lease, renewed while the daemon
//! works; a daemon killed mid-object leaves a claim that another takes once the lease is over.
//! A daemon that takes over a claim first looks in the table's log for the object's content
//! (`delta::committed`): the daemon that claimed it may have committed it
//! before it died.
//!
//! A queue (Event Grid, S3 → SQS) could feed [`Side::consider`] with objects instead of the
//! listing: claiming, downloading and archiving would stay as they are.

mod claim;
mod object;

use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use deltalake::logstore::object_store::path::Path as Key;
use deltalake::logstore::object_store::{ObjectMeta, ObjectStore, ObjectStoreExt};
use futures_util::future::Either;

use crate::config::{Config, FeedConfig, Remote};
use crate::counters::{Event, FeedCounters};
use crate::shutdown::Shutdown;

pub(crate) use object::RemoteError;

/// Objects a running daemon holds at once (see `Side::room`).
const ROOM: usize = 256;
/// How often a long pass carries out the archive's work and looks for room.
const CARRY_EVERY: Duration = Duration::from_millis(250);

/// The remote inboxes of a daemon's feeds, each read through its local folders.
pub(crate) struct Mirror {
    rt: tokio::runtime::Runtime,
    sides: Vec<Side>,
}

/// One feed's remote inbox.
struct Side {
    feed: Arc<FeedConfig>,
    remote: Remote,
    store: Arc<dyn ObjectStore>,
    /// Key prefixes in the store: the inbox, where loaded and rejected objects go, the claims.
    inbox: Key,
    processed: Key,
    rejected: Key,
    claims: Key,
    counters: Option<Arc<FeedCounters>>,
    /// Objects downloaded and not archived yet, by name: what was read, and when its claim was
    /// last renewed.
    staged: HashMap<String, Staged>,
    /// What the fleet committed, for objects taken over from another daemon.
    committed: crate::delta::committed::CommittedHashes,
    /// At most this many objects are staged at once (claimed, not yet archived): a daemon does
    /// not claim a backlog it cannot work through within a lease, and leaves the rest to the
    /// fleet. Unbounded for `--once`, whose pipelines start after the download.
    room: usize,
    /// When the archive's work was last carried out in the store.
    carried: Instant,
    /// What the store last failed with.
    last_error: Option<String>,
    /// After a failure of the store: no listing before this instant.
    pause_until: Option<Instant>,
    failures: u32,
    /// Whether this run's claims left by an earlier run were looked at (its first listing).
    swept: bool,
}

#[derive(Debug, Clone)]
struct Staged {
    /// When this daemon first claimed the object.
    since_ms: i64,
    e_tag: Option<String>,
    size: u64,
    renewed: Instant,
}

impl Mirror {
    /// The daemon's remote inboxes (None: it has none). Each local inbox is emptied first: an
    /// object is taken again from the store under a claim, never from a copy a previous run
    /// left (another daemon may have loaded it since).
    pub(crate) fn open(
        cfg: &Config,
        counters: impl Fn(&str) -> Option<Arc<FeedCounters>>,
    ) -> Result<Option<Mirror>, RemoteError> {
        let remote_feeds: Vec<&FeedConfig> =
            cfg.feeds.iter().filter(|f| f.remote.is_some()).collect();
        if remote_feeds.is_empty() {
            return Ok(None);
        }
        let rt = crate::delta::runtime().map_err(|e| RemoteError::Runtime(e.to_string()))?;
        let mut sides = Vec::new();
        for f in remote_feeds {
            let Some(remote) = f.remote.clone() else {
                continue;
            };
            let (store, inbox) = object::store_for(&remote.inbox, &f.storage_options)?;
            let key = |u: &url::Url| object::key_of(u);
            let side = Side {
                feed: Arc::new(f.clone()),
                store,
                processed: key(&remote.processed),
                rejected: key(&remote.rejected),
                claims: inbox.clone().join("_deltadrop_claims"),
                inbox,
                counters: counters(&f.name),
                committed: crate::delta::committed::CommittedHashes::new(
                    &f.table_url,
                    &f.storage_options,
                ),
                remote,
                room: usize::MAX,
                carried: Instant::now(),
                staged: HashMap::new(),
                pause_until: None,
                last_error: None,
                failures: 0,
                swept: false,
            };
            side.clear_local_inbox()?;
            sides.push(side);
        }
        Ok(Some(Mirror { rt, sides }))
    }

    /// One round for every remote inbox: what the archive did is carried out in the store,
    /// claims are renewed, new objects are claimed and downloaded. The first failure of a store
    /// in it is returned (a running daemon carries on: its thread tries again after a backoff;
    /// `run --once` fails, so that whoever runs it sees the store was not read).
    pub(crate) fn pass(&mut self) -> Result<(), RemoteError> {
        let mut first = None;
        for side in &mut self.sides {
            side.failures = 0;
            side.pause_until = None;
            side.pass(&self.rt, None);
            if side.failures > 0 && first.is_none() {
                first = side.last_error.take();
            }
        }
        match first {
            Some(e) => Err(RemoteError::Store(e)),
            None => Ok(()),
        }
    }

    /// The archive's work still waiting to be carried out in the store (at a stop).
    pub(crate) fn settle(&mut self) {
        for side in &mut self.sides {
            side.carry_out_archive(&self.rt);
        }
    }

    /// Runs rounds every `poll` until `stop`; a last round carries out what the archive did.
    pub(crate) fn spawn(
        mut self,
        poll: Duration,
        stop: Shutdown,
    ) -> std::io::Result<std::thread::JoinHandle<()>> {
        std::thread::Builder::new()
            .name("deltadrop-remote".into())
            .spawn(move || {
                for side in &mut self.sides {
                    side.room = ROOM;
                }
                loop {
                    for side in &mut self.sides {
                        side.pass(&self.rt, Some(&stop));
                    }
                    if stop.wait_timeout(poll) {
                        break;
                    }
                }
                self.settle();
            })
    }
}

impl Side {
    fn local_inbox(&self) -> &Path {
        &self.feed.inbox
    }

    fn clear_local_inbox(&self) -> Result<(), RemoteError> {
        let dir = self.local_inbox();
        for d in [dir, &self.feed.processed, &self.feed.rejected] {
            std::fs::create_dir_all(d).map_err(|e| RemoteError::Local(d.to_path_buf(), e))?;
        }
        for e in std::fs::read_dir(dir)
            .map_err(|e| RemoteError::Local(dir.to_path_buf(), e))?
            .flatten()
        {
            if e.file_type().is_ok_and(|t| t.is_file()) {
                let _ = std::fs::remove_file(e.path());
            }
        }
        Ok(())
    }

    fn pass(&mut self, rt: &tokio::runtime::Runtime, stop: Option<&Shutdown>) {
        self.carry_out_archive(rt);
        if self.pause_until.is_some_and(|t| Instant::now() < t) {
            return;
        }
        let listed = rt.block_on(self.store.list_with_delimiter(Some(&self.inbox)));
        let objects = match listed {
            Ok(l) => {
                if self.failures > 0 {
                    log::info!(
                        "feed {}: inbox {} reachable again",
                        self.feed.name,
                        self.remote.inbox
                    );
                }
                self.failures = 0;
                self.pause_until = None;
                l.objects
            }
            Err(e) => {
                self.failed(&object::describe(&e, &self.remote.inbox));
                return;
            }
        };
        self.renew_claims(rt);
        let names: std::collections::HashSet<String> = objects
            .iter()
            .filter_map(|o| o.location.filename().map(str::to_string))
            .collect();
        if !self.swept {
            self.swept = claim::sweep(rt, self, &names);
        }
        for o in objects {
            if !self.keep_up(rt, stop) {
                break;
            }
            self.consider(rt, o, &names);
        }
    }

    /// Within a pass through many new objects (which can outlast a lease): claims are renewed
    /// and loaded objects archived as it goes, and while `room` objects are staged it waits
    /// for the pipeline to finish some. Returns false if the daemon is stopping.
    fn keep_up(&mut self, rt: &tokio::runtime::Runtime, stop: Option<&Shutdown>) -> bool {
        loop {
            if self.carried.elapsed() >= CARRY_EVERY {
                self.carry_out_archive(rt);
            }
            self.renew_claims(rt);
            if self.staged.len() < self.room {
                return true;
            }
            match stop {
                Some(stop) if !stop.wait_timeout(CARRY_EVERY) => {}
                _ => return false,
            }
        }
    }

    /// The store failed: say so (the log, the page), and wait longer before each next try.
    fn failed(&mut self, error: &str) {
        self.failures += 1;
        let wait = Duration::from_secs(1 << self.failures.min(6)).min(Duration::from_secs(60));
        self.pause_until = Some(Instant::now() + wait);
        log::warn!(
            "feed {}: {error}; nothing is lost (objects stay in the inbox), trying again in {wait:?}",
            self.feed.name
        );
        if let Some(c) = &self.counters {
            c.record(Event::InboxUnreachable {
                error: error.to_string(),
            });
        }
        self.last_error = Some(format!("feed {}: {error}", self.feed.name));
    }

    /// A listed object: claimed and downloaded if it is a data file of this feed that no stage
    /// holds (with a ready marker: once its marker is listed too, which follows it).
    fn consider(
        &mut self,
        rt: &tokio::runtime::Runtime,
        o: ObjectMeta,
        names: &std::collections::HashSet<String>,
    ) {
        let Some(name) = o.location.filename().map(str::to_string) else {
            return;
        };
        if crate::watch::inbox::is_temp_name(&name)
            || !crate::watch::inbox::has_feed_extension(&self.feed, &name)
            || self.staged.contains_key(&name)
            // The previous object of this name is still being archived here.
            || self.feed.processed.join(&name).exists()
            || self.feed.rejected.join(&name).exists()
        {
            return;
        }
        let marker = self
            .feed
            .ready_marker
            .as_ref()
            .map(|m| format!("{name}{m}"));
        if marker.as_ref().is_some_and(|m| !names.contains(m)) {
            return;
        }
        let claimed = match claim::take(rt, self, &name) {
            Ok(c) => c,
            Err(e) => {
                self.failed(&format!("claiming {name}: {e}"));
                return;
            }
        };
        let (since_ms, over) = match claimed {
            claim::Taken::No => return,
            claim::Taken::Fresh { since_ms } => (since_ms, None),
            claim::Taken::Over { from, since_ms } => (since_ms, Some(from)),
        };
        match self.download(rt, &o, &name, since_ms, over) {
            Ok(true) => {
                if let Some(m) = marker {
                    let key = self.inbox.clone().join(m.as_str());
                    let local = self.local_inbox().join(&m);
                    if let Err(e) = rt.block_on(object::download_marker(&*self.store, &key, &local))
                    {
                        log::warn!("feed {}: ready marker {m}: {e}", self.feed.name);
                    }
                }
            }
            Ok(false) => {}
            Err(e) => {
                let _ = rt.block_on(claim::release(self, &name));
                self.staged.remove(&name);
                self.failed(&format!("reading {name}: {e}"));
            }
        }
    }

    /// Downloads `o` into the local inbox (through a hidden temporary name, renamed when
    /// complete and flushed). Taken over from another daemon (`since`): an object whose content
    /// that daemon committed before it stopped is archived without being loaded again.
    /// Returns whether the object is now in the local inbox.
    fn download(
        &mut self,
        rt: &tokio::runtime::Runtime,
        o: &ObjectMeta,
        name: &str,
        since_ms: i64,
        taken_over_from: Option<String>,
    ) -> Result<bool, RemoteError> {
        let tmp = self.local_inbox().join(format!(".{name}.deltadrop-part"));
        let got =
            rt.block_on(self.renewing(name, since_ms, object::download(&*self.store, o, &tmp)))?;
        let Some(hash) = got else {
            // Changed or gone since the listing: the next listing says which.
            let _ = rt.block_on(claim::release(self, name));
            return Ok(false);
        };
        self.staged.insert(
            name.to_string(),
            Staged {
                since_ms,
                e_tag: o.e_tag.clone(),
                size: o.size,
                renewed: Instant::now(),
            },
        );
        if let Some(from) = taken_over_from {
            // A minute of slack for clocks that differ between daemons.
            let loaded = self
                .committed
                .contains_since(rt, &hash, since_ms - 60_000)
                .map_err(|e| RemoteError::Table(e.to_string()))?;
            if loaded {
                log::info!(
                    "feed {}: {name} was loaded by {from} before it stopped: archived, not loaded again",
                    self.feed.name
                );
                let to = self.feed.processed.join(name);
                std::fs::rename(&tmp, &to).map_err(|e| RemoteError::Local(to, e))?;
                if let Some(c) = &self.counters {
                    c.record(Event::FileDuplicate);
                }
                return Ok(false);
            }
        }
        let to = self.local_inbox().join(name);
        std::fs::rename(&tmp, &to).map_err(|e| RemoteError::Local(to, e))?;
        log::debug!(
            "feed {}: {name} claimed and read from the store",
            self.feed.name
        );
        Ok(true)
    }

    /// Runs `work` (a download: a large object takes longer than a lease), renewing the claim on
    /// `name` and on every staged object each third of the lease meanwhile.
    async fn renewing<T>(&self, name: &str, since_ms: i64, work: impl Future<Output = T>) -> T {
        let mut work = std::pin::pin!(work);
        loop {
            let tick = std::pin::pin!(tokio::time::sleep(self.remote.lease / 3));
            match futures_util::future::select(work.as_mut(), tick).await {
                Either::Left((done, _)) => return done,
                Either::Right(((), _)) => {
                    let staged = self.staged.iter().map(|(n, s)| (n.as_str(), s.since_ms));
                    for (n, since) in std::iter::once((name, since_ms)).chain(staged) {
                        if let Err(e) = claim::renew(self, n, since).await {
                            log::warn!("feed {}: renewing the claim on {n}: {e}", self.feed.name);
                        }
                    }
                }
            }
        }
    }

    /// Claims of objects still being worked on are renewed once a third of the lease is over.
    fn renew_claims(&mut self, rt: &tokio::runtime::Runtime) {
        let due: Vec<String> = self
            .staged
            .iter()
            .filter(|(_, s)| s.renewed.elapsed() > self.remote.lease / 3)
            .map(|(n, _)| n.clone())
            .collect();
        for name in due {
            let since = self.staged.get(&name).map_or(0, |s| s.since_ms);
            match rt.block_on(claim::renew(self, &name, since)) {
                Ok(()) => {
                    if let Some(s) = self.staged.get_mut(&name) {
                        s.renewed = Instant::now();
                    }
                }
                Err(e) => log::warn!("feed {}: renewing the claim on {name}: {e}", self.feed.name),
            }
        }
    }

    /// What the archive did with local copies, carried out in the store: each file in the
    /// local `processed/` and `rejected/` folders names an object of the inbox.
    fn carry_out_archive(&mut self, rt: &tokio::runtime::Runtime) {
        self.carried = Instant::now();
        for (dir, rejected) in [
            (self.feed.processed.clone(), false),
            (self.feed.rejected.clone(), true),
        ] {
            for name in local_files(&dir) {
                if name.ends_with(".error.txt") {
                    continue;
                }
                let local = dir.join(&name);
                let done = if rejected {
                    let reason = std::fs::read_to_string(dir.join(format!("{name}.error.txt")))
                        .unwrap_or_default();
                    rt.block_on(self.archive(&name, &local, Some(reason)))
                } else {
                    rt.block_on(self.archive(&name, &local, None))
                };
                match done {
                    Ok(()) => {
                        let _ = std::fs::remove_file(&local);
                        let _ = std::fs::remove_file(dir.join(format!("{name}.error.txt")));
                        self.staged.remove(&name);
                    }
                    Err(e) => {
                        self.failed(&format!("archiving {name}: {e}"));
                        return;
                    }
                }
            }
        }
    }

    /// The object `name` leaves the inbox: copied to `processed` (unless `on_success =
    /// "delete"`) or to `rejected` with its reason, then deleted, then its claim. An object
    /// replaced in the inbox since it was read (another ETag, or — read by an earlier run —
    /// other content than `local`, the copy that was loaded) is a new file: it stays.
    async fn archive(
        &self,
        name: &str,
        local: &Path,
        rejected: Option<String>,
    ) -> Result<(), RemoteError> {
        let key = self.inbox.clone().join(name);
        let current = match self.store.head(&key).await {
            Ok(m) => Some(m),
            Err(deltalake::logstore::object_store::Error::NotFound { .. }) => None,
            Err(e) => return Err(RemoteError::Store(object::describe(&e, &self.remote.inbox))),
        };
        let copy = object::LocalCopy::new(local);
        if let Some(current) = current {
            let replaced = match self.staged.get(name) {
                Some(s) => {
                    s.size != current.size
                        || !object::same_e_tag(s.e_tag.as_deref(), current.e_tag.as_deref())
                }
                None => !copy.is(&*self.store, &current).await?,
            };
            if replaced {
                log::info!(
                    "feed {}: {name} was replaced in {} after it was read: the bytes that were read are archived from here, the new object stays to be loaded",
                    self.feed.name,
                    self.remote.inbox
                );
                self.copy_out(None, name, &copy, rejected).await?;
            } else {
                log::debug!("feed {}: archiving {name} in the store", self.feed.name);
                self.copy_out(Some(&key), name, &copy, rejected).await?;
                object::delete(&*self.store, &key).await?;
                log::debug!("feed {}: {name} left the inbox", self.feed.name);
                if let Some(m) = &self.feed.ready_marker {
                    let marker = self.inbox.clone().join(format!("{name}{m}").as_str());
                    let _ = object::delete(&*self.store, &marker).await;
                }
            }
        }
        claim::release(self, name).await
    }

    /// The copy an archived object leaves: in `rejected` with its reason, in `processed`, or
    /// none (`on_success = "delete"`). `from`: the inbox object, copied within the store;
    /// None: it was replaced since it was read, and the bytes that were loaded are uploaded
    /// from the local copy.
    async fn copy_out(
        &self,
        from: Option<&Key>,
        name: &str,
        copy: &object::LocalCopy<'_>,
        rejected: Option<String>,
    ) -> Result<(), RemoteError> {
        let store = &*self.store;
        let prefix = match &rejected {
            Some(_) => &self.rejected,
            None if !self.remote.delete_on_success => &self.processed,
            None => return Ok(()),
        };
        let to = match from {
            Some(key) => object::copy_to_free_name(store, key, prefix, name, copy).await?,
            None => object::upload_to_free_name(store, prefix, name, copy).await?,
        };
        match rejected {
            Some(reason) => {
                let note = format!("{}.error.txt", to.filename().unwrap_or(name));
                object::put_text(store, &to, &note, &reason).await
            }
            None => Ok(()),
        }
    }
}

/// Why an object of a remote inbox was rejected, as the store keeps it (`NAME.error.txt` under
/// the `rejected` prefix, and its numbered copies'): what `inspect --file` shows once the local
/// copy is gone.
pub(crate) fn rejected_reasons(
    rt: &tokio::runtime::Runtime,
    feed: &FeedConfig,
    remote: &Remote,
    name: &str,
) -> Result<Vec<String>, RemoteError> {
    let (store, rejected) = object::store_for(&remote.rejected, &feed.storage_options)?;
    rt.block_on(object::rejected_reasons(&*store, &rejected, name))
        .map_err(|e| match e {
            RemoteError::Store(s) => RemoteError::Store(format!("{}: {s}", remote.rejected)),
            other => other,
        })
}

/// Regular files of a local folder, by name.
fn local_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    names
}
