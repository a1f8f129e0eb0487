//! Config stage: reads the TOML file, fills defaults, validates at the edge and resolves paths.
//! Everything after this module works with a [`Config`] whose paths are absolute and checked.

mod describe;
mod feed;
mod locale;
mod location;
mod raw;
mod remote;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use url::Url;

use crate::schema::{TableSchema, TimeFormat};
use location::absolute;
pub use location::StorageOptions;

/// The commented example shipped at the top of the repository; also the built-in default.
pub const EXAMPLE: &str = include_str!("../../config.toml.example");

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

/// The status endpoint (`/status`, `/metrics`, `/health`).
#[derive(Debug, Clone)]
pub struct HttpConfig {
    pub enabled: bool,
    pub listen: String,
}

/// A feed's `schema` key: where its table's columns come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SchemaName {
    /// The built-in sales schema of the original project.
    #[default]
    Sales,
    /// Guessed from the first file (a `columns` list, if given, overrides the guess).
    Infer,
    /// The `columns` list.
    Columns,
}

impl std::fmt::Display for SchemaName {
    /// As written in the TOML (and shown by `check`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SchemaName::Sales => "sales",
            SchemaName::Infer => "infer",
            SchemaName::Columns => "columns",
        })
    }
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

/// How a new table names its columns (`column_names`). A table keeps the naming it was created
/// with: the setting only decides for tables deltadrop creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ColumnNames {
    /// Headers Spark refuses as Delta column names (spaces, `(`, `,` …) are folded
    /// (`Valor Total (R$)` → `valor_total__r$_`): every Delta reader can read the table.
    #[default]
    SparkSafe,
    /// Every header as written, through Delta column mapping (name mode): the folded name is
    /// the column's physical name in the Parquet files, the header its name in the table.
    /// Readers need column mapping support (reader version 2).
    Original,
}

/// How JSON lines objects and arrays nested in a value are loaded (`nested`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Nested {
    /// As Delta structs and arrays, their members typed as columns are
    /// (`struct<city:string,zip:int64>`, `array<decimal(18,2)>`).
    #[default]
    Struct,
    /// As their JSON text, in a string column.
    Json,
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

/// What the files of a feed hold. `auto` decides per file by its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    #[default]
    Csv,
    /// JSON lines: one object per line (`.ndjson`, `.jsonl`, `.json`).
    Ndjson,
    /// Workbooks: `.xlsx`, `.xlsm`, `.xlsb`, `.xls`, `.ods`.
    Xlsx,
    /// Parquet files.
    Parquet,
    /// By extension: workbooks, Parquet, JSON lines, and the rest as CSV.
    Auto,
}

/// How one file is read, once `auto` is decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    Csv,
    Ndjson,
    Excel,
    Parquet,
}

/// Extensions read as JSON lines by `format = "auto"` (compressed or not).
pub const NDJSON_EXTENSIONS: [&str; 3] = ["ndjson", "jsonl", "json"];

/// Extensions read as workbooks by `format = "auto"`.
pub const WORKBOOK_EXTENSIONS: [&str; 5] = ["xlsx", "xlsm", "xlsb", "xls", "ods"];

/// What happens to a file once its rows are committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OnSuccess {
    #[default]
    Move,
    Delete,
}

/// What happens when a file arrives whose name was loaded before with other content (the same
/// content again is a duplicate, whatever this says).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OnResend {
    /// Load it as new rows (a fixed export name reused for new data), with a warning naming
    /// the version that loaded the earlier content.
    #[default]
    Append,
    /// Reject it (rejected/, with the reason naming that version): nothing is loaded twice
    /// under one name.
    Reject,
    /// Replace what the earlier version(s) of the name loaded: one commit removes their rows
    /// and adds the new ones (a corrected re-export of a day).
    Replace,
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
    pub http: HttpConfig,
    pub feeds: Vec<FeedConfig>,
}

#[derive(Debug, Clone)]
pub struct FeedConfig {
    pub name: String,
    pub inbox: PathBuf,
    /// Table location as a URL (`file:///abs/path` for local tables).
    pub table_url: Url,
    pub schema_name: SchemaName,
    pub schema: TableSchema,
    pub processed: PathBuf,
    pub rejected: PathBuf,
    pub on_success: OnSuccess,
    pub format: Format,
    /// The sheet of a workbook to read (`sheet = "..."`); None: the first that fits.
    pub sheet: Option<String>,
    /// Lower-case extensions without the dot.
    pub extensions: Vec<String>,
    pub dedupe: bool,
    pub on_resend: OnResend,
    /// Columns whose values identify a row: a row whose key is in the table replaces that row
    /// (an upsert). Empty: rows are only added.
    pub merge_key: Vec<String>,
    /// Several daemons write this table (`instance` is set): names loaded by the others are
    /// not in this daemon's state, so a correction looks for every name it brings.
    pub shared_writers: bool,
    pub max_files_per_commit: usize,
    pub max_rows_per_commit: u64,
    pub checkpoint_interval: u64,
    pub csv: CsvConfig,
    /// The Delta `txn` application id this feed commits under.
    pub app_id: String,
    /// `schema = "infer"`: the columns come from the first file (or the existing table).
    pub infer: bool,
    /// At most this many rows are read to infer a schema (0: no limit but the byte bound).
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
    /// How a table this feed creates names its columns.
    pub column_names: ColumnNames,
    /// How `schema = "infer"` types a JSON lines value that is an object or an array.
    pub nested: Nested,
    pub encoding: Encoding,
    pub values: ValueOptions,
    /// The `locale` preset named in the config, if any.
    pub locale: Option<String>,
    pub ready_marker: Option<String>,
    /// Larger files are rejected unread (0: no limit).
    pub max_file_bytes: u64,
    pub expectations: Vec<Expectation>,
    /// The inbox is in object storage: `inbox`, `processed` and `rejected` above are the local
    /// folders its objects are read through.
    pub remote: Option<Remote>,
}

/// An inbox in a container or bucket (`inbox = "az://drop/inbox"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remote {
    /// Where objects land (a prefix, ending in '/').
    pub inbox: Url,
    /// Where a loaded object is copied before it leaves the inbox (unless `delete_on_success`).
    pub processed: Url,
    /// Where an object that cannot be loaded goes, with `NAME.error.txt`.
    pub rejected: Url,
    /// `on_success = "delete"`: a loaded object is deleted, not copied to `processed`.
    pub delete_on_success: bool,
    /// The local folders (`inbox`, `processed`, `rejected`) objects are read through.
    pub local: PathBuf,
    /// This daemon's name in claims: `instance`, or the host name and process id.
    pub instance: String,
    /// How long a claim holds without being renewed: a daemon killed mid-object leaves a claim
    /// another daemon takes after this.
    pub lease: Duration,
}

impl FeedConfig {
    /// Rows of this feed's table can change (`on_resend = "replace"` or a `merge_key`): its
    /// commits remove rows, and the table carries Delta's change data feed.
    pub fn mutable(&self) -> bool {
        self.on_resend == OnResend::Replace || !self.merge_key.is_empty()
    }
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
    /// Lines before the header (or the first row) that are not rows: report titles.
    pub skip_rows: usize,
    /// Non-blank lines at the end that are not rows: totals, record counts.
    pub skip_footer: usize,
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
    /// Words that are null in a typed (not string) column: nil, NA, N/A, None, null, -...
    /// Matched ignoring ASCII case; in a string column they are text.
    pub typed_null_values: Vec<String>,
    /// Length of the longest null token (values longer than this are never null).
    pub longest_null_value: usize,
    pub true_values: Vec<String>,
    pub false_values: Vec<String>,
    /// Formats tried in order; empty = ISO 8601.
    pub date_formats: Vec<TimeFormat>,
    pub timestamp_formats: Vec<TimeFormat>,
    pub timezone: chrono_tz::Tz,
    pub empty_string_is_null: bool,
    /// ISO 8601 dates and timestamps are read besides the formats set (a workbook's date
    /// cells are rendered so: `ingest::sheet_feed`).
    pub iso_too: bool,
    /// `on_new_column = "rescue"`: a struct member the table lacks goes to `_rescued_data`
    /// (under its path) instead of setting its row apart.
    pub rescue_members: bool,
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
    /// A `merge_key` column: a row without its key cannot be matched, so it is a bad row.
    KeyNotNull,
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
}

impl FeedConfig {
    /// `x.csv` + `ready_marker` (`.done`) → `x.csv.done`: the producer's "this file is
    /// complete" marker, if the feed uses one.
    /// How `path` is read: the feed's format, or with `auto` its extension (after a `.gz` or
    /// `.zst`).
    pub fn format_of(&self, path: &Path) -> FileFormat {
        match self.format {
            Format::Csv => FileFormat::Csv,
            Format::Ndjson => FileFormat::Ndjson,
            Format::Xlsx => FileFormat::Excel,
            Format::Parquet => FileFormat::Parquet,
            Format::Auto => {
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().to_ascii_lowercase())
                    .unwrap_or_default();
                let ends = |name: &str, exts: &[&str]| {
                    exts.iter()
                        .any(|e| name.len() > e.len() + 1 && name.ends_with(&format!(".{e}")))
                };
                if ends(&name, &WORKBOOK_EXTENSIONS) {
                    return FileFormat::Excel;
                }
                if ends(&name, &["parquet"]) {
                    return FileFormat::Parquet;
                }
                let name = name
                    .strip_suffix(".gz")
                    .or_else(|| name.strip_suffix(".zst"))
                    .unwrap_or(&name);
                if ends(name, &NDJSON_EXTENSIONS) {
                    FileFormat::Ndjson
                } else {
                    FileFormat::Csv
                }
            }
        }
    }

    pub fn marker_for(&self, path: &Path) -> Option<PathBuf> {
        let m = self.ready_marker.as_deref()?;
        let mut name = path.file_name()?.to_os_string();
        name.push(m);
        Some(path.with_file_name(name))
    }
}

/// Inside a shared inbox, each daemon claims files into `CLAIMS_DIR/<instance>/`.
pub const CLAIMS_DIR: &str = ".deltadrop-claims";

#[cfg(test)]
mod tests {
    use super::locale::java_format_to_chrono;
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
    fn original_column_names_keep_the_name_as_written_beside_the_spark_safe_one() {
        let toml = |cols: &str, extra: &str| {
            format!(
                "[[feed]]\nname = \"v\"\ncolumn_names = \"original\"\n{extra}columns = [{cols}]\n"
            )
        };
        let cfg = Config::from_toml(
            &toml(
                r#"{ name = "Código do Produto", type = "string" }, { name = "Loja", type = "string" }"#,
                "merge_key = [\"Código do Produto\"]\n",
            ),
            Path::new("/x"),
            None,
        )
        .unwrap();
        let f = &cfg.feeds[0];
        let c = &f.schema.columns;
        assert_eq!(c[0].name, "codigo_do_produto");
        assert_eq!(c[0].label.as_deref(), Some("Código do Produto"));
        assert_eq!((c[1].name.as_str(), c[1].label.as_deref()), ("Loja", None));
        // A setting naming a column as written means the column deltadrop works with.
        assert_eq!(f.merge_key, ["codigo_do_produto"]);
        // Two names that are one column to Delta (case) or in the files (folded) are refused.
        for cols in [
            r#"{ name = "Valor (R$)", type = "string" }, { name = "valor (r$)", type = "string" }"#,
            r#"{ name = "Valor Total", type = "string" }, { name = "valor_total", type = "string" }"#,
        ] {
            let err = Config::from_toml(&toml(cols, ""), Path::new("/x"), None)
                .unwrap_err()
                .to_string();
            assert!(err.contains("are the same column to Delta"), "{err}");
        }
        // Without "original", a name Spark refuses says how to keep it.
        let err = Config::from_toml(
            "[[feed]]\nname = \"v\"\ncolumns = [{ name = \"Valor (R$)\", type = \"string\" }]\n",
            Path::new("/x"),
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("column_names = \"original\""), "{err}");
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

    /// A URI in a folder setting was a relative path: `az://drop/inbox` made a local folder
    /// `az:`, watched for ever. An inbox may now be in object storage; processed and rejected
    /// beside a local inbox, and state_dir, are refused, naming the feed, the setting and the
    /// value.
    #[test]
    fn folder_settings_refuse_uris_and_keep_windows_paths() {
        let with = |setting: &str, value: &str| {
            Config::from_toml(
                &format!("[[feed]]\nname = \"sales\"\n{setting} = '{value}'\n"),
                Path::new("/x"),
                None,
            )
        };
        let stores = [
            "az://drop/inbox",
            "abfss://drop@acct.dfs.core.windows.net/inbox",
            "s3://bucket/inbox",
            "s3a://bucket/inbox",
            "file:///srv/drop/inbox",
        ];
        for setting in ["processed", "rejected"] {
            for value in stores {
                let err = with(setting, value).unwrap_err().to_string();
                let named = format!("feed 'sales': {setting} = \"{value}\" is a URI");
                assert!(err.contains(&named), "{err}");
                assert!(err.contains("the inbox is a local folder"), "{err}");
            }
        }
        let err = with("processed", "file:///srv/drop/done")
            .unwrap_err()
            .to_string();
        assert!(err.contains("write it as a path: processed = "), "{err}");
        for value in stores {
            let f = &with("inbox", value).unwrap().feeds[0];
            let r = f.remote.as_ref().expect("an inbox in object storage");
            assert!(r.processed.as_str().ends_with("/processed/"), "{r:?}");
            assert!(f.inbox.starts_with("/x/.deltadrop/remote/sales"), "{f:?}");
        }
        for value in [
            "gs://bucket/inbox",
            "https://acct.blob.core.windows.net/drop",
        ] {
            let err = with("inbox", value).unwrap_err().to_string();
            assert!(err.contains("is not supported"), "{err}");
        }
        let err = Config::from_toml(
            "state_dir = 's3://b/state'\n[[feed]]\nname = \"a\"\n",
            Path::new("/x"),
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("state_dir = \"s3://b/state\" is a URI"),
            "{err}"
        );

        // Windows paths have a one-letter "scheme" at most, and UNC paths none.
        for value in [
            r"C:\drop\inbox",
            "C:/drop/inbox",
            r"\\server\share\inbox",
            "//server/share/inbox",
            r"\\?\C:\drop\inbox",
            "in:box",
        ] {
            for setting in ["inbox", "processed", "rejected"] {
                let cfg = with(setting, value);
                assert!(cfg.is_ok(), "{setting} = {value}: {:?}", cfg.err());
            }
        }
        #[cfg(windows)]
        {
            let cfg = with("inbox", r"C:\drop\inbox").unwrap();
            assert_eq!(cfg.feeds[0].inbox, PathBuf::from(r"C:\drop\inbox"));
        }
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
        assert_eq!(f.values.date_formats, vec![TimeFormat::from("%d/%m/%Y")]);
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
            TimeFormat::Chrono("%d/%m/%Y %H:%M:%S".into())
        );
        assert_eq!(
            java_format_to_chrono("yyyy-MM-dd'T'HH:mm"),
            TimeFormat::Chrono("%Y-%m-%dT%H:%M".into())
        );
        assert_eq!(
            java_format_to_chrono("%d.%m.%Y"),
            TimeFormat::Chrono("%d.%m.%Y".into())
        );
        assert_eq!(java_format_to_chrono("epoch_ms"), TimeFormat::EpochMillis);
        assert_eq!(java_format_to_chrono("epoch_s"), TimeFormat::EpochSeconds);
        assert_eq!(java_format_to_chrono("iso"), TimeFormat::Iso);
        // Each shown (and kept in a column's metadata) as the text it was read from.
        for text in ["%d.%m.%Y", "epoch_ms", "epoch_s", "iso"] {
            assert_eq!(TimeFormat::from(text).to_string(), text);
        }
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
        assert_eq!(
            s.columns[1].format,
            Some(TimeFormat::Chrono("%d/%m/%Y".into()))
        );
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
