//! Bounded, append-only sequences: the event log and the transcript.
//!
//! Both keep their newest items in a `VecDeque` and remember how many were
//! dropped from the front, so reading a page is an index computation plus a
//! copy of the page: the cost does not grow with the length of the history.

use std::collections::VecDeque;
use std::sync::Arc;

use yoi_runtime_api::dto::{TranscriptEntry, WorkerEvent, WorkerEventKind};
use yoi_runtime_api::{EventCursor, Timestamp, WorkerId};

/// Why a cursor cannot be read after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CursorError {
    /// Not a cursor this log hands out.
    Foreign,
    /// Older than the oldest retained event.
    Expired,
}

/// The sequence number a cursor of an [`EventLog`] names: the decimal
/// number before its `.`. Says nothing about whether this log issued it;
/// [`EventLog::resolve`] does.
pub(crate) fn cursor_seq(cursor: &EventCursor) -> Result<u64, CursorError> {
    let digits = cursor.as_str().split('.').next().unwrap_or("");
    if digits.is_empty() || (digits.len() > 1 && digits.starts_with('0')) {
        return Err(CursorError::Foreign);
    }
    digits.parse().map_err(|_| CursorError::Foreign)
}

/// An event log with sequence numbers from 1, keeping the newest `max`.
///
/// **A cursor names its log's epoch as well as the event's sequence
/// number**: `"<seq>.<epoch>"`, where the epoch is a random token of the
/// Runtime instance that wrote the event. So a cursor from another Worker's
/// log, from before a restart, or one this log has not issued yet is never
/// taken for one of this log's events: [`EventLog::resolve`] accepts only a
/// cursor equal to the one of the retained event it names.
#[derive(Debug)]
pub(crate) struct EventLog {
    events: VecDeque<WorkerEvent>,
    /// The sequence number of `events[0]` (or of the next event when empty).
    first_seq: u64,
    max: usize,
    epoch: Arc<str>,
}

impl EventLog {
    pub(crate) fn new(max: usize, epoch: Arc<str>) -> Self {
        Self {
            events: VecDeque::new(),
            first_seq: 1,
            max,
            epoch,
        }
    }

    /// A log rebuilt from stored `events` (oldest first, with their
    /// sequence numbers), whose next event gets `next_seq`.
    pub(crate) fn restore(
        max: usize,
        epoch: Arc<str>,
        events: Vec<(u64, WorkerEvent)>,
        next_seq: u64,
    ) -> Self {
        let skip = events.len().saturating_sub(max);
        let events: VecDeque<WorkerEvent> = events.into_iter().skip(skip).map(|(_, e)| e).collect();
        Self {
            first_seq: next_seq - events.len() as u64,
            events,
            max,
            epoch,
        }
    }

    /// The sequence number of the event after the newest.
    pub(crate) fn next_seq_number(&self) -> u64 {
        self.next_seq()
    }

    /// The newest event with its sequence number.
    pub(crate) fn newest(&self) -> Option<(u64, &WorkerEvent)> {
        self.events.back().map(|e| (self.next_seq() - 1, e))
    }

    /// The sequence number of `cursor` if this log issued it and still
    /// holds its event; `Expired` if it is older than the retained events
    /// (and so cannot be checked), `Foreign` otherwise.
    pub(crate) fn resolve(&self, cursor: &EventCursor) -> Result<u64, CursorError> {
        let seq = cursor_seq(cursor)?;
        if seq < self.first_seq {
            return Err(CursorError::Expired);
        }
        let offset = usize::try_from(seq - self.first_seq).map_err(|_| CursorError::Foreign)?;
        match self.events.get(offset) {
            Some(event) if event.cursor == *cursor => Ok(seq),
            _ => Err(CursorError::Foreign),
        }
    }

    fn next_seq(&self) -> u64 {
        self.first_seq + self.events.len() as u64
    }

    /// Appends an event and returns its cursor.
    pub(crate) fn push(&mut self, worker_id: &WorkerId, kind: WorkerEventKind) -> EventCursor {
        let cursor = EventCursor::new(format!("{}.{}", self.next_seq(), self.epoch))
            .unwrap_or_else(|_| unreachable!("digits, a dot and base32 are a valid id"));
        self.events.push_back(WorkerEvent {
            cursor: cursor.clone(),
            worker_id: worker_id.clone(),
            at: Timestamp::now(),
            kind,
        });
        if self.events.len() > self.max {
            self.events.pop_front();
            self.first_seq += 1;
        }
        cursor
    }

    /// The cursor of the newest event.
    pub(crate) fn last_cursor(&self) -> Option<EventCursor> {
        self.events.back().map(|e| e.cursor.clone())
    }

    /// Up to `limit` events after `after` (from the oldest retained when
    /// `None`), and whether more follow.
    pub(crate) fn read_after(
        &self,
        after: Option<u64>,
        limit: usize,
    ) -> Result<(Vec<WorkerEvent>, bool), CursorError> {
        let start_seq = match after {
            None => self.first_seq,
            Some(seq) if seq >= self.next_seq() => {
                // A cursor we have not handed out yet is foreign, except the
                // newest one, after which nothing has happened.
                return if seq == self.next_seq() - 1 {
                    Ok((Vec::new(), false))
                } else {
                    Err(CursorError::Foreign)
                };
            }
            Some(seq) if seq + 1 < self.first_seq => return Err(CursorError::Expired),
            Some(seq) => seq + 1,
        };
        let skip = usize::try_from(start_seq - self.first_seq).unwrap_or(usize::MAX);
        let page: Vec<WorkerEvent> = self.events.range(skip..).take(limit).cloned().collect();
        let has_more = skip + page.len() < self.events.len();
        Ok((page, has_more))
    }
}

/// A transcript keeping its newest `max` entries.
#[derive(Debug)]
pub(crate) struct Transcript {
    entries: VecDeque<TranscriptEntry>,
    /// The index of `entries[0]`.
    first_index: u64,
    max: usize,
}

impl Transcript {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            entries: VecDeque::new(),
            first_index: 0,
            max,
        }
    }

    /// A transcript rebuilt from its newest stored `entries` (oldest
    /// first), of `total` ever appended.
    pub(crate) fn restore(max: usize, entries: Vec<TranscriptEntry>, total: u64) -> Self {
        let skip = entries.len().saturating_sub(max);
        let entries: VecDeque<TranscriptEntry> = entries.into_iter().skip(skip).collect();
        Self {
            first_index: total - entries.len() as u64,
            entries,
            max,
        }
    }

    /// Every retained entry, oldest first.
    pub(crate) fn oldest_first(&self) -> impl Iterator<Item = &TranscriptEntry> {
        self.entries.iter()
    }

    /// Entries ever appended.
    pub(crate) fn total(&self) -> u64 {
        self.first_index + self.entries.len() as u64
    }

    /// Appends an entry, setting its index, and returns the index.
    pub(crate) fn push(&mut self, mut entry: TranscriptEntry) -> u64 {
        let index = self.total();
        entry.index = index;
        self.entries.push_back(entry);
        if self.entries.len() > self.max {
            self.entries.pop_front();
            self.first_index += 1;
        }
        index
    }

    pub(crate) fn get_mut(&mut self, index: u64) -> Option<&mut TranscriptEntry> {
        let offset = index.checked_sub(self.first_index)?;
        self.entries.get_mut(usize::try_from(offset).ok()?)
    }

    pub(crate) fn get(&self, index: u64) -> Option<&TranscriptEntry> {
        let offset = index.checked_sub(self.first_index)?;
        self.entries.get(usize::try_from(offset).ok()?)
    }

    /// Entries from `start` (or the oldest retained, if later), at most
    /// `limit`; returns the actual start and the entries.
    pub(crate) fn page(&self, start: u64, limit: usize) -> (u64, Vec<TranscriptEntry>) {
        let start = start.max(self.first_index);
        let skip = usize::try_from(start - self.first_index).unwrap_or(usize::MAX);
        let entries = self
            .entries
            .range(skip.min(self.entries.len())..)
            .take(limit)
            .cloned()
            .collect();
        (start, entries)
    }

    /// Every retained entry, newest first.
    pub(crate) fn newest_first(&self) -> impl Iterator<Item = &TranscriptEntry> {
        self.entries.iter().rev()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use yoi_runtime_api::dto::{EntryRole, EntryStatus};

    fn wid() -> WorkerId {
        WorkerId::new("w").unwrap()
    }

    fn stopped() -> WorkerEventKind {
        WorkerEventKind::WorkerStopped {}
    }

    #[test]
    fn reads_after_cursors_and_expires_old_ones() {
        let mut log = EventLog::new(3, "ep0ch".into());
        assert_eq!(log.read_after(None, 10).unwrap(), (vec![], false));
        assert_eq!(log.read_after(Some(0), 10).unwrap(), (vec![], false));
        for _ in 0..5 {
            log.push(&wid(), stopped());
        }
        // Retained: 3, 4, 5.
        let (page, more) = log.read_after(None, 2).unwrap();
        assert_eq!(
            page.iter().map(|e| e.cursor.as_str()).collect::<Vec<_>>(),
            ["3.ep0ch", "4.ep0ch"]
        );
        assert!(more);
        let (page, more) = log.read_after(Some(2), 10).unwrap();
        assert_eq!(page.len(), 3);
        assert!(!more);
        assert_eq!(log.read_after(Some(1), 10), Err(CursorError::Expired));
        assert_eq!(log.read_after(Some(5), 10).unwrap(), (vec![], false));
        assert_eq!(log.read_after(Some(6), 10), Err(CursorError::Foreign));
        assert_eq!(log.last_cursor().unwrap().as_str(), "5.ep0ch");
    }

    #[test]
    fn only_cursors_this_log_issued_resolve() {
        let cursor = |s: &str| EventCursor::new(s).unwrap();
        let mut log = EventLog::new(3, "aaaaaa".into());
        for _ in 0..5 {
            log.push(&wid(), stopped());
        }
        assert_eq!(log.resolve(&cursor("4.aaaaaa")), Ok(4));
        assert_eq!(log.resolve(&cursor("5.aaaaaa")), Ok(5));
        // Dropped from the front: cannot be checked, so expired.
        assert_eq!(log.resolve(&cursor("2.aaaaaa")), Err(CursorError::Expired));
        // Another epoch (another log, or before a restart), the future, or
        // not a cursor at all.
        assert_eq!(log.resolve(&cursor("4.bbbbbb")), Err(CursorError::Foreign));
        assert_eq!(log.resolve(&cursor("4")), Err(CursorError::Foreign));
        assert_eq!(log.resolve(&cursor("6.aaaaaa")), Err(CursorError::Foreign));
        assert_eq!(log.resolve(&cursor("x.aaaaaa")), Err(CursorError::Foreign));
    }

    #[test]
    fn cursor_parsing_is_strict() {
        let parse = |s: &str| cursor_seq(&EventCursor::new(s).unwrap());
        assert_eq!(parse("0"), Ok(0));
        assert_eq!(parse("42"), Ok(42));
        assert_eq!(parse("42.k3x9f2"), Ok(42));
        assert_eq!(parse("042"), Err(CursorError::Foreign));
        assert_eq!(parse("x"), Err(CursorError::Foreign));
        assert_eq!(parse("99999999999999999999999"), Err(CursorError::Foreign));
    }

    #[test]
    fn transcript_pages_by_index_after_eviction() {
        let mut t = Transcript::new(4);
        for i in 0..10 {
            let index = t.push(TranscriptEntry {
                index: 999,
                role: EntryRole::User,
                text: format!("m{i}"),
                at: Timestamp::now(),
                status: EntryStatus::Complete,
                input_id: None,
            });
            assert_eq!(index, i);
        }
        assert_eq!(t.total(), 10);
        let (start, page) = t.page(0, 2);
        assert_eq!(start, 6);
        assert_eq!(page.iter().map(|e| e.index).collect::<Vec<_>>(), [6, 7]);
        let (start, page) = t.page(9, 5);
        assert_eq!((start, page.len()), (9, 1));
        assert!(t.page(50, 5).1.is_empty());
        assert!(t.get_mut(3).is_none());
        assert_eq!(t.get(8).unwrap().text, "m8");
    }
}
