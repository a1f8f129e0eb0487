//! Moving files out of the inbox: into `processed/` (or deleting them), into `rejected/` with
//! `NAME.error.txt` beside them, always under a free name — never over an earlier file.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::config::OnSuccess;
use crate::job::file_name;

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("cannot move {from} to {to}: {source}")]
    Move {
        from: PathBuf,
        to: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot delete {path}: {source}")]
    Delete {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Moves a committed file (and its ready marker, if any) out of the inbox. Returns where the
/// file went (None if deleted). A file already gone (a previous run moved it) is fine.
pub fn archive(
    path: &Path,
    processed: &Path,
    on_success: OnSuccess,
    marker: Option<PathBuf>,
) -> Result<Option<PathBuf>, ArchiveError> {
    let res = archive_one(path, processed, on_success);
    if let Some(m) = marker {
        if m.exists() {
            archive_one(&m, processed, on_success)?;
        }
    }
    res
}

fn archive_one(
    path: &Path,
    processed: &Path,
    on_success: OnSuccess,
) -> Result<Option<PathBuf>, ArchiveError> {
    if !path.exists() {
        return Ok(None);
    }
    match on_success {
        OnSuccess::Delete => match fs::remove_file(path) {
            Ok(()) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(ArchiveError::Delete {
                path: path.to_path_buf(),
                source,
            }),
        },
        OnSuccess::Move => move_into(path, processed).map(Some),
    }
}

/// Moves a file that cannot be ingested to `rejected/` and writes `NAME.error.txt` beside it.
/// The error file is written first: a crash in between leaves the file in the inbox, where it is
/// rejected again on restart.
pub fn reject(
    path: &Path,
    rejected: &Path,
    reason: &str,
    marker: Option<PathBuf>,
) -> Result<PathBuf, ArchiveError> {
    if let Some(m) = marker {
        if m.exists() {
            let _ = move_into(&m, rejected);
        }
    }
    ensure_dir(rejected)?;
    let target = free_name(rejected, &file_name(path));
    let err_path = error_file_for(&target);
    let text = format!(
        "file: {}\nrejected at: {}\n\n{}\n",
        path.display(),
        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        reason.trim_end()
    );
    let mut f = fs::File::create(&err_path).map_err(|source| ArchiveError::Write {
        path: err_path.clone(),
        source,
    })?;
    f.write_all(text.as_bytes())
        .and_then(|_| f.sync_all())
        .map_err(|source| ArchiveError::Write {
            path: err_path.clone(),
            source,
        })?;
    rename(path, &target)?;
    Ok(target)
}

pub fn error_file_for(target: &Path) -> PathBuf {
    let mut name = target.as_os_str().to_owned();
    name.push(".error.txt");
    PathBuf::from(name)
}

fn move_into(path: &Path, dir: &Path) -> Result<PathBuf, ArchiveError> {
    ensure_dir(dir)?;
    let target = free_name(dir, &file_name(path));
    rename(path, &target)?;
    Ok(target)
}

fn rename(from: &Path, to: &Path) -> Result<(), ArchiveError> {
    match fs::rename(from, to) {
        Ok(()) => Ok(()),
        // Different filesystems: copy, sync, then remove the original.
        Err(e) if e.raw_os_error() == Some(18) => fs::copy(from, to)
            .and_then(|_| fs::File::open(to)?.sync_all())
            .and_then(|_| fs::remove_file(from))
            .map_err(|source| ArchiveError::Move {
                from: from.to_path_buf(),
                to: to.to_path_buf(),
                source,
            }),
        Err(source) => Err(ArchiveError::Move {
            from: from.to_path_buf(),
            to: to.to_path_buf(),
            source,
        }),
    }
}

fn ensure_dir(dir: &Path) -> Result<(), ArchiveError> {
    fs::create_dir_all(dir).map_err(|source| ArchiveError::Write {
        path: dir.to_path_buf(),
        source,
    })
}

/// `dir/name`, or `dir/stem.N.ext` when a file of that name is already there
/// (the same name dropped again must not overwrite the earlier file).
fn free_name(dir: &Path, name: &str) -> PathBuf {
    let first = dir.join(name);
    if !first.exists() {
        return first;
    }
    let (stem, ext) = match name.rfind('.') {
        Some(i) if i > 0 => (&name[..i], &name[i..]),
        _ => (name, ""),
    };
    (1u64..)
        .map(|n| dir.join(format!("{stem}.{n}{ext}")))
        .find(|p| !p.exists())
        .unwrap_or(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_name_twice_keeps_both_files() {
        let d = tempfile::tempdir().unwrap();
        let inbox = d.path().join("in");
        let done = d.path().join("done");
        fs::create_dir_all(&inbox).unwrap();
        for content in ["one", "two"] {
            fs::write(inbox.join("a.csv"), content).unwrap();
            archive(&inbox.join("a.csv"), &done, OnSuccess::Move, None).unwrap();
        }
        assert_eq!(fs::read_to_string(done.join("a.csv")).unwrap(), "one");
        assert_eq!(fs::read_to_string(done.join("a.1.csv")).unwrap(), "two");
    }

    #[test]
    fn a_rejected_file_gets_its_reason_beside_it() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("bad.csv");
        fs::write(&f, "x").unwrap();
        let to = reject(&f, &d.path().join("rejected"), "line 3: broken", None).unwrap();
        assert!(to.exists() && !f.exists());
        let why = fs::read_to_string(error_file_for(&to)).unwrap();
        assert!(why.contains("line 3: broken") && why.contains("bad.csv"));
    }
}
