//! What a critical section tells the store.
//!
//! Every change to a Worker goes through [`Locked`]; when the store keeps
//! Workers, each change is also written down as a [`Change`] and the list
//! is handed to the store when the section ends, still under the lock.

use std::sync::atomic::Ordering;

use yoi_runtime_api::InputId;
use yoi_runtime_api::dto::{EntryStatus, TranscriptEntry};

use super::Locked;
use crate::store::{Change, RememberedInput, WorkerMeta, WorkerStatus};

impl Locked<'_> {
    fn journal(&mut self, change: impl FnOnce(&Self) -> Change) {
        if self.journal.is_some() {
            let change = change(self);
            if let Some(journal) = self.journal.as_mut() {
                journal.push(change);
            }
        }
    }

    pub(super) fn journal_created(&mut self) {
        self.journal(|locked| {
            let worker = locked.worker;
            Change::Created(WorkerMeta {
                worker_id: worker.id.clone(),
                display_name: locked.inner.display_name.clone(),
                metadata: locked.inner.metadata.clone(),
                profile: worker.profile.name.clone(),
                fallback: worker.fallback,
                intent: worker.intent.clone(),
                forked_from: worker.forked_from.clone(),
                created_at: worker.created_at,
            })
        });
    }

    /// Journals the Worker's name and metadata as they are now.
    pub(super) fn journal_meta(&mut self) {
        self.journal(|locked| Change::Meta {
            worker_id: locked.worker.id.clone(),
            display_name: locked.inner.display_name.clone(),
            metadata: locked.inner.metadata.clone(),
        });
    }

    /// Journals the event just appended to the log.
    pub(super) fn journal_event(&mut self) {
        self.journal(|locked| {
            let (seq, event) = locked
                .inner
                .log
                .newest()
                .unwrap_or_else(|| unreachable!("an event was just appended"));
            Change::Event {
                seq,
                event: event.clone(),
            }
        });
    }

    /// Appends an entry to the transcript (setting its index) and journals
    /// it; returns the index.
    pub(super) fn push_entry(&mut self, entry: TranscriptEntry) -> u64 {
        let index = self.inner.transcript.push(entry);
        self.journal(|locked| Change::Entry {
            worker_id: locked.worker.id.clone(),
            entry: locked
                .inner
                .transcript
                .get(index)
                .cloned()
                .unwrap_or_else(|| unreachable!("just appended")),
        });
        index
    }

    pub(super) fn journal_status(&mut self, index: u64, status: EntryStatus) {
        self.journal(|locked| Change::EntryStatus {
            worker_id: locked.worker.id.clone(),
            index,
            status,
        });
    }

    pub(super) fn journal_append(&mut self, index: u64, text: &str) {
        self.journal(|locked| Change::AppendText {
            worker_id: locked.worker.id.clone(),
            index,
            text: text.to_owned(),
        });
    }

    pub(super) fn journal_client_id(&mut self, id: &InputId, remembered: &RememberedInput) {
        self.journal(|locked| Change::ClientId {
            worker_id: locked.worker.id.clone(),
            client_input_id: id.clone(),
            remembered: remembered.clone(),
        });
    }

    /// Hands the section's changes, with the Worker's summary after them,
    /// to the store.
    pub(super) fn record(&mut self) {
        let Some(mut changes) = self.journal.take() else {
            return;
        };
        // A call that found the Worker before it was deleted may change it
        // after: as if it had changed just before, and the deletion had
        // taken the change with everything else.
        if changes.is_empty() || self.inner.forgotten {
            return;
        }
        let retained = (
            self.inner.transcript.first_index(),
            self.inner.log.first_seq(),
        );
        if retained != self.inner.reported_retained {
            // Memory dropped old entries or events (by count or bytes): the
            // store drops them too. The writer coalesces these per batch.
            self.inner.reported_retained = retained;
            changes.push(Change::Retained {
                worker_id: self.worker.id.clone(),
                first_entry: retained.0,
                first_seq: retained.1,
            });
        }
        changes.push(Change::Summary(self.status()));
        let ticket = self.shared.store.record(changes);
        self.worker.last_ticket.store(ticket.0, Ordering::Release);
    }

    pub(super) fn status(&self) -> WorkerStatus {
        WorkerStatus {
            worker_id: self.worker.id.clone(),
            state: self.inner.state,
            updated_at: self.inner.updated_at,
            transcript_len: self.inner.transcript.total(),
            pending_inputs: self.inner.queue.len() as u64,
            last_cursor: self.inner.log.last_cursor(),
            next_seq: self.inner.log.next_seq_number(),
        }
    }
}
