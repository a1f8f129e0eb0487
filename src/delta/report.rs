//! Step 9 of a commit: what a landed commit tells — the feed's counters, the log line, and a
//! checkpoint request every `checkpoint_interval` versions.

use std::time::Instant;

use super::change::Planned;
use super::committer::Committer;
use super::prepare::Pending;
use crate::counters::{BadRowSeen, Event};
use crate::job::ParsedFile;

impl Committer {
    pub(super) fn report(
        &self,
        p: &Pending,
        version: i64,
        change: Option<&Planned>,
        started: Instant,
    ) {
        let counters = self.ctx.archive.counters();
        counters.record(Event::Commit {
            took: started.elapsed(),
            version,
            files: p.files.len() as u64,
            rows: p.rows,
            quarantined: p.bad,
        });
        if p.bad > 0 {
            counters.record(Event::BadRows(latest_bad_rows(&p.files)));
        }
        let oldest = p.files.iter().map(|f| f.started).min().unwrap_or(started);
        log::info!(
            "feed {}: committed version {version}: {} file(s), {} rows, {} quarantined, {} warned{}, in {} ms (first file taken {} ms ago)",
            self.feed.name,
            p.files.len(),
            p.rows,
            p.bad,
            p.warned,
            changes(p, change),
            started.elapsed().as_millis(),
            oldest.elapsed().as_millis()
        );
        if version % self.feed.checkpoint_interval as i64 == 0 {
            self.ctx
                .checkpoints
                .request(&self.feed, self.ctx.archive.counters(), version);
        }
    }
}

/// The log line's account of the rows a commit replaced and the keys it dropped ("" for a
/// blind append).
fn changes(p: &Pending, change: Option<&Planned>) -> String {
    let mut changes = Vec::new();
    if let Some(c) = change {
        changes.push(format!(
            "replaced {} earlier row(s) ({} file(s) removed, {} rewritten), {} key(s) updated",
            c.removed_rows,
            c.removed_files,
            c.rewritten_files,
            c.updated_keys.len()
        ));
    }
    let dups: u64 = p.duplicates.iter().sum();
    if dups > 0 {
        changes.push(format!(
            "{dups} row(s) with a key repeated later in the commit (the last wins)"
        ));
    }
    match changes.is_empty() {
        true => String::new(),
        false => format!("; {}", changes.join(", ")),
    }
}

/// The last bad rows of a commit (at most what the page keeps), oldest first.
fn latest_bad_rows(files: &[ParsedFile]) -> Vec<BadRowSeen> {
    let mut rows: Vec<_> = files
        .iter()
        .rev()
        .flat_map(|f| {
            let name = f.job.name();
            f.bad
                .iter()
                .rev()
                .map(move |b| BadRowSeen::new(&name, b.line, b.column.as_deref(), &b.error, &b.raw))
        })
        .take(crate::counters::recent::LATEST)
        .collect();
    rows.reverse();
    rows
}
