//! `deltadrop check`: the effective settings of a [`Config`], as a person reads them.

use super::{Config, CsvConfig, FeedConfig, MaintenanceConfig};

impl Config {
    /// The daemon's settings, then each feed's.
    pub fn describe(&self) -> String {
        let mut s = self.describe_daemon();
        for f in &self.feeds {
            s.push_str(&describe_feed(f));
        }
        s
    }

    /// Where the config came from, and the settings every feed shares.
    fn describe_daemon(&self) -> String {
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
        s
    }
}

/// One feed's section: what it loads from where to where, how it reads CSV, its quarantine,
/// storage, claims and partitions, then maintenance, bad rows and values.
fn describe_feed(f: &FeedConfig) -> String {
    let mut s = describe_loading(f);
    s.push_str(&format!("  csv:        {}\n", describe_csv(&f.csv)));
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
    s.push_str(&format!(
        "  maintain:   {}\n",
        describe_maintenance(&f.maintenance)
    ));
    s.push_str(&format!(
        "  bad rows:   {:?}, max {:?}\n",
        f.on_bad_row, f.max_bad_rows
    ));
    s.push_str(&format!(
        "  values:     decimal {:?}, thousands {:?}, timezone {}\n",
        f.values.decimal_separator, f.values.thousands_separator, f.values.timezone
    ));
    s
}

/// The feed's heading, its inbox, table and schema, what becomes of a loaded file, and what of
/// one sent again.
fn describe_loading(f: &FeedConfig) -> String {
    let mut s = format!("\n[feed {}]\n", f.name);
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
    if f.format != super::Format::Csv {
        s.push_str(&format!("  format:     {:?}\n", f.format).to_lowercase());
        s.push_str(match f.nested {
            super::Nested::Struct => {
                "  nested:     struct (JSON objects and arrays as Delta structs and arrays)\n"
            }
            super::Nested::Json => "  nested:     json (JSON objects and arrays as their text)\n",
        });
    }
    s.push_str(&format!("  extensions: {}\n", f.extensions.join(", ")));
    s.push_str(&format!("  dedupe:     {}\n", f.dedupe));
    s.push_str(&format!("  on_resend:  {:?}\n", f.on_resend));
    if !f.merge_key.is_empty() {
        s.push_str(&format!("  merge_key:  {}\n", f.merge_key.join(", ")));
    }
    if f.mutable() {
        s.push_str("  changes:    rows can change: the table carries Delta's change data feed\n");
    }
    s.push_str(&format!("  app id:     {}\n", f.app_id));
    s
}

/// Delimiter (and whether it is sniffed), quote and header.
fn describe_csv(csv: &CsvConfig) -> String {
    format!(
        "delimiter {}, quote {:?}, header {}",
        match (csv.delimiter, csv.delimiter_is_default) {
            (None, _) => "auto".to_string(),
            (Some(d), false) => format!("{:?}", d as char),
            (Some(d), true) => format!(
                "{:?} (default; sniffed when it finds one column)",
                d as char
            ),
        },
        csv.quote as char,
        csv.header
    )
}

/// When maintenance runs, what it compacts into what, and when it vacuums.
fn describe_maintenance(m: &MaintenanceConfig) -> String {
    format!(
        "{}, compact at {} small files into {} MiB{}, vacuum after {}",
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
    )
}
