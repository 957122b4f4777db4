//! `transcript.jsonl`: an index of line offsets per file, so a page costs
//! O(page), not O(file).
//!
//! The first read of a file scans it once, streaming, and records where
//! each valid line starts. Later reads re-check the file's identity and
//! size: a file that only grew is scanned from where the last scan stopped;
//! one that was replaced or shrank is scanned again. Bad lines (not UTF-8,
//! not a transcript line, or longer than `max_line_bytes`) are skipped one
//! by one and counted; nothing after them is lost. At most
//! `max_transcript_bytes` of a file are ever read.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use serde::Deserialize;
use yoi_runtime_api::Timestamp;
use yoi_runtime_api::WorkerId;
use yoi_runtime_api::dto::{Diagnostic, EntryRole, EntryStatus, TranscriptEntry};

use crate::options::LocalCompatLimits;
use crate::safe_fs::{Refused, Stamp, open_regular};

/// One line of `transcript.jsonl`.
#[derive(Deserialize)]
struct Line {
    role: EntryRole,
    text: String,
    at: Timestamp,
    #[serde(default = "complete")]
    status: EntryStatus,
}

fn complete() -> EntryStatus {
    EntryStatus::Complete
}

/// Where the valid lines of one file are.
#[derive(Debug)]
struct LineIndex {
    stamp: Stamp,
    /// Bytes scanned so far: every line before this offset is indexed or
    /// skipped.
    scanned_to: u64,
    /// Start and length (without the newline) of each valid line.
    lines: Vec<(u64, u32)>,
    skipped_bad: u64,
    skipped_long: u64,
    capped: bool,
}

impl LineIndex {
    fn empty(stamp: Stamp) -> Self {
        Self {
            stamp,
            scanned_to: 0,
            lines: Vec::new(),
            skipped_bad: 0,
            skipped_long: 0,
            capped: false,
        }
    }
}

/// The indexes of recently read transcripts.
#[derive(Debug)]
pub(crate) struct Transcripts {
    limits: LocalCompatLimits,
    indexes: HashMap<WorkerId, LineIndex>,
    /// Least recently used first.
    order: VecDeque<WorkerId>,
    /// Workers whose transcript is not a regular file (bounded).
    irregular: VecDeque<WorkerId>,
    /// Bytes read while scanning, for tests and diagnostics.
    pub(crate) bytes_scanned: u64,
}

/// The most Workers remembered for an irregular transcript.
const MAX_IRREGULAR: usize = 100;

/// A transcript page as read from a file.
pub(crate) struct Page {
    pub(crate) total: u64,
    pub(crate) entries: Vec<TranscriptEntry>,
}

impl Transcripts {
    pub(crate) fn new(limits: LocalCompatLimits) -> Self {
        Self {
            limits,
            indexes: HashMap::new(),
            order: VecDeque::new(),
            irregular: VecDeque::new(),
            bytes_scanned: 0,
        }
    }

    /// The number of valid lines of Worker `id`'s transcript in `folder`.
    pub(crate) fn len(&mut self, id: &WorkerId, folder: &Path) -> u64 {
        match self.open_indexed(id, folder) {
            Some((_, index)) => index.lines.len() as u64,
            None => 0,
        }
    }

    /// Up to `limit` entries from `start`, stopping early past
    /// `max_page_bytes` of text.
    pub(crate) fn page(&mut self, id: &WorkerId, folder: &Path, start: u64, limit: u32) -> Page {
        let max_line = self.limits.max_line_bytes;
        let max_page = self.limits.max_page_bytes;
        let Some((mut file, index)) = self.open_indexed(id, folder) else {
            return Page {
                total: 0,
                entries: Vec::new(),
            };
        };
        let total = index.lines.len() as u64;
        let wanted = index
            .lines
            .iter()
            .enumerate()
            .skip(usize::try_from(start).unwrap_or(usize::MAX))
            .take(limit as usize)
            .map(|(n, span)| (n as u64, *span))
            .collect::<Vec<_>>();
        let mut entries = Vec::with_capacity(wanted.len());
        let mut page_bytes = 0u64;
        for (n, (offset, len)) in wanted {
            if !entries.is_empty() && page_bytes + u64::from(len) > max_page {
                break;
            }
            let Some(line) = read_line_at(&mut file, offset, u64::from(len).min(max_line)) else {
                // Changed under us; the next call rescans.
                break;
            };
            page_bytes += u64::from(len);
            entries.push(TranscriptEntry {
                index: n,
                role: line.role,
                text: line.text,
                at: line.at,
                status: line.status,
                input_id: None,
            });
        }
        Page { total, entries }
    }

    /// What is wrong with the transcripts read so far, one line per Worker.
    pub(crate) fn diagnostics(&self) -> Vec<Diagnostic> {
        let mut out = Vec::new();
        for (id, index) in &self.indexes {
            if index.skipped_bad > 0 {
                out.push(Diagnostic::warning(
                    "malformed_transcript_lines",
                    format!(
                        "{} lines of the transcript of worker '{id}' are not valid and were skipped",
                        index.skipped_bad
                    ),
                ));
            }
            if index.skipped_long > 0 {
                out.push(Diagnostic::warning(
                    "oversized_transcript_lines",
                    format!(
                        "{} lines of the transcript of worker '{id}' are longer than {} bytes and were skipped",
                        index.skipped_long, self.limits.max_line_bytes
                    ),
                ));
            }
            if index.capped {
                out.push(Diagnostic::warning(
                    "oversized_transcript",
                    format!(
                        "the transcript of worker '{id}' is larger than {} bytes; the rest is not read",
                        self.limits.max_transcript_bytes
                    ),
                ));
            }
        }
        for id in &self.irregular {
            out.push(Diagnostic::warning(
                "irregular_transcript",
                format!("the transcript of worker '{id}' is not a regular file; it is not read"),
            ));
        }
        out.sort_by(|a, b| a.message.cmp(&b.message));
        out
    }

    /// Opens the transcript and brings its index up to date.
    fn open_indexed(&mut self, id: &WorkerId, folder: &Path) -> Option<(File, &LineIndex)> {
        let opened = open_regular(&folder.join("transcript.jsonl"));
        self.irregular.retain(|known| known != id);
        let (file, metadata) = match opened {
            Ok(opened) => opened,
            Err(refused) => {
                if matches!(refused, Refused::NotRegular) {
                    self.irregular.push_back(id.clone());
                    if self.irregular.len() > MAX_IRREGULAR {
                        self.irregular.pop_front();
                    }
                }
                self.forget(id);
                return None;
            }
        };
        let stamp = Stamp::of(&metadata);
        // Keep the index of the same file when it is unchanged or only grew
        // (appended); anything else is scanned again from the start.
        let mut index = self
            .indexes
            .remove(id)
            .filter(|known| {
                known.stamp.inode == stamp.inode
                    && known.scanned_to <= stamp.len
                    && (known.stamp == stamp || stamp.len > known.stamp.len)
            })
            .unwrap_or_else(|| LineIndex::empty(stamp));
        if index.stamp != stamp || index.scanned_to == 0 {
            index.stamp = stamp;
            let mut reader = BufReader::new(&file);
            self.bytes_scanned += scan(&mut reader, &mut index, &self.limits);
        }
        self.touch(id);
        self.indexes.insert(id.clone(), index);
        self.evict();
        let index = self.indexes.get(id)?;
        Some((file, index))
    }

    fn touch(&mut self, id: &WorkerId) {
        self.order.retain(|known| known != id);
        self.order.push_back(id.clone());
    }

    fn forget(&mut self, id: &WorkerId) {
        self.indexes.remove(id);
        self.order.retain(|known| known != id);
    }

    fn evict(&mut self) {
        while self.order.len() > self.limits.max_indexed_transcripts {
            if let Some(oldest) = self.order.pop_front() {
                self.indexes.remove(&oldest);
            }
        }
    }
}

/// Scans from `index.scanned_to` to the end (or the byte cap), indexing
/// valid lines. Returns the bytes read. Memory stays bounded by
/// `max_line_bytes` whatever the file holds.
fn scan(reader: &mut BufReader<&File>, index: &mut LineIndex, limits: &LocalCompatLimits) -> u64 {
    let start = index.scanned_to;
    if reader.seek(SeekFrom::Start(start)).is_err() {
        return 0;
    }
    let cap = limits.max_transcript_bytes;
    let mut offset = start;
    let mut line = Vec::new();
    loop {
        if offset >= cap {
            index.capped = index.stamp.len > cap;
            break;
        }
        line.clear();
        // Read at most one byte past the longest allowed line.
        let budget = (limits.max_line_bytes + 1).min(cap - offset + 1);
        let Ok(read) = reader.by_ref().take(budget).read_until(b'\n', &mut line) else {
            break;
        };
        if read == 0 {
            break;
        }
        let terminated = line.last() == Some(&b'\n');
        let content = if terminated {
            &line[..line.len() - 1]
        } else {
            &line[..]
        };
        if content.len() as u64 > limits.max_line_bytes {
            // Too long: skip to the end of the line without keeping it.
            let rest = if terminated {
                0
            } else {
                skip_line(reader, cap.saturating_sub(offset + read as u64))
            };
            index.skipped_long += 1;
            offset += read as u64 + rest;
            continue;
        }
        match serde_json::from_slice::<Line>(content) {
            Ok(_) => index.lines.push((offset, content.len() as u32)),
            // A final line without a newline may still be being written:
            // leave it for the next scan.
            Err(_) if !terminated => break,
            Err(_) if content.iter().all(u8::is_ascii_whitespace) => {}
            Err(_) => index.skipped_bad += 1,
        }
        offset += read as u64;
    }
    index.scanned_to = offset;
    offset - start
}

/// Skips to just past the next newline, reading at most `max` bytes.
fn skip_line(reader: &mut BufReader<&File>, max: u64) -> u64 {
    let mut skipped = 0u64;
    loop {
        let Ok(buffer) = reader.fill_buf() else {
            return skipped;
        };
        if buffer.is_empty() || skipped >= max {
            return skipped;
        }
        let (used, done) = match buffer.iter().position(|b| *b == b'\n') {
            Some(at) => (at + 1, true),
            None => (buffer.len(), false),
        };
        reader.consume(used);
        skipped += used as u64;
        if done {
            return skipped;
        }
    }
}

fn read_line_at(file: &mut File, offset: u64, len: u64) -> Option<Line> {
    file.seek(SeekFrom::Start(offset)).ok()?;
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(len).read_to_end(&mut bytes).ok()?;
    serde_json::from_slice(&bytes).ok()
}
