//! Quoting, one rule set: csv-core (and so arrow-csv) reads text after a closing quote into the
//! field — `a,"b" ,c` gives `b `, `a,"b"c,d` gives `bc`, `a,"b,"c,d` gives `b,c` — an altered
//! value, silently. deltadrop's rules, checked on the raw bytes of each record:
//!
//! - whitespace (spaces, tabs) between a closing quote and the next delimiter or line end is
//!   ignored: `"b" ,c` is `b`;
//! - any other text after a closing quote makes the record a bad row, with the reason;
//! - a quote inside an unquoted field is data, as in Python's csv module, pandas and Spark:
//!   `5'10",x` is `5'10"`;
//! - inside quotes, a doubled quote is one quote (or, with `escape`, the escaped character).
//!
//! Most files have no quote at all: [`needs_attention`] finds that with one `memchr` pass.

use super::split::Dialect;

/// What the rules say about one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lint {
    Clean,
    /// Whitespace after closing quotes: (field index, bytes to drop from the end of its value).
    Trim(Vec<(usize, usize)>),
    /// Not a record under the rules: why.
    Bad(String),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the start of a field.
    Start,
    /// At the start of a record (a comment line may begin here).
    RecordStart,
    Unquoted,
    Quoted,
    /// Inside quotes, right after the escape character.
    Escaped,
    /// Inside quotes, right after a quote: the closing one, or the first of a doubled pair.
    QuoteSeen,
    /// After a closing quote (and `n` whitespace bytes).
    After(usize),
    Comment,
}

/// The rule checker, fed byte by byte.
struct Checker<'d> {
    d: &'d Dialect,
    state: State,
    field: usize,
    trims: Vec<(usize, usize)>,
    bad: Option<String>,
}

impl<'d> Checker<'d> {
    fn new(d: &'d Dialect) -> Self {
        Checker {
            d,
            state: State::RecordStart,
            field: 0,
            trims: Vec::new(),
            bad: None,
        }
    }

    /// Feeds one byte; true at the end of a record (a line end outside quotes).
    fn feed(&mut self, b: u8) -> bool {
        let d = self.d;
        let line_end = b == b'\n' || b == b'\r';
        let end_field = |c: &mut Self, next: State| {
            c.field += 1;
            c.state = next;
        };
        match self.state {
            State::RecordStart if d.comment == Some(b) => self.state = State::Comment,
            State::Comment => {
                if line_end {
                    self.state = State::RecordStart;
                }
            }
            State::RecordStart | State::Start => {
                if b == d.quote {
                    self.state = State::Quoted;
                } else if b == d.delimiter {
                    end_field(self, State::Start);
                } else if line_end {
                    return self.end_record(line_end && self.state == State::Start);
                } else {
                    self.state = State::Unquoted;
                }
            }
            State::Unquoted => {
                if b == d.delimiter {
                    end_field(self, State::Start);
                } else if line_end {
                    return self.end_record(true);
                }
            }
            State::Quoted => {
                if d.escape == Some(b) {
                    self.state = State::Escaped;
                } else if b == d.quote {
                    self.state = if d.escape.is_some() {
                        State::After(0)
                    } else {
                        State::QuoteSeen
                    };
                }
            }
            State::Escaped => self.state = State::Quoted,
            State::QuoteSeen if b == d.quote => self.state = State::Quoted,
            State::QuoteSeen | State::After(_) => {
                let n = match self.state {
                    State::After(n) => n,
                    _ => 0,
                };
                if b == d.delimiter {
                    self.close_field(n);
                    end_field(self, State::Start);
                } else if line_end {
                    self.close_field(n);
                    return self.end_record(true);
                } else if b == b' ' || b == b'\t' {
                    self.state = State::After(n + 1);
                } else if self.bad.is_none() {
                    self.bad = Some(format!(
                        "field {}: text after the closing quote ({:?}): quote the whole field",
                        self.field + 1,
                        b as char
                    ));
                    // The rest of the field says nothing more.
                    self.state = State::Unquoted;
                } else {
                    self.state = State::Unquoted;
                }
            }
        }
        false
    }

    fn close_field(&mut self, trailing_ws: usize) {
        if trailing_ws > 0 {
            self.trims.push((self.field, trailing_ws));
        }
    }

    /// A line end outside quotes. A blank line (nothing since the last record) is no record.
    fn end_record(&mut self, had_content: bool) -> bool {
        self.state = State::RecordStart;
        self.field = 0;
        had_content
    }

    /// The verdict on what was fed, as one record that has ended (or ends at the input's end).
    fn verdict(mut self) -> Lint {
        if let State::QuoteSeen | State::After(_) = self.state {
            let n = match self.state {
                State::After(n) => n,
                _ => 0,
            };
            self.close_field(n);
        }
        match (self.bad, self.trims.is_empty()) {
            (Some(why), _) => Lint::Bad(why),
            (None, true) => Lint::Clean,
            (None, false) => Lint::Trim(self.trims),
        }
    }
}

/// The rules' verdict on one record's raw bytes (its line end may be included).
pub fn lint_record(raw: &[u8], d: &Dialect) -> Lint {
    if memchr::memchr(d.quote, raw).is_none() {
        return Lint::Clean;
    }
    let mut c = Checker::new(d);
    for &b in raw {
        c.feed(b);
    }
    c.verdict()
}

/// Whether any record of `bytes` (whole records) breaks a rule or has whitespace to drop after
/// a closing quote: then its values must be read record by record.
pub fn needs_attention(bytes: &[u8], d: &Dialect) -> bool {
    if memchr::memchr(d.quote, bytes).is_none() {
        return false;
    }
    let mut c = Checker::new(d);
    for &b in bytes {
        c.feed(b);
        if c.bad.is_some() || !c.trims.is_empty() {
            return true;
        }
    }
    !matches!(c.verdict(), Lint::Clean)
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: Dialect = Dialect {
        delimiter: b',',
        quote: b'"',
        escape: None,
        comment: Some(b'#'),
    };

    #[test]
    fn text_after_a_closing_quote_is_bad_and_whitespace_is_dropped() {
        assert_eq!(lint_record(b"a,\"b\",c\n", &D), Lint::Clean);
        assert_eq!(lint_record(b"a,\"b\" ,c\n", &D), Lint::Trim(vec![(1, 1)]));
        assert_eq!(lint_record(b"a,\"b\"\t \n", &D), Lint::Trim(vec![(1, 2)]));
        assert_eq!(lint_record(b"\"x\"  ", &D), Lint::Trim(vec![(0, 2)]));
        for bad in [&b"a,\"b\"c,d\n"[..], b"a,\"b,\"c,d", b"\"a\"\"b\"x"] {
            match lint_record(bad, &D) {
                Lint::Bad(why) => assert!(why.contains("after the closing quote"), "{why}"),
                other => panic!("{:?}: {other:?}", String::from_utf8_lossy(bad)),
            }
        }
        // Doubled quotes, delimiters and line ends inside quotes are data.
        assert_eq!(lint_record(b"a,\"b \"\"x\"\", y\nz\",c\n", &D), Lint::Clean);
        // A quote inside an unquoted field is data.
        assert_eq!(lint_record(b"5'10\",x\n", &D), Lint::Clean);
    }

    #[test]
    fn an_escape_character_escapes_inside_quotes() {
        let d = Dialect {
            escape: Some(b'\\'),
            ..D
        };
        assert_eq!(lint_record(b"\"a\\\"b\",c\n", &d), Lint::Clean);
        assert!(matches!(lint_record(b"\"a\"b,c\n", &d), Lint::Bad(_)));
    }

    #[test]
    fn whole_stretches_are_checked_record_by_record() {
        let ok = b"h1,h2\n\"a\",b\n# a \"comment\" x\n\"c\"\"\",d\n";
        assert!(!needs_attention(ok, &D));
        assert!(needs_attention(b"h1,h2\n\"a\",b\n\"c\" ,d\n", &D));
        assert!(needs_attention(b"\"a\"b,c\n", &D));
        assert!(!needs_attention(b"no quotes, at all\n", &D));
    }
}
