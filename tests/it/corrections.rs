//! Corrections: a file whose name was loaded before, sent again with other content
//! (`on_resend`). The same content again stays a duplicate whatever the policy.

use std::fs;

use crate::util::*;

const DAY: &str = "sales-2026-11-30.csv";

fn versions_of(d: &Dir, name: &str) -> Vec<i64> {
    let report = d.inspect_file(name);
    report["file"]["loaded"]
        .as_array()
        .expect("loaded versions")
        .iter()
        .map(|l| l["version"].as_i64().expect("version"))
        .collect()
}

#[test]
fn a_resent_name_is_loaded_again_with_a_warning_naming_the_earlier_version() {
    let d = Dir::new("");
    d.drop_file(DAY, &sales_csv("a", 5));
    d.run_once();
    d.drop_file(DAY, &sales_csv("b", 5));
    let log = d.run_once();
    assert!(
        log.contains(&format!(
            "{DAY} was loaded before with other content (5 rows in version 1)"
        )),
        "{log}"
    );
    assert_eq!(d.rows().len(), 10);
    assert_eq!(versions_of(&d, DAY), vec![1, 2]);
}

#[test]
fn reject_refuses_a_resent_name_but_a_same_content_resend_stays_a_duplicate() {
    let d = Dir::with_feed("", "on_resend = \"reject\"");
    let first = sales_csv("a", 5);
    d.drop_file(DAY, &first);
    d.run_once();

    d.drop_file(DAY, &sales_csv("b", 5));
    d.run_once();
    let why = fs::read_to_string(d.path(&format!("rejected/{DAY}.error.txt"))).expect("reason");
    assert!(
        why.contains("loaded before with other content (5 rows in version 1")
            && why.contains("on_resend"),
        "{why}"
    );
    assert!(d.path(&format!("rejected/{DAY}")).exists());
    assert_eq!(d.rows().len(), 5);
    assert!(d.rows().iter().all(|r| r.sale_id.starts_with("a-")));

    // The content already loaded, under its own name: archived as a duplicate, not rejected.
    d.drop_file(DAY, &first);
    let log = d.run_once();
    assert!(log.contains("has the same content as"), "{log}");
    assert_eq!(d.rows().len(), 5);
    assert_eq!(
        list_names(&d.path("rejected")).len(),
        2,
        "one file and its reason"
    );
    assert_eq!(versions_of(&d, DAY), vec![1]);
}

/// `rows` of `sales_csv(tag, ..)` from `from` on, with the payment method of each row
/// replaced by `payment` (a corrected export).
fn corrected(tag: &str, from: usize, to: usize, payment: &str) -> String {
    let all = sales_csv(tag, to);
    let mut out = String::from(HEADER);
    out.push('\n');
    for line in all.lines().skip(1 + from) {
        let mut cells: Vec<&str> = line.split(',').collect();
        cells[7] = payment;
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    out
}

/// The rows of one version's change data feed: (sale_id, _change_type, payment_method),
/// sorted; read from the `cdc` files that version's commit names.
fn change_feed(d: &Dir, version: u64) -> Vec<(String, String, String)> {
    let log = d
        .table()
        .join("_delta_log")
        .join(format!("{version:020}.json"));
    let text = fs::read_to_string(&log).expect("commit");
    let mut out = Vec::new();
    for line in text.lines() {
        let action: serde_json::Value = serde_json::from_str(line).expect("json");
        let Some(path) = action["cdc"]["path"].as_str() else {
            continue;
        };
        for [id, ty, pay] in string_columns(
            &d.table().join(path),
            ["sale_id", "_change_type", "payment_method"],
        ) {
            out.push((id, ty, pay));
        }
    }
    out.sort();
    out
}

/// The values of text columns `cols` in every row of a Parquet file.
fn string_columns<const N: usize>(path: &std::path::Path, cols: [&str; N]) -> Vec<[String; N]> {
    let file = fs::File::open(path).expect("parquet file");
    let reader =
        deltalake::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .expect("parquet")
            .build()
            .expect("reader");
    let mut out = Vec::new();
    for b in reader {
        let b = b.expect("batch");
        let arrays = cols.map(|n| {
            b.column_by_name(n)
                .and_then(|c| {
                    c.as_any()
                        .downcast_ref::<deltalake::arrow::array::StringArray>()
                        .cloned()
                })
                .unwrap_or_else(|| panic!("column {n}"))
        });
        for i in 0..b.num_rows() {
            out.push(std::array::from_fn(|c| arrays[c].value(i).to_string()));
        }
    }
    out
}

/// The commitInfo `deltadrop` entry of a version.
fn commit_info(d: &Dir, version: u64) -> serde_json::Value {
    let log = d
        .table()
        .join("_delta_log")
        .join(format!("{version:020}.json"));
    fs::read_to_string(log)
        .expect("commit")
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("json"))
        .find_map(|a| a.get("commitInfo").cloned())
        .expect("commitInfo")
}

/// sale_id → (payment_method, _source_file) at `version` (None: the latest).
fn table_at(d: &Dir, version: Option<u64>) -> std::collections::BTreeMap<String, (String, String)> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let url = url::Url::from_directory_path(d.table()).expect("url");
    let mut builder = deltalake::DeltaTableBuilder::from_url(url).expect("builder");
    if let Some(v) = version {
        builder = builder.with_version(v);
    }
    let t = rt.block_on(builder.load()).expect("table");
    let mut out = std::collections::BTreeMap::new();
    let paths: Vec<String> = t
        .snapshot()
        .expect("snapshot")
        .log_data()
        .iter()
        .map(|f| f.path().to_string())
        .collect();
    for p in paths {
        for [id, pay, src] in string_columns(
            &d.table().join(&p),
            ["sale_id", "payment_method", "_source_file"],
        ) {
            let prev = out.insert(id.clone(), (pay, src));
            assert!(prev.is_none(), "{id} is in the table twice");
        }
    }
    out
}

fn data_files(d: &Dir) -> usize {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let url = url::Url::from_directory_path(d.table()).expect("url");
    let t = rt
        .block_on(
            deltalake::DeltaTableBuilder::from_url(url)
                .expect("builder")
                .load(),
        )
        .expect("table");
    t.snapshot().expect("snapshot").log_data().num_files()
}

fn protocol_writer_version(d: &Dir) -> i64 {
    let log = d.table().join("_delta_log").join(format!("{:020}.json", 0));
    fs::read_to_string(log)
        .expect("commit 0")
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("json"))
        .find_map(|a| a["protocol"]["minWriterVersion"].as_i64())
        .expect("protocol")
}

#[test]
fn replace_swaps_the_rows_of_a_corrected_file_in_one_commit_and_leaves_the_others() {
    let d = Dir::with_feed("", "on_resend = \"replace\"");
    d.drop_file(DAY, &sales_csv("a", 5));
    d.drop_file("other.csv", &sales_csv("o", 4));
    d.run_once();
    assert_eq!(
        protocol_writer_version(&d),
        4,
        "the change data feed needs writer version 4"
    );
    // Compaction puts both files' rows in one data file: the correction must rewrite it
    // without the old rows and keep the other file's.
    // (The two files may also have shared one commit, and so one data file, already.)
    d.assert_cmd()
        .args([
            "maintain",
            "--config",
            "config.toml",
            "--compact-min-files",
            "2",
        ])
        .assert()
        .success();
    assert_eq!(data_files(&d), 1);
    let at = table_version(&d.table()).expect("version");
    let before = table_at(&d, None);
    assert_eq!(before.len(), 9);

    d.drop_file(DAY, &corrected("a", 0, 5, "cash"));
    let log = d.run_once();
    assert!(log.contains("is a correction"), "{log}");
    assert!(
        log.contains("replaced 5 earlier row(s) (0 file(s) removed, 1 rewritten)"),
        "{log}"
    );
    let after = table_at(&d, None);
    assert_eq!(after.len(), 9, "{after:?}");
    for i in 0..5 {
        assert_eq!(
            after[&format!("a-{i}")],
            ("cash".to_string(), DAY.to_string())
        );
    }
    for i in 0..4 {
        let id = format!("o-{i}");
        assert_eq!(after[&id], before[&id], "a row of another file changed");
    }
    // Time travel: the version before the correction still reads the old rows.
    assert_eq!(table_at(&d, Some(at)), before);
    // The change feed: five deletes (the old rows), five inserts (the new ones).
    let feed = change_feed(&d, at + 1);
    assert_eq!(feed.len(), 10, "{feed:?}");
    assert_eq!(feed.iter().filter(|c| c.1 == "delete").count(), 5);
    assert!(feed
        .iter()
        .filter(|c| c.1 == "insert")
        .all(|c| c.2 == "cash" && c.0.starts_with("a-")));
    let info = commit_info(&d, at + 1);
    assert_eq!(info["deltadrop"]["change"]["removedRows"], 5, "{info}");
    assert_eq!(info["operation"], "WRITE", "{info}");

    // A second correction replaces the first; the first correction sent again is a duplicate.
    d.drop_file(DAY, &corrected("a", 0, 3, "debit"));
    d.run_once();
    let latest = table_at(&d, None);
    assert_eq!(latest.len(), 7, "{latest:?}");
    assert_eq!(latest["a-0"].0, "debit");
    d.drop_file(DAY, &corrected("a", 0, 3, "debit"));
    let log = d.run_once();
    assert!(log.contains("has the same content as"), "{log}");
    assert_eq!(table_at(&d, None), latest);
}

#[test]
fn merge_key_upserts_the_last_row_of_each_key() {
    let d = Dir::with_feed("", "merge_key = [\"sale_id\"]");
    d.drop_file("day1.csv", &sales_csv("a", 10));
    d.run_once();
    // a-5..a-9 again (corrected), a-10..a-14 new; a-12 twice in the file: the last row wins.
    let mut day2 = corrected("a", 5, 15, "cash");
    day2.push_str(corrected("a", 12, 13, "debit").lines().nth(1).expect("row"));
    day2.push('\n');
    d.drop_file("day2.csv", &day2);
    let log = d.run_once();
    assert!(log.contains("5 key(s) updated"), "{log}");
    assert!(
        log.contains("1 row(s) with a key repeated later in the commit (the last wins)"),
        "{log}"
    );
    let t = table_at(&d, None);
    assert_eq!(t.len(), 15, "{t:?}");
    for i in 0..5 {
        assert_eq!(t[&format!("a-{i}")].1, "day1.csv");
    }
    for i in 5..15 {
        let expect = if i == 12 { "debit" } else { "cash" };
        assert_eq!(
            t[&format!("a-{i}")],
            (expect.to_string(), "day2.csv".to_string())
        );
    }
    let feed = change_feed(&d, 2);
    let count = |ty: &str| feed.iter().filter(|c| c.1 == ty).count();
    assert_eq!(
        (
            count("update_preimage"),
            count("update_postimage"),
            count("insert"),
            count("delete")
        ),
        (5, 5, 5, 0),
        "{feed:?}"
    );
    let info = commit_info(&d, 2);
    assert_eq!(info["deltadrop"]["change"]["duplicateKeys"], 1, "{info}");
    assert_eq!(info["operation"], "MERGE", "{info}");
}

#[test]
fn a_row_without_its_key_is_quarantined() {
    let d = Dir::with_feed("", "merge_key = [\"sale_id\"]");
    let mut csv = sales_csv("a", 3);
    csv.push_str(",2024-03-01T00:00:00Z,ST1,P1,1,1.00,1.00,pix,\n");
    d.drop_file(DAY, &csv);
    d.run_once();
    assert_eq!(table_at(&d, None).len(), 3);
    let q = read_quarantine(&d.path("lake/_quarantine/sales"));
    assert_eq!(q.len(), 1, "{q:?}");
    assert!(q[0].error.contains("merge_key"), "{q:?}");
}

#[test]
fn check_names_a_merge_key_column_the_schema_lacks() {
    let d = Dir::with_feed("", "merge_key = [\"order_id\"]");
    let err = d.exits(&["check", "--config", "config.toml"], 2);
    assert!(
        err.contains("merge_key names column 'order_id' that the schema does not have"),
        "{err}"
    );
}

#[test]
fn an_append_only_feed_keeps_protocol_1_2_and_a_feed_turned_mutable_gets_the_change_feed() {
    let d = Dir::new("");
    d.drop_file("day1.csv", &sales_csv("a", 4));
    d.run_once();
    assert_eq!(protocol_writer_version(&d), 2);
    // The same table, now with upserts: one protocol + metadata commit turns the feed on.
    d.write_config(
        &fs::read_to_string(d.path("config.toml"))
            .expect("config")
            .replace(
                "table = \"lake/sales\"",
                "table = \"lake/sales\"\nmerge_key = [\"sale_id\"]",
            ),
    );
    d.drop_file("day2.csv", &corrected("a", 2, 6, "cash"));
    let log = d.run_once();
    assert!(
        log.contains("the change data feed is on from version 2"),
        "{log}"
    );
    let t = table_at(&d, None);
    assert_eq!(t.len(), 6);
    assert_eq!(t["a-2"].0, "cash");
    let feed = change_feed(&d, 3);
    assert_eq!(
        feed.iter().filter(|c| c.1 == "update_preimage").count(),
        2,
        "{feed:?}"
    );
}

#[test]
fn a_crash_at_each_step_of_a_correction_leaves_the_latest_rows_once() {
    for point in [
        "after_intent",
        "after_change_written",
        "after_commit",
        "after_record",
        "before_archive",
        "during_archive",
    ] {
        let d = Dir::with_feed("", "on_resend = \"replace\"\nmerge_key = [\"sale_id\"]");
        d.drop_file("day1.csv", &sales_csv("a", 10));
        d.drop_file("day2.csv", &sales_csv("b", 10));
        d.run_once();
        // A correction of day1 and an upsert of half of day2 plus three new sales.
        d.drop_file("day1.csv", &corrected("a", 0, 10, "cash"));
        let mut upsert = corrected("b", 0, 5, "debit");
        upsert.push_str(
            corrected("c", 0, 3, "debit")
                .split_once('\n')
                .expect("header")
                .1,
        );
        d.drop_file("upsert.csv", &upsert);
        d.run_once_crashing_at(point, 1);
        d.run_once();
        let t = table_at(&d, None);
        assert_eq!(t.len(), 23, "{point}: {t:?}");
        for i in 0..10 {
            assert_eq!(
                t[&format!("a-{i}")],
                ("cash".into(), "day1.csv".into()),
                "{point}"
            );
        }
        for i in 0..5 {
            assert_eq!(
                t[&format!("b-{i}")],
                ("debit".into(), "upsert.csv".into()),
                "{point}"
            );
            assert_eq!(t[&format!("b-{}", i + 5)].1, "day2.csv", "{point}");
        }
        for i in 0..3 {
            assert_eq!(t[&format!("c-{i}")].1, "upsert.csv", "{point}");
        }
        assert!(waiting_in(&d.inbox()).is_empty(), "{point}");
        // The same correction again is a duplicate.
        d.drop_file("day1.csv", &corrected("a", 0, 10, "cash"));
        let log = d.run_once();
        assert!(log.contains("has the same content as"), "{point}: {log}");
        assert_eq!(table_at(&d, None), t, "{point}");
    }
}

#[test]
fn two_daemons_upserting_the_same_keys_into_one_table_lose_no_update() {
    // Two daemons (instances), each its own inbox and state, one table: both upsert the same 40
    // keys, file after file. A daemon whose commit would add keys next to rows another just
    // wrote plans it again against the new table: every key stays in the table once.
    let a = Dir::with_feed(
        "instance = \"a\"\n[http]\nenabled = false",
        "merge_key = [\"sale_id\"]\nmax_files_per_commit = 1",
    );
    let table = url::Url::from_directory_path(a.table()).expect("url");
    let b = Dir::with_feed(
        "instance = \"b\"\n[http]\nenabled = false",
        &format!("merge_key = [\"sale_id\"]\nmax_files_per_commit = 1\ntable = \"{table}\""),
    );
    // The second `table =` must be the one that counts: drop the default one.
    b.write_config(
        &fs::read_to_string(b.path("config.toml"))
            .expect("config")
            .replacen("table = \"lake/sales\"\n", "", 1),
    );
    a.drop_file("seed.csv", &sales_csv("k", 40));
    a.run_once();
    for i in 0..30 {
        let pay = ["pix", "cash", "debit"][i % 3];
        a.drop_file(&format!("a-{i}.csv"), &corrected("k", 0, 40, pay));
        b.drop_file(&format!("b-{i}.csv"), &corrected("k", 0, 40, pay));
    }
    let (mut da, mut db) = (a.spawn(), b.spawn());
    assert!(
        wait_until(DEADLINE, || waiting_in(&a.inbox()).is_empty()
            && waiting_in(&b.inbox()).is_empty()),
        "files left: {:?} {:?}",
        waiting_in(&a.inbox()),
        waiting_in(&b.inbox())
    );
    da.terminate();
    db.terminate();
    let t = table_at(&a, None);
    assert_eq!(t.len(), 40, "{t:?}");
    let logs = format!("{}{}", da.log(), db.log());
    assert!(!logs.contains("ERROR"), "{logs}");
}

#[test]
fn checkpoints_and_vacuum_keep_working_on_a_table_with_removes() {
    let d = Dir::with_feed("", "on_resend = \"replace\"\ncheckpoint_interval = 2");
    d.drop_file(DAY, &sales_csv("a", 5));
    d.run_once();
    for pay in ["cash", "debit", "credit"] {
        d.drop_file(DAY, &corrected("a", 0, 5, pay));
        d.run_once();
    }
    let checkpoints = fs::read_dir(d.table().join("_delta_log"))
        .expect("log")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".checkpoint."))
        .count();
    assert!(checkpoints > 0, "no checkpoint written");
    let parquet_on_disk = || {
        fs::read_dir(d.table())
            .expect("table")
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".parquet"))
            .count()
    };
    assert_eq!(parquet_on_disk(), 4, "each version's file is still on disk");
    // Vacuum on a writer-4 table: deltadrop lists and deletes what no version needs any more.
    d.exits(
        &[
            "maintain",
            "--config",
            "config.toml",
            "--vacuum-retention",
            "0s",
        ],
        0,
    );
    assert_eq!(parquet_on_disk(), 1, "the replaced files are vacuumed");
    assert_eq!(data_files(&d), 1);
    let t = table_at(&d, None);
    assert_eq!(t.len(), 5);
    assert!(t.values().all(|(pay, _)| pay == "credit"), "{t:?}");
    // A start from the checkpoint, and a commit after it.
    d.drop_file("next.csv", &sales_csv("n", 2));
    d.run_once();
    assert_eq!(table_at(&d, None).len(), 7);
}

#[test]
fn a_partitioned_table_takes_corrections_and_upserts_partition_by_partition() {
    let d = Dir::with_feed(
        "",
        "partition_by = \"date(sold_at)\"\non_resend = \"replace\"\nmerge_key = [\"sale_id\"]",
    );
    // 40 sales over 28 days of March: each file's rows spread over many partitions.
    d.drop_file(DAY, &sales_csv("a", 40));
    d.drop_file("other.csv", &sales_csv("o", 30));
    d.run_once();
    d.drop_file(DAY, &corrected("a", 0, 40, "cash"));
    d.drop_file("upsert.csv", &corrected("o", 0, 10, "debit"));
    d.run_once();
    let t = table_at(&d, None);
    assert_eq!(t.len(), 70, "{t:?}");
    assert!((0..40).all(|i| t[&format!("a-{i}")].0 == "cash"));
    assert!((0..10).all(|i| t[&format!("o-{i}")] == ("debit".into(), "upsert.csv".into())));
    assert!((10..30).all(|i| t[&format!("o-{i}")].1 == "other.csv"));
    // The change feed's files sit in the partitions of their rows.
    let log = fs::read_dir(d.table().join("_delta_log")).expect("log");
    let cdc: Vec<String> = log
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
        .flat_map(|e| {
            fs::read_to_string(e.path())
                .expect("commit")
                .lines()
                .filter_map(|l| {
                    let a: serde_json::Value = serde_json::from_str(l).expect("json");
                    a["cdc"]["path"].as_str().map(String::from)
                })
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(!cdc.is_empty());
    assert!(
        cdc.iter()
            .all(|p| p.starts_with("_change_data/sold_at_date=2024-03-")),
        "{cdc:?}"
    );
}
