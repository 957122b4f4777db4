//! A log line's fields, written as `tracing-subscriber`'s default field
//! formatter writes them, at less cost per field.
//!
//! The request line has four fields (a method, a route, a status and a
//! latency), and the default formatter writes each through `fmt`
//! machinery: a format string with the field name painted in a style that
//! prints nothing without colour, then the value's `Debug`. [`LogFields`]
//! writes the common cases directly: a number, a flag, a string that
//! `Debug` would not escape, and a message of printable ASCII (which the
//! default's sanitising leaves alone). **Everything else goes to the default
//! formatter's own visitor, so the bytes are always the default's** (a
//! test compares the two on every kind of field); with colour, or when
//! escape sanitising is off, the default formatter writes every field.

use std::fmt;

use tracing::field::{Field, Visit};
use tracing_subscriber::field::{RecordFields, VisitOutput};
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::format::{DefaultFields, DefaultVisitor, Writer};

/// The field formatter of `yoi serve`: see the module documentation.
#[derive(Debug, Default)]
pub struct LogFields {
    fallback: DefaultFields,
}

impl<'writer> FormatFields<'writer> for LogFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'writer>, fields: R) -> fmt::Result {
        // The default visitor decides colour and sanitising from its
        // writer; the fast paths below are only right without colour and
        // with sanitising, which is how `yoi` writes into a file or pipe.
        if writer.has_ansi_escapes() || !writer.sanitizes_ansi_escapes() {
            return self.fallback.format_fields(writer, fields);
        }
        let mut visitor = FieldVisitor {
            writer,
            is_empty: true,
            result: Ok(()),
        };
        fields.record(&mut visitor);
        visitor.result
    }
}

/// Writes fields as [`DefaultVisitor`] does: separated by one space, each
/// `name=value` (the message alone, without its name).
struct FieldVisitor<'writer> {
    writer: Writer<'writer>,
    is_empty: bool,
    result: fmt::Result,
}

impl FieldVisitor<'_> {
    /// The space before every field but the first. False when an earlier
    /// field failed: nothing more is written.
    fn start(&mut self) -> bool {
        if self.result.is_err() {
            return false;
        }
        if self.is_empty {
            self.is_empty = false;
        } else {
            self.result = self.writer.write_char(' ');
        }
        self.result.is_ok()
    }

    /// A plain `name=` can be written directly: not the message (written
    /// without its name, and sanitised) and not a raw identifier (whose
    /// `r#` the default formatter strips).
    fn plain(field: &Field) -> bool {
        let name = field.name();
        name != "message" && !name.starts_with("r#")
    }

    /// The default visitor writes this field (the space is already
    /// written, so it is told it writes the first field).
    fn fallback(&mut self, record: impl FnOnce(&mut DefaultVisitor<'_>)) {
        let mut visitor = DefaultVisitor::new(self.writer.by_ref(), true);
        record(&mut visitor);
        self.result = visitor.finish();
    }

    /// A number or flag: a plain field's `name=text` written here, any
    /// other field by the default visitor.
    fn scalar(&mut self, field: &Field, text: &str, record: impl FnOnce(&mut DefaultVisitor<'_>)) {
        if !self.start() {
            return;
        }
        if Self::plain(field) {
            self.name_and(field, text);
        } else {
            self.fallback(record);
        }
    }

    fn name_and(&mut self, field: &Field, value: &str) {
        self.result = self
            .writer
            .write_str(field.name())
            .and_then(|()| self.writer.write_char('='))
            .and_then(|()| self.writer.write_str(value));
    }
}

/// `Debug` writes this string between quotes with nothing escaped: no
/// quote, backslash, control character or anything beyond ASCII.
pub(crate) fn debug_is_verbatim(value: &str) -> bool {
    all_bytes(value.as_bytes(), |byte| {
        (0x20..=0x7e).contains(&byte) & (byte != b'"') & (byte != b'\\')
    })
}

/// Bytes that the default formatter's sanitising leaves alone, and that
/// need no escaping anywhere: printable ASCII.
fn printable_ascii(bytes: &[u8]) -> bool {
    all_bytes(bytes, |byte| (0x20..=0x7e).contains(&byte))
}

/// Whether every byte passes `check`: sixteen bytes at a time, each group
/// without an early exit, which the compiler turns into vector compares
/// (a route of 46 bytes checked byte by byte cost about 400 instructions).
#[inline(always)]
fn all_bytes(bytes: &[u8], check: impl Fn(u8) -> bool) -> bool {
    bytes.chunks(16).all(|group| {
        group
            .iter()
            .fold(true, |passed, &byte| passed & check(byte))
    })
}

/// A short message, formatted on the stack.
struct Message {
    bytes: [u8; 128],
    len: usize,
}

impl Message {
    fn text(&self) -> &str {
        // Only whole `&str`s are ever copied in.
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or_default()
    }
}

impl fmt::Write for Message {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let end = self.len + text.len();
        let room = self.bytes.get_mut(self.len..end).ok_or(fmt::Error)?;
        room.copy_from_slice(text.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// The event's message as the default formatter writes it, when that is
/// short printable ASCII (which sanitising leaves alone); `None` for any
/// other field or message.
fn printable_message(field: &Field, value: &dyn fmt::Debug) -> Option<Message> {
    if field.name() != "message" {
        return None;
    }
    let mut message = Message {
        bytes: [0; 128],
        len: 0,
    };
    fmt::write(&mut message, format_args!("{value:?}")).ok()?;
    printable_ascii(&message.bytes[..message.len]).then_some(message)
}

impl Visit for FieldVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if !self.start() {
            return;
        }
        if field.name() == "message" && printable_ascii(value.as_bytes()) {
            // Sanitising changes nothing in printable ASCII.
            self.result = self.writer.write_str(value);
        } else if Self::plain(field) && debug_is_verbatim(value) {
            self.result = self
                .writer
                .write_str(field.name())
                .and_then(|()| self.writer.write_str("=\""))
                .and_then(|()| self.writer.write_str(value))
                .and_then(|()| self.writer.write_char('"'));
        } else {
            self.fallback(|visitor| visitor.record_str(field, value));
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        let mut digits = itoa::Buffer::new();
        let text = digits.format(value);
        self.scalar(field, text, |visitor| visitor.record_u64(field, value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        let mut digits = itoa::Buffer::new();
        let text = digits.format(value);
        self.scalar(field, text, |visitor| visitor.record_i64(field, value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        let text = if value { "true" } else { "false" };
        self.scalar(field, text, |visitor| visitor.record_bool(field, value));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        if self.start() {
            self.fallback(|visitor| visitor.record_error(field, value));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if !self.start() {
            return;
        }
        if Self::plain(field) {
            // The default's `{name}{=}{value:?}`, without the styles that
            // print nothing without colour.
            self.result = self
                .writer
                .write_str(field.name())
                .and_then(|()| self.writer.write_char('='))
                .and_then(|()| write!(self.writer, "{value:?}"));
        } else if let Some(message) = printable_message(field, value) {
            // Sanitising changes nothing in printable ASCII.
            self.result = self.writer.write_str(message.text());
        } else {
            self.fallback(|visitor| visitor.record_debug(field, value));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbatim_strings_are_those_debug_leaves_alone() {
        for value in ["", "/api/runtimes/{runtime_id}", "a b ~"] {
            assert!(debug_is_verbatim(value), "{value:?}");
        }
        // Past the first sixteen bytes too.
        let long = "/api/runtimes/{runtime_id}/workers/{worker_id}";
        assert!(debug_is_verbatim(long));
        assert!(printable_ascii(long.as_bytes()));
        for (index, bad) in [(40, '"'), (17, '\\'), (45, '\u{7f}'), (31, '\n')] {
            let mut value = long.to_owned();
            value.replace_range(index..=index, &bad.to_string());
            assert!(!debug_is_verbatim(&value), "{value:?}");
        }
        assert!(!printable_ascii(format!("{long}\u{1b}").as_bytes()));
        for value in [
            "say \"hi\"",
            "back\\slash",
            "tab\there",
            "del\x7f",
            "\u{1b}[31m",
            "\u{301}",
            "é",
        ] {
            assert!(!debug_is_verbatim(value), "{value:?}");
        }
        // Every string of two bytes' worth of characters the check accepts
        // is one `Debug` leaves alone.
        for first in ' '..='~' {
            for second in ' '..='~' {
                let value = format!("{first}{second}");
                if debug_is_verbatim(&value) {
                    assert_eq!(format!("{value:?}"), format!("\"{value}\""));
                }
            }
        }
    }
}
