//! What the browser sees: DTOs of the contract, combined per route. Views
//! are built only from DTOs, which carry no paths, tokens or keys.

use serde::{Deserialize, Serialize};
use yoi_runtime_api::dto::{ImplementationKind, RuntimeState, WorkerCounts, WorkerSummary};
use yoi_runtime_api::{Capabilities, EventCursor, RuntimeId};

use crate::registry::Diagnostic;

/// A Runtime's health, as listed.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RuntimeStatusView {
    /// Whether it serves requests.
    pub state: RuntimeState,
    /// Its Workers by state.
    pub workers: WorkerCounts,
}

/// One Runtime.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RuntimeView {
    /// Its id.
    pub runtime_id: RuntimeId,
    /// A name for people.
    pub display_name: String,
    /// How it is implemented.
    pub implementation: ImplementationKind,
    /// Its health.
    pub status: RuntimeStatusView,
    /// What it supports.
    pub capabilities: Capabilities,
}

/// Every Runtime.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RuntimeList {
    /// The Runtimes, in registration order.
    pub items: Vec<RuntimeView>,
}

/// What one Runtime's source reports about itself.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SourceDiagnostics {
    /// The Runtime.
    pub runtime_id: RuntimeId,
    /// How it is implemented.
    pub implementation: ImplementationKind,
    /// Its health.
    pub status: RuntimeState,
    /// Findings, never with paths.
    pub diagnostics: Vec<Diagnostic>,
}

/// Diagnostics of every Runtime.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DiagnosticsView {
    /// One item per Runtime.
    pub items: Vec<SourceDiagnostics>,
}

/// A Worker in the cross-runtime list.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AggregatedWorker {
    /// The Worker (with its `runtime_id` and `worker_id`).
    #[serde(flatten)]
    pub summary: WorkerSummary,
    /// How its Runtime is implemented.
    pub implementation: ImplementationKind,
}

/// Workers of every Runtime: the first page of each.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AggregatedWorkers {
    /// The Workers, by Runtime in registration order, then by id.
    pub items: Vec<AggregatedWorker>,
    /// Runtimes that have more Workers than fit; page them through
    /// `/api/runtimes/{runtime_id}/workers`.
    pub truncated: Vec<RuntimeId>,
    /// Runtimes that could not be listed just now.
    pub unavailable: Vec<RuntimeId>,
}

/// Query of `/api/workers`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AggregateQuery {
    /// Workers per Runtime (default 50, at most 500).
    pub limit: Option<u32>,
}

/// Query of a Worker's events page.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsParams {
    /// Read events after this cursor.
    #[param(value_type = Option<String>)]
    pub after: Option<EventCursor>,
    /// At most this many events (default 100).
    pub limit: Option<u32>,
    /// When nothing follows `after`, wait up to this long (at most 30000 ms)
    /// for an event before answering.
    pub wait_ms: Option<u64>,
}

/// Query of an event stream.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamParams {
    /// Start after this cursor; `Last-Event-ID` takes precedence.
    #[param(value_type = Option<String>)]
    pub after: Option<EventCursor>,
}

/// `/healthz`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Health {
    /// Always `ok`.
    pub status: &'static str,
}
