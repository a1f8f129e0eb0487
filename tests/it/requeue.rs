//! `deltadrop requeue`: quarantined rows back into the table under a fixed config, exactly
//! once — a dry run commits nothing, a second requeue changes nothing, a requeue killed between
//! its two commits is finished once, and it refuses to run beside the daemon.

use std::fs;

use crate::util::*;

fn v(s: &str) -> Option<String> {
    Some(s.to_string())
}

fn requeue_dir() -> Dir {
    Dir::with_feed(
        "",
        "columns = [{name = \"id\", type = \"int64\"}, {name = \"amount\", type = \"decimal(12,2)\"}]",
    )
}

fn fix_decimal_comma(d: &Dir) {
    let cfg = fs::read_to_string(d.path("config.toml")).unwrap();
    d.write_config(&cfg.replace(
        "[[feed]]\n",
        "[[feed]]\ndecimal_separator = \",\"\nthousands_separator = \"\"\n",
    ));
}

fn amounts(d: &Dir) -> Vec<(String, Option<String>)> {
    let mut rows: Vec<_> = table_rows(&d.table())
        .into_iter()
        .map(|r| (r["id"].clone().unwrap(), r["amount"].clone()))
        .collect();
    rows.sort();
    rows
}

#[test]
fn requeue_loads_rows_that_pass_now_exactly_once() {
    let d = requeue_dir();
    d.write_in_place("m.csv", b"id,amount\n1,\"1,50\"\n2,\"2,25\"\n3,3\n4,oops\n");
    d.run_once();
    let qdir = d.path("lake/_quarantine/sales");
    assert_eq!(read_quarantine(&qdir).len(), 3);
    assert_eq!(amounts(&d).len(), 1);

    fix_decimal_comma(&d);
    let dry = d.json(&["requeue", "--config", "config.toml", "--dry-run", "--json"]);
    assert_eq!(dry[0]["passed"], 2, "{dry:#}");
    assert_eq!(read_quarantine(&qdir).len(), 3, "a dry run commits nothing");

    let r = d.json(&["requeue", "--config", "config.toml", "--json"]);
    assert_eq!(
        (r[0]["passed"].as_u64(), r[0]["still_failing"].as_u64()),
        (Some(2), Some(1)),
        "{r:#}"
    );
    assert_eq!(
        amounts(&d),
        [
            ("1".to_string(), v("1.50")),
            ("2".into(), v("2.25")),
            ("3".into(), v("3.00"))
        ]
    );
    let q = read_quarantine(&qdir);
    assert_eq!(q.len(), 1);
    assert_eq!(q[0].line_number, 5);
    assert!(
        q[0].error.contains("'oops' is not a decimal"),
        "{}",
        q[0].error
    );
    let rows = table_rows(&d.table());
    assert!(rows.iter().all(|r| r["_source_file"] == v("m.csv")));

    // A second requeue changes nothing.
    let version = table_version(&d.table());
    let r = d.json(&["requeue", "--config", "config.toml", "--json"]);
    assert_eq!(r[0]["passed"], 0);
    assert!(r[0]["table_version"].is_null(), "{r:#}");
    assert_eq!(table_version(&d.table()), version);
}

/// kill -9 between the requeue's two commits: the next requeue finishes the quarantine half;
/// no row is in both tables, none is lost.
#[test]
fn a_requeue_interrupted_between_its_commits_is_finished_once() {
    for point in ["requeue_after_intent", "requeue_after_table"] {
        let d = requeue_dir();
        d.write_in_place("m.csv", b"id,amount\n1,\"1,50\"\n2,\"2,25\"\n");
        d.run_once();
        fix_decimal_comma(&d);
        d.assert_cmd()
            .args(["requeue", "--config", "config.toml"])
            .env("DELTADROP_CRASH_AT", point)
            .timeout(DEADLINE)
            .assert()
            .failure();
        // The daemon's start finishes it too; here the next requeue does.
        let r = d.json(&["requeue", "--config", "config.toml", "--json"]);
        assert!(
            r[0]["finished_earlier"]
                .as_str()
                .unwrap_or("")
                .contains("requeue txn 1"),
            "{point}: {r:#}"
        );
        assert_eq!(amounts(&d).len(), 2, "{point}");
        assert!(
            read_quarantine(&d.path("lake/_quarantine/sales")).is_empty(),
            "{point}"
        );
        let r = d.json(&["requeue", "--config", "config.toml", "--json"]);
        assert_eq!(r[0]["passed"], 0, "{point}: {r:#}");
        assert_eq!(amounts(&d).len(), 2, "{point}");
    }
}

#[test]
fn requeue_refuses_to_run_beside_the_daemon() {
    let d = requeue_dir();
    let mut daemon = d.spawn();
    daemon.wait_ready();
    let out = d
        .assert_cmd()
        .args(["requeue", "--config", "config.toml"])
        .assert()
        // A runtime condition, as for a second daemon on the same state: exit 1, not usage.
        .code(1);
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(err.contains("stop it first"), "{err}");
}

#[test]
fn requeue_reads_quarantined_json_lines_again_by_their_own_names() {
    let d = Dir::with_feed(
        "",
        "format = \"auto\"\ncolumns = [{name = \"id\", type = \"int64\"}, {name = \"amount\", type = \"decimal(12,2)\"}]",
    );
    d.write_in_place(
        "m.jsonl",
        b"{\"amount\": \"1,50\", \"id\": 1}\n{\"id\": 2, \"amount\": 3}\n{\"id\": 4, \"amount\": \"oops\"}\n",
    );
    d.run_once();
    let qdir = d.path("lake/_quarantine/sales");
    assert_eq!(read_quarantine(&qdir).len(), 2);
    fix_decimal_comma(&d);
    let r = d.json(&["requeue", "--config", "config.toml", "--json"]);
    assert_eq!(
        (r[0]["passed"].as_u64(), r[0]["still_failing"].as_u64()),
        (Some(1), Some(1)),
        "{r:#}"
    );
    assert_eq!(
        amounts(&d),
        [("1".to_string(), v("1.50")), ("2".into(), v("3.00"))]
    );
    let q = read_quarantine(&qdir);
    assert_eq!(q.len(), 1);
    assert_eq!(q[0].line_number, 3, "its line in the original file: {q:?}");
}

#[test]
fn requeue_reads_quarantined_sheet_rows_again_with_the_workbook_s_header() {
    let d = Dir::with_feed(
        "",
        r#"format = "auto"
header_match = "insensitive"
columns = [
  { name = "codigo", type = "string", nullable = false },
  { name = "data", type = "date" },
  { name = "hora_da_venda", type = "timestamp" },
  { name = "valores_unitario", type = "decimal(12,2)" },
  { name = "valores_total", type = "decimal(12,2)" },
  { name = "loja", type = "string" },
]"#,
    );
    drop_fixture(&d, "vendas.xlsx");
    d.run_once();
    let qdir = d.path("lake/_quarantine/sales");
    assert_eq!(read_quarantine(&qdir).len(), 2);
    fix_decimal_comma(&d);
    let r = d.json(&["requeue", "--config", "config.toml", "--json"]);
    assert_eq!(
        (r[0]["passed"].as_u64(), r[0]["still_failing"].as_u64()),
        (Some(1), Some(1)),
        "{r:#}"
    );
    let rows = rows_by(&d.table(), "codigo");
    assert_eq!(rows["0005"]["valores_unitario"], v("12.50"));
    assert_eq!(rows["0005"]["valores_total"], v("25.00"));
    assert_eq!(rows["0005"]["data"], v("2026-12-04"));
    assert_eq!(rows["0005"]["_source_file"], v("vendas.xlsx"));
    let q = read_quarantine(&qdir);
    assert_eq!(q.len(), 1);
    assert_eq!(q[0].line_number, 8, "its sheet row: {q:?}");
}
