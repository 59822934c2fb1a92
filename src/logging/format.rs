//! The line formatter: `<timestamp> <LEVEL> <message>[ key=value...]`.
//!
//! Kept free of global state so it can be unit-tested with a fixed clock.

use std::fmt::{self, Write as _};

use chrono::format::{Item, StrftimeItems};
use chrono::{DateTime, TimeZone};

use crate::config::LogLevel;

/// coturn 4.17's default `--new-log-timestamp-format`.
pub const DEFAULT_TIMESTAMP_FORMAT: &str = "%FT%T.%f%z";

/// Upper-case level name as coturn prints it.
pub fn level_name(level: LogLevel) -> &'static str {
    match level {
        LogLevel::Debug => "DEBUG",
        LogLevel::Info => "INFO",
        LogLevel::Warning => "WARNING",
        LogLevel::Error => "ERROR",
    }
}

/// Map a `tracing` level to coturn's four levels (coturn has no TRACE, so it
/// folds into DEBUG).
pub fn level_from_tracing(level: &tracing::Level) -> LogLevel {
    match *level {
        tracing::Level::ERROR => LogLevel::Error,
        tracing::Level::WARN => LogLevel::Warning,
        tracing::Level::INFO => LogLevel::Info,
        _ => LogLevel::Debug,
    }
}

/// Rewrite coturn's strftime dialect into chrono's: coturn's `%f` means
/// 3-digit milliseconds, while chrono's `%f` means nanoseconds; chrono spells
/// milliseconds `%3f`. `%%` is left alone so `%%f` stays a literal `%f`.
pub fn translate_format(fmt: &str) -> String {
    let mut out = String::with_capacity(fmt.len() + 4);
    let mut chars = fmt.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('f') => out.push_str("%3f"),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}

/// A timestamp format parsed once at start-up, so a bad operator-supplied
/// format is detected (and replaced by the default) instead of failing on
/// every line, and so each line does not re-parse the format string.
#[derive(Debug, Clone)]
pub struct TimestampFormat {
    items: Vec<Item<'static>>,
}

impl TimestampFormat {
    /// Parse a coturn-style strftime format. `Err` carries a human-readable
    /// reason when the format contains a specifier chrono does not know.
    pub fn parse(fmt: &str) -> Result<Self, String> {
        let translated = translate_format(fmt);
        StrftimeItems::new(&translated)
            .parse_to_owned()
            .map(|items| TimestampFormat { items })
            .map_err(|e| format!("invalid log timestamp format {fmt:?}: {e}"))
    }

    /// Like [`TimestampFormat::parse`] but falls back to the default format;
    /// the second value is the warning to log when the fallback was used.
    pub fn parse_or_default(fmt: &str) -> (Self, Option<String>) {
        let fmt = if fmt.is_empty() {
            DEFAULT_TIMESTAMP_FORMAT
        } else {
            fmt
        };
        match Self::parse(fmt) {
            Ok(f) => (f, None),
            Err(msg) => (Self::default(), Some(msg)),
        }
    }

    /// Append the formatted timestamp to `out`.
    pub fn write<Tz: TimeZone>(&self, out: &mut String, ts: &DateTime<Tz>) -> fmt::Result
    where
        Tz::Offset: fmt::Display,
    {
        write!(out, "{}", ts.format_with_items(self.items.iter()))
    }
}

impl Default for TimestampFormat {
    fn default() -> Self {
        // The built-in default is a known-good constant; should that ever not
        // hold, an empty item list (no timestamp) beats a panic in the logger.
        let items = StrftimeItems::new(&translate_format(DEFAULT_TIMESTAMP_FORMAT))
            .parse_to_owned()
            .unwrap_or_default();
        TimestampFormat { items }
    }
}

/// Format one complete log line (with trailing `\n`).
///
/// Line breaks inside `msg` are turned into spaces: operators grep and tail
/// these files and coturn guarantees one record per line.
pub fn format_line<Tz: TimeZone>(
    tsfmt: &TimestampFormat,
    level: LogLevel,
    msg: &str,
    ts: &DateTime<Tz>,
) -> String
where
    Tz::Offset: fmt::Display,
{
    let mut line = String::with_capacity(msg.len() + 40);
    if tsfmt.write(&mut line, ts).is_err() {
        // chrono reports a value it cannot render (e.g. %Z without a name) as
        // an error; drop the partial timestamp rather than lose the record.
        line.clear();
    }
    line.push(' ');
    line.push_str(level_name(level));
    line.push(' ');
    push_single_line(&mut line, msg.trim_end_matches(['\r', '\n']));
    line.push('\n');
    line
}

fn push_single_line(out: &mut String, s: &str) {
    for c in s.chars() {
        out.push(if c == '\n' || c == '\r' { ' ' } else { c });
    }
}

/// Collects an event's fields: the `message` field first, the others appended
/// as ` key=value` in the order they were recorded.
#[derive(Debug, Default)]
pub struct MessageVisitor {
    message: String,
    fields: String,
}

impl MessageVisitor {
    /// The message text followed by the other fields.
    pub fn finish(self) -> String {
        if self.fields.is_empty() {
            return self.message;
        }
        let mut s = self.message;
        if s.is_empty() {
            // Avoid a leading space when the event has fields only.
            s.push_str(self.fields.trim_start());
        } else {
            s.push_str(&self.fields);
        }
        s
    }

    fn push_field(&mut self, name: &str, value: fmt::Arguments<'_>) {
        let _ = write!(self.fields, " {name}={value}");
    }
}

impl tracing::field::Visit for MessageVisitor {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            self.push_field(field.name(), format_args!("{value}"));
        }
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            // `format_args!` messages arrive here; their Debug is their Display.
            let _ = write!(self.message, "{value:?}");
        } else {
            self.push_field(field.name(), format_args!("{value:?}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{FixedOffset, NaiveDate, Utc};

    fn fixed() -> DateTime<Utc> {
        NaiveDate::from_ymd_opt(2026, 8, 7)
            .and_then(|d| d.and_hms_milli_opt(12, 0, 0, 123))
            .expect("valid date")
            .and_utc()
    }

    #[test]
    fn translate_percent_f() {
        assert_eq!(translate_format("%FT%T.%f%z"), "%FT%T.%3f%z");
        assert_eq!(translate_format("%%f %f"), "%%f %3f");
        assert_eq!(translate_format("x%"), "x%");
    }

    #[test]
    fn default_format_line() {
        let f = TimestampFormat::default();
        let line = format_line(&f, LogLevel::Info, "msg", &fixed());
        assert_eq!(line, "2026-08-07T12:00:00.123+0000 INFO msg\n");
    }

    #[test]
    fn offset_and_custom_format() {
        let tz = FixedOffset::east_opt(2 * 3600).expect("offset");
        let ts = fixed().with_timezone(&tz);
        let f = TimestampFormat::parse("%FT%T%z").expect("valid");
        assert_eq!(
            format_line(&f, LogLevel::Warning, "w", &ts),
            "2026-08-07T14:00:00+0200 WARNING w\n"
        );
        let f = TimestampFormat::parse("%H:%M:%S.%f").expect("valid");
        assert_eq!(
            format_line(&f, LogLevel::Error, "e", &ts),
            "14:00:00.123 ERROR e\n"
        );
    }

    #[test]
    fn millis_are_zero_padded() {
        let ts = NaiveDate::from_ymd_opt(2026, 1, 2)
            .and_then(|d| d.and_hms_milli_opt(3, 4, 5, 7))
            .expect("valid")
            .and_utc();
        let line = format_line(&TimestampFormat::default(), LogLevel::Debug, "d", &ts);
        assert_eq!(line, "2026-01-02T03:04:05.007+0000 DEBUG d\n");
    }

    #[test]
    fn bad_format_falls_back() {
        let (f, warn) = TimestampFormat::parse_or_default("%Q %");
        assert!(warn.is_some());
        let line = format_line(&f, LogLevel::Info, "m", &fixed());
        assert!(
            line.starts_with("2026-08-07T12:00:00.123+0000 INFO"),
            "{line}"
        );
        let (_, warn) = TimestampFormat::parse_or_default("");
        assert!(warn.is_none());
    }

    #[test]
    fn level_names() {
        assert_eq!(level_name(LogLevel::Debug), "DEBUG");
        assert_eq!(level_name(LogLevel::Info), "INFO");
        assert_eq!(level_name(LogLevel::Warning), "WARNING");
        assert_eq!(level_name(LogLevel::Error), "ERROR");
        assert_eq!(level_from_tracing(&tracing::Level::TRACE), LogLevel::Debug);
        assert_eq!(level_from_tracing(&tracing::Level::DEBUG), LogLevel::Debug);
        assert_eq!(level_from_tracing(&tracing::Level::INFO), LogLevel::Info);
        assert_eq!(level_from_tracing(&tracing::Level::WARN), LogLevel::Warning);
        assert_eq!(level_from_tracing(&tracing::Level::ERROR), LogLevel::Error);
    }

    #[test]
    fn multi_line_message_is_one_line() {
        let line = format_line(
            &TimestampFormat::default(),
            LogLevel::Info,
            "a\nb\r\n",
            &fixed(),
        );
        assert_eq!(line, "2026-08-07T12:00:00.123+0000 INFO a b\n");
    }
}
