//! The floor of the `requests` target: the bare handler with only what the
//! target requires of `yoi` around it. Each request's bearer token is
//! checked and one info line is logged as `yoi serve` logs it: its
//! `RequestLine` into its batched output, under a `tracing` subscriber with
//! its line format and field writer for everything else; there is no Host
//! check, cross-site guard, routing with path parameters, Worker lookup or
//! JSON. `requests --bare-floor` and `instructions --bare-floor` measure
//! `yoi` against it, to tell the cost of the required parts from the rest.
//!
//! It is one service around the router, which it clones and calls once per
//! request: a little more work than the two parts need, so it overstates
//! their cost rather than understating it.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tower::ServiceExt;
use tracing_subscriber::EnvFilter;
use yoi::log_fields::LogFields;
use yoi::log_format::LogFormat;
use yoi::log_output::BatchedWriter;
use yoi::request_line::RequestLine;
use yoi_workspace_server::{AnsweredRequest, RequestLog};

use crate::client::BoxError;

/// Serves `router` on `listener` as the floor (see the module), requiring
/// `token`.
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    token: &str,
) -> Result<bool, BoxError> {
    let (writer, _flush) = BatchedWriter::new(std::io::stdout())?;
    let request_line = RequestLine::new(writer.clone());
    tracing_subscriber::fmt()
        .with_writer(writer)
        .with_ansi(false)
        .event_format(LogFormat::default())
        .fmt_fields(LogFields::default())
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let expected = Arc::new(HeaderValue::from_str(&format!("Bearer {token}"))?);
    let request_line: &'static RequestLine<_> = Box::leak(Box::new(request_line));
    let service = tower::service_fn(move |request: Request<Body>| {
        let router = router.clone();
        let authorized = request.headers().get(header::AUTHORIZATION) == Some(&*expected);
        async move {
            let started = Instant::now();
            let method = request.method().clone();
            let uri = request.uri().clone();
            let response: Response = if authorized {
                router.oneshot(request).await?
            } else {
                StatusCode::UNAUTHORIZED.into_response()
            };
            request_line.answered(&AnsweredRequest {
                method: &method,
                route: uri.path(),
                status: response.status().as_u16(),
                latency_us: started.elapsed().as_micros() as u64,
            });
            Ok::<_, Infallible>(response)
        }
    });
    axum::serve(
        listener,
        axum::ServiceExt::<Request<Body>>::into_make_service(service),
    )
    .await?;
    Ok(true)
}
