//! Sending input, and following its turn from the same request.
//!
//! `POST .../input` answers `202` with the acceptance as soon as the input
//! is recorded. With `?wait_ms=N` it first follows the Worker's events from
//! the acceptance cursor: if this input's turn ends within N ms the answer
//! is `200` with an [`InputResult`]; otherwise the `202`, unchanged. With
//! `Accept: text/event-stream` it streams this input's turn instead (an
//! `accepted` event with the acceptance, then the turn's events with their
//! cursors as `id:`) and closes when the turn ends. Refusals come before
//! acceptance, as ordinary problem documents. Leaving early never cancels
//! the turn: following only reads.
//!
//! Built once, over the registry (accept, then `subscribe` from the
//! acceptance cursor), so every Runtime that can be subscribed to gets it.

use std::convert::Infallible;
use std::time::Duration;

use crate::json::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::{Stream, StreamExt};
use serde::Deserialize;
use yoi_runtime_api::dto::{
    InputAcceptance, InputRequest, InputResult, TranscriptQuery, TurnOutcome, WorkerEvent,
    WorkerEventKind,
};
use yoi_runtime_api::{InputId, Operation, Problem, RuntimeId, WorkerId};

use super::events::{KEEP_ALIVE, checked_wait_ms, sse_event};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery, WorkerPath};
use crate::registry::RuntimeRegistry;
use crate::state::AppState;
use crate::views::WorkerParams;

/// Query of `POST .../input`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct InputParams {
    /// Wait up to this long for this input's turn to end, and answer `200`
    /// with its outcome if it does.
    #[param(minimum = 0, maximum = 30000)]
    wait_ms: Option<u64>,
}

/// Sends input. Answers `202` as soon as it is recorded; with `wait_ms`,
/// `200` with the outcome if the turn ends in time; with
/// `Accept: text/event-stream`, streams the turn.
#[utoipa::path(
    post,
    path = "/api/runtimes/{runtime_id}/workers/{worker_id}/input",
    tag = "workers",
    params(WorkerParams, InputParams),
    request_body = InputRequest,
    responses(
        (status = 200, description = "The turn ended within wait_ms (JSON), or the turn's events (with Accept: text/event-stream)",
            content(
                (InputResult = "application/json"),
                (String = "text/event-stream"),
            )),
        (status = 202, body = InputAcceptance, description = "Recorded; the turn has not ended yet"),
        (status = 409, description = "`worker_busy`, `worker_stopped`, or `input_id_conflict` (the `client_input_id` was used for another text)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn send_input(
    State(state): State<AppState>,
    WorkerPath(runtime_id, worker_id): WorkerPath,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<InputParams>,
    ApiJson(request): ApiJson<InputRequest>,
) -> Result<Response, ApiError> {
    let wait_ms = checked_wait_ms(params.wait_ms)?;
    let registry = state.registry();
    let acceptance = registry
        .send_input(&runtime_id, &worker_id, request)
        .await?;
    let followable = registry
        .get(&runtime_id)?
        .capabilities()
        .supports(Operation::Subscribe);
    if wants_event_stream(&headers) && followable {
        let events = registry
            .subscribe(&runtime_id, &worker_id, Some(acceptance.cursor.clone()))
            .await?;
        return Ok(stream_turn(&state, acceptance, events).into_response());
    }
    if wait_ms == 0 || !followable {
        return Ok(accepted(acceptance));
    }
    let deadline = tokio::time::Instant::now() + Duration::from_millis(wait_ms);
    let followed = tokio::select! {
        result = follow(registry, &runtime_id, &worker_id, &acceptance) => result,
        () = tokio::time::sleep_until(deadline) => None,
        () = state.shutdown_signal() => None,
    };
    let Some(end) = followed else {
        return Ok(accepted(acceptance));
    };
    let reply = match end.reply_index {
        Some(index) => reply_entry(registry, &runtime_id, &worker_id, index).await,
        None => None,
    };
    let result = InputResult {
        acceptance,
        outcome: end.outcome,
        reply,
        failure: end.failure,
        next_cursor: end.cursor,
    };
    Ok((StatusCode::OK, Json(result)).into_response())
}

fn accepted(acceptance: InputAcceptance) -> Response {
    (StatusCode::ACCEPTED, Json(acceptance)).into_response()
}

fn wants_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|v| {
            v.split(';')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("text/event-stream"))
        })
}

/// How one input's turn ended, as seen in the Worker's events.
#[derive(Debug)]
struct TurnEnd {
    outcome: TurnOutcome,
    reply_index: Option<u64>,
    failure: Option<yoi_runtime_api::dto::FailureReason>,
    cursor: yoi_runtime_api::EventCursor,
}

/// Reads one input's turn out of the Worker's events, in order.
#[derive(Debug)]
struct TurnWatch {
    input_id: InputId,
    started: bool,
}

/// What to do with one event.
enum Step {
    /// It belongs to this input's turn.
    Part,
    /// It belongs to this input's turn and ends it.
    End(TurnEnd),
    /// Something else.
    Other,
}

impl TurnWatch {
    fn new(input_id: InputId) -> Self {
        Self {
            input_id,
            started: false,
        }
    }

    fn observe(&mut self, event: &WorkerEvent) -> Step {
        if event.kind.input_id() == Some(&self.input_id) {
            if let WorkerEventKind::TurnStarted { .. } = event.kind {
                self.started = true;
            }
            return match event.kind.turn_outcome() {
                Some(outcome) => Step::End(TurnEnd {
                    outcome,
                    reply_index: match &event.kind {
                        WorkerEventKind::TurnCompleted {
                            transcript_index, ..
                        }
                        | WorkerEventKind::TurnFailed {
                            transcript_index, ..
                        }
                        | WorkerEventKind::TurnCancelled {
                            transcript_index, ..
                        } => Some(*transcript_index),
                        _ => None,
                    },
                    failure: match &event.kind {
                        WorkerEventKind::TurnFailed { reason, .. } => Some(reason.clone()),
                        _ => None,
                    },
                    cursor: event.cursor.clone(),
                }),
                None => Step::Part,
            };
        }
        // A queued input that never started is dropped when the Worker goes
        // idle or stops (cancel, stop): its turn ended without running.
        let dropped = !self.started
            && matches!(
                event.kind,
                WorkerEventKind::StateChanged { to, .. }
                    if to == yoi_runtime_api::dto::WorkerState::Idle
                        || to == yoi_runtime_api::dto::WorkerState::Stopped
            );
        if dropped {
            return Step::End(TurnEnd {
                outcome: TurnOutcome::Cancelled,
                reply_index: None,
                failure: None,
                cursor: event.cursor.clone(),
            });
        }
        Step::Other
    }
}

/// Follows the Worker's events after the acceptance until this input's
/// turn ends. `None` when the events cannot say (the stream ended or was
/// refused, for example with `cursor_expired`).
async fn follow(
    registry: &RuntimeRegistry,
    runtime_id: &RuntimeId,
    worker_id: &WorkerId,
    acceptance: &InputAcceptance,
) -> Option<TurnEnd> {
    let mut events = registry
        .subscribe(runtime_id, worker_id, Some(acceptance.cursor.clone()))
        .await
        .ok()?;
    let mut watch = TurnWatch::new(acceptance.input_id.clone());
    while let Some(Ok(event)) = events.next().await {
        if let Step::End(end) = watch.observe(&event) {
            return Some(end);
        }
    }
    None
}

async fn reply_entry(
    registry: &RuntimeRegistry,
    runtime_id: &RuntimeId,
    worker_id: &WorkerId,
    index: u64,
) -> Option<yoi_runtime_api::dto::TranscriptEntry> {
    let query = TranscriptQuery {
        start: Some(index),
        limit: Some(1),
    };
    let page = registry
        .transcript(runtime_id, worker_id, query)
        .await
        .ok()?;
    page.entries.into_iter().find(|entry| entry.index == index)
}

/// The acceptance, then this input's events, then the end of the stream.
fn stream_turn(
    state: &AppState,
    acceptance: InputAcceptance,
    events: yoi_runtime_api::EventStream,
) -> Sse<impl Stream<Item = Result<Event, Infallible>> + use<>> {
    let first = Event::default()
        .id(acceptance.cursor.as_str())
        .event("accepted")
        .json_data(&acceptance)
        .unwrap_or_else(|_| Event::default().event("accepted").data("{}"));
    let mut watch = TurnWatch::new(acceptance.input_id.clone());
    let turn = events
        .scan(false, move |ended, item| {
            if *ended {
                return std::future::ready(None);
            }
            let event = match item {
                Ok(event) => match watch.observe(&event) {
                    Step::Other => Some(None),
                    Step::Part => Some(Some(Ok(event))),
                    Step::End(_) => {
                        *ended = true;
                        Some(Some(Ok(event)))
                    }
                },
                // Ends the stream after saying why.
                Err(err) => {
                    *ended = true;
                    Some(Some(Err(err)))
                }
            };
            std::future::ready(event)
        })
        .filter_map(std::future::ready)
        .map(|item| Ok::<_, Infallible>(sse_event(item)));
    let all = futures_util::stream::once(std::future::ready(Ok(first)))
        .chain(turn)
        .take_until(state.shutdown_signal());
    Sse::new(all).keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
}
