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
        archive_one(&m, processed, on_success)?;
    }
    res
}

fn archive_one(
    path: &Path,
    processed: &Path,
    on_success: OnSuccess,
) -> Result<Option<PathBuf>, ArchiveError> {
    match on_success {
        OnSuccess::Delete => match fs::remove_file(path) {
            Ok(()) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(ArchiveError::Delete {
                path: path.to_path_buf(),
                source,
            }),
        },
        OnSuccess::Move => move_out(path, processed),
    }
}

/// Moves `path` into `dir` under its own name, or the first free `stem.N.ext`; None when `path`
/// is gone (a previous run moved it). On Linux one `renameat2(RENAME_NOREPLACE)` per file does
/// what an existence check of the file, a `create_dir_all`, an existence check of the target
/// and a rename did: in a burst of small files those four system calls were a fifth of the
/// committer's time, and the committer is what a burst waits on.
fn move_out(path: &Path, dir: &Path) -> Result<Option<PathBuf>, ArchiveError> {
    let name = file_name(path);
    let mut made_dir = false;
    let mut n = 0u64;
    loop {
        let target = numbered(dir, &name, n);
        match rename_noreplace(path, &target) {
            Ok(()) => return Ok(Some(target)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => n += 1,
            // Either the file is gone or the folder is: the file first (nothing to do), then
            // the folder, made once.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if fs::symlink_metadata(path).is_err() {
                    return Ok(None);
                }
                if made_dir {
                    return Err(ArchiveError::Move {
                        from: path.to_path_buf(),
                        to: target,
                        source: e,
                    });
                }
                ensure_dir(dir)?;
                made_dir = true;
            }
            // Another filesystem: copied under a free name (see `rename`).
            Err(e) if e.raw_os_error() == Some(EXDEV) => {
                let target = free_name(dir, &name);
                rename(path, &target)?;
                return Ok(Some(target));
            }
            Err(source) => {
                return Err(ArchiveError::Move {
                    from: path.to_path_buf(),
                    to: target,
                    source,
                })
            }
        }
    }
}

/// A rename across filesystems: EXDEV on Unix, ERROR_NOT_SAME_DEVICE from MoveFileEx on Windows.
#[cfg(unix)]
const EXDEV: i32 = libc::EXDEV;
#[cfg(not(unix))]
const EXDEV: i32 = 17;

/// The names an archived file of `name` takes, in order: `name`, then `stem.1.ext`,
/// `stem.2.ext`, … (an earlier file of that name is never overwritten). One rule for the local
/// archive, an inbox in object storage, and `inspect`, which looks them up.
pub fn archive_names(name: &str) -> impl Iterator<Item = String> + '_ {
    (0u64..).map(move |n| archive_name(name, n))
}

/// How many archived copies of one name `inspect` looks through for their reasons.
pub const COPIES_LOOKED_UP: usize = 1000;

/// The `n`-th of [`archive_names`].
fn archive_name(name: &str, n: u64) -> String {
    if n == 0 {
        return name.to_string();
    }
    let (stem, ext) = match name.rfind('.') {
        Some(i) if i > 0 => (&name[..i], &name[i..]),
        _ => (name, ""),
    };
    format!("{stem}.{n}{ext}")
}

/// `dir/` the `n`-th of [`archive_names`].
fn numbered(dir: &Path, name: &str, n: u64) -> PathBuf {
    dir.join(archive_name(name, n))
}

/// A rename that fails with `AlreadyExists` rather than replace `to`.
#[cfg(target_os = "linux")]
fn rename_noreplace(from: &Path, to: &Path) -> std::io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| {
        CString::new(p.as_os_str().as_bytes())
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))
    };
    let (f, t) = (c(from)?, c(to)?);
    // SAFETY: two NUL-terminated paths that live across the call; renameat2 reads only them.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            f.as_ptr(),
            libc::AT_FDCWD,
            t.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    let e = std::io::Error::last_os_error();
    match e.raw_os_error() {
        // A filesystem (or kernel) without RENAME_NOREPLACE: check, then rename.
        Some(libc::EINVAL) | Some(libc::ENOSYS) | Some(libc::EOPNOTSUPP) => {
            rename_if_free(from, to)
        }
        _ => Err(e),
    }
}

#[cfg(not(target_os = "linux"))]
fn rename_noreplace(from: &Path, to: &Path) -> std::io::Result<()> {
    rename_if_free(from, to)
}

/// Checked, then renamed: only deltadrop writes into processed/, so nothing takes the name in
/// between.
fn rename_if_free(from: &Path, to: &Path) -> std::io::Result<()> {
    if fs::symlink_metadata(to).is_ok() {
        return Err(std::io::ErrorKind::AlreadyExists.into());
    }
    fs::rename(from, to)
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
        let _ = move_out(&m, rejected);
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

fn rename(from: &Path, to: &Path) -> Result<(), ArchiveError> {
    match fs::rename(from, to) {
        Ok(()) => Ok(()),
        // Different filesystems: copy, sync, then remove the original.
        Err(e) if e.raw_os_error() == Some(EXDEV) => fs::copy(from, to)
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
    (0u64..)
        .map(|n| numbered(dir, name, n))
        .find(|p| fs::symlink_metadata(p).is_err())
        .unwrap_or_else(|| dir.join(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archived_copies_are_numbered_before_the_extension() {
        let names = |n: &str| archive_names(n).take(3).collect::<Vec<_>>();
        assert_eq!(names("a.csv"), ["a.csv", "a.1.csv", "a.2.csv"]);
        assert_eq!(names("a.csv.gz")[1], "a.csv.1.gz");
        assert_eq!(names("README")[1], "README.1");
        assert_eq!(names(".hidden")[1], ".hidden.1");
    }

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
    fn a_gone_file_is_fine_and_a_missing_folder_is_made() {
        let d = tempfile::tempdir().unwrap();
        let done = d.path().join("not").join("yet");
        let gone = d.path().join("gone.csv");
        assert_eq!(archive(&gone, &done, OnSuccess::Move, None).unwrap(), None);
        assert!(!done.exists(), "nothing to move: no folder made");
        let f = d.path().join("b.csv");
        let marker = d.path().join("b.csv.ready");
        fs::write(&f, "x").unwrap();
        fs::write(&marker, "").unwrap();
        let to = archive(&f, &done, OnSuccess::Move, Some(marker.clone())).unwrap();
        assert_eq!(to, Some(done.join("b.csv")));
        assert!(!f.exists() && !marker.exists() && done.join("b.csv.ready").exists());
        // A name taken three times over: the next free number.
        for n in ["c.csv", "c.1.csv", "c.2.csv"] {
            fs::write(done.join(n), n).unwrap();
        }
        fs::write(d.path().join("c.csv"), "new").unwrap();
        let to = archive(&d.path().join("c.csv"), &done, OnSuccess::Move, None).unwrap();
        assert_eq!(to, Some(done.join("c.3.csv")));
        assert_eq!(fs::read_to_string(done.join("c.csv")).unwrap(), "c.csv");
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
