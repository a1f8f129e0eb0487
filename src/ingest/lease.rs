//! Readiness without guessing: a file is read only when no other process holds it open for
//! writing — a fact the operating system checks, not a quiet period.
//!
//! Linux: a read lease (`fcntl(F_SETLEASE, F_RDLCK)` on the read-only descriptor the file is
//! read through) is refused with EAGAIN while anyone has the file open for writing. Held for the
//! whole read, it also catches a writer that opens the file meanwhile: that open waits (up to
//! `/proc/sys/fs/lease-break-time`) while the kernel breaks the lease; the reader sees it at its
//! next block ([`Watched`]), stops, lets go, and treats the file as "changed while read".
//! SIGIO, which announces the break, is ignored: its default action would end the process. A lease needs the file's
//! owner or CAP_LEASE; without either (and on filesystems without leases, such as NFS), the
//! file is read without this check and `settle` is the rule.
//!
//! Windows: the file is opened sharing reads only, which fails with a sharing violation while a
//! writer has it open, and keeps writers out while it is read.

use std::fs::File;
use std::io;
use std::path::Path;

/// What the check found when the file was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// No writer had it open; one that opens it meanwhile is seen.
    Held,
    /// No check possible here (not the file's owner without CAP_LEASE, a filesystem without
    /// leases): only `settle` says the file is complete.
    // Never on Windows, where the share-mode open is always the check.
    #[cfg_attr(windows, allow(dead_code))]
    Unavailable,
}

/// The file open for reading, and what keeps writers visible while it is read.
pub struct Lease {
    file: File,
    check: Check,
}

/// Opens `path` for reading if no other process has it open for writing. A writer holding it
/// gives an error of kind `WouldBlock` (the file is not ready: try again later).
pub fn open(path: &Path) -> io::Result<Lease> {
    let file = open_read_only(path)?;
    let check = take(&file)?;
    Ok(Lease { file, check })
}

impl Lease {
    /// The file to read through. While the lease is held, each read first asks whether a
    /// writer opened the file meanwhile, and fails with `ResourceBusy` if one did: the read
    /// stops at once, the lease is let go, and that writer's open (which the kernel holds until
    /// then) goes on — instead of waiting for the whole file to be read.
    pub fn reader(&self) -> io::Result<Watched> {
        Ok(Watched {
            file: self.file.try_clone()?,
            held: self.check == Check::Held,
        })
    }

    pub fn check(&self) -> Check {
        self.check
    }

    /// Whether a writer opened the file since it was opened here (its lease is being broken).
    pub fn broken(&self) -> bool {
        self.check == Check::Held && lease_broken(&self.file)
    }
}

/// A leased file being read (see [`Lease::reader`]).
pub struct Watched {
    file: File,
    held: bool,
}

impl io::Read for Watched {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // One fcntl per block read (256 KiB): nothing next to the parsing.
        if self.held && lease_broken(&self.file) {
            return Err(io::Error::new(
                io::ErrorKind::ResourceBusy,
                "another process opened it for writing while it was read",
            ));
        }
        self.file.read(buf)
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if self.check == Check::Held {
            release(&self.file);
        }
    }
}

#[cfg(target_os = "linux")]
fn open_read_only(path: &Path) -> io::Result<File> {
    File::open(path)
}

#[cfg(target_os = "linux")]
fn take(file: &File) -> io::Result<Check> {
    use std::os::fd::AsRawFd;
    ignore_lease_signal();
    // SAFETY: fcntl on a descriptor this process owns; F_SETLEASE takes an int argument.
    let r = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETLEASE, libc::F_RDLCK) };
    if r == 0 {
        return Ok(Check::Held);
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EAGAIN) => Err(io::Error::new(
            io::ErrorKind::WouldBlock,
            "another process has it open for writing",
        )),
        // Not the owner and no CAP_LEASE (EACCES), or a filesystem without leases (EINVAL,
        // NFS, FUSE...): no check here.
        _ => Ok(Check::Unavailable),
    }
}

#[cfg(target_os = "linux")]
fn lease_broken(file: &File) -> bool {
    use std::os::fd::AsRawFd;
    // SAFETY: as above; F_GETLEASE takes no argument.
    let r = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETLEASE) };
    r != libc::F_RDLCK
}

#[cfg(target_os = "linux")]
fn release(file: &File) {
    use std::os::fd::AsRawFd;
    // SAFETY: as above. Closing the descriptor would release it too; this is sooner.
    unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETLEASE, libc::F_UNLCK) };
}

/// A lease break is signalled with SIGIO, whose default action ends the process: the reader
/// asks the lease instead, so the signal is ignored (nothing else here uses it).
#[cfg(target_os = "linux")]
fn ignore_lease_signal() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: setting a signal's disposition to SIG_IGN has no handler to run.
        unsafe { libc::signal(libc::SIGIO, libc::SIG_IGN) };
    });
}

#[cfg(windows)]
fn open_read_only(path: &Path) -> io::Result<File> {
    use std::os::windows::fs::OpenOptionsExt;
    const FILE_SHARE_READ: u32 = 0x1;
    const ERROR_SHARING_VIOLATION: i32 = 32;
    match std::fs::OpenOptions::new()
        .read(true)
        .share_mode(FILE_SHARE_READ)
        .open(path)
    {
        Err(e) if e.raw_os_error() == Some(ERROR_SHARING_VIOLATION) => Err(io::Error::new(
            io::ErrorKind::WouldBlock,
            "another process has it open for writing",
        )),
        other => other,
    }
}

#[cfg(windows)]
fn take(_: &File) -> io::Result<Check> {
    Ok(Check::Held)
}

#[cfg(windows)]
fn lease_broken(_: &File) -> bool {
    // No writer can open it while it is open here without write sharing.
    false
}

#[cfg(windows)]
fn release(_: &File) {}

#[cfg(not(any(target_os = "linux", windows)))]
fn open_read_only(path: &Path) -> io::Result<File> {
    File::open(path)
}

#[cfg(not(any(target_os = "linux", windows)))]
fn take(_: &File) -> io::Result<Check> {
    Ok(Check::Unavailable)
}

#[cfg(not(any(target_os = "linux", windows)))]
fn lease_broken(_: &File) -> bool {
    false
}

#[cfg(not(any(target_os = "linux", windows)))]
fn release(_: &File) {}

/// What readiness check this process gets for files in `dir`, in words (for `check`).
pub fn describe(dir: &Path) -> String {
    let probe = tempfile::Builder::new()
        .prefix(".deltadrop-lease-")
        .tempfile_in(dir);
    let own = match probe {
        // Closed first: an open writer (this one) would make the probe busy.
        Ok(f) => {
            let path = f.into_temp_path();
            open(&path).map(|l| l.check()).ok()
        }
        Err(_) => None,
    };
    match own {
        Some(Check::Held) if cfg!(windows) => {
            "opened without write sharing: a file a writer holds open is not read".into()
        }
        Some(Check::Held) if has_cap_lease() => {
            "read leases for every file (CAP_LEASE): a file a writer holds open is not read".into()
        }
        Some(Check::Held) => "read leases for files owned by this user; files of other owners are taken by `settle` (grant CAP_LEASE: AmbientCapabilities=CAP_LEASE in the systemd unit)".into(),
        Some(Check::Unavailable) => "no read leases on this filesystem (NFS, SMB, FUSE?): a file is taken once it has not changed for `settle`".into(),
        None => "unknown (the inbox cannot be written to probe it)".into(),
    }
}

/// Whether this process has CAP_LEASE (Linux: bit 28 of the effective set).
fn has_cap_lease() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
        })
        .is_some_and(|caps| caps & (1 << 28) != 0)
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_file_open_for_writing_is_not_ready() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.csv");
        let mut w = File::create(&path).unwrap();
        w.write_all(b"a,b\n").unwrap();
        let err = open(&path).err().expect("busy");
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        drop(w);
        let lease = open(&path).unwrap();
        assert_eq!(lease.check(), Check::Held);
        assert!(!lease.broken());
    }

    #[test]
    fn a_writer_opening_during_the_read_breaks_the_lease() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.csv");
        std::fs::write(&path, b"a,b\n").unwrap();
        let lease = open(&path).unwrap();
        let p = path.clone();
        // The writer's open waits for the lease to go.
        let writer = std::thread::spawn(move || {
            let mut f = std::fs::OpenOptions::new().append(true).open(p).unwrap();
            f.write_all(b"1,2\n").unwrap();
        });
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !lease.broken() {
            assert!(std::time::Instant::now() < deadline, "lease not broken");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        drop(lease);
        writer.join().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"a,b\n1,2\n");
    }
}
