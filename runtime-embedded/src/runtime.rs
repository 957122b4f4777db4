//! [`EmbeddedRuntime`]: the handle, and its implementation of the contract.

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::Notify;
use yoi_runtime_api::dto::{
    CreateWorkerRequest, EventPage, EventQuery, FailureCode, FailureReason, ImplementationKind,
    InputAcceptance, InputRequest, ProfileList, RollbackRequest, RuntimeState, RuntimeStatus,
    RuntimeSummary, TranscriptPage, TranscriptQuery, UpdateWorkerRequest, WorkerCount,
    WorkerDetail, WorkerEvent, WorkerFilter, WorkerListQuery, WorkerPage,
};
use yoi_runtime_api::dto::{Diagnostic, ForkRequest, ForkedFrom};
use yoi_runtime_api::{
    Capabilities, EventCursor, EventStream, Operation, Result, Runtime, RuntimeError, RuntimeId,
    WorkerId, resolve_limit,
};

use crate::context::{LiveSlot, RuntimeContext};
use crate::directory::Directory;
use crate::error::ConfigError;
use crate::follow::{LogSource, follow};
use crate::options::{EmbeddedOptions, Limits};
use crate::profile::ProfileCatalog;
use crate::shared::Shared;
use crate::store::{MemoryStore, StoreError, WorkerStore};
use crate::turn;
use crate::worker::{NewWorker, TurnOutcome, Worker};

const DEFAULT_TRANSCRIPT_PAGE: u32 = 50;
const DEFAULT_EVENT_PAGE: u32 = 100;
const DEFAULT_WORKER_PAGE: u32 = 50;

/// Follows one Worker's log.
struct WorkerLog {
    worker: Arc<Worker>,
    shared: Arc<Shared>,
}

impl LogSource for WorkerLog {
    fn notify(&self) -> &Notify {
        &self.worker.changed
    }

    fn read(&self, after: Option<u64>, limit: usize) -> Result<(Vec<Arc<WorkerEvent>>, bool)> {
        let (events, _, closed) = self.worker.read_events(after, limit).map_err(|e| {
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

    fn read(&self, after: Option<u64>, limit: usize) -> Result<(Vec<Arc<WorkerEvent>>, bool)> {
        match self.0.read_runtime_log(after, limit) {
            Ok(events) => Ok((events, false)),
            // Fell behind the retained events: resume is impossible.
            Err(_) => Err(RuntimeError::CursorExpired {
                runtime_id: self.0.id.clone(),
                worker_id: None,
                cursor: EventCursor::new(after.unwrap_or(0).to_string())
                    .unwrap_or_else(|_| unreachable!("digits are a valid id")),
            }),
        }
    }
}

/// An in-process Runtime. Cheap to clone: clones share the same Workers.
///
/// Needs a Tokio runtime when inputs are sent (each turn is a spawned task).
#[derive(Clone)]
pub struct EmbeddedRuntime {
    pub(crate) shared: Arc<Shared>,
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
    /// A new Worker id: time-ordered, so id order is creation order;
    /// random, so no id repeats across restarts or processes.
    fn new_worker_id(&self) -> WorkerId {
        WorkerId::new(self.shared.ids.next("w-")).unwrap_or_else(|_| unreachable!("valid"))
    }

    /// `capacity_exceeded` unless `extra` more bytes of transcripts and
    /// events fit in memory beside what the Runtime holds, under
    /// `max_retained_bytes`; with a persistent store, idle Workers are
    /// evicted first to make room.
    ///
    /// **The last check is not followed by an `.await`**: a caller that
    /// adds its `extra` bytes without awaiting after this returns cannot be
    /// overtaken by another task on its thread, so concurrent callers pass
    /// the cap by at most one `extra` per runtime thread.
    async fn check_retained(&self, extra: usize) -> Result<()> {
        let max = self.shared.limits.max_retained_bytes;
        let fits = || self.shared.context.retained_bytes().saturating_add(extra) <= max;
        if fits() {
            return Ok(());
        }
        if self.shared.persist && extra <= max {
            // Only Workers whose changes are on disk may go.
            self.shared.durable(self.shared.store.recorded()).await?;
            self.shared.directory.evict_to_fit(
                self.shared.store.as_ref(),
                &self.shared.context.retained,
                (max - max / 10).saturating_sub(extra),
            );
            if fits() {
                return Ok(());
            }
        }
        let needs = if extra > 0 {
            format!("; this needs about {extra} bytes more")
        } else {
            String::new()
        };
        let what = format!(
            "this runtime keeps its maximum of {max} bytes of transcripts and events in \
             memory{needs}; delete Workers or raise limits.max_retained_bytes"
        );
        Err(RuntimeError::CapacityExceeded { what })
    }

    /// [`Self::check_retained`] for `extra` bytes, then room for one more
    /// live Worker (hold it until the Worker is created), or
    /// `capacity_exceeded` at `max_live_workers`.
    async fn reserve_live_worker(&self, extra: usize) -> Result<LiveSlot<'_>> {
        self.check_retained(extra).await?;
        let max = self.shared.limits.max_live_workers;
        self.shared
            .context
            .reserve_live(max as u64)
            .ok_or_else(|| RuntimeError::CapacityExceeded {
                what: format!(
                    "this runtime has its maximum of {max} live workers; stop or delete some"
                ),
            })
    }

    /// A runtime from options, keeping its Workers in memory only.
    pub fn new(options: EmbeddedOptions) -> Result<Self, ConfigError> {
        Self::open(options, Arc::new(MemoryStore))
    }

    /// A runtime from options over `store`. With a persistent store this
    /// reads what it must to start (counts, stopped Workers, Workers a
    /// crash interrupted), finishes interrupted turns as failed ("interrupted
    /// by restart") and starts their queued inputs on the current Tokio
    /// runtime; every other Worker is loaded on first access.
    pub fn open(
        options: EmbeddedOptions,
        store: Arc<dyn WorkerStore>,
    ) -> Result<Self, ConfigError> {
        options.limits.validate()?;
        if store.persistent() && tokio::runtime::Handle::try_current().is_err() {
            // Recovery may start turns, which are tasks.
            return Err(ConfigError::Store(StoreError::Io(
                "opening a durable store needs a Tokio runtime".to_owned(),
            )));
        }
        let profiles = ProfileCatalog::build(options.profiles, &options.default_profile)?;
        let persistent = store.persistent();
        let context = Arc::new(RuntimeContext::new(
            options.runtime_id,
            options.limits,
            store,
        ));
        let shared = Arc::new(Shared {
            directory: Directory::new(options.limits.max_resident_workers, persistent),
            context,
            display_name: options.display_name,
            profiles,
        });
        let turns = shared.recover().map_err(ConfigError::Store)?;
        for (worker, ticket) in turns {
            turn::spawn(worker, shared.context.clone(), ticket);
        }
        Ok(Self { shared })
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

    /// The estimated bytes of transcripts and events this Runtime holds in
    /// memory: what `limits.max_retained_bytes` caps. For metrics and
    /// tests; Workers evicted to a persistent store do not count.
    pub fn retained_bytes(&self) -> usize {
        self.shared.context.retained_bytes()
    }

    /// Shuts the Runtime down: inputs are refused from now on
    /// (`runtime_unavailable`), every running turn ends `failed` with a
    /// notice, queued inputs stay queued (a durable store starts them after
    /// the next start), and this returns once every turn task has finished
    /// and the store has written everything. Reads of resident Workers keep
    /// working. Idempotent.
    pub async fn shutdown(&self) {
        let context = &self.shared.context;
        context.begin_shutdown();
        for worker in self.shared.resident() {
            if let Some(turn_id) = worker.running_turn() {
                let reason = FailureReason::new(
                    FailureCode::Unavailable,
                    "the runtime shut down during the turn",
                );
                // Recorded first. Taking the turn drops its cancel sender,
                // which tells the task to stop without writing.
                let _ = worker.finish_turn(context, turn_id, TurnOutcome::Failed(reason));
            }
        }
        context.turns.close();
        context.turns.wait().await;
        let store = context.store.clone();
        let _ = tokio::task::spawn_blocking(move || store.close()).await;
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
            delete_worker: true,
            transcript: true,
            events_poll: true,
            events_subscribe: true,
            list_profiles: true,
            update_worker: true,
            rollback: true,
            fork_worker: true,
            search_workers: true,
            tools: false,
            persistent_store: self.shared.persist,
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

    async fn update_worker(
        &self,
        worker_id: &WorkerId,
        request: UpdateWorkerRequest,
    ) -> Result<WorkerDetail> {
        request.validate()?;
        let worker = self.shared.worker(worker_id).await?;
        self.shared.writable()?;
        let detail = worker.update(&self.shared.context, &request)?;
        // An update the caller was told about survives a crash.
        self.shared.durable(worker.last_ticket()).await?;
        Ok(detail)
    }

    async fn fork_worker(
        &self,
        worker_id: &WorkerId,
        request: ForkRequest,
    ) -> Result<WorkerDetail> {
        request.validate()?;
        let source = self.shared.worker(worker_id).await?;
        self.shared.writable()?;
        // Room for the copy is checked with the copy's size, and nothing
        // awaits between that check and the copy: concurrent forks of a
        // large Worker cannot all pass the cap at once.
        let bytes = source.fork_bytes(request.at)?;
        let room = self.reserve_live_worker(bytes).await?;
        let seed = source.fork_seed(request.at)?;
        let id = self.new_worker_id();
        let new = NewWorker {
            display_name: request.display_name.unwrap_or_else(|| id.to_string()),
            id,
            metadata: request.metadata,
            profile: seed.profile,
            fallback: seed.fallback,
            intent: None,
            forked_from: Some(ForkedFrom {
                worker_id: worker_id.clone(),
                transcript_index: seed.at,
            }),
        };
        let worker = Worker::create(&self.shared.context, new, room);
        // One pass over the copied entries: O(entries).
        worker.append_copies(&self.shared.context, seed.entries);
        let worker = self.shared.insert(worker);
        self.shared.durable(worker.last_ticket()).await?;
        Ok(worker.detail(&self.shared.context))
    }

    async fn rollback(
        &self,
        worker_id: &WorkerId,
        request: RollbackRequest,
    ) -> Result<WorkerDetail> {
        let worker = self.shared.worker(worker_id).await?;
        self.shared.writable()?;
        let detail = worker.rollback(&self.shared.context, request.turns)?;
        self.shared.durable(worker.last_ticket()).await?;
        Ok(detail)
    }

    async fn diagnostics(&self) -> Result<Vec<Diagnostic>> {
        let mut found = Vec::new();
        if self.shared.store.has_failed() {
            found.push(Diagnostic::warning(
                "store_failed",
                "writes to its store are failing (the server log says why); it takes \
                 nothing new until a retry succeeds, which it tries on its own",
            ));
        }
        if self.shared.store.is_stalled() {
            found.push(Diagnostic::warning(
                "store_stalled",
                "a write to its store has not finished for a long time (a slow or hung disk, \
                 or a lock another program holds on it); it takes nothing new until the write \
                 ends",
            ));
        }
        Ok(found)
    }

    async fn profiles(&self) -> Result<ProfileList> {
        Ok(ProfileList {
            items: self.shared.profiles.infos(),
        })
    }

    async fn status(&self) -> Result<RuntimeStatus> {
        // A store that cannot write now takes no input that would last:
        // unavailable, as when shutting down.
        let state = if self.shared.is_shutting_down() || !self.shared.store_writes() {
            RuntimeState::Unavailable
        } else {
            RuntimeState::Ready
        };
        Ok(RuntimeStatus {
            runtime_id: self.shared.id.clone(),
            state,
            workers: self.shared.counts(),
        })
    }

    async fn list_workers(&self, query: WorkerListQuery) -> Result<WorkerPage> {
        let limit = resolve_limit(
            query.limit,
            DEFAULT_WORKER_PAGE,
            self.limits().max_worker_page,
        )?;
        self.shared.list(query, limit as usize).await
    }

    async fn count_workers(&self, filter: WorkerFilter) -> Result<WorkerCount> {
        self.shared.count(filter).await
    }

    async fn worker(&self, worker_id: &WorkerId) -> Result<WorkerDetail> {
        Ok(self
            .shared
            .worker(worker_id)
            .await?
            .detail(&self.shared.context))
    }

    async fn create_worker(&self, request: CreateWorkerRequest) -> Result<WorkerDetail> {
        request.validate()?;
        self.shared.writable()?;
        let room = self.reserve_live_worker(0).await?;
        let (profile, fallback) = match &request.profile {
            Some(name) => match self.shared.profiles.get(name) {
                Some(profile) => (profile.clone(), false),
                None => {
                    return Err(RuntimeError::UnknownProfile {
                        runtime_id: self.shared.id.clone(),
                        profile: name.clone(),
                        known: self.shared.profiles.names(),
                    });
                }
            },
            None => (self.shared.profiles.default_profile().clone(), true),
        };
        let id = self.new_worker_id();
        let display_name = request.display_name.unwrap_or_else(|| id.to_string());
        let new = NewWorker {
            id,
            display_name,
            metadata: request.metadata,
            profile,
            fallback,
            intent: request.intent,
            forked_from: None,
        };
        let worker = self
            .shared
            .insert(Worker::create(&self.shared.context, new, room));
        // A created Worker survives a crash from the moment it is answered.
        self.shared.durable(worker.last_ticket()).await?;
        Ok(worker.detail(&self.shared.context))
    }

    async fn send_input(
        &self,
        worker_id: &WorkerId,
        request: InputRequest,
    ) -> Result<InputAcceptance> {
        request.validate(Some(self.limits().max_input_bytes))?;
        let worker = self.shared.worker(worker_id).await?;
        // Before the byte check, whose eviction would wait for the disk.
        self.shared.writable()?;
        // Checked after the load, with the input's size, and nothing
        // awaits between this and taking the input.
        self.check_retained(request.text.len()).await?;
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(RuntimeError::Internal {
                message: "the embedded runtime needs a Tokio runtime to run turns".to_owned(),
                source: None,
            });
        }
        if self.shared.is_shutting_down() {
            return Err(RuntimeError::RuntimeUnavailable {
                runtime_id: self.shared.id.clone(),
                message: "it is shutting down".to_owned(),
            });
        }
        let (acceptance, ticket) = worker.send_input(&self.shared.context, request)?;
        // The durability point: the input is on disk before it is answered.
        let recorded = worker.last_ticket();
        if let Some(ticket) = ticket {
            turn::spawn(worker, self.shared.context.clone(), ticket);
        }
        self.shared.durable(recorded).await?;
        Ok(acceptance)
    }

    async fn cancel(&self, worker_id: &WorkerId) -> Result<WorkerDetail> {
        Ok(self
            .shared
            .worker(worker_id)
            .await?
            .cancel(&self.shared.context))
    }

    async fn stop(&self, worker_id: &WorkerId) -> Result<WorkerDetail> {
        let (detail, stopped_now) = self
            .shared
            .worker(worker_id)
            .await?
            .stop(&self.shared.context);
        if stopped_now {
            // Workers this pushes past the bounds are tombstoned until their
            // deletion is durable, so nobody has to wait for it.
            self.shared.retire(Some(worker_id));
        }
        Ok(detail)
    }

    async fn delete_worker(&self, worker_id: &WorkerId) -> Result<()> {
        let worker = self.shared.worker(worker_id).await?;
        self.shared.writable()?;
        // Stopping first ends its turn, its queue and its streams.
        let _ = worker.stop(&self.shared.context);
        // Whoever removes it from the directory forgets it, exactly once.
        match self.shared.delete(worker_id) {
            Some(ticket) => self.shared.durable(ticket).await,
            None => Err(self.shared.unknown(worker_id)),
        }
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
        let worker = self.shared.worker(worker_id).await?;
        Ok(worker.transcript_page(query.start.unwrap_or(0), limit))
    }

    async fn events(&self, worker_id: &WorkerId, query: EventQuery) -> Result<EventPage> {
        let limit = resolve_limit(
            query.limit,
            DEFAULT_EVENT_PAGE,
            self.limits().max_event_page,
        )?;
        let worker = self.shared.worker(worker_id).await?;
        let after = self.shared.parse_cursor(&worker, query.after.as_ref())?;
        let (events, has_more, _) = worker.read_events(after, limit as usize).map_err(|e| {
            let cursor = query
                .after
                .clone()
                .unwrap_or_else(|| unreachable!("None never fails"));
            self.shared.cursor_error(worker_id, &cursor, e)
        })?;
        let next_cursor = events.last().map(|e| e.cursor.clone()).or(query.after);
        Ok(EventPage {
            events: events.into_iter().map(Arc::unwrap_or_clone).collect(),
            next_cursor,
            has_more,
        })
    }

    async fn subscribe(
        &self,
        worker_id: &WorkerId,
        after: Option<EventCursor>,
    ) -> Result<EventStream> {
        let worker = self.shared.worker(worker_id).await?;
        let after_seq = self.shared.parse_cursor(&worker, after.as_ref())?;
        // Refuse an unreadable cursor now, not as the stream's first item.
        if let Err(e) = worker.read_events(after_seq, 0) {
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
            Some(cursor) => Some(self.shared.resolve_runtime_cursor(cursor).map_err(|_| {
                // Expired, from another log, from before a restart or not
                // issued yet: the client must subscribe again without one.
                RuntimeError::CursorExpired {
                    runtime_id: self.shared.id.clone(),
                    worker_id: None,
                    cursor: cursor.clone(),
                }
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
