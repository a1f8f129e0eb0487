//! The TOML file as serde reads it: every key with its default, unknown keys refused
//! (`deny_unknown_fields`). Nothing here is validated: `feed` turns these into a [`super::Config`].

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::{
    ColumnNames, ExpectAction, Format, HeaderMatch, Nested, OnBadRow, OnNewColumn, OnResend,
    OnSuccess, SchemaName, NDJSON_EXTENSIONS, WORKBOOK_EXTENSIONS,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    #[serde(default = "default_poll_interval", with = "humantime_serde")]
    pub(super) poll_interval: Duration,
    #[serde(default = "default_true")]
    pub(super) events: bool,
    #[serde(default = "default_settle", with = "humantime_serde")]
    pub(super) settle: Duration,
    #[serde(default = "default_debounce", with = "humantime_serde")]
    pub(super) debounce: Duration,
    #[serde(default)]
    pub(super) workers: Option<usize>,
    #[serde(default = "default_state_dir")]
    pub(super) state_dir: PathBuf,
    #[serde(default)]
    pub(super) instance: Option<String>,
    #[serde(default)]
    pub(super) http: RawHttp,
    #[serde(default, rename = "feed")]
    pub(super) feeds: Vec<RawFeed>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHttp {
    #[serde(default = "default_true")]
    pub(super) enabled: bool,
    #[serde(default = "default_listen")]
    pub(super) listen: String,
}

impl Default for RawHttp {
    fn default() -> Self {
        RawHttp {
            enabled: true,
            listen: default_listen(),
        }
    }
}

pub(super) fn default_listen() -> String {
    "127.0.0.1:9187".to_string()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFeed {
    pub(super) name: String,
    #[serde(default = "default_inbox")]
    pub(super) inbox: PathBuf,
    #[serde(default = "default_table")]
    pub(super) table: String,
    #[serde(default)]
    pub(super) schema: SchemaName,
    #[serde(default = "default_processed")]
    pub(super) processed: PathBuf,
    #[serde(default = "default_rejected")]
    pub(super) rejected: PathBuf,
    #[serde(default)]
    pub(super) on_success: OnSuccess,
    #[serde(default)]
    pub(super) format: Format,
    /// A workbook's sheet to read.
    #[serde(default)]
    pub(super) sheet: Option<String>,
    /// Default: the format's (`default_extensions`).
    #[serde(default)]
    pub(super) extensions: Option<Vec<String>>,
    #[serde(default = "default_true")]
    pub(super) dedupe: bool,
    #[serde(default)]
    pub(super) on_resend: OnResend,
    #[serde(default)]
    pub(super) merge_key: Vec<String>,
    #[serde(default = "default_max_files")]
    pub(super) max_files_per_commit: usize,
    #[serde(default = "default_max_rows")]
    pub(super) max_rows_per_commit: u64,
    #[serde(default = "default_checkpoint_interval")]
    pub(super) checkpoint_interval: u64,
    #[serde(default)]
    pub(super) csv: RawCsv,
    /// Explicit columns (with `schema = "columns"`, or instead of `schema`).
    #[serde(default)]
    pub(super) columns: Option<Vec<RawColumn>>,
    #[serde(default = "default_infer_rows")]
    pub(super) infer_rows: usize,
    #[serde(default)]
    pub(super) quarantine_table: Option<String>,
    /// Object store options for cloud tables (credentials, endpoints), as the `deltalake`
    /// crate names them; the standard environment variables work too.
    #[serde(default)]
    pub(super) storage_options: std::collections::BTreeMap<String, String>,
    /// Several daemons watch this inbox (an NFS share): each claims a file by renaming it into
    /// its own folder before reading it.
    #[serde(default)]
    pub(super) shared_inbox: bool,
    /// An inbox in object storage: how long a daemon's claim on an object holds unrenewed.
    #[serde(default = "default_claim_lease", with = "humantime_serde")]
    pub(super) claim_lease: Duration,
    /// How often the daemon maintains the table (compaction, vacuum, log cleanup); 0 = never.
    #[serde(default = "default_maintenance_interval", with = "humantime_serde")]
    pub(super) maintenance_interval: Duration,
    /// Compact once the table has at least this many small files.
    #[serde(default = "default_compact_min_files")]
    pub(super) compact_min_files: usize,
    /// Size compaction aims for; files under half of it are small.
    #[serde(default = "default_target_file_bytes")]
    pub(super) target_file_bytes: u64,
    /// Files no longer in the table are deleted once they are this old.
    #[serde(default = "default_vacuum_retention", with = "humantime_serde")]
    pub(super) vacuum_retention: Duration,
    /// Compaction sorts each new file by this column (min/max statistics then skip files).
    #[serde(default)]
    pub(super) sort_by: Option<String>,
    /// Partition the table by a column, or by `date(<timestamp column>)`.
    #[serde(default)]
    pub(super) partition_by: Option<String>,
    #[serde(default)]
    pub(super) on_bad_row: OnBadRow,
    #[serde(default)]
    pub(super) max_bad_rows: Option<RawMaxBad>,
    #[serde(default)]
    pub(super) on_new_column: OnNewColumn,
    #[serde(default)]
    pub(super) header_match: HeaderMatch,
    #[serde(default)]
    pub(super) column_names: ColumnNames,
    #[serde(default)]
    pub(super) nested: Nested,
    #[serde(default = "default_encoding")]
    pub(super) encoding: String,
    #[serde(default)]
    pub(super) locale: Option<String>,
    #[serde(default)]
    pub(super) timezone: Option<String>,
    #[serde(default)]
    pub(super) decimal_separator: Option<String>,
    #[serde(default)]
    pub(super) thousands_separator: Option<String>,
    #[serde(default)]
    pub(super) currency_symbols: Option<Vec<String>>,
    #[serde(default)]
    pub(super) null_values: Option<Vec<String>>,
    #[serde(default)]
    pub(super) typed_null_values: Option<Vec<String>>,
    #[serde(default)]
    pub(super) true_values: Option<Vec<String>>,
    #[serde(default)]
    pub(super) false_values: Option<Vec<String>>,
    #[serde(default)]
    pub(super) date_format: Option<String>,
    #[serde(default)]
    pub(super) timestamp_format: Option<String>,
    #[serde(default)]
    pub(super) empty_string_is_null: bool,
    #[serde(default)]
    pub(super) ready_marker: Option<String>,
    #[serde(default)]
    pub(super) max_file_bytes: u64,
    #[serde(default)]
    pub(super) expect: Vec<RawExpect>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawColumn {
    pub(super) name: String,
    #[serde(rename = "type")]
    pub(super) ty: String,
    #[serde(default = "default_true")]
    pub(super) nullable: bool,
    #[serde(default)]
    pub(super) format: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum RawMaxBad {
    Count(u64),
    Ratio(f64),
    Text(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawExpect {
    pub(super) column: String,
    #[serde(default)]
    pub(super) not_null: bool,
    #[serde(default)]
    pub(super) min: Option<f64>,
    #[serde(default)]
    pub(super) max: Option<f64>,
    #[serde(default)]
    pub(super) regex: Option<String>,
    #[serde(default)]
    pub(super) one_of: Option<Vec<String>>,
    #[serde(default)]
    pub(super) cpf: bool,
    #[serde(default)]
    pub(super) cnpj: bool,
    #[serde(default)]
    pub(super) action: ExpectAction,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCsv {
    #[serde(default)]
    pub(super) delimiter: Option<String>,
    #[serde(default = "default_true")]
    pub(super) header: bool,
    #[serde(default = "default_quote")]
    pub(super) quote: String,
    #[serde(default)]
    pub(super) escape: Option<String>,
    #[serde(default)]
    pub(super) comment: Option<String>,
    #[serde(default = "default_batch_rows")]
    pub(super) batch_rows: usize,
    #[serde(default = "default_max_line_bytes")]
    pub(super) max_line_bytes: usize,
    #[serde(default)]
    pub(super) skip_rows: usize,
    #[serde(default)]
    pub(super) skip_footer: usize,
}

impl Default for RawCsv {
    fn default() -> Self {
        RawCsv {
            delimiter: None,
            header: true,
            quote: default_quote(),
            escape: None,
            comment: None,
            batch_rows: default_batch_rows(),
            max_line_bytes: default_max_line_bytes(),
            skip_rows: 0,
            skip_footer: 0,
        }
    }
}

pub(super) fn default_poll_interval() -> Duration {
    Duration::from_secs(5)
}
pub(super) fn default_settle() -> Duration {
    Duration::from_secs(1)
}
pub(super) fn default_debounce() -> Duration {
    Duration::from_millis(1)
}
pub(super) fn default_true() -> bool {
    true
}
pub(super) fn default_state_dir() -> PathBuf {
    PathBuf::from(".deltadrop")
}
fn default_claim_lease() -> Duration {
    Duration::from_secs(120)
}

pub(super) fn default_inbox() -> PathBuf {
    PathBuf::from("inbox")
}
pub(super) fn default_table() -> String {
    "lake/sales".to_string()
}
pub(super) fn default_processed() -> PathBuf {
    PathBuf::from("processed")
}
pub(super) fn default_rejected() -> PathBuf {
    PathBuf::from("rejected")
}
/// The extensions a feed of `format` takes when it names none: each plain, `.gz` and `.zst`.
pub(super) fn default_extensions(format: Format) -> Vec<String> {
    let text: &[&str] = match format {
        Format::Csv => &["csv"],
        Format::Ndjson => &NDJSON_EXTENSIONS,
        Format::Xlsx | Format::Parquet => &[],
        Format::Auto => &["csv", "ndjson", "jsonl", "json"],
    };
    // Text compresses: each text extension also with .gz and .zst. A workbook is a zip
    // already, a Parquet file compresses its pages itself.
    let workbooks: &[&str] = match format {
        Format::Xlsx => &WORKBOOK_EXTENSIONS,
        Format::Parquet => &["parquet"],
        Format::Auto => &["xlsx", "xlsm", "xlsb", "xls", "ods", "parquet"],
        Format::Csv | Format::Ndjson => &[],
    };
    text.iter()
        .flat_map(|b| [b.to_string(), format!("{b}.gz"), format!("{b}.zst")])
        .chain(workbooks.iter().map(|w| w.to_string()))
        .collect()
}
pub(super) fn default_max_files() -> usize {
    5000
}
pub(super) fn default_max_rows() -> u64 {
    2_000_000
}
pub(super) fn default_checkpoint_interval() -> u64 {
    100
}
pub(super) fn default_infer_rows() -> usize {
    0
}
pub(super) fn default_encoding() -> String {
    "auto".to_string()
}
pub(super) fn default_max_line_bytes() -> usize {
    16 * 1024 * 1024
}
pub(super) fn default_quote() -> String {
    "\"".to_string()
}
pub(super) fn default_maintenance_interval() -> Duration {
    Duration::from_secs(600)
}

pub(super) fn default_compact_min_files() -> usize {
    50
}

pub(super) fn default_target_file_bytes() -> u64 {
    64 * 1024 * 1024
}

pub(super) fn default_vacuum_retention() -> Duration {
    Duration::from_secs(7 * 24 * 3600)
}

pub(super) fn default_batch_rows() -> usize {
    8192
}
