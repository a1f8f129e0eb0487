//! Cloud tables: on Azure Blob storage against a real Azurite (see `util/azurite.rs`), and on S3
//! against moto's S3 server (`util/s3.rs`), both on free local ports. Ignored by default
//! because those come from npm and PyPI; `.ci/run` runs them with
//! `cargo test --test it -- --ignored cloud::`.

use std::collections::HashMap;
use std::fs;
use std::time::Duration;

use crate::util::azurite::{self, Azurite};
use crate::util::objects::{options_toml, Objects};
use crate::util::s3::S3Mock;
use crate::util::*;

fn table_url(test: &str) -> url::Url {
    azurite::unique_url(test, "sales")
}

/// A daemon folder whose feed writes `table` on Azurite; checkpoints every 10 versions, so
/// restarts and reads load tables through a checkpoint as long-lived tables do.
fn cloud_dir(az: &Azurite, table: &url::Url, instance: Option<&str>) -> Dir {
    let d = Dir::empty();
    let instance = instance
        .map(|i| format!("instance = \"{i}\"\n"))
        .unwrap_or_default();
    d.write_config(&format!(
        "{instance}poll_interval = \"300ms\"\nsettle = \"200ms\"\nworkers = 2\n[http]\nenabled = false\n\
         [[feed]]\nname = \"sales\"\ninbox = \"inbox\"\ntable = \"{table}\"\n\
         checkpoint_interval = 10\n{}",
        az.options_toml()
    ));
    fs::create_dir_all(d.inbox()).expect("inbox");
    d
}

fn quarantine_url(table: &url::Url) -> url::Url {
    table.join("_quarantine/sales/").expect("quarantine url")
}

/// Writes `n` files of `rows` rows tagged `<prefix><i>` outside the inbox, then renames them in
/// one after the other (a burst); returns the expected sale ids.
fn burst(d: &Dir, prefix: &str, n: usize, rows: usize) -> Vec<String> {
    let staging = d.path("staging");
    fs::create_dir_all(&staging).expect("staging");
    let mut expected = Vec::new();
    for i in 0..n {
        let tag = format!("{prefix}{i}");
        fs::write(staging.join(&tag), sales_csv(&tag, rows)).expect("write");
        expected.extend(ids(&tag, rows));
    }
    for i in 0..n {
        let tag = format!("{prefix}{i}");
        fs::rename(staging.join(&tag), d.inbox().join(format!("{tag}.csv"))).expect("rename");
    }
    expected
}

/// Polls until every inbox is empty and the table holds `n` rows (the daemons must stay up).
fn wait_for_cloud_rows(
    dirs: &[&Dir],
    daemons: &mut [&mut Daemon],
    table: &url::Url,
    options: &HashMap<String, String>,
    n: usize,
) -> Vec<Row> {
    let ok = wait_until(DEADLINE * 3, || {
        for daemon in daemons.iter_mut() {
            daemon.assert_alive();
        }
        dirs.iter().all(|d| d.inbox_files().is_empty()) && read_rows_at(table, options).len() >= n
    });
    let rows = read_rows_at(table, options);
    assert!(
        ok,
        "timed out: {} rows of {n}, inboxes {:?}\n{}",
        rows.len(),
        dirs.iter().map(|d| d.inbox_files()).collect::<Vec<_>>(),
        daemons
            .iter()
            .map(|d| d.log())
            .collect::<Vec<_>>()
            .join("\n----\n")
    );
    rows
}

#[test]
#[ignore = "needs Azurite (npm); .ci/run runs it"]
fn azure_table_survives_kill_9_with_every_row_once() {
    let az = Azurite::start();
    let table = table_url("kill9");
    let d = cloud_dir(&az, &table, None);
    let mut expected = Vec::new();
    // Kills at several moments of a burst: before, during and after commits to blob storage.
    for (round, delay_ms) in [0u64, 60, 200, 500].into_iter().enumerate() {
        let mut daemon = d.spawn_env("config.toml", &az.env());
        daemon.wait_ready();
        expected.extend(burst(&d, &format!("k{round}x"), 40, 25));
        std::thread::sleep(Duration::from_millis(delay_ms)); // the kill instant, not a wait
        daemon.kill9();
    }
    // A file with one bad row: the good row to the table, the bad one to the quarantine table.
    fs::write(
        d.inbox().join("bad.csv"),
        format!("{HEADER}\nQ-1,2024-03-01T10:00:00Z,ST1,P1,1,12.3x,1.00,pix,C1\nQ-2,2024-03-01T10:00:00Z,ST1,P1,1,1.00,1.00,pix,C1\n"),
    )
    .expect("bad file");
    expected.push("Q-2".into());
    let mut daemon = d.spawn_env("config.toml", &az.env());
    let rows = wait_for_cloud_rows(
        &[&d],
        &mut [&mut daemon],
        &table,
        &az.options(),
        expected.len(),
    );
    assert_exactly_once(&rows, &expected);
    let q = read_batches_at(&quarantine_url(&table), &az.options());
    assert_eq!(q.iter().map(|b| b.num_rows()).sum::<usize>(), 1);
    assert_eq!(list_names(&d.path("processed")).len(), 161);
    assert!(daemon.terminate().success());
}

/// Three daemons, each with its own inbox (a store, a region), commit to one table at once:
/// Delta's optimistic concurrency (put-if-absent on the commit blob) orders them, the losers
/// read the winners' commits and retry, and each daemon's `txn` app id records its own count.
#[test]
#[ignore = "needs Azurite (npm); .ci/run runs it"]
fn three_daemons_share_one_azure_table_without_losing_a_commit() {
    let az = Azurite::start();
    let table = table_url("fleet");
    let names = ["store1", "store2", "store3"];
    let dirs: Vec<Dir> = names
        .iter()
        .map(|n| cloud_dir(&az, &table, Some(n)))
        .collect();
    // The first one creates the table, so that three creates do not race for version 0.
    let mut daemons: Vec<Daemon> = Vec::new();
    for d in &dirs {
        let mut daemon = d.spawn_env("config.toml", &az.env());
        daemon.wait_ready();
        daemons.push(daemon);
    }
    let mut expected = Vec::new();
    // Files land in the three inboxes at the same time.
    let handles: Vec<_> = dirs
        .iter()
        .zip(names)
        .map(|(d, n)| {
            let root = d.root.clone();
            std::thread::spawn(move || {
                let staging = root.join("staging");
                fs::create_dir_all(&staging).expect("staging");
                let mut ids_ = Vec::new();
                for i in 0..200 {
                    let tag = format!("{n}f{i}");
                    fs::write(staging.join(&tag), sales_csv(&tag, 10)).expect("write");
                    ids_.extend(ids(&tag, 10));
                }
                for i in 0..200 {
                    let tag = format!("{n}f{i}");
                    fs::rename(
                        staging.join(&tag),
                        root.join("inbox").join(format!("{tag}.csv")),
                    )
                    .expect("rename");
                }
                ids_
            })
        })
        .collect();
    for h in handles {
        expected.extend(h.join().expect("dropper"));
    }
    let options = az.options();
    let rows = wait_for_cloud_rows(
        &dirs.iter().collect::<Vec<_>>(),
        &mut daemons.iter_mut().collect::<Vec<_>>(),
        &table,
        &options,
        expected.len(),
    );
    assert_exactly_once(&rows, &expected);

    // No commit lost: each daemon's txn version in the table is the number of commits it
    // logged, and the table's versions are exactly those commits (after version 0, the create).
    let commits: Vec<i64> = daemons
        .iter()
        .map(|d| d.log().matches("committed version").count() as i64)
        .collect();
    let app_ids: Vec<String> = names
        .iter()
        .map(|n| format!("deltadrop-sales-{n}"))
        .collect();
    let (version, txns) = txn_versions(&table, &options, &app_ids);
    for ((n, c), t) in names.iter().zip(&commits).zip(&txns) {
        assert_eq!(*t, Some(*c), "{n}: txn in the table vs commits it logged");
    }
    assert_eq!(version as i64, commits.iter().sum::<i64>());
    let conflicts: usize = daemons
        .iter()
        .map(|d| d.log().matches("taken by another writer").count())
        .sum();
    eprintln!(
        "fleet: 3 daemons × 200 files → {} rows, table version {version}, commits per daemon {commits:?}, {conflicts} conflict(s) retried",
        rows.len()
    );
    for mut daemon in daemons {
        assert!(daemon.terminate().success());
    }
}

/// Storage goes away mid-ingest and comes back: files wait in the inbox and are retried;
/// nothing is lost or duplicated.
#[test]
#[ignore = "needs Azurite (npm); .ci/run runs it"]
fn azure_storage_down_mid_ingest_is_retried_without_duplicates() {
    let az = Azurite::start();
    let table = table_url("outage");
    let d = cloud_dir(&az, &table, None);
    let mut daemon = d.spawn_env("config.toml", &az.env());
    daemon.wait_ready();
    let mut expected = burst(&d, "before", 20, 50);
    az.stop();
    expected.extend(burst(&d, "during", 20, 50));
    // The daemon sees the outage (a failed commit) before the storage comes back.
    let saw = wait_until(DEADLINE, || {
        daemon.assert_alive();
        daemon.log().contains("stay in the inbox and are retried")
    });
    assert!(saw, "no failed commit logged\n{}", daemon.log());
    az.restart();
    expected.extend(burst(&d, "after", 20, 50));
    let rows = wait_for_cloud_rows(
        &[&d],
        &mut [&mut daemon],
        &table,
        &az.options(),
        expected.len(),
    );
    assert_exactly_once(&rows, &expected);
    assert_eq!(list_names(&d.path("processed")).len(), 60);
    assert!(daemon.terminate().success());
}

/// S3 (through an S3 API server with conditional writes): two daemons on one s3:// table,
/// one of them killed with -9 mid-burst and restarted — every row once, each txn counted.
#[test]
#[ignore = "needs moto (PyPI); .ci/run runs it"]
fn two_daemons_share_one_s3_table_through_a_kill_9() {
    let s3 = S3Mock::start();
    let (table, dirs) = s3.two_daemons("checkpoint_interval = 10\n");
    let mut east = dirs[0].spawn();
    east.wait_ready();
    let mut west = dirs[1].spawn();
    west.wait_ready();
    let mut expected = burst(&dirs[0], "e", 60, 20);
    expected.extend(burst(&dirs[1], "w", 60, 20));
    std::thread::sleep(Duration::from_millis(150)); // the kill instant, not a wait
    east.kill9();
    expected.extend(burst(&dirs[0], "e2-", 30, 20));
    let mut east = dirs[0].spawn();
    let options = s3.options();
    let rows = wait_for_cloud_rows(
        &[&dirs[0], &dirs[1]],
        &mut [&mut east, &mut west],
        &table,
        &options,
        expected.len(),
    );
    assert_exactly_once(&rows, &expected);
    let (_, txns) = txn_versions(
        &table,
        &options,
        &["deltadrop-sales-east".into(), "deltadrop-sales-west".into()],
    );
    assert!(txns.iter().all(|t| t.is_some_and(|v| v > 0)), "{txns:?}");
    assert!(east.terminate().success());
    assert!(west.terminate().success());
}

/// Corrections and upserts on S3: two daemons upsert the same sale ids into one s3:// table
/// (each commit that finds the other's rows next to its keys is planned again), and one of
/// them re-sends a file corrected. Every sale once, with the change data feed written.
#[test]
#[ignore = "needs moto (PyPI); .ci/run runs it"]
fn two_daemons_upsert_and_correct_one_s3_table() {
    let s3 = S3Mock::start();
    let (table, dirs) = s3.two_daemons(
        "on_resend = \"replace\"\nmerge_key = [\"sale_id\"]\nmax_files_per_commit = 1\n",
    );
    let mut east = dirs[0].spawn();
    east.wait_ready();
    let mut west = dirs[1].spawn();
    west.wait_ready();
    // Both send the same 30 sale ids, eight times each, with other payments.
    for round in 0..8 {
        for (d, side) in dirs.iter().zip(["e", "w"]) {
            let pay = ["pix", "cash", "debit", "credit"][round % 4];
            d.drop_file(
                &format!("{side}-{round}.csv"),
                &sales_csv("k", 30).replace(",pix,", &format!(",{pay},")),
            );
        }
    }
    let options = s3.options();
    let rows = wait_for_cloud_rows(
        &[&dirs[0], &dirs[1]],
        &mut [&mut east, &mut west],
        &table,
        &options,
        30,
    );
    assert_exactly_once(&rows, &ids("k", 30));
    // A correction of east's last file: its rows (the keys it holds now) take the new values.
    dirs[0].drop_file(
        "e-7.csv",
        &sales_csv("k", 30).replace(",pix,", ",corrected,"),
    );
    assert!(
        wait_until(DEADLINE, || read_rows_at(&table, &options)
            .iter()
            .any(|r| r.payment_method == "corrected")),
        "{}",
        east.log()
    );
    let rows = read_rows_at(&table, &options);
    assert_exactly_once(&rows, &ids("k", 30));
    let t = open_at(&table, &options).expect("table");
    let snapshot = t.snapshot().expect("snapshot");
    let config = snapshot.metadata().configuration();
    assert_eq!(
        config.get("delta.enableChangeDataFeed").map(String::as_str),
        Some("true")
    );
    assert!(east.terminate().success());
    assert!(west.terminate().success());
}

/// An inbox in the store itself (issue 27's fleet): two daemons, each with its own state, share
/// `<base>/inbox` and write `<base>/sales`; 300 objects are uploaded while daemon a is killed
/// with -9 (holding claims on objects it was reading or had committed) and later restarted.
/// Every row lands once, the inbox empties, every object is in `processed`, no claim is left.
fn two_daemons_share_a_cloud_inbox_through_a_kill_9(
    base: &url::Url,
    options: &HashMap<String, String>,
    env: &[(String, String)],
) {
    let objects = Objects::at(base, options);
    let table = base.join("sales").expect("table url");
    let storage = options_toml(options);
    let dirs: Vec<Dir> = ["a", "b"]
        .iter()
        .map(|n| {
            let d = Dir::empty();
            d.write_config(&format!(
                "instance = \"{n}\"\npoll_interval = \"300ms\"\nworkers = 2\n[http]\nenabled = false\n\
                 [[feed]]\nname = \"sales\"\ninbox = \"{base}inbox\"\ntable = \"{table}\"\n\
                 claim_lease = \"3s\"\ncheckpoint_interval = 10\n[feed.storage_options]\n{storage}"
            ));
            d
        })
        .collect();
    let started = std::time::Instant::now();
    let mut a = dirs[0].spawn_env("config.toml", env);
    let mut b = dirs[1].spawn_env("config.toml", env);
    a.wait_ready();
    b.wait_ready();
    let n = 300;
    let mut expected = Vec::new();
    let mut uploaded = Vec::new();
    for i in 0..n {
        let tag = format!("f{i:03}x");
        objects.put(
            "inbox",
            &format!("{tag}.csv"),
            sales_csv(&tag, 20).as_bytes(),
        );
        uploaded.push(format!("{tag}.csv"));
        expected.extend(ids(&tag, 20));
        if i == n / 3 {
            a.kill9();
        }
        if i == 2 * n / 3 {
            a = dirs[0].spawn_env("config.toml", env);
        }
    }
    let done = wait_until(DEADLINE * 3, || {
        a.assert_alive();
        b.assert_alive();
        objects.names("inbox").is_empty()
            && objects.names("inbox/_deltadrop_claims").is_empty()
            && read_rows_at(&table, options).len() >= expected.len()
    });
    let rows = read_rows_at(&table, options);
    assert!(
        done,
        "timed out: {} rows of {}, inbox {:?}, claims {:?}\n--- a:\n{}\n--- b:\n{}",
        rows.len(),
        expected.len(),
        objects.names("inbox"),
        objects.names("inbox/_deltadrop_claims"),
        a.log(),
        b.log()
    );
    assert_exactly_once(&rows, &expected);
    uploaded.sort();
    assert_eq!(objects.names("processed"), uploaded);
    assert!(objects.names("rejected").is_empty());
    println!(
        "fleet: {n} objects through a shared inbox at {base}, one daemon killed -9 and restarted: {} rows once, {:.1} s",
        rows.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(a.terminate().success());
    assert!(b.terminate().success());
}

#[test]
#[ignore = "needs Azurite (npm); .ci/run runs it"]
fn two_daemons_share_one_azure_inbox_through_a_kill_9() {
    let az = Azurite::start();
    let base = azurite::unique_url("inbox", "x")
        .join("./")
        .expect("base url");
    two_daemons_share_a_cloud_inbox_through_a_kill_9(&base, &az.options(), &az.env());
}

#[test]
#[ignore = "needs moto (PyPI); .ci/run runs it"]
fn two_daemons_share_one_s3_inbox_through_a_kill_9() {
    let s3 = S3Mock::start();
    let id = uuid::Uuid::new_v4().simple().to_string();
    let base = url::Url::parse(&format!("s3://lake/inbox-{}/", &id[..8])).expect("base url");
    two_daemons_share_a_cloud_inbox_through_a_kill_9(&base, &s3.options(), &[]);
}

/// The store of a remote inbox goes away and comes back: the daemon says so and waits longer
/// each try, nothing is lost or loaded twice. A wrong key is named as the setting to fix, and
/// `run --once` fails rather than report an inbox it could not read as empty.
#[test]
#[ignore = "needs Azurite (npm); .ci/run runs it"]
fn an_unreachable_azure_inbox_is_waited_for_and_refused_credentials_name_the_setting() {
    let az = Azurite::start();
    let base = azurite::unique_url("down", "x")
        .join("./")
        .expect("base url");
    let objects = Objects::at(&base, &az.options());
    let table = base.join("sales").expect("table url");
    let config = |options: &HashMap<String, String>| {
        let storage = options_toml(options);
        format!(
            "poll_interval = \"200ms\"\n[http]\nenabled = false\n[[feed]]\nname = \"sales\"\n\
             inbox = \"{base}inbox\"\ntable = \"{table}\"\n[feed.storage_options]\n{storage}"
        )
    };
    let d = Dir::empty();
    d.write_config(&config(&az.options()));
    let mut daemon = d.spawn_env("config.toml", &az.env());
    daemon.wait_ready();
    let mut expected = Vec::new();
    for i in 0..10 {
        let tag = format!("u{i}x");
        objects.put(
            "inbox",
            &format!("{tag}.csv"),
            sales_csv(&tag, 10).as_bytes(),
        );
        expected.extend(ids(&tag, 10));
    }
    assert!(wait_until(DEADLINE, || read_rows_at(&table, &az.options())
        .len()
        >= 100));
    az.stop();
    assert!(
        wait_until(DEADLINE, || daemon.log().contains("cannot be reached")),
        "{}",
        daemon.log()
    );
    daemon.assert_alive();
    az.restart();
    for i in 0..10 {
        let tag = format!("v{i}x");
        objects.put(
            "inbox",
            &format!("{tag}.csv"),
            sales_csv(&tag, 10).as_bytes(),
        );
        expected.extend(ids(&tag, 10));
    }
    let done = wait_until(DEADLINE * 2, || {
        daemon.assert_alive();
        objects.names("inbox").is_empty() && read_rows_at(&table, &az.options()).len() >= 200
    });
    assert!(done, "{}", daemon.log());
    assert!(daemon.log().contains("reachable again"), "{}", daemon.log());
    assert_exactly_once(&read_rows_at(&table, &az.options()), &expected);
    assert_eq!(objects.names("processed").len(), 20);
    assert!(daemon.terminate().success());

    // A wrong account key: the error names the settings to fix, and --once fails.
    let mut wrong = az.options();
    wrong.insert(
        "azure_storage_account_key".into(),
        azurite::KEY.replace('E', "F"),
    );
    objects.put("inbox", "late.csv", sales_csv("late", 3).as_bytes());
    d.write_config(&config(&wrong));
    let out = d
        .cmd()
        .args(["run", "--once", "--config", "config.toml"])
        .envs(az.env())
        .output()
        .expect("run --once");
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{log}");
    assert!(log.contains("refused the credentials"), "{log}");
    assert!(log.contains("azure_storage_account_key"), "{log}");
    assert_eq!(objects.names("inbox"), ["late.csv"]);
}
