//! Checkpoints: written every `checkpoint_interval` versions by one thread for every feed, so
//! that a commit never waits for one (and an idle feed costs no thread); they also remove log
//! files past the table's log retention.

use std::collections::HashMap;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam_channel::Sender;
use deltalake::{DeltaTable, DeltaTableError};

use super::runtime;
use super::table::load;
use crate::config::{FeedConfig, StorageOptions};
use crate::counters::{Event, FeedCounters};

/// Checkpoint this feed's table at `version`.
struct Request {
    feed: Arc<FeedConfig>,
    counters: Arc<FeedCounters>,
    version: i64,
}

/// The checkpoint thread's queue: committers ask, the thread writes. The thread ends when
/// every handle is dropped.
#[derive(Clone)]
pub struct Checkpointer {
    tx: Sender<Request>,
}

impl Checkpointer {
    pub fn spawn() -> (Checkpointer, Option<JoinHandle<()>>) {
        let (tx, rx) = crossbeam_channel::bounded::<Request>(64);
        let handle = std::thread::Builder::new()
            .name("checkpoint".into())
            .spawn(move || {
                let rt = match runtime() {
                    Ok(rt) => rt,
                    Err(e) => {
                        log::error!("no checkpoints: {e}");
                        return;
                    }
                };
                while let Ok(first) = rx.recv() {
                    // Only each feed's newest request matters.
                    let mut newest: HashMap<String, Request> = HashMap::new();
                    for r in std::iter::once(first).chain(rx.try_iter()) {
                        newest.insert(r.feed.name.clone(), r);
                    }
                    for r in newest.into_values() {
                        write(&rt, r);
                    }
                }
            })
            .ok();
        (Checkpointer { tx }, handle)
    }

    /// Asks for a checkpoint of `feed`'s table at `version`; never waits (a full queue drops
    /// the request: the next interval asks again).
    pub fn request(&self, feed: &Arc<FeedConfig>, counters: &Arc<FeedCounters>, version: i64) {
        let _ = self.tx.try_send(Request {
            feed: feed.clone(),
            counters: counters.clone(),
            version,
        });
    }
}

fn write(rt: &tokio::runtime::Runtime, r: Request) {
    let t = Instant::now();
    let (name, version) = (&r.feed.name, r.version);
    match rt.block_on(checkpoint(
        &r.feed.table_url,
        &r.feed.storage_options,
        version,
    )) {
        Ok(()) => {
            log::debug!(
                "feed {name}: checkpoint at version {version} in {} ms",
                t.elapsed().as_millis()
            );
            r.counters.record(Event::Checkpoint {
                version,
                took: t.elapsed(),
            });
        }
        Err(e) => log::warn!("feed {name}: checkpoint at version {version} failed: {e}"),
    }
}

/// Writes a checkpoint at `version` and removes log files older than the table's log
/// retention (`delta.logRetentionDuration`, 30 days by default) that the checkpoint covers.
pub async fn checkpoint(
    url: &url::Url,
    options: &StorageOptions,
    version: i64,
) -> Result<(), DeltaTableError> {
    checkpoint_table(&load(url, options, Some(version)).await?).await
}

/// The same for a table already loaded at the version to checkpoint.
pub async fn checkpoint_table(table: &DeltaTable) -> Result<(), DeltaTableError> {
    deltalake::checkpoints::create_checkpoint(table, None).await?;
    if deltalake::table::config::TablePropertiesExt::enable_expired_log_cleanup(
        table.snapshot()?.table_config(),
    ) {
        deltalake::checkpoints::cleanup_metadata(table, None).await?;
    }
    Ok(())
}
