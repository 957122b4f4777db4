//! Runtimes, diagnostics and the OpenAPI document.

use axum::Json;
use axum::extract::State;
use yoi_runtime_api::RuntimeError;
use yoi_runtime_api::dto::RuntimeState;

use crate::error::ApiError;
use crate::extract::RuntimePath;
use crate::registry::RuntimeEntry;
use crate::state::AppState;
use crate::views::{
    DiagnosticsView, RuntimeList, RuntimeParams, RuntimeStatusView, RuntimeView, SourceDiagnostics,
};

async fn runtime_view(entry: &RuntimeEntry) -> Result<RuntimeView, ApiError> {
    let summary = entry.runtime().summary().await?;
    // A Runtime that cannot report its status is listed as unavailable
    // rather than failing the whole list.
    let status = match entry.runtime().status().await {
        Ok(status) => RuntimeStatusView {
            state: status.state,
            workers: status.workers,
        },
        Err(err) => {
            tracing::warn!(runtime_id = %summary.runtime_id, code = %err.code(), "status failed");
            RuntimeStatusView {
                state: RuntimeState::Unavailable,
                workers: Default::default(),
            }
        }
    };
    Ok(RuntimeView {
        runtime_id: summary.runtime_id,
        display_name: summary.display_name,
        implementation: entry.implementation(),
        status,
        capabilities: summary.capabilities,
    })
}

/// Every registered Runtime.
#[utoipa::path(get, path = "/api/runtimes", tag = "runtimes", responses((status = 200, body = RuntimeList)))]
pub(crate) async fn list_runtimes(
    State(state): State<AppState>,
) -> Result<Json<RuntimeList>, ApiError> {
    let mut items = Vec::new();
    for entry in state.registry().entries() {
        items.push(runtime_view(entry).await?);
    }
    Ok(Json(RuntimeList { items }))
}

/// One Runtime.
#[utoipa::path(
    get,
    path = "/api/runtimes/{runtime_id}",
    tag = "runtimes",
    params(RuntimeParams),
    responses((status = 200, body = RuntimeView))
)]
pub(crate) async fn get_runtime(
    State(state): State<AppState>,
    RuntimePath(runtime_id): RuntimePath,
) -> Result<Json<RuntimeView>, ApiError> {
    let entry = state.registry().get(&runtime_id)?;
    Ok(Json(runtime_view(entry).await?))
}

/// What each Runtime's source reports about itself.
#[utoipa::path(get, path = "/api/diagnostics", tag = "runtimes", responses((status = 200, body = DiagnosticsView)))]
pub(crate) async fn diagnostics(
    State(state): State<AppState>,
) -> Result<Json<DiagnosticsView>, ApiError> {
    let mut items = Vec::new();
    for entry in state.registry().entries() {
        let status = match entry.runtime().status().await {
            Ok(status) => status.state,
            Err(_) => RuntimeState::Unavailable,
        };
        let diagnostics = match entry.diagnostics_source() {
            // Sources may read files; keep that off the async workers.
            Some(source) => tokio::task::spawn_blocking(move || source.diagnostics())
                .await
                .map_err(|e| RuntimeError::internal("collecting diagnostics failed", e))?,
            None => Vec::new(),
        };
        items.push(SourceDiagnostics {
            runtime_id: entry.runtime().id().clone(),
            implementation: entry.implementation(),
            status,
            diagnostics,
        });
    }
    Ok(Json(DiagnosticsView { items }))
}

/// The OpenAPI 3.1 document of this API.
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    tag = "meta",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json"))
)]
pub(crate) async fn openapi(State(state): State<AppState>) -> Json<utoipa::openapi::OpenApi> {
    Json(crate::openapi::document(state.token().is_some()))
}
