//! Faults around the daemon: a full disk, SIGTERM under load, file permissions.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::util::*;

/// A small tmpfs mounted on a folder of the test (root only); unmounted on drop.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(dir: &std::path::Path, size: &str) -> Option<Tmpfs> {
        fs::create_dir_all(dir).ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        ok.then(|| Tmpfs(dir.to_path_buf()))
    }

    fn resize(&self, size: &str) {
        let ok = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .status()
            .unwrap()
            .success();
        assert!(ok, "remount");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_keeps_files_in_the_inbox_until_space_returns() {
    let d = Dir::new("");
    let Some(disk) = Tmpfs::mount(&d.path("lake"), "1m") else {
        eprintln!("skipped: cannot mount a tmpfs here (not root?)");
        return;
    };
    let mut daemon = d.spawn();
    daemon.wait_ready();
    // ~9 MB of CSV: its Parquet cannot fit in what is left of 1 MB.
    d.drop_file("big.csv", &sales_csv("full", 120_000));
    assert!(
        wait_until(DEADLINE, || daemon
            .log()
            .contains("No space left on device")),
        "{}",
        daemon.log()
    );
    assert_eq!(
        d.inbox_files(),
        vec!["big.csv"],
        "the file stays in the inbox"
    );
    assert!(d.rows().is_empty(), "nothing half-written is visible");
    disk.resize("64m");
    let rows = d.wait_for_rows(120_000, &mut daemon);
    assert_exactly_once(&rows, &ids("full", 120_000));
    assert!(daemon.terminate().success());
}

#[test]
fn sigterm_under_load_stops_quickly_and_leaves_files_whole() {
    let d = Dir::new("");
    fs::create_dir_all(d.inbox()).unwrap();
    let mut daemon = d.spawn();
    daemon.wait_ready();
    let mut expected = Vec::new();
    d.drop_file("large.csv", &sales_csv("large", 80_000));
    expected.extend(ids("large", 80_000));
    for i in 0..150 {
        let tag = format!("load{i}");
        d.drop_file(&format!("{tag}.csv"), &sales_csv(&tag, 20));
        expected.extend(ids(&tag, 20));
    }
    assert!(
        wait_until(DEADLINE, || !d.rows().is_empty()),
        "{}",
        daemon.log()
    );
    let t = Instant::now();
    let status = daemon.terminate();
    let took = t.elapsed();
    assert!(status.success(), "{}", daemon.log());
    // A requirement of the issue, with a wide margin for a debug build on a busy machine.
    assert!(took < Duration::from_secs(5), "stopped in {took:?}");
    // Whatever was not committed is still in the inbox, whole: a second run loads it once.
    d.run_once();
    assert_exactly_once(&d.rows(), &expected);
}

#[test]
fn state_and_table_files_are_not_world_writable() {
    let d = Dir::new("");
    d.write_in_place("p.csv", sales_csv("p", 3).as_bytes());
    d.run_once();
    let mut checked = 0;
    for root in [d.path(".deltadrop"), d.path("lake")] {
        let mut stack = vec![root];
        while let Some(p) = stack.pop() {
            let m = fs::symlink_metadata(&p).unwrap();
            assert_eq!(
                m.permissions().mode() & 0o002,
                0,
                "{} is world-writable",
                p.display()
            );
            checked += 1;
            if m.is_dir() {
                stack.extend(fs::read_dir(&p).unwrap().flatten().map(|e| e.path()));
            }
        }
    }
    assert!(checked > 5);
    let state = fs::metadata(d.path(".deltadrop/sales/intent.json")).unwrap();
    assert_eq!(
        state.permissions().mode() & 0o077,
        0,
        "state is private to its user"
    );
}

/// A producer that keeps the file open and appends for a while: taken once, complete.
#[test]
fn a_file_still_growing_is_taken_once_complete() {
    let d = Dir::new("");
    fs::create_dir_all(d.inbox()).unwrap();
    let mut daemon = d.spawn();
    daemon.wait_ready();
    let text = sales_csv("grow", 400);
    let lines: Vec<&str> = text.lines().collect();
    {
        use std::io::Write;
        let mut f = fs::File::create(d.inbox().join("growing.csv")).unwrap();
        for chunk in lines.chunks(40) {
            for l in chunk {
                writeln!(f, "{l}").unwrap();
            }
            f.flush().unwrap();
            // The producer's pace: the pauses are shorter than `settle` (200 ms).
            std::thread::sleep(Duration::from_millis(60));
        }
    }
    let rows = d.wait_for_rows(400, &mut daemon);
    assert_exactly_once(&rows, &ids("grow", 400));
}

/// An unreadable file (no read permission) is rejected with the reason; the rest loads. Root
/// reads anything, so the daemon runs as `nobody` here (skipped where that is not possible).
#[test]
fn an_unreadable_file_is_rejected_with_the_reason() {
    let d = Dir::new("[http]\nenabled = false");
    d.write_in_place("ok.csv", sales_csv("ok", 3).as_bytes());
    d.write_in_place("locked.csv", sales_csv("locked", 3).as_bytes());
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    let has_setpriv = Command::new("setpriv").arg("--version").output().is_ok();
    if !is_root || !has_setpriv {
        eprintln!("skipped: needs root and setpriv to run the daemon as another user");
        return;
    }
    // Everything writable by `nobody`, except the file that must not be readable.
    let mut stack = vec![d.root.clone()];
    while let Some(p) = stack.pop() {
        let m = fs::metadata(&p).unwrap();
        let mode = if m.is_dir() { 0o777 } else { 0o666 };
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
        if m.is_dir() {
            stack.extend(fs::read_dir(&p).unwrap().flatten().map(|e| e.path()));
        }
    }
    fs::set_permissions(
        d.inbox().join("locked.csv"),
        fs::Permissions::from_mode(0o000),
    )
    .unwrap();
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(bin())
        .args(["run", "--once", "--config", "config.toml"])
        .current_dir(&d.root)
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{log}");
    let why = fs::read_to_string(d.path("rejected/locked.csv.error.txt")).unwrap();
    assert!(
        why.contains("locked.csv: cannot read the file: Permission denied"),
        "{why}"
    );
    assert_exactly_once(&d.rows(), &ids("ok", 3));
}

/// The table folder deleted under a running daemon: its next commit would be the only file of
/// a new log — a table no reader opens, with the file counted as loaded. The commit is
/// refused, the file stays in the inbox, and the daemon stops with the reason (exit 1).
#[test]
fn a_table_deleted_under_the_daemon_is_not_written_to() {
    let d = Dir::new("[http]\nenabled = false");
    let mut daemon = d.spawn();
    d.drop_file("first.csv", &sales_csv("first", 3));
    d.wait_for_rows(3, &mut daemon);
    fs::remove_dir_all(d.table()).unwrap();
    d.drop_file("second.csv", &sales_csv("second", 2));
    let status = daemon.wait_exit();
    let log = daemon.log();
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(log.contains("its log has no version 1 any more"), "{log}");
    assert_eq!(d.inbox_files(), ["second.csv"]);
    let commits = fs::read_dir(d.table().join("_delta_log"))
        .map(|rd| rd.count())
        .unwrap_or(0);
    assert_eq!(commits, 0, "nothing was written to the new folder's log");
}
