//! The committer's side of commits that change rows (`on_resend = "replace"`, `merge_key`):
//! which rows a commit replaces, the last row of each key, and the commit itself, planned again
//! when another writer's commit made its plan stale. The planning is in [`super::change`].

use deltalake::kernel::{Action, Add};
use deltalake::DeltaTableError;
use serde_json::json;

use super::change::{self, Planned};
use super::committer::Committer;
use super::crash_point;
use super::files::{Keys, Touch};
use super::log::{Commit, CommitError, ReadSet};
use super::prepare::Pending;
use crate::config::OnResend;
use crate::job::{FileData, ParsedFile};

impl Committer {
    /// A commit that changes rows: plans the change against the table as the file index
    /// knows it, writes it, and commits it with the new rows; planned again (a few times)
    /// when another writer's commit made the plan stale.
    pub(super) fn commit_change(
        &mut self,
        adds: Vec<Add>,
        touch: Touch,
        p: &Pending,
        txn: i64,
    ) -> Result<(i64, Planned), CommitError> {
        let mut attempt = 0;
        loop {
            let index = self.tables.log.index.as_ref().ok_or_else(|| {
                CommitError::write(DeltaTableError::Generic("no file index".into()))
            })?;
            let t = &self.tables;
            let planned = change::plan(&t.rt, &t.table, &self.feed, index, &touch, &p.new_rows)
                .map_err(CommitError::write)?;
            crash_point("after_change_written");
            let summary = change::summary(&planned, touch.names.len(), p.duplicates.iter().sum());
            let mut meta = self.commit_metadata(&p.records, txn, p.rows, Some(summary));
            meta.insert("isBlindAppend".to_string(), json!(false));
            let mut actions: Vec<Action> = adds.iter().cloned().map(Action::Add).collect();
            actions.extend(planned.actions.iter().cloned());
            let commit = Commit::change(
                actions,
                change::operation(&touch),
                meta,
                &self.feed.app_id,
                txn,
            );
            let read = ReadSet {
                files: &planned.read,
                touch: &touch,
            };
            let result = self
                .tables
                .log
                .commit(&self.tables.rt, commit.reading(read));
            match result {
                Ok(v) => return Ok((v, planned)),
                Err(CommitError::ReadChanged { version, path }) if attempt < 10 => {
                    attempt += 1;
                    change::discard(&self.tables.rt, &self.tables.table, &planned.written);
                    log::info!(
                        "feed {}: another writer changed {path} (version {version}) while this commit was written: planned again",
                        self.feed.name
                    );
                }
                Err(e) => {
                    if !matches!(e, CommitError::Ambiguous(_)) {
                        change::discard(&self.tables.rt, &self.tables.table, &planned.written);
                    }
                    return Err(e);
                }
            }
        }
    }

    /// `merge_key`: keeps the last row of each key across the commit's files; returns how
    /// many rows each file lost to a later row of its key, and the keys.
    pub(super) fn last_rows(
        &self,
        files: &mut [ParsedFile],
    ) -> Result<(Vec<u64>, Option<Keys>), CommitError> {
        if self.feed.merge_key.is_empty() {
            return Ok((vec![0; files.len()], None));
        }
        let mut all = Vec::with_capacity(files.len());
        for f in files.iter_mut() {
            all.push(
                match std::mem::replace(&mut f.data, FileData::Batches(Vec::new())) {
                    FileData::Batches(b) => b,
                    // Workers keep an upsert feed's files in memory; should one come streamed,
                    // its rows are read back and written again with the others.
                    FileData::Written(a) => {
                        let rows = change::rows_of(&self.tables.rt, &self.tables.table, &a)
                            .map_err(CommitError::read)?;
                        let paths: Vec<_> = a.iter().map(|a| a.path.clone()).collect();
                        change::discard(&self.tables.rt, &self.tables.table, &paths);
                        rows
                    }
                },
            );
        }
        let last =
            change::last_row_per_key(all, &self.feed.merge_key).map_err(CommitError::write)?;
        for (f, b) in files.iter_mut().zip(last.files) {
            f.data = FileData::Batches(b);
        }
        Ok((last.dropped, Some(last.keys)))
    }

    /// The rows this commit replaces: earlier versions of its files' names (`on_resend =
    /// "replace"`), and its keys.
    pub(super) fn touch(&self, files: &[ParsedFile], keys: Option<Keys>) -> Touch {
        let mut touch = Touch {
            names: Default::default(),
            keys,
        };
        if self.feed.on_resend == OnResend::Replace {
            for f in files {
                let name = f.job.name();
                // With other daemons writing the table, their loads are not in our state.
                if self.feed.shared_writers
                    || self.ledger.state.loaded_before(&name, &f.hash).is_some()
                {
                    touch.names.insert(name);
                }
            }
        }
        touch
    }
}
