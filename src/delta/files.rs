//! The data files of a table whose rows can change, with what their statistics say about the
//! columns a change looks for (`_source_file` and the `merge_key` columns): which files can
//! hold the rows a correction or an upsert replaces. The committer builds it once from the
//! table it opened, and its log keeps it current from every commit it writes or reads from
//! another writer — never by loading the table again, whose cost grows with the table
//! (NOTES.md, "the flat commit path").

use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap, HashSet};

use deltalake::arrow::array::{Array, ArrayRef, AsArray};
use deltalake::arrow::datatypes::{
    DataType, Date32Type, Int16Type, Int32Type, Int64Type, Int8Type,
};
use deltalake::kernel::{Action, Add};
use deltalake::{DeltaTable, DeltaTableError};
use serde_json::Value;

use crate::schema::SOURCE_FILE;

/// One active data file.
#[derive(Debug, Clone)]
pub(crate) struct IndexedFile {
    pub(crate) size: i64,
    pub(crate) partition: HashMap<String, Option<String>>,
    /// Column → (min, max) as the statistics give them, for the columns the index keeps.
    /// A column missing here (no statistics, or over the table's indexed columns) prunes
    /// nothing: the file may hold any value of it.
    bounds: HashMap<String, (Value, Value)>,
}

/// The active data files of a table, by path (as the log names them).
#[derive(Debug, Default)]
pub(crate) struct FileIndex {
    columns: Vec<String>,
    files: HashMap<String, IndexedFile>,
}

impl FileIndex {
    /// The table's files as of its loaded snapshot, keeping the bounds of `columns`
    /// (`_source_file` is always kept).
    pub(crate) fn from_table(
        table: &DeltaTable,
        key: &[String],
    ) -> Result<FileIndex, DeltaTableError> {
        let mut index = FileIndex {
            columns: std::iter::once(SOURCE_FILE.to_string())
                .chain(key.iter().cloned())
                .collect(),
            files: HashMap::new(),
        };
        for f in table.snapshot()?.log_data().iter() {
            let bounds = index.bounds(f.stats().as_deref());
            index.files.insert(
                f.path().to_string(),
                IndexedFile {
                    size: f.size(),
                    partition: f.partition_values_map(),
                    bounds,
                },
            );
        }
        Ok(index)
    }

    fn bounds(&self, stats: Option<&str>) -> HashMap<String, (Value, Value)> {
        let Some(stats) = stats.and_then(|s| serde_json::from_str::<Value>(s).ok()) else {
            return HashMap::new();
        };
        self.columns
            .iter()
            .filter_map(|c| {
                let min = stats.get("minValues")?.get(c)?;
                let max = stats.get("maxValues")?.get(c)?;
                (!min.is_null() && !max.is_null()).then(|| (c.clone(), (min.clone(), max.clone())))
            })
            .collect()
    }

    fn add(&mut self, add: &Add) {
        let bounds = self.bounds(add.stats.as_deref());
        self.files.insert(
            add.path.clone(),
            IndexedFile {
                size: add.size,
                partition: add.partition_values.clone(),
                bounds,
            },
        );
    }

    /// The actions of a commit (ours, or another writer's read back).
    pub(crate) fn apply(&mut self, actions: &[Action]) {
        for a in actions {
            match a {
                Action::Add(add) => self.add(add),
                Action::Remove(r) => {
                    self.files.remove(&r.path);
                }
                _ => {}
            }
        }
    }

    /// The files that may hold rows `touch` selects, with what the index knows of them.
    pub(crate) fn candidates(&self, touch: &Touch) -> Vec<(String, IndexedFile)> {
        let mut c: Vec<_> = self
            .files
            .iter()
            .filter(|(_, f)| touch.may_be_in(&f.bounds))
            .map(|(p, f)| (p.clone(), f.clone()))
            .collect();
        c.sort_by(|a, b| a.0.cmp(&b.0));
        c
    }

    /// Whether an added file (another writer's) may hold rows `touch` selects.
    pub(crate) fn may_hold(&self, add: &Add, touch: &Touch) -> bool {
        touch.may_be_in(&self.bounds(add.stats.as_deref()))
    }
}

/// The rows a commit replaces: those loaded from `names` (`on_resend = "replace"`) and those
/// whose key is one of `keys` (`merge_key`).
#[derive(Debug, Default)]
pub(crate) struct Touch {
    pub(crate) names: BTreeSet<String>,
    pub(crate) keys: Option<Keys>,
}

impl Touch {
    pub(crate) fn is_empty(&self) -> bool {
        self.names.is_empty() && self.keys.as_ref().is_none_or(|k| k.rows.is_empty())
    }

    fn may_be_in(&self, bounds: &HashMap<String, (Value, Value)>) -> bool {
        let by_name = !self.names.is_empty()
            && match bounds.get(SOURCE_FILE) {
                Some((Value::String(min), Value::String(max))) => self
                    .names
                    .range::<str, _>((
                        std::ops::Bound::Included(min.as_str()),
                        std::ops::Bound::Included(max.as_str()),
                    ))
                    .next()
                    .is_some(),
                _ => true,
            };
        by_name || self.keys.as_ref().is_some_and(|k| k.may_be_in(bounds))
    }
}

/// The keys of the rows an upsert brings: exact (for matching rows) and, per key column
/// whose type statistics compare, sorted (for skipping files by their min/max).
#[derive(Debug)]
pub(crate) struct Keys {
    pub(crate) columns: Vec<String>,
    /// Each row's key, encoded by [`key_of`].
    pub(crate) rows: HashSet<Vec<u8>>,
    /// Per column: the values as statistics write them, sorted; None: this column's type does
    /// not compare with its statistics, it skips no file.
    sorted: Vec<Option<Vec<Value>>>,
}

impl Keys {
    pub(crate) fn new(columns: Vec<String>) -> Keys {
        let sorted = vec![Some(Vec::new()); columns.len()];
        Keys {
            columns,
            rows: HashSet::new(),
            sorted,
        }
    }

    /// Adds the key of `cols` (the key columns of a batch, in key order) at `row`; false if
    /// it was there already.
    pub(crate) fn insert(&mut self, cols: &[ArrayRef], row: usize) -> bool {
        if !self.rows.insert(key_of(cols, row)) {
            return false;
        }
        for (i, col) in cols.iter().enumerate() {
            let slot = &mut self.sorted[i];
            match stat_value(col, row) {
                Some(v) => {
                    if let Some(list) = slot {
                        list.push(v);
                    }
                }
                None => *slot = None,
            }
        }
        true
    }

    /// Sorts the values for skipping files; call once every key is in.
    pub(crate) fn seal(&mut self) {
        for list in self.sorted.iter_mut().flatten() {
            list.sort_by(|a, b| compare(a, b).unwrap_or(Ordering::Equal));
            list.dedup();
        }
    }

    fn may_be_in(&self, bounds: &HashMap<String, (Value, Value)>) -> bool {
        if self.rows.is_empty() {
            return false;
        }
        // A row matches on every key column: one column whose range holds none of the keys
        // rules the file out.
        for (col, sorted) in self.columns.iter().zip(&self.sorted) {
            let (Some(sorted), Some((min, max))) = (sorted, bounds.get(col)) else {
                continue;
            };
            if compare(min, min).is_none() {
                continue;
            }
            let first = sorted.partition_point(|v| compare(v, min) == Some(Ordering::Less));
            match sorted.get(first) {
                Some(v) if compare(v, max) != Some(Ordering::Greater) => {}
                _ => return false,
            }
        }
        true
    }
}

/// A row's key as bytes: each column's value as text with its length (so that ("ab","c") and
/// ("a","bc") differ), a null as a marker of its own.
pub(crate) fn key_of(cols: &[ArrayRef], row: usize) -> Vec<u8> {
    let mut key = Vec::new();
    for col in cols {
        if col.is_null(row) {
            key.extend_from_slice(&u32::MAX.to_le_bytes());
            continue;
        }
        // The common key types without formatting (every row of every file read is keyed);
        // a column has one type everywhere, so its values compare alike.
        let mut push = |bytes: &[u8]| {
            key.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
            key.extend_from_slice(bytes);
        };
        match col.data_type() {
            DataType::Utf8 => push(col.as_string::<i32>().value(row).as_bytes()),
            DataType::Int64 => push(&col.as_primitive::<Int64Type>().value(row).to_le_bytes()),
            DataType::Int32 => push(&col.as_primitive::<Int32Type>().value(row).to_le_bytes()),
            _ => push(
                deltalake::arrow::util::display::array_value_to_string(col, row)
                    .unwrap_or_default()
                    .as_bytes(),
            ),
        }
    }
    key
}

/// A value as Delta's statistics write it, for the types whose statistics compare exactly.
fn stat_value(col: &ArrayRef, row: usize) -> Option<Value> {
    if col.is_null(row) {
        return None;
    }
    Some(match col.data_type() {
        DataType::Utf8 => Value::from(col.as_string::<i32>().value(row)),
        DataType::Int8 => Value::from(col.as_primitive::<Int8Type>().value(row)),
        DataType::Int16 => Value::from(col.as_primitive::<Int16Type>().value(row)),
        DataType::Int32 => Value::from(col.as_primitive::<Int32Type>().value(row)),
        DataType::Int64 => Value::from(col.as_primitive::<Int64Type>().value(row)),
        DataType::Date32 => Value::from(
            col.as_primitive::<Date32Type>()
                .value_as_date(row)?
                .format("%Y-%m-%d")
                .to_string(),
        ),
        _ => return None,
    })
}

/// Strings by their bytes (how Parquet orders them), integers as integers; other pairs do not
/// compare.
fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::String(a), Value::String(b)) => Some(a.as_bytes().cmp(b.as_bytes())),
        (Value::Number(a), Value::Number(b)) => Some(a.as_i64()?.cmp(&b.as_i64()?)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use deltalake::arrow::array::{Int64Array, StringArray};

    use super::*;

    fn bounds(col: &str, min: Value, max: Value) -> HashMap<String, (Value, Value)> {
        [(col.to_string(), (min, max))].into_iter().collect()
    }

    #[test]
    fn names_skip_files_whose_source_range_holds_none_of_them() {
        let touch = Touch {
            names: ["b.csv".to_string()].into_iter().collect(),
            keys: None,
        };
        assert!(touch.may_be_in(&bounds(SOURCE_FILE, "a.csv".into(), "c.csv".into())));
        assert!(!touch.may_be_in(&bounds(SOURCE_FILE, "c.csv".into(), "d.csv".into())));
        // No statistics: the file may hold anything.
        assert!(touch.may_be_in(&HashMap::new()));
    }

    #[test]
    fn keys_skip_files_whose_range_holds_none_of_them() {
        let mut keys = Keys::new(vec!["id".into()]);
        let ids: ArrayRef = Arc::new(Int64Array::from(vec![5, 500]));
        let cols = [ids];
        assert!(keys.insert(&cols, 0) && keys.insert(&cols, 1));
        assert!(!keys.insert(&cols, 0), "a key is in once");
        keys.seal();
        let touch = Touch {
            names: BTreeSet::new(),
            keys: Some(keys),
        };
        assert!(touch.may_be_in(&bounds("id", 1.into(), 10.into())));
        assert!(touch.may_be_in(&bounds("id", 400.into(), 600.into())));
        assert!(!touch.may_be_in(&bounds("id", 6.into(), 499.into())));
        assert!(!touch.may_be_in(&bounds("id", 501.into(), 900.into())));
    }

    #[test]
    fn keys_of_several_columns_do_not_run_together() {
        let a: ArrayRef = Arc::new(StringArray::from(vec!["ab", "a"]));
        let b: ArrayRef = Arc::new(StringArray::from(vec!["c", "bc"]));
        assert_ne!(key_of(&[a.clone(), b.clone()], 0), key_of(&[a, b], 1));
    }
}
