//! Operating deltadrop: help output, `inspect`, `status` and the metrics endpoint against a
//! running daemon, JSON outputs parsed back, and the config reference kept in step with the
//! config structs.

use std::fs;

use crate::util::*;

#[test]
fn help_output_is_stable() {
    for args in [
        vec!["--help"],
        vec!["run", "--help"],
        vec!["init", "--help"],
        vec!["check", "--help"],
        vec!["sniff", "--help"],
        vec!["inspect", "--help"],
        vec!["status", "--help"],
        vec!["maintain", "--help"],
        vec!["requeue", "--help"],
    ] {
        let out = assert_cmd::Command::new(bin())
            .args(&args)
            .env("COLUMNS", "100")
            .assert()
            .success();
        let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
        let name = format!("help_{}", args[0].trim_start_matches('-'));
        insta::assert_snapshot!(name, text);
    }
}

/// A table with two loaded files, a rejected one and a quarantined row.
fn fixture() -> Dir {
    let d = Dir::new("");
    d.write_in_place("a.csv", sales_csv("a", 5).as_bytes());
    let mut b = sales_csv("b", 3);
    b.push_str("B9,2024-03-01T10:00:00Z,ST1,P1,1,oops,1.00,pix,C1\n");
    d.write_in_place("b.csv", b.as_bytes());
    d.write_in_place("bad.csv", b"no,header,we,know\n1,2,3,4\n");
    d.run_once();
    d
}

#[test]
fn inspect_reports_the_table_and_where_a_file_went() {
    let d = fixture();
    let j = d.json(&[
        "inspect",
        "--config",
        "config.toml",
        "--feed",
        "sales",
        "--json",
    ]);
    assert_eq!(j["rows"], 8, "{j:#}");
    assert!(j["version"].as_i64().unwrap() >= 1);
    assert!(j["data_files"].as_u64().unwrap() >= 1);
    assert_eq!(j["quarantine"]["rows"], 1);
    let names: Vec<String> = j["commits"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["files"].as_array().unwrap().clone())
        .map(|f| f["name"].as_str().unwrap().to_string())
        .collect();
    assert!(
        names.contains(&"a.csv".into()) && names.contains(&"b.csv".into()),
        "{names:?}"
    );
    let unit_price = j["schema"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "unit_price")
        .unwrap()
        .clone();
    assert_eq!(unit_price["type"], "Decimal128(12, 2)");

    // --file: the version that holds it, or why it was rejected.
    let j = d.inspect_file("b.csv");
    assert_eq!(j["file"]["loaded"][0]["rows"], 3, "{j:#}");
    let out = d
        .assert_cmd()
        .args(["inspect", "--config", "config.toml", "--file", "bad.csv"])
        .assert()
        .success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(text.contains("rejected:"), "{text}");
    assert!(
        text.contains("missing required column(s): sale_id"),
        "{text}"
    );
    assert!(text.contains("rows:     8"), "{text}");
}

#[test]
fn status_and_metrics_answer_while_the_daemon_runs() {
    let d = Dir::new("[http]\nlisten = \"127.0.0.1:0\"");
    let (mut daemon, addr) = d.spawn_with_status();
    d.drop_file("m1.csv", &sales_csv("m1", 4));
    let mut bad = sales_csv("m2", 2);
    bad.push_str("M9,2024-03-01T10:00:00Z,ST1,P1,1,x,1.00,pix,C1\n");
    d.drop_file("m2.csv", &bad);
    d.wait_for_rows(6, &mut daemon);
    let s = d.json(&["status", "--config", "config.toml", "--json"]);
    let f = &s["feeds"][0];
    assert_eq!(f["name"], "sales");
    assert_eq!(f["files_committed"], 2, "{s:#}");
    assert_eq!(f["rows_committed"], 6);
    assert_eq!(f["rows_quarantined"], 1);
    assert_eq!(f["backlog"], 0);
    assert!(f["last_commit_at"].is_string());
    assert!(s["uptime_seconds"].as_f64().unwrap() > 0.0);

    let get = |path: &str| http_get(&addr, path);
    let metrics = get("/metrics");
    assert!(
        metrics.contains("deltadrop_rows_ingested_total{feed=\"sales\"} 6"),
        "{metrics}"
    );
    assert!(
        metrics.contains("deltadrop_rows_quarantined_total{feed=\"sales\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("# TYPE deltadrop_commit_duration_seconds histogram"));
    assert!(
        metrics.contains("deltadrop_commit_duration_seconds_bucket{feed=\"sales\",le=\"+Inf\"}")
    );
    assert_eq!(get("/health"), "ok\n");
    let text = String::from_utf8_lossy(
        &d.assert_cmd()
            .args(["status", "--config", "config.toml"])
            .assert()
            .success()
            .get_output()
            .stdout,
    )
    .into_owned();
    assert!(text.contains("backlog:      0 file(s) waiting"), "{text}");

    assert!(daemon.terminate().success());
    let err = d.exits(&["status", "--config", "config.toml"], 1);
    assert!(err.contains("deltadrop is not running"), "{err}");
}

#[test]
fn json_logs_are_one_object_per_line() {
    let d = Dir::new("");
    d.write_in_place("j.csv", sales_csv("j", 2).as_bytes());
    let out = d
        .assert_cmd()
        .args([
            "--log-format",
            "json",
            "run",
            "--once",
            "--config",
            "config.toml",
        ])
        .env("RUST_LOG", "info")
        .timeout(DEADLINE)
        .assert()
        .success();
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    let lines: Vec<serde_json::Value> = err
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(lines
        .iter()
        .any(|l| l["msg"].as_str().unwrap().contains("committed version 1")));
    assert!(lines
        .iter()
        .all(|l| l["level"].is_string() && l["ts"].is_string()));
}

/// Every key the config structs accept is in config.toml.example and in README's reference.
/// The structs are asked through serde's own "unknown field" error, so a new key without
/// documentation fails here.
#[test]
fn the_config_reference_cannot_drift() {
    let example =
        fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config.toml.example")).unwrap();
    let readme = fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let d = Dir::empty();
    let probes = [
        "zzz = 1\n[[feed]]\nname = \"a\"\n",
        "[http]\nzzz = 1\n[[feed]]\nname = \"a\"\n",
        "[[feed]]\nname = \"a\"\nzzz = 1\n",
        "[[feed]]\nname = \"a\"\n[feed.csv]\nzzz = 1\n",
        "[[feed]]\nname = \"a\"\n[[feed.expect]]\ncolumn = \"sale_id\"\nzzz = 1\n",
        "[[feed]]\nname = \"a\"\ncolumns = [{name = \"x\", type = \"int64\", zzz = 1}]\n",
    ];
    let mut keys = Vec::new();
    for p in probes {
        d.write_config(p);
        let out = d
            .assert_cmd()
            .args(["check", "--config", "config.toml"])
            .assert()
            .code(2);
        let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
        let expected = err
            .split("expected")
            .nth(1)
            .unwrap_or_else(|| panic!("{err}"));
        let found: Vec<String> = expected
            .split('`')
            .skip(1)
            .step_by(2)
            .map(String::from)
            .collect();
        assert!(!found.is_empty(), "{err}");
        keys.extend(found);
    }
    assert!(keys.len() > 50, "{keys:?}");
    for k in keys {
        if ["feed", "csv", "expect", "http", "storage_options"].contains(&k.as_str()) {
            continue; // tables, documented by their keys
        }
        assert!(
            example.contains(&format!("{k} =")),
            "config.toml.example lacks `{k} =`"
        );
        assert!(
            readme.contains(&format!("`{k}`")),
            "README's reference lacks `{k}`"
        );
    }
}

/// The counters a reader shows, by name: files/rows committed, rows quarantined, files
/// rejected, duplicates, transient failures.
type Counts = [(&'static str, u64); 6];

fn counts_of_json(f: &serde_json::Value) -> Counts {
    let n = |k: &str| f[k].as_u64().unwrap_or_else(|| panic!("{k}: {f:#}"));
    [
        ("files_committed", n("files_committed")),
        ("rows_committed", n("rows_committed")),
        ("rows_quarantined", n("rows_quarantined")),
        ("files_rejected", n("files_rejected")),
        ("files_duplicate", n("files_duplicate")),
        ("transient_failures", n("transient_failures")),
    ]
}

fn counts_of_metrics(text: &str) -> Counts {
    let n = |metric: &str| -> u64 {
        let prefix = format!("{metric}{{feed=\"sales\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("{metric}\n{text}"))
    };
    [
        ("files_committed", n("deltadrop_files_ingested_total")),
        ("rows_committed", n("deltadrop_rows_ingested_total")),
        ("rows_quarantined", n("deltadrop_rows_quarantined_total")),
        ("files_rejected", n("deltadrop_files_rejected_total")),
        ("files_duplicate", n("deltadrop_files_duplicate_total")),
        (
            "transient_failures",
            n("deltadrop_transient_failures_total"),
        ),
    ]
}

/// The stop line: "stopped: F file(s) / R rows committed, Q rows quarantined, J file(s)
/// rejected, D duplicate(s)" (it has no transient failures).
fn stop_line(log: &str) -> [u64; 5] {
    let line = log
        .lines()
        .rev()
        .find_map(|l| l.split_once("stopped: ").map(|(_, rest)| rest))
        .unwrap_or_else(|| panic!("no stop line\n{log}"));
    let numbers: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    numbers.try_into().unwrap_or_else(|_| panic!("{line}"))
}

/// One set of counters: a mix of outcomes — good files, a file with a bad row, a rejected file,
/// a duplicate, a file that changes while it is read — and every reader (/metrics, /status,
/// `status --json`, the stop line) reports the same numbers.
#[test]
fn every_reader_reports_the_same_counts() {
    use std::io::Write;
    let d = Dir::new("[http]\nlisten = \"127.0.0.1:0\"");
    let (mut daemon, addr) = d.spawn_with_status();
    let good = sales_csv("g1", 3);
    d.drop_file("g1.csv", &good);
    d.drop_file("g2.csv", &sales_csv("g2", 2));
    let mut bad = sales_csv("b", 2);
    bad.push_str("B9,2024-03-01T10:00:00Z,ST1,P1,1,oops,1.00,pix,C1\n");
    d.drop_file("bad-rows.csv", &bad);
    d.drop_file("rejected.csv", "no,header,we,know\n1,2,3,4\n");
    d.wait_for_rows(7, &mut daemon);
    d.drop_file("dup.csv", &good);
    // A large file a writer goes on appending to while the daemon reads it: it is taken again
    // once the writer stops.
    let growing = d.inbox().join("growing.csv");
    let mut rows = 60_000;
    fs::write(&growing, sales_csv("big", rows)).unwrap();
    let more = sales_csv("more", 100_000);
    let mut extra = more.lines().skip(1);
    let mut f = fs::OpenOptions::new().append(true).open(&growing).unwrap();
    let changed = wait_until(DEADLINE, || {
        writeln!(f, "{}", extra.next().unwrap()).unwrap();
        rows += 1;
        daemon
            .log()
            .contains("growing.csv changed while it was read")
    });
    drop(f);
    assert!(changed, "{}", daemon.log());
    d.wait_for_rows(7 + rows, &mut daemon);
    assert!(wait_until(DEADLINE, || d.inbox_files().is_empty()));

    let get = |path: &str| http_get(&addr, path);
    let metrics = counts_of_metrics(&get("/metrics"));
    let http: serde_json::Value = serde_json::from_str(&get("/status")).unwrap();
    let http = counts_of_json(&http["feeds"][0]);
    let cli = d.json(&["status", "--config", "config.toml", "--json"]);
    let cli = counts_of_json(&cli["feeds"][0]);
    assert_eq!(metrics, http);
    assert_eq!(metrics, cli);
    let expected = [
        ("files_committed", 4),
        ("rows_committed", 7 + rows as u64),
        ("rows_quarantined", 1),
        ("files_rejected", 1),
        ("files_duplicate", 1),
    ];
    assert_eq!(&metrics[..5], &expected[..], "{metrics:?}");
    assert!(
        metrics[5].1 >= 1,
        "the growing file was retried: {metrics:?}"
    );

    assert!(daemon.terminate().success());
    let stopped = stop_line(&daemon.log());
    assert_eq!(
        stopped.to_vec(),
        metrics[..5].iter().map(|c| c.1).collect::<Vec<_>>()
    );
}

/// The `run --once` progress bar (drawn on a terminal: run under `script`) counts what the stop
/// line counts.
#[test]
fn the_progress_bar_counts_what_the_stop_line_counts() {
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: no `script` to give deltadrop a terminal");
        return;
    }
    let d = Dir::new("");
    let good = sales_csv("g", 4);
    d.write_in_place("a.csv", good.as_bytes());
    d.write_in_place("b.csv", good.as_bytes());
    let mut bad = sales_csv("b", 2);
    bad.push_str("B9,2024-03-01T10:00:00Z,ST1,P1,1,oops,1.00,pix,C1\n");
    d.write_in_place("c.csv", bad.as_bytes());
    d.write_in_place("d.csv", b"no,header,we,know\n1,2,3,4\n");
    let cmd = format!("{} run --once --config config.toml", bin().display());
    let out = std::process::Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .current_dir(&d.root)
        .env("COLUMNS", "120")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    // The bar's last drawing: "P/L files  R rows ...".
    let (done, total, rows) = text
        .split(['\r', '\n', '\u{1b}'])
        .rev()
        .find_map(|s| {
            let (before, after) = s.split_once(" files")?;
            let (pos, len) = before.split_whitespace().last()?.split_once('/')?;
            let rows = after.trim().split_once(" rows")?.0;
            Some((
                pos.parse::<u64>().ok()?,
                len.parse::<u64>().ok()?,
                rows.parse::<u64>().ok()?,
            ))
        })
        .unwrap_or_else(|| panic!("no progress bar\n{text}"));
    let [files, committed_rows, _, rejected, duplicates] = stop_line(&text);
    assert_eq!((done, total), (4, 4), "{text}");
    assert_eq!(done, files + rejected + duplicates, "{text}");
    assert_eq!((files, rejected, duplicates), (2, 1, 1), "{text}");
    assert_eq!(rows, committed_rows, "{text}");
    assert_eq!(rows, 6);
}
