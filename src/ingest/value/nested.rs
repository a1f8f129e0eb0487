//! Struct and array columns, read from JSON text (a JSON lines value, or a CSV field declared
//! `struct<…>`/`array<…>`): each member of an object, or the elements of an array, become a
//! text column of their own that is read by its type exactly as a top-level column is — the
//! same null words, locale, formats and exact decimals — then assembled into the Arrow struct
//! or list. A value that fails names its path (`customer.city`, `items[2].qty`) in its row's
//! quarantine entry, and the whole row is set apart: a row is never loaded with part of an
//! object missing.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use deltalake::arrow::array::{
    Array, ArrayRef, ListArray, StringArray, StringBuilder, StructArray,
};
use deltalake::arrow::buffer::{NullBuffer, OffsetBuffer};
use deltalake::arrow::datatypes::Field;
use serde_json::value::RawValue;

use crate::config::ValueOptions;
use crate::schema::{ColType, ColumnSpec};

use super::super::json::{text_of, Object};
use super::{cell, clip, convert_column, CellError, NullStarts};

/// A struct column of `members` from `text`, a JSON object per row. Keys are matched to
/// members by the name the table shows, then by deltadrop's own (Spark-safe) name; a key the
/// struct does not have is an error of its row, never dropped unseen.
pub(super) fn structs(
    text: &StringArray,
    spec: &ColumnSpec,
    members: &[ColumnSpec],
    opts: &ValueOptions,
    errors: &mut Vec<CellError>,
) -> ArrayRef {
    let n = text.len();
    let lookup = Members::new(members);
    let mut children: Vec<StringBuilder> = members.iter().map(|_| StringBuilder::new()).collect();
    let mut valid = vec![true; n];
    // Rows that hold an object: their members' errors are theirs.
    let mut object = vec![false; n];
    let mut row: Vec<Option<Option<Cow<'_, str>>>> = vec![None; members.len()];
    let nulls = NullStarts::new(opts);
    let column = spec.shown();
    for i in 0..n {
        row.iter_mut().for_each(|v| *v = None);
        match cell(text, i, opts, &nulls) {
            None => {
                valid[i] = false;
                if !spec.nullable {
                    fail(
                        errors,
                        &mut valid,
                        i,
                        column,
                        "empty value in a required column".into(),
                    );
                }
            }
            Some(s) => match serde_json::from_str::<Object>(s) {
                Ok(Object(pairs)) => {
                    object[i] = true;
                    for (pos, (k, v)) in pairs.into_iter().enumerate() {
                        match lookup.find(&k, pos) {
                            // A key written twice: the last value counts, as in JavaScript.
                            Some(c) => row[c] = Some(text_of(v)),
                            // Kept beside the row (`on_new_column = "rescue"`), unless null.
                            None if opts.rescue_members => {
                                if let Some(t) = text_of(v) {
                                    errors.push(CellError {
                                        row: i,
                                        column: format!("{column}.{k}"),
                                        message: String::new(),
                                        rescued: Some(t.into_owned()),
                                    });
                                }
                            }
                            None => fail(
                                errors,
                                &mut valid,
                                i,
                                column,
                                format!(
                                    "key '{}' is not a member of {} (declare it in the column's type, or nested = \"json\" keeps objects as text)",
                                    clip(&k),
                                    spec.ty
                                ),
                            ),
                        }
                    }
                }
                Err(_) => fail(
                    errors,
                    &mut valid,
                    i,
                    column,
                    format!("'{}' is not a JSON object", clip(s)),
                ),
            },
        }
        for (b, v) in children.iter_mut().zip(&row) {
            b.append_option(v.as_ref().and_then(|t| t.as_deref()));
        }
    }
    let arrays = members
        .iter()
        .zip(children)
        .map(|(m, mut b)| {
            let mut inner = Vec::new();
            let array = convert_column(&b.finish(), m, opts, &mut inner);
            lift(inner, column, &object, &mut valid, errors);
            array
        })
        .collect();
    let fields: Vec<Field> = members.iter().map(ColumnSpec::field).collect();
    let nulls = NullBuffer::from(valid);
    // Null rows with non-null values below them (a row with a failing member) are allowed by
    // Arrow; its members' non-null flags hold because every failing row is null here.
    match StructArray::try_new(fields.into(), arrays, Some(nulls)) {
        Ok(a) => Arc::new(a),
        Err(e) => failed_column(text, spec, errors, e.to_string()),
    }
}

/// A struct's members, found by a key: the member at the key's position first (objects
/// usually repeat their keys' order), then by the name the table shows or deltadrop's own, then
/// by the key's Spark-safe form.
struct Members<'a> {
    members: &'a [ColumnSpec],
    index: HashMap<&'a str, usize>,
}

impl<'a> Members<'a> {
    fn new(members: &'a [ColumnSpec]) -> Members<'a> {
        let mut index = HashMap::with_capacity(members.len() * 2);
        for (i, m) in members.iter().enumerate() {
            index.entry(m.name.as_str()).or_insert(i);
            index.entry(m.shown()).or_insert(i);
        }
        Members { members, index }
    }

    fn find(&self, key: &str, pos: usize) -> Option<usize> {
        let same = |m: &ColumnSpec| m.shown() == key || m.name == key;
        if self.members.get(pos).is_some_and(same) {
            return Some(pos);
        }
        self.index.get(key).copied().or_else(|| {
            let safe = crate::schema::column_name_for(key);
            self.members.iter().position(|m| m.name == safe)
        })
    }
}

/// A member column's errors (`inner`) as its struct's: named by path under `column`; a failure
/// sets its row apart where the row holds an object (`object`: a member of a null struct is
/// null whatever its column says); a rescued member passes as it is.
fn lift(
    inner: Vec<CellError>,
    column: &str,
    object: &[bool],
    valid: &mut [bool],
    errors: &mut Vec<CellError>,
) {
    for e in inner {
        let path = format!("{column}.{}", e.column);
        if e.rescued.is_some() {
            errors.push(CellError { column: path, ..e });
        } else if object[e.row] {
            fail(errors, valid, e.row, &path, e.message);
        }
    }
}

/// Row `i` fails: it is null in the column, and its error names `column`.
fn fail(errors: &mut Vec<CellError>, valid: &mut [bool], i: usize, column: &str, message: String) {
    valid[i] = false;
    errors.push(CellError {
        row: i,
        column: column.to_string(),
        message,
        rescued: None,
    });
}

/// An array column of `element`s from `text`, a JSON array per row.
pub(super) fn lists(
    text: &StringArray,
    spec: &ColumnSpec,
    element: &ColType,
    opts: &ValueOptions,
    errors: &mut Vec<CellError>,
) -> ArrayRef {
    let n = text.len();
    let nulls = NullStarts::new(opts);
    let mut valid = vec![true; n];
    let mut offsets: Vec<i32> = Vec::with_capacity(n + 1);
    offsets.push(0);
    let mut values = StringBuilder::new();
    let mut count: i32 = 0;
    for (i, ok) in valid.iter_mut().enumerate() {
        let failed = match cell(text, i, opts, &nulls) {
            None if spec.nullable => Some(None),
            None => Some(Some("empty value in a required column".to_string())),
            Some(s) => match serde_json::from_str::<Vec<&RawValue>>(s) {
                Ok(items) => {
                    for v in items {
                        values.append_option(text_of(v).as_deref());
                        count = count.saturating_add(1);
                    }
                    None
                }
                Err(_) => Some(Some(format!("'{}' is not a JSON array", clip(s)))),
            },
        };
        // Some: the row is null in the column; Some(Some): an error of its row, too.
        if let Some(why) = failed {
            *ok = false;
            if let Some(message) = why {
                errors.push(CellError {
                    row: i,
                    column: spec.shown().to_string(),
                    message,
                    rescued: None,
                });
            }
        }
        offsets.push(count);
    }
    let element_spec = ColumnSpec::new("element", element.clone(), true);
    let mut inner = Vec::new();
    let values = convert_column(&values.finish(), &element_spec, opts, &mut inner);
    for e in inner {
        // The row whose elements hold element e.row: the last offset at or before it.
        let row = offsets.partition_point(|&o| o as usize <= e.row) - 1;
        let at = e.row - offsets[row] as usize;
        valid[row] &= e.rescued.is_some();
        let column = match e.column.strip_prefix("element") {
            Some(rest) => format!("{}[{at}]{rest}", spec.shown()),
            None => format!("{}[{at}]", spec.shown()),
        };
        errors.push(CellError { row, column, ..e });
    }
    let field = Arc::new(Field::new("element", element.arrow(), true));
    match ListArray::try_new(
        field,
        OffsetBuffer::new(offsets.into()),
        values,
        Some(NullBuffer::from(valid)),
    ) {
        Ok(a) => Arc::new(a),
        Err(e) => failed_column(text, spec, errors, e.to_string()),
    }
}

/// A column every row of which failed (Arrow refused to assemble it, which the checks above
/// are there to prevent): all null, each row an error with Arrow's reason.
fn failed_column(
    text: &StringArray,
    spec: &ColumnSpec,
    errors: &mut Vec<CellError>,
    why: String,
) -> ArrayRef {
    for row in 0..text.len() {
        errors.push(CellError {
            row,
            column: spec.shown().to_string(),
            message: format!("cannot be assembled as {}: {why}", spec.ty),
            rescued: None,
        });
    }
    deltalake::arrow::array::new_null_array(&spec.ty.arrow(), text.len())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use deltalake::arrow::util::display::array_value_to_string;

    use super::*;
    use crate::config::Config;

    fn convert(ty: &str, nullable: bool, rows: &[Option<&str>]) -> (Vec<String>, Vec<String>) {
        let opts = Config::from_toml(
            "[[feed]]\nname = \"a\"\nlocale = \"pt-BR\"\n",
            Path::new("/x"),
            None,
        )
        .unwrap()
        .feeds[0]
            .values
            .clone();
        let spec = ColumnSpec::new("c", ty.parse().unwrap(), nullable);
        let mut errors = Vec::new();
        let a = convert_column(&StringArray::from(rows.to_vec()), &spec, &opts, &mut errors);
        assert_eq!(a.data_type(), &spec.ty.arrow());
        let shown = (0..a.len())
            .map(|i| match a.is_null(i) {
                true => "null".to_string(),
                false => array_value_to_string(&a, i).unwrap(),
            })
            .collect();
        let errs = errors
            .iter()
            .map(|e| format!("{} {}: {}", e.row, e.column, e.message))
            .collect();
        (shown, errs)
    }

    #[test]
    fn members_are_read_by_the_feed_s_locale_and_failures_name_their_path() {
        let (shown, errs) = convert(
            "struct<total:decimal(10,2),day:date,inner:struct<n:int32>>",
            true,
            &[
                Some(r#"{"total": "1.234,50", "day": "01/03/2024", "inner": {"n": 7}}"#),
                Some(r#"{"total": "x", "inner": {"n": 99999999999}}"#),
                None,
                Some("NULL"),
                Some("{}"),
            ],
        );
        assert_eq!(shown[0], "{total: 1234.50, day: 2024-03-01, inner: {n: 7}}");
        assert_eq!(shown[1], "null", "a failing row is null in the struct");
        assert_eq!(shown[2..], ["null", "null", "{total: , day: , inner: }"]);
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(errs[0].starts_with("1 c.total: "), "{errs:?}");
        assert!(errs[1].starts_with("1 c.inner.n: "), "{errs:?}");
    }

    #[test]
    fn a_required_member_is_required_only_where_its_struct_is_there() {
        let opts_ty = "struct<id:int64>";
        let mut ty: ColType = opts_ty.parse().unwrap();
        if let ColType::Struct(m) = &mut ty {
            let mut members = m.to_vec();
            members[0].nullable = false;
            *m = members.into();
        }
        let opts = Config::from_toml("[[feed]]\nname = \"a\"\n", Path::new("/x"), None)
            .unwrap()
            .feeds[0]
            .values
            .clone();
        let spec = ColumnSpec::new("c", ty, true);
        let mut errors = Vec::new();
        let rows = StringArray::from(vec![Some(r#"{"id": 1}"#), None, Some(r#"{"other": 1}"#)]);
        let a = convert_column(&rows, &spec, &opts, &mut errors);
        assert_eq!(a.null_count(), 2);
        let errs: Vec<(usize, &str)> = errors.iter().map(|e| (e.row, e.column.as_str())).collect();
        // Row 2 lacks the member and has a key the struct does not: both named.
        assert_eq!(errs, [(2, "c"), (2, "c.id")], "{errors:?}");
    }

    #[test]
    fn arrays_of_arrays_and_element_failures_name_the_index() {
        let (shown, errs) = convert(
            "array<array<int64>>",
            false,
            &[
                Some("[[1, 2], [], [3]]"),
                Some("[[1], [2, \"x\"]]"),
                Some("[]"),
                None,
                Some("{}"),
            ],
        );
        let mut errs = errs;
        errs.sort();
        assert_eq!(shown[0], "[[1, 2], [], [3]]");
        assert_eq!(shown[2], "[]");
        assert_eq!(errs.len(), 3, "{errs:?}");
        assert!(
            errs[0].starts_with("1 c[1][1]: 'x' is not an integer"),
            "{errs:?}"
        );
        assert!(
            errs[1].starts_with("3 c: empty value in a required column"),
            "{errs:?}"
        );
        assert!(
            errs[2].starts_with("4 c: '{}' is not a JSON array"),
            "{errs:?}"
        );
    }
}
