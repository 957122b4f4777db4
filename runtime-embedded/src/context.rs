//! What Workers and their turn tasks need of their Runtime: its id and
//! limits, the runtime-level event log, the per-state counts, the list of
//! stopped Workers, and the tracker of running turn tasks.
//!
//! A leaf module: it knows nothing of Workers, turns or the store, so they
//! can all depend on it without depending on each other.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;
use tokio_util::task::TaskTracker;
use yoi_runtime_api::dto::{WorkerCounts, WorkerEvent, WorkerEventKind, WorkerState};
use yoi_runtime_api::{EventCursor, RuntimeId, Timestamp, WorkerId};

use crate::ids::{IdGenerator, random_token};
use crate::log::{Budget, CursorError, EventLog};
use crate::options::Limits;
use crate::search::SearchIndex;
use crate::stamps::Stamps;
use crate::store::WorkerStore;

/// Shared by a Runtime, its Workers and their turn tasks.
#[derive(Debug)]
pub(crate) struct RuntimeContext {
    pub(crate) id: RuntimeId,
    pub(crate) limits: Limits,
    runtime_log: Mutex<EventLog>,
    /// Woken after every append to the runtime log.
    pub(crate) runtime_changed: Notify,
    counts: Mutex<WorkerCounts>,
    /// Workers being created: counted as live from the cap's check until
    /// they count themselves (changed under `counts`' lock when it grows).
    creating: AtomicU64,
    /// Stopped Workers with when they stopped, oldest first, for
    /// `max_stopped_workers` and `max_stopped_age`.
    stopped: Mutex<VecDeque<(WorkerId, Timestamp)>>,
    /// Every running turn task, so shutdown can wait for them.
    pub(crate) turns: TaskTracker,
    shutting_down: AtomicBool,
    /// The epoch written into every cursor this instance issues.
    pub(crate) epoch: Arc<str>,
    /// Worker and input ids.
    pub(crate) ids: IdGenerator,
    /// Where Workers are kept.
    pub(crate) store: Arc<dyn WorkerStore>,
    /// Whether the store keeps anything (so changes are journaled).
    pub(crate) persist: bool,
    /// Estimated bytes of transcripts and event logs the Runtime's Workers
    /// keep in memory (each Worker adds its change at the end of every
    /// critical section and takes its share back when dropped).
    pub(crate) retained: Arc<AtomicUsize>,
    /// The index for finding Workers, when every Worker is in memory (a
    /// persistent store answers searches itself).
    pub(crate) index: Option<SearchIndex>,
    /// The clock that dates `updated_at`, and the snapshots passes take.
    pub(crate) stamps: Stamps,
}

impl RuntimeContext {
    pub(crate) fn new(id: RuntimeId, limits: Limits, store: Arc<dyn WorkerStore>) -> Self {
        let epoch: Arc<str> = random_token(6).into();
        Self {
            index: (!store.persistent()).then(SearchIndex::default),
            retained: Arc::new(AtomicUsize::new(0)),
            stamps: Stamps::default(),
            persist: store.persistent(),
            store,
            id,
            runtime_log: Mutex::new(EventLog::new(
                Budget::items(limits.max_runtime_events),
                epoch.clone(),
            )),
            epoch,
            ids: IdGenerator::default(),
            limits,
            runtime_changed: Notify::new(),
            counts: Mutex::new(WorkerCounts::default()),
            creating: AtomicU64::new(0),
            stopped: Mutex::new(VecDeque::new()),
            turns: TaskTracker::new(),
            shutting_down: AtomicBool::new(false),
        }
    }

    /// Estimated bytes of transcripts and events held in memory.
    pub(crate) fn retained_bytes(&self) -> usize {
        self.retained.load(Ordering::Relaxed)
    }

    /// Appends a lifecycle event to the runtime-level log. Called with a
    /// Worker's lock held; the runtime log lock is always taken second.
    pub(crate) fn record_runtime_event(&self, worker_id: &WorkerId, kind: WorkerEventKind) {
        self.runtime_log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(worker_id, kind);
        self.runtime_changed.notify_waiters();
    }

    /// The sequence number of a runtime-level cursor this log issued.
    pub(crate) fn resolve_runtime_cursor(&self, cursor: &EventCursor) -> Result<u64, CursorError> {
        let log = self.runtime_log.lock().unwrap_or_else(|e| e.into_inner());
        log.resolve(cursor)
    }

    /// Runtime-level events after `after`.
    pub(crate) fn read_runtime_log(
        &self,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<Arc<WorkerEvent>>, CursorError> {
        let log = self.runtime_log.lock().unwrap_or_else(|e| e.into_inner());
        log.read_after(after, limit).map(|(events, _)| events)
    }

    /// Keeps the per-state Worker counts current, so status is O(1).
    pub(crate) fn count_transition(&self, from: WorkerState, to: WorkerState) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let slot = match from {
            WorkerState::Idle => &mut counts.idle,
            WorkerState::Running => &mut counts.running,
            WorkerState::Stopping => &mut counts.stopping,
            WorkerState::Stopped => &mut counts.stopped,
            _ => &mut counts.failed,
        };
        *slot = slot.saturating_sub(1);
        counts.add(to);
    }

    /// Room for one more live Worker under `max`, taken by the new
    /// Worker's count ([`RuntimeContext::count_created`]) in one step, so
    /// creates racing at the cap neither pass it nor refuse below it;
    /// `None` at the cap.
    pub(crate) fn reserve_live(&self, max: u64) -> Option<LiveSlot<'_>> {
        let counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let live = counts.total() - counts.stopped + self.creating.load(Ordering::Relaxed);
        if live >= max {
            return None;
        }
        self.creating.fetch_add(1, Ordering::Relaxed);
        drop(counts);
        Some(LiveSlot { context: self })
    }

    /// Counts a new Worker (idle) in the room reserved for it.
    pub(crate) fn count_created(&self, room: LiveSlot<'_>) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        counts.add(WorkerState::Idle);
        self.creating.fetch_sub(1, Ordering::Relaxed);
        drop(counts);
        // Given back above, under the same lock as the count.
        std::mem::forget(room);
    }

    /// The Workers by state.
    pub(crate) fn counts(&self) -> WorkerCounts {
        *self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records that a Worker stopped (`None`: only check the bounds).
    /// Returns the stopped Workers past `max_stopped_workers` or older than
    /// `max_stopped_age`, oldest first: the caller forgets them. Called
    /// without any Worker lock held.
    pub(crate) fn retire(&self, worker_id: Option<(WorkerId, Timestamp)>) -> Vec<WorkerId> {
        let evicted = {
            let mut stopped = self.stopped.lock().unwrap_or_else(|e| e.into_inner());
            stopped.extend(worker_id);
            let mut evicted = Vec::new();
            let too_old = |at: &Timestamp| {
                self.limits.max_stopped_age.is_some_and(|age| {
                    let now = Timestamp::now().as_offset_date_time();
                    now - at.as_offset_date_time() > age
                })
            };
            while let Some((id, at)) = stopped.front() {
                if stopped.len() > self.limits.max_stopped_workers || too_old(at) {
                    evicted.push(id.clone());
                    stopped.pop_front();
                } else {
                    break;
                }
            }
            evicted
        };
        if !evicted.is_empty() {
            let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
            counts.stopped = counts.stopped.saturating_sub(evicted.len() as u64);
        }
        evicted
    }

    /// Starts from what the store had: counts and stopped Workers.
    pub(crate) fn resume(&self, counts: WorkerCounts, stopped: Vec<(WorkerId, Timestamp)>) {
        *self.counts.lock().unwrap_or_else(|e| e.into_inner()) = counts;
        *self.stopped.lock().unwrap_or_else(|e| e.into_inner()) = stopped.into();
    }

    /// Forgets a stopped Worker that is being deleted.
    pub(crate) fn forget_stopped(&self, worker_id: &WorkerId) {
        self.stopped
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(id, _)| id != worker_id);
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        counts.stopped = counts.stopped.saturating_sub(1);
    }

    /// From now on no turn starts, and inputs are refused.
    pub(crate) fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
    }

    pub(crate) fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }
}

/// Room for a Worker being created (see [`RuntimeContext::reserve_live`]).
#[must_use = "the room is given back when this is dropped"]
pub(crate) struct LiveSlot<'a> {
    context: &'a RuntimeContext,
}

impl Drop for LiveSlot<'_> {
    /// No Worker was created in the room (the create failed first).
    fn drop(&mut self) {
        self.context.creating.fetch_sub(1, Ordering::Relaxed);
    }
}
