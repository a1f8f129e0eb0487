//! The committer's side of commits that change rows (`on_resend = "replace"`, `merge_key`):
//! which rows a commit replaces, the last row of each key, and the commit itself, planned again
//! when another writer's commit made its plan stale. The planning is in [`super::change`].

use deltalake::arrow::record_batch::RecordBatch;
use deltalake::kernel::{Action, Add};
use deltalake::DeltaTableError;
use serde_json::json;

use super::change::{self, Planned};
use super::committer::Committer;
use super::crash_point;
use super::files::{Keys, Touch};
use super::log::{Commit, CommitError, ReadSet};
use crate::config::OnResend;
use crate::job::{FileData, ParsedFile};
use crate::state::FileRecord;

impl Committer {
    /// A commit that changes rows: plans the change against the table as the file index
    /// knows it, writes it, and commits it with the new rows; planned again (a few times)
    /// when another writer's commit made the plan stale.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn commit_change(
        &mut self,
        adds: Vec<Add>,
        new_rows: &[RecordBatch],
        touch: Touch,
        files: &[FileRecord],
        txn: i64,
        rows: u64,
        duplicates: &[u64],
    ) -> Result<(i64, Planned), CommitError> {
        let mut touch = touch;
        let mut attempt = 0;
        loop {
            let index = self.log.index.as_ref().ok_or_else(|| {
                CommitError::write(DeltaTableError::Generic("no file index".into()))
            })?;
            let planned = change::plan(&self.rt, &self.table, &self.feed, index, &touch, new_rows)
                .map_err(CommitError::write)?;
            crash_point("after_change_written");
            let mut meta = self.commit_metadata(
                files,
                txn,
                rows,
                Some(change::summary(
                    &planned,
                    touch.names.len(),
                    duplicates.iter().sum(),
                )),
            );
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
            self.log.reading = Some(ReadSet {
                files: planned.read.clone(),
                touch,
            });
            let result = self.log.commit(&self.rt, commit);
            touch = match self.log.reading.take() {
                Some(r) => r.touch,
                None => Touch::default(),
            };
            match result {
                Ok(v) => return Ok((v, planned)),
                Err(CommitError::ReadChanged { version, path }) if attempt < 10 => {
                    attempt += 1;
                    change::discard(&self.rt, &self.table, &planned.written);
                    log::info!(
                        "feed {}: another writer changed {path} (version {version}) while this commit was written: planned again",
                        self.feed.name
                    );
                }
                Err(e) => {
                    if !matches!(e, CommitError::Ambiguous(_)) {
                        change::discard(&self.rt, &self.table, &planned.written);
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
                        let rows = change::rows_of(&self.rt, &self.table, &a)
                            .map_err(CommitError::read)?;
                        let paths: Vec<_> = a.iter().map(|a| a.path.clone()).collect();
                        change::discard(&self.rt, &self.table, &paths);
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
                if self.feed.shared_writers || self.state.loaded_before(&name, &f.hash).is_some() {
                    touch.names.insert(name);
                }
            }
        }
        touch
    }
}
