//! Events: pages with optional long polling, and Server-Sent Events.

use std::time::Duration;

use crate::json::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::Event;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use yoi_runtime_api::dto::{EventPage, EventQuery, WorkerEvent, WorkerState};
use yoi_runtime_api::{EventCursor, EventStream, Operation, RuntimeError, RuntimeId, WorkerId};

use yoi_runtime_api::Problem;

use crate::error::ApiError;
use crate::extract::{ApiQuery, RuntimePath, WorkerPath};
use crate::state::AppState;
use crate::views::{EventsParams, RuntimeParams, StreamParams, WorkerParams};

/// The longest long poll.
pub(crate) const MAX_WAIT_MS: u64 = 30_000;
pub(crate) const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// The reconnection delay every event stream suggests (`retry:`).
pub(crate) const RETRY: Duration = Duration::from_secs(3);
pub(crate) use crate::frames::STREAM_ERROR;

/// A page of events; with `wait_ms`, waits for the first event after the
/// cursor when there is none yet.
#[utoipa::path(
    get,
    path = "/api/runtimes/{runtime_id}/workers/{worker_id}/events",
    tag = "events",
    params(
        WorkerParams,
        EventsParams,
    ),
    responses(
        (status = 200, body = EventPage),
        (status = 410, description = "Cursor expired", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn worker_events(
    State(state): State<AppState>,
    WorkerPath(runtime_id, worker_id): WorkerPath,
    ApiQuery(params): ApiQuery<EventsParams>,
) -> Result<Json<EventPage>, ApiError> {
    let wait_ms = checked_wait_ms(params.wait_ms)?;
    let registry = state.registry();
    let query = EventQuery {
        after: params.after.clone(),
        limit: params.limit,
    };
    let page = registry
        .events(&runtime_id, &worker_id, query.clone())
        .await?;
    let can_wait = registry
        .get(&runtime_id)?
        .capabilities()
        .supports(Operation::Subscribe);
    if !page.events.is_empty() || wait_ms == 0 || !can_wait {
        return Ok(Json(page));
    }
    let mut stream = registry
        .subscribe(&runtime_id, &worker_id, params.after)
        .await?;
    tokio::select! {
        _ = tokio::time::sleep(Duration::from_millis(wait_ms)) => {}
        _ = stream.next() => {}
        _ = state.shutdown_signal() => {}
    }
    Ok(Json(registry.events(&runtime_id, &worker_id, query).await?))
}

/// `wait_ms` (0 when absent), or `limit_too_large` past [`MAX_WAIT_MS`].
pub(crate) fn checked_wait_ms(wait_ms: Option<u64>) -> Result<u64, ApiError> {
    let wait_ms = wait_ms.unwrap_or(0);
    if wait_ms > MAX_WAIT_MS {
        return Err(RuntimeError::LimitTooLarge {
            field: "wait_ms".to_owned(),
            requested: wait_ms,
            max: MAX_WAIT_MS,
        }
        .into());
    }
    Ok(wait_ms)
}

fn resume_cursor(
    headers: &HeaderMap,
    query: Option<EventCursor>,
) -> Result<Option<EventCursor>, ApiError> {
    match headers.get("last-event-id") {
        None => Ok(query),
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|v| v.parse::<EventCursor>().ok())
            .map(Some)
            .ok_or_else(|| ApiError::invalid_request("Last-Event-ID is not a valid cursor")),
    }
}

pub(crate) fn sse_event(item: Result<WorkerEvent, RuntimeError>) -> Event {
    let event = match item {
        Ok(event) => Event::default()
            .id(event.cursor.as_str())
            .event(event.kind_name())
            .json_data(&event),
        // The stream ends after an error (for example `cursor_expired` when
        // the client fell too far behind); the client reconnects.
        Err(err) => Event::default()
            .event(STREAM_ERROR)
            .json_data(Problem::from(err)),
    };
    event.unwrap_or_else(|_| Event::default().event(STREAM_ERROR).data("{}"))
}

/// Replays, follows live, and closes cleanly on shutdown; the first frame
/// is the `retry:` hint. Frames are shared between the followers of a
/// stream (`scope`), see [`crate::frames`].
fn sse(state: &AppState, scope: String, stream: EventStream) -> Response {
    crate::frames::response(
        state.frames(),
        scope.into(),
        stream,
        RETRY,
        KEEP_ALIVE,
        state.shutdown_signal(),
    )
}

/// A Worker's events as Server-Sent Events: `id:` is the cursor, `event:`
/// the kind. Resumes after `Last-Event-ID` or `?after=`; replays, then
/// follows live; ends after `worker_stopped`. Resuming a stopped Worker
/// with nothing after the cursor answers `204`, which tells `EventSource`
/// to stop reconnecting. An error inside the stream is a `stream_error`
/// event carrying a Problem; the stream ends after it.
#[utoipa::path(
    get,
    path = "/api/runtimes/{runtime_id}/workers/{worker_id}/events/stream",
    tag = "events",
    params(
        WorkerParams,
        ("Last-Event-ID" = Option<String>, Header, description = "Resume after this cursor"),
        StreamParams,
    ),
    responses(
        (status = 200, description = "An event stream", content_type = "text/event-stream"),
        (status = 204, description = "The Worker is stopped and nothing follows the cursor"),
        (status = 410, description = "Cursor expired", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn worker_stream(
    State(state): State<AppState>,
    WorkerPath(runtime_id, worker_id): WorkerPath,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<StreamParams>,
) -> Result<Response, ApiError> {
    let after = resume_cursor(&headers, params.after)?;
    let registry = state.registry();
    if after.is_some() && is_closed_after(&state, &runtime_id, &worker_id, &after).await? {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let stream = registry.subscribe(&runtime_id, &worker_id, after).await?;
    Ok(sse(&state, format!("w:{runtime_id}/{worker_id}"), stream))
}

/// Whether the Worker is stopped with no event after `after`: its log is
/// closed, so a stream would end at once (and a browser would reconnect
/// to it forever).
async fn is_closed_after(
    state: &AppState,
    runtime_id: &RuntimeId,
    worker_id: &WorkerId,
    after: &Option<EventCursor>,
) -> Result<bool, ApiError> {
    let registry = state.registry();
    if !registry
        .get(runtime_id)?
        .capabilities()
        .supports(Operation::Events)
    {
        // It cannot say; the stream itself will.
        return Ok(false);
    }
    let query = EventQuery {
        after: after.clone(),
        limit: Some(1),
    };
    if !registry
        .events(runtime_id, worker_id, query)
        .await?
        .events
        .is_empty()
    {
        return Ok(false);
    }
    let detail = registry.worker(runtime_id, worker_id).await?;
    Ok(detail.summary.state == WorkerState::Stopped)
}

/// A Runtime's lifecycle events (created, stopped, state changes of every
/// Worker) as Server-Sent Events.
#[utoipa::path(
    get,
    path = "/api/runtimes/{runtime_id}/events/stream",
    tag = "events",
    params(
        RuntimeParams,
        ("Last-Event-ID" = Option<String>, Header, description = "Resume after this cursor"),
        StreamParams,
    ),
    responses((status = 200, description = "An event stream", content_type = "text/event-stream"))
)]
pub(crate) async fn runtime_stream(
    State(state): State<AppState>,
    RuntimePath(runtime_id): RuntimePath,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<StreamParams>,
) -> Result<Response, ApiError> {
    let after = resume_cursor(&headers, params.after)?;
    let stream = state
        .registry()
        .subscribe_runtime(&runtime_id, after)
        .await?;
    Ok(sse(&state, format!("r:{runtime_id}"), stream))
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use axum::response::IntoResponse;
    use axum::response::sse::Sse;
    use http_body_util::BodyExt;

    use super::*;

    /// The wire form of `frames` as a stream would send them.
    async fn wire(frames: Vec<Event>) -> String {
        let stream = futures_util::stream::iter(frames.into_iter().map(Ok::<_, Infallible>));
        let body = Sse::new(stream).into_response().into_body();
        let bytes = body.collect().await.unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn an_error_in_a_stream_is_a_stream_error_event_with_a_problem() {
        let err = RuntimeError::CursorExpired {
            runtime_id: "backend-internal".parse().unwrap(),
            worker_id: Some("w-1".parse().unwrap()),
            cursor: "1.abc".parse().unwrap(),
        };
        let text = wire(vec![sse_event(Err(err))]).await;
        assert!(text.starts_with("event: stream_error\n"), "{text}");
        assert!(!text.contains("event: error\n"), "{text}");
        let data = text.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
        let problem: Problem = serde_json::from_str(data).unwrap();
        assert_eq!(problem.status, 410);
        assert!(matches!(problem.error, RuntimeError::CursorExpired { .. }));
    }
}
