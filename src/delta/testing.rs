//! A committer on real tables in a temporary folder, for the commit stage's unit tests
//! (`sequence`, `recover`): a feed of the built-in config, files dropped in its inbox and
//! parsed as a worker parses them, and the tables read back as another process sees them.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use super::committer::{Committer, CommitterContext};
use super::log::{Commit, Log};
use super::open::FeedTables;
use super::DeltaError;
use crate::archive::Archive;
use crate::config::{Config, FeedConfig, EXAMPLE};
use crate::counters::Counters;
use crate::job::{self, FileData, FileJob, ParsedFile};
use crate::shutdown::Shutdown;
use crate::state::{FeedState, FileRecord};
use crate::tracker::Tracker;

pub(super) const HEADER: &str =
    "sale_id,sold_at,store_id,product_id,quantity,unit_price,total,payment_method,customer_id";

pub(super) struct Site {
    pub(super) _dir: tempfile::TempDir,
    pub(super) feed: Arc<FeedConfig>,
    pub(super) state_dir: PathBuf,
}

/// The built-in config's feed in a temporary folder.
pub(super) fn site() -> Site {
    site_with("")
}

/// The same, with the feed's `key = value` lines `settings` in place of the built-in ones (or
/// added to the feed).
pub(super) fn site_with(settings: &str) -> Site {
    let dir = tempfile::tempdir().unwrap();
    let mut text = EXAMPLE.to_string();
    for line in settings.lines() {
        let key = line.split('=').next().unwrap().trim();
        match text.find(&format!("\n{key} =")) {
            Some(at) => {
                let end = at + 1 + text[at + 1..].find('\n').unwrap();
                text.replace_range(at + 1..end, line);
            }
            // Not set in the built-in config: added to the feed.
            None => {
                text = text.replacen(
                    "name = \"sales\"\n",
                    &format!("name = \"sales\"\n{line}\n"),
                    1,
                )
            }
        }
    }
    let cfg = Config::from_toml(&text, dir.path(), None).unwrap();
    let feed = Arc::new(cfg.feeds[0].clone());
    std::fs::create_dir_all(&feed.inbox).unwrap();
    Site {
        feed,
        state_dir: cfg.state_dir.clone(),
        _dir: dir,
    }
}

/// A file in the inbox, and the record a commit of it carries.
pub(super) fn drop_file(s: &Site, name: &str, content: &str) -> FileRecord {
    let path = s.feed.inbox.join(name);
    std::fs::write(&path, content).unwrap();
    FileRecord {
        name: name.into(),
        path,
        size: content.len() as u64,
        hash: blake3::hash(content.as_bytes()).to_hex().to_string(),
        rows: 1,
        bad_rows: 0,
        warned_rows: 0,
        dialect: None,
    }
}

/// Sales rows `ids` (one per id) as CSV text.
pub(super) fn sales(ids: &[&str], price: &str) -> String {
    let mut s = format!("{HEADER}\n");
    for id in ids {
        s.push_str(&format!(
            "{id},2024-03-01T10:00:00Z,ST1,P1,1,{price},{price},cash,C1\n"
        ));
    }
    s
}

/// `content` dropped in the inbox as `name` and parsed as a worker parses it.
pub(super) fn parsed(s: &Site, c: &Committer, name: &str, content: &str) -> ParsedFile {
    let rec = drop_file(s, name, content);
    let mut batches = Vec::new();
    let summary = crate::ingest::parse_file(&rec.path, &s.feed, &c.tables.schema, 0, |b| {
        batches.push(b);
        Ok(())
    })
    .unwrap();
    ParsedFile {
        job: FileJob {
            feed: 0,
            path: rec.path,
        },
        hash: summary.hash,
        size: summary.size,
        rows: summary.rows,
        data: FileData::Batches(batches),
        bad: summary.bad,
        warned: summary.warned,
        dialect: summary.dialect,
        stamp: summary.stamp,
        started: Instant::now(),
    }
}

pub(super) fn start(s: &Site) -> Result<Committer, DeltaError> {
    let tables = FeedTables::open(&s.feed, || None).unwrap().unwrap();
    let state = FeedState::open(&s.state_dir, &s.feed.name).unwrap();
    let counters = Counters::new([s.feed.name.clone()]);
    let ctx = CommitterContext {
        feed_id: 0,
        board: job::board(vec![(tables.schema.clone(), tables.table.clone())]),
        archive: Archive::new(
            s.feed.clone(),
            Tracker::default(),
            counters.feed(&s.feed.name).unwrap(),
        ),
        shutdown: Shutdown::default(),
        alive: crate::service::Watchdog::from_env(String::new).register(),
        checkpoints: crate::delta::checkpoint::Checkpointer::spawn().0,
    };
    Committer::start(s.feed.clone(), tables, state, ctx)
}

/// A table as another process (or a reader) sees it now.
pub(super) fn fresh(c: &Committer, url: &url::Url) -> deltalake::DeltaTable {
    c.tables
        .rt
        .block_on(crate::delta::table::load(
            url,
            &c.feed.storage_options,
            None,
        ))
        .unwrap()
}

/// The rows of a table as another process sees it (from its files' statistics).
pub(super) fn rows_in(c: &Committer, url: &url::Url) -> i64 {
    let t = fresh(c, url);
    t.snapshot()
        .unwrap()
        .log_data()
        .iter()
        .map(|f| f.num_records().unwrap_or(0) as i64)
        .sum()
}

/// Another process writing the table: a log of its own.
pub(super) fn other_writer(c: &Committer) -> Log {
    Log::new(&fresh(c, &c.feed.table_url))
}

/// The commit of `txn` landing, as the committer writes it (without data files).
pub(super) fn land(c: &Committer, log: &mut Log, app_id: &str, txn: i64) -> i64 {
    let commit = Commit::append(vec![], Default::default(), app_id, txn);
    log.commit(&c.tables.rt, commit).unwrap()
}

pub(super) fn in_inbox(s: &Site, name: &str) -> bool {
    s.feed.inbox.join(name).exists()
}

pub(super) fn in_processed(s: &Site, name: &str) -> bool {
    s.feed.processed.join(name).exists()
}
