//! What an [`EmbeddedRuntime`](crate::EmbeddedRuntime) handle holds: the
//! context its Workers share, its profiles and its directory; finding a
//! Worker (loading it from the store when it is not resident), retiring
//! and deleting Workers, and recovery at start.

use std::sync::Arc;

use yoi_runtime_api::dto::{ProfileRef, WorkerSummary};
use yoi_runtime_api::{EventCursor, Result, RuntimeError, Timestamp, WorkerId};

use crate::context::RuntimeContext;
use crate::directory::{Directory, Loaded};
use crate::log::CursorError;
use crate::profile::ProfileCatalog;
use crate::store::{Change, LoadBounds, StoreError, StoredSummary, StoredWorker, Ticket};
use crate::worker::{TurnTicket, Worker};

/// State of the handle.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) context: Arc<RuntimeContext>,
    pub(crate) display_name: String,
    pub(crate) profiles: ProfileCatalog,
    pub(crate) directory: Directory,
}

impl std::ops::Deref for Shared {
    type Target = RuntimeContext;

    fn deref(&self) -> &RuntimeContext {
        &self.context
    }
}

impl Shared {
    fn bounds(&self) -> LoadBounds {
        LoadBounds {
            entries: self.limits.max_transcript_entries,
            events: self.limits.max_events_per_worker,
            client_ids: self.limits.max_remembered_client_ids,
        }
    }

    /// The error for a store that failed; details go to the log.
    pub(crate) fn store_failed(&self, err: &StoreError) -> RuntimeError {
        tracing::error!(runtime_id = %self.id, error = %err, "the store failed");
        RuntimeError::RuntimeUnavailable {
            runtime_id: self.id.clone(),
            message: "its store failed; see the server log".to_owned(),
        }
    }

    /// `runtime_unavailable` while the store's writes are failing or
    /// stalled: checked before a change that must last is made, so that a
    /// change the caller is refused is not made at all (a request already
    /// past this when the writes start failing may still be refused after
    /// its change).
    pub(crate) fn writable(&self) -> Result<()> {
        if !self.store_writes() {
            return Err(RuntimeError::RuntimeUnavailable {
                runtime_id: self.id.clone(),
                message: "its store cannot write now; see its diagnostics".to_owned(),
            });
        }
        Ok(())
    }

    /// Whether the store is writing: not failing, not stalled.
    pub(crate) fn store_writes(&self) -> bool {
        !self.store.has_failed() && !self.store.is_stalled()
    }

    /// Waits until `ticket` is durable.
    pub(crate) async fn durable(&self, ticket: Ticket) -> Result<()> {
        self.store
            .durable(ticket)
            .await
            .map_err(|err| self.store_failed(&err))
    }

    pub(crate) fn unknown(&self, worker_id: &WorkerId) -> RuntimeError {
        RuntimeError::UnknownWorker {
            runtime_id: self.id.clone(),
            worker_id: worker_id.clone(),
        }
    }

    /// The Worker, from memory or, with a persistent store, loaded.
    pub(crate) async fn worker(self: &Arc<Self>, worker_id: &WorkerId) -> Result<Arc<Worker>> {
        if let Some(worker) = self.directory.get(worker_id) {
            return Ok(worker);
        }
        if !self.persist {
            return Err(self.unknown(worker_id));
        }
        let shared = self.clone();
        let id = worker_id.clone();
        let loaded = tokio::task::spawn_blocking(move || shared.load(&id))
            .await
            .map_err(|e| RuntimeError::internal("loading a worker failed", e))?
            .map_err(|err| self.store_failed(&err))?;
        loaded.ok_or_else(|| self.unknown(worker_id))
    }

    /// Loads a Worker from the store and makes it resident (or returns the
    /// copy a concurrent load made resident first). Blocks.
    pub(crate) fn load(&self, worker_id: &WorkerId) -> Result<Option<Arc<Worker>>, StoreError> {
        self.directory
            .loading(worker_id, || self.load_alone(worker_id))
    }

    /// [`Shared::load`] with no other load of this Worker running: if it
    /// is not resident now, nobody changes it while the store is read.
    fn load_alone(&self, worker_id: &WorkerId) -> Result<Option<Arc<Worker>>, StoreError> {
        if let Some(worker) = self.directory.get(worker_id) {
            // The load this one waited for made it resident.
            return Ok(Some(worker));
        }
        loop {
            // Every deletion recorded after this is either still
            // tombstoned when the copy is inserted, or makes it read again.
            let since = self.store.recorded();
            if self.directory.is_buried(worker_id, self.store.as_ref()) {
                return Ok(None);
            }
            let Some(stored) = self.store.load(worker_id, self.bounds())? else {
                return Ok(None);
            };
            match self.directory.insert_loaded(self.restore(stored), since) {
                Loaded::Resident(worker) => {
                    self.evict();
                    return Ok(Some(worker));
                }
                Loaded::Deleted => return Ok(None),
                // Only when a deletion recorded during this read is durable
                // and forgotten already: rare, and the next read is after it.
                Loaded::ReadAgain => {}
            }
        }
    }

    fn restore(&self, stored: StoredWorker) -> Arc<Worker> {
        let (profile, fallback) = match self.profiles.get(&stored.meta.profile) {
            Some(profile) => (profile.clone(), stored.meta.fallback),
            None => {
                // Its profile is no longer configured: the default serves
                // it, flagged as a fallback.
                tracing::warn!(
                    worker_id = %stored.meta.worker_id,
                    profile = %stored.meta.profile,
                    "a stored worker's profile is not configured; using the default"
                );
                (self.profiles.default_profile().clone(), true)
            }
        };
        Worker::restore(&self.context, stored, profile, fallback)
    }

    /// Adds a new Worker.
    pub(crate) fn insert(&self, worker: Arc<Worker>) -> Arc<Worker> {
        let worker = self.directory.insert(worker);
        self.evict();
        worker
    }

    /// After a Worker became resident: evicts Workers that may go while
    /// more than `max_resident_workers` are resident or they hold more than
    /// `max_retained_bytes` together (down to 90 % of either, so eviction
    /// runs rarely and in bulk). **Reading Workers never holds more than
    /// the caps in memory**, past the Workers that are in use.
    fn evict(&self) {
        self.directory.evict(self.store.as_ref());
        let max = self.limits.max_retained_bytes;
        if self.retained_bytes() > max {
            self.directory
                .evict_to_fit(self.store.as_ref(), &self.retained, max - max / 10);
        }
    }

    /// Records that a Worker stopped, deleting the stopped Workers past
    /// `max_stopped_workers` or `max_stopped_age`. They are tombstoned until
    /// their deletion is durable, so none is loaded again meanwhile.
    pub(crate) fn retire(&self, worker_id: Option<&WorkerId>) {
        let stopped = worker_id.map(|id| (id.clone(), Timestamp::now()));
        for old in self.context.retire(stopped) {
            self.directory
                .retire(&old, || self.record_deleted(&old), &*self.store);
            self.unindex(&old);
        }
    }

    /// Forgets a stopped Worker and all its data; false when another call
    /// got there first. Returns the ticket to wait for.
    pub(crate) fn delete(&self, worker_id: &WorkerId) -> Option<Ticket> {
        let ticket =
            self.directory
                .delete(worker_id, || self.record_deleted(worker_id), &*self.store)?;
        self.context.forget_stopped(worker_id);
        self.unindex(worker_id);
        Some(ticket)
    }

    /// Records a Worker's deletion in the store; `None` when the store
    /// keeps nothing.
    fn record_deleted(&self, worker_id: &WorkerId) -> Option<Ticket> {
        self.persist.then(|| {
            self.store.record(vec![Change::Deleted {
                worker_id: worker_id.clone(),
            }])
        })
    }

    fn unindex(&self, worker_id: &WorkerId) {
        if let Some(index) = &self.context.index {
            index.remove(worker_id);
        }
    }

    /// Every resident Worker.
    pub(crate) fn resident(&self) -> Vec<Arc<Worker>> {
        let mut all = Vec::new();
        let mut after: Option<WorkerId> = None;
        loop {
            let (page, more) = self.directory.page(after.as_ref(), 1024);
            after = page.last().map(|w| w.id.clone());
            all.extend(page);
            if !more {
                return all;
            }
        }
    }

    pub(crate) fn stored_summary(&self, stored: StoredSummary) -> WorkerSummary {
        WorkerSummary {
            runtime_id: self.id.clone(),
            worker_id: stored.meta.worker_id,
            display_name: stored.meta.display_name,
            metadata: stored.meta.metadata,
            profile: ProfileRef {
                name: stored.meta.profile,
                fallback: stored.meta.fallback,
            },
            state: stored.status.state,
            created_at: stored.meta.created_at,
            updated_at: stored.status.updated_at,
            transcript_len: stored.status.transcript_len,
            pending_inputs: stored.status.pending_inputs,
            last_cursor: stored.status.last_cursor,
        }
    }

    /// At start with a persistent store: counts and stopped Workers from
    /// the store, the clock moved past the latest `updated_at` on disk (if
    /// it is less than an hour ahead), then every Worker a crash left mid-turn or with queued
    /// inputs is finished (the turn fails "interrupted by restart") and its
    /// next input started. Returns the turns to run. Blocks.
    pub(crate) fn recover(&self) -> Result<Vec<(Arc<Worker>, TurnTicket)>, StoreError> {
        if !self.persist {
            return Ok(Vec::new());
        }
        self.context
            .resume(self.store.counts()?, self.store.stopped()?);
        if let Some(latest) = self.store.latest_updated_at()?
            && let Some(ahead) = self.context.stamps.not_before(latest)
        {
            tracing::warn!(
                runtime_id = %self.context.id,
                ahead_secs = ahead / 1_000_000_000,
                "the store holds changes dated ahead of this host's clock by more than an hour; \
                 new changes are dated by the clock, so they may sort before those"
            );
        }
        self.retire(None);
        let mut turns = Vec::new();
        for worker_id in self.store.unfinished()? {
            let Some(worker) = self.load(&worker_id)? else {
                continue;
            };
            tracing::info!(worker_id = %worker_id, "recovering a worker interrupted by a restart");
            if let Some(ticket) = worker.recover(&self.context) {
                turns.push((worker, ticket));
            }
        }
        Ok(turns)
    }

    pub(crate) fn cursor_error(
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
                worker_id: Some(worker_id.clone()),
                cursor: cursor.clone(),
            },
        }
    }

    /// The sequence number of a client's cursor in `worker`'s log.
    pub(crate) fn parse_cursor(
        &self,
        worker: &Worker,
        cursor: Option<&EventCursor>,
    ) -> Result<Option<u64>> {
        cursor
            .map(|c| {
                worker
                    .resolve_cursor(c)
                    .map_err(|e| self.cursor_error(&worker.id, c, e))
            })
            .transpose()
    }
}
