//! The line per answered request, and where it can go instead of
//! `tracing`.
//!
//! By default the request layer (`middleware.rs`) logs each answered
//! request as an info event through `tracing`, with the target
//! [`REQUEST_LOG_TARGET`]. An embedder that writes its own log lines can
//! take them over with [`AppState::with_request_log`](crate::AppState::with_request_log):
//! the `yoi` binary writes the same bytes its subscriber would, without an
//! event's dispatch and field visiting, which are most of the line's cost
//! (docs/benchmarks.md §10). **A [`RequestLog`] is told only what the event
//! carries**: the method, the matched route (a template, never the path's
//! ids, the query or the body), the status and the latency.

use axum::http::Method;

/// The target of the request line, as `tracing` names it: the events come
/// from `middleware.rs`, and `RUST_LOG` filters name this target (a
/// [`RequestLog`] should honour them).
pub const REQUEST_LOG_TARGET: &str = "yoi_workspace_server::middleware";

/// One answered request, as logged.
#[derive(Clone, Copy, Debug)]
pub struct AnsweredRequest<'a> {
    /// The request's method.
    pub method: &'a Method,
    /// The route the request matched, a template such as
    /// `/api/runtimes/{runtime_id}`; `unmatched` when none did.
    pub route: &'a str,
    /// The response's status code.
    pub status: u16,
    /// Microseconds from the request reaching the layer to its response.
    pub latency_us: u64,
}

/// Where the line per answered request goes, instead of a `tracing` event.
/// Called on the request's task as its response leaves the layer, once per
/// request: it should not block.
pub trait RequestLog: Send + Sync {
    /// Logs `request`.
    fn answered(&self, request: &AnsweredRequest<'_>);
}
