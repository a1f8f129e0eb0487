//! Table maintenance: `deltadrop maintain` and the daemon's own schedule. Compaction must keep
//! every row exactly as it was, mark its commit `dataChange = false`, and run beside ingestion.

use std::fs;
use std::path::Path;

use crate::util::*;

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

/// `deltadrop maintain` compacting from two small files on and vacuuming at once (nothing
/// else reads these tables); its JSON report.
fn compact_everything_now(d: &Dir) -> serde_json::Value {
    d.json(&[
        "maintain",
        "--config",
        "config.toml",
        "--compact-min-files",
        "2",
        "--vacuum-retention",
        "0s",
        "--json",
    ])
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
    // 2,000 commits: ~30 s alone here, more beside the other tests on a loaded machine (it
    // once ran past the 60 s DEADLINE at 984 commits).
    d.run_once_within(5 * DEADLINE);
    assert_eq!(table_version(&d.table()), Some(2000));
    let before = sorted_rows(&d.table());
    assert_exactly_once(&before, &expected);
    assert_eq!(parquet_on_disk(&d.table()), 2000);

    let report = compact_everything_now(&d);
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

/// `partition_by = "date(sold_at)"`: rows land under one folder per UTC date, each data file's
/// partition value matches its rows, and compaction bins within a partition, never across.
#[test]
fn a_table_partitioned_by_date_lands_in_date_folders_and_compacts_per_partition() {
    let d = Dir::with_feed(
        "[http]\nenabled = false\n",
        "partition_by = \"date(sold_at)\"\nmax_files_per_commit = 1\n",
    );
    let mut expected = Vec::new();
    for i in 0..30 {
        let tag = format!("p{i}");
        // Three rows a file: sold on March 1st, 2nd and 3rd (see sales_csv).
        d.write_in_place(&format!("{tag}.csv"), sales_csv(&tag, 3).as_bytes());
        expected.extend(ids(&tag, 3));
    }
    d.run_once();
    let before = sorted_rows(&d.table());
    assert_exactly_once(&before, &expected);
    let days = ["2024-03-01", "2024-03-02", "2024-03-03"];
    for day in days {
        let dir = d.table().join(format!("sold_at_date={day}"));
        assert_eq!(parquet_on_disk(&dir), 30, "{}", dir.display());
    }
    let check_partitions = || {
        let t = open_at(
            &url::Url::from_directory_path(d.table()).unwrap(),
            &Default::default(),
        )
        .unwrap();
        let snapshot = t.snapshot().unwrap();
        assert_eq!(snapshot.metadata().partition_columns(), &["sold_at_date"]);
        let mut n = 0;
        for f in snapshot.log_data().iter() {
            let day = f.partition_values_map()["sold_at_date"].clone().unwrap();
            let path = d.table().join(f.path().as_ref());
            for r in rows_of_file(&path) {
                let date = chrono::DateTime::from_timestamp_micros(r)
                    .unwrap()
                    .format("%Y-%m-%d")
                    .to_string();
                assert_eq!(date, day, "{}", path.display());
                n += 1;
            }
        }
        n
    };
    assert_eq!(check_partitions(), 90);

    let report = compact_everything_now(&d);
    assert_eq!(report[0]["compacted"], 90, "{report:#}");
    assert_eq!(report[0]["files_after"], 3, "one file per date\n{report:#}");
    for day in days {
        let dir = d.table().join(format!("sold_at_date={day}"));
        assert_eq!(parquet_on_disk(&dir), 1, "{}", dir.display());
    }
    assert_eq!(sorted_rows(&d.table()), before);
    assert_eq!(check_partitions(), 90);
}

/// The sold_at values (microseconds) of one Parquet file.
fn rows_of_file(path: &Path) -> Vec<i64> {
    use deltalake::arrow::array::TimestampMicrosecondArray;
    use deltalake::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let file = fs::File::open(path).unwrap();
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    let mut out = Vec::new();
    for b in reader {
        let b = b.unwrap();
        let c = b
            .column_by_name("sold_at")
            .unwrap()
            .as_any()
            .downcast_ref::<TimestampMicrosecondArray>()
            .unwrap()
            .clone();
        out.extend(c.values().iter().copied());
    }
    out
}
