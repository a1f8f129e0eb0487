//! Checks a local table folder before the first commit. Delta's commit on a local filesystem
//! is "create the version file if absent", done with a hard link: it is atomic on local
//! disks, but on SMB/CIFS shares, blobfuse and other FUSE mounts, or Windows folders seen
//! through WSL, hard links fail or are not atomic, and two writers can overwrite each other's
//! commits. So: a folder where hard links fail is refused; one on such a mount gets a warning.

use std::path::{Path, PathBuf};

/// Filesystem types where concurrent local commits are not safe, and what they are.
const RISKY: [(&str, &str); 9] = [
    ("cifs", "an SMB/CIFS share"),
    ("smb3", "an SMB share"),
    ("smbfs", "an SMB share"),
    ("nfs", "an NFS mount"),
    ("nfs4", "an NFS mount"),
    ("9p", "a WSL/9p mount"),
    ("drvfs", "a WSL Windows folder"),
    ("v9fs", "a 9p mount"),
    ("fuse", "a FUSE mount"),
];

/// A table folder where hard links fail: Delta's local commits need them.
#[derive(Debug, thiserror::Error)]
#[error(
    "table folder {} is on {what} where hard links fail ({source}); Delta's local commits need them \
     (atomic put-if-absent). Put the table on a local disk, or use an az:// or s3:// table",
    dir.display()
)]
pub struct NoHardLinks {
    dir: std::path::PathBuf,
    /// The filesystem, in words ("an SMB/CIFS share", or "a filesystem").
    what: &'static str,
    source: std::io::Error,
}

/// Ok if hard links work in `dir`; a warning is logged when `dir` is on a network or FUSE
/// filesystem even so (one writer per table there).
pub fn check_table_folder(dir: &Path) -> Result<(), NoHardLinks> {
    let fstype = mount_type(dir);
    let what = fstype.as_deref().and_then(describe);
    if let Err(source) = probe_hard_link(dir) {
        return Err(NoHardLinks {
            dir: dir.to_path_buf(),
            what: what.unwrap_or("a filesystem"),
            source,
        });
    }
    if let (Some(t), Some(what)) = (fstype, what) {
        log::warn!(
            "table folder {} is on {what} ({t}): commits are only safe from one daemon at a time \
             there; for several writers use an az:// or s3:// table",
            dir.display()
        );
    }
    Ok(())
}

/// What shared filesystem `dir` is on (an SMB share, an NFS mount...), if it is on one.
pub fn shared_mount(dir: &Path) -> Option<&'static str> {
    mount_type(dir).as_deref().and_then(describe)
}

fn describe(fstype: &str) -> Option<&'static str> {
    RISKY
        .iter()
        .find(|(t, _)| fstype == *t || (*t == "fuse" && fstype.starts_with("fuse")))
        .map(|(_, what)| *what)
}

fn probe_hard_link(dir: &Path) -> std::io::Result<()> {
    let probe = tempfile::Builder::new()
        .prefix(".deltadrop-probe-")
        .tempfile_in(dir)?;
    let link = dir.join(format!(
        ".deltadrop-probe-link-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    let res = std::fs::hard_link(probe.path(), &link);
    let _ = std::fs::remove_file(&link);
    res
}

/// The filesystem type of the mount holding `dir` (Linux: the longest matching mount point in
/// /proc/self/mounts); None where that cannot be read.
#[cfg(not(windows))]
fn mount_type(dir: &Path) -> Option<String> {
    let dir = std::fs::canonicalize(dir).ok()?;
    let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
    mount_type_in(&mounts, &dir)
}

/// Windows: a UNC path (`\\server\share\...`) is an SMB share; a drive letter is taken as
/// local (a network drive mapped to a letter is not told apart here).
#[cfg(windows)]
fn mount_type(dir: &Path) -> Option<String> {
    use std::path::{Component, Prefix};
    let dir = dunce::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    match dir.components().next() {
        Some(Component::Prefix(p))
            if matches!(p.kind(), Prefix::UNC(..) | Prefix::VerbatimUNC(..)) =>
        {
            Some("cifs".into())
        }
        _ => None,
    }
}

#[cfg_attr(windows, allow(dead_code))] // its tests run everywhere
fn mount_type_in(mounts: &str, dir: &Path) -> Option<String> {
    mounts
        .lines()
        .filter_map(|line| {
            let mut parts = line.split_whitespace();
            let _device = parts.next()?;
            // Spaces in mount points are written as \040.
            let point = PathBuf::from(parts.next()?.replace("\\040", " "));
            let fstype = parts.next()?;
            dir.starts_with(&point)
                .then(|| (point.as_os_str().len(), fstype.to_string()))
        })
        .max_by_key(|(len, _)| *len)
        .map(|(_, t)| t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_mount_point_names_the_filesystem() {
        let mounts = "overlay / overlay rw 0 0\n\
                      //srv/share /mnt/share cifs rw 0 0\n\
                      blobfuse2 /mnt/blob\\040x fuse.blobfuse2 rw 0 0\n";
        let t = |p: &str| mount_type_in(mounts, Path::new(p));
        assert_eq!(t("/work/lake").as_deref(), Some("overlay"));
        assert_eq!(t("/mnt/share/lake/sales").as_deref(), Some("cifs"));
        assert_eq!(t("/mnt/blob x/t").as_deref(), Some("fuse.blobfuse2"));
        assert_eq!(describe("fuse.blobfuse2"), Some("a FUSE mount"));
        assert_eq!(describe("cifs"), Some("an SMB/CIFS share"));
        assert_eq!(describe("ext4"), None);
    }

    #[test]
    fn a_local_folder_passes_the_hard_link_probe_and_keeps_nothing() {
        let dir = tempfile::tempdir().unwrap();
        check_table_folder(dir.path()).unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
