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
        self.report(&pending, landed.version, landed.change.as_ref(), started);
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
        // (records and files are in the same order: `Pending::count`)
        for (rec, f) in p.records.iter().zip(&p.files) {
            self.ctx.archive.committed(rec, f.stamp);
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

/// The sequence on real tables in a temporary folder: what each commit leaves in the table,
/// the state, the inbox and the counters. (What a crash between two steps leaves is tested in
/// `recover`, and by the crash runs of the integration tests.)
#[cfg(test)]
mod tests {
    use super::*;
    use crate::delta::testing::*;

    #[test]
    fn a_commit_lands_records_archives_and_counts_its_files() {
        let s = site();
        let mut c = start(&s).unwrap();
        let a = parsed(&s, &c, "a.csv", &sales(&["a-1", "a-2"], "1.00"));
        let b = parsed(&s, &c, "b.csv", &sales(&["b-1"], "1.00"));
        let hash = a.hash.clone();
        c.try_commit_group(vec![a, b], Instant::now()).unwrap();
        assert_eq!(c.tables.log.version, 1, "one commit for the group");
        assert_eq!(c.ledger.next_txn, 2);
        assert_eq!(rows_in(&c, &s.feed.table_url), 3);
        assert_eq!(c.ledger.state.loaded(&hash).map(|l| l.version), Some(1));
        assert!(c.ledger.intent_done && !c.ledger.unresolved);
        assert!(in_processed(&s, "a.csv") && !in_inbox(&s, "a.csv"));
        assert!(in_processed(&s, "b.csv"));
        let n = c.ctx.archive.counters().snapshot();
        assert_eq!((n.files_committed, n.rows_committed), (2, 3));
    }

    #[test]
    fn a_file_renamed_over_the_name_after_its_commit_stays_in_the_inbox() {
        let s = site();
        let c = start(&s).unwrap();
        let a = parsed(&s, &c, "a.csv", &sales(&["a-1"], "1.00"));
        let rec = FileRecord {
            name: "a.csv".into(),
            path: a.job.path.clone(),
            size: a.size,
            hash: a.hash.clone(),
            rows: a.rows,
            bad_rows: 0,
            warned_rows: 0,
            dialect: None,
        };
        // A producer re-sends the name after the commit's last look (a new file renamed in).
        let new = sales(&["a-1", "a-2"], "2.00");
        let staged = a.job.path.with_extension("tmp");
        std::fs::write(&staged, &new).unwrap();
        std::fs::rename(&staged, &a.job.path).unwrap();
        c.ctx.archive.committed(&rec, a.stamp);
        assert!(in_inbox(&s, "a.csv") && !in_processed(&s, "a.csv"));
        assert_eq!(std::fs::read_to_string(&a.job.path).unwrap(), new);
        // The file that was read moves when it is still there.
        let b = parsed(&s, &c, "b.csv", &sales(&["b-1"], "1.00"));
        let rec = FileRecord {
            name: "b.csv".into(),
            path: b.job.path.clone(),
            ..rec
        };
        c.ctx.archive.committed(&rec, b.stamp);
        assert!(!in_inbox(&s, "b.csv") && in_processed(&s, "b.csv"));
    }

    #[test]
    fn content_already_loaded_or_twice_in_a_group_is_a_duplicate_not_a_commit() {
        let s = site();
        let mut c = start(&s).unwrap();
        let text = sales(&["a-1"], "1.00");
        let a = parsed(&s, &c, "a.csv", &text);
        c.try_commit_group(vec![a], Instant::now()).unwrap();
        let again = parsed(&s, &c, "a-again.csv", &text);
        c.try_commit_group(vec![again], Instant::now()).unwrap();
        assert_eq!(c.tables.log.version, 1, "nothing committed for a duplicate");
        assert_eq!(c.ledger.next_txn, 2);
        let x = parsed(&s, &c, "x.csv", &sales(&["x-1"], "1.00"));
        let y = parsed(&s, &c, "y.csv", &sales(&["x-1"], "1.00"));
        c.try_commit_group(vec![x, y], Instant::now()).unwrap();
        assert_eq!(rows_in(&c, &s.feed.table_url), 2);
        let n = c.ctx.archive.counters().snapshot();
        assert_eq!((n.files_committed, n.files_duplicate), (2, 2));
        assert!(!in_inbox(&s, "a-again.csv") && !in_inbox(&s, "y.csv"));
    }

    #[test]
    fn a_file_its_writer_came_back_to_is_read_again_not_committed() {
        let s = site();
        let mut c = start(&s).unwrap();
        let a = parsed(&s, &c, "a.csv", &sales(&["a-1"], "1.00"));
        // The writer appends after the worker read it.
        std::fs::write(&a.job.path, sales(&["a-1", "a-2"], "1.00")).unwrap();
        c.try_commit_group(vec![a], Instant::now()).unwrap();
        assert_eq!(c.tables.log.version, 0);
        assert_eq!(c.ledger.next_txn, 1);
        assert!(c.ledger.state.intent().is_none());
        assert!(in_inbox(&s, "a.csv") && !in_processed(&s, "a.csv"));
    }

    #[test]
    fn bad_rows_go_to_the_quarantine_table_under_the_same_txn() {
        let s = site();
        let mut c = start(&s).unwrap();
        let mut text = sales(&["a-1", "a-2"], "1.00");
        text.push_str("a-3,not a time,ST1,P1,1,1.00,1.00,cash,C1\n");
        let a = parsed(&s, &c, "a.csv", &text);
        assert_eq!(a.bad.len(), 1);
        c.try_commit_group(vec![a], Instant::now()).unwrap();
        assert_eq!(rows_in(&c, &s.feed.table_url), 2);
        assert_eq!(rows_in(&c, &s.feed.quarantine_url), 1);
        let q = fresh(&c, &s.feed.quarantine_url);
        let q_txn = crate::delta::table::txn_version(&c.tables.rt, &q, &s.feed.app_id);
        assert_eq!(q_txn.unwrap(), Some(1));
        assert!(c.ledger.intent_done);
    }

    #[test]
    fn a_corrected_file_replaces_the_rows_of_its_earlier_version_in_one_commit() {
        let s = site_with("on_resend = \"replace\"");
        let mut c = start(&s).unwrap();
        let a = parsed(&s, &c, "a.csv", &sales(&["a-1", "a-2", "a-3"], "1.00"));
        c.try_commit_group(vec![a], Instant::now()).unwrap();
        let other = parsed(&s, &c, "b.csv", &sales(&["b-1"], "1.00"));
        c.try_commit_group(vec![other], Instant::now()).unwrap();
        let fixed = parsed(&s, &c, "a.csv", &sales(&["a-1", "a-2"], "2.00"));
        c.try_commit_group(vec![fixed], Instant::now()).unwrap();
        assert_eq!(c.tables.log.version, 3);
        assert_eq!(rows_in(&c, &s.feed.table_url), 3, "2 corrected + 1 other");
        assert_eq!(c.ledger.next_txn, 4);
        assert!(in_processed(&s, "a.csv"));
    }

    #[test]
    fn an_upsert_replaces_the_rows_of_its_keys_and_keeps_the_last_of_each() {
        let s = site_with("merge_key = [\"sale_id\"]");
        let mut c = start(&s).unwrap();
        let a = parsed(&s, &c, "a.csv", &sales(&["k-1", "k-2", "k-3"], "1.00"));
        c.try_commit_group(vec![a], Instant::now()).unwrap();
        // k-2 twice in one file (the last wins), k-3 updated, k-4 new.
        let b = parsed(
            &s,
            &c,
            "b.csv",
            &sales(&["k-2", "k-3", "k-4", "k-2"], "2.00"),
        );
        c.try_commit_group(vec![b], Instant::now()).unwrap();
        assert_eq!(c.tables.log.version, 2);
        assert_eq!(rows_in(&c, &s.feed.table_url), 4, "k-1..k-4, once each");
        let commit = std::fs::read_to_string(
            s.feed
                .table_url
                .to_file_path()
                .unwrap()
                .join("_delta_log/00000000000000000002.json"),
        )
        .unwrap();
        assert!(commit.contains("\"operation\":\"MERGE\""), "{commit}");
        assert!(commit.contains("\"duplicateKeys\":1"), "{commit}");
    }
}
