//! Test harness: a temp folder laid out like a user's, the real `deltadrop` binary run on it,
//! and the Delta table read back with the `deltalake` crate. Tests wait for outcomes by polling
//! with a deadline, never by fixed sleeps.
#![allow(dead_code)]

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use deltalake::arrow::array::{
    Array, Decimal128Array, Int64Array, StringArray, TimestampMicrosecondArray,
};
use deltalake::logstore::object_store::ObjectStoreExt;
use deltalake::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

pub const HEADER: &str =
    "sale_id,sold_at,store_id,product_id,quantity,unit_price,total,payment_method,customer_id";

/// Generous: CI machines are slow and debug builds slower.
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
        let out = self
            .assert_cmd()
            .args(["run", "--once", "--config", "config.toml"])
            .env("RUST_LOG", "info")
            .timeout(DEADLINE)
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

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
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

/// `rows` rows of sales data; sale ids are `<tag>-<n>`, unique across tags.
pub fn sales_csv(tag: &str, rows: usize) -> String {
    let mut s = String::with_capacity(64 * (rows + 1));
    s.push_str(HEADER);
    s.push('\n');
    for i in 0..rows {
        let qty = 1 + (i % 5);
        let cents = 100 + (i * 37) % 9900;
        let customer = if i % 4 == 0 {
            String::new()
        } else {
            format!("C{}", i % 97)
        };
        s.push_str(&format!(
            "{tag}-{i},2024-03-{:02}T{:02}:{:02}:00Z,ST{},P{},{qty},{}.{:02},{}.{:02},{},{customer}\n",
            1 + i % 28,
            i % 24,
            i % 60,
            i % 7,
            i % 113,
            cents / 100,
            cents % 100,
            (cents * qty) / 100,
            (cents * qty) % 100,
            ["pix", "credit", "debit", "cash"][i % 4],
        ));
    }
    s
}

#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub sale_id: String,
    pub sold_at: i64,
    pub store_id: String,
    pub product_id: String,
    pub quantity: i64,
    pub unit_price: i128,
    pub total: i128,
    pub payment_method: String,
    pub customer_id: Option<String>,
    pub source_file: String,
    pub ingested_at: i64,
}

/// The table at `url` (None if there is none yet).
pub fn open_at(url: &url::Url, options: &HashMap<String, String>) -> Option<deltalake::DeltaTable> {
    deltalake::azure::register_handlers(None);
    deltalake::aws::register_handlers(None);
    runtime()
        .block_on(deltalake::open_table_with_storage_options(
            url.clone(),
            options.clone(),
        ))
        .ok()
}

/// The latest version of the table at `url`, and the txn version of each app id in it.
pub fn txn_versions(
    url: &url::Url,
    options: &HashMap<String, String>,
    app_ids: &[String],
) -> (u64, Vec<Option<i64>>) {
    let t = open_at(url, options).expect("table");
    let rt = runtime();
    let txns = app_ids
        .iter()
        .map(|id| {
            rt.block_on(
                t.snapshot()
                    .expect("snapshot")
                    .transaction_version(t.log_store().as_ref(), id),
            )
            .expect("txn version")
        })
        .collect();
    (t.version().unwrap_or(0), txns)
}

pub fn table_version(dir: &Path) -> Option<u64> {
    let rt = runtime();
    rt.block_on(async {
        let url = url::Url::from_directory_path(dir).ok()?;
        let t = deltalake::open_table(url).await.ok()?;
        t.version()
    })
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Every row of the table at its latest version, read through the Delta log (so only
/// committed files count).
pub fn read_rows(dir: &Path) -> Vec<Row> {
    rows_of(read_batches(dir))
}

/// The same for a table at any URL, with its storage options (cloud credentials, endpoint).
pub fn read_rows_at(url: &url::Url, options: &HashMap<String, String>) -> Vec<Row> {
    rows_of(read_batches_at(url, options))
}

fn rows_of(batches: Vec<deltalake::arrow::record_batch::RecordBatch>) -> Vec<Row> {
    let mut rows = Vec::new();
    for b in batches {
        {
            let s = |name: &str| {
                b.column_by_name(name)
                    .and_then(|c| c.as_any().downcast_ref::<StringArray>().cloned())
                    .unwrap_or_else(|| panic!("string column {name}"))
            };
            let ts = |name: &str| {
                b.column_by_name(name)
                    .and_then(|c| {
                        c.as_any()
                            .downcast_ref::<TimestampMicrosecondArray>()
                            .cloned()
                    })
                    .unwrap_or_else(|| panic!("timestamp column {name}"))
            };
            let dec = |name: &str| {
                b.column_by_name(name)
                    .and_then(|c| c.as_any().downcast_ref::<Decimal128Array>().cloned())
                    .unwrap_or_else(|| panic!("decimal column {name}"))
            };
            let sale_id = s("sale_id");
            let sold_at = ts("sold_at");
            let store = s("store_id");
            let product = s("product_id");
            let qty = b
                .column_by_name("quantity")
                .and_then(|c| c.as_any().downcast_ref::<Int64Array>().cloned())
                .expect("quantity");
            let price = dec("unit_price");
            let total = dec("total");
            let pay = s("payment_method");
            let cust = s("customer_id");
            let src = s("_source_file");
            let ing = ts("_ingested_at");
            for i in 0..b.num_rows() {
                rows.push(Row {
                    sale_id: sale_id.value(i).to_string(),
                    sold_at: sold_at.value(i),
                    store_id: store.value(i).to_string(),
                    product_id: product.value(i).to_string(),
                    quantity: qty.value(i),
                    unit_price: price.value(i),
                    total: total.value(i),
                    payment_method: pay.value(i).to_string(),
                    customer_id: (!cust.is_null(i)).then(|| cust.value(i).to_string()),
                    source_file: src.value(i).to_string(),
                    ingested_at: ing.value(i),
                });
            }
        }
    }
    rows
}

/// sale_id → how many times it is in the table.
pub fn counts(rows: &[Row]) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for r in rows {
        *m.entry(r.sale_id.clone()).or_insert(0) += 1;
    }
    m
}

/// Asserts every id in `expected` is present exactly once and nothing else is there.
pub fn assert_exactly_once(rows: &[Row], expected: &[String]) {
    let c = counts(rows);
    let dups: Vec<_> = c.iter().filter(|(_, n)| **n > 1).take(5).collect();
    assert!(dups.is_empty(), "duplicated rows: {dups:?}");
    let missing: Vec<_> = expected
        .iter()
        .filter(|id| !c.contains_key(*id))
        .take(5)
        .collect();
    assert!(missing.is_empty(), "missing rows: {missing:?}");
    assert_eq!(rows.len(), expected.len(), "unexpected extra rows");
}

pub fn ids(tag: &str, rows: usize) -> Vec<String> {
    (0..rows).map(|i| format!("{tag}-{i}")).collect()
}

/// Writes the state a crash right before (or right after) a commit of inbox file `name` leaves.
pub fn write_intent(d: &Dir, name: &str, txn: i64, rows: u64) {
    let path = d.inbox().join(name);
    let content = fs::read(&path).expect("inbox file");
    let intent = serde_json::json!({
        "format": "1",
        "intent": {
            "app_id": "deltadrop-sales",
            "txn": txn,
            "files": [{
                "name": name,
                "path": path,
                "size": content.len(),
                "hash": blake3::hash(&content).to_hex().to_string(),
                "rows": rows
            }]
        }
    });
    fs::create_dir_all(d.path(".deltadrop/sales")).expect("state dir");
    fs::write(d.path(".deltadrop/sales/intent.json"), intent.to_string()).expect("intent");
}

/// A row of a feed's quarantine table.
#[derive(Debug, Clone, PartialEq)]
pub struct QRow {
    pub feed: String,
    pub source_file: String,
    pub file_hash: String,
    pub line_number: i64,
    pub raw_line: Option<String>,
    pub column: Option<String>,
    pub error: String,
}

/// The quarantine table's rows, sorted by file and line.
pub fn read_quarantine(dir: &Path) -> Vec<QRow> {
    quarantine_rows_of(read_batches(dir))
}

pub fn read_quarantine_at(url: &url::Url, options: &HashMap<String, String>) -> Vec<QRow> {
    quarantine_rows_of(read_batches_at(url, options))
}

fn quarantine_rows_of(batches: Vec<deltalake::arrow::record_batch::RecordBatch>) -> Vec<QRow> {
    let mut out = Vec::new();
    for b in batches {
        let s = |name: &str| {
            b.column_by_name(name)
                .and_then(|c| c.as_any().downcast_ref::<StringArray>().cloned())
                .unwrap_or_else(|| panic!("string column {name}"))
        };
        let line = b
            .column_by_name("line_number")
            .and_then(|c| c.as_any().downcast_ref::<Int64Array>().cloned())
            .expect("line_number");
        let (feed, file, hash, raw, col, err) = (
            s("feed"),
            s("source_file"),
            s("file_hash"),
            s("raw_line"),
            s("column"),
            s("error"),
        );
        for i in 0..b.num_rows() {
            let opt = |a: &StringArray| (!a.is_null(i)).then(|| a.value(i).to_string());
            out.push(QRow {
                feed: feed.value(i).to_string(),
                source_file: file.value(i).to_string(),
                file_hash: hash.value(i).to_string(),
                line_number: line.value(i),
                raw_line: opt(&raw),
                column: opt(&col),
                error: err.value(i).to_string(),
            });
        }
    }
    out.sort_by(|a, b| (&a.source_file, a.line_number).cmp(&(&b.source_file, b.line_number)));
    out
}

/// Every committed batch of the table at `dir`, as stored.
pub fn read_batches(dir: &Path) -> Vec<deltalake::arrow::record_batch::RecordBatch> {
    match url::Url::from_directory_path(dir) {
        Ok(url) => read_batches_at(&url, &HashMap::new()),
        Err(_) => vec![],
    }
}

/// Reads every committed data file through the table's own object store, so local and cloud
/// tables are read the same way. No table yet: no batches.
pub fn read_batches_at(
    url: &url::Url,
    options: &HashMap<String, String>,
) -> Vec<deltalake::arrow::record_batch::RecordBatch> {
    let Some(t) = open_at(url, options) else {
        return vec![];
    };
    let rt = runtime();
    rt.block_on(async {
        let paths: Vec<String> = t
            .snapshot()
            .map(|s| s.log_data().iter().map(|f| f.path().to_string()).collect())
            .unwrap_or_default();
        let store = t.object_store();
        let mut out = Vec::new();
        for p in paths {
            let location = deltalake::Path::parse(&p).expect("data file path");
            let got = store
                .get(&location)
                .await
                .expect("parquet file of a committed Add exists");
            let bytes = got.bytes().await.expect("parquet bytes");
            let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
                .expect("parquet")
                .build()
                .expect("reader");
            out.extend(reader.map(|b| b.expect("batch")));
        }
        out
    })
}

/// Every row of a table as column → displayed value (None for null), in no particular order.
pub fn table_rows(dir: &Path) -> Vec<std::collections::BTreeMap<String, Option<String>>> {
    use deltalake::arrow::util::display::array_value_to_string;
    let mut out = Vec::new();
    for b in read_batches(dir) {
        for i in 0..b.num_rows() {
            let mut row = std::collections::BTreeMap::new();
            for (f, c) in b.schema().fields().iter().zip(b.columns()) {
                let v = (!c.is_null(i)).then(|| array_value_to_string(c, i).expect("display"));
                row.insert(f.name().clone(), v);
            }
            out.push(row);
        }
    }
    out
}

/// Rows keyed by the value of `key`.
pub fn rows_by(
    dir: &Path,
    key: &str,
) -> std::collections::BTreeMap<String, std::collections::BTreeMap<String, Option<String>>> {
    table_rows(dir)
        .into_iter()
        .map(|r| (r[key].clone().expect("key column has no nulls"), r))
        .collect()
}

/// Copies a file of tests/data into the inbox.
pub fn drop_fixture(d: &Dir, name: &str) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    fs::create_dir_all(d.inbox()).expect("inbox");
    fs::copy(&src, d.inbox().join(name)).expect("copy fixture");
}

/// The Delta schema of a table, as (name, arrow type) pairs.
pub fn table_schema(dir: &Path) -> Vec<(String, String)> {
    read_batches(dir)
        .first()
        .map(|b| {
            b.schema()
                .fields()
                .iter()
                .map(|f| (f.name().clone(), f.data_type().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// A tiny deterministic generator, so a failing random run can be replayed (no dependency for
/// this).
pub struct Lcg(pub u64);

impl Lcg {
    /// A number in `0..bound`.
    pub fn next(&mut self, bound: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % bound.max(1)
    }
}

/// `var` from the environment as a number, else `default`.
pub fn number_from_env(var: &str, default: u64) -> u64 {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
