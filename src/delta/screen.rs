//! Step 2 of a commit: which files of a group go on to be committed. Content already loaded
//! (or twice in the group) is a duplicate; a name loaded before with other content is handled
//! as `on_resend` says; a file its writer came back to since it was read is read again
//! ([`crate::readiness`]). The others go on.

use std::collections::HashSet;

use super::committer::Committer;
use crate::config::OnResend;
use crate::job::ParsedFile;
use crate::readiness::{since_read, SinceRead};

impl Committer {
    /// The files of `group` that go on to be committed; the others are handed to the archive
    /// stage (duplicates, rejected re-sends) or back to the inbox (changed since read).
    pub(super) fn screen(&self, group: Vec<ParsedFile>) -> Vec<ParsedFile> {
        let files = self.set_duplicates_apart(group);
        self.set_changed_apart(files)
    }

    /// Files whose content is already loaded, or twice in this group (`dedupe`), go to the
    /// archive stage as duplicates; the others are returned.
    fn set_duplicates_apart(&self, group: Vec<ParsedFile>) -> Vec<ParsedFile> {
        let mut seen = HashSet::new();
        let mut files = Vec::with_capacity(group.len());
        for f in group {
            let loaded = self.ledger.state.loaded(&f.hash);
            let dup = self.feed.dedupe && (loaded.is_some() || !seen.insert(f.hash.clone()));
            if !dup {
                if self.resent_and_rejected(&f) {
                    continue;
                }
                files.push(f);
                continue;
            }
            let known = loaded
                .map(|l| format!("'{}' in version {}", l.name, l.version))
                .unwrap_or_else(|| "another file of this batch".to_string());
            self.ctx.archive.duplicate(&f.job.path, &known);
        }
        files
    }

    /// A file whose name was loaded before with other content (`on_resend`): rejected (true),
    /// or loaded as new rows with a warning naming the earlier version.
    fn resent_and_rejected(&self, f: &ParsedFile) -> bool {
        let name = f.job.name();
        let Some(earlier) = self.ledger.state.loaded_before(&name, &f.hash) else {
            return false;
        };
        match self.feed.on_resend {
            OnResend::Append => {
                log::warn!(
                    "feed {}: {name} was loaded before with other content ({} rows in version {}); its rows are added as new rows (on_resend = \"append\"; \"reject\" refuses such files)",
                    self.feed.name,
                    earlier.rows,
                    earlier.version
                );
                false
            }
            OnResend::Replace => {
                log::info!(
                    "feed {}: {name} is a correction: it replaces the {} rows its earlier version loaded in version {} (on_resend = \"replace\")",
                    self.feed.name,
                    earlier.rows,
                    earlier.version
                );
                false
            }
            OnResend::Reject => {
                let reason = format!(
                    "{name} was loaded before with other content ({} rows in version {} of the table); not loaded again under the same name (on_resend = \"reject\"): send a correction under a new name, or set on_resend = \"append\" to add its rows",
                    earlier.rows, earlier.version
                );
                self.ctx.archive.reject(&f.job.path, &reason);
                true
            }
        }
    }

    /// Files that changed since they were read (a writer came back to them) are not committed:
    /// they go back to be read again.
    fn set_changed_apart(&self, files: Vec<ParsedFile>) -> Vec<ParsedFile> {
        let mut keep = Vec::with_capacity(files.len());
        for f in files {
            let lease_checked = f.dialect.writer_check == crate::job::WriterCheck::Lease;
            match since_read(&f.job.path, f.stamp, &f.hash, lease_checked) {
                // Gone: what was read was whole; nothing to archive.
                SinceRead::Same | SinceRead::Gone => keep.push(f),
                SinceRead::Changed => {
                    let d = self.ctx.archive.retry(&f.job.path);
                    log::info!(
                        "feed {}: {} changed after it was read (its writer came back?); read again in {d:?}",
                        self.feed.name,
                        f.job.name()
                    );
                }
            }
        }
        keep
    }
}
