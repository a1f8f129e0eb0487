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
    assert!(
        text.contains("{ name = \"sale_id\", type = \"int64\" }"),
        "{text}"
    );
    assert!(
        text.contains("{ name = \"nested\", type = \"struct<a:array<int64>>\" }"),
        "{text}"
    );
    assert!(!text.contains("[feed.csv]"), "{text}");
}

/// Orders with a nested object, an array of objects and an array of strings per line.
const NESTED: &str = concat!(
    r#"{"order": 1, "customer": {"name": "Ana", "Cidade Natal": "Recife", "since": "2024-01-02", "score": 1.5}, "items": [{"sku": "A-1", "qty": 2}, {"sku": "B-2", "qty": 1}], "tags": ["vip", "new"]}"#,
    "\n",
    r#"{"order": 2, "customer": {"name": "Bia", "score": 2}, "items": [], "tags": null}"#,
    "\n",
    r#"{"order": 3 broken"#,
    "\n",
    r#"{"order": 4, "customer": null, "items": [{"qty": 5, "sku": "C-3"}]}"#,
    "\n",
);

#[test]
fn nested_json_objects_and_arrays_become_typed_structs_and_arrays() {
    let d = Dir::with_feed("", "format = \"ndjson\"\nschema = \"infer\"");
    d.drop_file("orders.ndjson", NESTED);
    d.run_once();
    let schema = table_schema(&d.table());
    let ty = |n: &str| schema.iter().find(|(c, _)| c == n).unwrap().1.clone();
    // Members typed as columns are, Spark-safe names for names Spark refuses.
    let customer = ty("customer");
    for member in [
        "\"name\": Utf8",
        "\"cidade_natal\": Utf8",
        "\"since\": Date32",
        "\"score\": Decimal128(18, 2)",
    ] {
        assert!(
            customer.starts_with("Struct(") && customer.contains(member),
            "{customer}"
        );
    }
    let items = ty("items");
    assert!(
        items.starts_with("List(")
            && items.contains("\"sku\": Utf8")
            && items.contains("\"qty\": Int64"),
        "{items}"
    );
    assert!(
        ty("tags").starts_with("List(") && ty("tags").contains("Utf8"),
        "{schema:?}"
    );

    let rows = rows_by(&d.table(), "order");
    assert_eq!(
        rows["1"]["customer"],
        v("{name: Ana, cidade_natal: Recife, since: 2024-01-02, score: 1.50}")
    );
    assert_eq!(
        rows["1"]["items"],
        v("[{sku: A-1, qty: 2}, {sku: B-2, qty: 1}]")
    );
    assert_eq!(rows["1"]["tags"], v("[vip, new]"));
    assert_eq!(
        rows["2"]["customer"],
        v("{name: Bia, cidade_natal: , since: , score: 2.00}"),
        "members a line lacks are null"
    );
    assert_eq!(
        rows["2"]["items"],
        v("[]"),
        "an empty array is empty, not null"
    );
    assert_eq!(rows["2"]["tags"], None);
    assert_eq!(
        rows["4"]["customer"], None,
        "a null object is a null struct"
    );
    assert_eq!(
        rows["4"]["items"],
        v("[{sku: C-3, qty: 5}]"),
        "keys in any order"
    );
    let q = read_quarantine(&d.path("lake/_quarantine/sales"));
    assert_eq!(q.len(), 1, "{q:?}");
    assert_eq!(q[0].line_number, 3);

    // nested = "json": the same objects and arrays as their JSON text.
    let d = Dir::with_feed(
        "",
        "format = \"ndjson\"\nschema = \"infer\"\nnested = \"json\"",
    );
    d.drop_file("orders.ndjson", NESTED);
    d.run_once();
    let schema = table_schema(&d.table());
    assert!(
        schema
            .iter()
            .all(|(n, t)| n == "order" || n.starts_with('_') || t == "Utf8"),
        "{schema:?}"
    );
    let rows = rows_by(&d.table(), "order");
    let items: serde_json::Value =
        serde_json::from_str(rows["1"]["items"].as_deref().unwrap()).unwrap();
    assert_eq!(items[1]["sku"], "B-2");
}

#[test]
fn a_struct_member_that_fails_quarantines_its_row_naming_the_member() {
    let d = Dir::with_feed(
        "",
        r#"format = "ndjson"
columns = [
  { name = "order", type = "int64", nullable = false },
  { name = "customer", type = "struct<name:string,`Cidade Natal`:string,zip:int64>" },
  { name = "items", type = "array<struct<sku:string,qty:int32>>" },
]"#,
    );
    d.drop_file(
        "orders.ndjson",
        concat!(
            r#"{"order": 1, "customer": {"name": "Ana", "Cidade Natal": "Recife", "zip": 50000}, "items": [{"sku": "A", "qty": 2}]}"#,
            "\n",
            r#"{"order": 2, "customer": {"name": "Bia", "zip": "five"}}"#,
            "\n",
            r#"{"order": 3, "items": [{"sku": "A", "qty": 1}, {"sku": "B", "qty": 99999999999}]}"#,
            "\n",
            r#"{"order": 4, "customer": {"name": "Caio", "vip": true}}"#,
            "\n",
            r#"{"order": 5, "customer": "just text", "items": {"sku": "A"}}"#,
            "\n",
            r#"{"order": 6, "customer": {"name": "Duda", "cidade_natal": "Natal"}, "items": null}"#,
            "\n",
        ),
    );
    d.run_once();
    let rows = rows_by(&d.table(), "order");
    assert_eq!(rows.keys().collect::<Vec<_>>(), ["1", "6"], "{rows:?}");
    assert_eq!(
        rows["1"]["customer"],
        v("{name: Ana, cidade_natal: Recife, zip: 50000}")
    );
    assert_eq!(
        rows["6"]["customer"],
        v("{name: Duda, cidade_natal: Natal, zip: }"),
        "a key in its Spark-safe form finds its member"
    );
    let q = read_quarantine(&d.path("lake/_quarantine/sales"));
    let got: Vec<(i64, String, String)> = q
        .iter()
        .map(|r| {
            (
                r.line_number,
                r.column.clone().unwrap_or_default(),
                r.error.clone(),
            )
        })
        .collect();
    assert_eq!(got.len(), 4, "{got:#?}");
    assert_eq!(got[0].0, 2);
    assert_eq!(got[0].1, "customer.zip");
    assert!(got[0].2.contains("'five' is not an integer"), "{got:#?}");
    assert_eq!((got[1].0, got[1].1.as_str()), (3, "items[1].qty"));
    assert!(got[1].2.contains("99999999999"), "{got:#?}");
    assert_eq!((got[2].0, got[2].1.as_str()), (4, "customer"));
    assert!(
        got[2].2.contains("key 'vip' is not a member of struct<"),
        "an unknown key is never dropped unseen: {got:#?}"
    );
    assert_eq!(got[3].0, 5);
    assert!(
        got[3].2.contains("'just text' is not a JSON object")
            && got[3].2.contains("is not a JSON array"),
        "every failing value of the row is named: {got:#?}"
    );
    assert!(
        q[0].raw_line.as_deref().unwrap().contains("\"five\""),
        "the raw line is kept: {q:?}"
    );
}

#[test]
fn with_on_new_column_rescue_a_member_the_struct_lacks_is_kept_beside_its_row() {
    let d = Dir::with_feed(
        "",
        r#"format = "ndjson"
on_new_column = "rescue"
columns = [
  { name = "order", type = "int64" },
  { name = "customer", type = "struct<name:string>" },
  { name = "items", type = "array<struct<sku:string>>" },
]"#,
    );
    d.drop_file(
        "orders.ndjson",
        concat!(
            r#"{"order": 1, "customer": {"name": "Ana", "tier": "gold", "since": {"y": 2020}}, "items": [{"sku": "A"}, {"sku": "B", "qty": 2}], "coupon": "X"}"#,
            "\n",
            r#"{"order": 2, "customer": {"name": "Bia", "tier": null}}"#,
            "\n",
            r#"{"order": 3, "customer": {"name": 5, "zip": "x"}, "items": "oops"}"#,
            "\n",
        ),
    );
    d.run_once();
    let rows = rows_by(&d.table(), "order");
    assert_eq!(rows.keys().collect::<Vec<_>>(), ["1", "2"], "{rows:?}");
    assert_eq!(rows["1"]["customer"], v("{name: Ana}"));
    let rescued: serde_json::Value =
        serde_json::from_str(rows["1"]["_rescued_data"].as_deref().unwrap()).unwrap();
    assert_eq!(
        rescued,
        serde_json::json!({
            "coupon": "X",
            "customer.tier": "gold",
            "customer.since": "{\"y\": 2020}",
            "items[1].qty": "2",
        }),
        "top-level keys and members alike, under their paths"
    );
    assert_eq!(
        rows["2"]["_rescued_data"], None,
        "a null member is nothing to keep"
    );
    // A row that fails for another reason is set apart as before.
    let q = read_quarantine(&d.path("lake/_quarantine/sales"));
    assert_eq!(q.len(), 1, "{q:?}");
    assert_eq!(q[0].line_number, 3);
    assert!(q[0].error.contains("not a JSON array"), "{q:?}");
}

#[test]
fn nested_names_as_written_are_mapped_at_every_depth() {
    let d = Dir::with_feed(
        "",
        "format = \"ndjson\"\nschema = \"infer\"\ncolumn_names = \"original\"",
    );
    d.drop_file("orders.ndjson", NESTED);
    d.run_once();
    let log =
        std::fs::read_to_string(d.table().join("_delta_log/00000000000000000000.json")).unwrap();
    let schema: serde_json::Value = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find_map(|a| a["metaData"]["schemaString"].as_str().map(str::to_string))
        .map(|s| serde_json::from_str(&s).unwrap())
        .unwrap();
    let customer = schema["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "customer")
        .unwrap();
    let members = customer["type"]["fields"].as_array().unwrap();
    let city = members
        .iter()
        .find(|m| m["name"] == "Cidade Natal")
        .unwrap();
    assert_eq!(
        city["metadata"]["delta.columnMapping.physicalName"], "cidade_natal",
        "{city}"
    );
    // Every field, nested ones too, has its id (the protocol's rule), ids all different.
    let mut ids = Vec::new();
    fn collect(t: &serde_json::Value, ids: &mut Vec<i64>) {
        if let Some(fields) = t["fields"].as_array() {
            for f in fields {
                ids.push(
                    f["metadata"]["delta.columnMapping.id"]
                        .as_i64()
                        .unwrap_or(-1),
                );
                collect(&f["type"], ids);
            }
        }
        if t["type"] == "array" {
            collect(&t["elementType"], ids);
        }
    }
    collect(&schema, &mut ids);
    assert!(ids.iter().all(|i| *i > 0), "{schema}");
    let n = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n, "{schema}");
    // The Parquet files hold the physical names.
    let rows = rows_by(&d.table(), "order");
    assert_eq!(
        rows["1"]["customer"],
        v("{name: Ana, cidade_natal: Recife, since: 2024-01-02, score: 1.50}")
    );
    // A second file: the table's own schema (read back) takes the same rows.
    d.drop_file(
        "more.ndjson",
        r#"{"order": 9, "customer": {"name": "Eva", "Cidade Natal": "Natal"}, "items": [], "tags": ["a"]}"#,
    );
    d.run_once();
    let rows = rows_by(&d.table(), "order");
    assert_eq!(
        rows["9"]["customer"],
        v("{name: Eva, cidade_natal: Natal, since: , score: }")
    );
}

const VENDAS: &str = r#"header_match = "insensitive"
columns = [
  { name = "codigo", type = "string", nullable = false },
  { name = "data", type = "date" },
  { name = "hora_da_venda", type = "timestamp" },
  { name = "valores_unitario", type = "decimal(12,2)" },
  { name = "valores_total", type = "decimal(12,2)" },
  { name = "loja", type = "string" },
]"#;

/// The rows of tests/data/vendas.xlsx's "Vendas" sheet (scripts/fixtures/make-xlsx.py) that load.
fn assert_vendas(d: &Dir) {
    let rows = rows_by(&d.table(), "codigo");
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert_eq!(rows["0001"]["data"], v("2026-12-01"));
    assert_eq!(rows["0003"]["data"], v("2026-12-31"));
    assert!(
        rows["0001"]["hora_da_venda"]
            .as_deref()
            .is_some_and(|t| t.starts_with("2026-12-01T09:30:15")),
        "{:?}",
        rows["0001"]["hora_da_venda"]
    );
    assert_eq!(rows["0001"]["valores_unitario"], v("10.50"));
    assert_eq!(rows["0001"]["valores_total"], v("21.00"));
    assert_eq!(
        rows["0002"]["valores_unitario"],
        v("0.10"),
        "0.1 as stored, not 0.1000…"
    );
    assert_eq!(rows["0003"]["valores_total"], v("1234567.89"));
    assert_eq!(rows["0002"]["loja"], v("RJ-02"));
    assert!(!rows.contains_key("Total"), "the totals row is not a row");
}

#[test]
fn a_workbook_loads_the_sheet_that_fits_with_its_dates_decimals_and_merged_header() {
    let d = Dir::with_feed("", &format!("format = \"auto\"\n{VENDAS}"));
    drop_fixture(&d, "vendas.xlsx");
    d.run_once();
    assert_vendas(&d);
    let q = read_quarantine(&d.path("lake/_quarantine/sales"));
    assert_eq!(q.len(), 2, "{q:?}");
    assert_eq!(q[0].line_number, 8, "the sheet row of 0004: {q:?}");
    assert_eq!(q[1].line_number, 9, "the sheet row of 0005: {q:?}");
    assert_eq!(q[1].column.as_deref(), Some("valores_unitario"), "{q:?}");
    assert!(q[0].error.contains("sheet 'Vendas'"), "{}", q[0].error);
    assert!(q[0].error.contains("31/02/2026"), "{}", q[0].error);
    let f = d.inspect_file("vendas.xlsx");
    let dialect = &f["file"]["loaded"][0]["dialect"];
    assert_eq!(dialect["format"], "xlsx", "{f}");
    assert_eq!(dialect["sheet"], "Vendas", "{f}");
    assert_eq!(dialect["skippedLines"]["title"], 2, "{f}");
    assert_eq!(dialect["skippedLines"]["footer"], 1, "{f}");
    assert_eq!(list_names(&d.path("processed")), ["vendas.xlsx"]);
}

#[test]
fn the_1904_date_system_gives_the_same_dates() {
    let d = Dir::with_feed(
        "",
        &format!("format = \"xlsx\"\nsheet = \"vendas\"\n{VENDAS}"),
    );
    drop_fixture(&d, "vendas-1904.xlsx");
    d.run_once();
    assert_vendas(&d);
}

#[test]
fn a_file_that_is_not_a_workbook_or_lacks_the_sheet_is_rejected_with_the_reason() {
    let d = Dir::with_feed("", &format!("format = \"auto\"\n{VENDAS}"));
    d.drop_file("fake.xlsx", "id,name\n1,not a workbook\n");
    d.run_once();
    let why = std::fs::read_to_string(d.path("rejected/fake.xlsx.error.txt")).unwrap();
    assert!(why.contains("not a workbook"), "{why}");

    let d = Dir::with_feed(
        "",
        &format!("format = \"xlsx\"\nsheet = \"Sales\"\n{VENDAS}"),
    );
    drop_fixture(&d, "vendas.xlsx");
    d.run_once();
    let why = std::fs::read_to_string(d.path("rejected/vendas.xlsx.error.txt")).unwrap();
    assert!(
        why.contains("no sheet named 'Sales'") && why.contains("Resumo, Vendas"),
        "{why}"
    );
}

#[test]
fn a_crash_at_each_point_of_the_commit_path_loses_and_doubles_no_sheet_row() {
    for point in CRASH_POINTS {
        let d = Dir::with_feed(
            "",
            &format!(
                "format = \"xlsx\"\nmerge_key = [\"codigo\"]\nmax_files_per_commit = 1\n{VENDAS}"
            ),
        );
        drop_fixture(&d, "vendas.xlsx");
        // The same content again: a duplicate once the first is committed, crash or not.
        std::fs::copy(
            d.inbox().join("vendas.xlsx"),
            d.inbox().join("vendas-copy.xlsx"),
        )
        .unwrap();
        d.run_once_crashing_at(point, 1);
        d.run_once();
        assert_vendas(&d);
        assert_eq!(
            crate::util::table_rows(&d.table()).len(),
            3,
            "after a crash at {point}"
        );
        assert!(d.inbox_files().is_empty(), "after a crash at {point}");
    }
}

#[test]
fn sniff_reads_a_workbook_s_sheet() {
    let d = Dir::empty();
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/vendas.xlsx");
    let out = d
        .assert_cmd()
        .args(["sniff", src.to_str().unwrap()])
        .assert()
        .success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(
        text.contains("format = \"xlsx\"\nsheet = \"Resumo\""),
        "{text}"
    );
}

/// A Parquet file of `batch` in row groups of `group_rows` rows.
fn write_parquet(
    path: &std::path::Path,
    batch: &deltalake::arrow::record_batch::RecordBatch,
    group_rows: usize,
) {
    use deltalake::parquet::arrow::ArrowWriter;
    use deltalake::parquet::file::properties::WriterProperties;
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(group_rows))
        .build();
    let mut w = ArrowWriter::try_new(
        std::fs::File::create(path).unwrap(),
        batch.schema(),
        Some(props),
    )
    .unwrap();
    w.write(batch).unwrap();
    w.close().unwrap();
}

fn parquet_sales() -> deltalake::arrow::record_batch::RecordBatch {
    use deltalake::arrow::array::{Date32Array, Float64Array, Int32Array, StringArray};
    use deltalake::arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;
    let schema = Schema::new(vec![
        Field::new("id", DataType::Int32, false),
        Field::new("name", DataType::Utf8, true),
        Field::new("amount", DataType::Float64, true),
        Field::new("sold_on", DataType::Date32, true),
        Field::new("qty", DataType::Utf8, true),
    ]);
    deltalake::arrow::record_batch::RecordBatch::try_new(
        Arc::new(schema),
        vec![
            Arc::new(Int32Array::from(vec![1, 2, 3, 4, 5])),
            Arc::new(StringArray::from(vec![
                Some("a"),
                None,
                Some("c, d"),
                Some("e"),
                Some("f"),
            ])),
            Arc::new(Float64Array::from(vec![
                Some(1.5),
                Some(0.1),
                None,
                Some(2.25),
                Some(3.0),
            ])),
            Arc::new(Date32Array::from(vec![
                Some(20_788),
                Some(20_789),
                Some(20_790),
                None,
                Some(20_791),
            ])),
            Arc::new(StringArray::from(vec![
                Some("1"),
                Some("2"),
                Some("3"),
                Some("x"),
                Some("5"),
            ])),
        ],
    )
    .unwrap()
}

#[test]
fn parquet_rows_are_widened_to_the_table_and_a_bad_value_is_located_by_row_group() {
    let d = Dir::with_feed(
        "",
        r#"format = "auto"
columns = [
  { name = "id", type = "int64", nullable = false },
  { name = "name", type = "string" },
  { name = "amount", type = "decimal(12,2)" },
  { name = "sold_on", type = "date" },
  { name = "qty", type = "int64" },
]"#,
    );
    std::fs::create_dir_all(d.path("staging")).unwrap();
    std::fs::create_dir_all(d.inbox()).unwrap();
    write_parquet(&d.path("staging/sales.parquet"), &parquet_sales(), 3);
    std::fs::rename(
        d.path("staging/sales.parquet"),
        d.inbox().join("sales.parquet"),
    )
    .unwrap();
    d.run_once();
    let rows = rows_by(&d.table(), "id");
    assert_eq!(rows.len(), 4, "{rows:?}");
    assert_eq!(rows["1"]["amount"], v("1.50"));
    assert_eq!(rows["2"]["amount"], v("0.10"));
    assert_eq!(rows["2"]["name"], None);
    assert_eq!(rows["3"]["name"], v("c, d"));
    assert_eq!(rows["1"]["sold_on"], v("2026-12-01"));
    assert_eq!(rows["5"]["qty"], v("5"));
    let q = read_quarantine(&d.path("lake/_quarantine/sales"));
    assert_eq!(q.len(), 1, "{q:?}");
    assert_eq!(q[0].line_number, 4);
    assert!(
        q[0].error.starts_with("row group 1, row 0: "),
        "{}",
        q[0].error
    );
    assert_eq!(q[0].column.as_deref(), Some("qty"));
    let raw: serde_json::Value = serde_json::from_str(q[0].raw_line.as_deref().unwrap()).unwrap();
    assert_eq!(raw["qty"], "x", "{raw}");
    let f = d.inspect_file("sales.parquet");
    assert_eq!(
        f["file"]["loaded"][0]["dialect"]["format"], "parquet",
        "{f}"
    );

    // requeue reads the row again from its raw text: with "x" a null word it passes.
    let cfg = std::fs::read_to_string(d.path("config.toml")).unwrap();
    d.write_config(&cfg.replace(
        "format = \"auto\"",
        "format = \"auto\"\nnull_values = [\"\", \"x\"]",
    ));
    let r = d.json(&["requeue", "--config", "config.toml", "--json"]);
    assert_eq!(r[0]["passed"].as_u64(), Some(1), "{r:#}");
    let rows = rows_by(&d.table(), "id");
    assert_eq!(rows["4"]["qty"], None);
    assert_eq!(rows["4"]["amount"], v("2.25"));
    assert_eq!(rows["4"]["_source_file"], v("sales.parquet"));
    assert!(read_quarantine(&d.path("lake/_quarantine/sales")).is_empty());
}

#[test]
fn a_parquet_column_that_cannot_be_conformed_rejects_the_file_naming_both_types() {
    use deltalake::arrow::array::{Array, Int32Array, ListArray};
    use deltalake::arrow::datatypes::{DataType, Field, Int32Type, Schema};
    use std::sync::Arc;
    let d = Dir::with_feed(
        "",
        "format = \"parquet\"\ncolumns = [{ name = \"id\", type = \"int64\" }, { name = \"tags\", type = \"int64\" }]",
    );
    let tags = ListArray::from_iter_primitive::<Int32Type, _, _>(vec![Some(vec![Some(1)])]);
    let schema = Schema::new(vec![
        Field::new("id", DataType::Int32, false),
        Field::new("tags", tags.data_type().clone(), true),
    ]);
    let batch = deltalake::arrow::record_batch::RecordBatch::try_new(
        Arc::new(schema),
        vec![Arc::new(Int32Array::from(vec![1])), Arc::new(tags)],
    )
    .unwrap();
    std::fs::create_dir_all(d.inbox()).unwrap();
    write_parquet(&d.inbox().join("t.parquet"), &batch, 10);
    d.drop_file("not.parquet", "id\n1\n");
    d.run_once();
    let why = std::fs::read_to_string(d.path("rejected/t.parquet.error.txt")).unwrap();
    assert!(
        why.contains("column 'tags' is List") && why.contains("int64"),
        "{why}"
    );
    let why = std::fs::read_to_string(d.path("rejected/not.parquet.error.txt")).unwrap();
    assert!(why.contains("not a Parquet file"), "{why}");
}

#[test]
fn a_parquet_table_is_inferred_from_the_file_s_schema_with_integers_widened() {
    let d = Dir::with_feed("", "format = \"parquet\"\nschema = \"infer\"");
    std::fs::create_dir_all(d.path("staging")).unwrap();
    std::fs::create_dir_all(d.inbox()).unwrap();
    write_parquet(&d.path("staging/s.parquet"), &parquet_sales(), 100);
    std::fs::rename(d.path("staging/s.parquet"), d.inbox().join("s.parquet")).unwrap();
    d.run_once();
    let schema = table_schema(&d.table());
    let ty = |n: &str| schema.iter().find(|(c, _)| c == n).unwrap().1.clone();
    assert_eq!(ty("id"), "Int64", "{schema:?}");
    assert_eq!(ty("amount"), "Float64", "{schema:?}");
    assert_eq!(ty("sold_on"), "Date32", "{schema:?}");
    assert_eq!(rows_by(&d.table(), "id").len(), 5);
}

#[test]
fn a_parquet_file_s_structs_and_lists_become_struct_and_array_columns() {
    use deltalake::arrow::array::{
        ArrayRef, Int32Array, Int32Builder, ListBuilder, StringArray, StructArray,
    };
    use deltalake::arrow::datatypes::{DataType, Field};
    use std::sync::Arc;
    let customer = StructArray::from(vec![
        (
            Arc::new(Field::new("Cidade Natal", DataType::Utf8, true)),
            Arc::new(StringArray::from(vec![Some("Recife"), None, Some("Natal")])) as ArrayRef,
        ),
        (
            Arc::new(Field::new("zip", DataType::Int32, true)),
            Arc::new(Int32Array::from(vec![Some(50000), Some(1), None])) as ArrayRef,
        ),
    ]);
    let mut qty = ListBuilder::new(Int32Builder::new());
    qty.append_value([Some(1), Some(2)]);
    qty.append_null();
    qty.append_value([]);
    let batch = deltalake::arrow::record_batch::RecordBatch::try_from_iter(vec![
        ("id", Arc::new(Int32Array::from(vec![1, 2, 3])) as ArrayRef),
        ("customer", Arc::new(customer) as ArrayRef),
        ("qty", Arc::new(qty.finish()) as ArrayRef),
    ])
    .unwrap();
    let d = Dir::with_feed("", "format = \"parquet\"\nschema = \"infer\"");
    std::fs::create_dir_all(d.path("staging")).unwrap();
    std::fs::create_dir_all(d.inbox()).unwrap();
    write_parquet(&d.path("staging/n.parquet"), &batch, 2);
    std::fs::rename(d.path("staging/n.parquet"), d.inbox().join("n.parquet")).unwrap();
    d.run_once();
    let schema = table_schema(&d.table());
    let ty = |n: &str| schema.iter().find(|(c, _)| c == n).unwrap().1.clone();
    assert!(
        ty("customer").contains("\"cidade_natal\": Utf8")
            && ty("customer").contains("\"zip\": Int64"),
        "members widened as columns are: {schema:?}"
    );
    assert!(
        ty("qty").starts_with("List(") && ty("qty").contains("Int64"),
        "{schema:?}"
    );
    let rows = rows_by(&d.table(), "id");
    assert_eq!(
        rows["1"]["customer"],
        v("{cidade_natal: Recife, zip: 50000}")
    );
    assert_eq!(rows["2"]["customer"], v("{cidade_natal: , zip: 1}"));
    assert_eq!(rows["1"]["qty"], v("[1, 2]"));
    assert_eq!(rows["2"]["qty"], None);
    assert_eq!(rows["3"]["qty"], v("[]"));
}

#[test]
fn one_inbox_of_a_workbook_json_lines_and_parquet_survives_a_crash_at_each_point() {
    let columns = r#"format = "auto"
header_match = "insensitive"
max_files_per_commit = 1
columns = [
  { name = "codigo", type = "string" },
  { name = "data", type = "date" },
  { name = "hora_da_venda", type = "timestamp" },
  { name = "valores_unitario", type = "decimal(12,2)" },
  { name = "valores_total", type = "decimal(12,2)" },
  { name = "loja", type = "string" },
  { name = "id", type = "int64" },
  { name = "name", type = "string" },
  { name = "amount", type = "decimal(12,2)" },
  { name = "sold_on", type = "date" },
  { name = "qty", type = "int64" },
  { name = "customer", type = "struct<first:string,tags:array<string>>" },
]"#;
    for point in CRASH_POINTS.iter().filter(|p| !p.contains("change")) {
        let d = Dir::with_feed("", columns);
        std::fs::create_dir_all(d.inbox()).unwrap();
        drop_fixture(&d, "vendas.xlsx");
        write_parquet(&d.inbox().join("sales.parquet"), &parquet_sales(), 3);
        d.drop_file(
            "orders.ndjson",
            concat!(
                "{\"id\": 10, \"name\": {\"first\": \"Ana\"}, \"amount\": 1.25, \"customer\": {\"first\": \"Ana\", \"tags\": [\"a\", \"b\"]}}\n",
                "{\"id\": 11, \"amount\": 2}\n",
                "{\"id\": 12 oops\n",
                "{\"id\": 13, \"qty\": 7}\n",
            ),
        );
        d.run_once_crashing_at(point, 2);
        d.run_once();
        let rows = crate::util::table_rows(&d.table());
        let mut keys: Vec<String> = rows
            .iter()
            .map(|r| r["codigo"].clone().or(r["id"].clone()).unwrap())
            .collect();
        keys.sort();
        assert_eq!(
            keys,
            ["0001", "0002", "0003", "1", "10", "11", "13", "2", "3", "5"],
            "after a crash at {point}"
        );
        let ana = rows.iter().find(|r| r["id"] == v("10")).unwrap();
        let name: serde_json::Value =
            serde_json::from_str(ana["name"].as_deref().unwrap()).unwrap();
        assert_eq!(
            name["first"], "Ana",
            "an object in a string column is its JSON text"
        );
        assert_eq!(
            ana["customer"],
            v("{first: Ana, tags: [a, b]}"),
            "after a crash at {point}"
        );
        let q = read_quarantine(&d.path("lake/_quarantine/sales"));
        let mut located: Vec<(String, i64)> = q
            .iter()
            .map(|r| (r.source_file.clone(), r.line_number))
            .collect();
        located.sort();
        assert_eq!(
            located,
            [
                ("orders.ndjson".to_string(), 3),
                ("sales.parquet".into(), 4),
                ("vendas.xlsx".into(), 8),
                ("vendas.xlsx".into(), 9)
            ],
            "after a crash at {point}"
        );
        assert!(d.inbox_files().is_empty(), "after a crash at {point}");
    }
}
