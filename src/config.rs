//! Config stage: reads the TOML file, fills defaults, validates at the edge and resolves paths.
//! Everything after this module works with a [`Config`] whose paths are absolute and checked.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use url::Url;

use crate::schema::{ColType, ColumnSpec, TableSchema};

/// The commented example shipped at the top of the repository; also the built-in default.
pub const EXAMPLE: &str = include_str!("../config.toml.example");

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid config {path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default = "default_poll_interval", with = "humantime_serde")]
    poll_interval: Duration,
    #[serde(default = "default_true")]
    events: bool,
    #[serde(default = "default_settle", with = "humantime_serde")]
    settle: Duration,
    #[serde(default = "default_debounce", with = "humantime_serde")]
    debounce: Duration,
    #[serde(default)]
    workers: Option<usize>,
    #[serde(default = "default_state_dir")]
    state_dir: PathBuf,
    #[serde(default)]
    instance: Option<String>,
    #[serde(default)]
    http: RawHttp,
    #[serde(default, rename = "feed")]
    feeds: Vec<RawFeed>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    #[serde(default = "default_true")]
    enabled: bool,
    #[serde(default = "default_listen")]
    listen: String,
}

impl Default for RawHttp {
    fn default() -> Self {
        RawHttp {
            enabled: true,
            listen: default_listen(),
        }
    }
}

fn default_listen() -> String {
    "127.0.0.1:9187".to_string()
}

/// The status endpoint (`/status`, `/metrics`, `/health`).
#[derive(Debug, Clone)]
pub struct HttpConfig {
    pub enabled: bool,
    pub listen: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFeed {
    name: String,
    #[serde(default = "default_inbox")]
    inbox: PathBuf,
    #[serde(default = "default_table")]
    table: String,
    #[serde(default = "default_schema")]
    schema: String,
    #[serde(default = "default_processed")]
    processed: PathBuf,
    #[serde(default = "default_rejected")]
    rejected: PathBuf,
    #[serde(default)]
    on_success: OnSuccess,
    #[serde(default = "default_extensions")]
    extensions: Vec<String>,
    #[serde(default = "default_true")]
    dedupe: bool,
    #[serde(default = "default_max_files")]
    max_files_per_commit: usize,
    #[serde(default = "default_max_rows")]
    max_rows_per_commit: u64,
    #[serde(default = "default_checkpoint_interval")]
    checkpoint_interval: u64,
    #[serde(default)]
    csv: RawCsv,
    /// Explicit columns (with `schema = "columns"`, or instead of `schema`).
    #[serde(default)]
    columns: Option<Vec<RawColumn>>,
    #[serde(default = "default_infer_rows")]
    infer_rows: usize,
    #[serde(default)]
    quarantine_table: Option<String>,
    /// Object store options for cloud tables (credentials, endpoints), as the `deltalake`
    /// crate names them; the standard environment variables work too.
    #[serde(default)]
    storage_options: std::collections::BTreeMap<String, String>,
    /// Several daemons watch this inbox (an NFS share): each claims a file by renaming it into
    /// its own folder before reading it.
    #[serde(default)]
    shared_inbox: bool,
    /// How often the daemon maintains the table (compaction, vacuum, log cleanup); 0 = never.
    #[serde(default = "default_maintenance_interval", with = "humantime_serde")]
    maintenance_interval: Duration,
    /// Compact once the table has at least this many small files.
    #[serde(default = "default_compact_min_files")]
    compact_min_files: usize,
    /// Size compaction aims for; files under half of it are small.
    #[serde(default = "default_target_file_bytes")]
    target_file_bytes: u64,
    /// Files no longer in the table are deleted once they are this old.
    #[serde(default = "default_vacuum_retention", with = "humantime_serde")]
    vacuum_retention: Duration,
    /// Compaction sorts each new file by this column (min/max statistics then skip files).
    #[serde(default)]
    sort_by: Option<String>,
    /// Partition the table by a column, or by `date(<timestamp column>)`.
    #[serde(default)]
    partition_by: Option<String>,
    #[serde(default)]
    on_bad_row: OnBadRow,
    #[serde(default)]
    max_bad_rows: Option<RawMaxBad>,
    #[serde(default)]
    on_new_column: OnNewColumn,
    #[serde(default)]
    header_match: HeaderMatch,
    #[serde(default = "default_encoding")]
    encoding: String,
    #[serde(default)]
    locale: Option<String>,
    #[serde(default)]
    timezone: Option<String>,
    #[serde(default)]
    decimal_separator: Option<String>,
    #[serde(default)]
    thousands_separator: Option<String>,
    #[serde(default)]
    currency_symbols: Option<Vec<String>>,
    #[serde(default)]
    null_values: Option<Vec<String>>,
    #[serde(default)]
    true_values: Option<Vec<String>>,
    #[serde(default)]
    false_values: Option<Vec<String>>,
    #[serde(default)]
    date_format: Option<String>,
    #[serde(default)]
    timestamp_format: Option<String>,
    #[serde(default)]
    empty_string_is_null: bool,
    #[serde(default)]
    ready_marker: Option<String>,
    #[serde(default)]
    max_file_bytes: u64,
    #[serde(default)]
    expect: Vec<RawExpect>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawColumn {
    name: String,
    #[serde(rename = "type")]
    ty: String,
    #[serde(default = "default_true")]
    nullable: bool,
    #[serde(default)]
    format: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawMaxBad {
    Count(u64),
    Ratio(f64),
    Text(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExpect {
    column: String,
    #[serde(default)]
    not_null: bool,
    #[serde(default)]
    min: Option<f64>,
    #[serde(default)]
    max: Option<f64>,
    #[serde(default)]
    regex: Option<String>,
    #[serde(default)]
    one_of: Option<Vec<String>>,
    #[serde(default)]
    cpf: bool,
    #[serde(default)]
    cnpj: bool,
    #[serde(default)]
    action: ExpectAction,
}

/// What to do with a row that cannot be converted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnBadRow {
    /// Good rows to the table, bad rows to the quarantine table.
    #[default]
    Quarantine,
    /// The whole file goes to `rejected/`.
    RejectFile,
    /// Stop the daemon; the file stays in the inbox.
    Fail,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnNewColumn {
    /// A file with columns the table does not have is rejected.
    #[default]
    Reject,
    /// Unknown columns are kept as JSON in `_rescued_data`.
    Rescue,
    /// The table grows a nullable column (type inferred from the file) while running.
    Add,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HeaderMatch {
    #[default]
    Exact,
    /// Case- and accent-insensitive, spaces and '-' same as '_'.
    Insensitive,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExpectAction {
    /// Count it (commit metadata, log line), keep the row.
    Warn,
    /// The row goes to the quarantine table.
    #[default]
    Quarantine,
    /// The whole file is rejected.
    Fail,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCsv {
    #[serde(default)]
    delimiter: Option<String>,
    #[serde(default = "default_true")]
    header: bool,
    #[serde(default = "default_quote")]
    quote: String,
    #[serde(default)]
    escape: Option<String>,
    #[serde(default)]
    comment: Option<String>,
    #[serde(default = "default_batch_rows")]
    batch_rows: usize,
    #[serde(default = "default_max_line_bytes")]
    max_line_bytes: usize,
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
        }
    }
}

/// What happens to a file once its rows are committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OnSuccess {
    #[default]
    Move,
    Delete,
}

fn default_poll_interval() -> Duration {
    Duration::from_secs(5)
}
fn default_settle() -> Duration {
    Duration::from_secs(1)
}
fn default_debounce() -> Duration {
    Duration::from_millis(2)
}
fn default_true() -> bool {
    true
}
fn default_state_dir() -> PathBuf {
    PathBuf::from(".deltadrop")
}
fn default_inbox() -> PathBuf {
    PathBuf::from("inbox")
}
fn default_table() -> String {
    "lake/sales".to_string()
}
fn default_schema() -> String {
    "sales".to_string()
}
fn default_processed() -> PathBuf {
    PathBuf::from("processed")
}
fn default_rejected() -> PathBuf {
    PathBuf::from("rejected")
}
fn default_extensions() -> Vec<String> {
    vec!["csv".into(), "csv.gz".into(), "csv.zst".into()]
}
fn default_max_files() -> usize {
    5000
}
fn default_max_rows() -> u64 {
    2_000_000
}
fn default_checkpoint_interval() -> u64 {
    100
}
fn default_infer_rows() -> usize {
    1000
}
fn default_encoding() -> String {
    "auto".to_string()
}
fn default_max_line_bytes() -> usize {
    16 * 1024 * 1024
}
fn default_quote() -> String {
    "\"".to_string()
}
fn default_maintenance_interval() -> Duration {
    Duration::from_secs(600)
}

fn default_compact_min_files() -> usize {
    50
}

fn default_target_file_bytes() -> u64 {
    64 * 1024 * 1024
}

fn default_vacuum_retention() -> Duration {
    Duration::from_secs(7 * 24 * 3600)
}

fn default_batch_rows() -> usize {
    8192
}

/// The validated, resolved configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from, or `None` for the built-in default.
    pub source: Option<PathBuf>,
    pub base_dir: PathBuf,
    pub poll_interval: Duration,
    pub events: bool,
    pub settle: Duration,
    pub debounce: Duration,
    pub workers: usize,
    pub state_dir: PathBuf,
    pub instance: Option<String>,
    pub http: HttpConfig,
    pub feeds: Vec<FeedConfig>,
}

#[derive(Debug, Clone)]
pub struct FeedConfig {
    pub name: String,
    pub inbox: PathBuf,
    /// Table location as a URL (`file:///abs/path` for local tables).
    pub table_url: Url,
    pub schema_name: String,
    pub schema: TableSchema,
    pub processed: PathBuf,
    pub rejected: PathBuf,
    pub on_success: OnSuccess,
    /// Lower-case extensions without the dot.
    pub extensions: Vec<String>,
    pub dedupe: bool,
    pub max_files_per_commit: usize,
    pub max_rows_per_commit: u64,
    pub checkpoint_interval: u64,
    pub csv: CsvConfig,
    /// The Delta `txn` application id this feed commits under.
    pub app_id: String,
    /// `schema = "infer"`: the columns come from the first file (or the existing table).
    pub infer: bool,
    pub infer_rows: usize,
    pub quarantine_url: Url,
    /// Object store options of both tables (never printed: see [`StorageOptions`]).
    pub storage_options: StorageOptions,
    /// `Some(folder)`: the inbox is shared; files are claimed into this folder first.
    pub claim_dir: Option<PathBuf>,
    pub maintenance: MaintenanceConfig,
    pub on_bad_row: OnBadRow,
    pub max_bad_rows: MaxBadRows,
    pub on_new_column: OnNewColumn,
    pub header_match: HeaderMatch,
    pub encoding: Encoding,
    pub values: ValueOptions,
    pub ready_marker: Option<String>,
    /// Larger files are rejected unread (0: no limit).
    pub max_file_bytes: u64,
    pub expectations: Vec<Expectation>,
}

/// Table maintenance: what `deltadrop maintain` does, and the daemon every `interval`.
#[derive(Debug, Clone, PartialEq)]
pub struct MaintenanceConfig {
    /// Zero: the daemon never maintains (`deltadrop maintain` still does).
    pub interval: Duration,
    pub compact_min_files: usize,
    pub target_file_bytes: u64,
    pub vacuum_retention: Duration,
    pub sort_by: Option<String>,
}

#[derive(Debug, Clone)]
pub struct CsvConfig {
    /// None: sniffed from each file's first lines (`delimiter = "auto"`).
    pub delimiter: Option<u8>,
    /// No `delimiter` in the config: the default holds unless it finds a single column that
    /// another delimiter splits (see `ingest::choose_delimiter`).
    pub delimiter_is_default: bool,
    pub header: bool,
    pub quote: u8,
    pub escape: Option<u8>,
    pub comment: Option<u8>,
    pub batch_rows: usize,
    /// A record longer than this is a bad row (protects memory from a file with no newline).
    pub max_line_bytes: usize,
}

/// Input text encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// UTF-8 if the start of the file is valid UTF-8 (or has a BOM), else windows-1252.
    Auto,
    Fixed(&'static encoding_rs::Encoding),
}

/// Above this many bad rows, the whole file is rejected instead.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MaxBadRows {
    Unlimited,
    Count(u64),
    /// Fraction of the file's rows (0..1).
    Ratio(f64),
}

/// How text becomes typed values (locale).
#[derive(Debug, Clone)]
pub struct ValueOptions {
    pub decimal_separator: char,
    pub thousands_separator: Option<char>,
    pub currency_symbols: Vec<String>,
    pub null_values: Vec<String>,
    /// Length of the longest null token (values longer than this are never null).
    pub longest_null_value: usize,
    pub true_values: Vec<String>,
    pub false_values: Vec<String>,
    /// chrono formats tried in order; empty = ISO 8601.
    pub date_formats: Vec<String>,
    pub timestamp_formats: Vec<String>,
    pub timezone: chrono_tz::Tz,
    pub empty_string_is_null: bool,
}

#[derive(Debug, Clone)]
pub struct Expectation {
    pub column: String,
    pub check: Check,
    pub action: ExpectAction,
}

#[derive(Debug, Clone)]
pub enum Check {
    NotNull,
    Min(f64),
    Max(f64),
    Regex(regex::Regex),
    OneOf(Vec<String>),
    Cpf,
    Cnpj,
}

impl Config {
    /// Loads `path`; the error names the file, and for TOML errors the key, line and column.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let abs = absolute(path);
        let base = abs
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        Self::from_toml(&text, &base, Some(abs))
    }

    /// The built-in default: the shipped example, relative to `base_dir`.
    pub fn embedded(base_dir: &Path) -> Result<Config, ConfigError> {
        Self::from_toml(EXAMPLE, &absolute(base_dir), None)
    }

    /// `--config FILE` if given, else `./config.toml` if it exists, else the built-in default.
    pub fn discover(explicit: Option<&Path>) -> Result<Config, ConfigError> {
        match explicit {
            Some(p) => Self::load(p),
            None => {
                let local = Path::new("config.toml");
                if local.is_file() {
                    Self::load(local)
                } else {
                    Self::embedded(Path::new("."))
                }
            }
        }
    }

    pub fn from_toml(
        text: &str,
        base_dir: &Path,
        source: Option<PathBuf>,
    ) -> Result<Config, ConfigError> {
        let shown = source
            .clone()
            .unwrap_or_else(|| PathBuf::from("<built-in default>"));
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: shown.clone(),
            message: e.to_string().trim_end().to_string(),
        })?;
        let invalid = |message: String| ConfigError::Invalid {
            path: shown.clone(),
            message,
        };
        if raw.poll_interval < Duration::from_millis(10) {
            return Err(invalid(format!(
                "poll_interval = {:?} is too short (at least 10ms)",
                raw.poll_interval
            )));
        }
        if raw.debounce < Duration::from_millis(1) || raw.debounce > Duration::from_secs(60) {
            return Err(invalid(format!(
                "debounce = {:?}: must be between 1ms and 60s",
                raw.debounce
            )));
        }
        let workers = match raw.workers {
            Some(0) => return Err(invalid("workers = 0: at least one worker is needed".into())),
            Some(n) => n,
            None => std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
        };
        if raw.http.enabled && raw.http.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(invalid(format!(
                "[http] listen = '{}' is not an address like 127.0.0.1:9187",
                raw.http.listen
            )));
        }
        if raw.feeds.is_empty() {
            return Err(invalid(
                "no [[feed]] block: at least one inbox → table pair is needed".into(),
            ));
        }
        if let Some(inst) = &raw.instance {
            check_name("instance", inst).map_err(&invalid)?;
        }
        let mut feeds = Vec::with_capacity(raw.feeds.len());
        let mut names = HashSet::new();
        let mut inboxes = HashSet::new();
        let mut tables = HashSet::new();
        for f in raw.feeds {
            check_name("feed name", &f.name).map_err(&invalid)?;
            if !names.insert(f.name.clone()) {
                return Err(invalid(format!("two feeds are named '{}'", f.name)));
            }
            let ctx = |m: String| invalid(format!("feed '{}': {m}", f.name));
            let (mut schema, infer) = resolve_schema(&f).map_err(&ctx)?;
            if let Some(spec) = &f.partition_by {
                schema.partition =
                    Some(resolve_partition(spec, &schema, infer, f.on_new_column).map_err(&ctx)?);
            }
            let inbox = normalize(&base_dir.join(&f.inbox));
            if !inboxes.insert(inbox.clone()) {
                return Err(ctx(format!(
                    "inbox {} is used by another feed",
                    inbox.display()
                )));
            }
            let table_url = resolve_table(&f.table, base_dir).map_err(&ctx)?;
            if !tables.insert(table_url.to_string()) {
                return Err(ctx(format!(
                    "table {table_url} is written by another feed of this daemon"
                )));
            }
            check_scheme(&table_url).map_err(&ctx)?;
            let processed = normalize(&base_dir.join(&f.processed));
            let rejected = normalize(&base_dir.join(&f.rejected));
            for (what, p) in [("processed", &processed), ("rejected", &rejected)] {
                if *p == inbox {
                    return Err(ctx(format!("{what} must not be the inbox itself")));
                }
            }
            if f.extensions.is_empty() {
                return Err(ctx(
                    "extensions is empty: no file would ever be ingested".into()
                ));
            }
            if f.max_files_per_commit == 0 || f.max_rows_per_commit == 0 {
                return Err(ctx(
                    "max_files_per_commit and max_rows_per_commit must be at least 1".into(),
                ));
            }
            if f.checkpoint_interval == 0 {
                return Err(ctx("checkpoint_interval must be at least 1".into()));
            }
            let preset = match f.locale.as_deref() {
                None => Preset::default(),
                Some(l) => Preset::named(l).ok_or_else(|| {
                    ctx(format!("locale = '{l}' is not known (known: pt-BR, en-US)"))
                })?,
            };
            let delimiter = match f.csv.delimiter.as_deref() {
                Some("auto") => None,
                Some(d) => Some(one_byte("csv.delimiter", d).map_err(&ctx)?),
                None => Some(preset.delimiter),
            };
            let csv = CsvConfig {
                delimiter,
                delimiter_is_default: f.csv.delimiter.is_none(),
                header: f.csv.header,
                quote: one_byte("csv.quote", &f.csv.quote).map_err(&ctx)?,
                escape: match &f.csv.escape {
                    Some(e) => Some(one_byte("csv.escape", e).map_err(&ctx)?),
                    None => None,
                },
                comment: match &f.csv.comment {
                    Some(c) => Some(one_byte("csv.comment", c).map_err(&ctx)?),
                    None => None,
                },
                batch_rows: f.csv.batch_rows,
                max_line_bytes: f.csv.max_line_bytes.max(1024),
            };
            let values = resolve_values(&f, &preset).map_err(&ctx)?;
            let encoding = match f.encoding.to_ascii_lowercase().as_str() {
                "auto" => Encoding::Auto,
                label => Encoding::Fixed(
                    encoding_rs::Encoding::for_label(label.as_bytes()).ok_or_else(|| {
                        ctx(format!(
                            "encoding = '{label}' is not known (auto, utf-8, windows-1252, latin1, ...)"
                        ))
                    })?,
                ),
            };
            let max_bad_rows = match &f.max_bad_rows {
                None => MaxBadRows::Unlimited,
                Some(RawMaxBad::Count(n)) => MaxBadRows::Count(*n),
                Some(RawMaxBad::Ratio(r)) if (0.0..=1.0).contains(r) => MaxBadRows::Ratio(*r),
                Some(RawMaxBad::Text(t)) if t.trim().ends_with('%') => {
                    let pct: f64 = t.trim().trim_end_matches('%').trim().parse().map_err(|_| {
                        ctx(format!(
                            "max_bad_rows = '{t}': expected a count, a ratio or 'N%'"
                        ))
                    })?;
                    MaxBadRows::Ratio(pct / 100.0)
                }
                Some(other) => {
                    return Err(ctx(format!(
                    "max_bad_rows = {other:?}: expected a count, a ratio between 0 and 1, or 'N%'"
                )))
                }
            };
            let quarantine_url = match f.quarantine_table.as_deref() {
                Some(q) => resolve_table(q, base_dir).map_err(&ctx)?,
                // A cloud table keeps its quarantine beside it, in the same container.
                None if table_url.scheme() != "file" => {
                    let dir = format!("{}/", table_url.as_str().trim_end_matches('/'));
                    Url::parse(&dir)
                        .and_then(|d| d.join(&format!("../_quarantine/{}/", f.name)))
                        .map_err(|e| ctx(format!("table {table_url}: {e}")))?
                }
                None => resolve_table(&format!("lake/_quarantine/{}", f.name), base_dir)
                    .map_err(&ctx)?,
            };
            check_scheme(&quarantine_url).map_err(&ctx)?;
            if !tables.insert(quarantine_url.to_string()) {
                return Err(ctx(format!(
                    "quarantine table {quarantine_url} is also another table of this daemon"
                )));
            }
            let claim_dir = match (f.shared_inbox, &raw.instance) {
                (false, _) => None,
                (true, Some(i)) => Some(inbox.join(CLAIMS_DIR).join(i)),
                (true, None) => {
                    return Err(ctx(
                        "shared_inbox = true needs `instance` set (a name unique to each daemon sharing the inbox)".into(),
                    ))
                }
            };
            let mut expectations = Vec::new();
            for e in &f.expect {
                if !infer && schema.position(&e.column).is_none() {
                    return Err(ctx(format!(
                        "[[feed.expect]] names column '{}' that the schema does not have",
                        e.column
                    )));
                }
                let mut push = |check| {
                    expectations.push(Expectation {
                        column: e.column.clone(),
                        check,
                        action: e.action,
                    })
                };
                if e.not_null {
                    push(Check::NotNull);
                }
                if let Some(m) = e.min {
                    push(Check::Min(m));
                }
                if let Some(m) = e.max {
                    push(Check::Max(m));
                }
                if let Some(r) = &e.regex {
                    let re = regex::Regex::new(&format!("^(?:{r})$"))
                        .map_err(|err| ctx(format!("expect regex for '{}': {err}", e.column)))?;
                    push(Check::Regex(re));
                }
                if let Some(v) = &e.one_of {
                    push(Check::OneOf(v.clone()));
                }
                if e.cpf {
                    push(Check::Cpf);
                }
                if e.cnpj {
                    push(Check::Cnpj);
                }
            }
            if csv.batch_rows == 0 || csv.batch_rows > 1_000_000 {
                return Err(ctx("csv.batch_rows must be between 1 and 1000000".into()));
            }
            if let Some(col) = &f.sort_by {
                if !infer && schema.position(col).is_none() {
                    return Err(ctx(format!("sort_by = '{col}': no such column")));
                }
            }
            if f.compact_min_files < 2 {
                return Err(ctx("compact_min_files must be at least 2".into()));
            }
            if f.target_file_bytes < 1024 * 1024 {
                return Err(ctx(
                    "target_file_bytes must be at least 1048576 (1 MiB)".into()
                ));
            }
            let maintenance = MaintenanceConfig {
                interval: f.maintenance_interval,
                compact_min_files: f.compact_min_files,
                target_file_bytes: f.target_file_bytes,
                vacuum_retention: f.vacuum_retention,
                sort_by: f.sort_by.clone(),
            };
            let app_id = match &raw.instance {
                Some(i) => format!("deltadrop-{}-{}", f.name, i),
                None => format!("deltadrop-{}", f.name),
            };
            feeds.push(FeedConfig {
                name: f.name,
                inbox,
                table_url,
                schema_name: f.schema,
                schema,
                processed,
                rejected,
                on_success: f.on_success,
                extensions: f
                    .extensions
                    .iter()
                    .map(|e| e.trim_start_matches('.').to_ascii_lowercase())
                    .collect(),
                dedupe: f.dedupe,
                max_files_per_commit: f.max_files_per_commit,
                max_rows_per_commit: f.max_rows_per_commit,
                checkpoint_interval: f.checkpoint_interval,
                csv,
                app_id,
                infer,
                infer_rows: f.infer_rows.max(1),
                quarantine_url,
                storage_options: StorageOptions(f.storage_options.into_iter().collect()),
                claim_dir,
                maintenance,
                on_bad_row: f.on_bad_row,
                max_bad_rows,
                on_new_column: f.on_new_column,
                header_match: f.header_match,
                encoding,
                values,
                ready_marker: f.ready_marker.clone(),
                max_file_bytes: f.max_file_bytes,
                expectations,
            });
        }
        Ok(Config {
            source,
            base_dir: base_dir.to_path_buf(),
            poll_interval: raw.poll_interval,
            events: raw.events,
            settle: raw.settle,
            debounce: raw.debounce,
            workers,
            state_dir: normalize(&base_dir.join(raw.state_dir)),
            instance: raw.instance,
            http: HttpConfig {
                enabled: raw.http.enabled,
                listen: raw.http.listen,
            },
            feeds,
        })
    }

    /// Human-readable effective settings, printed by `deltadrop check`.
    pub fn describe(&self) -> String {
        let mut s = String::new();
        let src = match &self.source {
            Some(p) => p.display().to_string(),
            None => "<built-in default>".to_string(),
        };
        s.push_str(&format!("config:        {src}\n"));
        s.push_str(&format!("base dir:      {}\n", self.base_dir.display()));
        s.push_str(&format!(
            "poll_interval: {}\n",
            humantime::format_duration(self.poll_interval)
        ));
        s.push_str(&format!("events:        {}\n", self.events));
        s.push_str(&format!(
            "settle:        {}\n",
            humantime::format_duration(self.settle)
        ));
        s.push_str(&format!(
            "debounce:      {}\n",
            humantime::format_duration(self.debounce)
        ));
        s.push_str(&format!("workers:       {}\n", self.workers));
        s.push_str(&format!("state_dir:     {}\n", self.state_dir.display()));
        s.push_str(&format!(
            "http:          {}\n",
            if self.http.enabled {
                format!("http://{}", self.http.listen)
            } else {
                "off".to_string()
            }
        ));
        for f in &self.feeds {
            s.push_str(&format!("\n[feed {}]\n", f.name));
            s.push_str(&format!("  inbox:      {}\n", f.inbox.display()));
            s.push_str(&format!("  table:      {}\n", f.table_url));
            s.push_str(&format!("  schema:     {}\n", f.schema_name));
            for c in &f.schema.columns {
                s.push_str(&format!(
                    "    {:<16} {}{}\n",
                    c.name,
                    c.ty,
                    if c.nullable { "" } else { " not null" }
                ));
            }
            s.push_str(&format!("  processed:  {}\n", f.processed.display()));
            s.push_str(&format!("  rejected:   {}\n", f.rejected.display()));
            s.push_str(&format!("  on_success: {:?}\n", f.on_success));
            s.push_str(&format!("  extensions: {}\n", f.extensions.join(", ")));
            s.push_str(&format!("  dedupe:     {}\n", f.dedupe));
            s.push_str(&format!("  app id:     {}\n", f.app_id));
            s.push_str(&format!(
                "  csv:        delimiter {}, quote {:?}, header {}\n",
                match (f.csv.delimiter, f.csv.delimiter_is_default) {
                    (None, _) => "auto".to_string(),
                    (Some(d), false) => format!("{:?}", d as char),
                    (Some(d), true) => format!(
                        "{:?} (default; sniffed when it finds one column)",
                        d as char
                    ),
                },
                f.csv.quote as char,
                f.csv.header
            ));
            s.push_str(&format!("  quarantine: {}\n", f.quarantine_url));
            if !f.storage_options.0.is_empty() {
                s.push_str(&format!("  storage:    {:?}\n", f.storage_options));
            }
            if let Some(dir) = &f.claim_dir {
                s.push_str(&format!("  claims in:  {} (shared inbox)\n", dir.display()));
            }
            if let Some(p) = &f.schema.partition {
                s.push_str(&format!(
                    "  partition:  {}{}\n",
                    p.column,
                    p.date_of
                        .as_ref()
                        .map(|c| format!(" = UTC date of {c} (derived)"))
                        .unwrap_or_default()
                ));
            }
            let m = &f.maintenance;
            s.push_str(&format!(
                "  maintain:   {}, compact at {} small files into {} MiB{}, vacuum after {}\n",
                if m.interval.is_zero() {
                    "only by `deltadrop maintain`".to_string()
                } else {
                    format!("every {}", humantime::format_duration(m.interval))
                },
                m.compact_min_files,
                m.target_file_bytes / (1024 * 1024),
                m.sort_by
                    .as_ref()
                    .map(|c| format!(" sorted by {c}"))
                    .unwrap_or_default(),
                humantime::format_duration(m.vacuum_retention)
            ));
            s.push_str(&format!(
                "  bad rows:   {:?}, max {:?}\n",
                f.on_bad_row, f.max_bad_rows
            ));
            s.push_str(&format!(
                "  values:     decimal {:?}, thousands {:?}, timezone {}\n",
                f.values.decimal_separator, f.values.thousands_separator, f.values.timezone
            ));
        }
        s
    }
}

fn check_name(what: &str, name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{what} '{name}' must be 1-64 characters of letters, digits, '_' or '-'"
        ))
    }
}

fn one_byte(key: &str, s: &str) -> Result<u8, String> {
    let unescaped = match s {
        "\\t" | "tab" => "\t",
        other => other,
    };
    match unescaped.as_bytes() {
        [b] if b.is_ascii() && *b != b'\n' && *b != b'\r' => Ok(*b),
        _ => Err(format!(
            "{key} = {s:?} must be a single ASCII character (not a line break)"
        )),
    }
}

/// Locale presets: what `locale = "pt-BR"` sets in one line.
struct Preset {
    delimiter: u8,
    decimal: char,
    thousands: Option<char>,
    currency: Vec<String>,
    date_formats: Vec<&'static str>,
    timestamp_formats: Vec<&'static str>,
    true_values: Vec<&'static str>,
    false_values: Vec<&'static str>,
}

impl Default for Preset {
    fn default() -> Self {
        Preset {
            delimiter: b',',
            decimal: '.',
            thousands: None,
            currency: vec![],
            date_formats: vec![],
            timestamp_formats: vec![],
            true_values: vec!["true", "t", "yes", "y", "1"],
            false_values: vec!["false", "f", "no", "n", "0"],
        }
    }
}

impl Preset {
    fn named(name: &str) -> Option<Preset> {
        match name.to_ascii_lowercase().replace('_', "-").as_str() {
            "pt-br" => Some(Preset {
                delimiter: b';',
                decimal: ',',
                thousands: Some('.'),
                currency: vec!["R$".into()],
                date_formats: vec!["dd/MM/yyyy"],
                timestamp_formats: vec!["dd/MM/yyyy HH:mm:ss", "dd/MM/yyyy HH:mm", "dd/MM/yyyy"],
                true_values: vec!["sim", "s", "verdadeiro", "v", "true", "1"],
                false_values: vec!["não", "nao", "n", "falso", "f", "false", "0"],
            }),
            "en-us" => Some(Preset {
                thousands: Some(','),
                currency: vec!["US$".into(), "$".into()],
                date_formats: vec!["MM/dd/yyyy"],
                timestamp_formats: vec!["MM/dd/yyyy HH:mm:ss", "MM/dd/yyyy HH:mm"],
                ..Preset::default()
            }),
            _ => None,
        }
    }
}

fn single_char(key: &str, s: &str) -> Result<char, String> {
    let mut it = s.chars();
    match (it.next(), it.next()) {
        (Some(c), None) => Ok(c),
        _ => Err(format!("{key} = {s:?} must be a single character")),
    }
}

fn resolve_values(f: &RawFeed, preset: &Preset) -> Result<ValueOptions, String> {
    let decimal_separator = match &f.decimal_separator {
        Some(d) => single_char("decimal_separator", d)?,
        None => preset.decimal,
    };
    let thousands_separator = match f.thousands_separator.as_deref() {
        Some("") => None,
        Some(t) => Some(single_char("thousands_separator", t)?),
        None => preset.thousands,
    };
    if Some(decimal_separator) == thousands_separator {
        return Err("decimal_separator and thousands_separator must differ".into());
    }
    let timezone = match &f.timezone {
        None => chrono_tz::UTC,
        Some(tz) => tz.parse::<chrono_tz::Tz>().map_err(|_| {
            format!("timezone = '{tz}' is not an IANA zone name (e.g. America/Sao_Paulo, UTC)")
        })?,
    };
    let formats = |explicit: &Option<String>, preset: &[&str]| -> Vec<String> {
        match explicit {
            Some(f) => vec![java_format_to_chrono(f)],
            None => preset.iter().map(|p| java_format_to_chrono(p)).collect(),
        }
    };
    let lower = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let null_values = f
        .null_values
        .clone()
        .unwrap_or_else(|| vec!["".into(), "NULL".into(), "null".into()]);
    Ok(ValueOptions {
        longest_null_value: null_values
            .iter()
            .map(|t| t.trim().len())
            .max()
            .unwrap_or(0),
        decimal_separator,
        thousands_separator,
        currency_symbols: f
            .currency_symbols
            .clone()
            .unwrap_or_else(|| preset.currency.clone()),
        null_values,
        true_values: f
            .true_values
            .clone()
            .unwrap_or_else(|| lower(&preset.true_values))
            .iter()
            .map(|s| s.to_lowercase())
            .collect(),
        false_values: f
            .false_values
            .clone()
            .unwrap_or_else(|| lower(&preset.false_values))
            .iter()
            .map(|s| s.to_lowercase())
            .collect(),
        date_formats: formats(&f.date_format, &preset.date_formats),
        timestamp_formats: formats(&f.timestamp_format, &preset.timestamp_formats),
        timezone,
        empty_string_is_null: f.empty_string_is_null,
    })
}

/// `dd/MM/yyyy HH:mm:ss` (the notation users know from Spark/Java) → chrono's `%d/%m/%Y %H:%M:%S`.
/// `epoch_s` and `epoch_ms` pass through; a pattern with `%` is taken as chrono already.
pub fn java_format_to_chrono(f: &str) -> String {
    if f.contains('%') || f.starts_with("epoch_") || f == "iso" {
        return f.to_string();
    }
    let tokens = [
        ("yyyy", "%Y"),
        ("yy", "%y"),
        ("MM", "%m"),
        ("dd", "%d"),
        ("HH", "%H"),
        ("mm", "%M"),
        ("ss", "%S"),
        ("SSSSSS", "%6f"),
        ("SSS", "%3f"),
        ("XXX", "%:z"),
        ("Z", "%z"),
    ];
    let mut out = String::new();
    let mut rest = f;
    'outer: while !rest.is_empty() {
        for (t, c) in tokens {
            if let Some(r) = rest.strip_prefix(t) {
                out.push_str(c);
                rest = r;
                continue 'outer;
            }
        }
        let mut chars = rest.chars();
        if let Some(ch) = chars.next() {
            if ch == '\'' {
                // 'T' style literals
                let r = chars.as_str();
                if let Some(end) = r.find('\'') {
                    out.push_str(&r[..end]);
                    rest = &r[end + 1..];
                    continue;
                }
            }
            out.push(ch);
        }
        rest = chars.as_str();
    }
    out
}

fn resolve_schema(f: &RawFeed) -> Result<(TableSchema, bool), String> {
    if let Some(cols) = &f.columns {
        if !(f.schema == "columns" || f.schema == "infer" || f.schema == default_schema()) {
            return Err(format!(
                "both schema = '{}' and columns are set: use one (columns means schema = \"columns\"; with schema = \"infer\" they are hints)",
                f.schema
            ));
        }
        if cols.is_empty() {
            return Err("columns is empty".into());
        }
        let mut names = HashSet::new();
        let mut columns = Vec::new();
        for c in cols {
            if !names.insert(c.name.clone()) {
                return Err(format!("column '{}' is listed twice", c.name));
            }
            if crate::schema::RESERVED.contains(&c.name.as_str()) {
                return Err(format!(
                    "column name '{}' is reserved for deltadrop",
                    c.name
                ));
            }
            let ty =
                c.ty.parse()
                    .map_err(|e| format!("column '{}': {e}", c.name))?;
            columns.push(ColumnSpec {
                name: c.name.clone(),
                ty,
                nullable: c.nullable,
                format: c.format.as_deref().map(java_format_to_chrono),
            });
        }
        let rescued = f.on_new_column == OnNewColumn::Rescue;
        // With infer, these columns are hints: they override what inference finds.
        return Ok((
            TableSchema {
                columns,
                rescued,
                partition: None,
            },
            f.schema == "infer",
        ));
    }
    match f.schema.as_str() {
        "infer" => Ok((
            TableSchema {
                columns: vec![],
                rescued: f.on_new_column == OnNewColumn::Rescue,
                partition: None,
            },
            true,
        )),
        "columns" => Err("schema = \"columns\" needs a columns = [...] list".into()),
        name => {
            let mut s = TableSchema::builtin(name).ok_or_else(|| {
                format!("schema = '{name}' is not known (sales, infer, or a columns list)")
            })?;
            s.rescued = f.on_new_column == OnNewColumn::Rescue;
            Ok((s, false))
        }
    }
}

/// `partition_by = "col"` (a string, integer, date or bool column) or `"date(col)"` (a timestamp
/// column's UTC date, in a derived column `col_date`).
fn resolve_partition(
    spec: &str,
    schema: &TableSchema,
    infer: bool,
    on_new_column: OnNewColumn,
) -> Result<crate::schema::Partition, String> {
    if infer || on_new_column == OnNewColumn::Add {
        return Err(format!(
            "partition_by = '{spec}' needs a fixed schema (schema = \"sales\" or columns), not schema = \"infer\" or on_new_column = \"add\""
        ));
    }
    let spec = spec.trim();
    let find = |name: &str| {
        schema
            .columns
            .iter()
            .find(|c| c.name == name)
            .ok_or_else(|| format!("partition_by = '{spec}': no column '{name}'"))
    };
    if let Some(inner) = spec.strip_prefix("date(").and_then(|r| r.strip_suffix(')')) {
        let source = find(inner.trim())?;
        if source.ty != ColType::Timestamp {
            return Err(format!(
                "partition_by = '{spec}': '{}' is {}, date() takes a timestamp column",
                source.name, source.ty
            ));
        }
        let column = format!("{}_date", source.name);
        if schema.position(&column).is_some() {
            return Err(format!(
                "partition_by = '{spec}': the derived column '{column}' is already a column"
            ));
        }
        return Ok(crate::schema::Partition {
            column,
            date_of: Some(source.name.clone()),
        });
    }
    let c = find(spec)?;
    match c.ty {
        ColType::String | ColType::Int32 | ColType::Int64 | ColType::Date | ColType::Bool => {
            Ok(crate::schema::Partition {
                column: c.name.clone(),
                date_of: None,
            })
        }
        other => Err(format!(
            "partition_by = '{spec}': a {other} column would make one partition per value; use date(...) for timestamps"
        )),
    }
}

/// Inside a shared inbox, each daemon claims files into `CLAIMS_DIR/<instance>/`.
pub const CLAIMS_DIR: &str = ".deltadrop-claims";

/// Object store options (credentials among them). Debug shows the keys and hides the values
/// of anything that may be a secret, so `check`, logs and panics never print a credential.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct StorageOptions(pub std::collections::HashMap<String, String>);

impl std::fmt::Debug for StorageOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut keys: Vec<&String> = self.0.keys().collect();
        keys.sort();
        let shown: Vec<String> = keys
            .into_iter()
            .map(|k| {
                let lower = k.to_ascii_lowercase();
                let secret = [
                    "key",
                    "secret",
                    "token",
                    "password",
                    "sas",
                    "signature",
                    "credential",
                ]
                .iter()
                .any(|s| lower.contains(s));
                if secret {
                    format!("{k}=<redacted>")
                } else {
                    format!("{k}={}", self.0[k])
                }
            })
            .collect();
        write!(f, "{}", shown.join(", "))
    }
}

/// Table URL schemes this build writes: local files, Azure Blob / ADLS Gen2, S3.
const SCHEMES: [&str; 8] = ["file", "az", "azure", "abfs", "abfss", "adl", "s3", "s3a"];

fn check_scheme(url: &Url) -> Result<(), String> {
    if SCHEMES.contains(&url.scheme()) {
        Ok(())
    } else {
        Err(format!(
            "table {url}: scheme '{}' is not supported (use a path, file://, az://, abfss:// or s3://)",
            url.scheme()
        ))
    }
}

/// A table is a URI when it has a scheme of two letters or more (so `C:\...` stays a path).
fn resolve_table(table: &str, base_dir: &Path) -> Result<Url, String> {
    if let Ok(url) = Url::parse(table) {
        if url.scheme().len() > 1 {
            return Ok(url);
        }
    }
    let path = base_dir.join(table);
    Url::from_directory_path(normalize(&path))
        .map_err(|_| format!("table path {} cannot be made a URL", path.display()))
}

fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        normalize(p)
    } else {
        match std::env::current_dir() {
            Ok(cwd) => normalize(&cwd.join(p)),
            Err(_) => p.to_path_buf(),
        }
    }
}

/// Removes `.` and `..` components without touching the filesystem.
fn normalize(p: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_example_parses_with_its_documented_defaults() {
        let cfg = Config::from_toml(EXAMPLE, Path::new("/srv/drop"), None).unwrap();
        assert_eq!(cfg.poll_interval, Duration::from_secs(5));
        assert!(cfg.events);
        assert_eq!(cfg.feeds.len(), 1);
        let f = &cfg.feeds[0];
        assert_eq!(f.name, "sales");
        assert_eq!(f.inbox, PathBuf::from("/srv/drop/inbox"));
        assert_eq!(f.table_url.as_str(), "file:///srv/drop/lake/sales/");
        assert_eq!(f.processed, PathBuf::from("/srv/drop/processed"));
        assert_eq!(cfg.state_dir, PathBuf::from("/srv/drop/.deltadrop"));
        assert_eq!(f.csv.delimiter, Some(b','));
        assert_eq!(f.app_id, "deltadrop-sales");
    }

    #[test]
    fn unknown_keys_are_named_with_their_line() {
        let err = Config::from_toml(
            "poll_interval = \"5s\"\npoll_intervall = \"1s\"\n[[feed]]\nname = \"a\"\n",
            Path::new("/x"),
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("poll_intervall"), "{err}");
        assert!(err.contains("line 2"), "{err}");
    }

    #[test]
    fn durations_use_humantime() {
        let cfg = Config::from_toml(
            "poll_interval = \"1m 30s\"\n[[feed]]\nname = \"a\"\n",
            Path::new("/x"),
            None,
        )
        .unwrap();
        assert_eq!(cfg.poll_interval, Duration::from_secs(90));
    }

    #[test]
    fn feeds_must_not_share_inbox_or_table() {
        let err = Config::from_toml(
            "[[feed]]\nname = \"a\"\n[[feed]]\nname = \"b\"\ntable = \"lake/other\"\n",
            Path::new("/x"),
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("inbox"), "{err}");
        let err = Config::from_toml(
            "[[feed]]\nname = \"a\"\n[[feed]]\nname = \"b\"\ninbox = \"in2\"\n",
            Path::new("/x"),
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("table"), "{err}");
    }

    #[test]
    fn bad_values_are_explained() {
        for (toml, needle) in [
            ("workers = 0\n[[feed]]\nname = \"a\"\n", "workers"),
            ("[[feed]]\nname = \"a b\"\n", "feed name"),
            ("[[feed]]\nname = \"a\"\nschema = \"nope\"\n", "schema"),
            ("[[feed]]\nname = \"a\"\nlocale = \"xx\"\n", "locale"),
            ("[[feed]]\nname = \"a\"\ntimezone = \"Mars/Base\"\n", "IANA"),
            (
                "[[feed]]\nname = \"a\"\nencoding = \"klingon\"\n",
                "encoding",
            ),
            (
                "[[feed]]\nname = \"a\"\nmax_bad_rows = \"lots\"\n",
                "max_bad_rows",
            ),
            (
                "[[feed]]\nname = \"a\"\ncolumns = [{name = \"x\", type = \"varchar\"}]\n",
                "unknown type",
            ),
            (
                "[[feed]]\nname = \"a\"\n[[feed.expect]]\ncolumn = \"nope\"\nmin = 1\n",
                "nope",
            ),
            (
                "[[feed]]\nname = \"a\"\n[feed.csv]\ndelimiter = \";;\"\n",
                "delimiter",
            ),
            ("events = true\n", "[[feed]]"),
        ] {
            let err = Config::from_toml(toml, Path::new("/x"), None)
                .unwrap_err()
                .to_string();
            assert!(err.contains(needle), "{toml}: {err}");
        }
    }

    #[test]
    fn the_pt_br_preset_sets_dialect_and_values_in_one_line() {
        let cfg = Config::from_toml(
            "[[feed]]\nname = \"a\"\nlocale = \"pt-BR\"\ntimezone = \"America/Sao_Paulo\"\nmax_bad_rows = \"5%\"\n",
            Path::new("/x"),
            None,
        )
        .unwrap();
        let f = &cfg.feeds[0];
        assert_eq!(f.csv.delimiter, Some(b';'));
        assert_eq!(f.values.decimal_separator, ',');
        assert_eq!(f.values.thousands_separator, Some('.'));
        assert_eq!(f.values.date_formats, vec!["%d/%m/%Y"]);
        assert_eq!(f.values.timezone, chrono_tz::America::Sao_Paulo);
        assert_eq!(f.max_bad_rows, MaxBadRows::Ratio(0.05));
        assert_eq!(f.quarantine_url.as_str(), "file:///x/lake/_quarantine/a/");
    }

    #[test]
    fn cloud_tables_keep_their_quarantine_beside_them_and_hide_secrets() {
        let cfg = Config::from_toml(
            "instance = \"sp1\"\n[[feed]]\nname = \"a\"\ntable = \"az://lake/tables/sales\"\nshared_inbox = true\n\
             [feed.storage_options]\nazure_storage_account_name = \"acct\"\nazure_storage_account_key = \"s3cr3t\"\n",
            Path::new("/x"),
            None,
        )
        .unwrap();
        let f = &cfg.feeds[0];
        assert_eq!(f.table_url.as_str(), "az://lake/tables/sales");
        assert_eq!(f.quarantine_url.as_str(), "az://lake/tables/_quarantine/a/");
        assert_eq!(
            f.claim_dir.as_deref(),
            Some(Path::new("/x/inbox/.deltadrop-claims/sp1"))
        );
        let shown = cfg.describe() + &format!("{cfg:?}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(shown.contains("azure_storage_account_name=acct"), "{shown}");

        for (toml, needle) in [
            (
                "[[feed]]\nname = \"a\"\ntable = \"gs://b/t\"\n",
                "scheme 'gs' is not supported",
            ),
            (
                "[[feed]]\nname = \"a\"\nshared_inbox = true\n",
                "needs `instance` set",
            ),
        ] {
            let err = Config::from_toml(toml, Path::new("/x"), None)
                .unwrap_err()
                .to_string();
            assert!(err.contains(needle), "{toml}: {err}");
        }
    }

    #[test]
    fn partition_by_takes_a_column_or_the_date_of_a_timestamp() {
        let feed = |extra: &str| {
            Config::from_toml(
                &format!("[[feed]]\nname = \"a\"\n{extra}\n"),
                Path::new("/x"),
                None,
            )
        };
        let p = feed("partition_by = \"date(sold_at)\"").unwrap().feeds[0]
            .schema
            .partition
            .clone()
            .unwrap();
        assert_eq!(p.column, "sold_at_date");
        assert_eq!(p.date_of.as_deref(), Some("sold_at"));
        let p = feed("partition_by = \"store_id\"").unwrap().feeds[0]
            .schema
            .partition
            .clone()
            .unwrap();
        assert_eq!((p.column.as_str(), p.date_of), ("store_id", None));
        for (extra, needle) in [
            (
                "partition_by = \"date(store_id)\"",
                "date() takes a timestamp column",
            ),
            ("partition_by = \"total\"", "one partition per value"),
            ("partition_by = \"nope\"", "no column 'nope'"),
            (
                "schema = \"infer\"\npartition_by = \"x\"",
                "needs a fixed schema",
            ),
        ] {
            let err = feed(extra).unwrap_err().to_string();
            assert!(err.contains(needle), "{extra}: {err}");
        }
    }

    #[test]
    fn java_style_formats_become_chrono_formats() {
        assert_eq!(
            java_format_to_chrono("dd/MM/yyyy HH:mm:ss"),
            "%d/%m/%Y %H:%M:%S"
        );
        assert_eq!(
            java_format_to_chrono("yyyy-MM-dd'T'HH:mm"),
            "%Y-%m-%dT%H:%M"
        );
        assert_eq!(java_format_to_chrono("epoch_ms"), "epoch_ms");
    }

    #[test]
    fn explicit_columns_define_the_schema() {
        let cfg = Config::from_toml(
            "[[feed]]\nname = \"a\"\ncolumns = [\n  {name = \"id\", type = \"int64\", nullable = false},\n  {name = \"day\", type = \"date\", format = \"dd/MM/yyyy\"},\n]\n",
            Path::new("/x"),
            None,
        )
        .unwrap();
        let s = &cfg.feeds[0].schema;
        assert_eq!(s.columns.len(), 2);
        assert_eq!(s.columns[1].format.as_deref(), Some("%d/%m/%Y"));
    }

    #[test]
    fn tab_delimiter_can_be_spelled() {
        let cfg = Config::from_toml(
            "[[feed]]\nname = \"a\"\n[feed.csv]\ndelimiter = \"\\t\"\n",
            Path::new("/x"),
            None,
        )
        .unwrap();
        assert_eq!(cfg.feeds[0].csv.delimiter, Some(b'\t'));
    }
}
