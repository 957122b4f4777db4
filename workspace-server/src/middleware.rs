//! The per-request layers, written as plain tower services.
//!
//! axum's `from_fn` middleware boxes the rest of the stack and its future
//! on every request; these layers allocate nothing of their own. They are:
//! [`CheckLayer`], a synchronous check that answers the request's error or
//! passes it on (the browser guard, the token); [`RequestLogLayer`], the
//! debug span and the info line per request; and [`contract_version`], the
//! header on every response.

use std::convert::Infallible;
use std::future::{Future, Ready, ready};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::Body;
use axum::extract::MatchedPath;
use axum::http::{HeaderName, HeaderValue, Method, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::future::Either;
use tower::{Layer, Service};
use tracing::Instrument;
use tracing::instrument::Instrumented;

use crate::error::ApiError;
use crate::request_log::{AnsweredRequest, RequestLog};
use crate::state::AppState;

/// A check run before the request goes on: `Err` is the answer.
pub(crate) type Check = fn(&AppState, &Request<Body>) -> Result<(), ApiError>;

/// Runs a [`Check`] on each request.
#[derive(Clone)]
pub(crate) struct CheckLayer {
    state: AppState,
    check: Check,
}

impl CheckLayer {
    pub(crate) fn new(state: AppState, check: Check) -> Self {
        Self { state, check }
    }
}

impl<S> Layer<S> for CheckLayer {
    type Service = Checked<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Checked {
            inner,
            state: self.state.clone(),
            check: self.check,
        }
    }
}

/// The service of [`CheckLayer`].
#[derive(Clone)]
pub(crate) struct Checked<S> {
    inner: S,
    state: AppState,
    check: Check,
}

impl<S> Service<Request<Body>> for Checked<S>
where
    S: Service<Request<Body>, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<Ready<Result<Response, Infallible>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        match (self.check)(&self.state, &request) {
            Ok(()) => Either::Right(self.inner.call(request)),
            Err(err) => Either::Left(ready(Ok(err.into_response()))),
        }
    }
}

/// A debug span around each request, and one info line when it is
/// answered: method, matched route (never the path's ids, the query or the
/// body), status and latency; a `tracing` event, or written by the
/// embedder's [`RequestLog`].
#[derive(Clone, Copy)]
pub(crate) struct RequestLogLayer {
    log: Option<&'static dyn RequestLog>,
    route: Option<&'static str>,
}

impl RequestLogLayer {
    /// The layer around routes the router matched: their route is the
    /// router's matched path.
    pub(crate) fn new(log: Option<&'static dyn RequestLog>) -> Self {
        Self { log, route: None }
    }

    /// The layer around one route answered without the router
    /// (`routes/direct.rs`), whose template is `route`.
    pub(crate) fn for_route(log: Option<&'static dyn RequestLog>, route: &'static str) -> Self {
        Self {
            log,
            route: Some(route),
        }
    }
}

impl<S> Layer<S> for RequestLogLayer {
    type Service = Logging<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Logging {
            inner,
            log: self.log,
            route: self.route,
        }
    }
}

/// The service of [`RequestLogLayer`].
#[derive(Clone)]
pub(crate) struct Logging<S> {
    inner: S,
    log: Option<&'static dyn RequestLog>,
    route: Option<&'static str>,
}

impl<S> Service<Request<Body>> for Logging<S>
where
    S: Service<Request<Body>, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Logged<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<Body>) -> Self::Future {
        let method = request.method().clone();
        let route = match self.route {
            Some(route) => Route::Fixed(route),
            // Taken rather than cloned: no handler reads the matched path,
            // and a clone is a count shared by every request of the route.
            None => match request.extensions_mut().remove::<MatchedPath>() {
                Some(matched) => Route::Matched(matched),
                None => Route::Unmatched,
            },
        };
        let span = tracing::debug_span!("request", method = %method, route = route.name());
        let future = {
            let _entered = span.enter();
            self.inner.call(request)
        };
        Logged {
            future: future.instrument(span),
            log: self.log,
            method,
            route,
            started: Instant::now(),
        }
    }
}

/// The route a request is logged under.
enum Route {
    /// The router's.
    Matched(MatchedPath),
    /// A route answered without the router.
    Fixed(&'static str),
    Unmatched,
}

impl Route {
    fn name(&self) -> &str {
        match self {
            Self::Matched(matched) => matched.as_str(),
            Self::Fixed(route) => route,
            Self::Unmatched => "unmatched",
        }
    }
}

pin_project_lite::pin_project! {
    /// The future of [`RequestLog`].
    pub(crate) struct Logged<F> {
        #[pin]
        future: Instrumented<F>,
        log: Option<&'static dyn RequestLog>,
        method: Method,
        route: Route,
        started: Instant,
    }
}

impl<F> Future for Logged<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = std::task::ready!(this.future.poll(cx));
        if let Ok(response) = &response {
            let answered = AnsweredRequest {
                method: this.method,
                route: this.route.name(),
                status: response.status().as_u16(),
                latency_us: this.started.elapsed().as_micros() as u64,
            };
            match this.log {
                Some(log) => log.answered(&answered),
                // The message as a string field rather than a format
                // string: the same bytes in the line (the message is
                // written first and without its name either way), without
                // formatting it. The target is this module's,
                // `REQUEST_LOG_TARGET`.
                None => tracing::info!(
                    message = "request",
                    method = %answered.method,
                    route = answered.route,
                    status = answered.status,
                    latency_us = answered.latency_us,
                ),
            }
        }
        Poll::Ready(response)
    }
}

/// Names the contract version on every response, so a remote client can
/// refuse a peer it does not understand. Applied outside the routes, so
/// that it sees the `Allow` header axum adds to a wrong method's answer
/// after the routes' layers: without the token, a 401 must not say which
/// methods a route takes.
pub(crate) fn contract_version(mut response: Response) -> Response {
    if response.status() == StatusCode::UNAUTHORIZED {
        response.headers_mut().remove(header::ALLOW);
    }
    response
        .headers_mut()
        .insert(CONTRACT_VERSION_NAME, CONTRACT_VERSION_VALUE);
    response
}

/// The header's name and value, checked once at compile time
/// (`from_static` called at run time checks them on every response).
const CONTRACT_VERSION_NAME: HeaderName =
    HeaderName::from_static(yoi_runtime_api::CONTRACT_VERSION_HEADER);
const CONTRACT_VERSION_VALUE: HeaderValue = HeaderValue::from_static(CONTRACT_VERSION_TEXT);

/// [`yoi_runtime_api::CONTRACT_VERSION`] as the header's text, a static
/// value so that no response allocates it (a test checks the two agree).
const CONTRACT_VERSION_TEXT: &str = "1";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_log_target_is_this_modules_path() {
        // `tracing` names the request event's target after the module that
        // logs it; `REQUEST_LOG_TARGET` tells embedders that name.
        assert_eq!(
            module_path!().strip_suffix("::tests"),
            Some(crate::request_log::REQUEST_LOG_TARGET)
        );
    }

    #[test]
    fn the_header_text_is_the_contract_version() {
        assert_eq!(
            CONTRACT_VERSION_TEXT,
            yoi_runtime_api::CONTRACT_VERSION.to_string()
        );
    }
}
