//! Inputs that are not CSV: JSON lines (`format = "ndjson"`, or `auto` by extension).

use std::io::Write;

use crate::util::*;

fn v(s: &str) -> Option<String> {
    Some(s.to_string())
}

const COLUMNS: &str = r#"columns = [
  { name = "id", type = "int64", nullable = false },
  { name = "name", type = "string" },
  { name = "amount", type = "decimal(38,2)" },
  { name = "paid", type = "boolean" },
  { name = "sold_on", type = "date" },
  { name = "address", type = "string" },
]"#;

#[test]
fn json_lines_load_values_as_written_and_quarantine_bad_lines_with_their_line() {
    let d = Dir::with_feed("", &format!("format = \"ndjson\"\n{COLUMNS}"));
    d.drop_file(
        "orders.ndjson",
        concat!(
            r#"{"id": 1, "name": "Ana \"Bia\"", "amount": 123456789012345678901234567890123456.78, "paid": true, "sold_on": "2026-12-01", "address": {"city": "Recife", "zip": "50000-000"}}"#,
            "\n",
            r#"{"sold_on": "2026-12-02", "id": 2, "name": "Çedilha ✓", "amount": 0.10}"#,
            "\r\n",
            "\n",
            r#"{"id": 3, "name": null, "amount": "not a number"}"#,
            "\n",
            r#"not json at all"#,
            "\n",
            r#"[1, 2, 3]"#,
            "\n",
            r#"{"name": "no id"}"#,
            "\n",
            r#"{"id": 7, "name": "last, without a line end"}"#,
        ),
    );
    d.run_once();
    let rows = rows_by(&d.table(), "id");
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert_eq!(rows["1"]["name"], v("Ana \"Bia\""));
    // 38 digits: a float would have rounded it.
    assert_eq!(
        rows["1"]["amount"],
        v("123456789012345678901234567890123456.78")
    );
    assert_eq!(rows["1"]["paid"], v("true"));
    assert_eq!(rows["1"]["sold_on"], v("2026-12-01"));
    let address: serde_json::Value =
        serde_json::from_str(rows["1"]["address"].as_deref().unwrap()).unwrap();
    assert_eq!(
        address["city"], "Recife",
        "a nested object is its JSON text"
    );
    assert_eq!(rows["2"]["name"], v("Çedilha ✓"));
    assert_eq!(rows["2"]["amount"], v("0.10"));
    assert_eq!(rows["2"]["paid"], None, "a missing key is null");
    assert_eq!(rows["7"]["name"], v("last, without a line end"));

    let q = read_quarantine(&d.path("lake/_quarantine/sales"));
    let lines: Vec<i64> = q.iter().map(|r| r.line_number).collect();
    assert_eq!(lines, [4, 5, 6, 7], "{q:?}");
    assert_eq!(q[0].column.as_deref(), Some("amount"));
    assert!(q[1].error.contains("not a JSON object"), "{}", q[1].error);
    assert_eq!(q[1].raw_line.as_deref(), Some("not json at all"));
    assert!(q[2].error.contains("not a JSON object"), "{}", q[2].error);
    assert_eq!(
        q[3].column.as_deref(),
        Some("id"),
        "a required key missing: {q:?}"
    );
    assert_eq!(list_names(&d.path("processed")), ["orders.ndjson"]);
    let f = d.inspect_file("orders.ndjson");
    assert_eq!(f["file"]["loaded"][0]["dialect"]["format"], "ndjson", "{f}");
}

#[test]
fn auto_takes_csv_and_gzipped_json_lines_from_one_inbox_into_one_table() {
    let d = Dir::with_feed("", &format!("format = \"auto\"\n{COLUMNS}"));
    d.drop_file("a.csv", "id,name,amount\n1,from csv,1.50\n");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(b"{\"id\": 2, \"name\": \"from json\", \"amount\": 2.25}\n")
        .unwrap();
    std::fs::write(d.inbox().join("b.jsonl.gz"), gz.finish().unwrap()).unwrap();
    d.drop_file("c.txt", "ignored");
    d.run_once();
    let rows = rows_by(&d.table(), "id");
    assert_eq!(rows["1"]["name"], v("from csv"));
    assert_eq!(rows["2"]["name"], v("from json"));
    assert_eq!(rows["2"]["amount"], v("2.25"));
    assert_eq!(list_names(&d.path("processed")), ["a.csv", "b.jsonl.gz"]);
    assert_eq!(d.inbox_files(), ["c.txt"]);
}

#[test]
fn a_json_lines_table_is_inferred_from_its_keys_in_the_order_written() {
    let d = Dir::with_feed("", "format = \"ndjson\"\nschema = \"infer\"");
    d.drop_file(
        "first.json",
        concat!(
            r#"{"sale_id": 10, "when": "2026-12-01T10:00:00Z", "total": 9.99, "store": "SP-01"}"#,
            "\n",
            r#"{"sale_id": 11, "when": "2026-12-01T11:30:00Z", "total": 20, "store": "RJ-02", "coupon": "XMAS"}"#,
            "\n",
        ),
    );
    d.run_once();
    let schema = table_schema(&d.table());
    let names: Vec<&str> = schema.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        &names[..5],
        ["sale_id", "when", "total", "store", "coupon"],
        "{schema:?}"
    );
    let ty = |n: &str| schema.iter().find(|(c, _)| c == n).unwrap().1.clone();
    assert!(ty("sale_id").contains("Int64"), "{schema:?}");
    assert!(ty("when").contains("Timestamp"), "{schema:?}");
    let rows = rows_by(&d.table(), "sale_id");
    assert_eq!(rows["11"]["coupon"], v("XMAS"));
    assert_eq!(rows["10"]["coupon"], None);
}

#[test]
fn an_unknown_key_is_refused_by_default_and_rescued_when_asked() {
    let line = "{\"id\": 1, \"name\": \"x\", \"surprise\": {\"a\": 1}}\n";
    let d = Dir::with_feed("", &format!("format = \"ndjson\"\n{COLUMNS}"));
    d.drop_file("a.ndjson", line);
    d.run_once();
    let why = std::fs::read_to_string(d.path("rejected/a.ndjson.error.txt")).unwrap();
    assert!(why.contains("surprise"), "{why}");

    let d = Dir::with_feed(
        "",
        &format!("format = \"ndjson\"\non_new_column = \"rescue\"\n{COLUMNS}"),
    );
    d.drop_file("a.ndjson", line);
    d.run_once();
    let rows = rows_by(&d.table(), "id");
    let rescued: serde_json::Value =
        serde_json::from_str(rows["1"]["_rescued_data"].as_deref().unwrap()).unwrap();
    assert_eq!(rescued["surprise"], "{\"a\": 1}", "{rescued}");
}

#[test]
fn a_crash_at_each_point_of_the_commit_path_loses_and_doubles_no_json_line() {
    // Upserts by id, two files a commit: every point of the path is passed more than once.
    for point in CRASH_POINTS {
        let d = Dir::with_feed(
            "",
            &format!(
                "format = \"auto\"\nmerge_key = [\"id\"]\nmax_files_per_commit = 2\n{COLUMNS}"
            ),
        );
        let mut expected = Vec::new();
        for f in 0..6 {
            let mut text = String::new();
            for r in 0..50 {
                let id = f * 1000 + r;
                text.push_str(&format!("{{\"id\": {id}, \"name\": \"n{id}\"}}\n"));
                expected.push(id.to_string());
            }
            text.push_str("{broken\n");
            d.drop_file(&format!("f{f}.jsonl"), &text);
        }
        d.run_once_crashing_at(point, 2);
        d.run_once();
        let rows = rows_by(&d.table(), "id");
        let mut got: Vec<String> = rows.keys().cloned().collect();
        got.sort();
        expected.sort();
        assert_eq!(got, expected, "after a crash at {point}");
        let total: usize = crate::util::table_rows(&d.table()).len();
        assert_eq!(
            total,
            expected.len(),
            "no row twice after a crash at {point}"
        );
        let q = read_quarantine(&d.path("lake/_quarantine/sales"));
        assert_eq!(
            q.len(),
            6,
            "one bad line per file, once, after a crash at {point}: {q:?}"
        );
        assert!(d.inbox_files().is_empty(), "after a crash at {point}");
    }
}

#[test]
fn sniff_prints_a_json_lines_feed_block() {
    let d = Dir::empty();
    let f = d.path("x.ndjson");
    std::fs::write(
        &f,
        "{\"sale_id\": 1, \"total\": 9.99, \"nested\": {\"a\": [1, 2]}}\n{\"sale_id\": 2, \"total\": 5}\n",
    )
    .unwrap();
    let out = d
        .assert_cmd()
        .args(["sniff", f.to_str().unwrap()])
        .assert()
        .success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(text.contains("format = \"ndjson\""), "{text}");
    assert!(text.contains("{ name = \"sale_id\", type = \"int64\" }"), "{text}");
    assert!(text.contains("{ name = \"nested\", type = \"string\" }"), "{text}");
    assert!(!text.contains("[feed.csv]"), "{text}");
}
