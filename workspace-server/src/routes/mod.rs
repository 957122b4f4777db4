//! The HTTP API: routes, and the handlers behind them.
//!
//! Handlers are thin: extract and validate, make one registry call, map the
//! result to a view. Every failure is an [`ApiError`].

mod aggregate;
mod direct;
mod events;
mod input;
mod runtimes;
mod session;
mod workers;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderName, Method, header};
use tower::ServiceBuilder;
use tower::layer::util::{Identity, Stack};
use tower::util::Either;
use tower_http::cors::{AllowOrigin, CorsLayer};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{CSRF_HEADER, require_token};
use crate::guard::guard;
use yoi_runtime_api::RuntimeError;
use yoi_runtime_api::dto::{ImplementationKind, RuntimeState};

use crate::error::ApiError;
use crate::middleware::{CheckLayer, RequestLogLayer};
use crate::openapi;
use crate::registry::{Call, RuntimeRegistry};
use crate::state::AppState;
use crate::views::{Health, Readiness};

/// The whole HTTP application over `state`.
///
/// Every route is registered once, here, with `utoipa-axum`: the same call
/// adds it to the router and to the OpenAPI document, so the two cannot
/// drift apart.
pub fn app(state: AppState) -> Router {
    Router::new().fallback_service(service(state))
}

pub(crate) use direct::AppService;

/// [`app`] as the plain service [`crate::serve`] runs ([`AppService`]).
/// `app` wraps it in a router for callers that want one; `serve` runs it
/// as it is, since each routing level around it costs a boxed service
/// cloned on every request.
pub(crate) fn service(state: AppState) -> AppService {
    AppService::new(router(state.clone()), &state)
}

/// The API's routes, each registered once: in the router and in the
/// OpenAPI document.
fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
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
}

/// The layers of every route, outermost first: the request log line,
/// CORS (which answers preflight requests before the guard, routing and
/// authentication) and, before authentication, token or not, the guard
/// (a Host this server does not answer, and cross-site requests that
/// change state).
type Layers = ServiceBuilder<LayerStack>;
type LayerStack =
    Stack<CheckLayer, Stack<Either<CorsLayer, Identity>, Stack<RequestLogLayer, Identity>>>;

fn layers(state: &AppState, log: RequestLogLayer) -> Layers {
    let cors = (!state.cors_allowed_origins().is_empty()).then(|| {
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
            ])
    });
    ServiceBuilder::new()
        .layer(log)
        .option_layer(cors)
        .layer(CheckLayer::new(state.clone(), guard))
}

/// The layers of an API route: [`layers`], then the token check,
/// innermost.
type ApiLayers = ServiceBuilder<Stack<CheckLayer, LayerStack>>;

fn api_layers(state: &AppState, log: RequestLogLayer) -> ApiLayers {
    layers(state, log).layer(CheckLayer::new(state.clone(), require_token))
}

/// The routes with their layers.
fn router(state: AppState) -> Router {
    let (api, api_document) = api_routes().split_for_parts();
    let (open, mut document) = OpenApiRouter::with_openapi(openapi::base())
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        // Signing in needs no credentials.
        .routes(routes!(
            session::get_session,
            session::create_session,
            session::delete_session
        ))
        .split_for_parts();
    document.merge(api_document);
    state.set_openapi_document(|| {
        let document = openapi::finish(document, state.token().is_some());
        serde_json::to_vec(&document)
            .unwrap_or_else(|_| unreachable!("an OpenAPI document always serializes"))
            .into()
    });
    let log = RequestLogLayer::new(state.request_log());
    // One `layer` call per route: each call wraps every route in another
    // boxed service, which is cloned on every request. The API's routes
    // get the token check in the same call, innermost; a wrong method
    // there is answered after it too.
    let api = api
        .method_not_allowed_fallback(method_not_allowed)
        .layer(api_layers(&state, log));
    open.merge(crate::console::routes())
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(route_not_found)
        .layer(layers(&state, log))
        .merge(api)
        .with_state(state)
}

/// Liveness.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, body = Health)))]
pub(crate) async fn healthz() -> crate::json::Json<Health> {
    crate::json::Json(Health { status: "ok" })
}

/// Readiness, for load balancers and orchestrators: `200` when the server
/// should be sent work; `503 not_ready` while it shuts down, or while a
/// Runtime in its own process (embedded, local-compat) is unavailable.
/// Runtimes on other hosts do not count: one unreachable host must not take
/// the whole server out of rotation (`/api/runtimes` shows them). Nothing
/// in the answer names a Runtime; like `/healthz` it needs no token.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "health",
    responses(
        (status = 200, body = Readiness),
        (status = 503, description = "`not_ready`", body = yoi_runtime_api::Problem, content_type = "application/problem+json")
    )
)]
pub(crate) async fn readyz(
    State(state): State<AppState>,
) -> Result<crate::json::Json<Readiness>, ApiError> {
    if state.is_shutting_down() {
        return Err(RuntimeError::NotReady {
            reason: "the server is shutting down".to_owned(),
        }
        .into());
    }
    // Hosts elsewhere are left out before anything is asked: an
    // unauthenticated probe must not make this server call them.
    let in_process = state
        .registry()
        .entries()
        .iter()
        .filter(|entry| entry.implementation() != ImplementationKind::Remote);
    let answers = RuntimeRegistry::fan_out_over(
        in_process,
        state.aggregate_deadline(),
        |entry| -> Call<'_, RuntimeState> {
            let runtime = entry.runtime();
            Box::pin(async move { runtime.status().await.map(|status| status.state) })
        },
    )
    .await;
    let unavailable = answers
        .iter()
        .filter(|(_, answer)| matches!(answer, Ok(RuntimeState::Unavailable) | Err(_)))
        .count();
    if unavailable > 0 {
        return Err(RuntimeError::NotReady {
            reason: format!("{unavailable} of the Runtimes in this process are unavailable"),
        }
        .into());
    }
    Ok(crate::json::Json(Readiness { status: "ready" }))
}

async fn route_not_found() -> ApiError {
    RuntimeError::RouteNotFound.into()
}

/// A wrong method: `405 method_not_allowed`. On the API's routes the
/// token check wraps this answer as it wraps their handlers (see
/// [`router`]), so routes cannot be probed without the token.
async fn method_not_allowed() -> ApiError {
    RuntimeError::MethodNotAllowed.into()
}
