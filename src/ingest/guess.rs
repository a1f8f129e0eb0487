//! A column's type, guessed value by value: every value of the sample is seen once, and each
//! candidate type it does not fit is dropped — so a type that fails late in the sample widens
//! (integer → decimal → text) instead of quarantining the rows that come later. The narrowest
//! type every value fits wins: bool, int64, decimal (float64 past 6 decimals), date, timestamp,
//! else string. Dates are decided by the whole sample: `01/02/2024` fits dd/MM and MM/dd, a
//! `13/02/2024` anywhere settles it; still ambiguous at the end, the column is text (never a
//! silently wrong date).

use crate::config::ValueOptions;
use crate::schema::{ColType, TimeFormat};

use super::value;

mod nested;
use nested::NestedGuess;

/// Date formats tried besides the feed's own (chrono syntax). Day/month pairs are decided by
/// the sample.
const DATE_FORMATS: [&str; 7] = [
    "%Y-%m-%d", "%d/%m/%Y", "%m/%d/%Y", "%d-%m-%Y", "%m-%d-%Y", "%d.%m.%Y", "%Y/%m/%d",
];
/// Timestamp formats tried besides the feed's own and ISO 8601.
const TIMESTAMP_FORMATS: [&str; 6] = [
    "%d/%m/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M",
    "%m/%d/%Y %H:%M",
    "%Y/%m/%d %H:%M:%S",
    "%d.%m.%Y %H:%M:%S",
];

/// Formats that read the same text differently (day/month order): both fitting is ambiguous.
fn swapped(a: &TimeFormat, b: &TimeFormat) -> bool {
    let (TimeFormat::Chrono(a), TimeFormat::Chrono(b)) = (a, b) else {
        return false;
    };
    a.replace("%d", "\u{0}")
        .replace("%m", "%d")
        .replace('\u{0}', "%m")
        == *b
}

/// What the values of one column seen so far allow.
#[derive(Debug, Clone)]
pub struct ColumnGuess {
    /// Values seen (nulls and null words left out).
    values: u64,
    /// Null words (`typed_null_values`) seen: nulls if the column is typed, text if not.
    null_words: u64,
    bool_all: bool,
    bool_true: bool,
    bool_false: bool,
    /// A value longer than one character (a word, not a code like y/n).
    bool_word: bool,
    /// A value that is not a number (a column of 0/1 is a number).
    not_number: bool,
    int_all: bool,
    leading_zero: bool,
    /// A value written with the decimal separator ("2.0"): a decimal column, not an integer.
    with_decimals: bool,
    decimal_all: bool,
    scale: usize,
    int_digits: usize,
    float_all: bool,
    /// Date formats every value so far fits, in order of preference.
    dates: Vec<TimeFormat>,
    timestamps: Vec<TimeFormat>,
    /// JSON lines under `nested = "struct"`: what the values that are objects or arrays hold.
    nested: Option<Box<NestedGuess>>,
}

/// What a guess decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub ty: ColType,
    /// The date or timestamp format the values are read with.
    pub format: Option<TimeFormat>,
    /// Why a column that looked typed is text, to tell the user.
    pub warning: Option<String>,
}

impl ColumnGuess {
    pub fn new(opts: &ValueOptions) -> ColumnGuess {
        let with = |own: &[TimeFormat], extra: &[&str]| {
            let mut v: Vec<TimeFormat> = own.to_vec();
            for e in extra {
                let e = TimeFormat::Chrono(e.to_string());
                if !v.contains(&e) {
                    v.push(e);
                }
            }
            v
        };
        let mut timestamps = opts.timestamp_formats.clone();
        if !timestamps.contains(&TimeFormat::Iso) {
            timestamps.push(TimeFormat::Iso);
        }
        timestamps.extend(
            TIMESTAMP_FORMATS
                .iter()
                .map(|f| TimeFormat::Chrono(f.to_string()))
                .filter(|f| !opts.timestamp_formats.contains(f)),
        );
        ColumnGuess {
            values: 0,
            null_words: 0,
            bool_all: true,
            bool_true: false,
            bool_false: false,
            bool_word: false,
            not_number: false,
            int_all: true,
            leading_zero: false,
            with_decimals: false,
            decimal_all: true,
            scale: 0,
            int_digits: 0,
            float_all: true,
            dates: with(&opts.date_formats, &DATE_FORMATS),
            timestamps,
            nested: None,
        }
    }

    /// A guess that reads values that are JSON objects or arrays as structs and arrays (a
    /// column of JSON lines under `nested = "struct"`).
    pub fn nested(opts: &ValueOptions) -> ColumnGuess {
        ColumnGuess {
            nested: Some(Box::default()),
            ..ColumnGuess::new(opts)
        }
    }

    /// Looks at one value of the column (trimmed; not a null token).
    pub fn add(&mut self, v: &str, opts: &ValueOptions) {
        if is_typed_null(v, opts) {
            self.null_words += 1;
            return;
        }
        self.values += 1;
        if let Some(n) = &mut self.nested {
            if v.starts_with(['{', '[']) && n.add(v, opts) {
                // Not a scalar of any type.
                self.not_number = true;
                self.bool_all = false;
                self.int_all = false;
                self.decimal_all = false;
                self.float_all = false;
                self.dates.clear();
                self.timestamps.clear();
                return;
            }
        }
        if self.bool_all {
            match value::parse_bool(v, opts) {
                Some(b) => {
                    self.bool_true |= b;
                    self.bool_false |= !b;
                    self.bool_word |= v.chars().count() > 1;
                }
                None => self.bool_all = false,
            }
        }
        let number = v.parse::<f64>().is_ok();
        self.not_number |= !number;
        // Identifiers with leading zeros (CEP, codes) stay strings.
        self.leading_zero |=
            v.len() > 1 && v.starts_with('0') && v.bytes().all(|b| b.is_ascii_digit());
        self.with_decimals |= v.contains(opts.decimal_separator);
        if self.int_all && value::parse_int(v, opts).is_none() {
            self.int_all = false;
        }
        if self.decimal_all {
            match value::parse_decimal_locale(v, 38, 18, opts) {
                Ok(x) => {
                    let digits = x.unsigned_abs().to_string();
                    // Zero has no significant decimals ("0.0" must not read as 17 of them).
                    let trailing_zeros = if x == 0 {
                        18
                    } else {
                        digits.bytes().rev().take_while(|b| *b == b'0').count()
                    };
                    let s = 18usize.saturating_sub(trailing_zeros.min(18));
                    // As written, too: "1.50" is a two-decimal column even if no value needs
                    // the second digit.
                    let written = v
                        .rsplit_once(opts.decimal_separator)
                        .map(|(_, f)| f.bytes().take_while(u8::is_ascii_digit).count())
                        .unwrap_or(0);
                    self.scale = self.scale.max(s).max(written);
                    self.int_digits = self.int_digits.max(digits.len().saturating_sub(18));
                }
                Err(_) => self.decimal_all = false,
            }
        }
        if self.float_all && value::parse_float(v, opts).is_none() {
            self.float_all = false;
        }
        if !self.dates.is_empty() {
            self.dates
                .retain(|f| value::parse_date(v, std::slice::from_ref(f)).is_some());
        }
        if !self.timestamps.is_empty() {
            self.timestamps.retain(|f| {
                value::parse_timestamp(v, std::slice::from_ref(f), &opts.timezone).is_some()
            });
        }
    }

    /// The type of the column, given every value it was shown.
    pub fn decide(&self, opts: &ValueOptions) -> Decision {
        let plain = |ty| Decision {
            ty,
            format: None,
            warning: None,
        };
        if self.values == 0 {
            return plain(ColType::String);
        }
        if let Some(d) = self
            .nested
            .as_ref()
            .and_then(|n| n.decide(self.values, opts))
        {
            return d;
        }
        // Booleans need a word: a column of 0/1 is a number. Single letters (y, n, s, t, f)
        // are codes as often as booleans: they count only when both truth values appear.
        if self.bool_all
            && self.not_number
            && (self.bool_word || (self.bool_true && self.bool_false))
        {
            return plain(ColType::Bool);
        }
        if !self.leading_zero && !self.with_decimals && self.int_all {
            return plain(ColType::Int64);
        }
        if !self.leading_zero {
            if self.decimal_all {
                // A sample of 1.5 and 2.5 does not mean the next file has no 1.25: fractions
                // get two decimals at least (money), so that such a row is not quarantined.
                let scale = if self.scale > 0 { self.scale.max(2) } else { 0 };
                if scale <= 6 {
                    let precision = (self.int_digits + scale).clamp(18, 38) as u8;
                    return plain(ColType::Decimal {
                        precision,
                        scale: scale as i8,
                    });
                }
                return plain(ColType::Float64);
            }
            if self.float_all {
                return plain(ColType::Float64);
            }
        }
        if let Some(d) = pick(&self.dates, &opts.date_formats, ColType::Date) {
            return d;
        }
        if let Some(d) = pick(
            &self.timestamps,
            &opts.timestamp_formats,
            ColType::Timestamp,
        ) {
            return d;
        }
        plain(ColType::String)
    }
}

/// The format a date/timestamp column is read with: the first candidate every value fitted,
/// unless it has a day/month twin that fitted too and the feed named neither — then the values
/// cannot tell, and the column is text with a warning.
fn pick(fitting: &[TimeFormat], configured: &[TimeFormat], ty: ColType) -> Option<Decision> {
    let first = fitting.first()?;
    let twin = fitting.iter().skip(1).find(|other| swapped(first, other));
    if let Some(twin) = twin.filter(|_| !configured.contains(first)) {
        return Some(Decision {
            ty: ColType::String,
            format: None,
            warning: Some(format!(
                "every value fits both {} and {} (no day above 12 in the sample): loaded as text; set date_format/timestamp_format or the column's format to type it",
                java_style(first),
                java_style(twin)
            )),
        });
    }
    Some(Decision {
        ty,
        format: Some(first.clone()),
        warning: None,
    })
}

/// `%d/%m/%Y` as users write it (`dd/MM/yyyy`), for messages and `sniff`.
pub fn java_style(format: &TimeFormat) -> String {
    let chrono = match format {
        TimeFormat::Iso => return "ISO 8601".into(),
        TimeFormat::EpochSeconds | TimeFormat::EpochMillis => return format.to_string(),
        TimeFormat::Chrono(p) => p,
    };
    chrono
        .replace("%Y", "yyyy")
        .replace("%m", "MM")
        .replace("%d", "dd")
        .replace("%H", "HH")
        .replace("%M", "mm")
        .replace("%S", "ss")
}

/// A null word (`typed_null_values`: nil, NA, N/A, None, -...): null in a typed column.
pub fn is_typed_null(v: &str, opts: &ValueOptions) -> bool {
    v.len() <= opts.longest_null_value
        && opts
            .typed_null_values
            .iter()
            .any(|n| n.eq_ignore_ascii_case(v))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::Config;

    fn opts(extra: &str) -> ValueOptions {
        Config::from_toml(
            &format!("[[feed]]\nname = \"a\"\n{extra}\n"),
            Path::new("/x"),
            None,
        )
        .unwrap()
        .feeds[0]
            .values
            .clone()
    }

    fn guess(values: &[&str], o: &ValueOptions) -> Decision {
        let mut g = ColumnGuess::new(o);
        for v in values {
            g.add(v, o);
        }
        g.decide(o)
    }

    fn ty(values: &[&str], o: &ValueOptions) -> ColType {
        guess(values, o).ty
    }

    fn nested_ty(values: &[&str], o: &ValueOptions) -> String {
        let mut g = ColumnGuess::nested(o);
        for v in values {
            g.add(v, o);
        }
        g.decide(o).ty.to_string()
    }

    #[test]
    fn json_objects_and_arrays_are_guessed_member_by_member() {
        let o = opts("");
        assert_eq!(
            nested_ty(
                &[
                    r#"{"a": 1, "b": {"c": "2024-01-02"}}"#,
                    r#"{"b": null, "a": 2.5, "Novo Campo": true}"#
                ],
                &o
            ),
            "struct<a:decimal(18,2),b:struct<c:date>,`Novo Campo`:bool>"
        );
        assert_eq!(nested_ty(&["[1, 2]", "[]", "[3]"], &o), "array<int64>");
        assert_eq!(nested_ty(&["[]"], &o), "array<string>");
        assert_eq!(
            nested_ty(&[r#"[{"x": 1}, {"y": "z"}]"#], &o),
            "array<struct<x:int64,y:string>>"
        );
        // Objects mixed with other values, or a broken one: the JSON text, as a string.
        assert_eq!(nested_ty(&[r#"{"a": 1}"#, "plain"], &o), "string");
        assert_eq!(nested_ty(&[r#"{"a": 1}"#, "[1]"], &o), "string");
        assert_eq!(nested_ty(&[r#"{"a": 1"#], &o), "string");
        assert_eq!(nested_ty(&["{}"], &o), "string", "no member, no struct");
        // Two keys that fold to one name: two members, which print and parse back.
        let two = nested_ty(&[r#"{"a b": 1, "a,b": 2}"#], &o);
        assert_eq!(two, "struct<`a b`:int64,`a,b`:int64>");
        let ColType::Struct(m) = two.parse::<ColType>().unwrap() else {
            panic!()
        };
        assert_eq!((m[0].name.as_str(), m[1].name.as_str()), ("a_b", "a_b_2"));
        // Named as a header's columns are: Delta compares names without case, and an empty
        // key is named by its position.
        assert_eq!(
            nested_ty(&[r#"{"a": 1, "A": 2, "": 3}"#], &o),
            "struct<a:int64,A_2:int64,column_3:int64>"
        );
        // Without nesting (CSV, nested = "json"): text.
        assert_eq!(ty(&[r#"{"a": 1}"#], &o), ColType::String);
        // A bound on depth: deeper objects are their JSON text.
        let deep = format!("{}1{}", "{\"a\": ".repeat(40), "}".repeat(40));
        assert!(nested_ty(&[&deep], &o).contains("a:string"));
    }

    #[test]
    fn types_are_inferred_narrowest_first() {
        let o = opts("");
        let dec = |scale| ColType::Decimal {
            precision: 18,
            scale,
        };
        assert_eq!(ty(&["1", "2", "-3"], &o), ColType::Int64);
        assert_eq!(ty(&["1.5", "2.25", "3"], &o), dec(2));
        assert_eq!(ty(&["1.5", "2.5"], &o), dec(2));
        assert_eq!(ty(&["1.50", "2"], &o), dec(2));
        assert_eq!(ty(&["0.125", "1"], &o), dec(3));
        assert_eq!(ty(&["1.09", "0.0", "0"], &o), dec(2));
        assert_eq!(ty(&["1.0", "2.0"], &o), dec(2));
        assert_eq!(ty(&["true", "false"], &o), ColType::Bool);
        assert_eq!(ty(&["true"], &o), ColType::Bool);
        assert_eq!(ty(&["Y", "N", "Y"], &o), ColType::Bool);
        assert_eq!(ty(&["y", "y"], &o), ColType::String);
        assert_eq!(ty(&["0", "1"], &o), ColType::Int64);
        assert_eq!(ty(&["2024-01-02", "2024-02-03"], &o), ColType::Date);
        assert_eq!(
            ty(&["2024-01-02T10:00:00Z", "2024-02-03 11:00"], &o),
            ColType::Timestamp
        );
        assert_eq!(ty(&["01234", "99"], &o), ColType::String);
        assert_eq!(ty(&["a", "1"], &o), ColType::String);
        let br = opts("locale = \"pt-BR\"");
        assert_eq!(ty(&["1.234,56", "10,5"], &br), dec(2));
        assert_eq!(ty(&["01/03/2024", "31/12/2023"], &br), ColType::Date);
        assert_eq!(ty(&["sim", "não"], &br), ColType::Bool);
    }

    #[test]
    fn a_type_failing_late_widens() {
        let o = opts("");
        let mut late = vec!["1"; 5000];
        late.push("2.75");
        assert_eq!(
            ty(&late, &o),
            ColType::Decimal {
                precision: 18,
                scale: 2
            }
        );
        late.push("n/a (see notes)");
        assert_eq!(ty(&late, &o), ColType::String);
    }

    #[test]
    fn null_words_are_nulls_in_a_typed_column_only() {
        let o = opts("");
        assert_eq!(
            ty(&["1", "nil", "2", "NA", "-", "N/A", "None"], &o),
            ColType::Int64
        );
        assert_eq!(ty(&["nil", "NA"], &o), ColType::String);
        assert_eq!(ty(&["abc", "NA"], &o), ColType::String);
        assert!(is_typed_null("n/a", &o));
        assert!(!is_typed_null("nan", &o));
    }

    #[test]
    fn the_whole_sample_decides_day_and_month() {
        let o = opts("");
        let d = guess(&["01/02/2024", "03/04/2024", "13/04/2024"], &o);
        assert_eq!(
            (d.ty, d.format.as_ref().map(ToString::to_string).as_deref()),
            (ColType::Date, Some("%d/%m/%Y"))
        );
        let d = guess(&["01/02/2024", "03/14/2024"], &o);
        assert_eq!(
            (d.ty, d.format.as_ref().map(ToString::to_string).as_deref()),
            (ColType::Date, Some("%m/%d/%Y"))
        );
        let d = guess(&["01/02/2024", "03/04/2024"], &o);
        assert_eq!(d.ty, ColType::String);
        assert!(d.warning.unwrap().contains("dd/MM/yyyy and MM/dd/yyyy"));
        // The feed's own format decides an ambiguous sample.
        let br = opts("locale = \"pt-BR\"");
        let d = guess(&["01/02/2024", "03/04/2024"], &br);
        assert_eq!(
            (d.ty, d.format.as_ref().map(ToString::to_string).as_deref()),
            (ColType::Date, Some("%d/%m/%Y"))
        );
        let d = guess(&["2024-01-02", "2024-02-03"], &br);
        assert_eq!(
            d.format.as_ref().map(ToString::to_string).as_deref(),
            Some("%Y-%m-%d")
        );
        let d = guess(&["02/01/2024 10:00", "13/01/2024 11:30"], &o);
        assert_eq!(
            (d.ty, d.format.as_ref().map(ToString::to_string).as_deref()),
            (ColType::Timestamp, Some("%d/%m/%Y %H:%M"))
        );
    }
}
