//! Schema inference (`schema = "infer"`) and the `deltadrop sniff FILE` report: encoding,
//! dialect, locale, header, title and footer lines, and column types, from a file.
//!
//! What is read: every row of a file whose text is up to [`INFER_BYTES`] (64 MiB); past that,
//! the first 64 MiB and — for a plain (uncompressed) file — an 8 MiB stretch from its middle
//! and one from its end. Every value read is seen by [`ColumnGuess`], so one late value decides
//! as much as an early one.

use std::collections::VecDeque;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use deltalake::kernel::engine::arrow_conversion::TryIntoKernel;
use deltalake::kernel::StructType;

use crate::config::{ColumnNames, Config, FeedConfig, FileFormat, Nested, ValueOptions};
use crate::job::file_name;
use crate::schema::{ColType, ColumnSpec, TableSchema};

use super::dialect::start_of;
use super::guess::{ColumnGuess, Decision};
use super::sniffed::Sniffed;
use super::source::Compression;
use super::split::{Dialect, RawRecord, Splitter};
use super::window::{Window, HEAD_BYTES};
use super::{fold_name, header_names, source, IngestError};

/// All of a first file's text up to this size is read by inference.
pub const INFER_BYTES: usize = 64 << 20;
/// Past it, stretches of this size from the middle and the end of a plain file.
const STRETCH: u64 = 8 << 20;
/// How many first records are looked at for title lines and the header.
const HEAD_RECORDS: usize = 20;
/// How many last records are looked at for footer lines.
const TAIL_RECORDS: usize = 5;

/// Reads `path` as the feed would (its encoding, dialect and `skip_rows`/`skip_footer`) and
/// guesses its columns with the feed's value options (and, with `try_locales`, with the pt-BR
/// ones too).
pub fn sniff(path: &Path, feed: &FeedConfig, try_locales: bool) -> Result<Sniffed, IngestError> {
    let name = file_name(path);
    let mut s = match feed.format_of(path) {
        FileFormat::Ndjson => sniff_ndjson(path, feed, try_locales),
        FileFormat::Excel => sniff_workbook(path, feed, try_locales),
        FileFormat::Parquet => super::columnar::sniff(path),
        FileFormat::Csv => {
            let file = std::fs::File::open(path)?;
            let size = file.metadata().map(|m| m.len()).unwrap_or(0);
            sniff_csv(&name, file, Some((path, size)), feed, try_locales)
        }
    }?;
    if feed.column_names != ColumnNames::Original {
        s.schema = s.schema.without_labels();
    }
    Ok(s)
}

/// [`sniff`] of CSV text; `stretches` (the file and its size) lets a large plain file be
/// sampled from its middle and its end too.
fn sniff_csv(
    name: &str,
    file: impl Read + Send + 'static,
    stretches: Option<(&Path, u64)>,
    feed: &FeedConfig,
    try_locales: bool,
) -> Result<Sniffed, IngestError> {
    let (text, _hash, info) = source::open_text(file, feed.encoding)?;
    let mut win = Window::new(text, feed.csv.skip_footer);
    win.set_comment(feed.csv.comment);
    win.fill_to(HEAD_BYTES)?;
    let st = start_of(&mut win, name, &feed.csv)?;
    let (d, start, line) = (st.dialect, st.offset, st.line);
    let mut reader = Reader::new(feed, d, value_options(feed, try_locales));
    let mut sample = reader.read_stream(&mut win, start, line)?;
    let more_wanted = feed.infer_rows == 0;
    let utf16 = info.encoding == encoding_rs::UTF_16LE || info.encoding == encoding_rs::UTF_16BE;
    if let Some((path, size)) = stretches {
        if !win.eof && more_wanted && info.compression == Compression::None && !utf16 {
            sample = reader.read_stretches(path, size, &info)?;
        }
    }
    reader.finish(name, feed, info, sample)
}

/// [`sniff`] of a workbook: its sheet (`sheet`, or the first with rows) laid out as the daemon
/// reads it, then sniffed as that CSV text.
fn sniff_workbook(
    path: &Path,
    feed: &FeedConfig,
    try_locales: bool,
) -> Result<Sniffed, IngestError> {
    let name = file_name(path);
    let bytes = std::fs::read(path)?;
    let sheet = super::workbook_sheet(bytes, &name, feed, &TableSchema::default())?;
    let text_feed = super::sheet_feed(feed);
    let mut s = sniff_csv(
        &name,
        std::io::Cursor::new(sheet.csv),
        None,
        &text_feed,
        try_locales,
    )?;
    s.sheet = Some(sheet.name);
    s.title_lines = 0;
    Ok(s)
}

/// The feed's value options, and with `try_locales` the pt-BR ones too.
fn value_options(
    feed: &FeedConfig,
    try_locales: bool,
) -> Vec<(ValueOptions, Option<&'static str>)> {
    let mut options = vec![(feed.values.clone(), None)];
    if try_locales {
        if let Some(br) = pt_br_values() {
            options.push((br, Some("pt-BR")));
        }
    }
    options
}

/// [`sniff`] for a JSON lines file: its keys (in first-seen order) are the header, certain;
/// its objects' values the rows, up to `infer_rows` of them or the first [`INFER_BYTES`].
fn sniff_ndjson(path: &Path, feed: &FeedConfig, try_locales: bool) -> Result<Sniffed, IngestError> {
    let name = file_name(path);
    let file = std::fs::File::open(path)?;
    let (text, _hash, info) = source::open_text(file, feed.encoding)?;
    let max_rows = match feed.infer_rows {
        0 => usize::MAX,
        n => n,
    };
    let super::ndjson::Sample { names, rows, whole } =
        super::ndjson::sample(text, max_rows, INFER_BYTES as u64, feed.csv.max_line_bytes)?;
    let mut reader = Reader::new(feed, Dialect::RFC4180, value_options(feed, try_locales));
    reader.json = true;
    let record = |line: u64, fields: Vec<String>| RawRecord {
        start: 0,
        end: 0,
        line,
        fields,
        error: None,
    };
    let n = rows.len();
    reader.record(record(1, names));
    for (line, fields) in rows {
        reader.record(record(line, fields));
    }
    let sample = if whole {
        "the whole file".to_string()
    } else {
        format!("its first {n} objects")
    };
    reader.finish(&name, feed, info, sample)
}

/// Feeds records to the guesses: the first ones are held to find titles and the header, the
/// last ones to find footers.
struct Reader<'f> {
    feed: &'f FeedConfig,
    dialect: Dialect,
    /// Per set of value options (the feed's, pt-BR): a guess per column.
    options: Vec<(ValueOptions, Option<&'static str>)>,
    guesses: Vec<Vec<ColumnGuess>>,
    /// The first records, with their physical lines.
    head: Vec<(u64, Vec<String>)>,
    /// The physical line reading started at (after `skip_rows` and a `sep=` line).
    first_line: u64,
    /// Set once the head is settled.
    width: Option<usize>,
    tail: VecDeque<Vec<String>>,
    /// Columns with a value somewhere (a trailing delimiter makes an empty last column).
    has_value: Vec<bool>,
    rows: usize,
    /// Records read (the header among them).
    records: usize,
    /// JSON lines: the first record is the keys, certainly a header; no title or footer lines.
    json: bool,
}

impl<'f> Reader<'f> {
    fn new(
        feed: &'f FeedConfig,
        dialect: Dialect,
        options: Vec<(ValueOptions, Option<&'static str>)>,
    ) -> Self {
        Reader {
            feed,
            dialect,
            guesses: vec![Vec::new(); options.len()],
            options,
            head: Vec::new(),
            first_line: 1,
            width: None,
            tail: VecDeque::new(),
            has_value: Vec::new(),
            rows: 0,
            records: 0,
            json: false,
        }
    }

    /// Every record of the text from `start` (on physical line `line`) up to [`INFER_BYTES`].
    /// Returns what was read.
    fn read_stream(
        &mut self,
        win: &mut Window,
        mut start: usize,
        mut line: u64,
    ) -> Result<String, IngestError> {
        const BATCH: usize = 8192;
        self.first_line = line;
        let mut consumed = 0usize;
        loop {
            let s = Splitter::new(self.dialect)
                .at_most(BATCH)
                .at_eof(win.eof)
                .max_line_bytes(self.feed.csv.max_line_bytes)
                .split(&win.buf, start, line);
            let n = s.records.len();
            consumed += s.end - start;
            start = s.end;
            line = s.end_line;
            for r in s.records {
                self.record(r);
            }
            if win.eof && n < BATCH {
                return Ok("the whole file".into());
            }
            if consumed > INFER_BYTES {
                return Ok(format!("its first {} MiB", INFER_BYTES >> 20));
            }
            if self.feed.infer_rows > 0 && self.records > self.feed.infer_rows {
                return Ok(format!(
                    "its first {} rows (infer_rows)",
                    self.feed.infer_rows
                ));
            }
            if n < BATCH {
                if start > win.buf.len() / 2 {
                    start -= win.compact(start);
                }
                win.fill()?;
            }
        }
    }

    /// A plain file larger than the first stretch: records from its middle and its end too.
    fn read_stretches(
        &mut self,
        path: &Path,
        size: u64,
        info: &source::SourceInfo,
    ) -> Result<String, IngestError> {
        // The rows held back as possible footers were not at the end after all.
        while let Some(r) = self.tail.pop_front() {
            self.feed_row(&r);
        }
        let mut file = std::fs::File::open(path)?;
        for at in [size / 2, size.saturating_sub(STRETCH)] {
            file.seek(SeekFrom::Start(at))?;
            let mut raw = Vec::with_capacity(STRETCH as usize);
            (&mut file).take(STRETCH).read_to_end(&mut raw)?;
            let text = source::decode_stretch(&raw, info);
            // The stretch starts anywhere in a line: from the next line on.
            let Some(nl) = memchr::memchr(b'\n', &text) else {
                continue;
            };
            let at_end = at + STRETCH >= size;
            let s = Splitter::new(self.dialect)
                .at_eof(at_end)
                .max_line_bytes(self.feed.csv.max_line_bytes)
                .split(&text, nl + 1, 1);
            for r in s.records {
                self.record(r);
            }
            if !at_end {
                while let Some(r) = self.tail.pop_front() {
                    self.feed_row(&r);
                }
            }
        }
        Ok(format!(
            "its first {} MiB and {} MiB from its middle and its end",
            INFER_BYTES >> 20,
            STRETCH >> 20
        ))
    }

    fn record(&mut self, r: RawRecord) {
        if r.error.is_some() {
            return;
        }
        self.records += 1;
        if self.width.is_none() {
            self.head.push((r.line, r.fields));
            if self.head.len() >= HEAD_RECORDS {
                self.settle_head();
            }
            return;
        }
        // The last records may be footers: they wait before they count.
        self.tail.push_back(r.fields);
        if self.tail.len() > TAIL_RECORDS {
            if let Some(old) = self.tail.pop_front() {
                self.feed_row(&old);
            }
        }
    }

    /// The width most of the first records have; records before the first of that width are
    /// title lines. The header itself stays first in `head`.
    fn settle_head(&mut self) {
        let mut counts: Vec<(usize, usize)> = Vec::new();
        for (_, r) in self.head.iter().skip(1) {
            match counts.iter_mut().find(|(w, _)| *w == r.len()) {
                Some(c) => c.1 += 1,
                None => counts.push((r.len(), 1)),
            }
        }
        let width = counts
            .iter()
            .max_by_key(|(w, n)| (*n, *w))
            .map(|(w, _)| *w)
            .or_else(|| self.head.first().map(|(_, r)| r.len()))
            .unwrap_or(0);
        self.width = Some(width);
        self.has_value = vec![false; width];
        // JSON lines values that are objects or arrays are guessed as structs and arrays.
        let nested = self.json && self.feed.nested == Nested::Struct;
        self.guesses = self
            .options
            .iter()
            .map(|(o, _)| {
                (0..width)
                    .map(|_| match nested {
                        true => ColumnGuess::nested(o),
                        false => ColumnGuess::new(o),
                    })
                    .collect()
            })
            .collect();
    }

    fn feed_row(&mut self, row: &[String]) {
        if Some(row.len()) != self.width {
            return;
        }
        self.rows += 1;
        for (i, v) in row.iter().enumerate() {
            let v = v.trim();
            if v.is_empty() {
                continue;
            }
            self.has_value[i] = true;
            for ((opts, _), guesses) in self.options.iter().zip(self.guesses.iter_mut()) {
                if !opts.null_values.iter().any(|n| n == v) {
                    guesses[i].add(v, opts);
                }
            }
        }
    }

    /// Decides title lines, header, footers and types.
    fn finish(
        mut self,
        name: &str,
        feed: &FeedConfig,
        info: source::SourceInfo,
        sample: String,
    ) -> Result<Sniffed, IngestError> {
        if self.width.is_none() {
            self.settle_head();
        }
        let width = self.width.unwrap_or(0);
        let edges = self.take_edges(width, feed.csv.header);
        if width == 0 || (self.rows == 0 && edges.header.is_none()) {
            return Err(IngestError::Reject(format!(
                "{name}: empty file, nothing to infer a schema from"
            )));
        }
        let (best, chosen) = self.best_locale();
        let header = self.settle_header(edges.header, best, chosen);
        let width = used_width(width, &header.names, &self.has_value);
        let (columns, warnings) = column_specs(width, &header.names, &header.decisions);
        Ok(Sniffed {
            encoding: info.encoding_label().to_string(),
            compression: info.compression,
            delimiter: self.dialect.delimiter,
            locale: self.options[best].1,
            schema: TableSchema {
                columns,
                ..TableSchema::default()
            },
            rows_sampled: header.rows,
            header: header.is_header || !feed.csv.header,
            title_lines: edges.title_lines,
            footer_lines: edges.footers,
            sample,
            warnings,
            json: self.json,
            sheet: None,
            parquet: false,
        })
    }

    /// Splits the held records into title lines, a header candidate (when the feed expects a
    /// header) and footers, and feeds the rows between them to the guesses.
    fn take_edges(&mut self, width: usize, header_expected: bool) -> Edges {
        let head = std::mem::take(&mut self.head);
        // Title lines: the lines before the first record of the common width.
        let first = head.iter().position(|(_, r)| r.len() == width).unwrap_or(0);
        let title_lines = head
            .get(first)
            .map(|(line, _)| line.saturating_sub(self.first_line) as usize)
            .unwrap_or(0);
        let mut rest = head.into_iter().skip(first).map(|(_, r)| r);
        let header = if header_expected { rest.next() } else { None };
        // Footers: the last records (of a short file, the head's), from the end, while they
        // are not rows.
        let mut tail: Vec<Vec<String>> = rest.collect();
        tail.extend(self.tail.drain(..));
        let json = self.json;
        let footers = tail
            .iter()
            .rev()
            .take_while(|r| !json && (r.len() != width || looks_like_total(r)))
            .count();
        for r in &tail[..tail.len() - footers] {
            self.feed_row(r);
        }
        Edges {
            title_lines,
            header,
            footers,
        }
    }

    /// The locale under which more columns are typed (the first on a tie), and its types.
    fn best_locale(&self) -> (usize, Vec<Decision>) {
        let mut decisions: Vec<Vec<Decision>> = self
            .options
            .iter()
            .zip(&self.guesses)
            .map(|((o, _), g)| g.iter().map(|c| c.decide(o)).collect())
            .collect();
        let typed = |ds: &Vec<Decision>| ds.iter().filter(|d| d.ty != ColType::String).count();
        let best = (0..decisions.len())
            .max_by_key(|i| (typed(&decisions[*i]), usize::MAX - i))
            .unwrap_or(0);
        (best, decisions.swap_remove(best))
    }

    /// Whether the header candidate is a header, and the names and types that follow. A
    /// header row reads as data when its values fit the types the rows below give: then it is
    /// the first row, its values count too, and the types are decided again with them.
    fn settle_header(
        &mut self,
        candidate: Option<Vec<String>>,
        best: usize,
        chosen: Vec<Decision>,
    ) -> Header {
        let rows = self.rows;
        let Some(h) = candidate else {
            return Header {
                is_header: false,
                names: Vec::new(),
                decisions: chosen,
                rows,
            };
        };
        if self.json || !reads_as_data(&h, &chosen, &self.options[best].0) {
            return Header {
                is_header: true,
                names: h.iter().map(|f| f.trim().to_string()).collect(),
                decisions: chosen,
                rows,
            };
        }
        self.feed_row(&h);
        let (o, _) = &self.options[best];
        Header {
            is_header: false,
            names: Vec::new(),
            decisions: self.guesses[best].iter().map(|g| g.decide(o)).collect(),
            rows: rows + 1,
        }
    }
}

/// The records around a file's rows that are not rows.
struct Edges {
    /// Lines before the first record of the common width.
    title_lines: usize,
    /// The first record of that width, when the feed expects a header.
    header: Option<Vec<String>>,
    /// Records at the end that are not rows.
    footers: usize,
}

/// What the first record turned out to be.
struct Header {
    is_header: bool,
    /// The header's names, trimmed (empty when there is no header).
    names: Vec<String>,
    /// A type per column.
    decisions: Vec<Decision>,
    /// Rows sampled (a first record that reads as data among them).
    rows: usize,
}

/// The width without the last columns that have neither a name nor a value: a trailing
/// delimiter on every line makes a last column with no name and no values.
fn used_width(mut width: usize, names: &[String], has_value: &[bool]) -> usize {
    while width > 1 && names.get(width - 1).is_none_or(|h| h.is_empty()) && !has_value[width - 1] {
        width -= 1;
    }
    width
}

/// The first `width` columns, named from the header (or by position), typed by `decisions`;
/// and the warnings of the columns that look typed but are loaded as text.
fn column_specs(
    width: usize,
    names_given: &[String],
    decisions: &[Decision],
) -> (Vec<ColumnSpec>, Vec<String>) {
    let padded: Vec<String> = (0..width)
        .map(|i| names_given.get(i).cloned().unwrap_or_default())
        .collect();
    let names = header_names(&padded);
    // Kept for `column_names = "original"`; `sniff` drops them for the other naming.
    let labels = super::header::header_labels(&padded, &names);
    let mut warnings = Vec::new();
    let columns = names
        .iter()
        .zip(labels)
        .zip(decisions)
        .map(|((n, label), d)| {
            if let Some(w) = &d.warning {
                warnings.push(format!("column '{n}': {w}"));
            }
            ColumnSpec {
                name: n.clone(),
                label,
                ty: d.ty.clone(),
                nullable: true,
                format: d.format.clone(),
            }
        })
        .collect();
    (columns, warnings)
}

/// A last line like "Total;;1.234,56" or "Registros: 120": a footer, whatever its width.
fn looks_like_total(r: &[String]) -> bool {
    let first = r
        .iter()
        .find(|f| !f.trim().is_empty())
        .map(|f| f.trim().to_lowercase())
        .unwrap_or_default();
    [
        "total",
        "totals",
        "totais",
        "soma",
        "sum",
        "count",
        "records",
        "registros",
        "rows",
    ]
    .iter()
    .any(|w| {
        first == *w || first.starts_with(&format!("{w}:")) || first.starts_with(&format!("{w} "))
    })
}

/// Whether a header candidate's values fit the typed columns below it: then it is a row.
fn reads_as_data(h: &[String], decisions: &[Decision], opts: &ValueOptions) -> bool {
    let (mut fit, mut typed) = (0, 0);
    for (v, d) in h.iter().zip(decisions) {
        if d.ty == ColType::String {
            continue;
        }
        typed += 1;
        let mut g = ColumnGuess::new(opts);
        g.add(v.trim(), opts);
        let alone = g.decide(opts);
        if alone.ty == d.ty
            || (matches!(d.ty, ColType::Decimal { .. }) && alone.ty == ColType::Int64)
        {
            fit += 1;
        }
    }
    typed > 0 && fit * 2 > typed
}

/// The table schema a first file gives a `schema = "infer"` feed: inferred from `path`, with
/// the feed's `columns` as hints that override what inference found. A file that cannot give
/// a schema as the feed reads it — a header Delta refuses, no header row where the feed expects
/// one, title lines before it — is the file's fault: `Reject`, naming what to set, and the
/// next file is tried.
pub fn table_schema(path: &Path, feed: &FeedConfig) -> Result<(TableSchema, usize), IngestError> {
    let name = file_name(path);
    let s = sniff(path, feed, false)?;
    if feed.csv.header && !s.header {
        return Err(IngestError::Reject(format!(
            "{name}: its first line reads as data, not a header: set [feed.csv] header = false (its columns are then named column_1, column_2, ...)"
        )));
    }
    if s.title_lines > 0 {
        return Err(IngestError::Reject(format!(
            "{name}: {} line(s) before the header (a title?): set [feed.csv] skip_rows = {}",
            s.title_lines,
            feed.csv.skip_rows + s.title_lines
        )));
    }
    if s.footer_lines > 0 {
        log::warn!(
            "feed {}: {name} ends with {} line(s) that are not rows (totals?): they are bad rows unless [feed.csv] skip_footer = {}",
            feed.name,
            s.footer_lines,
            feed.csv.skip_footer + s.footer_lines
        );
    }
    for w in &s.warnings {
        log::warn!("feed {}: {name}: {w}", feed.name);
    }
    let mut schema = s.schema;
    schema.rescued = feed.schema.rescued;
    for c in schema.columns.iter_mut() {
        if let Some(h) = feed
            .schema
            .columns
            .iter()
            .find(|h| h.name == c.name || fold_name(&h.name) == fold_name(&c.name))
        {
            let label = c.label.take();
            *c = h.clone();
            // A hint names the column as the feed's config does; the file's header is the name
            // as written.
            c.label = c.label.take().or(label);
        }
    }
    let kernel: Result<StructType, _> = schema.arrow().as_ref().try_into_kernel();
    if let Err(e) = kernel {
        return Err(IngestError::Reject(format!(
            "{name}: its header cannot be a Delta schema: {e}"
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

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::ingest::sniffed::feed_toml;

    fn feed(extra: &str) -> FeedConfig {
        Config::from_toml(
            &format!("[[feed]]\nname = \"a\"\nschema = \"infer\"\n{extra}\n"),
            Path::new("/x"),
            None,
        )
        .unwrap()
        .feeds[0]
            .clone()
    }

    fn sniff_text(text: &str, extra: &str) -> Sniffed {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        sniff(f.path(), &feed(extra), false).unwrap()
    }

    fn types(s: &Sniffed) -> Vec<(String, String)> {
        s.schema
            .columns
            .iter()
            .map(|c| (c.name.clone(), c.ty.to_string()))
            .collect()
    }

    #[test]
    fn every_row_of_a_file_is_read_not_the_first_thousand() {
        let mut text = String::from("id,amount,code\n");
        for i in 0..5000 {
            text.push_str(&format!("{i},{i},A{i}\n"));
        }
        text.push_str("5000,12.75,nil\n");
        text.push_str("5001,nil,B\n");
        let s = sniff_text(&text, "");
        assert_eq!(s.rows_sampled, 5002);
        assert_eq!(s.sample, "the whole file");
        assert_eq!(
            types(&s),
            [
                ("id".to_string(), "int64".to_string()),
                ("amount".into(), "decimal(18,2)".into()),
                ("code".into(), "string".into())
            ]
        );
    }

    #[test]
    fn titles_footers_and_a_missing_header_are_recognised() {
        let text = "Relatório de vendas\n\nid;valor\n1;1,50\n2;2,25\nTotal;3,75\n";
        let s = sniff_text(text, "locale = \"pt-BR\"");
        assert_eq!((s.title_lines, s.footer_lines, s.header), (2, 1, true));
        assert_eq!(s.rows_sampled, 2);
        assert_eq!(types(&s)[1].1, "decimal(18,2)");
        let toml = feed_toml(Path::new("v.csv"), &s);
        assert!(
            toml.contains("skip_rows = 2") && toml.contains("skip_footer = 1"),
            "{toml}"
        );

        let s = sniff_text("1,2024-01-05,3.5\n2,2024-01-06,4.5\n3,2024-01-07,1\n", "");
        assert!(!s.header);
        assert_eq!(s.rows_sampled, 3);
        assert_eq!(s.schema.columns[0].name, "column_1");
        assert_eq!(types(&s)[1].1, "date");
        assert!(feed_toml(Path::new("n.csv"), &s).contains("header = false"));

        let s = sniff_text("name,born\nana,2001-02-03\nbia,1999-12-31\n", "");
        assert!(s.header);
    }
}
