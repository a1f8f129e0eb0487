//! `deltadrop inspect`: what a feed's table holds (version, rows, size, files, schema, the last
//! commits with their source files) and, with `--file`, where one dropped file went. Reads the
//! table and the state folder only; safe while the daemon runs.

use std::path::Path;

use deltalake::kernel::engine::arrow_conversion::TryIntoArrow;
use deltalake::logstore::LogStoreRef;
use deltalake::table::state::DeltaTableState;
use serde::Serialize;
use serde_json::Value;
use tokio::runtime::Runtime;

use crate::config::FeedConfig;
use crate::delta::DeltaError;
use crate::error::Error;

#[derive(Debug, Serialize)]
pub struct Inspection {
    pub feed: String,
    pub table: String,
    pub version: i64,
    pub data_files: usize,
    pub rows: u64,
    pub size_bytes: u64,
    pub schema: Vec<Column>,
    pub quarantine: Option<QuarantineInfo>,
    pub commits: Vec<CommitSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<FileReport>,
}

#[derive(Debug, Serialize)]
pub struct Column {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: String,
    pub nullable: bool,
}

#[derive(Debug, Serialize)]
pub struct QuarantineInfo {
    pub table: String,
    pub version: i64,
    pub rows: u64,
}

#[derive(Debug, Serialize)]
pub struct CommitSummary {
    pub version: i64,
    pub timestamp: Option<String>,
    pub operation: String,
    pub rows: u64,
    pub bad_rows: u64,
    pub files: Vec<CommitFile>,
}

#[derive(Debug, Serialize, Clone)]
pub struct CommitFile {
    pub name: String,
    pub rows: u64,
    pub bad_rows: u64,
}

#[derive(Debug, Serialize)]
pub struct FileReport {
    pub name: String,
    /// Versions holding rows of a file of that name (with its hash and row counts).
    pub loaded: Vec<Loaded>,
    /// Why it was rejected, for each rejection on record.
    pub rejected: Vec<String>,
    pub in_inbox: bool,
}

#[derive(Debug, Serialize)]
pub struct Loaded {
    pub version: i64,
    pub rows: u64,
    pub bad_rows: u64,
    pub hash: String,
    /// How the file was read (encoding, delimiter, header, skipped lines, locale, columns),
    /// as its commit recorded it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dialect: Option<Value>,
}

/// One file a commit's deltadrop metadata lists.
struct FileInCommit {
    name: String,
    rows: u64,
    bad_rows: u64,
    hash: String,
    dialect: Option<Value>,
}

fn err(url: &url::Url) -> impl Fn(deltalake::DeltaTableError) -> Error + '_ {
    move |e| {
        Error::Delta(DeltaError::Table {
            url: url.to_string(),
            source: Box::new(e),
        })
    }
}

/// Inspects `feed`'s table, its last `commits` commits and, if given, one file.
pub fn inspect(
    feed: &FeedConfig,
    state_dir: &Path,
    commits: usize,
    file: Option<&str>,
) -> Result<Inspection, Error> {
    let rt = crate::delta::runtime()?;
    let url = &feed.table_url;
    let table = rt
        .block_on(crate::delta::table::load(url, &feed.storage_options, None))
        .map_err(err(url))?;
    let snapshot = table.snapshot().map_err(err(url))?;
    let version = table.version().unwrap_or(0) as i64;
    let totals = Totals::of(snapshot);
    let schema = columns(snapshot, url)?;
    let log = CommitLog {
        rt: &rt,
        store: table.log_store(),
        version,
    };
    let summaries = log.last(commits);
    let quarantine = quarantine(&rt, feed);
    let file = file.map(|name| {
        // Without the local index: search the log, newest first.
        let mut report = file_report(feed, state_dir, name, || log.search(name));
        if let Some(remote) = &feed.remote {
            // An object's reason is kept in the store; the local copy goes once it is carried
            // out there.
            match crate::remote::rejected_reasons(&rt, feed, remote, name) {
                Ok(reasons) => {
                    for r in reasons {
                        if !report.rejected.contains(&r) {
                            report.rejected.push(r);
                        }
                    }
                }
                Err(e) => log::warn!(
                    "feed {}: {name}: the store's rejected reasons: {e}",
                    feed.name
                ),
            }
        }
        log.add_dialects(name, &mut report.loaded);
        report
    });
    Ok(Inspection {
        feed: feed.name.clone(),
        table: url.to_string(),
        version,
        data_files: totals.data_files,
        rows: totals.rows,
        size_bytes: totals.size,
        schema,
        quarantine,
        commits: summaries,
        file,
    })
}

/// What a table's data files hold, from its snapshot (no file is read).
struct Totals {
    data_files: usize,
    rows: u64,
    size: u64,
}

impl Totals {
    fn of(snapshot: &DeltaTableState) -> Totals {
        let (mut rows, mut size, mut data_files) = (0u64, 0u64, 0usize);
        for f in snapshot.log_data().iter() {
            data_files += 1;
            size += f.size().max(0) as u64;
            rows += f.num_records().unwrap_or(0) as u64;
        }
        Totals {
            data_files,
            rows,
            size,
        }
    }
}

/// The table's columns, with their Arrow types.
fn columns(snapshot: &DeltaTableState, url: &url::Url) -> Result<Vec<Column>, Error> {
    let arrow: deltalake::arrow::datatypes::Schema = snapshot
        .schema()
        .as_ref()
        .try_into_arrow()
        .map_err(DeltaError::step(url, "schema"))?;
    Ok(arrow
        .fields()
        .iter()
        .map(|f| Column {
            name: f.name().clone(),
            ty: f.data_type().to_string(),
            nullable: f.is_nullable(),
        })
        .collect())
}

/// The feed's quarantine table: its version and rows (None if it cannot be opened).
fn quarantine(rt: &Runtime, feed: &FeedConfig) -> Option<QuarantineInfo> {
    rt.block_on(crate::delta::table::load(
        &feed.quarantine_url,
        &feed.storage_options,
        None,
    ))
    .ok()
    .map(|q| {
        let rows = q
            .snapshot()
            .map(|s| {
                s.log_data()
                    .iter()
                    .map(|f| f.num_records().unwrap_or(0) as u64)
                    .sum()
            })
            .unwrap_or(0);
        QuarantineInfo {
            table: feed.quarantine_url.to_string(),
            version: q.version().unwrap_or(0) as i64,
            rows,
        }
    })
}

/// The table's commit log, read from `version` back; a commit that cannot be read is skipped.
struct CommitLog<'a> {
    rt: &'a Runtime,
    store: LogStoreRef,
    version: i64,
}

impl CommitLog<'_> {
    /// The last `n` commits that can be read, newest first.
    fn last(&self, n: usize) -> Vec<CommitSummary> {
        let mut summaries = Vec::new();
        let mut v = self.version;
        while v >= 0 && summaries.len() < n {
            if let Ok(Some(bytes)) = self.rt.block_on(self.store.read_commit_entry(v as u64)) {
                summaries.push(summarize(v, &bytes));
            }
            v -= 1;
        }
        summaries
    }

    /// The files commit `v`'s deltadrop metadata lists.
    fn files(&self, v: i64) -> Vec<FileInCommit> {
        match self
            .rt
            .block_on(self.store.read_commit_entry(v.max(0) as u64))
        {
            Ok(Some(bytes)) => files_of(&bytes),
            _ => Vec::new(),
        }
    }

    /// Every load of a file named `name`, newest first, over the last 100,000 commits.
    fn search(&self, name: &str) -> Vec<Loaded> {
        let mut found = Vec::new();
        let mut v = self.version;
        while v >= 0 && self.version - v < 100_000 {
            for f in self.files(v).into_iter().filter(|f| f.name == name) {
                found.push(Loaded {
                    version: v,
                    rows: f.rows,
                    bad_rows: f.bad_rows,
                    hash: f.hash,
                    dialect: f.dialect,
                });
            }
            v -= 1;
        }
        found
    }

    /// How each load of `name` without one was read, from its commit.
    fn add_dialects(&self, name: &str, loaded: &mut [Loaded]) {
        for l in loaded.iter_mut().filter(|l| l.dialect.is_none()) {
            l.dialect = self
                .files(l.version)
                .into_iter()
                .find(|f| f.name == name && f.hash == l.hash)
                .and_then(|f| f.dialect);
        }
    }
}

/// The files a commit's deltadrop metadata lists.
fn files_of(commit: &[u8]) -> Vec<FileInCommit> {
    let mut out = Vec::new();
    for line in commit.split(|b| *b == b'\n') {
        let Ok(action) = serde_json::from_slice::<Value>(line) else {
            continue;
        };
        let Some(files) = action
            .pointer("/commitInfo/deltadrop/files")
            .and_then(Value::as_array)
        else {
            continue;
        };
        for f in files {
            out.push(FileInCommit {
                name: f["name"].as_str().unwrap_or_default().to_string(),
                rows: f["rows"].as_u64().unwrap_or(0),
                bad_rows: f["badRows"].as_u64().unwrap_or(0),
                hash: f["hash"].as_str().unwrap_or_default().to_string(),
                dialect: f.get("dialect").filter(|d| !d.is_null()).cloned(),
            });
        }
    }
    out
}

fn summarize(version: i64, commit: &[u8]) -> CommitSummary {
    let mut s = CommitSummary {
        version,
        timestamp: None,
        operation: String::new(),
        rows: 0,
        bad_rows: 0,
        files: Vec::new(),
    };
    for line in commit.split(|b| *b == b'\n') {
        let Ok(action) = serde_json::from_slice::<Value>(line) else {
            continue;
        };
        if let Some(ci) = action.get("commitInfo") {
            s.operation = ci["operation"].as_str().unwrap_or_default().to_string();
            s.timestamp = ci["timestamp"]
                .as_i64()
                .and_then(chrono::DateTime::from_timestamp_millis)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
            s.rows = ci
                .pointer("/deltadrop/rows")
                .and_then(Value::as_u64)
                .unwrap_or(0);
            s.bad_rows = ci
                .pointer("/deltadrop/badRows")
                .and_then(Value::as_u64)
                .unwrap_or(0);
        }
    }
    s.files = files_of(commit)
        .into_iter()
        .map(|f| CommitFile {
            name: f.name,
            rows: f.rows,
            bad_rows: f.bad_rows,
        })
        .collect();
    s
}

fn file_report(
    feed: &FeedConfig,
    state_dir: &Path,
    name: &str,
    search_log: impl FnOnce() -> Vec<Loaded>,
) -> FileReport {
    let index = state_dir.join(&feed.name).join("loaded.jsonl");
    let mut loaded: Vec<Loaded> = std::fs::read_to_string(&index)
        .map(|text| {
            text.lines()
                .filter_map(|l| serde_json::from_str::<crate::state::Loaded>(l).ok())
                .filter(|l| l.name == name)
                .map(|l| Loaded {
                    version: l.version,
                    rows: l.rows,
                    bad_rows: 0,
                    hash: l.hash,
                    dialect: None,
                })
                .collect()
        })
        .unwrap_or_default();
    if loaded.is_empty() {
        loaded = search_log();
    }
    let mut rejected = Vec::new();
    for c in crate::archive::archive_names(name).take(crate::archive::COPIES_LOOKED_UP) {
        let err_file = feed.rejected.join(format!("{c}.error.txt"));
        match std::fs::read_to_string(&err_file) {
            Ok(text) => rejected.push(text.trim_end().to_string()),
            Err(_) if c != name => break,
            Err(_) => {}
        }
    }
    FileReport {
        name: name.to_string(),
        loaded,
        rejected,
        in_inbox: feed.inbox.join(name).exists(),
    }
}

/// The human-readable report.
pub fn render(i: &Inspection) -> String {
    let mut out = format!(
        "feed {}\ntable:    {}\nversion:  {}\nrows:     {}\nsize:     {} in {} data file(s)\n",
        i.feed,
        i.table,
        i.version,
        i.rows,
        human_bytes(i.size_bytes),
        i.data_files
    );
    if let Some(q) = &i.quarantine {
        out.push_str(&format!(
            "quarantine: {} row(s) in {} (version {})\n",
            q.rows, q.table, q.version
        ));
    }
    out.push_str("\nschema:\n");
    for c in &i.schema {
        out.push_str(&format!(
            "  {:<24} {}{}\n",
            c.name,
            c.ty,
            if c.nullable { "" } else { " NOT NULL" }
        ));
    }
    out.push_str(&format!("\nlast {} commit(s):\n", i.commits.len()));
    for c in &i.commits {
        out.push_str(&format!(
            "  v{:<6} {}  {:<14} {} rows, {} bad",
            c.version,
            c.timestamp.as_deref().unwrap_or("-"),
            c.operation,
            c.rows,
            c.bad_rows
        ));
        let names: Vec<&str> = c.files.iter().map(|f| f.name.as_str()).collect();
        if !names.is_empty() {
            let shown = names.iter().take(5).copied().collect::<Vec<_>>().join(", ");
            let more = if names.len() > 5 {
                format!(" (+{} more)", names.len() - 5)
            } else {
                String::new()
            };
            out.push_str(&format!("  [{shown}{more}]"));
        }
        out.push('\n');
    }
    if let Some(f) = &i.file {
        out.push_str(&format!("\nfile {}:\n", f.name));
        if f.loaded.is_empty() && f.rejected.is_empty() {
            out.push_str("  not loaded, not rejected");
            out.push_str(if f.in_inbox {
                " (it is in the inbox, waiting)\n"
            } else {
                "\n"
            });
        }
        for l in &f.loaded {
            out.push_str(&format!(
                "  loaded in version {}: {} rows (blake3 {})\n",
                l.version,
                l.rows,
                &l.hash[..l.hash.len().min(16)]
            ));
            if let Some(d) = &l.dialect {
                out.push_str(&format!("    read as: {}\n", describe_dialect(d)));
            }
        }
        for r in &f.rejected {
            out.push_str("  rejected:\n");
            for line in r.lines() {
                out.push_str(&format!("    {line}\n"));
            }
        }
    }
    out
}

/// A file's recorded dialect in one line: encoding, compression, delimiter, quote, header,
/// skipped lines, locale, then its columns.
fn describe_dialect(d: &Value) -> String {
    let s = |k: &str| d[k].as_str().unwrap_or("?").to_string();
    let mut parts = vec![
        s("encoding"),
        format!("compression {}", s("compression")),
        format!("delimiter '{}'", s("delimiter")),
        format!("quote '{}'", s("quote")),
        if d["header"].as_bool().unwrap_or(true) {
            "header".to_string()
        } else {
            "no header".to_string()
        },
    ];
    let skipped = &d["skippedLines"];
    for (k, what) in [
        ("sep", "sep= line"),
        ("title", "title line(s)"),
        ("footer", "footer line(s)"),
    ] {
        if let Some(n) = skipped[k].as_u64().filter(|n| *n > 0) {
            parts.push(format!("{n} {what} skipped"));
        }
    }
    if let Some(l) = d["locale"].as_str() {
        parts.push(format!("locale {l}"));
    }
    let columns: Vec<&str> = d["columns"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut line = parts.join(", ");
    line.push_str(&format!("; columns: {}", columns.join(", ")));
    if let Some(missing) = d["missing"].as_array().filter(|m| !m.is_empty()) {
        let m: Vec<&str> = missing.iter().filter_map(Value::as_str).collect();
        line.push_str(&format!("; missing (null): {}", m.join(", ")));
    }
    line
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_commit_names_its_files_rows_and_bad_rows() {
        let commit = br#"{"add":{"path":"part-1.parquet","size":10}}
{"txn":{"appId":"deltadrop-sales","version":3}}
{"commitInfo":{"timestamp":1764633600000,"operation":"WRITE","deltadrop":{"rows":7,"badRows":1,"files":[{"name":"a.csv","rows":5,"badRows":1,"hash":"h1"},{"name":"b.csv","rows":2,"badRows":0,"hash":"h2"}]}}}
"#;
        let s = summarize(4, commit);
        assert_eq!((s.version, s.rows, s.bad_rows), (4, 7, 1));
        assert_eq!(s.operation, "WRITE");
        assert_eq!(s.timestamp.as_deref(), Some("2025-12-02T00:00:00.000Z"));
        let names: Vec<_> = s.files.iter().map(|f| (f.name.as_str(), f.rows)).collect();
        assert_eq!(names, [("a.csv", 5), ("b.csv", 2)]);
        assert_eq!(files_of(commit)[1].hash, "h2");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(12), "12 B");
    }
}
