//! The registry of Runtimes, and the one place capabilities are checked.
//!
//! Handlers never call a Runtime directly: they call the registry, which
//! resolves the `runtime_id`, checks the Runtime's [`Capabilities`] for the
//! operation (`unsupported_operation` otherwise), and then makes exactly one
//! trait call. Embedded, local-compat and (later) remote Runtimes are all
//! `Arc<dyn Runtime>` here and are treated the same way.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use yoi_runtime_api::dto::{
    CreateWorkerRequest, EventPage, EventQuery, ImplementationKind, InputAcceptance, InputRequest,
    ProfileList, RuntimeSummary, TranscriptPage, TranscriptQuery, UpdateWorkerRequest, WorkerCount,
    WorkerDetail, WorkerFilter, WorkerListQuery, WorkerPage,
};
use yoi_runtime_api::dto::{ForkRequest, RollbackRequest};
use yoi_runtime_api::{
    Capabilities, DynRuntime, EventCursor, EventStream, Operation, Result, RuntimeError, RuntimeId,
    WorkerId,
};

/// One registered Runtime, with what registration learned about it.
#[derive(Debug, Clone)]
pub struct RuntimeEntry {
    /// A copy of the Runtime's id, so lookups make no dynamic calls.
    id: RuntimeId,
    runtime: Arc<DynRuntime>,
    /// Read once, at registration or (for a Runtime that was unavailable
    /// then) at its first answer: the contract says it never changes.
    summary: Arc<OnceLock<RuntimeSummary>>,
    /// Shown until the summary is known; then unused.
    placeholder: Arc<RuntimeSummary>,
    /// A summary read is under way.
    asking: Arc<AtomicBool>,
    /// The last status or list asked of it failed (see
    /// [`RuntimeEntry::note_failure`]).
    failing: Arc<AtomicBool>,
}

impl RuntimeEntry {
    /// How the Runtime is implemented.
    pub fn implementation(&self) -> ImplementationKind {
        self.summary().implementation
    }

    /// The Runtime's summary, as read once; for a Runtime that has not
    /// answered yet, the placeholder it was registered with (no
    /// capabilities).
    pub fn summary(&self) -> &RuntimeSummary {
        self.summary.get().unwrap_or(&self.placeholder)
    }

    /// Whether the Runtime has answered its summary.
    pub fn is_known(&self) -> bool {
        self.summary.get().is_some()
    }

    /// The Runtime's capabilities.
    pub fn capabilities(&self) -> Capabilities {
        self.summary().capabilities
    }

    /// Asks a Runtime that has not answered yet for its summary, in the
    /// background, one request at a time.
    fn ask_again(&self) {
        if self.is_known() || self.asking.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            self.asking.store(false, Ordering::Release);
            return;
        };
        let (runtime, summary, asking) = (
            self.runtime.clone(),
            self.summary.clone(),
            self.asking.clone(),
        );
        let id = self.id.clone();
        handle.spawn(async move {
            if let Ok(answer) = runtime.summary().await
                && answer.runtime_id == id
            {
                let _ = summary.set(answer);
                tracing::info!(runtime_id = %id, "a runtime that was unavailable answered");
            }
            asking.store(false, Ordering::Release);
        });
    }

    /// Notes and logs that a status or list asked of the Runtime failed:
    /// at `warn` when it had been answering, at `debug` while it stays down,
    /// so that a host that is down costs one warning, not one per request
    /// that asks it. `what` names the call.
    pub fn note_failure(&self, err: &RuntimeError, what: &'static str) {
        if self.failing.swap(true, Ordering::Relaxed) {
            tracing::debug!(runtime_id = %self.id, code = %err.code(), "{what}");
        } else {
            tracing::warn!(runtime_id = %self.id, code = %err.code(), reason = %err.public_message(), "{what}");
        }
    }

    /// Notes that the Runtime answered, and logs once that one that had
    /// failed answers again. Only reads while it keeps answering.
    pub fn note_answer(&self) {
        if self.failing.load(Ordering::Relaxed) && self.failing.swap(false, Ordering::Relaxed) {
            tracing::info!(runtime_id = %self.id, "the runtime answers again");
        }
    }

    /// The Runtime's id.
    pub fn id(&self) -> &RuntimeId {
        &self.id
    }

    /// The Runtime itself. Calling through `&dyn Runtime` rather than the
    /// `Arc` skips the forwarding impl, which would box every call's future
    /// a second time.
    pub fn runtime(&self) -> &DynRuntime {
        self.runtime.as_ref()
    }

    fn check(&self, operation: Operation) -> Result<()> {
        match self.summary.get() {
            Some(summary) => summary.capabilities.check(&self.id, operation),
            None => {
                self.ask_again();
                Err(RuntimeError::RuntimeUnavailable {
                    runtime_id: self.id.clone(),
                    message: "it has not answered yet".to_owned(),
                })
            }
        }
    }
}

/// A registry call in flight: the Runtime's own future, or a refusal.
pub type Call<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>;

fn refused<'a, T: Send + 'a>(err: RuntimeError) -> Call<'a, T> {
    Box::pin(std::future::ready(Err(err)))
}

/// Registering a Runtime failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// A Runtime with this id is already registered.
    #[error("a runtime with id '{runtime_id}' is already registered")]
    Duplicate {
        /// The repeated id.
        runtime_id: RuntimeId,
    },
    /// The Runtime could not say who it is.
    #[error("runtime '{runtime_id}' did not answer its summary: {source}")]
    Summary {
        /// The Runtime.
        runtime_id: RuntimeId,
        /// Why.
        source: RuntimeError,
    },
    /// The summary names another id than the Runtime's own.
    #[error("runtime '{runtime_id}' reports id '{reported}' in its summary")]
    MismatchedId {
        /// The Runtime's id.
        runtime_id: RuntimeId,
        /// The id its summary gave.
        reported: RuntimeId,
    },
}

/// The Runtimes of one workspace backend, in registration order.
///
/// Lookup is a linear scan: a backend hosts a handful of Runtimes, and
/// comparing a few short ids is cheaper than hashing one.
#[derive(Debug, Default, Clone)]
pub struct RuntimeRegistry {
    entries: Vec<RuntimeEntry>,
}

impl RuntimeRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a Runtime; its id must be new. Reads its summary (and with it
    /// its capabilities) once, here: the contract says they never change.
    pub async fn register(&mut self, runtime: Arc<DynRuntime>) -> Result<(), RegistryError> {
        let id = runtime.id().clone();
        if self.entries.iter().any(|e| e.id == id) {
            return Err(RegistryError::Duplicate { runtime_id: id });
        }
        let summary = runtime
            .summary()
            .await
            .map_err(|source| RegistryError::Summary {
                runtime_id: id.clone(),
                source,
            })?;
        self.push(runtime, summary.clone(), Some(summary))
    }

    /// Adds a Runtime that may be unavailable now (a remote host that is
    /// down): when its summary cannot be read, it is registered with
    /// `placeholder` (which should have no capabilities), every call to it
    /// answers `runtime_unavailable`, and its summary is asked for again
    /// on later calls until it answers.
    pub async fn register_unavailable(
        &mut self,
        runtime: Arc<DynRuntime>,
        placeholder: RuntimeSummary,
    ) -> Result<(), RegistryError> {
        let id = runtime.id().clone();
        if self.entries.iter().any(|e| e.id == id) {
            return Err(RegistryError::Duplicate { runtime_id: id });
        }
        let known = match runtime.summary().await {
            Ok(summary) => Some(summary),
            Err(err) => {
                tracing::warn!(runtime_id = %id, code = %err.code(), "a runtime is unavailable at registration");
                None
            }
        };
        self.push(runtime, placeholder, known)
    }

    fn push(
        &mut self,
        runtime: Arc<DynRuntime>,
        placeholder: RuntimeSummary,
        known: Option<RuntimeSummary>,
    ) -> Result<(), RegistryError> {
        let id = runtime.id().clone();
        for reported in [Some(&placeholder), known.as_ref()].into_iter().flatten() {
            if reported.runtime_id != id {
                return Err(RegistryError::MismatchedId {
                    runtime_id: id,
                    reported: reported.runtime_id.clone(),
                });
            }
        }
        let summary = OnceLock::new();
        if let Some(known) = known {
            let _ = summary.set(known);
        }
        self.entries.push(RuntimeEntry {
            id,
            runtime,
            summary: Arc::new(summary),
            placeholder: Arc::new(placeholder),
            asking: Arc::new(AtomicBool::new(false)),
            failing: Arc::new(AtomicBool::new(false)),
        });
        Ok(())
    }

    /// Every entry, in registration order.
    pub fn entries(&self) -> &[RuntimeEntry] {
        &self.entries
    }

    /// Asks every Runtime at once with `call`, each under `deadline`, and
    /// answers in registration order. A Runtime that does not answer in
    /// time gets `runtime_unavailable`, so one slow Runtime delays the
    /// answer by at most `deadline` and fails nobody else's part.
    pub async fn fan_out<'a, T, F>(
        &'a self,
        deadline: Duration,
        call: F,
    ) -> Vec<(&'a RuntimeEntry, Result<T>)>
    where
        F: Fn(&'a RuntimeEntry) -> Call<'a, T>,
    {
        Self::fan_out_over(self.entries.iter(), deadline, call).await
    }

    /// [`RuntimeRegistry::fan_out`] over some of the Runtimes only: those
    /// left out are not asked anything (not even again for a summary).
    pub async fn fan_out_over<'a, T, F>(
        entries: impl Iterator<Item = &'a RuntimeEntry>,
        deadline: Duration,
        call: F,
    ) -> Vec<(&'a RuntimeEntry, Result<T>)>
    where
        F: Fn(&'a RuntimeEntry) -> Call<'a, T>,
    {
        let calls = entries.map(|entry| {
            if !entry.is_known() {
                entry.ask_again();
            }
            let call = call(entry);
            async move {
                let answer = tokio::time::timeout(deadline, call)
                    .await
                    .unwrap_or_else(|_| {
                        Err(RuntimeError::RuntimeUnavailable {
                            runtime_id: entry.id.clone(),
                            message: format!(
                                "it did not answer within {} ms",
                                deadline.as_millis()
                            ),
                        })
                    });
                (entry, answer)
            }
        });
        futures_util::future::join_all(calls).await
    }

    /// The entry for `runtime_id`, or `unknown_runtime`. An entry whose
    /// Runtime has not answered yet is asked again in the background.
    pub fn get(&self, runtime_id: &RuntimeId) -> Result<&RuntimeEntry> {
        let entry = self
            .entries
            .iter()
            .find(|e| &e.id == runtime_id)
            .ok_or_else(|| RuntimeError::UnknownRuntime {
                runtime_id: runtime_id.clone(),
            })?;
        if !entry.is_known() {
            entry.ask_again();
        }
        Ok(entry)
    }

    /// The Runtime `rid`, once `operation` was checked against its
    /// capabilities: the one place a call can be refused before it reaches
    /// a Runtime.
    fn checked(&self, rid: &RuntimeId, operation: Operation) -> Result<&DynRuntime> {
        let entry = self.get(rid)?;
        entry.check(operation)?;
        Ok(entry.runtime())
    }

    // The calls below return the Runtime's own boxed future rather than
    // wrapping it in another `async fn`, so routing adds a lookup and a
    // flag check, not a second future (see docs/benchmarks.md).

    /// Lists Workers of one Runtime.
    pub fn list_workers<'a>(
        &'a self,
        rid: &RuntimeId,
        query: WorkerListQuery,
    ) -> Call<'a, WorkerPage> {
        let operation = if query.is_search() {
            Operation::SearchWorkers
        } else {
            Operation::ListWorkers
        };
        match self.checked(rid, operation) {
            Ok(runtime) => runtime.list_workers(query),
            Err(err) => refused(err),
        }
    }

    /// Counts the Workers of one Runtime that match a filter.
    pub fn count_workers<'a>(
        &'a self,
        rid: &RuntimeId,
        filter: WorkerFilter,
    ) -> Call<'a, WorkerCount> {
        match self.checked(rid, Operation::SearchWorkers) {
            Ok(runtime) => runtime.count_workers(filter),
            Err(err) => refused(err),
        }
    }

    /// The profiles of one Runtime.
    pub fn profiles<'a>(&'a self, rid: &RuntimeId) -> Call<'a, ProfileList> {
        match self.checked(rid, Operation::ListProfiles) {
            Ok(runtime) => runtime.profiles(),
            Err(err) => refused(err),
        }
    }

    /// Renames a Worker or patches its metadata.
    pub fn update_worker<'a>(
        &'a self,
        rid: &RuntimeId,
        wid: &'a WorkerId,
        request: UpdateWorkerRequest,
    ) -> Call<'a, WorkerDetail> {
        match self.checked(rid, Operation::UpdateWorker) {
            Ok(runtime) => runtime.update_worker(wid, request),
            Err(err) => refused(err),
        }
    }

    /// Forks a Worker.
    pub fn fork_worker<'a>(
        &'a self,
        rid: &RuntimeId,
        wid: &'a WorkerId,
        request: ForkRequest,
    ) -> Call<'a, WorkerDetail> {
        match self.checked(rid, Operation::ForkWorker) {
            Ok(runtime) => runtime.fork_worker(wid, request),
            Err(err) => refused(err),
        }
    }

    /// Takes back a Worker's last turns.
    pub fn rollback<'a>(
        &'a self,
        rid: &RuntimeId,
        wid: &'a WorkerId,
        request: RollbackRequest,
    ) -> Call<'a, WorkerDetail> {
        match self.checked(rid, Operation::Rollback) {
            Ok(runtime) => runtime.rollback(wid, request),
            Err(err) => refused(err),
        }
    }

    /// One Worker. Needs no capability.
    pub fn worker<'a>(&'a self, rid: &RuntimeId, wid: &'a WorkerId) -> Call<'a, WorkerDetail> {
        match self.get(rid) {
            Ok(entry) => entry.runtime().worker(wid),
            Err(err) => refused(err),
        }
    }

    /// Creates a Worker.
    pub fn create_worker<'a>(
        &'a self,
        rid: &RuntimeId,
        request: CreateWorkerRequest,
    ) -> Call<'a, WorkerDetail> {
        match self.checked(rid, Operation::CreateWorker) {
            Ok(runtime) => runtime.create_worker(request),
            Err(err) => refused(err),
        }
    }

    /// Sends input, checking also the capability its busy policy needs.
    pub fn send_input<'a>(
        &'a self,
        rid: &RuntimeId,
        wid: &'a WorkerId,
        request: InputRequest,
    ) -> Call<'a, InputAcceptance> {
        let runtime = self.checked(rid, Operation::SendInput).and_then(|runtime| {
            self.checked(rid, request.on_busy.operation())?;
            Ok(runtime)
        });
        match runtime {
            Ok(runtime) => runtime.send_input(wid, request),
            Err(err) => refused(err),
        }
    }

    /// Cancels a Worker's turn.
    pub fn cancel<'a>(&'a self, rid: &RuntimeId, wid: &'a WorkerId) -> Call<'a, WorkerDetail> {
        match self.checked(rid, Operation::Cancel) {
            Ok(runtime) => runtime.cancel(wid),
            Err(err) => refused(err),
        }
    }

    /// Stops a Worker.
    pub fn stop<'a>(&'a self, rid: &RuntimeId, wid: &'a WorkerId) -> Call<'a, WorkerDetail> {
        match self.checked(rid, Operation::Stop) {
            Ok(runtime) => runtime.stop(wid),
            Err(err) => refused(err),
        }
    }

    /// Deletes a Worker and its data.
    pub fn delete_worker<'a>(&'a self, rid: &RuntimeId, wid: &'a WorkerId) -> Call<'a, ()> {
        match self.checked(rid, Operation::DeleteWorker) {
            Ok(runtime) => runtime.delete_worker(wid),
            Err(err) => refused(err),
        }
    }

    /// A transcript page.
    pub fn transcript<'a>(
        &'a self,
        rid: &RuntimeId,
        wid: &'a WorkerId,
        query: TranscriptQuery,
    ) -> Call<'a, TranscriptPage> {
        match self.checked(rid, Operation::Transcript) {
            Ok(runtime) => runtime.transcript(wid, query),
            Err(err) => refused(err),
        }
    }

    /// An events page.
    pub fn events<'a>(
        &'a self,
        rid: &RuntimeId,
        wid: &'a WorkerId,
        query: EventQuery,
    ) -> Call<'a, EventPage> {
        match self.checked(rid, Operation::Events) {
            Ok(runtime) => runtime.events(wid, query),
            Err(err) => refused(err),
        }
    }

    /// A Worker's event stream.
    pub fn subscribe<'a>(
        &'a self,
        rid: &RuntimeId,
        wid: &'a WorkerId,
        after: Option<EventCursor>,
    ) -> Call<'a, EventStream> {
        match self.checked(rid, Operation::Subscribe) {
            Ok(runtime) => runtime.subscribe(wid, after),
            Err(err) => refused(err),
        }
    }

    /// A Runtime's lifecycle event stream.
    pub fn subscribe_runtime<'a>(
        &'a self,
        rid: &RuntimeId,
        after: Option<EventCursor>,
    ) -> Call<'a, EventStream> {
        match self.checked(rid, Operation::Subscribe) {
            Ok(runtime) => runtime.subscribe_runtime(after),
            Err(err) => refused(err),
        }
    }
}
