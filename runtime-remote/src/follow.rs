//! Event streams from a peer that reconnect on their own.
//!
//! A subscription reads the peer's Server-Sent Events. When the connection
//! breaks, ends before `worker_stopped`, or stalls (nothing, not even a
//! keep-alive, for [`STALL_AFTER`]), it connects again with `Last-Event-ID`
//! set to the last event it handed out, so the caller sees no gap and no
//! duplicate. It ends with an error only when the peer answers one (such as
//! `cursor_expired`), or when the peer stays away for all of [`BACKOFF`].

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use eventsource_stream::{Event, Eventsource};
use futures_util::{Stream, StreamExt};
use reqwest::StatusCode;
use reqwest::header::HeaderValue;
use secrecy::{ExposeSecret, SecretString};
use yoi_runtime_api::dto::WorkerEvent;
use yoi_runtime_api::{EventCursor, EventStream, Problem, RuntimeError, RuntimeId};

use crate::calls::link_error;

/// Three keep-alive intervals of the workspace server (15 s each).
pub(crate) const STALL_AFTER: Duration = Duration::from_secs(45);
/// The waits before each reconnection attempt; after the last, the stream
/// ends with `runtime_unavailable`.
pub(crate) const BACKOFF: [Duration; 8] = [
    Duration::from_millis(50),
    Duration::from_millis(100),
    Duration::from_millis(200),
    Duration::from_millis(400),
    Duration::from_millis(800),
    Duration::from_millis(1600),
    Duration::from_secs(2),
    Duration::from_secs(2),
];

type Sse = Pin<Box<dyn Stream<Item = Result<Event, ()>> + Send>>;

/// How to open the stream again.
pub(crate) struct Connector {
    pub(crate) http: reqwest::Client,
    /// The stream's URL, without a cursor.
    pub(crate) url: String,
    pub(crate) token: Option<SecretString>,
    pub(crate) runtime_id: RuntimeId,
    /// Whether the stream ends after `worker_stopped` (a Worker's stream;
    /// the Runtime's stream never ends).
    pub(crate) ends_on_stop: bool,
}

/// Why the stream could not be opened.
pub(crate) enum Refused {
    /// The peer answered with an error: final.
    Answer(RuntimeError),
    /// The peer could not be reached: try again.
    Unreachable,
    /// `204`: the Worker is stopped and nothing follows the cursor.
    Closed,
}

impl Connector {
    fn lost(&self, why: &str) -> RuntimeError {
        RuntimeError::RuntimeUnavailable {
            runtime_id: self.runtime_id.clone(),
            message: why.to_owned(),
        }
    }

    /// Opens the stream after `after`.
    pub(crate) async fn open(&self, after: Option<&EventCursor>) -> Result<Sse, Refused> {
        let mut request = self
            .http
            .get(&self.url)
            .header("accept", "text/event-stream");
        if let Some(token) = &self.token {
            request = request.bearer_auth(token.expose_secret());
        }
        if let Some(cursor) = after
            && let Ok(value) = HeaderValue::from_str(cursor.as_str())
        {
            request = request.header("last-event-id", value);
        }
        let response = request.send().await.map_err(|_| Refused::Unreachable)?;
        let status = response.status();
        if status == StatusCode::NO_CONTENT {
            // The Worker is stopped and nothing follows the cursor.
            return Err(Refused::Closed);
        }
        if !status.is_success() {
            let body = response.bytes().await.map_err(|_| Refused::Unreachable)?;
            return Err(match serde_json::from_slice::<Problem>(&body) {
                Ok(problem) => Refused::Answer(link_error(&self.runtime_id, problem.into_error())),
                Err(_) if status.is_server_error() => Refused::Unreachable,
                Err(_) => {
                    Refused::Answer(self.lost(&format!("it answered HTTP {}", status.as_u16())))
                }
            });
        }
        // Every chunk, keep-alive comments included, must come within
        // STALL_AFTER; a silent connection counts as broken.
        let guarded =
            futures_util::stream::unfold(response.bytes_stream(), |mut body| async move {
                match tokio::time::timeout(STALL_AFTER, body.next()).await {
                    Ok(Some(Ok(bytes))) => Some((Ok(bytes), body)),
                    Ok(Some(Err(_))) | Err(_) => Some((Err(Broken), body)),
                    Ok(None) => None,
                }
            });
        Ok(Box::pin(
            guarded.eventsource().map(|item| item.map_err(|_| ())),
        ))
    }
}

/// The connection broke or stalled.
#[derive(Debug)]
struct Broken;

impl std::fmt::Display for Broken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the event stream broke")
    }
}

impl std::error::Error for Broken {}

struct State {
    connector: Arc<Connector>,
    sse: Option<Sse>,
    last: Option<EventCursor>,
    attempts: usize,
    stopped: bool,
    done: bool,
}

/// The events of `first` (already open after `after`), reconnecting as
/// needed.
pub(crate) fn follow(connector: Connector, first: Sse, after: Option<EventCursor>) -> EventStream {
    let state = State {
        connector: Arc::new(connector),
        sse: Some(first),
        last: after,
        attempts: 0,
        stopped: false,
        done: false,
    };
    Box::pin(futures_util::stream::unfold(state, step))
}

async fn step(mut st: State) -> Option<(yoi_runtime_api::Result<WorkerEvent>, State)> {
    loop {
        if st.done {
            return None;
        }
        let Some(sse) = st.sse.as_mut() else {
            let Some(wait) = BACKOFF.get(st.attempts) else {
                st.done = true;
                let err = st
                    .connector
                    .lost("the event stream broke and the peer did not come back");
                return Some((Err(err), st));
            };
            tokio::time::sleep(*wait).await;
            st.attempts += 1;
            match st.connector.open(st.last.as_ref()).await {
                Ok(sse) => st.sse = Some(sse),
                Err(Refused::Answer(err)) => {
                    st.done = true;
                    return Some((Err(err), st));
                }
                Err(Refused::Closed) => return None,
                Err(Refused::Unreachable) => {}
            }
            continue;
        };
        match sse.next().await {
            Some(Ok(event)) if event.event == "error" || event.event == "stream_error" => {
                st.done = true;
                let err = serde_json::from_str::<Problem>(&event.data)
                    .map(Problem::into_error)
                    .unwrap_or_else(|_| st.connector.lost("the event stream broke"));
                return Some((Err(err), st));
            }
            // A frame without data (the `retry:` hint) carries no event.
            Some(Ok(event)) if event.data.is_empty() => {}
            Some(Ok(event)) => match serde_json::from_str::<WorkerEvent>(&event.data) {
                Ok(event) => {
                    st.attempts = 0;
                    st.last = Some(event.cursor.clone());
                    if st.connector.ends_on_stop && event.kind_name() == "worker_stopped" {
                        st.stopped = true;
                    }
                    return Some((Ok(event), st));
                }
                // Garbage: read again from the last good event.
                Err(_) => st.sse = None,
            },
            // A normal end after the Worker stopped.
            None if st.stopped => return None,
            // Broken, stalled, or ended early: connect again.
            Some(Err(())) | None => st.sse = None,
        }
    }
}
