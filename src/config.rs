//! Config stage: reads the TOML file, fills defaults, validates at the edge and resolves paths.
//! Everything after this module works with a [`Config`] whose paths are absolute and checked.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use url::Url;

use crate::schema::TableSchema;

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
    #[serde(default, rename = "feed")]
    feeds: Vec<RawFeed>,
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
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCsv {
    #[serde(default = "default_delimiter")]
    delimiter: String,
    #[serde(default = "default_true")]
    header: bool,
    #[serde(default = "default_quote")]
    quote: String,
    #[serde(default)]
    escape: Option<String>,
    #[serde(default = "default_batch_rows")]
    batch_rows: usize,
}

impl Default for RawCsv {
    fn default() -> Self {
        RawCsv {
            delimiter: default_delimiter(),
            header: true,
            quote: default_quote(),
            escape: None,
            batch_rows: default_batch_rows(),
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
    Duration::from_millis(10)
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
    vec!["csv".to_string()]
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
fn default_delimiter() -> String {
    ",".to_string()
}
fn default_quote() -> String {
    "\"".to_string()
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
}

#[derive(Debug, Clone)]
pub struct CsvConfig {
    pub delimiter: u8,
    pub header: bool,
    pub quote: u8,
    pub escape: Option<u8>,
    pub batch_rows: usize,
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
        if raw.debounce.is_zero() || raw.debounce > Duration::from_secs(60) {
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
            let schema = TableSchema::builtin(&f.schema).ok_or_else(|| {
                ctx(format!(
                    "schema = '{}' is not known (built-in schemas: sales)",
                    f.schema
                ))
            })?;
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
            if table_url.scheme() != "file" {
                return Err(ctx(format!(
                    "table {table_url}: only local tables (a path or file://) are supported by this build"
                )));
            }
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
            let csv = CsvConfig {
                delimiter: one_byte("csv.delimiter", &f.csv.delimiter).map_err(&ctx)?,
                header: f.csv.header,
                quote: one_byte("csv.quote", &f.csv.quote).map_err(&ctx)?,
                escape: match &f.csv.escape {
                    Some(e) => Some(one_byte("csv.escape", e).map_err(&ctx)?),
                    None => None,
                },
                batch_rows: f.csv.batch_rows,
            };
            if csv.batch_rows == 0 || csv.batch_rows > 1_000_000 {
                return Err(ctx("csv.batch_rows must be between 1 and 1000000".into()));
            }
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
                "  csv:        delimiter {:?}, quote {:?}, header {}\n",
                f.csv.delimiter as char, f.csv.quote as char, f.csv.header
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
        assert_eq!(f.csv.delimiter, b',');
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
    fn tab_delimiter_can_be_spelled() {
        let cfg = Config::from_toml(
            "[[feed]]\nname = \"a\"\n[feed.csv]\ndelimiter = \"\\t\"\n",
            Path::new("/x"),
            None,
        )
        .unwrap();
        assert_eq!(cfg.feeds[0].csv.delimiter, b'\t');
    }
}
