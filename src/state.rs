//! State stage: the local files that make ingestion exactly-once across crashes. Owned by the
//! feed's committer. Per feed, under `state_dir/<feed>/`:
//! - `intent.json`: the commit about to be made (txn version + files), written tmp → fsync →
//!   rename *before* the Delta commit. On restart, the table's txn version for our app id says
//!   whether that commit landed.
//! - `loaded.jsonl`: one line per file whose rows are committed (content hash, name, version),
//!   appended and fsynced after each commit; it backs duplicate detection.
//!
//! A process lock (`state_dir/lock`) keeps a second daemon off the same state.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("state {path}: {source}{}", gone_hint(source))]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("state file {path} is corrupt: {message} (move it away to start over; the Delta table stays the source of truth)")]
    Corrupt { path: PathBuf, message: String },
    #[error("another deltadrop is running on state folder {path} (lock held); stop it first, or give this one its own state_dir")]
    Locked { path: PathBuf },
    #[error("inbox {} is watched by another deltadrop (lock {}); run one daemon per inbox, or set `shared_inbox = true` and a unique `instance` on every daemon that shares it", .inbox.display(), .lock.display())]
    InboxBusy { inbox: PathBuf, lock: PathBuf },
}

/// A state file's folder missing under a running daemon means someone deleted it: say so.
fn gone_hint(e: &std::io::Error) -> &'static str {
    if e.kind() == std::io::ErrorKind::NotFound {
        " (was the state folder deleted while deltadrop ran? files stay in the inbox; restart deltadrop to recreate it)"
    } else {
        ""
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StateError + '_ {
    move |source| StateError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// One file in a commit, as recorded in the intent, the loaded index and the commit metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRecord {
    pub name: String,
    /// Where the file sat in the inbox when it was committed.
    pub path: PathBuf,
    pub size: u64,
    pub hash: String,
    pub rows: u64,
    #[serde(default)]
    pub bad_rows: u64,
    #[serde(default)]
    pub warned_rows: u64,
    /// How the file was read (absent in state written before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dialect: Option<crate::job::FileDialect>,
}

/// The commit about to be attempted.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Intent {
    pub app_id: String,
    pub txn: i64,
    pub files: Vec<FileRecord>,
    /// The quarantine table's Add actions for this commit's bad rows (Parquet already written),
    /// committed under the same txn version right after the main commit.
    #[serde(default)]
    pub quarantine: Vec<deltalake::kernel::Add>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "format")]
enum IntentFile {
    #[serde(rename = "1")]
    V1 { intent: Option<Intent> },
}

const REQUEUE_FILE: &str = "requeue.json";

/// A requeue's two commits, written before the first: the rows that now pass go to the table,
/// and the quarantine table loses them (its affected files rewritten). Both commits carry
/// `txn` under `app_id`, so after a crash the missing half is found and finished.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RequeueIntent {
    pub app_id: String,
    pub txn: i64,
    /// Rows now passing: data files of the table (already written).
    pub table_adds: Vec<deltalake::kernel::Add>,
    pub rows: u64,
    /// Quarantine files replaced, and the files replacing them (already written).
    pub quarantine_removes: Vec<deltalake::kernel::Remove>,
    pub quarantine_adds: Vec<deltalake::kernel::Add>,
}

/// Where a loaded file's rows are.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Loaded {
    pub hash: String,
    pub name: String,
    pub size: u64,
    pub rows: u64,
    pub version: i64,
}

/// The state of one feed.
pub struct FeedState {
    dir: PathBuf,
    intent: Option<Intent>,
    loaded: HashMap<String, Loaded>,
    /// Content hashes loaded under each file name, oldest first (`on_resend`).
    by_name: HashMap<String, Vec<String>>,
    loaded_log: File,
}

impl FeedState {
    pub fn open(state_dir: &Path, feed: &str) -> Result<FeedState, StateError> {
        let dir = state_dir.join(feed);
        create_private_dir(&dir)?;
        let intent_path = dir.join("intent.json");
        let tmp_path = dir.join("intent.json.tmp");
        // A crash between fsync of the tmp file and the rename leaves a complete tmp file that
        // is newer than the real one: prefer it.
        if tmp_path.exists() {
            match read_intent(&tmp_path) {
                Ok(_) => fs::rename(&tmp_path, &intent_path).map_err(io(&tmp_path))?,
                Err(_) => fs::remove_file(&tmp_path).map_err(io(&tmp_path))?,
            }
        }
        let intent = if intent_path.exists() {
            read_intent(&intent_path)?
        } else {
            None
        };
        let log_path = dir.join("loaded.jsonl");
        let mut loaded = HashMap::new();
        let mut by_name: HashMap<String, Vec<String>> = HashMap::new();
        if log_path.exists() {
            let f = File::open(&log_path).map_err(io(&log_path))?;
            for (i, line) in BufReader::new(f).lines().enumerate() {
                let line = line.map_err(io(&log_path))?;
                if line.trim().is_empty() {
                    continue;
                }
                match serde_json::from_str::<Loaded>(&line) {
                    Ok(l) => remember(&mut loaded, &mut by_name, l),
                    // A torn last line from a crash mid-append: the intent replays it.
                    Err(e) => log::warn!(
                        "{}: line {} unreadable ({e}); ignored",
                        log_path.display(),
                        i + 1
                    ),
                }
            }
        }
        let loaded_log = open_append(&log_path)?;
        Ok(FeedState {
            dir,
            intent,
            loaded,
            by_name,
            loaded_log,
        })
    }

    pub fn intent(&self) -> Option<&Intent> {
        self.intent.as_ref()
    }

    /// Durably records the commit about to be made.
    pub fn write_intent(&mut self, intent: Intent) -> Result<(), StateError> {
        self.store_intent(Some(intent))
    }

    pub fn clear_intent(&mut self) -> Result<(), StateError> {
        if self.intent.is_none() {
            return Ok(());
        }
        self.store_intent(None)
    }

    fn store_intent(&mut self, intent: Option<Intent>) -> Result<(), StateError> {
        let file = IntentFile::V1 { intent };
        let path = self.dir.join("intent.json");
        let bytes = serde_json::to_vec_pretty(&file).map_err(|e| StateError::Corrupt {
            path: path.clone(),
            message: e.to_string(),
        })?;
        write_atomic(&path, &bytes)?;
        let IntentFile::V1 { intent } = file;
        self.intent = intent;
        Ok(())
    }

    pub fn loaded(&self, hash: &str) -> Option<&Loaded> {
        self.loaded.get(hash)
    }

    /// The latest content loaded under `name` other than `hash`, if any.
    pub fn loaded_before(&self, name: &str, hash: &str) -> Option<&Loaded> {
        self.by_name
            .get(name)?
            .iter()
            .rev()
            .filter(|h| h.as_str() != hash)
            .find_map(|h| self.loaded.get(h))
    }

    pub fn loaded_count(&self) -> usize {
        self.loaded.len()
    }

    /// A requeue that started and may not have finished (see `requeue`).
    pub fn requeue(&self) -> Result<Option<RequeueIntent>, StateError> {
        let path = self.dir.join(REQUEUE_FILE);
        match fs::read(&path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|e| StateError::Corrupt {
                        path: path.clone(),
                        message: e.to_string(),
                    })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(&path)(e)),
        }
    }

    /// Durably records a requeue about to be committed, or (None) that it is done.
    pub fn write_requeue(&mut self, intent: Option<&RequeueIntent>) -> Result<(), StateError> {
        let path = self.dir.join(REQUEUE_FILE);
        match intent {
            Some(i) => {
                let bytes = serde_json::to_vec_pretty(i).map_err(|e| StateError::Corrupt {
                    path: path.clone(),
                    message: e.to_string(),
                })?;
                write_atomic(&path, &bytes)
            }
            None => match fs::remove_file(&path) {
                Ok(()) => {
                    sync_dir(&self.dir);
                    Ok(())
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(io(&path)(e)),
            },
        }
    }

    /// Records committed files (idempotent: already-known hashes are skipped).
    pub fn record_loaded(&mut self, files: &[FileRecord], version: i64) -> Result<(), StateError> {
        let mut buf = Vec::new();
        for f in files {
            if self.loaded.contains_key(&f.hash) {
                continue;
            }
            let l = Loaded {
                hash: f.hash.clone(),
                name: f.name.clone(),
                size: f.size,
                rows: f.rows,
                version,
            };
            let line = serde_json::to_string(&l).map_err(|e| StateError::Corrupt {
                path: self.dir.join("loaded.jsonl"),
                message: e.to_string(),
            })?;
            buf.extend_from_slice(line.as_bytes());
            buf.push(b'\n');
            remember(&mut self.loaded, &mut self.by_name, l);
        }
        if buf.is_empty() {
            return Ok(());
        }
        let path = self.dir.join("loaded.jsonl");
        self.loaded_log.write_all(&buf).map_err(io(&path))?;
        self.loaded_log.sync_data().map_err(io(&path))?;
        Ok(())
    }
}

/// Adds `l` to the loaded index and, if its content is new, to the names' index (a hash is
/// listed under its name once, in the order loaded).
fn remember(
    loaded: &mut HashMap<String, Loaded>,
    by_name: &mut HashMap<String, Vec<String>>,
    l: Loaded,
) {
    if !loaded.contains_key(&l.hash) {
        by_name
            .entry(l.name.clone())
            .or_default()
            .push(l.hash.clone());
    }
    loaded.insert(l.hash.clone(), l);
}

fn read_intent(path: &Path) -> Result<Option<Intent>, StateError> {
    let bytes = fs::read(path).map_err(io(path))?;
    let file: IntentFile = serde_json::from_slice(&bytes).map_err(|e| StateError::Corrupt {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let IntentFile::V1 { intent } = file;
    Ok(intent)
}

/// tmp → fsync → rename → fsync(dir): the file is either the old or the new content.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StateError> {
    let tmp = path.with_extension("json.tmp");
    {
        let mut f = private_file(&tmp)?;
        f.write_all(bytes).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
    }
    fs::rename(&tmp, path).map_err(io(path))?;
    if let Some(dir) = path.parent() {
        sync_dir(dir);
    }
    Ok(())
}

/// Best effort: some filesystems refuse to fsync a directory.
pub fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

fn private_file(path: &Path) -> Result<File, StateError> {
    let mut o = OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(path).map_err(io(path))
}

fn open_append(path: &Path) -> Result<File, StateError> {
    let mut o = OpenOptions::new();
    o.append(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(path).map_err(io(path))
}

fn create_private_dir(dir: &Path) -> Result<(), StateError> {
    let mut b = fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir).map_err(io(dir))
}

/// Held for the life of the daemon; dropping it releases the lock.
pub struct StateLock {
    _file: File,
}

impl StateLock {
    pub fn acquire(state_dir: &Path) -> Result<StateLock, StateError> {
        create_private_dir(state_dir)?;
        let path = state_dir.join("lock");
        let file = open_lock_file(&path)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(StateError::Locked {
                    path: state_dir.to_path_buf(),
                })
            }
            Err(fs::TryLockError::Error(e)) => return Err(io(&path)(e)),
        }
        let _ = file.set_len(0);
        let _ = writeln!(&file, "{}", std::process::id());
        Ok(StateLock { _file: file })
    }
}

/// Opens (creating) a file whose only use is to hold a lock: its content is never truncated
/// on open, so a holder's pid stays readable.
fn open_lock_file(path: &Path) -> Result<File, StateError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(io(path))
}

/// Held on an inbox while a daemon watches it: exclusive for a daemon that owns the inbox,
/// shared for daemons that claim files from a shared inbox (`shared_inbox = true`). So two
/// owners, or an owner and a sharer, cannot watch one inbox; sharers can. (On NFS these are
/// fcntl locks through the lock manager.)
///
/// The lock file sits beside the inbox, not in it, so that the inbox holds only what producers
/// drop (a script waiting for "the inbox is empty" sees an empty folder): for `site/inbox` it
/// is `site/.inbox.deltadrop-lock`. Where the inbox is a mount point (an NFS or SMB share
/// mounted as the inbox itself), its parent is not shared with the other machines, so the lock
/// goes inside it, hidden: `inbox/.deltadrop-inbox.lock`.
pub struct InboxLock {
    _file: File,
}

impl InboxLock {
    /// The lock's name inside an inbox that is a mount point.
    pub const FILE_INSIDE: &'static str = ".deltadrop-inbox.lock";

    pub fn acquire(inbox: &Path, shared: bool) -> Result<InboxLock, StateError> {
        let path = Self::path_for(inbox);
        let file = open_lock_file(&path)?;
        let res = if shared {
            file.try_lock_shared()
        } else {
            file.try_lock()
        };
        match res {
            Ok(()) => Ok(InboxLock { _file: file }),
            Err(fs::TryLockError::WouldBlock) => Err(StateError::InboxBusy {
                inbox: inbox.to_path_buf(),
                lock: path,
            }),
            Err(fs::TryLockError::Error(e)) => Err(io(&path)(e)),
        }
    }

    /// Where the lock of `inbox` is (see [`InboxLock`]); the inbox must exist. Every daemon
    /// finds the same file for the same folder, whatever path (or symbolic link) names it.
    pub fn path_for(inbox: &Path) -> PathBuf {
        let real = dunce::canonicalize(inbox).unwrap_or_else(|_| inbox.to_path_buf());
        let beside = match (real.parent(), real.file_name()) {
            (Some(parent), Some(name)) if same_filesystem(parent, &real) => {
                let mut lock = std::ffi::OsString::from(".");
                lock.push(name);
                lock.push(".deltadrop-lock");
                Some(parent.join(lock))
            }
            _ => None,
        };
        beside.unwrap_or_else(|| real.join(Self::FILE_INSIDE))
    }
}

/// Whether `a` and `b` are on one filesystem (false where that cannot be told).
fn same_filesystem(a: &Path, b: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (fs::metadata(a), fs::metadata(b)) {
            (Ok(x), Ok(y)) => x.dev() == y.dev(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        // A drive letter or a share is a path prefix: one filesystem per prefix.
        a.components().next() == b.components().next()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_inbox_has_one_owner_or_many_sharers() {
        let dir = tempfile::tempdir().unwrap();
        let inbox = dir.path().join("inbox");
        fs::create_dir(&inbox).unwrap();
        let owner = InboxLock::acquire(&inbox, false).unwrap();
        assert!(InboxLock::acquire(&inbox, true).is_err());
        let err = InboxLock::acquire(&inbox, false).err().unwrap().to_string();
        assert!(err.contains("watched by another deltadrop"), "{err}");
        drop(owner);
        let _a = InboxLock::acquire(&inbox, true).unwrap();
        let _b = InboxLock::acquire(&inbox, true).unwrap();
        assert!(InboxLock::acquire(&inbox, false).is_err());
        // Beside the inbox, which holds only what producers drop.
        assert_eq!(fs::read_dir(&inbox).unwrap().count(), 0);
        assert!(dir.path().join(".inbox.deltadrop-lock").exists());
        // The same folder through a symbolic link is the same lock.
        #[cfg(unix)]
        {
            let link = dir.path().join("link");
            std::os::unix::fs::symlink(&inbox, &link).unwrap();
            assert!(InboxLock::acquire(&link, false).is_err());
        }
    }

    fn rec(name: &str, hash: &str) -> FileRecord {
        FileRecord {
            name: name.into(),
            path: PathBuf::from("/in").join(name),
            size: 10,
            hash: hash.into(),
            rows: 2,
            bad_rows: 0,
            warned_rows: 0,
            dialect: None,
        }
    }

    #[test]
    fn intent_and_loaded_index_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut s = FeedState::open(dir.path(), "sales").unwrap();
            s.write_intent(Intent {
                app_id: "a".into(),
                txn: 7,
                files: vec![rec("x.csv", "h1")],
                quarantine: vec![],
            })
            .unwrap();
            s.record_loaded(&[rec("y.csv", "h2")], 3).unwrap();
            s.record_loaded(&[rec("y.csv", "h2")], 3).unwrap();
        }
        let s = FeedState::open(dir.path(), "sales").unwrap();
        assert_eq!(s.intent().unwrap().txn, 7);
        assert_eq!(s.loaded("h2").unwrap().version, 3);
        assert_eq!(s.loaded_count(), 1);
    }

    #[test]
    fn earlier_content_of_a_name_is_found_after_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut s = FeedState::open(dir.path(), "sales").unwrap();
            s.record_loaded(&[rec("day.csv", "h1"), rec("other.csv", "h9")], 3)
                .unwrap();
            assert!(s.loaded_before("day.csv", "h1").is_none());
            assert_eq!(s.loaded_before("day.csv", "h2").unwrap().version, 3);
            s.record_loaded(&[rec("day.csv", "h2")], 5).unwrap();
        }
        let s = FeedState::open(dir.path(), "sales").unwrap();
        // The latest earlier content, not the one being looked at.
        assert_eq!(s.loaded_before("day.csv", "h3").unwrap().version, 5);
        assert_eq!(s.loaded_before("day.csv", "h2").unwrap().version, 3);
        assert!(s.loaded_before("new.csv", "h1").is_none());
    }

    #[test]
    fn a_complete_tmp_intent_left_by_a_crash_wins() {
        let dir = tempfile::tempdir().unwrap();
        let feed = dir.path().join("f");
        fs::create_dir_all(&feed).unwrap();
        let newer = IntentFile::V1 {
            intent: Some(Intent {
                app_id: "a".into(),
                txn: 9,
                files: vec![],
                quarantine: vec![],
            }),
        };
        fs::write(feed.join("intent.json"), r#"{"format":"1","intent":null}"#).unwrap();
        fs::write(
            feed.join("intent.json.tmp"),
            serde_json::to_vec(&newer).unwrap(),
        )
        .unwrap();
        let s = FeedState::open(dir.path(), "f").unwrap();
        assert_eq!(s.intent().unwrap().txn, 9);
    }

    #[test]
    fn a_second_lock_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let _a = StateLock::acquire(dir.path()).unwrap();
        let err = StateLock::acquire(dir.path()).err().unwrap().to_string();
        assert!(err.contains("another deltadrop is running"), "{err}");
    }
}
