//! Step 3 of a commit: the screened files' rows written as Parquet data files (not committed),
//! their bad rows as the quarantine table's, and the records the intent, the commit and the
//! loaded index carry. For a `merge_key` feed the last row of each key is kept first; for a
//! feed whose rows change, what the commit replaces (`Touch`) is worked out here too.

use deltalake::arrow::record_batch::RecordBatch;
use deltalake::kernel::Add;
use deltalake::writer::DeltaWriter;

use super::committer::Committer;
use super::files::Touch;
use super::log::CommitError;
use super::quarantine::QuarantineRows;
use super::table::conform;
use crate::job::{FileData, ParsedFile};
use crate::state::FileRecord;

/// A commit written but not made: everything the steps after it need.
pub(super) struct Pending {
    pub(super) files: Vec<ParsedFile>,
    pub(super) records: Vec<FileRecord>,
    /// The data files of the commit.
    pub(super) adds: Vec<Add>,
    /// The quarantine table's data files (its bad rows).
    pub(super) q_adds: Vec<Add>,
    /// The rows this commit replaces (empty for a blind append).
    pub(super) touch: Touch,
    /// A change's new rows (kept only when `touch` is not empty), and its files that were
    /// streamed to Parquet by a worker (their rows are read back for the change).
    pub(super) new_rows: Vec<RecordBatch>,
    pub(super) streamed: Vec<Add>,
    /// Per file, the rows dropped for a later row of the same key.
    pub(super) duplicates: Vec<u64>,
    pub(super) rows: u64,
    pub(super) bad: u64,
    pub(super) warned: u64,
}

impl Committer {
    /// Writes the files' rows and bad rows, uncommitted.
    pub(super) fn prepare(&mut self, mut files: Vec<ParsedFile>) -> Result<Pending, CommitError> {
        // Upserts: the last row of each key in this commit (file order, then line order).
        let (duplicates, keys) = self.last_rows(&mut files)?;
        let touch = self.touch(&files, keys);
        let ingested_at = chrono::Utc::now().timestamp_micros();
        let mut q_rows = QuarantineRows::new(&self.feed.name, ingested_at);
        let mut p = Pending {
            files: Vec::new(),
            records: Vec::with_capacity(files.len()),
            adds: Vec::new(),
            q_adds: Vec::new(),
            touch,
            new_rows: Vec::new(),
            streamed: Vec::new(),
            duplicates,
            rows: 0,
            bad: 0,
            warned: 0,
        };
        let mut buffered = false;
        for f in files.iter_mut() {
            buffered |= self.write_data(f, &mut p)?;
            // Rows that can change get a data file per source file: a correction then removes
            // its earlier version's files whole instead of rewriting files it shares, and each
            // file's key range stays that of one export.
            if buffered && self.feed.mutable() {
                p.adds.extend(self.flush()?);
                buffered = false;
            }
            let name = f.job.name();
            q_rows.extend(&name, &f.hash, &f.bad);
            p.count(f, name);
        }
        if buffered {
            p.adds.extend(self.flush()?);
        }
        let t = &mut self.tables;
        p.q_adds = t.quarantine.write(&t.rt, q_rows)?;
        p.files = files;
        Ok(p)
    }

    /// One file's rows into the open data file (batches parsed in memory), or its data files as
    /// the worker streamed them. Returns whether rows were buffered in the writer.
    fn write_data(&mut self, f: &mut ParsedFile, p: &mut Pending) -> Result<bool, CommitError> {
        let keep = !p.touch.is_empty();
        match std::mem::replace(&mut f.data, FileData::Written(Vec::new())) {
            FileData::Batches(batches) => {
                let target = self.tables.writer.arrow_schema();
                let mut buffered = false;
                for b in batches {
                    // Parsed before a schema change: the new columns are null.
                    let b = conform(b, &target).map_err(CommitError::write)?;
                    if keep {
                        p.new_rows.push(b.clone());
                    }
                    let t = &mut self.tables;
                    t.rt.block_on(t.writer.write(b))
                        .map_err(CommitError::write)?;
                    buffered = true;
                }
                Ok(buffered)
            }
            FileData::Written(a) => {
                if keep {
                    p.streamed.extend(a.iter().cloned());
                }
                p.adds.extend(a);
                Ok(false)
            }
        }
    }

    fn flush(&mut self) -> Result<Vec<Add>, CommitError> {
        let t = &mut self.tables;
        t.rt.block_on(t.writer.flush()).map_err(CommitError::write)
    }
}

impl Pending {
    /// Counts `f` in and writes down its record.
    fn count(&mut self, f: &mut ParsedFile, name: String) {
        self.rows += f.rows;
        self.bad += f.bad.len() as u64;
        self.warned += f.warned;
        self.records.push(FileRecord {
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
}
