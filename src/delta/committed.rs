//! What other daemons committed: the content hashes in the `deltadrop.files` of a table's
//! commits, read straight from its log. A daemon taking over another's claim on an object of a
//! shared remote inbox looks here first — the daemon that claimed it may have committed it
//! before it stopped — and its own state knows only its own commits.

use std::collections::HashSet;

use deltalake::logstore::LogStoreRef;
use deltalake::DeltaTableError;
use serde_json::Value;

use crate::config::StorageOptions;

/// The hashes committed to one table, read backwards from its newest commit only as far back
/// as asked, and forwards as the table grows: a fleet taking over a hundred claims reads each
/// commit of the log once, not once per claim.
pub(crate) struct CommittedHashes {
    url: url::Url,
    options: StorageOptions,
    store: Option<LogStoreRef>,
    hashes: HashSet<String>,
    /// The versions read: `oldest..=newest` (none yet: `newest` is None).
    newest: Option<u64>,
    oldest: u64,
    /// When the oldest version read was committed.
    oldest_ms: i64,
}

impl CommittedHashes {
    pub(crate) fn new(url: &url::Url, options: &StorageOptions) -> CommittedHashes {
        CommittedHashes {
            url: url.clone(),
            options: options.clone(),
            store: None,
            hashes: HashSet::new(),
            newest: None,
            oldest: 0,
            oldest_ms: i64::MAX,
        }
    }

    /// Whether a file with content `hash` was committed from `since_ms` on (or earlier: what
    /// was read before stays known).
    pub(crate) fn contains_since(
        &mut self,
        rt: &tokio::runtime::Runtime,
        hash: &str,
        since_ms: i64,
    ) -> Result<bool, DeltaTableError> {
        rt.block_on(self.read_since(since_ms))?;
        Ok(self.hashes.contains(hash))
    }

    async fn read_since(&mut self, since_ms: i64) -> Result<(), DeltaTableError> {
        let store = match &self.store {
            Some(s) => s.clone(),
            None => {
                let s = deltalake::DeltaTableBuilder::from_url(self.url.clone())?
                    .with_storage_options(self.options.0.clone())
                    .build_storage()?;
                self.store = Some(s.clone());
                s
            }
        };
        // No table yet: nothing was committed.
        let Ok(latest) = store.get_latest_version(self.newest.unwrap_or(0)).await else {
            return Ok(());
        };
        match self.newest {
            Some(newest) => {
                for v in newest + 1..=latest {
                    self.read(&store, v).await?;
                }
            }
            None => self.oldest = latest + 1,
        }
        self.newest = Some(latest);
        while self.oldest > 0 && self.oldest_ms >= since_ms {
            let v = self.oldest - 1;
            // Gone (the log's retention removed it): nothing older can be read.
            let Some(at) = self.read(&store, v).await? else {
                break;
            };
            self.oldest = v;
            self.oldest_ms = at.unwrap_or(self.oldest_ms);
        }
        Ok(())
    }

    /// Reads version `v` into the set; returns None if it is not there, else its timestamp.
    async fn read(
        &mut self,
        store: &LogStoreRef,
        v: u64,
    ) -> Result<Option<Option<i64>>, DeltaTableError> {
        let Some(bytes) = store.read_commit_entry(v).await? else {
            return Ok(None);
        };
        let mut at = None;
        for line in bytes.split(|b| *b == b'\n') {
            let Ok(action) = serde_json::from_slice::<Value>(line) else {
                continue;
            };
            let Some(info) = action.get("commitInfo") else {
                continue;
            };
            at = info["timestamp"].as_i64();
            let files = info.pointer("/deltadrop/files").and_then(Value::as_array);
            for f in files.into_iter().flatten() {
                if let Some(h) = f["hash"].as_str() {
                    self.hashes.insert(h.to_string());
                }
            }
        }
        Ok(Some(at))
    }
}
