//! Workers: list, create, detail, input, cancel, stop, transcript.

use crate::json::{Json, WrittenJson};
use axum::extract::State;
use axum::http::StatusCode;
use yoi_runtime_api::dto::ForkRequest;
use yoi_runtime_api::dto::{
    CreateWorkerRequest, RollbackRequest, TranscriptPage, UpdateWorkerRequest, WorkerCount,
    WorkerDetail, WorkerPage,
};

use yoi_runtime_api::Problem;

use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery, FilterQuery, ListQuery, RuntimePath, WorkerPath};
use crate::state::AppState;
use crate::views::{
    FilterParams, RuntimeParams, SortParams, TranscriptParams, WorkerParams, WorkersParams,
};

/// One Runtime's Workers: filtered by `state` (repeatable or
/// comma-separated), `profile` and `metadata.KEY=VALUE` pairs (all must
/// match; repeat with other keys), sorted by `sort` in `order`, paged by
/// the opaque `cursor` of the previous page's `next_cursor`. An unknown
/// query parameter is `invalid_request`. A Runtime without
/// `search_workers` takes `limit` and `after` only.
#[utoipa::path(
    get,
    path = "/api/runtimes/{runtime_id}/workers",
    tag = "workers",
    params(RuntimeParams, WorkersParams, SortParams, FilterParams),
    responses((status = 200, body = WorkerPage))
)]
pub(crate) async fn list_workers(
    State(state): State<AppState>,
    RuntimePath(runtime_id): RuntimePath,
    ListQuery(query): ListQuery,
) -> Result<Json<WorkerPage>, ApiError> {
    Ok(Json(
        state.registry().list_workers(&runtime_id, query).await?,
    ))
}

/// How many of a Runtime's Workers match the filter (`state`, `profile`,
/// `metadata.KEY=VALUE`, as for the list). Needs `search_workers`.
#[utoipa::path(
    get,
    path = "/api/runtimes/{runtime_id}/workers/count",
    tag = "workers",
    params(RuntimeParams, FilterParams),
    responses((status = 200, body = WorkerCount))
)]
pub(crate) async fn count_workers(
    State(state): State<AppState>,
    RuntimePath(runtime_id): RuntimePath,
    FilterQuery(filter): FilterQuery,
) -> Result<Json<WorkerCount>, ApiError> {
    Ok(Json(
        state.registry().count_workers(&runtime_id, filter).await?,
    ))
}

/// Creates a Worker.
#[utoipa::path(
    post,
    path = "/api/runtimes/{runtime_id}/workers",
    tag = "workers",
    params(RuntimeParams),
    request_body = CreateWorkerRequest,
    responses(
        (status = 201, body = WorkerDetail),
        (status = 422, description = "Unknown profile", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn create_worker(
    State(state): State<AppState>,
    RuntimePath(runtime_id): RuntimePath,
    ApiJson(request): ApiJson<CreateWorkerRequest>,
) -> Result<(StatusCode, Json<WorkerDetail>), ApiError> {
    let detail = state.registry().create_worker(&runtime_id, request).await?;
    Ok((StatusCode::CREATED, Json(detail)))
}

/// One Worker.
#[utoipa::path(
    get,
    path = "/api/runtimes/{runtime_id}/workers/{worker_id}",
    tag = "workers",
    params(WorkerParams),
    responses((status = 200, body = WorkerDetail))
)]
pub(crate) async fn get_worker(
    State(state): State<AppState>,
    WorkerPath(runtime_id, worker_id): WorkerPath,
) -> Result<WrittenJson<WorkerDetail>, ApiError> {
    Ok(WrittenJson(
        state.registry().worker(&runtime_id, &worker_id).await?,
    ))
}

/// Renames a Worker and/or patches its metadata: a JSON merge patch
/// (`application/merge-patch+json` or `application/json`), where a `null`
/// metadata value removes the key. Works on stopped Workers; logs
/// `worker_updated`.
#[utoipa::path(
    patch,
    path = "/api/runtimes/{runtime_id}/workers/{worker_id}",
    tag = "workers",
    params(WorkerParams),
    request_body(content = UpdateWorkerRequest, content_type = "application/merge-patch+json"),
    responses((status = 200, body = WorkerDetail))
)]
pub(crate) async fn update_worker(
    State(state): State<AppState>,
    WorkerPath(runtime_id, worker_id): WorkerPath,
    ApiJson(request): ApiJson<UpdateWorkerRequest>,
) -> Result<Json<WorkerDetail>, ApiError> {
    Ok(Json(
        state
            .registry()
            .update_worker(&runtime_id, &worker_id, request)
            .await?,
    ))
}

/// A new Worker with this one's profile and a copy of its completed
/// transcript entries before `at` (default: all; a running turn is not
/// copied), a fresh event log, and `forked_from` naming the source.
#[utoipa::path(
    post,
    path = "/api/runtimes/{runtime_id}/workers/{worker_id}/fork",
    tag = "workers",
    params(WorkerParams),
    request_body = ForkRequest,
    responses((status = 201, body = WorkerDetail))
)]
pub(crate) async fn fork_worker(
    State(state): State<AppState>,
    WorkerPath(runtime_id, worker_id): WorkerPath,
    ApiJson(request): ApiJson<ForkRequest>,
) -> Result<(StatusCode, Json<WorkerDetail>), ApiError> {
    let detail = state
        .registry()
        .fork_worker(&runtime_id, &worker_id, request)
        .await?;
    Ok((StatusCode::CREATED, Json(detail)))
}

/// Takes back the last `turns` completed turns: their entries stay in the
/// transcript as `rolled_back` and leave the model's context; logs
/// `rolled_back`. `worker_busy` while a turn runs or inputs wait.
#[utoipa::path(
    post,
    path = "/api/runtimes/{runtime_id}/workers/{worker_id}/rollback",
    tag = "workers",
    params(WorkerParams),
    request_body = RollbackRequest,
    responses(
        (status = 200, body = WorkerDetail),
        (status = 409, description = "A turn runs or inputs wait", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn rollback(
    State(state): State<AppState>,
    WorkerPath(runtime_id, worker_id): WorkerPath,
    ApiJson(request): ApiJson<RollbackRequest>,
) -> Result<Json<WorkerDetail>, ApiError> {
    Ok(Json(
        state
            .registry()
            .rollback(&runtime_id, &worker_id, request)
            .await?,
    ))
}

/// Deletes a Worker: stops it (its streams end) and removes it and all its
/// data. Its id and cursors are then `unknown_worker`.
#[utoipa::path(
    delete,
    path = "/api/runtimes/{runtime_id}/workers/{worker_id}",
    tag = "workers",
    params(WorkerParams),
    responses((status = 204, description = "Deleted"))
)]
pub(crate) async fn delete_worker(
    State(state): State<AppState>,
    WorkerPath(runtime_id, worker_id): WorkerPath,
) -> Result<StatusCode, ApiError> {
    state
        .registry()
        .delete_worker(&runtime_id, &worker_id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Cancels the running turn and drops queued inputs.
#[utoipa::path(
    post,
    path = "/api/runtimes/{runtime_id}/workers/{worker_id}/cancel",
    tag = "workers",
    params(WorkerParams),
    responses((status = 200, body = WorkerDetail))
)]
pub(crate) async fn cancel_worker(
    State(state): State<AppState>,
    WorkerPath(runtime_id, worker_id): WorkerPath,
) -> Result<Json<WorkerDetail>, ApiError> {
    Ok(Json(
        state.registry().cancel(&runtime_id, &worker_id).await?,
    ))
}

/// Stops the Worker for good.
#[utoipa::path(
    post,
    path = "/api/runtimes/{runtime_id}/workers/{worker_id}/stop",
    tag = "workers",
    params(WorkerParams),
    responses((status = 200, body = WorkerDetail))
)]
pub(crate) async fn stop_worker(
    State(state): State<AppState>,
    WorkerPath(runtime_id, worker_id): WorkerPath,
) -> Result<Json<WorkerDetail>, ApiError> {
    Ok(Json(state.registry().stop(&runtime_id, &worker_id).await?))
}

/// A page of the transcript.
#[utoipa::path(
    get,
    path = "/api/runtimes/{runtime_id}/workers/{worker_id}/transcript",
    tag = "workers",
    params(
        WorkerParams,
        TranscriptParams,
    ),
    responses((status = 200, body = TranscriptPage))
)]
pub(crate) async fn transcript(
    State(state): State<AppState>,
    WorkerPath(runtime_id, worker_id): WorkerPath,
    ApiQuery(params): ApiQuery<TranscriptParams>,
) -> Result<WrittenJson<TranscriptPage>, ApiError> {
    Ok(WrittenJson(
        state
            .registry()
            .transcript(&runtime_id, &worker_id, params.try_into()?)
            .await?,
    ))
}
