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

/// How much a log or transcript keeps: its newest items, at most `items`
/// of them and at most `bytes` of their estimated size. The newest item is
/// always kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Budget {
    pub(crate) items: usize,
    pub(crate) bytes: usize,
}

impl Budget {
    /// A budget of `items` and no byte bound.
    pub(crate) fn items(items: usize) -> Self {
        Self {
            items,
            bytes: usize::MAX,
        }
    }

    fn exceeded(self, items: usize, bytes: usize) -> bool {
        items > 1 && (items > self.items || bytes > self.bytes)
    }
}

/// What an event costs to keep, roughly: its text plus a fixed part for
/// the ids, cursor and timestamp.
fn event_bytes(event: &WorkerEvent) -> usize {
    const FIXED: usize = 160;
    FIXED
        + match &event.kind {
            WorkerEventKind::TextDelta { delta, .. } => delta.len(),
            WorkerEventKind::WorkerCreated { display_name, .. } => display_name.len(),
            WorkerEventKind::TurnFailed { reason, .. } => reason.message.len(),
            _ => 0,
        }
}

/// What an entry costs to keep, roughly.
pub(crate) fn entry_bytes(entry: &TranscriptEntry) -> usize {
    const FIXED: usize = 128;
    FIXED + entry.text.len()
}

/// An event log with sequence numbers from 1, keeping the newest events
/// its [`Budget`] allows.
///
/// **A cursor names its log's epoch as well as the event's sequence
/// number**: `"<seq>.<epoch>"`, where the epoch is a random token of the
/// Runtime instance that wrote the event. So a cursor from another Worker's
/// log, from before a restart, or one this log has not issued yet is never
/// taken for one of this log's events: [`EventLog::resolve`] accepts only a
/// cursor equal to the one of the retained event it names.
#[derive(Debug)]
pub(crate) struct EventLog {
    /// **Shared, never copied, with every subscriber**: a read hands out
    /// `Arc`s, so a subscriber's buffer costs a pointer per event.
    events: VecDeque<Arc<WorkerEvent>>,
    /// The sequence number of `events[0]` (or of the next event when empty).
    first_seq: u64,
    budget: Budget,
    /// The estimated size of `events`.
    bytes: usize,
    epoch: Arc<str>,
}

impl EventLog {
    /// The estimated bytes kept.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    pub(crate) fn new(budget: Budget, epoch: Arc<str>) -> Self {
        Self {
            events: VecDeque::new(),
            first_seq: 1,
            budget,
            bytes: 0,
            epoch,
        }
    }

    /// A log rebuilt from stored `events` (oldest first, with their
    /// sequence numbers), whose next event gets `next_seq`.
    pub(crate) fn restore(
        budget: Budget,
        epoch: Arc<str>,
        events: Vec<(u64, WorkerEvent)>,
        next_seq: u64,
    ) -> Self {
        let mut log = Self::new(budget, epoch);
        log.first_seq = next_seq - events.len() as u64;
        for (_, event) in events {
            log.bytes += event_bytes(&event);
            log.events.push_back(Arc::new(event));
            log.evict();
        }
        log
    }

    /// Drops the oldest events past the budget.
    fn evict(&mut self) {
        while self.budget.exceeded(self.events.len(), self.bytes) {
            if let Some(event) = self.events.pop_front() {
                self.bytes -= event_bytes(&event);
                self.first_seq += 1;
            }
        }
    }

    /// The sequence number of the oldest retained event (of the next
    /// event when none is retained).
    pub(crate) fn first_seq(&self) -> u64 {
        self.first_seq
    }

    /// The sequence number of the event after the newest.
    pub(crate) fn next_seq_number(&self) -> u64 {
        self.next_seq()
    }

    /// The newest event with its sequence number.
    pub(crate) fn newest(&self) -> Option<(u64, &WorkerEvent)> {
        self.events.back().map(|e| (self.next_seq() - 1, &**e))
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
        let event = WorkerEvent {
            cursor: cursor.clone(),
            worker_id: worker_id.clone(),
            at: Timestamp::now(),
            kind,
        };
        self.bytes += event_bytes(&event);
        self.events.push_back(Arc::new(event));
        self.evict();
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
    ) -> Result<(Vec<Arc<WorkerEvent>>, bool), CursorError> {
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
        let page: Vec<Arc<WorkerEvent>> = self.events.range(skip..).take(limit).cloned().collect();
        let has_more = skip + page.len() < self.events.len();
        Ok((page, has_more))
    }
}

/// A transcript keeping the newest entries its [`Budget`] allows.
#[derive(Debug)]
pub(crate) struct Transcript {
    entries: VecDeque<TranscriptEntry>,
    /// The index of `entries[0]`.
    first_index: u64,
    budget: Budget,
    /// The estimated size of `entries`.
    bytes: usize,
}

impl Transcript {
    /// The estimated bytes kept.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    pub(crate) fn new(budget: Budget) -> Self {
        Self {
            entries: VecDeque::new(),
            first_index: 0,
            budget,
            bytes: 0,
        }
    }

    /// A transcript rebuilt from its newest stored `entries` (oldest
    /// first), of `total` ever appended.
    pub(crate) fn restore(budget: Budget, entries: Vec<TranscriptEntry>, total: u64) -> Self {
        let mut transcript = Self::new(budget);
        transcript.first_index = total - entries.len() as u64;
        for entry in entries {
            transcript.bytes += entry_bytes(&entry);
            transcript.entries.push_back(entry);
            transcript.evict();
        }
        transcript
    }

    /// Drops the oldest entries past the budget.
    fn evict(&mut self) {
        while self.budget.exceeded(self.entries.len(), self.bytes) {
            if let Some(entry) = self.entries.pop_front() {
                self.bytes -= entry_bytes(&entry);
                self.first_index += 1;
            }
        }
    }

    /// Appends `delta` to the text of entry `index`; false when the entry
    /// is no longer retained.
    pub(crate) fn append_text(&mut self, index: u64, delta: &str) -> bool {
        let Some(entry) = self.get_mut(index) else {
            return false;
        };
        entry.text.push_str(delta);
        self.bytes += delta.len();
        self.evict();
        true
    }

    /// Every retained entry, oldest first.
    pub(crate) fn oldest_first(&self) -> impl Iterator<Item = &TranscriptEntry> {
        self.entries.iter()
    }

    /// The index of the oldest retained entry (of the next entry when none
    /// is retained).
    pub(crate) fn first_index(&self) -> u64 {
        self.first_index
    }

    /// Entries ever appended.
    pub(crate) fn total(&self) -> u64 {
        self.first_index + self.entries.len() as u64
    }

    /// Appends an entry, setting its index, and returns the index.
    pub(crate) fn push(&mut self, mut entry: TranscriptEntry) -> u64 {
        let index = self.total();
        entry.index = index;
        self.bytes += entry_bytes(&entry);
        self.entries.push_back(entry);
        self.evict();
        index
    }

    /// The entry, to change its status (its text changes only through
    /// [`Transcript::append_text`], which keeps the byte count).
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

    fn entry(text: &str) -> TranscriptEntry {
        TranscriptEntry {
            index: 999,
            role: EntryRole::User,
            text: text.to_owned(),
            at: Timestamp::now(),
            status: EntryStatus::Complete,
            input_id: None,
        }
    }

    fn delta(text: &str) -> WorkerEventKind {
        WorkerEventKind::TextDelta {
            input_id: "in-1".parse().unwrap(),
            transcript_index: 1,
            delta: text.to_owned(),
        }
    }

    #[test]
    fn the_event_log_keeps_within_its_byte_budget_and_expires_what_it_drops() {
        let budget = Budget {
            items: 1000,
            bytes: 10_000,
        };
        let mut log = EventLog::new(budget, "ep0ch".into());
        let first = log.push(&wid(), delta(&"x".repeat(3000)));
        for _ in 0..5 {
            log.push(&wid(), delta(&"x".repeat(3000)));
        }
        assert!(log.bytes <= 10_000, "{} bytes kept", log.bytes);
        assert_eq!(log.events.len(), 3);
        assert_eq!(log.resolve(&first), Err(CursorError::Expired));
        // One event over the whole budget is still kept: the newest stays.
        log.push(&wid(), delta(&"y".repeat(50_000)));
        assert_eq!(log.events.len(), 1);
    }

    #[test]
    fn the_transcript_keeps_within_its_byte_budget_as_replies_grow() {
        let mut t = Transcript::new(Budget {
            items: 1000,
            bytes: 5_000,
        });
        for _ in 0..3 {
            t.push(entry(&"u".repeat(1000)));
        }
        let reply = t.push(entry(""));
        for _ in 0..3 {
            assert!(t.append_text(reply, &"r".repeat(1000)));
        }
        assert!(t.bytes <= 5_000, "{} bytes kept", t.bytes);
        assert_eq!(t.get(reply).unwrap().text.len(), 3000);
        assert!(t.get(0).is_none(), "the oldest entries went first");
        assert_eq!(t.total(), 4);
    }

    #[test]
    fn readers_share_the_logged_events_instead_of_copying_them() {
        let mut log = EventLog::new(Budget::items(10), "ep0ch".into());
        log.push(&wid(), stopped());
        let (first, _) = log.read_after(None, 10).unwrap();
        let (second, _) = log.read_after(None, 10).unwrap();
        assert!(Arc::ptr_eq(&first[0], &second[0]));
        // The log and both readers hold the one event.
        assert_eq!(Arc::strong_count(&first[0]), 3);
    }

    #[test]
    fn reads_after_cursors_and_expires_old_ones() {
        let mut log = EventLog::new(Budget::items(3), "ep0ch".into());
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
        let mut log = EventLog::new(Budget::items(3), "aaaaaa".into());
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
        let mut t = Transcript::new(Budget::items(4));
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
