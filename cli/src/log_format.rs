//! The log line, formatted as `tracing-subscriber`'s default ("full")
//! format writes it, at less cost per line.
//!
//! The server writes an info line per request, so the line's cost is part
//! of every request's. The default format spends most of its time in
//! `fmt` machinery: the timestamp's nine numbers, styles that print
//! nothing without colour, the level's padding. [`LogFormat`] writes the
//! same bytes directly: the date and time to the second are formatted once
//! a second (per thread), then only the microseconds. Fields are written by
//! the subscriber's field formatter (in `yoi`, [`LogFields`](crate::log_fields::LogFields)).
//! **The output is byte for byte the default format's** (a test compares
//! the two, with `LogFields` against the default field formatter); with
//! colour (a terminal), the default format itself writes the line.

use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::{Format, Full, Writer};
use tracing_subscriber::fmt::time::SystemTime as SystemTimer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// The event format of `yoi serve`: see the module documentation.
#[derive(Debug, Default)]
pub struct LogFormat {
    /// Writes lines with colour.
    colored: Format<Full, SystemTimer>,
}

/// The date and time to the second, as last formatted on this thread.
struct Second {
    unix: u64,
    text: String,
}

thread_local! {
    static SECOND: RefCell<Option<Second>> = const { RefCell::new(None) };
}

impl<S, N> FormatEvent<S, N> for LogFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        if writer.has_ansi_escapes() {
            return self.colored.format_event(ctx, writer, event);
        }
        let meta = event.metadata();
        write_timestamp(&mut writer, SystemTime::now())?;
        writer.write_str(level_text(meta.level()))?;
        writer.write_char(' ')?;
        if let Some(scope) = ctx.event_scope() {
            let mut seen = false;
            for span in scope.from_root() {
                writer.write_str(span.metadata().name())?;
                seen = true;
                let extensions = span.extensions();
                if let Some(fields) = extensions.get::<FormattedFields<N>>()
                    && !fields.is_empty()
                {
                    writer.write_char('{')?;
                    writer.write_str(fields)?;
                    writer.write_char('}')?;
                }
                writer.write_char(':')?;
            }
            if seen {
                writer.write_char(' ')?;
            }
        }
        writer.write_str(meta.target())?;
        writer.write_str(": ")?;
        ctx.format_fields(writer.by_ref(), event)?;
        writer.write_char('\n')
    }
}

/// The level as the default format writes it without colour.
pub(crate) fn level_text(level: &Level) -> &'static str {
    match *level {
        Level::TRACE => "TRACE",
        Level::DEBUG => "DEBUG",
        Level::INFO => " INFO",
        Level::WARN => " WARN",
        Level::ERROR => "ERROR",
    }
}

/// `2026-11-30T18:06:00.141752Z ` (UTC, microseconds, then a space).
pub(crate) fn write_timestamp(writer: &mut impl fmt::Write, now: SystemTime) -> fmt::Result {
    // Before 1970 (a clock set wrong) is written as 1970: never seen in
    // practice, and not worth a second code path.
    let since_epoch = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let unix = since_epoch.as_secs();
    SECOND.with(|second| {
        let mut second = second.borrow_mut();
        if second.as_ref().is_none_or(|s| s.unix != unix) {
            *second = Some(Second {
                unix,
                text: date_and_time(unix),
            });
        }
        let text = second.as_ref().map_or("", |s| s.text.as_str());
        writer.write_str(text)
    })?;
    let micros = since_epoch.subsec_micros();
    let mut digits = [b'0'; 6];
    let mut rest = micros;
    for digit in digits.iter_mut().rev() {
        *digit = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    writer.write_char('.')?;
    // Six ASCII digits.
    writer.write_str(std::str::from_utf8(&digits).map_err(|_| fmt::Error)?)?;
    writer.write_str("Z ")
}

/// `2026-11-30T18:06:00` for a Unix time in seconds.
fn date_and_time(unix: u64) -> String {
    let days = unix / 86_400;
    let in_day = unix % 86_400;
    let (year, month, day) = civil_date(days);
    let mut text = String::with_capacity(20);
    let _ = write!(
        text,
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        in_day / 3600,
        in_day / 60 % 60,
        in_day % 60
    );
    text
}

/// The proleptic Gregorian date `days` after 1970-01-01: whole 400-year
/// eras (146,097 days each) first, then years within the era counted from
/// March, so that the leap day falls at the end of a counted year.
fn civil_date(days: u64) -> (u64, u64, u64) {
    // Days since 0000-03-01.
    let shifted = days + 719_468;
    let era = shifted / 146_097;
    let day_of_era = shifted % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    // Months counted from March, each five months 153 days.
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps_match_the_default_timer() {
        let instants = [
            UNIX_EPOCH,
            UNIX_EPOCH + Duration::new(951_782_400, 5_000), // 2000-02-29
            UNIX_EPOCH + Duration::new(4_107_542_399, 999_999_999), // 2100-02-28T23:59:59
            UNIX_EPOCH + Duration::new(1_796_061_960, 141_752_630),
            UNIX_EPOCH + Duration::new(253_402_300_799, 0), // 9999-12-31T23:59:59
        ];
        for instant in instants {
            let mut ours = String::new();
            write_timestamp(&mut ours, instant).unwrap();
            let theirs = format!(
                "{} ",
                time::OffsetDateTime::from(instant)
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap()
            );
            // RFC 3339 from `time` writes the fraction it has; ours always
            // six digits, as the default timer does.
            assert_eq!(ours.len(), 28, "{ours}");
            assert_eq!(ours[..19], theirs[..19], "{instant:?}");
            let micros = instant.duration_since(UNIX_EPOCH).unwrap().subsec_micros();
            assert_eq!(ours[19..], format!(".{micros:06}Z "), "{instant:?}");
        }
    }

    #[test]
    fn every_day_of_four_centuries_is_the_right_date() {
        // 1970-01-01 onward against `time`'s calendar, one day at a time.
        let mut date = time::Date::from_calendar_date(1970, time::Month::January, 1).unwrap();
        for days in 0..146_097u64 {
            let (year, month, day) = civil_date(days);
            assert_eq!(
                (year as i32, month as u8, day as u8),
                (date.year(), u8::from(date.month()), date.day()),
                "day {days}"
            );
            date = date.next_day().unwrap();
        }
    }
}
