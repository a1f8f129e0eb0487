//! Test harness: a temp folder laid out like a user's, the real `deltadrop` binary run on it,
//! and the Delta table read back with the `deltalake` crate. Tests wait for outcomes by polling
//! with a deadline, never by fixed sleeps.
//!
//! [`table`] reads tables back, [`data`] makes the files dropped; [`azurite`] and [`s3`] start
//! the object stores of the cloud tests, and [`objects`] uploads to and lists them.

pub mod azurite;
mod data;
pub mod objects;
pub mod s3;
mod table;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use data::*;
pub use table::*;

/// Generous: CI machines are slow and debug builds slower.
/// The crash points of a file's commit, in the order the commit passes them (`crash_point`).
pub const CRASH_POINTS: [&str; 7] = [
    "after_intent",
    "after_change_written",
    "after_commit",
    "after_record",
    "after_quarantine_commit",
    "before_archive",
    "during_archive",
];

pub const DEADLINE: Duration = Duration::from_secs(60);

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_deltadrop"))
}

/// A temp folder with a config.toml; paths in it are relative to the folder.
pub struct Dir {
    _tmp: tempfile::TempDir,
    pub root: PathBuf,
}

impl Dir {
    /// A folder with the default layout and `extra` appended to the top-level settings.
    pub fn new(extra: &str) -> Dir {
        Dir::with_feed(extra, "")
    }

    /// Same, with `feed_extra` appended to the `[[feed]]` block (its own `[feed.csv]` may follow).
    pub fn with_feed(extra: &str, feed_extra: &str) -> Dir {
        let d = Dir::empty();
        d.write_config(&format!(
            "poll_interval = \"300ms\"\nsettle = \"200ms\"\nworkers = 2\n{extra}\n\
             [[feed]]\nname = \"sales\"\ninbox = \"inbox\"\ntable = \"lake/sales\"\n{feed_extra}\n"
        ));
        d
    }

    /// Runs `deltadrop run --once` with `DELTADROP_CRASH_AT=point` (aborting the `after`-th time
    /// it passes there, like `kill -9`) and asserts it did.
    pub fn run_once_crashing_at(&self, point: &str, after: u32) {
        let out = self
            .assert_cmd()
            .args(["run", "--once", "--config", "config.toml"])
            .env("DELTADROP_CRASH_AT", point)
            .env("DELTADROP_CRASH_AFTER", after.to_string())
            .timeout(DEADLINE)
            .assert()
            .failure();
        let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
        assert!(
            err.contains(&format!("DELTADROP_CRASH_AT={point}: aborting")),
            "{point}: {err}"
        );
    }

    /// Runs `deltadrop ARGS`, asserts it exits with `code`; returns what it wrote to stderr.
    pub fn exits(&self, args: &[&str], code: i32) -> String {
        let out = self
            .assert_cmd()
            .args(args)
            .timeout(DEADLINE)
            .assert()
            .code(code);
        String::from_utf8_lossy(&out.get_output().stderr).into_owned()
    }

    /// Runs `deltadrop run --once`, asserts it exits with `code`; returns its log.
    pub fn run_once_exit(&self, code: i32) -> String {
        let out = self
            .assert_cmd()
            .args(["run", "--once", "--config", "config.toml"])
            .timeout(DEADLINE)
            .assert()
            .code(code);
        String::from_utf8_lossy(&out.get_output().stderr).into_owned()
    }

    /// `inspect --feed sales --file NAME --json`: where the file went, how it was read.
    pub fn inspect_file(&self, name: &str) -> serde_json::Value {
        self.json(&[
            "inspect",
            "--config",
            "config.toml",
            "--feed",
            "sales",
            "--file",
            name,
            "--json",
        ])
    }

    /// Runs a deltadrop command that prints JSON, asserts success, returns the JSON.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let out = self.assert_cmd().args(args).assert().success();
        serde_json::from_slice(&out.get_output().stdout).expect("JSON output")
    }

    /// Runs `deltadrop run --once` and asserts it succeeds; returns its log.
    pub fn run_once(&self) -> String {
        self.run_once_within(DEADLINE)
    }

    /// `run_once` for a run of thousands of commits: `deadline` only stops a run that hangs (a
    /// debug build on a loaded 2-core machine took over a minute for 2,000 commits).
    pub fn run_once_within(&self, deadline: Duration) -> String {
        let out = self
            .assert_cmd()
            .args(["run", "--once", "--config", "config.toml"])
            .env("RUST_LOG", "info")
            .timeout(deadline)
            .assert()
            .success();
        String::from_utf8_lossy(&out.get_output().stderr).into_owned()
    }

    pub fn empty() -> Dir {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path().to_path_buf();
        Dir { _tmp: tmp, root }
    }

    pub fn write_config(&self, text: &str) {
        fs::write(self.root.join("config.toml"), text).expect("write config");
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    pub fn inbox(&self) -> PathBuf {
        self.path("inbox")
    }

    pub fn table(&self) -> PathBuf {
        self.path("lake/sales")
    }

    /// Writes a file under a temp name outside the inbox's pattern, then renames it in —
    /// the way users are told to drop files (scripts/drop.sh).
    pub fn drop_file(&self, name: &str, content: &str) {
        let inbox = self.inbox();
        fs::create_dir_all(&inbox).expect("inbox");
        let tmp = inbox.join(format!(".{name}.tmp"));
        fs::write(&tmp, content).expect("write");
        fs::rename(&tmp, inbox.join(name)).expect("rename");
    }

    /// Writes straight into the inbox (no rename), as `cp` would.
    pub fn write_in_place(&self, name: &str, content: &[u8]) {
        fs::create_dir_all(self.inbox()).expect("inbox");
        fs::write(self.inbox().join(name), content).expect("write");
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new(bin());
        c.current_dir(&self.root);
        c
    }

    pub fn assert_cmd(&self) -> assert_cmd::Command {
        let mut c = assert_cmd::Command::new(bin());
        c.current_dir(&self.root);
        c
    }

    /// Starts `deltadrop run` in the background; its log goes to `daemon-N.log`.
    pub fn spawn(&self) -> Daemon {
        self.spawn_with("config.toml")
    }

    /// Starts the daemon, whose config sets `[http] listen = "127.0.0.1:0"`, and waits for the
    /// address its status endpoint took.
    pub fn spawn_with_status(&self) -> (Daemon, String) {
        let mut daemon = self.spawn();
        let addr_file = self.path(".deltadrop/http.addr");
        let up = wait_until(DEADLINE, || {
            daemon.assert_alive();
            addr_file.exists()
        });
        assert!(up, "no status endpoint\n{}", daemon.log());
        let addr = fs::read_to_string(&addr_file).expect("http.addr");
        (daemon, addr.trim().to_string())
    }

    /// Same, with another config file (relative to the folder).
    pub fn spawn_with(&self, config: &str) -> Daemon {
        self.spawn_env(config, &[])
    }

    /// Same, with extra environment variables.
    pub fn spawn_env(&self, config: &str, env: &[(String, String)]) -> Daemon {
        let n = (0..)
            .find(|i| !self.root.join(format!("daemon-{i}.log")).exists())
            .unwrap_or(0);
        let log_path = self.root.join(format!("daemon-{n}.log"));
        let log = fs::File::create(&log_path).expect("log file");
        let child = self
            .cmd()
            .args(["run", "--config", config])
            .envs(env.iter().map(|(k, v)| (k, v)))
            .env("RUST_LOG", "debug")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn deltadrop");
        Daemon {
            child: Some(child),
            log_path,
        }
    }

    pub fn inbox_files(&self) -> Vec<String> {
        waiting_in(&self.inbox())
    }

    pub fn rows(&self) -> Vec<Row> {
        read_rows(&self.table())
    }

    /// Polls until the table holds `n` rows and the inbox is empty.
    pub fn wait_for_rows(&self, n: usize, daemon: &mut Daemon) -> Vec<Row> {
        let ok = wait_until(DEADLINE, || {
            daemon.assert_alive();
            self.table().join("_delta_log").exists()
                && self.inbox_files().is_empty()
                && read_rows(&self.table()).len() >= n
        });
        let rows = self.rows();
        assert!(
            ok,
            "timed out: {} rows of {n}, inbox {:?}\n{}",
            rows.len(),
            self.inbox_files(),
            daemon.log()
        );
        rows
    }
}

/// What a user sees waiting in an inbox (the daemon's own lock and claim folder aside).
pub fn waiting_in(inbox: &Path) -> Vec<String> {
    let mut names = list_names(inbox);
    names.retain(|n| n != ".deltadrop-inbox.lock" && n != ".deltadrop-claims");
    names
}

pub fn list_names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

pub struct Daemon {
    child: Option<Child>,
    pub log_path: PathBuf,
}

impl Daemon {
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Waits until the daemon has started (tables open, watching).
    pub fn wait_ready(&mut self) {
        let ok = wait_until(DEADLINE, || {
            self.assert_alive();
            self.log().contains("watching")
        });
        assert!(ok, "deltadrop did not start\n{}", self.log());
    }

    pub fn assert_alive(&mut self) {
        if let Some(c) = self.child.as_mut() {
            if let Ok(Some(status)) = c.try_wait() {
                panic!("deltadrop exited early with {status}\n{}", self.log());
            }
        }
    }

    /// SIGKILL: no chance to clean up.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Waits (up to the deadline) for the daemon to exit by itself; returns its exit status.
    pub fn wait_exit(&mut self) -> std::process::ExitStatus {
        let c = self.child.as_mut().expect("running");
        let mut status = None;
        let exited = wait_until(DEADLINE, || {
            status = c.try_wait().ok().flatten();
            status.is_some()
        });
        assert!(exited, "deltadrop did not exit\n{}", self.log());
        self.child = None;
        status.expect("exit status")
    }

    /// SIGTERM, then wait for the exit code.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("running");
        let _ = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status();
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Ok(Some(s)) = c.try_wait() {
                return s;
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                panic!("deltadrop did not stop after SIGTERM\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// The body of `GET http://{addr}{path}`.
pub fn http_get(addr: &str, path: &str) -> String {
    ureq::get(&format!("http://{addr}{path}"))
        .call()
        .expect("GET")
        .body_mut()
        .read_to_string()
        .expect("body")
}

pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}
