//! What sits in an inbox: which names are data files of a feed, which are temp or hidden names
//! still being written, which will never be taken (and why), and each file's (size, mtime)
//! stamp. A name that is not UTF-8 is renamed to one that is.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::WatchError;
use crate::config::FeedConfig;

/// Names that are never ingested (still being written by common tools).
pub fn is_temp_name(name: &str) -> bool {
    name.starts_with('.')
        || name.ends_with('~')
        || [".tmp", ".part", ".crdownload", ".partial", ".swp"]
            .iter()
            .any(|s| name.to_ascii_lowercase().ends_with(s))
}

/// Whether `name` is a data file of this feed (by extension, case-insensitive).
pub fn has_feed_extension(feed: &FeedConfig, name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    feed.extensions.iter().any(|ext| {
        lower.len() > ext.len() + 1
            && lower.ends_with(ext.as_str())
            && lower.as_bytes()[lower.len() - ext.len() - 1] == b'.'
    })
}

/// A data file's name for this feed: its extension, and not a temp or hidden name.
pub(super) fn is_data_name(feed: &FeedConfig, name: &str) -> bool {
    !is_temp_name(name) && has_feed_extension(feed, name)
}

/// The data files waiting in a feed's inbox — regular files (symlinks not followed) with a
/// data file name — sorted by name. Quiet: for counts and look-ups, not for dispatch.
pub fn inbox_files(feed: &FeedConfig) -> Vec<PathBuf> {
    data_files_in(&feed.inbox, feed)
}

/// The same for any folder of the feed's (its inbox, or its claim folder in a shared inbox).
pub(super) fn data_files_in(dir: &Path, feed: &FeedConfig) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = rd
        .flatten()
        .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| is_data_name(feed, n))
        })
        .map(|e| e.path())
        .collect();
    files.sort();
    files
}

/// A name that is not Unicode text, made readable: on Unix its bytes read as windows-1252 (what
/// such names almost always are), decoded control characters (C1 bytes) replaced by `_`, which
/// would make a name no one can type.
#[cfg(unix)]
fn readable_name(raw: &std::ffi::OsStr) -> String {
    use std::os::unix::ffi::OsStrExt;
    let (decoded, _, _) = encoding_rs::WINDOWS_1252.decode(raw.as_bytes());
    decoded
        .chars()
        .map(|c| if c.is_control() { '_' } else { c })
        .collect()
}

/// On Windows a name is UTF-16 and can only fail to be text through an unpaired surrogate:
/// that one becomes `_`.
#[cfg(not(unix))]
fn readable_name(raw: &std::ffi::OsStr) -> String {
    raw.to_string_lossy()
        .chars()
        .map(|c| {
            if c == '\u{FFFD}' || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect()
}

/// A file whose name is not UTF-8 (uploads from Windows or old SFTP clients name files in
/// windows-1252 or latin-1) cannot be named in the table, the log or the state: once it has
/// been quiet for the settle time it is renamed in the inbox to its windows-1252 reading
/// ("relat\xf3rio.csv" → "relatório.csv") and taken under that name. Returns the new path;
/// None when the file is not (yet) to be taken.
fn utf8_name(feed: &FeedConfig, path: &Path, settle: Duration) -> Option<PathBuf> {
    let name = readable_name(path.file_name()?);
    if !is_data_name(feed, &name) {
        return None;
    }
    let quiet = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age >= settle);
    if !quiet {
        return None;
    }
    let dir = path.parent()?;
    // A hard link never replaces a file of that name (a rename would): the first free name
    // gets the link, then the old name goes.
    let mut last = None;
    for n in 1u32..100 {
        let target = match n {
            1 => dir.join(&name),
            n => dir.join(format!("{n}-{name}")),
        };
        let moved = match std::fs::hard_link(path, &target) {
            Ok(()) => std::fs::remove_file(path).inspect_err(|_| {
                // Both names would hold the file: keep the old one, try again next round.
                let _ = std::fs::remove_file(&target);
            }),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            // No hard links here (SMB, some FUSE mounts): a rename to a name seen free.
            Err(e) if !target.exists() => std::fs::rename(path, &target).map_err(|_| e),
            Err(e) => Err(e),
        };
        match moved {
            Ok(()) => {
                log::warn!(
                    "feed {}: file name {:?} is not UTF-8: renamed to {} to ingest it",
                    feed.name,
                    path.file_name().unwrap_or_default(),
                    target.display()
                );
                return Some(target);
            }
            Err(e) => {
                last = Some(e);
                break;
            }
        }
    }
    log::warn!(
        "feed {}: file name {:?} is not UTF-8 and cannot be renamed ({}): rename it to take it",
        feed.name,
        path.file_name().unwrap_or_default(),
        last.map_or_else(|| "no free name".to_string(), |e| e.to_string())
    );
    None
}

pub(super) fn wanted(feed: &FeedConfig, path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        log::debug!("ignoring {}: name is not valid UTF-8", path.display());
        return false;
    };
    if is_temp_name(name) {
        log::debug!("ignoring {name}: hidden or temporary name");
        return false;
    }
    if !has_feed_extension(feed, name) {
        log::debug!(
            "ignoring {name}: not a .{} file",
            feed.extensions.join("/.")
        );
        return false;
    }
    if let Some(marker) = feed.marker_for(path) {
        if !marker.exists() {
            log::debug!("waiting for {name}'s ready marker {}", marker.display());
            return false;
        }
    }
    true
}

/// A name that says "data for this feed" (a data file's extension, not a temp name).
fn looks_like_data(feed: &FeedConfig, path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| is_data_name(feed, n))
}

/// Why a regular file that `wanted` refused will stay in the inbox for good: another extension
/// (an .xlsx export, a README). None for what is expected there and taken care of: temp and
/// hidden names, ready markers, files waiting for their marker.
fn never_taken(feed: &FeedConfig, path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    if is_temp_name(name) || is_data_name(feed, name) {
        return None;
    }
    if feed
        .ready_marker
        .as_deref()
        .is_some_and(|m| name.ends_with(m))
    {
        return None;
    }
    let lower = name.to_ascii_lowercase();
    if [".xlsx", ".xls", ".xlsm", ".ods"]
        .iter()
        .any(|e| lower.ends_with(e))
    {
        return Some(
            "a workbook, and this feed does not read workbooks: set format = \"xlsx\" (or \"auto\") to load it"
                .into(),
        );
    }
    Some(format!(
        "not a .{} file (the feed's `extensions`)",
        feed.extensions.join("/.")
    ))
}

/// With `ready_marker`, an event on `x.csv.done` is about `x.csv`.
pub(super) fn data_path(feed: &FeedConfig, path: PathBuf) -> PathBuf {
    if let (Some(m), Some(name)) = (
        feed.ready_marker.as_deref(),
        path.file_name().and_then(|n| n.to_str()),
    ) {
        if let Some(data) = name.strip_suffix(m) {
            if !data.is_empty() {
                return path.with_file_name(data);
            }
        }
    }
    path
}

/// (size, mtime) of a file: what must stay the same for the settle time.
pub(super) type Stamp = (u64, Option<SystemTime>);

/// The stamp of a regular file, not following symlinks; None for anything else.
pub(crate) fn file_stamp(path: &Path) -> Option<Stamp> {
    let m = std::fs::symlink_metadata(path).ok()?;
    if m.file_type().is_file() {
        Some((m.len(), m.modified().ok()))
    } else {
        if m.file_type().is_symlink() {
            log::debug!(
                "ignoring {}: symbolic links are not followed",
                path.display()
            );
        } else {
            log::debug!("ignoring {}: not a regular file", path.display());
        }
        None
    }
}

/// What one look at an inbox found.
pub(super) struct Scan {
    /// Eligible regular files with their stamps.
    pub(super) files: Vec<(PathBuf, Stamp)>,
    /// Files that sit in the inbox but will never be taken, and why.
    pub(super) never: Vec<(PathBuf, String)>,
}

/// Lists eligible regular files of a feed's inbox (and of its claim folder in a shared inbox),
/// oldest first. A name that is not UTF-8 is renamed once the file has been quiet for `quiet`
/// (see `utf8_name`).
pub(super) fn scan(f: &FeedConfig, quiet: Duration) -> Result<Scan, WatchError> {
    let rd = std::fs::read_dir(&f.inbox).map_err(|source| WatchError::Inbox {
        path: f.inbox.clone(),
        source,
    })?;
    let mut out = Vec::new();
    let mut never: Vec<(PathBuf, String)> = Vec::new();
    for entry in rd.flatten() {
        let mut path = entry.path();
        let file_type = entry.file_type();
        if entry.file_name().to_str().is_none() && file_type.as_ref().is_ok_and(|t| t.is_file()) {
            match utf8_name(f, &path, quiet) {
                Some(renamed) => path = renamed,
                None => continue,
            }
        }
        match file_type {
            Ok(t) if t.is_dir() => {
                log::debug!("ignoring {}: subfolders are not scanned", path.display());
                continue;
            }
            Ok(t) if t.is_symlink() => {
                if looks_like_data(f, &path) {
                    never.push((path, "a symbolic link: links are never followed (move or copy the file itself in)".to_string()));
                }
                continue;
            }
            Ok(t) if !t.is_file() => {
                if looks_like_data(f, &path) {
                    never.push((
                        path,
                        "not a regular file (FIFO, socket or device)".to_string(),
                    ));
                }
                continue;
            }
            Err(_) => continue,
            Ok(_) => {}
        }
        if !wanted(f, &path) {
            if let Some(why) = never_taken(f, &path) {
                never.push((path, why));
            }
            continue;
        }
        if let Some(stamp) = file_stamp(&path) {
            out.push((path, stamp));
        }
    }
    // Files this daemon claimed from a shared inbox but has not finished (a crash or a
    // transient failure): they are complete and ours, so they go first.
    if let Some(dir) = &f.claim_dir {
        for path in data_files_in(dir, f) {
            if let Some((size, _)) = file_stamp(&path) {
                out.push((path, (size, None)));
            }
        }
    }
    out.sort_by(|a, b| a.1 .1.cmp(&b.1 .1).then_with(|| a.0.cmp(&b.0)));
    Ok(Scan { files: out, never })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn temp_and_hidden_names_are_skipped() {
        for n in [
            ".a.csv",
            "a.csv.tmp",
            "a.csv.part",
            "a.csv.crdownload",
            "a.csv~",
            "A.CSV.TMP",
        ] {
            assert!(is_temp_name(n), "{n}");
        }
        assert!(!is_temp_name("sales-2024.csv"));
    }

    #[test]
    fn extensions_match_case_insensitively() {
        let cfg = Config::embedded(Path::new("/x")).unwrap();
        let f = &cfg.feeds[0];
        assert!(has_feed_extension(f, "a.csv"));
        assert!(has_feed_extension(f, "A.CSV"));
        assert!(!has_feed_extension(f, "a.csvx"));
        assert!(!has_feed_extension(f, "csv"));
        assert!(!has_feed_extension(f, "a.txt"));
    }

    /// A feed of a config in `dir` with `feed` added to its block; its inbox created.
    fn feed_in(dir: &Path, top: &str, feed: &str) -> FeedConfig {
        let toml = format!("{top}\n[[feed]]\nname = \"f\"\ninbox = \"inbox\"\n{feed}\n");
        let cfg = Config::from_toml(&toml, dir, None).expect("config");
        std::fs::create_dir_all(&cfg.feeds[0].inbox).expect("inbox");
        cfg.feeds[0].clone()
    }

    fn touch(path: &Path, age: Duration) {
        touch_at(path, SystemTime::now() - age);
    }

    fn touch_at(path: &Path, mtime: SystemTime) {
        std::fs::write(path, "id\n1\n").expect("write");
        let f = std::fs::File::options()
            .write(true)
            .open(path)
            .expect("open");
        f.set_modified(mtime).expect("mtime");
    }

    #[test]
    fn a_file_is_wanted_with_a_data_name_and_its_ready_marker() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let plain = feed_in(tmp.path(), "", "");
        let inbox = plain.inbox.clone();
        assert!(wanted(&plain, &inbox.join("a.csv.gz")));
        assert!(!wanted(&plain, &inbox.join("a.csv.tmp")));
        assert!(!wanted(&plain, &inbox.join("a.txt")));

        let marked = feed_in(tmp.path(), "", "ready_marker = \".done\"");
        let data = inbox.join("b.csv");
        assert!(!wanted(&marked, &data), "no marker yet");
        touch(&inbox.join("b.csv.done"), Duration::ZERO);
        assert!(wanted(&marked, &data));
        // An event on the marker is about its data file; a bare marker name is itself.
        assert_eq!(data_path(&marked, inbox.join("b.csv.done")), data);
        assert_eq!(data_path(&marked, inbox.join(".done")), inbox.join(".done"));
        assert_eq!(
            data_path(&plain, inbox.join("b.csv.done")),
            inbox.join("b.csv.done")
        );
    }

    #[test]
    fn what_is_never_taken_says_why_and_what_is_expected_there_is_not_named() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let f = feed_in(tmp.path(), "", "ready_marker = \".done\"");
        let why = |name: &str| never_taken(&f, &f.inbox.join(name));
        assert!(why("sales.XLSX").is_some_and(|w| w.contains("set format = \"xlsx\"")));
        assert!(why("README.txt").is_some_and(|w| w.contains("not a .csv/.csv.gz/.csv.zst file")));
        for expected in ["a.csv", ".a.csv.swp", "a.csv.part", "a.csv.done"] {
            assert_eq!(why(expected), None, "{expected}");
        }
    }

    /// A look at an inbox: data files oldest first (then by name), those claimed by this
    /// daemon before all; folders skipped; links and other names reported, not listed.
    #[test]
    fn a_scan_lists_data_files_oldest_first_and_names_what_stays() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let f = feed_in(tmp.path(), "instance = \"a\"", "shared_inbox = true");
        let inbox = f.inbox.clone();
        let claims = f.claim_dir.clone().expect("claim folder");
        std::fs::create_dir_all(&claims).expect("claims");
        touch(&inbox.join("new.csv"), Duration::from_secs(10));
        // Same mtime: by name.
        let old = SystemTime::now() - Duration::from_secs(100);
        touch_at(&inbox.join("old-b.csv"), old);
        touch_at(&inbox.join("old-a.csv"), old);
        touch(&claims.join("mine.csv"), Duration::ZERO);
        touch(&inbox.join(".hidden.csv"), Duration::from_secs(100));
        touch(&inbox.join("notes.txt"), Duration::from_secs(100));
        std::fs::create_dir(inbox.join("dir.csv")).expect("dir");
        #[cfg(unix)]
        std::os::unix::fs::symlink(inbox.join("new.csv"), inbox.join("link.csv")).expect("link");

        let scan = scan(&f, Duration::ZERO).expect("scan");
        let names: Vec<&str> = scan
            .files
            .iter()
            .filter_map(|(p, _)| p.file_name()?.to_str())
            .collect();
        assert_eq!(names, ["mine.csv", "old-a.csv", "old-b.csv", "new.csv"]);
        let mut never: Vec<&str> = scan
            .never
            .iter()
            .filter_map(|(p, _)| p.file_name()?.to_str())
            .collect();
        never.sort();
        #[cfg(unix)]
        assert_eq!(never, ["link.csv", "notes.txt"]);
        #[cfg(not(unix))]
        assert_eq!(never, ["notes.txt"]);
    }

    /// A name that is not UTF-8 is renamed to its windows-1252 reading once it has been quiet
    /// for the settle time, never over a file of that name.
    #[cfg(unix)]
    #[test]
    fn a_name_that_is_not_utf8_is_renamed_once_quiet_never_over_another_file() {
        use std::os::unix::ffi::OsStrExt;
        let tmp = tempfile::tempdir().expect("tempdir");
        let f = feed_in(tmp.path(), "", "");
        let raw = f
            .inbox
            .join(std::ffi::OsStr::from_bytes(b"relat\xf3rio.csv"));
        touch(&raw, Duration::ZERO);
        let scan1 = scan(&f, Duration::from_secs(60)).expect("scan");
        assert!(scan1.files.is_empty() && raw.exists(), "not quiet yet");

        touch(&f.inbox.join("relatório.csv"), Duration::from_secs(3600));
        touch(&raw, Duration::from_secs(3600));
        let scan2 = scan(&f, Duration::from_secs(60)).expect("scan");
        let mut names: Vec<String> = scan2
            .files
            .iter()
            .filter_map(|(p, _)| Some(p.file_name()?.to_str()?.to_string()))
            .collect();
        names.sort();
        assert_eq!(names, ["2-relatório.csv", "relatório.csv"]);
        assert!(!raw.exists());
    }
}
