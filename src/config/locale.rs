//! Locales: what `locale = "pt-BR"` sets in one line (delimiter, decimal comma, dates,
//! booleans), the value options a feed's keys override it with, and Java/Spark date formats
//! (`dd/MM/yyyy`) turned into chrono's.

use super::raw::RawFeed;
use super::ValueOptions;
use crate::schema::TimeFormat;

/// Locale presets: what `locale = "pt-BR"` sets in one line.
pub(super) struct Preset {
    pub(super) delimiter: u8,
    pub(super) decimal: char,
    pub(super) thousands: Option<char>,
    pub(super) currency: Vec<String>,
    pub(super) date_formats: Vec<&'static str>,
    pub(super) timestamp_formats: Vec<&'static str>,
    pub(super) true_values: Vec<&'static str>,
    pub(super) false_values: Vec<&'static str>,
}

impl Default for Preset {
    fn default() -> Self {
        Preset {
            delimiter: b',',
            decimal: '.',
            thousands: None,
            currency: vec![],
            date_formats: vec![],
            timestamp_formats: vec![],
            true_values: vec!["true", "t", "yes", "y", "1"],
            false_values: vec!["false", "f", "no", "n", "0"],
        }
    }
}

impl Preset {
    pub(super) fn named(name: &str) -> Option<Preset> {
        match name.to_ascii_lowercase().replace('_', "-").as_str() {
            "pt-br" => Some(Preset {
                delimiter: b';',
                decimal: ',',
                thousands: Some('.'),
                currency: vec!["R$".into()],
                date_formats: vec!["dd/MM/yyyy"],
                timestamp_formats: vec!["dd/MM/yyyy HH:mm:ss", "dd/MM/yyyy HH:mm", "dd/MM/yyyy"],
                true_values: vec!["sim", "s", "verdadeiro", "v", "true", "1"],
                false_values: vec!["não", "nao", "n", "falso", "f", "false", "0"],
            }),
            "en-us" => Some(Preset {
                thousands: Some(','),
                currency: vec!["US$".into(), "$".into()],
                date_formats: vec!["MM/dd/yyyy"],
                timestamp_formats: vec!["MM/dd/yyyy HH:mm:ss", "MM/dd/yyyy HH:mm"],
                ..Preset::default()
            }),
            _ => None,
        }
    }
}

fn single_char(key: &str, s: &str) -> Result<char, String> {
    let mut it = s.chars();
    match (it.next(), it.next()) {
        (Some(c), None) => Ok(c),
        _ => Err(format!("{key} = {s:?} must be a single character")),
    }
}

/// Words that are null in a typed column unless `typed_null_values` says otherwise: what
/// exports write for "no value" (R's NA, Excel's #N/A, Python's None...). In a string column
/// they are text.
pub const TYPED_NULL_VALUES: [&str; 8] = ["nil", "NA", "N/A", "#N/A", "None", "null", "-", "--"];

pub(super) fn resolve_values(f: &RawFeed, preset: &Preset) -> Result<ValueOptions, String> {
    let decimal_separator = match &f.decimal_separator {
        Some(d) => single_char("decimal_separator", d)?,
        None => preset.decimal,
    };
    let thousands_separator = match f.thousands_separator.as_deref() {
        Some("") => None,
        Some(t) => Some(single_char("thousands_separator", t)?),
        None => preset.thousands,
    };
    if Some(decimal_separator) == thousands_separator {
        return Err("decimal_separator and thousands_separator must differ".into());
    }
    let timezone = match &f.timezone {
        None => chrono_tz::UTC,
        Some(tz) => tz.parse::<chrono_tz::Tz>().map_err(|_| {
            format!("timezone = '{tz}' is not an IANA zone name (e.g. America/Sao_Paulo, UTC)")
        })?,
    };
    let formats = |explicit: &Option<String>, preset: &[&str]| -> Vec<TimeFormat> {
        match explicit {
            Some(f) => vec![java_format_to_chrono(f)],
            None => preset.iter().map(|p| java_format_to_chrono(p)).collect(),
        }
    };
    let lower = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let null_values = f
        .null_values
        .clone()
        .unwrap_or_else(|| vec!["".into(), "NULL".into(), "null".into()]);
    let typed_null_values = f
        .typed_null_values
        .clone()
        .unwrap_or_else(|| TYPED_NULL_VALUES.iter().map(|s| s.to_string()).collect());
    Ok(ValueOptions {
        longest_null_value: null_values
            .iter()
            .chain(&typed_null_values)
            .map(|t| t.trim().len())
            .max()
            .unwrap_or(0),
        typed_null_values,
        decimal_separator,
        thousands_separator,
        currency_symbols: f
            .currency_symbols
            .clone()
            .unwrap_or_else(|| preset.currency.clone()),
        null_values,
        true_values: f
            .true_values
            .clone()
            .unwrap_or_else(|| lower(&preset.true_values))
            .iter()
            .map(|s| s.to_lowercase())
            .collect(),
        false_values: f
            .false_values
            .clone()
            .unwrap_or_else(|| lower(&preset.false_values))
            .iter()
            .map(|s| s.to_lowercase())
            .collect(),
        date_formats: formats(&f.date_format, &preset.date_formats),
        timestamp_formats: formats(&f.timestamp_format, &preset.timestamp_formats),
        timezone,
        empty_string_is_null: f.empty_string_is_null,
        iso_too: false,
        rescue_members: false,
    })
}

/// `dd/MM/yyyy HH:mm:ss` (the notation users know from Spark/Java) → chrono's `%d/%m/%Y %H:%M:%S`.
/// `iso`, `epoch_s` and `epoch_ms` are read as such; a pattern with `%` is taken as chrono
/// already.
pub fn java_format_to_chrono(f: &str) -> TimeFormat {
    match TimeFormat::from(f) {
        TimeFormat::Chrono(p) if !p.contains('%') && !p.starts_with("epoch_") => {
            TimeFormat::Chrono(java_to_chrono_pattern(&p))
        }
        other => other,
    }
}

fn java_to_chrono_pattern(f: &str) -> String {
    let tokens = [
        ("yyyy", "%Y"),
        ("yy", "%y"),
        ("MM", "%m"),
        ("dd", "%d"),
        ("HH", "%H"),
        ("mm", "%M"),
        ("ss", "%S"),
        ("SSSSSS", "%6f"),
        ("SSS", "%3f"),
        ("XXX", "%:z"),
        ("Z", "%z"),
    ];
    let mut out = String::new();
    let mut rest = f;
    'outer: while !rest.is_empty() {
        for (t, c) in tokens {
            if let Some(r) = rest.strip_prefix(t) {
                out.push_str(c);
                rest = r;
                continue 'outer;
            }
        }
        let mut chars = rest.chars();
        if let Some(ch) = chars.next() {
            if ch == '\'' {
                // 'T' style literals
                let r = chars.as_str();
                if let Some(end) = r.find('\'') {
                    out.push_str(&r[..end]);
                    rest = &r[end + 1..];
                    continue;
                }
            }
            out.push(ch);
        }
        rest = chars.as_str();
    }
    out
}
