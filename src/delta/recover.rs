//! Recovery: settling a commit whose outcome the committer does not know — the intent a stop
//! or a crash left (at start), or a commit whose write reported an error (before the next
//! one). The table's txn version for the feed's app id is the truth: if it holds the intent's
//! txn, the commit landed and its files are recorded, quarantined and archived; if not, the
//! files are still in the inbox and are ingested again.

use super::committer::Committer;
use super::log::CommitError;
use super::DeltaError;

impl Committer {
    /// At start, given the table's txn version for our app id: finish or drop the recorded
    /// intent.
    pub(super) fn settle_intent(&mut self, table_txn: Option<i64>) -> Result<(), DeltaError> {
        let Some(intent) = self.ledger.state.intent().cloned() else {
            return Ok(());
        };
        if intent.app_id != self.feed.app_id {
            log::warn!(
                "feed {}: dropping a commit intent made under app id {} (now {})",
                self.feed.name,
                intent.app_id,
                self.feed.app_id
            );
            self.ledger.state.clear_intent()?;
            return Ok(());
        }
        let landed = table_txn.is_some_and(|t| t >= intent.txn);
        if !landed && table_txn.unwrap_or(0) < intent.txn - 1 {
            return Err(DeltaError::TxnWentBack {
                url: self.feed.table_url.to_string(),
                app_id: self.feed.app_id.clone(),
                table_txn: table_txn.unwrap_or(0),
                state_txn: intent.txn - 1,
            });
        }
        if landed {
            log::info!(
                "feed {}: commit txn {} with {} file(s) landed before the last stop; archiving its files",
                self.feed.name,
                intent.txn,
                intent.files.len()
            );
            self.ledger
                .state
                .record_loaded(&intent.files, self.tables.log.version)?;
            self.tables
                .quarantine
                .finish(&self.tables.rt, &intent)
                .map_err(DeltaError::step(
                    &self.feed.quarantine_url,
                    "committing the quarantined rows",
                ))?;
            for f in &intent.files {
                self.ctx.archive.landed_before(f);
            }
        } else {
            log::info!(
                "feed {}: commit txn {} did not land before the last stop; its {} file(s) will be ingested again",
                self.feed.name,
                intent.txn,
                intent.files.len()
            );
        }
        self.ledger.state.clear_intent()?;
        Ok(())
    }

    /// After an ambiguous failure: find out from the log whether the intent's commit landed,
    /// and finish its quarantine half if it did.
    pub(super) fn resolve_unknown_outcome(&mut self) -> Result<(), CommitError> {
        let Some(intent) = self.ledger.state.intent().cloned() else {
            self.ledger.unresolved = false;
            return Ok(());
        };
        let landed = self
            .tables
            .log
            .catch_up(&self.tables.rt, &self.feed.app_id, intent.txn)?;
        let already = intent.txn < self.ledger.next_txn;
        match landed {
            Some(v) => {
                log::info!(
                    "feed {}: the commit that reported an error did land (version {v}); its files are archived",
                    self.feed.name
                );
                self.ledger.next_txn = intent.txn + 1;
                self.ledger.state.record_loaded(&intent.files, v)?;
                self.tables.quarantine.finish(&self.tables.rt, &intent)?;
                for f in &intent.files {
                    self.ctx.archive.landed(f);
                }
            }
            // Committed earlier in this run: only the quarantine half was owed.
            None if already => self.tables.quarantine.finish(&self.tables.rt, &intent)?,
            None => log::info!(
                "feed {}: the failed commit did not land; its files will be ingested again",
                self.feed.name
            ),
        }
        self.ledger.state.clear_intent()?;
        self.ledger.unresolved = false;
        Ok(())
    }
}

/// Settling after each crash point of the commit path (see `crash_point`), with real tables in
/// a temporary folder: the state a crash leaves is written by hand, then a committer starts.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::delta::quarantine::{Quarantine, QuarantineRows};
    use crate::delta::table::txn_version;
    use crate::delta::testing::*;
    use crate::job::BadRow;
    use crate::state::{FeedState, FileRecord, Intent};

    fn write_intent(
        s: &Site,
        txn: i64,
        files: Vec<FileRecord>,
        quarantine: Vec<deltalake::kernel::Add>,
    ) {
        let mut state = FeedState::open(&s.state_dir, &s.feed.name).unwrap();
        let intent = Intent {
            app_id: s.feed.app_id.clone(),
            txn,
            files,
            quarantine,
        };
        state.write_intent(intent).unwrap();
    }

    #[test]
    fn crash_after_intent_the_commit_never_landed_and_the_file_is_taken_again() {
        let s = site();
        let a = drop_file(&s, "a.csv", "x");
        write_intent(&s, 1, vec![a.clone()], vec![]);
        let c = start(&s).unwrap();
        assert!(c.ledger.state.intent().is_none());
        assert!(c.ledger.state.loaded(&a.hash).is_none());
        assert_eq!(c.ledger.next_txn, 1);
        assert!(in_inbox(&s, "a.csv") && !in_processed(&s, "a.csv"));
    }

    #[test]
    fn crash_after_commit_the_files_are_recorded_and_archived() {
        let s = site();
        let a = drop_file(&s, "a.csv", "x");
        {
            let c = start(&s).unwrap();
            let mut w = other_writer(&c);
            land(&c, &mut w, &s.feed.app_id, 1);
        }
        write_intent(&s, 1, vec![a.clone()], vec![]);
        let c = start(&s).unwrap();
        assert!(c.ledger.state.intent().is_none());
        assert_eq!(c.ledger.state.loaded(&a.hash).map(|l| l.version), Some(1));
        assert_eq!(c.ledger.next_txn, 2);
        assert!(!in_inbox(&s, "a.csv") && in_processed(&s, "a.csv"));
    }

    #[test]
    fn crash_after_record_the_quarantine_half_is_committed_once() {
        let s = site();
        let a = FileRecord {
            bad_rows: 1,
            ..drop_file(&s, "a.csv", "x")
        };
        let adds = {
            let c = start(&s).unwrap();
            let mut q = Quarantine::new(c.tables.quarantine.table.clone(), &s.feed).unwrap();
            let mut rows = QuarantineRows::new(&s.feed.name, 0);
            let bad = BadRow {
                line: 2,
                raw: "a,b".into(),
                column: None,
                error: "2 field(s), the header has 9".into(),
            };
            rows.extend("a.csv", &a.hash, &[bad]);
            let adds = q.write(&c.tables.rt, rows).unwrap();
            let mut w = other_writer(&c);
            land(&c, &mut w, &s.feed.app_id, 1);
            adds
        };
        write_intent(&s, 1, vec![a.clone()], adds);
        FeedState::open(&s.state_dir, &s.feed.name)
            .unwrap()
            .record_loaded(std::slice::from_ref(&a), 1)
            .unwrap();
        let c = start(&s).unwrap();
        let q_table = fresh(&c, &s.feed.quarantine_url);
        let q_txn = txn_version(&c.tables.rt, &q_table, &s.feed.app_id).unwrap();
        assert_eq!(q_txn, Some(1));
        let q_version = c.tables.quarantine.log.version;
        assert!(in_processed(&s, "a.csv"));
        drop(c);
        // The same intent again (a second crash before it was cleared): nothing is doubled.
        write_intent(&s, 1, vec![a], vec![]);
        let c = start(&s).unwrap();
        assert_eq!(c.tables.quarantine.log.version, q_version);
    }

    #[test]
    fn crash_during_archive_a_new_file_of_the_same_name_stays() {
        let s = site();
        let a = drop_file(&s, "a.csv", "first content");
        {
            let c = start(&s).unwrap();
            let mut w = other_writer(&c);
            land(&c, &mut w, &s.feed.app_id, 1);
        }
        write_intent(&s, 1, vec![a.clone()], vec![]);
        // Archived before the crash; then the producer dropped new content under that name.
        std::fs::create_dir_all(&s.feed.processed).unwrap();
        std::fs::rename(&a.path, s.feed.processed.join("a.csv")).unwrap();
        drop_file(&s, "a.csv", "second content");
        let c = start(&s).unwrap();
        assert!(c.ledger.state.loaded(&a.hash).is_some());
        assert!(
            in_inbox(&s, "a.csv"),
            "the new content is not the committed one"
        );
        assert_eq!(
            std::fs::read_to_string(s.feed.processed.join("a.csv")).unwrap(),
            "first content"
        );
    }

    #[test]
    fn a_txn_version_that_went_back_is_refused() {
        let s = site();
        let a = drop_file(&s, "a.csv", "x");
        // The state says txn 4 was committed, the table has none from us: restored or
        // replaced.
        write_intent(&s, 5, vec![a], vec![]);
        let err = start(&s).err().unwrap();
        assert!(
            matches!(
                err,
                DeltaError::TxnWentBack {
                    table_txn: 0,
                    state_txn: 4,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn an_error_whose_commit_did_land_is_resolved_from_the_log() {
        let s = site();
        let a = drop_file(&s, "a.csv", "x");
        let mut c = start(&s).unwrap();
        // The write reported an error, yet the commit landed (another process's view of it).
        c.ledger
            .state
            .write_intent(Intent {
                app_id: s.feed.app_id.clone(),
                txn: 1,
                files: vec![a.clone()],
                quarantine: vec![],
            })
            .unwrap();
        c.ledger.unresolved = true;
        let mut w = other_writer(&c);
        land(&c, &mut w, &s.feed.app_id, 1);
        c.resolve_unknown_outcome().unwrap();
        assert!(!c.ledger.unresolved && c.ledger.state.intent().is_none());
        assert_eq!(c.ledger.next_txn, 2);
        assert_eq!(c.tables.log.version, 1);
        assert!(in_processed(&s, "a.csv"));
        assert_eq!(c.ctx.archive.counters().snapshot().files_committed, 1);
    }
}
