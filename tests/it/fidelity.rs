//! Fidelity: a valid file never loses a row. Inference over the whole first file, quoting
//! rules, titles and footers, null words, Spark-safe column names, the per-file dialect record.
//! (`requeue`, which loads quarantined rows again, has its own module.)

use std::fs;

use crate::util::*;

fn v(s: &str) -> Option<String> {
    Some(s.to_string())
}

fn infer_dir() -> Dir {
    Dir::with_feed("", "schema = \"infer\"")
}

/// An 8,000-row file whose amounts gain cents after row 5,000 and whose dd/MM/yyyy dates show
/// a day above 12 only near the end: nothing quarantined, decimal and date columns.
#[test]
fn inference_reads_the_whole_first_file() {
    let d = infer_dir();
    let mut text = String::from("id,amount,day,note\n");
    for i in 0..8000 {
        let amount = if i < 5000 {
            format!("{}", i % 90 + 1)
        } else {
            format!("{}.{:02}", i % 90 + 1, i % 100)
        };
        // Days 1-12 only, until the last rows.
        let day = if i > 7990 { 13 + i % 10 } else { 1 + i % 12 };
        let note = if i == 6000 { "nil" } else { "ok" };
        let amount = if i == 7000 { "N/A".to_string() } else { amount };
        text.push_str(&format!(
            "{i},{amount},{day:02}/{:02}/2024,{note}\n",
            1 + i % 12
        ));
    }
    d.write_in_place("big.csv", text.as_bytes());
    let log = d.run_once();
    assert!(
        read_quarantine(&d.path("lake/_quarantine/sales")).is_empty(),
        "{log}"
    );
    let schema = table_schema(&d.table());
    assert!(
        schema.contains(&("id".into(), "Int64".into())),
        "{schema:?}"
    );
    assert!(
        schema.contains(&("amount".into(), "Decimal128(18, 2)".into())),
        "{schema:?}"
    );
    assert!(
        schema.contains(&("day".into(), "Date32".into())),
        "{schema:?}"
    );
    let rows = rows_by(&d.table(), "id");
    assert_eq!(rows.len(), 8000);
    assert_eq!(
        rows["7995"]["day"],
        v("2024-04-18"),
        "dd/MM decided by the late rows"
    );
    assert_eq!(
        rows["7000"]["amount"], None,
        "N/A is null in a typed column"
    );
    assert_eq!(
        rows["6000"]["note"],
        v("nil"),
        "a null word is text in a text column"
    );

    // The format is kept with the table: a second file (and a restart) reads dates alike.
    d.write_in_place("next.csv", b"id,amount,day,note\n9000,1.50,05/02/2024,x\n");
    d.run_once();
    let rows = rows_by(&d.table(), "id");
    assert_eq!(rows["9000"]["day"], v("2024-02-05"));
}

/// dd/MM or MM/dd cannot be told: text and a warning, never a silently wrong date.
#[test]
fn an_ambiguous_date_column_is_text_with_a_warning() {
    let d = infer_dir();
    d.write_in_place("amb.csv", b"id,day\n1,01/02/2024\n2,03/04/2024\n");
    let log = d.run_once();
    assert!(log.contains("fits both dd/MM/yyyy and MM/dd/yyyy"), "{log}");
    assert_eq!(rows_by(&d.table(), "id")["1"]["day"], v("01/02/2024"));
}

#[test]
fn quoting_follows_one_rule_set() {
    let d = Dir::with_feed(
        "",
        "columns = [{name = \"a\", type = \"string\"}, {name = \"b\", type = \"string\"}, {name = \"c\", type = \"string\"}]",
    );
    d.write_in_place(
        "q.csv",
        b"a,b,c\n1,\"b\" ,c\n2,\"x\"y,z\n3,5'10\",w\n4,\"in, side\",\"two\nlines\"\n5,\"b,\"c,d\n",
    );
    let log = d.run_once();
    let rows = rows_by(&d.table(), "a");
    assert_eq!(
        rows["1"]["b"],
        v("b"),
        "whitespace after a closing quote is dropped\n{log}"
    );
    assert_eq!(
        rows["3"]["b"],
        v("5'10\""),
        "a quote inside an unquoted field is data"
    );
    assert_eq!(rows["4"]["b"], v("in, side"));
    assert_eq!(rows["4"]["c"], v("two\nlines"));
    assert!(
        !rows.contains_key("2") && !rows.contains_key("5"),
        "{rows:?}"
    );
    let q = read_quarantine(&d.path("lake/_quarantine/sales"));
    assert_eq!(q.len(), 2, "{q:#?}");
    assert_eq!(q[0].line_number, 3);
    assert!(
        q[0].error.contains("text after the closing quote"),
        "{}",
        q[0].error
    );
    assert_eq!(q[0].raw_line.as_deref(), Some("2,\"x\"y,z"));
    assert_eq!(q[1].line_number, 7);
}

#[test]
fn a_last_comment_line_and_a_control_character_delimiter() {
    let d = Dir::with_feed(
        "",
        "columns = [{name = \"word\", type = \"string\"}]\n[feed.csv]\ncomment = \"#\"",
    );
    d.write_in_place("c.csv", b"word\nalpha\n# a note\nbeta\n# the end");
    d.run_once();
    let words: Vec<_> = table_rows(&d.table())
        .into_iter()
        .map(|r| r["word"].clone())
        .collect();
    assert_eq!(words, [v("alpha"), v("beta")]);

    let d = Dir::with_feed(
        "",
        "columns = [{name = \"a\", type = \"string\"}, {name = \"b\", type = \"int64\"}]\n[feed.csv]\ndelimiter = \"\\u001f\"",
    );
    d.write_in_place("unit.csv", b"a\x1fb\nx\x1f1\ny\x1f2\n");
    let log = d.run_once();
    assert_eq!(table_rows(&d.table()).len(), 2, "{log}");
}

#[test]
fn titles_and_footers_are_not_rows() {
    let d = Dir::with_feed(
        "",
        "locale = \"pt-BR\"\ncolumns = [{name = \"id\", type = \"int64\"}, {name = \"valor\", type = \"decimal(12,2)\"}]\n[feed.csv]\nskip_rows = 2\nskip_footer = 1",
    );
    d.write_in_place(
        "rel.csv",
        "Relatório de vendas - março\n\nid;valor\n1;1,50\n2;2,25\nTotal;3,75\n".as_bytes(),
    );
    let log = d.run_once();
    assert_eq!(table_rows(&d.table()).len(), 2, "{log}");
    assert!(read_quarantine(&d.path("lake/_quarantine/sales")).is_empty());
    // The file's commit says how it was read; inspect shows it.
    let j = d.inspect_file("rel.csv");
    let dialect = &j["file"]["loaded"][0]["dialect"];
    assert_eq!(dialect["delimiter"], ";", "{j:#}");
    assert_eq!(dialect["skippedLines"]["title"], 2);
    assert_eq!(dialect["skippedLines"]["footer"], 1);
    assert_eq!(dialect["locale"], "pt-BR");
    assert_eq!(dialect["columns"][1], "valor decimal(12,2)");

    // A first file with a title, into an infer feed: rejected, naming the setting.
    let d = infer_dir();
    d.write_in_place("t.csv", b"Sales report\nid,n\n1,2\n3,4\n5,6\n");
    d.run_once();
    let why = fs::read_to_string(d.path("rejected/t.csv.error.txt")).unwrap();
    assert!(why.contains("skip_rows = 1"), "{why}");
}

#[test]
fn explicit_column_names_must_be_spark_safe() {
    let d = Dir::with_feed(
        "",
        "columns = [{name = \"Unit Price\", type = \"decimal(12,2)\"}]",
    );
    let err = d.exits(&["check", "--config", "config.toml"], 2);
    assert!(err.contains("'Unit Price' has ' '"), "{err}");
    assert!(err.contains("name it 'unit_price'"), "{err}");

    // The folded name takes the header as it is written.
    let d = Dir::with_feed(
        "",
        "columns = [{name = \"unit_price\", type = \"decimal(12,2)\"}]",
    );
    d.write_in_place("p.csv", b"Unit Price\n1.50\n");
    d.run_once();
    assert_eq!(table_rows(&d.table())[0]["unit_price"], v("1.50"));
}
