//! A file's header: the column names it gives (usable as Delta column names, unique), and how
//! they map onto the table's columns — or why the file cannot be loaded into the table.

use crate::config::{FeedConfig, HeaderMatch, OnNewColumn};
use crate::schema::{fold_name, ColumnSpec, TableSchema};

use super::split::{Dialect, RawRecord, Splitter};
use super::window::Window;
use super::IngestError;

/// How the file's columns map onto the table's columns.
pub(crate) struct ColumnPlan {
    /// Column names as the file has them, in file order.
    pub(crate) file_columns: Vec<String>,
    /// For each table column: its index in the file, if the file has it.
    pub(crate) source: Vec<Option<usize>>,
    /// File columns the table does not have (kept in `_rescued_data`).
    pub(crate) rescued: Vec<usize>,
}

impl ColumnPlan {
    /// The table columns the file gives, as `name type` (and the format a value is read
    /// with): at most 200, then a count.
    pub(crate) fn read_as(&self, schema: &TableSchema) -> Vec<String> {
        let present: Vec<String> = schema
            .columns
            .iter()
            .zip(&self.source)
            .filter(|(_, s)| s.is_some())
            .map(|(c, _)| match &c.format {
                Some(f) => format!("{} {} ({f})", c.name, c.ty),
                None => format!("{} {}", c.name, c.ty),
            })
            .collect();
        cap(present)
    }

    /// The table columns the file lacks (null in its rows).
    pub(crate) fn missing(&self, schema: &TableSchema) -> Vec<String> {
        let missing = schema
            .columns
            .iter()
            .zip(&self.source)
            .filter(|(_, s)| s.is_none())
            .map(|(c, _)| c.name.clone())
            .collect();
        cap(missing)
    }

    /// A file without a header: its columns are the table's, in order.
    pub(crate) fn positional(schema: &TableSchema) -> ColumnPlan {
        ColumnPlan {
            file_columns: schema.columns.iter().map(|c| c.name.clone()).collect(),
            source: (0..schema.columns.len()).map(Some).collect(),
            rescued: vec![],
        }
    }
}

/// A list for a file's record, kept short: a wide file is summed up after 200 names.
fn cap(mut v: Vec<String>) -> Vec<String> {
    const MAX: usize = 200;
    if v.len() > MAX {
        let more = v.len() - MAX;
        v.truncate(MAX);
        v.push(format!("... and {more} more"));
    }
    v
}

/// The column names a header row gives: each usable as a Delta column name
/// (`column_name_for`), an empty one named by its position (`column_3`), and a repeated one —
/// which Delta refuses, case-insensitively — made unique with a suffix, so that the second
/// `Name` of an export is `Name_2` (and a `_source_file` column of the file, whose name is
/// deltadrop's own, `_source_file_2`). Inference names columns this way and ingestion matches
/// headers this way, so the two always agree.
pub fn header_names(header: &[String]) -> Vec<String> {
    crate::schema::unique_names(header, &crate::schema::RESERVED)
}

/// What each column of [`header_names`] is named in a table that keeps the names as written
/// (`column_names = "original"`): the header trimmed, where it differs from the name.
/// An empty header keeps its positional name, and a header Delta would take as a repeat
/// (names compare without case) keeps its suffixed one.
pub fn header_labels(header: &[String], names: &[String]) -> Vec<Option<String>> {
    crate::schema::unique_labels(header, names, &crate::schema::RESERVED)
}

/// The header of one file, read for one table.
pub(crate) struct HeaderRead<'a> {
    pub(crate) name: &'a str,
    pub(crate) feed: &'a FeedConfig,
    pub(crate) schema: &'a TableSchema,
    pub(crate) dialect: &'a Dialect,
}

/// How a header's columns matched the table's.
struct Matched {
    source: Vec<Option<usize>>,
    /// File columns the table does not have.
    unknown: Vec<usize>,
}

impl HeaderRead<'_> {
    /// Reads the header record (from `skip`, on physical line `first_line`) and matches it to
    /// the schema; returns the plan, the offset of the first data byte and its physical line.
    pub(crate) fn read(
        &self,
        win: &mut Window,
        skip: usize,
        first_line: u64,
    ) -> Result<(ColumnPlan, usize, u64), IngestError> {
        let (rec, end, end_line) = self.first_record(win, skip, first_line)?;
        let file_columns: Vec<String> = rec.fields.iter().map(|f| f.trim().to_string()).collect();
        Ok((self.plan_for(file_columns, rec.line)?, end, end_line))
    }

    /// The plan for a file whose columns are `file_columns` (a header read on `line`): each
    /// matched to a table column, a required column missing or (under `on_new_column`) an
    /// unknown one refusing the file.
    pub(crate) fn plan_for(
        &self,
        file_columns: Vec<String>,
        line: u64,
    ) -> Result<ColumnPlan, IngestError> {
        let keys = header_names(&file_columns);
        let m = self.match_columns(&file_columns, &keys, line)?;
        let missing: Vec<&ColumnSpec> = self
            .schema
            .columns
            .iter()
            .zip(&m.source)
            .filter(|(c, s)| s.is_none() && !c.nullable)
            .map(|(c, _)| c)
            .collect();
        let policy = self.feed.on_new_column;
        if !m.unknown.is_empty() && missing.is_empty() && policy == OnNewColumn::Add {
            return Err(IngestError::NewColumns(
                m.unknown.iter().map(|i| keys[*i].clone()).collect(),
            ));
        }
        let reject_unknown = !m.unknown.is_empty() && policy == OnNewColumn::Reject;
        if !missing.is_empty() || reject_unknown {
            let unknown: Vec<&str> = if reject_unknown {
                m.unknown
                    .iter()
                    .map(|u| file_columns[*u].as_str())
                    .collect()
            } else {
                Vec::new()
            };
            return Err(IngestError::Reject(self.mismatch(line, &missing, &unknown)));
        }
        let rescued = if self.schema.rescued {
            m.unknown
        } else {
            vec![]
        };
        let plan = ColumnPlan {
            file_columns,
            source: m.source,
            rescued,
        };
        Ok(plan)
    }

    /// The names of the table's columns that none of `file_columns` matches.
    pub(crate) fn unmatched(
        &self,
        file_columns: &[String],
        line: u64,
    ) -> Result<Vec<String>, IngestError> {
        let m = self.match_columns(file_columns, &header_names(file_columns), line)?;
        Ok(self
            .schema
            .columns
            .iter()
            .zip(&m.source)
            .filter(|(_, s)| s.is_none())
            .map(|(c, _)| c.name.clone())
            .collect())
    }

    /// The first record of the file, reading as much as it takes.
    fn first_record(
        &self,
        win: &mut Window,
        skip: usize,
        first_line: u64,
    ) -> Result<(RawRecord, usize, u64), IngestError> {
        let (name, csv) = (self.name, &self.feed.csv);
        let s = loop {
            let s = Splitter::new(*self.dialect)
                .at_most(1)
                .at_eof(win.eof)
                .max_line_bytes(csv.max_line_bytes)
                .split(&win.buf, skip, first_line);
            if !s.records.is_empty() || win.eof {
                break s;
            }
            if win.buf.len() > csv.max_line_bytes {
                return Err(IngestError::Reject(format!(
                    "{name}: the header line is longer than max_line_bytes ({}) — is this a CSV file?",
                    csv.max_line_bytes
                )));
            }
            win.fill()?;
        };
        let (end, end_line) = (s.end, s.end_line);
        let Some(rec) = s.records.into_iter().next() else {
            return Err(IngestError::Reject(format!(
                "{name}: empty file, no header line (expected columns: {})",
                self.column_names().join(", ")
            )));
        };
        if let Some(e) = &rec.error {
            return Err(IngestError::Reject(format!(
                "{name}: line {} (header): {e} — is this a CSV file?",
                rec.line
            )));
        }
        Ok((rec, end, end_line))
    }

    /// Each table column's place in the file, and the file columns the table lacks. `keys`
    /// are the column names the header gives (`header_names`).
    fn match_columns(
        &self,
        file_columns: &[String],
        keys: &[String],
        line: u64,
    ) -> Result<Matched, IngestError> {
        let columns = &self.schema.columns;
        let mut source = vec![None; columns.len()];
        let mut unknown = Vec::new();
        let find = |n: &str| columns.iter().position(|c| c.name == n);
        for (i, col) in file_columns.iter().enumerate() {
            // Exact name first; a header also matches the column name infer/sniff made of it.
            let pos =
                find(col)
                    .or_else(|| find(&keys[i]))
                    .or_else(|| match self.feed.header_match {
                        HeaderMatch::Exact => None,
                        HeaderMatch::Insensitive => {
                            let k = fold_name(col);
                            columns.iter().position(|c| fold_name(&c.name) == k)
                        }
                    });
            // A repeated header takes the column named after its place (`Name_2`) if there
            // is one.
            let pos = match pos {
                Some(t) if source[t].is_some() => {
                    find(&keys[i]).filter(|k| source[*k].is_none()).or(pos)
                }
                other => other,
            };
            match pos {
                Some(t) if source[t].is_some() => {
                    return Err(IngestError::Reject(format!(
                        "{}: line {line} (header): column '{col}' appears twice",
                        self.name
                    )))
                }
                Some(t) => source[t] = Some(i),
                // A column without a name (a trailing delimiter on every line) is not a new
                // column; with rescue its values are kept all the same.
                None if col.is_empty() && self.feed.on_new_column != OnNewColumn::Rescue => {}
                None => unknown.push(i),
            }
        }
        Ok(Matched { source, unknown })
    }

    /// Why the header on `line` does not fit the table.
    fn mismatch(&self, line: u64, missing: &[&ColumnSpec], unknown: &[&str]) -> String {
        let mut msg = format!(
            "{}: line {line} (header) does not match the table:",
            self.name
        );
        if !missing.is_empty() {
            let names: Vec<&str> = missing.iter().map(|c| c.name.as_str()).collect();
            msg.push_str(&format!(
                "\n  missing required column(s): {}",
                names.join(", ")
            ));
        }
        if !unknown.is_empty() {
            let shown: Vec<String> = unknown.iter().take(20).map(|u| format!("'{u}'")).collect();
            msg.push_str(&format!(
                "\n  column(s) the table does not have: {}{} (on_new_column = \"rescue\" keeps them)",
                shown.join(", "),
                if unknown.len() > 20 { ", ..." } else { "" }
            ));
        }
        msg.push_str(&format!(
            "\n  expected header: {}",
            self.column_names()
                .join(&(self.dialect.delimiter as char).to_string())
        ));
        msg
    }

    fn column_names(&self) -> Vec<&str> {
        self.schema
            .columns
            .iter()
            .map(|c| c.name.as_str())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::column_name_for;

    #[test]
    fn labels_are_the_headers_as_written_unless_delta_would_take_one_for_a_repeat() {
        let header: Vec<String> = ["Valor (R$)", "Loja", "", "loja", "_source_file", " Preço "]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let names = header_names(&header);
        assert_eq!(
            names,
            [
                "valor__r$_",
                "Loja",
                "column_3",
                "loja_2",
                "_source_file_2",
                "Preço"
            ]
        );
        let labels = header_labels(&header, &names);
        assert_eq!(
            labels,
            [
                Some("Valor (R$)".to_string()),
                None,
                None,
                // `loja` is `Loja` again to Delta (names compare without case).
                None,
                // deltadrop's own column keeps its name.
                None,
                // A name Spark takes is its own label (trimmed).
                None,
            ]
        );
    }

    #[test]
    fn names_fold_for_insensitive_matching() {
        assert_eq!(fold_name(" Preço Unitário "), "preco_unitario");
        assert_eq!(fold_name("Sale-ID"), "sale_id");
        assert_eq!(fold_name("DATA DA VENDA"), "data_da_venda");
        assert_eq!(column_name_for("Valor (R$)"), "valor__r$_");
        assert_eq!(column_name_for("ID"), "ID");
        let header: Vec<String> = ["a", "", "A", "a_2", "x y", "a"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            header_names(&header),
            ["a", "column_2", "A_2", "a_2_2", "x_y", "a_3"]
        );
        let lineage = vec!["_source_file".to_string(), "_Ingested_At".to_string()];
        assert_eq!(header_names(&lineage), ["_source_file_2", "_Ingested_At_2"]);
    }
}
