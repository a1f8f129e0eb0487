//! Column names: `column_names = "original"` keeps every header as written through Delta
//! column mapping (name mode); the Spark-safe folding stays the default, and a table keeps the
//! naming it was created with.

use std::collections::BTreeMap;

use crate::util::*;

fn v(s: &str) -> Option<String> {
    Some(s.to_string())
}

fn names(cols: &[(String, String)]) -> Vec<&str> {
    cols.iter().map(|(l, _)| l.as_str()).collect()
}

fn physical(cols: &[(String, String)]) -> Vec<&str> {
    cols.iter().map(|(_, p)| p.as_str()).collect()
}

fn by<'a>(
    rows: &'a [BTreeMap<String, Option<String>>],
    key: &str,
) -> BTreeMap<String, &'a BTreeMap<String, Option<String>>> {
    rows.iter()
        .map(|r| (r[key].clone().expect("key"), r))
        .collect()
}

fn first_commit(d: &Dir) -> String {
    std::fs::read_to_string(d.table().join("_delta_log/00000000000000000000.json")).unwrap()
}

const VENDAS: &str = "Código do Produto;Valor Total (R$);Data da Venda;Loja\n\
                      P1;1.234,50;2024-03-01;Centro\n\
                      P2;20,00;2024-03-02;Sul\n";

#[test]
fn original_names_are_the_column_names_readers_see_and_the_files_keep_spark_safe_ones() {
    let d = Dir::with_feed(
        "",
        "schema = \"infer\"\ncolumn_names = \"original\"\nlocale = \"pt-BR\"\n",
    );
    d.drop_file("vendas-1.csv", VENDAS);
    d.run_once();
    let cols = logical_columns(&d.table());
    assert_eq!(
        names(&cols),
        [
            "Código do Produto",
            "Valor Total (R$)",
            "Data da Venda",
            "Loja",
            "_source_file",
            "_ingested_at"
        ]
    );
    assert_eq!(
        physical(&cols),
        [
            "codigo_do_produto",
            "valor_total__r$_",
            "data_da_venda",
            "Loja",
            "_source_file",
            "_ingested_at"
        ]
    );
    let v0 = first_commit(&d);
    assert!(
        v0.contains(r#"{"protocol":{"minReaderVersion":2,"minWriterVersion":5}}"#),
        "{v0}"
    );
    assert!(v0.contains(r#""delta.columnMapping.mode":"name""#), "{v0}");
    assert!(
        v0.contains(r#""delta.columnMapping.maxColumnId":"6""#),
        "{v0}"
    );

    // A restart reads the mapped table back and goes on appending to it.
    d.drop_file(
        "vendas-2.csv",
        "Código do Produto;Valor Total (R$);Data da Venda;Loja\nP3;0,99;2024-03-03;Norte\n",
    );
    d.run_once();
    let rows = logical_rows(&d.table());
    assert_eq!(rows.len(), 3);
    let rows = by(&rows, "Código do Produto");
    assert_eq!(rows["P1"]["Valor Total (R$)"], v("1234.50"));
    assert_eq!(rows["P1"]["Data da Venda"], v("2024-03-01"));
    assert_eq!(rows["P2"]["Loja"], v("Sul"));
    assert_eq!(rows["P3"]["Valor Total (R$)"], v("0.99"));
    assert_eq!(rows["P3"]["_source_file"], v("vendas-2.csv"));
    // `inspect` shows the table's columns as readers see them.
    let i = d.json(&["inspect", "--config", "config.toml", "--json"]);
    let shown = i.to_string();
    assert!(shown.contains("\"Valor Total (R$)\""), "{shown}");
    // Statistics are kept by physical name, as the protocol says.
    let log =
        std::fs::read_to_string(d.table().join("_delta_log/00000000000000000002.json")).unwrap();
    assert!(log.contains(r#"\"codigo_do_produto\":\"P3\""#), "{log}");
}

#[test]
fn settings_may_name_columns_as_written_and_upserts_and_the_change_feed_work_on_a_mapped_table() {
    let d = Dir::with_feed(
        "",
        r#"column_names = "original"
merge_key = ["Código do Produto"]
columns = [
  { name = "Código do Produto", type = "string", nullable = false },
  { name = "Valor Total (R$)", type = "decimal(12,2)" },
  { name = "Loja", type = "string" },
]
locale = "pt-BR"
expect = [{ column = "Valor Total (R$)", min = 0 }]
"#,
    );
    d.drop_file(
        "a.csv",
        "Código do Produto;Valor Total (R$);Loja\nP1;10,00;Centro\nP2;20,00;Sul\nP9;-1,00;Sul\n",
    );
    d.run_once();
    d.drop_file(
        "b.csv",
        "Código do Produto;Valor Total (R$);Loja\nP2;25,00;Sul\nP3;30,00;Norte\n",
    );
    d.run_once();
    let rows = logical_rows(&d.table());
    let rows = by(&rows, "Código do Produto");
    assert_eq!(rows.keys().collect::<Vec<_>>(), ["P1", "P2", "P3"]);
    assert_eq!(rows["P2"]["Valor Total (R$)"], v("25.00"));
    assert_eq!(rows["P2"]["_source_file"], v("b.csv"));
    // The row below the expectation's minimum was quarantined, named by the column as written
    // or as deltadrop works with it.
    let q = read_quarantine(&d.table().parent().unwrap().join("_quarantine/sales"));
    assert_eq!(q.len(), 1, "{q:?}");
    // The change feed is on, and the protocol still has column mapping (writer 5 includes the
    // change data feed).
    let v0 = first_commit(&d);
    assert!(
        v0.contains(r#""delta.enableChangeDataFeed":"true""#),
        "{v0}"
    );
    assert!(v0.contains(r#""minWriterVersion":5"#), "{v0}");
    let change_files: Vec<_> = walk(&d.table().join("_change_data"));
    assert!(!change_files.is_empty());
    let logs = std::fs::read_dir(d.table().join("_delta_log"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap_or_default())
        .collect::<String>();
    assert!(!logs.contains(r#""minWriterVersion":4"#), "{logs}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else if p.extension().is_some_and(|x| x == "parquet") {
            out.push(p);
        }
    }
    out
}

#[test]
fn a_new_column_of_a_mapped_table_gets_the_next_id_and_its_name_as_written() {
    let d = Dir::with_feed(
        "",
        "schema = \"infer\"\ncolumn_names = \"original\"\non_new_column = \"add\"\n",
    );
    d.drop_file("a.csv", "Código do Produto,Loja\nP1,Centro\n");
    d.run_once();
    d.drop_file(
        "b.csv",
        "Código do Produto,Loja,Forma de Pagamento\nP2,Sul,PIX\n",
    );
    d.run_once();
    let cols = logical_columns(&d.table());
    assert!(
        cols.contains(&("Forma de Pagamento".into(), "forma_de_pagamento".into())),
        "{cols:?}"
    );
    let rows = logical_rows(&d.table());
    let rows = by(&rows, "Código do Produto");
    assert_eq!(rows["P2"]["Forma de Pagamento"], v("PIX"));
    assert_eq!(rows["P1"]["Forma de Pagamento"], None);
    let logs = std::fs::read_dir(d.table().join("_delta_log"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap_or_default())
        .collect::<String>();
    assert!(
        logs.contains(r#""delta.columnMapping.maxColumnId":"5""#),
        "{logs}"
    );
}

#[test]
fn spark_safe_is_the_default_and_a_table_keeps_the_naming_it_was_created_with() {
    let d = Dir::with_feed("", "schema = \"infer\"\nlocale = \"pt-BR\"\n");
    d.drop_file("vendas-1.csv", VENDAS);
    d.run_once();
    let cols = logical_columns(&d.table());
    assert_eq!(
        names(&cols)[..4],
        [
            "codigo_do_produto",
            "valor_total__r$_",
            "data_da_venda",
            "Loja"
        ]
    );
    assert!(!first_commit(&d).contains("columnMapping"));
    // Asking for the names as written later does not rewrite the table.
    let config = std::fs::read_to_string(d.path("config.toml")).unwrap();
    d.write_config(&config.replace(
        "schema = \"infer\"",
        "schema = \"infer\"\ncolumn_names = \"original\"",
    ));
    d.drop_file(
        "vendas-2.csv",
        "Código do Produto;Valor Total (R$);Data da Venda;Loja\nP3;0,99;2024-03-03;Norte\n",
    );
    d.run_once();
    let rows = logical_rows(&d.table());
    assert_eq!(rows.len(), 3);
    assert_eq!(
        by(&rows, "codigo_do_produto")["P3"]["valor_total__r$_"],
        v("0.99")
    );
    assert_eq!(names(&logical_columns(&d.table()))[..4], names(&cols)[..4]);
}

#[test]
fn sniff_under_original_names_proposes_the_headers_as_written() {
    let d = Dir::with_feed("", "column_names = \"original\"\nlocale = \"pt-BR\"\n");
    let f = d.path("vendas.csv");
    std::fs::write(&f, VENDAS).unwrap();
    let out = d
        .assert_cmd()
        .args(["sniff", "--config", "config.toml", f.to_str().unwrap()])
        .assert()
        .success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    assert!(text.contains("column_names = \"original\""), "{text}");
    assert!(text.contains("name = \"Valor Total (R$)\""), "{text}");
    // What it proposes is a config deltadrop takes.
    let proposed = d.path("proposed.toml");
    std::fs::write(&proposed, &text).unwrap();
    d.assert_cmd()
        .args(["check", "--config", proposed.to_str().unwrap()])
        .assert()
        .success();
}
