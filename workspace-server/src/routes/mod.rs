//! The HTTP API: routes, and the handlers behind them.
//!
//! Handlers are thin: extract and validate, make one registry call, map the
//! result to a view. Every failure is an [`ApiError`].

mod events;
mod runtimes;
mod workers;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::Request;
use axum::http::{HeaderName, Method, header};
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::trace::TraceLayer;

use crate::auth::require_token;
use yoi_runtime_api::RuntimeError;

use crate::error::ApiError;
use crate::state::AppState;
use crate::views::Health;

pub(crate) use events::{__path_runtime_stream, __path_worker_events, __path_worker_stream};
pub(crate) use runtimes::{
    __path_diagnostics, __path_get_runtime, __path_list_runtimes, __path_openapi,
};
pub(crate) use workers::{
    __path_all_workers, __path_cancel_worker, __path_create_worker, __path_get_worker,
    __path_list_workers, __path_send_input, __path_stop_worker, __path_transcript,
};

/// The whole HTTP application over `state`.
pub fn app(state: AppState) -> Router {
    const WORKER: &str = "/api/runtimes/{runtime_id}/workers/{worker_id}";
    let api = Router::new()
        .route("/api/openapi.json", get(runtimes::openapi))
        .route("/api/runtimes", get(runtimes::list_runtimes))
        .route("/api/runtimes/{runtime_id}", get(runtimes::get_runtime))
        .route("/api/diagnostics", get(runtimes::diagnostics))
        .route("/api/workers", get(workers::all_workers))
        .route(
            "/api/runtimes/{runtime_id}/workers",
            get(workers::list_workers).post(workers::create_worker),
        )
        .route(WORKER, get(workers::get_worker))
        .route(&format!("{WORKER}/input"), post(workers::send_input))
        .route(&format!("{WORKER}/cancel"), post(workers::cancel_worker))
        .route(&format!("{WORKER}/stop"), post(workers::stop_worker))
        .route(&format!("{WORKER}/transcript"), get(workers::transcript))
        .route(&format!("{WORKER}/events"), get(events::worker_events))
        .route(
            &format!("{WORKER}/events/stream"),
            get(events::worker_stream),
        )
        .route(
            "/api/runtimes/{runtime_id}/events/stream",
            get(events::runtime_stream),
        )
        .route_layer(from_fn_with_state(state.clone(), require_token));
    let mut router = Router::new()
        .route("/healthz", get(healthz))
        .merge(api)
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(route_not_found)
        .layer(DefaultBodyLimit::max(state.max_body_bytes()));
    if !state.cors_allowed_origins().is_empty() {
        // Outermost, so that preflight requests are answered before routing
        // and authentication.
        router = router.layer(
            CorsLayer::new()
                .allow_origin(AllowOrigin::list(
                    state.cors_allowed_origins().iter().cloned(),
                ))
                .allow_methods([Method::GET, Method::POST])
                .allow_headers([
                    header::CONTENT_TYPE,
                    header::AUTHORIZATION,
                    HeaderName::from_static("last-event-id"),
                ]),
        );
    }
    router
        .layer(
            // One span per request; the path holds only validated ids.
            TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
                tracing::info_span!("request", method = %request.method(), path = %request.uri().path())
            }),
        )
        .with_state(state)
}

/// Liveness.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, body = Health)))]
pub(crate) async fn healthz() -> axum::Json<Health> {
    axum::Json(Health { status: "ok" })
}

async fn route_not_found() -> ApiError {
    RuntimeError::RouteNotFound.into()
}

async fn method_not_allowed() -> ApiError {
    RuntimeError::MethodNotAllowed.into()
}
