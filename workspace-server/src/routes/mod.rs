//! The HTTP API: routes, and the handlers behind them.
//!
//! Handlers are thin: extract and validate, make one registry call, map the
//! result to a view. Every failure is an [`ApiError`].

mod aggregate;
mod events;
mod input;
mod runtimes;
mod session;
mod workers;

use std::time::Instant;

use axum::extract::{DefaultBodyLimit, MatchedPath};
use axum::http::Request;
use axum::http::{HeaderName, Method, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::{Extension, Router};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::trace::TraceLayer;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{CSRF_HEADER, require_token};
use crate::guard::guard;
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
        .routes(routes!(runtimes::profiles))
        .routes(routes!(runtimes::diagnostics))
        .routes(routes!(aggregate::all_workers))
        .routes(routes!(workers::count_workers))
        .routes(routes!(workers::list_workers, workers::create_worker))
        .routes(routes!(
            workers::get_worker,
            workers::update_worker,
            workers::delete_worker
        ))
        .routes(routes!(input::send_input))
        .routes(routes!(workers::cancel_worker))
        .routes(routes!(workers::stop_worker))
        .routes(routes!(workers::rollback))
        .routes(routes!(workers::fork_worker))
        .routes(routes!(workers::transcript))
        .routes(routes!(events::worker_events))
        .routes(routes!(events::worker_stream))
        .routes(routes!(events::runtime_stream))
        .route_layer(from_fn_with_state(state.clone(), require_token));
    let (router, document) = OpenApiRouter::with_openapi(openapi::base())
        .routes(routes!(healthz))
        // Signing in needs no credentials.
        .routes(routes!(
            session::get_session,
            session::create_session,
            session::delete_session
        ))
        .merge(api)
        .split_for_parts();
    let document = openapi::finish(document, state.token().is_some());
    let document = runtimes::OpenApiJson(
        serde_json::to_vec(&document)
            .unwrap_or_else(|_| unreachable!("an OpenAPI document always serializes"))
            .into(),
    );
    let mut router = router
        .merge(crate::console::routes())
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(route_not_found)
        .layer(Extension(document))
        .layer(DefaultBodyLimit::max(state.max_body_bytes()))
        // Before authentication, token or not: cross-site requests that
        // change state, and first of all a Host this server does not answer.
        .layer(from_fn_with_state(state.clone(), guard));
    if !state.cors_allowed_origins().is_empty() {
        // Outermost, so that preflight requests are answered before routing
        // and authentication.
        router = router.layer(
            CorsLayer::new()
                .allow_origin(AllowOrigin::list(
                    state.cors_allowed_origins().iter().cloned(),
                ))
                .allow_methods([Method::GET, Method::POST, Method::PATCH, Method::DELETE])
                .allow_headers([
                    header::CONTENT_TYPE,
                    header::AUTHORIZATION,
                    HeaderName::from_static("last-event-id"),
                    HeaderName::from_static(CSRF_HEADER),
                ]),
        );
    }
    let router = router
        // One info line per request when it is answered.
        .layer(axum::middleware::from_fn(log_request))
        .layer(
            // A span per request (debug) for what is logged while it runs.
            TraceLayer::new_for_http()
                .make_span_with(|request: &Request<_>| {
                    tracing::debug_span!("request", method = %request.method(), route = route(request))
                })
                // The request line says the status; a 5xx answer is not
                // logged again as an ERROR.
                .on_failure(()),
        )
        .with_state(state);
    // Outside the routes, so that it sees the `Allow` header axum adds to
    // a wrong method's answer after the route's layers.
    Router::new()
        .fallback_service(router)
        .layer(axum::middleware::map_response(contract_version))
}

/// The route template `request` matched (never the path's ids).
fn route<B>(request: &Request<B>) -> &str {
    request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
}

/// Logs method, matched route, status and latency of each request at info
/// (never ids, the query or the body).
async fn log_request(request: Request<axum::body::Body>, next: Next) -> axum::response::Response {
    let method = request.method().clone();
    let route = route(&request).to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    tracing::info!(
        %method,
        route,
        status = response.status().as_u16(),
        latency_us = started.elapsed().as_micros() as u64,
        "request"
    );
    response
}

/// Names the contract version on every response, so a remote client can
/// refuse a peer it does not understand.
async fn contract_version(mut response: axum::response::Response) -> axum::response::Response {
    if response.status() == axum::http::StatusCode::UNAUTHORIZED {
        // axum adds `Allow` to a wrong method's answer; without the token
        // it must not say which methods a route takes.
        response.headers_mut().remove(header::ALLOW);
    }
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

/// 405, but on `/api` only after the token check, so that routes cannot be
/// probed without it.
async fn method_not_allowed(
    axum::extract::State(state): axum::extract::State<AppState>,
    method: Method,
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
) -> ApiError {
    let path = uri.path();
    if path.starts_with("/api/") && path != "/api/session" {
        if let Err(err) = crate::auth::authenticate(&state, &method, &headers) {
            return err;
        }
    }
    RuntimeError::MethodNotAllowed.into()
}
