//! Entry points for the fuzz targets (fuzz/) and for the corpus replay test: the same code runs
//! under the fuzzer and in `cargo test`.

use std::io::Write;
use std::path::Path;

use crate::config::Config;
use crate::schema::TableSchema;

const FEEDS: [&str; 7] = [
    "[[feed]]\nname = \"f\"\n",
    "[[feed]]\nname = \"f\"\nlocale = \"pt-BR\"\nencoding = \"utf-8\"\non_new_column = \"rescue\"\n[feed.csv]\ndelimiter = \"auto\"\ncomment = \"#\"\nmax_line_bytes = 4096\n",
    "[[feed]]\nname = \"f\"\nheader_match = \"insensitive\"\nmax_bad_rows = \"50%\"\ncolumns = [{name = \"a\", type = \"int32\"}, {name = \"b\", type = \"date\", format = \"dd/MM/yyyy\"}, {name = \"c\", type = \"bool\"}, {name = \"d\", type = \"float64\"}, {name = \"e\", type = \"decimal(38,10)\"}, {name = \"f\", type = \"timestamp\", format = \"epoch_ms\"}]\n[feed.csv]\nheader = false\nbatch_rows = 3\n",
    "[[feed]]\nname = \"f\"\nschema = \"infer\"\n[feed.csv]\nskip_rows = 1\nskip_footer = 2\ncomment = \"#\"\ndelimiter = \"\\u001f\"\n",
    "[[feed]]\nname = \"f\"\non_bad_row = \"reject_file\"\ntimezone = \"America/Sao_Paulo\"\n[feed.csv]\ndelimiter = \";\"\nescape = \"\\\\\"\nbatch_rows = 2\n",
    // JSON lines: types inferred, nested objects and arrays as structs and arrays.
    "[[feed]]\nname = \"f\"\nformat = \"ndjson\"\nschema = \"infer\"\n",
    "[[feed]]\nname = \"f\"\nformat = \"ndjson\"\nlocale = \"pt-BR\"\ncolumns = [{name = \"a\", type = \"struct<b:int32,`C d`:array<decimal(10,2)>,e:struct<f:date>>\"}, {name = \"g\", type = \"array<array<string>>\"}]\n[feed.csv]\nbatch_rows = 3\n",
];

/// Parses `data` as a dropped file under the settings chosen by its first byte.
pub fn ingest_bytes(data: &[u8]) {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let Ok(cfg) = Config::from_toml(FEEDS[selector as usize % FEEDS.len()], Path::new("/"), None)
    else {
        return;
    };
    let feed = &cfg.feeds[0];
    let Ok(mut file) = tempfile::NamedTempFile::new() else {
        return;
    };
    if file.write_all(body).and_then(|_| file.flush()).is_err() {
        return;
    }
    let schema: TableSchema = feed.schema.clone();
    let mut rows = 0usize;
    let result = super::parse_file(file.path(), feed, &schema, 0, |b| {
        rows += b.num_rows();
        Ok(())
    });
    if let Ok(summary) = result {
        assert_eq!(summary.rows as usize, rows);
        for b in &summary.bad {
            assert!(!b.error.is_empty());
        }
    }
    let _ = super::infer::sniff(file.path(), feed, selector % 2 == 0);
}

/// Parses `data` as a config file.
pub fn config_text(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(cfg) = Config::from_toml(&text, Path::new("/srv"), None) {
        let _ = cfg.describe();
    }
}
