//! The exactly-once sequence of one commit, top to bottom. Each step is a function with its
//! crash point at its edge (`crash_point`, compiled in for the tests only); what a crash at each
//! one leaves behind is settled by [`super::recover`] at the next start:
//!
//! 1. settle the previous commit if its outcome is unknown ([`Committer::resolve_unknown_outcome`]);
//! 2. screen the group: duplicates, re-sends, files changed since read ([`super::screen`]);
//! 3. write the data and quarantine Parquet files, uncommitted ([`super::prepare`]);
//! 4. write the intent (state: tmp → fsync → rename) — `after_intent`;
//! 5. the commit, create-if-absent at the next version — `after_commit`;
//! 6. record the files in the loaded index — `after_record`;
//! 7. the quarantine table's commit under the same txn — `after_quarantine_commit`;
//! 8. hand the files to the archive stage — `before_archive`, `during_archive`;
//! 9. report (counters, the log line, a checkpoint request: [`super::report`]).

use std::collections::HashMap;
use std::time::Instant;

use deltalake::kernel::Action;
use serde_json::{json, Value};

use super::change::{self, Planned};
use super::committer::Committer;
use super::crash_point;
use super::log::{Commit, CommitError};
use super::prepare::Pending;
use crate::job::ParsedFile;
use crate::state::{FileRecord, Intent};

/// A commit that landed: its version, and what it changed (a correction, an upsert).
pub(super) struct Landed {
    pub(super) version: i64,
    pub(super) change: Option<Planned>,
}

impl Committer {
    /// One commit of `group`, exactly once: the steps in the order of the module's list.
    pub(super) fn try_commit_group(
        &mut self,
        group: Vec<ParsedFile>,
        started: Instant,
    ) -> Result<(), CommitError> {
        if self.ledger.unresolved {
            self.resolve_unknown_outcome()?;
        }
        let files = self.screen(group);
        if files.is_empty() {
            return Ok(());
        }
        let mut pending = self.prepare(files)?;
        let txn = self.write_intent(&pending)?;
        let landed = self.land(&mut pending, txn)?;
        self.record(&pending, landed.version)?;
        self.commit_quarantine(&mut pending, txn);
        self.archive(&pending);
        self.report(&pending, &landed, started);
        Ok(())
    }

    /// Step 4: the commit about to be made, written down before it is attempted. Returns its
    /// txn version.
    fn write_intent(&mut self, p: &Pending) -> Result<i64, CommitError> {
        let txn = self.ledger.next_txn;
        let intent = Intent {
            app_id: self.feed.app_id.clone(),
            txn,
            files: p.records.clone(),
            quarantine: p.q_adds.clone(),
        };
        self.ledger.intent_done = false;
        self.ledger.state.write_intent(intent)?;
        crash_point("after_intent");
        Ok(txn)
    }

    /// Step 5: the commit — a blind append, or a change that replaces rows. An error whose
    /// outcome is unknown leaves the intent to be settled from the log before the next commit.
    fn land(&mut self, p: &mut Pending, txn: i64) -> Result<Landed, CommitError> {
        let result = if p.touch.is_empty() {
            let adds = std::mem::take(&mut p.adds);
            self.write_main_commit(adds, &p.records, txn, p.rows)
                .map(|version| (version, None))
        } else {
            self.write_change(p, txn)
                .map(|(version, planned)| (version, Some(planned)))
        };
        // The new rows were kept only for the change: free them before the next steps.
        p.new_rows = Vec::new();
        match result {
            Ok((version, change)) => {
                self.ledger.next_txn = txn + 1;
                crash_point("after_commit");
                Ok(Landed { version, change })
            }
            Err(e) => {
                if matches!(e, CommitError::Ambiguous(_)) {
                    // The commit may have landed even though we got an error: until the log
                    // says otherwise, its outcome is unknown.
                    self.ledger.unresolved = true;
                }
                Err(e)
            }
        }
    }

    /// Step 6: the files' contents and names are loaded (what makes them duplicates from now on).
    fn record(&mut self, p: &Pending, version: i64) -> Result<(), CommitError> {
        self.ledger.state.record_loaded(&p.records, version)?;
        crash_point("after_record");
        Ok(())
    }

    /// Step 7: the bad rows, committed to the quarantine table under the same txn. A failure
    /// loses nothing — the rows are in the intent — and is retried before the next commit (and
    /// at the next start).
    fn commit_quarantine(&mut self, p: &mut Pending, txn: i64) {
        if p.q_adds.is_empty() {
            return;
        }
        let q_adds = std::mem::take(&mut p.q_adds);
        let t = &mut self.tables;
        if let Err(e) = t.quarantine.commit(&t.rt, q_adds, txn, p.bad) {
            log::error!(
                "feed {}: quarantine commit of txn {txn} failed, retried later: {e}",
                self.feed.name
            );
            self.ledger.unresolved = true;
        }
        crash_point("after_quarantine_commit");
    }

    /// Step 8: every file leaves the inbox. On a failure to move one, its rows are committed and
    /// recorded: it is a duplicate from now on.
    fn archive(&mut self, p: &Pending) {
        crash_point("before_archive");
        for rec in &p.records {
            self.ctx.archive.committed(rec);
            crash_point("during_archive");
        }
        self.ledger.intent_done = !self.ledger.unresolved;
    }

    /// A blind append of the new data files.
    fn write_main_commit(
        &mut self,
        adds: Vec<deltalake::kernel::Add>,
        files: &[FileRecord],
        txn: i64,
        rows: u64,
    ) -> Result<i64, CommitError> {
        let mut app_metadata = self.commit_metadata(files, txn, rows, None);
        app_metadata.insert("isBlindAppend".to_string(), json!(true));
        let actions = adds.into_iter().map(Action::Add).collect();
        let commit = Commit::append(actions, app_metadata, &self.feed.app_id, txn);
        self.tables.log.commit(&self.tables.rt, commit)
    }

    /// A commit that replaces rows: the new rows (rows of streamed files read back first) and
    /// the change planned against the table ([`Committer::commit_change`]).
    fn write_change(&mut self, p: &mut Pending, txn: i64) -> Result<(i64, Planned), CommitError> {
        if !p.streamed.is_empty() {
            let t = &self.tables;
            let rows = change::rows_of(&t.rt, &t.table, &p.streamed).map_err(CommitError::read)?;
            p.new_rows.extend(rows);
        }
        let touch = std::mem::take(&mut p.touch);
        let adds = std::mem::take(&mut p.adds);
        self.commit_change(adds, touch, p, txn)
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
}
