//! The committer of one feed: the only writer of its commits. It takes parsed files from the
//! workers, groups every file ready at the same moment into one commit, and makes it exactly
//! once: intent (state) → Parquet → commit (flat log path) → loaded index → quarantine commit
//! → files handed to the archive stage. It also grows the table's schema when a file brings new
//! columns (`on_new_column = "add"`).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::Receiver;
use deltalake::kernel::engine::arrow_conversion::TryIntoKernel;
use deltalake::kernel::{Action, Add, MetadataExt, StructType};
use deltalake::protocol::DeltaOperation;
use deltalake::writer::{DeltaWriter, RecordBatchWriter};
use deltalake::{DeltaTable, DeltaTableError};
use serde_json::{json, Value};

use super::change;
use super::files::FileIndex;
use super::log::{Commit, CommitError, Log};
use super::open::FeedTables;
use super::quarantine::{Quarantine, QuarantineRows};
use super::table::{conform, txn_version, writer_for};
use super::{crash_point, DeltaError};
use crate::archive::Archive;
use crate::config::{FeedConfig, OnResend};
use crate::counters::Event;
use crate::job::{Board, CommitMsg, FeedId, FileData, NewColumns, ParsedFile, TableInfo};
use crate::schema::TableSchema;
use crate::shutdown::Shutdown;
use crate::state::{FeedState, FileRecord, Intent};

/// Everything around a committer: where it publishes schema changes, where its files end,
/// and the signal it stops the pipeline with when its table cannot be written any more.
pub struct CommitterContext {
    /// This feed's index in the board (and in the workers' feed list).
    pub feed_id: FeedId,
    pub board: Board,
    pub archive: Archive,
    pub shutdown: Shutdown,
    /// This committer's beat of the systemd watchdog: its loop must keep going round.
    pub alive: crate::service::Beat,
    /// Where checkpoints are asked for (one thread for every feed).
    pub checkpoints: super::checkpoint::Checkpointer,
}

pub struct Committer {
    pub(super) feed: Arc<FeedConfig>,
    pub(super) ctx: CommitterContext,
    /// The data columns this feed writes (for `infer`: as fixed at table creation).
    schema: TableSchema,
    pub(super) rt: tokio::runtime::Runtime,
    pub(super) table: DeltaTable,
    pub(super) log: Log,
    writer: RecordBatchWriter,
    pub(super) quarantine: Quarantine,
    /// The txn version the next commit will carry (both tables use the same one).
    pub(super) next_txn: i64,
    pub(super) state: FeedState,
    /// A previous commit attempt failed in a way that leaves its outcome unknown, or its
    /// quarantine half is still to be written.
    pub(super) unresolved: bool,
    /// The recorded intent's commit is complete (landed, recorded, quarantined, archived): a
    /// clean stop clears it, so the next start has nothing to settle.
    intent_done: bool,
    failures: u32,
}

impl Committer {
    /// Takes over a feed's open tables and settles what a previous run left unfinished: an
    /// intent whose commit landed has its files archived (and its quarantine rows committed if
    /// they were not); one that did not is dropped (its files are still in the inbox).
    pub fn start(
        feed: Arc<FeedConfig>,
        tables: FeedTables,
        state: FeedState,
        ctx: CommitterContext,
    ) -> Result<Committer, DeltaError> {
        let FeedTables {
            rt,
            table,
            schema,
            quarantine,
        } = tables;
        let mut table = table;
        let mut log = Log::new(&table);
        if feed.mutable() {
            change::prepare(&rt, &mut table, &mut log, &feed)?;
            log.index = Some(
                FileIndex::from_table(&table, &feed.merge_key)
                    .map_err(super::table_err(table.table_url()))?,
            );
        }
        let writer = writer_for(&table)?;
        let quarantine = Quarantine::new(quarantine, &feed)?;
        let table_txn = txn_version(&rt, &table, &feed.app_id)?;
        let mut c = Committer {
            feed,
            ctx,
            schema,
            rt,
            table,
            log,
            writer,
            quarantine,
            next_txn: table_txn.unwrap_or(0) + 1,
            state,
            unresolved: false,
            intent_done: false,
            failures: 0,
        };
        c.settle_intent(table_txn)?;
        c.ctx.archive.counters().record(Event::TableAt {
            version: c.log.version,
        });
        log::info!(
            "feed {}: table {} at version {}, next txn {} (app id {}), {} file(s) known loaded",
            c.feed.name,
            c.feed.table_url,
            c.log.version,
            c.next_txn,
            c.feed.app_id,
            c.state.loaded_count()
        );
        Ok(c)
    }

    /// Runs until the channel closes (every worker is done), then returns. A fatal error (the
    /// table changed under us) stops this committer and the pipeline; it is returned too.
    pub fn run(mut self, rx: Receiver<CommitMsg>) -> Result<(), DeltaError> {
        let result = self.commit_loop(&rx);
        if let Err(e) = &result {
            log::error!("feed {}: {e}", self.feed.name);
            self.ctx
                .archive
                .counters()
                .record(Event::State(crate::counters::RunState::Stopped(
                    e.to_string(),
                )));
            self.ctx.shutdown.trigger();
            // Drain so that workers blocked on this channel can finish; their files stay in
            // the inbox.
            for msg in rx.iter() {
                match msg {
                    CommitMsg::File(f) => self.ctx.archive.leave(&f.job.path),
                    CommitMsg::AddColumns(nc) => {
                        let _ = nc.done.send(false);
                    }
                }
            }
        }
        // A quarantine commit still owed (its table was down): one last try before exiting.
        if self.unresolved {
            if let Err(e) = self.resolve_unknown_outcome() {
                log::error!(
                    "feed {}: {e}; it is retried at the next start",
                    self.feed.name
                );
            }
        }
        if result.is_ok() && self.intent_done {
            // Nothing is left to settle: the next start must not read this commit as one a
            // crash interrupted.
            if let Err(e) = self.state.clear_intent() {
                log::warn!("feed {}: {e}", self.feed.name);
            }
        }
        log::debug!(
            "feed {}: committer stopped at version {}",
            self.feed.name,
            self.log.version
        );
        result
    }

    /// Groups and commits what the workers send until the channel closes; a fatal error ends
    /// it.
    fn commit_loop(&mut self, rx: &Receiver<CommitMsg>) -> Result<(), DeltaError> {
        let mut pending_schema: Option<Box<NewColumns>> = None;
        // A correction of a name that is already in the group waits for the next commit, so
        // that it replaces the version before it.
        let mut carried: Option<Box<ParsedFile>> = None;
        let replace = self.feed.on_resend == OnResend::Replace;
        while let Some(first) = match (carried.take(), pending_schema.take()) {
            (Some(f), nc) => {
                pending_schema = nc;
                Some(CommitMsg::File(f))
            }
            (None, Some(nc)) => Some(CommitMsg::AddColumns(nc)),
            (None, None) => self.next_msg(rx),
        } {
            let f = match first {
                CommitMsg::File(f) => f,
                CommitMsg::AddColumns(nc) => {
                    let done = nc.done.clone();
                    if let Err(e) = self.add_columns(*nc) {
                        let _ = done.send(false);
                        log::error!("feed {}: cannot add columns: {e}", self.feed.name);
                        if let CommitError::Fatal(e) = e {
                            return Err(*e);
                        }
                    }
                    continue;
                }
            };
            let mut group = Vec::new();
            let mut rows = f.rows;
            let mut names = HashSet::new();
            if replace {
                names.insert(f.job.name());
            }
            group.push(*f);
            // Everything ready right now shares this commit, within the bounds.
            while group.len() < self.feed.max_files_per_commit
                && rows < self.feed.max_rows_per_commit
                && pending_schema.is_none()
            {
                match rx.try_recv() {
                    Ok(CommitMsg::File(f)) => {
                        if replace && !names.insert(f.job.name()) {
                            carried = Some(f);
                            break;
                        }
                        rows += f.rows;
                        group.push(*f);
                    }
                    Ok(CommitMsg::AddColumns(nc)) => {
                        pending_schema = Some(nc);
                        break;
                    }
                    Err(_) => break,
                }
            }
            self.commit_group(group)?;
        }
        Ok(())
    }

    /// The next message, or None once every worker is done. With a systemd watchdog, the wait
    /// wakes every tick to beat it.
    fn next_msg(&self, rx: &Receiver<CommitMsg>) -> Option<CommitMsg> {
        let alive = &self.ctx.alive;
        loop {
            alive.beat();
            match alive.tick() {
                None => return rx.recv().ok(),
                Some(tick) => match rx.recv_timeout(tick) {
                    Ok(m) => return Some(m),
                    Err(crossbeam_channel::RecvTimeoutError::Timeout) => continue,
                    Err(crossbeam_channel::RecvTimeoutError::Disconnected) => return None,
                },
            }
        }
    }

    fn fresh_writers(&mut self) -> Result<(), DeltaError> {
        self.writer = writer_for(&self.table)?;
        self.quarantine.fresh_writer()
    }

    /// One commit of `group`; a failure that may pass gives the files back for a retry after a
    /// backoff (the error is returned only when it is fatal).
    fn commit_group(&mut self, group: Vec<ParsedFile>) -> Result<(), DeltaError> {
        let started = Instant::now();
        let paths: Vec<_> = group.iter().map(|f| f.job.path.clone()).collect();
        // A panic in a dependency is a failed attempt, not a dead committer.
        let attempt = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.try_commit_group(group, started)
        }))
        .unwrap_or_else(|_| {
            // The outcome of a commit interrupted by a panic is unknown: check the log first.
            self.unresolved = self.state.intent().is_some();
            Err(CommitError::write(DeltaTableError::Generic(
                "internal error (panic) during the commit".into(),
            )))
        });
        match attempt {
            Ok(()) => {
                self.failures = 0;
                Ok(())
            }
            Err(CommitError::Fatal(e)) => {
                for p in &paths {
                    self.ctx.archive.leave(p);
                }
                Err(*e)
            }
            Err(e) => {
                self.failures += 1;
                let delay = crate::tracker::backoff(self.failures);
                log::error!(
                    "feed {}: commit failed, {} file(s) stay in the inbox and are retried: {e}",
                    self.feed.name,
                    paths.len()
                );
                self.ctx.archive.counters().record(Event::CommitFailed {
                    error: e.to_string(),
                });
                // Fresh writers (not `reset()`: it panics after a failed flush).
                if let Err(e) = self.fresh_writers() {
                    log::error!("feed {}: {e}", self.feed.name);
                }
                for p in &paths {
                    self.ctx.archive.retry(p);
                }
                // Do not hammer a broken table: the channel fills and workers wait meanwhile.
                self.ctx.alive.sleep(delay);
                Ok(())
            }
        }
    }

    fn try_commit_group(
        &mut self,
        group: Vec<ParsedFile>,
        started: Instant,
    ) -> Result<(), CommitError> {
        if self.unresolved {
            self.resolve_unknown_outcome()?;
        }
        let files = self.set_duplicates_apart(group);
        let mut files = self.set_changed_apart(files);
        if files.is_empty() {
            return Ok(());
        }

        // Upserts: the last row of each key in this commit (file order, then line order).
        let (duplicates, keys) = self.last_rows(&mut files)?;
        let touch = self.touch(&files, keys);
        let mut new_rows = Vec::new();
        let mut streamed: Vec<Add> = Vec::new();

        let mut adds: Vec<Add> = Vec::new();
        let mut records = Vec::with_capacity(files.len());
        let (mut rows, mut bad, mut warned) = (0u64, 0u64, 0u64);
        let mut buffered = false;
        let oldest = files.iter().map(|f| f.started).min().unwrap_or(started);
        let ingested_at = chrono::Utc::now().timestamp_micros();
        let mut q_rows = QuarantineRows::new(&self.feed.name, ingested_at);
        for f in files.iter_mut() {
            match std::mem::replace(&mut f.data, FileData::Written(Vec::new())) {
                FileData::Batches(batches) => {
                    let target = self.writer.arrow_schema();
                    for b in batches {
                        // Parsed before a schema change: the new columns are null.
                        let b = conform(b, &target).map_err(CommitError::write)?;
                        if !touch.is_empty() {
                            new_rows.push(b.clone());
                        }
                        self.rt
                            .block_on(self.writer.write(b))
                            .map_err(CommitError::write)?;
                        buffered = true;
                    }
                    // Rows that can change get a data file per source file: a correction then
                    // removes its earlier version's files whole instead of rewriting files it
                    // shares, and each file's key range stays that of one export.
                    if buffered && self.feed.mutable() {
                        adds.extend(
                            self.rt
                                .block_on(self.writer.flush())
                                .map_err(CommitError::write)?,
                        );
                        buffered = false;
                    }
                }
                FileData::Written(a) => {
                    if !touch.is_empty() {
                        streamed.extend(a.iter().cloned());
                    }
                    adds.extend(a)
                }
            }
            let name = f.job.name();
            q_rows.extend(&name, &f.hash, &f.bad);
            rows += f.rows;
            bad += f.bad.len() as u64;
            warned += f.warned;
            records.push(FileRecord {
                name,
                path: f.job.path.clone(),
                size: f.size,
                hash: f.hash.clone(),
                rows: f.rows,
                bad_rows: f.bad.len() as u64,
                warned_rows: f.warned,
                dialect: Some(std::mem::take(&mut f.dialect)),
            });
        }
        if buffered {
            adds.extend(
                self.rt
                    .block_on(self.writer.flush())
                    .map_err(CommitError::write)?,
            );
        }
        let q_adds = self.quarantine.write(&self.rt, q_rows)?;

        let txn = self.next_txn;
        let intent = Intent {
            app_id: self.feed.app_id.clone(),
            txn,
            files: records.clone(),
            quarantine: q_adds.clone(),
        };
        self.intent_done = false;
        self.state.write_intent(intent)?;
        crash_point("after_intent");
        let committed = if touch.is_empty() {
            self.write_main_commit(adds, &records, txn, rows)
                .map(|v| (v, None))
        } else {
            if !streamed.is_empty() {
                new_rows.extend(
                    change::rows_of(&self.rt, &self.table, &streamed).map_err(CommitError::read)?,
                );
            }
            self.commit_change(adds, &new_rows, touch, &records, txn, rows, &duplicates)
                .map(|(v, p)| (v, Some(p)))
        };
        drop(new_rows);
        let (version, changed) = match committed {
            Ok(v) => v,
            Err(e) => {
                if matches!(e, CommitError::Ambiguous(_)) {
                    // The commit may have landed even though we got an error: until the log
                    // says otherwise, its outcome is unknown.
                    self.unresolved = true;
                }
                return Err(e);
            }
        };
        self.next_txn = txn + 1;
        crash_point("after_commit");
        self.state.record_loaded(&records, version)?;
        crash_point("after_record");
        if !q_adds.is_empty() {
            if let Err(e) = self.quarantine.commit(&self.rt, q_adds, txn, bad) {
                // The rows are safe in the intent; the quarantine half is retried before the
                // next commit (and at the next start).
                log::error!(
                    "feed {}: quarantine commit of txn {txn} failed, retried later: {e}",
                    self.feed.name
                );
                self.unresolved = true;
            }
            crash_point("after_quarantine_commit");
        }

        crash_point("before_archive");
        for rec in &records {
            // On failure the rows are committed and recorded: the file is a duplicate from now on.
            self.ctx.archive.committed(rec);
            crash_point("during_archive");
        }
        self.intent_done = !self.unresolved;
        let counters = self.ctx.archive.counters();
        counters.record(Event::Commit {
            took: started.elapsed(),
            version,
            files: files.len() as u64,
            rows,
            quarantined: bad,
        });
        if bad > 0 {
            counters.record(Event::BadRows(latest_bad_rows(&files)));
        }
        let mut changes = Vec::new();
        if let Some(p) = &changed {
            changes.push(format!(
                "replaced {} earlier row(s) ({} file(s) removed, {} rewritten), {} key(s) updated",
                p.removed_rows,
                p.removed_files,
                p.rewritten_files,
                p.updated_keys.len()
            ));
        }
        let dups: u64 = duplicates.iter().sum();
        if dups > 0 {
            changes.push(format!(
                "{dups} row(s) with a key repeated later in the commit (the last wins)"
            ));
        }
        let changes = match changes.is_empty() {
            true => String::new(),
            false => format!("; {}", changes.join(", ")),
        };
        log::info!(
            "feed {}: committed version {version}: {} file(s), {rows} rows, {bad} quarantined, {warned} warned{changes}, in {} ms (first file taken {} ms ago)",
            self.feed.name,
            files.len(),
            started.elapsed().as_millis(),
            oldest.elapsed().as_millis()
        );
        if version % self.feed.checkpoint_interval as i64 == 0 {
            self.ctx
                .checkpoints
                .request(&self.feed, self.ctx.archive.counters(), version);
        }
        Ok(())
    }

    /// Files whose content is already loaded, or twice in this group (`dedupe`), go to the
    /// archive stage as duplicates; the others are returned.
    fn set_duplicates_apart(&self, group: Vec<ParsedFile>) -> Vec<ParsedFile> {
        let mut seen = HashSet::new();
        let mut files = Vec::with_capacity(group.len());
        for f in group {
            let loaded = self.state.loaded(&f.hash);
            let dup = self.feed.dedupe && (loaded.is_some() || !seen.insert(f.hash.clone()));
            if !dup {
                if self.resent_and_rejected(&f) {
                    continue;
                }
                files.push(f);
                continue;
            }
            let known = loaded
                .map(|l| format!("'{}' in version {}", l.name, l.version))
                .unwrap_or_else(|| "another file of this batch".to_string());
            self.ctx.archive.duplicate(&f.job.path, &known);
        }
        files
    }

    /// A file whose name was loaded before with other content (`on_resend`): rejected (true),
    /// or loaded as new rows with a warning naming the earlier version.
    fn resent_and_rejected(&self, f: &ParsedFile) -> bool {
        let name = f.job.name();
        let Some(earlier) = self.state.loaded_before(&name, &f.hash) else {
            return false;
        };
        match self.feed.on_resend {
            OnResend::Append => {
                log::warn!(
                    "feed {}: {name} was loaded before with other content ({} rows in version {}); its rows are added as new rows (on_resend = \"append\"; \"reject\" refuses such files)",
                    self.feed.name,
                    earlier.rows,
                    earlier.version
                );
                false
            }
            OnResend::Replace => {
                log::info!(
                    "feed {}: {name} is a correction: it replaces the {} rows its earlier version loaded in version {} (on_resend = \"replace\")",
                    self.feed.name,
                    earlier.rows,
                    earlier.version
                );
                false
            }
            OnResend::Reject => {
                let reason = format!(
                    "{name} was loaded before with other content ({} rows in version {} of the table); not loaded again under the same name (on_resend = \"reject\"): send a correction under a new name, or set on_resend = \"append\" to add its rows",
                    earlier.rows, earlier.version
                );
                self.ctx.archive.reject(&f.job.path, &reason);
                true
            }
        }
    }

    /// Files that changed since they were read (a writer came back to them) are not committed:
    /// they go back to be read again. Size and modification time tell; where the check while
    /// reading was only `settle` and the modification time is too recent to trust (filesystems
    /// that keep whole seconds), the content hash tells.
    fn set_changed_apart(&self, files: Vec<ParsedFile>) -> Vec<ParsedFile> {
        let mut keep = Vec::with_capacity(files.len());
        for f in files {
            let Ok(now) = std::fs::symlink_metadata(&f.job.path) else {
                // Gone (a producer took it back): what was read was whole; nothing to archive.
                keep.push(f);
                continue;
            };
            let mut changed = now.len() != f.stamp.0 || now.modified().ok() != f.stamp.1;
            let recent = f
                .stamp
                .1
                .and_then(|m| m.elapsed().ok())
                .is_none_or(|age| age < std::time::Duration::from_secs(2));
            if !changed && recent && f.dialect.writer_check != crate::job::WriterCheck::Lease {
                changed = !crate::archive::same_content(&f.job.path, &f.hash);
            }
            if changed {
                let d = self.ctx.archive.retry(&f.job.path);
                log::info!(
                    "feed {}: {} changed after it was read (its writer came back?); read again in {d:?}",
                    self.feed.name,
                    f.job.name()
                );
            } else {
                keep.push(f);
            }
        }
        keep
    }

    fn write_main_commit(
        &mut self,
        adds: Vec<Add>,
        files: &[FileRecord],
        txn: i64,
        rows: u64,
    ) -> Result<i64, CommitError> {
        let mut app_metadata = self.commit_metadata(files, txn, rows, None);
        app_metadata.insert("isBlindAppend".to_string(), json!(true));
        let actions = adds.into_iter().map(Action::Add).collect();
        let commit = Commit::append(actions, app_metadata, &self.feed.app_id, txn);
        self.log.commit(&self.rt, commit)
    }

    /// The commit's `deltadrop` entry in commitInfo: the feed, its txn, and every file with
    /// its counts (what `inspect` and a restart read back); `change` for a commit that
    /// changes rows.
    pub(super) fn commit_metadata(
        &self,
        files: &[FileRecord],
        txn: i64,
        rows: u64,
        change: Option<Value>,
    ) -> HashMap<String, Value> {
        let files_meta: Vec<Value> = files
            .iter()
            .map(|f| {
                json!({"name": f.name, "size": f.size, "hash": f.hash, "rows": f.rows,
                       "badRows": f.bad_rows, "warnedRows": f.warned_rows,
                       "dialect": f.dialect})
            })
            .collect();
        let mut app_metadata = HashMap::new();
        app_metadata.insert(
            "deltadrop".to_string(),
            json!({
                "feed": self.feed.name,
                "appId": self.feed.app_id,
                "txn": txn,
                "rows": rows,
                "badRows": files.iter().map(|f| f.bad_rows).sum::<u64>(),
                "warnedRows": files.iter().map(|f| f.warned_rows).sum::<u64>(),
                "files": files_meta,
                "change": change,
            }),
        );
        app_metadata
    }

    /// `on_new_column = "add"`: grows the table by the columns it lacks (nullable), in a
    /// metadata-only commit, publishes the new schema on the board, and lets the file be taken
    /// again.
    fn add_columns(&mut self, nc: NewColumns) -> Result<(), CommitError> {
        let new: Vec<_> = nc
            .columns
            .into_iter()
            .filter(|c| self.schema.position(&c.name).is_none())
            .collect();
        if !new.is_empty() {
            let mut schema = self.schema.clone();
            schema.columns.extend(new.iter().cloned());
            let kernel: StructType = schema
                .arrow()
                .as_ref()
                .try_into_kernel()
                .map_err(|e| CommitError::write(super::failed("schema", e)))?;
            let snapshot = self.table.snapshot().map_err(CommitError::read)?;
            let metadata = snapshot
                .metadata()
                .clone()
                .with_schema(&kernel)
                .map_err(|e| CommitError::write(super::failed("schema", e)))?;
            let added: Vec<_> = kernel
                .fields()
                .filter(|f| new.iter().any(|c| &c.name == f.name()))
                .cloned()
                .collect();
            let v = self.log.commit(
                &self.rt,
                Commit::other(
                    vec![Action::Metadata(metadata)],
                    DeltaOperation::AddColumn { fields: added },
                    HashMap::new(),
                ),
            )?;
            // Reload so that writers are built for the new schema.
            self.rt
                .block_on(self.table.load())
                .map_err(CommitError::read)?;
            self.writer = writer_for(&self.table).map_err(|e| CommitError::Fatal(Box::new(e)))?;
            self.schema = schema;
            {
                let mut b = self.ctx.board.write().unwrap_or_else(|e| e.into_inner());
                let id = self.ctx.feed_id;
                let generation = b[id].generation + 1;
                b[id] = TableInfo {
                    schema: self.schema.clone(),
                    table: self.table.clone(),
                    generation,
                };
            }
            log::info!(
                "feed {}: {} brought new column(s) {}; table evolved at version {v}",
                self.feed.name,
                nc.job.name(),
                new.iter()
                    .map(|c| format!("{} {}", c.name, c.ty))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        // The worker takes the file again right away, now that the table has the columns.
        let _ = nc.done.send(true);
        Ok(())
    }
}

/// The last bad rows of a commit (at most what the page keeps), oldest first.
fn latest_bad_rows(files: &[ParsedFile]) -> Vec<crate::counters::BadRowSeen> {
    let mut rows: Vec<_> = files
        .iter()
        .rev()
        .flat_map(|f| {
            let name = f.job.name();
            f.bad.iter().rev().map(move |b| {
                crate::counters::BadRowSeen::new(
                    &name,
                    b.line,
                    b.column.as_deref(),
                    &b.error,
                    &b.raw,
                )
            })
        })
        .take(crate::counters::recent::LATEST)
        .collect();
    rows.reverse();
    rows
}
