//! Files that grew after they were loaded: a writer still going when the file was taken (no
//! lease to ask, a pause longer than `settle`). Each file moved to `processed/` is watched for a
//! while; one that grows there is named loudly, counted, and its new bytes are not lost: a plain
//! CSV file's rest — its header lines, then the bytes after what was loaded — goes back to the
//! inbox as `NAME.rest-OFFSET.csv` and is loaded like any file; a compressed (or UTF-16) file,
//! which cannot be cut, is copied to `rejected/` whole, with the reason.

use std::collections::VecDeque;
use std::fs;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::config::FeedConfig;
use crate::job::file_name;

/// How long an archived file is watched.
pub(super) const WATCH_FOR: Duration = Duration::from_secs(600);
/// At most this many archived files are watched (the newest).
const WATCH_AT_MOST: usize = 20_000;

/// One archived file being watched.
pub(super) struct Archived {
    pub(super) processed: PathBuf,
    /// Its name in the inbox.
    pub(super) name: String,
    /// Bytes loaded.
    pub(super) size: u64,
    pub(super) at: Instant,
}

/// What a look found.
pub(super) struct Grown {
    pub(super) name: String,
    pub(super) bytes: u64,
    /// Where the new bytes went: a rest file in the inbox, or the whole file in rejected/.
    pub(super) to: PathBuf,
}

#[derive(Default)]
pub(super) struct Recent {
    files: VecDeque<Archived>,
}

impl Recent {
    pub(super) fn push(&mut self, a: Archived) {
        self.files.push_back(a);
        while self.files.len() > WATCH_AT_MOST {
            self.files.pop_front();
        }
    }

    /// Looks at every watched file once; the ones that grew are handled (see the module).
    pub(super) fn look(&mut self, feed: &FeedConfig) -> Vec<Grown> {
        let now = Instant::now();
        while self
            .files
            .front()
            .is_some_and(|a| now.duration_since(a.at) > WATCH_FOR)
        {
            self.files.pop_front();
        }
        let mut grown = Vec::new();
        for a in self.files.iter_mut() {
            let Ok(len) = fs::metadata(&a.processed).map(|m| m.len()) else {
                continue;
            };
            if len <= a.size {
                continue;
            }
            match keep_rest(feed, a, len) {
                Ok(to) => {
                    grown.push(Grown {
                        name: a.name.clone(),
                        bytes: len - a.size,
                        to,
                    });
                    a.size = len;
                }
                Err(e) => log::error!(
                    "feed {}: {} grew by {} byte(s) after it was loaded, and they cannot be set aside ({e}): load {} again by hand",
                    feed.name,
                    a.name,
                    len - a.size,
                    a.processed.display()
                ),
            }
        }
        grown
    }
}

/// Sets the bytes of `a` past what was loaded (up to `len`) aside to be loaded; returns where.
fn keep_rest(feed: &FeedConfig, a: &Archived, len: u64) -> std::io::Result<PathBuf> {
    let mut f = fs::File::open(&a.processed)?;
    let mut magic = [0u8; 4];
    let n = f.read(&mut magic)?;
    let magic = &magic[..n];
    let whole = magic.starts_with(&[0x1f, 0x8b])
        || magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd])
        || magic.starts_with(&[0xff, 0xfe])
        || magic.starts_with(&[0xfe, 0xff]);
    if whole {
        let reason = format!(
            "{}: it grew by {} byte(s) after its first {} were loaded (its writer was still writing when it was taken); a compressed or UTF-16 file cannot be cut: load the rest from this copy by hand",
            a.name,
            len - a.size,
            a.size
        );
        let copy = a.processed.with_file_name(format!(".{}.grown", a.name));
        fs::copy(&a.processed, &copy)?;
        return super::files::reject(&copy, &feed.rejected, &reason, None)
            .map_err(std::io::Error::other);
    }
    // The header lines: what the feed skips before rows, and the header.
    let header_lines =
        usize::from(feed.csv.header) + feed.csv.skip_rows + usize::from(sep_line(&a.processed));
    let mut head = Vec::new();
    let mut r = BufReader::new(fs::File::open(&a.processed)?);
    for _ in 0..header_lines {
        if r.read_until(b'\n', &mut head)? == 0 {
            break;
        }
    }
    if !head.is_empty() && !head.ends_with(b"\n") {
        head.push(b'\n');
    }
    let mut rest = Vec::with_capacity(head.len() + (len - a.size) as usize);
    rest.extend_from_slice(&head);
    f.seek(SeekFrom::Start(a.size))?;
    (&mut f).take(len - a.size).read_to_end(&mut rest)?;
    let (stem, ext) = split_name(&a.name);
    let name = format!("{stem}.rest-{}{ext}", a.size);
    let tmp = feed.inbox.join(format!(".{name}.tmp"));
    {
        let mut out = fs::File::create(&tmp)?;
        out.write_all(&rest)?;
        out.sync_all()?;
    }
    let to = free_inbox_name(&feed.inbox, &name);
    fs::rename(&tmp, &to)?;
    Ok(to)
}

fn sep_line(path: &Path) -> bool {
    let mut first = [0u8; 4];
    fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut first))
        .is_ok_and(|_| first.eq_ignore_ascii_case(b"sep="))
}

/// `x.csv` → (`x`, `.csv`); `x.csv.gz` → (`x`, `.csv.gz`).
fn split_name(name: &str) -> (&str, &str) {
    match name.find('.') {
        Some(i) if i > 0 => (&name[..i], &name[i..]),
        _ => (name, ""),
    }
}

fn free_inbox_name(dir: &Path, name: &str) -> PathBuf {
    let first = dir.join(name);
    if !first.exists() {
        return first;
    }
    (2u32..)
        .map(|n| dir.join(format!("{n}-{name}")))
        .find(|p| !p.exists())
        .unwrap_or(first)
}

/// The name a file gets in the log, for one that grew.
pub(super) fn describe(g: &Grown) -> String {
    format!(
        "{} grew by {} byte(s) after it was loaded (its writer was still writing when it was taken): {} holds them",
        g.name,
        g.bytes,
        file_name(&g.to)
    )
}
