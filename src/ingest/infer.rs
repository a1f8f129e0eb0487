//! Schema inference (`schema = "infer"`) and the `deltadrop sniff FILE` report: encoding,
//! dialect, locale and column types guessed from the first rows of a file.

use std::path::Path;

use deltalake::kernel::engine::arrow_conversion::TryIntoKernel;
use deltalake::kernel::StructType;

use crate::config::{Config, FeedConfig, ValueOptions};
use crate::job::file_name;
use crate::schema::{ColType, ColumnSpec, TableSchema};

use super::dialect::dialect_of;
use super::split::Splitter;
use super::window::{Window, HEAD_BYTES};
use super::{fold_name, header_names, source, value, IngestError};

/// What sniffing a file found.
#[derive(Debug, Clone)]
pub struct Sniffed {
    pub encoding: String,
    pub compression: String,
    pub delimiter: u8,
    /// `Some("pt-BR")` when Brazilian number/date formats fit the data better.
    pub locale: Option<&'static str>,
    pub schema: TableSchema,
    pub rows_sampled: usize,
}

/// Reads the header and up to `feed.infer_rows` records of `path` and infers column types with
/// the feed's value options (and, with `try_locales`, with the pt-BR ones too).
pub fn sniff(path: &Path, feed: &FeedConfig, try_locales: bool) -> Result<Sniffed, IngestError> {
    let name = file_name(path);
    let file = std::fs::File::open(path)?;
    let (text, _hash, info) = source::open_text(file, feed.encoding)?;
    let mut win = Window::new(text);
    win.fill_to(HEAD_BYTES)?;
    let (d, skip) = dialect_of(&name, win.head(), &feed.csv);
    let delimiter = d.delimiter;
    let want = feed.infer_rows + usize::from(feed.csv.header);
    let s = loop {
        let s = Splitter::new(d)
            .at_most(want)
            .at_eof(win.eof)
            .max_line_bytes(feed.csv.max_line_bytes)
            .split(&win.buf, skip, 1);
        if s.records.len() >= want || win.eof || win.buf.len() > 64 << 20 {
            break s;
        }
        win.fill()?;
    };
    let mut records = s.records.into_iter().filter(|r| r.error.is_none());
    let header: Vec<String> = if feed.csv.header {
        let h = records.next().ok_or_else(|| {
            IngestError::Reject(format!(
                "{name}: empty file, nothing to infer a schema from"
            ))
        })?;
        h.fields.iter().map(|f| f.trim().to_string()).collect()
    } else {
        Vec::new()
    };
    let rows: Vec<Vec<String>> = records.map(|r| r.fields).collect();
    let width: usize = if feed.csv.header {
        header.len()
    } else {
        rows.first().map(|r| r.len()).unwrap_or(0)
    };
    if width == 0 {
        return Err(IngestError::Reject(format!("{name}: no columns found")));
    }
    // A trailing delimiter on every line makes a last column with no name and no values.
    let mut width = width;
    while width > 1
        && header.get(width - 1).is_some_and(|h| h.is_empty())
        && rows
            .iter()
            .all(|r| r.get(width - 1).is_none_or(|v| v.trim().is_empty()))
    {
        width -= 1;
    }
    let padded: Vec<String> = (0..width)
        .map(|i| header.get(i).cloned().unwrap_or_default())
        .collect();
    let names = header_names(&padded);

    let mut best = (infer_columns(&names, &rows, &feed.values), None);
    if try_locales {
        if let Some(br) = pt_br_values() {
            let alt = infer_columns(&names, &rows, &br);
            if typed_count(&alt) > typed_count(&best.0) {
                best = (alt, Some("pt-BR"));
            }
        }
    }
    Ok(Sniffed {
        encoding: info.encoding.to_string(),
        compression: info.compression.to_string(),
        delimiter,
        locale: best.1,
        schema: TableSchema {
            columns: best.0,
            ..TableSchema::default()
        },
        rows_sampled: rows.len(),
    })
}

/// The table schema a first file gives a `schema = "infer"` feed: inferred from `path`, with
/// the feed's `columns` as hints that override what inference found. A header Delta cannot
/// take as a schema is the file's fault, not the table's: `Reject`, and the next file is
/// tried.
pub fn table_schema(path: &Path, feed: &FeedConfig) -> Result<(TableSchema, usize), IngestError> {
    let s = sniff(path, feed, false)?;
    let mut schema = s.schema;
    schema.rescued = feed.schema.rescued;
    for c in schema.columns.iter_mut() {
        if let Some(h) = feed
            .schema
            .columns
            .iter()
            .find(|h| h.name == c.name || fold_name(&h.name) == fold_name(&c.name))
        {
            *c = h.clone();
        }
    }
    let kernel: Result<StructType, _> = schema.arrow().as_ref().try_into_kernel();
    if let Err(e) = kernel {
        return Err(IngestError::Reject(format!(
            "{}: its header cannot be a Delta schema: {e}",
            file_name(path)
        )));
    }
    Ok((schema, s.rows_sampled))
}

fn pt_br_values() -> Option<ValueOptions> {
    let cfg = Config::from_toml(
        "[[feed]]\nname = \"x\"\nlocale = \"pt-BR\"\n",
        Path::new("/"),
        None,
    )
    .ok()?;
    cfg.feeds.into_iter().next().map(|f| f.values)
}

fn typed_count(cols: &[ColumnSpec]) -> usize {
    cols.iter().filter(|c| c.ty != ColType::String).count()
}

fn infer_columns(names: &[String], rows: &[Vec<String>], opts: &ValueOptions) -> Vec<ColumnSpec> {
    names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let values: Vec<&str> = rows
                .iter()
                .filter_map(|r| r.get(i))
                .map(|v| v.trim())
                .filter(|v| !v.is_empty() && !opts.null_values.iter().any(|n| n == v))
                .collect();
            ColumnSpec::new(name, infer_type(&values, opts), true)
        })
        .collect()
}

/// The narrowest type every value parses as: bool, int64, decimal, float64, date, timestamp,
/// else string.
pub fn infer_type(values: &[&str], opts: &ValueOptions) -> ColType {
    if values.is_empty() {
        return ColType::String;
    }
    let all = |f: &dyn Fn(&str) -> bool| values.iter().all(|v| f(v));
    // Booleans need a word: a column of 0/1 is a number. Single letters (y, n, s, t, f) are
    // codes as often as booleans: they count only when both truth values appear.
    if all(&|v| value::parse_bool(v, opts).is_some())
        && values.iter().any(|v| v.parse::<f64>().is_err())
    {
        let word = values.iter().any(|v| v.trim().chars().count() > 1);
        let both = values
            .iter()
            .any(|v| value::parse_bool(v, opts) == Some(true))
            && values
                .iter()
                .any(|v| value::parse_bool(v, opts) == Some(false));
        if word || both {
            return ColType::Bool;
        }
    }
    // Identifiers with leading zeros (CEP, codes) stay strings.
    let leading_zero = values
        .iter()
        .any(|v| v.len() > 1 && v.starts_with('0') && v.bytes().all(|b| b.is_ascii_digit()));
    // "2.0" reads as the integer 2, but a column written with decimals (a float column of a
    // pandas export) will bring 2.5 next: inferred as a decimal, not an integer.
    let written_with_decimals = values.iter().any(|v| v.contains(opts.decimal_separator));
    if !leading_zero && !written_with_decimals && all(&|v| value::parse_int(v, opts).is_some()) {
        return ColType::Int64;
    }
    if !leading_zero {
        let mut scale = 0usize;
        let mut int_digits = 0usize;
        let decimal_ok = all(&|v| value::parse_decimal_locale(v, 38, 18, opts).is_ok());
        if decimal_ok {
            for v in values {
                if let Ok(x) = value::parse_decimal_locale(v, 38, 18, opts) {
                    let digits = x.unsigned_abs().to_string();
                    // Zero has no significant decimals ("0.0" must not read as 17 of them).
                    let trailing_zeros = if x == 0 {
                        18
                    } else {
                        digits.bytes().rev().take_while(|b| *b == b'0').count()
                    };
                    let s = 18usize.saturating_sub(trailing_zeros.min(18));
                    // As written, too: "1.50" is a two-decimal column even if no sampled
                    // value needs the second digit.
                    let written = v
                        .trim()
                        .rsplit_once(opts.decimal_separator)
                        .map(|(_, f)| f.bytes().take_while(u8::is_ascii_digit).count())
                        .unwrap_or(0);
                    scale = scale.max(s).max(written);
                    int_digits = int_digits.max(digits.len().saturating_sub(18));
                }
            }
            // A sample of 1.5 and 2.5 does not mean the next file has no 1.25: fractions get
            // two decimals at least (money), so that such a row is not quarantined.
            if scale > 0 {
                scale = scale.max(2);
            }
            if scale <= 6 {
                let precision = (int_digits + scale).clamp(18, 38) as u8;
                return ColType::Decimal {
                    precision,
                    scale: scale as i8,
                };
            }
            return ColType::Float64;
        }
        if all(&|v| value::parse_float(v, opts).is_some()) {
            return ColType::Float64;
        }
    }
    if all(&|v| value::parse_date(v, &opts.date_formats).is_some())
        || all(&|v| value::parse_date(v, &[]).is_some())
    {
        return ColType::Date;
    }
    if all(&|v| value::parse_timestamp(v, &opts.timestamp_formats, &opts.timezone).is_some())
        || all(&|v| value::parse_timestamp(v, &[], &opts.timezone).is_some())
    {
        return ColType::Timestamp;
    }
    ColType::String
}

/// A ready-to-paste `[[feed]]` block for a sniffed file.
pub fn feed_toml(path: &Path, s: &Sniffed) -> String {
    let stem = file_name(path);
    let stem = stem.split('.').next().unwrap_or("feed");
    let feed_name: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut out = String::new();
    out.push_str(&format!(
        "# {}: encoding {}, compression {}, delimiter {:?}, {} row(s) sampled\n",
        path.display(),
        s.encoding,
        s.compression,
        s.delimiter as char,
        s.rows_sampled
    ));
    out.push_str("[[feed]]\n");
    out.push_str(&format!("name = \"{feed_name}\"\n"));
    out.push_str("inbox = \"inbox\"\n");
    out.push_str(&format!("table = \"lake/{feed_name}\"\n"));
    if let Some(l) = s.locale {
        out.push_str(&format!("locale = \"{l}\"\n"));
    }
    let enc = s.encoding.to_ascii_lowercase();
    if !enc.starts_with("utf-8") {
        out.push_str(&format!("encoding = \"{enc}\"\n"));
    }
    out.push_str("columns = [\n");
    for c in &s.schema.columns {
        out.push_str(&format!(
            "  {{ name = {}, type = \"{}\" }},\n",
            toml_string(&c.name),
            c.ty
        ));
    }
    out.push_str("]\n\n[feed.csv]\n");
    let delim = match s.delimiter {
        b'\t' => "\\t".to_string(),
        d => (d as char).to_string(),
    };
    out.push_str(&format!("delimiter = \"{delim}\"\n"));
    out
}

fn toml_string(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> ValueOptions {
        Config::embedded(Path::new("/x")).unwrap().feeds[0]
            .values
            .clone()
    }

    #[test]
    fn types_are_inferred_narrowest_first() {
        let o = opts();
        assert_eq!(infer_type(&["1", "2", "-3"], &o), ColType::Int64);
        assert_eq!(
            infer_type(&["1.5", "2.25", "3"], &o),
            ColType::Decimal {
                precision: 18,
                scale: 2
            }
        );
        for sample in [&["1.5", "2.5"][..], &["1.50", "2"][..]] {
            assert_eq!(
                infer_type(sample, &o),
                ColType::Decimal {
                    precision: 18,
                    scale: 2
                },
                "{sample:?}"
            );
        }
        assert_eq!(
            infer_type(&["0.125", "1"], &o),
            ColType::Decimal {
                precision: 18,
                scale: 3
            }
        );
        assert_eq!(
            infer_type(&["1.09", "0.0", "0"], &o),
            ColType::Decimal {
                precision: 18,
                scale: 2
            }
        );
        assert_eq!(
            infer_type(&["1.0", "2.0"], &o),
            ColType::Decimal {
                precision: 18,
                scale: 2
            }
        );
        assert_eq!(infer_type(&["true", "false"], &o), ColType::Bool);
        assert_eq!(infer_type(&["true"], &o), ColType::Bool);
        assert_eq!(infer_type(&["Y", "N", "Y"], &o), ColType::Bool);
        assert_eq!(infer_type(&["y", "y"], &o), ColType::String);
        assert_eq!(infer_type(&["0", "1"], &o), ColType::Int64);
        assert_eq!(infer_type(&["2024-01-02", "2024-02-03"], &o), ColType::Date);
        assert_eq!(
            infer_type(&["2024-01-02T10:00:00Z", "2024-02-03 11:00"], &o),
            ColType::Timestamp
        );
        assert_eq!(infer_type(&["01234", "99"], &o), ColType::String);
        assert_eq!(infer_type(&["a", "1"], &o), ColType::String);
        let br = pt_br_values().unwrap();
        assert_eq!(
            infer_type(&["1.234,56", "10,5"], &br),
            ColType::Decimal {
                precision: 18,
                scale: 2
            }
        );
        assert_eq!(
            infer_type(&["01/03/2024", "31/12/2023"], &br),
            ColType::Date
        );
        assert_eq!(infer_type(&["sim", "não"], &br), ColType::Bool);
    }
}
