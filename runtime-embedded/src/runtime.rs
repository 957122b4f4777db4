//! [`EmbeddedRuntime`]: the handle, and its implementation of the contract.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tokio::sync::Notify;
use yoi_runtime_api::dto::{
    CreateWorkerRequest, EventPage, EventQuery, ImplementationKind, InputAcceptance, InputRequest,
    RuntimeState, RuntimeStatus, RuntimeSummary, TranscriptPage, TranscriptQuery, WorkerCounts,
    WorkerDetail, WorkerEvent, WorkerEventKind, WorkerListQuery, WorkerPage, WorkerState,
};
use yoi_runtime_api::{
    Capabilities, EventCursor, EventStream, Operation, Result, Runtime, RuntimeError, RuntimeId,
    WorkerId, resolve_limit,
};

use crate::follow::{LogSource, follow};
use crate::log::{CursorError, EventLog, cursor_seq};
use crate::options::{ConfigError, EmbeddedOptions, Limits};
use crate::profile::ProfileCatalog;
use crate::store::{MemoryStore, Store};
use crate::worker::Worker;

const DEFAULT_TRANSCRIPT_PAGE: u32 = 50;
const DEFAULT_EVENT_PAGE: u32 = 100;
const DEFAULT_WORKER_PAGE: u32 = 50;

/// State shared by the handle, its Workers and their turn tasks.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) id: RuntimeId,
    display_name: String,
    pub(crate) limits: Limits,
    profiles: ProfileCatalog,
    store: Box<dyn Store>,
    next_worker: AtomicU64,
    runtime_log: Mutex<EventLog>,
    runtime_changed: Notify,
    counts: Mutex<WorkerCounts>,
    /// Stopped Workers, oldest first, for `max_stopped_workers`.
    stopped: Mutex<std::collections::VecDeque<WorkerId>>,
}

impl Shared {
    /// Appends a lifecycle event to the runtime-level log. Called with a
    /// Worker's lock held; the runtime log lock is always taken second.
    pub(crate) fn record_runtime_event(&self, worker_id: &WorkerId, kind: WorkerEventKind) {
        self.runtime_log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(worker_id, kind);
        self.runtime_changed.notify_waiters();
    }

    /// Keeps the per-state Worker counts current, so status is O(1).
    pub(crate) fn count_transition(&self, from: Option<WorkerState>, to: WorkerState) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(from) = from {
            let slot = match from {
                WorkerState::Idle => &mut counts.idle,
                WorkerState::Running => &mut counts.running,
                WorkerState::Stopping => &mut counts.stopping,
                WorkerState::Stopped => &mut counts.stopped,
                _ => &mut counts.failed,
            };
            *slot = slot.saturating_sub(1);
        }
        counts.add(to);
    }

    /// Records that a Worker stopped, forgetting the oldest stopped Worker
    /// when more than `max_stopped_workers` are kept. Called without any
    /// Worker lock held.
    pub(crate) fn retire(&self, worker_id: &WorkerId) {
        let evicted = {
            let mut stopped = self.stopped.lock().unwrap_or_else(|e| e.into_inner());
            stopped.push_back(worker_id.clone());
            if stopped.len() > self.limits.max_stopped_workers {
                stopped.pop_front()
            } else {
                None
            }
        };
        if let Some(old) = evicted {
            self.store.remove(&old);
            let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
            counts.stopped = counts.stopped.saturating_sub(1);
        }
    }

    fn worker(&self, worker_id: &WorkerId) -> Result<Arc<Worker>> {
        self.store
            .get(worker_id)
            .ok_or_else(|| RuntimeError::UnknownWorker {
                runtime_id: self.id.clone(),
                worker_id: worker_id.clone(),
            })
    }

    fn cursor_error(
        &self,
        worker_id: &WorkerId,
        cursor: &EventCursor,
        err: CursorError,
    ) -> RuntimeError {
        // Expired or never issued here (for example, from before a restart):
        // either way the client must read again without a cursor.
        match err {
            CursorError::Expired | CursorError::Foreign => RuntimeError::CursorExpired {
                runtime_id: self.id.clone(),
                worker_id: worker_id.clone(),
                cursor: cursor.clone(),
            },
        }
    }

    fn parse_cursor(
        &self,
        worker_id: &WorkerId,
        cursor: Option<&EventCursor>,
    ) -> Result<Option<u64>> {
        cursor
            .map(|c| cursor_seq(c).map_err(|e| self.cursor_error(worker_id, c, e)))
            .transpose()
    }
}

/// Follows one Worker's log.
struct WorkerLog {
    worker: Arc<Worker>,
    shared: Arc<Shared>,
}

impl LogSource for WorkerLog {
    fn notify(&self) -> &Notify {
        &self.worker.changed
    }

    fn read(&self, after: Option<u64>, limit: usize) -> Result<(Vec<WorkerEvent>, bool)> {
        let (events, _, closed) = self
            .worker
            .read_events(&self.shared, after, limit)
            .map_err(|e| {
                let cursor = EventCursor::new(after.unwrap_or(0).to_string())
                    .unwrap_or_else(|_| unreachable!("digits are a valid id"));
                self.shared.cursor_error(&self.worker.id, &cursor, e)
            })?;
        Ok((events, closed))
    }
}

/// Follows the runtime-level log. It never closes.
struct RuntimeLog(Arc<Shared>);

impl LogSource for RuntimeLog {
    fn notify(&self) -> &Notify {
        &self.0.runtime_changed
    }

    fn read(&self, after: Option<u64>, limit: usize) -> Result<(Vec<WorkerEvent>, bool)> {
        let log = self.0.runtime_log.lock().unwrap_or_else(|e| e.into_inner());
        match log.read_after(after, limit) {
            Ok((events, _)) => Ok((events, false)),
            Err(_) => Err(RuntimeError::invalid_request(
                "the runtime event stream fell behind its retained events; subscribe again",
            )),
        }
    }
}

/// An in-process Runtime. Cheap to clone: clones share the same Workers.
///
/// Needs a Tokio runtime when inputs are sent (each turn is a spawned task).
#[derive(Clone)]
pub struct EmbeddedRuntime {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for EmbeddedRuntime {
    /// A short summary: never the Workers' contents, never a credential.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedRuntime")
            .field("id", &self.shared.id)
            .field("display_name", &self.shared.display_name)
            .field("profiles", &self.shared.profiles)
            .field("limits", &self.shared.limits)
            .finish_non_exhaustive()
    }
}

impl EmbeddedRuntime {
    /// Builds a runtime from options.
    pub fn new(options: EmbeddedOptions) -> Result<Self, ConfigError> {
        options.limits.validate()?;
        let profiles = ProfileCatalog::build(options.profiles, &options.default_profile)?;
        Ok(Self {
            shared: Arc::new(Shared {
                id: options.runtime_id,
                display_name: options.display_name,
                limits: options.limits,
                profiles,
                store: Box::new(MemoryStore::default()),
                next_worker: AtomicU64::new(1),
                runtime_log: Mutex::new(EventLog::new(options.limits.max_runtime_events)),
                runtime_changed: Notify::new(),
                counts: Mutex::new(WorkerCounts::default()),
                stopped: Mutex::new(std::collections::VecDeque::new()),
            }),
        })
    }

    /// A runtime with every default: id `backend-internal`, the builtin
    /// `default` profile on the echo backend.
    pub fn with_defaults() -> Self {
        Self::new(EmbeddedOptions::default())
            .unwrap_or_else(|_| unreachable!("the default options are valid"))
    }

    fn limits(&self) -> &Limits {
        &self.shared.limits
    }
}

#[async_trait]
impl Runtime for EmbeddedRuntime {
    fn id(&self) -> &RuntimeId {
        &self.shared.id
    }

    fn capabilities(&self) -> Capabilities {
        let limits = self.limits();
        Capabilities {
            list_workers: true,
            create_worker: true,
            send_input: true,
            busy_queue: true,
            busy_interrupt: true,
            stop: true,
            cancel: true,
            transcript: true,
            events_poll: true,
            events_subscribe: true,
            tools: false,
            persistent_store: false,
            max_input_bytes: Some(limits.max_input_bytes),
            max_transcript_page: Some(limits.max_transcript_page),
            max_event_page: Some(limits.max_event_page),
            max_worker_page: Some(limits.max_worker_page),
        }
    }

    async fn summary(&self) -> Result<RuntimeSummary> {
        Ok(RuntimeSummary {
            runtime_id: self.shared.id.clone(),
            display_name: self.shared.display_name.clone(),
            implementation: ImplementationKind::Embedded,
            capabilities: self.capabilities(),
        })
    }

    async fn status(&self) -> Result<RuntimeStatus> {
        let workers = *self.shared.counts.lock().unwrap_or_else(|e| e.into_inner());
        Ok(RuntimeStatus {
            runtime_id: self.shared.id.clone(),
            state: RuntimeState::Ready,
            workers,
        })
    }

    async fn list_workers(&self, query: WorkerListQuery) -> Result<WorkerPage> {
        let limit = resolve_limit(
            query.limit,
            DEFAULT_WORKER_PAGE,
            self.limits().max_worker_page,
        )?;
        let (workers, more) = self.shared.store.page(query.after.as_ref(), limit as usize);
        let items: Vec<_> = workers.iter().map(|w| w.summary(&self.shared)).collect();
        let next_after = if more {
            items.last().map(|w| w.worker_id.clone())
        } else {
            None
        };
        Ok(WorkerPage { items, next_after })
    }

    async fn worker(&self, worker_id: &WorkerId) -> Result<WorkerDetail> {
        Ok(self.shared.worker(worker_id)?.detail(&self.shared))
    }

    async fn create_worker(&self, request: CreateWorkerRequest) -> Result<WorkerDetail> {
        request.validate()?;
        let (profile, fallback) = match &request.profile {
            Some(name) => match self.shared.profiles.get(name) {
                Some(profile) => (profile.clone(), false),
                None => {
                    return Err(RuntimeError::UnknownProfile {
                        runtime_id: self.shared.id.clone(),
                        profile: name.clone(),
                    });
                }
            },
            None => (self.shared.profiles.default_profile().clone(), true),
        };
        let seq = self.shared.next_worker.fetch_add(1, Ordering::Relaxed);
        // Zero-padded so that id order is creation order.
        let id = WorkerId::new(format!("w-{seq:010}")).unwrap_or_else(|_| unreachable!("valid"));
        let display_name = request.display_name.unwrap_or_else(|| id.to_string());
        let worker = Worker::create(
            &self.shared,
            id,
            display_name,
            profile,
            fallback,
            request.intent,
        );
        self.shared.store.insert(worker.clone());
        Ok(worker.detail(&self.shared))
    }

    async fn send_input(
        &self,
        worker_id: &WorkerId,
        request: InputRequest,
    ) -> Result<InputAcceptance> {
        request.validate(Some(self.limits().max_input_bytes))?;
        let worker = self.shared.worker(worker_id)?;
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(RuntimeError::Internal {
                message: "the embedded runtime needs a Tokio runtime to run turns".to_owned(),
                source: None,
            });
        }
        worker.send_input(&self.shared, request)
    }

    async fn cancel(&self, worker_id: &WorkerId) -> Result<WorkerDetail> {
        Ok(self.shared.worker(worker_id)?.cancel(&self.shared))
    }

    async fn stop(&self, worker_id: &WorkerId) -> Result<WorkerDetail> {
        Ok(self.shared.worker(worker_id)?.stop(&self.shared))
    }

    async fn transcript(
        &self,
        worker_id: &WorkerId,
        query: TranscriptQuery,
    ) -> Result<TranscriptPage> {
        let limit = resolve_limit(
            query.limit,
            DEFAULT_TRANSCRIPT_PAGE,
            self.limits().max_transcript_page,
        )?;
        let worker = self.shared.worker(worker_id)?;
        Ok(worker.transcript_page(&self.shared, query.start.unwrap_or(0), limit))
    }

    async fn events(&self, worker_id: &WorkerId, query: EventQuery) -> Result<EventPage> {
        let limit = resolve_limit(
            query.limit,
            DEFAULT_EVENT_PAGE,
            self.limits().max_event_page,
        )?;
        let worker = self.shared.worker(worker_id)?;
        let after = self.shared.parse_cursor(worker_id, query.after.as_ref())?;
        let (events, has_more, _) = worker
            .read_events(&self.shared, after, limit as usize)
            .map_err(|e| {
                let cursor = query
                    .after
                    .clone()
                    .unwrap_or_else(|| unreachable!("None never fails"));
                self.shared.cursor_error(worker_id, &cursor, e)
            })?;
        let next_cursor = events.last().map(|e| e.cursor.clone()).or(query.after);
        Ok(EventPage {
            events,
            next_cursor,
            has_more,
        })
    }

    async fn subscribe(
        &self,
        worker_id: &WorkerId,
        after: Option<EventCursor>,
    ) -> Result<EventStream> {
        let worker = self.shared.worker(worker_id)?;
        let after_seq = self.shared.parse_cursor(worker_id, after.as_ref())?;
        // Refuse an unreadable cursor now, not as the stream's first item.
        if let Err(e) = worker.read_events(&self.shared, after_seq, 0) {
            let cursor = after.unwrap_or_else(|| unreachable!("None never fails"));
            return Err(self.shared.cursor_error(worker_id, &cursor, e));
        }
        let source = Arc::new(WorkerLog {
            worker,
            shared: self.shared.clone(),
        });
        Ok(follow(source, after_seq))
    }

    async fn subscribe_runtime(&self, after: Option<EventCursor>) -> Result<EventStream> {
        let after_seq = match &after {
            None => None,
            Some(cursor) => Some(cursor_seq(cursor).map_err(|_| {
                RuntimeError::invalid_request(format!(
                    "cursor '{cursor}' was not issued by this runtime's event stream"
                ))
            })?),
        };
        let source = Arc::new(RuntimeLog(self.shared.clone()));
        source.read(after_seq, 0)?;
        Ok(follow(source, after_seq))
    }

    fn unsupported(&self, operation: Operation) -> RuntimeError {
        RuntimeError::UnsupportedOperation {
            runtime_id: self.shared.id.clone(),
            operation,
        }
    }
}
