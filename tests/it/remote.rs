//! An inbox in object storage, through its `file://` store (the same object_store code as
//! Azure and S3, on a local disk): objects listed, claimed, downloaded, loaded, and archived in
//! the store; a fleet of daemons sharing one inbox, one of them killed. The same against
//! Azurite is in `cloud.rs`.

use std::path::PathBuf;
use std::time::Duration;

use crate::util::*;

/// An object store on disk: `<root>/store/drop/{inbox,processed,rejected}`.
struct Store {
    root: PathBuf,
}

impl Store {
    fn new(d: &Dir) -> Store {
        let root = d.path("store/drop");
        std::fs::create_dir_all(root.join("inbox")).unwrap();
        Store { root }
    }

    fn inbox_uri(&self) -> String {
        format!("file://{}", self.root.join("inbox").display())
    }

    /// Uploads an object: written aside, then renamed in (a PUT is atomic).
    fn put(&self, name: &str, content: &str) {
        let tmp = self.root.join(format!("upload-{name}"));
        std::fs::write(&tmp, content).unwrap();
        std::fs::rename(&tmp, self.root.join("inbox").join(name)).unwrap();
    }

    fn objects(&self, prefix: &str) -> Vec<String> {
        list_names(&self.root.join(prefix))
            .into_iter()
            .filter(|n| !n.starts_with('_'))
            .collect()
    }

    fn claims(&self) -> Vec<String> {
        list_names(&self.root.join("inbox/_deltadrop_claims"))
    }
}

fn feed(store: &Store, extra: &str) -> String {
    format!("inbox = \"{}\"\n{extra}", store.inbox_uri())
}

#[test]
fn objects_are_loaded_and_archived_in_the_store_and_a_bad_one_is_rejected_with_its_reason() {
    let d = Dir::empty();
    let store = Store::new(&d);
    d.write_config(&format!(
        "[http]\nenabled = false\n[[feed]]\nname = \"sales\"\ntable = \"lake/sales\"\n{}",
        feed(&store, "")
    ));
    store.put("a.csv", &sales_csv("a", 50));
    store.put("b.csv", &sales_csv("b", 30));
    store.put("bad.csv", "garbage\u{0}\u{1}");
    store.put("notes.txt", "not a data file of the feed");
    d.run_once();
    let rows = d.rows();
    let mut want = ids("a", 50);
    want.extend(ids("b", 30));
    assert_exactly_once(&rows, &want);
    assert_eq!(store.objects("inbox"), ["notes.txt"]);
    assert_eq!(store.objects("processed"), ["a.csv", "b.csv"]);
    assert_eq!(store.objects("rejected"), ["bad.csv", "bad.csv.error.txt"]);
    let reason = std::fs::read_to_string(store.root.join("rejected/bad.csv.error.txt")).unwrap();
    assert!(reason.contains("bad.csv: not CSV text"), "{reason}");
    assert!(store.claims().is_empty(), "{:?}", store.claims());
    // The local copy is gone once archived in the store: inspect reads the reason there.
    assert!(!d.path("rejected/bad.csv.error.txt").exists());
    let f = d.inspect_file("bad.csv");
    let why = f["file"]["rejected"][0].as_str().unwrap_or_default();
    assert!(why.contains("not CSV text"), "{f:#}");
    // The rows name the object they came from.
    assert!(rows
        .iter()
        .all(|r| r.source_file == "a.csv" || r.source_file == "b.csv"));

    // The same content again (re-uploaded under another name) is a duplicate, archived too.
    store.put("a-again.csv", &sales_csv("a", 50));
    d.run_once();
    assert_exactly_once(&d.rows(), &want);
    assert_eq!(store.objects("inbox"), ["notes.txt"]);
    assert_eq!(
        store.objects("processed"),
        ["a-again.csv", "a.csv", "b.csv"]
    );
}

#[test]
fn a_running_daemon_takes_objects_as_they_land_and_deletes_them_with_on_success_delete() {
    let d = Dir::empty();
    let store = Store::new(&d);
    d.write_config(&format!(
        "poll_interval = \"200ms\"\n[http]\nenabled = false\n[[feed]]\nname = \"sales\"\ntable = \"lake/sales\"\non_success = \"delete\"\n{}",
        feed(&store, "")
    ));
    let mut daemon = d.spawn();
    let mut want = Vec::new();
    for i in 0..5 {
        let tag = format!("t{i}");
        store.put(&format!("{tag}.csv"), &sales_csv(&tag, 20));
        want.extend(ids(&tag, 20));
    }
    let rows = d.wait_for_rows(want.len(), &mut daemon);
    assert_exactly_once(&rows, &want);
    assert!(wait_until(Duration::from_secs(20), || store
        .objects("inbox")
        .is_empty()));
    assert!(store.objects("processed").is_empty());
    daemon.terminate();
}

#[test]
fn an_object_claimed_by_a_live_daemon_is_left_to_it_and_an_expired_claim_is_taken_over() {
    let d = Dir::empty();
    let store = Store::new(&d);
    d.write_config(&format!(
        "instance = \"b\"\n[http]\nenabled = false\n[[feed]]\nname = \"sales\"\ntable = \"lake/sales\"\n{}",
        feed(&store, "claim_lease = \"2s\"\n")
    ));
    store.put("held.csv", &sales_csv("held", 10));
    store.put("stale.csv", &sales_csv("stale", 10));
    let claims = store.root.join("inbox/_deltadrop_claims");
    std::fs::create_dir_all(&claims).unwrap();
    let now = chrono::Utc::now().timestamp_millis();
    let claim = |instance: &str, until: i64| {
        format!(r#"{{"instance":"{instance}","since_ms":{now},"until_ms":{until}}}"#)
    };
    std::fs::write(claims.join("held.csv"), claim("a", now + 3_600_000)).unwrap();
    std::fs::write(claims.join("stale.csv"), claim("a", now - 1)).unwrap();
    let log = d.run_once();
    assert_exactly_once(&d.rows(), &ids("stale", 10));
    assert!(log.contains("the claim of a ran out"), "{log}");
    assert_eq!(store.objects("inbox"), ["held.csv"]);
    assert_eq!(store.claims(), ["held.csv"]);
}

#[test]
fn a_daemon_killed_after_its_commit_leaves_a_claim_whose_taker_does_not_load_the_object_again() {
    let d = Dir::empty();
    let store = Store::new(&d);
    let config = |instance: &str| {
        format!(
            "instance = \"{instance}\"\nstate_dir = \".state-{instance}\"\n[http]\nenabled = false\n[[feed]]\nname = \"sales\"\ntable = \"lake/sales\"\n{}",
            feed(&store, "claim_lease = \"1s\"\n")
        )
    };
    std::fs::write(d.path("a.toml"), config("a")).unwrap();
    std::fs::write(d.path("b.toml"), config("b")).unwrap();
    store.put("x.csv", &sales_csv("x", 10));
    // Daemon a commits x.csv and dies before the archive step.
    let out = d
        .cmd()
        .args(["run", "--once", "--config", "a.toml"])
        .env("DELTADROP_CRASH_AT", "before_archive")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert_exactly_once(&d.rows(), &ids("x", 10));
    assert_eq!(store.objects("inbox"), ["x.csv"]);
    assert_eq!(store.claims(), ["x.csv"]);
    // Daemon b waits out a's lease, takes the object over, finds its content in the table.
    std::thread::sleep(Duration::from_millis(1_100));
    let out = d
        .cmd()
        .args(["run", "--once", "--config", "b.toml"])
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("was loaded by a before it stopped"), "{log}");
    assert_exactly_once(&d.rows(), &ids("x", 10));
    assert!(store.objects("inbox").is_empty());
    assert_eq!(store.objects("processed"), ["x.csv"]);
    assert!(store.claims().is_empty());
}

#[test]
fn two_daemons_share_one_inbox_while_one_is_killed_and_every_row_lands_once() {
    let d = Dir::empty();
    let store = Store::new(&d);
    let config = |instance: &str| {
        format!(
            "instance = \"{instance}\"\nstate_dir = \".state-{instance}\"\npoll_interval = \"200ms\"\nworkers = 1\n[http]\nenabled = false\n[[feed]]\nname = \"sales\"\ntable = \"lake/sales\"\n{}",
            feed(&store, "claim_lease = \"2s\"\n")
        )
    };
    std::fs::write(d.path("a.toml"), config("a")).unwrap();
    std::fs::write(d.path("b.toml"), config("b")).unwrap();
    let mut a = d.spawn_with("a.toml");
    let mut b = d.spawn_with("b.toml");
    let n = 60;
    let mut want = Vec::new();
    for i in 0..n {
        let tag = format!("f{i:03}");
        store.put(&format!("{tag}.csv"), &sales_csv(&tag, 7));
        want.extend(ids(&tag, 7));
        if i == n / 3 {
            a.kill9();
        }
        if i == 2 * n / 3 {
            a = d.spawn_with("a.toml");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let done = wait_until(Duration::from_secs(90), || {
        store.objects("inbox").is_empty() && d.rows().len() >= want.len()
    });
    let rows = d.rows();
    assert!(
        done,
        "inbox {:?}, {} rows of {}\n--- a:\n{}\n--- b:\n{}",
        store.objects("inbox"),
        rows.len(),
        want.len(),
        a.log(),
        b.log()
    );
    assert_exactly_once(&rows, &want);
    assert!(wait_until(Duration::from_secs(20), || store
        .claims()
        .is_empty()));
    let processed = store.objects("processed");
    assert_eq!(processed.len(), n, "{processed:?}");
    a.terminate();
    b.terminate();
}

#[test]
fn a_crash_mid_download_and_an_object_replaced_meanwhile_load_the_new_content_once() {
    let d = Dir::empty();
    let store = Store::new(&d);
    d.write_config(&format!(
        "[http]\nenabled = false\n[[feed]]\nname = \"sales\"\ntable = \"lake/sales\"\n{}",
        feed(&store, "claim_lease = \"1s\"")
    ));
    store.put("a.csv", &sales_csv("old", 40));
    d.run_once_crashing_at("during_download", 1);
    // Replaced while the daemon was down, half of the old content on local disk.
    store.put("a.csv", &sales_csv("new", 25));
    // The dead run's claim holds the object until its lease runs out; then a run takes it over.
    let loaded = wait_until(DEADLINE, || {
        d.run_once();
        !d.rows().is_empty()
    });
    assert!(loaded, "never taken over");
    assert_exactly_once(&d.rows(), &ids("new", 25));
    assert!(
        store.objects("inbox").is_empty(),
        "{:?}",
        store.objects("inbox")
    );
    assert_eq!(store.objects("processed"), ["a.csv"]);
    assert!(store.claims().is_empty(), "{:?}", store.claims());
    let local = list_names(&d.path(".deltadrop/remote/sales/inbox"));
    assert!(
        local.is_empty(),
        "a partial download left behind: {local:?}"
    );
}

#[test]
fn an_object_replaced_while_it_is_read_loads_what_was_read_then_the_new_content() {
    let d = Dir::empty();
    let store = Store::new(&d);
    d.write_config(&format!(
        "poll_interval = \"200ms\"\n[http]\nenabled = false\n[[feed]]\nname = \"sales\"\ntable = \"lake/sales\"\n{}",
        feed(&store, "")
    ));
    store.put("a.csv", &sales_csv("old", 40));
    let release = d.path("release");
    let mut daemon = d.spawn_env(
        "config.toml",
        &[
            ("DELTADROP_PAUSE_AT".into(), "during_download".into()),
            ("DELTADROP_PAUSE_FILE".into(), release.display().to_string()),
        ],
    );
    let reached = wait_until(DEADLINE, || {
        daemon.assert_alive();
        d.path("release.reached").exists()
    });
    assert!(reached, "{}", daemon.log());
    // A new version lands while the first is being read.
    store.put("a.csv", &sales_csv("new", 25));
    std::fs::write(&release, "").unwrap();
    let mut want = ids("old", 40);
    want.extend(ids("new", 25));
    d.wait_for_rows(want.len(), &mut daemon);
    let settled = wait_until(DEADLINE, || {
        store.objects("inbox").is_empty() && store.objects("processed").len() == 2
    });
    assert!(
        settled,
        "{:?} {:?}\n{}",
        store.objects("inbox"),
        store.objects("processed"),
        daemon.log()
    );
    daemon.terminate();
    // What was read (the old version) once, and the new version once: neither lost, neither
    // loaded twice, the old one's archive copy never taken for the new one.
    assert_exactly_once(&d.rows(), &want);
    // The bytes that were read are archived too (from the local copy), the new ones beside.
    assert_eq!(store.objects("processed"), ["a.1.csv", "a.csv"]);
    let archived = |n: &str| std::fs::read_to_string(store.root.join("processed").join(n)).unwrap();
    assert_eq!(archived("a.csv"), sales_csv("old", 40));
    assert_eq!(archived("a.1.csv"), sales_csv("new", 25));
}

#[test]
fn a_restarted_daemon_lets_go_of_its_claims_on_objects_already_archived() {
    let d = Dir::empty();
    let store = Store::new(&d);
    d.write_config(&format!(
        "instance = \"east\"\n[http]\nenabled = false\n[[feed]]\nname = \"sales\"\ntable = \"lake/sales\"\n{}",
        feed(&store, "")
    ));
    // Killed between deleting an archived object and letting its claim go; and another
    // daemon's claim, expired, on an object that has left too.
    let claims = store.root.join("inbox/_deltadrop_claims");
    std::fs::create_dir_all(&claims).unwrap();
    let claim = |instance: &str| {
        format!("{{\"instance\": \"{instance}\", \"since_ms\": 0, \"until_ms\": 0}}")
    };
    std::fs::write(claims.join("gone.csv"), claim("east")).unwrap();
    std::fs::write(claims.join("theirs.csv"), claim("west")).unwrap();
    store.put("a.csv", &sales_csv("a", 10));
    d.run_once();
    assert_exactly_once(&d.rows(), &ids("a", 10));
    // Ours let go; theirs left to them (without a conditional delete, removing another
    // daemon's claim could race its takeover of a new object of that name).
    assert_eq!(store.claims(), ["theirs.csv"]);
}

#[test]
fn check_names_what_a_remote_inbox_needs() {
    let d = Dir::empty();
    for (cfg, says) in [
        (
            "[[feed]]\nname = \"s\"\ninbox = \"ftp://host/inbox\"\n",
            "scheme 'ftp' is not supported",
        ),
        (
            "[[feed]]\nname = \"s\"\ninbox = \"s3:///inbox\"\n",
            "name the container or bucket",
        ),
        (
            "[[feed]]\nname = \"s\"\ninbox = \"az://drop/inbox\"\nprocessed = \"done\"\n",
            "must be in the same store",
        ),
        (
            "[[feed]]\nname = \"s\"\ninbox = \"az://drop/inbox\"\nprocessed = \"az://other/done\"\n",
            "is not in the inbox's store",
        ),
    ] {
        d.write_config(cfg);
        let out = d.exits(&["check", "--config", "config.toml"], 2);
        assert!(out.contains(says), "{cfg}: {out}");
    }
}
