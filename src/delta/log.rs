//! The flat commit path: a Delta log this process writes by version number, tracking the
//! version itself and reading other writers' commits only on a conflict. Its cost does not
//! grow with the table's history (NOTES.md has the measurements).

use std::collections::{HashMap, HashSet};

use deltalake::kernel::transaction::{CommitData, TransactionError};
use deltalake::kernel::{Action, Transaction};
use deltalake::logstore::{CommitOrBytes, LogStoreRef};
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::{DeltaTable, DeltaTableError};
use serde_json::Value;

use super::files::{FileIndex, Touch};
use super::DeltaError;
use crate::state::StateError;

/// One commit to write: its actions, its operation and commitInfo additions, for ingestion
/// the `txn` (app id, version) that makes it exactly once, and what another writer's commit
/// must not have touched meanwhile (`removing`, `reading`).
pub(crate) struct Commit<'a> {
    actions: Vec<Action>,
    operation: DeltaOperation,
    app_metadata: HashMap<String, Value>,
    txn: Option<(String, i64)>,
    /// Files this commit removes (a compaction, a requeue's quarantine rewrite): another
    /// writer's commit that removed one of them first makes ours invalid, so it is refused
    /// rather than retried.
    removing: HashSet<String>,
    /// What a change (a correction, an upsert) read: another writer's commit that removed one
    /// of these files, or added one that may hold rows it replaces, makes it stale — Delta's
    /// conflict rule — and it is planned again rather than written over them.
    reading: Option<ReadSet<'a>>,
}

impl<'a> Commit<'a> {
    /// A blind append of `actions` (what ingestion writes) under `app_id`'s txn version `txn`.
    pub(crate) fn append(
        actions: Vec<Action>,
        app_metadata: HashMap<String, Value>,
        app_id: &str,
        txn: i64,
    ) -> Commit<'a> {
        let append = DeltaOperation::Write {
            mode: SaveMode::Append,
            partition_by: None,
            predicate: None,
        };
        Commit::change(actions, append, app_metadata, app_id, txn)
    }

    /// A commit of `operation` (an append, a correction, an upsert) under `app_id`'s txn
    /// version `txn`.
    pub(crate) fn change(
        actions: Vec<Action>,
        operation: DeltaOperation,
        app_metadata: HashMap<String, Value>,
        app_id: &str,
        txn: i64,
    ) -> Commit<'a> {
        Commit {
            actions,
            operation,
            app_metadata,
            txn: Some((app_id.to_string(), txn)),
            removing: HashSet::new(),
            reading: None,
        }
    }

    /// The same commit with `actions` instead.
    #[cfg(test)]
    pub(crate) fn with_actions(self, actions: Vec<Action>) -> Commit<'a> {
        Commit { actions, ..self }
    }

    /// The same commit carrying `app_id`'s txn version `txn`.
    pub(crate) fn with_txn(self, app_id: &str, txn: i64) -> Commit<'a> {
        Commit {
            txn: Some((app_id.to_string(), txn)),
            ..self
        }
    }

    /// Another operation (a schema change, a compaction), with no txn.
    pub(crate) fn other(
        actions: Vec<Action>,
        operation: DeltaOperation,
        app_metadata: HashMap<String, Value>,
    ) -> Commit<'a> {
        Commit {
            actions,
            operation,
            app_metadata,
            txn: None,
            removing: HashSet::new(),
            reading: None,
        }
    }

    /// The same commit, refused if another writer removed one of `paths` first.
    pub(crate) fn removing(self, paths: HashSet<String>) -> Commit<'a> {
        Commit {
            removing: paths,
            ..self
        }
    }

    /// The same commit, stale if another writer changed what `read` names.
    pub(crate) fn reading(self, read: ReadSet<'a>) -> Commit<'a> {
        Commit {
            reading: Some(read),
            ..self
        }
    }
}

/// What another writer's commit must not have changed for ours to stand.
#[derive(Default)]
struct Guard<'a> {
    removing: HashSet<String>,
    reading: Option<ReadSet<'a>>,
}

/// A Delta log this committer writes with the flat path: it tracks the version itself and
/// reads other writers' commits only on a conflict.
pub(crate) struct Log {
    url: url::Url,
    log_store: LogStoreRef,
    /// The newest version known.
    pub(crate) version: i64,
    /// A table whose rows can change: its files, kept current from every commit written or
    /// read here.
    pub(crate) index: Option<FileIndex>,
}

/// The files a change read and the rows it replaces.
pub(crate) struct ReadSet<'a> {
    pub(crate) files: &'a HashSet<String>,
    pub(crate) touch: &'a Touch,
}

impl Log {
    pub(crate) fn new(table: &DeltaTable) -> Log {
        Log {
            url: table.table_url().clone(),
            log_store: table.log_store(),
            version: table.version().unwrap_or(0) as i64,
            index: None,
        }
    }

    /// Writes `commit` at the next free version; returns the version it landed at (with a txn:
    /// also when another writer's catching up shows it landed already).
    pub(crate) fn commit(
        &mut self,
        rt: &tokio::runtime::Runtime,
        commit: Commit<'_>,
    ) -> Result<i64, CommitError> {
        let (app_id, txn) = commit.txn.clone().unwrap_or((String::new(), -1));
        let guard = Guard {
            removing: commit.removing,
            reading: commit.reading,
        };
        let kept = self.index.is_some().then(|| commit.actions.clone());
        let data = CommitData::new(
            commit.actions,
            commit.operation,
            commit.app_metadata,
            commit
                .txn
                .map(|(app_id, version)| vec![Transaction::new(app_id, version)])
                .unwrap_or_default(),
        );
        let bytes = data.get_bytes().map_err(CommitError::commit)?;
        self.check_log_is_there()?;
        let mut conflicts = 0;
        loop {
            let attempt = self.version + 1;
            let result = rt.block_on(self.log_store.write_commit_entry(
                attempt as u64,
                CommitOrBytes::LogBytes(bytes.clone()),
                uuid::Uuid::new_v4(),
            ));
            match result {
                Ok(()) => {
                    self.version = attempt;
                    if let (Some(index), Some(actions)) = (self.index.as_mut(), kept) {
                        index.apply(&actions);
                    }
                    return Ok(attempt);
                }
                Err(TransactionError::VersionAlreadyExists(_)) => {
                    // Another writer took this version: read what it wrote, then try the next.
                    conflicts += 1;
                    let landed = self.catch_up_guarded(rt, &app_id, txn, &guard)?;
                    log::debug!(
                        "table {}: version {attempt} taken by another writer; caught up to {}{}",
                        self.url,
                        self.version,
                        if landed.is_some() {
                            " (ours was among them)"
                        } else {
                            ", retrying"
                        }
                    );
                    if let Some(v) = landed {
                        if txn >= 0 {
                            return Ok(v);
                        }
                    }
                    if conflicts > 100 {
                        return Err(CommitError::commit(TransactionError::VersionAlreadyExists(
                            attempt as u64,
                        )));
                    }
                }
                Err(e) => return Err(CommitError::Ambiguous(Box::new(e))),
            }
        }
    }

    /// A local table whose folder was deleted (or swapped) under a running daemon would take
    /// our next commit as the only file of a new log — a table no reader can open, with the
    /// rows in it counted as loaded. A log that lacks the newest version we know and has
    /// nothing newer is not ours any more. A stat per commit: local tables only (a cloud table
    /// would pay a request per commit for it).
    fn check_log_is_there(&self) -> Result<(), CommitError> {
        if self.url.scheme() != "file" || self.version < 0 {
            return Ok(());
        }
        let Ok(dir) = self.url.to_file_path() else {
            return Ok(());
        };
        let log_dir = dir.join("_delta_log");
        if log_dir.join(format!("{:020}.json", self.version)).exists() {
            return Ok(());
        }
        // Other writers' log cleanup may have removed it (a daemon idle for a month beside
        // busy ones): then the log has moved on past it, which catching up handles.
        let newest = std::fs::read_dir(&log_dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let name = e.file_name();
                let digits = name.to_str()?.get(..20)?;
                digits.parse::<i64>().ok()
            })
            .max();
        if newest.is_some_and(|v| v >= self.version) {
            return Ok(());
        }
        Err(CommitError::Fatal(Box::new(DeltaError::LogGone {
            url: self.url.to_string(),
            version: self.version,
        })))
    }

    /// Reads commits after `self.version`. Returns the version holding our (`app_id`, `txn`),
    /// if one does. Refuses to go on if another writer changed metadata or protocol.
    pub(crate) fn catch_up(
        &mut self,
        rt: &tokio::runtime::Runtime,
        app_id: &str,
        txn: i64,
    ) -> Result<Option<i64>, CommitError> {
        self.catch_up_guarded(rt, app_id, txn, &Guard::default())
    }

    /// `catch_up` for a commit being written: one that removed a file it removes is refused;
    /// one that makes the change stale (`guard.reading`) is read whole, then reported.
    fn catch_up_guarded(
        &mut self,
        rt: &tokio::runtime::Runtime,
        app_id: &str,
        txn: i64,
        guard: &Guard<'_>,
    ) -> Result<Option<i64>, CommitError> {
        let mut ours = None;
        let mut stale = None;
        loop {
            let v = self.version + 1;
            let entry = rt
                .block_on(self.log_store.read_commit_entry(v as u64))
                .map_err(CommitError::read)?;
            let Some(bytes) = entry else { break };
            let mut actions = Vec::new();
            for line in bytes.split(|b| *b == b'\n') {
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                let action: Value = serde_json::from_slice(line).map_err(|e| {
                    CommitError::read(super::failed(format!("commit {v} is not valid JSON"), e))
                })?;
                if action.get("metaData").is_some() || action.get("protocol").is_some() {
                    return Err(CommitError::Fatal(Box::new(DeltaError::MetadataChanged {
                        url: self.url.to_string(),
                        version: v,
                    })));
                }
                if let Some(path) = action
                    .get("remove")
                    .and_then(|r| r.get("path"))
                    .and_then(Value::as_str)
                {
                    if guard.removing.contains(path) {
                        return Err(CommitError::Fatal(Box::new(DeltaError::Conflict {
                            url: self.url.to_string(),
                            version: v,
                            path: path.to_string(),
                        })));
                    }
                }
                if let Some(t) = action.get("txn") {
                    if t.get("appId").and_then(Value::as_str) == Some(app_id)
                        && t.get("version").and_then(Value::as_i64) == Some(txn)
                    {
                        ours = Some(v);
                    }
                }
                if self.index.is_some()
                    && (action.get("add").is_some() || action.get("remove").is_some())
                {
                    // Typed, so that paths are decoded as the table's own snapshot has them.
                    let a: Action = serde_json::from_value(action).map_err(|e| {
                        let what = format!("commit {v}: an action deltadrop cannot read");
                        CommitError::read(super::failed(what, e))
                    })?;
                    actions.push(a);
                }
            }
            if ours != Some(v) {
                if let (Some(read), Some(index)) = (&guard.reading, &self.index) {
                    for a in &actions {
                        let path = match a {
                            Action::Remove(r) if read.files.contains(&r.path) => &r.path,
                            Action::Add(add)
                                if add.data_change && index.may_hold(add, read.touch) =>
                            {
                                &add.path
                            }
                            _ => continue,
                        };
                        stale.get_or_insert((v, path.clone()));
                    }
                }
            }
            if let Some(index) = self.index.as_mut() {
                index.apply(&actions);
            }
            self.version = v;
        }
        if ours.is_none() {
            if let Some((version, path)) = stale {
                return Err(CommitError::ReadChanged { version, path });
            }
        }
        Ok(ours)
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum CommitError {
    #[error("writing Parquet: {0}")]
    Write(Box<DeltaTableError>),
    #[error("writing the commit: {0}")]
    Commit(Box<TransactionError>),
    /// The write returned an error, but the commit may have landed.
    #[error("writing the commit (outcome unknown): {0}")]
    Ambiguous(Box<TransactionError>),
    #[error("reading the log: {0}")]
    Read(Box<DeltaTableError>),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Fatal(Box<DeltaError>),
    /// Another writer's commit (at `version`) removed a file this change read, or added one
    /// that may hold rows it replaces: the change is planned again against the new state.
    #[error("another writer changed rows this commit replaces (version {version}, file {path})")]
    ReadChanged { version: i64, path: String },
}

impl CommitError {
    pub(crate) fn write(e: DeltaTableError) -> Self {
        CommitError::Write(Box::new(e))
    }
    pub(crate) fn commit(e: TransactionError) -> Self {
        CommitError::Commit(Box::new(e))
    }
    pub(crate) fn read(e: DeltaTableError) -> Self {
        CommitError::Read(Box::new(e))
    }
}

#[cfg(test)]
mod tests {
    use deltalake::kernel::Action;

    use super::*;
    use crate::config::Config;
    use crate::delta::open::FeedTables;
    use crate::delta::runtime;
    use crate::delta::table::load;

    /// A new table in a temporary folder, and two independent logs of it (two writers).
    fn two_writers() -> (
        tempfile::TempDir,
        tokio::runtime::Runtime,
        Log,
        Log,
        DeltaTable,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let cfg = Config::embedded(dir.path()).unwrap();
        let feed = &cfg.feeds[0];
        let tables = FeedTables::open(feed, || None).unwrap().unwrap();
        let rt = runtime().unwrap();
        let table = rt
            .block_on(load(&feed.table_url, &feed.storage_options, None))
            .unwrap();
        let (a, b) = (Log::new(&tables.table), Log::new(&table));
        (dir, rt, a, b, table)
    }

    fn append(app_id: &str, txn: i64) -> Commit<'static> {
        Commit::append(vec![], HashMap::new(), app_id, txn)
    }

    #[test]
    fn a_writer_behind_catches_up_and_commits_at_the_next_version() {
        let (_d, rt, mut a, mut b, _) = two_writers();
        assert_eq!(a.commit(&rt, append("a", 1)).unwrap(), 1);
        assert_eq!(a.commit(&rt, append("a", 2)).unwrap(), 2);
        // b still believes the table is at version 0.
        assert_eq!(b.commit(&rt, append("b", 1)).unwrap(), 3);
        assert_eq!(b.version, 3);
        assert_eq!(a.catch_up(&rt, "b", 1).unwrap(), Some(3));
    }

    #[test]
    fn a_commit_found_already_landed_is_not_written_twice() {
        let (_d, rt, mut a, mut b, table) = two_writers();
        // b's commit landed (say, its write returned an error after writing): a sees it.
        assert_eq!(a.commit(&rt, append("b", 1)).unwrap(), 1);
        assert_eq!(b.commit(&rt, append("b", 1)).unwrap(), 1);
        let store = table.log_store();
        assert!(rt.block_on(store.read_commit_entry(2)).unwrap().is_none());
    }

    #[test]
    fn another_writer_changing_the_metadata_stops_the_writer() {
        let (_d, rt, mut a, mut b, table) = two_writers();
        let metadata = table.snapshot().unwrap().metadata().clone();
        let change = Commit::other(
            vec![Action::Metadata(metadata)],
            DeltaOperation::SetTableProperties {
                properties: HashMap::new(),
            },
            HashMap::new(),
        );
        a.commit(&rt, change).unwrap();
        let err = b.commit(&rt, append("b", 1)).err().unwrap();
        assert!(
            matches!(&err, CommitError::Fatal(e) if matches!(**e, DeltaError::MetadataChanged { version: 1, .. })),
            "{err}"
        );
    }

    #[test]
    fn a_change_whose_read_file_another_writer_removed_is_stale_and_the_index_follows() {
        let (_d, rt, mut a, mut b, table) = two_writers();
        let add = |path: &str| {
            Action::Add(deltalake::kernel::Add {
                path: path.into(),
                size: 10,
                data_change: true,
                ..Default::default()
            })
        };
        a.index = Some(FileIndex::from_table(&table, &[]).unwrap());
        b.index = Some(FileIndex::from_table(&table, &[]).unwrap());
        assert_eq!(
            a.commit(&rt, append("a", 1).with_actions(vec![add("x.parquet")]))
                .unwrap(),
            1
        );
        // a removes x (a correction of its own), while b's change read x.
        let gone = crate::delta::table::remove("x.parquet", 10, &HashMap::new(), true);
        a.commit(&rt, append("a", 2).with_actions(vec![gone]))
            .unwrap();
        let read: HashSet<String> = ["x.parquet".to_string()].into_iter().collect();
        let nothing = Touch::default();
        let stale = append("b", 1).reading(ReadSet {
            files: &read,
            touch: &nothing,
        });
        let err = b.commit(&rt, stale).err().unwrap();
        assert!(
            matches!(&err, CommitError::ReadChanged { version: 2, path } if path == "x.parquet"),
            "{err}"
        );
        // b read both commits: its index has x added, then removed.
        let touch = Touch {
            names: ["any.csv".to_string()].into_iter().collect(),
            keys: None,
        };
        assert!(b.index.as_ref().unwrap().candidates(&touch).is_empty());
        assert_eq!(b.commit(&rt, append("b", 1)).unwrap(), 3);
    }

    #[test]
    fn a_change_next_to_which_another_writer_added_its_keys_is_stale() {
        let (_d, rt, mut a, mut b, table) = two_writers();
        let key = vec!["sale_id".to_string()];
        b.index = Some(FileIndex::from_table(&table, &key).unwrap());
        let with_keys = |path: &str, min: &str, max: &str| {
            Action::Add(deltalake::kernel::Add {
                path: path.into(),
                size: 10,
                data_change: true,
                stats: Some(format!(
                    r#"{{"numRecords":2,"minValues":{{"sale_id":"{min}"}},"maxValues":{{"sale_id":"{max}"}}}}"#
                )),
                ..Default::default()
            })
        };
        let touch = || {
            let mut keys = crate::delta::files::Keys::new(key.clone());
            let ids: deltalake::arrow::array::ArrayRef =
                std::sync::Arc::new(deltalake::arrow::array::StringArray::from(vec!["k-5"]));
            keys.insert(&[ids], 0);
            keys.seal();
            Touch {
                names: Default::default(),
                keys: Some(keys),
            }
        };
        // Rows of other keys: no conflict, b's commit goes on at the next version.
        a.commit(
            &rt,
            append("a", 1).with_actions(vec![with_keys("x.parquet", "m-1", "m-9")]),
        )
        .unwrap();
        let (none, upsert) = (HashSet::new(), touch());
        let read = || ReadSet {
            files: &none,
            touch: &upsert,
        };
        assert_eq!(b.commit(&rt, append("b", 1).reading(read())).unwrap(), 2);
        // Rows that may hold k-5: b's upsert did not see them and must be planned again.
        a.commit(
            &rt,
            append("a", 2).with_actions(vec![with_keys("y.parquet", "k-1", "k-9")]),
        )
        .unwrap();
        let err = b.commit(&rt, append("b", 2).reading(read())).err().unwrap();
        assert!(
            matches!(&err, CommitError::ReadChanged { version: 3, path } if path == "y.parquet"),
            "{err}"
        );
    }

    #[test]
    fn a_compaction_whose_files_another_writer_removed_is_refused() {
        let (_d, rt, mut a, mut b, _) = two_writers();
        let remove = |path: &str| {
            Action::Remove(deltalake::kernel::Remove {
                path: path.into(),
                data_change: false,
                deletion_timestamp: Some(0),
                extended_file_metadata: None,
                partition_values: None,
                size: None,
                tags: None,
                deletion_vector: None,
                base_row_id: None,
                default_row_commit_version: None,
            })
        };
        let optimize = || DeltaOperation::Optimize {
            predicate: None,
            target_size: 1,
        };
        a.commit(
            &rt,
            Commit::other(vec![remove("x.parquet")], optimize(), HashMap::new()),
        )
        .unwrap();
        let err = b
            .commit(
                &rt,
                Commit::other(vec![remove("x.parquet")], optimize(), HashMap::new())
                    .removing(["x.parquet".to_string()].into_iter().collect()),
            )
            .err()
            .unwrap();
        assert!(
            matches!(&err, CommitError::Fatal(e) if matches!(**e, DeltaError::Conflict { version: 1, .. })),
            "{err}"
        );
    }
}
