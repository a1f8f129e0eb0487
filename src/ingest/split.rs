//! Record splitting with `csv-core`, the same state machine arrow-csv uses: for the header, for
//! the first record under a default delimiter, and as the slow path when arrow-csv refuses a
//! batch — it isolates the bad records (wrong field count, invalid UTF-8, too long) with their
//! physical line and raw text.

use csv_core::{ReadRecordResult, Reader, ReaderBuilder};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dialect {
    pub delimiter: u8,
    pub quote: u8,
    pub escape: Option<u8>,
    pub comment: Option<u8>,
}

impl Dialect {
    /// `,` and `"`, no escape, no comments: RFC 4180, and what a reader of another format
    /// hands the header matching (which reads no text).
    pub const RFC4180: Dialect = Dialect {
        delimiter: b',',
        quote: b'"',
        escape: None,
        comment: None,
    };

    /// Runs `f` with a reader for this dialect, as good as new. csv-core computes its DFA in
    /// `build`, which costs more than splitting a small file's header (perf, a 10,000-file
    /// burst: DFA building was ~12 % of all samples, several per file), so each thread keeps the
    /// readers it built and `reset`s them. Not `clone`d: csv-core's `Clone` for its DFA copies
    /// only the transition table, and a cloned reader mis-reads every record.
    fn with_reader<T>(&self, f: impl FnOnce(&mut Reader) -> T) -> T {
        thread_local! {
            static BUILT: std::cell::RefCell<Vec<(Dialect, Reader)>> =
                const { std::cell::RefCell::new(Vec::new()) };
        }
        BUILT.with(|built| {
            let Ok(mut built) = built.try_borrow_mut() else {
                return f(&mut self.reader());
            };
            let i = match built.iter().position(|(d, _)| d == self) {
                Some(i) => i,
                None => {
                    // Feeds name a handful of dialects: a bound keeps this small.
                    if built.len() >= 16 {
                        built.remove(0);
                    }
                    built.push((*self, self.reader()));
                    built.len() - 1
                }
            };
            let rdr = &mut built[i].1;
            rdr.reset();
            f(rdr)
        })
    }

    fn reader(&self) -> Reader {
        let mut b = ReaderBuilder::new();
        b.delimiter(self.delimiter)
            .quote(self.quote)
            .comment(self.comment);
        if let Some(e) = self.escape {
            b.escape(Some(e)).double_quote(false);
        }
        b.build()
    }
}

/// One record of the input.
#[derive(Debug)]
pub struct RawRecord {
    /// Byte range of the record in the buffer (without leading blank lines).
    pub start: usize,
    pub end: usize,
    /// Physical line (1-based) where it starts.
    pub line: u64,
    pub fields: Vec<String>,
    /// Why the record is bad, if it is.
    pub error: Option<String>,
}

impl RawRecord {
    /// The original text, without the line terminator, for the quarantine's `raw_line`.
    pub fn raw(&self, buf: &[u8]) -> String {
        let mut r = &buf[self.start..self.end.min(buf.len())];
        while let Some((last, rest)) = r.split_last() {
            if *last == b'\n' || *last == b'\r' {
                r = rest;
            } else {
                break;
            }
        }
        const MAX: usize = 64 * 1024;
        let cut = &r[..r.len().min(MAX)];
        String::from_utf8_lossy(cut).into_owned()
    }
}

/// Result of one [`Splitter::split`] call.
pub struct Split {
    pub records: Vec<RawRecord>,
    /// Offset just after the last complete record.
    pub end: usize,
    /// Physical line at `end`.
    pub end_line: u64,
}

/// How one call splits: the dialect, and what a good record and the input look like. Built with
/// [`Splitter::new`] (any number of fields, no limits, the buffer is the whole input) and the
/// settings a caller needs.
#[derive(Debug, Clone, Copy)]
pub struct Splitter {
    dialect: Dialect,
    /// The number of fields a good record has.
    expected: Option<usize>,
    max_records: usize,
    /// The buffer ends the input: a last record without a line end is complete.
    eof: bool,
    /// A longer record is a bad one.
    max_line_bytes: usize,
}

impl Splitter {
    pub fn new(dialect: Dialect) -> Splitter {
        Splitter {
            dialect,
            expected: None,
            max_records: usize::MAX,
            eof: true,
            max_line_bytes: usize::MAX,
        }
    }

    /// Records with another number of fields are bad.
    pub fn expecting(self, fields: Option<usize>) -> Splitter {
        Splitter {
            expected: fields,
            ..self
        }
    }

    /// Stops after this many records.
    pub fn at_most(self, records: usize) -> Splitter {
        Splitter {
            max_records: records,
            ..self
        }
    }

    /// Whether the buffer ends the input; if not, a record cut by its end waits for more.
    pub fn at_eof(self, eof: bool) -> Splitter {
        Splitter { eof, ..self }
    }

    pub fn max_line_bytes(self, bytes: usize) -> Splitter {
        Splitter {
            max_line_bytes: bytes,
            ..self
        }
    }

    /// Splits records from `buf[from..]`, whose first byte is on physical line `line`.
    pub fn split(&self, buf: &[u8], from: usize, line: u64) -> Split {
        self.dialect
            .with_reader(|rdr| self.split_with(rdr, buf, from, line))
    }

    fn split_with(&self, rdr: &mut Reader, buf: &[u8], from: usize, line: u64) -> Split {
        let mut out = vec![0u8; 4096];
        let mut ends = vec![0usize; 64];
        let mut acc = Records {
            buf,
            splitter: self,
            line,
            records: Vec::new(),
        };
        let mut pos = from;
        let mut rec_start = from;
        let (mut nout, mut nend) = (0usize, 0usize);
        while acc.records.len() < self.max_records {
            let input = &buf[pos..];
            let (res, nin, no, ne) = rdr.read_record(input, &mut out[nout..], &mut ends[nend..]);
            pos += nin;
            nout += no;
            nend += ne;
            let mut last = false;
            match res {
                ReadRecordResult::OutputFull => {
                    let n = out.len();
                    out.resize(n * 2, 0);
                    continue;
                }
                ReadRecordResult::OutputEndsFull => {
                    let n = ends.len();
                    ends.resize(n * 2, 0);
                    continue;
                }
                ReadRecordResult::End => break,
                ReadRecordResult::InputEmpty if !self.eof => break,
                ReadRecordResult::InputEmpty => {
                    // Signal the end of input so the last record (no final newline) completes.
                    let (res2, _, no2, ne2) =
                        rdr.read_record(&[], &mut out[nout..], &mut ends[nend..]);
                    nout += no2;
                    nend += ne2;
                    if !matches!(res2, ReadRecordResult::Record) {
                        rec_start = pos;
                        break;
                    }
                    last = true;
                }
                ReadRecordResult::Record => {}
            }
            acc.push(rec_start..pos, &out[..nout], &ends[..nend]);
            rec_start = pos;
            nout = 0;
            nend = 0;
            if last {
                break;
            }
        }
        // Lines of whatever was consumed after the last record (blank lines, comments) are
        // counted by the next call from `end`.
        Split {
            records: acc.records,
            end: rec_start,
            end_line: acc.line,
        }
    }
}

/// The records of one [`Splitter::split`] call, and the physical line reached.
struct Records<'a> {
    buf: &'a [u8],
    splitter: &'a Splitter,
    line: u64,
    records: Vec<RawRecord>,
}

impl Records<'_> {
    /// The record csv-core read from `range` of the buffer, its fields being `out` cut at
    /// `ends`.
    fn push(&mut self, range: std::ops::Range<usize>, out: &[u8], ends: &[usize]) {
        let (start, end) = (range.start, range.end);
        let bytes = &self.buf[start..end];
        // Leading blank lines and comment lines belong to no record.
        let lead = leading_skipped(bytes, self.splitter.dialect.comment);
        let first_line = self.line + count_newlines(&bytes[..lead]) as u64;
        self.line += count_newlines(bytes) as u64;
        // csv-core reports a blank line as one empty field: not a record.
        if ends.len() == 1
            && ends[0] == 0
            && bytes[lead..].iter().all(|b| *b == b'\n' || *b == b'\r')
        {
            return;
        }
        let mut rec = RawRecord {
            start: start + lead,
            end,
            line: first_line,
            fields: Vec::new(),
            error: None,
        };
        let max_line_bytes = self.splitter.max_line_bytes;
        if end - start > max_line_bytes {
            rec.error = Some(format!(
                "record of {} bytes is longer than max_line_bytes ({max_line_bytes})",
                end - start
            ));
            self.records.push(rec);
            return;
        }
        let mut prev = 0;
        for (i, &e) in ends.iter().enumerate() {
            match std::str::from_utf8(&out[prev..e]) {
                Ok(s) => rec.fields.push(s.to_string()),
                Err(_) => {
                    rec.error = Some(format!(
                        "field {} is not valid UTF-8 (set encoding = \"windows-1252\" or \"auto\" if the file is not UTF-8)",
                        i + 1
                    ));
                    rec.fields.clear();
                    self.records.push(rec);
                    return;
                }
            }
            prev = e;
        }
        if let Some(n) = self.splitter.expected {
            if rec.fields.len() != n {
                rec.error = Some(format!("{} field(s), the header has {n}", rec.fields.len()));
            }
        }
        self.records.push(rec);
    }
}

/// Bytes of blank lines and comment lines at the start of `bytes`.
fn leading_skipped(bytes: &[u8], comment: Option<u8>) -> usize {
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\n' || bytes[i] == b'\r' {
            i += 1;
        } else if Some(bytes[i]) == comment {
            match memchr::memchr(b'\n', &bytes[i..]) {
                Some(k) => i += k + 1,
                None => return bytes.len(),
            }
        } else {
            break;
        }
    }
    i
}

pub fn count_newlines(bytes: &[u8]) -> usize {
    memchr::memchr_iter(b'\n', bytes).count()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_reused_reader_reads_as_a_new_one() {
        use super::{Dialect, Splitter};
        let d = Dialect {
            delimiter: b';',
            quote: b'"',
            escape: None,
            comment: None,
        };
        // Leaves this thread's reader inside a quoted field, then on another dialect.
        Splitter::new(d).at_eof(false).split(b"x;\"open", 0, 1);
        Splitter::new(Dialect {
            delimiter: b',',
            ..d
        })
        .split(b"a,b\n", 0, 1);
        for _ in 0..3 {
            let s = Splitter::new(d).split(b"a;\"b;c\"\n1;2\n", 0, 1);
            let fields: Vec<_> = s.records.iter().map(|r| r.fields.clone()).collect();
            assert_eq!(fields, vec![vec!["a", "b;c"], vec!["1", "2"]]);
            assert_eq!(s.records[1].line, 2);
        }
    }

    use super::*;

    const D: Dialect = Dialect {
        delimiter: b',',
        quote: b'"',
        escape: None,
        comment: None,
    };

    #[test]
    fn physical_lines_survive_quoted_newlines_and_blank_lines() {
        let buf = b"a,b\n\"x\ny\",1\n\n3,4\r\n5,6";
        let s = Splitter::new(D)
            .expecting(Some(2))
            .at_most(100)
            .max_line_bytes(1 << 20)
            .split(buf, 0, 1);
        let lines: Vec<u64> = s.records.iter().map(|r| r.line).collect();
        assert_eq!(lines, vec![1, 2, 5, 6]);
        assert_eq!(s.records[1].fields, vec!["x\ny", "1"]);
        assert_eq!(s.records[2].raw(buf), "3,4");
        assert_eq!(s.records[3].fields, vec!["5", "6"]);
    }

    #[test]
    fn bad_records_are_named() {
        let buf = b"a,b\n1,2,3\n\xff,1\n";
        let s = Splitter::new(D)
            .expecting(Some(2))
            .at_most(100)
            .max_line_bytes(1 << 20)
            .split(buf, 0, 1);
        assert!(s.records[1]
            .error
            .as_deref()
            .unwrap()
            .contains("3 field(s)"));
        assert!(s.records[2].error.as_deref().unwrap().contains("UTF-8"));
        assert_eq!(s.records[2].line, 3);
    }

    #[test]
    fn a_cut_record_waits_for_more_input() {
        let buf = b"a,b\n1,\"2";
        let s = Splitter::new(D)
            .expecting(Some(2))
            .at_most(100)
            .at_eof(false)
            .max_line_bytes(1 << 20)
            .split(buf, 0, 1);
        assert_eq!(s.records.len(), 1);
        assert_eq!(s.end, 4);
        assert_eq!(s.end_line, 2);
    }

    #[test]
    fn comment_lines_are_skipped_with_their_lines() {
        let d = Dialect {
            comment: Some(b'#'),
            ..D
        };
        let buf = b"a,b\n# note, here\n1,2\n";
        let s = Splitter::new(d)
            .expecting(Some(2))
            .at_most(100)
            .max_line_bytes(1 << 20)
            .split(buf, 0, 1);
        assert_eq!(s.records.len(), 2);
        assert_eq!(s.records[1].line, 3);
        assert_eq!(s.records[1].raw(buf), "1,2");
    }
}
