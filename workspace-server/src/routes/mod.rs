//! The HTTP API: routes, and the handlers behind them.
//!
//! Handlers are thin: extract and validate, make one registry call, map the
//! result to a view. Every failure is an [`ApiError`].

mod events;
mod input;
mod runtimes;
mod workers;

use axum::extract::{DefaultBodyLimit, MatchedPath};
use axum::http::Request;
use axum::http::{HeaderName, Method, header};
use axum::middleware::from_fn_with_state;
use axum::{Extension, Router};
use tower_http::LatencyUnit;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::require_token;
use yoi_runtime_api::RuntimeError;

use crate::error::ApiError;
use crate::openapi;
use crate::state::AppState;
use crate::views::Health;

/// The whole HTTP application over `state`.
///
/// Every route is registered once, here, with `utoipa-axum`: the same call
/// adds it to the router and to the OpenAPI document, so the two cannot
/// drift apart.
pub fn app(state: AppState) -> Router {
    let api = OpenApiRouter::new()
        .routes(routes!(runtimes::openapi))
        .routes(routes!(runtimes::list_runtimes))
        .routes(routes!(runtimes::get_runtime))
        .routes(routes!(runtimes::diagnostics))
        .routes(routes!(workers::all_workers))
        .routes(routes!(workers::list_workers, workers::create_worker))
        .routes(routes!(workers::get_worker, workers::delete_worker))
        .routes(routes!(input::send_input))
        .routes(routes!(workers::cancel_worker))
        .routes(routes!(workers::stop_worker))
        .routes(routes!(workers::transcript))
        .routes(routes!(events::worker_events))
        .routes(routes!(events::worker_stream))
        .routes(routes!(events::runtime_stream))
        .route_layer(from_fn_with_state(state.clone(), require_token));
    let (router, document) = OpenApiRouter::with_openapi(openapi::base())
        .routes(routes!(healthz))
        .merge(api)
        .split_for_parts();
    let document = openapi::finish(document, state.token().is_some());
    let document = runtimes::OpenApiJson(
        serde_json::to_vec(&document)
            .unwrap_or_else(|_| unreachable!("an OpenAPI document always serializes"))
            .into(),
    );
    let mut router = router
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(route_not_found)
        .layer(Extension(document))
        .layer(DefaultBodyLimit::max(state.max_body_bytes()));
    if !state.cors_allowed_origins().is_empty() {
        // Outermost, so that preflight requests are answered before routing
        // and authentication.
        router = router.layer(
            CorsLayer::new()
                .allow_origin(AllowOrigin::list(
                    state.cors_allowed_origins().iter().cloned(),
                ))
                .allow_methods([Method::GET, Method::POST, Method::DELETE])
                .allow_headers([
                    header::CONTENT_TYPE,
                    header::AUTHORIZATION,
                    HeaderName::from_static("last-event-id"),
                ]),
        );
    }
    router
        .layer(axum::middleware::map_response(contract_version))
        .layer(
            // One info line per request when it is answered: method, the
            // route it matched (never the path's ids, the query or the
            // body), status and latency.
            TraceLayer::new_for_http()
                .make_span_with(|request: &Request<_>| {
                    let route = request
                        .extensions()
                        .get::<MatchedPath>()
                        .map_or("unmatched", MatchedPath::as_str);
                    tracing::info_span!("request", method = %request.method(), route)
                })
                .on_response(
                    DefaultOnResponse::new()
                        .level(Level::INFO)
                        .latency_unit(LatencyUnit::Micros),
                ),
        )
        .with_state(state)
}

/// Names the contract version on every response, so a remote client can
/// refuse a peer it does not understand.
async fn contract_version(mut response: axum::response::Response) -> axum::response::Response {
    response.headers_mut().insert(
        yoi_runtime_api::CONTRACT_VERSION_HEADER,
        axum::http::HeaderValue::from(yoi_runtime_api::CONTRACT_VERSION),
    );
    response
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
