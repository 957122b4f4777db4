//! One Worker: its state machine, transcript, event log and input queue.
//!
//! All of a Worker's mutable state sits behind one `std::sync::RwLock`, taken
//! only for short, synchronous sections and **never held across `.await`**.
//! Every change happens through [`Locked`] (the write lock), which records
//! the event in the Worker's log (and, for lifecycle events, the runtime's
//! log) in the same critical section as the change itself, and wakes
//! subscribers when it is dropped. That is what makes "replay, then live, no
//! gaps, no duplicates" hold: readers only ever read the log. Sections that
//! only read take the read lock ([`Worker::read`]), so readers of one Worker
//! on different threads never wait for each other.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use tokio::sync::{Notify, oneshot};
use yoi_runtime_api::dto::{
    BusyPolicy, EntryRole, EntryStatus, FailureReason, ForkedFrom, InputAcceptance, InputRequest,
    Metadata, ProfileRef, TranscriptEntry, TranscriptPage, WorkerDetail, WorkerEvent,
    WorkerEventKind, WorkerState, WorkerSummary,
};
use yoi_runtime_api::{BusyReason, InputId, Result, RuntimeError, Timestamp, WorkerId};

use crate::backend::ChatRequest;
use crate::context::{LiveSlot, RuntimeContext};
use crate::store::{Change, RememberedInput};
use remembered::RememberedInputs;

mod fork;
mod journal;
mod remembered;
mod restore;
mod retained;
mod rollback;
mod turns;
mod update;
use crate::log::{CursorError, EventLog, Transcript};
use crate::profile::Profile;
use crate::stamps::Open;

/// How a turn ended, as reported by its task.
#[derive(Debug)]
pub(crate) enum TurnOutcome {
    Completed,
    Failed(FailureReason),
}

/// What a new turn needs to run.
pub(crate) struct TurnTicket {
    pub(crate) turn_id: u64,
    pub(crate) request: ChatRequest,
    pub(crate) cancelled: oneshot::Receiver<()>,
}

#[derive(Debug)]
struct QueuedInput {
    input_id: InputId,
    user_index: u64,
}

#[derive(Debug)]
struct RunningTurn {
    turn_id: u64,
    input_id: InputId,
    reply_index: u64,
    /// Dropping or firing this tells the turn task to stop without writing.
    cancel: oneshot::Sender<()>,
}

#[derive(Debug)]
struct Inner {
    display_name: String,
    metadata: Metadata,
    state: WorkerState,
    updated_at: Timestamp,
    transcript: Transcript,
    log: EventLog,
    queue: VecDeque<QueuedInput>,
    running: Option<RunningTurn>,
    client_ids: RememberedInputs,
    next_turn: u64,
    /// The oldest entry index and event sequence number last reported to
    /// the store as retained (`journal.rs`).
    reported_retained: (u64, u64),
    /// Deleted or retired: the store is told nothing more (`journal.rs`).
    forgotten: bool,
}

/// A Worker of an embedded runtime.
#[derive(Debug)]
pub(crate) struct Worker {
    pub(crate) id: WorkerId,
    profile: Arc<Profile>,
    fallback: bool,
    intent: Option<String>,
    forked_from: Option<ForkedFrom>,
    created_at: Timestamp,
    inner: RwLock<Inner>,
    /// Woken after every change, for subscribers.
    pub(crate) changed: Notify,
    /// The store's ticket of this Worker's newest recorded changes.
    last_ticket: AtomicU64,
    /// When the Worker was last used, on the directory's clock.
    pub(crate) last_access: AtomicU64,
    /// This Worker's share of the Runtime's retained bytes (`retained.rs`).
    accounted: AtomicUsize,
    retained: Arc<AtomicUsize>,
}

/// What a new Worker starts with.
pub(crate) struct NewWorker {
    pub(crate) id: WorkerId,
    pub(crate) display_name: String,
    pub(crate) metadata: Metadata,
    pub(crate) profile: Arc<Profile>,
    pub(crate) fallback: bool,
    pub(crate) intent: Option<String>,
    pub(crate) forked_from: Option<ForkedFrom>,
}

/// A locked Worker. Changes go through its methods so that each one is
/// logged; subscribers are woken when it is dropped.
pub(crate) struct Locked<'a> {
    worker: &'a Worker,
    shared: &'a RuntimeContext,
    inner: RwLockWriteGuard<'a, Inner>,
    changed: bool,
    /// The changes of this critical section, for the store; `None` when the
    /// store keeps nothing.
    journal: Option<Vec<Change>>,
    /// Held from dating a change until it is indexed and recorded, so a
    /// pass's snapshot never falls between the two (`stamps.rs`). Dropped
    /// after [`Drop::drop`] has recorded the section's changes.
    stamp: Option<Open<'a>>,
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        // Still inside the critical section: the store gets each Worker's
        // changes in the order they happened.
        self.record();
        self.worker.account(&self.inner);
        if self.changed {
            self.worker.changed.notify_waiters();
        }
    }
}

impl Locked<'_> {
    fn emit(&mut self, kind: WorkerEventKind) -> yoi_runtime_api::EventCursor {
        self.changed = true;
        // A streamed delta is part of the reply the turn's start and end
        // already date: `updated_at` (and the search index, kept in step)
        // moves on every other event, so the hot path per delta touches
        // neither the clock nor the index.
        match kind {
            WorkerEventKind::TextDelta { .. } => {}
            // Dated by creation: `updated_at` starts equal to `created_at`.
            WorkerEventKind::WorkerCreated { .. } => self.index(&kind),
            _ => {
                self.inner.updated_at = self.date();
                self.index(&kind);
            }
        }
        let lifecycle = matches!(
            kind,
            WorkerEventKind::WorkerCreated { .. }
                | WorkerEventKind::WorkerUpdated { .. }
                | WorkerEventKind::WorkerStopped {}
                | WorkerEventKind::StateChanged { .. }
        );
        if lifecycle {
            self.shared
                .record_runtime_event(&self.worker.id, kind.clone());
        }
        let cursor = self.inner.log.push(&self.worker.id, kind);
        self.journal_event();
        cursor
    }

    /// A new `updated_at`, with the section's stamp open until the end.
    fn date(&mut self) -> Timestamp {
        let shared = self.shared;
        let (now, open) = shared.stamps.stamp();
        // One open stamp covers every date of the section.
        self.stamp.get_or_insert(open);
        now
    }

    /// Keeps the memory store's search index in step, in this critical
    /// section.
    fn index(&self, kind: &WorkerEventKind) {
        let Some(index) = &self.shared.index else {
            return;
        };
        let updated = yoi_runtime_api::dto::timestamp_nanos(self.inner.updated_at);
        match kind {
            WorkerEventKind::WorkerCreated { .. } => index.insert(
                &self.worker.id,
                updated,
                self.inner.state,
                self.worker.profile.name.as_str(),
                &self.inner.metadata,
            ),
            WorkerEventKind::WorkerUpdated { .. } => {
                index.touch(&self.worker.id, updated, self.inner.state);
                index.set_metadata(&self.worker.id, &self.inner.metadata);
            }
            _ => index.touch(&self.worker.id, updated, self.inner.state),
        }
    }

    fn set_state(&mut self, to: WorkerState) {
        let from = self.inner.state;
        if from != to {
            self.inner.state = to;
            self.shared.count_transition(from, to);
            self.emit(WorkerEventKind::StateChanged { from, to });
        }
    }

    fn set_entry_status(&mut self, index: u64, status: EntryStatus) {
        if let Some(entry) = self.inner.transcript.get_mut(index)
            && entry.status != status
        {
            entry.status = status;
            self.journal_status(index, status);
        }
    }

    /// Starts a turn on a recorded input; the caller runs the ticket.
    fn start_turn(&mut self, input: QueuedInput) -> TurnTicket {
        self.set_entry_status(input.user_index, EntryStatus::Complete);
        let request = self.conversation(input.user_index);
        let reply_index = self.push_entry(TranscriptEntry {
            index: 0,
            role: EntryRole::Assistant,
            text: String::new(),
            at: Timestamp::now(),
            status: EntryStatus::Partial,
            input_id: Some(input.input_id.clone()),
        });
        let turn_id = self.inner.next_turn;
        self.inner.next_turn += 1;
        let (cancel, cancelled) = oneshot::channel();
        self.inner.running = Some(RunningTurn {
            turn_id,
            input_id: input.input_id.clone(),
            reply_index,
            cancel,
        });
        self.set_state(WorkerState::Running);
        self.emit(WorkerEventKind::TurnStarted {
            input_id: input.input_id,
            transcript_index: reply_index,
        });
        TurnTicket {
            turn_id,
            request,
            cancelled,
        }
    }

    /// Ends the running turn as cancelled, keeping its partial reply.
    fn cancel_running(&mut self) {
        if let Some(turn) = self.inner.running.take() {
            self.set_entry_status(turn.reply_index, EntryStatus::Cancelled);
            self.emit(WorkerEventKind::TurnCancelled {
                input_id: turn.input_id,
                transcript_index: turn.reply_index,
            });
            // The task may already be gone; then there is nobody to tell.
            let _ = turn.cancel.send(());
        }
    }

    /// Drops every queued input, marking it cancelled in the transcript.
    fn drop_queue(&mut self) {
        let dropped: Vec<QueuedInput> = self.inner.queue.drain(..).collect();
        for input in dropped {
            self.set_entry_status(input.user_index, EntryStatus::Cancelled);
            self.changed = true;
        }
    }

    fn is_current(&self, turn_id: u64) -> bool {
        self.inner
            .running
            .as_ref()
            .is_some_and(|t| t.turn_id == turn_id)
    }

    fn remember_client_id(&mut self, id: InputId, remembered: RememberedInput) {
        self.journal_client_id(&id, &remembered);
        let max = self.shared.limits.max_remembered_client_ids;
        self.inner.client_ids.remember(id, remembered, max);
    }
}

/// What a Worker is made from, when it is created or read back from its
/// store: all but what always starts empty (its ticket, its last access,
/// the bytes accounted for it, its wake-up).
pub(super) struct Parts {
    id: WorkerId,
    profile: Arc<Profile>,
    fallback: bool,
    intent: Option<String>,
    forked_from: Option<ForkedFrom>,
    created_at: Timestamp,
    inner: Inner,
}

impl Worker {
    /// The Worker of `parts`, with nothing recorded or accounted yet.
    pub(super) fn from_parts(parts: Parts, shared: &RuntimeContext) -> Arc<Self> {
        Arc::new(Self {
            id: parts.id,
            profile: parts.profile,
            fallback: parts.fallback,
            intent: parts.intent,
            forked_from: parts.forked_from,
            created_at: parts.created_at,
            inner: RwLock::new(parts.inner),
            changed: Notify::new(),
            last_ticket: AtomicU64::new(0),
            last_access: AtomicU64::new(0),
            accounted: AtomicUsize::new(0),
            retained: shared.retained.clone(),
        })
    }

    /// Creates a Worker and records `worker_created`.
    pub(crate) fn create(shared: &RuntimeContext, new: NewWorker, room: LiveSlot<'_>) -> Arc<Self> {
        let (now, stamp) = shared.stamps.stamp();
        let display_name = new.display_name;
        let worker = Self::from_parts(
            Parts {
                id: new.id,
                profile: new.profile,
                fallback: new.fallback,
                intent: new.intent,
                forked_from: new.forked_from,
                created_at: now,
                inner: Inner {
                    display_name: display_name.clone(),
                    metadata: new.metadata,
                    state: WorkerState::Idle,
                    updated_at: now,
                    transcript: Transcript::new(shared.limits.transcript_budget()),
                    log: EventLog::new(shared.limits.event_budget(), shared.epoch.clone()),
                    queue: VecDeque::new(),
                    running: None,
                    client_ids: RememberedInputs::default(),
                    next_turn: 1,
                    reported_retained: (0, 1),
                    forgotten: false,
                },
            },
            shared,
        );
        shared.count_created(room);
        let profile = worker.profile_ref();
        let mut locked = worker.lock(shared);
        locked.stamp = Some(stamp);
        locked.journal_created();
        locked.emit(WorkerEventKind::WorkerCreated {
            display_name,
            profile,
        });
        drop(locked);
        worker
    }

    fn lock<'a>(&'a self, shared: &'a RuntimeContext) -> Locked<'a> {
        Locked {
            worker: self,
            shared,
            // A panic while locked leaves consistent data behind (every
            // section is a few field writes), so a poisoned lock is usable.
            inner: self.inner.write().unwrap_or_else(|e| e.into_inner()),
            changed: false,
            journal: shared.persist.then(Vec::new),
            stamp: None,
        }
    }

    /// The Worker's state, for a section that only reads: nothing to
    /// record, account or announce.
    fn read(&self) -> RwLockReadGuard<'_, Inner> {
        // Poisoned or not, the data is consistent (see `lock`).
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn backend(&self) -> Arc<dyn crate::backend::ModelBackend> {
        self.profile.backend.clone()
    }

    fn profile_ref(&self) -> ProfileRef {
        ProfileRef {
            name: self.profile.name.clone(),
            fallback: self.fallback,
        }
    }

    fn summary_locked(&self, shared: &RuntimeContext, inner: &Inner) -> WorkerSummary {
        WorkerSummary {
            runtime_id: shared.id.clone(),
            worker_id: self.id.clone(),
            display_name: inner.display_name.clone(),
            profile: self.profile_ref(),
            state: inner.state,
            created_at: self.created_at,
            updated_at: inner.updated_at,
            transcript_len: inner.transcript.total(),
            pending_inputs: inner.queue.len() as u64,
            last_cursor: inner.log.last_cursor(),
            metadata: inner.metadata.clone(),
        }
    }

    pub(crate) fn summary(&self, shared: &RuntimeContext) -> WorkerSummary {
        self.summary_locked(shared, &self.read())
    }

    pub(crate) fn detail(&self, shared: &RuntimeContext) -> WorkerDetail {
        WorkerDetail {
            summary: self.summary(shared),
            intent: self.intent.clone(),
            forked_from: self.forked_from.clone(),
        }
    }

    fn stopped_error(&self, shared: &RuntimeContext) -> RuntimeError {
        RuntimeError::WorkerStopped {
            runtime_id: shared.id.clone(),
            worker_id: self.id.clone(),
        }
    }

    /// Records an input and starts, queues or interrupts according to its
    /// busy policy. Returns once the input is recorded, with the turn to run
    /// when one starts now.
    pub(crate) fn send_input(
        &self,
        shared: &RuntimeContext,
        request: InputRequest,
    ) -> Result<(InputAcceptance, Option<TurnTicket>)> {
        let mut locked = self.lock(shared);
        // A retry is answered even after stop: the input was accepted.
        if let Some(client_id) = &request.client_input_id
            && let Some(first) = locked.inner.client_ids.get(client_id)
        {
            if !first.is_retried_by(&request.text) {
                return Err(RuntimeError::InputIdConflict {
                    runtime_id: shared.id.clone(),
                    worker_id: self.id.clone(),
                    client_input_id: client_id.clone(),
                    input_id: first.acceptance.input_id.clone(),
                });
            }
            return Ok((first.acceptance.clone(), None));
        }
        if locked.inner.state.is_terminal() {
            return Err(self.stopped_error(shared));
        }
        let busy = locked.inner.running.is_some();
        if busy {
            let reason = match request.on_busy {
                BusyPolicy::Reject => Some(BusyReason::TurnRunning),
                BusyPolicy::Queue
                    if locked.inner.queue.len() >= shared.limits.max_queued_inputs =>
                {
                    Some(BusyReason::QueueFull)
                }
                _ => None,
            };
            if let Some(reason) = reason {
                return Err(RuntimeError::WorkerBusy {
                    runtime_id: shared.id.clone(),
                    worker_id: self.id.clone(),
                    reason,
                });
            }
        }
        let input_id =
            InputId::new(shared.ids.next("in-")).unwrap_or_else(|_| unreachable!("a valid id"));
        let queued = busy && request.on_busy == BusyPolicy::Queue;
        let text_digest = request
            .client_input_id
            .is_some()
            .then(|| RememberedInput::text_digest(&request.text));
        let user_index = locked.push_entry(TranscriptEntry {
            index: 0,
            role: EntryRole::User,
            text: request.text,
            at: Timestamp::now(),
            status: if queued {
                EntryStatus::Partial
            } else {
                EntryStatus::Complete
            },
            input_id: Some(input_id.clone()),
        });
        let cursor = locked.emit(WorkerEventKind::InputAccepted {
            input_id: input_id.clone(),
            transcript_index: user_index,
        });
        let input = QueuedInput {
            input_id: input_id.clone(),
            user_index,
        };
        let ticket = if queued {
            locked.inner.queue.push_back(input);
            None
        } else {
            // Not busy, or interrupting: the input runs now.
            locked.cancel_running();
            Some(locked.start_turn(input))
        };
        let acceptance = InputAcceptance {
            input_id,
            transcript_index: user_index,
            state: locked.inner.state,
            cursor,
        };
        if let Some(client_id) = request.client_input_id {
            let remembered = RememberedInput {
                acceptance: acceptance.clone(),
                text_digest,
            };
            locked.remember_client_id(client_id, remembered);
        }
        Ok((acceptance, ticket))
    }

    /// Cancels the running turn and drops the queue. Idempotent.
    pub(crate) fn cancel(&self, shared: &RuntimeContext) -> WorkerDetail {
        {
            let mut locked = self.lock(shared);
            if !locked.inner.state.is_terminal() {
                locked.cancel_running();
                locked.drop_queue();
                locked.set_state(WorkerState::Idle);
            }
        }
        self.detail(shared)
    }

    /// Cancels everything and stops the Worker for good. Idempotent; the
    /// flag says whether this call stopped it.
    pub(crate) fn stop(&self, shared: &RuntimeContext) -> (WorkerDetail, bool) {
        let stopped_now = {
            let mut locked = self.lock(shared);
            let running = locked.inner.state != WorkerState::Stopped;
            if running {
                locked.cancel_running();
                locked.drop_queue();
                locked.set_state(WorkerState::Stopped);
                locked.emit(WorkerEventKind::WorkerStopped {});
            }
            running
        };
        (self.detail(shared), stopped_now)
    }

    pub(crate) fn transcript_page(&self, start: u64, limit: u32) -> TranscriptPage {
        let inner = self.read();
        let transcript = &inner.transcript;
        let (start, entries) = transcript.page(start, limit as usize);
        let total = transcript.total();
        let end = start + entries.len() as u64;
        TranscriptPage {
            start,
            limit,
            total,
            next_start: (end < total && !entries.is_empty()).then_some(end),
            entries,
        }
    }

    /// The sequence number of `cursor` in this Worker's log.
    pub(crate) fn resolve_cursor(
        &self,
        cursor: &yoi_runtime_api::EventCursor,
    ) -> Result<u64, CursorError> {
        self.read().log.resolve(cursor)
    }

    /// Events after `after`, whether more follow, and whether the log is
    /// closed (the Worker is stopped, so nothing will follow ever).
    pub(crate) fn read_events(
        &self,
        after: Option<u64>,
        limit: usize,
    ) -> Result<(Vec<Arc<WorkerEvent>>, bool, bool), CursorError> {
        let inner = self.read();
        let (events, more) = inner.log.read_after(after, limit)?;
        Ok((events, more, inner.state == WorkerState::Stopped))
    }

    /// The store's ticket of this Worker's newest recorded changes.
    pub(crate) fn last_ticket(&self) -> crate::store::Ticket {
        crate::store::Ticket(self.last_ticket.load(Ordering::Acquire))
    }

    /// The id of the running turn, if any.
    pub(crate) fn running_turn(&self) -> Option<u64> {
        self.read().running.as_ref().map(|t| t.turn_id)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use yoi_runtime_api::Runtime;
    use yoi_runtime_api::dto::CreateWorkerRequest;

    use crate::EmbeddedRuntime;

    /// Readers of one Worker on different threads do not wait for each
    /// other: a read section runs while another thread holds the read lock.
    #[tokio::test]
    async fn a_reader_does_not_wait_for_another_reader() {
        let runtime = EmbeddedRuntime::with_defaults();
        let created = runtime
            .create_worker(CreateWorkerRequest::default())
            .await
            .unwrap();
        let worker = runtime
            .shared
            .worker(&created.summary.worker_id)
            .await
            .unwrap();
        let held = worker.read();
        let (done, finished) = mpsc::channel();
        let reader = worker.clone();
        std::thread::spawn(move || {
            let page = reader.transcript_page(0, 10);
            done.send(page.total).unwrap();
        });
        let total = finished.recv_timeout(Duration::from_secs(10));
        drop(held);
        assert_eq!(total, Ok(0), "the second reader waited for the first");
    }
}
