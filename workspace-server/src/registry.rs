//! The registry of Runtimes, and the one place capabilities are checked.
//!
//! Handlers never call a Runtime directly: they call the registry, which
//! resolves the `runtime_id`, checks the Runtime's [`Capabilities`] for the
//! operation (`unsupported_operation` otherwise), and then makes exactly one
//! trait call. Embedded, local-compat and (later) remote Runtimes are all
//! `Arc<dyn Runtime>` here and are treated the same way.

use std::sync::Arc;

use serde::Serialize;
use yoi_runtime_api::dto::{
    CreateWorkerRequest, EventPage, EventQuery, ImplementationKind, InputAcceptance, InputRequest,
    TranscriptPage, TranscriptQuery, WorkerDetail, WorkerListQuery, WorkerPage,
};
use yoi_runtime_api::{
    Capabilities, DynRuntime, EventCursor, EventStream, Operation, Result, RuntimeError, RuntimeId,
    WorkerId,
};

/// How serious a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DiagnosticLevel {
    /// For information.
    Info,
    /// Something was skipped or looks wrong.
    Warning,
}

/// One finding about a Runtime's source, safe to show: it never contains a
/// file system path, socket, token or key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Diagnostic {
    /// How serious it is.
    pub level: DiagnosticLevel,
    /// A stable code, for example `malformed_record`.
    pub code: String,
    /// What was found, for people.
    pub message: String,
}

/// Something that can explain the state of a Runtime's source.
pub trait DiagnosticsSource: Send + Sync + std::fmt::Debug + 'static {
    /// The current findings.
    fn diagnostics(&self) -> Vec<Diagnostic>;
}

/// One registered Runtime.
#[derive(Debug, Clone)]
pub struct RuntimeEntry {
    /// A copy of the Runtime's id, so lookups make no dynamic calls.
    id: RuntimeId,
    runtime: Arc<DynRuntime>,
    implementation: ImplementationKind,
    /// Read once at registration: the contract says they never change.
    capabilities: Capabilities,
    diagnostics: Option<Arc<dyn DiagnosticsSource>>,
}

impl RuntimeEntry {
    /// An entry without diagnostics.
    pub fn new(runtime: Arc<DynRuntime>, implementation: ImplementationKind) -> Self {
        Self {
            id: runtime.id().clone(),
            capabilities: runtime.capabilities(),
            runtime,
            implementation,
            diagnostics: None,
        }
    }

    /// Adds a diagnostics source.
    pub fn with_diagnostics(mut self, diagnostics: Arc<dyn DiagnosticsSource>) -> Self {
        self.diagnostics = Some(diagnostics);
        self
    }

    /// How the Runtime is implemented.
    pub fn implementation(&self) -> ImplementationKind {
        self.implementation
    }

    /// Where the Runtime's diagnostics come from, if anywhere.
    pub fn diagnostics_source(&self) -> Option<Arc<dyn DiagnosticsSource>> {
        self.diagnostics.clone()
    }

    /// The Runtime's capabilities.
    pub fn capabilities(&self) -> Capabilities {
        self.capabilities
    }

    /// The Runtime itself. Calling through `&dyn Runtime` rather than the
    /// `Arc` skips the forwarding impl, which would box every call's future
    /// a second time.
    pub fn runtime(&self) -> &DynRuntime {
        self.runtime.as_ref()
    }

    fn check(&self, operation: Operation) -> Result<()> {
        self.capabilities.check(&self.id, operation)
    }
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

    /// Adds a Runtime; its id must be new.
    pub fn register(&mut self, entry: RuntimeEntry) -> Result<(), RegistryError> {
        if self.entries.iter().any(|e| e.id == entry.id) {
            return Err(RegistryError::Duplicate {
                runtime_id: entry.id,
            });
        }
        self.entries.push(entry);
        Ok(())
    }

    /// Every entry, in registration order.
    pub fn entries(&self) -> &[RuntimeEntry] {
        &self.entries
    }

    /// The entry for `runtime_id`, or `unknown_runtime`.
    pub fn get(&self, runtime_id: &RuntimeId) -> Result<&RuntimeEntry> {
        self.entries
            .iter()
            .find(|e| &e.id == runtime_id)
            .ok_or_else(|| RuntimeError::UnknownRuntime {
                runtime_id: runtime_id.clone(),
            })
    }

    /// Lists Workers of one Runtime.
    pub async fn list_workers(
        &self,
        rid: &RuntimeId,
        query: WorkerListQuery,
    ) -> Result<WorkerPage> {
        let entry = self.get(rid)?;
        entry.check(Operation::ListWorkers)?;
        entry.runtime().list_workers(query).await
    }

    /// One Worker.
    pub async fn worker(&self, rid: &RuntimeId, wid: &WorkerId) -> Result<WorkerDetail> {
        self.get(rid)?.runtime().worker(wid).await
    }

    /// Creates a Worker.
    pub async fn create_worker(
        &self,
        rid: &RuntimeId,
        request: CreateWorkerRequest,
    ) -> Result<WorkerDetail> {
        let entry = self.get(rid)?;
        entry.check(Operation::CreateWorker)?;
        entry.runtime().create_worker(request).await
    }

    /// Sends input, checking the capability its busy policy needs.
    pub async fn send_input(
        &self,
        rid: &RuntimeId,
        wid: &WorkerId,
        request: InputRequest,
    ) -> Result<InputAcceptance> {
        let entry = self.get(rid)?;
        entry.check(Operation::SendInput)?;
        entry.check(Capabilities::operation_for(request.on_busy))?;
        entry.runtime().send_input(wid, request).await
    }

    /// Cancels a Worker's turn.
    pub async fn cancel(&self, rid: &RuntimeId, wid: &WorkerId) -> Result<WorkerDetail> {
        let entry = self.get(rid)?;
        entry.check(Operation::Cancel)?;
        entry.runtime().cancel(wid).await
    }

    /// Stops a Worker.
    pub async fn stop(&self, rid: &RuntimeId, wid: &WorkerId) -> Result<WorkerDetail> {
        let entry = self.get(rid)?;
        entry.check(Operation::Stop)?;
        entry.runtime().stop(wid).await
    }

    /// A transcript page.
    pub async fn transcript(
        &self,
        rid: &RuntimeId,
        wid: &WorkerId,
        query: TranscriptQuery,
    ) -> Result<TranscriptPage> {
        let entry = self.get(rid)?;
        entry.check(Operation::Transcript)?;
        entry.runtime().transcript(wid, query).await
    }

    /// An events page.
    pub async fn events(
        &self,
        rid: &RuntimeId,
        wid: &WorkerId,
        query: EventQuery,
    ) -> Result<EventPage> {
        let entry = self.get(rid)?;
        entry.check(Operation::Events)?;
        entry.runtime().events(wid, query).await
    }

    /// A Worker's event stream.
    pub async fn subscribe(
        &self,
        rid: &RuntimeId,
        wid: &WorkerId,
        after: Option<EventCursor>,
    ) -> Result<EventStream> {
        let entry = self.get(rid)?;
        entry.check(Operation::Subscribe)?;
        entry.runtime().subscribe(wid, after).await
    }

    /// A Runtime's lifecycle event stream.
    pub async fn subscribe_runtime(
        &self,
        rid: &RuntimeId,
        after: Option<EventCursor>,
    ) -> Result<EventStream> {
        let entry = self.get(rid)?;
        entry.check(Operation::Subscribe)?;
        entry.runtime().subscribe_runtime(after).await
    }
}
