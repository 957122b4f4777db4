//! Runtimes, diagnostics and the OpenAPI document.

use crate::json::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use yoi_runtime_api::RuntimeError;
use yoi_runtime_api::dto::{Diagnostic, ProfileList, RuntimeState, RuntimeStatus};

use crate::error::ApiError;
use crate::extract::RuntimePath;
use crate::registry::RuntimeEntry;
use crate::state::AppState;
use crate::views::{
    DiagnosticsView, RuntimeList, RuntimeParams, RuntimeStatusView, RuntimeView, SourceDiagnostics,
};

fn runtime_view(entry: &RuntimeEntry, status: Result<RuntimeStatus, RuntimeError>) -> RuntimeView {
    // A Runtime that cannot report its status is listed as unavailable
    // rather than failing the whole list.
    let status = match status {
        Ok(status) => {
            entry.note_answer();
            RuntimeStatusView {
                state: status.state,
                workers: status.workers,
            }
        }
        Err(err) => {
            entry.note_failure(&err, "status failed");
            RuntimeStatusView {
                state: RuntimeState::Unavailable,
                workers: Default::default(),
            }
        }
    };
    let summary = entry.summary();
    RuntimeView {
        runtime_id: summary.runtime_id.clone(),
        display_name: summary.display_name.clone(),
        implementation: summary.implementation,
        status,
        capabilities: summary.capabilities,
    }
}

/// Every registered Runtime, asked for its status concurrently.
#[utoipa::path(get, path = "/api/runtimes", tag = "runtimes", responses((status = 200, body = RuntimeList)))]
pub(crate) async fn list_runtimes(State(state): State<AppState>) -> Json<RuntimeList> {
    let answers = state
        .registry()
        .fan_out(state.aggregate_deadline(), |entry| entry.runtime().status())
        .await;
    let items = answers
        .into_iter()
        .map(|(entry, status)| runtime_view(entry, status))
        .collect();
    Json(RuntimeList { items })
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
    let status = tokio::time::timeout(state.aggregate_deadline(), entry.runtime().status())
        .await
        .unwrap_or_else(|_| {
            Err(RuntimeError::RuntimeUnavailable {
                runtime_id: runtime_id.clone(),
                message: "it did not answer in time".to_owned(),
            })
        });
    Ok(Json(runtime_view(entry, status)))
}

/// The profiles Workers of this Runtime can be created with: names, backend
/// kinds and the default, never a URL or key.
#[utoipa::path(
    get,
    path = "/api/runtimes/{runtime_id}/profiles",
    tag = "runtimes",
    params(RuntimeParams),
    responses((status = 200, body = ProfileList))
)]
pub(crate) async fn profiles(
    State(state): State<AppState>,
    RuntimePath(runtime_id): RuntimePath,
) -> Result<Json<ProfileList>, ApiError> {
    Ok(Json(state.registry().profiles(&runtime_id).await?))
}

/// What each Runtime reports about itself, asked concurrently.
#[utoipa::path(get, path = "/api/diagnostics", tag = "runtimes", responses((status = 200, body = DiagnosticsView)))]
pub(crate) async fn diagnostics(State(state): State<AppState>) -> Json<DiagnosticsView> {
    let answers = state
        .registry()
        .fan_out(state.aggregate_deadline(), |entry| {
            let runtime = entry.runtime();
            Box::pin(async move {
                let status = runtime.status().await;
                let diagnostics = runtime.diagnostics().await;
                Ok((status, diagnostics))
            })
        })
        .await;
    let items = answers
        .into_iter()
        .map(|(entry, answer)| {
            let (status, diagnostics) = match answer {
                Ok((status, diagnostics)) => (status, diagnostics),
                Err(err) => (Err(err), Ok(Vec::new())),
            };
            // Contract errors carry no paths, hosts or tokens, so their
            // public messages are safe to show.
            let mut diagnostics = diagnostics.unwrap_or_else(|err| {
                vec![Diagnostic::warning(
                    "diagnostics_failed",
                    format!(
                        "the runtime could not report diagnostics ({}): {}",
                        err.code(),
                        err.public_message()
                    ),
                )]
            });
            let state = match status {
                Ok(status) => status.state,
                Err(err) => {
                    diagnostics.push(Diagnostic::warning(
                        "unavailable",
                        format!(
                            "the runtime did not report its status ({}): {}",
                            err.code(),
                            err.public_message()
                        ),
                    ));
                    RuntimeState::Unavailable
                }
            };
            SourceDiagnostics {
                runtime_id: entry.id().clone(),
                implementation: entry.implementation(),
                status: state,
                diagnostics,
            }
        })
        .collect();
    Json(DiagnosticsView { items })
}

/// The OpenAPI 3.1 document of this API.
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    tag = "meta",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json"))
)]
pub(crate) async fn openapi(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        state.openapi_document(),
    )
}
