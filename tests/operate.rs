//! Operating deltadrop: help output, `inspect`, `status` and the metrics endpoint against a
//! running daemon, JSON outputs parsed back, and the config reference kept in step with the
//! config structs.

mod util;

use std::fs;

use util::*;

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
    let j = d.json(&[
        "inspect",
        "--config",
        "config.toml",
        "--feed",
        "sales",
        "--file",
        "b.csv",
        "--json",
    ]);
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
    let mut daemon = d.spawn();
    let addr_file = d.path(".deltadrop/http.addr");
    assert!(
        wait_until(DEADLINE, || addr_file.exists()),
        "{}",
        daemon.log()
    );
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

    let addr = fs::read_to_string(&addr_file).unwrap();
    let get = |path: &str| -> String {
        ureq::get(&format!("http://{}{path}", addr.trim()))
            .call()
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap()
    };
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
    let out = d
        .assert_cmd()
        .args(["status", "--config", "config.toml"])
        .assert()
        .code(1);
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
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
