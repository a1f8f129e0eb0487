//! The command line: clap's definitions (shared flags flattened), logging setup, and each
//! command's dispatch to the library; on Windows, the service front end ([`winservice`]).

#[cfg(windows)]
mod winservice;

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};

use crate::config::{self, Config};
use crate::daemon::RunOptions;
use crate::error::Error;
use crate::ops;
use crate::shutdown::Shutdown;

/// `print!` for command output: a reader that closed the pipe (`deltadrop check | head`) ends
/// the output quietly, as for any Unix tool, instead of a panic; another write error is
/// returned.
macro_rules! out {
    ($($arg:tt)*) => {
        crate::cli::write_out(format_args!($($arg)*))?
    };
}

/// `println!` for command output (see `out!`).
macro_rules! outln {
    ($($arg:tt)*) => {{
        out!($($arg)*);
        out!("\n");
    }};
}

/// Writes command output to standard output (see `out!`).
pub(crate) fn write_out(args: std::fmt::Arguments<'_>) -> Result<(), Error> {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    match stdout.write_fmt(args).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        r => r.map_err(crate::error::io_err("writing to standard output")),
    }
}

#[derive(Debug, Parser)]
#[command(
    name = "deltadrop",
    version,
    about = "Turns a drop folder of CSV files into a Delta Lake table, exactly once.",
    long_about = "Turns a drop folder of CSV files into a Delta Lake table, exactly once.\n\n\
        Start it next to a folder; every CSV file dropped there becomes committed, typed rows in \
        a Delta table that Spark, Python (deltalake, polars) or Databricks read.\n\n\
        Logging: RUST_LOG=debug (or info, warn, error; default info).\n\
        Exit codes: 0 success, 1 runtime failure, 2 usage or configuration error."
)]
pub(crate) struct Cli {
    /// Log lines as text (default) or one JSON object per line, for log shippers.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum LogFormat {
    Text,
    Json,
}

/// `--config FILE`, the same on every command.
#[derive(Debug, Args)]
pub(crate) struct ConfigArg {
    /// The TOML config file (default: ./config.toml, else the built-in defaults)
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

impl ConfigArg {
    /// The config this flag names, or the one found as its help says.
    pub fn load(&self) -> Result<Config, Error> {
        Ok(Config::discover(self.config.as_deref())?)
    }
}

/// `--feed NAME`: one feed of the config instead of every feed.
#[derive(Debug, Args)]
pub(crate) struct FeedArg {
    /// Which feed (default: every feed)
    #[arg(long, value_name = "NAME")]
    pub feed: Option<String>,
}

/// `--json`: machine-readable output.
#[derive(Debug, Args)]
pub(crate) struct JsonArg {
    /// Machine-readable output
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Write DIR/config.toml (the commented example) and create the folders it names.
    ///
    /// Refuses to overwrite an existing config.toml (exit 2). Existing folders are used as they
    /// are: nothing is ever emptied or replaced.
    Init {
        /// Where to set up (default: the current folder).
        dir: Option<PathBuf>,
    },
    /// Run the daemon: watch the inboxes and commit every CSV file dropped there.
    ///
    /// Without --config it reads ./config.toml, and without one it uses the built-in defaults
    /// relative to the current folder (inbox/ → lake/sales). SIGINT/SIGTERM stop it cleanly:
    /// no new files are taken, in-flight commits finish, exit 0.
    Run {
        #[command(flatten)]
        config: ConfigArg,
        /// Ingest what is in the inboxes now, commit, and exit (for cron jobs and backfills).
        /// Exits 1 if some file could not be ingested for a reason that may pass (it stays in
        /// the inbox); rejected files do not change the exit code.
        #[arg(long)]
        once: bool,
    },
    /// Guess a CSV file's encoding, dialect, locale and column types; print a ready-to-paste
    /// [[feed]] block.
    ///
    /// With --config, the named feed's settings (encoding, delimiter, locale...) are used as the
    /// starting point; without, everything is detected.
    #[command(mut_arg("config", |a| a.help("A config whose feed settings to start from (default: none, everything is detected)")))]
    Sniff {
        /// The CSV file (may be .gz or .zst).
        file: PathBuf,
        #[command(flatten)]
        config: ConfigArg,
        /// Which feed of the config (default: the first).
        #[arg(long, value_name = "NAME")]
        feed: Option<String>,
        /// At most this many rows are looked at (0: every row up to 64 MiB of text, then 8 MiB
        /// from the middle and from the end).
        #[arg(long, default_value_t = 0)]
        rows: usize,
    },
    /// Show what a feed's table holds: version, rows, size, files, schema, the last commits
    /// with their source files; with --file, where one dropped file went.
    Inspect {
        #[command(flatten)]
        config: ConfigArg,
        #[command(flatten)]
        feed: FeedArg,
        /// Which version(s) hold rows of this file, or why it was rejected.
        #[arg(long = "file", value_name = "NAME")]
        file: Option<String>,
        /// How many recent commits to list.
        #[arg(long, default_value_t = 10)]
        commits: usize,
        #[command(flatten)]
        json: JsonArg,
    },
    /// Ask the running daemon how it is doing: backlog, files in flight, last commit, errors,
    /// uptime. Exit 1 if it is not running (or its status endpoint is off).
    Status {
        #[command(flatten)]
        config: ConfigArg,
        #[command(flatten)]
        json: JsonArg,
    },
    /// Maintain the tables now: compact small files (dataChange = false, so streaming readers
    /// are not disturbed), vacuum files no reader needs, write a checkpoint and drop expired
    /// log files. Safe while the daemon runs; the daemon also does it every
    /// `maintenance_interval`.
    Maintain {
        #[command(flatten)]
        config: ConfigArg,
        #[command(flatten)]
        feed: FeedArg,
        /// Compact from this many small files on (default: the feed's `compact_min_files`).
        #[arg(long, value_name = "N")]
        compact_min_files: Option<usize>,
        /// Delete unreferenced files older than this (default: the feed's `vacuum_retention`).
        /// Below the time a reader may still read an old version, that reader fails.
        #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
        vacuum_retention: Option<std::time::Duration>,
        #[command(flatten)]
        json: JsonArg,
    },
    /// Read quarantined rows again under the config as it is now (after a fix such as
    /// `decimal_separator = ","`): rows that pass now are committed to the table and leave the
    /// quarantine table; rows that still fail stay, with their new error.
    ///
    /// Each row is read with the header of the file it came from, found in processed/. Exactly
    /// once, also across a crash (an interrupted requeue is finished by the next one, or by the
    /// daemon's next start). Stop the daemon first: a requeue refuses to run beside it.
    Requeue {
        #[command(flatten)]
        config: ConfigArg,
        #[command(flatten)]
        feed: FeedArg,
        /// Only the rows of files of this name.
        #[arg(long = "file", value_name = "NAME")]
        file: Option<String>,
        /// Say what would pass now; commit nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        json: JsonArg,
    },
    /// Validate the config and print the effective settings (exit 2 on error).
    Check {
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Windows: run deltadrop as a Windows service (from an Administrator prompt).
    #[cfg(windows)]
    Service {
        #[command(subcommand)]
        action: ServiceAction,
    },
}

#[cfg(windows)]
#[derive(Debug, Subcommand)]
pub(crate) enum ServiceAction {
    /// Register the service, started at boot, running this config; its log goes to
    /// deltadrop.log beside the config. Start it with `sc start NAME`.
    Install {
        /// The config the service runs.
        #[arg(short, long, value_name = "FILE", default_value = "config.toml")]
        config: PathBuf,
        /// The service's name (several daemons: several names).
        #[arg(long, default_value = "deltadrop")]
        name: String,
    },
    /// Stop the service (in-flight commits finish) and remove it.
    Uninstall {
        #[arg(long, default_value = "deltadrop")]
        name: String,
    },
    /// What the service control manager starts; not for a prompt.
    #[command(hide = true)]
    Run {
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
        #[arg(long, default_value = "deltadrop")]
        name: String,
    },
}

/// Entry point of the binary; returns the process exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    // A service has no console: it logs beside its config.
    #[cfg(windows)]
    let log_file = match &cli.command {
        Command::Service {
            action: ServiceAction::Run { config, .. },
        } => Some(winservice::log_path(config)),
        _ => None,
    };
    #[cfg(not(windows))]
    let log_file = None;
    init_logging(cli.log_format, log_file);
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            log::error!("{e}");
            // Also on stderr without the logger's decoration when logging is turned off.
            if !log::log_enabled!(log::Level::Error) {
                eprintln!("deltadrop: {e}");
            }
            e.exit_code()
        }
    }
}

/// The feed named `name`, or every feed.
fn select_feeds<'a>(
    cfg: &'a Config,
    name: Option<&str>,
) -> Result<Vec<&'a config::FeedConfig>, Error> {
    match name {
        Some(n) => cfg
            .feeds
            .iter()
            .find(|f| f.name == n)
            .map(|f| vec![f])
            .ok_or_else(|| Error::Usage(format!("no feed named '{n}' in the config"))),
        None => Ok(cfg.feeds.iter().collect()),
    }
}

fn init_logging(format: LogFormat, file: Option<PathBuf>) {
    let env = env_logger::Env::default().default_filter_or("info");
    let mut b = env_logger::Builder::from_env(env);
    if let Some(path) = file {
        match std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
        {
            Ok(f) => {
                b.target(env_logger::Target::Pipe(Box::new(f)));
            }
            Err(e) => eprintln!(
                "deltadrop: cannot open the log file {}: {e}",
                path.display()
            ),
        }
    }
    match format {
        LogFormat::Text => {
            b.format_timestamp_millis();
        }
        LogFormat::Json => {
            b.format(|buf, record| {
                let line = serde_json::json!({
                    "ts": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                    "level": record.level().to_string(),
                    "target": record.target(),
                    "msg": record.args().to_string(),
                });
                writeln!(buf, "{line}")
            });
        }
    }
    let _ = b.try_init();
}

fn dispatch(cli: Cli) -> Result<i32, Error> {
    match cli.command {
        Command::Init { dir } => init(dir.as_deref().unwrap_or(Path::new("."))).map(|_| 0),
        Command::Sniff {
            file,
            config,
            feed,
            rows,
        } => sniff(&file, &config, feed.as_deref(), rows),
        Command::Inspect {
            config,
            feed,
            file,
            commits,
            json,
        } => inspect(&config, &feed, file.as_deref(), commits, json.json),
        Command::Status { config, json } => status(&config, json.json),
        Command::Maintain {
            config,
            feed,
            compact_min_files,
            vacuum_retention,
            json,
        } => {
            let cfg = config.load()?;
            let mut all = Vec::new();
            for f in select_feeds(&cfg, feed.feed.as_deref())? {
                let mut m = f.maintenance.clone();
                if let Some(n) = compact_min_files {
                    m.compact_min_files = n.max(2);
                }
                if let Some(r) = vacuum_retention {
                    m.vacuum_retention = r;
                }
                for r in crate::maintain::maintain_feed(f, &m, &Shutdown::default())? {
                    if !json.json {
                        outln!("feed {}: {}", f.name, r.summary());
                    }
                    all.push(r);
                }
            }
            if json.json {
                outln!("{}", serde_json::to_string_pretty(&all)?);
            }
            Ok(0)
        }
        Command::Check { config } => {
            let cfg = config.load()?;
            out!("{}", cfg.describe());
            out!("{}", readiness(&cfg));
            Ok(0)
        }
        Command::Requeue {
            config,
            feed,
            file,
            dry_run,
            json,
        } => {
            let cfg = config.load()?;
            let opts = crate::requeue::Options { file, dry_run };
            let mut reports = Vec::new();
            for f in select_feeds(&cfg, feed.feed.as_deref())? {
                let r = crate::requeue::requeue(&cfg, f, &opts)?;
                if !json.json {
                    out!("{}", r.summary());
                }
                reports.push(r);
            }
            if json.json {
                outln!("{}", serde_json::to_string_pretty(&reports)?);
            }
            Ok(0)
        }
        Command::Run { config, once } => run(&config, once),
        #[cfg(windows)]
        Command::Service { action } => match action {
            ServiceAction::Install { config, name } => {
                winservice::install(&name, &config).map(|()| 0)
            }
            ServiceAction::Uninstall { name } => winservice::uninstall(&name).map(|()| 0),
            ServiceAction::Run { config, name } => winservice::run_as_service(&name, &config),
        },
    }
}

/// How each feed knows a file is complete here (for `check`): see README, "Readiness".
fn readiness(cfg: &Config) -> String {
    let mut out = String::from("\nreadiness (how a file is known complete):\n");
    for f in &cfg.feeds {
        let how = match crate::delta::localfs::shared_mount(&f.inbox) {
            Some(what) => format!(
                "the inbox is on {what}: a writer on another machine is invisible to this one, so a file is taken once unchanged for `settle`{}",
                if f.ready_marker.is_some() { " or its ready marker exists" } else { " (or set ready_marker)" }
            ),
            None => crate::ingest::lease::describe(&f.inbox),
        };
        out.push_str(&format!("  feed {}: {how}\n", f.name));
    }
    out
}

fn sniff(file: &Path, config: &ConfigArg, feed: Option<&str>, rows: usize) -> Result<i32, Error> {
    let cfg = match &config.config {
        Some(p) => Config::load(p)?,
        // Detect everything: the format by the extension, no fixed delimiter.
        None => Config::from_toml(
            "[[feed]]\nname = \"sniff\"\nformat = \"auto\"\n[feed.csv]\ndelimiter = \"auto\"\n",
            Path::new("/"),
            None,
        )?,
    };
    let mut f = match feed {
        Some(_) => select_feeds(&cfg, feed)?[0].clone(),
        None => cfg.feeds[0].clone(),
    };
    f.infer_rows = rows;
    let s = crate::ingest::infer::sniff(file, &f, config.config.is_none())
        .map_err(|e| Error::Usage(format!("{}: {e}", file.display())))?;
    out!("{}", crate::ingest::sniffed::feed_toml(file, &s));
    Ok(0)
}

fn inspect(
    config: &ConfigArg,
    feed: &FeedArg,
    file: Option<&str>,
    commits: usize,
    json: bool,
) -> Result<i32, Error> {
    let cfg = config.load()?;
    let mut reports = Vec::new();
    for f in select_feeds(&cfg, feed.feed.as_deref())? {
        reports.push(ops::inspect::inspect(f, &cfg.state_dir, commits, file)?);
    }
    if json {
        let v = if reports.len() == 1 && feed.feed.is_some() {
            serde_json::to_value(&reports[0])
        } else {
            serde_json::to_value(&reports)
        }?;
        outln!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        let text: Vec<String> = reports.iter().map(ops::inspect::render).collect();
        out!("{}", text.join("\n"));
    }
    Ok(0)
}

fn status(config: &ConfigArg, json: bool) -> Result<i32, Error> {
    let cfg = config.load()?;
    let s = ops::status::fetch(&cfg).map_err(Error::NotRunning)?;
    if json {
        outln!("{}", serde_json::to_string_pretty(&s)?);
    } else {
        out!("{}", ops::status::render(&s));
    }
    Ok(0)
}

fn run(config: &ConfigArg, once: bool) -> Result<i32, Error> {
    let cfg = config.load()?;
    if cfg.source.is_none() {
        log::info!(
            "no config.toml here: using the built-in defaults in {}",
            cfg.base_dir.display()
        );
    }
    let shutdown = Shutdown::default();
    let s = shutdown.clone();
    ctrlc::set_handler(move || {
        if s.is_triggered() {
            log::warn!("second signal: still finishing in-flight commits");
        }
        crate::service::stopping();
        s.trigger();
    })?;
    use std::io::IsTerminal;
    let progress = once && std::io::stderr().is_terminal();
    let summary = crate::daemon::run(&cfg, RunOptions { once, progress }, shutdown)?;
    if once && summary.transient_failures > 0 {
        log::error!(
            "{} file(s) could not be ingested now; they stay in the inbox",
            summary.transient_failures
        );
        return Ok(1);
    }
    Ok(0)
}

/// `deltadrop init DIR`: never overwrites a config, never empties a folder.
pub(crate) fn init(dir: &Path) -> Result<(), Error> {
    crate::daemon::ensure_dir(dir)?;
    let path = dir.join("config.toml");
    let mut file = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(Error::Usage(format!(
                "{} already exists; not overwriting it (edit it, or move it away first)",
                path.display()
            )))
        }
        Err(source) => {
            return Err(Error::Io {
                context: format!("cannot write {}", path.display()),
                source,
            })
        }
    };
    file.write_all(config::EXAMPLE.as_bytes())
        .and_then(|_| file.sync_all())
        .map_err(|source| Error::Io {
            context: format!("cannot write {}", path.display()),
            source,
        })?;
    let cfg = Config::load(&path)?;
    let mut dirs = vec![cfg.state_dir.clone()];
    for f in &cfg.feeds {
        dirs.extend([f.inbox.clone(), f.processed.clone(), f.rejected.clone()]);
        if let Ok(p) = f.table_url.to_file_path() {
            dirs.push(p);
        }
    }
    outln!("wrote {}", path.display());
    for d in dirs {
        let existed = d.is_dir();
        crate::daemon::ensure_dir(&d)?;
        outln!(
            "{} {}",
            if existed { "using  " } else { "created" },
            d.display()
        );
    }
    outln!(
        "\nnext: deltadrop run --config {}   (then drop CSV files into the inbox)",
        path.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn shared_flags_parse_the_same_on_every_command() {
        for args in [
            vec!["deltadrop", "run", "-c", "x.toml", "--once"],
            vec!["deltadrop", "check", "--config", "x.toml"],
            vec![
                "deltadrop",
                "inspect",
                "-c",
                "x.toml",
                "--feed",
                "f",
                "--json",
            ],
            vec!["deltadrop", "status", "--config", "x.toml", "--json"],
            vec![
                "deltadrop",
                "maintain",
                "-c",
                "x.toml",
                "--feed",
                "f",
                "--json",
            ],
            vec!["deltadrop", "sniff", "a.csv", "-c", "x.toml", "--feed", "f"],
            vec![
                "deltadrop",
                "requeue",
                "-c",
                "x.toml",
                "--feed",
                "f",
                "--dry-run",
            ],
        ] {
            let cli = Cli::try_parse_from(&args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
            let config = match &cli.command {
                Command::Run { config, .. }
                | Command::Check { config }
                | Command::Inspect { config, .. }
                | Command::Status { config, .. }
                | Command::Maintain { config, .. }
                | Command::Sniff { config, .. }
                | Command::Requeue { config, .. } => config,
                other => unreachable!("{other:?} takes no --config flag of its own"),
            };
            assert_eq!(
                config.config.as_deref(),
                Some(Path::new("x.toml")),
                "{args:?}"
            );
        }
    }
}
