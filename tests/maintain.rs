//! Table maintenance: `deltadrop maintain` and the daemon's own schedule. Compaction must keep
//! every row exactly as it was, mark its commit `dataChange = false`, and run beside ingestion.

mod util;

use std::fs;
use std::path::Path;

use util::*;

/// Parquet files on disk in a table folder (vacuum must have deleted the replaced ones).
fn parquet_on_disk(table: &Path) -> usize {
    fs::read_dir(table)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with(".parquet"))
                .count()
        })
        .unwrap_or(0)
}

fn sorted_rows(table: &Path) -> Vec<Row> {
    let mut rows = read_rows(table);
    rows.sort_by(|a, b| a.sale_id.cmp(&b.sale_id));
    rows
}

#[test]
fn maintain_after_2000_tiny_commits_compacts_and_keeps_every_row() {
    let d = Dir::with_feed("[http]\nenabled = false\n", "max_files_per_commit = 1\n");
    let mut expected = Vec::new();
    for i in 0..2000 {
        let tag = format!("m{i}");
        d.write_in_place(&format!("{tag}.csv"), sales_csv(&tag, 3).as_bytes());
        expected.extend(ids(&tag, 3));
    }
    d.run_once();
    assert_eq!(table_version(&d.table()), Some(2000));
    let before = sorted_rows(&d.table());
    assert_exactly_once(&before, &expected);
    assert_eq!(parquet_on_disk(&d.table()), 2000);

    let report = d.json(&[
        "maintain",
        "--config",
        "config.toml",
        "--compact-min-files",
        "2",
        "--vacuum-retention",
        "0s",
        "--json",
    ]);
    let main = &report[0];
    assert_eq!(main["files_before"], 2000, "{report:#}");
    assert_eq!(main["compacted"], 2000, "{report:#}");
    let after_files = main["files_after"].as_u64().unwrap();
    assert!((1..10).contains(&after_files), "{report:#}");
    assert_eq!(main["vacuumed"], 2000, "{report:#}");
    assert_eq!(parquet_on_disk(&d.table()), after_files as usize);

    // The same rows, value for value (lineage columns included).
    assert_eq!(sorted_rows(&d.table()), before);

    // The compaction commit replaces files without changing data: streaming readers skip it.
    let v = main["compaction_version"].as_u64().unwrap();
    let commit = fs::read_to_string(d.table().join(format!("_delta_log/{v:020}.json"))).unwrap();
    assert!(commit.contains("\"operation\":\"OPTIMIZE\""), "{commit}");
    for line in commit.lines() {
        let a: serde_json::Value = serde_json::from_str(line).unwrap();
        for kind in ["add", "remove"] {
            if let Some(x) = a.get(kind) {
                assert_eq!(x["dataChange"], false, "{line}");
            }
        }
    }

    // Ingestion goes on after it, and a second run has nothing to compact.
    d.drop_file("later.csv", &sales_csv("later", 4));
    d.run_once();
    expected.extend(ids("later", 4));
    assert_exactly_once(&read_rows(&d.table()), &expected);
    let again = d.json(&["maintain", "--config", "config.toml", "--json"]);
    assert!(again[0]["compaction_skipped"].is_string(), "{again:#}");
    assert_eq!(
        again[0]["vacuumed"], 0,
        "7-day retention deletes nothing new"
    );
}

#[test]
fn the_daemon_compacts_beside_ingestion_without_losing_a_row() {
    let d = Dir::with_feed(
        "[http]\nenabled = false\n",
        "max_files_per_commit = 1\nmaintenance_interval = \"300ms\"\ncompact_min_files = 5\n",
    );
    let mut daemon = d.spawn();
    daemon.wait_ready();
    let mut expected = Vec::new();
    // Files keep arriving while maintenance runs, so its commits race with ingestion's.
    for i in 0..120 {
        let tag = format!("c{i}");
        d.drop_file(&format!("{tag}.csv"), &sales_csv(&tag, 5));
        expected.extend(ids(&tag, 5));
        if i % 20 == 19 {
            let ok = wait_until(DEADLINE, || {
                daemon.assert_alive();
                daemon.log().matches("maintenance: table").count() > i / 20
            });
            assert!(ok, "no maintenance run\n{}", daemon.log());
        }
    }
    let rows = d.wait_for_rows(expected.len(), &mut daemon);
    assert_exactly_once(&rows, &expected);
    let log = daemon.log();
    assert!(log.contains("small file(s)"), "{log}");
    assert!(
        log.contains("compacted "),
        "a maintenance run compacted while files arrived\n{log}"
    );
    assert!(
        !log.lines()
            .any(|l| l.contains(" WARN ") && l.contains("maintenance")),
        "{log}"
    );
    assert!(daemon.terminate().success());
}
