//! Validation at the edge: the raw TOML values become a [`Config`] whose paths are absolute,
//! whose names, dialect, locale, schema and tables are checked, and whose errors name the key.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use url::Url;

use super::locale::{java_format_to_chrono, resolve_values, Preset};
use super::location::{check_local_folder, check_scheme, normalize, resolve_table, StorageOptions};
use super::raw::{RawConfig, RawCsv, RawExpect, RawFeed, RawMaxBad};
use super::{
    Check, ColumnNames, Config, ConfigError, CsvConfig, Encoding, ExpectAction, Expectation,
    FeedConfig, HttpConfig, MaintenanceConfig, MaxBadRows, OnNewColumn, SchemaName, ValueOptions,
    CLAIMS_DIR,
};
use crate::schema::{ColType, ColumnSpec, TableSchema};

impl Config {
    /// Parses `text` (the file `source`, or the built-in default) with paths relative to
    /// `base_dir`; the error names the file and, for TOML errors, the key, line and column.
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
        let workers = check_daemon_settings(&raw).map_err(&invalid)?;
        let state_dir = normalize(&base_dir.join(&raw.state_dir));
        let mut seen = Seen::default();
        let mut feeds = Vec::with_capacity(raw.feeds.len());
        for f in raw.feeds {
            check_name("feed name", &f.name).map_err(&invalid)?;
            if !seen.names.insert(f.name.clone()) {
                return Err(invalid(format!("two feeds are named '{}'", f.name)));
            }
            let name = f.name.clone();
            let feed = resolve_feed(f, base_dir, &state_dir, raw.instance.as_deref(), &mut seen)
                .map_err(|m| invalid(format!("feed '{name}': {m}")))?;
            feeds.push(feed);
        }
        Ok(Config {
            source,
            base_dir: base_dir.to_path_buf(),
            poll_interval: raw.poll_interval,
            events: raw.events,
            settle: raw.settle,
            debounce: raw.debounce,
            workers,
            state_dir,
            http: HttpConfig {
                enabled: raw.http.enabled,
                listen: raw.http.listen,
            },
            feeds,
        })
    }
}

/// The daemon-wide settings; returns the number of workers.
fn check_daemon_settings(raw: &RawConfig) -> Result<usize, String> {
    if raw.poll_interval < Duration::from_millis(10) {
        return Err(format!(
            "poll_interval = {:?} is too short (at least 10ms)",
            raw.poll_interval
        ));
    }
    if raw.debounce < Duration::from_millis(1) || raw.debounce > Duration::from_secs(60) {
        return Err(format!(
            "debounce = {:?}: must be between 1ms and 60s",
            raw.debounce
        ));
    }
    let workers = match raw.workers {
        Some(0) => return Err("workers = 0: at least one worker is needed".into()),
        Some(n) => n,
        None => std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2),
    };
    if raw.http.enabled && raw.http.listen.parse::<std::net::SocketAddr>().is_err() {
        return Err(format!(
            "[http] listen = '{}' is not an address like 127.0.0.1:9187",
            raw.http.listen
        ));
    }
    if raw.feeds.is_empty() {
        return Err("no [[feed]] block: at least one inbox → table pair is needed".into());
    }
    if let Some(inst) = &raw.instance {
        check_name("instance", inst)?;
    }
    check_local_folder("state_dir", &raw.state_dir)?;
    Ok(workers)
}

/// What the feeds resolved so far use: no two feeds may share a name, an inbox or a table.
#[derive(Default)]
struct Seen {
    names: HashSet<String>,
    inboxes: HashSet<PathBuf>,
    tables: HashSet<String>,
}

/// One `[[feed]]` block, checked in the order its keys are read; the error is the message
/// without the feed's name.
fn resolve_feed(
    f: RawFeed,
    base_dir: &Path,
    state_dir: &Path,
    instance: Option<&str>,
    seen: &mut Seen,
) -> Result<FeedConfig, String> {
    let (mut schema, infer) = resolve_schema(&f)?;
    let mut f = f;
    name_columns_as_the_table_does(&mut f, &schema);
    if let Some(spec) = &f.partition_by {
        schema.partition = Some(resolve_partition(spec, &schema, infer, f.on_new_column)?);
    }
    let remote = super::remote::resolve_remote(&f, state_dir, instance, &mut seen.inboxes)?;
    let places = match &remote {
        Some(r) => remote_places(&f, r, base_dir, seen)?,
        None => resolve_places(&f, base_dir, seen)?,
    };
    check_commit_limits(&f)?;
    let preset = resolve_preset(f.locale.as_deref())?;
    let csv = resolve_csv(&f.csv, &preset)?;
    let mut values = resolve_values(&f, &preset)?;
    values.rescue_members = f.on_new_column == OnNewColumn::Rescue;
    let encoding = resolve_encoding(&f.encoding)?;
    let max_bad_rows = resolve_max_bad_rows(f.max_bad_rows.as_ref())?;
    let quarantine_url = resolve_quarantine(&f, &places.table_url, base_dir, seen)?;
    let claim_dir = resolve_claim_dir(f.shared_inbox, instance, &places.inbox)?;
    let expectations = resolve_row_checks(&f, &schema, infer)?;
    if csv.batch_rows == 0 || csv.batch_rows > 1_000_000 {
        return Err("csv.batch_rows must be between 1 and 1000000".into());
    }
    let maintenance = resolve_maintenance(&f, &schema, infer)?;
    let resolved = Resolved {
        schema,
        infer,
        places,
        csv,
        values,
        encoding,
        max_bad_rows,
        quarantine_url,
        claim_dir,
        expectations,
        maintenance,
        remote,
    };
    Ok(resolved.into_feed(f, instance))
}

/// Where a feed reads and writes: its inbox, its table and the folders files go to afterwards.
struct Places {
    /// For an inbox in object storage: the local folder its objects are read from.
    inbox: PathBuf,
    table_url: Url,
    processed: PathBuf,
    rejected: PathBuf,
}

/// The inbox and the table, each used by no other feed; `processed` and `rejected` apart from
/// the inbox.
fn resolve_places(f: &RawFeed, base_dir: &Path, seen: &mut Seen) -> Result<Places, String> {
    check_local_folder("inbox", &f.inbox)?;
    check_local_folder("processed", &f.processed)?;
    check_local_folder("rejected", &f.rejected)?;
    let inbox = normalize(&base_dir.join(&f.inbox));
    if !seen.inboxes.insert(inbox.clone()) {
        return Err(format!("inbox {} is used by another feed", inbox.display()));
    }
    let table_url = resolve_own_table(f, base_dir, seen)?;
    let processed = normalize(&base_dir.join(&f.processed));
    let rejected = normalize(&base_dir.join(&f.rejected));
    for (what, p) in [("processed", &processed), ("rejected", &rejected)] {
        if *p == inbox {
            return Err(format!("{what} must not be the inbox itself"));
        }
    }
    Ok(Places {
        inbox,
        table_url,
        processed,
        rejected,
    })
}

/// The places of a feed whose inbox is in object storage: local folders under `state_dir`.
fn remote_places(
    f: &RawFeed,
    r: &super::Remote,
    base_dir: &Path,
    seen: &mut Seen,
) -> Result<Places, String> {
    Ok(Places {
        inbox: r.local.join("inbox"),
        table_url: resolve_own_table(f, base_dir, seen)?,
        processed: r.local.join("processed"),
        rejected: r.local.join("rejected"),
    })
}

/// The feed's table, written by no other feed of this daemon, in a supported scheme.
fn resolve_own_table(f: &RawFeed, base_dir: &Path, seen: &mut Seen) -> Result<Url, String> {
    let table_url = resolve_table(&f.table, base_dir)?;
    if !seen.tables.insert(table_url.to_string()) {
        return Err(format!(
            "table {table_url} is written by another feed of this daemon"
        ));
    }
    check_scheme(&table_url)?;
    Ok(table_url)
}

/// Which files are taken and how many go into one commit.
fn check_commit_limits(f: &RawFeed) -> Result<(), String> {
    if f.extensions.as_ref().is_some_and(Vec::is_empty) {
        return Err("extensions is empty: no file would ever be ingested".into());
    }
    if f.max_files_per_commit == 0 || f.max_rows_per_commit == 0 {
        return Err("max_files_per_commit and max_rows_per_commit must be at least 1".into());
    }
    if f.checkpoint_interval == 0 {
        return Err("checkpoint_interval must be at least 1".into());
    }
    Ok(())
}

fn resolve_preset(locale: Option<&str>) -> Result<Preset, String> {
    match locale {
        None => Ok(Preset::default()),
        Some(l) => Preset::named(l)
            .ok_or_else(|| format!("locale = '{l}' is not known (known: pt-BR, en-US)")),
    }
}

/// The quarantine table: a table of its own, written by no other feed.
fn resolve_quarantine(
    f: &RawFeed,
    table_url: &Url,
    base_dir: &Path,
    seen: &mut Seen,
) -> Result<Url, String> {
    let quarantine_url = quarantine_url(f, table_url, base_dir)?;
    check_scheme(&quarantine_url)?;
    if !seen.tables.insert(quarantine_url.to_string()) {
        return Err(format!(
            "quarantine table {quarantine_url} is also another table of this daemon"
        ));
    }
    Ok(quarantine_url)
}

/// `shared_inbox = true`: the folder this daemon claims files into, named after its instance.
fn resolve_claim_dir(
    shared_inbox: bool,
    instance: Option<&str>,
    inbox: &Path,
) -> Result<Option<PathBuf>, String> {
    match (shared_inbox, instance) {
        (false, _) => Ok(None),
        (true, Some(i)) => Ok(Some(inbox.join(CLAIMS_DIR).join(i))),
        (true, None) => Err(
            "shared_inbox = true needs `instance` set (a name unique to each daemon sharing the inbox)".into(),
        ),
    }
}

/// The checks every row goes through: the `[[feed.expect]]` blocks, then the merge key's.
fn resolve_row_checks(
    f: &RawFeed,
    schema: &TableSchema,
    infer: bool,
) -> Result<Vec<Expectation>, String> {
    let mut expectations = resolve_expectations(&f.expect, schema, infer)?;
    check_merge_key(&f.merge_key, schema, infer)?;
    // A row without its key cannot be matched: a bad row, whatever else is expected.
    expectations.extend(f.merge_key.iter().map(|c| Expectation {
        column: c.clone(),
        check: Check::KeyNotNull,
        action: ExpectAction::Quarantine,
    }));
    Ok(expectations)
}

fn resolve_maintenance(
    f: &RawFeed,
    schema: &TableSchema,
    infer: bool,
) -> Result<MaintenanceConfig, String> {
    if let Some(col) = &f.sort_by {
        if !infer && schema.position(col).is_none() {
            return Err(format!("sort_by = '{col}': no such column"));
        }
    }
    if f.compact_min_files < 2 {
        return Err("compact_min_files must be at least 2".into());
    }
    if f.target_file_bytes < 1024 * 1024 {
        return Err("target_file_bytes must be at least 1048576 (1 MiB)".into());
    }
    Ok(MaintenanceConfig {
        interval: f.maintenance_interval,
        compact_min_files: f.compact_min_files,
        target_file_bytes: f.target_file_bytes,
        vacuum_retention: f.vacuum_retention,
        sort_by: f.sort_by.clone(),
    })
}

/// What checking a `[[feed]]` block resolved; the keys that need no checking join it in
/// [`Resolved::into_feed`].
struct Resolved {
    schema: TableSchema,
    infer: bool,
    places: Places,
    csv: CsvConfig,
    values: ValueOptions,
    encoding: Encoding,
    max_bad_rows: MaxBadRows,
    quarantine_url: Url,
    claim_dir: Option<PathBuf>,
    expectations: Vec<Expectation>,
    maintenance: MaintenanceConfig,
    remote: Option<super::Remote>,
}

impl Resolved {
    fn into_feed(self, f: RawFeed, instance: Option<&str>) -> FeedConfig {
        let Places {
            inbox,
            table_url,
            processed,
            rejected,
        } = self.places;
        // An upsert holds its commit's keys in memory (exact, and sorted for skipping files).
        let max_rows_per_commit = if f.merge_key.is_empty() {
            f.max_rows_per_commit
        } else {
            f.max_rows_per_commit.min(MERGE_MAX_ROWS_PER_COMMIT)
        };
        let app_id = match instance {
            Some(i) => format!("deltadrop-{}-{}", f.name, i),
            None => format!("deltadrop-{}", f.name),
        };
        FeedConfig {
            inbox,
            table_url,
            schema: self.schema,
            processed,
            rejected,
            // An object leaves the remote inbox as `on_success` says; its local copy always
            // goes to the local processed folder first, where the remote side picks it up.
            on_success: if self.remote.is_some() {
                super::OnSuccess::Move
            } else {
                f.on_success
            },
            remote: self.remote.map(|r| super::Remote {
                delete_on_success: f.on_success == super::OnSuccess::Delete,
                ..r
            }),
            format: f.format,
            sheet: f.sheet,
            extensions: f
                .extensions
                .unwrap_or_else(|| super::raw::default_extensions(f.format))
                .iter()
                .map(|e| e.trim_start_matches('.').to_ascii_lowercase())
                .collect(),
            dedupe: f.dedupe,
            on_resend: f.on_resend,
            merge_key: f.merge_key,
            shared_writers: instance.is_some(),
            max_files_per_commit: f.max_files_per_commit,
            max_rows_per_commit,
            checkpoint_interval: f.checkpoint_interval,
            csv: self.csv,
            app_id,
            infer: self.infer,
            infer_rows: f.infer_rows,
            quarantine_url: self.quarantine_url,
            storage_options: StorageOptions(f.storage_options.into_iter().collect()),
            claim_dir: self.claim_dir,
            maintenance: self.maintenance,
            on_bad_row: f.on_bad_row,
            max_bad_rows: self.max_bad_rows,
            on_new_column: f.on_new_column,
            header_match: f.header_match,
            column_names: f.column_names,
            nested: f.nested,
            encoding: self.encoding,
            values: self.values,
            locale: f.locale.clone(),
            ready_marker: f.ready_marker,
            max_file_bytes: f.max_file_bytes,
            expectations: self.expectations,
            schema_name: f.schema,
            name: f.name,
        }
    }
}

fn resolve_csv(c: &RawCsv, preset: &Preset) -> Result<CsvConfig, String> {
    let optional =
        |key: &str, v: &Option<String>| v.as_deref().map(|s| one_byte(key, s)).transpose();
    let delimiter = match c.delimiter.as_deref() {
        Some("auto") => None,
        Some(d) => Some(one_byte("csv.delimiter", d)?),
        None => Some(preset.delimiter),
    };
    Ok(CsvConfig {
        delimiter,
        delimiter_is_default: c.delimiter.is_none(),
        header: c.header,
        quote: one_byte("csv.quote", &c.quote)?,
        escape: optional("csv.escape", &c.escape)?,
        comment: optional("csv.comment", &c.comment)?,
        batch_rows: c.batch_rows,
        max_line_bytes: c.max_line_bytes.max(1024),
        skip_rows: c.skip_rows,
        skip_footer: c.skip_footer,
    })
}

fn resolve_encoding(label: &str) -> Result<Encoding, String> {
    match label.to_ascii_lowercase().as_str() {
        "auto" => Ok(Encoding::Auto),
        label => encoding_rs::Encoding::for_label(label.as_bytes())
            .map(Encoding::Fixed)
            .ok_or_else(|| {
                format!(
                    "encoding = '{label}' is not known (auto, utf-8, windows-1252, latin1, ...)"
                )
            }),
    }
}

fn resolve_max_bad_rows(raw: Option<&RawMaxBad>) -> Result<MaxBadRows, String> {
    Ok(match raw {
        None => MaxBadRows::Unlimited,
        Some(RawMaxBad::Count(n)) => MaxBadRows::Count(*n),
        Some(RawMaxBad::Ratio(r)) if (0.0..=1.0).contains(r) => MaxBadRows::Ratio(*r),
        Some(RawMaxBad::Text(t)) if t.trim().ends_with('%') => {
            let pct: f64 =
                t.trim().trim_end_matches('%').trim().parse().map_err(|_| {
                    format!("max_bad_rows = '{t}': expected a count, a ratio or 'N%'")
                })?;
            MaxBadRows::Ratio(pct / 100.0)
        }
        Some(other) => {
            return Err(format!(
                "max_bad_rows = {other:?}: expected a count, a ratio between 0 and 1, or 'N%'"
            ))
        }
    })
}

/// `quarantine_table`, or the default: `lake/_quarantine/<feed>` for a local table, beside the
/// table in the same container for a cloud one.
fn quarantine_url(f: &RawFeed, table_url: &Url, base_dir: &Path) -> Result<Url, String> {
    match f.quarantine_table.as_deref() {
        Some(q) => resolve_table(q, base_dir),
        None if table_url.scheme() != "file" => {
            let dir = format!("{}/", table_url.as_str().trim_end_matches('/'));
            Url::parse(&dir)
                .and_then(|d| d.join(&format!("../_quarantine/{}/", f.name)))
                .map_err(|e| format!("table {table_url}: {e}"))
        }
        None => resolve_table(&format!("lake/_quarantine/{}", f.name), base_dir),
    }
}

/// The most rows one upsert commit takes (a backlog is committed in several).
pub const MERGE_MAX_ROWS_PER_COMMIT: u64 = 250_000;

/// `merge_key` names columns the feed writes (for `infer`: checked against the table when it
/// is opened), each once, and none of deltadrop's own.
fn check_merge_key(key: &[String], schema: &TableSchema, infer: bool) -> Result<(), String> {
    let mut seen = std::collections::HashSet::new();
    for c in key {
        if crate::schema::RESERVED.contains(&c.as_str()) {
            return Err(format!(
                "merge_key names '{c}', a column deltadrop fills itself: name the columns that identify a row in the files"
            ));
        }
        if !seen.insert(c) {
            return Err(format!("merge_key names '{c}' twice"));
        }
        if !infer && schema.position(c).is_none() {
            return Err(format!(
                "merge_key names column '{c}' that the schema does not have (columns: {})",
                schema
                    .columns
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if let Some(nested) = schema
            .columns
            .iter()
            .find(|s| s.name == *c && s.ty.is_nested())
        {
            return Err(format!(
                "merge_key names '{c}', a {} column: a key is one or more scalar columns (a struct's member cannot be a key; declare it as a column of its own)",
                nested.ty
            ));
        }
    }
    Ok(())
}

fn resolve_expectations(
    raw: &[RawExpect],
    schema: &TableSchema,
    infer: bool,
) -> Result<Vec<Expectation>, String> {
    let mut expectations = Vec::new();
    for e in raw {
        if !infer && schema.position(&e.column).is_none() {
            return Err(format!(
                "[[feed.expect]] names column '{}' that the schema does not have",
                e.column
            ));
        }
        let nested = schema
            .columns
            .iter()
            .find(|c| c.name == e.column && c.ty.is_nested());
        let value_checks = e.min.is_some()
            || e.max.is_some()
            || e.regex.is_some()
            || e.one_of.is_some()
            || e.cpf
            || e.cnpj;
        if let (Some(c), true) = (nested, value_checks) {
            return Err(format!(
                "[[feed.expect]] on '{}': a {} column takes not_null only",
                e.column, c.ty
            ));
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
                .map_err(|err| format!("expect regex for '{}': {err}", e.column))?;
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
    Ok(expectations)
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

fn resolve_schema(f: &RawFeed) -> Result<(TableSchema, bool), String> {
    if let Some(cols) = &f.columns {
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
            let original = f.column_names == ColumnNames::Original;
            if let Some(bad) = c
                .name
                .chars()
                .find(|ch| crate::schema::SPARK_REFUSES.contains(*ch))
                .filter(|_| !original)
            {
                return Err(format!(
                    "column name '{}' has {bad:?}, which Spark refuses in a Delta column name: name it '{}' (a header '{}' still matches it), or keep it as written with column_names = \"original\"",
                    c.name,
                    crate::schema::column_name_for(&c.name),
                    c.name
                ));
            }
            if c.name.trim().is_empty() {
                return Err("a column name is empty".into());
            }
            // Under "original" the name as written is the column's name in the table, and its
            // Spark-safe form — what a header is matched by — the name deltadrop works with.
            let (name, label) = if original {
                let safe = crate::schema::column_name_for(&c.name);
                if let Some(other) = columns.iter().find(|o: &&ColumnSpec| {
                    o.name.eq_ignore_ascii_case(&safe)
                        || o.shown().eq_ignore_ascii_case(c.name.trim())
                }) {
                    return Err(format!(
                        "columns '{}' and '{}' are the same column to Delta (names compare without case; the Parquet name of both is '{safe}')",
                        other.shown(),
                        c.name
                    ));
                }
                let label = (safe != c.name).then(|| c.name.trim().to_string());
                (safe, label)
            } else {
                (c.name.clone(), None)
            };
            let ty =
                c.ty.parse()
                    .map_err(|e| format!("column '{}': {e}", c.name))?;
            columns.push(ColumnSpec {
                name,
                label,
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
            f.schema == SchemaName::Infer,
        ));
    }
    match f.schema {
        SchemaName::Infer => Ok((
            TableSchema {
                columns: vec![],
                rescued: f.on_new_column == OnNewColumn::Rescue,
                partition: None,
            },
            true,
        )),
        SchemaName::Columns => Err("schema = \"columns\" needs a columns = [...] list".into()),
        SchemaName::Sales => {
            let mut s = TableSchema::sales();
            s.rescued = f.on_new_column == OnNewColumn::Rescue;
            Ok((s, false))
        }
    }
}

/// Under `column_names = "original"`, settings may name a column as written (`merge_key =
/// ["Código do Produto"]`): each becomes the name deltadrop works with.
fn name_columns_as_the_table_does(f: &mut RawFeed, schema: &TableSchema) {
    let internal = |n: &str| -> Option<String> {
        schema
            .columns
            .iter()
            .find(|c| c.label.as_deref() == Some(n.trim()))
            .map(|c| c.name.clone())
    };
    for k in f.merge_key.iter_mut() {
        if let Some(n) = internal(k) {
            *k = n;
        }
    }
    if let Some(n) = f.sort_by.as_deref().and_then(internal) {
        f.sort_by = Some(n);
    }
    for e in f.expect.iter_mut() {
        if let Some(n) = internal(&e.column) {
            e.column = n;
        }
    }
    if let Some(spec) = f.partition_by.clone() {
        let spec = spec.trim();
        f.partition_by = match spec.strip_prefix("date(").and_then(|r| r.strip_suffix(')')) {
            Some(inner) => internal(inner).map(|n| format!("date({n})")),
            None => internal(spec),
        }
        .or(f.partition_by.take());
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
    match &c.ty {
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
