//! Maintain stage: keeps a feed's tables fast to read as they grow. Small files and a long log
//! are what make Delta tables slow; this bin-packs small Parquet files into target-size ones,
//! deletes files no reader needs any more, and writes a checkpoint (removing expired log files).
//!
//! Compaction commits `remove` + `add` actions with `dataChange = false` (operation OPTIMIZE):
//! streaming readers (Spark `readStream`) skip such commits, so they never see a row twice. It
//! goes through the same flat commit path as ingestion, concurrently with it: on a version
//! conflict it reads the other commits, and gives up (committing nothing) if one of them
//! removed a file it was replacing — another compaction got there first.

use std::collections::{HashMap, HashSet};
use std::future::IntoFuture;
use std::sync::Arc;
use std::time::{Duration, Instant};

use deltalake::arrow::compute::{concat_batches, sort_to_indices, take_record_batch};
use deltalake::arrow::record_batch::RecordBatch;
use deltalake::kernel::Action;
use deltalake::logstore::object_store::ObjectStoreExt;
use deltalake::operations::vacuum::VacuumMode;
use deltalake::protocol::DeltaOperation;
use deltalake::{DeltaTable, DeltaTableError};
use serde::Serialize;
use serde_json::json;

use crate::config::{FeedConfig, MaintenanceConfig, StorageOptions};
use crate::counters::{Event, FeedCounters};
use crate::delta::log::{Commit, CommitError};
use crate::delta::write::{self, TableWrite};
use crate::delta::{self, checkpoint, table, DeltaError};
use crate::shutdown::Shutdown;

/// At most this many bytes of small files are rewritten per table per run, so that one run
/// stays short; the next run goes on.
const MAX_BYTES_PER_RUN: u64 = 1024 * 1024 * 1024;

/// What one maintenance run did to one table.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Report {
    pub table: String,
    /// Data files in the table before and after.
    pub files_before: usize,
    pub files_after: usize,
    /// Small files replaced, the files that replaced them, and the bytes read to do it.
    pub compacted: usize,
    pub written: usize,
    pub bytes_compacted: u64,
    /// The compaction's commit, if there was one.
    pub compaction_version: Option<i64>,
    /// Why compaction did nothing, if it did nothing.
    pub compaction_skipped: Option<String>,
    /// Files deleted by vacuum (no longer in the table, older than the retention).
    pub vacuumed: usize,
    pub checkpoint_version: Option<i64>,
    pub millis: u128,
}

impl Report {
    pub fn summary(&self) -> String {
        let compaction = match (&self.compaction_skipped, self.compaction_version) {
            (Some(why), _) => format!("no compaction ({why})"),
            (None, Some(v)) => format!(
                "compacted {} small file(s) ({:.1} MB) into {} at version {v}",
                self.compacted,
                self.bytes_compacted as f64 / 1e6,
                self.written
            ),
            (None, None) => "no compaction".to_string(),
        };
        format!(
            "table {}: {compaction}; {} → {} data file(s); vacuum deleted {} file(s); checkpoint at version {}; {} ms",
            self.table,
            self.files_before,
            self.files_after,
            self.vacuumed,
            self.checkpoint_version
                .map(|v| v.to_string())
                .unwrap_or_else(|| "-".into()),
            self.millis
        )
    }
}

/// Maintains a feed's table and its quarantine table. `stop` is checked between steps; a run
/// stopped half-way commits nothing of the step it was in.
pub fn maintain_feed(
    feed: &FeedConfig,
    cfg: &MaintenanceConfig,
    stop: &Shutdown,
) -> Result<Vec<Report>, DeltaError> {
    let rt = delta::runtime()?;
    let run = Maintenance {
        rt: &rt,
        cfg,
        options: &feed.storage_options,
        stop,
    };
    let mut reports = Vec::new();
    for (url, sort_by) in [
        (&feed.table_url, cfg.sort_by.as_deref()),
        (&feed.quarantine_url, None),
    ] {
        if stop.is_triggered() {
            break;
        }
        let Some(table) = rt.block_on(table::open_existing(url, &feed.storage_options))? else {
            continue;
        };
        reports.push(run.table(table, sort_by)?);
    }
    Ok(reports)
}

/// One maintenance run over a feed's tables: its runtime, settings and stop signal.
struct Maintenance<'a> {
    rt: &'a tokio::runtime::Runtime,
    cfg: &'a MaintenanceConfig,
    options: &'a StorageOptions,
    stop: &'a Shutdown,
}

impl Maintenance<'_> {
    /// Compaction, vacuum and a checkpoint of one table; `sort_by` orders compacted files.
    fn table(&self, table: DeltaTable, sort_by: Option<&str>) -> Result<Report, DeltaError> {
        let (rt, cfg, stop) = (self.rt, self.cfg, self.stop);
        let started = Instant::now();
        let url = table.table_url().clone();
        let err = |e: DeltaTableError| DeltaError::Table {
            url: url.to_string(),
            source: Box::new(e),
        };
        let mut report = Report {
            table: url.to_string(),
            ..Report::default()
        };
        let files = data_files(&table).map_err(err)?;
        report.files_before = files.len();
        let bins = plan(&files, cfg);
        if bins.is_empty() {
            let small = files
                .iter()
                .filter(|f| f.size < cfg.target_file_bytes / 2)
                .count();
            report.compaction_skipped = Some(format!(
                "{small} small file(s), compaction starts at {}",
                cfg.compact_min_files
            ));
        } else if !stop.is_triggered() {
            self.compact(&table, &bins, sort_by, &mut report)?;
        }

        if stop.is_triggered() {
            report.millis = started.elapsed().as_millis();
            return Ok(report);
        }
        // Loaded again: the compaction was committed through the flat path, past this snapshot.
        let table = rt
            .block_on(table::load(&url, self.options, None))
            .map_err(err)?;
        // Vacuum hands back the table as of its own last commit: that is what gets counted and
        // checkpointed, without loading it a third time.
        let (table, vacuumed) = vacuum(rt, table, cfg.vacuum_retention).map_err(err)?;
        report.vacuumed = vacuumed;
        report.files_after = data_files(&table).map_err(err)?.len();
        rt.block_on(checkpoint::checkpoint_table(&table))
            .map_err(err)?;
        report.checkpoint_version = Some(table.version().unwrap_or(0) as i64);
        report.millis = started.elapsed().as_millis();
        Ok(report)
    }
}

#[derive(Debug, Clone)]
struct DataFile {
    path: String,
    size: u64,
    modified: i64,
    /// Partition column → value as the log writes it (None: null).
    partition: HashMap<String, Option<String>>,
}

fn data_files(table: &DeltaTable) -> Result<Vec<DataFile>, DeltaTableError> {
    Ok(table
        .snapshot()?
        .log_data()
        .iter()
        .map(|f| DataFile {
            path: f.path().to_string(),
            size: f.size().max(0) as u64,
            modified: f.modification_time(),
            partition: f.partition_values_map(),
        })
        .collect())
}

/// Bins of small files (under half the target size) within one partition, oldest first so
/// that rows that arrived together stay together, each bin up to the target size; single-file
/// bins are dropped. A partition with fewer small files than `compact_min_files` is left alone.
fn plan(files: &[DataFile], cfg: &MaintenanceConfig) -> Vec<Vec<DataFile>> {
    let mut partitions: std::collections::BTreeMap<Vec<(String, Option<String>)>, Vec<&DataFile>> =
        Default::default();
    for f in files.iter().filter(|f| f.size < cfg.target_file_bytes / 2) {
        let mut key: Vec<_> = f.partition.clone().into_iter().collect();
        key.sort();
        partitions.entry(key).or_default().push(f);
    }
    let mut bins: Vec<Vec<DataFile>> = Vec::new();
    let mut total = 0u64;
    for (_, mut small) in partitions {
        if small.len() < cfg.compact_min_files {
            continue;
        }
        small.sort_by(|a, b| a.modified.cmp(&b.modified).then(a.path.cmp(&b.path)));
        let mut bin: Vec<DataFile> = Vec::new();
        let mut bin_bytes = 0u64;
        for f in small {
            if total + f.size > MAX_BYTES_PER_RUN {
                break;
            }
            if !bin.is_empty() && bin_bytes + f.size > cfg.target_file_bytes {
                bins.push(std::mem::take(&mut bin));
                bin_bytes = 0;
            }
            bin_bytes += f.size;
            total += f.size;
            bin.push(f.clone());
        }
        bins.push(bin);
    }
    bins.retain(|b| b.len() > 1);
    bins
}

impl Maintenance<'_> {
    /// Rewrites each bin of small files into one file and commits the swap (`dataChange =
    /// false`); nothing is committed if the run is stopped or another writer got there first.
    fn compact(
        &self,
        table: &DeltaTable,
        bins: &[Vec<DataFile>],
        sort_by: Option<&str>,
        report: &mut Report,
    ) -> Result<(), DeltaError> {
        let (rt, cfg, stop) = (self.rt, self.cfg, self.stop);
        let url = table.table_url().clone();
        let err = |e: DeltaTableError| DeltaError::Table {
            url: url.to_string(),
            source: Box::new(e),
        };
        let schema = std::sync::Arc::new(table::table_arrow_schema(table)?);
        let mut writer = TableWrite::new(rt, table)?;
        let mut adds = Vec::new();
        let mut removes = Vec::new();
        for bin in bins {
            if stop.is_triggered() {
                writer.discard(&adds);
                return Ok(());
            }
            let mut batches = Vec::new();
            for f in bin {
                batches.extend(
                    table::read_rows(rt, table, &schema, &f.path, &f.partition).map_err(err)?,
                );
                removes.push(table::remove(&f.path, f.size, &f.partition, false));
                report.bytes_compacted += f.size;
            }
            for b in sorted(batches, &schema, sort_by).map_err(err)? {
                writer.write(b).map_err(err)?;
            }
            // One output file per bin (the writer also rolls at the target size).
            adds.extend(writer.flush().map_err(err)?);
            report.compacted += bin.len();
        }
        report.written = adds.len();
        let mut actions: Vec<Action> = adds
            .iter()
            .cloned()
            .map(|mut a| {
                a.data_change = false;
                Action::Add(a)
            })
            .collect();
        actions.extend(removes);
        let replaced = bins
            .iter()
            .flatten()
            .map(|f| f.path.clone())
            .collect::<HashSet<_>>();
        let meta: HashMap<String, serde_json::Value> = [(
            "deltadrop.maintenance".to_string(),
            json!({ "compacted": report.compacted, "written": report.written, "sortBy": sort_by }),
        )]
        .into_iter()
        .collect();
        let op = DeltaOperation::Optimize {
            predicate: None,
            target_size: cfg.target_file_bytes as i64,
        };
        match write::commit(
            rt,
            table,
            Commit::other(actions, op, meta).removing(replaced),
        ) {
            Ok(v) => {
                report.compaction_version = Some(v);
                Ok(())
            }
            Err(e) => {
                writer.discard(&adds);
                Err(match e {
                    CommitError::Fatal(e) => *e,
                    other => DeltaError::step(&url, "compaction commit")(other),
                })
            }
        }
    }
}

/// With a sort column, one bin's rows sorted by it (so each new file covers a narrow range of
/// it and readers skip files by their min/max statistics); else the batches as they are.
fn sorted(
    batches: Vec<RecordBatch>,
    schema: &deltalake::arrow::datatypes::SchemaRef,
    sort_by: Option<&str>,
) -> Result<Vec<RecordBatch>, DeltaTableError> {
    let Some(col) = sort_by else {
        return Ok(batches);
    };
    let generic =
        |e: deltalake::arrow::error::ArrowError| delta::failed(format!("sorting by {col}"), e);
    let all = concat_batches(schema, &batches).map_err(generic)?;
    drop(batches);
    let Some(key) = all.column_by_name(col) else {
        return Ok(vec![all]);
    };
    let idx = sort_to_indices(key, None, None).map_err(generic)?;
    Ok(vec![take_record_batch(&all, &idx).map_err(generic)?])
}

/// Deletes files no longer in the table (removed by compaction, or orphaned by a failed
/// write) once older than `retention`; returns the table after it and how many.
fn vacuum(
    rt: &tokio::runtime::Runtime,
    table: DeltaTable,
    retention: Duration,
) -> Result<(DeltaTable, usize), DeltaTableError> {
    let retention =
        chrono::Duration::from_std(retention).map_err(|e| delta::failed("vacuum retention", e))?;
    // Below the table's own minimum (delta.deletedFileRetentionDuration, 7 days by default)
    // only on purpose: the retention was set lower in the config or on the command line.
    // deltalake (without datafusion) refuses to commit to a table with the change data feed
    // (writer version 4), and vacuum records its start and end as commits: there it only
    // lists, and deltadrop deletes. The two commits are informational; no reader needs them.
    let listing_only = deltalake::kernel::transaction::PROTOCOL
        .can_write_to(table.snapshot()?)
        .is_err();
    let (table, metrics) = rt.block_on(
        table
            .vacuum()
            .with_retention_period(retention)
            .with_enforce_retention_duration(false)
            .with_mode(VacuumMode::Full)
            .with_dry_run(listing_only)
            .into_future(),
    )?;
    if listing_only {
        let store = table.object_store();
        for f in &metrics.files_deleted {
            rt.block_on(store.delete(&deltalake::Path::from(f.as_str())))
                .map_err(|e| delta::failed(format!("vacuum: deleting {f}"), e))?;
        }
    }
    Ok((table, metrics.files_deleted.len()))
}

/// The daemon's maintenance thread, one for every feed (an idle feed costs no thread): runs
/// each feed's maintenance every `interval` of its own, until `stop`.
pub fn spawn_schedule(
    feeds: Vec<(Arc<FeedConfig>, Arc<FeedCounters>)>,
    stop: Shutdown,
) -> Option<std::thread::JoinHandle<()>> {
    let mut due: Vec<_> = feeds
        .into_iter()
        .filter(|(f, _)| !f.maintenance.interval.is_zero())
        .map(|(f, c)| (std::time::Instant::now() + f.maintenance.interval, f, c))
        .collect();
    if due.is_empty() {
        return None;
    }
    std::thread::Builder::new()
        .name("maintain".into())
        .spawn(move || loop {
            let Some(next) = due.iter().map(|(at, _, _)| *at).min() else {
                return;
            };
            if stop.wait_timeout(next.saturating_duration_since(std::time::Instant::now())) {
                return;
            }
            let now = std::time::Instant::now();
            for (at, feed, counters) in due.iter_mut().filter(|(at, _, _)| *at <= now) {
                match maintain_feed(feed, &feed.maintenance, &stop) {
                    Ok(reports) => {
                        for r in &reports {
                            log::info!("feed {}: maintenance: {}", feed.name, r.summary());
                        }
                        counters.record(Event::Maintained {
                            tables: reports.iter().map(Report::summary).collect(),
                        });
                    }
                    Err(e) => log::warn!("feed {}: maintenance: {e}", feed.name),
                }
                // From the end of this run, as before: a long compaction does not queue up.
                *at = std::time::Instant::now() + feed.maintenance.interval;
                if stop.is_triggered() {
                    return;
                }
            }
        })
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(path: &str, mb: u64, modified: i64) -> DataFile {
        DataFile {
            path: path.into(),
            size: mb * 1024 * 1024,
            modified,
            partition: HashMap::new(),
        }
    }

    fn cfg(min: usize) -> MaintenanceConfig {
        MaintenanceConfig {
            interval: Duration::ZERO,
            compact_min_files: min,
            target_file_bytes: 10 * 1024 * 1024,
            vacuum_retention: Duration::ZERO,
            sort_by: None,
        }
    }

    #[test]
    fn small_files_are_binned_oldest_first_up_to_the_target() {
        let files = vec![
            f("big", 9, 0),
            f("a", 4, 1),
            f("b", 4, 2),
            f("c", 4, 3),
            f("d", 1, 4),
            f("e", 4, 5),
        ];
        let bins: Vec<Vec<String>> = plan(&files, &cfg(3))
            .into_iter()
            .map(|b| b.into_iter().map(|f| f.path).collect())
            .collect();
        // 9 MB is not small (half of 10 MB is the line); a bin stops before 10 MB.
        assert_eq!(bins, vec![vec!["a", "b"], vec!["c", "d", "e"]]);
        assert!(
            plan(&files, &cfg(6)).is_empty(),
            "fewer small files than the minimum"
        );
    }
}
