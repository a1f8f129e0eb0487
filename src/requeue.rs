//! Requeue: quarantined rows back through ingestion, under the config as it is now (after a
//! fix such as `decimal_separator = ","`). Each row is read again with the header of the file
//! it came from (found in `processed/` by name and content hash). Rows that now pass are
//! committed to the table and leave the quarantine table — the quarantine files that held them
//! are rewritten without them; rows that still fail stay, with their new error.
//!
//! Exactly once across a crash: both commits carry the same txn version under the feed's
//! requeue app id (`<app id>-requeue`), and both are written down first (`requeue.json` in the
//! feed's state folder); the next requeue (or the next daemon start) finishes whichever half is
//! missing. A requeue needs the daemon stopped: it takes the state lock, and says so if the
//! daemon holds it.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use deltalake::arrow::array::{Array, BooleanArray, Int64Array, StringArray};
use deltalake::arrow::compute::filter_record_batch;
use deltalake::arrow::record_batch::RecordBatch;
use deltalake::kernel::{Action, Add};
use deltalake::protocol::DeltaOperation;
use deltalake::{DeltaTable, DeltaTableError};
use serde::Serialize;
use serde_json::json;

use crate::config::{Config, Encoding, FeedConfig, FileFormat, Format, MaxBadRows, OnBadRow};
use crate::delta::log::Commit;
use crate::delta::table::{read_data_file, remove, txn_version};
use crate::delta::write::{self, TableWrite};
use crate::delta::{self, crash_point, quarantine, DeltaError, FeedTables};
use crate::error::Error;
use crate::ingest::{self, IngestError};
use crate::readiness::same_content;
use crate::state::{FeedState, RequeueIntent, StateError, StateLock};

/// What to requeue.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Only the rows of files of this name.
    pub file: Option<String>,
    /// Say what would happen; commit nothing.
    pub dry_run: bool,
}

/// What a requeue did (or, dry, would do).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub feed: String,
    pub dry_run: bool,
    /// A requeue a crash interrupted, finished first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_earlier: Option<String>,
    pub files: Vec<FileOutcome>,
    /// Rows that now pass (committed to the table unless dry).
    pub passed: u64,
    pub still_failing: u64,
    /// The versions of the requeue's commits (none when nothing changed, or dry).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table_version: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quarantine_version: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FileOutcome {
    pub name: String,
    pub hash: String,
    pub passed: u64,
    pub still_failing: u64,
    /// Why its rows were not read again (its file is not in processed/, say).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_read: Option<String>,
    /// The first row that still fails, and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
}

impl Report {
    pub fn summary(&self) -> String {
        let mut out = String::new();
        if let Some(f) = &self.finished_earlier {
            out.push_str(&format!("feed {}: {f}\n", self.feed));
        }
        for f in &self.files {
            out.push_str(&format!(
                "feed {}: {}: {} row(s) pass now, {} still fail",
                self.feed, f.name, f.passed, f.still_failing
            ));
            if let Some(why) = &f.not_read {
                out.push_str(&format!(" (not read again: {why})"));
            } else if let Some(e) = &f.first_error {
                out.push_str(&format!(" (first: {e})"));
            }
            out.push('\n');
        }
        let done = match (self.dry_run, self.table_version) {
            (true, _) => "dry run: nothing committed".to_string(),
            (false, Some(v)) => format!(
                "committed: table version {v}, quarantine version {}",
                self.quarantine_version.unwrap_or(-1)
            ),
            (false, None) => "nothing changed".to_string(),
        };
        out.push_str(&format!(
            "feed {}: {} row(s) pass now, {} still fail; {done}\n",
            self.feed, self.passed, self.still_failing
        ));
        out
    }
}

/// One quarantined row and what became of it.
struct Row {
    /// Index of its data file in the quarantine table, batch and row there.
    at: (usize, usize, usize),
    source_file: String,
    hash: String,
    line: i64,
    raw: Option<String>,
    old_error: String,
    outcome: Outcome,
}

#[derive(Clone, PartialEq)]
enum Outcome {
    /// Not read again.
    Same,
    Passed,
    Failing {
        error: String,
        column: Option<String>,
    },
}

/// A quarantine data file and its rows.
struct QFile {
    path: String,
    size: u64,
    partition: HashMap<String, Option<String>>,
    batches: Vec<RecordBatch>,
}

/// Requeues the feed's quarantined rows (see the module's description).
pub fn requeue(cfg: &Config, feed: &FeedConfig, opts: &Options) -> Result<Report, Error> {
    let _lock = StateLock::acquire(&cfg.state_dir).map_err(|e| match e {
        StateError::Locked { ref path } => Error::Locked {
            message: format!(
                "deltadrop is running on state folder {}: stop it first (a requeue commits to the table and rewrites the quarantine table, which the daemon's committer must not do at the same time)",
                path.display()
            ),
            source: e,
        },
        other => Error::State(other),
    })?;
    let mut state = FeedState::open(&cfg.state_dir, &feed.name)?;
    let mut report = Report {
        feed: feed.name.clone(),
        dry_run: opts.dry_run,
        ..Report::default()
    };
    let Some(tables) = FeedTables::existing(feed)? else {
        return Ok(report);
    };
    let app_id = format!("{}-requeue", feed.app_id);
    report.finished_earlier = settle(&tables, &mut state, feed)?;
    let rt = &tables.rt;
    // The quarantine table as it is now (the settle above may have committed to it).
    let qtable = reload(rt, &tables.quarantine, feed)?;
    let (files, mut rows) = quarantined(rt, &qtable, opts.file.as_deref())?;
    let good = read_again(feed, &tables, &mut rows, &mut report);
    if opts.dry_run || !changed(&rows) {
        return Ok(report);
    }
    // The data of both commits, written before either.
    let mut writer = TableWrite::new(rt, &tables.table)?;
    for b in good {
        writer
            .write(b)
            .map_err(DeltaError::from_table(&tables.table))?;
    }
    let table_adds = writer
        .flush()
        .map_err(DeltaError::from_table(&tables.table))?;
    let (quarantine_removes, quarantine_adds) = rewrite(rt, &qtable, &files, &rows)?;
    let txn = [
        txn_version(rt, &tables.table, &app_id)?,
        txn_version(rt, &qtable, &app_id)?,
    ]
    .into_iter()
    .flatten()
    .max()
    .unwrap_or(0)
        + 1;
    let intent = RequeueIntent {
        app_id,
        txn,
        table_adds,
        rows: report.passed,
        quarantine_removes,
        quarantine_adds,
    };
    commit_both(&tables, &qtable, &mut state, feed, &intent, &mut report)?;
    Ok(report)
}

/// Both commits of a requeue, exactly once: the intent first, then the table's commit, then
/// the quarantine table's (a crash between them is finished by [`settle`]).
fn commit_both(
    tables: &FeedTables,
    qtable: &DeltaTable,
    state: &mut FeedState,
    feed: &FeedConfig,
    intent: &RequeueIntent,
    report: &mut Report,
) -> Result<(), Error> {
    let rt = &tables.rt;
    state.write_requeue(Some(intent))?;
    crash_point("requeue_after_intent");
    report.table_version = Some(commit_table(&tables.table, rt, feed, intent)?);
    crash_point("requeue_after_table");
    report.quarantine_version = Some(commit_quarantine(qtable, rt, feed, intent)?);
    state.write_requeue(None)?;
    log::info!(
        "feed {}: requeue txn {}: {} row(s) committed to the table (version {}), {} still in quarantine",
        feed.name,
        intent.txn,
        report.passed,
        report.table_version.unwrap_or(-1),
        report.still_failing
    );
    Ok(())
}

/// Reads every quarantined row again, file by file of origin (name and content), under the
/// feed's config as it is now; sets each row's outcome, fills the report's per-file counts,
/// and returns the rows that pass as table rows.
fn read_again(
    feed: &FeedConfig,
    tables: &FeedTables,
    rows: &mut [Row],
    report: &mut Report,
) -> Vec<RecordBatch> {
    let mut good: Vec<RecordBatch> = Vec::new();
    let mut groups: BTreeMap<(String, String), Vec<usize>> = BTreeMap::new();
    for (i, r) in rows.iter().enumerate() {
        groups
            .entry((r.source_file.clone(), r.hash.clone()))
            .or_default()
            .push(i);
    }
    for ((name, hash), members) in &groups {
        let outcome = reparse(feed, tables, name, hash, members, rows, &mut good);
        report
            .files
            .push(file_outcome(name, hash, members, rows, outcome.err()));
    }
    report.passed = report.files.iter().map(|f| f.passed).sum();
    report.still_failing = report.files.iter().map(|f| f.still_failing).sum();
    good
}

/// What became of the rows `members` of one file of origin.
fn file_outcome(
    name: &str,
    hash: &str,
    members: &[usize],
    rows: &[Row],
    not_read: Option<String>,
) -> FileOutcome {
    let (passed, failing): (Vec<&Row>, Vec<&Row>) = members
        .iter()
        .map(|i| &rows[*i])
        .partition(|r| r.outcome == Outcome::Passed);
    let first_error = failing.iter().find_map(|r| match &r.outcome {
        Outcome::Failing { error, .. } => Some(format!("line {}: {error}", r.line)),
        _ => None,
    });
    FileOutcome {
        name: name.to_string(),
        hash: hash.to_string(),
        passed: passed.len() as u64,
        still_failing: failing.len() as u64,
        not_read,
        first_error,
    }
}

/// Whether a requeue changes anything: a row passes now, or fails with another error.
fn changed(rows: &[Row]) -> bool {
    rows.iter().any(|r| match &r.outcome {
        Outcome::Same => false,
        Outcome::Passed => true,
        Outcome::Failing { error, .. } => *error != r.old_error,
    })
}

/// Finishes a requeue a crash interrupted: whichever of its two commits did not land is made
/// now. Returns what was done, if anything. Also called when a committer starts.
pub fn settle(
    tables: &FeedTables,
    state: &mut FeedState,
    feed: &FeedConfig,
) -> Result<Option<String>, Error> {
    let Some(intent) = state.requeue()? else {
        return Ok(None);
    };
    let rt = &tables.rt;
    let table = reload(rt, &tables.table, feed)?;
    let qtable = reload(rt, &tables.quarantine, feed)?;
    let landed = |t: &DeltaTable| -> Result<bool, Error> {
        Ok(txn_version(rt, t, &intent.app_id)?.is_some_and(|v| v >= intent.txn))
    };
    let mut done = Vec::new();
    if !landed(&table)? {
        let v = commit_table(&table, rt, feed, &intent)?;
        done.push(format!(
            "its {} row(s) committed to the table (version {v})",
            intent.rows
        ));
    }
    if !landed(&qtable)? {
        let v = commit_quarantine(&qtable, rt, feed, &intent)?;
        done.push(format!("the quarantine table rewritten (version {v})"));
    }
    state.write_requeue(None)?;
    let what = if done.is_empty() {
        format!("requeue txn {} had landed before the last stop", intent.txn)
    } else {
        format!(
            "requeue txn {} interrupted before the last stop, finished: {}",
            intent.txn,
            done.join("; ")
        )
    };
    log::info!("feed {}: {what}", feed.name);
    Ok(Some(what))
}

fn reload(
    rt: &tokio::runtime::Runtime,
    t: &DeltaTable,
    feed: &FeedConfig,
) -> Result<DeltaTable, Error> {
    let url = t.table_url().clone();
    rt.block_on(crate::delta::table::load(&url, &feed.storage_options, None))
        .map_err(|e| Error::Delta(DeltaError::from_table(t)(e)))
}

fn commit_table(
    table: &DeltaTable,
    rt: &tokio::runtime::Runtime,
    feed: &FeedConfig,
    intent: &RequeueIntent,
) -> Result<i64, Error> {
    let meta: HashMap<String, serde_json::Value> = [(
        "deltadrop".to_string(),
        json!({"feed": feed.name, "appId": intent.app_id, "txn": intent.txn,
               "rows": intent.rows, "requeue": true}),
    )]
    .into_iter()
    .collect();
    let actions = intent.table_adds.iter().cloned().map(Action::Add).collect();
    let commit = Commit::append(actions, meta, &intent.app_id, intent.txn);
    write::commit(rt, table, commit)
        .map_err(DeltaError::step(table.table_url(), "requeue commit"))
        .map_err(Error::from)
}

fn commit_quarantine(
    qtable: &DeltaTable,
    rt: &tokio::runtime::Runtime,
    feed: &FeedConfig,
    intent: &RequeueIntent,
) -> Result<i64, Error> {
    let replaced = intent
        .quarantine_removes
        .iter()
        .map(|r| r.path.clone())
        .collect();
    let mut actions: Vec<Action> = intent
        .quarantine_removes
        .iter()
        .cloned()
        .map(Action::Remove)
        .collect();
    actions.extend(intent.quarantine_adds.iter().cloned().map(Action::Add));
    let meta: HashMap<String, serde_json::Value> = [(
        "deltadrop".to_string(),
        json!({"feed": feed.name, "appId": intent.app_id, "txn": intent.txn,
               "requeuedRows": intent.rows}),
    )]
    .into_iter()
    .collect();
    let op = DeltaOperation::Delete {
        predicate: Some("requeued rows".into()),
    };
    let commit = Commit::other(actions, op, meta)
        .with_txn(&intent.app_id, intent.txn)
        .removing(replaced);
    write::commit(rt, qtable, commit)
        .map_err(DeltaError::step(qtable.table_url(), "requeue commit"))
        .map_err(Error::from)
}

/// The quarantine table's files and its rows (of files named `only`, if given).
fn quarantined(
    rt: &tokio::runtime::Runtime,
    qtable: &DeltaTable,
    only: Option<&str>,
) -> Result<(Vec<QFile>, Vec<Row>), Error> {
    let err = DeltaError::from_table(qtable);
    let snapshot = qtable.snapshot().map_err(&err)?;
    let mut files = Vec::new();
    let mut rows = Vec::new();
    for f in snapshot.log_data().iter() {
        let path = f.path().to_string();
        let batches = read_data_file(rt, qtable, &path).map_err(&err)?;
        let fi = files.len();
        for (bi, b) in batches.iter().enumerate() {
            let text = |name: &str| {
                b.column_by_name(name)
                    .and_then(|c| c.as_any().downcast_ref::<StringArray>().cloned())
            };
            let (Some(source), Some(hash), Some(raw), Some(error)) = (
                text("source_file"),
                text("file_hash"),
                text("raw_line"),
                text("error"),
            ) else {
                continue;
            };
            let lines = b
                .column_by_name("line_number")
                .and_then(|c| c.as_any().downcast_ref::<Int64Array>().cloned());
            for r in 0..b.num_rows() {
                if only.is_some_and(|n| n != source.value(r)) {
                    continue;
                }
                rows.push(Row {
                    at: (fi, bi, r),
                    source_file: source.value(r).to_string(),
                    hash: hash.value(r).to_string(),
                    line: lines.as_ref().map_or(0, |l| l.value(r)),
                    raw: (!raw.is_null(r)).then(|| raw.value(r).to_string()),
                    old_error: error.value(r).to_string(),
                    outcome: Outcome::Same,
                });
            }
        }
        files.push(QFile {
            path,
            size: f.size().max(0) as u64,
            partition: f.partition_values_map(),
            batches,
        });
    }
    Ok((files, rows))
}

/// The start of a CSV text holding a file's rows again: the delimiter named on a `sep=` line,
/// then the header of the original (found in processed/ by its content), and the line the
/// first row will be on.
fn csv_head(feed: &FeedConfig, name: &str, hash: &str) -> Result<(Vec<u8>, u64), String> {
    let original = find_original(&feed.processed, name, hash).ok_or_else(|| {
        format!(
            "its file is not in {} (on_success = \"delete\", or it was moved): the header it was read with is unknown",
            feed.processed.display()
        )
    })?;
    let header = if feed.csv.header {
        Some(header_of(&original, feed).map_err(|e| e.to_string())?)
    } else {
        None
    };
    let (header, delimiter) = match header {
        Some((h, d)) => (Some(h), d),
        None => (None, feed.csv.delimiter.unwrap_or(b',')),
    };
    let mut text = format!("sep={}\n", delimiter as char).into_bytes();
    let mut line = 2u64;
    if let Some(h) = &header {
        text.extend_from_slice(h);
        if !h.ends_with(b"\n") {
            text.push(b'\n');
        }
        line += ingest::split::count_newlines(h) as u64 + u64::from(!h.ends_with(b"\n"));
    }
    Ok((text, line))
}

/// [`csv_head`] for a workbook: the header line of its sheet as the daemon laid it out.
fn sheet_head(
    feed: &FeedConfig,
    tables: &FeedTables,
    name: &str,
    hash: &str,
) -> Result<(Vec<u8>, u64), String> {
    let original = find_original(&feed.processed, name, hash).ok_or_else(|| {
        format!(
            "its workbook is not in {} (on_success = \"delete\", or it was moved): the header it was read with is unknown",
            feed.processed.display()
        )
    })?;
    let bytes = std::fs::read(&original).map_err(|e| e.to_string())?;
    let sheet =
        ingest::workbook_sheet(bytes, name, feed, &tables.schema).map_err(|e| e.to_string())?;
    let end = memchr::memchr(b'\n', &sheet.csv).map_or(sheet.csv.len(), |i| i + 1);
    let mut text = b"sep=,\n".to_vec();
    text.extend_from_slice(&sheet.csv[..end]);
    // The sep= line is line 1; the header's line ends (a header cell may hold one) end it.
    let line = 2 + memchr::memchr_iter(b'\n', &sheet.csv[..end]).count() as u64;
    Ok((text, line))
}

/// Reads the rows `members` (of the file `name`, content `hash`) again under the feed's config:
/// their outcomes are set, and the rows that pass are added to `good`. Err: why they could not
/// be read again (their outcomes stay `Same`).
fn reparse(
    feed: &FeedConfig,
    tables: &FeedTables,
    name: &str,
    hash: &str,
    members: &[usize],
    rows: &mut [Row],
    good: &mut Vec<RecordBatch>,
) -> Result<(), String> {
    // A file of the same name as the original, so that `_source_file` stays what it was (and
    // `format = "auto"` reads it as the original was read), then each row on the line noted.
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let path = dir.path().join(name);
    let format = feed.format_of(&path);
    let (mut text, mut line) = match format {
        // A JSON line carries its own names: no header to find. A Parquet row was kept as a
        // JSON object of its values' text (`ingest::columnar`): read as a JSON line too.
        FileFormat::Ndjson | FileFormat::Parquet => (Vec::new(), 1u64),
        FileFormat::Excel => sheet_head(feed, tables, name, hash)?,
        FileFormat::Csv => csv_head(feed, name, hash)?,
    };
    let mut start_of_row: HashMap<u64, usize> = HashMap::new();
    let mut read: Vec<usize> = Vec::new();
    for &i in members {
        let Some(raw) = &rows[i].raw else { continue };
        start_of_row.insert(line, i);
        read.push(i);
        text.extend_from_slice(raw.as_bytes());
        text.push(b'\n');
        line += 1 + ingest::split::count_newlines(raw.as_bytes()) as u64;
    }
    std::fs::write(&path, &text).map_err(|e| e.to_string())?;
    // A workbook's rows were kept as the CSV text of its sheet (`ingest::excel`): read as that.
    let mut again = match format {
        FileFormat::Excel => {
            let mut f = ingest::sheet_feed(feed);
            f.format = Format::Csv;
            f
        }
        FileFormat::Parquet => {
            let mut f = feed.clone();
            f.format = Format::Ndjson;
            f
        }
        FileFormat::Csv | FileFormat::Ndjson => feed.clone(),
    };
    again.encoding = Encoding::Fixed(encoding_rs::UTF_8);
    again.csv.skip_rows = 0;
    again.csv.skip_footer = 0;
    again.on_bad_row = OnBadRow::Quarantine;
    again.max_bad_rows = MaxBadRows::Unlimited;
    let mut batches = Vec::new();
    let now = chrono::Utc::now().timestamp_micros();
    let parsed = ingest::parse_file(&path, &again, &tables.schema, now, |b| {
        batches.push(b);
        Ok(())
    });
    match parsed {
        Ok(summary) => {
            for &i in &read {
                rows[i].outcome = Outcome::Passed;
            }
            for b in summary.bad {
                if let Some(&i) = start_of_row.get(&b.line) {
                    rows[i].outcome = Outcome::Failing {
                        error: b.error,
                        column: b.column,
                    };
                }
            }
            good.extend(batches);
        }
        Err(IngestError::Reject(why) | IngestError::Fail(why)) => {
            for &i in &read {
                rows[i].outcome = Outcome::Failing {
                    error: why.clone(),
                    column: None,
                };
            }
        }
        Err(e) => return Err(e.to_string()),
    }
    Ok(())
}

/// The archived file `name` whose content hash is `hash`: `processed/name` or one of the free
/// names the archive gave later copies (`stem.N.ext`).
fn find_original(processed: &Path, name: &str, hash: &str) -> Option<PathBuf> {
    let (stem, ext) = match name.rfind('.') {
        Some(i) if i > 0 => (&name[..i], &name[i..]),
        _ => (name, ""),
    };
    let rd = std::fs::read_dir(processed).ok()?;
    rd.flatten()
        .map(|e| e.path())
        .filter(|p| {
            let Some(n) = p.file_name().and_then(|n| n.to_str()) else {
                return false;
            };
            n == name
                || n.strip_prefix(&format!("{stem}."))
                    .and_then(|r| r.strip_suffix(ext))
                    .is_some_and(|k| !k.is_empty() && k.bytes().all(|b| b.is_ascii_digit()))
        })
        .find(|p| same_content(p, hash))
}

/// The header record of a file as the feed reads it (its raw text, as UTF-8), and its
/// delimiter.
fn header_of(path: &Path, feed: &FeedConfig) -> Result<(Vec<u8>, u8), IngestError> {
    let file = std::fs::File::open(path)?;
    let (text, _, _) = ingest::source::open_text(file, feed.encoding)?;
    ingest::header_record(text, &crate::job::file_name(path), feed).map(|(h, d)| (h, d.delimiter))
}

/// Writes the quarantine table's affected files again: without the rows that pass, with the new
/// errors of the rows that still fail. Returns (removes, adds).
fn rewrite(
    rt: &tokio::runtime::Runtime,
    qtable: &DeltaTable,
    files: &[QFile],
    rows: &[Row],
) -> Result<(Vec<deltalake::kernel::Remove>, Vec<Add>), Error> {
    let err = DeltaError::from_table(qtable);
    let mut by_file: HashMap<usize, Vec<&Row>> = HashMap::new();
    for r in rows.iter().filter(|r| r.outcome != Outcome::Same) {
        by_file.entry(r.at.0).or_default().push(r);
    }
    let mut writer = TableWrite::new(rt, qtable)?;
    let mut removes = Vec::new();
    let schema = quarantine::schema();
    for (fi, changed) in by_file {
        let f = &files[fi];
        for (bi, b) in f.batches.iter().enumerate() {
            let mine: HashMap<usize, &Outcome> = changed
                .iter()
                .filter(|r| r.at.1 == bi)
                .map(|r| (r.at.2, &r.outcome))
                .collect();
            let keep: BooleanArray = (0..b.num_rows())
                .map(|r| Some(mine.get(&r) != Some(&&Outcome::Passed)))
                .collect();
            let replaced = |name: &str, new: &dyn Fn(&Outcome) -> Option<Option<String>>| {
                let old = b
                    .column_by_name(name)
                    .and_then(|c| c.as_any().downcast_ref::<StringArray>().cloned());
                let values: StringArray = (0..b.num_rows())
                    .map(|r| match mine.get(&r).and_then(|o| new(o)) {
                        Some(v) => v,
                        None => old
                            .as_ref()
                            .and_then(|o| (!o.is_null(r)).then(|| o.value(r).to_string())),
                    })
                    .collect();
                Arc::new(values) as Arc<dyn Array>
            };
            let error = replaced("error", &|o| match o {
                Outcome::Failing { error, .. } => Some(Some(error.clone())),
                _ => None,
            });
            let column = replaced("column", &|o| match o {
                Outcome::Failing { column, .. } => Some(column.clone()),
                _ => None,
            });
            let columns = schema
                .fields()
                .iter()
                .map(|field| match field.name().as_str() {
                    "error" => Ok(error.clone()),
                    "column" => Ok(column.clone()),
                    other => b.column_by_name(other).cloned().ok_or_else(|| {
                        DeltaTableError::Generic(format!("{}: no column {other}", f.path))
                    }),
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(&err)?;
            let batch = RecordBatch::try_new(schema.clone(), columns)
                .and_then(|b| filter_record_batch(&b, &keep))
                .map_err(|e| err(delta::failed(format!("{}: requeued rows", f.path), e)))?;
            if batch.num_rows() > 0 {
                writer.write(batch).map_err(&err)?;
            }
        }
        if let Action::Remove(r) = remove(&f.path, f.size, &f.partition, true) {
            removes.push(r);
        }
    }
    let adds = writer.flush().map_err(&err)?;
    Ok((removes, adds))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(line: i64, old_error: &str, outcome: Outcome) -> Row {
        Row {
            at: (0, 0, line as usize),
            source_file: "a.csv".into(),
            hash: "h".into(),
            line,
            raw: Some("x".into()),
            old_error: old_error.into(),
            outcome,
        }
    }

    fn failing(error: &str) -> Outcome {
        Outcome::Failing {
            error: error.into(),
            column: None,
        }
    }

    #[test]
    fn a_requeue_changes_something_only_if_a_row_passes_or_its_error_changed() {
        assert!(!changed(&[row(2, "bad", Outcome::Same)]));
        assert!(!changed(&[row(2, "bad", failing("bad"))]));
        assert!(changed(&[row(2, "bad", failing("worse"))]));
        assert!(changed(&[
            row(2, "bad", failing("bad")),
            row(3, "bad", Outcome::Passed)
        ]));
    }

    #[test]
    fn a_file_outcome_counts_its_rows_and_names_the_first_that_still_fails() {
        let rows = vec![
            row(2, "bad", Outcome::Passed),
            row(3, "bad", failing("not a number")),
            row(4, "bad", failing("empty")),
            row(5, "bad", Outcome::Passed),
        ];
        let o = file_outcome("a.csv", "h", &[0, 1, 2], &rows, None);
        assert_eq!((o.passed, o.still_failing), (1, 2));
        assert_eq!(o.first_error.as_deref(), Some("line 3: not a number"));
        let o = file_outcome("a.csv", "h", &[3], &rows, None);
        assert_eq!((o.passed, o.still_failing, o.first_error), (1, 0, None));
    }

    #[test]
    fn the_original_is_found_by_content_among_the_archive_s_free_names() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        std::fs::write(p.join("a.csv"), "second").unwrap();
        std::fs::write(p.join("a.1.csv"), "first").unwrap();
        std::fs::write(p.join("a.x.csv"), "first").unwrap();
        std::fs::write(p.join("ab.csv"), "first").unwrap();
        let hash = |s: &str| blake3::hash(s.as_bytes()).to_hex().to_string();
        assert_eq!(
            find_original(p, "a.csv", &hash("first")),
            Some(p.join("a.1.csv"))
        );
        assert_eq!(
            find_original(p, "a.csv", &hash("second")),
            Some(p.join("a.csv"))
        );
        assert_eq!(find_original(p, "a.csv", &hash("third")), None);
        assert_eq!(
            find_original(&p.join("missing"), "a.csv", &hash("first")),
            None
        );
    }
}
