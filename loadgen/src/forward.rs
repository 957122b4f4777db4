//! The `forward` mode: a forwarding proxy that does nothing but pass each
//! request to `--upstream` and stream the answer back (an axum server in
//! front of hyper's pooled client, no parsing, no checks, no log).
//!
//! `remote` runs it in front of the runtime host beside the real front, so
//! the chat cycle's cost through it is the floor for any design in which
//! each browser request becomes one HTTP request to the host.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, Uri};
use axum::response::IntoResponse;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::client::BoxError;

/// Serves the proxy on `bind` until killed.
pub(crate) async fn forward(bind: String, upstream: String) -> Result<bool, BoxError> {
    let client: Client<HttpConnector, Body> = Client::builder(TokioExecutor::new()).build_http();
    let upstream: Arc<str> = upstream.trim_end_matches('/').into();
    let app = Router::new().fallback(move |mut request: Request<Body>| {
        let (client, upstream) = (client.clone(), upstream.clone());
        async move {
            let path = request
                .uri()
                .path_and_query()
                .map_or("/", |path| path.as_str());
            let Ok(uri) = format!("{upstream}{path}").parse::<Uri>() else {
                return StatusCode::BAD_REQUEST.into_response();
            };
            *request.uri_mut() = uri;
            match client.request(request).await {
                Ok(response) => response.map(Body::new),
                Err(_) => StatusCode::BAD_GATEWAY.into_response(),
            }
        }
    });
    let listener = tokio::net::TcpListener::bind(bind).await?;
    axum::serve(listener, app).await?;
    Ok(true)
}
