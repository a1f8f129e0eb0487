//! An inbox in object storage (`inbox = "az://drop/inbox"`): its URIs, checked and completed
//! (`processed`/`rejected` beside it in the same store), and the local folders under
//! `state_dir` its objects are read through.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use url::Url;

use super::location::{check_inbox_scheme, uri_of};
use super::raw::RawFeed;
use super::Remote;

/// An inbox in object storage (`inbox = "az://drop/inbox"`): where it is, where its objects go,
/// and the local folders it is read through (under `state_dir`).
pub(super) fn resolve_remote(
    f: &RawFeed,
    state_dir: &Path,
    instance: Option<&str>,
    inboxes: &mut HashSet<PathBuf>,
) -> Result<Option<Remote>, String> {
    let Some(inbox) = uri_of(&f.inbox) else {
        // A URI in processed/rejected beside a local inbox: the local-folder check says why not.
        return Ok(None);
    };
    check_inbox_scheme(&inbox)?;
    if f.shared_inbox {
        return Err("shared_inbox is for a shared folder (NFS, SMB); daemons sharing an inbox in object storage claim objects by themselves: leave it out".into());
    }
    let sibling = |what: &str| -> Url {
        let trimmed = inbox.path().trim_end_matches('/');
        let parent = match trimmed.rfind('/') {
            Some(i) => &trimmed[..i],
            None => "",
        };
        let mut u = inbox.clone();
        u.set_path(&format!("{parent}/{what}/"));
        u
    };
    let place = |what: &str, value: &Path, default: &Path| -> Result<Url, String> {
        if value == default {
            return Ok(sibling(what));
        }
        let u = uri_of(value).ok_or_else(|| {
            format!(
                "{what} = {:?} is a local folder, but the inbox is {inbox}: {what} must be in the same store (a URI such as {})",
                value.display(),
                sibling(what)
            )
        })?;
        if u.scheme() != inbox.scheme() || u.host_str() != inbox.host_str() {
            return Err(format!(
                "{what} = {u} is not in the inbox's store ({}://{}): objects are archived by a copy within the store",
                inbox.scheme(),
                inbox.host_str().unwrap_or("")
            ));
        }
        Ok(with_slash(u))
    };
    let processed = place("processed", &f.processed, &super::raw::default_processed())?;
    let rejected = place("rejected", &f.rejected, &super::raw::default_rejected())?;
    let inbox = with_slash(inbox);
    for (what, u) in [("processed", &processed), ("rejected", &rejected)] {
        if u == &inbox {
            return Err(format!("{what} must not be the inbox itself"));
        }
    }
    if !inboxes.insert(PathBuf::from(inbox.as_str())) {
        return Err(format!("inbox {inbox} is used by another feed"));
    }
    if f.claim_lease < Duration::from_secs(1) {
        return Err("claim_lease must be at least 1s".into());
    }
    let local = state_dir.join("remote").join(&f.name);
    Ok(Some(Remote {
        inbox,
        processed,
        rejected,
        local,
        instance: instance
            .map(str::to_string)
            .unwrap_or_else(default_instance),
        lease: f.claim_lease,
        delete_on_success: false,
    }))
}

fn with_slash(mut u: Url) -> Url {
    if !u.path().ends_with('/') {
        let p = format!("{}/", u.path());
        u.set_path(&p);
    }
    u
}

/// A daemon without `instance` claims objects under its host's name.
fn default_instance() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "deltadrop".into());
    format!("{host}-{}", std::process::id())
}
