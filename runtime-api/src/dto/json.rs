//! The two answers a server sends most, a Worker's detail and a transcript
//! page, written as JSON without serde.
//!
//! `serde_json` writes each key and each string through a loop that looks
//! up every byte in its escape table, and every piece (a quote, a key, a
//! colon) through a call of its own. On a server that answers a Worker's
//! detail in a few microseconds, that was the largest single cost of the
//! answer. [`WriteJson`] writes the keys with their punctuation as one
//! constant each and a string that needs no escape in one copy. **The bytes
//! are exactly `serde_json::to_vec`'s** (a property test compares the two
//! on arbitrary values, including every escape), so a client cannot tell
//! which wrote an answer. The serde impls stay the definition of the wire
//! form; the encoders here follow them field by field.

use crate::Timestamp;
use crate::dto::{
    EntryRole, EntryStatus, Metadata, TranscriptEntry, TranscriptPage, WorkerDetail, state_name,
};

/// A value [`WriteJson`] cannot write: a timestamp outside the years
/// RFC 3339 has (`serde_json` fails on it too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unwritable;

/// Writes a DTO as the JSON `serde_json::to_writer` writes for it.
pub trait WriteJson {
    /// Appends the JSON of `self` to `out`. On an error, `out` holds part
    /// of it.
    fn write_json(&self, out: &mut Vec<u8>) -> Result<(), Unwritable>;
}

impl WriteJson for WorkerDetail {
    fn write_json(&self, out: &mut Vec<u8>) -> Result<(), Unwritable> {
        // The field order of `WorkerDetailRef`, the serialized form.
        let summary = &self.summary;
        out.extend_from_slice(br#"{"runtime_id":"#);
        string(out, summary.runtime_id.as_str());
        out.extend_from_slice(br#","worker_id":"#);
        string(out, summary.worker_id.as_str());
        out.extend_from_slice(br#","display_name":"#);
        string(out, &summary.display_name);
        out.extend_from_slice(br#","profile":{"name":"#);
        string(out, summary.profile.name.as_str());
        out.extend_from_slice(br#","fallback":"#);
        boolean(out, summary.profile.fallback);
        out.extend_from_slice(br#"},"state":"#);
        string(out, state_name(summary.state));
        out.extend_from_slice(br#","created_at":"#);
        timestamp(out, &summary.created_at)?;
        out.extend_from_slice(br#","updated_at":"#);
        timestamp(out, &summary.updated_at)?;
        out.extend_from_slice(br#","transcript_len":"#);
        number(out, summary.transcript_len);
        out.extend_from_slice(br#","pending_inputs":"#);
        number(out, summary.pending_inputs);
        out.extend_from_slice(br#","last_cursor":"#);
        string_or_null(out, summary.last_cursor.as_ref().map(|c| c.as_str()));
        out.extend_from_slice(br#","metadata":"#);
        metadata(out, &summary.metadata);
        out.extend_from_slice(br#","intent":"#);
        string_or_null(out, self.intent.as_deref());
        if let Some(forked_from) = &self.forked_from {
            out.extend_from_slice(br#","forked_from":{"worker_id":"#);
            string(out, forked_from.worker_id.as_str());
            out.extend_from_slice(br#","transcript_index":"#);
            number(out, forked_from.transcript_index);
            out.push(b'}');
        }
        out.push(b'}');
        Ok(())
    }
}

impl WriteJson for TranscriptPage {
    fn write_json(&self, out: &mut Vec<u8>) -> Result<(), Unwritable> {
        out.extend_from_slice(br#"{"start":"#);
        number(out, self.start);
        out.extend_from_slice(br#","limit":"#);
        number(out, u64::from(self.limit));
        out.extend_from_slice(br#","total":"#);
        number(out, self.total);
        out.extend_from_slice(br#","next_start":"#);
        match self.next_start {
            Some(next) => number(out, next),
            None => null(out),
        }
        out.extend_from_slice(br#","entries":["#);
        for (i, entry) in self.entries.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            entry.write_json(out)?;
        }
        out.extend_from_slice(b"]}");
        Ok(())
    }
}

impl WriteJson for TranscriptEntry {
    fn write_json(&self, out: &mut Vec<u8>) -> Result<(), Unwritable> {
        out.extend_from_slice(br#"{"index":"#);
        number(out, self.index);
        out.extend_from_slice(br#","role":"#);
        string(out, role_name(self.role));
        out.extend_from_slice(br#","text":"#);
        string(out, &self.text);
        out.extend_from_slice(br#","at":"#);
        timestamp(out, &self.at)?;
        out.extend_from_slice(br#","status":"#);
        string(out, status_name(self.status));
        out.extend_from_slice(br#","input_id":"#);
        string_or_null(out, self.input_id.as_ref().map(|id| id.as_str()));
        out.push(b'}');
        Ok(())
    }
}

fn role_name(role: EntryRole) -> &'static str {
    match role {
        EntryRole::User => "user",
        EntryRole::Assistant => "assistant",
        EntryRole::System => "system",
        EntryRole::Notice => "notice",
    }
}

fn status_name(status: EntryStatus) -> &'static str {
    match status {
        EntryStatus::Complete => "complete",
        EntryStatus::Partial => "partial",
        EntryStatus::Cancelled => "cancelled",
        EntryStatus::Failed => "failed",
        EntryStatus::RolledBack => "rolled_back",
    }
}

fn metadata(out: &mut Vec<u8>, metadata: &Metadata) {
    out.push(b'{');
    for (i, (key, value)) in metadata.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        string(out, key);
        out.push(b':');
        string(out, value);
    }
    out.push(b'}');
}

fn timestamp(out: &mut Vec<u8>, at: &Timestamp) -> Result<(), Unwritable> {
    at.write_json(out).ok_or(Unwritable)
}

fn null(out: &mut Vec<u8>) {
    out.extend_from_slice(b"null");
}

fn string_or_null(out: &mut Vec<u8>, value: Option<&str>) {
    match value {
        Some(value) => string(out, value),
        None => null(out),
    }
}

fn number(out: &mut Vec<u8>, value: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
}

fn boolean(out: &mut Vec<u8>, value: bool) {
    out.extend_from_slice(if value { b"true" } else { b"false" });
}

/// Whether any byte needs an escape: sixteen bytes at a time, each group
/// without an early exit, which the compiler turns into vector compares.
fn needs_escape(bytes: &[u8]) -> bool {
    bytes.chunks(16).any(|group| {
        group.iter().fold(false, |found, &byte| {
            found | (byte < 0x20) | (byte == b'"') | (byte == b'\\')
        })
    })
}

/// A JSON string, escaped as `serde_json` escapes: the quote, the
/// backslash and the control characters; nothing else.
fn string(out: &mut Vec<u8>, value: &str) {
    out.push(b'"');
    let bytes = value.as_bytes();
    if !needs_escape(bytes) {
        out.extend_from_slice(bytes);
        out.push(b'"');
        return;
    }
    let mut start = 0;
    for (i, &byte) in bytes.iter().enumerate() {
        let escape: &[u8] = match byte {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0x00..=0x1f => {
                out.extend_from_slice(&bytes[start..i]);
                start = i + 1;
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(byte >> 4)]);
                out.push(HEX[usize::from(byte & 0xf)]);
                continue;
            }
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(escape);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_escape_as_serde_json_does() {
        let mut every_byte = String::new();
        for byte in 0u8..=0x7f {
            every_byte.push(char::from(byte));
        }
        for value in [
            "",
            "plain",
            "say \"hi\" \\ back",
            "tab\there\nline\r\u{8}\u{c}\u{0}\u{1f}",
            "ünïcödé and 🦀 and \u{2028}",
            every_byte.as_str(),
        ] {
            let mut ours = Vec::new();
            string(&mut ours, value);
            assert_eq!(
                String::from_utf8(ours).unwrap(),
                serde_json::to_string(value).unwrap()
            );
        }
    }

    #[test]
    fn names_are_the_serde_names() {
        use EntryRole as R;
        use EntryStatus as S;
        for role in [R::User, R::Assistant, R::System, R::Notice] {
            assert_eq!(
                serde_json::to_string(&role).unwrap(),
                format!("\"{}\"", role_name(role))
            );
        }
        for status in [
            S::Complete,
            S::Partial,
            S::Cancelled,
            S::Failed,
            S::RolledBack,
        ] {
            assert_eq!(
                serde_json::to_string(&status).unwrap(),
                format!("\"{}\"", status_name(status))
            );
        }
    }
}
