//! Text → typed values, by the feed's locale: exact decimals (never through f64) with decimal
//! comma, thousands separators, currency symbols and negative parentheses; dates and timestamps
//! by format or ISO 8601, local times in the feed's timezone stored as UTC; booleans and null
//! tokens. Every failure is a message about one value, for the row's quarantine entry.

use std::sync::Arc;

use chrono::{Datelike, NaiveDate, NaiveDateTime, TimeZone};
use deltalake::arrow::array::{
    Array, ArrayRef, ArrowPrimitiveType, BooleanArray, BooleanBuilder, PrimitiveArray,
    PrimitiveBuilder, StringArray, StringBuilder,
};
use deltalake::arrow::datatypes::{
    Date32Type, Decimal128Type, Float64Type, Int32Type, Int64Type, TimestampMicrosecondType,
};

use crate::config::ValueOptions;
use crate::schema::{ColType, ColumnSpec, TimeFormat};

mod nested;

/// One value that did not convert: row index in the batch and a message.
#[derive(Debug, Clone)]
pub struct CellError {
    pub row: usize,
    pub column: String,
    pub message: String,
    /// Not an error: a struct member the table lacks, kept (`on_new_column = "rescue"`) as
    /// this text in the row's `_rescued_data` under `column` (its path).
    pub rescued: Option<String>,
}

/// Converts one text column. A value that fails becomes null in the array and an entry in
/// `errors` (the row is then dropped from the good rows).
pub fn convert_column(
    text: &StringArray,
    spec: &ColumnSpec,
    opts: &ValueOptions,
    errors: &mut Vec<CellError>,
) -> ArrayRef {
    let mut err = |row: usize, message: String| {
        errors.push(CellError {
            row,
            // The name the table shows (as written, under column_names = "original").
            column: spec.shown().to_string(),
            message,
            rescued: None,
        })
    };
    match spec.ty {
        ColType::String => strings(text, spec, opts, &mut err),
        ColType::Bool => Arc::new(booleans(text, spec, opts, &mut err)),
        ColType::Int32 => Arc::new(primitive::<Int32Type>(text, spec, opts, &mut err, |s| {
            parse_int(s, opts)
                .and_then(|v| i32::try_from(v).ok())
                .ok_or_else(|| format!("'{}' is not an integer (int32)", clip(s)))
        })),
        ColType::Int64 => Arc::new(primitive::<Int64Type>(text, spec, opts, &mut err, |s| {
            parse_int(s, opts).ok_or_else(|| format!("'{}' is not an integer", clip(s)))
        })),
        ColType::Float64 => Arc::new(primitive::<Float64Type>(text, spec, opts, &mut err, |s| {
            parse_float(s, opts).ok_or_else(|| format!("'{}' is not a number", clip(s)))
        })),
        ColType::Decimal { precision, scale } => {
            decimals(text, spec, opts, precision, scale, &mut err)
        }
        ColType::Date => Arc::new(dates(text, spec, opts, &mut err)),
        ColType::Timestamp => Arc::new(timestamps(text, spec, opts, &mut err)),
        ColType::Struct(ref members) => nested::structs(text, spec, members, opts, errors),
        ColType::List(ref element) => nested::lists(text, spec, element, opts, errors),
    }
}

/// A string column: null tokens become nulls (or errors, in a required column).
#[inline]
fn strings(
    text: &StringArray,
    spec: &ColumnSpec,
    opts: &ValueOptions,
    err: &mut impl FnMut(usize, String),
) -> ArrayRef {
    // Fast path (the common case): arrow-csv already made empty fields null, and no
    // other null token appears: the text column is the column, no copy.
    let longest = opts.longest_null_value;
    let nulls = NullStarts::new(opts);
    let has_token = longest > 0
        && text
            .iter()
            .flatten()
            .any(|v| v.len() <= longest + 2 && nulls.may_start(trim(v)) && is_null_token(v, opts));
    let keep_nulls = spec.nullable || text.null_count() == 0;
    if !has_token && keep_nulls {
        return Arc::new(text.clone());
    }
    let mut b = StringBuilder::with_capacity(text.len(), text.value_data().len());
    for i in 0..text.len() {
        let raw = if text.is_null(i) { "" } else { text.value(i) };
        if !is_null_token(raw, opts) {
            b.append_value(raw);
        } else if raw.is_empty() && !spec.nullable && !opts.empty_string_is_null {
            // An empty string in a NOT NULL string column is a value, not a null.
            b.append_value("");
        } else if spec.nullable {
            b.append_null();
        } else {
            b.append_null();
            err(
                i,
                format!("null value '{}' in a required column", clip(raw)),
            );
        }
    }
    Arc::new(b.finish())
}

#[inline]
fn booleans(
    text: &StringArray,
    spec: &ColumnSpec,
    opts: &ValueOptions,
    err: &mut impl FnMut(usize, String),
) -> BooleanArray {
    let mut b = BooleanBuilder::with_capacity(text.len());
    let nulls = NullStarts::new(opts);
    for i in 0..text.len() {
        match cell(text, i, opts, &nulls) {
            None => null_or_required(&mut b, spec, i, err),
            Some(s) => match parse_bool(s, opts) {
                Some(v) => b.append_value(v),
                None => {
                    b.append_null();
                    err(
                        i,
                        format!(
                            "'{}' is not a boolean (true: {}; false: {})",
                            clip(s),
                            opts.true_values.join("/"),
                            opts.false_values.join("/")
                        ),
                    )
                }
            },
        }
    }
    b.finish()
}

#[inline]
fn decimals(
    text: &StringArray,
    spec: &ColumnSpec,
    opts: &ValueOptions,
    precision: u8,
    scale: i8,
    err: &mut impl FnMut(usize, String),
) -> ArrayRef {
    let arr = primitive::<Decimal128Type>(text, spec, opts, err, |s| {
        parse_decimal_locale(s, precision, scale, opts)
            .map_err(|m| format!("'{}' is not a decimal({precision},{scale}): {m}", clip(s)))
    });
    // Precision and scale are valid: checked when the config or table was read.
    match arr.clone().with_precision_and_scale(precision, scale) {
        Ok(a) => Arc::new(a),
        Err(_) => Arc::new(arr),
    }
}

#[inline]
fn dates(
    text: &StringArray,
    spec: &ColumnSpec,
    opts: &ValueOptions,
    err: &mut impl FnMut(usize, String),
) -> PrimitiveArray<Date32Type> {
    let formats = column_formats(spec, &opts.date_formats, opts.iso_too);
    primitive::<Date32Type>(text, spec, opts, err, |s| {
        parse_date(s, &formats).ok_or_else(|| {
            format!(
                "'{}' is not a date ({})",
                clip(s),
                describe(&formats, "yyyy-MM-dd")
            )
        })
    })
}

/// Stored as UTC (local times are read in the feed's timezone).
#[inline]
fn timestamps(
    text: &StringArray,
    spec: &ColumnSpec,
    opts: &ValueOptions,
    err: &mut impl FnMut(usize, String),
) -> PrimitiveArray<TimestampMicrosecondType> {
    let formats = column_formats(spec, &opts.timestamp_formats, opts.iso_too);
    primitive::<TimestampMicrosecondType>(text, spec, opts, err, |s| {
        parse_timestamp(s, &formats, &opts.timezone).ok_or_else(|| {
            format!(
                "'{}' is not a timestamp ({})",
                clip(s),
                describe(&formats, "ISO 8601, e.g. 2024-03-01T14:05:00Z")
            )
        })
    })
    .with_timezone("UTC")
}

fn column_formats(spec: &ColumnSpec, feed: &[TimeFormat], iso_too: bool) -> Vec<TimeFormat> {
    let mut formats = match &spec.format {
        Some(f) => vec![f.clone()],
        None => feed.to_vec(),
    };
    // Empty already means ISO 8601.
    if iso_too && !formats.is_empty() && !formats.contains(&TimeFormat::Iso) {
        formats.push(TimeFormat::Iso);
    }
    formats
}

fn describe(formats: &[TimeFormat], iso: &str) -> String {
    if formats.is_empty() {
        iso.to_string()
    } else {
        let names: Vec<String> = formats.iter().map(TimeFormat::to_string).collect();
        format!("expected {}", names.join(" or "))
    }
}

fn null_or_required(
    b: &mut BooleanBuilder,
    spec: &ColumnSpec,
    i: usize,
    err: &mut impl FnMut(usize, String),
) {
    b.append_null();
    if !spec.nullable {
        err(i, "empty value in a required column".into());
    }
}

fn primitive<T: ArrowPrimitiveType>(
    text: &StringArray,
    spec: &ColumnSpec,
    opts: &ValueOptions,
    err: &mut impl FnMut(usize, String),
    parse: impl Fn(&str) -> Result<T::Native, String>,
) -> PrimitiveArray<T> {
    let mut b = PrimitiveBuilder::<T>::with_capacity(text.len());
    let nulls = NullStarts::new(opts);
    for i in 0..text.len() {
        match cell(text, i, opts, &nulls) {
            None => {
                b.append_null();
                if !spec.nullable {
                    err(i, "empty value in a required column".into());
                }
            }
            Some(s) => match parse(s) {
                Ok(v) => b.append_value(v),
                Err(m) => {
                    b.append_null();
                    err(i, m);
                }
            },
        }
    }
    b.finish()
}

/// The bytes a null token or null word can start with (either case for the words, which are
/// compared ignoring it). Most values start with another byte (a digit, a letter no token
/// starts with) and skip the comparisons with every token (perf: memcmp was 9 % of a large
/// file's CPU, part of it here).
struct NullStarts([bool; 256]);

impl NullStarts {
    fn new(opts: &ValueOptions) -> NullStarts {
        let mut first = [false; 256];
        for t in &opts.null_values {
            if let Some(&b) = t.as_bytes().first() {
                first[usize::from(b)] = true;
            }
        }
        for t in &opts.typed_null_values {
            if let Some(&b) = t.as_bytes().first() {
                first[usize::from(b.to_ascii_lowercase())] = true;
                first[usize::from(b.to_ascii_uppercase())] = true;
            }
        }
        NullStarts(first)
    }

    /// Whether the (trimmed, non-empty) value `s` may be a token; false rules it out.
    fn may_start(&self, s: &str) -> bool {
        s.as_bytes().first().is_none_or(|&b| self.0[usize::from(b)])
    }
}

fn is_null_token(raw: &str, opts: &ValueOptions) -> bool {
    let t = trim(raw);
    opts.null_values.iter().any(|n| n == t)
}

/// `str::trim`, without its Unicode scan for the common value that starts and ends with a
/// visible ASCII character (profiled: the scan was 4% of parsing a large file).
fn trim(s: &str) -> &str {
    match (s.as_bytes().first(), s.as_bytes().last()) {
        (Some(a), Some(z)) if a.is_ascii_graphic() && z.is_ascii_graphic() => s,
        _ => s.trim(),
    }
}

/// The trimmed value of a typed column, or None for a null token (empty, NULL, ...) or a
/// null word (`typed_null_values`: nil, NA, -...).
fn cell<'a>(
    text: &'a StringArray,
    i: usize,
    opts: &ValueOptions,
    nulls: &NullStarts,
) -> Option<&'a str> {
    if text.is_null(i) {
        return None;
    }
    let s = trim(text.value(i));
    // Null tokens are short: skip the comparisons for ordinary values.
    if s.is_empty()
        || (s.len() <= opts.longest_null_value
            && nulls.may_start(s)
            && (opts.null_values.iter().any(|n| n == s)
                || opts
                    .typed_null_values
                    .iter()
                    .any(|n| n.eq_ignore_ascii_case(s))))
    {
        None
    } else {
        Some(s)
    }
}

/// Long values are cut in messages (an error must stay readable).
pub fn clip(s: &str) -> String {
    const MAX: usize = 80;
    if s.chars().count() <= MAX {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(MAX).collect::<String>())
    }
}

pub fn parse_bool(s: &str, opts: &ValueOptions) -> Option<bool> {
    let l = s.to_lowercase();
    if opts.true_values.contains(&l) {
        Some(true)
    } else if opts.false_values.contains(&l) {
        Some(false)
    } else {
        None
    }
}

/// Removes currency symbols, spaces and thousands separators, turns `(x)` into `-x` and the
/// decimal separator into '.'; the result is `[-]digits[.digits]` or an error.
fn normalize_number(s: &str, opts: &ValueOptions) -> Result<String, String> {
    let mut t = s.trim();
    let mut neg = false;
    if let Some(inner) = t.strip_prefix('(').and_then(|r| r.strip_suffix(')')) {
        neg = true;
        t = inner.trim();
    }
    if let Some(r) = t.strip_prefix('-') {
        neg = !neg;
        t = r.trim_start();
    } else if let Some(r) = t.strip_prefix('+') {
        t = r.trim_start();
    }
    for c in &opts.currency_symbols {
        if let Some(r) = t.strip_prefix(c.as_str()) {
            t = r.trim_start();
            break;
        }
    }
    // "R$ -1,00" puts the sign after the symbol.
    if let Some(r) = t.strip_prefix('-') {
        neg = !neg;
        t = r.trim_start();
    }
    let mut out = String::with_capacity(t.len() + 1);
    if neg {
        out.push('-');
    }
    let mut seen_decimal = false;
    // Digits since the last thousands separator (None before the first): groups after it
    // must have three, or "12.34" in a pt-BR file would silently read as 1234.
    let mut group: Option<usize> = None;
    let bad_group =
        || "digits grouped other than by three around the thousands separator".to_string();
    for (i, ch) in t.char_indices() {
        if ch.is_ascii_digit() {
            out.push(ch);
            if let Some(g) = group.as_mut().filter(|_| !seen_decimal) {
                *g += 1;
            }
        } else if ch == opts.decimal_separator && !seen_decimal {
            if group.is_some_and(|g| g != 3) {
                return Err(bad_group());
            }
            seen_decimal = true;
            out.push('.');
        } else if Some(ch) == opts.thousands_separator && !seen_decimal && i > 0 {
            // A grouping separator: skipped (only before the decimal separator).
            if group.is_some_and(|g| g != 3) {
                return Err(bad_group());
            }
            group = Some(0);
        } else if ch == '\u{a0}' || ch == ' ' {
            // Spaces as grouping (fr-FR style, and Excel's non-breaking space).
        } else {
            return Err(format!("unexpected character '{ch}'"));
        }
    }
    if !seen_decimal && group.is_some_and(|g| g != 3) {
        return Err(bad_group());
    }
    if !out.bytes().any(|b| b.is_ascii_digit()) {
        return Err("no digits".into());
    }
    Ok(out)
}

pub fn parse_int(s: &str, opts: &ValueOptions) -> Option<i64> {
    if let Ok(v) = s.parse::<i64>() {
        return Some(v);
    }
    let n = normalize_number(s, opts).ok()?;
    // "1.000" with '.' as thousands separator is 1000; "12.00" with '.' decimal is 12.
    match n.split_once('.') {
        None => n.parse().ok(),
        Some((int, frac)) if frac.bytes().all(|b| b == b'0') => int.parse().ok(),
        Some(_) => None,
    }
}

pub fn parse_float(s: &str, opts: &ValueOptions) -> Option<f64> {
    if let Ok(v) = s.parse::<f64>() {
        if v.is_finite() {
            return Some(v);
        }
    }
    normalize_number(s, opts).ok()?.parse().ok()
}

pub fn parse_decimal_locale(
    s: &str,
    precision: u8,
    scale: i8,
    opts: &ValueOptions,
) -> Result<i128, String> {
    match parse_decimal(s, precision, scale) {
        Ok(v) => Ok(v),
        Err(first) => {
            let n = normalize_number(s, opts).map_err(|_| first.clone())?;
            parse_decimal(&n, precision, scale)
        }
    }
}

/// Exact decimal parsing: `[+-]digits[.digits]`. Extra fractional digits are accepted only
/// when they are zeros: a value is never rounded silently.
pub fn parse_decimal(s: &str, precision: u8, scale: i8) -> Result<i128, String> {
    // One pass over the bytes (perf: the former split, three digit checks and a trim were 2–3 %
    // of a large sales file's CPU); the checks and their order are the same.
    let scale = scale.max(0) as usize;
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s.as_bytes()[1..]),
        Some(b'+') => (false, &s.as_bytes()[1..]),
        _ => (false, s.as_bytes()),
    };
    let mut v: i128 = 0;
    // Digits before the point without leading zeros; fractional digits kept (up to `scale`).
    let (mut int_digits, mut kept) = (0usize, 0usize);
    let (mut dot, mut dropped_nonzero) = (false, false);
    for &c in body {
        match c {
            b'0'..=b'9' => {
                let d = i128::from(c - b'0');
                if !dot {
                    if int_digits > 0 || d != 0 {
                        int_digits += 1;
                        // Wraps only for values refused below as too large.
                        v = v.wrapping_mul(10).wrapping_add(d);
                    }
                } else if kept < scale {
                    kept += 1;
                    v = v.wrapping_mul(10).wrapping_add(d);
                } else if d != 0 {
                    dropped_nonzero = true;
                }
            }
            b'.' if !dot => dot = true,
            _ => return Err("not a number".into()),
        }
    }
    if body.len() == usize::from(dot) {
        return Err("not a number".into());
    }
    if dropped_nonzero {
        return Err(format!("more than {scale} decimal places"));
    }
    let max_int_digits = (precision as usize).saturating_sub(scale);
    if int_digits > max_int_digits {
        return Err(format!(
            "too large (at most {max_int_digits} digits before the decimal point)"
        ));
    }
    for _ in kept..scale {
        v *= 10;
    }
    Ok(if neg { -v } else { v })
}

const EPOCH: NaiveDate = match NaiveDate::from_ymd_opt(1970, 1, 1) {
    Some(d) => d,
    None => NaiveDate::MIN,
};

/// Days since 1970-01-01.
pub fn parse_date(s: &str, formats: &[TimeFormat]) -> Option<i32> {
    let iso = |s| date_by(s, "%Y-%m-%d");
    let d = if formats.is_empty() {
        iso(s)
    } else {
        formats.iter().find_map(|f| match f {
            TimeFormat::Iso => iso(s),
            TimeFormat::Chrono(p) => date_by(s, p),
            // A count of seconds is a timestamp's format, not a date's.
            TimeFormat::EpochSeconds | TimeFormat::EpochMillis => None,
        })
    }?;
    i32::try_from((d - EPOCH).num_days()).ok()
}

/// `s` as a date of chrono `pattern`. The common all-numeric ten-character shapes
/// (`%Y-%m-%d`, `%d/%m/%Y`, `%m/%d/%Y`, …: two-digit day and month, four-digit year, one
/// separator) are read directly when `s` has exactly that shape: chrono parses its pattern
/// string again for every value, which profiled at several times the cost of the date itself.
/// Any other text or pattern goes to chrono, so the two never disagree.
fn date_by(s: &str, pattern: &str) -> Option<NaiveDate> {
    let (p, b) = (pattern.as_bytes(), s.as_bytes());
    if p.len() == 8 && b.len() == 10 {
        // Each of %Y %m %d once, one separator byte between them.
        let fields = [&p[0..2], &p[3..5], &p[6..8]];
        let sep = p[2];
        if p[5] == sep && !sep.is_ascii_alphanumeric() && sep != b'%' {
            let mut at = 0;
            let (mut y, mut m, mut d) = (None, None, None);
            for f in fields {
                let len = if f == b"%Y" { 4 } else { 2 };
                let digits = b.get(at..at + len).unwrap_or_default();
                if digits.len() != len || !digits.iter().all(u8::is_ascii_digit) {
                    return NaiveDate::parse_from_str(s, pattern).ok();
                }
                let v = digits
                    .iter()
                    .fold(0u32, |n, c| n * 10 + u32::from(c - b'0'));
                match f {
                    b"%Y" => y = Some(v),
                    b"%m" => m = Some(v),
                    b"%d" => d = Some(v),
                    _ => return NaiveDate::parse_from_str(s, pattern).ok(),
                }
                at += len;
                if at < 10 {
                    if b[at] != sep {
                        return NaiveDate::parse_from_str(s, pattern).ok();
                    }
                    at += 1;
                }
            }
            if let (Some(y), Some(m), Some(d)) = (y, m, d) {
                return NaiveDate::from_ymd_opt(i32::try_from(y).ok()?, m, d);
            }
        }
    }
    NaiveDate::parse_from_str(s, pattern).ok()
}

/// Microseconds since the epoch, UTC. `epoch_s`/`epoch_ms` formats read numbers; a value
/// without a zone is a local time of `tz`.
pub fn parse_timestamp(s: &str, formats: &[TimeFormat], tz: &chrono_tz::Tz) -> Option<i64> {
    let iso = formats.is_empty() || formats.iter().any(|f| matches!(f, TimeFormat::Iso));
    // The shape most exports write, `YYYY-MM-DDTHH:MM:SSZ`, read directly (the general parser
    // below costs several times more per value; profiled on a large file).
    if iso {
        if let Some(us) = parse_iso_utc_seconds(s) {
            return Some(us);
        }
    }
    for f in formats {
        match f {
            TimeFormat::EpochSeconds => return s.parse::<i64>().ok()?.checked_mul(1_000_000),
            TimeFormat::EpochMillis => return s.parse::<i64>().ok()?.checked_mul(1_000),
            TimeFormat::Iso => {}
            TimeFormat::Chrono(f) => {
                if let Ok(dt) = chrono::DateTime::parse_from_str(s, f) {
                    return Some(dt.timestamp_micros());
                }
                if let Ok(ndt) = NaiveDateTime::parse_from_str(s, f) {
                    return local_to_utc(ndt, tz);
                }
                if let Ok(d) = NaiveDate::parse_from_str(s, f) {
                    return local_to_utc(d.and_hms_opt(0, 0, 0)?, tz);
                }
            }
        }
    }
    if !iso {
        return None;
    }
    // ISO 8601 with a zone is absolute; without one it is local to the feed's timezone.
    let Ok(utc) = arrow_cast::parse::string_to_datetime(&chrono::Utc, s) else {
        // Minutes without seconds, which arrow's parser does not take.
        return ["%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M"]
            .iter()
            .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
            .and_then(|ndt| local_to_utc(ndt, tz));
    };
    if has_zone(s) {
        Some(utc.timestamp_micros())
    } else {
        local_to_utc(utc.naive_utc(), tz)
    }
}

/// Exactly `YYYY-MM-DDTHH:MM:SSZ` (or a space for the `T`): microseconds since the epoch.
/// Anything else (fractions, offsets, no zone, an impossible date): None, for the full parser.
fn parse_iso_utc_seconds(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !(b[10] == b'T' || b[10] == b' ')
        || b[13] != b':'
        || b[16] != b':'
        || b[19] != b'Z'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        b[r].iter().try_fold(0u32, |acc, c| {
            c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
        })
    };
    let date = NaiveDate::from_ymd_opt(num(0..4)? as i32, num(5..7)?, num(8..10)?)?;
    let (h, m, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if h > 23 || m > 59 || sec > 59 {
        return None;
    }
    let days = i64::from(date.num_days_from_ce()) - 719_163; // days from 0001-01-01 to 1970-01-01
    Some(((days * 24 + i64::from(h)) * 60 + i64::from(m)) * 60_000_000 + i64::from(sec) * 1_000_000)
}

fn has_zone(s: &str) -> bool {
    let t = s.trim_end();
    if t.ends_with('Z') || t.ends_with('z') {
        return true;
    }
    // +hh:mm, +hhmm or +hh after the time part.
    match t.get(10..) {
        Some(rest) => rest.contains('+') || rest[1.min(rest.len())..].contains('-'),
        None => false,
    }
}

/// A local wall time in `tz` → UTC micros. In a DST gap the time does not exist (None); in a
/// fold the earlier instant is taken.
fn local_to_utc(ndt: NaiveDateTime, tz: &chrono_tz::Tz) -> Option<i64> {
    tz.from_local_datetime(&ndt)
        .earliest()
        .map(|dt| dt.timestamp_micros())
}

/// CPF check digits (11 digits, punctuation ignored).
pub fn valid_cpf(s: &str) -> bool {
    let d: Vec<u32> = s.chars().filter_map(|c| c.to_digit(10)).collect();
    if d.len() != 11 || d.iter().all(|x| *x == d[0]) {
        return false;
    }
    let check = |n: usize| {
        let sum: u32 = (0..n).map(|i| d[i] * (n as u32 + 1 - i as u32)).sum();
        let r = (sum * 10) % 11;
        if r == 10 {
            0
        } else {
            r
        }
    };
    check(9) == d[9] && check(10) == d[10]
}

/// CNPJ check digits (14 digits, punctuation ignored).
pub fn valid_cnpj(s: &str) -> bool {
    let d: Vec<u32> = s.chars().filter_map(|c| c.to_digit(10)).collect();
    if d.len() != 14 || d.iter().all(|x| *x == d[0]) {
        return false;
    }
    let check = |n: usize| {
        let weights: Vec<u32> = if n == 12 {
            vec![5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2]
        } else {
            vec![6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2]
        };
        let sum: u32 = (0..n).map(|i| d[i] * weights[i]).sum();
        let r = sum % 11;
        if r < 2 {
            0
        } else {
            11 - r
        }
    };
    check(12) == d[12] && check(13) == d[13]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use std::path::Path;

    fn opts(locale: &str) -> ValueOptions {
        let toml = format!("[[feed]]\nname = \"a\"\nlocale = \"{locale}\"\n");
        Config::from_toml(&toml, Path::new("/x"), None)
            .unwrap()
            .feeds[0]
            .values
            .clone()
    }

    #[test]
    fn the_fast_timestamp_path_agrees_with_the_general_parser() {
        let utc = chrono_tz::UTC;
        for s in [
            "2024-03-01T14:05:00Z",
            "1970-01-01 00:00:00Z",
            "1969-12-31T23:59:59Z",
            "2024-02-29T23:59:59Z",
            "0001-01-01T00:00:00Z",
            "9999-12-31T23:59:59Z",
        ] {
            let fast = parse_iso_utc_seconds(s);
            let general = arrow_cast::parse::string_to_datetime(&chrono::Utc, s)
                .map(|d| d.timestamp_micros())
                .ok();
            assert_eq!(fast, general, "{s}");
            assert!(fast.is_some(), "{s}");
            assert_eq!(parse_timestamp(s, &[], &utc), fast);
        }
        // Not this shape, or impossible: left to the general parser (which rejects these).
        for s in [
            "2024-02-30T00:00:00Z",
            "2024-03-01T24:00:00Z",
            "2024-03-01T14:05:00+00:00",
            "2024-03-01T14:05:00.5Z",
            "2024-3-01T14:05:00Z",
            "2024-03-01T14:05:0xZ",
        ] {
            assert_eq!(parse_iso_utc_seconds(s), None, "{s}");
        }
        assert_eq!(trim("  a b "), "a b");
        assert_eq!(trim("ab"), "ab");
        assert_eq!(trim("\u{a0}x"), "x");
    }

    #[test]
    fn null_tokens_are_found_by_their_first_byte_in_either_case() {
        let o = opts("en-US");
        let text = StringArray::from(vec![" na ", "n/A", "NULL", "-", "7", "Nx", " #N/A"]);
        let nulls = NullStarts::new(&o);
        let got: Vec<Option<&str>> = (0..text.len())
            .map(|i| cell(&text, i, &o, &nulls))
            .collect();
        assert_eq!(
            got,
            vec![None, None, None, None, Some("7"), Some("Nx"), None]
        );
        assert!(!nulls.may_start("7") && nulls.may_start("n") && nulls.may_start(""));
    }

    #[test]
    fn the_direct_date_shapes_agree_with_chrono() {
        let patterns = [
            "%Y-%m-%d", "%d/%m/%Y", "%m/%d/%Y", "%d-%m-%Y", "%d.%m.%Y", "%Y/%m/%d", "%Y%m%d",
            "%d/%m/%y", "%Y/%Y/%Y", "%H:%M:%S", "%d %m %Y",
        ];
        let mut values: Vec<String> = [
            "2024-02-29",
            "2023-02-29",
            "29/02/2024",
            "31/04/2024",
            "00/01/2024",
            "01/13/2024",
            "0000-01-01",
            "9999-12-31",
            "1/3/2024",
            "01/3/2024",
            "2024-3-01x",
            "2024/03/01",
            "+024-03-01",
            "2024-03-1 ",
            " 2024-03-1",
            "2024.03.01",
            "01.03.2024",
            "20240301",
            "01 03 2024",
            "２０２４-03-01",
            "12:30:00",
            "",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        // Every day of a leap year and a common one, in each shape.
        let mut d = NaiveDate::from_ymd_opt(2023, 1, 1).unwrap();
        while d < NaiveDate::from_ymd_opt(2025, 1, 1).unwrap() {
            for p in &patterns[..6] {
                values.push(d.format(p).to_string());
            }
            d = d.succ_opt().unwrap();
        }
        for p in patterns {
            for v in &values {
                assert_eq!(
                    date_by(v, p),
                    NaiveDate::parse_from_str(v, p).ok(),
                    "{v:?} as {p:?}"
                );
            }
        }
    }

    #[test]
    fn decimals_are_exact() {
        assert_eq!(parse_decimal("12.34", 12, 2), Ok(1234));
        assert_eq!(parse_decimal("-0.5", 12, 2), Ok(-50));
        assert_eq!(parse_decimal(".25", 12, 2), Ok(25));
        assert_eq!(parse_decimal("3.100", 12, 2), Ok(310));
        assert_eq!(parse_decimal("9999999999.99", 12, 2), Ok(999_999_999_999));
        assert!(parse_decimal("99999999999", 12, 2).is_err());
        assert!(parse_decimal("1.234", 12, 2)
            .unwrap_err()
            .contains("2 decimal places"));
        assert_eq!(parse_decimal("+007.10", 12, 2), Ok(710));
        assert_eq!(parse_decimal("0", 12, 2), Ok(0));
        assert!(parse_decimal("1.234x", 12, 2)
            .unwrap_err()
            .contains("not a number"));
        assert!(parse_decimal(&"9".repeat(60), 12, 2)
            .unwrap_err()
            .contains("too large"));
        for bad in ["", ".", "-", "+.", "1e5", "abc", "1.2.3", "--1", "1 2"] {
            assert!(parse_decimal(bad, 12, 2).is_err(), "{bad}");
        }
    }

    #[test]
    fn brazilian_numbers() {
        let o = opts("pt-BR");
        assert_eq!(parse_decimal_locale("1.234,56", 12, 2, &o), Ok(123_456));
        assert_eq!(parse_decimal_locale("R$ 1.234,56", 12, 2, &o), Ok(123_456));
        assert_eq!(parse_decimal_locale("R$ -10,00", 12, 2, &o), Ok(-1000));
        assert_eq!(parse_decimal_locale("(1.000,5)", 12, 2, &o), Ok(-100_050));
        assert_eq!(parse_decimal_locale("12,3", 12, 2, &o), Ok(1230));
        assert_eq!(parse_decimal_locale("0,1", 12, 2, &o), Ok(10));
        assert!(parse_decimal_locale("12,3x", 12, 2, &o).is_err());
        assert!(
            parse_decimal_locale("1,234", 12, 2, &o).is_err(),
            "3 decimals is not rounded"
        );
        assert_eq!(parse_int("1.000", &o), Some(1000));
        assert_eq!(parse_int("1.234.567", &o), Some(1_234_567));
        // Not a thousands grouping: never read as 1234.
        assert_eq!(parse_int("12.34", &o), None);
        assert_eq!(parse_int("1.2345", &o), None);
        assert!(parse_decimal_locale("12.34,5", 12, 2, &o).is_err());
        assert_eq!(parse_float("3,5", &o), Some(3.5));
        assert_eq!(parse_bool("Sim", &o), Some(true));
        assert_eq!(parse_bool("não", &o), Some(false));
        assert_eq!(parse_bool("N", &o), Some(false));
    }

    #[test]
    fn dates_and_local_times() {
        let o = opts("pt-BR");
        let sp: chrono_tz::Tz = "America/Sao_Paulo".parse().unwrap();
        assert_eq!(parse_date("01/03/2024", &o.date_formats), Some(19_783));
        assert_eq!(parse_date("2024-03-01", &[]), Some(19_783));
        assert_eq!(parse_date("2024-03-01", &[TimeFormat::Iso]), Some(19_783));
        assert_eq!(parse_date("2024-03-01", &[TimeFormat::EpochSeconds]), None);
        assert_eq!(parse_date("31/02/2024", &o.date_formats), None);
        // 14:05 in São Paulo (UTC-3) is 17:05 UTC.
        let utc = parse_timestamp("2024-03-01T17:05:00Z", &[], &chrono_tz::UTC).unwrap();
        assert_eq!(
            parse_timestamp("01/03/2024 14:05", &o.timestamp_formats, &sp),
            Some(utc)
        );
        assert_eq!(
            parse_timestamp("01/03/2024 14:05:00", &o.timestamp_formats, &sp),
            Some(utc)
        );
        assert_eq!(parse_timestamp("2024-03-01 14:05:00", &[], &sp), Some(utc));
        assert_eq!(
            parse_timestamp("2024-03-01T14:05:00-03:00", &[], &sp),
            Some(utc)
        );
        assert_eq!(
            parse_timestamp("2024-03-01T17:05:00+00:00", &[], &sp),
            Some(utc)
        );
        assert_eq!(
            parse_timestamp("1709312700", &[TimeFormat::EpochSeconds], &sp),
            Some(utc)
        );
        assert_eq!(
            parse_timestamp("1709312700000", &[TimeFormat::EpochMillis], &sp),
            Some(utc)
        );
        assert_eq!(parse_timestamp("01/03/2024", &[], &sp), None);
    }

    #[test]
    fn brazilian_document_numbers() {
        assert!(valid_cpf("529.982.247-25"));
        assert!(!valid_cpf("529.982.247-26"));
        assert!(!valid_cpf("111.111.111-11"));
        assert!(valid_cnpj("11.222.333/0001-81"));
        assert!(!valid_cnpj("11.222.333/0001-82"));
    }
}
