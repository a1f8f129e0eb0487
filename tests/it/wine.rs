//! deltadrop.exe under Wine: the Windows build, cross-compiled here, run on the same cases as on
//! Linux, its tables read back on Linux with the `deltalake` crate. Driven by
//! `scripts/windows/wine-check.sh`, which builds the exe and the `hold_open.exe` helper,
//! prepares a Wine prefix and keeps a wineserver up, and sets WINE, DELTADROP_EXE and
//! HOLD_OPEN_EXE for these tests.
//!
//! What Wine cannot show is said in README's Windows section (a real Windows machine, MSVC
//! builds, SMB shares, UNC paths).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::util::*;

fn env_path(var: &str) -> PathBuf {
    PathBuf::from(
        std::env::var_os(var)
            .unwrap_or_else(|| panic!("{var} is not set: run scripts/windows/wine-check.sh")),
    )
}

/// `wine deltadrop.exe ARGS` (or another Windows program) in `dir`.
fn wine(dir: &Path, exe: &Path) -> Command {
    let mut c = Command::new(env_path("WINE"));
    c.arg(exe)
        .current_dir(dir)
        .env("WINEDEBUG", "-all")
        .env("RUST_LOG", "info");
    c
}

fn deltadrop(dir: &Path, args: &[&str]) -> Output {
    let out = wine(dir, &env_path("DELTADROP_EXE"))
        .args(args)
        .output()
        .expect("run wine");
    out
}

fn ok(out: &Output) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "exit {:?}:\n{text}", out.status);
    text
}

/// How Windows names a path of this machine under Wine (drive Z: is /).
fn win(p: &Path) -> String {
    format!("Z:{}", p.display()).replace('/', "\\")
}

/// pt-BR sales files as a Brazilian ERP writes them (scripts/gen-sales.sh); their sale ids.
fn gen_ptbr(dir: &Path, files: usize, rows: usize, seed: u32) -> Vec<String> {
    let out = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/gen-sales.sh"))
        .args(["-n", &files.to_string(), "-r", &rows.to_string()])
        .args(["-s", &seed.to_string(), "--locale", "pt-BR", "-o"])
        .arg(dir)
        .output()
        .expect("gen-sales.sh");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut ids = Vec::new();
    for f in list_names(dir) {
        let text = fs::read_to_string(dir.join(&f)).unwrap();
        ids.extend(
            text.lines()
                .skip(1)
                .filter_map(|l| l.split(';').next().map(str::to_string)),
        );
    }
    ids
}

/// A site whose config names every folder with Windows paths, in single-quoted TOML strings
/// (backslashes kept as they are), Brazilian exports.
fn site(extra: &str) -> Dir {
    let d = Dir::empty();
    let p = |rel: &str| win(&d.path(rel));
    d.write_config(&format!(
        "poll_interval = \"1s\"\nsettle = \"300ms\"\nworkers = 2\n\
         state_dir = '{}'\n\
         [[feed]]\nname = \"vendas\"\ninbox = '{}'\ntable = '{}'\nprocessed = '{}'\n\
         rejected = '{}'\nlocale = \"pt-BR\"\n{extra}\n",
        p(".deltadrop"),
        p("inbox"),
        p("lake\\vendas"),
        p("processed"),
        p("rejected"),
    ));
    fs::create_dir_all(d.path("inbox")).unwrap();
    d
}

fn rows_of(d: &Dir) -> Vec<Row> {
    read_rows(&d.path("lake/vendas"))
}

#[test]
#[ignore = "needs Wine: scripts/windows/wine-check.sh"]
fn init_check_once_and_inspect_under_wine() {
    // init: a config and its folders, with Windows paths.
    let d = Dir::empty();
    let text = ok(&deltadrop(&d.root, &["init", "site"]));
    assert!(text.contains("Z:\\"), "{text}");
    for p in [
        "site/config.toml",
        "site/inbox",
        "site/processed",
        "site/rejected",
    ] {
        assert!(d.path(p).exists(), "init did not create {p}");
    }

    let d = site("[http]\nenabled = false");
    let text = ok(&deltadrop(&d.root, &["check", "--config", "config.toml"]));
    assert!(
        text.contains("opened without write sharing"),
        "check must say how readiness works on Windows:\n{text}"
    );
    let ids = gen_ptbr(&d.path("inbox"), 3, 200, 11);
    let text = ok(&deltadrop(
        &d.root,
        &["run", "--once", "--config", "config.toml"],
    ));
    assert!(
        text.contains("stopped: 3 file(s) / 600 rows committed"),
        "{text}"
    );
    assert_exactly_once(&rows_of(&d), &ids);
    assert_eq!(list_names(&d.path("processed")).len(), 3);
    assert!(waiting_in(&d.path("inbox")).is_empty());
    // Decimal commas with thousands dots, dd/MM/yyyy times: read as the values they are.
    let r = rows_of(&d);
    assert!(
        r.iter().all(|r| r.unit_price > 0 && r.sold_at > 0),
        "{:?}",
        &r[..2]
    );

    let out = ok(&deltadrop(
        &d.root,
        &["inspect", "--config", "config.toml", "--json"],
    ));
    let json_start = out.find(['[', '{']).expect("inspect --json prints JSON");
    let v: serde_json::Value = serde_json::Deserializer::from_str(&out[json_start..])
        .into_iter()
        .next()
        .unwrap()
        .unwrap();
    let t = &v[0];
    assert_eq!(t["rows"], 600, "{v:#}");
    let first_version = t["version"].as_u64().unwrap_or(0);
    // One commit per file or one for all three, depending on how the workers overlap.
    assert!((1..=3).contains(&first_version), "{v:#}");

    // The same names again with other rows: loaded, and archived beside the first ones under
    // free names (nothing in processed/ is replaced).
    let again = gen_ptbr(&d.path("again"), 3, 200, 21);
    for (new, old) in list_names(&d.path("again"))
        .iter()
        .zip(list_names(&d.path("processed")))
    {
        fs::copy(d.path("again").join(new), d.path("inbox").join(old)).unwrap();
    }
    ok(&deltadrop(
        &d.root,
        &["run", "--once", "--config", "config.toml"],
    ));
    assert_exactly_once(&rows_of(&d), &[ids, again].concat());
    assert_eq!(list_names(&d.path("processed")).len(), 6);
    eprintln!(
        "wine: init, check, run --once (3 pt-BR files, 600 rows, Windows paths), inspect, the same names again archived under free names: OK"
    );
}

/// The running daemon under Wine, with pid, log and how it ended.
struct WineDaemon {
    child: Child,
    log: PathBuf,
}

impl WineDaemon {
    fn start(d: &Dir) -> WineDaemon {
        let log = d.path("daemon.log");
        let child = wine(&d.root, &env_path("DELTADROP_EXE"))
            .args(["run", "--config", "config.toml"])
            .env(
                "RUST_LOG",
                "debug,deltalake=info,hyper=info,object_store=info",
            )
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).unwrap())
            .spawn()
            .expect("wine");
        let w = WineDaemon { child, log };
        w.wait_log("watching");
        w
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_log(&self, what: &str) {
        assert!(
            wait_until(DEADLINE, || self.log().contains(what)),
            "never logged {what:?}:\n{}",
            self.log()
        );
    }

    /// Ctrl-C (Wine turns SIGINT into a console Ctrl-C for the Windows process).
    fn interrupt(mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let mut status = None;
        let done = wait_until(DEADLINE, || {
            status = self.child.try_wait().ok().flatten();
            status.is_some()
        });
        assert!(done, "did not stop on Ctrl-C:\n{}", self.log());
        status.unwrap()
    }
}

impl Drop for WineDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
#[ignore = "needs Wine: scripts/windows/wine-check.sh"]
fn the_daemon_under_wine_takes_files_waits_for_writers_and_stops_on_ctrl_c() {
    // No poll within the test: a renamed-in file can only be found by its event.
    let d = site("[http]\nenabled = false");
    let cfg = fs::read_to_string(d.path("config.toml")).unwrap();
    d.write_config(&cfg.replace("poll_interval = \"1s\"", "poll_interval = \"1h\""));
    let gen = d.path("gen");
    let ids = gen_ptbr(&gen, 6, 300, 12);
    let files = list_names(&gen);
    let daemon = WineDaemon::start(&d);

    // A second daemon on the same state folder is refused while this one runs.
    let second = deltadrop(&d.root, &["run", "--once", "--config", "config.toml"]);
    let text = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(1), "{text}");
    assert!(text.contains("lock"), "{text}");

    // Renamed in (as scripts/drop.sh does): taken on its event, not by the poll.
    let mut latencies = Vec::new();
    for (i, f) in files[..4].iter().enumerate() {
        let tmp = d.path(&format!("inbox/.{f}.tmp"));
        fs::copy(gen.join(f), &tmp).unwrap();
        let t = Instant::now();
        fs::rename(&tmp, d.path(&format!("inbox/{f}"))).unwrap();
        assert!(
            wait_until(DEADLINE, || rows_of(&d).len() >= 300 * (i + 1)),
            "{f} not committed:\n{}",
            daemon.log()
        );
        latencies.push(t.elapsed());
    }

    // A Windows writer holding its file open with a pause, far longer than settle: waited for.
    let held = &files[4];
    let mut writer = wine(&d.root, &env_path("HOLD_OPEN_EXE"))
        .args([
            win(&d.path(&format!("inbox/{held}"))),
            win(&gen.join(held)),
            "4000".to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("hold_open.exe");
    daemon.wait_log(&format!("{held} is open for writing by another process"));
    assert_eq!(rows_of(&d).len(), 1200, "taken while its writer held it");
    assert!(writer.wait().unwrap().success());
    assert!(
        wait_until(DEADLINE, || rows_of(&d).len() >= 1500),
        "{}",
        daemon.log()
    );

    // Ctrl-C while a file is read: in-flight work finishes, exit 0; the file is committed or
    // still whole in the inbox, for the next run.
    let last = &files[5];
    fs::copy(gen.join(last), d.path(&format!("inbox/{last}"))).unwrap();
    daemon.wait_log(&format!("reading {last}"));
    let log_path = daemon.log.clone();
    let status = daemon.interrupt();
    let log = fs::read_to_string(log_path).unwrap();
    assert!(status.success(), "exit {status:?}\n{log}");
    assert!(log.contains("stopped:"), "{log}");
    ok(&deltadrop(
        &d.root,
        &["run", "--once", "--config", "config.toml"],
    ));
    assert!(waiting_in(&d.path("inbox")).is_empty());
    assert_exactly_once(&rows_of(&d), &ids);
    latencies.sort();
    eprintln!(
        "wine: daemon: renamed-in file committed in {:?} (median of {}; max {:?}), a second instance refused, a writer holding its file for 4 s waited for, Ctrl-C stop exit 0: OK",
        latencies[latencies.len() / 2],
        latencies.len(),
        latencies[latencies.len() - 1]
    );
}

#[test]
#[ignore = "needs Wine: scripts/windows/wine-check.sh"]
fn the_windows_service_installs_starts_stops_and_uninstalls_under_wine() {
    let d = site("[http]\nenabled = false");
    let name = format!("deltadrop-test-{}", std::process::id());
    ok(&deltadrop(
        &d.root,
        &[
            "service",
            "install",
            "--config",
            "config.toml",
            "--name",
            &name,
        ],
    ));
    let sc = |args: &[&str]| {
        wine(&d.root, Path::new("sc"))
            .args(args)
            .output()
            .expect("sc")
    };
    let log = d.path("deltadrop.log");
    let read_log = || fs::read_to_string(&log).unwrap_or_default();
    ok(&sc(&["start", &name]));
    assert!(
        wait_until(DEADLINE, || read_log().contains("watching")),
        "the service did not start:\n{}",
        read_log()
    );
    let running = wait_until(DEADLINE, || {
        String::from_utf8_lossy(&sc(&["query", &name]).stdout).contains("RUNNING")
    });
    assert!(running, "not reported RUNNING once watching");
    let ids = gen_ptbr(&d.path("gen"), 1, 100, 13);
    let f = &list_names(&d.path("gen"))[0];
    fs::copy(d.path("gen").join(f), d.path("inbox/.x.tmp")).unwrap();
    fs::rename(d.path("inbox/.x.tmp"), d.path(&format!("inbox/{f}"))).unwrap();
    assert!(
        wait_until(DEADLINE, || rows_of(&d).len() >= 100),
        "{}",
        read_log()
    );
    ok(&sc(&["stop", &name]));
    assert!(
        wait_until(DEADLINE, || read_log().contains("stopped:")),
        "{}",
        read_log()
    );
    let stopped = wait_until(DEADLINE, || {
        String::from_utf8_lossy(&sc(&["query", &name]).stdout).contains("STOPPED")
    });
    assert!(stopped, "not reported STOPPED");
    ok(&deltadrop(
        &d.root,
        &["service", "uninstall", "--name", &name],
    ));
    let gone = String::from_utf8_lossy(&sc(&["query", &name]).stdout).into_owned();
    assert!(
        !gone.contains("RUNNING") && !gone.contains("STOPPED"),
        "{gone}"
    );
    assert_exactly_once(&rows_of(&d), &ids);
    let log = read_log();
    assert!(log.contains("service stop requested"), "{log}");
    eprintln!("wine: service install, sc start (RUNNING once watching), a file loaded, sc stop (in-flight finished, STOPPED), uninstall: OK");
}

#[test]
#[ignore = "needs Wine: scripts/windows/wine-check.sh (WINE_FILES files, default 1000)"]
fn once_on_many_files_under_wine() {
    let n = number_from_env("WINE_FILES", 1000) as usize;
    let d = site("[http]\nenabled = false");
    let ids = gen_ptbr(&d.path("inbox"), n, 100, 14);
    let t = Instant::now();
    let text = ok(&deltadrop(
        &d.root,
        &["run", "--once", "--config", "config.toml"],
    ));
    let took = t.elapsed();
    assert!(
        text.contains(&format!(
            "stopped: {n} file(s) / {} rows committed",
            n * 100
        )),
        "{text}"
    );
    assert_exactly_once(&rows_of(&d), &ids);
    eprintln!(
        "wine: run --once on {n} files × 100 rows: {:.1} s ({:.0} files/s), every row once",
        took.as_secs_f64(),
        n as f64
            / took
                .as_secs_f64()
                .max(Duration::from_millis(1).as_secs_f64())
    );
}
