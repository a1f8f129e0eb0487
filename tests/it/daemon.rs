//! The daemon as users run it: the real binary on a temp folder, the table read back with
//! the `deltalake` crate.

use std::fs;
use std::time::Duration;

use crate::util::*;

#[test]
fn one_file_becomes_typed_rows_and_leaves_the_inbox() {
    let d = Dir::new("");
    let mut daemon = d.spawn();
    d.drop_file(
        "first.csv",
        &format!(
            "{HEADER}\n\
             S1,2024-03-01T14:05:00Z,ST1,P1,2,10.50,21.00,credit,C1\n\
             S2,2024-03-01 11:05:00-03:00,ST2,P2,1,3.99,3.99,pix,\n\
             S3,2024-03-02,ST3,P3,3,0.1,0.30,\"cash, bills\",\"Zé Ação\"\n"
        ),
    );
    let mut rows = d.wait_for_rows(3, &mut daemon);
    rows.sort_by(|a, b| a.sale_id.cmp(&b.sale_id));
    let t = 1_709_301_900_000_000; // 2024-03-01T14:05:00Z in microseconds
    assert_eq!(rows[0].sold_at, t);
    assert_eq!(rows[1].sold_at, t, "a zoned time is stored as UTC");
    assert_eq!(rows[2].sold_at, 1_709_337_600_000_000);
    assert_eq!(rows[0].unit_price, 1050, "decimal(12,2) exact");
    assert_eq!(rows[0].total, 2100);
    assert_eq!(rows[2].unit_price, 10);
    assert_eq!(rows[0].quantity, 2);
    assert_eq!(rows[1].customer_id, None, "an empty nullable field is null");
    assert_eq!(rows[2].customer_id.as_deref(), Some("Zé Ação"));
    assert_eq!(rows[2].payment_method, "cash, bills");
    assert!(rows.iter().all(|r| r.source_file == "first.csv"));
    let now = chrono::Utc::now().timestamp_micros();
    assert!(rows
        .iter()
        .all(|r| (now - r.ingested_at).abs() < 600_000_000));
    assert_eq!(list_names(&d.path("processed")), vec!["first.csv"]);

    // The commit says which file it holds, with its hash, under a txn for our app id.
    let log = fs::read_to_string(d.table().join("_delta_log/00000000000000000001.json")).unwrap();
    assert!(
        log.contains("\"txn\":{\"appId\":\"deltadrop-sales\",\"version\":1}"),
        "{log}"
    );
    assert!(log.contains("\"name\":\"first.csv\""), "{log}");
    assert!(daemon
        .log()
        .contains("committed version 1: 1 file(s), 3 rows"));
    assert!(daemon.terminate().success(), "SIGTERM exits 0");
}

#[test]
fn two_hundred_files_at_once_land_exactly_once_in_few_commits() {
    let d = Dir::new("");
    let mut daemon = d.spawn();
    // The files arrive while the daemon runs: wait until it watches (it creates the inbox).
    daemon.wait_ready();
    let staging = d.path("staging");
    fs::create_dir_all(&staging).unwrap();
    let mut expected = Vec::new();
    for i in 0..200 {
        let tag = format!("b{i}");
        fs::write(staging.join(format!("{tag}.csv")), sales_csv(&tag, 10)).unwrap();
        expected.extend(ids(&tag, 10));
    }
    for i in 0..200 {
        fs::rename(
            staging.join(format!("b{i}.csv")),
            d.inbox().join(format!("b{i}.csv")),
        )
        .unwrap();
    }
    let rows = d.wait_for_rows(2000, &mut daemon);
    assert_exactly_once(&rows, &expected);
    assert_eq!(list_names(&d.path("processed")).len(), 200);
    let version = table_version(&d.table()).unwrap();
    assert!(
        version < 200,
        "200 files that arrive together share commits (got {version} versions)"
    );
}

#[test]
fn files_present_before_start_are_ingested() {
    let d = Dir::new("");
    d.write_in_place("early1.csv", sales_csv("e1", 5).as_bytes());
    d.write_in_place("early2.csv", sales_csv("e2", 7).as_bytes());
    let mut daemon = d.spawn();
    let rows = d.wait_for_rows(12, &mut daemon);
    let mut expected = ids("e1", 5);
    expected.extend(ids("e2", 7));
    assert_exactly_once(&rows, &expected);
}

#[test]
fn temp_named_files_wait_until_renamed() {
    let d = Dir::new("");
    let mut daemon = d.spawn();
    for name in [
        "up.csv.tmp",
        "up.csv.part",
        ".hidden.csv",
        "dl.csv.crdownload",
        "edit.csv~",
    ] {
        d.write_in_place(name, sales_csv("tmp", 3).as_bytes());
    }
    d.write_in_place("notes.txt", b"not a csv");
    fs::create_dir_all(d.inbox().join("sub.csv")).unwrap();
    // A real file dropped after the temp ones proves the daemon has looked at the folder.
    d.drop_file("marker.csv", &sales_csv("m", 2));
    assert!(
        wait_until(DEADLINE, || d.rows().len() == 2),
        "{}",
        daemon.log()
    );
    // Two poll rounds that looked at the temp files and left them alone.
    assert!(
        wait_until(DEADLINE, || daemon
            .log()
            .matches("ignoring up.csv.tmp: hidden or temporary name")
            .count()
            >= 2),
        "{}",
        daemon.log()
    );
    let left = d.inbox_files();
    for name in [
        "up.csv.tmp",
        "up.csv.part",
        ".hidden.csv",
        "notes.txt",
        "sub.csv",
    ] {
        assert!(
            left.contains(&name.to_string()),
            "{name} was taken: {left:?}"
        );
    }
    assert_eq!(d.rows().len(), 2);
    fs::rename(d.inbox().join("up.csv.tmp"), d.inbox().join("up.csv")).unwrap();
    assert!(
        wait_until(DEADLINE, || d.rows().len() == 5),
        "{}",
        daemon.log()
    );
    daemon.assert_alive();
}

#[test]
fn poll_only_mode_still_ingests() {
    let d = Dir::new("events = false");
    let mut daemon = d.spawn();
    d.drop_file("p1.csv", &sales_csv("p1", 4));
    // Written in place without a rename: found by the poll once it has settled.
    d.write_in_place("p2.csv", sales_csv("p2", 6).as_bytes());
    let rows = d.wait_for_rows(10, &mut daemon);
    let mut expected = ids("p1", 4);
    expected.extend(ids("p2", 6));
    assert_exactly_once(&rows, &expected);
    assert!(daemon.log().contains("events off"));
}

#[test]
fn once_ingests_the_backlog_and_exits() {
    let d = Dir::new("");
    let mut expected = Vec::new();
    for i in 0..30 {
        let tag = format!("o{i}");
        d.write_in_place(&format!("{tag}.csv"), sales_csv(&tag, 3).as_bytes());
        expected.extend(ids(&tag, 3));
    }
    d.write_in_place("broken.csv", b"sale_id\nonly one column\n");
    d.run_once();
    assert_exactly_once(&d.rows(), &expected);
    assert!(d.inbox_files().is_empty());
    assert!(list_names(&d.path("rejected")).contains(&"broken.csv.error.txt".to_string()));
    // Running it again on an empty inbox changes nothing.
    let v = table_version(&d.table());
    d.run_once();
    assert_eq!(table_version(&d.table()), v);
}

#[test]
fn kill_9_during_a_burst_loses_and_duplicates_nothing() {
    let d = Dir::new("");
    let staging = d.path("staging");
    fs::create_dir_all(&staging).unwrap();
    fs::create_dir_all(d.inbox()).unwrap();
    let mut expected = Vec::new();
    // Several kills at different moments of the burst.
    for (round, delay_ms) in [0u64, 40, 120, 250].into_iter().enumerate() {
        let mut daemon = d.spawn();
        for i in 0..60 {
            let tag = format!("k{round}x{i}");
            fs::write(staging.join(&tag), sales_csv(&tag, 25)).unwrap();
            fs::rename(staging.join(&tag), d.inbox().join(format!("{tag}.csv"))).unwrap();
            expected.extend(ids(&tag, 25));
        }
        std::thread::sleep(Duration::from_millis(delay_ms)); // the kill instant, not a wait for an outcome
        daemon.kill9();
    }
    let mut daemon = d.spawn();
    let rows = d.wait_for_rows(expected.len(), &mut daemon);
    assert_exactly_once(&rows, &expected);
    assert_eq!(list_names(&d.path("processed")).len(), 240);
    assert!(list_names(&d.path("rejected")).is_empty());
}

#[test]
fn a_bad_file_is_rejected_with_its_line_and_the_daemon_goes_on() {
    let d = Dir::with_feed("", "on_bad_row = \"reject_file\"");
    let mut daemon = d.spawn();
    // Line 4 holds the bad value: line 2-3 is one record with a newline inside quotes.
    d.drop_file(
        "bad.csv",
        &format!(
            "{HEADER}\n\
             A1,2024-03-01T10:00:00Z,ST1,P1,1,1.00,1.00,\"multi\nline\",C1\n\
             A2,2024-03-01T10:00:00Z,ST1,P1,1,12.3x,1.00,pix,C1\n"
        ),
    );
    d.drop_file("wrong-header.csv", "id;when;what\n1;2;3\n");
    d.write_in_place(
        "binary.csv",
        &[0xff, 0xfe, 0x00, 0x01, 0x80, 0x81, b'\n', 0x00],
    );
    assert!(
        wait_until(DEADLINE, || list_names(&d.path("rejected")).len() == 6),
        "{:?}\n{}",
        list_names(&d.path("rejected")),
        daemon.log()
    );
    let why = fs::read_to_string(d.path("rejected/bad.csv.error.txt")).unwrap();
    assert!(
        why.contains("bad.csv: line 4, column 'unit_price'"),
        "{why}"
    );
    assert!(why.contains("'12.3x' is not a decimal(12,2)"), "{why}");
    let why = fs::read_to_string(d.path("rejected/wrong-header.csv.error.txt")).unwrap();
    assert!(why.contains("missing required column(s): sale_id"), "{why}");
    let why = fs::read_to_string(d.path("rejected/binary.csv.error.txt")).unwrap();
    assert!(why.contains("binary.csv"), "{why}");
    // Nothing from the bad files was committed; the daemon still takes good files.
    d.drop_file("good.csv", &sales_csv("g", 3));
    let rows = d.wait_for_rows(3, &mut daemon);
    assert_exactly_once(&rows, &ids("g", 3));
}

#[test]
fn the_same_content_twice_is_loaded_once() {
    let d = Dir::new("");
    let mut daemon = d.spawn();
    d.drop_file("day1.csv", &sales_csv("same", 4));
    d.wait_for_rows(4, &mut daemon);
    d.drop_file("day1-copy.csv", &sales_csv("same", 4));
    assert!(wait_until(DEADLINE, || d.inbox_files().is_empty()));
    assert!(wait_until(DEADLINE, || daemon
        .log()
        .contains("same content")));
    assert_eq!(d.rows().len(), 4);
    assert_eq!(list_names(&d.path("processed")).len(), 2);
}

#[test]
fn init_twice_refuses_and_keeps_the_config() {
    let d = Dir::empty();
    d.assert_cmd().args(["init", "site"]).assert().success();
    for sub in ["inbox", "processed", "rejected", "lake/sales", ".deltadrop"] {
        assert!(d.path("site").join(sub).is_dir(), "{sub}");
    }
    fs::write(d.path("site/inbox/keep.csv"), "x").unwrap();
    fs::write(d.path("site/config.toml"), "# mine\n").unwrap();
    let out = d.assert_cmd().args(["init", "site"]).assert().code(2);
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(
        fs::read_to_string(d.path("site/config.toml")).unwrap(),
        "# mine\n"
    );
    assert!(
        d.path("site/inbox/keep.csv").exists(),
        "existing folders are never emptied"
    );
}

#[test]
fn unknown_config_keys_are_named() {
    let d = Dir::empty();
    d.write_config("poll_interval = \"5s\"\n[[feed]]\nname = \"sales\"\ninboxx = \"in\"\n");
    for cmd in ["check", "run"] {
        let out = d
            .assert_cmd()
            .args([cmd, "--config", "config.toml"])
            .assert()
            .code(2);
        let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
        assert!(err.contains("inboxx"), "{cmd}: {err}");
        assert!(err.contains("line 4"), "{cmd}: {err}");
    }
}

#[test]
fn check_prints_the_effective_settings() {
    let d = Dir::new("");
    let out = d
        .assert_cmd()
        .args(["check", "--config", "config.toml"])
        .assert()
        .success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(text.contains("poll_interval: 300ms"), "{text}");
    assert!(
        text.contains("unit_price       decimal(12,2) not null"),
        "{text}"
    );
    assert!(
        text.contains(&format!("{}", d.path("inbox").display())),
        "{text}"
    );
}

#[test]
fn an_incompatible_existing_table_stops_startup() {
    let d = Dir::new("");
    // A Delta table with another schema where the feed's table should be.
    let table = d.table();
    fs::create_dir_all(table.join("_delta_log")).unwrap();
    fs::write(
        table.join("_delta_log/00000000000000000000.json"),
        concat!(
            "{\"protocol\":{\"minReaderVersion\":1,\"minWriterVersion\":2}}\n",
            "{\"metaData\":{\"id\":\"x\",\"format\":{\"provider\":\"parquet\",\"options\":{}},",
            "\"schemaString\":\"{\\\"type\\\":\\\"struct\\\",\\\"fields\\\":[{\\\"name\\\":\\\"sale_id\\\",",
            "\\\"type\\\":\\\"long\\\",\\\"nullable\\\":true,\\\"metadata\\\":{}}]}\",",
            "\"partitionColumns\":[],\"configuration\":{},\"createdTime\":0}}\n"
        ),
    )
    .unwrap();
    let err = d.run_once_exit(1);
    assert!(err.contains("schema this feed cannot write"), "{err}");
    assert!(err.contains("'sale_id'"), "{err}");
    // Untouched.
    assert_eq!(list_names(&table.join("_delta_log")).len(), 1);
}

#[test]
fn a_second_daemon_on_the_same_state_is_refused() {
    let d = Dir::new("");
    let mut first = d.spawn();
    first.wait_ready();
    let out = d
        .assert_cmd()
        .args(["run", "--config", "config.toml"])
        .timeout(DEADLINE)
        .assert()
        .code(1);
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(err.contains("another deltadrop is running"), "{err}");
    first.assert_alive();
}

#[test]
fn run_without_a_config_uses_the_built_in_defaults() {
    let d = Dir::empty();
    fs::create_dir_all(d.inbox()).unwrap();
    d.write_in_place("x.csv", sales_csv("def", 3).as_bytes());
    d.assert_cmd()
        .args(["run", "--once"])
        .timeout(DEADLINE)
        .assert()
        .success();
    assert_exactly_once(&d.rows(), &ids("def", 3));
}

/// A crash after the Delta commit landed but before the files left the inbox: on restart the
/// table's txn version says the intent was committed, so the file is archived, not loaded again.
#[test]
fn restart_after_a_commit_that_landed_archives_instead_of_reloading() {
    let d = Dir::new("");
    d.write_in_place("a.csv", sales_csv("a", 5).as_bytes());
    d.run_once();
    assert_eq!(d.rows().len(), 5);
    // Rewind the local side to the instant after the commit: file back in the inbox, the
    // intent still recorded, the loaded index without it.
    fs::rename(d.path("processed/a.csv"), d.inbox().join("a.csv")).unwrap();
    write_intent(&d, "a.csv", 1, 5);
    fs::write(d.path(".deltadrop/sales/loaded.jsonl"), "").unwrap();
    // And a new file whose intent (txn 2) never reached the table.
    d.write_in_place("b.csv", sales_csv("b", 3).as_bytes());
    let log = d.run_once();
    assert!(
        log.contains("commit txn 1 with 1 file(s) landed before the last stop"),
        "{log}"
    );
    let mut expected = ids("a", 5);
    expected.extend(ids("b", 3));
    assert_exactly_once(&d.rows(), &expected);
    assert!(d.inbox_files().is_empty());
}

/// The opposite case: the intent was written but the commit never landed.
#[test]
fn restart_after_a_commit_that_did_not_land_ingests_again() {
    let d = Dir::new("");
    d.write_in_place("c.csv", sales_csv("c", 4).as_bytes());
    write_intent(&d, "c.csv", 1, 4);
    let log = d.run_once();
    assert!(log.contains("did not land before the last stop"), "{log}");
    assert_exactly_once(&d.rows(), &ids("c", 4));
}

/// A file larger than the in-memory limit is streamed into Parquet by a worker, batch by batch.
#[test]
fn a_large_file_is_streamed_in_batches() {
    let d = Dir::new("");
    let content = sales_csv("big", 60_000);
    assert!(
        content.len() > 3 * 1024 * 1024,
        "bigger than the inline limit"
    );
    d.write_in_place("big.csv", content.as_bytes());
    d.write_in_place("small.csv", sales_csv("small", 10).as_bytes());
    d.run_once();
    let rows = d.rows();
    let mut expected = ids("big", 60_000);
    expected.extend(ids("small", 10));
    assert_exactly_once(&rows, &expected);
    let big: Vec<&Row> = rows.iter().filter(|r| r.source_file == "big.csv").collect();
    assert_eq!(big.len(), 60_000);
}

/// Makes a folder unwritable for the daemon (even as root), and writable again on drop.
struct Unwritable(std::path::PathBuf);

impl Unwritable {
    fn new(dir: &std::path::Path) -> Option<Unwritable> {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o555)).ok()?;
        let guard = Unwritable(dir.to_path_buf());
        let probe = dir.join(".probe");
        if fs::write(&probe, "x").is_ok() {
            // Root ignores permissions: use the immutable attribute instead.
            let _ = fs::remove_file(&probe);
            let ok = std::process::Command::new("chattr")
                .args(["+i", &dir.to_string_lossy()])
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if !ok || fs::write(&probe, "x").is_ok() {
                let _ = fs::remove_file(&probe);
                return None;
            }
        }
        Some(guard)
    }
}

impl Drop for Unwritable {
    fn drop(&mut self) {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::process::Command::new("chattr")
            .args(["-i", &self.0.to_string_lossy()])
            .status();
        let _ = fs::set_permissions(&self.0, fs::Permissions::from_mode(0o755));
    }
}

#[test]
fn an_unwritable_table_keeps_files_in_the_inbox_until_it_heals() {
    let d = Dir::new("");
    let mut daemon = d.spawn();
    daemon.wait_ready();
    let Some(guard) = Unwritable::new(&d.table()) else {
        eprintln!("skipped: cannot make a folder unwritable here (no chattr, not ext4?)");
        return;
    };
    d.drop_file("waiting.csv", &sales_csv("w", 5));
    assert!(
        wait_until(DEADLINE, || daemon.log().contains("commit failed")),
        "{}",
        daemon.log()
    );
    assert_eq!(
        d.inbox_files(),
        vec!["waiting.csv"],
        "the file stays in the inbox"
    );
    assert!(d.rows().is_empty());
    drop(guard);
    // Recovers by itself (retry with backoff), exactly once.
    let rows = d.wait_for_rows(5, &mut daemon);
    assert_exactly_once(&rows, &ids("w", 5));
}

#[test]
fn several_feeds_run_in_one_process() {
    let d = Dir::empty();
    d.write_config(
        "poll_interval = \"300ms\"\nsettle = \"200ms\"\n\
         [[feed]]\nname = \"north\"\ninbox = \"in/north\"\ntable = \"lake/north\"\n\
         [[feed]]\nname = \"south\"\ninbox = \"in/south\"\ntable = \"lake/south\"\n\
         on_success = \"delete\"\nprocessed = \"done-south\"\n",
    );
    fs::create_dir_all(d.path("in/north")).unwrap();
    fs::create_dir_all(d.path("in/south")).unwrap();
    fs::write(d.path("in/north/n.csv"), sales_csv("n", 4)).unwrap();
    fs::write(d.path("in/south/s.csv"), sales_csv("s", 6)).unwrap();
    d.run_once();
    assert_exactly_once(&read_rows(&d.path("lake/north")), &ids("n", 4));
    assert_exactly_once(&read_rows(&d.path("lake/south")), &ids("s", 6));
    assert_eq!(list_names(&d.path("processed")), vec!["n.csv"]);
    assert!(
        list_names(&d.path("done-south")).is_empty(),
        "on_success = delete"
    );
    assert!(waiting_in(&d.path("in/south")).is_empty());
    // Each feed commits under its own txn app id.
    let log =
        fs::read_to_string(d.path("lake/south/_delta_log/00000000000000000001.json")).unwrap();
    assert!(log.contains("\"appId\":\"deltadrop-south\""), "{log}");
}

/// Daemons started at the same moment on a table that does not exist yet (a fleet's first
/// start): one creates it, the others use it. deltalake's create would retry a lost race as
/// version 1 — a second metadata commit that made the other daemons stop; measured before the
/// fix with 8 daemons: 4 trials of 30 went wrong.
#[test]
fn daemons_starting_at_once_on_a_new_table_create_it_once() {
    const DAEMONS: usize = 8;
    for trial in 0..6 {
        let d = Dir::empty();
        let table = d.path("lake/sales");
        for i in 0..DAEMONS {
            let site = d.path(&format!("s{i}"));
            fs::create_dir_all(site.join("inbox")).unwrap();
            fs::write(
                site.join("inbox/a.csv"),
                sales_csv(&format!("t{trial}d{i}"), 2),
            )
            .unwrap();
            fs::write(
                site.join("config.toml"),
                format!(
                    "instance = \"d{i}\"\n[http]\nenabled = false\n[[feed]]\nname = \"sales\"\n\
                     table = \"{}\"\nquarantine_table = \"q\"\n",
                    table.display()
                ),
            )
            .unwrap();
        }
        let runs: Vec<_> = (0..DAEMONS)
            .map(|i| {
                std::process::Command::new(bin())
                    .args(["run", "--once", "--config", "config.toml"])
                    .current_dir(d.path(&format!("s{i}")))
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for run in runs {
            let out = run.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "trial {trial}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let metadata_commits = fs::read_dir(table.join("_delta_log"))
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
            .filter(|e| {
                fs::read_to_string(e.path())
                    .unwrap()
                    .contains("\"metaData\"")
            })
            .count();
        assert_eq!(metadata_commits, 1, "trial {trial}");
        assert_eq!(read_rows(&table).len(), 2 * DAEMONS, "trial {trial}");
    }
}

/// A feed with `schema = "infer"` and no file yet waits aside: the other feeds run meanwhile
/// (the whole daemon used to wait for it, and `--once` never returned), and its first file
/// starts it while the daemon runs.
#[test]
fn a_feed_waiting_to_infer_its_schema_does_not_hold_the_others() {
    let d = Dir::empty();
    d.write_config(
        "poll_interval = \"300ms\"\nsettle = \"200ms\"\n[http]\nenabled = false\n\
         [[feed]]\nname = \"sales\"\ninbox = \"in/sales\"\ntable = \"lake/sales\"\n\
         [[feed]]\nname = \"seen\"\ninbox = \"in/seen\"\ntable = \"lake/seen\"\nschema = \"infer\"\n",
    );
    let drop_into = |inbox: &str, name: &str, text: &str| {
        let dir = d.path(inbox);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(format!(".{name}.tmp")), text).unwrap();
        fs::rename(dir.join(format!(".{name}.tmp")), dir.join(name)).unwrap();
    };
    drop_into("in/sales", "a.csv", &sales_csv("a", 3));
    let log = d.run_once();
    assert!(
        log.contains("feed seen: schema = \"infer\", no table yet and no file"),
        "{log}"
    );
    assert_exactly_once(&read_rows(&d.path("lake/sales")), &ids("a", 3));

    let mut daemon = d.spawn();
    daemon.wait_ready();
    drop_into("in/sales", "b.csv", &sales_csv("b", 2));
    let sales = |n: usize| wait_until(DEADLINE, || read_rows(&d.path("lake/sales")).len() == n);
    assert!(sales(5), "{}", daemon.log());
    drop_into("in/seen", "first.csv", "id,amount\n1,2.50\n2,3.75\n");
    let seen = wait_until(DEADLINE, || {
        daemon.assert_alive();
        d.path("lake/seen/_delta_log").exists() && read_rows_loose(&d, "lake/seen") == 2
    });
    assert!(seen, "{}", daemon.log());
    assert_eq!(
        rows_by(&d.path("lake/seen"), "id")["2"]["amount"].as_deref(),
        Some("3.75")
    );
    assert!(
        daemon.log().contains("restarting the pipeline"),
        "{}",
        daemon.log()
    );
    // Both feeds run on after the restart.
    drop_into("in/sales", "c.csv", &sales_csv("c", 2));
    drop_into("in/seen", "second.csv", "id,amount\n3,1.00\n");
    assert!(sales(7), "{}", daemon.log());
    assert!(wait_until(DEADLINE, || read_rows_loose(&d, "lake/seen") == 3));
    assert!(daemon.terminate().success());
}

/// Rows of a table with any schema (read_rows wants the sales columns).
fn read_rows_loose(d: &Dir, table: &str) -> usize {
    rows_by(&d.path(table), "id").len()
}

/// One bad value costs one row: good rows land, the bad one goes to the quarantine table with
/// its physical line, raw text and reason, in the same exactly-once step.
#[test]
fn bad_rows_go_to_the_quarantine_table() {
    let d = Dir::new("");
    d.write_in_place(
        "mixed.csv",
        format!(
            "{HEADER}\n\
             M1,2024-03-01T10:00:00Z,ST1,P1,1,1.00,1.00,\"multi\nline\",C1\n\
             M2,2024-03-01T10:00:00Z,ST1,P1,1,12.3x,1.00,pix,C1\n\
             M3,2024-03-01T10:00:00Z,ST1,P1,1,2.00,2.00,pix\n\
             M4,not-a-date,ST1,P1,x,2.00,2.00,pix,C4\n\
             M5,2024-03-01T10:00:00Z,ST1,P1,5,5.00,25.00,pix,C5\n"
        )
        .as_bytes(),
    );
    let log = d.run_once();
    let rows = d.rows();
    assert_exactly_once(&rows, &["M1".to_string(), "M5".to_string()]);
    let q = read_quarantine(&d.path("lake/_quarantine/sales"));
    assert_eq!(q.len(), 3, "{q:#?}");
    assert_eq!(q[0].line_number, 4);
    assert_eq!(q[0].column.as_deref(), Some("unit_price"));
    assert_eq!(q[0].error, "'12.3x' is not a decimal(12,2): not a number");
    assert_eq!(
        q[0].raw_line.as_deref(),
        Some("M2,2024-03-01T10:00:00Z,ST1,P1,1,12.3x,1.00,pix,C1")
    );
    assert_eq!(q[1].line_number, 5);
    assert_eq!(q[1].column, None);
    assert!(
        q[1].error.contains("8 field(s), the header has 9"),
        "{}",
        q[1].error
    );
    assert_eq!(q[2].line_number, 6);
    assert_eq!(q[2].column.as_deref(), Some("sold_at"));
    assert!(
        q[2].error
            .contains("sold_at: 'not-a-date' is not a timestamp"),
        "{}",
        q[2].error
    );
    assert!(
        q[2].error.contains("quantity: 'x' is not an integer"),
        "{}",
        q[2].error
    );
    assert!(q
        .iter()
        .all(|r| r.feed == "sales" && r.source_file == "mixed.csv"));
    let content = fs::read(d.path("processed/mixed.csv")).unwrap();
    assert_eq!(q[0].file_hash, blake3::hash(&content).to_hex().to_string());
    assert!(log.contains("2 rows, 3 quarantined"), "{log}");
    // The commit metadata counts them per file.
    let commit =
        fs::read_to_string(d.table().join("_delta_log/00000000000000000001.json")).unwrap();
    assert!(commit.contains("\"badRows\":3"), "{commit}");
}

#[test]
fn too_many_bad_rows_reject_the_whole_file() {
    let d = Dir::with_feed("", "max_bad_rows = \"10%\"");
    let mut text = sales_csv("t", 5);
    text.push_str("bad,row\n");
    d.write_in_place("mostly-ok.csv", sales_csv("ok", 20).as_bytes());
    d.write_in_place("too-bad.csv", text.as_bytes());
    d.run_once();
    assert_exactly_once(&d.rows(), &ids("ok", 20));
    let why = fs::read_to_string(d.path("rejected/too-bad.csv.error.txt")).unwrap();
    assert!(
        why.contains("1 of 6 rows are bad, more than max_bad_rows (10%)"),
        "{why}"
    );
    assert!(why.contains("line 7"), "{why}");
    assert!(read_quarantine(&d.path("lake/_quarantine/sales")).is_empty());
}

#[test]
fn on_bad_row_fail_stops_the_daemon_and_keeps_the_file() {
    let d = Dir::with_feed("", "on_bad_row = \"fail\"");
    let mut text = sales_csv("f", 3);
    text.push_str("F9,2024-03-01T10:00:00Z,ST1,P1,1,abc,1.00,pix,C1\n");
    d.write_in_place("strict.csv", text.as_bytes());
    let err = d.run_once_exit(1);
    assert!(
        err.contains("strict.csv: line 5, column 'unit_price'"),
        "{err}"
    );
    assert_eq!(d.inbox_files(), vec!["strict.csv"]);
    assert!(d.rows().is_empty());
}

/// A crash between the main commit and the quarantine commit: on restart the quarantine half is
/// committed from the intent, once, and the file is not loaded again.
#[test]
fn a_crash_between_the_two_commits_loses_and_duplicates_nothing() {
    let d = Dir::new("");
    let mut text = sales_csv("q", 4);
    text.push_str("Q9,2024-03-01T10:00:00Z,ST1,P1,1,abc,1.00,pix,C1\n");
    d.write_in_place("q.csv", text.as_bytes());
    // Abort (like kill -9) right after the main commit is recorded, before the quarantine
    // commit and the archive: the intent (with the quarantine Add actions) stays on disk.
    let out = d
        .assert_cmd()
        .args(["run", "--once", "--config", "config.toml"])
        .env("DELTADROP_CRASH_AT", "after_record")
        .timeout(DEADLINE)
        .assert()
        .failure();
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(
        err.contains("DELTADROP_CRASH_AT=after_record: aborting"),
        "{err}"
    );
    let qdir = d.path("lake/_quarantine/sales");
    assert!(read_quarantine(&qdir).is_empty());
    assert_exactly_once(&d.rows(), &ids("q", 4));
    assert_eq!(d.inbox_files(), ["q.csv"]);
    let intent = fs::read_to_string(d.path(".deltadrop/sales/intent.json")).unwrap();
    assert!(intent.contains("\"quarantine\""), "{intent}");
    let log = d.run_once();
    assert!(log.contains("quarantine rows of txn 1 committed"), "{log}");
    assert_eq!(read_quarantine(&qdir).len(), 1);
    assert_exactly_once(&d.rows(), &ids("q", 4));
    assert!(d.inbox_files().is_empty());
    // And a third run changes nothing.
    d.run_once();
    assert_eq!(read_quarantine(&qdir).len(), 1);
}

/// A clean stop right after a commit leaves nothing to settle: the next start does not take it
/// for a commit a crash interrupted.
#[test]
fn a_clean_stop_leaves_no_intent_behind() {
    let d = Dir::new("");
    d.write_in_place("a.csv", sales_csv("a", 3).as_bytes());
    d.run_once();
    let intent = fs::read_to_string(d.path(".deltadrop/sales/intent.json")).unwrap();
    assert!(intent.contains("\"intent\": null"), "{intent}");
    let mut daemon = d.spawn();
    d.drop_file("b.csv", &sales_csv("b", 2));
    d.wait_for_rows(5, &mut daemon);
    assert!(daemon.terminate().success());
    let log = d.run_once();
    assert!(!log.contains("before the last stop"), "{log}");
    let mut expected = ids("a", 3);
    expected.extend(ids("b", 2));
    assert_exactly_once(&d.rows(), &expected);
}

/// Two daemons share one inbox (an NFS folder in production): each file is claimed by exactly
/// one of them, and a daemon not configured for sharing refuses to watch that inbox.
#[test]
fn two_daemons_on_a_shared_inbox_take_each_file_once() {
    let d = Dir::empty();
    for name in ["a", "b", "loner"] {
        fs::create_dir_all(d.path(name)).unwrap();
        let shared = if name == "loner" {
            String::new()
        } else {
            format!("instance = \"{name}\"\n")
        };
        let flag = if name == "loner" {
            ""
        } else {
            "shared_inbox = true\n"
        };
        fs::write(
            d.path(&format!("{name}/config.toml")),
            format!(
                "{shared}poll_interval = \"300ms\"\nsettle = \"200ms\"\nworkers = 2\n[http]\nenabled = false\n\
                 [[feed]]\nname = \"sales\"\ninbox = \"../inbox\"\n{flag}table = \"../lake/sales\"\n\
                 quarantine_table = \"../lake/_quarantine/sales\"\nprocessed = \"../processed\"\nrejected = \"../rejected\"\n"
            ),
        )
        .unwrap();
    }
    fs::create_dir_all(d.inbox()).unwrap();
    let mut a = d.spawn_with("a/config.toml");
    let mut b = d.spawn_with("b/config.toml");
    a.wait_ready();
    b.wait_ready();

    let staging = d.path("staging");
    fs::create_dir_all(&staging).unwrap();
    let mut expected = Vec::new();
    for i in 0..200 {
        let tag = format!("s{i}");
        fs::write(staging.join(&tag), sales_csv(&tag, 10)).unwrap();
        expected.extend(ids(&tag, 10));
    }
    for i in 0..200 {
        let tag = format!("s{i}");
        fs::rename(staging.join(&tag), d.inbox().join(format!("{tag}.csv"))).unwrap();
    }
    let done = wait_until(DEADLINE, || {
        a.assert_alive();
        b.assert_alive();
        list_names(&d.path("processed")).len() >= 200 && read_rows(&d.table()).len() >= 2000
    });
    assert!(done, "timed out\n{}\n{}", a.log(), b.log());
    assert_exactly_once(&read_rows(&d.table()), &expected);
    let claims = d.inbox().join(".deltadrop-claims");
    assert_eq!(list_names(&claims), vec!["a", "b"]);
    assert!(list_names(&claims.join("a")).is_empty());
    assert!(list_names(&claims.join("b")).is_empty());
    let took = |log: String| log.matches("claimed ").count();
    let (ta, tb) = (took(a.log()), took(b.log()));
    assert_eq!(ta + tb, 200, "every file claimed once: a {ta}, b {tb}");
    eprintln!("shared inbox: daemon a took {ta} files, b {tb}");

    let out = d
        .assert_cmd()
        .args(["run", "--once", "--config", "loner/config.toml"])
        .assert()
        .code(2);
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(
        err.contains("is shared (daemons a, b claim files from it")
            && err.contains("shared_inbox = true"),
        "{err}"
    );
}
