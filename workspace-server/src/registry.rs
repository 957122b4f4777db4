//! The registry of Runtimes, and the one place capabilities are checked.
//!
//! Handlers never call a Runtime directly: they call the registry, which
//! resolves the `runtime_id`, checks the Runtime's [`Capabilities`] for the
//! operation (`unsupported_operation` otherwise), and then makes exactly one
//! trait call. Embedded, local-compat and (later) remote Runtimes are all
//! `Arc<dyn Runtime>` here and are treated the same way.

use std::pin::Pin;
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
        match self.checked(rid, Operation::ListWorkers) {
            Ok(runtime) => runtime.list_workers(query),
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
            self.checked(rid, Capabilities::operation_for(request.on_busy))?;
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
