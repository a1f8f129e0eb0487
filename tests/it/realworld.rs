//! Real-world CSV: the corpus in tests/data (written by hand to cover dialects, encodings,
//! locales, compression, schemas and expectations), ingested by the real binary and checked
//! value by value in the Delta tables.

use std::fs;

use crate::util::*;

fn v(s: &str) -> Option<String> {
    Some(s.to_string())
}

#[test]
fn a_brazilian_erp_export_in_windows_1252() {
    let d = Dir::with_feed(
        "",
        r#"locale = "pt-BR"
timezone = "America/Sao_Paulo"
header_match = "insensitive"
columns = [
  { name = "codigo", type = "string", nullable = false },
  { name = "descricao_do_produto", type = "string" },
  { name = "data_da_venda", type = "timestamp", format = "dd/MM/yyyy HH:mm" },
  { name = "valor_unitario", type = "decimal(12,2)" },
  { name = "quantidade", type = "int32" },
  { name = "total", type = "decimal(14,2)" },
  { name = "pago", type = "bool" },
  { name = "observacao", type = "string" },
]"#,
    );
    drop_fixture(&d, "erp-latin1.csv");
    let log = d.run_once();
    let rows = rows_by(&d.table(), "codigo");
    assert_eq!(rows.len(), 3, "{rows:#?}\n{log}");
    let r = &rows["0001"];
    assert_eq!(r["descricao_do_produto"], v("Pão de Açúcar"));
    // 14:05 in São Paulo (UTC-3) is 17:05 UTC.
    assert_eq!(r["data_da_venda"], v("2024-03-01T17:05:00Z"));
    assert_eq!(r["valor_unitario"], v("1234.56"));
    assert_eq!(r["total"], v("2469.12"));
    assert_eq!(r["quantidade"], v("2"));
    assert_eq!(r["pago"], v("true"));
    assert_eq!(r["observacao"], None);
    let r = &rows["0002"];
    assert_eq!(r["descricao_do_produto"], v("Café \"Especial\" 500g"));
    assert_eq!(r["valor_unitario"], v("10.50"));
    assert_eq!(r["pago"], v("false"));
    assert_eq!(r["observacao"], v("entregue às 9h"));
    assert_eq!(r["data_da_venda"], v("2024-03-15T11:00:00Z"));
    let r = &rows["0003"];
    assert_eq!(r["valor_unitario"], v("-5.00"), "negative in parentheses");
    assert_eq!(r["total"], v("-15.00"));
    assert_eq!(r["pago"], v("true"), "S is sim");
    assert_eq!(r["data_da_venda"], v("2024-04-01T02:59:00Z"));

    let q = read_quarantine(&d.path("lake/_quarantine/sales"));
    assert_eq!(q.len(), 2, "{q:#?}");
    assert_eq!(q[0].line_number, 5);
    assert_eq!(q[0].column.as_deref(), Some("data_da_venda"));
    assert!(
        q[0].error.contains("'32/03/2024 10:00' is not a timestamp"),
        "{}",
        q[0].error
    );
    assert_eq!(
        q[0].raw_line.as_deref(),
        Some("0004;Açaí;32/03/2024 10:00;7,00;1;7,00;N;data inválida"),
        "raw text, transcoded to UTF-8"
    );
    assert_eq!(q[1].line_number, 6);
    assert_eq!(q[1].error, "'abc' is not a decimal(12,2): not a number");
}

#[test]
fn bom_crlf_comments_and_blank_lines() {
    let d = Dir::with_feed("", "[feed.csv]\ncomment = \"#\"");
    drop_fixture(&d, "bom-crlf-comments.csv");
    d.run_once();
    let rows = rows_by(&d.table(), "sale_id");
    assert_eq!(rows.keys().collect::<Vec<_>>(), vec!["B1", "B2", "B3"]);
    assert_eq!(rows["B2"]["customer_id"], None);
    assert_eq!(rows["B2"]["unit_price"], v("2.25"));
    assert_eq!(rows["B3"]["sold_at"], v("2024-03-02T00:00:00Z"));
    assert!(read_quarantine(&d.path("lake/_quarantine/sales")).is_empty());
}

#[test]
fn gzip_and_zstd_files_are_streamed() {
    let d = Dir::new("");
    drop_fixture(&d, "sales.csv.gz");
    drop_fixture(&d, "sales.csv.zst");
    d.run_once();
    let rows = d.rows();
    let mut expected = Vec::new();
    for p in ["G", "Z"] {
        expected.extend((1..=200).map(|i| format!("{p}{i}")));
    }
    assert_exactly_once(&rows, &expected);
    let g7 = rows.iter().find(|r| r.sale_id == "G7").unwrap();
    assert_eq!(g7.unit_price, 707);
    assert_eq!(g7.source_file, "sales.csv.gz");
    assert_eq!(list_names(&d.path("processed")).len(), 2);
}

#[test]
fn tab_delimited_with_quotes_sniffed() {
    let d = Dir::with_feed(
        "",
        r#"columns = [
  { name = "id", type = "int64", nullable = false },
  { name = "name", type = "string" },
  { name = "note", type = "string" },
  { name = "amount", type = "float64" },
]
[feed.csv]
delimiter = "auto""#,
    );
    drop_fixture(&d, "tabs-quoted.csv");
    d.run_once();
    let rows = rows_by(&d.table(), "id");
    assert_eq!(rows["1"]["name"], v("Ana \"Bia\" Costa"));
    assert_eq!(rows["1"]["note"], v("line one\nline two"));
    assert_eq!(rows["1"]["amount"], v("3.5"));
    assert_eq!(rows["2"]["note"], v("has\ttab"));
    assert_eq!(rows["2"]["amount"], v("-2.0"));
    assert_eq!(rows["3"]["name"], None);
    assert_eq!(rows["3"]["note"], None, "NULL is a null token");
    assert_eq!(rows["3"]["amount"], None);
}

#[test]
fn quoted_json_with_commas_and_line_ends_does_not_fool_the_delimiter_sniffer() {
    // Quoted fields holding commas and line ends (a JSON object per row, as PapaParse's suite
    // has it) were counted as records: ',' won over the real ';' and every row went to the
    // quarantine.
    let d = Dir::with_feed("", "schema = \"infer\"");
    drop_fixture(&d, "quoted-json-semicolon.csv");
    let log = d.run_once();
    assert!(log.contains("delimiter ';' sniffed"), "{log}");
    let rows = rows_by(&d.table(), "id");
    assert_eq!(rows.len(), 3);
    assert_eq!(
        rows["3"]["payload"],
        v("{\"itens\": 1, \"cupom\": \"C3\", \"obs\": \"linha 1\nlinha 2\"}")
    );
    assert_eq!(rows["1"]["cliente"], v("Ana"));
    assert!(read_quarantine(&d.path("lake/_quarantine/sales")).is_empty());
}

#[test]
fn schema_inference_fixes_types_at_table_creation() {
    let d = Dir::with_feed("", "schema = \"infer\"");
    drop_fixture(&d, "infer.csv");
    d.run_once();
    let schema = table_schema(&d.table());
    let ty = |n: &str| {
        schema
            .iter()
            .find(|(c, _)| c == n)
            .map(|(_, t)| t.clone())
            .unwrap_or_else(|| panic!("no column {n} in {schema:?}"))
    };
    assert_eq!(ty("order_id"), "Int64");
    assert_eq!(ty("amount"), "Decimal128(18, 2)");
    assert_eq!(ty("paid"), "Boolean");
    assert_eq!(ty("day"), "Date32");
    assert!(ty("at").starts_with("Timestamp(µs"), "{}", ty("at"));
    assert_eq!(ty("cep"), "Utf8", "leading zeros stay text");
    assert_eq!(
        ty("nome_do_cliente"),
        "Utf8",
        "a header Spark cannot use is folded"
    );
    let rows = rows_by(&d.table(), "order_id");
    assert_eq!(rows["3"]["amount"], v("-0.25"));
    assert_eq!(rows["2"]["at"], v("2024-03-02T11:00:00Z"));
    assert_eq!(rows["1"]["cep"], v("01310100"));
    assert_eq!(rows["3"]["nome_do_cliente"], None);

    // The schema is fixed: a later file with text in a number column quarantines that row.
    fs::write(
        d.inbox().join("later.csv"),
        "order_id,amount,paid,day,at,cep,empty,Nome do Cliente\n4,lots,true,2024-03-04,2024-03-04T00:00:00Z,1,,Eva\n5,1,false,2024-03-05,2024-03-05T00:00:00Z,2,,Ivo\n",
    )
    .unwrap();
    d.run_once();
    assert_eq!(rows_by(&d.table(), "order_id").len(), 4);
    let q = read_quarantine(&d.path("lake/_quarantine/sales"));
    assert_eq!(q.len(), 1);
    assert_eq!(q[0].column.as_deref(), Some("amount"));
}

/// Exports repeat headers ("Name" for customer and seller), leave one empty, use characters
/// Delta refuses or a name deltadrop writes itself: every column still gets a name, every
/// value lands under it, and a second file with the same header matches the same columns.
#[test]
fn repeated_empty_and_odd_headers_keep_every_value() {
    let d = Dir::with_feed("", "schema = \"infer\"");
    let header = "id,Name,,name,\"Unit Price ($)\",Name,_source_file\n";
    d.drop_file(
        "first.csv",
        &format!("{header}1,Ana,x,Bia,1.50,Cid,erp\n2,Edu,y,Fai,2.25,Gil,erp\n"),
    );
    d.run_once();
    let names: Vec<String> = table_schema(&d.table())
        .into_iter()
        .map(|(c, _)| c)
        .collect();
    assert_eq!(
        names,
        [
            "id",
            "Name",
            "column_3",
            "name_2",
            "unit_price__$_",
            "Name_3",
            "_source_file_2",
            "_source_file",
            "_ingested_at"
        ]
    );
    d.drop_file("second.csv", &format!("{header}3,Hal,z,Ivo,3.00,Jon,erp\n"));
    d.run_once();
    let rows = rows_by(&d.table(), "id");
    assert_eq!(rows.len(), 3);
    assert_eq!(rows["1"]["Name"], v("Ana"));
    assert_eq!(rows["1"]["column_3"], v("x"));
    assert_eq!(rows["1"]["name_2"], v("Bia"));
    assert_eq!(rows["2"]["unit_price__$_"], v("2.25"));
    assert_eq!(rows["3"]["Name_3"], v("Jon"));
    assert_eq!(rows["3"]["column_3"], v("z"));
    assert_eq!(rows["3"]["_source_file_2"], v("erp"));
    assert_eq!(rows["3"]["_source_file"], v("second.csv"));
    assert!(list_names(&d.path("rejected")).is_empty());
}

/// With no delimiter in the config, a ';' or tab export dropped into a ',' feed loads (the
/// default splits its header into one column, another delimiter splits it consistently); a
/// delimiter the config names is taken at its word.
#[test]
fn an_unconfigured_delimiter_follows_the_file() {
    let d = Dir::with_feed("", "");
    d.drop_file("semi.csv", &sales_csv("semi", 3).replace(',', ";"));
    d.drop_file("tab.csv", &sales_csv("tab", 2).replace(',', "\t"));
    d.drop_file("comma.csv", &sales_csv("comma", 1));
    let log = d.run_once();
    assert_eq!(d.rows().len(), 6, "{log}");
    assert!(
        log.contains("semi.csv: delimiter ';' sniffed: the default ',' finds a single column"),
        "{log}"
    );

    let strict = Dir::with_feed("", "[feed.csv]\ndelimiter = \",\"");
    strict.drop_file("semi.csv", &sales_csv("semi", 3).replace(',', ";"));
    strict.run_once();
    assert!(strict.rows().is_empty());
    assert_eq!(
        list_names(&strict.path("rejected")),
        ["semi.csv", "semi.csv.error.txt"]
    );
}

#[test]
fn inference_hints_override_a_column() {
    let d = Dir::with_feed(
        "",
        "schema = \"infer\"\ncolumns = [{ name = \"amount\", type = \"decimal(10,3)\" }, { name = \"order_id\", type = \"string\", nullable = false }]",
    );
    drop_fixture(&d, "infer.csv");
    d.run_once();
    let schema = table_schema(&d.table());
    assert!(
        schema.contains(&("amount".to_string(), "Decimal128(10, 3)".to_string())),
        "{schema:?}"
    );
    assert!(
        schema.contains(&("order_id".to_string(), "Utf8".to_string())),
        "{schema:?}"
    );
    assert!(
        schema.contains(&("paid".to_string(), "Boolean".to_string())),
        "{schema:?}"
    );
    assert_eq!(rows_by(&d.table(), "order_id")["1"]["amount"], v("10.500"));
}

#[test]
fn epoch_timestamps_and_int_overflow() {
    let d = Dir::with_feed(
        "",
        r#"columns = [
  { name = "id", type = "int64", nullable = false },
  { name = "secs", type = "timestamp", format = "epoch_s" },
  { name = "millis", type = "timestamp", format = "epoch_ms" },
  { name = "ratio", type = "float64" },
  { name = "flag", type = "bool" },
  { name = "small", type = "int32" },
]"#,
    );
    drop_fixture(&d, "epoch.csv");
    d.run_once();
    let rows = rows_by(&d.table(), "id");
    assert_eq!(rows["1"]["secs"], v("2024-03-01T17:05:00Z"));
    assert_eq!(rows["1"]["millis"], v("2024-03-01T17:05:00Z"));
    assert_eq!(rows["1"]["ratio"], v("0.125"));
    assert_eq!(rows["1"]["flag"], v("true"));
    assert_eq!(rows["2"]["ratio"], v("1000.0"));
    assert_eq!(rows["2"]["secs"], v("1970-01-01T00:00:00Z"));
    assert_eq!(rows["2"]["small"], v("-7"));
    assert!(!rows.contains_key("3"));
    let q = read_quarantine(&d.path("lake/_quarantine/sales"));
    assert_eq!(q.len(), 1);
    assert_eq!(q[0].line_number, 4);
    assert!(
        q[0].error
            .contains("'2147483648' is not an integer (int32)"),
        "{}",
        q[0].error
    );
}

#[test]
fn unknown_columns_are_rescued_and_headers_matched_loosely() {
    let d = Dir::with_feed(
        "",
        "on_new_column = \"rescue\"\nheader_match = \"insensitive\"\ndecimal_separator = \",\"\n[feed.csv]\ndelimiter = \";\"",
    );
    drop_fixture(&d, "rescue-insensitive.csv");
    d.run_once();
    let rows = rows_by(&d.table(), "sale_id");
    assert_eq!(rows.len(), 2, "{rows:#?}");
    assert_eq!(rows["R1"]["unit_price"], v("1.00"));
    assert_eq!(rows["R2"]["total"], v("4.00"));
    let rescued: serde_json::Value =
        serde_json::from_str(rows["R1"]["_rescued_data"].as_deref().unwrap()).unwrap();
    assert_eq!(
        rescued,
        serde_json::json!({"Canal": "web", "Vendedor": "Zé"})
    );
    assert_eq!(rows["R2"]["_rescued_data"], None);
}

#[test]
fn new_columns_are_rejected_by_default() {
    let d = Dir::with_feed(
        "",
        "header_match = \"insensitive\"\ndecimal_separator = \",\"\n[feed.csv]\ndelimiter = \";\"",
    );
    drop_fixture(&d, "rescue-insensitive.csv");
    d.run_once();
    let why = fs::read_to_string(d.path("rejected/rescue-insensitive.csv.error.txt")).unwrap();
    assert!(
        why.contains("column(s) the table does not have: 'Canal', 'Vendedor'"),
        "{why}"
    );
}

#[test]
fn expectations_quarantine_warn_and_check_brazilian_ids() {
    let d = Dir::with_feed(
        "",
        r#"columns = [
  { name = "id", type = "int64", nullable = false },
  { name = "cpf", type = "string" },
  { name = "cnpj", type = "string" },
  { name = "uf", type = "string" },
  { name = "qty", type = "int64" },
  { name = "email", type = "string" },
]
[[feed.expect]]
column = "cpf"
cpf = true
[[feed.expect]]
column = "cnpj"
cnpj = true
action = "warn"
[[feed.expect]]
column = "uf"
one_of = ["SP", "RJ", "MG"]
[[feed.expect]]
column = "qty"
min = 1
max = 100
[[feed.expect]]
column = "email"
regex = "[^@]+@[^@]+"
"#,
    );
    drop_fixture(&d, "expectations.csv");
    let log = d.run_once();
    let rows = rows_by(&d.table(), "id");
    assert_eq!(rows.keys().collect::<Vec<_>>(), vec!["1", "3"]);
    assert!(log.contains("2 rows, 4 quarantined, 1 warned"), "{log}");
    let q = read_quarantine(&d.path("lake/_quarantine/sales"));
    let errors: Vec<(i64, String)> = q.iter().map(|r| (r.line_number, r.error.clone())).collect();
    assert_eq!(
        errors,
        vec![
            (3, "'529.982.247-26' is not a valid CPF".to_string()),
            (5, "'XX' is not one of SP, RJ, MG".to_string()),
            (6, "0 is below the minimum 1".to_string()),
            (
                7,
                "'not-an-email' does not match /^(?:[^@]+@[^@]+)$/".to_string()
            ),
        ]
    );
    let commit =
        fs::read_to_string(d.table().join("_delta_log/00000000000000000001.json")).unwrap();
    assert!(commit.contains("\"warnedRows\":1"), "{commit}");
}

#[test]
fn invalid_bytes_in_a_utf8_file_quarantine_only_their_row() {
    let d = Dir::with_feed("", "encoding = \"utf-8\"");
    drop_fixture(&d, "utf8-one-bad-byte.csv");
    d.run_once();
    let rows = d.rows();
    assert_exactly_once(&rows, &["U1".to_string(), "U3".to_string()]);
    assert!(rows.iter().any(|r| r.customer_id.as_deref() == Some("Zoë")));
    let q = read_quarantine(&d.path("lake/_quarantine/sales"));
    assert_eq!(q.len(), 1);
    assert_eq!(q[0].line_number, 3);
    assert!(q[0].error.contains("not valid UTF-8"), "{}", q[0].error);
    assert_eq!(
        q[0].raw_line.as_deref(),
        Some("U2,2024-03-01T10:00:00Z,ST1,P1,1,1.00,1.00,pix,Jos\u{fffd}")
    );
}

#[test]
fn a_ready_marker_holds_a_file_written_in_place() {
    let d = Dir::with_feed("", "ready_marker = \".done\"");
    let mut daemon = d.spawn();
    d.write_in_place("slow.csv", sales_csv("slow", 3).as_bytes());
    d.write_in_place("first.csv", sales_csv("first", 2).as_bytes());
    d.write_in_place("first.csv.done", b"");
    assert!(
        wait_until(DEADLINE, || d.rows().len() == 2),
        "{}",
        daemon.log()
    );
    // Two polls later slow.csv, unmarked, is still waiting.
    assert!(
        wait_until(DEADLINE, || daemon
            .log()
            .matches("waiting for slow.csv's ready marker")
            .count()
            >= 2),
        "{}",
        daemon.log()
    );
    assert!(d.inbox_files().contains(&"slow.csv".to_string()));
    d.write_in_place("slow.csv.done", b"");
    let rows = d.wait_for_rows(5, &mut daemon);
    assert_eq!(rows.len(), 5);
    let done = list_names(&d.path("processed"));
    assert!(done.contains(&"slow.csv.done".to_string()), "{done:?}");
}

#[test]
fn sniff_prints_a_feed_block_that_works() {
    let d = Dir::empty();
    let fixture =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/erp-latin1.csv");
    let out = d
        .assert_cmd()
        .args(["sniff", &fixture.to_string_lossy()])
        .assert()
        .success();
    let toml = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    for needle in [
        "locale = \"pt-BR\"",
        "encoding = \"windows-1252\"",
        "delimiter = \";\"",
        "{ name = \"Código\", type = \"string\" }",
        "{ name = \"Total\", type = \"decimal(18,2)\" }",
        "{ name = \"Pago\", type = \"bool\" }",
        "{ name = \"data_da_venda\", type = \"string\" }",
    ] {
        assert!(toml.contains(needle), "{needle} in\n{toml}");
    }
    // Pasted into a config as it is, it loads the file.
    let toml = toml
        .replace("name = \"erp-latin1\"", "name = \"sales\"")
        .replace("lake/erp-latin1", "lake/sales");
    d.write_config(&toml);
    drop_fixture(&d, "erp-latin1.csv");
    d.run_once();
    let rows = rows_by(&d.table(), "Código");
    // Values that do not fit a type made their column text, so every row loads.
    assert_eq!(rows.len(), 5, "{rows:#?}");
    assert_eq!(rows["0001"]["Total"], v("2469.12"));
}

/// gen-sales.sh --locale pt-BR writes what Brazilian ERPs export; loaded with `locale = "pt-BR"`
/// it gives exactly the values of the same seed in plain format.
#[test]
fn brazilian_generated_files_load_to_the_same_values() {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/gen-sales.sh");
    let d = Dir::empty();
    d.write_config(
        "[[feed]]\nname = \"plain\"\ninbox = \"in-plain\"\ntable = \"lake/plain\"\n\
         [[feed]]\nname = \"br\"\ninbox = \"in-br\"\ntable = \"lake/br\"\nlocale = \"pt-BR\"\n",
    );
    for (dir, extra) in [
        ("in-plain", vec![]),
        (
            "in-br",
            vec!["--locale", "pt-BR", "--encoding", "windows-1252"],
        ),
    ] {
        let status = std::process::Command::new("bash")
            .arg(&script)
            .args(["-n", "3", "-r", "400", "-s", "5", "-o", dir])
            .args(extra)
            .current_dir(&d.root)
            .status()
            .unwrap();
        assert!(status.success());
    }
    let raw = fs::read(d.path("in-br/sales-5-00001.csv")).unwrap();
    assert!(
        raw.contains(&b';') && raw.contains(&0xe9),
        "pt-BR, windows-1252 ('é')"
    );
    d.run_once();
    let key = |r: &std::collections::BTreeMap<String, Option<String>>| {
        [
            "sale_id",
            "sold_at",
            "store_id",
            "quantity",
            "unit_price",
            "total",
            "customer_id",
        ]
        .iter()
        .map(|c| r[*c].clone())
        .collect::<Vec<_>>()
    };
    let mut plain: Vec<_> = table_rows(&d.path("lake/plain")).iter().map(key).collect();
    let mut br: Vec<_> = table_rows(&d.path("lake/br")).iter().map(key).collect();
    plain.sort();
    br.sort();
    assert_eq!(plain.len(), 1200);
    assert_eq!(plain, br);
    assert!(table_rows(&d.path("lake/br"))
        .iter()
        .any(|r| r["payment_method"].as_deref() == Some("crédito")));
}

/// `on_new_column = "add"`: a file with a new column grows the table while running; rows of
/// earlier files read null there, later files without it keep flowing, a restart keeps it.
#[test]
fn a_new_column_evolves_the_table_while_running() {
    let d = Dir::with_feed("", "on_new_column = \"add\"");
    let mut daemon = d.spawn();
    d.drop_file("before.csv", &sales_csv("before", 3));
    d.wait_for_rows(3, &mut daemon);
    let mut with_channel = String::from(HEADER);
    with_channel.push_str(",channel,items\n");
    with_channel.push_str("N1,2024-03-01T10:00:00Z,ST1,P1,1,1.00,1.00,pix,C1,web,3\n");
    with_channel.push_str("N2,2024-03-01T10:00:00Z,ST1,P1,1,1.00,1.00,pix,C1,store,4\n");
    d.drop_file("new-columns.csv", &with_channel);
    d.drop_file("after.csv", &sales_csv("after", 2));
    d.wait_for_rows(7, &mut daemon);
    assert!(
        daemon
            .log()
            .contains("brought new column(s) channel string, items int64"),
        "{}",
        daemon.log()
    );
    let rows = rows_by(&d.table(), "sale_id");
    assert_eq!(rows["N1"]["channel"], v("web"));
    assert_eq!(rows["N2"]["items"], v("4"));
    assert_eq!(rows["before-0"].get("channel").cloned().flatten(), None);
    assert_eq!(rows["after-1"].get("channel").cloned().flatten(), None);
    assert!(daemon.terminate().success());
    // A restart keeps the grown schema; the same file shape loads straight away.
    let mut daemon = d.spawn();
    let mut again = String::from(HEADER);
    again.push_str(",channel,items\nN3,2024-03-01T10:00:00Z,ST1,P1,1,1.00,1.00,pix,C1,app,5\n");
    d.drop_file("again.csv", &again);
    d.wait_for_rows(8, &mut daemon);
    assert_eq!(rows_by(&d.table(), "sale_id")["N3"]["channel"], v("app"));
}

/// Excel's `sep=;` first line names the delimiter; a trailing ';' on every line is no column.
#[test]
fn an_excel_export_with_sep_line_and_trailing_delimiters() {
    let d = Dir::with_feed("", "locale = \"pt-BR\"\n[feed.csv]\ndelimiter = \",\"");
    drop_fixture(&d, "excel-sep-trailing.csv");
    d.run_once();
    let rows = rows_by(&d.table(), "sale_id");
    assert_eq!(rows.keys().collect::<Vec<_>>(), vec!["X1", "X2"]);
    assert_eq!(rows["X1"]["unit_price"], v("1.50"));
    assert_eq!(rows["X2"]["customer_id"], None);
    let q = read_quarantine(&d.path("lake/_quarantine/sales"));
    assert_eq!(q.len(), 1);
    assert_eq!(q[0].line_number, 5, "the sep= line counts");
    let fixture =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/excel-sep-trailing.csv");
    let out = d
        .assert_cmd()
        .args(["sniff", &fixture.to_string_lossy()])
        .assert()
        .success();
    let toml = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(
        toml.contains("{ name = \"customer_id\", type = \"string\" },\n]"),
        "{toml}"
    );
    assert!(toml.contains("delimiter = \";\""), "{toml}");
}

/// No header (columns by position), a backslash escape, mixed line ends, custom null tokens,
/// and an empty string in a NOT NULL text column (a value, not a null).
#[test]
fn headerless_escaped_mixed_line_ends_and_null_tokens() {
    let d = Dir::with_feed(
        "",
        r#"null_values = ["", "NA", "-"]
columns = [
  { name = "id", type = "int64", nullable = false },
  { name = "code", type = "string", nullable = false },
  { name = "note", type = "string" },
  { name = "amount", type = "decimal(10,2)" },
]
[feed.csv]
header = false
escape = "\\""#,
    );
    d.write_in_place(
        "raw.csv",
        b"1,,\"say \\\"hi\\\"\",1.5\r\n2,B,NA,-\n3,C,\"x\\\"y\",2\r\n",
    );
    d.run_once();
    let rows = rows_by(&d.table(), "id");
    assert_eq!(rows.len(), 3, "{rows:#?}");
    assert_eq!(
        rows["1"]["code"],
        v(""),
        "empty text in a NOT NULL column is a value"
    );
    assert_eq!(rows["1"]["note"], v("say \"hi\""));
    assert_eq!(rows["2"]["note"], None, "NA is a null token");
    assert_eq!(rows["2"]["amount"], None, "- is a null token");
    assert_eq!(rows["3"]["note"], v("x\"y"));
    assert_eq!(rows["3"]["amount"], v("2.00"));
}

/// A missing nullable column is null; a missing required one rejects the file.
#[test]
fn missing_columns_nullable_or_required() {
    let d = Dir::new("");
    let no_customer =
        "sale_id,sold_at,store_id,product_id,quantity,unit_price,total,payment_method\n\
                       K1,2024-03-01T10:00:00Z,ST1,P1,1,1.00,1.00,pix\n";
    let no_total = "sale_id,sold_at,store_id,product_id,quantity,unit_price,payment_method\n\
                    K2,2024-03-01T10:00:00Z,ST1,P1,1,1.00,pix\n";
    d.write_in_place("no-customer.csv", no_customer.as_bytes());
    d.write_in_place("no-total.csv", no_total.as_bytes());
    d.run_once();
    let rows = d.rows();
    assert_exactly_once(&rows, &["K1".to_string()]);
    assert_eq!(rows[0].customer_id, None);
    let why = fs::read_to_string(d.path("rejected/no-total.csv.error.txt")).unwrap();
    assert!(why.contains("missing required column(s): total"), "{why}");
}

/// `max_bad_rows` as a count, and an expectation whose action is `fail`.
#[test]
fn bad_row_limits_and_failing_expectations_reject_files() {
    let d = Dir::with_feed(
        "",
        "max_bad_rows = 1\n[[feed.expect]]\ncolumn = \"payment_method\"\none_of = [\"pix\", \"credit\", \"debit\", \"cash\"]\naction = \"fail\"",
    );
    let mut two_bad = sales_csv("two", 3);
    two_bad.push_str("x,1\ny,2\n");
    let mut one_bad = sales_csv("one", 3);
    one_bad.push_str("z,3\n");
    let mut odd_payment = sales_csv("odd", 2);
    odd_payment.push_str("O9,2024-03-01T10:00:00Z,ST1,P1,1,1.00,1.00,barter,C1\n");
    d.write_in_place("two-bad.csv", two_bad.as_bytes());
    d.write_in_place("one-bad.csv", one_bad.as_bytes());
    d.write_in_place("odd.csv", odd_payment.as_bytes());
    d.run_once();
    assert_exactly_once(&d.rows(), &ids("one", 3));
    let why = fs::read_to_string(d.path("rejected/two-bad.csv.error.txt")).unwrap();
    assert!(
        why.contains("more than max_bad_rows (1) bad rows; first: line 5"),
        "{why}"
    );
    let why = fs::read_to_string(d.path("rejected/odd.csv.error.txt")).unwrap();
    assert!(
        why.contains("'barter' is not one of pix, credit, debit, cash"),
        "{why}"
    );
    assert_eq!(read_quarantine(&d.path("lake/_quarantine/sales")).len(), 1);
}
