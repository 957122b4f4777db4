//! The queue between the worker core and the writer.
//!
//! Recording a change only appends to the queue: it wakes nobody. The
//! writer drains the queue when someone waits for durability (`urge`),
//! when it holds a full batch, or [`FLUSH_INTERVAL`] after the oldest
//! queued record, whichever comes first. So a streamed reply's deltas cost
//! no wake-up each and are committed together, while an accepted input is
//! committed at once.

use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use super::Record;
use crate::store::{Change, Ticket};

/// How long a record nobody waits for may sit in the queue.
pub(super) const FLUSH_INTERVAL: Duration = Duration::from_millis(2);
/// The most records one batch takes.
pub(super) const MAX_BATCH: usize = 1024;

#[derive(Debug, Default)]
struct State {
    records: Vec<Record>,
    /// The ticket of the newest record.
    last: Ticket,
    /// When the oldest queued record came.
    since: Option<Instant>,
    /// Someone waits for durability.
    urgent: bool,
    /// No more records will come.
    closed: bool,
}

/// Records waiting for the writer.
#[derive(Debug, Default)]
pub(super) struct Queue {
    state: Mutex<State>,
    ready: Condvar,
}

impl Queue {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends a record and returns its ticket (`None` once closed).
    pub(super) fn push(&self, changes: Vec<Change>) -> Option<Ticket> {
        let mut state = self.lock();
        if state.closed {
            return None;
        }
        let ticket = Ticket(state.last.0 + 1);
        state.last = ticket;
        state.records.push((ticket, changes));
        state.since.get_or_insert_with(Instant::now);
        if state.records.len() >= MAX_BATCH {
            self.ready.notify_one();
        }
        Some(ticket)
    }

    /// The last ticket handed out.
    pub(super) fn last(&self) -> Ticket {
        self.lock().last
    }

    /// Asks the writer to commit what is queued now.
    pub(super) fn urge(&self) {
        let mut state = self.lock();
        if !state.urgent {
            state.urgent = true;
            self.ready.notify_one();
        }
    }

    /// No more records: the writer drains what is left and stops.
    pub(super) fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_one();
    }

    /// Waits up to `timeout` for the queue to close; whether it has.
    pub(super) fn closed_within(&self, timeout: Duration) -> bool {
        let state = self.lock();
        let (state, _) = self
            .ready
            .wait_timeout_while(state, timeout, |state| !state.closed)
            .unwrap_or_else(|e| e.into_inner());
        state.closed
    }

    /// The next batch, waiting until one is due; `None` when closed and
    /// drained.
    pub(super) fn next_batch(&self) -> Option<Vec<Record>> {
        let mut state = self.lock();
        loop {
            let due = state.urgent
                || state.closed
                || state.records.len() >= MAX_BATCH
                || state
                    .since
                    .is_some_and(|since| since.elapsed() >= FLUSH_INTERVAL);
            if due && !state.records.is_empty() {
                let take = state.records.len().min(MAX_BATCH);
                let batch: Vec<Record> = state.records.drain(..take).collect();
                if state.records.is_empty() {
                    state.since = None;
                    state.urgent = false;
                } else {
                    state.since = Some(Instant::now());
                }
                return Some(batch);
            }
            if state.closed {
                return None;
            }
            state.urgent = false;
            state = match state.since {
                Some(since) => {
                    let left = FLUSH_INTERVAL.saturating_sub(since.elapsed());
                    self.ready
                        .wait_timeout(state, left)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
                None => self.ready.wait(state).unwrap_or_else(|e| e.into_inner()),
            };
        }
    }
}
