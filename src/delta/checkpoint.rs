//! Checkpoints: written every `checkpoint_interval` versions by a thread of their own, so that
//! a commit never waits for one; they also remove log files past the table's log retention.

use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam_channel::Sender;
use deltalake::{DeltaTable, DeltaTableError};

use super::runtime;
use super::table::load;
use crate::config::{FeedConfig, StorageOptions};
use crate::counters::{Event, FeedCounters};

/// Checkpoints are written by their own thread so that a commit never waits for one.
pub(super) fn spawn_checkpointer(
    feed: &FeedConfig,
    counters: std::sync::Arc<FeedCounters>,
) -> (Sender<i64>, Option<JoinHandle<()>>) {
    let (tx, rx) = crossbeam_channel::bounded::<i64>(4);
    let url = feed.table_url.clone();
    let options = feed.storage_options.clone();
    let name = feed.name.clone();
    let handle = std::thread::Builder::new()
        .name(format!("checkpoint-{name}"))
        .spawn(move || {
            let rt = match runtime() {
                Ok(rt) => rt,
                Err(e) => {
                    log::error!("feed {name}: no checkpoints: {e}");
                    return;
                }
            };
            while let Ok(mut version) = rx.recv() {
                // Only the newest request matters.
                while let Ok(v) = rx.try_recv() {
                    version = v;
                }
                let t = Instant::now();
                let res = rt.block_on(checkpoint(&url, &options, version));
                match res {
                    Ok(()) => {
                        log::debug!(
                            "feed {name}: checkpoint at version {version} in {} ms",
                            t.elapsed().as_millis()
                        );
                        counters.record(Event::Checkpoint {
                            version,
                            took: t.elapsed(),
                        });
                    }
                    Err(e) => {
                        log::warn!("feed {name}: checkpoint at version {version} failed: {e}")
                    }
                }
            }
        })
        .ok();
    (tx, handle)
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
