//! The two GET routes read most, a Worker's detail and a page of its
//! transcript, answered without going through axum's router.
//!
//! For a route with parameters, axum's router copies each parameter's name
//! into a new `Arc<str>`, percent-decodes its value into another, keeps
//! them in a new list in the request's extensions and records the matched
//! path there too, whether a handler reads them or not: about a seventh of
//! a Worker's detail (`loadgen instructions`, docs/benchmarks.md §10).
//! [`AppService`] recognises these two paths by their shape
//! ([`DirectRoute::of`]) and calls the same handler under the same layers
//! the router would; every other request, one with a percent-encoded
//! segment included, goes to the router. **The routes are still registered
//! and documented once**, by `routes!` in `routes/mod.rs`: this module
//! answers two of them sooner, and `cli/tests/direct.rs` checks that each
//! of its answers and log lines is the router's.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::Router;
use axum::body::{Body, HttpBody};
use axum::handler::Handler;
use axum::http::{HeaderValue, Method, Request, header};
use axum::response::Response;
use axum::routing::future::RouteFuture;
use futures_util::FutureExt;
use futures_util::future::{Either, Map};
use tower::Service;
use tower::util::{BoxCloneSyncService, Oneshot, ServiceExt};

use super::{api_layers, workers};
use crate::extract::WorkerSegments;
use crate::middleware::{RequestLogLayer, contract_version};
use crate::state::AppState;

/// The route of a Worker's detail, as `routes!` registers it.
pub(crate) const WORKER_ROUTE: &str = "/api/runtimes/{runtime_id}/workers/{worker_id}";
/// The route of a transcript page, as `routes!` registers it.
pub(crate) const TRANSCRIPT_ROUTE: &str =
    "/api/runtimes/{runtime_id}/workers/{worker_id}/transcript";

/// A static route beside `{worker_id}` (`routes!` registers it; the
/// router prefers it to the parameter).
const COUNT_SEGMENT: &str = "count";

/// One of the routes answered without the router.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DirectRoute {
    Worker,
    Transcript,
}

impl DirectRoute {
    /// The route the router would match for a `method` request of `path`,
    /// when it is one of these two and its ids need no decoding.
    pub(crate) fn of(method: &Method, path: &str) -> Option<Self> {
        if method != Method::GET {
            return None;
        }
        let segments = WorkerSegments::of(path)?;
        if segments.worker_id == COUNT_SEGMENT {
            return None;
        }
        match segments.rest {
            "" => Some(Self::Worker),
            "/transcript" => Some(Self::Transcript),
            _ => None,
        }
    }
}

/// A route's handler under its layers.
type Route = BoxCloneSyncService<Request<Body>, Response, Infallible>;

type Answer = fn(Result<Response, Infallible>) -> Result<Response, Infallible>;

/// The future of [`AppService`].
pub(crate) type AppFuture =
    Map<Either<Map<Oneshot<Route, Request<Body>>, Answer>, RouteFuture<Infallible>>, Answer>;

/// The whole application as [`crate::serve`] runs it: the two direct
/// routes, the router for everything else, and the contract header on
/// every answer (applied outside the routes, so that it also sees the
/// `Allow` header axum adds to a wrong method's answer).
#[derive(Clone)]
pub(crate) struct AppService {
    router: Router,
    direct: Arc<Direct>,
}

struct Direct {
    worker: Route,
    transcript: Route,
}

impl AppService {
    /// `router` (every route, with its layers), and the direct routes over
    /// `state` under the same layers as the router's API routes.
    pub(crate) fn new(router: Router, state: &AppState) -> Self {
        let log = state.request_log();
        let worker = api_layers(state, RequestLogLayer::for_route(log, WORKER_ROUTE))
            .service(workers::get_worker.with_state(state.clone()));
        let transcript = api_layers(state, RequestLogLayer::for_route(log, TRANSCRIPT_ROUTE))
            .service(workers::transcript.with_state(state.clone()));
        Self {
            router,
            direct: Arc::new(Direct {
                worker: BoxCloneSyncService::new(worker),
                transcript: BoxCloneSyncService::new(transcript),
            }),
        }
    }
}

impl Service<Request<Body>> for AppService {
    type Response = Response;
    type Error = Infallible;
    type Future = AppFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // The router is always ready, and a direct route is called once,
        // through `oneshot`.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let route = match DirectRoute::of(request.method(), request.uri().path()) {
            Some(DirectRoute::Worker) => Some(&self.direct.worker),
            Some(DirectRoute::Transcript) => Some(&self.direct.transcript),
            None => None,
        };
        let future = match route {
            Some(route) => Either::Left(
                route
                    .clone()
                    .oneshot(request)
                    .map(with_content_length as Answer),
            ),
            None => Either::Right(self.router.call(request)),
        };
        future.map(with_contract_version as Answer)
    }
}

/// Sets `content-length` from an exact body size, as axum's router does to
/// the answers of its routes.
fn with_content_length(answer: Result<Response, Infallible>) -> Result<Response, Infallible> {
    answer.map(|mut response| {
        if !response.headers().contains_key(header::CONTENT_LENGTH)
            && let Some(size) = response.body().size_hint().exact()
        {
            response
                .headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(size));
        }
        response
    })
}

fn with_contract_version(answer: Result<Response, Infallible>) -> Result<Response, Infallible> {
    answer.map(contract_version)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RUNTIME: &str = "backend-internal";
    const WORKER: &str = "w-01m8vg8jaceg6fcvqn";

    fn route(method: Method, path: &str) -> Option<DirectRoute> {
        DirectRoute::of(&method, path)
    }

    #[test]
    fn the_two_routes_are_recognised_by_their_shape() {
        let worker = format!("/api/runtimes/{RUNTIME}/workers/{WORKER}");
        assert_eq!(route(Method::GET, &worker), Some(DirectRoute::Worker));
        assert_eq!(
            route(Method::GET, &format!("{worker}/transcript")),
            Some(DirectRoute::Transcript)
        );
    }

    #[test]
    fn everything_else_goes_to_the_router() {
        let worker = format!("/api/runtimes/{RUNTIME}/workers/{WORKER}");
        for method in [Method::HEAD, Method::POST, Method::PATCH, Method::DELETE] {
            assert_eq!(route(method, &worker), None);
        }
        for path in [
            format!("{worker}/"),
            format!("{worker}/transcript/"),
            format!("{worker}/events"),
            format!("/api/runtimes/{RUNTIME}/workers/count"),
            format!("/api/runtimes/{RUNTIME}/workers/count/transcript"),
            format!("/api/runtimes/{RUNTIME}/workers/w%2D01m8vg8jaceg6fcvqn"),
            format!("/api/runtimes/backend%2Dinternal/workers/{WORKER}/transcript"),
            format!("/api/runtimes//workers/{WORKER}"),
            format!("/api/runtimes/{RUNTIME}/workers/"),
            format!("/api/runtimes/{RUNTIME}/workers"),
            format!("/api/runtimes/{RUNTIME}"),
            format!("/api/runtimes/{RUNTIME}/other/{WORKER}"),
            format!("/api//runtimes/{RUNTIME}/workers/{WORKER}"),
            "/healthz".to_owned(),
        ] {
            assert_eq!(route(Method::GET, &path), None, "{path}");
        }
    }

    /// Every documented route, its parameters filled in: exactly the two
    /// direct templates are answered directly, so a static route added
    /// beside `{worker_id}` (as `count` is) cannot be shadowed unseen.
    #[test]
    fn only_the_two_templates_among_the_documented_routes_are_direct() {
        let mut direct = Vec::new();
        let (_, document) = super::super::api_routes().split_for_parts();
        for template in document.paths.paths.keys() {
            let path = template
                .replace("{runtime_id}", RUNTIME)
                .replace("{worker_id}", WORKER);
            if let Some(route) = route(Method::GET, &path) {
                direct.push((template.clone(), route));
            }
        }
        direct.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            direct,
            [
                (WORKER_ROUTE.to_owned(), DirectRoute::Worker),
                (TRANSCRIPT_ROUTE.to_owned(), DirectRoute::Transcript),
            ]
        );
    }
}
