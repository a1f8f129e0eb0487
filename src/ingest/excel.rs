//! Workbooks (`format = "xlsx"`, or `auto` on `.xlsx`, `.xlsm`, `.xlsb`, `.xls`, `.ods`), read
//! with calamine. A sheet becomes CSV text in memory — one line per sheet row, every cell as the
//! value it stores, never its display text — and goes through the CSV path from there, so a
//! workbook feed has everything a CSV feed has (types, null words, expectations, quarantine,
//! lineage, corrections, requeue, infer). What only a workbook needs is done here:
//!
//! - the sheet: `sheet = "Vendas"`, or else the first whose header matches the table (the first
//!   sheet when the table has no columns yet); the log says which was taken of several;
//! - values: numbers as stored (`0.1` stays `0.1`, `21.0` reads `21`), dates and times from the
//!   serial number in the workbook's date system (1900 or 1904) as ISO text, booleans as
//!   `true`/`false`, an error cell as its text (`#DIV/0!`: a bad value in a typed column);
//! - the layout: title rows before the header and total rows after the data are left out;
//!   merged cells take the value of their top-left cell; a header whose merged cell spans
//!   sub-headers on the row below (`Valores` over `Unitário` and `Total`) is read as one header
//!   (`Valores Unitário`, `Valores Total`); empty trailing rows and columns are dropped.
//!
//! A bad row is named by its sheet row: the CSV text's lines map back to the rows they came from.

use std::io::Cursor;

use calamine::{open_workbook_auto_from_rs, Data, Dimensions, Reader, Sheets};

use super::IngestError;

/// Workbooks larger than this are refused: a sheet is read into memory whole.
pub(super) const MAX_WORKBOOK_BYTES: u64 = 512 << 20;

/// How many first non-empty rows are looked at for title rows and the header.
const HEAD_ROWS: usize = 20;

/// One sheet of a workbook, as the CSV path reads it.
pub(crate) struct Sheet {
    /// The sheet's name.
    pub(crate) name: String,
    /// The header and data rows as CSV text (`,` and `"`), a line end after each row.
    pub(crate) csv: Vec<u8>,
    /// The sheet row (1-based) of each physical line of `csv`.
    pub(crate) rows: Vec<u32>,
    /// Rows before the header that were left out (titles, blank rows).
    pub(crate) title_rows: u64,
    /// Rows after the data that were left out (totals).
    pub(crate) footer_rows: u64,
}

impl Sheet {
    /// The sheet row of a physical line of the CSV text.
    pub(crate) fn row_of(&self, line: u64) -> u64 {
        let i = usize::try_from(line.saturating_sub(1)).unwrap_or(usize::MAX);
        self.rows
            .get(i)
            .or(self.rows.last())
            .map_or(line, |r| u64::from(*r))
    }
}

/// What decides the sheet and its layout.
pub(super) struct Wanted<'a> {
    /// `sheet = "..."`.
    pub(super) sheet: Option<&'a str>,
    /// Whether a header (as its names) fits the table; the first sheet that fits is taken.
    pub(super) fits: &'a dyn Fn(&[String]) -> bool,
    /// The feed's `csv.skip_rows` / `csv.skip_footer`: when set, no title or total rows are
    /// looked for (the CSV path skips what they say).
    pub(super) skip_rows: usize,
    pub(super) skip_footer: usize,
    /// The feed expects a header row.
    pub(super) header: bool,
    /// The feed's decimal separator: a number cell is rendered with it, as the feed reads text.
    pub(super) decimal: char,
}

/// Reads the sheet `wanted` says from a workbook's bytes.
pub(super) fn read_sheet(
    bytes: Vec<u8>,
    file: &str,
    wanted: &Wanted,
) -> Result<Sheet, IngestError> {
    let mut wb = open_workbook_auto_from_rs(Cursor::new(bytes)).map_err(|e| {
        IngestError::Reject(format!(
            "{file}: not a workbook deltadrop can read (xlsx, xlsm, xlsb, xls or ods): {e}"
        ))
    })?;
    let sheets = wb.sheet_names();
    if sheets.is_empty() {
        return Err(IngestError::Reject(format!(
            "{file}: the workbook has no sheet"
        )));
    }
    let candidates: Vec<String> = match wanted.sheet {
        Some(s) => {
            let found = sheets.iter().find(|n| n.as_str() == s).or_else(|| {
                sheets
                    .iter()
                    .find(|n| n.trim().eq_ignore_ascii_case(s.trim()))
            });
            match found {
                Some(n) => vec![n.clone()],
                None => {
                    return Err(IngestError::Reject(format!(
                        "{file}: no sheet named '{s}' (sheet = \"{s}\"); its sheets: {}",
                        sheets.join(", ")
                    )))
                }
            }
        }
        None => sheets.clone(),
    };
    let mut first_error = None;
    for name in &candidates {
        let grid = match grid_of(&mut wb, name, wanted.decimal) {
            Ok(g) => g,
            Err(e) => {
                first_error.get_or_insert(format!("{file}: sheet '{name}': {e}"));
                continue;
            }
        };
        let sheet = layout(grid, name, wanted);
        let Some(sheet) = sheet else { continue };
        if wanted.sheet.is_some() || !wanted.header || (wanted.fits)(&header_of(&sheet)) {
            if wanted.sheet.is_none() && sheets.len() > 1 {
                log::info!(
                    "{file}: took sheet '{name}' of {} ({}): the first {}; set sheet = \"...\" to choose",
                    sheets.len(),
                    sheets.join(", "),
                    if wanted.header { "whose header fits the table" } else { "with rows" }
                );
            }
            return Ok(sheet);
        }
    }
    Err(IngestError::Reject(first_error.unwrap_or_else(|| {
        if candidates.len() == 1 {
            format!("{file}: sheet '{}' has no rows", candidates[0])
        } else {
            format!(
                "{file}: none of its sheets ({}) has a header that fits the table: set sheet = \"...\" to name one (its mismatch is then reported)",
                sheets.join(", ")
            )
        }
    })))
}

/// The header names of a laid-out sheet (its first CSV record).
fn header_of(sheet: &Sheet) -> Vec<String> {
    let mut rdr = csv_core::Reader::new();
    let mut out = vec![0u8; sheet.csv.len().min(1 << 20) + 1024];
    let mut ends = vec![0usize; 4096];
    let (_, _, _, n_ends) = rdr.read_record(&sheet.csv, &mut out, &mut ends);
    let mut names = Vec::with_capacity(n_ends);
    let mut start = 0;
    for &e in &ends[..n_ends] {
        names.push(String::from_utf8_lossy(&out[start..e]).trim().to_string());
        start = e;
    }
    names
}

/// The sheet as text cells, merged cells filled, from row 0 and column 0 (so that indexes are
/// sheet rows and columns).
fn grid_of<RS: std::io::Read + std::io::Seek>(
    wb: &mut Sheets<RS>,
    name: &str,
    decimal: char,
) -> Result<Grid, String> {
    let range = wb.worksheet_range(name).map_err(|e| e.to_string())?;
    let merges: Vec<Dimensions> = match wb {
        Sheets::Xlsx(x) => x.merge_cells_by_sheet_name(name).unwrap_or_default(),
        #[allow(deprecated)]
        Sheets::Xls(x) => x.worksheet_merge_cells(name).unwrap_or_default(),
        _ => Vec::new(),
    };
    let Some((r0, c0)) = range.start() else {
        return Ok(Grid::default());
    };
    let (r0, c0) = (r0 as usize, c0 as usize);
    let mut cells: Vec<Vec<String>> = vec![Vec::new(); r0];
    for row in range.rows() {
        let mut r: Vec<String> = vec![String::new(); c0];
        r.extend(row.iter().map(|d| text_of(d, decimal)));
        cells.push(r);
    }
    let mut grid = Grid { cells, merges };
    grid.fill_merges();
    grid.trim();
    Ok(grid)
}

/// A cell as the text the CSV path reads: the stored value.
fn text_of(d: &Data, decimal: char) -> String {
    match d {
        Data::Empty => String::new(),
        Data::String(s) => s.clone(),
        Data::Int(i) => i.to_string(),
        Data::Float(f) if decimal != '.' => number(*f).replace('.', &decimal.to_string()),
        Data::Float(f) => number(*f),
        Data::Bool(b) => b.to_string(),
        Data::DateTime(dt) => {
            let (y, mo, da, h, mi, s, ms) = dt.to_ymd_hms_milli();
            let time = if ms > 0 {
                format!("{h:02}:{mi:02}:{s:02}.{ms:03}")
            } else {
                format!("{h:02}:{mi:02}:{s:02}")
            };
            if dt.is_duration() || dt.as_f64().abs() < 1.0 {
                // A time of day (or a duration) without a date.
                time
            } else if (h, mi, s, ms) == (0, 0, 0, 0) {
                format!("{y:04}-{mo:02}-{da:02}")
            } else {
                format!("{y:04}-{mo:02}-{da:02}T{time}")
            }
        }
        Data::DateTimeIso(s) | Data::DurationIso(s) => s.clone(),
        Data::Error(e) => e.to_string(),
    }
}

/// A stored number: an integral value without a fraction (`21`, not `21.0`), others as the
/// shortest text that reads back to the same double (`0.1`, not `0.1000000000000000055`).
fn number(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{}", f as i64)
    } else {
        format!("{f}")
    }
}

/// A sheet's cells as text, rows and columns from 0.
#[derive(Default)]
struct Grid {
    cells: Vec<Vec<String>>,
    merges: Vec<Dimensions>,
}

impl Grid {
    fn cell(&self, r: usize, c: usize) -> &str {
        self.cells
            .get(r)
            .and_then(|row| row.get(c))
            .map_or("", String::as_str)
    }

    fn filled(&self, r: usize) -> usize {
        self.cells
            .get(r)
            .map_or(0, |row| row.iter().filter(|c| !c.trim().is_empty()).count())
    }

    /// Every cell of a merged region holds its top-left value.
    fn fill_merges(&mut self) {
        for m in &self.merges {
            let (top, left) = (m.start.0 as usize, m.start.1 as usize);
            let v = self.cell(top, left).to_string();
            for r in top..=(m.end.0 as usize).min(self.cells.len().saturating_sub(1)) {
                let row = &mut self.cells[r];
                let end = m.end.1 as usize;
                if row.len() <= end {
                    row.resize(end + 1, String::new());
                }
                for cell in &mut row[left..=end] {
                    if cell.is_empty() {
                        cell.clone_from(&v);
                    }
                }
            }
        }
    }

    /// Drops trailing empty rows and columns (a formatted but empty cell far out).
    fn trim(&mut self) {
        while self
            .cells
            .last()
            .is_some_and(|r| r.iter().all(|c| c.is_empty()))
        {
            self.cells.pop();
        }
        let width = self
            .cells
            .iter()
            .map(|r| r.iter().rposition(|c| !c.is_empty()).map_or(0, |i| i + 1))
            .max()
            .unwrap_or(0);
        for r in &mut self.cells {
            r.truncate(width);
            r.resize(width, String::new());
        }
    }

    /// Horizontally merged regions that start on row `r`.
    fn spans_on(&self, r: usize) -> Vec<(usize, usize)> {
        self.merges
            .iter()
            .filter(|m| m.start.0 as usize == r && m.end.1 > m.start.1 && m.end.0 == m.start.0)
            .map(|m| (m.start.1 as usize, m.end.1 as usize))
            .collect()
    }
}

/// Title rows, the header (one row, or two when merged cells span sub-headers), the data rows
/// and total rows of a grid, as a [`Sheet`]; None for a sheet without cells.
fn layout(mut g: Grid, name: &str, wanted: &Wanted) -> Option<Sheet> {
    if g.cells.is_empty() {
        return None;
    }
    let header = if wanted.skip_rows > 0 || !wanted.header {
        first_filled(&g, wanted.skip_rows)
    } else {
        header_row(&g)
    }?;
    let mut first_data = header + 1;
    if wanted.header && wanted.skip_rows == 0 {
        let spans = g.spans_on(header);
        let below = header + 1;
        let under_spans = |c: usize| spans.iter().any(|(a, b)| (*a..=*b).contains(&c));
        let sub: Vec<usize> = g
            .cells
            .get(below)
            .map(|r| (0..r.len()).filter(|c| !r[*c].trim().is_empty()).collect())
            .unwrap_or_default();
        if !spans.is_empty() && !sub.is_empty() && sub.iter().all(|c| under_spans(*c)) {
            for c in sub {
                let joined = format!("{} {}", g.cell(header, c).trim(), g.cell(below, c).trim());
                g.cells[header][c] = joined;
            }
            first_data = below + 1;
        }
    }
    let mut last = g.cells.len();
    let mut footers = 0;
    if wanted.skip_footer == 0 {
        while last > first_data && is_total(&g.cells[last - 1]) {
            last -= 1;
            footers += 1;
            while last > first_data && g.filled(last - 1) == 0 {
                last -= 1;
            }
        }
    }
    let mut csv = Vec::new();
    let mut rows = Vec::new();
    for r in std::iter::once(header).chain(first_data..last) {
        if r != header && g.filled(r) == 0 {
            continue;
        }
        let start = csv.len();
        write_row(&mut csv, &g.cells[r]);
        let lines = 1 + memchr::memchr_iter(b'\n', &csv[start..csv.len() - 1]).count();
        rows.extend(std::iter::repeat_n(
            u32::try_from(r + 1).unwrap_or(u32::MAX),
            lines,
        ));
    }
    Some(Sheet {
        name: name.to_string(),
        csv,
        rows,
        title_rows: header as u64,
        footer_rows: footers,
    })
}

/// The first row at or after `from` with a value.
fn first_filled(g: &Grid, from: usize) -> Option<usize> {
    (from..g.cells.len()).find(|r| g.filled(*r) > 0)
}

/// The header row: among the first non-empty rows, the first filled at least half as wide as the
/// widest of them (a title or a note above a table fills one or two cells).
fn header_row(g: &Grid) -> Option<usize> {
    let head: Vec<usize> = (0..g.cells.len())
        .filter(|r| g.filled(*r) > 0)
        .take(HEAD_ROWS)
        .collect();
    let widest = head.iter().map(|r| g.filled(*r)).max()?;
    let need = widest.div_ceil(2).max(2.min(widest));
    head.into_iter().find(|r| g.filled(*r) >= need)
}

/// A totals row: its first value names it so (the words `infer` knows for CSV footers).
fn is_total(row: &[String]) -> bool {
    let first = row
        .iter()
        .find(|c| !c.trim().is_empty())
        .map(|c| c.trim().to_lowercase())
        .unwrap_or_default();
    let word = first.trim_end_matches(':');
    [
        "total",
        "totals",
        "totais",
        "total geral",
        "grand total",
        "soma",
        "sum",
    ]
    .contains(&word)
}

/// One CSV record and its line end; a field is quoted when it holds `,`, `"` or a line end, or
/// starts or ends with a space (kept as written).
fn write_row(out: &mut Vec<u8>, cells: &[String]) {
    for (i, c) in cells.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let quote = c.contains([',', '"', '\n', '\r']) || c.starts_with(' ') || c.ends_with(' ');
        if quote {
            out.push(b'"');
            out.extend_from_slice(c.replace('"', "\"\"").as_bytes());
            out.push(b'"');
        } else {
            out.extend_from_slice(c.as_bytes());
        }
    }
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid(rows: &[&[&str]]) -> Grid {
        Grid {
            cells: rows
                .iter()
                .map(|r| r.iter().map(|c| c.to_string()).collect())
                .collect(),
            merges: Vec::new(),
        }
    }

    fn wanted(fits: &dyn Fn(&[String]) -> bool) -> Wanted<'_> {
        Wanted {
            sheet: None,
            fits,
            skip_rows: 0,
            skip_footer: 0,
            header: true,
            decimal: '.',
        }
    }

    #[test]
    fn titles_and_totals_are_left_out_and_rows_keep_their_sheet_row() {
        let yes = |_: &[String]| true;
        let g = grid(&[
            &["Report", "", ""],
            &["", "", ""],
            &["id", "name", "amount"],
            &["1", "a, b", "2.5"],
            &["", "", ""],
            &["2", "two\nlines", "3"],
            &["3", "c", "1"],
            &["Total", "", "6.5"],
        ]);
        let s = layout(g, "S", &wanted(&yes)).unwrap();
        assert_eq!(
            String::from_utf8(s.csv.clone()).unwrap(),
            "id,name,amount\n1,\"a, b\",2.5\n2,\"two\nlines\",3\n3,c,1\n"
        );
        assert_eq!((s.title_rows, s.footer_rows), (2, 1));
        assert_eq!(s.rows, [3, 4, 6, 6, 7]);
        assert_eq!(s.row_of(5), 7);
    }

    #[test]
    fn a_merged_cell_over_sub_headers_makes_one_header() {
        let yes = |_: &[String]| true;
        let mut g = grid(&[
            &["Code", "Values", "", "Store"],
            &["", "Unit", "Total", ""],
            &["1", "2", "4", "SP"],
        ]);
        g.merges.push(Dimensions {
            start: (0, 1),
            end: (0, 2),
        });
        g.fill_merges();
        let s = layout(g, "S", &wanted(&yes)).unwrap();
        assert_eq!(
            header_of(&s),
            ["Code", "Values Unit", "Values Total", "Store"]
        );
        assert_eq!(s.rows, [1, 3]);
    }

    #[test]
    fn numbers_are_read_as_stored() {
        assert_eq!(number(21.0), "21");
        assert_eq!(number(0.1), "0.1");
        assert_eq!(number(1234567.89), "1234567.89");
        assert_eq!(number(-3.0), "-3");
        assert_eq!(number(1e20), "100000000000000000000");
    }
}
