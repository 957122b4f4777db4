//! What the browser sees: DTOs of the contract, combined per route. Views
//! are built only from DTOs, which carry no paths, tokens or keys.

use serde::{Deserialize, Serialize};
use yoi_runtime_api::dto::{
    Diagnostic, ImplementationKind, RuntimeState, SortOrder, TranscriptQuery, WorkerCounts,
    WorkerSort, WorkerState, WorkerSummary,
};
use yoi_runtime_api::{Capabilities, EventCursor, RuntimeError, RuntimeId, WorkerId};

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

/// Workers of every Runtime, merged by the sort key.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AggregatedWorkers {
    /// The Workers, in the query's order.
    pub items: Vec<AggregatedWorker>,
    /// Pass as `cursor` (with the same filter, sort and order) for the next
    /// page; absent once every Runtime is paged through.
    pub next_cursor: Option<String>,
    /// Runtimes with more Workers to page through.
    pub truncated: Vec<RuntimeId>,
    /// Runtimes that could not be listed just now, including those that
    /// have not answered at all yet (the next page asks them again from
    /// where they stood).
    pub unavailable: Vec<RuntimeId>,
    /// Runtimes left out because they cannot filter or sort.
    pub skipped: Vec<RuntimeId>,
}

/// `{runtime_id}` in a path (documentation only; `RuntimePath` extracts).
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct RuntimeParams {
    /// The Runtime.
    #[param(value_type = RuntimeId)]
    pub runtime_id: String,
}

/// `{runtime_id}` and `{worker_id}` in a path (documentation only;
/// `WorkerPath` extracts).
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct WorkerParams {
    /// The Runtime.
    #[param(value_type = RuntimeId)]
    pub runtime_id: String,
    /// The Worker, within that Runtime.
    #[param(value_type = WorkerId)]
    pub worker_id: String,
}

/// Paging of `/api/workers` (documentation only; the route reads the
/// query with the contract's parser, with [`SortParams`] and
/// [`FilterParams`]).
#[derive(Debug, Clone, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct AggregateQuery {
    /// Workers per page, across Runtimes (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// The previous page's `next_cursor`.
    pub cursor: Option<String>,
}

/// Paging of a Runtime's Worker list (documentation only; with
/// [`SortParams`] and [`FilterParams`]). The maximum `limit` is the
/// Runtime's `max_worker_page`.
#[derive(Debug, Clone, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct WorkersParams {
    /// At most this many (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// The previous page's `next_cursor`.
    #[param(max_length = 512)]
    pub cursor: Option<String>,
    /// List Workers whose id sorts after this one (default sort and order
    /// only; prefer `cursor`).
    #[param(value_type = Option<WorkerId>)]
    pub after: Option<String>,
}

/// The order of a Worker list (documentation only).
#[derive(Debug, Clone, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct SortParams {
    /// Sort key (default `created_at`).
    #[param(inline)]
    pub sort: Option<WorkerSort>,
    /// Direction (default `asc`).
    #[param(inline)]
    pub order: Option<SortOrder>,
}

/// The filter of a Worker list or count (documentation only). Also takes
/// `metadata.KEY=VALUE` pairs.
#[derive(Debug, Clone, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct FilterParams {
    /// Only Workers in these states (repeat, or separate with commas).
    #[param(inline)]
    pub state: Option<Vec<WorkerState>>,
    /// Only Workers with this profile.
    pub profile: Option<String>,
}

/// Query of a transcript page. The maximum is the Runtimes'
/// `max_transcript_page`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TranscriptParams {
    /// The first index to read (default 0).
    #[param(minimum = 0, maximum = 9223372036854775807_i64)]
    pub start: Option<u64>,
    /// At most this many entries (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
}

impl TryFrom<TranscriptParams> for TranscriptQuery {
    type Error = RuntimeError;

    /// `start` is documented as a signed 64-bit integer, the range JSON
    /// tools agree on.
    fn try_from(p: TranscriptParams) -> Result<Self, RuntimeError> {
        if p.start.is_some_and(|s| s > i64::MAX as u64) {
            return Err(RuntimeError::invalid_request(
                "start must be at most 9223372036854775807",
            ));
        }
        Ok(Self {
            start: p.start,
            limit: p.limit,
        })
    }
}

/// Query of a Worker's events page.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EventsParams {
    /// Read events after this cursor.
    #[param(value_type = Option<EventCursor>)]
    pub after: Option<EventCursor>,
    /// At most this many events (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// When nothing follows `after`, wait up to this long for an event
    /// before answering.
    #[param(minimum = 0, maximum = 30000)]
    pub wait_ms: Option<u64>,
}

/// Query of an event stream.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct StreamParams {
    /// Start after this cursor; `Last-Event-ID` takes precedence.
    #[param(value_type = Option<EventCursor>)]
    pub after: Option<EventCursor>,
}

/// `/healthz`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Health {
    /// Always `ok`.
    pub status: &'static str,
}

/// `/readyz` when the server should be sent work.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Readiness {
    /// Always `ready`; otherwise the answer is `503 not_ready`.
    pub status: &'static str,
}

/// Whether the console must sign in.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SessionView {
    /// The server requires a token (and so a sign-in).
    pub token_required: bool,
    /// The request is signed in: no token is required, or it has a valid
    /// token or session cookie.
    pub signed_in: bool,
}

/// The body of `POST /api/session`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    /// The server's bearer token.
    pub token: String,
}

impl std::fmt::Debug for SignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignIn")
            .field("token", &"<redacted>")
            .finish()
    }
}
