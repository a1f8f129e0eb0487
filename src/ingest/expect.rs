//! Expectations (like Delta Live Tables'): checks on converted values, each with what to do
//! when a row breaks it — count it (`warn`), set the row apart (`quarantine`) or reject the
//! file (`fail`).

use deltalake::arrow::array::{
    Array, ArrayRef, Decimal128Array, Float64Array, Int32Array, Int64Array, StringArray,
};

use crate::config::{Check, ExpectAction, Expectation};
use crate::schema::TableSchema;

use super::value::{self, CellError};

/// A feed's expectations, over one table's columns.
pub(crate) struct Checks<'a> {
    pub(crate) list: &'a [Expectation],
    pub(crate) schema: &'a TableSchema,
}

impl Checks<'_> {
    /// Checks the rows of a converted batch that have not `failed` already: a `quarantine`
    /// violation fails its row (with an error), a `warn` one is counted. Returns the count of
    /// warned rows and the first `fail` violation, if any (the file is then rejected).
    pub(crate) fn run(
        &self,
        columns: &[ArrayRef],
        failed: &mut [bool],
        errors: &mut Vec<CellError>,
    ) -> (u64, Option<CellError>) {
        let mut warned = 0;
        for exp in self.list {
            let Some(ci) = self.schema.position(&exp.column) else {
                continue;
            };
            let arr = &columns[ci];
            for (row, bad) in failed.iter_mut().enumerate() {
                if *bad {
                    continue;
                }
                let Some(message) = violation(&exp.check, arr, row) else {
                    continue;
                };
                let error = CellError {
                    row,
                    column: self.schema.columns[ci].shown().to_string(),
                    message,
                    rescued: None,
                };
                match exp.action {
                    ExpectAction::Warn => warned += 1,
                    ExpectAction::Quarantine => {
                        *bad = true;
                        errors.push(error);
                    }
                    ExpectAction::Fail => return (warned, Some(error)),
                }
            }
        }
        (warned, None)
    }
}

/// The message for a value breaking `check`, if it does.
fn violation(check: &Check, arr: &ArrayRef, row: usize) -> Option<String> {
    let null = arr.is_null(row);
    let text = || -> Option<String> {
        arr.as_any()
            .downcast_ref::<StringArray>()
            .map(|s| s.value(row).to_string())
    };
    match check {
        Check::NotNull => null.then(|| "is null (expect not_null)".to_string()),
        // An empty key (kept as a value in a NOT NULL text column) identifies nothing either.
        Check::KeyNotNull => (null || text().is_some_and(|t| t.trim().is_empty()))
            .then(|| "is empty: a merge_key column identifies the row".to_string()),
        _ if null => None,
        Check::Min(m) => number(arr, row)
            .filter(|v| v < m)
            .map(|v| format!("{v} is below the minimum {m}")),
        Check::Max(m) => number(arr, row)
            .filter(|v| v > m)
            .map(|v| format!("{v} is above the maximum {m}")),
        Check::Regex(re) => text()
            .filter(|s| !re.is_match(s))
            .map(|s| format!("'{}' does not match /{}/", value::clip(&s), re.as_str())),
        Check::OneOf(list) => text()
            .filter(|s| !list.contains(s))
            .map(|s| format!("'{}' is not one of {}", value::clip(&s), list.join(", "))),
        Check::Cpf => text()
            .filter(|s| !value::valid_cpf(s))
            .map(|s| format!("'{}' is not a valid CPF", value::clip(&s))),
        Check::Cnpj => text()
            .filter(|s| !value::valid_cnpj(s))
            .map(|s| format!("'{}' is not a valid CNPJ", value::clip(&s))),
    }
}

fn number(arr: &ArrayRef, row: usize) -> Option<f64> {
    let a = arr.as_any();
    if let Some(x) = a.downcast_ref::<Int64Array>() {
        return Some(x.value(row) as f64);
    }
    if let Some(x) = a.downcast_ref::<Int32Array>() {
        return Some(f64::from(x.value(row)));
    }
    if let Some(x) = a.downcast_ref::<Float64Array>() {
        return Some(x.value(row));
    }
    if let Some(x) = a.downcast_ref::<Decimal128Array>() {
        return Some(x.value(row) as f64 / 10f64.powi(i32::from(x.scale())));
    }
    None
}
