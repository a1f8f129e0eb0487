//! Readiness after reading: whether the file in the inbox is still the one a worker read. Owns
//! no state. The watch stage decides when a file looks complete (events, settle, markers) and
//! `ingest::lease` keeps writers visible while it is read; this is the last look, taken by the
//! committer just before a file's rows are committed, and by the archive stage before it moves
//! a file whose commit landed before a restart.

use std::path::Path;
use std::time::{Duration, SystemTime};

/// A modification time younger than this may sit in the same whole second as a writer's last
/// write on filesystems that keep whole seconds: size and time cannot be trusted alone.
const TRUSTED_AGE: Duration = Duration::from_secs(2);

/// What the inbox holds at the path a file was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SinceRead {
    /// The same file: commit it.
    Same,
    /// A writer came back to it: read it again, never commit half of it.
    Changed,
    /// Gone (a producer took it back): what was read was whole, and there is nothing to archive.
    Gone,
}

/// Checks `path` against the size and modification time it was read at (`stamp`). Where the
/// read was guarded only by `settle` (no read lease saw the writers) and the modification time
/// is too recent to trust, the content hash decides.
pub(crate) fn since_read(
    path: &Path,
    stamp: (u64, Option<SystemTime>),
    hash: &str,
    lease_checked: bool,
) -> SinceRead {
    let Ok(now) = std::fs::symlink_metadata(path) else {
        return SinceRead::Gone;
    };
    if now.len() != stamp.0 || now.modified().ok() != stamp.1 {
        return SinceRead::Changed;
    }
    let recent = stamp
        .1
        .and_then(|m| m.elapsed().ok())
        .is_none_or(|age| age < TRUSTED_AGE);
    if recent && !lease_checked && !same_content(path, hash) {
        return SinceRead::Changed;
    }
    SinceRead::Same
}

/// Whether `path` holds content whose blake3 hash is `hash`.
pub(crate) fn same_content(path: &Path, hash: &str) -> bool {
    std::fs::File::open(path)
        .and_then(|file| {
            let mut h = blake3::Hasher::new();
            h.update_reader(file)?;
            Ok(h.finalize().to_hex().to_string() == hash)
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_now(path: &Path) -> (u64, Option<SystemTime>) {
        let m = std::fs::metadata(path).unwrap();
        (m.len(), m.modified().ok())
    }

    fn hash(s: &str) -> String {
        blake3::hash(s.as_bytes()).to_hex().to_string()
    }

    #[test]
    fn a_file_as_it_was_read_is_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.csv");
        std::fs::write(&p, "a\n1\n").unwrap();
        let stamp = read_now(&p);
        assert_eq!(
            since_read(&p, stamp, &hash("a\n1\n"), true),
            SinceRead::Same
        );
        assert_eq!(
            since_read(&p, stamp, &hash("a\n1\n"), false),
            SinceRead::Same
        );
    }

    #[test]
    fn a_file_that_grew_changed_and_a_missing_one_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.csv");
        std::fs::write(&p, "a\n1\n").unwrap();
        let stamp = read_now(&p);
        std::fs::write(&p, "a\n1\n2\n").unwrap();
        assert_eq!(
            since_read(&p, stamp, &hash("a\n1\n"), true),
            SinceRead::Changed
        );
        std::fs::remove_file(&p).unwrap();
        assert_eq!(
            since_read(&p, stamp, &hash("a\n1\n"), true),
            SinceRead::Gone
        );
    }

    #[test]
    fn same_size_and_time_but_other_content_is_caught_by_the_hash_without_a_lease() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.csv");
        std::fs::write(&p, "a\n1\n").unwrap();
        let stamp = read_now(&p);
        // Rewritten in place within the same timestamp (as on a whole-second filesystem).
        std::fs::write(&p, "a\n2\n").unwrap();
        let f = std::fs::File::options().write(true).open(&p).unwrap();
        f.set_modified(stamp.1.unwrap()).unwrap();
        drop(f);
        assert_eq!(
            since_read(&p, stamp, &hash("a\n1\n"), false),
            SinceRead::Changed
        );
        // A read lease saw no writer: size and time are trusted, no hashing.
        assert_eq!(
            since_read(&p, stamp, &hash("a\n1\n"), true),
            SinceRead::Same
        );
    }
}
