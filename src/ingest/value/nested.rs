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
    let mut index: HashMap<&str, usize> = HashMap::with_capacity(members.len() * 2);
    for (i, m) in members.iter().enumerate() {
        index.entry(m.name.as_str()).or_insert(i);
        index.entry(m.shown()).or_insert(i);
    }
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
                    for (k, v) in pairs {
                        let at = index.get(k.as_ref()).copied().or_else(|| {
                            let safe = crate::schema::column_name_for(&k);
                            members.iter().position(|m| m.name == safe)
                        });
                        match at {
                            // A key written twice: the last value counts, as in JavaScript.
                            Some(c) => row[c] = Some(text_of(v)),
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
    let mut arrays = Vec::with_capacity(members.len());
    for (m, mut b) in members.iter().zip(children) {
        let mut inner = Vec::new();
        arrays.push(convert_column(&b.finish(), m, opts, &mut inner));
        for e in inner {
            // A member of a null struct is null whatever its column says.
            if object[e.row] {
                let path = format!("{column}.{}", e.column);
                fail(errors, &mut valid, e.row, &path, e.message);
            }
        }
    }
    let fields: Vec<Field> = members.iter().map(ColumnSpec::field).collect();
    let nulls = NullBuffer::from(valid);
    // Null rows with non-null values below them (a row with a failing member) are allowed by
    // Arrow; its members' non-null flags hold because every failing row is null here.
    match StructArray::try_new(fields.into(), arrays, Some(nulls)) {
        Ok(a) => Arc::new(a),
        Err(e) => failed_column(text, spec, errors, e.to_string()),
    }
}

/// Row `i` fails: it is null in the column, and its error names `column`.
fn fail(errors: &mut Vec<CellError>, valid: &mut [bool], i: usize, column: &str, message: String) {
    valid[i] = false;
    errors.push(CellError {
        row: i,
        column: column.to_string(),
        message,
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
        valid[row] = false;
        let column = match e.column.strip_prefix("element") {
            Some(rest) => format!("{}[{at}]{rest}", spec.shown()),
            None => format!("{}[{at}]", spec.shown()),
        };
        errors.push(CellError {
            row,
            column,
            message: e.message,
        });
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
        });
    }
    deltalake::arrow::array::new_null_array(&spec.ty.arrow(), text.len())
}
