//! The committer of one feed: the only writer of its commits. It takes parsed files from the
//! workers, groups every file ready at the same moment into one commit, and makes it exactly
//! once: intent (state) → Parquet → commit (flat log path) → loaded index → quarantine commit
//! → files handed to the archive stage. It also grows the table's schema when a file brings new
//! columns (`on_new_column = "add"`).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::Receiver;
use deltalake::kernel::Action;
use deltalake::protocol::DeltaOperation;
use deltalake::writer::RecordBatchWriter;
use deltalake::{DeltaTable, DeltaTableError};

use super::change;
use super::files::FileIndex;
use super::log::{Commit, CommitError, Log};
use super::open::FeedTables;
use super::quarantine::Quarantine;
use super::table::{txn_version, writer_for};
use super::DeltaError;
use crate::archive::Archive;
use crate::config::{FeedConfig, OnResend};
use crate::counters::Event;
use crate::job::{Board, CommitMsg, FeedId, NewColumns, ParsedFile, TableInfo};
use crate::schema::TableSchema;
use crate::shutdown::Shutdown;
use crate::state::FeedState;

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
    /// The feed's two tables and how this committer writes them.
    pub(super) tables: Tables,
    /// What makes each commit exactly once: the local state and the next txn version.
    pub(super) ledger: Ledger,
    /// Failed commit attempts in a row (the backoff grows with them).
    failures: u32,
}

/// The feed's tables, as this committer writes them.
pub(super) struct Tables {
    pub(super) rt: tokio::runtime::Runtime,
    pub(super) table: DeltaTable,
    /// The flat commit path of `table`: the version this committer knows.
    pub(super) log: Log,
    /// The data columns this feed writes (for `infer`: as fixed at table creation).
    pub(super) schema: TableSchema,
    /// Parquet files of the commit being made, not yet committed.
    pub(super) writer: RecordBatchWriter,
    pub(super) quarantine: Quarantine,
}

/// The exactly-once bookkeeping of a committer.
pub(super) struct Ledger {
    /// The intent, the loaded index (which contents and names were committed).
    pub(super) state: FeedState,
    /// The txn version the next commit will carry (both tables use the same one).
    pub(super) next_txn: i64,
    /// A previous commit attempt failed in a way that leaves its outcome unknown, or its
    /// quarantine half is still to be written.
    pub(super) unresolved: bool,
    /// The recorded intent's commit is complete (landed, recorded, quarantined, archived): a
    /// clean stop clears it, so the next start has nothing to settle.
    pub(super) intent_done: bool,
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
            tables: Tables {
                rt,
                table,
                log,
                schema,
                writer,
                quarantine,
            },
            ledger: Ledger {
                state,
                next_txn: table_txn.unwrap_or(0) + 1,
                unresolved: false,
                intent_done: false,
            },
            failures: 0,
        };
        c.settle_intent(table_txn)?;
        c.ctx.archive.counters().record(Event::TableAt {
            version: c.tables.log.version,
        });
        log::info!(
            "feed {}: table {} at version {}, next txn {} (app id {}), {} file(s) known loaded",
            c.feed.name,
            c.feed.table_url,
            c.tables.log.version,
            c.ledger.next_txn,
            c.feed.app_id,
            c.ledger.state.loaded_count()
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
        if self.ledger.unresolved {
            if let Err(e) = self.resolve_unknown_outcome() {
                log::error!(
                    "feed {}: {e}; it is retried at the next start",
                    self.feed.name
                );
            }
        }
        if result.is_ok() && self.ledger.intent_done {
            // Nothing is left to settle: the next start must not read this commit as one a
            // crash interrupted.
            if let Err(e) = self.ledger.state.clear_intent() {
                log::warn!("feed {}: {e}", self.feed.name);
            }
        }
        log::debug!(
            "feed {}: committer stopped at version {}",
            self.feed.name,
            self.tables.log.version
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
        self.tables.writer = writer_for(&self.tables.table)?;
        self.tables.quarantine.fresh_writer()
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
            self.ledger.unresolved = self.ledger.state.intent().is_some();
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

    /// `on_new_column = "add"`: grows the table by the columns it lacks (nullable), in a
    /// metadata-only commit, publishes the new schema on the board, and lets the file be taken
    /// again.
    fn add_columns(&mut self, nc: NewColumns) -> Result<(), CommitError> {
        let new: Vec<_> = nc
            .columns
            .into_iter()
            .filter(|c| self.tables.schema.position(&c.name).is_none())
            .collect();
        if !new.is_empty() {
            let mut schema = self.tables.schema.clone();
            schema.columns.extend(new.iter().cloned());
            let snapshot = self.tables.table.snapshot().map_err(CommitError::read)?;
            let metadata = super::mapping::grown_metadata(snapshot, &schema.arrow())
                .map_err(|e| CommitError::write(super::failed("schema", e)))?;
            let kernel = metadata
                .parse_schema()
                .map_err(|e| CommitError::write(super::failed("schema", e)))?;
            let added: Vec<_> = kernel
                .fields()
                .filter(|f| new.iter().any(|c| c.shown() == f.name()))
                .cloned()
                .collect();
            let v = self.tables.log.commit(
                &self.tables.rt,
                Commit::other(
                    vec![Action::Metadata(metadata)],
                    DeltaOperation::AddColumn { fields: added },
                    HashMap::new(),
                ),
            )?;
            // Reload so that writers are built for the new schema.
            self.tables
                .rt
                .block_on(self.tables.table.load())
                .map_err(CommitError::read)?;
            self.tables.writer =
                writer_for(&self.tables.table).map_err(|e| CommitError::Fatal(Box::new(e)))?;
            let arrow = super::table::table_arrow_schema(&self.tables.table)
                .map_err(|e| CommitError::Fatal(Box::new(e)))?;
            self.tables.schema = super::table::named_as_table(schema, &arrow);
            {
                let mut b = self.ctx.board.write().unwrap_or_else(|e| e.into_inner());
                let id = self.ctx.feed_id;
                let generation = b[id].generation + 1;
                b[id] = TableInfo {
                    schema: self.tables.schema.clone(),
                    table: self.tables.table.clone(),
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
