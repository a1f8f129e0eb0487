//! Corrections: a file whose name was loaded before, sent again with other content
//! (`on_resend`). The same content again stays a duplicate whatever the policy.

mod util;

use std::fs;

use util::*;

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
