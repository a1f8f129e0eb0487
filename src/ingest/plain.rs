//! Plain stretches, split without a CSV state machine. Most files have no quote at all: a
//! stretch of lines with no quote (nor escape character), no blank or comment line, no lone
//! carriage return, valid UTF-8, and the same number of fields on every line splits exactly as
//! csv-core splits it — at each delimiter and line end. Such a stretch is split here with one
//! SIMD scan (`memchr`) straight into text columns, instead of csv-core's byte-by-byte state
//! machine and arrow-csv's copies (perf: the two were ~17 % of a large file's CPU). Anything
//! else is left to the general path (the batch loop), which keeps every quoting rule.

use std::sync::Arc;

use deltalake::arrow::array::{ArrayRef, RecordBatch, StringBuilder};
use deltalake::arrow::datatypes::SchemaRef;

use super::split::Dialect;

/// What [`split`] made of a stretch.
pub(crate) enum Plain {
    /// `rows` records as text columns; they end at `end` (after the last line end, or at the
    /// end of the text).
    Batch {
        text: RecordBatch,
        end: usize,
        /// Line ends in the stretch (each record is one line).
        lines: u64,
    },
    /// Not a plain stretch: the general path reads it.
    No,
}

/// Whether `buf[from..]` holds at least `rows` whole lines (one scan, stopping there).
pub(crate) fn has_lines(buf: &[u8], from: usize, rows: usize) -> bool {
    rows == 0
        || memchr::memchr_iter(b'\n', &buf[from..])
            .nth(rows - 1)
            .is_some()
}

/// Splits up to `rows` lines of `buf[from..]` into the text columns of `schema` (one per file
/// column), if the stretch is plain. `eof`: the buffer ends the text, so a last line without a
/// line end is a record; otherwise such a line is left for the next call.
pub(crate) fn split(
    buf: &[u8],
    from: usize,
    rows: usize,
    d: &Dialect,
    schema: &SchemaRef,
    eof: bool,
) -> Plain {
    let end = match memchr::memchr_iter(b'\n', &buf[from..]).nth(rows.saturating_sub(1)) {
        Some(i) if rows > 0 => from + i + 1,
        _ if eof => buf.len(),
        // Up to the last line end seen (the caller asked for more than there is).
        _ => match memchr::memrchr(b'\n', &buf[from..]) {
            Some(i) => from + i + 1,
            None => return Plain::No,
        },
    };
    let bytes = &buf[from..end];
    if bytes.is_empty()
        || memchr::memchr(d.quote, bytes).is_some()
        || d.escape.is_some_and(|e| memchr::memchr(e, bytes).is_some())
    {
        return Plain::No;
    }
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Plain::No;
    };
    match columns(text, d, schema) {
        Some((columns, lines)) => match RecordBatch::try_new(schema.clone(), columns) {
            Ok(text) => Plain::Batch { text, end, lines },
            Err(_) => Plain::No,
        },
        None => Plain::No,
    }
}

/// The fields of `text` (whole lines) by column, and its line ends; None where a line is not
/// plain (see the module comment).
fn columns(text: &str, d: &Dialect, schema: &SchemaRef) -> Option<(Vec<ArrayRef>, u64)> {
    let n = schema.fields().len();
    let bytes = text.as_bytes();
    let per_column = bytes.len() / n.max(1);
    let rows_guess = memchr::memchr_iter(b'\n', bytes).count() + 1;
    let mut builders: Vec<StringBuilder> = (0..n)
        .map(|_| StringBuilder::with_capacity(rows_guess, per_column))
        .collect();
    let (mut field, mut start, mut lines) = (0usize, 0usize, 0u64);
    let line_start = |start: usize| -> Option<()> {
        // A blank line or a comment line is no record: the general path skips it.
        match bytes.get(start) {
            Some(b'\n' | b'\r') => None,
            Some(c) if d.comment == Some(*c) => None,
            _ => Some(()),
        }
    };
    line_start(0)?;
    for at in memchr::memchr3_iter(d.delimiter, b'\n', b'\r', bytes) {
        match bytes[at] {
            b'\r' => {
                // A carriage return ends a line only before a line feed here; csv-core also
                // ends a record at a lone one.
                if bytes.get(at + 1) != Some(&b'\n') {
                    return None;
                }
            }
            b'\n' => {
                let value_end = if at > 0 && bytes[at - 1] == b'\r' {
                    at - 1
                } else {
                    at
                };
                push(&mut builders, field, text.get(start..value_end)?)?;
                if field + 1 != n {
                    return None;
                }
                lines += 1;
                field = 0;
                start = at + 1;
                if start < bytes.len() {
                    line_start(start)?;
                }
            }
            _ => {
                push(&mut builders, field, text.get(start..at)?)?;
                field += 1;
                start = at + 1;
            }
        }
    }
    if start < bytes.len() {
        // The text's last line, without a line end.
        push(&mut builders, field, text.get(start..)?)?;
        if field + 1 != n {
            return None;
        }
    }
    let columns = builders
        .into_iter()
        .map(|mut b| Arc::new(b.finish()) as ArrayRef)
        .collect();
    Some((columns, lines))
}

/// Appends one field's value to its column; None past the last column.
fn push(builders: &mut [StringBuilder], field: usize, value: &str) -> Option<()> {
    let b = builders.get_mut(field)?;
    // arrow-csv reads an empty field as null: so does the general path.
    if value.is_empty() {
        b.append_null();
    } else {
        b.append_value(value);
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use deltalake::arrow::array::{Array, StringArray};
    use deltalake::arrow::datatypes::{DataType, Field, Schema};

    const D: Dialect = Dialect {
        delimiter: b',',
        quote: b'"',
        escape: None,
        comment: Some(b'#'),
    };

    fn schema(n: usize) -> SchemaRef {
        Arc::new(Schema::new(
            (0..n)
                .map(|i| Field::new(format!("c{i}"), DataType::Utf8, true))
                .collect::<Vec<_>>(),
        ))
    }

    fn values(p: &Plain) -> Vec<Vec<Option<String>>> {
        let Plain::Batch { text, .. } = p else {
            panic!("not plain")
        };
        (0..text.num_rows())
            .map(|r| {
                text.columns()
                    .iter()
                    .map(|c| {
                        let s = c.as_any().downcast_ref::<StringArray>().unwrap();
                        (!s.is_null(r)).then(|| s.value(r).to_string())
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn plain_lines_split_as_csv_core_splits_them() {
        let buf = b"a,b,c\r\n1,,x y\n\xc3\xa9,2,3";
        let p = split(buf, 0, 10, &D, &schema(3), true);
        let s = |v: &str| Some(v.to_string());
        assert_eq!(
            values(&p),
            vec![
                vec![s("a"), s("b"), s("c")],
                vec![s("1"), None, s("x y")],
                vec![s("é"), s("2"), s("3")],
            ]
        );
        let Plain::Batch { end, lines, .. } = p else {
            unreachable!()
        };
        assert_eq!((end, lines), (buf.len(), 2));
        // Not at the end of the text: the cut last line waits; `rows` bounds the batch.
        let p = split(buf, 0, 10, &D, &schema(3), false);
        assert!(matches!(
            p,
            Plain::Batch {
                end: 14,
                lines: 2,
                ..
            }
        ));
        let p = split(buf, 0, 1, &D, &schema(3), false);
        assert!(matches!(
            p,
            Plain::Batch {
                end: 7,
                lines: 1,
                ..
            }
        ));
        assert!(has_lines(buf, 0, 2) && !has_lines(buf, 0, 3));
    }

    #[test]
    fn anything_else_is_left_to_the_general_path() {
        for buf in [
            &b"a,\"b\",c\n"[..],
            b"a,b\n",
            b"a,b,c,d\n",
            b"a,b,c\n\n1,2,3\n",
            b"a,b,c\n#x\n",
            b"a,b,c\r1,2,3\n",
            b"a,\xff,c\n",
            b"",
        ] {
            let p = split(buf, 0, 10, &D, &schema(3), true);
            assert!(matches!(p, Plain::No), "{:?}", String::from_utf8_lossy(buf));
        }
        let escaped = Dialect {
            escape: Some(b'\\'),
            ..D
        };
        let p = split(b"a,b\\,c\n", 0, 10, &escaped, &schema(3), true);
        assert!(matches!(p, Plain::No));
    }
}
